// Cases of the image ops on uint8 values: torchvision's antialiased bicubic resize, OpenCV's
// INTER_AREA / INTER_LINEAR / INTER_NEAREST resizes, the bilateral filter and Canny, over frame
// sizes of 1, odd, primes and past OpenCV's vector blocks. Exact (as test/ops/image.test.ts,
// resize-u8.test.ts and canny.test.ts argue it): both backends apply the same float32 tables in
// the same order, and the results are rounded bytes.
import type { ResizeMode } from '../../engine/image.js';
import * as F from '../../engine/ops.js';
import { numel } from '../../engine/tensor.js';
import { EXACT, type OpCase, makeCase } from './case.js';

const u8 = (shape: readonly number[]) => ({ shape, lo: 0, hi: 256, ints: true });

function resizeCase(op: 'resizeBicubicAA' | 'resizeAreaU8', shape: readonly number[], h: number, w: number): OpCase {
  return makeCase({
    op,
    family: 'resample',
    shape: `${shape.join('x')} -> ${h}x${w}`,
    dtype: 'f32',
    tol: EXACT,
    inputs: [u8(shape)],
    fn: (x) => (op === 'resizeBicubicAA' ? F.resizeBicubicAA(x, h, w) : F.resizeAreaU8(x, h, w)),
  });
}

export function resizeU8Case(shape: readonly number[], h: number, w: number, mode: ResizeMode): OpCase {
  const lead = numel(shape.slice(0, -2));
  return makeCase({
    op: 'resizeU8',
    family: 'resample',
    shape: `${shape.join('x')} -> ${h}x${w} ${mode}`,
    dtype: 'f32',
    tol: EXACT,
    bytes: 4 * (numel(shape) + lead * h * w),
    formula: '4*(numel(x) + planes*outH*outW) bytes',
    inputs: [u8(shape)],
    fn: (x) => F.resizeU8(x, h, w, mode),
  });
}

function bilateralCase(T: number, H: number, W: number, d: number): OpCase {
  return makeCase({
    op: 'bilateralFilter',
    family: 'bilateral',
    shape: `3x${T}x${H}x${W} d${d}`,
    dtype: 'f32',
    tol: EXACT,
    inputs: [u8([3, T, H, W])],
    fn: (x) => F.bilateralFilter(x, d, 75, 75),
  });
}

function cannyCase(C: number, T: number, H: number, W: number, lo: number, hi: number): OpCase {
  return makeCase({
    op: 'canny',
    family: 'canny',
    shape: `${C}x${T}x${H}x${W} t${lo}/${hi}`,
    dtype: 'f32',
    tol: EXACT,
    inputs: [u8([C, T, H, W])],
    fn: (x) => F.canny(x, lo, hi),
  });
}

export const IMAGE_CASES: OpCase[] = [
  resizeCase('resizeBicubicAA', [3, 17, 23], 9, 11),
  resizeCase('resizeBicubicAA', [2, 5, 7], 13, 3),
  resizeCase('resizeAreaU8', [3, 31, 37], 7, 10),
  resizeU8Case([1, 1], 1, 1, 'area'),
  resizeU8Case([2, 33, 35], 11, 7, 'area'),
  resizeU8Case([3, 7, 9], 19, 13, 'linear'),
  resizeU8Case([2, 13, 5], 6, 17, 'nearest'),
  bilateralCase(1, 13, 35, 5),
  bilateralCase(2, 7, 5, 9),
  cannyCase(3, 2, 19, 37, 100, 200),
  cannyCase(1, 1, 1, 1, 50, 60),
];
