// The ar-video2world pipeline and command on the cpu backend: tiny random-weight AR checkpoints
// whose vocabulary (64000) and token grid (8x8 per latent frame for 64x64 frames) fit the tiny
// trained DV tokenizer, run end to end on short clips cut from sample_0.y4m; the context tokens
// against upstream's pad-then-tokenize, the generated tokens against a direct greedy generate,
// and the typed errors.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { cpu } from '../../src/engine/cpu/backend.js';
import * as F from '../../src/engine/ops.js';
import { type TensorToWrite, writeSafetensors } from '../../src/io/safetensors.js';
import { cropVideo, padVideo, sliceFrames, type Video } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { ContextLengthError, MissingContextError, TokenIdError, parseArConfig } from '../../src/models/ar/config.js';
import { generate } from '../../src/models/ar/generate.js';
import { ArTransformer } from '../../src/models/ar/transformer.js';
import { loadTokenizer } from '../../src/models/tokenizer/load.js';
import type { CausalDiscreteVideoTokenizer } from '../../src/models/tokenizer/video.js';
import {
  FrameCountError, GridMismatchError, VocabularyMismatchError, arVideo2World, fromArTokens, loadArModel, planArVideo2World, readEmbeddings,
  toArPrompt,
} from '../../src/pipelines/ar-video2world.js';

const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const DV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-dv4x8x8');
const SAMPLE = nodePath.join(WEIGHTS, 'samples', 'sample_0.y4m');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-ar-v2w-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** A tiny AR config (upstream ModelConfig field names) on the DV tokenizer's 64000 codes. */
function tinyConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, head_dim: 8, ffn_hidden_size: 64, vocab_size: 64000, norm_eps: 1e-5,
    rope_theta: 500000, rope_dim: '3D', video_latent_shape: [3, 8, 8], max_seq_len: 192, pad_to_multiple_of: 64,
    use_qk_normalization: true, training_type: 'video_to_video', ...over,
  };
}

/** The text_to_video (Video2World) variant: <bov>, cross-attention to context_dim 16, abs pos emb. */
function tinyV2wConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return tinyConfig({
    training_type: 'text_to_video', insert_cross_attn: true, insert_cross_attn_every_k_layers: 1, context_dim: 16,
    apply_abs_pos_emb: true, max_seq_len: 256, ...over,
  });
}

/** Deterministic uniform values in [-scale, scale). */
function rand(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

/** Write config.json + model.safetensors with random weights for every parameter the config declares. */
async function writeCheckpoint(dir: string, json: Record<string, unknown>, seed = 1): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify(json, null, 2));
  const model = new ArTransformer(parseArConfig(json));
  const tensors: Record<string, TensorToWrite> = {};
  let k = seed;
  for (const p of model.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const isNorm = p.shape.length === 1;
    const data = isNorm ? Float32Array.from(rand(n, k++, 0.1), (x) => 1 + x) : rand(n, k++, p.key.startsWith('tok_embeddings') ? 1 : 1 / Math.sqrt(p.shape[1]));
    tensors[p.key] = { dtype: 'f32', shape: p.shape, raw: data };
  }
  await writeSafetensors(nodePath.join(dir, 'model.safetensors'), tensors);
  return dir;
}

/** Run the CLI in-process, capturing stdout and stderr. */
async function run(...argv: string[]): Promise<{ rc: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const rc = await main(argv);
    return { rc, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

let sample: Video;
let base: string;
let v2w: string;
let clip5: string;
let clip9: string;
let clip5narrow: string;
let embeddings: string;
beforeAll(async () => {
  sample = await readY4m(SAMPLE); // 17 frames, 64x64
  base = await writeCheckpoint(nodePath.join(tmp, 'ar-base'), tinyConfig(), 1);
  v2w = await writeCheckpoint(nodePath.join(tmp, 'ar-v2w'), tinyV2wConfig(), 100);
  clip5 = nodePath.join(tmp, 'clip5.y4m');
  await writeY4m(clip5, sliceFrames(sample, 0, 5));
  clip9 = nodePath.join(tmp, 'clip9.y4m');
  await writeY4m(clip9, sliceFrames(sample, 0, 9));
  clip5narrow = nodePath.join(tmp, 'clip5-48.y4m');
  await writeY4m(clip5narrow, cropVideo(sliceFrames(sample, 0, 5), 5, 64, 48));
  embeddings = nodePath.join(tmp, 't5.safetensors');
  await writeSafetensors(embeddings, { context: { dtype: 'f32', shape: [1, 7, 16], raw: rand(7 * 16, 7, 1) } });
}, 60_000);

describe('ar-video2world command', () => {
  it('5 frames -> 2 latent frames of context, 1 generated (64 tokens), 9 frames of 64x64 written, tokens/s printed', async () => {
    const out = nodePath.join(tmp, 'out-base.y4m');
    const r = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', out, '--backend', 'cpu', '--seed', '3', '--top-p', '0.7');
    expect(r.rc, r.err).toBe(0);
    expect(r.out).toContain('5 context frames (2 latent, 128 prompt tokens) + 1 generated latent frames -> 9 frames 64x64');
    expect(r.out).toMatch(/generated 64 tokens at [\d.]+ tokens\/s/);
    expect(r.err).toMatch(/generate .*64\/64 tokens/); // the progress bar's final line
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 64, 64]);
    expect(v.fps).toEqual(sample.fps);
  }, 120_000);

  it('Video2World models need --embeddings: MissingContextError naming it, before anything runs', async () => {
    const r = await run('ar-video2world', '--model', v2w, '--tokenizer', DV, '--input', clip5, '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('MissingContextError: embeddings:');
    expect(r.err).toContain('--embeddings');
    // and a model without cross-attention refuses them
    const r2 = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu', '--embeddings', embeddings);
    expect(r2.rc).toBe(1);
    expect(r2.err).toContain('embeddings: this model has no cross-attention');
  });

  it('frame counts the tokenizer cannot take, or the clip does not have: FrameCountError naming --frames', async () => {
    const r = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu', '--frames', '4');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('FrameCountError: frames: the tokenizer (4x temporal, causal) takes 1 + k*4 context frames');
    const r2 = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu', '--frames', '9');
    expect(r2.rc).toBe(1);
    expect(r2.err).toContain('FrameCountError: frames: 9 context frames asked for, the clip has 5');
  });

  it('a context that fills the model grid: ContextLengthError naming --frames', async () => {
    const r = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip9, '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu', '--frames', '9');
    expect(r.rc).toBe(1);
    expect(r.err).toContain("ContextLengthError: frames: 9 context frames are 3 latent frames, which fill the model's grid of 3 latent frames");
  });

  it("a clip whose latent grid is not the model's token grid: GridMismatchError naming --input", async () => {
    const r = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5narrow, '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu');
    expect(r.rc).toBe(1);
    expect(r.err).toContain("GridMismatchError: input: the clip is 48x64 (WxH); the tokenizer (8x spatial) makes a 8x6 latent grid of it, but the AR model's token grid is 8x8");
  });

  it("a model whose vocabulary is not the tokenizer's codebook: VocabularyMismatchError naming --tokenizer", async () => {
    const small = await writeCheckpoint(nodePath.join(tmp, 'ar-small-vocab'), tinyConfig({ vocab_size: 1024 }), 5);
    const r = await run('ar-video2world', '--model', small, '--tokenizer', DV, '--input', clip5, '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu');
    expect(r.rc).toBe(1);
    expect(r.err).toContain("VocabularyMismatchError: tokenizer: its codebook has 64000 codes (FSQ levels [8, 8, 8, 5, 5, 5]) but the AR model's video vocabulary is vocab_size 1024");
  });

  it('bad sampling arguments and missing arguments', async () => {
    const r = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', nodePath.join(tmp, 'x.y4m'), '--top-p', '1.5');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('--top-p must be a number in (0, 1]');
    const r2 = await run('ar-video2world', '--model', base, '--input', clip5);
    expect(r2.rc).toBe(2);
    expect(r2.err).toContain('missing --tokenizer, --out');
    const r3 = await run('ar-video2world', '--help');
    expect(r3.rc).toBe(0);
    expect(r3.out).toContain('usage: cosmos-ts ar-video2world');
  });
});

describe('ar-video2world pipeline', () => {
  let tok: CausalDiscreteVideoTokenizer;
  beforeAll(async () => {
    tok = (await loadTokenizer(DV, cpu)) as CausalDiscreteVideoTokenizer;
  });
  afterAll(() => tok.dispose());

  it("Video2World, greedy: context ids = upstream's pad-to-full-length tokenization; generated ids = a direct generate with <bov> and the 512-row context", async () => {
    // a 32x32 crop and a [3, 4, 4] grid keep this quick
    const dir = await writeCheckpoint(nodePath.join(tmp, 'ar-v2w-small'), tinyV2wConfig({ video_latent_shape: [3, 4, 4], max_seq_len: 64 }), 200);
    const model = await loadArModel(dir, cpu);
    const clip = cropVideo(sliceFrames(sample, 3, 10), 7, 32, 32); // 7 frames: the last 5 are the context
    const emb = await readEmbeddings(embeddings);
    expect(emb.shape).toEqual([7, 16]);
    try {
      const steps: number[] = [];
      const r = await arVideo2World(model, tok, clip, { temperature: 0, embeddings: emb, progress: false, onToken: (d) => steps.push(d) });
      expect(r.plan).toMatchObject({ contextFrames: 5, contextLatentFrames: 2, latentFrames: 1, promptTokens: 33, generateTokens: 16, outputFrames: 9 });
      expect(steps).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
      expect([r.video.frames, r.video.height, r.video.width]).toEqual([9, 32, 32]);
      expect(r.tokens.length).toBe(48);

      // upstream: the last 5 frames padded to 9 by repeating the last one, tokenized whole, first 2 latent frames kept
      const padded = padVideo(sliceFrames(clip, 2, 7), 9, 32, 32);
      const x = F.fromArray(cpu, padded.data, [1, 3, 9, 32, 32]);
      const { indices, codes } = tok.encode(x);
      const full = (await indices.read()) as Int32Array;
      for (const t of [x, indices, codes]) t.dispose();
      expect(Array.from(r.contextTokens)).toEqual(Array.from(full.subarray(0, 32)));
      expect(Array.from(r.tokens.subarray(0, 32))).toEqual(Array.from(r.contextTokens));

      // generation: <bov> + context ids, the embeddings zero-padded to 512 rows, greedy
      const ctx = new Float32Array(512 * 16);
      ctx.set(emb.data);
      const context = F.fromArray(cpu, ctx, [1, 512, 16]);
      const g = await generate(model, [[64000, ...r.contextTokens]], { maxGenLen: 16, temperature: 0, context });
      context.dispose();
      expect(Array.from(r.tokens.subarray(32))).toEqual(Array.from(g.ids));
    } finally {
      model.dispose();
    }
  }, 120_000);

  it('plans without running: defaults, and the typed errors', async () => {
    const model = ArTransformer.fromConfigJson(tinyConfig({ video_latent_shape: [4, 8, 8], max_seq_len: 256 }));
    // default context: 1 + tc frames when the clip has them, else the last frame
    expect(planArVideo2World(model, tok, [17, 64, 64])).toMatchObject({ contextFrames: 5, contextLatentFrames: 2, latentFrames: 2, generateTokens: 128, outputFrames: 13 });
    expect(planArVideo2World(model, tok, [3, 64, 64])).toMatchObject({ contextFrames: 1, contextLatentFrames: 1, latentFrames: 3, promptTokens: 64 });
    expect(planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 9, latentFrames: 1 })).toMatchObject({ contextLatentFrames: 3, latentFrames: 1 });
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 6 })).toThrow(FrameCountError);
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 13 })).toThrow(ContextLengthError);
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 5, latentFrames: 3 })).toThrow(ContextLengthError);
    expect(() => planArVideo2World(model, tok, [17, 60, 64])).toThrow(GridMismatchError);
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { temperature: -1 })).toThrow(/temperature/);
    const cross = ArTransformer.fromConfigJson(tinyV2wConfig());
    expect(() => planArVideo2World(cross, tok, [5, 64, 64])).toThrow(MissingContextError);
    expect(() => planArVideo2World(cross, tok, [5, 64, 64], { embeddings: { data: new Float32Array(24), shape: [1, 24] } })).toThrow(/context_dim 16/);
    const e = (() => {
      try {
        planArVideo2World(ArTransformer.fromConfigJson(tinyConfig({ vocab_size: 65536 })), tok, [5, 64, 64]);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(VocabularyMismatchError);
    expect((e as VocabularyMismatchError).argument).toBe('tokenizer');
  });

  it('token ids out of range: TokenIdError naming the argument; <bov> leads a text_to_video prompt', () => {
    const cfg = parseArConfig(tinyConfig());
    expect(Array.from(toArPrompt([0, 5, 63999], cfg))).toEqual([0, 5, 63999]);
    expect(Array.from(toArPrompt([7], parseArConfig(tinyV2wConfig())))).toEqual([64000, 7]);
    expect(() => toArPrompt([1, 64000], cfg)).toThrow(TokenIdError);
    expect(() => toArPrompt([-1], cfg, 'indices')).toThrow(/^indices: token id -1 at 0 is outside the video vocabulary \[0, 64000\)/);
    expect(() => fromArTokens([3, 64000], 64000)).toThrow(/generated tokens: token id 64000 at 1/);
    expect(Array.from(fromArTokens([3, 63999], 64000))).toEqual([3, 63999]);
  });

  it('reads bf16 embeddings stored [1, Lc, D] under any name when alone, and refuses ambiguous files', async () => {
    const p = nodePath.join(tmp, 'emb-bf16.safetensors');
    await writeSafetensors(p, { whatever: { dtype: 'bf16', shape: [1, 2, 3], raw: Uint16Array.from([0x3f80, 0x4000, 0xbf80, 0, 0x3f00, 0x4040]) } });
    expect(await readEmbeddings(p)).toEqual({ data: Float32Array.from([1, 2, -1, 0, 0.5, 3]), shape: [2, 3] });
    const q = nodePath.join(tmp, 'emb-two.safetensors');
    await writeSafetensors(q, { a: { dtype: 'f32', shape: [1, 2], raw: new Float32Array(2) }, b: { dtype: 'f32', shape: [1, 2], raw: new Float32Array(2) } });
    await expect(readEmbeddings(q)).rejects.toThrow(/embeddings: .* holds 2 tensors/);
  });
});
