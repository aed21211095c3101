// Elementwise primitives over f32 value arrays: unary maps, broadcasting binary ops and where.
// Every scalar is computed in float64 and rounded once when stored into the f32 output.
import type { BinaryOp, UnaryOp } from '../backend.js';
import { numel, stridesOf } from '../tensor.js';
import { erfc, roundHalfEven } from './math.js';

const GELU_TANH_K = Math.sqrt(2 / Math.PI);

function unaryFn(op: UnaryOp, alpha: number, beta: number): (x: number) => number {
  switch (op) {
    case 'neg': return (x) => -x;
    case 'abs': return Math.abs;
    case 'exp': return Math.exp;
    case 'log': return Math.log;
    case 'sqrt': return Math.sqrt;
    case 'rsqrt': return (x) => 1 / Math.sqrt(x);
    case 'recip': return (x) => 1 / x;
    case 'square': return (x) => x * x;
    case 'sin': return Math.sin;
    case 'cos': return Math.cos;
    case 'tanh': return Math.tanh;
    case 'atanh': return Math.atanh;
    case 'sigmoid': return (x) => 1 / (1 + Math.exp(-x));
    case 'silu': return (x) => x / (1 + Math.exp(-x));
    // Math.max propagates NaN, as torch.relu does
    case 'relu': return (x) => Math.max(x, 0);
    // 0.5 x (1 + erf(x/sqrt2)) written with erfc so large negative x keeps its tiny tail
    case 'gelu': return (x) => 0.5 * x * erfc(-x * Math.SQRT1_2);
    case 'gelu_tanh': return (x) => 0.5 * x * (1 + Math.tanh(GELU_TANH_K * (x + 0.044715 * x * x * x)));
    case 'round': return roundHalfEven;
    case 'floor': return Math.floor;
    case 'ceil': return Math.ceil;
    // comparison form, so NaN maps to 0 exactly as ATen's sign kernel does
    case 'sign': return (x) => (x > 0 ? 1 : 0) - (x < 0 ? 1 : 0);
    case 'affine': return (x) => alpha * x + beta;
    case 'clamp': return (x) => Math.min(Math.max(x, alpha), beta);
    case 'pow_scalar': return (x) => x ** alpha;
    default: {
      const never: never = op;
      throw new Error(`cpu: unknown unary op ${String(never)}`);
    }
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add': return (a, b) => a + b;
    case 'sub': return (a, b) => a - b;
    case 'mul': return (a, b) => a * b;
    case 'div': return (a, b) => a / b;
    // Math.max/min propagate NaN, like torch.maximum/minimum
    case 'max': return Math.max;
    case 'min': return Math.min;
    case 'pow': return (a, b) => a ** b;
    default: {
      const never: never = op;
      throw new Error(`cpu: unknown binary op ${String(never)}`);
    }
  }
}

export function unary(op: UnaryOp, x: Float32Array, alpha: number, beta: number): Float32Array {
  const f = unaryFn(op, alpha, beta);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
  return out;
}

/**
 * For each element of outShape (row-major), the offset of the element of an input of shape
 * inShape (same rank, size-1 dims broadcast) that it reads; null when no broadcasting happens.
 */
export function broadcastOffsets(inShape: readonly number[], outShape: readonly number[]): Int32Array | null {
  if (inShape.length === outShape.length && inShape.every((d, i) => d === outShape[i])) return null;
  const r = outShape.length;
  const st = stridesOf(inShape).map((s, d) => (inShape[d] === 1 ? 0 : s));
  const n = numel(outShape);
  const offs = new Int32Array(n);
  const idx = new Array<number>(r).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    offs[i] = off;
    for (let d = r - 1; d >= 0; d--) {
      idx[d]++;
      off += st[d];
      if (idx[d] < outShape[d]) break;
      off -= idx[d] * st[d];
      idx[d] = 0;
    }
  }
  return offs;
}

export function binary(
  op: BinaryOp,
  a: Float32Array, aShape: readonly number[],
  b: Float32Array, bShape: readonly number[],
  outShape: readonly number[],
): Float32Array {
  const f = binaryFn(op);
  const oa = broadcastOffsets(aShape, outShape);
  const ob = broadcastOffsets(bShape, outShape);
  const out = new Float32Array(numel(outShape));
  for (let i = 0; i < out.length; i++) out[i] = f(a[oa ? oa[i] : i], b[ob ? ob[i] : i]);
  return out;
}

export function where(
  cond: Float32Array, cShape: readonly number[],
  a: Float32Array, aShape: readonly number[],
  b: Float32Array, bShape: readonly number[],
  outShape: readonly number[],
): Float32Array {
  const oc = broadcastOffsets(cShape, outShape);
  const oa = broadcastOffsets(aShape, outShape);
  const ob = broadcastOffsets(bShape, outShape);
  const out = new Float32Array(numel(outShape));
  for (let i = 0; i < out.length; i++) {
    out[i] = cond[oc ? oc[i] : i] !== 0 ? a[oa ? oa[i] : i] : b[ob ? ob[i] : i];
  }
  return out;
}
