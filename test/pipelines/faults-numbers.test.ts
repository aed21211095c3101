// Faults of the numbers family (issue 14): NaN / Inf in a tokens file, in a model's weights (on
// disk: refused at load naming the file and tensor; in memory: refused at the first component
// boundary naming the component and the step) and in an embeddings file never reach a writer or a
// metric. Library calls on both backends; the CLI's contract (exit 2, one `error:` line naming the
// file, no stack, nothing written, inputs untouched) through runCli on the CPU.
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import type { Module } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { type TensorToWrite, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { type Video, cropVideo, sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { psnr, quality, ssim } from '../../src/metrics/quality.js';
import { loadTokenizer } from '../../src/models/tokenizer/load.js';
import { NonFiniteError, checkFinite } from '../../src/pipelines/finite.js';
import { text2world } from '../../src/pipelines/text2world.js';
import { ArTransformerFamily } from '../../src/models/ar/transformer.js';
import { CosmosTransformer3DFamily } from '../../src/models/dit/transformer.js';
import { loadModule } from '../../src/models/load.js';
import type { CausalDiscreteVideoTokenizer } from '../../src/models/tokenizer/video.js';
import { arVideo2World, readEmbeddings as readArEmbeddings } from '../../src/pipelines/ar-video2world.js';
import { roundtrip, tokenize } from '../../src/pipelines/tokenizer.js';
import { readTokens, writeTokens } from '../../src/pipelines/tokens-file.js';
import { loadWorldModel } from '../../src/pipelines/world/model.js';
import { runCli } from '../cli/run-cli.js';
import { cpu, webgpu } from '../harness.js';
import { DV, tinyConfig, writeArCheckpoint } from './arvlm-fixtures.js';
import { CV, SAMPLE, type WorldFolders, writeWorldFolders } from './world-fixtures.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-numbers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const backends: [string, () => Promise<Backend>][] = [['cpu', async () => cpu], ['webgpu', webgpu]];

/** The small clip the tokenizer tests use: 5 frames of 16x24. */
async function smallClip(): Promise<Video> {
  return cropVideo(sliceFrames(await readY4m(SAMPLE), 0, 5), 5, 16, 24);
}

/** Expect the CLI contract of a refused run: exit 2, last stderr line `error: <starts>...`, no stack. */
function expectRefused(r: Awaited<ReturnType<typeof runCli>>, starts: string): void {
  expect(r.rc, r.err).toBe(2);
  const last = r.errLines[r.errLines.length - 1] ?? '';
  expect(last.startsWith(`error: ${starts}`), last).toBe(true);
  expect(r.err).not.toContain('    at ');
  expect(`${r.out}\n${r.err}`).not.toMatch(/NaN dB|PSNR NaN|SSIM NaN/);
}

/** Nothing but the given names in a folder (no output, no temporary file left). */
function expectOnly(dir: string, names: string[]): void {
  expect(readdirSync(dir).sort()).toEqual([...names].sort());
}

/** A copy of a safetensors file with `edit` applied to the raw values of one tensor. */
async function copyWith(src: string, dst: string, tensor: string, edit: (raw: Float32Array) => void): Promise<void> {
  const f = await openSafetensors(src);
  const out: Record<string, TensorToWrite> = {};
  try {
    for (const name of f.names) {
      const t = await f.read(name);
      out[name] = { dtype: t.dtype, shape: [...t.shape], raw: t.raw };
    }
  } finally {
    await f.close();
  }
  edit(out[tensor].raw as Float32Array);
  await writeSafetensors(dst, out);
}

/** Replace one element of a loaded parameter (found by key) with `value`, on its backend. */
async function poison(model: Module, key: string, value: number, at = 0): Promise<void> {
  const p = [...model.parameters()].find((q) => q.key === key);
  if (!p) throw new Error(`no parameter ${key}`);
  const v = Float32Array.from(await p.t.read());
  v[at] = value;
  p.set(F.fromArray(p.t.backend, v, p.shape, p.t.dtype));
}

// ------------------------------------------------------------------ tokens files

describe('a tokens file holding NaN / Inf', () => {
  const dir = nodePath.join(tmp, 'tokens');
  const bad = nodePath.join(dir, 'bad.safetensors');
  beforeAll(async () => {
    mkdirSync(dir);
    const model = await loadTokenizer(CV, cpu);
    try {
      const tokens = await tokenize(model, await smallClip());
      const host = await tokens.read();
      tokens.dispose();
      const z = host.latent!.data;
      z[0] = Number.NaN;
      z[7] = Number.POSITIVE_INFINITY;
      z[z.length - 1] = Number.NEGATIVE_INFINITY;
      await writeTokens(bad, host, { model: CV, input: SAMPLE });
    } finally {
      model.dispose();
    }
  });

  it('is refused by readTokens, naming the file and the tensor', async () => {
    const e = await readTokens(bad).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NonFiniteError);
    expect((e as Error).message).toMatch(new RegExp(`^${reEscape(bad)}: tensor latent holds 1 NaN and 2 Inf of \\d+ values`));
  });

  it('detokenize (CLI) exits 2 naming the file, writes nothing, leaves the tokens file as it was', async () => {
    const before = readFileSync(bad);
    const out = nodePath.join(dir, 'rec.y4m');
    const r = await runCli('detokenize', '--tokens', bad, '--model', CV, '--out', out, '--backend', 'cpu');
    expectRefused(r, `${bad}: tensor latent holds 1 NaN and 2 Inf`);
    expect(existsSync(out)).toBe(false);
    expectOnly(dir, ['bad.safetensors']);
    expect(readFileSync(bad).equals(before)).toBe(true);
  });
});

// ------------------------------------------------------------------ tokenizer weights

describe('a tokenizer with a NaN weight', () => {
  const model = nodePath.join(tmp, 'cv-nan');
  const weights = nodePath.join(model, 'model.safetensors');
  const TENSOR = 'decoder.conv_in.1.conv3d.weight';
  beforeAll(async () => {
    mkdirSync(model);
    copyFileSync(nodePath.join(CV, 'config.json'), nodePath.join(model, 'config.json'));
    await copyWith(nodePath.join(CV, 'model.safetensors'), weights, TENSOR, (raw) => {
      raw[raw.length >> 1] = Number.NaN;
    });
  });

  for (const [name, get] of backends) {
    it(`is refused at load naming the file and the tensor, when the weights are checked (${name})`, async () => {
      const e = await loadTokenizer(model, await get(), { checkFinite: true }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(NonFiniteError);
      expect((e as Error).message).toMatch(new RegExp(`^${reEscape(weights)}: tensor ${reEscape(TENSOR)} holds 1 NaN and 0 Inf of \\d+ values`));
    });
  }

  it('roundtrip (CLI) exits 2 naming the decoder, writes no video and prints no PSNR', async () => {
    const outDir = nodePath.join(tmp, 'rt-out');
    mkdirSync(outDir);
    const out = nodePath.join(outDir, 'rec.y4m');
    const input = nodePath.join(tmp, 'small.y4m');
    await writeY4m(input, await smallClip());
    const r = await runCli('roundtrip', '--model', model, '--input', input, '--out', out, '--backend', 'cpu');
    expectRefused(r, 'tokenizer decoder: output holds ');
    expect(r.out).not.toContain('PSNR');
    expectOnly(outDir, []);
  });

  for (const [name, get] of backends) {
    it(`a NaN reaching the weights in memory stops roundtrip at the decoder, then at the encoder (${name})`, async () => {
      const backend = await get();
      const m = await loadTokenizer(CV, backend);
      try {
        const clip = await smallClip();
        await poison(m, TENSOR, Number.NaN, 3);
        await expect(roundtrip(m, clip)).rejects.toThrow(/^tokenizer decoder: output holds \d+ NaN and \d+ Inf of \d+ values; its weights or inputs hold NaN\/Inf/);
        await poison(m, 'encoder.conv_in.1.conv3d.weight', Number.POSITIVE_INFINITY);
        const e = await roundtrip(m, clip).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(NonFiniteError);
        expect((e as Error).message).toMatch(/^tokenizer encoder \(chunk 1\): output holds \d+ NaN and \d+ Inf/);
      } finally {
        m.dispose();
      }
    }, 60_000);
  }
});

// ------------------------------------------------------------------ metrics

describe('metrics', () => {
  it('refuse NaN / Inf inputs instead of printing NaN', () => {
    const shape = [3, 1, 11, 11];
    const ref = new Float32Array(3 * 121);
    const rec = new Float32Array(3 * 121);
    rec[5] = Number.NaN;
    expect(() => psnr(rec, ref)).toThrow(NonFiniteError);
    expect(() => ssim(rec, ref, shape)).toThrow(/^ssim: the reconstruction holds 1 NaN and 0 Inf of 363 values/);
    expect(() => quality(ref, rec, shape)).toThrow(/the reference holds 1 NaN/);
    rec[5] = Number.NEGATIVE_INFINITY;
    expect(() => psnr(rec, ref)).toThrow(/^mse: the reconstruction holds 0 NaN and 1 Inf/);
  });
});

// ------------------------------------------------------------------ world pipelines

describe('world pipelines', () => {
  let W: WorldFolders;
  const worldTmp = nodePath.join(tmp, 'world');
  const run = { embeddings: '', steps: 2, guidance: 1, frames: 5, height: 16, width: 16 };
  beforeAll(async () => {
    mkdirSync(worldTmp);
    W = await writeWorldFolders(worldTmp);
    run.embeddings = W.EMB48;
  });

  for (const [name, get] of backends) {
    it(`a NaN in the transformer's weights in memory stops at the denoiser's first step (${name})`, async () => {
      const backend = await get();
      const loaded = await loadWorldModel(W.P25, backend);
      try {
        await poison(loaded.transformer, 'transformer_blocks.1.ff.net.0.proj.weight', Number.NaN, 11);
        const e = await text2world({ ...run, model: loaded }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(NonFiniteError);
        expect((e as Error).message).toMatch(/^denoiser \(step 1\/2\): output holds \d+ NaN and \d+ Inf of 128 values; its weights or inputs hold NaN\/Inf/);
      } finally {
        loaded.dispose();
      }
    }, 60_000);
  }

  it('a NaN in a transformer shard on disk stops the run at the first step, and is named at load when the weights are checked', async () => {
    const copy = nodePath.join(worldTmp, 'p25-nan');
    cpSync(W.P25, copy, { recursive: true });
    const shard = nodePath.join(copy, 'transformer', 'diffusion_pytorch_model-00002-of-00002.safetensors');
    const f = await openSafetensors(shard);
    const tensor = f.names.find((n) => n.endsWith('.weight'))!;
    await f.close();
    await copyWith(nodePath.join(W.P25, 'transformer', nodePath.basename(shard)), shard, tensor, (raw) => {
      raw[raw.length - 1] = Number.NaN;
    });
    const e = await text2world({ ...run, model: copy, backend: cpu }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NonFiniteError);
    expect((e as Error).message).toMatch(/^denoiser \(step 1\/2\): output holds [1-9]\d* NaN/);
    const opened = loadModule(CosmosTransformer3DFamily, nodePath.dirname(shard), cpu, { checkFinite: true });
    await expect(opened).rejects.toThrow(new RegExp(`^${reEscape(shard)}: tensor ${reEscape(tensor)} holds 1 NaN and 0 Inf of \\d+ values; expected finite weights`));
  });

  describe('an embeddings file holding Inf', () => {
    let bad = '';
    beforeAll(async () => {
      bad = nodePath.join(worldTmp, 'emb-inf.safetensors');
      await copyWith(W.EMB48, bad, 'prompt_embeds', (raw) => {
        raw[raw.length - 1] = Number.POSITIVE_INFINITY;
      });
    });

    for (const [name, get] of backends) {
      it(`is refused naming the file and the tensor (${name})`, async () => {
        const e = await text2world({ ...run, embeddings: bad, model: W.P25, backend: await get() }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(NonFiniteError);
        expect((e as Error).message).toMatch(new RegExp(`^${reEscape(bad)}: tensor prompt_embeds holds 0 NaN and 1 Inf of 288 values`));
      });
    }

    it('text2world (CLI) exits 2 naming the file and writes nothing', async () => {
      const outDir = nodePath.join(worldTmp, 'out');
      mkdirSync(outDir);
      const before = readFileSync(bad);
      const r = await runCli('text2world', '--model', W.P25, '--embeddings', bad, '--steps', '2', '--guidance', '1', '--frames', '5',
        '--height', '16', '--width', '16', '--out', nodePath.join(outDir, 'clip.y4m'), '--backend', 'cpu');
      expectRefused(r, `${bad}: tensor prompt_embeds holds 0 NaN and 1 Inf`);
      expectOnly(outDir, []);
      expect(readFileSync(bad).equals(before)).toBe(true);
    });
  });
});

// ------------------------------------------------------------------ AR

describe('arVideo2World', () => {
  let ar = '';
  beforeAll(async () => {
    ar = await writeArCheckpoint(nodePath.join(tmp, 'ar'), tinyConfig(), 1);
  });

  for (const [name, get] of backends) {
    it(`a NaN in the AR transformer's weights stops at the first step's logits (${name})`, async () => {
      const backend = await get();
      const model = (await loadModule(ArTransformerFamily, ar, backend)).model;
      const tokenizer = (await loadTokenizer(DV, backend)) as CausalDiscreteVideoTokenizer;
      try {
        const key = [...model.parameters()].find((p) => p.key.endsWith('output.weight') || p.key.endsWith('lm_head.weight'))?.key ?? [...model.parameters()].at(-1)!.key;
        await poison(model, key, Number.NaN);
        const input = sliceFrames(await readY4m(SAMPLE), 0, 5);
        const e = await arVideo2World({ model, tokenizer, input, backend, seed: 3 }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(NonFiniteError);
        expect((e as Error).message).toMatch(/^ar transformer \(step 1\/64\): logits holds [1-9]\d* NaN and \d+ Inf/);
      } finally {
        model.dispose();
        tokenizer.dispose();
      }
    }, 120_000);
  }

  it('an embeddings file holding NaN is refused naming the file and the tensor', async () => {
    const bad = nodePath.join(tmp, 'ar-emb.safetensors');
    await writeSafetensors(bad, { context: { dtype: 'f32', shape: [1, 3, 4], raw: Float32Array.from([0, 1, 2, 3, Number.NaN, 5, 6, 7, 8, 9, 10, 11]) } });
    await expect(readArEmbeddings(bad)).rejects.toThrow(new RegExp(`^${reEscape(bad)}: tensor context holds 1 NaN and 0 Inf of 12 values`));
  });
});

// ------------------------------------------------------------------ the boundary check itself

describe('checkFinite', () => {
  for (const [name, get] of backends) {
    it(`names the component, the step and the tensor (${name})`, async () => {
      const backend = await get();
      const t = F.fromArray(backend, [1, Number.NaN, Number.NaN, Number.NEGATIVE_INFINITY, 2], [5]);
      await expect(checkFinite(t, { component: 'vae decoder', step: '3/35', file: 'vae/' })).rejects.toThrow(
        'vae decoder (step 3/35): output holds 2 NaN and 1 Inf of 5 values; its weights or inputs hold NaN/Inf (check vae/)',
      );
      await expect(checkFinite(t, { component: 'sampler', step: 4, tensor: 'latents' })).rejects.toThrow(/^sampler \(step 4\): latents holds 2 NaN/);
      await expect(checkFinite(F.fromArray(backend, [3.4e38, -3.4e38, 1e-45, 0], [4]), { component: 'x' })).resolves.toBeUndefined();
      t.dispose();
    });
  }
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
