// 2D layers of the image tokenizers (Cosmos-Tokenizer modules/layers2d.py, fact sheet §6-§7):
// GroupNorm(32, eps 1e-6), 3x3 convs with padding 1, ResnetBlock, AttnBlock, Downsample
// (zero pad right/bottom, 3x3 stride 2), Upsample (nearest 2x, 3x3), Encoder and Decoder.
// Tensors are [B, C, H, W]; keys have no `.conv3d` / `.norm` wrappers (`norm1.weight`,
// `conv1.weight`, `downsample.conv.weight`).
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { ImageArch } from './config.js';
import { ModuleList } from './containers.js';
import { advance } from './layers3d.js';
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
      let h = this.conv1.forward(F.silu(this.norm1.forward(x)));
      h = this.conv2.forward(F.silu(this.norm2.forward(h)));
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
  private pointwise(conv: Conv2d, rows: Tensor): Tensor {
    const C = this.channels;
    return F.linear(rows, conv.weight.reshape([C, C]), conv.bias);
  }
  forward(x: Tensor): Tensor {
    const [B, C, H, W] = x.shape;
    return this.tap(scope(() => {
      const hp = F.permute(this.norm.forward(x), [0, 2, 3, 1]).reshape([B * H * W, C]);
      const shape = [B, 1, H * W, C];
      const q = this.pointwise(this.q, hp).reshape(shape);
      const k = this.pointwise(this.k, hp).reshape(shape);
      const v = this.pointwise(this.v, hp).reshape(shape);
      const o = F.attention(q, k, v, { scale: C ** -0.5 }).reshape([B * H * W, C]);
      const y = this.pointwise(this.proj_out, o).reshape([B, H, W, C]);
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

export class Level2d<R extends Module> extends Module {
  readonly block = this.add('block', new ModuleList<ResnetBlock>());
  readonly attn = this.add('attn', new ModuleList<AttnBlock>());
  resampler: R | null = null;
  setResampler(name: 'downsample' | 'upsample', r: R): R {
    this.resampler = this.add(name, r);
    return r;
  }
}

export class Mid2d extends Module {
  readonly block_1: ResnetBlock;
  readonly attn_1: AttnBlock;
  readonly block_2: ResnetBlock;
  constructor(c: number) {
    super();
    this.block_1 = this.add('block_1', new ResnetBlock(c, c));
    this.attn_1 = this.add('attn_1', new AttnBlock(c));
    this.block_2 = this.add('block_2', new ResnetBlock(c, c));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => this.block_2.forward(this.attn_1.forward(this.block_1.forward(x)))));
  }
}

function log2i(v: number): number {
  return Math.round(Math.log2(v));
}

/**
 * Encoder: patcher -> conv_in -> levels (Downsample on levels i < n_sd only; the nominal
 * resolution halves only after those) -> mid -> norm_out -> SiLU -> conv_out.
 */
export class Encoder2d extends Module {
  readonly patcher: Patcher;
  readonly conv_in: Conv2d;
  readonly down = this.add('down', new ModuleList<Level2d<Downsample>>());
  readonly mid: Mid2d;
  readonly norm_out: GroupNorm32;
  readonly conv_out: Conv2d;

  constructor(readonly arch: ImageArch) {
    super();
    const a = arch;
    const p = a.patchSize;
    const nd = log2i(a.spatialCompression) - log2i(p);
    this.patcher = this.add('patcher', new Patcher(p, a.patchMethod));
    this.conv_in = this.add('conv_in', new Conv2d(a.inChannels * p * p, a.encoder.convIn, 3, 1, 1));
    let blockIn = a.encoder.convIn;
    let res = Math.floor(a.resolution / p);
    a.encoder.widths.forEach((out, i) => {
      const level = this.down.push(new Level2d<Downsample>());
      for (let j = 0; j < a.numResBlocks; j++) {
        level.block.push(new ResnetBlock(blockIn, out));
        blockIn = out;
        if (a.attnResolutions.includes(res)) level.attn.push(new AttnBlock(blockIn));
      }
      if (i < nd) {
        level.setResampler('downsample', new Downsample(blockIn));
        res = Math.floor(res / 2);
      }
    });
    this.mid = this.add('mid', new Mid2d(blockIn));
    this.norm_out = this.add('norm_out', new GroupNorm32(blockIn));
    this.conv_out = this.add('conv_out', new Conv2d(blockIn, a.zChannels, 3, 1, 1));
  }

  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      let h = this.patcher.forward(x);
      h = advance(h, this.conv_in.forward(h), x);
      for (const level of this.down.items) {
        level.block.items.forEach((b, j) => {
          h = advance(h, b.forward(h), x);
          if (level.attn.length) h = advance(h, level.attn.at(j).forward(h), x);
        });
        if (level.resampler) h = advance(h, level.resampler.forward(h), x);
      }
      h = advance(h, this.mid.forward(h), x);
      h = advance(h, F.silu(this.norm_out.forward(h)), x);
      return this.conv_out.forward(h);
    }));
  }
}

/**
 * Decoder: conv_in -> mid -> levels from the deepest (num_res_blocks + 1 blocks, Upsample on
 * levels i >= num_levels - n_su; the nominal resolution doubles only after those) -> norm_out
 * -> SiLU -> conv_out -> unpatcher.
 */
export class Decoder2d extends Module {
  readonly conv_in: Conv2d;
  readonly mid: Mid2d;
  readonly up = this.add('up', new ModuleList<Level2d<Upsample>>());
  readonly norm_out: GroupNorm32;
  readonly conv_out: Conv2d;
  readonly unpatcher: UnPatcher;

  constructor(readonly arch: ImageArch) {
    super();
    const a = arch;
    const p = a.patchSize;
    const L = a.decoder.widths.length;
    const nu = log2i(a.spatialCompression) - log2i(p);
    let blockIn = a.decoder.mid;
    let res = Math.floor(Math.floor(a.resolution / p) / 2 ** (L - 1));
    this.conv_in = this.add('conv_in', new Conv2d(a.zChannels, blockIn, 3, 1, 1));
    this.mid = this.add('mid', new Mid2d(blockIn));
    const levels: Level2d<Upsample>[] = [];
    for (let i = L - 1; i >= 0; i--) {
      const level = new Level2d<Upsample>();
      const out = a.decoder.widths[i];
      for (let j = 0; j < a.numResBlocks + 1; j++) {
        level.block.push(new ResnetBlock(blockIn, out));
        blockIn = out;
        if (a.attnResolutions.includes(res)) level.attn.push(new AttnBlock(blockIn));
      }
      if (i >= L - nu) {
        level.setResampler('upsample', new Upsample(blockIn));
        res *= 2;
      }
      levels[i] = level;
    }
    for (const level of levels) this.up.push(level);
    this.norm_out = this.add('norm_out', new GroupNorm32(blockIn));
    this.conv_out = this.add('conv_out', new Conv2d(blockIn, a.outChannels * p * p, 3, 1, 1));
    this.unpatcher = this.add('unpatcher', new UnPatcher(p, a.patchMethod));
  }

  forward(z: Tensor): Tensor {
    return this.tap(scope(() => {
      let h = this.conv_in.forward(z);
      h = advance(h, this.mid.forward(h), z);
      for (let i = this.up.length - 1; i >= 0; i--) {
        const level = this.up.at(i);
        level.block.items.forEach((b, j) => {
          h = advance(h, b.forward(h), z);
          if (level.attn.length) h = advance(h, level.attn.at(j).forward(h), z);
        });
        if (level.resampler) h = advance(h, level.resampler.forward(h), z);
      }
      h = advance(h, F.silu(this.norm_out.forward(h)), z);
      h = advance(h, this.conv_out.forward(h), z);
      return this.unpatcher.forward(h);
    }));
  }
}
