// layer / rms / group norm on kernels/norm.wgsl.ts. All three reduce contiguous rows (group norm: the
// Cg * S values of one (sample, group)). The channel-first L2 normalisation (l2_channels) is one
// invocation per (n, s) column (norm_l2c), reading the column's C strided values twice.
// - Rows up to SPLIT_ABOVE elements: one workgroup per row (norm_row: statistics and output in
//   one dispatch; 32 invocations for rows up to 256 values, else 256).
// - Longer rows (group norm over a whole frame: 524288 values): a split reduction over
//   CHUNK-element pieces (norm_partial, many workgroups per row), a merge per row
//   (norm_combine) and an elementwise pass (norm_apply).
import type { NormParams } from '../../backend.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { Params, grid1d } from '../context.js';
import { NORM, WG } from '../kernels/norm.wgsl.js';

/** Workgroup size for reducing `n` values: 32 for short rows (up to 8 values per invocation,
 *  no idle invocations, 5 tree levels), else 256. Two sizes keep the pipeline count low. */
const wgFor = (n: number) => (n <= 256 ? 32 : WG);
/** rows longer than this use the split reduction */
export const SPLIT_ABOVE = 16384;
/** elements per workgroup of the split reduction (16 per invocation) */
export const CHUNK = 4096;
const KIND = { layer: 0, rms: 1, group: 2, l2_channels: 1 } as const;

export function norm(be: WebGpuBackend, x: Tensor, weight: Tensor | null, bias: Tensor | null, p: NormParams): Tensor {
  const y = be.empty('f32', x.shape);
  if (x.size === 0) return y;
  if (p.kind === 'l2_channels') {
    const cols = p.N * p.S;
    const params = new Params().u32(0, 0, p.S, p.C, 1, 0, 0).f32(p.eps).u32(cols, weight ? 1 : 0, 0, p.silu ? 1 : 0);
    be.ctx.dispatch({
      family: NORM, entry: 'norm_l2c', inputs: { x, w: weight ?? x }, outputs: { out: y }, params,
      overrides: { KIND: KIND.rms, WG }, workgroups: grid1d(Math.ceil(cols / WG)),
    });
    return y;
  }
  const group = p.kind === 'group';
  const rows = group ? p.N * p.groups : p.rows;
  const Cg = group ? p.C / p.groups : p.D;
  const S = group ? p.S : 1;
  const G = group ? p.groups : 1;
  const L = Cg * S;
  const split = L > SPLIT_ABOVE;
  const chunks = split ? Math.ceil(L / CHUNK) : 1;
  const params = new Params().u32(rows, L, S, Cg, G, chunks, CHUNK).f32(p.eps).u32(rows * L, weight ? 1 : 0, bias ? 1 : 0, 0);
  // w / b are always bound (the WGSL reads them under uniform flags): x stands in when absent
  const affine = { x, w: weight ?? x, b: bias ?? x };
  const overrides = { KIND: KIND[p.kind], WG };
  if (!split) {
    be.ctx.dispatch({
      family: NORM, entry: 'norm_row', inputs: affine, outputs: { out: y }, params,
      overrides: { ...overrides, WG: wgFor(L) }, workgroups: grid1d(rows),
    });
    return y;
  }
  const part = be.empty('f32', [rows * chunks * 2]);
  const stats = be.empty('f32', [rows * 4]);
  be.ctx.dispatch({
    family: NORM, entry: 'norm_partial', inputs: { x }, outputs: { aux_out: part }, params,
    overrides: { KIND: KIND[p.kind], WG }, workgroups: grid1d(rows * chunks),
  });
  be.ctx.dispatch({
    family: NORM, entry: 'norm_combine', inputs: { x, aux: part }, outputs: { aux_out: stats }, params,
    overrides: { KIND: KIND[p.kind], WG: wgFor(chunks) }, workgroups: grid1d(rows),
  });
  be.ctx.dispatch({
    family: NORM, entry: 'norm_apply', inputs: { ...affine, aux: stats }, outputs: { out: y }, params, overrides,
    workgroups: grid1d(Math.ceil((rows * L) / WG)),
  });
  // recorded work keeps its own references to the buffers; the pool hands them out again only
  // to later work
  part.dispose();
  stats.dispose();
  return y;
}
