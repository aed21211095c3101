// cast / unary / binary / where on kernels/elementwise.wgsl.ts: one invocation per output element
// (two for half casts), broadcasting through zero strides; unary and same-shape binary ops take 4
// elements per invocation when the count is a multiple of 4 (unary_v4, binary_flat_v4).
import type { BinaryOp, UnaryOp } from '../../backend.js';
import type { DType } from '../../dtype.js';
import { ShapeError, type Tensor, numel, stridesOf } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { Params, grid1d } from '../context.js';
import { ELEMENTWISE, WG } from '../kernels/elementwise.wgsl.js';

const MAX_RANK = 8;

/** `vec4: false` keeps the one-element-per-invocation entries (tests compare both). */
export const elementwiseConfig = { vec4: true };

const UNARY_CODE: Record<UnaryOp, number> = {
  neg: 0, abs: 1, exp: 2, log: 3, sqrt: 4, rsqrt: 5, recip: 6, square: 7, sin: 8, cos: 9,
  tanh: 10, sigmoid: 11, silu: 12, relu: 13, gelu: 14, gelu_tanh: 15, round: 16, floor: 17,
  ceil: 18, sign: 19, atanh: 20, affine: 21, clamp: 22, pow_scalar: 23,
};
const BINARY_CODE: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5, pow: 6 };

/** Strides of x read as a tensor of outShape (same rank), zero along broadcast dims. */
function bcastStrides(x: Tensor, outShape: readonly number[]): number[] {
  const st = stridesOf(x.shape);
  return outShape.map((d, i) => (x.shape[i] === d ? st[i] : 0));
}

function header(n: number, rank: number, alpha = 0, beta = 0): Params {
  if (rank > MAX_RANK) throw new ShapeError(`webgpu elementwise: rank ${rank} exceeds ${MAX_RANK}`);
  return new Params().u32(n, rank).f32(alpha, beta);
}

export function cast(be: WebGpuBackend, x: Tensor, dtype: DType): Tensor {
  const n = x.size;
  const y = be.empty(dtype, x.shape);
  if (n === 0) return y;
  const params = header(n, 0).vec4u([], 8);
  if (dtype === 'f32') {
    be.ctx.dispatch({ family: ELEMENTWISE, entry: 'cast_f32', inputs: { a: x }, outputs: { out: y }, params, workgroups: grid1d(Math.ceil(n / WG)) });
  } else if (dtype === 'i32') {
    be.ctx.dispatch({ family: ELEMENTWISE, entry: 'cast_i32', inputs: { a: x }, outputs: { outi: y }, params, workgroups: grid1d(Math.ceil(n / WG)) });
  } else {
    be.ctx.dispatch({
      family: ELEMENTWISE, entry: 'cast_half', inputs: { a: x }, outputs: { outh: y }, params,
      overrides: { OP: dtype === 'bf16' ? 0 : 1 }, workgroups: grid1d(Math.ceil(n / 2 / WG)),
    });
  }
  return y;
}

export function unary(be: WebGpuBackend, op: UnaryOp, x: Tensor, alpha: number, beta: number): Tensor {
  const n = x.size;
  const y = be.empty('f32', x.shape);
  if (n === 0) return y;
  const v4 = elementwiseConfig.vec4 && n % 4 === 0;
  be.ctx.dispatch({
    family: ELEMENTWISE, entry: v4 ? 'unary_v4' : 'unary_main', inputs: { a: x }, outputs: { out: y },
    params: header(n, 0, alpha, beta).vec4u([], 8), overrides: { OP: UNARY_CODE[op] },
    vec4: v4 ? ['a'] : undefined, workgroups: grid1d(Math.ceil(n / (v4 ? 4 : 1) / WG)),
  });
  return y;
}

export function binary(be: WebGpuBackend, op: BinaryOp, a: Tensor, b: Tensor, outShape: number[]): Tensor {
  const n = numel(outShape);
  const y = be.empty('f32', outShape);
  if (n === 0) return y;
  const same = a.shape.join() === b.shape.join() && a.shape.join() === outShape.join();
  const params = header(n, outShape.length)
    .vec4u(outShape, 2)
    .vec4u(bcastStrides(a, outShape), 2)
    .vec4u(bcastStrides(b, outShape), 2)
    .vec4u([], 2);
  const v4 = same && elementwiseConfig.vec4 && n % 4 === 0;
  be.ctx.dispatch({
    family: ELEMENTWISE, entry: v4 ? 'binary_flat_v4' : same ? 'binary_flat' : 'binary_bcast', inputs: { a, b }, outputs: { out: y },
    params, overrides: { OP: BINARY_CODE[op] }, vec4: v4 ? ['a', 'b'] : undefined, workgroups: grid1d(Math.ceil(n / (v4 ? 4 : 1) / WG)),
  });
  return y;
}

export function where(be: WebGpuBackend, cond: Tensor, a: Tensor, b: Tensor, outShape: number[]): Tensor {
  const n = numel(outShape);
  const y = be.empty('f32', outShape);
  if (n === 0) return y;
  const params = header(n, outShape.length)
    .vec4u(outShape, 2)
    .vec4u(bcastStrides(a, outShape), 2)
    .vec4u(bcastStrides(b, outShape), 2)
    .vec4u(bcastStrides(cond, outShape), 2);
  be.ctx.dispatch({
    family: ELEMENTWISE, entry: 'where_bcast', inputs: { a, b, c: cond }, outputs: { out: y },
    params, workgroups: grid1d(Math.ceil(n / WG)),
  });
  return y;
}
