// User-facing ops: shape inference and argument checks, then one call into the tensor's
// backend primitive (backend.ts). An op that makes views (a reshape of its result, an input
// lifted to a higher rank) runs in a scope of its own, so those views are freed with it and a
// call outside any scope leaves nothing behind but its result. Model code imports only this file and tensor.ts, so it never
// knows which backend it runs on.
import {
  type Backend, type BinaryOp, type BorderMode, type ReduceOp, type RopeMode, type StridedDim, type UnaryOp, cannyThresholds,
} from './backend.js';
import { type DType, type RawArray, narrow } from './dtype.js';
import {
  type ResampleTaps, type ResizeMode, alignCornersLinearTaps, antialiasBicubicTaps, areaTables, bilateralTables, cv2CubicTaps, cv2LinearTaps,
  resizeU8Plan, torchCubicTaps,
} from './image.js';
import { ShapeError, Tensor, numel, scope, shapeStr, stridesOf } from './tensor.js';

// ------------------------------------------------------------------ creation

export function fromArray(backend: Backend, values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  if (values.length !== numel(shape)) {
    throw new ShapeError(`fromArray: ${values.length} values for shape ${shapeStr(shape)}`);
  }
  let raw: RawArray;
  if (dtype === 'f32' && values instanceof Float32Array) raw = values;
  else if (dtype === 'i32' && values instanceof Int32Array) raw = values;
  else raw = narrow(dtype, values);
  return new Tensor(backend.upload(dtype, raw), shape);
}

/** Wrap raw stored elements (half types as 16-bit patterns) without conversion. */
export function fromRaw(backend: Backend, raw: RawArray, shape: readonly number[], dtype: DType): Tensor {
  if (raw.length !== numel(shape)) throw new ShapeError(`fromRaw: ${raw.length} elements for shape ${shapeStr(shape)}`);
  return new Tensor(backend.upload(dtype, raw), shape);
}

export function full(backend: Backend, shape: readonly number[], value: number, dtype: DType = 'f32'): Tensor {
  const n = numel(shape);
  const a = dtype === 'i32' ? new Int32Array(n) : new Float32Array(n);
  // typed arrays start zeroed: filling zeros would only write (and so commit) every page
  if (!Object.is(value, 0)) a.fill(value);
  return fromArray(backend, a, shape, dtype);
}

export function zeros(backend: Backend, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return full(backend, shape, 0, dtype);
}

// ------------------------------------------------------------------ helpers

function axisOf(x: Tensor, axis: number, what: string): number {
  const a = axis < 0 ? axis + x.rank : axis;
  if (a < 0 || a >= x.rank) throw new ShapeError(`${what}: axis ${axis} out of range for ${shapeStr(x.shape)}`);
  return a;
}

function sameBackend(what: string, ...ts: (Tensor | null | undefined)[]): Backend {
  let b: Backend | undefined;
  for (const t of ts) {
    if (!t) continue;
    t.assertAlive();
    if (b && t.backend !== b) throw new Error(`${what}: tensors live on different backends (${b.name}, ${t.backend.name})`);
    b = t.backend;
  }
  return b!;
}

/** [outer, n, inner] around `axis`. */
function splitAt(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis], numel(shape.slice(axis + 1))];
}

export function broadcastShapes(a: readonly number[], b: readonly number[], what = 'broadcast'): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${what}: shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

function toRank(x: Tensor, r: number): Tensor {
  if (x.rank === r) return x;
  return x.reshape([...new Array(r - x.rank).fill(1), ...x.shape]);
}

// ------------------------------------------------------------------ elementwise

export function cast(x: Tensor, dtype: DType): Tensor {
  sameBackend('cast', x);
  return x.backend.cast(x, dtype);
}

function unary(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  sameBackend(op, x);
  return x.backend.unary(op, x, alpha, beta);
}

export const neg = (x: Tensor) => unary('neg', x);
export const abs = (x: Tensor) => unary('abs', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const recip = (x: Tensor) => unary('recip', x);
export const square = (x: Tensor) => unary('square', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const atanh = (x: Tensor) => unary('atanh', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const silu = (x: Tensor) => unary('silu', x);
export const relu = (x: Tensor) => unary('relu', x);
/** exact GELU, 0.5 x (1 + erf(x / sqrt 2)) */
export const gelu = (x: Tensor) => unary('gelu', x);
/** tanh approximation of GELU */
export const geluTanh = (x: Tensor) => unary('gelu_tanh', x);
/** round half to even, as torch.round */
export const round = (x: Tensor) => unary('round', x);
export const floor = (x: Tensor) => unary('floor', x);
export const ceil = (x: Tensor) => unary('ceil', x);
export const sign = (x: Tensor) => unary('sign', x);
/** alpha * x + beta */
export const affine = (x: Tensor, alpha: number, beta = 0) => unary('affine', x, alpha, beta);
export const scale = (x: Tensor, alpha: number) => unary('affine', x, alpha, 0);
export const clamp = (x: Tensor, min: number, max: number) => unary('clamp', x, min, max);
export const powScalar = (x: Tensor, p: number) => unary('pow_scalar', x, p, 0);

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  return scope(() => {
    const be = sameBackend(op, a, b);
    const out = broadcastShapes(a.shape, b.shape, op);
    return be.binary(op, toRank(a, out.length), toRank(b, out.length), out);
  });
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor) => binary('div', a, b);
export const maximum = (a: Tensor, b: Tensor) => binary('max', a, b);
export const minimum = (a: Tensor, b: Tensor) => binary('min', a, b);
export const pow = (a: Tensor, b: Tensor) => binary('pow', a, b);

export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  return scope(() => {
    const be = sameBackend('where', cond, a, b);
    const out = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
    const r = out.length;
    return be.where(toRank(cond, r), toRank(a, r), toRank(b, r), out);
  });
}

// ------------------------------------------------------------------ reductions

export function reduce(op: ReduceOp, x: Tensor, axis: number, keepDim = false): Tensor {
  return scope(() => {
    sameBackend(op, x);
    const a = axisOf(x, axis, op);
    const [o, n, i] = splitAt(x.shape, a);
    if (n === 0) throw new ShapeError(`${op}: cannot reduce an empty axis of ${shapeStr(x.shape)}`);
    const y = x.backend.reduce(op, x, o, n, i);
    const shape = [...x.shape];
    if (keepDim) shape[a] = 1;
    else shape.splice(a, 1);
    return y.reshape(shape);
  });
}

export const sum = (x: Tensor, axis: number, keepDim = false) => reduce('sum', x, axis, keepDim);
export const mean = (x: Tensor, axis: number, keepDim = false) => reduce('mean', x, axis, keepDim);
export const max = (x: Tensor, axis: number, keepDim = false) => reduce('max', x, axis, keepDim);
export const min = (x: Tensor, axis: number, keepDim = false) => reduce('min', x, axis, keepDim);

export function argmax(x: Tensor, axis = -1, keepDim = false): Tensor {
  return scope(() => {
    sameBackend('argmax', x);
    const a = axisOf(x, axis, 'argmax');
    const [o, n, i] = splitAt(x.shape, a);
    if (n === 0) throw new ShapeError(`argmax: empty axis in ${shapeStr(x.shape)}`);
    const y = x.backend.argmax(x, o, n, i);
    const shape = [...x.shape];
    if (keepDim) shape[a] = 1;
    else shape.splice(a, 1);
    return y.reshape(shape);
  });
}

export function softmax(x: Tensor, axis = -1): Tensor {
  return scope(() => {
    sameBackend('softmax', x);
    const a = axisOf(x, axis, 'softmax');
    const [o, n, i] = splitAt(x.shape, a);
    return x.backend.softmax(x, o, n, i).reshape(x.shape);
  });
}

export function cumsum(x: Tensor, axis = -1): Tensor {
  return scope(() => {
    sameBackend('cumsum', x);
    const a = axisOf(x, axis, 'cumsum');
    const [o, n, i] = splitAt(x.shape, a);
    return x.backend.cumsum(x, o, n, i).reshape(x.shape);
  });
}

/** Largest k along the last axis, descending (stable), as [values, i32 indices]. */
export function topk(x: Tensor, k: number): [Tensor, Tensor] {
  return scope(() => {
    sameBackend('topk', x);
    const n = x.shape[x.rank - 1];
    if (!(k >= 1 && k <= n)) throw new ShapeError(`topk: k=${k} must be in [1, ${n}]`);
    const rows = x.size / n;
    const [v, i] = x.backend.topk(x, rows, n, k);
    const shape = [...x.shape.slice(0, -1), k];
    return [v.reshape(shape), i.reshape(shape)];
  });
}

/** Full descending sort along the last axis (stable). */
export const sortDescending = (x: Tensor) => topk(x, x.shape[x.rank - 1]);

/**
 * i32 [2]: the number of NaN and of ±Inf elements of x (any storage dtype, judged on its bits), on
 * the device: a boundary check reads back these 8 bytes instead of the tensor.
 */
export function countNonFinite(x: Tensor): Tensor {
  return sameBackend('countNonFinite', x).countNonFinite(x);
}

// ------------------------------------------------------------------ image processing

/**
 * cv2.Canny(frame, tLower, tUpper) with OpenCV's defaults (aperture 3, L1 gradient, no blur) on
 * every frame of `video` [C, T, H, W] (C >= 1 planar channels; values read as uint8 pixels:
 * truncated toward zero, saturated to 0..255) -> i32 [T, H, W] of 0 / 255. Thresholds are floored
 * and ordered as OpenCV does. Asynchronous: hysteresis iterates to a fixed point.
 */
export function canny(video: Tensor, tLower: number, tUpper: number): Promise<Tensor> {
  const be = sameBackend('canny', video);
  if (video.rank !== 4 || video.shape[0] < 1) throw new ShapeError(`canny: expected video [C >= 1, T, H, W], got ${shapeStr(video.shape)}`);
  if (!Number.isFinite(tLower) || !Number.isFinite(tUpper)) throw new RangeError(`canny: thresholds must be finite, got ${tLower}, ${tUpper}`);
  const [C, T, H, W] = video.shape;
  return be.canny(video, { C, T, H, W, ...cannyThresholds(tLower, tUpper) });
}

// ------------------------------------------------------------------ data movement

function identityDims(x: Tensor): StridedDim[] {
  const st = stridesOf(x.shape);
  return x.shape.map((s, d) => ({ size: s, start: 0, step: 1, rep: 1, inSize: s, inStride: st[d] }));
}

function stridedCall(x: Tensor, dims: StridedDim[], border: BorderMode = 'constant', value = 0): Tensor {
  const outShape = dims.map((d) => d.size);
  return x.backend.strided(x, { dims, border, value }, outShape);
}

/** Materialise a copy (useful to detach from a shared storage). */
export function contiguous(x: Tensor): Tensor {
  sameBackend('contiguous', x);
  return stridedCall(x, identityDims(x));
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return x.reshape(shape);
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  sameBackend('permute', x);
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new ShapeError(`permute: ${shapeStr(perm)} is not a permutation of ${x.rank} axes`);
  }
  const st = stridesOf(x.shape);
  const dims = perm.map((p) => ({ size: x.shape[p], start: 0, step: 1, rep: 1, inSize: x.shape[p], inStride: st[p] }));
  return stridedCall(x, dims);
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  const perm = x.shape.map((_, i) => i);
  const aa = axisOf(x, a, 'transpose');
  const bb = axisOf(x, b, 'transpose');
  [perm[aa], perm[bb]] = [perm[bb], perm[aa]];
  return permute(x, perm);
}

/** x[start:end:step] along one axis (negative start/end count from the end, as Python). */
export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  sameBackend('slice', x);
  const a = axisOf(x, axis, 'slice');
  const n = x.shape[a];
  if (step < 1) throw new ShapeError(`slice: step ${step} must be >= 1`);
  const norm = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = norm(start);
  const e = end === undefined ? n : norm(end);
  const size = Math.max(0, Math.ceil((e - s) / step));
  const dims = identityDims(x);
  dims[a] = { ...dims[a], size, start: s, step };
  return stridedCall(x, dims);
}

/** Reverse along an axis. */
export function flip(x: Tensor, axis: number): Tensor {
  sameBackend('flip', x);
  const a = axisOf(x, axis, 'flip');
  const dims = identityDims(x);
  dims[a] = { ...dims[a], start: x.shape[a] - 1, step: -1 };
  return stridedCall(x, dims);
}

/** pads[d] = [before, after] for each axis from the first (missing trailing axes: none). */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], mode: BorderMode = 'constant', value = 0): Tensor {
  sameBackend('pad', x);
  if (pads.length > x.rank) throw new ShapeError(`pad: ${pads.length} pad pairs for rank ${x.rank}`);
  const dims = identityDims(x);
  pads.forEach(([b, e], d) => {
    if (b < 0 || e < 0) throw new ShapeError(`pad: negative padding on axis ${d}`);
    if (mode === 'reflect' && (b >= x.shape[d] || e >= x.shape[d])) {
      throw new ShapeError(`pad: reflect padding ${b},${e} needs axis ${d} longer than it (size ${x.shape[d]})`);
    }
    if (mode !== 'constant' && x.shape[d] === 0 && b + e > 0) throw new ShapeError(`pad: cannot ${mode}-pad an empty axis`);
    dims[d] = { ...dims[d], size: x.shape[d] + b + e, start: -b };
  });
  return stridedCall(x, dims, mode, value);
}

/** Broadcast to a larger shape (materialised). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  return scope(() => {
    sameBackend('expand', x);
    const out = broadcastShapes(x.shape, shape, 'expand');
    if (out.some((d, i) => d !== shape[i])) throw new ShapeError(`expand: ${shapeStr(x.shape)} cannot expand to ${shapeStr(shape)}`);
    const xr = toRank(x, out.length);
    const st = stridesOf(xr.shape);
    const dims = out.map((s, d) => ({
      size: s, start: 0, step: xr.shape[d] === 1 ? 0 : 1, rep: 1, inSize: xr.shape[d], inStride: st[d],
    }));
    return stridedCall(xr, dims);
  });
}

/** Each element repeated `times` along the axis (torch.repeat_interleave). */
export function repeatInterleave(x: Tensor, times: number, axis: number): Tensor {
  sameBackend('repeatInterleave', x);
  const a = axisOf(x, axis, 'repeatInterleave');
  const dims = identityDims(x);
  dims[a] = { ...dims[a], size: x.shape[a] * times, rep: times };
  return stridedCall(x, dims);
}

/** Nearest-neighbour upsampling of the trailing spatial axes by integer factors. */
export function upsampleNearest(x: Tensor, factors: readonly number[]): Tensor {
  sameBackend('upsampleNearest', x);
  const dims = identityDims(x);
  const first = x.rank - factors.length;
  factors.forEach((f, i) => {
    const d = first + i;
    dims[d] = { ...dims[d], size: x.shape[d] * f, rep: f };
  });
  return stridedCall(x, dims);
}

/** Tile the whole tensor `times` along an axis (torch.cat([x]*times, axis)). */
export function tile(x: Tensor, times: number, axis: number): Tensor {
  const a = axisOf(x, axis, 'tile');
  return concat(new Array(times).fill(x), a);
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: no tensors');
  const be = sameBackend('concat', ...xs);
  const a = axisOf(xs[0], axis, 'concat');
  const base = xs[0].shape;
  for (const t of xs) {
    if (t.rank !== base.length || t.shape.some((d, i) => i !== a && d !== base[i])) {
      throw new ShapeError(`concat: ${shapeStr(t.shape)} does not match ${shapeStr(base)} off axis ${a}`);
    }
  }
  const outShape = [...base];
  outShape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
  const dtype = xs.every((t) => t.dtype === 'i32') ? 'i32' : 'f32';
  const out = new Tensor(be.alloc(dtype, numel(outShape)), outShape);
  let off = 0;
  for (const t of xs) {
    const starts = new Array(outShape.length).fill(0);
    starts[a] = off;
    if (t.size) be.setSlice(out, t, starts);
    off += t.shape[a];
  }
  return out;
}

export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const a = axisOf(x, axis, 'split');
  if (sizes.reduce((s, v) => s + v, 0) !== x.shape[a]) {
    throw new ShapeError(`split: sizes ${shapeStr(sizes)} do not add up to ${x.shape[a]} (axis ${a} of ${shapeStr(x.shape)})`);
  }
  let off = 0;
  return sizes.map((s) => {
    const t = slice(x, a, off, off + s);
    off += s;
    return t;
  });
}

export function chunk(x: Tensor, n: number, axis: number): Tensor[] {
  const a = axisOf(x, axis, 'chunk');
  if (x.shape[a] % n !== 0) throw new ShapeError(`chunk: axis ${a} of ${shapeStr(x.shape)} is not divisible by ${n}`);
  return split(x, new Array(n).fill(x.shape[a] / n), a);
}

/** In-place: write src into dst starting at `starts` (one per axis). */
export function setSlice(dst: Tensor, src: Tensor, starts: readonly number[]): void {
  const be = sameBackend('setSlice', dst, src);
  if (src.rank !== dst.rank || starts.length !== dst.rank) {
    throw new ShapeError(`setSlice: ranks differ (dst ${shapeStr(dst.shape)}, src ${shapeStr(src.shape)}, starts ${starts.length})`);
  }
  for (let d = 0; d < dst.rank; d++) {
    if (starts[d] < 0 || starts[d] + src.shape[d] > dst.shape[d]) {
      throw new ShapeError(`setSlice: src ${shapeStr(src.shape)} at ${shapeStr(starts)} exceeds dst ${shapeStr(dst.shape)}`);
    }
  }
  if (dst.dtype !== 'f32' && dst.dtype !== 'i32') throw new Error(`setSlice: dst must be f32 or i32, got ${dst.dtype}`);
  if (src.size) be.setSlice(dst, src, [...starts]);
}

/** Rows of a [V, D] table (embedding lookup); ids is i32 of any shape -> [...ids.shape, D]. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  return scope(() => {
    const be = sameBackend('embedding', table, ids);
    if (table.rank !== 2) throw new ShapeError(`embedding: table must be [V, D], got ${shapeStr(table.shape)}`);
    if (ids.dtype !== 'i32') throw new Error(`embedding: ids must be i32, got ${ids.dtype}`);
    const [V, D] = table.shape;
    return be.gather(table, ids.reshape([ids.size]), V, D).reshape([...ids.shape, D]);
  });
}

/** torch.index_select: pick entries of `axis` by i32 indices. */
export function indexSelect(x: Tensor, axis: number, idx: Tensor): Tensor {
  return scope(() => {
    const a = axisOf(x, axis, 'indexSelect');
    const [o, n, i] = splitAt(x.shape, a);
    const moved = o === 1 ? x.reshape([n, i]) : permute(x.reshape([o, n, i]), [1, 0, 2]).reshape([n, o * i]);
    const g = embedding(moved, idx.reshape([idx.size]));
    const m = idx.size;
    const outShape = [...x.shape];
    outShape[a] = m;
    if (o === 1) return g.reshape(outShape);
    return permute(g.reshape([m, o, i]), [1, 0, 2]).reshape(outShape);
  });
}

// ------------------------------------------------------------------ linear algebra

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: Tensor | null;
  alpha?: number;
}

/**
 * Batched matmul: a [..., M, K] (or [..., K, M] with transA), b [..., K, N] (or [..., N, K]
 * with transB). b's batch dims must equal a's or be absent/all ones (shared weight).
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  return scope(() => {
    const be = sameBackend('matmul', a, b, opts.bias);
    const { transA = false, transB = false, bias = null, alpha = 1 } = opts;
    if (a.rank < 2 || b.rank < 2) throw new ShapeError(`matmul: operands need rank >= 2, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
    const [ar, ac] = a.shape.slice(-2);
    const [br, bc] = b.shape.slice(-2);
    const M = transA ? ac : ar;
    const K = transA ? ar : ac;
    const Kb = transB ? bc : br;
    const N = transB ? br : bc;
    if (K !== Kb) {
      throw new ShapeError(`matmul: inner dims differ: a ${shapeStr(a.shape)}${transA ? 'ᵀ' : ''} vs b ${shapeStr(b.shape)}${transB ? 'ᵀ' : ''}`);
    }
    const aBatch = a.shape.slice(0, -2);
    const bBatch = b.shape.slice(0, -2);
    const batch = numel(aBatch);
    const nbB = numel(bBatch);
    if (nbB !== 1) {
      const same = bBatch.length <= aBatch.length && bBatch.every((d, i) => d === aBatch[aBatch.length - bBatch.length + i]) && nbB === batch;
      if (!same) throw new ShapeError(`matmul: batch dims ${shapeStr(aBatch)} and ${shapeStr(bBatch)} must match (or b's be absent)`);
    }
    if (bias && (bias.size !== N)) throw new ShapeError(`matmul: bias ${shapeStr(bias.shape)} must have ${N} elements`);
    const y = be.matmul(a, b, bias, { transA, transB, M, N, K, batch, batchB: nbB, alpha });
    return y.reshape([...aBatch, M, N]);
  });
}

/** PyTorch nn.Linear: x [..., in] @ w[out, in]ᵀ + b. */
export function linear(x: Tensor, w: Tensor, b: Tensor | null = null): Tensor {
  return scope(() => {
    if (w.rank !== 2) throw new ShapeError(`linear: weight must be [out, in], got ${shapeStr(w.shape)}`);
    if (x.shape[x.rank - 1] !== w.shape[1]) {
      throw new ShapeError(`linear: input ${shapeStr(x.shape)} has ${x.shape[x.rank - 1]} features, weight ${shapeStr(w.shape)} expects ${w.shape[1]}`);
    }
    const lead = x.shape.slice(0, -1);
    const y = matmul(x.reshape([numel(lead), w.shape[1]]), w, { transB: true, bias: b });
    return y.reshape([...lead, w.shape[0]]);
  });
}

export interface ConvOptions {
  stride?: number | readonly number[];
  /** symmetric zero padding per spatial axis */
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  groups?: number;
}

function spatialTuple(v: number | readonly number[] | undefined, nd: number, def: number, what: string): number[] {
  if (v === undefined) return new Array(nd).fill(def);
  if (typeof v === 'number') return new Array(nd).fill(v);
  if (v.length !== nd) throw new ShapeError(`conv: ${what} needs ${nd} values, got ${v.length}`);
  return [...v];
}

/** N-d convolution (nd = 1, 2, 3): x [N, Cin, ...spatial], w [Cout, Cin/groups, ...kernel]. */
export function conv(x: Tensor, w: Tensor, bias: Tensor | null = null, opts: ConvOptions = {}): Tensor {
  return scope(() => {
    const be = sameBackend('conv', x, w, bias);
    const nd = x.rank - 2;
    if (nd < 1 || nd > 3) throw new ShapeError(`conv: input must be [N, C, ...1-3 spatial dims], got ${shapeStr(x.shape)}`);
    if (w.rank !== x.rank) throw new ShapeError(`conv: weight ${shapeStr(w.shape)} does not match input rank ${x.rank}`);
    const groups = opts.groups ?? 1;
    const [N, Cin] = x.shape;
    const [Cout, Cg] = w.shape;
    if (Cin % groups || Cout % groups || Cin / groups !== Cg) {
      throw new ShapeError(`conv: input ${shapeStr(x.shape)} / weight ${shapeStr(w.shape)} channels do not fit groups=${groups}`);
    }
    if (bias && bias.size !== Cout) throw new ShapeError(`conv: bias ${shapeStr(bias.shape)} must have ${Cout} elements`);
    const stride = spatialTuple(opts.stride, nd, 1, 'stride');
    const padding = spatialTuple(opts.padding, nd, 0, 'padding');
    const dilation = spatialTuple(opts.dilation, nd, 1, 'dilation');
    const lift = (v: number[], fill: number) => [...new Array(3 - nd).fill(fill), ...v] as [number, number, number];
    const inSize = lift(x.shape.slice(2), 1);
    const kernel = lift(w.shape.slice(2), 1);
    const s3 = lift(stride, 1);
    const p3 = lift(padding, 0);
    const d3 = lift(dilation, 1);
    const outSize = [0, 1, 2].map((i) => Math.floor((inSize[i] + 2 * p3[i] - d3[i] * (kernel[i] - 1) - 1) / s3[i]) + 1) as [number, number, number];
    if (outSize.some((o) => o < 1)) {
      throw new ShapeError(`conv: kernel ${shapeStr(w.shape.slice(2))} does not fit input ${shapeStr(x.shape.slice(2))} with padding ${shapeStr(padding)}`);
    }
    const y = be.conv(x, w, bias, { N, Cin, inSize, Cout, kernel, stride: s3, padding: p3, dilation: d3, groups, outSize });
    return y.reshape([N, Cout, ...outSize.slice(3 - nd)]);
  });
}

// ------------------------------------------------------------------ normalisation

/** LayerNorm over the last axis (weight/bias optional, [D]). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  return scope(() => {
    const be = sameBackend('layerNorm', x, weight, bias);
    const D = x.shape[x.rank - 1];
    for (const t of [weight, bias]) if (t && t.size !== D) throw new ShapeError(`layerNorm: parameter ${shapeStr(t.shape)} must have ${D} elements`);
    return be.norm(x, weight, bias, { kind: 'layer', rows: x.size / D, D, N: 0, C: 0, S: 0, groups: 0, eps }).reshape(x.shape);
  });
}

/**
 * adaLN modulation in one pass: LayerNorm of x [B, N, D] (no affine) times (1 + scale) plus shift,
 * with scale / shift [Mb, Mf, 1, D] (or [Mb, Mf, D]) broadcast over the batch (Mb 1 or B) and over
 * the N / Mf tokens of each of Mf equal token groups (the DiT's frames): F.add(F.mul(LN(x) as
 * [B, Mf, N / Mf, D], F.affine(scale, 1, 1)), shift).
 */
export function layerNormModulate(x: Tensor, scale: Tensor, shift: Tensor, eps: number): Tensor {
  return scope(() => {
    const be = sameBackend('layerNormModulate', x, scale, shift);
    if (x.rank !== 3) throw new ShapeError(`layerNormModulate: x must be [B, N, D], got ${shapeStr(x.shape)}`);
    const [B, N, D] = x.shape;
    const okShape = (t: Tensor) => (t.rank === 4 && t.shape[2] === 1) || t.rank === 3;
    for (const t of [scale, shift]) {
      const Mb = t.shape[0];
      const Mf = t.shape[1];
      if (!okShape(t) || t.shape[t.rank - 1] !== D || (Mb !== 1 && Mb !== B) || Mf < 1 || N % Mf) {
        throw new ShapeError(`layerNormModulate: scale / shift ${shapeStr(t.shape)} must be [1 or ${B}, a divisor of ${N}, 1, ${D}]`);
      }
    }
    if (scale.shape.join() !== shift.shape.join()) throw new ShapeError(`layerNormModulate: scale ${shapeStr(scale.shape)} and shift ${shapeStr(shift.shape)} differ`);
    const modRows = N / scale.shape[1];
    return be.norm(x, scale, shift, { kind: 'layer', rows: B * N, D, N: 0, C: 0, S: 0, groups: 0, eps, modRows, onePlus: true }).reshape(x.shape);
  });
}

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) * weight. */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  return scope(() => {
    const be = sameBackend('rmsNorm', x, weight);
    const D = x.shape[x.rank - 1];
    if (weight && weight.size !== D) throw new ShapeError(`rmsNorm: weight ${shapeStr(weight.shape)} must have ${D} elements`);
    return be.norm(x, weight, null, { kind: 'rms', rows: x.size / D, D, N: 0, C: 0, S: 0, groups: 0, eps }).reshape(x.shape);
  });
}

/**
 * GroupNorm on x [N, C, ...]: statistics per (sample, group) over the group's channels and all
 * positions. `silu`: SiLU of the result in the same pass (what a ResnetBlock's norm -> swish is).
 * `perFrame`: x is [N, C, T, ...] and every frame t is normalised by itself (statistics per
 * (sample, group, frame)): torch's GroupNorm of x.transpose(1, 2).reshape(N * T, C, ...), read and
 * written in x's own layout.
 */
export function groupNorm(
  x: Tensor, groups: number, weight: Tensor | null, bias: Tensor | null, eps: number, opts: { silu?: boolean; perFrame?: boolean } = {},
): Tensor {
  return scope(() => {
    const be = sameBackend('groupNorm', x, weight, bias);
    if (x.rank < (opts.perFrame ? 3 : 2)) throw new ShapeError(`groupNorm: input must be [N, C, ${opts.perFrame ? 'T, ' : ''}...], got ${shapeStr(x.shape)}`);
    const [N, C] = x.shape;
    if (C % groups) throw new ShapeError(`groupNorm: ${C} channels not divisible into ${groups} groups`);
    for (const t of [weight, bias]) if (t && t.size !== C) throw new ShapeError(`groupNorm: parameter ${shapeStr(t.shape)} must have ${C} elements`);
    const S = numel(x.shape.slice(2));
    const frames = opts.perFrame ? x.shape[2] : 1;
    return be.norm(x, weight, bias, { kind: 'group', rows: 0, D: 0, N, C, S, groups, eps, silu: opts.silu ?? false, frames }).reshape(x.shape);
  });
}

/**
 * Channel-first L2 normalisation (torch F.normalize over axis 1) times a per-channel weight, then
 * optionally SiLU: y = x / max(‖x[n, :, s]‖₂, eps) · weight[c] at every position s of x [N, C, ...].
 * A zero vector gives 0.
 */
export function l2NormalizeChannels(x: Tensor, weight: Tensor | null, eps: number, opts: { silu?: boolean } = {}): Tensor {
  return scope(() => {
    const be = sameBackend('l2NormalizeChannels', x, weight);
    if (x.rank < 2) throw new ShapeError(`l2NormalizeChannels: input must be [N, C, ...], got ${shapeStr(x.shape)}`);
    const [N, C] = x.shape;
    if (weight && weight.size !== C) throw new ShapeError(`l2NormalizeChannels: weight ${shapeStr(weight.shape)} must have ${C} elements`);
    const S = numel(x.shape.slice(2));
    return be.norm(x, weight, null, { kind: 'l2_channels', rows: 0, D: 0, N, C, S, groups: 1, eps, silu: opts.silu ?? false }).reshape(x.shape);
  });
}

// ------------------------------------------------------------------ attention

export interface AttentionOptions {
  /** defaults to 1/sqrt(D) */
  scale?: number;
  causal?: boolean;
  /** additive f32 mask broadcastable to [B, Hq, Lq, kvLen] over its batch and head axes */
  mask?: Tensor | null;
  /** use only the first kvLen key/value positions (KV cache with spare capacity) */
  kvLen?: number;
}

/**
 * Scaled dot-product attention with GQA: q [B, Hq, Lq, D], k [B, Hkv, Lk, D],
 * v [B, Hkv, Lk, Dv], Hq a multiple of Hkv. Returns [B, Hq, Lq, Dv].
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  return scope(() => {
    const be = sameBackend('attention', q, k, v, opts.mask);
    if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
      throw new ShapeError(`attention: q, k, v must be [B, H, L, D]; got ${shapeStr(q.shape)}, ${shapeStr(k.shape)}, ${shapeStr(v.shape)}`);
    }
    const [B, Hq, Lq, D] = q.shape;
    const [Bk, Hkv, Lk, Dk] = k.shape;
    const [Bv, Hv, Lv, Dv] = v.shape;
    if (Bk !== B || Bv !== B || Hv !== Hkv || Lv !== Lk || Dk !== D) {
      throw new ShapeError(`attention: k ${shapeStr(k.shape)} / v ${shapeStr(v.shape)} do not fit q ${shapeStr(q.shape)}`);
    }
    if (Hq % Hkv) throw new ShapeError(`attention: ${Hq} query heads not a multiple of ${Hkv} kv heads`);
    const kvLen = opts.kvLen ?? Lk;
    if (kvLen < 1 || kvLen > Lk) throw new ShapeError(`attention: kvLen ${kvLen} outside [1, ${Lk}]`);
    const causal = opts.causal ?? false;
    if (causal && Lq > kvLen) throw new ShapeError(`attention: causal with ${Lq} queries but only ${kvLen} keys`);
    let maskB = 0;
    let maskH = 0;
    const mask = opts.mask ?? null;
    if (mask) {
      if (mask.rank > 4) throw new ShapeError(`attention: mask ${shapeStr(mask.shape)} has rank > 4`);
      const m = mask.rank === 4 ? mask : toRank(mask, 4);
      const [mb, mh, mq, mk] = m.shape;
      if ((mb !== 1 && mb !== B) || (mh !== 1 && mh !== Hq) || mq !== Lq || mk !== kvLen) {
        throw new ShapeError(`attention: mask ${shapeStr(mask.shape)} must be [1|${B}, 1|${Hq}, ${Lq}, ${kvLen}]`);
      }
      maskB = mb;
      maskH = mh;
    }
    const scale = opts.scale ?? 1 / Math.sqrt(D);
    return be.attention(q, k, v, mask, { B, Hq, Hkv, Lq, Lk, kvLen, D, Dv, scale, causal, maskB, maskH });
  });
}

/** Additive mask from a boolean-like tensor (nonzero = attend): 0 where allowed, -inf elsewhere. */
export function additiveMask(allowed: Tensor): Tensor {
  const be = sameBackend('additiveMask', allowed);
  const zero = full(be, [1], 0);
  const ninf = full(be, [1], -Infinity);
  return where(allowed, zero, ninf);
}

export interface RopeOptions {
  mode: RopeMode;
  /** 'bhld' (default): x is [B, H, L, D]; 'blhd': x is [B, L, H, D] */
  layout?: 'bhld' | 'blhd';
}

/**
 * Rotary embedding with precomputed tables cos/sin of shape [L, R] or [B|1, L, R] (R even,
 * <= D: the first R dims of each head rotate, the rest pass through). 'half' pairs dim i with
 * i + R/2 (rotate_half); 'interleaved' pairs 2j with 2j+1.
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor, opts: RopeOptions): Tensor {
  return scope(() => {
    const be = sameBackend('rope', x, cos, sin);
    const layout = opts.layout ?? 'bhld';
    if (x.rank !== 4) throw new ShapeError(`rope: x must be rank 4, got ${shapeStr(x.shape)}`);
    const [B, a1, a2, D] = x.shape;
    const H = layout === 'bhld' ? a1 : a2;
    const L = layout === 'bhld' ? a2 : a1;
    const c3 = cos.rank === 2 ? cos.reshape([1, ...cos.shape]) : cos;
    const s3 = sin.rank === 2 ? sin.reshape([1, ...sin.shape]) : sin;
    if (c3.rank !== 3 || c3.shape.join() !== s3.shape.join()) {
      throw new ShapeError(`rope: cos ${shapeStr(cos.shape)} and sin ${shapeStr(sin.shape)} must be equal [B|1, L, R]`);
    }
    const [tb, tl, R] = c3.shape;
    if ((tb !== 1 && tb !== B) || tl !== L || R % 2 || R > D) {
      throw new ShapeError(`rope: table ${shapeStr(cos.shape)} does not fit x ${shapeStr(x.shape)} (${layout})`);
    }
    return be.rope(x, c3, s3, { layout, B, H, L, D, R, tableB: tb, mode: opts.mode });
  });
}

// ------------------------------------------------------------------ image filters

/**
 * cv2.bilateralFilter(frame, d, sigmaColor, sigmaSpace) of every frame of x, RGB frames stored as
 * planes [3, T, H, W] (or [3, H, W]) with values 0..255 (any dtype); f32 of the uint8 results.
 */
export function bilateralFilter(x: Tensor, d: number, sigmaColor: number, sigmaSpace: number): Tensor {
  const be = sameBackend('bilateralFilter', x);
  if ((x.rank !== 4 && x.rank !== 3) || x.shape[0] !== 3) throw new ShapeError(`bilateralFilter: x must be [3, T, H, W] or [3, H, W] (RGB planes), got ${shapeStr(x.shape)}`);
  const [T, H, W] = x.rank === 4 ? x.shape.slice(1) : [1, ...x.shape.slice(1)];
  const tab = bilateralTables(d, sigmaColor, sigmaSpace);
  return be.bilateral(x, { T, H, W, dy: tab.dy, dx: tab.dx, space: tab.space, color: tab.color });
}

/**
 * torchvision resize(BICUBIC, antialias=True) of uint8 values (any dtype) over the last two axes
 * of x to [outH, outW]: float32 width pass, then height pass, clamped to [0, 255] and rounded half
 * to even; f32 of the uint8 results.
 */
export function resizeBicubicAA(x: Tensor, outH: number, outW: number): Tensor {
  const be = sameBackend('resizeBicubicAA', x);
  if (x.rank < 2) throw new ShapeError(`resizeBicubicAA: x must have 2 or more dims, got ${shapeStr(x.shape)}`);
  if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH > 0 && outW > 0)) throw new ShapeError(`resizeBicubicAA: bad output size ${outH}x${outW}`);
  const lead = x.shape.slice(0, -2);
  const [H, W] = x.shape.slice(-2);
  const outer = numel(lead);
  const pass = (t: Tensor, o: number, n: number, inner: number, m: number, toU8: boolean) => {
    const tp = antialiasBicubicTaps(n, m);
    return be.resample(t, { outer: o, inSize: n, inner, toU8, ...tp });
  };
  return scope(() => {
    let y = x;
    if (W !== outW || H === outH) y = pass(y, outer * H, W, 1, outW, H === outH);
    if (H !== outH) y = pass(y, outer, H, outW, outH, true);
    return y.reshape([...lead, outH, outW]);
  });
}

/**
 * cv2.resize(INTER_AREA) shrinking uint8 values (any dtype) over the last two axes of x to
 * [outH, outW], plane by plane; f32 of the uint8 results.
 */
export function resizeAreaU8(x: Tensor, outH: number, outW: number): Tensor {
  const be = sameBackend('resizeAreaU8', x);
  if (x.rank < 2) throw new ShapeError(`resizeAreaU8: x must have 2 or more dims, got ${shapeStr(x.shape)}`);
  const lead = x.shape.slice(0, -2);
  const [H, W] = x.shape.slice(-2);
  if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH >= 1 && outW >= 1 && outH <= H && outW <= W)) {
    throw new ShapeError(`resizeAreaU8: ${W}x${H} -> ${outW}x${outH} is not a shrink`);
  }
  const t = areaTables(H, W, outH, outW);
  return be.areaResize(x, {
    count: numel(lead), sh: H, sw: W, dh: outH, dw: outW, block: t.block,
    xFirst: t.x.first, xSrc: t.x.src, xAlpha: t.x.alpha, yFirst: t.y.first, ySrc: t.y.src, yAlpha: t.y.alpha,
  }).reshape([...lead, outH, outW]);
}

/** The float resizes resizeFloat knows (each library's own mapping, none antialiased). */
export type FloatResizeMode = 'cv2_cubic' | 'cv2_linear' | 'align_corners' | 'torch_cubic';

/**
 * Float resizes without antialias over the last two axes, as separable passes (width, then
 * height) in float32: 'cv2_cubic' / 'cv2_linear' are cv2.resize INTER_CUBIC / INTER_LINEAR of float
 * images; 'align_corners' is torch's bilinear with align_corners=True; 'torch_cubic' is torch's
 * bicubic (align_corners=False), whose source step per output pixel is 1 / scaleFactor when one is
 * given (torch keeps the given factor, so it need not equal in / out).
 */
export function resizeFloat(x: Tensor, outH: number, outW: number, mode: FloatResizeMode, opts: { scaleFactor?: readonly [number, number] } = {}): Tensor {
  const be = sameBackend('resizeFloat', x);
  if (x.rank < 2) throw new ShapeError(`resizeFloat: x must have 2 or more dims, got ${shapeStr(x.shape)}`);
  if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH >= 1 && outW >= 1)) throw new ShapeError(`resizeFloat: bad output size ${outH}x${outW}`);
  const lead = x.shape.slice(0, -2);
  const [H, W] = x.shape.slice(-2);
  const taps = (n: number, m: number, axis: 0 | 1): ResampleTaps => {
    switch (mode) {
      case 'cv2_cubic': return cv2CubicTaps(n, m);
      case 'cv2_linear': return cv2LinearTaps(n, m);
      case 'align_corners': return alignCornersLinearTaps(n, m);
      case 'torch_cubic': return torchCubicTaps(n, m, opts.scaleFactor ? 1 / opts.scaleFactor[axis] : n / m);
      default: throw new ShapeError(`resizeFloat: unknown mode '${String(mode)}'`);
    }
  };
  const outer = numel(lead);
  return scope(() => {
    const y = be.resample(x, { outer: outer * H, inSize: W, inner: 1, toU8: false, ...taps(W, outW, 1) });
    return be.resample(y, { outer, inSize: H, inner: outW, toU8: false, ...taps(H, outH, 0) }).reshape([...lead, outH, outW]);
  });
}

export type { ResizeMode } from './image.js';

/**
 * cv2.resize(plane, (outW, outH), interpolation=mode) of uint8 values (any dtype) over the last two
 * axes of x, for every size pair: 'area' shrinks by coverage when neither axis grows and otherwise
 * takes the fixed-point linear path with area coefficients; 'linear' is INTER_LINEAR; 'nearest'
 * is INTER_NEAREST (floor(d * scale), not INTER_NEAREST_EXACT); equal sizes copy. f32 of the
 * uint8 results. A backend splits the planes over several kernel calls where one call's input or
 * output would not fit one binding; `planesPerCall` caps the planes per call (for tests).
 */
export function resizeU8(x: Tensor, outH: number, outW: number, mode: ResizeMode, opts: { planesPerCall?: number } = {}): Tensor {
  const be = sameBackend('resizeU8', x);
  if (x.rank < 2) throw new ShapeError(`resizeU8: x must have 2 or more dims, got ${shapeStr(x.shape)}`);
  if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH >= 1 && outW >= 1)) throw new ShapeError(`resizeU8: bad output size ${outH}x${outW}`);
  if (mode !== 'area' && mode !== 'linear' && mode !== 'nearest') throw new ShapeError(`resizeU8: unknown mode '${String(mode)}' (area, linear or nearest)`);
  const lead = x.shape.slice(0, -2);
  const [H, W] = x.shape.slice(-2);
  const count = numel(lead);
  const plan = resizeU8Plan(H, W, outH, outW, mode);
  const maxPlanes = opts.planesPerCall;
  if (plan.kind === 'twoTap') return be.twoTapResize(x, { count, sh: H, sw: W, x: plan.x, y: plan.y, maxPlanes }).reshape([...lead, outH, outW]);
  const a = plan.tables;
  return be.areaResize(x, {
    count, sh: H, sw: W, dh: outH, dw: outW, block: a.block, maxPlanes,
    xFirst: a.x.first, xSrc: a.x.src, xAlpha: a.x.alpha, yFirst: a.y.first, ySrc: a.y.src, yAlpha: a.y.alpha,
  }).reshape([...lead, outH, outW]);
}
