// The Qwen2.5-VL model (Cosmos-Reason1): the vendored model cases on both backends (the padded
// block-diagonal attention path too), KV-cache decoding against the full forward (left padding,
// sliding-window mask), get_rope_index edge cases, the window index as a permutation, sampling
// and stopping, and the released 7B config built without allocating.
import fc from 'fast-check';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import type { DType, RawArray } from '../../src/engine/dtype.js';
import { type TensorSource, loadWeights, plannedBytes } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { type TensorToWrite, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { VlmKVCache, generate, processLogits, sampleToken } from '../../src/models/vlm/generate.js';
import { COSMOS_REASON1_7B_CONFIG, VlmConfigError, parseVlmConfig } from '../../src/models/vlm/config.js';
import {
  FLOAT32_MIN, type ForwardInputs, type Qwen2_5_VLForConditionalGeneration, attentionMask, mropeTables, Qwen2_5_VLFamily,
} from '../../src/models/vlm/language.js';
import { loadModule } from '../../src/models/load.js';
import { type Grid, RopeIndexError, getRopeIndex, temporalIndex } from '../../src/models/vlm/rope-index.js';
import {
  frameCuSeqlens, inversePermutation, segmentTuning, visionRotaryAngles, windowIndex,
} from '../../src/models/vlm/vision.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIX = fileURLToPath(new URL('../fixtures/vlm', import.meta.url));
const CASES = ['vision_encoder', 'rope_index', 'lm_forward', 'lm_forward_bf16', 'greedy_decode'];

describe('VLM conformance cases', () => {
  for (const dir of CASES) {
    it(`${dir} passes on the CPU backend`, async () => {
      const r = await expectCasePasses(join(FIX, dir), cpu);
      if (dir === 'vision_encoder') expect(Object.keys(r.taps)).toHaveLength(7);
      if (dir.startsWith('lm_forward')) expect(Object.keys(r.taps)).toHaveLength(5);
    });
  }
  for (const dir of CASES) {
    it(`${dir} passes on the WebGPU backend`, async () => expectCasePasses(join(FIX, dir), await webgpu()));
  }
  it('vision_encoder passes with every attention pattern as one padded, masked batch (CPU and WebGPU)', async () => {
    const saved = { ...segmentTuning };
    segmentTuning.maxRuns = 0;
    try {
      await expectCasePasses(join(FIX, 'vision_encoder'), cpu);
      await expectCasePasses(join(FIX, 'vision_encoder'), await webgpu());
    } finally {
      Object.assign(segmentTuning, saved);
    }
  });
});

// ------------------------------------------------------------------ the tiny fixture model

async function fixtureModel(backend: Backend, folder = 'lm_forward', overrides: Record<string, unknown> = {}) {
  const dir = join(FIX, folder);
  const c = await openSafetensors(join(dir, 'case.safetensors'));
  const cfgJson = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const { model } = await loadModule(Qwen2_5_VLFamily(), join(dir, 'model.safetensors'), backend, { config: { ...cfgJson, ...overrides } });
  const ids = Array.from((await c.read('input.input_ids')).raw);
  const pixels = await c.read('input.pixel_values');
  const grid = Array.from((await c.read('input.image_grid_thw')).raw);
  await c.close();
  return { model, ids, pixels: F.fromRaw(backend, pixels.raw, pixels.shape, pixels.dtype), grid: [[grid[0], grid[1], grid[2]] as const] as Grid[] };
}

/**
 * A batch of two prompts: row 0 the case's text + image prompt, row 1 a shorter text prompt
 * left-padded with `padLen` masked slots.
 */
function batchOfTwo(ids: number[], pixels: Tensor, grid: Grid[], padLen: number): ForwardInputs {
  const L = ids.length;
  const row1 = [...new Array(padLen).fill(0), ...Array.from({ length: L - padLen }, (_, i) => 40 + i)];
  const mask = [...new Array(L).fill(1), ...new Array(padLen).fill(0), ...new Array(L - padLen).fill(1)];
  return { inputIds: { data: [...ids, ...row1], shape: [2, L] }, attentionMask: { data: mask, shape: [2, L] }, pixelValues: pixels, imageGridThw: grid };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, label: string) {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) expect.fail(`${label}: element ${i} got ${got[i]}, want ${want[i]}`);
  }
}

async function decodeMatchesFullForward(backend: Backend, overrides: Record<string, unknown> = {}, checkAlone = true) {
  const { model, ids, pixels, grid } = await fixtureModel(backend, 'lm_forward', overrides);
  try {
    const L = ids.length;
    const steps = 6;
    const inputs = batchOfTwo(ids, pixels, grid, 6);
    const streamed: number[][] = [];
    const r = await generate(model, inputs, {
      maxNewTokens: steps, stopTokenIds: [], returnStepLogits: true, onToken: (t) => { streamed.push([...t]); },
    });
    expect(r.steps).toBe(steps);
    expect(streamed).toEqual(Array.from({ length: steps }, (_, k) => [r.sequences[L + k], r.sequences[(L + steps) + L + k]]));
    // the whole sequence (the last token excepted) in one forward, no cache
    const T = L + steps - 1;
    const seq: number[] = [];
    const mask: number[] = [];
    for (let b = 0; b < 2; b++) {
      for (let l = 0; l < T; l++) seq.push(r.sequences[b * (L + steps) + l]);
      for (let l = 0; l < T; l++) mask.push(l < L ? Number((inputs.attentionMask!.data as number[])[b * L + l]) : 1);
    }
    const full = model.forward({ ...inputs, inputIds: { data: seq, shape: [2, T] }, attentionMask: { data: mask, shape: [2, T] } });
    const V = model.config.text.vocabSize;
    const logits = (await full.logits.read()) as Float32Array;
    for (let b = 0; b < 2; b++) {
      for (let k = 0; k < steps; k++) {
        const want = logits.subarray((b * T + L - 1 + k) * V, (b * T + L + k) * V);
        const got = r.stepLogits!.subarray((b * steps + k) * V, (b * steps + k + 1) * V);
        expectClose(got, want, 1e-4, 1e-3, `row ${b} step ${k} on ${backend.name}`);
        let best = 0;
        for (let i = 1; i < V; i++) if (want[i] > want[best]) best = i;
        expect(r.sequences[b * (L + steps) + L + k]).toBe(best);
      }
    }
    full.logits.dispose();
    if (!checkAlone) return r;
    // the padded row generates what it generates alone, unpadded
    const alone = await generate(model, { inputIds: { data: (inputs.inputIds.data as number[]).slice(L + 6), shape: [1, L - 6] } }, { maxNewTokens: steps, stopTokenIds: [] });
    expect(alone.generated[0]).toEqual(r.generated[1]);
    return r;
  } finally {
    pixels.dispose();
    model.dispose();
  }
}

describe('KV-cache decoding', () => {
  it('step logits equal the full forward at every position (left padding, image prompt), CPU', async () => {
    await decodeMatchesFullForward(cpu);
  });
  it('with a sliding window shorter than the sequence (v4.49 masks keys out of it), CPU', async () => {
    // (cache positions count the padding, so the padded row no longer equals its unpadded self)
    const r = await decodeMatchesFullForward(cpu, { sliding_window: 9 }, false);
    expect(r.steps).toBe(6);
  });
  it('step logits equal the full forward on WebGPU too', async () => {
    await decodeMatchesFullForward(await webgpu());
  });
});

// ------------------------------------------------------------------ generation options

describe('generation', () => {
  let fx: Awaited<ReturnType<typeof fixtureModel>>;
  // the greedy_decode case's weights and prompt
  beforeAll(async () => { fx = await fixtureModel(cpu, 'greedy_decode'); });
  afterAll(() => { fx.pixels.dispose(); fx.model.dispose(); });
  const prompt = () => ({ inputIds: { data: fx.ids, shape: [1, fx.ids.length] }, pixelValues: fx.pixels, imageGridThw: fx.grid });

  it('stops at a stop token (kept) and pads finished rows', async () => {
    const L = fx.ids.length;
    const greedy = await generate(fx.model, prompt(), { maxNewTokens: 5, stopTokenIds: [] });
    const first = greedy.generated[0][0];
    const r = await generate(fx.model, prompt(), { maxNewTokens: 5, stopTokenIds: [first] });
    expect(r.generated[0]).toEqual([first]);
    expect(r.finishReason).toEqual(['stop']);
    expect(r.steps).toBe(1);
    expect(r.sequences.length).toBe(L + 1);
    // batch: row 0 stops at once and is padded afterwards, row 1 keeps going to the length limit
    const b = batchOfTwo(fx.ids, fx.pixels, fx.grid, 6);
    const free = await generate(fx.model, b, { maxNewTokens: 4, stopTokenIds: [] });
    expect(free.generated[1]).not.toContain(first); // (so that row 1 never stops)
    const rb = await generate(fx.model, b, { maxNewTokens: 4, stopTokenIds: [first], padTokenId: 7 });
    expect(rb.generated[0]).toEqual([first]);
    expect(rb.finishReason).toEqual(['stop', 'length']);
    expect(Array.from(rb.sequences.subarray(L, L + 4))).toEqual([first, 7, 7, 7]);
    expect(rb.generated[1]).toEqual(free.generated[1]);
  });

  it("reproduces the fixture's greedy continuation", async () => {
    const r = await generate(fx.model, prompt(), { maxNewTokens: 10, stopTokenIds: [] });
    expect(r.generated[0]).toEqual([10, 289, 179, 10, 289, 179, 10, 289, 179, 62]);
    expect(Array.from(r.ropeDeltas)).toEqual([-3]);
  });

  it('sampling is reproducible per seed and follows temperature / top-k / top-p', async () => {
    const opts = { maxNewTokens: 8, stopTokenIds: [], doSample: true, temperature: 1.5, topP: 0.9 };
    const a = await generate(fx.model, prompt(), { ...opts, seed: 'a' });
    const a2 = await generate(fx.model, prompt(), { ...opts, seed: 'a' });
    expect(a2.generated).toEqual(a.generated);
    const seeds = await Promise.all(['b', 'c', 'd', 'e'].map((s) => generate(fx.model, prompt(), { ...opts, seed: s })));
    expect(seeds.some((s) => JSON.stringify(s.generated) !== JSON.stringify(a.generated))).toBe(true);
    // top_k = 1 is greedy
    const k1 = await generate(fx.model, prompt(), { maxNewTokens: 5, stopTokenIds: [], doSample: true, topK: 1, seed: 3 });
    const g = await generate(fx.model, prompt(), { maxNewTokens: 5, stopTokenIds: [] });
    expect(k1.generated).toEqual(g.generated);
  });

  it('processLogits: repetition penalty, temperature, top-k and top-p as transformers', () => {
    const x = Float32Array.from([2, -1, 0.5, 1]);
    expect(Array.from(processLogits(x.slice(), [0, 1], { repetitionPenalty: 2 }))).toEqual([1, -2, 0.5, 1]);
    expect(Array.from(processLogits(x.slice(), [], { doSample: true, temperature: 2 }))).toEqual([1, -0.5, 0.25, 0.5]);
    expect(Array.from(processLogits(x.slice(), [], { doSample: true, topK: 2 }))).toEqual([2, -Infinity, -Infinity, 1]);
    // probabilities ~ [0.61, 0.03, 0.14, 0.22], ascending cumulative 0.03, 0.17, 0.39, 1: top_p
    // drops those with cumulative <= 1 - top_p: 0.7 keeps {0, 3}; 0.9 keeps {0, 2, 3}
    expect(Array.from(processLogits(x.slice(), [], { doSample: true, topP: 0.7 }))).toEqual([2, -Infinity, -Infinity, 1]);
    expect(Array.from(processLogits(x.slice(), [], { doSample: true, topP: 0.9 }))).toEqual([2, -Infinity, 0.5, 1]);
    // the most likely token always survives
    expect(Array.from(processLogits(x.slice(), [], { doSample: true, topP: 0.01 }))).toEqual([2, -Infinity, -Infinity, -Infinity]);
    expect(sampleToken(Float32Array.from([0, -Infinity, 0]), 0.49)).toBe(0);
    expect(sampleToken(Float32Array.from([0, -Infinity, 0]), 0.51)).toBe(2);
  });
});

// ------------------------------------------------------------------ get_rope_index

describe('get_rope_index', () => {
  const cfg = { imageTokenId: 292, videoTokenId: 293, visionStartTokenId: 290, spatialMergeSize: 2, tokensPerSecond: 2 };

  it('text only: cumsum(mask) - 1 with padded slots 1, delta max + 1 - L', () => {
    const r = getRopeIndex(cfg, { inputIds: [5, 6, 7, 0, 0, 8, 9], batch: 1, length: 7, attentionMask: [1, 1, 1, 0, 0, 1, 1] });
    expect(Array.from(r.positionIds.subarray(0, 7))).toEqual([0, 1, 2, 1, 1, 3, 4]);
    expect(Array.from(r.ropeDeltas)).toEqual([-2]);
    const n = getRopeIndex(cfg, { inputIds: [5, 6, 7], batch: 1, length: 3 });
    expect(Array.from(n.positionIds)).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect(Array.from(n.ropeDeltas)).toEqual([0]);
  });

  it('video temporal steps multiply as float32 (0.5 s x 2 tok/s -> 1), default 1.0 s', () => {
    expect([0, 1, 2, 3].map((i) => temporalIndex(i, 0.5, 2))).toEqual([0, 1, 2, 3]);
    expect([0, 1, 2, 3].map((i) => temporalIndex(i, 0.3, 2))).toEqual([0, 0, 1, 1]);
    expect([0, 1, 2].map((i) => temporalIndex(i, 1.0, 2))).toEqual([0, 2, 4]);
    // video (2, 2, 2) -> one 1x1 merged token per step; no second_per_grid_ts -> step 1.0 * 2
    const r = getRopeIndex(cfg, { inputIds: [1, 290, 293, 293, 291], batch: 1, length: 5, videoGridThw: [[2, 2, 2]] });
    expect(Array.from(r.positionIds)).toEqual([0, 1, 2, 4, 5, 0, 1, 2, 2, 5, 0, 1, 2, 2, 5]);
    expect(Array.from(r.ropeDeltas)).toEqual([1]);
  });

  it('rejects placeholder counts that do not match the grids', () => {
    expect(() => getRopeIndex(cfg, { inputIds: [290, 292, 291], batch: 1, length: 3, imageGridThw: [[1, 4, 4]] })).toThrow(RopeIndexError);
    expect(() => getRopeIndex(cfg, { inputIds: [1, 290, 292, 291], batch: 1, length: 4, videoGridThw: [[1, 2, 2]] })).toThrow(/image_grid_thw/);
  });
});

// ------------------------------------------------------------------ vision host maths

describe('vision window index', () => {
  const gridArb = fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 13 })), { minLength: 1, maxLength: 3 });

  it('is a permutation of merged tokens inside frames, windows contiguous and row-major, with an exact inverse', () => {
    fc.assert(fc.property(gridArb, fc.integer({ min: 1, max: 4 }), (raw, win) => {
      const m = 2;
      const grids = raw.map(([t, h, w]) => [t, 2 * h, 2 * w] as Grid);
      const cfg = { windowSize: win * m * 14, spatialMergeSize: m, patchSize: 14 };
      const { windowIndex: wi, cuWindowSeqlens: cu } = windowIndex(grids, cfg);
      const M = grids.reduce((s, [t, h, w]) => s + (t * h * w) / 4, 0);
      expect(wi.length).toBe(M);
      const inv = inversePermutation(wi);
      for (let i = 0; i < M; i++) expect(wi[inv[i]]).toBe(i);
      expect(cu[0]).toBe(0);
      expect(cu[cu.length - 1]).toBe(4 * M);
      for (let i = 1; i < cu.length; i++) expect(cu[i]).toBeGreaterThan(cu[i - 1]);
      // locate each merged token: (frame, row, col)
      const where: [number, number, number, number][] = [];
      let frame = 0;
      for (const [t, h, w] of grids) {
        for (let f = 0; f < t; f++, frame++) for (let r = 0; r < h / 2; r++) for (let c = 0; c < w / 2; c++) where.push([frame, r, c, w / 2]);
      }
      for (let s = 1; s < cu.length; s++) {
        const members = Array.from(wi.subarray(cu[s - 1] / 4, cu[s] / 4)).map((g) => where[g]);
        const f0 = members[0][0];
        const r0 = Math.floor(members[0][1] / win);
        const c0 = Math.floor(members[0][2] / win);
        for (const [f, r, c] of members) {
          expect(f).toBe(f0);
          expect(Math.floor(r / win)).toBe(r0);
          expect(Math.floor(c / win)).toBe(c0);
        }
        for (let i = 1; i < members.length; i++) {
          const [, ra, ca, wa] = members[i - 1];
          const [, rb, cb] = members[i];
          expect(rb * wa + cb).toBeGreaterThan(ra * wa + ca);
        }
      }
      // frames are contiguous in window order: the full-attention segments line up
      const frames = frameCuSeqlens(grids);
      expect(frames[frames.length - 1]).toBe(4 * M);
      for (const b of frames) expect(cu).toContain(b);
    }), { numRuns: 100 });
  });

  it('rot_pos_emb angles are (row, col) x inv_freq per patch in processor order', () => {
    const a = visionRotaryAngles([[1, 2, 4]], { hiddenSize: 32, numHeads: 2, spatialMergeSize: 2 });
    // head_dim 16 -> inv_freq over dim 8: [1, 10000^-0.25, 10000^-0.5, 10000^-0.75]; rows of
    // patches: merge group (0,0): (0,0) (0,1) (1,0) (1,1), then group (0,1): (0,2) (0,3) ...
    const rc = [[0, 0], [0, 1], [1, 0], [1, 1], [0, 2], [0, 3], [1, 2], [1, 3]];
    const inv = [1, 0.1, 0.01, 0.001];
    rc.forEach(([r, c], p) => {
      for (let k = 0; k < 4; k++) {
        expect(a[p * 8 + k]).toBeCloseTo(r * inv[k], 6);
        expect(a[p * 8 + 4 + k]).toBeCloseTo(c * inv[k], 6);
      }
    });
  });
});

// ------------------------------------------------------------------ M-RoPE and masks

describe('M-RoPE tables and the attention mask', () => {
  it('channel c rotates by the t / h / w position of its mrope section', () => {
    const cfg = { headDim: 16, ropeTheta: 10000, mropeSection: [2, 3, 3] as const };
    const pos = Int32Array.from([3, 5, 7]); // [3, 1, 1]: t=3, h=5, w=7
    const { cos } = mropeTables(pos, 1, 1, cfg);
    const axisOf = [0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 1, 1, 1, 2, 2, 2];
    for (let c = 0; c < 16; c++) {
      const inv = 1 / 10000 ** ((2 * (c % 8)) / 16);
      expect(cos[c]).toBeCloseTo(Math.cos([3, 5, 7][axisOf[c]] * inv), 5);
    }
  });

  it('is causal + padded keys (finfo.min), null when plain causal', () => {
    expect(attentionMask(null, 1, 3, 3, 0, null)).toBeNull();
    expect(attentionMask([1, 1, 1], 1, 3, 3, 0, 100)).toBeNull();
    const m = attentionMask([0, 1, 1], 1, 3, 3, 0, null)!;
    const X = FLOAT32_MIN;
    expect(Array.from(m)).toEqual([X, X, X, X, 0, X, X, 0, 0]);
    // one decode step at position 3 over 4 keys, window 2: keys <= 1 are out
    expect(Array.from(attentionMask([1, 1, 1, 1], 1, 1, 4, 3, 2)!)).toEqual([X, X, 0, 0]);
  });
});

// ------------------------------------------------------------------ configs

/** The parameters of a model as a checkpoint of `dtype` tensors that cannot be read. */
function shapeOnlySource(model: Qwen2_5_VLForConditionalGeneration, dtype: string): TensorSource {
  const shapes = new Map([...model.parameters()].map((p) => [p.key, p.shape]));
  return {
    names: [...shapes.keys()],
    info: (n) => ({ dtype, shape: shapes.get(n)! }),
    read: async (): Promise<{ dtype: DType; raw: RawArray; shape: readonly number[] }> => { throw new Error('nothing may be read'); },
  };
}

describe('configs', () => {
  it('the released Cosmos-Reason1-7B config builds: 8,292,166,656 parameters, 16.6 GB in bf16, nothing allocated', () => {
    const family = Qwen2_5_VLFamily();
    const model = family.build({ ...COSMOS_REASON1_7B_CONFIG });
    expect(model.parameterCount()).toBe(8_292_166_656);
    const src = shapeOnlySource(model, 'BF16');
    expect(plannedBytes(model, src, family.loadOptions!(model, src))).toBe(16_584_333_312);
    for (const p of model.parameters()) expect(p.loaded).toBe(false);
    const vision = Qwen2_5_VLFamily({ language: false }).build({ ...COSMOS_REASON1_7B_CONFIG });
    expect(vision.parameterCount()).toBe(676_550_144);
    const cfg = model.config;
    expect(cfg.text.headDim).toBe(128);
    expect(cfg.text.numKeyValueHeads).toBe(4);
    expect(cfg.vision.hiddenSize / cfg.vision.numHeads).toBe(80);
    expect(cfg.vision.inChannels).toBe(3);
    expect(cfg.eosTokenIds).toEqual([151645]);
    // the KV cache of a 32k context: 28 layers x 2 x 4 heads x 128 x 32768 x 4 bytes
    expect(VlmKVCache.bytes(cfg.text, 1, 32768)).toBe(3_758_096_384);
    const keys = new Set([...model.parameters()].map((p) => p.key));
    for (const k of ['visual.patch_embed.proj.weight', 'visual.blocks.31.mlp.down_proj.bias', 'visual.merger.mlp.2.weight',
      'model.layers.27.self_attn.k_proj.bias', 'model.norm.weight', 'lm_head.weight']) expect(keys.has(k), k).toBe(true);
    expect(keys.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
  });

  it('reads text fields under text_config (newer transformers) and checkpoint keys model.language_model.* / model.visual.*', async () => {
    const flat: Record<string, unknown> = { ...COSMOS_REASON1_7B_CONFIG };
    const textKeys = ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size', 'rope_scaling', 'rms_norm_eps', 'rope_theta'];
    const nested: Record<string, unknown> = { ...flat, text_config: Object.fromEntries(textKeys.map((k) => [k, flat[k]])) };
    for (const k of textKeys) delete nested[k];
    expect(parseVlmConfig(nested).text).toEqual(parseVlmConfig({ ...flat }).text);
    // a tiny model loads under the newer key names
    const dir = join(FIX, 'lm_forward');
    const cfgJson = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const src = await openSafetensors(join(dir, 'model.safetensors'));
    const renamed: TensorSource = {
      names: src.names.map((n) => (n.startsWith('visual.') ? `model.${n}` : n.startsWith('model.') ? `model.language_model.${n.slice(6)}` : n)),
      info: (n) => src.info(n.replace(/^model\.language_model\./, 'model.').replace(/^model\.visual\./, 'visual.')),
      read: (n) => src.read(n.replace(/^model\.language_model\./, 'model.').replace(/^model\.visual\./, 'visual.')),
    };
    const family = Qwen2_5_VLFamily();
    const m = family.build(cfgJson);
    const rep = await loadWeights(m, renamed, cpu, family.loadOptions!(m, renamed));
    expect(rep.loaded).toBe([...m.parameters()].length);
    m.dispose();
    await src.close();
  });

  it('loads a sharded bf16 checkpoint (index + 2 shards) and keeps it bf16, with the single file\'s logits', async () => {
    const dir = join(FIX, 'lm_forward_bf16');
    const tmp = mkdtempSync(join(tmpdir(), 'vlm-shards-'));
    try {
      const src = await openSafetensors(join(dir, 'model.safetensors'));
      const names = [...src.names];
      const shards: Record<string, Record<string, TensorToWrite>> = {};
      const weightMap: Record<string, string> = {};
      for (const [i, n] of names.entries()) {
        const shard = `model-0000${i % 2 ? 2 : 1}-of-00002.safetensors`;
        weightMap[n] = shard;
        const info = src.info(n);
        shards[shard] ??= {};
        shards[shard][n] = { dtype: info.dtype, shape: info.shape, raw: await src.readBytes(n) };
      }
      await src.close();
      for (const [file, tensors] of Object.entries(shards)) await writeSafetensors(join(tmp, file), tensors);
      writeFileSync(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
      copyFileSync(join(dir, 'config.json'), join(tmp, 'config.json'));
      const { model: sharded } = await loadModule(Qwen2_5_VLFamily(), tmp, cpu);
      const dtypes = new Set([...sharded.parameters()].map((p) => p.t.dtype));
      expect([...dtypes]).toEqual(['bf16']);
      const { model: single } = await loadModule(Qwen2_5_VLFamily(), join(dir, 'model.safetensors'), cpu);
      const c = await openSafetensors(join(dir, 'case.safetensors'));
      const ids = await c.read('input.input_ids');
      const px = await c.read('input.pixel_values');
      const g = Array.from((await c.read('input.image_grid_thw')).raw);
      await c.close();
      const inputs: ForwardInputs = {
        inputIds: { data: ids.raw, shape: ids.shape }, pixelValues: F.fromRaw(cpu, px.raw, px.shape, px.dtype), imageGridThw: [[g[0], g[1], g[2]]],
      };
      const a = await sharded.forward(inputs).logits.read();
      const b = await single.forward(inputs).logits.read();
      expect(Array.from(a)).toEqual(Array.from(b));
      inputs.pixelValues!.dispose();
      sharded.dispose();
      single.dispose();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('rejects configs it cannot honour', () => {
    const bad = (patch: Record<string, unknown>) => () => parseVlmConfig({ ...COSMOS_REASON1_7B_CONFIG, ...patch });
    expect(bad({ rope_scaling: { type: 'mrope', mrope_section: [16, 24, 16] } })).toThrow(VlmConfigError);
    expect(bad({ rope_scaling: { type: 'yarn', mrope_section: [16, 24, 24], factor: 4 } })).toThrow(/yarn/);
    expect(bad({ rope_scaling: null })).toThrow(/mrope_section/);
    expect(bad({ num_key_value_heads: 5 })).toThrow(VlmConfigError);
    expect(bad({ vision_config: { hidden_size: 1280, num_heads: 15 } })).toThrow(/num_heads/);
  });
});
