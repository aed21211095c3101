// reduce / argmax / softmax / cumsum on kernels/reduce.wgsl.ts and topk on kernels/sort.wgsl.ts.
//
// Tiling (see the comments in the kernel modules for the kernels themselves):
// - reduce, argmax, softmax: a workgroup of 256 = COLS x SPLIT invocations takes COLS columns of
//   the [outer, n, inner] view with SPLIT invocations striding down each, then a shared-memory
//   tree. inner == 1 ("row mode"): SPLIT = nextPow2(n / 4) up to 256 (one workgroup per long
//   row, many short rows per workgroup). inner > 1: 8..64 neighbouring inner positions per
//   workgroup (fewer when there are few columns, so more workgroups run), so every step down
//   the axis reads contiguous runs. When that leaves fewer than TARGET_GROUPS workgroups and the
//   axis is long (argmax / softmax over a 152064-entry vocabulary with outer = 1: 75 chunks of
//   2048), the axis is split into chunks: pass 1 reduces every chunk, pass 2 the chunk results
//   (softmax: pass 2 merges the chunk statistics in every workgroup and writes its chunk).
// - cumsum: inner == 1: one workgroup per row (or per 1024-element chunk of a long row when
//   there are few rows; a split sum gives each chunk its carry) scanning tiles of 1024 elements
//   with a running carry. inner > 1: one invocation per column walking the axis (coalesced
//   across inner), chunked the same way when there are few columns.
// - topk: see kernels/sort.wgsl.ts (one-block sort for rows <= 2048, select rounds for k <= 256,
//   else a global bitonic sort).
import type { ReduceOp } from '../../backend.js';
import type { DType } from '../../dtype.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { Params, grid1d } from '../context.js';
import { MAX_WG as WG, REDUCE, SCAN_E } from '../kernels/reduce.wgsl.js';
import { SORT, BLK as SORT_BLK, TPB } from '../kernels/sort.wgsl.js';
import { REDUCE_SG } from '../kernels/reduce-sg.wgsl.js';
import type { KernelFamily } from '../kernel.js';
import { useSubgroups } from './subgroups.js';

/** Fewer workgroups than this (about one per SM of a large GPU) and a long axis is split. */
const TARGET_GROUPS = 128;
/** Only axes at least this long are split (below it one workgroup per column is as quick as two dispatches). */
const SPLIT_MIN_N = 8192;
/** Elements per invocation per chunk of a split reduction (a 152064 row: 75 chunks of 2048). */
const PER_THREAD = 8;
/** Column mode: narrowest workgroup tile along inner (8 floats = one 32-byte sector). */
const MIN_COLS = 8;
/** cumsum: a long row with few rows is cut into chunks of one tile each (152064 -> 149 workgroups). */
const SCAN_CHUNK = WG * SCAN_E;
const SCAN_SPLIT_MIN_N = 4096;
/** cumsum over a strided axis: split the axis when there are fewer columns than this. */
const SCAN_COLS_TARGET = 16384;
/** topk: the largest k the select rounds handle. */
const SELECT_MAX_K = 256;

const OP_CODE: Record<ReduceOp, number> = { sum: 0, mean: 0, max: 1, min: 2 };

function nextPow2(v: number): number {
  return v <= 1 ? 1 : 2 ** Math.ceil(Math.log2(v));
}

interface Geom {
  /** work columns: outer * chunks * inner */
  cols: number;
  chunks: number;
  chunkLen: number;
  COLS: number;
  SPLIT: number;
  rowMode: boolean;
}

/** Workgroup shape for a COLS x SPLIT reduction of the columns of [outer, n, inner]. */
function geometry(outer: number, n: number, inner: number, allowSplit: boolean): Geom {
  const rowMode = inner === 1;
  const q0 = outer * inner;
  let colCap = 1;
  if (!rowMode) {
    // as many neighbouring inner positions as keep enough workgroups busy, at least one sector
    colCap = Math.min(64, nextPow2(inner));
    while (colCap > MIN_COLS && Math.ceil(q0 / colCap) < 2 * TARGET_GROUPS) colCap /= 2;
  }
  const SPLIT = Math.max(1, Math.min(WG / colCap, nextPow2(Math.ceil(n / 4))));
  const COLS = WG / SPLIT;
  const groups = Math.ceil(q0 / COLS);
  let chunks = 1;
  let chunkLen = n;
  const perChunk = SPLIT * PER_THREAD;
  if (allowSplit && n >= SPLIT_MIN_N && n >= 2 * perChunk && groups < TARGET_GROUPS) {
    chunks = Math.min(Math.ceil(n / perChunk), Math.ceil((4 * TARGET_GROUPS) / groups));
    chunkLen = Math.ceil(n / chunks);
    chunks = Math.ceil(n / chunkLen);
  }
  return { cols: q0 * chunks, chunks, chunkLen, COLS, SPLIT, rowMode };
}

function params(n: number, inner: number, g: Pick<Geom, 'chunks' | 'chunkLen' | 'cols'>, div = 1): Params {
  return new Params().u32(n, inner, g.chunks, g.chunkLen, g.cols).f32(div);
}

function overrides(g: Geom, extra: Record<string, number> = {}): Record<string, number> {
  return { COLS: g.COLS, SPLIT: g.SPLIT, ROWMODE: g.rowMode ? 1 : 0, ...extra };
}

/**
 * The family and entry name of a lane entry (reduce_main, softmax_*): its subgroup twin for rows
 * on a device with subgroups (a column's lanes are neighbours there; in column mode they are not).
 */
function laneKernel(be: WebGpuBackend, g: Pick<Geom, 'rowMode'>, entry: string): { family: KernelFamily; entry: string } {
  return g.rowMode && useSubgroups(be) ? { family: REDUCE_SG, entry: `${entry}_sg` } : { family: REDUCE, entry };
}

/** Scratch for partials; disposed right after the dispatch that reads it is recorded (a later
 *  reuse of its pooled buffer is ordered after that dispatch). */
function tmp(be: WebGpuBackend, dtype: DType, shape: number[]): Tensor {
  return be.empty(dtype, shape);
}

// ------------------------------------------------------------------ reduce

function reduceInto(be: WebGpuBackend, op: ReduceOp, x: Tensor, outer: number, n: number, inner: number, div: number): Tensor {
  const g = geometry(outer, n, inner, true);
  if (g.chunks === 1) {
    const y = be.empty('f32', [outer, inner]);
    be.ctx.dispatch({
      ...laneKernel(be, g, 'reduce_main'), inputs: { x }, outputs: { out: y },
      params: params(n, inner, g, div), overrides: overrides(g, { OP: OP_CODE[op] }),
      workgroups: grid1d(Math.ceil(g.cols / g.COLS)),
    });
    return y;
  }
  // split: per-chunk partials [outer, chunks, inner] (sums for mean), then reduce those
  const part = tmp(be, 'f32', [outer, g.chunks, inner]);
  be.ctx.dispatch({
    ...laneKernel(be, g, 'reduce_main'), inputs: { x }, outputs: { out: part },
    params: params(n, inner, g, 1), overrides: overrides(g, { OP: OP_CODE[op] }),
    workgroups: grid1d(Math.ceil(g.cols / g.COLS)),
  });
  const y = reduceInto(be, op, part, outer, g.chunks, inner, div);
  part.dispose();
  return y;
}

export function reduce(be: WebGpuBackend, op: ReduceOp, x: Tensor, outer: number, n: number, inner: number): Tensor {
  if (outer * inner === 0) return be.empty('f32', [outer, inner]);
  return reduceInto(be, op, x, outer, n, inner, op === 'mean' ? n : 1);
}

// ------------------------------------------------------------------ argmax

export function argmax(be: WebGpuBackend, x: Tensor, outer: number, n: number, inner: number): Tensor {
  const y = be.empty('i32', [outer, inner]);
  if (outer * inner === 0) return y;
  const g = geometry(outer, n, inner, true);
  if (g.chunks === 1) {
    be.ctx.dispatch({
      family: REDUCE, entry: 'argmax_main', inputs: { x }, outputs: { outi: y },
      params: params(n, inner, g), overrides: overrides(g), workgroups: grid1d(Math.ceil(g.cols / g.COLS)),
    });
    return y;
  }
  const pv = tmp(be, 'f32', [outer, g.chunks, inner]);
  const pi = tmp(be, 'i32', [outer, g.chunks, inner]);
  be.ctx.dispatch({
    family: REDUCE, entry: 'argmax_partial', inputs: { x }, outputs: { out: pv, pidx: pi },
    params: params(n, inner, g), overrides: overrides(g), workgroups: grid1d(Math.ceil(g.cols / g.COLS)),
  });
  const g2 = geometry(outer, g.chunks, inner, false);
  be.ctx.dispatch({
    family: REDUCE, entry: 'argmax_final', inputs: { x: pv }, outputs: { pidx: pi, outi: y },
    params: params(g.chunks, inner, g2), overrides: overrides(g2), workgroups: grid1d(Math.ceil(g2.cols / g2.COLS)),
  });
  pv.dispose();
  pi.dispose();
  return y;
}

// ------------------------------------------------------------------ softmax

export function softmax(be: WebGpuBackend, x: Tensor, outer: number, n: number, inner: number): Tensor {
  const y = be.empty('f32', [outer, n, inner]);
  if (outer * n * inner === 0) return y;
  // The split path's second pass assumes rows (inner == 1, one chunk per workgroup).
  const g = geometry(outer, n, inner, inner === 1);
  if (g.chunks === 1) {
    be.ctx.dispatch({
      ...laneKernel(be, g, 'softmax_main'), inputs: { x }, outputs: { out: y },
      params: params(n, inner, g), overrides: overrides(g), workgroups: grid1d(Math.ceil(g.cols / g.COLS)),
    });
    return y;
  }
  const pm = tmp(be, 'f32', [outer, g.chunks]);
  const ps = tmp(be, 'f32', [outer, g.chunks]);
  be.ctx.dispatch({
    ...laneKernel(be, g, 'softmax_stats'), inputs: { x }, outputs: { out: pm, out2: ps },
    params: params(n, inner, g), overrides: overrides(g), workgroups: grid1d(Math.ceil(g.cols / g.COLS)),
  });
  // one workgroup (COLS = 1, SPLIT = 256) per chunk
  const ga: Geom = { ...g, COLS: 1, SPLIT: WG, rowMode: true };
  be.ctx.dispatch({
    ...laneKernel(be, ga, 'softmax_apply'), inputs: { x, pa: pm, pb: ps }, outputs: { out: y },
    params: params(n, 1, ga), overrides: overrides(ga), workgroups: grid1d(ga.cols),
  });
  pm.dispose();
  ps.dispose();
  return y;
}

// ------------------------------------------------------------------ cumsum

/** Per-chunk sums [outer, chunks, inner] for a given chunking (a split reduce_main). */
function chunkTotals(be: WebGpuBackend, x: Tensor, outer: number, n: number, inner: number, chunks: number, chunkLen: number): Tensor {
  const base = geometry(outer, chunkLen, inner, false);
  const g: Geom = { ...base, chunks, chunkLen, cols: outer * chunks * inner };
  const part = tmp(be, 'f32', [outer, chunks, inner]);
  be.ctx.dispatch({
    family: REDUCE, entry: 'reduce_main', inputs: { x }, outputs: { out: part },
    params: params(n, inner, g), overrides: overrides(g, { OP: 0 }), workgroups: grid1d(Math.ceil(g.cols / g.COLS)),
  });
  return part;
}

export function cumsum(be: WebGpuBackend, x: Tensor, outer: number, n: number, inner: number): Tensor {
  const y = be.empty('f32', [outer, n, inner]);
  if (outer * n * inner === 0) return y;
  let chunks = 1;
  let chunkLen = n;
  if (inner === 1) {
    if (outer < TARGET_GROUPS && n >= SCAN_SPLIT_MIN_N) {
      chunkLen = SCAN_CHUNK;
      chunks = Math.ceil(n / chunkLen);
    }
    const scanWg = Math.min(WG, Math.max(32, nextPow2(Math.ceil(chunkLen / SCAN_E))));
    const g = { chunks, chunkLen, cols: outer * chunks };
    const ov = { SCAN_WG: scanWg };
    if (chunks === 1) {
      be.ctx.dispatch({
        family: REDUCE, entry: 'cumsum_rows', inputs: { x }, outputs: { out: y },
        params: params(n, 1, g), overrides: ov, workgroups: grid1d(g.cols),
      });
    } else {
      const part = chunkTotals(be, x, outer, n, 1, chunks, chunkLen);
      be.ctx.dispatch({
        family: REDUCE, entry: 'cumsum_rows_carry', inputs: { x, pa: part }, outputs: { out: y },
        params: params(n, 1, g), overrides: ov, workgroups: grid1d(g.cols),
      });
      part.dispose();
    }
    return y;
  }
  const q0 = outer * inner;
  if (q0 < SCAN_COLS_TARGET && n >= 128) {
    chunks = Math.min(Math.ceil(n / 64), Math.ceil(SCAN_COLS_TARGET / q0));
    chunkLen = Math.ceil(n / chunks);
    chunks = Math.ceil(n / chunkLen);
  }
  const g = { chunks, chunkLen, cols: q0 * chunks };
  if (chunks === 1) {
    be.ctx.dispatch({
      family: REDUCE, entry: 'cumsum_cols', inputs: { x }, outputs: { out: y },
      params: params(n, inner, g), workgroups: grid1d(Math.ceil(g.cols / WG)),
    });
  } else {
    const part = chunkTotals(be, x, outer, n, inner, chunks, chunkLen);
    be.ctx.dispatch({
      family: REDUCE, entry: 'cumsum_cols_carry', inputs: { x, pa: part }, outputs: { out: y },
      params: params(n, inner, g), workgroups: grid1d(Math.ceil(g.cols / WG)),
    });
    part.dispose();
  }
  return y;
}

// ------------------------------------------------------------------ topk

interface SortArgs {
  n?: number;
  k?: number;
  len?: number;
  blocks?: number;
  width?: number;
  stage?: number;
  step?: number;
  groups: number;
}

function sortParams(a: SortArgs): Params {
  return new Params().u32(a.n ?? 0, a.k ?? 0, a.len ?? 0, a.blocks ?? 0, a.width ?? 0, a.stage ?? 0, a.step ?? 0, a.groups);
}

function blockOverrides(blk: number): Record<string, number> {
  return { BLK: blk, TPB: Math.min(TPB, blk / 2) };
}

export function topk(be: WebGpuBackend, x: Tensor, rows: number, n: number, k: number): [Tensor, Tensor] {
  const vals = be.empty('f32', [rows, k]);
  const idxs = be.empty('i32', [rows, k]);
  if (rows * k === 0) return [vals, idxs];
  const width = nextPow2(Math.max(n, 2));

  if (width <= SORT_BLK) {
    // the whole row in one shared-memory block
    be.ctx.dispatch({
      family: SORT, entry: 'final_x', inputs: { x }, outputs: { vals, idxs },
      params: sortParams({ n, k, groups: rows }), overrides: blockOverrides(width), workgroups: grid1d(rows),
    });
    return [vals, idxs];
  }

  if (k <= SELECT_MAX_K) {
    // select rounds: every block of SORT_BLK keeps its first k pairs
    let blocks = Math.ceil(n / SORT_BLK);
    let cur = tmp(be, 'i32', [rows * blocks * k * 2]);
    be.ctx.dispatch({
      family: SORT, entry: 'select_x', inputs: { x }, outputs: { pb: cur },
      params: sortParams({ n, k, blocks, groups: rows * blocks }), overrides: blockOverrides(SORT_BLK),
      workgroups: grid1d(rows * blocks),
    });
    let len = blocks * k;
    while (len > SORT_BLK) {
      blocks = Math.ceil(len / SORT_BLK);
      const next = tmp(be, 'i32', [rows * blocks * k * 2]);
      be.ctx.dispatch({
        family: SORT, entry: 'select_pairs', inputs: {}, outputs: { pa: cur, pb: next },
        params: sortParams({ n, k, len, blocks, groups: rows * blocks }), overrides: blockOverrides(SORT_BLK),
        workgroups: grid1d(rows * blocks),
      });
      cur.dispose();
      cur = next;
      len = blocks * k;
    }
    be.ctx.dispatch({
      family: SORT, entry: 'final_pairs', inputs: { x }, outputs: { pa: cur, vals, idxs },
      params: sortParams({ n, k, len, groups: rows }), overrides: blockOverrides(nextPow2(Math.max(len, 2))),
      workgroups: grid1d(rows),
    });
    cur.dispose();
    return [vals, idxs];
  }

  // global bitonic sort of [rows, width] pairs
  const blocks = width / SORT_BLK;
  const pairs = tmp(be, 'i32', [rows * width * 2]);
  const ov = blockOverrides(SORT_BLK);
  be.ctx.dispatch({
    family: SORT, entry: 'presort_x', inputs: { x }, outputs: { pa: pairs },
    params: sortParams({ n, blocks, width, groups: rows * blocks }), overrides: ov, workgroups: grid1d(rows * blocks),
  });
  const halfPairs = (rows * width) / 2;
  for (let stage = 2 * SORT_BLK; stage <= width; stage *= 2) {
    let step = stage / 2;
    for (; step >= 2 * SORT_BLK; step /= 4) {
      // two substeps (step, step / 2) per dispatch
      be.ctx.dispatch({
        family: SORT, entry: 'merge_global2', inputs: {}, outputs: { pa: pairs },
        params: sortParams({ width, stage, step, groups: halfPairs / 2 }), overrides: { TPB },
        workgroups: grid1d(Math.ceil(halfPairs / 2 / TPB)),
      });
    }
    if (step >= SORT_BLK) {
      be.ctx.dispatch({
        family: SORT, entry: 'merge_global', inputs: {}, outputs: { pa: pairs },
        params: sortParams({ width, stage, step, groups: halfPairs }), overrides: { TPB },
        workgroups: grid1d(Math.ceil(halfPairs / TPB)),
      });
    }
    be.ctx.dispatch({
      family: SORT, entry: 'merge_local', inputs: {}, outputs: { pa: pairs },
      params: sortParams({ blocks, width, stage, groups: rows * blocks }), overrides: ov, workgroups: grid1d(rows * blocks),
    });
  }
  be.ctx.dispatch({
    family: SORT, entry: 'gather_final', inputs: { x }, outputs: { pa: pairs, vals, idxs },
    params: sortParams({ n, k, width, groups: rows * k }), overrides: { TPB }, workgroups: grid1d(Math.ceil((rows * k) / TPB)),
  });
  pairs.dispose();
  return [vals, idxs];
}
