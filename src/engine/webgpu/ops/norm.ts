// layer / rms / group norm on kernels/norm.wgsl.ts. All three reduce rows (group norm: the Cg * S
// values of one (sample, group), or with `frames` of one (sample, group, frame), whose channel runs
// are then T * S apart). The channel-first L2 normalisation (l2_channels) is one invocation per
// (n, s) column (norm_l2c), reading the column's C strided values twice. Fused tails: SiLU (group,
// l2) and the adaLN modulation (layer: weight / bias rows taken in turn, the weight as 1 + w).
// - Rows up to SPLIT_ABOVE elements: one workgroup per row (norm_row: statistics and output in
//   one dispatch; 32 invocations for rows up to 256 values, else 256).
// - Longer rows (group norm over a whole frame: 524288 values): a split reduction over
//   CHUNK-element pieces (norm_partial, many workgroups per row), a merge per row
//   (norm_combine) and an elementwise pass (norm_apply).
// - Software adapters (llvmpipe), f32 x with rows of a multiple of 4 values: the same two shapes
//   fed from one texture holding x and after it a table of the weight, bias and row statistics
//   (storage loads cost ~7x texel fetches there; measured: a storage-to-storage copy kernel runs
//   at ~1 GB/s, a texture-to-storage one at ~3.6). No workgroup memory. norm_row_tex (an
//   invocation per row) when there are at least TEX_MIN_ROWS rows of up to SPLIT_ABOVE values,
//   else norm_partial_tex (an invocation per TEX_CHUNK values) + norm_combine + norm_apply_tex
//   (APPLY_TEXELS vec4 outputs per invocation, within one channel or row); l2_channels with
//   positions a multiple of 4: norm_l2c_tex (4 columns per invocation). Everything that
//   changes the inner loops (kind, channel layout, affine presence, SiLU, frames) is an override:
//   llvmpipe runs both sides of a uniform branch.
import type { NormParams } from '../../backend.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { type DispatchArgs, type GpuStorage, Params, bufferBinding, grid1d } from '../context.js';
import { bindingIndex } from '../kernel.js';
import { APPLY_TEXELS, NORM, TEX_W, TEX_WG, WG } from '../kernels/norm.wgsl.js';
import { isMesaSoftware } from './matmul.js';

/** Workgroup size for reducing `n` values: 32 for short rows (up to 8 values per invocation,
 *  no idle invocations, 5 tree levels), else 256. Two sizes keep the pipeline count low. */
const wgFor = (n: number) => (n <= 256 ? 32 : WG);
/** rows longer than this use the split reduction */
export const SPLIT_ABOVE = 16384;
/** elements per workgroup of the split reduction (16 per invocation) */
export const CHUNK = 4096;
const KIND = { layer: 0, rms: 1, group: 2, l2_channels: 1 } as const;
/** texture path: rows below this many go through the split statistics (an invocation per row would idle the cores) */
const TEX_MIN_ROWS = 64;
/** texture path: values per invocation of norm_partial_tex */
const TEX_CHUNK = 1024;

/** `software` overrides the adapter detection (undefined: detect); tests and benches use it. */
export const normConfig: { software: boolean | undefined } = { software: undefined };

/** The fields of the WGSL Params block (kernels/norm.wgsl.ts), by name. */
interface NormBlock {
  rows: number;
  L: number;
  S: number;
  Cg: number;
  G: number;
  chunks?: number;
  chunk?: number;
  eps: number;
  total: number;
  hasW?: boolean;
  hasB?: boolean;
  silu?: boolean;
  w0?: number;
  b0?: number;
  st0?: number;
  seg?: number;
  parts?: number;
  T?: number;
  cpc?: number;
  rpm?: number;
  M?: number;
  onep?: boolean;
}

function normParams(b: NormBlock): Params {
  const f = (v: boolean | undefined) => (v ? 1 : 0);
  return new Params().u32(b.rows, b.L, b.S, b.Cg, b.G, b.chunks ?? 1, b.chunk ?? 1).f32(b.eps)
    .u32(b.total, f(b.hasW), f(b.hasB), f(b.silu), b.w0 ?? 0, b.b0 ?? 0, b.st0 ?? 0, b.seg ?? 0, b.parts ?? 0, b.T ?? 1, b.cpc ?? 0, b.rpm ?? 0, b.M ?? 1, f(b.onep));
}

export function norm(be: WebGpuBackend, x: Tensor, weight: Tensor | null, bias: Tensor | null, p: NormParams): Tensor {
  const y = be.empty('f32', x.shape);
  if (x.size === 0) return y;
  if (p.kind === 'l2_channels') {
    const cols = p.N * p.S;
    if ((normConfig.software ?? (be.software && isMesaSoftware(be))) && p.S % 4 === 0 && texApplies(be, x, p.C * p.S, p.C, p.N)) {
      texNorm(be, x, { x, w: weight ?? x, b: x }, y, {
        rows: p.N, L: p.C * p.S, S: p.S, Cg: p.C, G: 1, T: 1, eps: p.eps, hasW: weight !== null, hasB: false, kind: KIND.rms,
        silu: p.silu ?? false, rpm: 0, M: 1, onep: false, l2: true,
      });
      return y;
    }
    const params = normParams({ rows: 0, L: 0, S: p.S, Cg: p.C, G: 1, eps: p.eps, total: cols, hasW: weight !== null, silu: p.silu });
    be.ctx.dispatch({
      family: NORM, entry: 'norm_l2c', inputs: { x, w: weight ?? x }, outputs: { out: y }, params,
      overrides: { KIND: KIND.rms, WG }, workgroups: grid1d(Math.ceil(cols / WG)),
    });
    return y;
  }
  const group = p.kind === 'group';
  // per-frame group norm: x [N, C, T, S], a row per (n, group, frame)
  const T = group ? (p.frames ?? 1) : 1;
  const FRAMES = T > 1 ? 1 : 0;
  const rows = group ? p.N * p.groups * T : p.rows;
  const Cg = group ? p.C / p.groups : p.D;
  const S = group ? p.S / T : 1;
  const G = group ? p.groups : 1;
  const L = Cg * S;
  const split = L > SPLIT_ABOVE;
  const silu = p.silu ?? false;
  // adaLN: weight / bias rows taken in turn every modRows rows
  const rpm = p.modRows ?? 0;
  const M = rpm ? Math.max(weight?.size ?? 0, bias?.size ?? 0) / (G * Cg) : 1;
  const mod = { rpm, M, onep: p.onePlus ?? false };
  const chunks = split ? Math.ceil(L / CHUNK) : 1;
  // w / b are always bound (the WGSL reads them under uniform flags): x stands in when absent
  const affine = { x, w: weight ?? x, b: bias ?? x };
  if ((normConfig.software ?? (be.software && isMesaSoftware(be))) && texApplies(be, x, L, G * Cg * M, rows) && (T === 1 || S % 4 === 0)) {
    texNorm(be, x, affine, y, { rows, L, S, Cg, G, T, eps: p.eps, hasW: weight !== null, hasB: bias !== null, kind: KIND[p.kind], silu, ...mod });
    return y;
  }
  const params = normParams({ rows, L, S, Cg, G, chunks, chunk: CHUNK, eps: p.eps, total: rows * L, hasW: weight !== null, hasB: bias !== null, silu, T, ...mod });
  const overrides = { KIND: KIND[p.kind], WG, FRAMES };
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
    overrides, workgroups: grid1d(rows * chunks),
  });
  be.ctx.dispatch({
    family: NORM, entry: 'norm_combine', inputs: { x, aux: part }, outputs: { aux_out: stats }, params,
    overrides: { ...overrides, WG: wgFor(chunks) }, workgroups: grid1d(rows),
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

// ------------------------------------------------------------------ texture path

function texApplies(be: WebGpuBackend, x: Tensor, L: number, C: number, rows: number): boolean {
  const maxRows = be.ctx.device.limits.maxTextureDimension2D;
  // x, the weight and bias table, a statistics texel per row
  const texels = Math.ceil(x.size / 4) + 2 * Math.ceil(C / 4) + rows;
  return x.dtype === 'f32' && L % 4 === 0 && maxRows >= TEX_W && Math.ceil(texels / TEX_W) <= maxRows;
}

/** One reusable texture per backend, grown as needed (uses are ordered in the command stream), up to TEX_KEEP_BYTES. */
const TEX_KEEP_BYTES = 256 * 2 ** 20;
const texCache = new WeakMap<WebGpuBackend, GPUTexture>();

function textureFor(be: WebGpuBackend, elems: number): GPUTexture {
  const rows = Math.max(1, Math.ceil(elems / 4 / TEX_W));
  const old = texCache.get(be);
  if (old && old.height >= rows) return old;
  // destroyed once the recorded work that reads it is submitted
  if (old) be.ctx.destroyAfterSubmit(old);
  const tex = be.ctx.device.createTexture({
    size: [TEX_W, Math.min(be.ctx.device.limits.maxTextureDimension2D, Math.max(rows, 2 ** Math.ceil(Math.log2(rows))))],
    format: 'rgba32uint', usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST, label: 'norm operand',
  });
  texCache.set(be, tex);
  return tex;
}

interface TexShape {
  rows: number;
  L: number;
  S: number;
  Cg: number;
  G: number;
  T: number;
  eps: number;
  hasW: boolean;
  hasB: boolean;
  kind: number;
  silu: boolean;
  rpm: number;
  M: number;
  onep: boolean;
  /** l2_channels (rows = N, Cg = C): norm_l2c_tex, no statistics pass */
  l2?: boolean;
}

/** Record copies of `texels` texels from `buffer` (at byte `offset`) into `tex` from texel `t0` on (row-major, TEX_W a row). */
function copyTexels(enc: GPUCommandEncoder, buffer: GPUBuffer, offset: number, tex: GPUTexture, t0: number, texels: number): void {
  let t = t0;
  let off = offset;
  let left = texels;
  while (left > 0) {
    const col = t % TEX_W;
    const row = Math.floor(t / TEX_W);
    // a partial row, or as many whole rows as are left
    const n = col || left < TEX_W ? Math.min(left, TEX_W - col) : Math.floor(left / TEX_W) * TEX_W;
    const h = col || left < TEX_W ? 1 : n / TEX_W;
    enc.copyBufferToTexture({ buffer, offset: off, bytesPerRow: TEX_W * 16 }, { texture: tex, origin: [col, row] }, [h > 1 ? TEX_W : n, h]);
    t += n;
    off += n * 16;
    left -= n;
  }
}

/**
 * Copy x and the packed affine table into the texture and run the texture entries on it:
 * everything queued before is flushed, the copies and the dispatches go in a command buffer of
 * their own.
 */
function texNorm(be: WebGpuBackend, x: Tensor, affine: { x: Tensor; w: Tensor; b: Tensor }, y: Tensor, s: TexShape): void {
  const ctx = be.ctx;
  const frames = s.T > 1;
  // per-frame rows are not contiguous: split statistics, chunked along each channel's S values
  const split = !s.l2 && (frames || s.rows < TEX_MIN_ROWS || s.L > SPLIT_ABOVE);
  const cpc = frames ? Math.ceil(s.S / TEX_CHUNK) : 0;
  const chunks = frames ? s.Cg * cpc : split ? Math.ceil(s.L / TEX_CHUNK) : 1;
  const texels = Math.ceil(x.size / 4);
  // the table after x: weight and bias texels (the channel count rounded up to 4), then a texel per row
  // (M rows of them for a modulated norm, each padded to whole texels)
  const cTexels = Math.ceil((s.G * s.Cg) / 4) * s.M;
  const w0 = texels;
  const b0 = w0 + cTexels;
  const st0 = b0 + cTexels;
  const amode = s.S === 1 ? 0 : s.S % 4 === 0 ? 1 : 2;
  // norm_apply_tex: segments of a channel (amode 1) or a row, APPLY_TEXELS texels per invocation
  const seg = amode === 1 ? s.S / 4 : s.L / 4;
  const parts = Math.ceil(seg / APPLY_TEXELS);
  const applyN = (s.rows * s.L) / 4 / seg * parts;
  const params = (o: { chunk?: number; total?: number } = {}) => normParams({
    rows: s.rows, L: s.L, S: s.S, Cg: s.Cg, G: s.G, chunks, chunk: o.chunk ?? TEX_CHUNK, eps: s.eps, total: o.total ?? s.rows * s.L,
    hasW: s.hasW, hasB: s.hasB, silu: s.silu, w0, b0, st0, seg, parts, T: s.T, cpc, rpm: s.rpm, M: s.M, onep: s.onep,
  });
  const main = params();
  // no table without weight and bias (the DiT's LayerNorm): nothing to pack or copy
  const table = s.hasW || s.hasB ? be.empty('f32', [8 * cTexels]) : null;
  const part = split ? be.empty('f32', [s.rows * chunks * 2]) : null;
  const stats = split ? be.empty('f32', [s.rows * 4]) : null;
  const tex = textureFor(be, 4 * (st0 + s.rows));
  const view = tex.createView();
  const run = (enc: GPUCommandEncoder, entry: string, inputs: DispatchArgs['inputs'], outputs: DispatchArgs['outputs'], invocations: number, o: { wgRow?: number; params?: Params } = {}) => {
    const dtypes = Object.fromEntries(Object.entries(inputs).map(([n, t]) => [n, t.dtype]));
    const withTex = entry.endsWith('_tex');
    // workgroups of 8 below 1024 invocations, so that llvmpipe spreads them over its threads
    const wg = o.wgRow ?? (withTex ? (invocations < 1024 ? 8 : TEX_WG) : WG);
    const pipe = ctx.pipeline(NORM, entry, dtypes, { out: 'f32', aux_out: 'f32' }, [], withTex ? { KIND: s.kind, TEX_WG: wg, AMODE: amode, SILU: s.silu ? 1 : 0, AFF: (s.hasW ? 1 : 0) + (s.hasB ? 2 : 0), FRAMES: frames ? 1 : 0 } : { KIND: s.kind, WG: wg, FRAMES: frames ? 1 : 0 });
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: ctx.uniform(o.params ?? main) } }];
    for (const [n, t] of [...Object.entries(inputs), ...Object.entries(outputs)]) entries.push(bufferBinding(bindingIndex(NORM, n), t));
    if (withTex) entries.push({ binding: 7, resource: view });
    const pass = ctx.beginPass(enc);
    pass.setPipeline(pipe);
    pass.setBindGroup(0, ctx.device.createBindGroup({ layout: ctx.layout(pipe), entries }));
    const [gx, gy, gz] = grid1d(Math.ceil(invocations / wg));
    pass.dispatchWorkgroups(gx, gy, gz);
    pass.end();
    ctx.dispatches++;
  };
  ctx.encode((enc) => {
    if (table) {
      run(enc, 'norm_pack', { w: affine.w, b: affine.b }, { aux_out: table }, 4 * cTexels, { params: params({ chunk: 4 * cTexels }) });
      copyTexels(enc, (table.storage as GpuStorage).buffer, 0, tex, w0, 2 * cTexels);
    }
    copyTexels(enc, (x.storage as GpuStorage).buffer, 0, tex, 0, texels);
    if (s.l2) {
      const n4 = (s.rows * s.S) / 4;
      run(enc, 'norm_l2c_tex', {}, { out: y }, n4, { params: params({ total: n4 }) });
    } else if (!split) {
      run(enc, 'norm_row_tex', {}, { out: y }, s.rows);
    } else {
      run(enc, 'norm_partial_tex', {}, { aux_out: part! }, s.rows * chunks);
      // one workgroup per row (wgFor(chunks) invocations); it reads x's first element as the shift
      run(enc, 'norm_combine', { x, aux: part! }, { aux_out: stats! }, s.rows * wgFor(chunks), { wgRow: wgFor(chunks) });
      copyTexels(enc, (stats!.storage as GpuStorage).buffer, 0, tex, st0, s.rows);
      run(enc, 'norm_apply_tex', {}, { out: y }, applyN, { params: params({ total: applyN }) });
    }
  });
  // a big copy is not kept for the next call (destroyed once the work using it is submitted)
  if (tex.height * TEX_W * 16 > TEX_KEEP_BYTES) {
    ctx.destroyAfterSubmit(tex);
    texCache.delete(be);
  }
  table?.dispose();
  part?.dispose();
  stats?.dispose();
}
