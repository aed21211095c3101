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
import type { ConvParams } from '../../backend.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { Params, grid1d } from '../context.js';
import { CONV, NT, WG_NAIVE } from '../kernels/conv.wgsl.js';

const NAIVE_MAX_COUTG = 2;

export type ConvPath = 'auto' | 'gemm' | '1x1' | 'naive';

function header(p: ConvParams, tilesP: number, tilesM: number, tiles: number, hasBias: boolean, wgm = 0): Params {
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
    .u32(hasBias ? 1 : 0, wgm, 0, 0);
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
  if (entry === 'auto') entry = Coutg <= NAIVE_MAX_COUTG ? 'naive' : is1x1(p) ? '1x1' : 'gemm';
  if (entry === '1x1' && !is1x1(p)) throw new Error('webgpu conv: the 1x1 path needs a 1x1x1 kernel, stride 1 and no padding');
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
