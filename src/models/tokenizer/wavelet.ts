// Haar wavelet patchers (Cosmos-Tokenizer modules/patching.py, patch_method "haar").
//
// One DWT level maps every 2x2x2 (video) or 2x2 (image) block of each channel to 8 (4) sub-band
// values. Upstream does it with depthwise stride-2 convolutions by the filters
// low = [a, a], high = [a, -a] (a = 1/sqrt 2) along each axis, then rescales (by 1/(2 sqrt 2) in
// 3D, 1/2 in 2D), so that per block
//   band[b] = sum_p sign(b, p) x[p] / n,   sign(b, p) = (-1)^popcount(b & p),
// with n = 8 (4) the block size, p the position in the block and b the band, both written with
// one bit per axis (1 = odd sample / high-pass). The inverse is x[p] = sum_b sign(b, p) band[b].
// Here a level is: one strided gather that moves each block's samples to a trailing axis, one
// small matmul by that sign matrix, one gather that puts the bands in front of the channels.
// The filter constants are fixed; the checkpoints' `wavelets` buffers are ignored.
//
// Band order and bits (fact sheet §4):
// - 3D: band = 4 t + 2 h + w (LLL, LLH, ..., HHH with letters (T, H, W)); output channel =
//   band * C + c (band-major). Patcher3D first repeats frame 0 patch_size times (causal); the
//   unpatcher drops the first patch_size - 1 frames at the end.
// - 2D: band = 2 w + h (LL, LH, HL, HH with the FIRST letter the width filter).
// The reflect padding upstream adds at the end of each axis is never read for the even sizes
// the tokenizers allow, so it is omitted.
import type { Backend } from '../../engine/backend.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { TokenizerConfigError, TokenizerInputError, gotShape } from './errors.js';

function popcount(v: number): number {
  let n = 0;
  for (let x = v; x; x >>= 1) n += x & 1;
  return n;
}

/** Per-backend cache of the constant sign matrices (tiny, kept for the process lifetime). */
const matrices = new WeakMap<Backend, Map<string, Tensor>>();

/**
 * The [n, n] matrix of one Haar level as a linear weight [out, in].
 * forward: out = band, in = position, value sign / n. inverse: out = position, in = band, sign.
 * `bitOf` maps an axis bit of the block position to the bit of the same axis in the band index.
 */
function haarMatrix(backend: Backend, n: number, inverse: boolean, posBitToBandBit: (p: number) => number): Tensor {
  const key = `${n}:${inverse}`;
  let cache = matrices.get(backend);
  if (!cache) matrices.set(backend, (cache = new Map()));
  const hit = cache.get(key);
  if (hit && !hit.isDisposed) return hit;
  const m = new Float32Array(n * n);
  for (let band = 0; band < n; band++) {
    for (let pos = 0; pos < n; pos++) {
      const s = popcount(band & posBitToBandBit(pos)) % 2 ? -1 : 1;
      if (inverse) m[pos * n + band] = s;
      else m[band * n + pos] = s / n;
    }
  }
  const t = F.fromArray(backend, m, [n, n]).keep();
  cache.set(key, t);
  return t;
}

// 3D: the block position axes come out of the gather as (t, h, w), i.e. pos = 4 pt + 2 ph + pw,
// the same bit layout as the band index.
const same = (p: number) => p;
// 2D: positions are (h, w): pos = 2 ph + pw, while band = 2 w_bit + h_bit: swap the two bits.
const swap2 = (p: number) => ((p & 1) << 1) | ((p >> 1) & 1);

function log2Int(v: number, what: string): number {
  const l = Math.log2(v);
  if (!Number.isInteger(l) || l < 0) throw new TokenizerConfigError(what, `must be a power of two, got ${v}`);
  return l;
}

/** One 3D DWT level: [B, C, T, H, W] (all even) -> [B, 8C, T/2, H/2, W/2]. */
export function haarDwt3d(x: Tensor): Tensor {
  return scope(() => {
    const [B, C, T, H, W] = x.shape;
    const t2 = T / 2;
    const h2 = H / 2;
    const w2 = W / 2;
    const blocks = F.permute(x.reshape([B, C, t2, 2, h2, 2, w2, 2]), [0, 1, 2, 4, 6, 3, 5, 7]);
    const bands = F.linear(blocks.reshape([B * C * t2 * h2 * w2, 8]), haarMatrix(x.backend, 8, false, same));
    return F.permute(bands.reshape([B, C, t2 * h2 * w2, 8]), [0, 3, 1, 2]).reshape([B, 8 * C, t2, h2, w2]);
  });
}

/** Inverse of haarDwt3d: [B, 8C, T, H, W] -> [B, C, 2T, 2H, 2W]. */
export function haarIdwt3d(x: Tensor): Tensor {
  return scope(() => {
    const [B, C8, T, H, W] = x.shape;
    const C = C8 / 8;
    const bandsLast = F.permute(x.reshape([B, 8, C * T * H * W]), [0, 2, 1]);
    const pos = F.linear(bandsLast.reshape([B * C * T * H * W, 8]), haarMatrix(x.backend, 8, true, same));
    return F.permute(pos.reshape([B, C, T, H, W, 2, 2, 2]), [0, 1, 2, 5, 3, 6, 4, 7]).reshape([B, C, 2 * T, 2 * H, 2 * W]);
  });
}

/** One 2D DWT level: [B, C, H, W] (even) -> [B, 4C, H/2, W/2]. */
export function haarDwt2d(x: Tensor): Tensor {
  return scope(() => {
    const [B, C, H, W] = x.shape;
    const h2 = H / 2;
    const w2 = W / 2;
    const blocks = F.permute(x.reshape([B, C, h2, 2, w2, 2]), [0, 1, 2, 4, 3, 5]);
    const bands = F.linear(blocks.reshape([B * C * h2 * w2, 4]), haarMatrix(x.backend, 4, false, swap2));
    return F.permute(bands.reshape([B, C, h2 * w2, 4]), [0, 3, 1, 2]).reshape([B, 4 * C, h2, w2]);
  });
}

/** Inverse of haarDwt2d: [B, 4C, H, W] -> [B, C, 2H, 2W]. */
export function haarIdwt2d(x: Tensor): Tensor {
  return scope(() => {
    const [B, C4, H, W] = x.shape;
    const C = C4 / 4;
    const bandsLast = F.permute(x.reshape([B, 4, C * H * W]), [0, 2, 1]);
    const pos = F.linear(bandsLast.reshape([B * C * H * W, 4]), haarMatrix(x.backend, 4, true, swap2));
    return F.permute(pos.reshape([B, C, H, W, 2, 2]), [0, 1, 2, 4, 3, 5]).reshape([B, C, 2 * H, 2 * W]);
  });
}

function checkPatchMethod(method: string): void {
  if (method !== 'haar') {
    throw new TokenizerConfigError('patch_method', `only "haar" is implemented (released tokenizers use it), got ${JSON.stringify(method)}`);
  }
}

/** Video patcher: [B, C, T, H, W] -> [B, C p³, (T-1)/p + 1, H/p, W/p] (fact sheet §4). */
export class Patcher3D extends Module {
  readonly levels: number;
  constructor(readonly patchSize: number, method = 'haar') {
    super();
    checkPatchMethod(method);
    this.levels = log2Int(patchSize, 'patch_size');
  }

  /**
   * `first` (default): the clip starts here, so frame 0 is repeated patch_size times. A later
   * chunk of a stream (its frame count a multiple of patch_size) continues without it.
   */
  forward(x: Tensor, first = true): Tensor {
    const p = this.patchSize;
    const [, , T, H, W] = x.shape;
    const total = first ? T + p - 1 : T;
    if (total % p || H % p || W % p) {
      throw new TokenizerInputError(this.path || 'patcher3d', `T${first ? ' - 1' : ''}, H and W multiples of patch_size ${p}`, gotShape(x.shape));
    }
    return this.tap(scope(() => {
      let h = first && p > 1 ? F.pad(x, [[0, 0], [0, 0], [p - 1, 0]], 'replicate') : x;
      for (let i = 0; i < this.levels; i++) h = haarDwt3d(h);
      return h === x ? F.contiguous(x) : h;
    }));
  }
}

/** Inverse of Patcher3D: [B, C p³, t, h, w] -> [B, C, p t - (p - 1), p h, p w]. */
export class UnPatcher3D extends Module {
  readonly levels: number;
  constructor(readonly patchSize: number, method = 'haar') {
    super();
    checkPatchMethod(method);
    this.levels = log2Int(patchSize, 'patch_size');
  }

  forward(x: Tensor): Tensor {
    const n = 8 ** this.levels;
    if (x.shape[1] % n) throw new TokenizerInputError(this.path || 'unpatcher3d', `channels a multiple of ${n}`, gotShape(x.shape));
    return this.tap(scope(() => {
      let h = x;
      for (let i = 0; i < this.levels; i++) h = haarIdwt3d(h);
      return this.patchSize > 1 ? F.slice(h, 2, this.patchSize - 1) : F.contiguous(h);
    }));
  }
}

/** Image patcher: [B, C, H, W] -> [B, C p², H/p, W/p]. */
export class Patcher extends Module {
  readonly levels: number;
  constructor(readonly patchSize: number, method = 'haar') {
    super();
    checkPatchMethod(method);
    this.levels = log2Int(patchSize, 'patch_size');
  }

  forward(x: Tensor): Tensor {
    const p = this.patchSize;
    const [, , H, W] = x.shape;
    if (H % p || W % p) throw new TokenizerInputError(this.path || 'patcher', `H and W multiples of patch_size ${p}`, gotShape(x.shape));
    return this.tap(scope(() => {
      let h = x;
      for (let i = 0; i < this.levels; i++) h = haarDwt2d(h);
      return h === x ? F.contiguous(x) : h;
    }));
  }
}

/** Inverse of Patcher: [B, C p², h, w] -> [B, C, p h, p w]. */
export class UnPatcher extends Module {
  readonly levels: number;
  constructor(readonly patchSize: number, method = 'haar') {
    super();
    checkPatchMethod(method);
    this.levels = log2Int(patchSize, 'patch_size');
  }

  forward(x: Tensor): Tensor {
    const n = 4 ** this.levels;
    if (x.shape[1] % n) throw new TokenizerInputError(this.path || 'unpatcher', `channels a multiple of ${n}`, gotShape(x.shape));
    return this.tap(scope(() => {
      let h = x;
      for (let i = 0; i < this.levels; i++) h = haarIdwt2d(h);
      return h === x ? F.contiguous(x) : h;
    }));
  }
}
