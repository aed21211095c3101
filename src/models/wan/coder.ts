// WanEncoder3d and WanDecoder3d (fact sheet wan_vae.md §7 for Wan2.1, §10 for the Wan2.2
// residual layout). Both run on one piece of the clip per call and carry their causal context in
// the PieceCache they are given.
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { ModuleList } from '../tokenizer/containers.js';
import { type WanVaeConfig, decoderWidths, encoderWidths } from './config.js';
import { type PieceCache, WanCausalConv3d, WanMidBlock, WanRMSNorm, WanResample, WanResidualBlock, avgDown3d, dupUp3d } from './layers.js';

type PieceModule = Module & { forward(x: Tensor, cache: PieceCache): Tensor };

/** Run a chain of piece modules, freeing each intermediate as soon as the next exists. */
function chain(mods: readonly PieceModule[], x: Tensor, cache: PieceCache): Tensor {
  let h = x;
  for (const m of mods) {
    const next = m.forward(h, cache);
    if (h !== x) h.dispose();
    h = next;
  }
  return h;
}

/** norm_out -> SiLU -> conv_out */
function head(norm: WanRMSNorm, conv: WanCausalConv3d, x: Tensor, cache: PieceCache): Tensor {
  return scope(() => conv.forward(norm.forwardSilu(x), cache));
}

/** Wan2.2 encoder level: resnets, an optional downsampler, plus the AvgDown3D shortcut of the input. */
export class WanResidualDownBlock extends Module {
  readonly resnets: ModuleList<WanResidualBlock>;
  readonly downsampler: WanResample | null;

  constructor(readonly cin: number, readonly cout: number, numResBlocks: number, readonly temporal: boolean, readonly down: boolean) {
    super();
    this.resnets = this.add('resnets', new ModuleList<WanResidualBlock>());
    for (let r = 0; r < numResBlocks; r++) this.resnets.push(new WanResidualBlock(r === 0 ? cin : cout, cout));
    this.downsampler = down ? this.add('downsampler', new WanResample(cout, temporal ? 'downsample3d' : 'downsample2d')) : null;
  }

  forward(x: Tensor, cache: PieceCache): Tensor {
    return this.tap(scope(() => {
      const mods: PieceModule[] = [...this.resnets.items, ...(this.downsampler ? [this.downsampler] : [])];
      const main = chain(mods, x, cache);
      const short = avgDown3d(x, this.cout, this.temporal ? 2 : 1, this.down ? 2 : 1);
      return F.add(main, short);
    }));
  }
}

/** Wan2.1 decoder level: num_res_blocks + 1 resnets, then `upsamplers.0` (width halved). */
export class WanUpBlock extends Module {
  readonly resnets: ModuleList<WanResidualBlock>;
  readonly upsamplers: ModuleList<WanResample> | null;

  constructor(cin: number, cout: number, numResBlocks: number, mode: 'upsample2d' | 'upsample3d' | null) {
    super();
    this.resnets = this.add('resnets', new ModuleList<WanResidualBlock>());
    for (let r = 0; r <= numResBlocks; r++) this.resnets.push(new WanResidualBlock(r === 0 ? cin : cout, cout));
    this.upsamplers = mode ? this.add('upsamplers', new ModuleList<WanResample>()) : null;
    this.upsamplers?.push(new WanResample(cout, mode!));
  }

  forward(x: Tensor, cache: PieceCache): Tensor {
    return this.tap(scope(() => chain([...this.resnets.items, ...(this.upsamplers?.items ?? [])], x, cache)));
  }
}

/** Wan2.2 decoder level: resnets, `upsampler` (width kept), plus the DupUp3D shortcut of the input. */
export class WanResidualUpBlock extends Module {
  readonly resnets: ModuleList<WanResidualBlock>;
  readonly upsampler: WanResample | null;

  constructor(readonly cin: number, readonly cout: number, numResBlocks: number, readonly temporal: boolean, readonly up: boolean) {
    super();
    this.resnets = this.add('resnets', new ModuleList<WanResidualBlock>());
    for (let r = 0; r <= numResBlocks; r++) this.resnets.push(new WanResidualBlock(r === 0 ? cin : cout, cout));
    this.upsampler = up ? this.add('upsampler', new WanResample(cout, temporal ? 'upsample3d' : 'upsample2d', cout)) : null;
  }

  forward(x: Tensor, cache: PieceCache): Tensor {
    return this.tap(scope(() => {
      const main = chain([...this.resnets.items, ...(this.upsampler ? [this.upsampler] : [])], x, cache);
      if (!this.up) return main;
      const short = dupUp3d(x, this.cout, this.temporal ? 2 : 1, 2, cache.first);
      return F.add(main, short);
    }));
  }
}

/** WanEncoder3d: conv_in -> down_blocks -> mid_block -> norm_out -> SiLU -> conv_out (2·z_dim planes). */
export class WanEncoder3d extends Module {
  readonly conv_in: WanCausalConv3d;
  readonly down_blocks: ModuleList<PieceModule>;
  readonly mid_block: WanMidBlock;
  readonly norm_out: WanRMSNorm;
  readonly conv_out: WanCausalConv3d;

  constructor(c: WanVaeConfig) {
    super();
    const e = encoderWidths(c);
    const levels = c.dimMult.length;
    this.conv_in = this.add('conv_in', new WanCausalConv3d(c.inChannels, e[0], [3, 3, 3], [1, 1, 1]));
    this.down_blocks = this.add('down_blocks', new ModuleList<PieceModule>());
    for (let i = 0; i < levels; i++) {
      const last = i === levels - 1;
      if (c.isResidual) {
        this.down_blocks.push(new WanResidualDownBlock(e[i], e[i + 1], c.numResBlocks, !last && c.temperalDownsample[i], !last));
        continue;
      }
      for (let r = 0; r < c.numResBlocks; r++) this.down_blocks.push(new WanResidualBlock(r === 0 ? e[i] : e[i + 1], e[i + 1]));
      if (!last) this.down_blocks.push(new WanResample(e[i + 1], c.temperalDownsample[i] ? 'downsample3d' : 'downsample2d'));
    }
    this.mid_block = this.add('mid_block', new WanMidBlock(e[levels]));
    this.norm_out = this.add('norm_out', new WanRMSNorm(e[levels], false));
    this.conv_out = this.add('conv_out', new WanCausalConv3d(e[levels], 2 * c.zDim, [3, 3, 3], [1, 1, 1]));
  }

  forward(x: Tensor, cache: PieceCache): Tensor {
    return scope(() => {
      const h = chain([this.conv_in, ...this.down_blocks.items, this.mid_block], x, cache);
      return head(this.norm_out, this.conv_out, h, cache);
    });
  }
}

/** WanDecoder3d: conv_in -> mid_block -> up_blocks -> norm_out -> SiLU -> conv_out. */
export class WanDecoder3d extends Module {
  readonly conv_in: WanCausalConv3d;
  readonly mid_block: WanMidBlock;
  readonly up_blocks: ModuleList<PieceModule>;
  readonly norm_out: WanRMSNorm;
  readonly conv_out: WanCausalConv3d;

  constructor(c: WanVaeConfig) {
    super();
    const d = decoderWidths(c);
    const levels = c.dimMult.length;
    const temporalUp = [...c.temperalDownsample].reverse();
    this.conv_in = this.add('conv_in', new WanCausalConv3d(c.zDim, d[0], [3, 3, 3], [1, 1, 1]));
    this.mid_block = this.add('mid_block', new WanMidBlock(d[0]));
    this.up_blocks = this.add('up_blocks', new ModuleList<PieceModule>());
    for (let i = 0; i < levels; i++) {
      const up = i !== levels - 1;
      const temporal = up && temporalUp[i];
      if (c.isResidual) {
        this.up_blocks.push(new WanResidualUpBlock(d[i], d[i + 1], c.numResBlocks, temporal, up));
      } else {
        // every Wan2.1 upsampler halves the width, so the next level starts at half
        const cin = i > 0 ? d[i] / 2 : d[i];
        this.up_blocks.push(new WanUpBlock(cin, d[i + 1], c.numResBlocks, up ? (temporal ? 'upsample3d' : 'upsample2d') : null));
      }
    }
    this.norm_out = this.add('norm_out', new WanRMSNorm(d[levels], false));
    this.conv_out = this.add('conv_out', new WanCausalConv3d(d[levels], c.outChannels, [3, 3, 3], [1, 1, 1]));
  }

  forward(x: Tensor, cache: PieceCache): Tensor {
    return scope(() => {
      const h = chain([this.conv_in, this.mid_block, ...this.up_blocks.items], x, cache);
      return head(this.norm_out, this.conv_out, h, cache);
    });
  }
}
