// Haar wavelet patchers (Cosmos-Tokenizer modules/patching.py, patch_method "haar").
//
// One DWT level maps every 2x2x2 (video) or 2x2 (image) block of each channel to 8 (4) sub-band
// values. Upstream does it with depthwise stride-2 convolutions by the filters
// low = [a, a], high = [a, -a] (a = 1/sqrt 2) along each axis, then rescales (by 1/(2 sqrt 2) in
// 3D, 1/2 in 2D), so that per block
//   band[b] = sum_p sign(b, p) x[p] / n,   sign(b, p) = (-1)^popcount(b & p),
// with n = 8 (4) the block size, p the position in the block and b the band, both written with
// one bit per axis (1 = odd sample / high-pass). The inverse is x[p] = sum_b sign(b, p) band[b].
// Here a level, for either dimensionality, is: one strided gather that moves each block's
// samples to a trailing axis, one small matmul by that sign matrix, one gather that puts the
// bands in front of the channels.
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
import { type Tensor, numel, scope } from '../../engine/tensor.js';
import { TokenizerConfigError, TokenizerInputError, gotShape } from './errors.js';

function popcount(v: number): number {
  let n = 0;
  for (let x = v; x; x >>= 1) n += x & 1;
  return n;
}

/** The axes one DWT level transforms: the trailing (T, H, W) of a video or (H, W) of an image. */
export type HaarAxes = 2 | 3;

// The block position axes come out of the gather in axis order: pos = 4 pt + 2 ph + pw (3D),
// 2 ph + pw (2D). The 3D band index has the same bit layout; the 2D one is band = 2 w_bit + h_bit,
// so its two bits are swapped.
const bandBitsOf = (axes: HaarAxes, pos: number): number => (axes === 3 ? pos : ((pos & 1) << 1) | ((pos >> 1) & 1));

/** Per-backend cache of the constant sign matrices (tiny, kept for the process lifetime). */
const matrices = new WeakMap<Backend, Map<string, Tensor>>();

/**
 * The [n, n] matrix (n = 2^axes) of one Haar level as a linear weight [out, in].
 * forward: out = band, in = position, value sign / n. inverse: out = position, in = band, sign.
 */
function haarMatrix(backend: Backend, axes: HaarAxes, inverse: boolean): Tensor {
  const n = 2 ** axes;
  const key = `${n}:${inverse}`;
  let cache = matrices.get(backend);
  if (!cache) {
    cache = new Map();
    matrices.set(backend, cache);
  }
  const hit = cache.get(key);
  if (hit && !hit.isDisposed) return hit;
  const m = new Float32Array(n * n);
  for (let band = 0; band < n; band++) {
    for (let pos = 0; pos < n; pos++) {
      const s = popcount(band & bandBitsOf(axes, pos)) % 2 ? -1 : 1;
      if (inverse) m[pos * n + band] = s;
      else m[band * n + pos] = s / n;
    }
  }
  const t = F.fromArray(backend, m, [n, n]).keep();
  cache.set(key, t);
  return t;
}

function log2Int(v: number, what: string): number {
  const l = Math.log2(v);
  if (!Number.isInteger(l) || l < 0) throw new TokenizerConfigError(what, `must be a power of two, got ${v}`);
  return l;
}

/** One DWT level over the trailing `axes` axes: [B, C, ...S] (S even) -> [B, 2^axes C, ...S/2]. */
export function haarDwt(x: Tensor, axes: HaarAxes): Tensor {
  return scope(() => {
    const [B, C, ...sizes] = x.shape;
    const half = sizes.map((s) => s / 2);
    const n = 2 ** axes;
    const cells = numel(half);
    // [B, C, s0/2, 2, s1/2, 2, ...] -> [B, C, s0/2, s1/2, ..., 2, 2, ...]
    const perm = [0, 1, ...half.map((_, i) => 2 + 2 * i), ...half.map((_, i) => 3 + 2 * i)];
    const blocks = F.permute(x.reshape([B, C, ...half.flatMap((h) => [h, 2])]), perm);
    const bands = F.linear(blocks.reshape([B * C * cells, n]), haarMatrix(x.backend, axes, false));
    return F.permute(bands.reshape([B, C, cells, n]), [0, 3, 1, 2]).reshape([B, n * C, ...half]);
  });
}

/** Inverse of haarDwt: [B, 2^axes C, ...S] -> [B, C, ...2S]. */
export function haarIdwt(x: Tensor, axes: HaarAxes): Tensor {
  return scope(() => {
    const [B, Cn, ...sizes] = x.shape;
    const n = 2 ** axes;
    const C = Cn / n;
    const cells = numel(sizes);
    const bandsLast = F.permute(x.reshape([B, n, C * cells]), [0, 2, 1]);
    const pos = F.linear(bandsLast.reshape([B * C * cells, n]), haarMatrix(x.backend, axes, true));
    // [B, C, s0, s1, ..., 2, 2, ...] -> [B, C, s0, 2, s1, 2, ...]
    const perm = [0, 1, ...sizes.flatMap((_, i) => [2 + i, 2 + axes + i])];
    return F.permute(pos.reshape([B, C, ...sizes, ...new Array(axes).fill(2)]), perm).reshape([B, C, ...sizes.map((s) => 2 * s)]);
  });
}

/** patch_size as a number of Haar levels (checked), shared by the four patchers. */
abstract class HaarLevels extends Module {
  readonly levels: number;
  constructor(
    readonly patchSize: number,
    method: string,
    protected readonly axes: HaarAxes,
  ) {
    super();
    if (method !== 'haar') {
      throw new TokenizerConfigError('patch_method', `only "haar" is implemented (released tokenizers use it), got ${JSON.stringify(method)}`);
    }
    this.levels = log2Int(patchSize, 'patch_size');
  }

  protected transform(x: Tensor, inverse: boolean): Tensor {
    let h = x;
    for (let i = 0; i < this.levels; i++) h = inverse ? haarIdwt(h, this.axes) : haarDwt(h, this.axes);
    return h === x ? F.contiguous(x) : h;
  }

  /** Inverse patchers: the channels must hold whole sub-band groups. */
  protected checkBands(x: Tensor, name: string): void {
    const n = (2 ** this.axes) ** this.levels;
    if (x.shape[1] % n) throw new TokenizerInputError(this.path || name, `channels a multiple of ${n}`, gotShape(x.shape));
  }
}

/** Video patcher: [B, C, T, H, W] -> [B, C p³, (T-1)/p + 1, H/p, W/p] (fact sheet §4). */
export class Patcher3D extends HaarLevels {
  constructor(patchSize: number, method = 'haar') {
    super(patchSize, method, 3);
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
    return this.tap(scope(() => this.transform(first && p > 1 ? F.pad(x, [[0, 0], [0, 0], [p - 1, 0]], 'replicate') : x, false)));
  }
}

/** Inverse of Patcher3D: [B, C p³, t, h, w] -> [B, C, p t - (p - 1), p h, p w]. */
export class UnPatcher3D extends HaarLevels {
  constructor(patchSize: number, method = 'haar') {
    super(patchSize, method, 3);
  }

  forward(x: Tensor): Tensor {
    this.checkBands(x, 'unpatcher3d');
    return this.tap(scope(() => {
      const h = this.transform(x, true);
      return this.patchSize > 1 ? F.slice(h, 2, this.patchSize - 1) : h;
    }));
  }
}

/** Image patcher: [B, C, H, W] -> [B, C p², H/p, W/p]. */
export class Patcher extends HaarLevels {
  constructor(patchSize: number, method = 'haar') {
    super(patchSize, method, 2);
  }

  forward(x: Tensor): Tensor {
    const p = this.patchSize;
    const [, , H, W] = x.shape;
    if (H % p || W % p) throw new TokenizerInputError(this.path || 'patcher', `H and W multiples of patch_size ${p}`, gotShape(x.shape));
    return this.tap(scope(() => this.transform(x, false)));
  }
}

/** Inverse of Patcher: [B, C p², h, w] -> [B, C, p h, p w]. */
export class UnPatcher extends HaarLevels {
  constructor(patchSize: number, method = 'haar') {
    super(patchSize, method, 2);
  }

  forward(x: Tensor): Tensor {
    this.checkBands(x, 'unpatcher');
    return this.tap(scope(() => this.transform(x, true)));
  }
}
