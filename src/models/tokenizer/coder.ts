// The encoder and decoder trunk every Cosmos tokenizer shares (Cosmos-Tokenizer modules
// Encoder / Decoder of layers2d.py and EncoderFactorized / DecoderFactorized of layers3d.py):
//   encoder: patcher -> conv_in -> levels (res blocks [+ attention], a downsampler on some) ->
//            mid -> norm_out -> SiLU -> conv_out
//   decoder: conv_in -> mid -> levels from the deepest (num_res_blocks + 1 res blocks) ->
//            norm_out -> SiLU -> conv_out -> unpatcher
// The image (2D) and video (3D, causal) networks differ only in their blocks and in which levels
// resample; a `Blocks` object (layers2d.ts, layers3d.ts) supplies both, so the trunk, its key
// paths (`down.0.block.1`, `mid.attn_1`, `up.2.upsample`) and its forward order are written once.
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { ImageArch } from './config.js';
import { ModuleList } from './containers.js';

/** What a causal module keeps between the chunks of one stream (implemented in stream.ts). */
export interface CausalState {
  /** true while the first chunk of the clip runs (pad from its first frame, as a whole clip) */
  readonly first: boolean;
  get(owner: Module, slot: string): Tensor | undefined;
  /** store `t` (the state takes ownership; the previous value is freed) */
  set(owner: Module, slot: string, t: Tensor): void;
}

/** A block of the trunk: 2D blocks ignore the stream state, causal 3D blocks use it. */
export type Block = Module & { forward(x: Tensor, st?: CausalState): Tensor };
/** A norm whose SiLU can run in the same pass (norm -> swish). */
export type NormBlock = Block & { forwardSilu(x: Tensor): Tensor };
/** A convolution whose weight tells the backend it lives on (quant_conv). */
export type ConvBlock = Block & { readonly weight: Tensor };
/** The patcher: `first` is false for a later chunk of a stream (video only). */
export type PatchBlock = Module & { forward(x: Tensor, first?: boolean): Tensor };

/** The blocks of one flavour of the trunk (2D image or causal 3D video), whatever the arch. */
export interface BlockSet {
  /** channels the patcher makes of one input channel: p^2 or p^3 */
  patchVolume(patchSize: number): number;
  /** conv_in / conv_out (3x3, or the factorised (1,3,3)+(3,1,1) pair) */
  conv(cin: number, cout: number): Block;
  /** quant_conv / post_quant_conv (1x1 or 1x1x1) */
  pointwise(cin: number, cout: number): ConvBlock;
  resnet(cin: number, cout: number): Block;
  attention(channels: number): Block;
  norm(channels: number): NormBlock;
}

/** A flavour's blocks plus what depends on its arch: the patchers and where it resamples. */
export interface Blocks<A extends ImageArch> extends BlockSet {
  /** key path segments of the patcher and unpatcher ('patcher' / 'patcher3d', ...) */
  readonly patcherName: string;
  readonly unpatcherName: string;
  patcher(arch: A): PatchBlock;
  unpatcher(arch: A): PatchBlock;
  /** encoder level `level` of `levels`: its downsampler, or null when it keeps the resolution */
  downsampler(arch: A, level: number, levels: number, channels: number): Block | null;
  /** decoder level `level` of `levels`: its upsampler, or null when it keeps the resolution */
  upsampler(arch: A, level: number, levels: number, channels: number): Block | null;
}

/** Replace `prev` by `next`, freeing prev unless it is `keep` (the caller's input) or next itself. */
export function advance(prev: Tensor, next: Tensor, keep: Tensor): Tensor {
  if (prev !== next && prev !== keep) prev.dispose();
  return next;
}

/** A square 1x1 (1x1x1) conv applied to channels-last rows [n, C] (the attention projections). */
export function pointwiseRows(conv: { readonly weight: Tensor; readonly bias: Tensor }, rows: Tensor): Tensor {
  const C = conv.weight.shape[0];
  return F.linear(rows, conv.weight.reshape([C, C]), conv.bias);
}

/** One level: res blocks, their attention (if the level has attention), the resampler. */
export class Level extends Module {
  readonly block = this.add('block', new ModuleList<Block>());
  readonly attn = this.add('attn', new ModuleList<Block>());
  resampler: Block | null = null;
  setResampler(name: 'downsample' | 'upsample', r: Block): void {
    this.resampler = this.add(name, r);
  }

  forward(x: Tensor, keep: Tensor, st?: CausalState): Tensor {
    let h = x;
    this.block.items.forEach((b, j) => {
      h = advance(h, b.forward(h, st), keep);
      if (this.attn.length) h = advance(h, this.attn.at(j).forward(h, st), keep);
    });
    if (this.resampler) h = advance(h, this.resampler.forward(h, st), keep);
    return h;
  }
}

/** `mid`: block_1, attn_1, block_2. */
export class Mid extends Module {
  readonly block_1: Block;
  readonly attn_1: Block;
  readonly block_2: Block;
  constructor(c: number, blocks: BlockSet) {
    super();
    this.block_1 = this.add('block_1', blocks.resnet(c, c));
    this.attn_1 = this.add('attn_1', blocks.attention(c));
    this.block_2 = this.add('block_2', blocks.resnet(c, c));
  }
  forward(x: Tensor, st?: CausalState): Tensor {
    return this.tap(scope(() => this.block_2.forward(this.attn_1.forward(this.block_1.forward(x, st), st), st)));
  }
}

/**
 * Fill one level's res blocks (and attention where the nominal resolution is listed); returns
 * the width after the level.
 */
function buildLevel(level: Level, blocks: BlockSet, arch: ImageArch, count: number, blockIn: number, out: number, res: number): number {
  for (let j = 0; j < count; j++) {
    level.block.push(blocks.resnet(blockIn, out));
    blockIn = out;
    if (arch.attnResolutions.includes(res)) level.attn.push(blocks.attention(blockIn));
  }
  return blockIn;
}

export class Encoder<A extends ImageArch = ImageArch> extends Module {
  readonly down = this.add('down', new ModuleList<Level>());
  readonly patcher: PatchBlock;
  readonly conv_in: Block;
  readonly mid: Mid;
  readonly norm_out: NormBlock;
  readonly conv_out: Block;

  constructor(readonly arch: A, blocks: Blocks<A>) {
    super();
    const a = arch;
    const p = a.patchSize;
    const L = a.encoder.widths.length;
    this.patcher = this.add(blocks.patcherName, blocks.patcher(a));
    this.conv_in = this.add('conv_in', blocks.conv(a.inChannels * blocks.patchVolume(p), a.encoder.convIn));
    let blockIn = a.encoder.convIn;
    let res = Math.floor(a.resolution / p);
    for (let i = 0; i < L; i++) {
      const level = this.down.push(new Level());
      blockIn = buildLevel(level, blocks, a, a.numResBlocks, blockIn, a.encoder.widths[i], res);
      const r = blocks.downsampler(a, i, L, blockIn);
      if (r) {
        level.setResampler('downsample', r);
        res = Math.floor(res / 2);
      }
    }
    this.mid = this.add('mid', new Mid(blockIn, blocks));
    this.norm_out = this.add('norm_out', blocks.norm(blockIn));
    this.conv_out = this.add('conv_out', blocks.conv(blockIn, a.zChannels));
  }

  forward(x: Tensor, st?: CausalState): Tensor {
    return this.tap(scope(() => {
      let h = this.patcher.forward(x, !st || st.first);
      h = advance(h, this.conv_in.forward(h, st), x);
      for (const level of this.down.items) h = level.forward(h, x, st);
      h = advance(h, this.mid.forward(h, st), x);
      h = advance(h, this.norm_out.forwardSilu(h), x);
      return this.conv_out.forward(h, st);
    }));
  }
}

export class Decoder<A extends ImageArch = ImageArch> extends Module {
  readonly up = this.add('up', new ModuleList<Level>());
  readonly conv_in: Block;
  readonly mid: Mid;
  readonly norm_out: NormBlock;
  readonly conv_out: Block;
  readonly unpatcher: PatchBlock;

  constructor(readonly arch: A, blocks: Blocks<A>) {
    super();
    const a = arch;
    const p = a.patchSize;
    const L = a.decoder.widths.length;
    let blockIn = a.decoder.mid;
    let res = Math.floor(Math.floor(a.resolution / p) / 2 ** (L - 1));
    this.conv_in = this.add('conv_in', blocks.conv(a.zChannels, blockIn));
    this.mid = this.add('mid', new Mid(blockIn, blocks));
    // built deepest first (as upstream), registered under their level index
    const levels: Level[] = [];
    for (let i = L - 1; i >= 0; i--) {
      const level = new Level();
      blockIn = buildLevel(level, blocks, a, a.numResBlocks + 1, blockIn, a.decoder.widths[i], res);
      const r = blocks.upsampler(a, i, L, blockIn);
      if (r) {
        level.setResampler('upsample', r);
        res *= 2;
      }
      levels[i] = level;
    }
    for (const level of levels) this.up.push(level);
    this.norm_out = this.add('norm_out', blocks.norm(blockIn));
    this.conv_out = this.add('conv_out', blocks.conv(blockIn, a.outChannels * blocks.patchVolume(p)));
    this.unpatcher = this.add(blocks.unpatcherName, blocks.unpatcher(a));
  }

  forward(z: Tensor): Tensor {
    return this.tap(scope(() => {
      let h = this.conv_in.forward(z);
      h = advance(h, this.mid.forward(h), z);
      for (let i = this.up.length - 1; i >= 0; i--) h = this.up.at(i).forward(h, z);
      h = advance(h, this.norm_out.forwardSilu(h), z);
      h = advance(h, this.conv_out.forward(h), z);
      return this.unpatcher.forward(h);
    }));
  }
}

/** log2 of a power of two (the configs were checked to have them). */
export function log2i(v: number): number {
  return Math.round(Math.log2(v));
}
