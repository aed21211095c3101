// Reductions on the WebGPU backend against the CPU oracle: sum / mean / max / min, argmax,
// softmax, cumsum over any axis, and topk / sortDescending over the last axis.
//
// Tolerances (the oracle accumulates in float64 and rounds once; the GPU accumulates in f32 in
// its own order: strided per-invocation runs, a shared-memory tree, chunk partials for long axes):
// - max, min, argmax, topk: exact (no arithmetic; argmax/topk indices must match exactly,
//   including ties -> lowest index, NaN above everything, and topk's stable order).
// - sum / mean / cumsum: |gpu - cpu| <= 4e-6 * L1 + 1e-6 * |cpu|, where L1 is the largest
//   sum of |x| over the terms of one output (a column, or a prefix for cumsum). Reordering an
//   f32 sum of m terms moves it by at most about (run + tree depth) * 2^-24 * L1, and the runs
//   here are a few dozen terms; in practice the error is a random walk, far below the bound.
//   The long-axis cases use integer data instead, whose f32 sums are exact in any order, so
//   they are compared exactly and a dropped or doubled element cannot hide in the tolerance.
// - softmax: atol 1e-7, rtol 2e-5: exp is not correctly rounded on GPUs (a few ulp) and the
//   f32 denominator carries the sum error above (relative, ~1e-6 for 152064 terms).
// - cumsum of a sorted probability vector (top-p, 152064 entries): atol 2e-6, as prefix sums
//   are <= 1 and the f32 carry chain (chunk totals, then per-tile scans) stays within a few
//   ulp of 1; the whole softmax -> sort -> cumsum chain gets the softmax rtol as atol.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../src/engine/dtype.js';
import { narrow, widen } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import type { WebGpuBackend } from '../../src/engine/webgpu/backend.js';
import { type Tol, awkwardDim, checkAgainstCpu, cpu, gpu, gpuRuns, randomInts, randomValues } from '../harness.js';

let be: WebGpuBackend;
beforeAll(async () => {
  be = await gpu(); // no adapter -> the suite fails, never skips
}, 60_000);

const EXACT: Tol = { atol: 0, rtol: 0 };
const SOFTMAX_TOL: Tol = { atol: 1e-7, rtol: 2e-5 };

// ------------------------------------------------------------------ data helpers

type Kind = 'float' | 'ties' | 'special';

/** Values for a tensor of `dtype`: random floats, few distinct values (ties), or with NaN/±inf/±0. */
function makeValues(n: number, kind: Kind, dtype: DType, seed: number): Float32Array {
  const v = kind === 'float' ? randomValues(n, seed, -3, 3) : Float32Array.from(randomInts(n, seed, -3, 4));
  if (kind === 'special' && dtype !== 'i32') {
    const specials = [NaN, Infinity, -Infinity, -0, 0];
    const pick = randomInts(n, seed + 1, 0, 40);
    for (let i = 0; i < n; i++) if (pick[i] < specials.length) v[i] = specials[pick[i]];
  }
  if (dtype === 'i32') for (let i = 0; i < n; i++) v[i] = Math.round(v[i] * 5);
  return v;
}

/** The values as a tensor of `dtype` holds them (half dtypes round). */
function widenVia(values: Float32Array, dtype: DType): Float32Array {
  if (dtype === 'f32') return values;
  return Float32Array.from(widen(dtype, narrow(dtype, values)));
}

/** Split a shape at `axis` into [outer, n, inner]. */
function split3(shape: readonly number[], axis: number): [number, number, number] {
  const a = axis < 0 ? axis + shape.length : axis;
  const prod = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  return [prod(shape.slice(0, a)), shape[a], prod(shape.slice(a + 1))];
}

/** Largest finite sum of |x| down one column of [outer, n, inner]; it bounds every prefix too (cumsum). */
function columnL1(x: Float32Array, outer: number, n: number, inner: number): number {
  let worst = 0;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.abs(x[(o * n + j) * inner + i]);
      if (Number.isFinite(s)) worst = Math.max(worst, s);
    }
  }
  return worst;
}

function sumTol(x: Float32Array, shape: readonly number[], axis: number, divideByN = false): Tol {
  const [o, n, i] = split3(shape, axis);
  const l1 = columnL1(x, o, n, i);
  return { atol: (4e-6 * l1) / (divideByN ? n : 1), rtol: 1e-6 };
}

/** A shape of rank 1..4 with awkward dims, at most `maxSize` elements, and an axis of it. */
const shapeAxisArb = (maxDim = 70, maxSize = 6000) =>
  fc
    .array(awkwardDim(maxDim), { minLength: 1, maxLength: 4 })
    .filter((s) => s.reduce((p, d) => p * d, 1) <= maxSize)
    .chain((shape) => fc.record({ shape: fc.constant(shape), axis: fc.integer({ min: -shape.length, max: shape.length - 1 }) }));

const dtypeArb = fc.constantFrom<DType>('f32', 'f16', 'bf16', 'i32');

// ------------------------------------------------------------------ reduce

describe('reduce (sum / mean / max / min over one axis)', () => {
  it('matches the oracle over random shapes, axes and dtypes', async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeAxisArb(),
        fc.constantFrom('sum', 'mean', 'max', 'min' as const),
        dtypeArb,
        fc.constantFrom<Kind>('float', 'ties', 'special'),
        fc.boolean(),
        fc.nat(),
        async ({ shape, axis }, op, dtype, kind, keepDim, seed) => {
          const size = shape.reduce((p, d) => p * d, 1);
          const values = makeValues(size, kind, dtype, seed);
          const tol = op === 'max' || op === 'min' ? EXACT : sumTol(widenVia(values, dtype), shape, axis, op === 'mean');
          await checkAgainstCpu(be, `${op} ${dtype} [${shape}] axis ${axis}`, [{ values, shape, dtype }],
            (x) => F.reduce(op, x, axis, keepDim), tol);
        },
      ),
      gpuRuns(30),
    );
  });

  it('is exact on integer data along a 152064-long axis (split reduction) and a long strided axis', async () => {
    for (const [shape, axis] of [[[1, 152064], 1], [[3, 20011], 1], [[2, 9001, 3], 1], [[1, 70001, 2], 1]] as const) {
      const size = shape.reduce((p: number, d: number) => p * d, 1);
      const values = Float32Array.from(randomInts(size, size, -8, 9));
      for (const op of ['sum', 'max', 'min'] as const) {
        await checkAgainstCpu(be, `${op} [${shape}]`, [{ values, shape }], (x) => F.reduce(op, x, axis), EXACT);
      }
      await checkAgainstCpu(be, `mean [${shape}]`, [{ values, shape }], (x) => F.mean(x, axis), { atol: 0, rtol: 1e-6 });
    }
  });

  it('takes the mean over channels of [N, C, H*W] (a strided middle axis)', async () => {
    const shape = [2, 64, 1000];
    const values = randomValues(2 * 64 * 1000, 'nchw', -1, 1);
    await checkAgainstCpu(be, 'mean NCHW', [{ values, shape, dtype: 'bf16' }], (x) => F.mean(x, 1, true),
      sumTol(widenVia(values, 'bf16'), shape, 1, true));
  });

  it('propagates NaN through max / min / sum, and handles size-1 and empty outputs', async () => {
    const values = Float32Array.from([1, NaN, 3, -Infinity, 2, 5, Infinity, 0, -1]);
    for (const op of ['sum', 'max', 'min', 'mean'] as const) {
      await checkAgainstCpu(be, `${op} nan`, [{ values, shape: [3, 3] }], (x) => F.reduce(op, x, 1), EXACT);
      await checkAgainstCpu(be, `${op} nan axis0`, [{ values, shape: [3, 3] }], (x) => F.reduce(op, x, 0), EXACT);
    }
    await checkAgainstCpu(be, 'sum of one', [{ values: [7], shape: [1] }], (x) => F.sum(x, 0), EXACT);
    const y = F.sum(F.zeros(be, [0, 5]), 1);
    expect(y.shape).toEqual([0]);
    expect((await y.read()).length).toBe(0);
    expect(() => F.sum(F.zeros(be, [3, 0]), 1)).toThrow();
  });
});

// ------------------------------------------------------------------ argmax

describe('argmax (first index of the maximum, NaN counts as the maximum)', () => {
  it('matches the oracle exactly, ties included', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAxisArb(), dtypeArb, fc.constantFrom<Kind>('float', 'ties', 'special'), fc.boolean(), fc.nat(),
        async ({ shape, axis }, dtype, kind, keepDim, seed) => {
          const values = makeValues(shape.reduce((p, d) => p * d, 1), kind, dtype, seed);
          await checkAgainstCpu(be, `argmax ${dtype} [${shape}] axis ${axis}`, [{ values, shape, dtype }],
            (x) => F.argmax(x, axis, keepDim), EXACT);
        }),
      gpuRuns(25),
    );
  });

  it('samples greedily over vocabularies of 64000 and 152064 logits (split path)', async () => {
    for (const V of [64000, 152064]) {
      const values = randomValues(V, V, -10, 10);
      await checkAgainstCpu(be, `argmax V=${V}`, [{ values, shape: [1, V] }], (x) => F.argmax(x, -1), EXACT);
      // a tie between chunks: the earlier index wins
      values[V - 3] = 50;
      values[4099] = 50;
      await checkAgainstCpu(be, `argmax tie V=${V}`, [{ values, shape: [1, V] }], (x) => F.argmax(x, -1), EXACT);
      // the first NaN wins over everything
      values[V - 7] = NaN;
      values[V - 5] = NaN;
      await checkAgainstCpu(be, `argmax NaN V=${V}`, [{ values, shape: [1, V] }], (x) => F.argmax(x, -1), EXACT);
      // all equal: index 0
      await checkAgainstCpu(be, `argmax flat V=${V}`, [{ values: new Float32Array(V).fill(-Infinity), shape: [V] }], (x) => F.argmax(x, 0), EXACT);
    }
    const batch = randomInts(4 * 9001 * 2, 'b', -5, 5);
    await checkAgainstCpu(be, 'argmax strided long', [{ values: batch, shape: [4, 9001, 2], dtype: 'i32' }], (x) => F.argmax(x, 1), EXACT);
  });
});

// ------------------------------------------------------------------ softmax

describe('softmax (numerically stable; an all -inf row gives NaN)', () => {
  it('matches the oracle over random shapes, axes and dtypes', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAxisArb(), fc.constantFrom<DType>('f32', 'f16', 'bf16'), fc.double({ min: 0.1, max: 30, noNaN: true }), fc.nat(),
        async ({ shape, axis }, dtype, scale, seed) => {
          const values = randomValues(shape.reduce((p, d) => p * d, 1), seed, -scale, scale);
          await checkAgainstCpu(be, `softmax ${dtype} [${shape}] axis ${axis}`, [{ values, shape, dtype }],
            (x) => F.softmax(x, axis), SOFTMAX_TOL);
        }),
      gpuRuns(25),
    );
  });

  it('normalises vocabularies of 64000 and 152064 logits (split path) and a batch of them', async () => {
    for (const [rows, V] of [[1, 64000], [1, 152064], [3, 50001]]) {
      const values = randomValues(rows * V, V, -20, 20);
      values[17] = 80; // one dominant logit
      await checkAgainstCpu(be, `softmax [${rows}, ${V}]`, [{ values, shape: [rows, V] }], (x) => F.softmax(x, -1), SOFTMAX_TOL);
      const x = F.fromArray(be, values, [rows, V]);
      const p = F.softmax(x, -1);
      const sums = F.sum(p, -1);
      for (const s of await sums.read()) expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      for (const t of [x, p, sums]) t.dispose();
    }
  });

  it('handles -inf (masked) logits, all -inf rows, NaN and +inf like torch', async () => {
    const ninf = -Infinity;
    const rows = [
      [0, ninf, 1, ninf], // masked entries -> 0
      [ninf, ninf, ninf, ninf], // all masked -> NaN
      [1, NaN, 2, 3], // NaN -> NaN row
      [1, Infinity, 2, 3], // +inf -> NaN row (inf - inf)
      [1e30, -1e30, 3e38, 0], // huge magnitudes stay finite
    ];
    await checkAgainstCpu(be, 'softmax specials', [{ values: rows.flat(), shape: [5, 4] }], (x) => F.softmax(x, -1), SOFTMAX_TOL);
    await checkAgainstCpu(be, 'softmax specials axis 0', [{ values: rows.flat(), shape: [5, 4] }], (x) => F.softmax(x, 0), SOFTMAX_TOL);
    // the split path with a masked vocabulary (most logits -inf) and an all -inf row
    const V = 70000;
    const masked = new Float32Array(2 * V).fill(ninf);
    for (let i = 0; i < V; i += 997) masked[i] = (i % 13) - 6;
    await checkAgainstCpu(be, 'softmax masked vocab', [{ values: masked, shape: [2, V] }], (x) => F.softmax(x, -1), SOFTMAX_TOL);
    const empty = F.softmax(F.zeros(be, [3, 0]), -1);
    expect(empty.shape).toEqual([3, 0]);
  });
});

// ------------------------------------------------------------------ cumsum

describe('cumsum (inclusive prefix sum along one axis)', () => {
  it('matches the oracle over random shapes, axes and dtypes', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAxisArb(80, 8000), dtypeArb, fc.nat(), async ({ shape, axis }, dtype, seed) => {
        const values = makeValues(shape.reduce((p, d) => p * d, 1), 'float', dtype, seed);
        await checkAgainstCpu(be, `cumsum ${dtype} [${shape}] axis ${axis}`, [{ values, shape, dtype }],
          (x) => F.cumsum(x, axis), sumTol(widenVia(values, dtype), shape, axis));
      }),
      gpuRuns(25),
    );
  });

  it('is exact on integer data over long rows (chunk carries) and long strided axes', async () => {
    for (const [shape, axis] of [[[1, 152064], 1], [[2, 10007], 1], [[3, 1030], 1], [[1, 5003, 3], 1], [[2, 300, 70], 1]] as const) {
      const size = shape.reduce((p: number, d: number) => p * d, 1);
      const values = Float32Array.from(randomInts(size, size, -4, 5));
      await checkAgainstCpu(be, `cumsum [${shape}]`, [{ values, shape }], (x) => F.cumsum(x, axis), EXACT);
    }
  });

  it('accumulates a sorted 152064-entry probability vector (top-p)', async () => {
    const V = 152064;
    const probs = await F.sortDescending(F.softmax(F.fromArray(cpu, randomValues(V, 'top-p', -8, 8), [1, V]), -1))[0].read();
    await checkAgainstCpu(be, 'top-p cumsum', [{ values: probs, shape: [1, V] }], (x) => F.cumsum(x, -1), { atol: 2e-6, rtol: 0 });
  });

  it('runs the whole top-p chain (softmax, full sort, cumsum) over 64000 logits', async () => {
    const V = 64000;
    const logits = randomValues(V, 'chain', -8, 8);
    const run = (x: Tensor) => F.cumsum(F.sortDescending(F.softmax(x, -1))[0], -1);
    // the softmax tolerance carries into the prefix sums (which stay <= 1)
    await checkAgainstCpu(be, 'top-p chain', [{ values: logits, shape: [1, V] }], run, { atol: SOFTMAX_TOL.rtol, rtol: 0 });
  });

  it('keeps empty and size-1 axes', async () => {
    await checkAgainstCpu(be, 'cumsum n=1', [{ values: [1, 2, 3], shape: [3, 1] }], (x) => F.cumsum(x, 1), EXACT);
    expect(F.cumsum(F.zeros(be, [0, 4]), 1).shape).toEqual([0, 4]);
    expect(F.cumsum(F.zeros(be, [4, 0]), 1).shape).toEqual([4, 0]);
  });
});

// ------------------------------------------------------------------ topk

describe('topk / sortDescending (values descending, stable, NaN first)', () => {
  it('matches the oracle exactly over random rows and k, ties included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(awkwardDim(9), { minLength: 0, maxLength: 2 }),
        fc.oneof(awkwardDim(70), fc.integer({ min: 1, max: 3000 })),
        fc.double({ min: 0, max: 1, noNaN: true }),
        dtypeArb,
        fc.constantFrom<Kind>('float', 'ties', 'special'),
        fc.nat(),
        async (lead, n, kFrac, dtype, kind, seed) => {
          const shape = [...lead, n];
          const k = Math.max(1, Math.min(n, Math.round(kFrac * n)));
          const values = makeValues(shape.reduce((p, d) => p * d, 1), kind, dtype, seed);
          await checkAgainstCpu(be, `topk ${dtype} [${shape}] k=${k}`, [{ values, shape, dtype }], (x) => F.topk(x, k), EXACT);
        },
      ),
      gpuRuns(25),
    );
  });

  it('sorts a 64000-entry vocabulary fully and stably (global bitonic sort)', async () => {
    const V = 64000;
    const values = Float32Array.from(randomInts(V, 'sort', -50, 50), (v) => v / 4); // many ties
    values[5] = NaN;
    values[70] = -0;
    values[71] = Infinity;
    values[72] = -Infinity;
    await checkAgainstCpu(be, 'sort 64000', [{ values, shape: [1, V] }], (x) => F.sortDescending(x), EXACT);
    // two rows and a k between the select and the global plans
    const two = Float32Array.from(randomInts(2 * 5000, 'two', -20, 20));
    await checkAgainstCpu(be, 'topk 300 of 5000', [{ values: two, shape: [2, 5000] }], (x) => F.topk(x, 300), EXACT);
  });

  it('keeps the first k of long rows with small k (select rounds)', async () => {
    const V = 152064;
    const values = Float32Array.from(randomInts(V, 'sel', -1000, 1000));
    for (const k of [1, 256]) {
      await checkAgainstCpu(be, `topk ${k} of ${V}`, [{ values, shape: [1, V] }], (x) => F.topk(x, k), EXACT);
    }
    const batch = randomValues(3 * 9000, 'batch', -1, 1);
    await checkAgainstCpu(be, 'topk 50 of [3, 9000] bf16', [{ values: batch, shape: [3, 9000], dtype: 'bf16' }], (x) => F.topk(x, 50), EXACT);
  });

  it('handles n = 1, -0 / +0 ties, and empty batches', async () => {
    await checkAgainstCpu(be, 'topk n=1', [{ values: [3, -1], shape: [2, 1] }], (x) => F.topk(x, 1), EXACT);
    await checkAgainstCpu(be, 'topk zeros', [{ values: [0, -0, 0, -0, 1], shape: [5] }], (x) => F.topk(x, 5), EXACT);
    const [v, i] = F.topk(F.zeros(be, [0, 5]), 2);
    expect(v.shape).toEqual([0, 2]);
    expect(i.shape).toEqual([0, 2]);
    expect(i.dtype).toBe('i32');
  });
});

// ------------------------------------------------------------------ large dispatches

describe('dispatches over 65535 workgroups', () => {
  it('folds the grid into two dimensions (one workgroup per row)', async () => {
    const rows = 70001;
    const values = randomValues(rows * 2, 'grid', -1, 1);
    await checkAgainstCpu(be, 'cumsum 70001 rows', [{ values, shape: [rows, 2] }], (x) => F.cumsum(x, 1), { atol: 1e-6, rtol: 1e-6 });
    await checkAgainstCpu(be, 'topk 70001 rows', [{ values, shape: [rows, 2] }], (x) => F.topk(x, 1), EXACT);
  });
});
