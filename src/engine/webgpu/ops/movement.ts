// strided / setSlice / gather on kernels/movement.wgsl.ts.
//
// strided: the host first normalises the gather. Size-1 output axes whose coordinate is known
// are folded into a base offset; axes whose coordinates can never leave the input ("safe") read
// `estride = step * inStride` elements per output step; adjacent safe axes that read the input
// contiguously merge. A permute of [B, L, H, D] becomes a rank-3 gather, a slice of whole rows a
// plain copy. Then one of four kernels runs:
//   copy_*     rank <= 1 with unit stride: out[i] = x[base + i]
//   tile_*     every axis safe, the output's last axis b not contiguous in the input but some
//              axis a is (channel moves, transposes): TA x TB tiles through workgroup memory
//              (TA * TB = 1024, 4 elements per invocation), coalesced on both sides
//   rows4_f32  f32 input whose output rows are contiguous, vec4-aligned runs of the input (the
//              last axis reads estride 1 with no border, its length and every row start a
//              multiple of 4): rows move as vec4s (permutes of [B, C, T, H, W], causal pads)
//   rows_*     last output axis >= 32 (head transposes, pads, slices, repeats): each lane
//              decomposes its row index once and moves 4 columns of that row
//   strided_*  short last axis: one invocation per output element, index fully decomposed
// Each in an f32 flavour (any float input, widened) and an i32 flavour (i32 in, i32 out, exact).
// Offsets are i32: inputs must hold fewer than 2^31 elements.
import { type StridedParams, borderCoord } from '../../backend.js';
import { ShapeError, type Tensor, numel, stridesOf } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { Params, grid1d } from '../context.js';
import { KC as ROW_KC, MAX_RANK, MOVEMENT, ROW4_CHUNK, TILE_N, WG } from '../kernels/movement.wgsl.js';

/** last-axis length from which the row-wise kernel (rows x lanes per workgroup) is used */
const ROW_MIN = 32;
const BORDER_CODE = { constant: 0, replicate: 1, reflect: 2 } as const;

/** Knobs for benchmarks and tests (not for model code). */
export const movementTuning = {
  /** allow the tiled transpose */
  tile: true,
  /** allow the row-wise gather */
  rows: true,
  /** allow the 4-wide copy of contiguous rows */
  rows4: true,
  /** minimum fraction of a tile that must hold data for the tiled kernel to be chosen */
  minTileFill: 0.25,
};

interface Axis {
  size: number;
  rep: number;
  /** safe: input elements per step of q = floor(i / rep); border: inStride */
  estride: number;
  step: number;
  start: number;
  inSize: number;
  border: boolean;
}

export interface NormalisedGather {
  axes: Axis[];
  base: number;
  /** every output element reads the constant border */
  allHole: boolean;
}

/** Fold size-1 and constant axes into the base offset and merge contiguous safe axes. */
export function normaliseGather(p: StridedParams): NormalisedGather {
  let base = 0;
  let allHole = false;
  const kept: Axis[] = [];
  for (const d of p.dims) {
    const nq = Math.ceil(d.size / d.rep);
    const rep = d.step === 0 || nq === 1 ? 1 : d.rep;
    const step = nq === 1 ? 0 : d.step;
    if (step === 0) {
      // every output coordinate reads the same input coordinate: resolve the border here
      const c = borderCoord(d.start, d.inSize, p.border);
      if (c < 0) allHole = true;
      else base += c * d.inStride;
      if (d.size !== 1) kept.push({ size: d.size, rep: 1, estride: 0, step: 0, start: 0, inSize: d.inSize, border: false });
      continue;
    }
    const last = d.start + (nq - 1) * step;
    const safe = Math.min(d.start, last) >= 0 && Math.max(d.start, last) < d.inSize;
    if (safe) {
      base += d.start * d.inStride;
      kept.push({ size: d.size, rep, estride: step * d.inStride, step, start: 0, inSize: d.inSize, border: false });
    } else {
      kept.push({ size: d.size, rep, estride: d.inStride, step, start: d.start, inSize: d.inSize, border: true });
    }
  }
  // merge, innermost first: outer axis o and inner axis i read contiguously when o's stride is i's extent
  const axes: Axis[] = [];
  for (let k = kept.length - 1; k >= 0; k--) {
    const o = kept[k];
    const i = axes[0];
    if (i && !o.border && !i.border && o.rep === 1 && i.rep === 1 && o.estride === i.size * i.estride) {
      axes[0] = { ...i, size: o.size * i.size };
    } else {
      axes.unshift(o);
    }
  }
  return { axes, base, allHole };
}

/** The uniform block of kernels/movement.wgsl.ts; per-axis arrays are outermost first, zero-filled. */
interface MovementParams {
  n: number;
  rank: number;
  base: number;
  bmask?: number;
  value?: number;
  ivalue?: number;
  /** tiled transpose: tiles, tiles along a and b, axes a and b; row-wise gather: workgroups, rows, chunks */
  grid?: readonly number[];
  size?: readonly number[];
  rep?: readonly number[];
  estride?: readonly number[];
  step?: readonly number[];
  start?: readonly number[];
  insize?: readonly number[];
  ostride?: readonly number[];
}

function movementParams(m: MovementParams): Params {
  const v = MAX_RANK / 4;
  const g = m.grid ?? [];
  return new Params()
    .u32(m.n, m.rank).i32(m.base).u32(m.bmask ?? 0).f32(m.value ?? 0).i32(m.ivalue ?? 0)
    .u32(g[0] ?? 0, g[1] ?? 0, g[2] ?? 0, g[3] ?? 0, g[4] ?? 0, 0)
    .vec4u(m.size ?? [], v).vec4u(m.rep ?? [], v)
    .vec4i(m.estride ?? [], v).vec4i(m.step ?? [], v).vec4i(m.start ?? [], v).vec4i(m.insize ?? [], v)
    .vec4u(m.ostride ?? [], v);
}

interface TilePlan {
  a: number;
  ta: number;
  tb: number;
}

/** The tiled transpose applies when no axis leaves the input, the last output axis is strided in the input and another axis is contiguous there. */
function tilePlan(axes: Axis[]): TilePlan | null {
  if (!movementTuning.tile || axes.length < 2 || axes.some((x) => x.border)) return null;
  const b = axes.length - 1;
  const xb = axes[b];
  if (xb.rep !== 1 || Math.abs(xb.estride) <= 1) return null;
  const a = axes.findIndex((x, k) => k !== b && x.estride === 1 && x.rep === 1);
  if (a < 0) return null;
  const sa = axes[a].size;
  const sb = xb.size;
  const pow2 = (v: number) => 2 ** Math.ceil(Math.log2(v));
  let ta = 32;
  let tb = 32;
  if (sb < 32 && sb <= sa) {
    tb = Math.max(4, pow2(sb));
    ta = TILE_N / tb;
  } else if (sa < 32) {
    ta = Math.max(4, pow2(sa));
    tb = TILE_N / ta;
  }
  const fill = (Math.min(sa, ta) * Math.min(sb, tb)) / TILE_N;
  return fill >= movementTuning.minTileFill ? { a, ta, tb } : null;
}

/** Which kernel `strided` runs for these parameters (for tests and benchmarks). */
export function stridedKernel(p: StridedParams, dtype: Tensor['dtype'] = 'f32'): 'fill' | 'copy' | 'tile' | 'rows4' | 'rows' | 'strided' {
  const { axes, base, allHole } = normaliseGather(p);
  if (allHole) return 'fill';
  if (isCopy(axes)) return 'copy';
  if (tilePlan(axes)) return 'tile';
  if (dtype === 'f32' && rows4Applies(axes, base)) return 'rows4';
  return movementTuning.rows && axes[axes.length - 1].size >= ROW_MIN ? 'rows' : 'strided';
}

/**
 * rows4_f32 applies: at least two axes, the last one contiguous in the input (safe, estride 1,
 * rep 1) with a length that is a multiple of 4, and every row start a multiple of 4 elements (the
 * base and every other axis's element stride are).
 */
function rows4Applies(axes: Axis[], base: number): boolean {
  if (!movementTuning.rows4 || axes.length < 2) return false;
  const last = axes[axes.length - 1];
  if (last.border || last.estride !== 1 || last.rep !== 1 || last.size % 4 !== 0 || base % 4 !== 0) return false;
  return axes.slice(0, -1).every((a) => a.estride % 4 === 0);
}

function isCopy(axes: Axis[]): boolean {
  return axes.length === 0 || (axes.length === 1 && !axes[0].border && axes[0].estride === 1 && axes[0].rep === 1);
}

export function strided(be: WebGpuBackend, x: Tensor, p: StridedParams, outShape: number[]): Tensor {
  const isInt = x.dtype === 'i32';
  const y = be.empty(isInt ? 'i32' : 'f32', outShape);
  const n = numel(outShape);
  if (n === 0) return y;
  const { axes, base, allHole } = normaliseGather(p);
  const sfx = isInt ? '_i32' : '_f32';
  const outputs: Record<string, Tensor> = isInt ? { outi: y } : { out: y };
  const value = p.value;
  const ivalue = Math.trunc(value) | 0;
  if (allHole) {
    // every element is the constant: one border axis whose coordinate (-1) always misses
    const params = movementParams({ n, rank: 1, base: 0, bmask: 1, value, ivalue, size: [n], rep: [1], start: [-1] });
    be.ctx.dispatch({
      family: MOVEMENT, entry: `strided${sfx}`, inputs: { x }, outputs, params, overrides: { BORDER: 0 },
      workgroups: grid1d(Math.ceil(n / WG)),
    });
    return y;
  }
  const rank = axes.length;
  if (rank > MAX_RANK) throw new ShapeError(`webgpu strided: rank ${rank} after merging exceeds ${MAX_RANK}`);
  const sizes = axes.map((a) => a.size);
  let bmask = 0;
  axes.forEach((a, d) => { if (a.border) bmask |= 1 << d; });
  const params = (bits: number, grid: readonly number[] = []) => movementParams({
    n, rank, base, bmask: bits, value, ivalue, grid, size: sizes, rep: axes.map((a) => a.rep),
    estride: axes.map((a) => a.estride), step: axes.map((a) => a.step), start: axes.map((a) => a.start),
    insize: axes.map((a) => a.inSize), ostride: stridesOf(sizes),
  });

  if (isCopy(axes)) {
    be.ctx.dispatch({ family: MOVEMENT, entry: `copy${sfx}`, inputs: { x }, outputs, params: params(0), workgroups: grid1d(Math.ceil(n / WG)) });
    return y;
  }

  const plan = tilePlan(axes);
  if (plan) {
    const b = rank - 1;
    const tilesA = Math.ceil(sizes[plan.a] / plan.ta);
    const tilesB = Math.ceil(sizes[b] / plan.tb);
    const groups = (n / (sizes[plan.a] * sizes[b])) * tilesA * tilesB;
    be.ctx.dispatch({
      family: MOVEMENT, entry: `tile${sfx}`, inputs: { x }, outputs, params: params(0, [groups, tilesA, tilesB, plan.a, b]), overrides: { TA: plan.ta, TB: plan.tb, TPAD: plan.tb < 32 ? 32 / plan.tb : 1 },
      workgroups: grid1d(groups),
    });
    return y;
  }

  const border = bmask ? BORDER_CODE[p.border] : 0;
  const S = sizes[rank - 1];
  if (!isInt && x.dtype === 'f32' && rows4Applies(axes, base)) {
    const chunks = Math.ceil(S / 4 / ROW4_CHUNK);
    const total = (n / S) * chunks;
    be.ctx.dispatch({
      family: MOVEMENT, entry: 'rows4_f32', inputs: { x }, outputs, params: params(bmask, [total, 0, chunks]), overrides: { BORDER: border },
      vec4: ['x'], workgroups: grid1d(Math.ceil(total / WG)),
    });
    return y;
  }
  if (movementTuning.rows && S >= ROW_MIN) {
    // lanes per row: a power of two (32..256) with lanes x ROW_KC columns about the row length;
    // rows per workgroup: WG / lanes
    const lpr = Math.min(WG, Math.max(32, 2 ** Math.floor(Math.log2(S / ROW_KC))));
    const rows = n / S;
    const chunks = Math.ceil(S / (lpr * ROW_KC));
    const groups = chunks * Math.ceil(rows / (WG / lpr));
    be.ctx.dispatch({
      family: MOVEMENT, entry: `rows${sfx}`, inputs: { x }, outputs, params: params(bmask, [groups, rows, chunks]), overrides: { BORDER: border, LPR: lpr },
      workgroups: grid1d(groups),
    });
    return y;
  }
  be.ctx.dispatch({
    family: MOVEMENT, entry: `strided${sfx}`, inputs: { x }, outputs, params: params(bmask),
    overrides: { BORDER: border }, workgroups: grid1d(Math.ceil(n / WG)),
  });
  return y;
}

export function setSlice(be: WebGpuBackend, dst: Tensor, src: Tensor, starts: number[]): void {
  const n = src.size;
  if (n === 0) return;
  // WebGPU forbids binding one buffer as both read-only and writable storage in a dispatch:
  // writing a tensor into its own storage goes through a copy (read before any write, as the oracle).
  let from = src;
  if (src.storage === dst.storage) {
    const st = stridesOf(src.shape);
    from = strided(be, src, {
      dims: src.shape.map((s, d) => ({ size: s, start: 0, step: 1, rep: 1, inSize: s, inStride: st[d] })),
      border: 'constant', value: 0,
    }, [...src.shape]);
  }
  const dstStrides = stridesOf(dst.shape);
  let base = 0;
  starts.forEach((s, d) => { base += s * dstStrides[d]; });
  // merge, innermost first: a source axis that spans its whole destination axis folds into the next outer one
  const sizes: number[] = [];
  const strides: number[] = [];
  for (let d = src.rank - 1; d >= 0; d--) {
    const s = src.shape[d];
    if (s === 1) continue;
    if (sizes.length && strides[0] * sizes[0] === dstStrides[d]) {
      sizes[0] *= s;
    } else {
      sizes.unshift(s);
      strides.unshift(dstStrides[d]);
    }
  }
  if (sizes.length > MAX_RANK) throw new ShapeError(`webgpu setSlice: rank ${sizes.length} after merging exceeds ${MAX_RANK}`);
  const isInt = dst.dtype === 'i32';
  const params = movementParams({ n, rank: sizes.length, base, size: sizes, ostride: strides });
  be.ctx.dispatch({
    family: MOVEMENT, entry: isInt ? 'set_slice_i32' : 'set_slice_f32', inputs: { x: from },
    outputs: isInt ? { outi: dst } : { out: dst }, params, workgroups: grid1d(Math.ceil(n / WG)),
  });
  if (from !== src) from.dispose();
}

export function gather(be: WebGpuBackend, table: Tensor, ids: Tensor, V: number, D: number): Tensor {
  const isInt = table.dtype === 'i32';
  const rows = ids.size;
  const y = be.empty(isInt ? 'i32' : 'f32', [rows, D]);
  const n = rows * D;
  if (n === 0) return y;
  const params = movementParams({ n, rank: 1, base: 0, size: [D, V] });
  be.ctx.dispatch({
    family: MOVEMENT, entry: isInt ? 'gather_i32' : 'gather_f32', inputs: { x: table, ids },
    outputs: isInt ? { outi: y } : { out: y }, params, workgroups: grid1d(Math.ceil(n / WG)),
  });
  return y;
}
