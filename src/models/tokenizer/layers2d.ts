// 2D layers of the image tokenizers (Cosmos-Tokenizer modules/layers2d.py, fact sheet §6-§7):
// GroupNorm(32, eps 1e-6), 3x3 convs with padding 1, ResnetBlock, AttnBlock, Downsample
// (zero pad right/bottom, 3x3 stride 2), Upsample (nearest 2x, 3x3), and the blocks the shared
// encoder / decoder trunk (coder.ts) is built from for images. Tensors are [B, C, H, W]; keys
// have no `.conv3d` / `.norm` wrappers (`norm1.weight`, `conv1.weight`, `downsample.conv.weight`).
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { ImageArch } from './config.js';
import { type Blocks, log2i, pointwiseRows } from './coder.js';
import { Patcher, UnPatcher } from './wavelet.js';

const EPS = 1e-6;
const GROUPS = 32;

/** nn.Conv2d with bias. */
export class Conv2d extends Module {
  private readonly w;
  private readonly b;
  constructor(readonly cin: number, readonly cout: number, readonly k: number, readonly stride = 1, readonly padding = 0) {
    super();
    this.w = this.param('weight', [cout, cin, k, k]);
    this.b = this.param('bias', [cout]);
  }
  get weight(): Tensor {
    return this.w.t;
  }
  get bias(): Tensor {
    return this.b.t;
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.conv(x, this.w.t, this.b.t, { stride: this.stride, padding: this.padding }));
  }
}

/** Normalize(): GroupNorm(32 groups, eps 1e-6, affine). */
export class GroupNorm32 extends Module {
  private readonly w;
  private readonly b;
  constructor(readonly channels: number) {
    super();
    this.w = this.param('weight', [channels]);
    this.b = this.param('bias', [channels]);
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.groupNorm(x, GROUPS, this.w.t, this.b.t, EPS));
  }

  /** SiLU(norm(x)) in one pass; when a capture records this norm, its output and then the SiLU. */
  forwardSilu(x: Tensor): Tensor {
    if (this.wantsTap()) return scope(() => F.silu(this.forward(x)));
    return F.groupNorm(x, GROUPS, this.w.t, this.b.t, EPS, { silu: true });
  }
}

export class ResnetBlock extends Module {
  readonly norm1: GroupNorm32;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm32;
  readonly conv2: Conv2d;
  readonly nin_shortcut: Conv2d | null;
  constructor(readonly cin: number, readonly cout: number) {
    super();
    this.norm1 = this.add('norm1', new GroupNorm32(cin));
    this.conv1 = this.add('conv1', new Conv2d(cin, cout, 3, 1, 1));
    this.norm2 = this.add('norm2', new GroupNorm32(cout));
    this.conv2 = this.add('conv2', new Conv2d(cout, cout, 3, 1, 1));
    this.nin_shortcut = cin !== cout ? this.add('nin_shortcut', new Conv2d(cin, cout, 1)) : null;
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      let h = this.conv1.forward(this.norm1.forwardSilu(x));
      h = this.conv2.forward(this.norm2.forwardSilu(h));
      return F.add(this.nin_shortcut ? this.nin_shortcut.forward(x) : x, h);
    }));
  }
}

/** Single-head attention over the H*W positions, scale C^-1/2, 1x1 conv q/k/v/proj_out. */
export class AttnBlock extends Module {
  readonly norm: GroupNorm32;
  readonly q: Conv2d;
  readonly k: Conv2d;
  readonly v: Conv2d;
  readonly proj_out: Conv2d;
  constructor(readonly channels: number) {
    super();
    const c = channels;
    this.norm = this.add('norm', new GroupNorm32(c));
    this.q = this.add('q', new Conv2d(c, c, 1));
    this.k = this.add('k', new Conv2d(c, c, 1));
    this.v = this.add('v', new Conv2d(c, c, 1));
    this.proj_out = this.add('proj_out', new Conv2d(c, c, 1));
  }
  forward(x: Tensor): Tensor {
    const [B, C, H, W] = x.shape;
    return this.tap(scope(() => {
      const hp = F.permute(this.norm.forward(x), [0, 2, 3, 1]).reshape([B * H * W, C]);
      const shape = [B, 1, H * W, C];
      const q = pointwiseRows(this.q, hp).reshape(shape);
      const k = pointwiseRows(this.k, hp).reshape(shape);
      const v = pointwiseRows(this.v, hp).reshape(shape);
      const o = F.attention(q, k, v, { scale: C ** -0.5 }).reshape([B * H * W, C]);
      const y = pointwiseRows(this.proj_out, o).reshape([B, H, W, C]);
      return F.add(x, F.permute(y, [0, 3, 1, 2]));
    }));
  }
}

export class Downsample extends Module {
  readonly conv: Conv2d;
  constructor(c: number) {
    super();
    this.conv = this.add('conv', new Conv2d(c, c, 3, 2, 0));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => this.conv.forward(F.pad(x, [[0, 0], [0, 0], [0, 1], [0, 1]]))));
  }
}

export class Upsample extends Module {
  readonly conv: Conv2d;
  constructor(c: number) {
    super();
    this.conv = this.add('conv', new Conv2d(c, c, 3, 1, 1));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => this.conv.forward(F.upsampleNearest(x, [2, 2]))));
  }
}

/**
 * The image trunk: Downsample on encoder levels i < n_sd (the last level may downsample too),
 * Upsample on decoder levels i >= num_levels - n_su.
 */
export const IMAGE_BLOCKS: Blocks<ImageArch> = {
  patcherName: 'patcher',
  unpatcherName: 'unpatcher',
  patcher: (a) => new Patcher(a.patchSize, a.patchMethod),
  unpatcher: (a) => new UnPatcher(a.patchSize, a.patchMethod),
  patchVolume: (p) => p * p,
  conv: (cin, cout) => new Conv2d(cin, cout, 3, 1, 1),
  pointwise: (cin, cout) => new Conv2d(cin, cout, 1),
  resnet: (cin, cout) => new ResnetBlock(cin, cout),
  attention: (c) => new AttnBlock(c),
  norm: (c) => new GroupNorm32(c),
  downsampler: (a, i, _levels, c) => (i < log2i(a.spatialCompression) - log2i(a.patchSize) ? new Downsample(c) : null),
  upsampler: (a, i, levels, c) => (i >= levels - (log2i(a.spatialCompression) - log2i(a.patchSize)) ? new Upsample(c) : null),
};
