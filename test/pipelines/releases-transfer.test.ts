// transfer with Transfer2.5's edge ControlNet (the Wan2.1 VAE encoding the control clip, then
// denoise and decode) on skeleton copies of the real releases (test/releases/skeletons.py: the real folder layouts,
// configs, tensor names, shapes, dtypes and shards; every weight a sparse zero hole). Zero weights
// give a flat video, so these tests check what a user who downloads a release would otherwise find
// broken: every part loads under its real names, every phase runs, the output has the frame count
// and size upstream gives, and every value is finite. 16x16 pixels, 2 steps and guidance only
// where a case is about it keep it affordable on the CPU oracle; the 2B transformers stay bf16
// (4 GB each).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeVideo } from '../../src/io/open-video.js';
import { parseTransferSpec } from '../../src/models/controlnet/spec.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { transfer } from '../../src/pipelines/transfer.js';
import { cpu } from '../harness.js';
import { embeddingsFile, finite, stages, useReleases } from './release-runs.js';
import { gradientClip } from './world-fixtures.js';

const { release, scratch } = useReleases();
const embeddings = (width: number) => embeddingsFile(scratch(), width);

describe('each release makes a video from --embeddings (zero weights: shapes, phases, finite values)', () => {
  it('transfer on Cosmos-Transfer2.5-2B with its edge ControlNet: 5 frames of 16x16 following an edge clip', async () => {
    const edge = join(scratch(), 'edge.y4m');
    await writeVideo(edge, gradientClip(5, 16, 16, 2));
    const spec = await parseTransferSpec({
      model: release('Cosmos-Transfer2.5-2B@diffusers-general'), embeddings: await embeddings(100352), num_steps: 2, guidance: 1,
      controls: { edge: { input_control: edge, control_weight: 1, ckpt_path: release('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge') } },
    }, scratch());
    expect(spec.textEncoder).toBe(join(release('Cosmos-Transfer2.5-2B@diffusers-general'), 'text_encoder'));
    const events: ProgressEvent[] = [];
    const r = await transfer({ spec, backend: cpu, onProgress: (e) => events.push(e) });
    expect(r.latents.shape).toEqual([1, 16, 2, 2, 2]);
    expect([r.video.frames, r.video.height, r.video.width]).toEqual([5, 16, 16]);
    expect(finite(r.video.data)).toBe(true);
    expect(stages(events)).toEqual({ prompt: 1, condition: 1, denoise: 2, decode: 5 });
  }, 900_000);
});
