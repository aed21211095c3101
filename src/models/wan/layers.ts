// The building blocks of the Wan VAE (fact sheet wan_vae.md §4-§6, §10): the causal conv with its
// feature cache, the channel-first RMS norm, the residual and attention blocks, the resamplers
// and the Wan2.2 parameter-free shortcuts. Tensors are [B, C, T, H, W]; module paths are the
// diffusers checkpoint keys.
//
// Every module runs on one piece of the clip at a time and carries what the next piece needs in
// a PieceCache: a 3-frame causal conv keeps the last 2 frames of its zero-front-padded input, the
// temporal downsampler its last spatially downsampled frame, the temporal upsampler whether it
// has seen its first frame. Fed the same frames in any piece split the resamplers accept, the
// concatenated outputs equal those of the whole clip run with zero front padding.
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, numel, scope } from '../../engine/tensor.js';
import { ModuleList } from '../tokenizer/containers.js';

/** What the modules of one encode or decode carry from one piece to the next. */
export class PieceCache {
  /** true while the first piece runs (decode: latent frame 0) */
  first = true;
  private readonly slots = new Map<Module, Tensor>();
  private readonly seen = new Set<Module>();

  get(owner: Module): Tensor | undefined {
    return this.slots.get(owner);
  }
  /** Store t for owner (the cache owns it from now on; the previous value is freed). */
  set(owner: Module, t: Tensor): void {
    const old = this.slots.get(owner);
    this.slots.set(owner, t.keep());
    if (old && old !== t) old.dispose();
  }
  /** Whether owner has run before in this encode / decode; marks it as having run. */
  visit(owner: Module): boolean {
    if (this.seen.has(owner)) return true;
    this.seen.add(owner);
    return false;
  }
  /** Device bytes held (f32 activations). */
  bytes(): number {
    let b = 0;
    for (const t of this.slots.values()) b += 4 * t.size;
    return b;
  }
  dispose(): void {
    for (const t of this.slots.values()) t.dispose();
    this.slots.clear();
    this.seen.clear();
  }
}

const f32Bytes = (shape: readonly number[]) => 4 * numel(shape);

/** Free `t` unless it is `keep` (an input the caller still owns). */
function release(t: Tensor, keep?: Tensor): void {
  if (t !== keep) t.dispose();
}

// ------------------------------------------------------------------ convolution

/**
 * WanCausalConv3d: `weight` [out, in, kt, kh, kw] + `bias`; spatial zero padding p on each side,
 * temporal 2·p_t zero frames in front only. With a cache the front context comes from the
 * previous piece instead of zeros.
 */
export class WanCausalConv3d extends Module {
  private readonly w: Param;
  private readonly b: Param;
  /** frames of context in front (0 for a 1x1x1 conv) */
  readonly context: number;

  constructor(
    readonly cin: number,
    readonly cout: number,
    readonly kernel: readonly [number, number, number],
    readonly padding: readonly [number, number, number],
  ) {
    super();
    this.context = 2 * padding[0];
    if (this.context !== kernel[0] - 1 && padding[0] !== 0) throw new Error(`WanCausalConv3d: kernel ${kernel} with padding ${padding} is not causal`);
    this.w = this.param('weight', [cout, cin, ...kernel]);
    this.b = this.param('bias', [cout]);
  }
  get weight(): Tensor {
    return this.w.t;
  }
  get bias(): Tensor {
    return this.b.t;
  }

  /** The bare convolution on input that already holds its temporal context. */
  convPadded(xp: Tensor, timeStride = 1): Tensor {
    return F.conv(xp, this.weight, this.bias, { stride: [timeStride, 1, 1], padding: [0, this.padding[1], this.padding[2]] });
  }

  forward(x: Tensor, cache: PieceCache | null): Tensor {
    const ctx = this.context;
    if (ctx === 0) return this.tap(this.convPadded(x));
    return this.tap(scope(() => {
      const prev = cache?.get(this);
      const y = this.causal(prev, x);
      if (cache) cache.set(this, lastFrames(prev, x, ctx));
      return y;
    }));
  }

  /**
   * Conv over [prev | zeros, x]. When the padded input or the output would not fit one binding
   * of the backend, each output frame is computed from its own ctx + 1 input frames, so that no
   * kernel binds more than a few frames.
   */
  private causal(prev: Tensor | undefined, x: Tensor): Tensor {
    const ctx = this.context;
    const [B, , T, H, W] = x.shape;
    const limit = x.backend.limits.maxBindingBytes;
    const padded = [B, this.cin, T + ctx, H, W];
    const out = [B, this.cout, T, H + 2 * this.padding[1] - this.kernel[1] + 1, W + 2 * this.padding[2] - this.kernel[2] + 1];
    if (T === 1 || (f32Bytes(padded) <= limit && f32Bytes(out) <= limit)) {
      const xp = prev ? F.concat([prev, x], 2) : F.pad(x, [[0, 0], [0, 0], [ctx, 0]]);
      const y = this.convPadded(xp);
      xp.dispose();
      return y;
    }
    const frames: Tensor[] = [];
    for (let j = 0; j < T; j++) {
      frames.push(scope(() => {
        const win = window(prev, x, ctx, j, j + ctx + 1);
        return this.convPadded(win);
      }));
    }
    const y = F.concat(frames, 2);
    for (const f of frames) f.dispose();
    return y;
  }
}

/**
 * Frames [a, b) of the padded sequence [prev (ctx frames) or ctx zeros, x]; zeros come only in
 * front, as padding.
 */
function window(prev: Tensor | undefined, x: Tensor, ctx: number, a: number, b: number): Tensor {
  const parts: Tensor[] = [];
  let zeros = 0;
  if (a < ctx) {
    if (prev) parts.push(F.slice(prev, 2, a, Math.min(b, ctx)));
    else zeros = Math.min(b, ctx) - a;
  }
  if (b > ctx) parts.push(F.slice(x, 2, Math.max(a, ctx) - ctx, b - ctx));
  const cat = parts.length === 1 ? parts[0] : F.concat(parts, 2);
  return zeros ? F.pad(cat, [[0, 0], [0, 0], [zeros, 0]]) : cat;
}

/** The last ctx frames of [prev | zeros, x]: the context of the next piece. */
function lastFrames(prev: Tensor | undefined, x: Tensor, ctx: number): Tensor {
  const T = x.shape[2];
  return window(prev, x, ctx, T, T + ctx);
}

// ------------------------------------------------------------------ normalisation

/**
 * WanRMS_norm, channel-first: x / max(‖x‖₂ over C, 1e-12) · sqrt(C) · gamma at every other
 * position. gamma is (C,1,1,1) in residual blocks and heads, (C,1,1) in attention blocks; an
 * all-zero vector gives 0.
 */
export class WanRMSNorm extends Module {
  private readonly g: Param;
  constructor(readonly channels: number, images: boolean) {
    super();
    this.g = this.param('gamma', images ? [channels, 1, 1] : [channels, 1, 1, 1]);
  }

  /** x [B, C, ...]: normalised over axis 1. */
  forward(x: Tensor): Tensor {
    return this.tap(this.run(x, false));
  }

  /** SiLU(norm(x)) in one pass (what the residual blocks and heads use; records no tap of the norm). */
  forwardSilu(x: Tensor): Tensor {
    return this.run(x, true);
  }

  private run(x: Tensor, silu: boolean): Tensor {
    const C = this.channels;
    return scope(() => F.l2NormalizeChannels(x, F.scale(this.g.t.reshape([C]), Math.sqrt(C)), 1e-12, { silu }));
  }
}

// ------------------------------------------------------------------ blocks

/** WanResidualBlock: norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, plus the (1x1x1) shortcut. */
export class WanResidualBlock extends Module {
  readonly norm1: WanRMSNorm;
  readonly conv1: WanCausalConv3d;
  readonly norm2: WanRMSNorm;
  readonly conv2: WanCausalConv3d;
  readonly conv_shortcut: WanCausalConv3d | null;

  constructor(readonly cin: number, readonly cout: number) {
    super();
    this.norm1 = this.add('norm1', new WanRMSNorm(cin, false));
    this.conv1 = this.add('conv1', new WanCausalConv3d(cin, cout, [3, 3, 3], [1, 1, 1]));
    this.norm2 = this.add('norm2', new WanRMSNorm(cout, false));
    this.conv2 = this.add('conv2', new WanCausalConv3d(cout, cout, [3, 3, 3], [1, 1, 1]));
    this.conv_shortcut = cin !== cout ? this.add('conv_shortcut', new WanCausalConv3d(cin, cout, [1, 1, 1], [0, 0, 0])) : null;
  }

  forward(x: Tensor, cache: PieceCache): Tensor {
    return this.tap(scope(() => {
      let h = this.norm1.forwardSilu(x);
      let next = this.conv1.forward(h, cache);
      h.dispose();
      h = this.norm2.forwardSilu(next);
      next.dispose();
      next = this.conv2.forward(h, cache);
      h.dispose();
      if (!this.conv_shortcut) return F.add(next, x);
      const s = this.conv_shortcut.forward(x, null);
      const y = F.add(next, s);
      next.dispose();
      s.dispose();
      return y;
    }));
  }
}

/** A 1x1 Conv2d's parameters (`weight` [out, in, 1, 1], `bias`). */
class Conv2dParams extends Module {
  readonly weight: Param;
  readonly bias: Param;
  constructor(readonly cin: number, readonly cout: number, readonly k: number) {
    super();
    this.weight = this.param('weight', [cout, cin, k, k]);
    this.bias = this.param('bias', [cout]);
  }
  /** the weight as a 3D kernel [out, in, 1, k, k] */
  get kernel3d(): Tensor {
    return this.weight.t.reshape([this.cout, this.cin, 1, this.k, this.k]);
  }
}

/**
 * WanAttentionBlock: single-head attention over the H·W positions of each frame (no mask, no
 * temporal mixing), q/k/v from one 1x1 conv (channels [0,C), [C,2C), [2C,3C)), scale C^-1/2,
 * a 1x1 output projection, plus the un-normalised input.
 */
export class WanAttentionBlock extends Module {
  readonly norm: WanRMSNorm;
  readonly to_qkv: Conv2dParams;
  readonly proj: Conv2dParams;

  constructor(readonly channels: number) {
    super();
    this.norm = this.add('norm', new WanRMSNorm(channels, true));
    this.to_qkv = this.add('to_qkv', new Conv2dParams(channels, 3 * channels, 1));
    this.proj = this.add('proj', new Conv2dParams(channels, channels, 1));
  }

  forward(x: Tensor): Tensor {
    const [B, C, T, H, W] = x.shape;
    const L = H * W;
    return this.tap(scope(() => {
      const n = this.norm.forward(x);
      const rows = F.permute(n, [0, 2, 3, 4, 1]).reshape([B * T * L, C]);
      n.dispose();
      const wqkv = this.to_qkv.weight.t.reshape([3 * C, C]);
      const bqkv = this.to_qkv.bias.t;
      const head = (i: number) => F.linear(rows, F.slice(wqkv, 0, i * C, (i + 1) * C), F.slice(bqkv, 0, i * C, (i + 1) * C)).reshape([B * T, 1, L, C]);
      const o = F.attention(head(0), head(1), head(2), { scale: C ** -0.5 }).reshape([B * T * L, C]);
      const y = F.linear(o, this.proj.weight.t.reshape([C, C]), this.proj.bias.t).reshape([B, T, H, W, C]);
      return F.add(F.permute(y, [0, 4, 1, 2, 3]), x);
    }));
  }
}

/** WanMidBlock (one layer): resnets.0 -> attentions.0 -> resnets.1, width unchanged. */
export class WanMidBlock extends Module {
  readonly resnets: ModuleList<WanResidualBlock>;
  readonly attentions: ModuleList<WanAttentionBlock>;
  constructor(readonly channels: number) {
    super();
    this.resnets = this.add('resnets', new ModuleList<WanResidualBlock>());
    this.attentions = this.add('attentions', new ModuleList<WanAttentionBlock>());
    this.resnets.push(new WanResidualBlock(channels, channels));
    this.attentions.push(new WanAttentionBlock(channels));
    this.resnets.push(new WanResidualBlock(channels, channels));
  }
  forward(x: Tensor, cache: PieceCache): Tensor {
    return this.tap(scope(() => {
      const a = this.resnets.at(0).forward(x, cache);
      const b = this.attentions.at(0).forward(a);
      a.dispose();
      return this.resnets.at(1).forward(b, cache);
    }));
  }
}

// ------------------------------------------------------------------ resamplers

export type ResampleMode = 'upsample2d' | 'upsample3d' | 'downsample2d' | 'downsample3d';

/** `resample` = nn.Sequential(Upsample | ZeroPad2d, Conv2d): the conv sits at index 1. */
class ResampleSeq extends Module {
  readonly conv: Conv2dParams;
  constructor(cin: number, cout: number) {
    super();
    this.conv = this.add(1, new Conv2dParams(cin, cout, 3));
  }
}

/**
 * WanResample (§6). Spatial steps run per frame (as 3D convs with a (1,3,3) kernel); the temporal
 * convs follow the first-frame rules: downsample3d passes frame 0 on untouched and then convolves
 * (s[2k-2], s[2k-1], s[2k]); upsample3d passes frame 0 on untouched and turns every later frame
 * into two, with frame 0 replaced by zeros in their causal context.
 */
export class WanResample extends Module {
  readonly resample: ResampleSeq;
  readonly time_conv: WanCausalConv3d | null;

  constructor(readonly dim: number, readonly mode: ResampleMode, readonly outDim = dim / 2) {
    super();
    const up = mode.startsWith('up');
    this.resample = this.add('resample', new ResampleSeq(dim, up ? outDim : dim));
    this.time_conv =
      mode === 'upsample3d' ? this.add('time_conv', new WanCausalConv3d(dim, 2 * dim, [3, 1, 1], [1, 0, 0]))
      : mode === 'downsample3d' ? this.add('time_conv', new WanCausalConv3d(dim, dim, [3, 1, 1], [0, 0, 0]))
      : null;
  }

  forward(x: Tensor, cache: PieceCache): Tensor {
    return this.tap(scope(() => {
      if (this.mode === 'upsample3d' || this.mode === 'upsample2d') {
        const t = this.mode === 'upsample3d' ? this.timeUp(x, cache) : x;
        const y = this.spatialUp(t);
        release(t, x);
        return y;
      }
      const s = this.spatialDown(x);
      if (this.mode === 'downsample2d') return s;
      return this.timeDown(s, cache);
    }));
  }

  private timeUp(x: Tensor, cache: PieceCache): Tensor {
    if (!cache.visit(this)) return x;
    const [B, C, T, H, W] = x.shape;
    const u = this.time_conv!.forward(x, cache); // [B, 2C, T, H, W]
    // u[k] = (first half, second half) -> two consecutive frames
    const y = F.permute(u.reshape([B, 2, C, T, H * W]), [0, 2, 3, 1, 4]).reshape([B, C, 2 * T, H, W]);
    u.dispose();
    return y;
  }

  private timeDown(s: Tensor, cache: PieceCache): Tensor {
    const T = s.shape[2];
    if (!cache.visit(this)) {
      cache.set(this, F.slice(s, 2, T - 1));
      return s;
    }
    const xc = F.concat([cache.get(this)!, s], 2);
    cache.set(this, F.slice(s, 2, T - 1));
    const y = this.time_conv!.convPadded(xc, 2);
    xc.dispose();
    s.dispose();
    return y;
  }

  /** nearest 2x then Conv2d 3x3 pad 1, frame by frame when the upsampled piece would not fit one binding. */
  private spatialUp(x: Tensor): Tensor {
    const [B, C, T, H, W] = x.shape;
    const conv = this.resample.conv;
    const one = (f: Tensor) => scope(() => F.conv(F.upsampleNearest(f, [2, 2]), conv.kernel3d, conv.bias.t, { padding: [0, 1, 1] }));
    if (T === 1 || f32Bytes([B, Math.max(C, conv.cout), T, 2 * H, 2 * W]) <= x.backend.limits.maxBindingBytes) return one(x);
    const frames: Tensor[] = [];
    for (let t = 0; t < T; t++) frames.push(scope(() => one(F.slice(x, 2, t, t + 1))));
    const y = F.concat(frames, 2);
    for (const f of frames) f.dispose();
    return y;
  }

  /** zero pad right / bottom by one, Conv2d 3x3 stride 2 */
  private spatialDown(x: Tensor): Tensor {
    const conv = this.resample.conv;
    return scope(() => {
      const xp = F.pad(x, [[0, 0], [0, 0], [0, 0], [0, 1], [0, 1]]);
      return F.conv(xp, conv.kernel3d, conv.bias.t, { stride: [1, 2, 2] });
    });
  }
}

// ------------------------------------------------------------------ Wan2.2 shortcuts

/**
 * AvgDown3D: zero frames in front up to a multiple of ft, each ft x fs x fs neighbourhood
 * gathered into channels (c, dt, dy, dx), those split into `out` groups and averaged.
 */
export function avgDown3d(x: Tensor, out: number, ft: number, fs: number): Tensor {
  return scope(() => {
    const padT = (ft - (x.shape[2] % ft)) % ft;
    const xp = padT ? F.pad(x, [[0, 0], [0, 0], [padT, 0]]) : x;
    const [B, C, T, H, W] = xp.shape;
    const [t, h, w] = [T / ft, H / fs, W / fs];
    const g = F.permute(xp.reshape([B, C, t, ft, h, fs, w, fs]), [0, 1, 3, 5, 7, 2, 4, 6]);
    const group = (C * ft * fs * fs) / out;
    return F.mean(g.reshape([B, out, group, t * h * w]), 2).reshape([B, out, t, h, w]);
  });
}

/**
 * DupUp3D: every input channel repeated out·ft·fs²/in times, read as (out, dt, dy, dx) and
 * scattered to ft frames and fs x fs pixels; the first piece drops its first ft - 1 frames.
 */
export function dupUp3d(x: Tensor, out: number, ft: number, fs: number, first: boolean): Tensor {
  return scope(() => {
    const [B, C, T, H, W] = x.shape;
    const r = (out * ft * fs * fs) / C;
    const rep = F.repeatInterleave(x, r, 1).reshape([B, out, ft, fs, fs, T, H, W]);
    const y = F.permute(rep, [0, 1, 5, 2, 6, 3, 7, 4]).reshape([B, out, T * ft, H * fs, W * fs]);
    return first && ft > 1 ? F.slice(y, 2, ft - 1) : y;
  });
}

/** Wan2.2 patchify: (B, C, T, H, W) -> (B, C·p², T, H/p, W/p), channel c·p² + dx·p + dy. */
export function patchify(x: Tensor, p: number): Tensor {
  const [B, C, T, H, W] = x.shape;
  return F.permute(x.reshape([B, C, T, H / p, p, W / p, p]), [0, 1, 6, 4, 2, 3, 5]).reshape([B, C * p * p, T, H / p, W / p]);
}

/** The inverse of patchify. */
export function unpatchify(x: Tensor, p: number): Tensor {
  const [B, Cp, T, h, w] = x.shape;
  const C = Cp / (p * p);
  return F.permute(x.reshape([B, C, p, p, T, h, w]), [0, 1, 4, 5, 3, 6, 2]).reshape([B, C, T, h * p, w * p]);
}
