// Cases of the data movement ops: permute, slice (steps), flip, pad in its three modes, expand,
// repeat-interleave, nearest upsampling, concat, setSlice and the gathers (embedding,
// indexSelect), on float, half and i32 storage. Exact: they only move values (i32 stays i32, ids
// past 2^24 included).
import type { DType } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { type Tensor, numel } from '../../engine/tensor.js';
import { EXACT, type InputSpec, type OpCase, type OpOutput, makeCase } from './case.js';

/** A movement case: one input of `shape` (i32 ids over the whole range, floats in [-4, 4)). */
function moveCase(op: string, shape: readonly number[], dtype: DType, what: string, fn: (x: Tensor) => OpOutput, outNumel?: number): OpCase {
  const spec: InputSpec = dtype === 'i32' ? { shape, dtype, lo: -(2 ** 31), hi: 2 ** 31 - 1 } : { shape, dtype, lo: -4, hi: 4 };
  const n = numel(shape);
  return makeCase({
    op,
    family: 'strided',
    shape: `${shape.join('x')} ${what}`,
    dtype,
    tol: EXACT,
    bytes: 4 * (n + (outNumel ?? n)),
    formula: '4*(numel(x) + numel(out)) bytes',
    inputs: [spec],
    fn,
  });
}

export function permuteCase(shape: readonly number[], perm: readonly number[], dtype: DType = 'f32'): OpCase {
  return moveCase('permute', shape, dtype, `perm ${perm.join(',')}`, (x) => F.permute(x, perm));
}

function concatCase(shapes: readonly (readonly number[])[], axis: number, dtype: DType): OpCase {
  return makeCase({
    op: 'concat',
    family: 'setSlice',
    shape: `${shapes.map((s) => s.join('x')).join(' + ')} axis ${axis}`,
    dtype,
    tol: EXACT,
    // the oracle's setSlice widens to f32 on the way: i32 ids within +-2^24 stay exact there
    inputs: shapes.map((shape) => (dtype === 'i32' ? { shape, dtype, lo: -(2 ** 24), hi: 2 ** 24 } : { shape, dtype })),
    fn: (...xs) => F.concat(xs, axis),
  });
}

function setSliceCase(dst: readonly number[], src: readonly number[], starts: readonly number[]): OpCase {
  return makeCase({
    op: 'setSlice',
    family: 'setSlice',
    shape: `${src.join('x')} into ${dst.join('x')} at ${starts.join(',')}`,
    dtype: 'f32',
    tol: EXACT,
    inputs: [{ shape: dst }, { shape: src }],
    fn: (d, s) => {
      const out = F.contiguous(d);
      F.setSlice(out, s, starts);
      return out;
    },
  });
}

function embeddingCase(V: number, D: number, ids: number, dtype: DType): OpCase {
  return makeCase({
    op: 'embedding',
    family: 'gather',
    shape: `V${V} D${D} ids ${ids}`,
    dtype,
    tol: EXACT,
    inputs: [{ shape: [V, D], dtype }, { shape: [ids], dtype: 'i32', lo: 0, hi: V }],
    fn: F.embedding,
  });
}

function indexSelectCase(shape: readonly number[], axis: number, m: number): OpCase {
  return makeCase({
    op: 'indexSelect',
    family: 'gather',
    shape: `${shape.join('x')} axis ${axis} picks ${m}`,
    dtype: 'f32',
    tol: EXACT,
    inputs: [{ shape }, { shape: [m], dtype: 'i32', lo: 0, hi: shape[axis] }],
    fn: (x, idx) => F.indexSelect(x, axis, idx),
  });
}

export const MOVEMENT_CASES: OpCase[] = [
  permuteCase([1], [0]),
  permuteCase([2, 17, 3, 5], [0, 2, 1, 3]),
  permuteCase([3, 5, 7], [2, 0, 1], 'bf16'),
  permuteCase([4, 9, 65], [2, 1, 0], 'i32'),
  moveCase('slice', [7, 33], 'f32', 'axis 1 [3:29:4]', (x) => F.slice(x, 1, 3, 29, 4)),
  moveCase('slice', [9, 5, 3], 'f16', 'axis 0 [-4:]', (x) => F.slice(x, 0, -4)),
  moveCase('flip', [5, 11], 'i32', 'axis 1', (x) => F.flip(x, 1)),
  moveCase('pad', [3, 5, 7], 'f32', 'constant 1,2 / 0,3 value 0.5', (x) => F.pad(x, [[0, 0], [1, 2], [0, 3]], 'constant', 0.5)),
  moveCase('pad', [2, 3, 4, 5], 'f32', 'replicate 2,0 / 1,1', (x) => F.pad(x, [[0, 0], [0, 0], [2, 0], [1, 1]], 'replicate')),
  moveCase('pad', [1, 2, 6, 7], 'bf16', 'reflect 3,2 / 1,5', (x) => F.pad(x, [[0, 0], [0, 0], [3, 2], [1, 5]], 'reflect')),
  moveCase('expand', [3, 1, 5], 'f32', 'to 2x3x7x5', (x) => F.expand(x, [2, 3, 7, 5])),
  moveCase('repeatInterleave', [4, 3], 'i32', 'x3 axis 0', (x) => F.repeatInterleave(x, 3, 0)),
  moveCase('upsampleNearest', [1, 2, 3, 5, 7], 'f32', 'x1,2,2', (x) => F.upsampleNearest(x, [1, 2, 2])),
  concatCase([[2, 3], [2, 5], [2, 1]], 1, 'f32'),
  concatCase([[3, 4], [7, 4]], 0, 'i32'),
  setSliceCase([5, 9], [2, 4], [3, 5]),
  embeddingCase(37, 17, 23, 'f32'),
  embeddingCase(101, 64, 9, 'bf16'),
  indexSelectCase([4, 9, 5], 1, 7),
];
