// conv on kernels/conv.wgsl.ts. Per group the conv is a GEMM out[co, p] = W[co, k] X[k, p] over
// output channels x output positions with k = (ci, tap):
// - conv_1x1: 1x1x1 kernel, stride 1, no padding: a plain GEMM, grid (m tiles, p tiles, groups, N);
// - conv_gemm: everything else, implicit GEMM with the batch folded into the positions,
//   grid (m tiles, p tiles, groups);
// - conv_naive: one invocation per output; the reference, and the path when a group has at most
//   NAIVE_MAX_COUTG output channels (depthwise-like: a 16-row GEMM tile would be >= 7/8 padding;
//   from 3 channels on, e.g. an RGB output conv, the GEMM's 64 FMAs per 16 reads win anyway).
// GEMM tiles (64 invocations, 8 x 8 each): 64 channels x 64 positions, or 16 x 256 when a group
// has <= 32 output channels.
// - conv_tex* (software adapters, where a storage load costs ~13x a texel fetch): the implicit
//   GEMM fed from texture copies of x and of the weights (permuted to [tap][ci][co] by
//   conv_wperm), 32 x 16 or 8 x 32 (channels x positions) register tiles per invocation. It takes
//   groups == 1, f32 x, stride 1 and dilation 1 along width, iW and oW multiples of 4, a (kernel
//   width, width padding) in TEX_WINDOWS ((1, 0) and (3, 1): the 1x1x1, 3x1x1, 1x3x3, 3x3x3 convs
//   of the tokenizers and the Wan VAE), any kernel / stride / padding / dilation along depth and
//   height, and operands that fit one texture. Everything else takes the paths above.
import type { ConvParams } from '../../backend.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { type GpuStorage, Params, bufferBinding, grid1d } from '../context.js';
import { bindingIndex } from '../kernel.js';
import { CONV, NT, TEX_SMALL, TEX_TILES, TEX_W, TEX_WG, TEX_WG_SMALL, TEX_WINDOWS, WG_NAIVE, texEntryName } from '../kernels/conv.wgsl.js';
import { isMesaSoftware } from './matmul.js';

const NAIVE_MAX_COUTG = 2;

export type ConvPath = 'auto' | 'gemm' | '1x1' | 'naive' | 'tex';

/**
 * `software` overrides the adapter detection (undefined: detect); `texVersion` picks the texture
 * entries' reduction: 'c4' (4 input channels per accumulator update, mac4) or 'c1' (one, mac1:
 * the first version, kept for comparison). Tests and benches set them.
 */
export const convConfig: { software: boolean | undefined; texVersion: 'c4' | 'c1' } = { software: undefined, texVersion: 'c4' };

function isSoftware(be: WebGpuBackend): boolean {
  return convConfig.software ?? (be.software && isMesaSoftware(be));
}

function header(p: ConvParams, tilesP: number, tilesM: number, tiles: number, hasBias: boolean, wgm = 0, coutP = 0, cinP = 0): Params {
  const [iD, iH, iW] = p.inSize;
  const [oD, oH, oW] = p.outSize;
  const [kD, kH, kW] = p.kernel;
  const taps = kD * kH * kW;
  const Cg = p.Cin / p.groups;
  const P = oD * oH * oW;
  return new Params()
    .u32(p.N, p.Cin, p.Cout, p.groups)
    .u32(iD, iH, iW, Cg)
    .u32(oD, oH, oW, p.Cout / p.groups)
    .u32(kD, kH, kW, Cg * taps)
    .i32(...p.stride).u32(taps)
    .i32(...p.padding).u32(P)
    .i32(...p.dilation).u32(p.N * P)
    .u32(tilesP, tilesM, tiles, iD * iH * iW)
    .u32(hasBias ? 1 : 0, wgm, coutP, cinP);
}

export function is1x1(p: ConvParams): boolean {
  return p.kernel.every((k) => k === 1) && p.stride.every((s) => s === 1) && p.padding.every((q) => q === 0);
}

/**
 * out [N, Cout, oD, oH, oW] (f32). `path` forces one entry point (tests compare the paths);
 * 'auto' picks as described at the top of this file.
 */
export function conv(be: WebGpuBackend, x: Tensor, w: Tensor, bias: Tensor | null, p: ConvParams, path: ConvPath = 'auto'): Tensor {
  const [oD, oH, oW] = p.outSize;
  const P = oD * oH * oW;
  const y = be.empty('f32', [p.N, p.Cout, oD, oH, oW]);
  if (y.size === 0) return y;
  const Coutg = p.Cout / p.groups;
  let entry = path;
  if (entry === 'auto') {
    entry = isSoftware(be) && texApplies(be, x, p) ? 'tex' : Coutg <= NAIVE_MAX_COUTG ? 'naive' : is1x1(p) ? '1x1' : 'gemm';
  }
  if (entry === '1x1' && !is1x1(p)) throw new Error('webgpu conv: the 1x1 path needs a 1x1x1 kernel, stride 1 and no padding');
  if (entry === 'tex') {
    if (!texApplies(be, x, p)) throw new Error('webgpu conv: the texture path does not take this conv (see texApplies)');
    texConv(be, x, w, bias, y, p);
    return y;
  }
  // the bias binding is always bound (the WGSL reads it under a uniform flag): x stands in, so
  // with and without bias share a module whenever bias and x have one dtype
  const inputs = { x, w, bias: bias ?? x };
  const hasBias = bias !== null;
  if (entry === 'naive') {
    be.ctx.dispatch({
      family: CONV, entry: 'conv_naive', inputs, outputs: { out: y },
      params: header(p, 0, 0, 0, hasBias), overrides: { WG_NAIVE },
      workgroups: grid1d(Math.ceil(y.size / WG_NAIVE)),
    });
    return y;
  }
  const wgm = Coutg <= 32 ? 2 : 8;
  const BM = 8 * wgm;
  const BN = (8 * NT) / wgm;
  const tilesM = Math.ceil(Coutg / BM);
  if (entry === '1x1') {
    const tilesP = Math.ceil(P / BN);
    const tiles = tilesM * tilesP * p.groups * p.N;
    be.ctx.dispatch({
      family: CONV, entry: 'conv_1x1', inputs, outputs: { out: y },
      params: header(p, tilesP, tilesM, tiles, hasBias, wgm),
      workgroups: grid1d(tiles),
    });
    return y;
  }
  const tilesP = Math.ceil((p.N * P) / BN);
  const tiles = tilesM * tilesP * p.groups;
  be.ctx.dispatch({
    family: CONV, entry: 'conv_gemm', inputs, outputs: { out: y },
    params: header(p, tilesP, tilesM, tiles, hasBias, wgm),
    workgroups: grid1d(tiles),
  });
  return y;
}

// ------------------------------------------------------------------ texture path

const texels = (elems: number) => Math.ceil(elems / 4);
const texRowsFor = (elems: number) => Math.max(1, Math.ceil(texels(elems) / TEX_W));
const coutPad = (p: ConvParams) => Math.ceil(p.Cout / 4) * 4;
const cinPad = (p: ConvParams) => Math.ceil(p.Cin / 4) * 4;

/** Whether conv_tex* takes this conv (see the top of this file). */
export function texApplies(be: WebGpuBackend, x: Tensor, p: ConvParams): boolean {
  const maxRows = be.ctx.device.limits.maxTextureDimension2D;
  const taps = p.kernel[0] * p.kernel[1] * p.kernel[2];
  return p.groups === 1 && x.dtype === 'f32' && p.Cin > 0 && p.stride[2] === 1 && p.dilation[2] === 1 &&
    p.inSize[2] % 4 === 0 && p.outSize[2] % 4 === 0 && TEX_WINDOWS.some(([k, q]) => k === p.kernel[2] && q === p.padding[2]) &&
    maxRows >= TEX_W && texRowsFor(x.size) <= maxRows && texRowsFor((taps * cinPad(p) + 1) * coutPad(p)) <= maxRows;
}

/** Free textures by height, reused call after call (uses are ordered in the command stream). */
const TEX_POOL_BYTES = 256 * 2 ** 20;
const texPools = new WeakMap<WebGpuBackend, { free: Map<number, GPUTexture[]>; bytes: number }>();

/** Heights are rounded up to quarter-octave classes so that the pool serves varying sizes. */
function rowClass(rows: number, maxRows: number): number {
  if (rows <= 8) return rows;
  const step = 2 ** Math.floor(Math.log2(rows)) / 4;
  return Math.min(maxRows, Math.ceil(rows / step) * step);
}

function takeTexture(be: WebGpuBackend, elems: number): GPUTexture {
  let pool = texPools.get(be);
  if (!pool) {
    pool = { free: new Map(), bytes: 0 };
    texPools.set(be, pool);
  }
  const rows = rowClass(texRowsFor(elems), be.ctx.device.limits.maxTextureDimension2D);
  const tex = pool.free.get(rows)?.pop();
  if (tex) {
    pool.bytes -= rows * TEX_W * 16;
    return tex;
  }
  return be.ctx.device.createTexture({
    size: [TEX_W, rows], format: 'rgba32uint', usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST, label: 'conv operand',
  });
}

/** Back to the pool, at most 2 per height and TEX_POOL_BYTES in all (destroyed once the work using it is submitted). */
function releaseTexture(be: WebGpuBackend, tex: GPUTexture): void {
  const pool = texPools.get(be)!;
  const bytes = tex.height * TEX_W * 16;
  const list = pool.free.get(tex.height) ?? [];
  if (list.length >= 2 || pool.bytes + bytes > TEX_POOL_BYTES) {
    be.ctx.destroyAfterSubmit(tex);
    return;
  }
  list.push(tex);
  pool.free.set(tex.height, list);
  pool.bytes += bytes;
}

/** The first `elems` f32 elements of t into tex, from texel 0 (the tail of a texel beyond t is garbage, never read). */
function copyToTexture(enc: GPUCommandEncoder, t: Tensor, tex: GPUTexture, elems: number): void {
  const buffer = (t.storage as GpuStorage).buffer;
  const n = texels(elems);
  const full = Math.floor(n / TEX_W);
  const rem = n - full * TEX_W;
  const bytesPerRow = TEX_W * 16;
  if (full) enc.copyBufferToTexture({ buffer, bytesPerRow }, { texture: tex }, [TEX_W, full]);
  if (rem) enc.copyBufferToTexture({ buffer, offset: full * bytesPerRow, bytesPerRow }, { texture: tex, origin: [0, full] }, [rem, 1]);
}

/**
 * Permute the weights (conv_wperm), copy x and them into textures and run the texture entry,
 * recorded after everything before it on the context's encoder (GpuContext.encode).
 */
function texConv(be: WebGpuBackend, x: Tensor, w: Tensor, bias: Tensor | null, y: Tensor, p: ConvParams): void {
  const ctx = be.ctx;
  const taps = p.kernel[0] * p.kernel[1] * p.kernel[2];
  const coutP = coutPad(p);
  const tile = p.Cout > 16 ? 'conv_tex32x16' : 'conv_tex8x32';
  const [bm, bn] = TEX_TILES[tile];
  const [oD, oH, oW] = p.outSize;
  const tilesM = Math.ceil(coutP / bm);
  const tilesP = Math.ceil((p.N * oD * oH * oW) / bn);
  const tiles = tilesM * tilesP;
  const params = header(p, tilesP, tilesM, tiles, bias !== null, 0, coutP, cinPad(p));
  const wp = be.empty('f32', [(taps * cinPad(p) + 1) * coutP]);
  const biasT = bias ?? x; // never read without has_bias; any read-only buffer fills the slot
  ctx.dispatch({
    family: CONV, entry: 'conv_wperm', inputs: { w, bias: biasT }, outputs: { out: wp }, params, overrides: { TEX_WG },
    workgroups: grid1d(Math.ceil(wp.size / TEX_WG)),
  });
  for (const t of [x, y]) t.assertAlive();
  const wg = tiles < TEX_SMALL ? TEX_WG_SMALL : TEX_WG;
  const pipe = ctx.pipeline(CONV, texEntryName(tile, p.kernel[2], p.padding[2], convConfig.texVersion === 'c4'), {}, { out: 'f32' }, [], { TEX_WG: wg });
  const tx = takeTexture(be, x.size);
  const tw = takeTexture(be, wp.size);
  ctx.encode((enc) => {
    copyToTexture(enc, x, tx, x.size);
    copyToTexture(enc, wp, tw, wp.size);
    const bindGroup = ctx.device.createBindGroup({
      layout: ctx.layout(pipe),
      entries: [
        { binding: 0, resource: { buffer: ctx.uniform(params) } },
        bufferBinding(bindingIndex(CONV, 'out'), y),
        { binding: 5, resource: tx.createView() },
        { binding: 6, resource: tw.createView() },
      ],
    });
    const pass = ctx.beginPass(enc);
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bindGroup);
    const [gx, gy, gz] = grid1d(Math.ceil(tiles / wg));
    pass.dispatchWorkgroups(gx, gy, gz);
    pass.end();
  });
  ctx.dispatches++;
  // back to the pool at once: a later call that takes one records its copy after this pass
  releaseTexture(be, tx);
  releaseTexture(be, tw);
  // submitted work keeps its own reference to the buffer; the pool hands it out only to later work
  wp.dispose();
}
