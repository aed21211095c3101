// Cases of the reductions: sum / mean / max / min over the first, a middle and the last axis,
// argmax, softmax, cumsum, topk and countNonFinite, at lengths of 1, odd, primes and past the
// kernels' chunking (long axes are reduced in chunk partials).
//
// Tolerances (as test/ops/reduce.test.ts argues them): max / min / argmax / topk / counts exact;
// sum, mean and cumsum reorder an f32 sum of n terms in [-1, 1): atol 4e-6 * n, rtol 1e-6;
// softmax: atol 1e-7, rtol 2e-5.
import type { ReduceOp } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { numel } from '../../engine/tensor.js';
import { EXACT, type OpCase, makeCase } from './case.js';

const sumTol = (n: number) => ({ atol: 4e-6 * n, rtol: 1e-6 });

export function reduceCase(op: ReduceOp, shape: readonly number[], axis: number, dtype: DType = 'f32'): OpCase {
  const n = shape[axis < 0 ? axis + shape.length : axis];
  return makeCase({
    op,
    family: 'reduce',
    shape: `${shape.join('x')} axis ${axis}`,
    dtype,
    tol: op === 'sum' || op === 'mean' ? sumTol(n) : EXACT,
    bytes: 4 * numel(shape),
    formula: '4*numel(x) bytes read',
    inputs: [{ shape, dtype }],
    fn: (x) => F.reduce(op, x, axis),
  });
}

export function softmaxCase(shape: readonly number[], axis = -1, dtype: DType = 'f32'): OpCase {
  return makeCase({
    op: 'softmax',
    family: 'softmax',
    shape: `${shape.join('x')} axis ${axis}`,
    dtype,
    tol: { atol: 1e-7, rtol: 2e-5 },
    bytes: 8 * numel(shape),
    formula: '(4 + 4)*numel(x) bytes: x read, y written',
    inputs: [{ shape, dtype, lo: -8, hi: 8 }],
    fn: (x) => F.softmax(x, axis),
  });
}

function argmaxCase(shape: readonly number[], axis: number, ints = false): OpCase {
  return makeCase({
    op: 'argmax',
    family: 'argmax',
    shape: `${shape.join('x')} axis ${axis}${ints ? ' ties' : ''}`,
    dtype: 'f32',
    tol: EXACT,
    // few distinct values make ties, which must go to the lowest index
    inputs: [{ shape, lo: ints ? 0 : -1, hi: ints ? 4 : 1, ints }],
    fn: (x) => F.argmax(x, axis),
  });
}

function cumsumCase(shape: readonly number[], axis: number): OpCase {
  const n = shape[axis < 0 ? axis + shape.length : axis];
  return makeCase({
    op: 'cumsum',
    family: 'cumsum',
    shape: `${shape.join('x')} axis ${axis}`,
    dtype: 'f32',
    tol: sumTol(n),
    inputs: [{ shape }],
    fn: (x) => F.cumsum(x, axis),
  });
}

function topkCase(shape: readonly number[], k: number): OpCase {
  return makeCase({
    op: 'topk',
    family: 'topk',
    shape: `${shape.join('x')} k${k}`,
    dtype: 'f32',
    tol: EXACT,
    inputs: [{ shape, lo: 0, hi: 50, ints: true }],
    fn: (x) => F.topk(x, k),
  });
}

/** NaN and ±Inf planted at seeded places among finite values (the count is exact). */
function nonFiniteCase(n: number, dtype: DType): OpCase {
  return makeCase({
    op: 'countNonFinite',
    family: 'countNonFinite',
    shape: `${n}`,
    dtype,
    tol: EXACT,
    bytes: n * (dtype === 'f32' ? 4 : 2),
    formula: 'bytes per element * n read',
    inputs: [{
      shape: [n], dtype,
      make: (len, next) => {
        const v = new Float32Array(len);
        for (let i = 0; i < len; i++) {
          const r = next();
          v[i] = r < 0.05 ? NaN : r < 0.08 ? (r < 0.065 ? Infinity : -Infinity) : 2 * r - 1;
        }
        return v;
      },
    }],
    fn: F.countNonFinite,
  });
}

export const REDUCE_CASES: OpCase[] = [
  reduceCase('sum', [1], 0),
  reduceCase('sum', [7, 33, 5], 1),
  reduceCase('sum', [3, 5003], -1),
  reduceCase('mean', [67, 9], 0, 'bf16'),
  reduceCase('max', [4, 1, 131], 2),
  reduceCase('min', [17, 19], 0, 'f16'),
  argmaxCase([5, 257], -1),
  argmaxCase([11, 7, 3], 1, true),
  softmaxCase([1, 1]),
  softmaxCase([9, 131]),
  softmaxCase([3, 17, 5], 1),
  softmaxCase([2, 5000], -1, 'bf16'),
  cumsumCase([3, 67], -1),
  cumsumCase([37, 4], 0),
  cumsumCase([1, 4097], -1),
  topkCase([3, 33], 5),
  topkCase([2, 129], 129),
  nonFiniteCase(1, 'f32'),
  nonFiniteCase(1031, 'f32'),
  nonFiniteCase(777, 'bf16'),
  nonFiniteCase(4099, 'f16'),
];
