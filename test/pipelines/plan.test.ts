// The loading order of the world pipelines and transfer on the release skeletons, watched through
// the plan backend (every tensor counted, nothing computed): each component is checked against its
// headers before anything runs, loaded for its phase and freed after it, so no two large ones are
// on the device together; and the 14B releases plan within an 80 GB GPU at their default sizes.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointMismatchError } from '../../src/engine/module.js';
import type { PlanBackend } from '../../src/engine/plan/backend.js';
import { planBackend } from '../../src/engine/select.js';
import { parseTransferSpec } from '../../src/models/controlnet/spec.js';
import { RELEASED_DITS } from '../../src/models/dit/released.js';
import { CosmosTransformer3DFamily } from '../../src/models/dit/transformer.js';
import { zeroClip, zeroFrames } from '../../src/pipelines/plan/inputs.js';
import { planText2World, planVideo2World } from '../../src/pipelines/plan/world.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { text2world } from '../../src/pipelines/text2world.js';
import { transfer } from '../../src/pipelines/transfer.js';
import { video2world } from '../../src/pipelines/video2world.js';
import { cpu } from '../harness.js';
import { brokenCopy, declaredRelease, drop, tensorNames } from '../releases/header-edit.js';
import { useReleases } from './release-runs.js';

const { release, scratch } = useReleases();
const GiB = 2 ** 30;

/** The bytes live on `be` when each phase starts (the run's onPhase). */
function liveAtPhases(be: PlanBackend) {
  const at: Record<string, number> = {};
  const onPhase = (p: string) => {
    at[p] = be.memory().liveBytes;
  };
  return { at, onPhase };
}

describe('components load one after the other', () => {
  it('text2world: the text encoder is freed before the transformer loads, the transformer before the VAE', async () => {
    const be = planBackend();
    const { at, onPhase } = liveAtPhases(be);
    const r = await text2world({ model: release('Cosmos-Predict2-2B-Text2Image'), backend: be, prompt: 'a cat', steps: 2, onPhase });
    const c = Object.fromEntries(r.components.map((x) => [x.name, x.bytes]));
    expect(Object.keys(at)).toEqual(['prompt', 'denoise', 'decode']);
    // what is live when a phase starts: the text states (and latents), never the last phase's weights
    expect(at.prompt).toBe(0);
    expect(at.denoise).toBeLessThan(0.01 * c.text_encoder);
    expect(at.decode).toBeLessThan(0.01 * c.transformer);
    expect(be.memory().liveBytes).toBe(0);
    // bf16 weights stay bf16: two bytes per parameter of the 2B transformer
    const declared = CosmosTransformer3DFamily.build(RELEASED_DITS['Cosmos-Predict2-2B-Text2Image'].config);
    expect(c.transformer).toBe(2 * declared.parameterCount());
  }, 60_000);

  it('video2world: the VAE encodes the conditioning frames and is freed before the transformer loads', async () => {
    const be = planBackend();
    const { at, onPhase } = liveAtPhases(be);
    const r = await video2world({
      model: release('Cosmos-Predict2-2B-Video2World'), backend: be, embeddings: zeros(1024), steps: 2, frames: 9, height: 256, width: 256,
      input: zeroClip(5, 256, 256), onPhase,
    });
    const vae = r.components.find((x) => x.name === 'vae')!.bytes;
    expect(Object.keys(at)).toEqual(['prompt', 'condition', 'denoise', 'decode']);
    expect(at.denoise).toBeLessThan(vae);
    expect(at.decode).toBeLessThan(vae);
  }, 60_000);

  it('transfer: the VAE encodes the controls and goes, the base and the ControlNets denoise and go, the VAE decodes', async () => {
    const be = planBackend();
    const { at, onPhase } = liveAtPhases(be);
    const spec = await parseTransferSpec({
      model: release('Cosmos-Transfer2.5-2B@diffusers-general'), num_steps: 2,
      controls: { edge: { input_control: 'edge.y4m', control_weight: 1, ckpt_path: release('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge') } },
    }, scratch(), { checkFiles: false });
    const r = await transfer({ spec, backend: be, embeddings: zeros(100352), controlVideos: { edge: zeroClip(9, 256, 256) }, guidance: 1, onPhase });
    const c = Object.fromEntries(r.components.map((x) => [x.name, x.bytes]));
    expect(Object.keys(c).sort()).toEqual(['controlnet:edge', 'transformer', 'vae']);
    expect(Object.keys(at)).toEqual(['prompt', 'condition', 'denoise', 'decode']);
    expect(at.denoise).toBeLessThan(c.vae);
    expect(at.decode).toBeLessThan(c.vae);
  }, 60_000);

  it('transfer from a raw 1080p clip: resized to the 480 size (768x432), computed edge, upstream\'s 93-frame chunks, the same peak as one chunk', async () => {
    const be = planBackend();
    const spec = await parseTransferSpec({
      model: release('Cosmos-Transfer2.5-2B@diffusers-general'), num_steps: 1,
      controls: { edge: { control_weight: 1, ckpt_path: release('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge') } },
    }, scratch(), { checkFiles: false });
    const r = await transfer({ spec, backend: be, embeddings: zeros(100352), input: zeroFrames(100, 1080, 1920), resolution: '480', guidance: 1 });
    expect(r.chunks).toEqual([{ start: 0, end: 93 }, { start: 92, end: 100 }]);
    expect([r.video.frames, r.video.height, r.video.width]).toEqual([100, 432, 768]);
    expect(r.latents.shape).toEqual([2, 16, 24, 54, 96]);
    expect(r.controls).toEqual([{ name: 'edge', weight: 1, computed: 'medium' }]);
    const peak = be.memory().peakBytes;
    // the ready-made 93-frame control at the model size: one chunk, the same device peak
    const one = planBackend();
    await transfer({ spec: { ...spec, controls: [{ ...spec.controls[0], inputControl: 'edge.y4m' }] }, backend: one, embeddings: zeros(100352), controlVideos: { edge: zeroFrames(93, 432, 768) }, guidance: 1 });
    expect(peak).toBeLessThanOrEqual(one.memory().peakBytes * 1.01);
  }, 120_000);

  it('a missing VAE tensor fails from its header before anything runs, on the CPU too', async () => {
    const src = release('Cosmos-Predict2-2B-Text2Image');
    const file = 'vae/diffusion_pytorch_model.safetensors';
    const name = tensorNames(join(src, file)).find((n) => n.startsWith('decoder.') && n.endsWith('.weight'))!;
    const dir = brokenCopy(src, join(scratch(), 'no-vae-tensor'), file, drop(name));
    for (const backend of [planBackend(), cpu]) {
      const events: ProgressEvent[] = [];
      const before = backend.memory().liveBytes;
      const err = await text2world({ model: dir, backend, embeddings: zeros(1024), steps: 1, onProgress: (e) => events.push(e) }).catch((e) => e);
      expect(err).toBeInstanceOf(CheckpointMismatchError);
      expect((err as CheckpointMismatchError).missing).toEqual([name]);
      expect(events).toEqual([]);
      expect(backend.memory().liveBytes).toBe(before);
    }
  }, 60_000);
});

describe('the 14B releases at their default sizes, from their published configs', () => {
  it('Cosmos-1.0-Diffusion-14B-Text2World (121 x 704 x 1280) and Predict2-14B-Video2World (93 x 704 x 1280) plan within 80 GB', async () => {
    const c1 = declaredRelease(release('Cosmos-1.0-Diffusion-7B-Text2World'), join(scratch(), '14b-t2w'), RELEASED_DITS['Cosmos-1.0-Diffusion-14B-Text2World'].config);
    const p1 = await planText2World({ model: c1, steps: 2 });
    expect(p1.settings).toMatchObject({ frames: 121, height: 704, width: 1280 });
    const p2c = declaredRelease(release('Cosmos-Predict2-2B-Video2World'), join(scratch(), '14b-v2w'), RELEASED_DITS['Cosmos-Predict2-14B-Video2World'].config);
    const p2 = await planVideo2World({ model: p2c, steps: 2 });
    expect(p2.settings).toMatchObject({ frames: 93, height: 704, width: 1280 });
    for (const p of [p1, p2]) {
      const transformer = p.components.find((x) => x.name === 'transformer')!.bytes;
      expect(transformer / GiB).toBeGreaterThan(26);
      expect(p.peakBytes).toBeLessThan(80e9);
      // the denoising step holds the weights and a bounded number of token-sized activations
      expect(p.phases.find((x) => x.phase === 'denoise')!.peakBytes - transformer).toBeLessThan(16 * GiB);
    }
  }, 120_000);
});

function zeros(width: number) {
  const t = () => ({ data: new Float32Array(4 * width), shape: [1, 4, width] });
  return { prompt: t(), negative: t() };
}
