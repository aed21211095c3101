// Causal 3D layers of the video tokenizers (Cosmos-Tokenizer modules/layers3d.py, fact sheet
// §5-§7): CausalConv3d and its factorised (1,3,3)+(3,1,1) pair, the per-frame GroupNorm, the
// factorised res block, spatial and causal temporal attention, the hybrid resamplers and the
// blocks the shared encoder / decoder trunk (coder.ts) is built from for videos. Tensors are
// [B, C, T, H, W].
//
// Every op only looks back in time. For chunked encoding (stream.ts) the modules that mix
// frames take an optional CausalState: on the first chunk they pad exactly as for a whole clip
// and remember what the next chunk needs (the last frames a temporal conv reads, the keys and
// values of temporal attention); on later chunks they continue from that instead of padding.
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { type Blocks, type CausalState, log2i, pointwiseRows } from './coder.js';
import type { VideoArch } from './config.js';
import { ParamHolder } from './containers.js';
import { Patcher3D, UnPatcher3D } from './wavelet.js';

const EPS = 1e-6;

// ------------------------------------------------------------------ convolution

export interface CausalConvOptions {
  /** spatial stride (H and W) */
  stride?: number;
  timeStride?: number;
  /** zero padding on each side of H and W (upstream default is 1; every caller passes it) */
  padding: number;
}

/**
 * CausalConv3d: `time_pad = (kt - 1) + (1 - time_stride)` copies of the first frame in front,
 * zero spatial padding, then an unpadded nn.Conv3d stored as `conv3d.{weight,bias}`.
 */
export class CausalConv3d extends Module {
  readonly conv3d: ParamHolder;
  readonly kernel: [number, number, number];
  readonly stride: number;
  readonly timeStride: number;
  readonly padding: number;
  readonly timePad: number;

  constructor(readonly cin: number, readonly cout: number, kernel: number | [number, number, number], opts: CausalConvOptions) {
    super();
    this.kernel = typeof kernel === 'number' ? [kernel, kernel, kernel] : kernel;
    this.stride = opts.stride ?? 1;
    this.timeStride = opts.timeStride ?? 1;
    this.padding = opts.padding;
    this.timePad = this.kernel[0] - 1 + (1 - this.timeStride);
    this.conv3d = this.add('conv3d', new ParamHolder({ weight: [cout, cin, ...this.kernel], bias: [cout] }));
  }

  get weight(): Tensor {
    return this.conv3d.get('weight');
  }
  get bias(): Tensor {
    return this.conv3d.get('bias');
  }

  /** The convolution alone, on input whose temporal context is already in front. */
  convPadded(xp: Tensor): Tensor {
    return F.conv(xp, this.weight, this.bias, {
      stride: [this.timeStride, this.stride, this.stride],
      padding: [0, this.padding, this.padding],
    });
  }

  forward(x: Tensor, st?: CausalState): Tensor {
    const tp = this.timePad;
    if (tp <= 0) return this.tap(this.convPadded(x));
    return this.tap(scope(() => {
      const prev = st && !st.first ? st.get(this, 'frames') : undefined;
      const xp = prev ? F.concat([prev, x], 2) : F.pad(x, [[0, 0], [0, 0], [tp, 0]], 'replicate');
      if (st) {
        if (this.timeStride !== 1) throw new Error(`${this.path}: a strided temporal conv cannot carry causal state by itself`);
        st.set(this, 'frames', F.slice(xp, 2, xp.shape[2] - tp));
      }
      return this.convPadded(xp);
    }));
  }
}

/** nn.Sequential(CausalConv3d (1,3,3) pad 1, CausalConv3d (3,1,1) pad 0): keys `.0.` / `.1.`. */
export class FactorizedConv3d extends Module {
  readonly spatial: CausalConv3d;
  readonly temporal: CausalConv3d;
  constructor(cin: number, cout: number) {
    super();
    this.spatial = this.add(0, new CausalConv3d(cin, cout, [1, 3, 3], { padding: 1 }));
    this.temporal = this.add(1, new CausalConv3d(cout, cout, [3, 1, 1], { padding: 0 }));
  }
  forward(x: Tensor, st?: CausalState): Tensor {
    return this.tap(scope(() => this.temporal.forward(this.spatial.forward(x, st), st)));
  }
}

// ------------------------------------------------------------------ normalisation

/**
 * CausalNormalize(num_groups=1): GroupNorm(1 group, eps 1e-6, affine) per frame (time folded
 * into the batch), so statistics are over (C, H, W) of each frame. Keys `norm.{weight,bias}`.
 */
export class CausalNormalize extends Module {
  readonly norm: ParamHolder;
  constructor(readonly channels: number) {
    super();
    this.norm = this.add('norm', new ParamHolder({ weight: [channels], bias: [channels] }));
  }

  /** Normalised x in frame-major layout [B, T, C, H, W]. */
  framesFirst(x: Tensor): Tensor {
    return scope(() => {
      const [B, C, T, H, W] = x.shape;
      const xf = T === 1 ? x.reshape([B, T, C, H, W]) : F.permute(x, [0, 2, 1, 3, 4]);
      return F.groupNorm(xf.reshape([B * T, C, H * W]), 1, this.norm.get('weight'), this.norm.get('bias'), EPS).reshape([B, T, C, H, W]);
    });
  }

  forward(x: Tensor): Tensor {
    return this.tap(this.run(x, false));
  }

  /** SiLU(norm(x)) in one pass; when a capture records this norm, its output and then the SiLU. */
  forwardSilu(x: Tensor): Tensor {
    if (this.wantsTap()) return scope(() => F.silu(this.forward(x)));
    return this.run(x, true);
  }

  /** The per-frame norm read and written in x's own layout (no permutes to and from frame-major). */
  private run(x: Tensor, silu: boolean): Tensor {
    const [B, C, T, H, W] = x.shape;
    return scope(() => F.groupNorm(x.reshape([B, C, T, H * W]), 1, this.norm.get('weight'), this.norm.get('bias'), EPS, { silu, perFrame: true }).reshape(x.shape));
  }
}

// ------------------------------------------------------------------ blocks

/** norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, plus the (1x1x1 nin_shortcut) input. */
export class CausalResnetBlockFactorized3d extends Module {
  readonly norm1: CausalNormalize;
  readonly conv1: FactorizedConv3d;
  readonly norm2: CausalNormalize;
  readonly conv2: FactorizedConv3d;
  readonly nin_shortcut: CausalConv3d | null;

  constructor(readonly cin: number, readonly cout: number) {
    super();
    this.norm1 = this.add('norm1', new CausalNormalize(cin));
    this.conv1 = this.add('conv1', new FactorizedConv3d(cin, cout));
    this.norm2 = this.add('norm2', new CausalNormalize(cout));
    this.conv2 = this.add('conv2', new FactorizedConv3d(cout, cout));
    this.nin_shortcut = cin !== cout ? this.add('nin_shortcut', new CausalConv3d(cin, cout, 1, { padding: 0 })) : null;
  }

  forward(x: Tensor, st?: CausalState): Tensor {
    return this.tap(scope(() => {
      let h = this.norm1.forwardSilu(x);
      h = this.conv1.forward(h, st);
      h = this.norm2.forwardSilu(h);
      h = this.conv2.forward(h, st);
      const s = this.nin_shortcut ? this.nin_shortcut.forward(x) : x;
      return F.add(s, h);
    }));
  }
}

/** The shared parameters of both attention blocks: norm, q, k, v, proj_out (1x1x1 convs). */
abstract class AttnBase extends Module {
  readonly norm: CausalNormalize;
  readonly q: CausalConv3d;
  readonly k: CausalConv3d;
  readonly v: CausalConv3d;
  readonly proj_out: CausalConv3d;
  constructor(readonly channels: number) {
    super();
    this.norm = this.add('norm', new CausalNormalize(channels));
    this.q = this.add('q', new CausalConv3d(channels, channels, 1, { padding: 0 }));
    this.k = this.add('k', new CausalConv3d(channels, channels, 1, { padding: 0 }));
    this.v = this.add('v', new CausalConv3d(channels, channels, 1, { padding: 0 }));
    this.proj_out = this.add('proj_out', new CausalConv3d(channels, channels, 1, { padding: 0 }));
  }
}

/** CausalAttnBlock: single-head attention over the H*W positions of each frame, scale C^-1/2. */
export class CausalAttnBlock extends AttnBase {
  forward(x: Tensor): Tensor {
    const [B, C, T, H, W] = x.shape;
    return this.tap(scope(() => {
      const rows = this.norm.framesFirst(x); // [B, T, C, H, W]
      const hp = F.permute(rows, [0, 1, 3, 4, 2]).reshape([B * T * H * W, C]);
      const shape = [B * T, 1, H * W, C];
      const q = pointwiseRows(this.q, hp).reshape(shape);
      const k = pointwiseRows(this.k, hp).reshape(shape);
      const v = pointwiseRows(this.v, hp).reshape(shape);
      const o = F.attention(q, k, v, { scale: C ** -0.5 }).reshape([B * T * H * W, C]);
      const y = pointwiseRows(this.proj_out, o).reshape([B, T, H, W, C]);
      return F.add(x, F.permute(y, [0, 4, 1, 2, 3]));
    }));
  }
}

/**
 * CausalTemporalAttnBlock: for every (b, h, w) single-head attention over the frames with a
 * causal mask (frame i sees 0..i), scale C^-1/2. In a stream the keys and values of all earlier
 * frames of this layer are kept and the chunk's queries attend to them as well.
 */
export class CausalTemporalAttnBlock extends AttnBase {
  forward(x: Tensor, st?: CausalState): Tensor {
    const [B, C, T, H, W] = x.shape;
    return this.tap(scope(() => {
      const rows = this.norm.framesFirst(x); // [B, T, C, H, W]
      const hp = F.permute(rows, [0, 3, 4, 1, 2]).reshape([B * H * W * T, C]);
      const shape = [B * H * W, 1, T, C];
      const q = pointwiseRows(this.q, hp).reshape(shape);
      let k = pointwiseRows(this.k, hp).reshape(shape);
      let v = pointwiseRows(this.v, hp).reshape(shape);
      if (st) {
        const pk = st.first ? undefined : st.get(this, 'k');
        const pv = st.first ? undefined : st.get(this, 'v');
        if (pk && pv) {
          k = F.concat([pk, k], 2);
          v = F.concat([pv, v], 2);
        }
        st.set(this, 'k', k);
        st.set(this, 'v', v);
      }
      // causal: query i (of the last T frames) sees keys 0 .. i + (keys - T)
      const o = F.attention(q, k, v, { scale: C ** -0.5, causal: true }).reshape([B * H * W * T, C]);
      const y = pointwiseRows(this.proj_out, o).reshape([B, H, W, T, C]);
      return F.add(x, F.permute(y, [0, 4, 3, 1, 2]));
    }));
  }
}

/** nn.Sequential(CausalAttnBlock, CausalTemporalAttnBlock): keys `.0.` (spatial), `.1.` (temporal). */
export class AttnPair extends Module {
  readonly spatial: CausalAttnBlock;
  readonly temporal: CausalTemporalAttnBlock;
  constructor(channels: number) {
    super();
    this.spatial = this.add(0, new CausalAttnBlock(channels));
    this.temporal = this.add(1, new CausalTemporalAttnBlock(channels));
  }
  forward(x: Tensor, st?: CausalState): Tensor {
    return this.tap(scope(() => this.temporal.forward(this.spatial.forward(x), st)));
  }
}

// ------------------------------------------------------------------ resamplers

/** Mean of each 2x2 block of the trailing (H, W) axes (H, W even). */
function avgPoolHW(x: Tensor): Tensor {
  const [B, C, T, H, W] = x.shape;
  return scope(() => {
    const r = x.reshape([B * C * T, H / 2, 2, W / 2, 2]);
    return F.mean(F.mean(r, 4), 2).reshape([B, C, T, H / 2, W / 2]);
  });
}

/** Mean of consecutive frame pairs (T even). */
function avgPoolT(x: Tensor): Tensor {
  const [B, C, T, H, W] = x.shape;
  return F.mean(x.reshape([B, C, T / 2, 2, H * W]), 3).reshape([B, C, T / 2, H, W]);
}

/**
 * CausalHybridDownsample3d. Only the convs the flags use are declared (released checkpoints
 * lack the others): conv1 (1,3,3) stride 2 iff spatial, conv2 (3,1,1) time stride 2 iff
 * temporal, conv3 1x1x1 iff either.
 */
export class CausalHybridDownsample3d extends Module {
  readonly conv1: CausalConv3d | null;
  readonly conv2: CausalConv3d | null;
  readonly conv3: CausalConv3d | null;
  constructor(readonly channels: number, readonly spatialDown: boolean, readonly temporalDown: boolean) {
    super();
    const c = channels;
    this.conv1 = spatialDown ? this.add('conv1', new CausalConv3d(c, c, [1, 3, 3], { stride: 2, padding: 0 })) : null;
    this.conv2 = temporalDown ? this.add('conv2', new CausalConv3d(c, c, [3, 1, 1], { timeStride: 2, padding: 0 })) : null;
    this.conv3 = spatialDown || temporalDown ? this.add('conv3', new CausalConv3d(c, c, 1, { padding: 0 })) : null;
  }

  forward(x: Tensor, st?: CausalState): Tensor {
    if (!this.conv3) return this.tap(x);
    return this.tap(scope(() => {
      let h = x;
      if (this.conv1) {
        // zero pad right/bottom, (1,3,3) conv stride 2, plus the 2x2 mean of the same input
        const xp = F.pad(h, [[0, 0], [0, 0], [0, 0], [0, 1], [0, 1]]);
        h = F.add(this.conv1.forward(xp), avgPoolHW(h));
      }
      if (this.conv2) {
        const prev = st && !st.first ? st.get(this, 'frame') : undefined;
        let conv: Tensor;
        let pool: Tensor;
        if (!prev) {
          // [x0, x0, x1, ...]; conv2 pads one more x0 itself; mean over ([x0,x0], [x1,x2], ...)
          const xc = F.concat([F.slice(h, 2, 0, 1), h], 2);
          conv = this.conv2.forward(xc);
          pool = avgPoolT(xc);
        } else {
          // a later chunk (even frame count): the previous chunk's last frame is the context
          const xc = F.concat([prev, h], 2);
          conv = this.conv2.convPadded(xc);
          pool = avgPoolT(F.slice(xc, 2, 1));
        }
        if (st) st.set(this, 'frame', F.slice(h, 2, h.shape[2] - 1));
        h = F.add(conv, pool);
      }
      return this.conv3!.forward(h);
    }));
  }
}

/**
 * CausalHybridUpsample3d: conv1 (3,1,1) iff temporal, conv2 (1,3,3) iff spatial, conv3 iff
 * either (note the roles of conv1/conv2 are swapped compared with the downsampler).
 */
export class CausalHybridUpsample3d extends Module {
  readonly conv1: CausalConv3d | null;
  readonly conv2: CausalConv3d | null;
  readonly conv3: CausalConv3d | null;
  constructor(readonly channels: number, readonly spatialUp: boolean, readonly temporalUp: boolean) {
    super();
    const c = channels;
    this.conv1 = temporalUp ? this.add('conv1', new CausalConv3d(c, c, [3, 1, 1], { padding: 0 })) : null;
    this.conv2 = spatialUp ? this.add('conv2', new CausalConv3d(c, c, [1, 3, 3], { padding: 1 })) : null;
    this.conv3 = spatialUp || temporalUp ? this.add('conv3', new CausalConv3d(c, c, 1, { padding: 0 })) : null;
  }

  forward(x: Tensor): Tensor {
    if (!this.conv3) return this.tap(x);
    return this.tap(scope(() => {
      let h = x;
      if (this.conv1) {
        // every frame twice, the first dropped: [x0, x1, x1, x2, x2, ...]; a single frame stays
        if (h.shape[2] > 1) h = F.slice(F.repeatInterleave(h, 2, 2), 2, 1);
        h = F.add(this.conv1.forward(h), h);
      }
      if (this.conv2) {
        h = F.upsampleNearest(h, [2, 2]);
        h = F.add(this.conv2.forward(h), h);
      }
      return this.conv3!.forward(h);
    }));
  }
}

// ------------------------------------------------------------------ the video trunk

/**
 * The factorised video trunk: a hybrid downsampler on every encoder level but the last (spatial
 * on the first n_sd, temporal on the first n_td), a hybrid upsampler on every decoder level but
 * level 0 (which of its convs exist follows upstream's legacy_mode rule).
 */
export const VIDEO_BLOCKS: Blocks<VideoArch> = {
  patcherName: 'patcher3d',
  unpatcherName: 'unpatcher3d',
  patcher: (a) => new Patcher3D(a.patchSize, a.patchMethod),
  unpatcher: (a) => new UnPatcher3D(a.patchSize, a.patchMethod),
  patchVolume: (p) => p ** 3,
  conv: (cin, cout) => new FactorizedConv3d(cin, cout),
  pointwise: (cin, cout) => new CausalConv3d(cin, cout, 1, { padding: 0 }),
  resnet: (cin, cout) => new CausalResnetBlockFactorized3d(cin, cout),
  attention: (c) => new AttnPair(c),
  norm: (c) => new CausalNormalize(c),
  downsampler(a, i, levels, c) {
    if (i === levels - 1) return null;
    const nsd = log2i(a.spatialCompression) - log2i(a.patchSize);
    const ntd = log2i(a.temporalCompression) - log2i(a.patchSize);
    return new CausalHybridDownsample3d(c, i < nsd, i < ntd);
  },
  upsampler(a, i, levels, c) {
    if (i === 0) return null;
    const nsu = log2i(a.spatialCompression) - log2i(a.patchSize);
    const ntu = log2i(a.temporalCompression) - log2i(a.patchSize);
    const r = levels - i - 1;
    const temporalUp = a.legacyMode ? r < ntu : r > 0 && r < ntu + 1;
    const spatialUp = temporalUp || (r < nsu && nsu > ntu);
    return new CausalHybridUpsample3d(c, spatialUp, temporalUp);
  },
};
