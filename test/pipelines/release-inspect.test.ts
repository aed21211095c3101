// inspectRelease on the skeletons of every public release folder (real file names, configs and
// safetensors headers; zero data; .jit / .pt files are zero-filled placeholders): what each folder
// is, its components with exact parameter counts, and broken copies (a transposed tensor, a missing
// one) caught by name. Headers only: the whole file runs in seconds.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RELEASED_TOKENIZERS } from '../../src/models/tokenizer/released.js';
import { type ReleaseComponent, type ReleaseReport, inspectRelease } from '../../src/pipelines/release-inspect.js';
import { brokenCopy, drop, tensorNames, transpose } from '../releases/header-edit.js';
import { runCli } from '../cli/run-cli.js';
import { useReleases } from './release-runs.js';

const { release, scratch } = useReleases();

const component = (r: ReleaseReport, name: string): ReleaseComponent => {
  const c = r.components.find((x) => x.name === name);
  if (!c) throw new Error(`${r.path}: no component ${name} (${r.components.map((x) => x.name).join(', ')})`);
  return c;
};

/** Every tensor counted once: a one-dtype component stores itemsize bytes per parameter. */
function expectAllCounted(c: ReleaseComponent) {
  expect(c.ok, c.error).toBe(true);
  const item = { BF16: 2, F16: 2, F32: 4 }[c.dtype as 'BF16'];
  expect(c.bytes).toBe(c.parameters * item);
}

// T5-11B's encoder from its config: 24 blocks of q/k/v/o (1024 -> 128 heads x 128) and a
// (non-gated) 65536-wide FFN, two norms each, the shared embedding, one relative-position table.
const T5_11B_ENCODER = 24 * (4 * 1024 * 16384 + 2 * 1024 * 65536 + 2 * 1024) + 32128 * 1024 + 32 * 128 + 1024;
// Cosmos-1.0-Autoregressive-4B / 5B (ar.md §3): 16 blocks, GQA 32 / 8 heads of 128, QK-norm, FFN 14336.
const arParams = (crossAttn: boolean, embeddingRows: number) => {
  const attn = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 2 * 128;
  const cross = crossAttn ? 4096 * 4096 + 2 * 1024 * 1024 + 4096 * 4096 + 2 * 128 + 4096 : 0;
  return 16 * (attn + 3 * 4096 * 14336 + 2 * 4096 + cross) + embeddingRows * 4096 + 64000 * 4096 + 4096;
};

describe('inspectRelease on the release skeletons', () => {
  it('diffusers pipelines: class, components, exact parameter counts; the native model.pt beside them is reported unreadable, the rest still read', async () => {
    const t2w = await inspectRelease(release('Cosmos-1.0-Diffusion-7B-Text2World'));
    expect([t2w.release, t2w.format, t2w.kind]).toEqual(['CosmosTextToWorldPipeline', 'diffusers', 'world']);
    expect(t2w.components.map((c) => [c.name, c.class])).toEqual([
      ['text_encoder', 'T5EncoderModel'], ['transformer', 'CosmosTransformer3DModel'], ['vae', 'AutoencoderKLCosmos'], ['model.pt', 'checkpoint'],
    ]);
    expect(component(t2w, 'text_encoder').parameters).toBe(T5_11B_ENCODER);
    expect(component(t2w, 'vae').parameters).toBe(RELEASED_TOKENIZERS.CV8x8x8.parameters);
    for (const n of ['text_encoder', 'transformer', 'vae']) expectAllCounted(component(t2w, n));
    const pt = component(t2w, 'model.pt');
    expect(pt.ok).toBe(false);
    expect(pt.error).toMatch(/model\.pt: .*not a PyTorch checkpoint/);

    for (const [name, cls] of [['Cosmos-Predict2-2B-Text2Image', 'Cosmos2TextToImagePipeline'], ['Cosmos-Predict2-2B-Video2World', 'Cosmos2VideoToWorldPipeline']]) {
      const r = await inspectRelease(release(name));
      expect(r.release).toBe(cls);
      expect(component(r, 'vae').class).toBe('AutoencoderKLWan');
      expect(component(r, 'text_encoder').parameters).toBe(T5_11B_ENCODER);
      for (const n of ['text_encoder', 'transformer', 'vae']) expectAllCounted(component(r, n));
      expect(component(r, 'text_encoder').files.length).toBe(2); // the shards behind the index
    }

    const reason = await inspectRelease(release('Cosmos-Reason1-7B'));
    for (const [name, cls] of [['Cosmos-Predict2.5-2B@diffusers-base-post-trained', 'Cosmos2_5_PredictBasePipeline'], ['Cosmos-Transfer2.5-2B@diffusers-general', 'Cosmos2_5_TransferPipeline']]) {
      const r = await inspectRelease(release(name));
      expect([r.release, r.ok]).toEqual([cls, true]);
      expect(component(r, 'text_encoder').class).toBe('Qwen2_5_VLForConditionalGeneration');
      // the prompt encoder folder is the whole Reason1 model
      expect(component(r, 'text_encoder').parameters).toBe(component(reason, 'model').parameters);
      for (const n of ['text_encoder', 'transformer', 'vae']) expectAllCounted(component(r, n));
    }
  }, 60_000);

  it('transformers and diffusers model folders', async () => {
    const reason = await inspectRelease(release('Cosmos-Reason1-7B'));
    expect([reason.release, reason.format, reason.kind, reason.ok]).toEqual(['Qwen2_5_VLForConditionalGeneration', 'transformers', 'vlm', true]);
    expect(reason.components.length).toBe(1);
    expect(component(reason, 'model').files.length).toBe(4);
    expectAllCounted(component(reason, 'model'));

    const edge = await inspectRelease(release('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge'));
    expect([edge.release, edge.format, edge.kind, edge.ok]).toEqual(['CosmosControlNetModel', 'diffusers', 'controlnet', true]);
    expectAllCounted(component(edge, 'model'));
  });

  it('Cosmos Tokenizer releases: named by the folder, the 0.1 config.json placeholder ignored, each zero-filled .jit / .pt reported unreadable by name', async () => {
    for (const [name, code] of [
      ['Cosmos-0.1-Tokenizer-CV4x8x8', 'CV4x8x8'], ['Cosmos-0.1-Tokenizer-DV4x8x8', 'DV4x8x8'], ['Cosmos-0.1-Tokenizer-CI8x8', 'CI8x8'],
      ['Cosmos-0.1-Tokenizer-DI8x8', 'DI8x8'], ['Cosmos-1.0-Tokenizer-CV8x8x8', 'CV8x8x8'], ['Cosmos-1.0-Tokenizer-DV8x16x16', 'DV8x16x16'],
    ]) {
      const r = await inspectRelease(release(name));
      expect([r.release, r.format, r.kind, r.ok]).toEqual([`Cosmos-Tokenizer ${code}`, 'cosmos-tokenizer', 'tokenizer', false]);
      const expected = ['autoencoder', 'encoder', 'decoder', ...(code === 'CV8x8x8' ? ['mean_std'] : [])];
      expect(r.components.map((c) => c.name)).toEqual(expected);
      for (const c of r.components) {
        expect(c.ok).toBe(false);
        expect(c.error).toMatch(new RegExp(`${name}/${c.name}\\.(jit|pt): .*not a PyTorch checkpoint`));
        expect(c.error).not.toMatch(/\n/);
      }
    }
    for (const code of ['CV8x8x8', 'DV8x16x16']) {
      const r = await inspectRelease(release(`Cosmos-1.0-Tokenizer-${code}-converted`));
      expect([r.release, r.format, r.ok]).toEqual([`Cosmos-Tokenizer ${code}`, 'cosmos-tokenizer', true]);
      expect(component(r, 'model').parameters).toBe(RELEASED_TOKENIZERS[code].parameters);
    }
  });

  it('autoregressive releases: the config.json completed from the released architecture; model.pt placeholders unreadable; converted folders counted', async () => {
    for (const [name, v2w] of [['Cosmos-1.0-Autoregressive-4B', false], ['Cosmos-1.0-Autoregressive-5B-Video2World', true]] as const) {
      const r = await inspectRelease(release(name));
      expect([r.release, r.format, r.kind, r.ok]).toEqual([name, 'cosmos-ar', 'ar', false]);
      expect(component(r, 'model').error).toMatch(/model\.pt: .*not a PyTorch checkpoint/);
      const c = await inspectRelease(release(`${name}-converted`));
      expect([c.release, c.ok]).toEqual([name, true]);
      expect(component(c, 'model').parameters).toBe(arParams(v2w, v2w ? 64064 : 64000));
      expectAllCounted(component(c, 'model'));
    }
  });

  it('a transposed and a missing tensor are caught, named, in one line', async () => {
    const src = release('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge');
    const file = 'diffusion_pytorch_model.safetensors';
    const names = tensorNames(join(src, file));
    const transposed = names.find((n) => n.endsWith('attn2.to_k.weight'))!; // [2048, 1024]
    const missing = names.at(-1)!;
    const t = brokenCopy(src, join(scratch(), 'transposed'), file, transpose(transposed));
    const m = brokenCopy(src, join(scratch(), 'missing'), file, drop(missing));
    const rt = await inspectRelease(t);
    expect(rt.ok).toBe(false);
    expect(component(rt, 'model').error).toMatch(new RegExp(`${transposed.replace(/\./g, '\\.')}: checkpoint \\[\\d+, \\d+\\], config implies \\[\\d+, \\d+\\]`));
    const rm = await inspectRelease(m);
    expect(component(rm, 'model').error).toContain(missing);

    const cli = await runCli('inspect', t);
    expect(cli.rc).toBe(2);
    expect(cli.errLines).toEqual([expect.stringMatching(/^error: .*transposed: 1 of 1 component\(s\) could not be read or checked \(model\)$/)]);
    expect(cli.out).toContain(transposed);
  });

  it('the command line prints the whole JSON document when piped (more than the 128 KiB a pipe buffer takes at once)', () => {
    const bin = resolve(import.meta.dirname, '../../bin/cosmos-ts.mjs');
    const out = execFileSync(process.execPath, [bin, 'inspect', release('Cosmos-Reason1-7B'), '--json', '--tensors'], { maxBuffer: 64 << 20 }).toString();
    expect(out.length).toBeGreaterThan(128 << 10);
    const j = JSON.parse(out);
    expect(j.components[0].tensors.length).toBe(729);
  }, 60_000);
});
