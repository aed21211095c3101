// Data movement on the WebGPU backend against the CPU oracle: strided (slice, permute, flip, pad,
// expand, repeat-interleave, nearest upsampling), setSlice (concat, KV-cache appends) and gather
// (embedding, indexSelect).
//
// Tolerance: none. These ops only move values: f32 outputs must equal the oracle exactly (bf16 and
// f16 inputs widen exactly), and i32 inputs give i32 outputs that are bit-exact copies, including
// ids far beyond 2^24 that an f32 detour would round.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StridedParams } from '../../src/engine/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import { ShapeError, type Tensor, numel, stridesOf } from '../../src/engine/tensor.js';
import { movementTuning, stridedKernel } from '../../src/engine/webgpu/ops/movement.js';
import { assertClose, awkwardDim, cpu, gpu, gpuRuns, randomInts, randomValues, shapeArb } from '../harness.js';

const EXACT = { atol: 0, rtol: 0 };
const DTYPES: DType[] = ['f32', 'bf16', 'f16', 'i32'];
const dtypeArb = fc.constantFrom(...DTYPES);

/**
 * Values for a tensor of `dtype`: floats in [-4, 4), or i32 over the whole range (beyond f32's 2^24).
 * The oracle's setSlice widens its source to f32 even into an i32 destination, so tests that go
 * through setSlice (concat, tile) keep i32 values within +-2^24, where that is exact; the bit-exact
 * i32 block at the end covers larger ids by hand.
 */
function values(dtype: DType, n: number, seed: number, small = false): ArrayLike<number> {
  if (dtype !== 'i32') return randomValues(n, seed, -4, 4);
  return small ? randomInts(n, seed, -(2 ** 24), 2 ** 24) : randomInts(n, seed, -(2 ** 31), 2 ** 31 - 1);
}

/** Build the same inputs on both backends, apply op, and require identical shape, dtype and values. */
async function same(
  label: string,
  inputs: { shape: readonly number[]; dtype: DType; seed: number; values?: ArrayLike<number> }[],
  op: (...xs: Tensor[]) => Tensor,
  smallInts = false,
): Promise<void> {
  const be = await gpu();
  const data = inputs.map((i) => i.values ?? values(i.dtype, numel(i.shape), i.seed, smallInts));
  const c = inputs.map((i, k) => F.fromArray(cpu, data[k], i.shape, i.dtype));
  const g = inputs.map((i, k) => F.fromArray(be, data[k], i.shape, i.dtype));
  const want = op(...c);
  const got = op(...g);
  expect(got.shape, `${label}: shape`).toEqual(want.shape);
  expect(got.dtype, `${label}: dtype`).toBe(want.dtype);
  assertClose(await got.read(), await want.read(), EXACT, label);
  for (const t of [...c, ...g, want, got]) t.dispose();
}

/** A shape and a permutation of its axes. */
const permArb = (minRank: number, maxRank: number, maxDim: number) =>
  shapeArb(minRank, maxRank, maxDim).chain((shape) =>
    fc.shuffledSubarray(shape.map((_, i) => i), { minLength: shape.length, maxLength: shape.length })
      .map((perm) => ({ shape, perm })));

describe('webgpu strided: permute', () => {
  it('any permutation of rank 1-6, every input dtype (i32 stays i32, exact)', async () => {
    await fc.assert(fc.asyncProperty(permArb(1, 6, 7), dtypeArb, fc.nat(), async ({ shape, perm }, dtype, seed) => {
      await same(`permute ${shape} by ${perm} (${dtype})`, [{ shape, dtype, seed }], (x) => F.permute(x, perm));
    }), gpuRuns(30));
  });

  it('rank 8 where no axes merge, and transposes of awkward 2d/3d shapes', async () => {
    await same('rank 8', [{ shape: [2, 3, 2, 5, 2, 3, 2, 2], dtype: 'f32', seed: 1 }], (x) => F.permute(x, [7, 5, 3, 1, 0, 2, 4, 6]));
    await fc.assert(fc.asyncProperty(awkwardDim(70), awkwardDim(70), awkwardDim(5), dtypeArb, async (a, b, c, dtype) => {
      await same(`transpose [${a}, ${b}]`, [{ shape: [a, b], dtype, seed: a * b }], (x) => F.transpose(x, 0, 1));
      await same(`permute [${c}, ${a}, ${b}]`, [{ shape: [c, a, b], dtype, seed: c }], (x) => F.permute(x, [2, 0, 1]));
    }), gpuRuns(10));
  });

  it('rank above 8 after merging is refused, not miscomputed', async () => {
    const be = await gpu();
    const x = F.zeros(be, new Array(9).fill(2));
    expect(() => F.permute(x, [8, 7, 6, 5, 4, 3, 2, 1, 0])).toThrow(ShapeError);
    x.dispose();
  });

  it('attention head transposes and channel moves on tiles (tiled and per-element kernels both match)', async () => {
    const cases: { shape: number[]; perm: number[] }[] = [
      { shape: [2, 37, 3, 64], perm: [0, 2, 1, 3] }, // [B, L, H, D] -> [B, H, L, D]
      { shape: [2, 3, 37, 64], perm: [0, 2, 1, 3] }, // and back
      { shape: [1, 3, 5, 19, 23], perm: [0, 2, 3, 4, 1] }, // channel-first -> channel-last (C = 3)
      { shape: [1, 5, 19, 23, 3], perm: [0, 4, 1, 2, 3] }, // channel-last -> channel-first
      { shape: [2, 16, 7, 9, 40], perm: [0, 2, 3, 4, 1] }, // C = 16
      { shape: [3, 65, 97], perm: [0, 2, 1] }, // several 32 x 32 tiles with ragged edges
      { shape: [33, 5, 41], perm: [2, 1, 0] },
      { shape: [6, 7, 8, 9], perm: [3, 2, 0, 1] },
    ];
    for (const { shape, perm } of cases) {
      for (const dtype of ['f32', 'bf16', 'i32'] as DType[]) {
        await same(`permute ${shape} by ${perm} (${dtype}, tiled)`, [{ shape, dtype, seed: 3 }], (x) => F.permute(x, perm));
        movementTuning.tile = false;
        try {
          await same(`permute ${shape} by ${perm} (${dtype}, per element)`, [{ shape, dtype, seed: 3 }], (x) => F.permute(x, perm));
        } finally {
          movementTuning.tile = true;
        }
      }
    }
    // the cases above really exercise the tiled kernel
    const st = stridesOf([3, 65, 97]);
    const p: StridedParams = {
      dims: [0, 2, 1].map((d) => ({ size: [3, 65, 97][d], start: 0, step: 1, rep: 1, inSize: [3, 65, 97][d], inStride: st[d] })),
      border: 'constant', value: 0,
    };
    expect(stridedKernel(p)).toBe('tile');
  });
});

describe('webgpu strided: slice, flip, pad, expand, repeat', () => {
  it('slice with steps and negative bounds, and flip', async () => {
    const arb = shapeArb(1, 5, 9).chain((shape) => fc.record({
      shape: fc.constant(shape),
      axis: fc.integer({ min: 0, max: shape.length - 1 }),
      start: fc.integer({ min: -12, max: 12 }),
      end: fc.option(fc.integer({ min: -12, max: 12 }), { nil: undefined }),
      step: fc.integer({ min: 1, max: 4 }),
    }));
    await fc.assert(fc.asyncProperty(arb, dtypeArb, async ({ shape, axis, start, end, step }, dtype) => {
      await same(`slice ${shape} axis ${axis} [${start}:${end}:${step}] (${dtype})`, [{ shape, dtype, seed: 7 }], (x) => F.slice(x, axis, start, end, step));
      await same(`flip ${shape} axis ${axis} (${dtype})`, [{ shape, dtype, seed: 8 }], (x) => F.flip(F.slice(x, axis, start, end, step), axis));
    }), gpuRuns(20));
  });

  it('pad: constant (any value), replicate and PyTorch reflect, pads up to the axis length', async () => {
    const arb = shapeArb(1, 4, 7).chain((shape) => fc.record({
      shape: fc.constant(shape),
      pads: fc.tuple(...shape.map((d) => fc.tuple(fc.integer({ min: 0, max: d - 1 }), fc.integer({ min: 0, max: d - 1 })))),
      mode: fc.constantFrom('constant', 'replicate', 'reflect') as fc.Arbitrary<'constant' | 'replicate' | 'reflect'>,
      value: fc.constantFrom(0, -1.5, 7, -3),
    }));
    await fc.assert(fc.asyncProperty(arb, dtypeArb, async ({ shape, pads, mode, value }, dtype) => {
      await same(`pad ${shape} ${JSON.stringify(pads)} ${mode} ${value} (${dtype})`, [{ shape, dtype, seed: 9 }], (x) => F.pad(x, pads, mode, value));
    }), gpuRuns(25));
  });

  it('pad: replicate beyond the axis, constant padding of an empty axis, padding a size-1 axis', async () => {
    await same('replicate long', [{ shape: [2, 3], dtype: 'f32', seed: 1 }], (x) => F.pad(x, [[0, 0], [5, 7]], 'replicate'));
    await same('reflect size 2', [{ shape: [2, 2], dtype: 'bf16', seed: 1 }], (x) => F.pad(x, [[1, 1], [1, 1]], 'reflect'));
    await same('constant empty', [{ shape: [0, 3], dtype: 'f32', seed: 1 }], (x) => F.pad(x, [[2, 1]], 'constant', 4));
    await same('constant empty i32', [{ shape: [3, 0], dtype: 'i32', seed: 1 }], (x) => F.pad(x, [[0, 0], [1, 1]], 'constant', -7));
    await same('replicate size 1', [{ shape: [1, 4], dtype: 'f16', seed: 1 }], (x) => F.pad(x, [[3, 2], [0, 1]], 'replicate'));
    await same('conv-style causal time pad', [{ shape: [1, 3, 5, 6, 7], dtype: 'f32', seed: 2 }], (x) => F.pad(x, [[0, 0], [0, 0], [2, 0], [1, 1], [1, 1]], 'replicate'));
  });

  it('expand, repeatInterleave, upsampleNearest and tile', async () => {
    const arb = shapeArb(1, 4, 5).chain((shape) => fc.record({
      shape: fc.constant(shape),
      // a broadcastable source: some axes squeezed to 1, maybe fewer leading axes
      mask: fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
      drop: fc.integer({ min: 0, max: shape.length - 1 }),
      axis: fc.integer({ min: 0, max: shape.length - 1 }),
      times: fc.integer({ min: 1, max: 4 }),
      factors: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: Math.min(3, shape.length) }),
    }));
    await fc.assert(fc.asyncProperty(arb, dtypeArb, async ({ shape, mask, drop, axis, times, factors }, dtype) => {
      const src = shape.map((d, i) => (mask[i] ? 1 : d)).slice(drop);
      await same(`expand ${src} -> ${shape} (${dtype})`, [{ shape: src, dtype, seed: 4 }], (x) => F.expand(x, shape));
      await same(`repeatInterleave ${shape} x${times} axis ${axis} (${dtype})`, [{ shape, dtype, seed: 5 }], (x) => F.repeatInterleave(x, times, axis));
      await same(`upsampleNearest ${shape} by ${factors} (${dtype})`, [{ shape, dtype, seed: 6 }], (x) => F.upsampleNearest(x, factors));
      await same(`tile ${shape} x${times} axis ${axis} (${dtype})`, [{ shape, dtype, seed: 7 }], (x) => F.tile(x, times, axis), true);
    }), gpuRuns(15));
  });

  it('long last axes (row-wise kernel): pads, flips, steps and repeats on every axis', async () => {
    const arb = fc.record({
      // last axis 32..1031: every lanes-per-row choice (32..256) and ragged column chunks
      shape: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }),
        fc.oneof(fc.integer({ min: 32, max: 300 }), fc.constantFrom(511, 513, 1024, 1031))),
      mode: fc.constantFrom('constant', 'replicate', 'reflect') as fc.Arbitrary<'constant' | 'replicate' | 'reflect'>,
      before: fc.integer({ min: 0, max: 30 }),
      after: fc.integer({ min: 0, max: 30 }),
      outer: fc.integer({ min: 0, max: 3 }),
      step: fc.integer({ min: 1, max: 3 }),
      rep: fc.integer({ min: 1, max: 3 }),
      dtype: dtypeArb,
    });
    await fc.assert(fc.asyncProperty(arb, async ({ shape, mode, before, after, outer, step, rep, dtype }) => {
      const [a, b, S] = shape;
      const o = Math.min(outer, b - 1);
      const pads: [number, number][] = [[0, 0], [o, o], [before, after]];
      await same(`pad ${shape} ${JSON.stringify(pads)} ${mode} (${dtype})`, [{ shape, dtype, seed: S }], (x) => F.pad(x, pads, mode, 2.5));
      await same(`flip/step ${shape} step ${step} (${dtype})`, [{ shape, dtype, seed: S + 1 }], (x) => F.slice(F.flip(x, 2), 2, 1, S, step));
      await same(`repeat ${shape} x${rep} (${dtype})`, [{ shape, dtype, seed: S + 2 }], (x) => F.upsampleNearest(F.repeatInterleave(x, rep, 0), [rep, 1]));
      await same(`permute ${shape} keeping the last axis (${dtype})`, [{ shape: [b, a, 3, S], dtype, seed: S + 3 }], (x) => F.permute(x, [2, 0, 1, 3]));
    }), gpuRuns(12));
    const st = stridesOf([4, 5, 64]);
    const dims = [1, 0, 2].map((d) => ({ size: [4, 5, 64][d], start: 0, step: 1, rep: 1, inSize: [4, 5, 64][d], inStride: st[d] }));
    expect(stridedKernel({ dims, border: 'constant', value: 0 }, 'i32')).toBe('rows');
    expect(stridedKernel({ dims, border: 'constant', value: 0 }, 'f32')).toBe('rows4');
  });

  it('contiguous, 4-aligned rows (rows4_f32): [B, C, T, H, W] permutes, causal pads in time, slices, against the per-element kernels too', async () => {
    const arb = fc.record({
      // H * W a multiple of 4 (rows4) or not (the other kernels); chunks of 16 elements ragged at the end
      shape: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 9 }), fc.oneof(fc.constantFrom(4, 8, 12, 20, 64), fc.integer({ min: 1, max: 13 }))),
      mode: fc.constantFrom('constant', 'replicate', 'reflect') as fc.Arbitrary<'constant' | 'replicate' | 'reflect'>,
      front: fc.integer({ min: 0, max: 4 }),
      start: fc.integer({ min: 0, max: 3 }),
    });
    await fc.assert(fc.asyncProperty(arb, async ({ shape, mode, front, start }) => {
      const [, , T] = shape;
      const f = mode === 'reflect' ? Math.min(front, T - 1) : front;
      for (const rows4 of [true, false]) {
        movementTuning.rows4 = rows4;
        try {
          await same(`permute ${shape} [0,2,1,3,4] rows4=${rows4}`, [{ shape, dtype: 'f32', seed: 1 }], (x) => F.permute(x, [0, 2, 1, 3, 4]));
          await same(`pad ${shape} time ${f} ${mode} rows4=${rows4}`, [{ shape, dtype: 'f32', seed: 2 }], (x) => F.pad(x, [[0, 0], [0, 0], [f, 0]], mode, -1.5));
          await same(`slice ${shape} time ${Math.min(start, T - 1)}.. rows4=${rows4}`, [{ shape, dtype: 'f32', seed: 3 }], (x) => F.slice(x, 2, Math.min(start, T - 1), T));
          await same(`bf16 permute ${shape} rows4=${rows4}`, [{ shape, dtype: 'bf16', seed: 4 }], (x) => F.permute(x, [0, 2, 1, 3, 4]));
        } finally {
          movementTuning.rows4 = true;
        }
      }
    }), gpuRuns(20));
  });

  it('contiguous copies, composed movements and zero-size outputs', async () => {
    for (const dtype of DTYPES) {
      await same(`contiguous (${dtype})`, [{ shape: [3, 5, 7], dtype, seed: 1 }], (x) => F.contiguous(x));
      await same(`slice rows (${dtype})`, [{ shape: [9, 13], dtype, seed: 2 }], (x) => F.slice(x, 0, 2, 7));
      await same(`chain (${dtype})`, [{ shape: [4, 6, 5], dtype, seed: 3 }],
        (x) => F.flip(F.slice(F.permute(F.pad(x, [[1, 2], [0, 0], [3, 1]], 'reflect'), [2, 0, 1]), 1, 1, -1, 2), 0));
      await same(`empty slice (${dtype})`, [{ shape: [4, 5], dtype, seed: 4 }], (x) => F.slice(x, 1, 3, 3));
      await same(`scalar out (${dtype})`, [{ shape: [4, 5], dtype, seed: 5 }], (x) => F.slice(F.slice(x, 0, 2, 3), 1, 4, 5));
      await same(`empty in (${dtype})`, [{ shape: [0, 5], dtype, seed: 6 }], (x) => F.permute(x, [1, 0]));
    }
  });

  it('outputs past 65535 workgroups (2D dispatch grid)', async () => {
    // 2^24 + 2^20 outputs of a 16-element input: 69632 workgroups of 256 (checked directly, the
    // oracle would take seconds here)
    const be = await gpu();
    const n = 2 ** 24 + 2 ** 20;
    const x = F.fromArray(be, Float32Array.from({ length: 16 }, (_, i) => i), [1, 16]);
    for (const y of [F.expand(x, [n / 16, 16]), F.expand(F.fromArray(be, [5, -3], [1, 2], 'i32'), [n / 2, 2])]) {
      const got = await y.read();
      expect(got.length).toBe(n);
      const want = (i: number) => (y.dtype === 'i32' ? (i % 2 ? -3 : 5) : i % 16);
      let bad = -1;
      for (let i = 0; i < n && bad < 0; i++) if (got[i] !== want(i)) bad = i;
      expect(bad, `first wrong element of ${y.dtype} expand`).toBe(-1);
    }
  });
});

describe('webgpu setSlice and concat', () => {
  it('concat of random shapes along any axis, mixed input dtypes; all-i32 stays i32', async () => {
    const arb = shapeArb(1, 4, 6).chain((shape) => fc.record({
      shape: fc.constant(shape),
      axis: fc.integer({ min: 0, max: shape.length - 1 }),
      extents: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }),
      dtypes: fc.array(dtypeArb, { minLength: 4, maxLength: 4 }),
      allInt: fc.boolean(),
    }));
    await fc.assert(fc.asyncProperty(arb, async ({ shape, axis, extents, dtypes, allInt }) => {
      const inputs = extents.map((e, k) => {
        const s = [...shape];
        s[axis] = e;
        return { shape: s, dtype: allInt ? 'i32' as DType : dtypes[k], seed: k + 11 };
      });
      await same(`concat ${inputs.map((i) => `${i.shape}:${i.dtype}`).join(' ')} axis ${axis}`, inputs, (...xs) => F.concat(xs, axis), true);
    }), gpuRuns(20));
  });

  it('setSlice at random offsets into f32 and i32 destinations (i32 <- float truncates, as the oracle)', async () => {
    const arb = shapeArb(1, 5, 7).chain((dst) => fc.record({
      dst: fc.constant(dst),
      box: fc.tuple(...dst.map((d) => fc.integer({ min: 0, max: d }).chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: 0, max: d - s }))))),
      dstType: fc.constantFrom('f32', 'i32') as fc.Arbitrary<DType>,
      srcType: dtypeArb,
    }));
    await fc.assert(fc.asyncProperty(arb, async ({ dst, box, dstType, srcType }) => {
      const starts = box.map(([s]) => s);
      const src = box.map(([, e]) => e);
      await same(`setSlice ${src}:${srcType} into ${dst}:${dstType} at ${starts}`,
        [{ shape: dst, dtype: dstType, seed: 1 }, { shape: src, dtype: srcType, seed: 2 }],
        (d, s) => { F.setSlice(d, s, starts); return d; }, true);
    }), gpuRuns(25));
  });

  it('KV-cache append: one token per step into [B, H, Lmax, D], then a block of tokens', async () => {
    const be = await gpu();
    const [B, H, Lmax, D] = [2, 3, 9, 40];
    const caches = [F.zeros(cpu, [B, H, Lmax, D]), F.zeros(be, [B, H, Lmax, D])];
    for (let t = 0; t < 5; t++) {
      const tok = randomValues(B * H * D, `tok${t}`);
      for (const c of caches) {
        const x = F.fromArray(c.backend, tok, [B, H, 1, D], t % 2 ? 'bf16' : 'f32');
        F.setSlice(c, x, [0, 0, t, 0]);
        x.dispose();
      }
    }
    const block = randomValues(B * H * 3 * D, 'block');
    for (const c of caches) F.setSlice(c, F.fromArray(c.backend, block, [B, H, 3, D]), [0, 0, 5, 0]);
    assertClose(await caches[1].read(), await caches[0].read(), EXACT, 'kv cache');
    // [B, L, H, D] layout: the token is a strided box in the destination
    await same('blhd append', [{ shape: [2, 7, 3, 8], dtype: 'f32', seed: 1 }, { shape: [2, 1, 3, 8], dtype: 'f32', seed: 2 }],
      (d, s) => { F.setSlice(d, s, [0, 4, 0, 0]); return d; });
  });

  it('writing a tensor into its own storage reads it before writing', async () => {
    await same('self write', [{ shape: [3, 4], dtype: 'f32', seed: 1 }], (d) => { F.setSlice(d, d.reshape([3, 4]), [0, 0]); return d; });
    await same('self write i32', [{ shape: [2, 6], dtype: 'i32', seed: 1 }], (d) => { F.setSlice(d, d.reshape([2, 6]), [0, 0]); return d; }, true);
  });
});

describe('webgpu gather', () => {
  it('embedding rows of f32/bf16/f16/i32 tables; ids outside [0, V) give zero rows', async () => {
    const arb = fc.record({
      V: awkwardDim(70),
      D: awkwardDim(70),
      idShape: shapeArb(1, 3, 6),
      dtype: dtypeArb,
      seed: fc.nat(),
    });
    await fc.assert(fc.asyncProperty(arb, async ({ V, D, idShape, dtype, seed }) => {
      const ids = randomInts(numel(idShape), seed, -3, V + 3);
      await same(`embedding [${V}, ${D}] (${dtype}) by ${idShape}`,
        [{ shape: [V, D], dtype, seed }, { shape: idShape, dtype: 'i32', seed, values: ids }],
        (t, i) => F.embedding(t, i));
    }), gpuRuns(20));
  });

  it('extreme ids, empty id lists and a wide bf16 row', async () => {
    const ids = Int32Array.from([0, -(2 ** 31), 2 ** 31 - 1, 4, 5, 4, -1]);
    await same('extreme ids', [{ shape: [5, 3], dtype: 'bf16', seed: 1 }, { shape: [7], dtype: 'i32', seed: 0, values: ids }], (t, i) => F.embedding(t, i));
    await same('no ids', [{ shape: [5, 3], dtype: 'f32', seed: 1 }, { shape: [0], dtype: 'i32', seed: 0 }], (t, i) => F.embedding(t, i));
    await same('wide row', [{ shape: [11, 4099], dtype: 'bf16', seed: 2 }, { shape: [2, 3], dtype: 'i32', seed: 0, values: [10, 0, 3, 3, 11, 7] }], (t, i) => F.embedding(t, i));
  });

  it('indexSelect along any axis', async () => {
    const arb = shapeArb(1, 4, 6).chain((shape) => fc.record({
      shape: fc.constant(shape),
      axis: fc.integer({ min: 0, max: shape.length - 1 }),
      m: fc.integer({ min: 1, max: 6 }),
      dtype: dtypeArb,
    }));
    await fc.assert(fc.asyncProperty(arb, async ({ shape, axis, m, dtype }) => {
      const idx = randomInts(m, m * 7 + axis, 0, shape[axis]);
      await same(`indexSelect ${shape} axis ${axis} (${dtype})`,
        [{ shape, dtype, seed: 3 }, { shape: [m], dtype: 'i32', seed: 0, values: idx }], (x, i) => F.indexSelect(x, axis, i));
    }), gpuRuns(15));
  });
});

describe('webgpu i32 movement is bit-exact', () => {
  it('ids beyond 2^24 survive permute, pad, slice, expand, concat and gather', async () => {
    const big = Int32Array.from([2 ** 24 + 1, -(2 ** 31), 2 ** 31 - 1, 123456789, -987654321, 16777219]);
    const be = await gpu();
    const x = F.fromArray(be, big, [2, 3], 'i32');
    const check = async (t: Tensor, want: number[]) => {
      expect(t.dtype).toBe('i32');
      expect(Array.from(await t.read())).toEqual(want);
    };
    await check(F.permute(x, [1, 0]), [big[0], big[3], big[1], big[4], big[2], big[5]]);
    await check(F.pad(x, [[0, 0], [1, 0]], 'constant', -5), [-5, big[0], big[1], big[2], -5, big[3], big[4], big[5]]);
    await check(F.flip(F.slice(x, 1, 1), 1), [big[2], big[1], big[5], big[4]]);
    await check(F.expand(F.slice(x, 0, 1, 2), [2, 3]), [big[3], big[4], big[5], big[3], big[4], big[5]]);
    await check(F.concat([x, x], 0), [...big, ...big]);
    await check(F.embedding(x, F.fromArray(be, [1, 7, 0], [3], 'i32')), [big[3], big[4], big[5], 0, 0, 0, ...big.slice(0, 3)]);
    const dst = F.zeros(be, [2, 4], 'i32');
    F.setSlice(dst, x, [0, 1]);
    await check(dst, [0, big[0], big[1], big[2], 0, big[3], big[4], big[5]]);
  });
});
