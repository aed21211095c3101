// Scaled dot-product attention on the WebGPU backend against the CPU oracle: GQA, causal,
// KV-cache length (kvLen < Lk), additive masks broadcast over batch and heads (with -inf),
// custom scale, any head dims (D and Dv differ), f32 / bf16 / f16 inputs, every kernel
// (attn_tex on software adapters, attn_flash for prefill, attn_decode for few queries) with and
// without split-K.
//
// Tolerance: atol 2e-5, rtol 1e-4. The oracle accumulates in f64; the kernels keep f32 dot
// products, an f32 online softmax (running max / sum, accumulator rescaled per key tile) and
// merge split-K partials in f32. A logit of magnitude S carries an f32 rounding error of about
// S * 2^-24 * sqrt(D), which moves its softmax weight by that relative amount, so the error
// grows with the logits: inputs here are in [-2, 2] with scale <= 0.4 (|logits| up to ~30),
// where outputs of magnitude ~1 stay within ~5e-6 of the oracle, also over thousands of keys.
// (With scale 1.5 and D = 140, logits in the hundreds, f32 itself is off by ~2e-5.)
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AttentionParams } from '../../src/engine/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { attentionTuning } from '../../src/engine/webgpu/ops/attention.js';
import { assertClose, awkwardDim, cpu, gpu, gpuRuns, randomValues } from '../harness.js';

const TOL = { atol: 2e-5, rtol: 1e-4 };
/**
 * Timeout of the random-shape tests: each draws pipelines of its own (attn_tex has one per row
 * tile, mask or not and operand dtype), and llvmpipe takes ~10-30 s to compile one (a shared
 * 2-core machine; Mesa's shader cache makes later runs fast).
 */
const COMPILES = 900_000;

/** The primitive's parameters, with the mask given as its broadcast shape and the scale optional. */
interface Case extends Omit<AttentionParams, 'scale' | 'maskB' | 'maskH'> {
  /** [maskB, maskH] or null */
  mask: [number, number] | null;
  /** fraction of mask entries set to -inf */
  maskHoles?: number;
  scale?: number;
  dtype?: DType;
  maskDtype?: DType;
  seed?: number;
}

function label(c: Case): string {
  return `attention B${c.B} Hq${c.Hq} Hkv${c.Hkv} Lq${c.Lq} Lk${c.Lk} kvLen${c.kvLen} D${c.D} Dv${c.Dv}` +
    `${c.causal ? ' causal' : ''}${c.mask ? ` mask[${c.mask}] ${c.maskDtype ?? 'f32'}` : ''}${c.scale !== undefined ? ` scale${c.scale}` : ''} ${c.dtype ?? 'f32'}`;
}

function maskValues(c: Case): Float32Array | null {
  if (!c.mask) return null;
  const n = c.mask[0] * c.mask[1] * c.Lq * c.kvLen;
  const m = randomValues(n, `${c.seed ?? 0}m`, -2, 1);
  const holes = randomValues(n, `${c.seed ?? 0}h`, 0, 1);
  for (let i = 0; i < n; i++) if (holes[i] < (c.maskHoles ?? 0.3)) m[i] = -Infinity;
  return m;
}

/** Run the case on both backends (optionally forcing a kernel / split count) and compare. */
async function check(c: Case, force: { path?: '' | 'tex' | 'flash' | 'decode'; splits?: number; flashRows?: number; decodeThreads?: number; oneRowMax?: number } = {}): Promise<Float32Array> {
  const be = await gpu();
  const dtype = c.dtype ?? 'f32';
  const s = c.seed ?? 0;
  const data = [
    { v: randomValues(c.B * c.Hq * c.Lq * c.D, `${s}q`, -2, 2), shape: [c.B, c.Hq, c.Lq, c.D], dtype },
    { v: randomValues(c.B * c.Hkv * c.Lk * c.D, `${s}k`, -2, 2), shape: [c.B, c.Hkv, c.Lk, c.D], dtype },
    { v: randomValues(c.B * c.Hkv * c.Lk * c.Dv, `${s}v`, -2, 2), shape: [c.B, c.Hkv, c.Lk, c.Dv], dtype },
  ];
  const mv = maskValues(c);
  if (mv && c.mask) data.push({ v: mv, shape: [c.mask[0], c.mask[1], c.Lq, c.kvLen], dtype: c.maskDtype ?? 'f32' });
  const run = (backend: typeof cpu | typeof be): Tensor[] => {
    const ts = data.map((d) => F.fromArray(backend, d.v, d.shape, d.dtype));
    const [q, k, v, mask] = ts;
    return [...ts, F.attention(q, k, v, { causal: c.causal, kvLen: c.kvLen, mask: mask ?? null, scale: c.scale })];
  };
  const cpuTs = run(cpu);
  attentionTuning.forcePath = force.path ?? '';
  attentionTuning.forceSplits = force.splits ?? 0;
  attentionTuning.flashRows = force.flashRows ?? 0;
  attentionTuning.decodeThreads = force.decodeThreads ?? 0;
  attentionTuning.texOneRowMax = force.oneRowMax ?? 2;
  let gpuTs: Tensor[];
  try {
    gpuTs = run(be);
  } finally {
    attentionTuning.forcePath = '';
    attentionTuning.forceSplits = 0;
    attentionTuning.flashRows = 0;
    attentionTuning.decodeThreads = 0;
    attentionTuning.texOneRowMax = 2;
  }
  const want = cpuTs[cpuTs.length - 1];
  const got = gpuTs[gpuTs.length - 1];
  expect(got.shape).toEqual([c.B, c.Hq, c.Lq, c.Dv]);
  expect(got.dtype).toBe('f32');
  const out = (await got.read()) as Float32Array;
  assertClose(out, await want.read(), TOL, `${label(c)} ${force.path ?? ''}${force.splits ? ` splits ${force.splits}` : ''}`);
  for (const t of [...cpuTs, ...gpuTs]) t.dispose();
  return out;
}

/** Random cases: awkward sizes for every dim, GQA, causal, cache slack, masks of every broadcast. */
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 3 }),
    group: fc.constantFrom(1, 2, 3),
    Lq: fc.oneof(fc.integer({ min: 1, max: 5 }), awkwardDim(40)),
    extraKeys: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 50 })),
    spare: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 7 })),
    D: fc.oneof(fc.constantFrom(32, 64, 80, 128), awkwardDim(140)),
    Dv: fc.oneof(fc.constantFrom(32, 64, 80, 128), awkwardDim(140)),
    causal: fc.boolean(),
    mask: fc.constantFrom<[number, number] | 'none'>('none', [1, 1], [1, 0], [0, 1], [0, 0]),
    scale: fc.option(fc.double({ min: 0.02, max: 0.4, noNaN: true }), { nil: undefined }),
    dtype: fc.constantFrom<DType>('f32', 'f32', 'bf16', 'f16'),
    seed: fc.nat(),
  })
  .map((r) => {
    const Hq = r.Hkv * r.group;
    const kvLen = r.Lq + r.extraKeys;
    // [1|B, 1|Hq]: 0 stands for the full extent
    const mask: [number, number] | null = r.mask === 'none' ? null : [r.mask[0] || r.B, r.mask[1] || Hq];
    return { B: r.B, Hq, Hkv: r.Hkv, Lq: r.Lq, Lk: kvLen + r.spare, kvLen, D: r.D, Dv: r.Dv, causal: r.causal, mask, scale: r.scale, dtype: r.dtype, seed: r.seed };
  });

describe('webgpu attention', () => {
  it('matches the oracle on random shapes (GQA, causal, kvLen < Lk, broadcast masks, dtypes)', async () => {
    await fc.assert(fc.asyncProperty(caseArb, async (c) => { await check(c); }), gpuRuns(14));
  }, COMPILES);

  it('every kernel and the split-K combine agree with the oracle on the same shapes', async () => {
    await fc.assert(fc.asyncProperty(caseArb, fc.constantFrom<'tex' | 'flash' | 'decode'>('tex', 'flash', 'decode'), fc.constantFrom(0, 2, 3),
      async (c, path, splits) => { await check(c, { path, splits }); }), gpuRuns(10));
  }, COMPILES);

  it('a row whose every key is masked out gives zeros, as the oracle (every kernel, with splits)', async () => {
    const c: Case = { B: 1, Hq: 2, Hkv: 1, Lq: 3, Lk: 40, kvLen: 37, D: 16, Dv: 8, causal: false, mask: [1, 2], maskHoles: 0.2, seed: 7 };
    const mv = maskValues(c)!;
    for (let j = 0; j < c.kvLen; j++) mv[(1 * c.Lq + 2) * c.kvLen + j] = -Infinity; // head 1, query 2
    for (const [path, splits, oneRow] of [['tex', 0, 2], ['tex', 3, 2], ['tex', 0, 1e9], ['tex', 2, 1e9], ['flash', 0, 2], ['decode', 0, 2], ['flash', 3, 2], ['decode', 2, 2]] as const) {
      const be = await gpu();
      const mk = (backend: typeof cpu | typeof be) => [
        F.fromArray(backend, randomValues(c.Hq * c.Lq * c.D, 'q'), [1, c.Hq, c.Lq, c.D]),
        F.fromArray(backend, randomValues(c.Lk * c.D, 'k'), [1, 1, c.Lk, c.D]),
        F.fromArray(backend, randomValues(c.Lk * c.Dv, 'v'), [1, 1, c.Lk, c.Dv]),
        F.fromArray(backend, mv, [1, c.Hq, c.Lq, c.kvLen]),
      ];
      const [q1, k1, v1, m1] = mk(cpu);
      const [q2, k2, v2, m2] = mk(be);
      const want = await F.attention(q1, k1, v1, { mask: m1, kvLen: c.kvLen }).read();
      attentionTuning.forcePath = path;
      attentionTuning.forceSplits = splits;
      attentionTuning.texOneRowMax = oneRow;
      const got = await F.attention(q2, k2, v2, { mask: m2, kvLen: c.kvLen }).read();
      attentionTuning.forcePath = '';
      attentionTuning.forceSplits = 0;
      attentionTuning.texOneRowMax = 2;
      const row = ((1 * c.Lq) + 2) * c.Dv;
      expect(Array.from(got.slice(row, row + c.Dv))).toEqual(new Array(c.Dv).fill(0));
      assertClose(got, want, TOL, `fully masked row (${path}, splits ${splits}, one-row up to ${oneRow})`);
    }
  });

  it('attn_tex on the shapes it takes (4-aligned head dims up to 128, every row tile, GQA, splits)', async () => {
    const texArb = fc.record({
      c: caseArb,
      D: fc.integer({ min: 1, max: 32 }).map((n) => 4 * n),
      Dv: fc.integer({ min: 1, max: 32 }).map((n) => 4 * n),
      splits: fc.constantFrom(0, 0, 2, 5),
      // the one-row entry (attn_tex_d1) on any number of rows, or only where it runs by default
      oneRowMax: fc.constantFrom(2, 1e9),
    });
    await fc.assert(fc.asyncProperty(texArb, async ({ c, D, Dv, splits, oneRowMax }) => {
      await check({ ...c, D, Dv }, { path: 'tex', splits, oneRowMax });
    }), gpuRuns(10));
  }, COMPILES);

  it('a fully padded row (every key at finfo.min, as transformers / T5 mask) averages its keys, as the oracle', async () => {
    const c: Case = { B: 1, Hq: 2, Hkv: 1, Lq: 5, Lk: 21, kvLen: 21, D: 8, Dv: 12, causal: false, mask: [1, 1], maskHoles: 0, seed: 8 };
    const be = await gpu();
    const mv = maskValues(c)!;
    for (let j = 0; j < c.kvLen; j++) mv[3 * c.kvLen + j] = -3.4028234663852886e38;
    for (let j = 0; j < c.kvLen; j += 2) mv[1 * c.kvLen + j] = -3.4028234663852886e38;
    const mk = (backend: typeof cpu | typeof be) => [
      F.fromArray(backend, randomValues(c.Hq * c.Lq * c.D, 'q'), [1, c.Hq, c.Lq, c.D]),
      F.fromArray(backend, randomValues(c.Lk * c.D, 'k'), [1, 1, c.Lk, c.D]),
      F.fromArray(backend, randomValues(c.Lk * c.Dv, 'v'), [1, 1, c.Lk, c.Dv]),
      F.fromArray(backend, mv, [1, 1, c.Lq, c.kvLen]),
    ];
    const [q1, k1, v1, m1] = mk(cpu);
    const want = await F.attention(q1, k1, v1, { mask: m1 }).read();
    const [q2, k2, v2, m2] = mk(be);
    for (const [path, splits, oneRow] of [['tex', 0, 2], ['tex', 2, 2], ['tex', 0, 1e9], ['tex', 3, 1e9], ['flash', 0, 2], ['decode', 0, 2]] as const) {
      attentionTuning.forcePath = path;
      attentionTuning.forceSplits = splits;
      attentionTuning.texOneRowMax = oneRow;
      try {
        assertClose(await F.attention(q2, k2, v2, { mask: m2 }).read(), want, TOL, `finfo.min row (${path}, splits ${splits}, one-row up to ${oneRow})`);
      } finally {
        attentionTuning.forcePath = '';
        attentionTuning.forceSplits = 0;
        attentionTuning.texOneRowMax = 2;
      }
    }
  });

  it('prefill over 4096 keys (multi-tile, automatic split-K), causal and not', async () => {
    await check({ B: 1, Hq: 1, Hkv: 1, Lq: 64, Lk: 4096, kvLen: 4096, D: 64, Dv: 64, causal: false, mask: null, seed: 1 });
    await check({ B: 1, Hq: 2, Hkv: 1, Lq: 64, Lk: 4096, kvLen: 4000, D: 64, Dv: 64, causal: true, mask: null, seed: 2 });
  });

  it('decode: one query over a long KV cache with GQA (split over workgroups), bf16 cache and mask', async () => {
    await check({ B: 2, Hq: 8, Hkv: 2, Lq: 1, Lk: 4096, kvLen: 3001, D: 128, Dv: 128, causal: true, mask: null, seed: 3 });
    await check({ B: 1, Hq: 4, Hkv: 4, Lq: 1, Lk: 2048, kvLen: 2048, D: 64, Dv: 64, causal: false, mask: [1, 1], maskHoles: 0.1, dtype: 'bf16', maskDtype: 'bf16', seed: 4 });
  });

  it('head dims that occur (32, 64, 80, 128), up to 256, wider Dv than one workgroup, D = 1', async () => {
    for (const [D, Dv] of [[32, 32], [80, 80], [256, 256], [256, 300], [1, 1], [3, 257]]) {
      await check({ B: 1, Hq: 2, Hkv: 1, Lq: 19, Lk: 45, kvLen: 45, D, Dv, causal: true, mask: null, seed: D + Dv });
      await check({ B: 1, Hq: 2, Hkv: 1, Lq: 2, Lk: 45, kvLen: 45, D, Dv, causal: false, mask: null, seed: D + Dv });
    }
  });

  it('more than 65535 workgroups (2D grid folding), every kernel', async () => {
    await check({ B: 1, Hq: 1050000, Hkv: 1050000, Lq: 1, Lk: 2, kvLen: 2, D: 4, Dv: 4, causal: false, mask: null, seed: 9 }, { path: 'tex' });
    // the smallest workgroups each kernel allows keep this cheap on a software adapter
    const c: Case = { B: 1, Hq: 66000, Hkv: 66000, Lq: 1, Lk: 2, kvLen: 2, D: 2, Dv: 2, causal: false, mask: null, seed: 5 };
    await check(c, { path: 'flash', flashRows: 4 });
    await check(c, { path: 'decode', decodeThreads: 8 });
  });

  it('size-1 everything and zero-size outputs', async () => {
    await check({ B: 1, Hq: 1, Hkv: 1, Lq: 1, Lk: 1, kvLen: 1, D: 1, Dv: 1, causal: true, mask: [1, 1], maskHoles: 0, seed: 6 });
    const be = await gpu();
    const q = F.zeros(be, [0, 2, 3, 4]);
    const k = F.zeros(be, [0, 1, 5, 4]);
    const v = F.zeros(be, [0, 1, 5, 6]);
    const o = F.attention(q, k, v);
    expect(o.shape).toEqual([0, 2, 3, 6]);
    expect((await o.read()).length).toBe(0);
    const o2 = F.attention(F.zeros(be, [1, 2, 3, 4]), F.zeros(be, [1, 1, 5, 4]), F.zeros(be, [1, 1, 5, 0]));
    expect(o2.shape).toEqual([1, 2, 3, 0]);
  });
});
