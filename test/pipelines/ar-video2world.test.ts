// The arVideo2World pipeline on the cpu backend: tiny random-weight AR checkpoints whose
// vocabulary (64000) and token grid (8x8 per latent frame for 64x64 frames) fit the tiny trained
// DV tokenizer, run end to end on short clips cut from sample_0.y4m; the context tokens against
// upstream's pad-then-tokenize, the generated tokens against a direct greedy generate, progress
// events and cancellation, and the typed errors.
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors.js';
import * as F from '../../src/engine/ops.js';
import { openVideoSource } from '../../src/io/open-video.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { cropVideo, padVideo, sliceFrames, type Video } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { ContextLengthError, MissingContextError, TokenIdError, parseArConfig } from '../../src/models/ar/config.js';
import { generate } from '../../src/models/ar/generate.js';
import { ArTransformerFamily } from '../../src/models/ar/transformer.js';
import { loadModule } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/models/tokenizer/load.js';
import type { CausalDiscreteVideoTokenizer } from '../../src/models/tokenizer/video.js';
import {
  FrameCountError, GridMismatchError, VocabularyMismatchError, arVideo2World, fromArTokens, planArVideo2World, readEmbeddings, toArPrompt,
} from '../../src/pipelines/ar-video2world.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { DV, SAMPLE, rand, tempFolder, tinyConfig, tinyV2wConfig, writeArCheckpoint } from './arvlm-fixtures.js';
import { cpu } from '../harness.js';

const { dir: tmp, remove } = tempFolder('cosmos-ar-v2w-');
afterAll(remove);

let sample: Video;
let base: string;
let v2w: string;
let embeddings: string;
let tok: CausalDiscreteVideoTokenizer;
beforeAll(async () => {
  sample = await readY4m(SAMPLE); // 17 frames, 64x64
  base = await writeArCheckpoint(nodePath.join(tmp, 'ar-base'), tinyConfig(), 1);
  v2w = await writeArCheckpoint(nodePath.join(tmp, 'ar-v2w'), tinyV2wConfig(), 100);
  embeddings = nodePath.join(tmp, 't5.safetensors');
  await writeSafetensors(embeddings, { context: { dtype: 'f32', shape: [1, 7, 16], raw: rand(7 * 16, 7, 1) } });
  tok = (await loadTokenizer(DV, cpu)) as CausalDiscreteVideoTokenizer;
}, 60_000);
afterAll(() => tok?.dispose());

describe('arVideo2World from folders', () => {
  it('5 frames (a streamed .y4m) -> 2 latent frames of context, 1 generated (64 tokens), 9 frames of 64x64; progress encode, generate per token, decode', async () => {
    const clip5 = nodePath.join(tmp, 'clip5.y4m');
    await writeY4m(clip5, sliceFrames(sample, 0, 5));
    const source = await openVideoSource(clip5);
    const events: ProgressEvent[] = [];
    try {
      const r = await arVideo2World({ model: base, tokenizer: DV, input: source, backend: cpu, seed: 3, topP: 0.7, onProgress: (e) => events.push(e) });
      expect(r.plan).toMatchObject({ contextFrames: 5, contextLatentFrames: 2, promptTokens: 128, latentFrames: 1, generateTokens: 64, outputFrames: 9 });
      expect([r.video.frames, r.video.height, r.video.width]).toEqual([9, 64, 64]);
      expect(r.video.fps).toEqual(sample.fps);
      expect(r.tokens.length).toBe(3 * 64);
      expect(r.tokensPerSecond).toBeGreaterThan(0);
      for (const x of r.video.data) expect(Math.abs(x)).toBeLessThanOrEqual(1);
    } finally {
      await source.close();
    }
    expect(events.map((e) => e.stage).filter((s, i, a) => a[i - 1] !== s)).toEqual(['encode', 'generate', 'decode']);
    const gen = events.filter((e) => e.stage === 'generate');
    expect(gen.map((e) => e.done)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    expect(gen.every((e) => e.total === 64 && e.unit === 'tokens')).toBe(true);
  }, 120_000);

  it('an aborted signal stops generation with CancelledError at the next token; nothing runs when it is aborted before', async () => {
    const controller = new AbortController();
    const events: ProgressEvent[] = [];
    const run = arVideo2World({
      model: base, tokenizer: DV, input: sliceFrames(sample, 0, 5), backend: cpu,
      signal: controller.signal,
      onProgress: (e) => {
        events.push(e);
        if (e.stage === 'generate' && e.done === 3) controller.abort(new CancelledError('enough'));
      },
    });
    await expect(run).rejects.toThrow(CancelledError);
    expect(events.filter((e) => e.stage === 'generate').map((e) => e.done)).toEqual([1, 2, 3]);
    expect(events.some((e) => e.stage === 'decode')).toBe(false);

    const before = new AbortController();
    before.abort(new CancelledError('not started'));
    const seen: ProgressEvent[] = [];
    await expect(arVideo2World({ model: base, tokenizer: DV, input: sample, backend: cpu, signal: before.signal, onProgress: (e) => seen.push(e) }))
      .rejects.toThrow('not started');
    expect(seen).toEqual([]);
  }, 120_000);

  it('Video2World models need embeddings (MissingContextError); a model without cross-attention refuses them', async () => {
    const clip = sliceFrames(sample, 0, 5);
    const e = await arVideo2World({ model: v2w, tokenizer: DV, input: clip, backend: cpu }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingContextError);
    expect((e as MissingContextError).argument).toBe('embeddings');
    const emb = await readEmbeddings(embeddings);
    await expect(arVideo2World({ model: base, tokenizer: DV, input: clip, backend: cpu, embeddings: emb })).rejects.toThrow('embeddings: this model has no cross-attention');
  });

  it('frame counts the tokenizer cannot take or the clip does not have (FrameCountError), contexts that fill the grid (ContextLengthError)', async () => {
    const clip5 = sliceFrames(sample, 0, 5);
    await expect(arVideo2World({ model: base, tokenizer: tok, input: clip5, backend: cpu, contextFrames: 4 }))
      .rejects.toThrow('frames: the tokenizer (4x temporal, causal) takes 1 + k*4 context frames');
    await expect(arVideo2World({ model: base, tokenizer: tok, input: clip5, backend: cpu, contextFrames: 9 }))
      .rejects.toThrow(new FrameCountError('frames', '9 context frames asked for, the clip has 5'));
    await expect(arVideo2World({ model: base, tokenizer: tok, input: sliceFrames(sample, 0, 9), backend: cpu, contextFrames: 9 }))
      .rejects.toThrow(new ContextLengthError('frames', "9 context frames are 3 latent frames, which fill the model's grid of 3 latent frames (video_latent_shape [3, 8, 8]): at most 5 context frames leave one to generate"));
  });

  it("a clip whose latent grid is not the model's (GridMismatchError), a vocabulary that is not the codebook (VocabularyMismatchError)", async () => {
    const narrow = cropVideo(sliceFrames(sample, 0, 5), 5, 64, 48);
    await expect(arVideo2World({ model: base, tokenizer: tok, input: narrow, backend: cpu })).rejects.toThrow(
      "input: the clip is 48x64 (WxH); the tokenizer (8x spatial) makes a 8x6 latent grid of it, but the AR model's token grid is 8x8",
    );
    const small = await writeArCheckpoint(nodePath.join(tmp, 'ar-small-vocab'), tinyConfig({ vocab_size: 1024 }), 5);
    const e = await arVideo2World({ model: small, tokenizer: tok, input: sliceFrames(sample, 0, 5), backend: cpu }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VocabularyMismatchError);
    expect((e as Error).message).toBe(
      "tokenizer: its codebook has 64000 codes (FSQ levels [8, 8, 8, 5, 5, 5]) but the AR model's video vocabulary is vocab_size 1024",
    );
  });
});

describe('arVideo2World on loaded models', () => {
  it("Video2World, greedy: context ids = upstream's pad-to-full-length tokenization; generated ids = a direct generate with <bov> and the 512-row context", async () => {
    // a 32x32 crop and a [3, 4, 4] grid keep this quick
    const dir = await writeArCheckpoint(nodePath.join(tmp, 'ar-v2w-small'), tinyV2wConfig({ video_latent_shape: [3, 4, 4], max_seq_len: 64 }), 200);
    const { model } = await loadModule(ArTransformerFamily, dir, cpu);
    const clip = cropVideo(sliceFrames(sample, 3, 10), 7, 32, 32); // 7 frames: the last 5 are the context
    const emb = await readEmbeddings(embeddings);
    expect(emb.shape).toEqual([7, 16]);
    try {
      const steps: number[] = [];
      const r = await arVideo2World({
        model, tokenizer: tok, input: clip, temperature: 0, embeddings: emb,
        onProgress: (e) => {
          if (e.stage === 'generate') steps.push(e.done);
        },
      });
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
      // the caller's model is left loaded
      expect(model.tok_embeddings.weight.loaded).toBe(true);
    } finally {
      model.dispose();
    }
  }, 120_000);

  it('plans without running: defaults, and the typed errors', async () => {
    const model = ArTransformerFamily.build(tinyConfig({ video_latent_shape: [4, 8, 8], max_seq_len: 256 }));
    // default context: 1 + tc frames when the clip has them, else the last frame
    expect(planArVideo2World(model, tok, [17, 64, 64])).toMatchObject({ contextFrames: 5, contextLatentFrames: 2, latentFrames: 2, generateTokens: 128, outputFrames: 13 });
    expect(planArVideo2World(model, tok, [3, 64, 64])).toMatchObject({ contextFrames: 1, contextLatentFrames: 1, latentFrames: 3, promptTokens: 64 });
    expect(planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 9, latentFrames: 1 })).toMatchObject({ contextLatentFrames: 3, latentFrames: 1 });
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 6 })).toThrow(FrameCountError);
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 13 })).toThrow(ContextLengthError);
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { contextFrames: 5, latentFrames: 3 })).toThrow(ContextLengthError);
    expect(() => planArVideo2World(model, tok, [17, 60, 64])).toThrow(GridMismatchError);
    expect(() => planArVideo2World(model, tok, [17, 64, 64], { temperature: -1 })).toThrow(/temperature/);
    const cross = ArTransformerFamily.build(tinyV2wConfig());
    expect(() => planArVideo2World(cross, tok, [5, 64, 64])).toThrow(MissingContextError);
    expect(() => planArVideo2World(cross, tok, [5, 64, 64], { embeddings: { data: new Float32Array(24), shape: [1, 24] } })).toThrow(/context_dim 16/);
    const e = (() => {
      try {
        planArVideo2World(ArTransformerFamily.build(tinyConfig({ vocab_size: 65536 })), tok, [5, 64, 64]);
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
