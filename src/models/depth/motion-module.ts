// The temporal motion modules of the DPT head (`head.motion_modules.M.temporal_transformer.*`):
// every pixel's T frames form one sequence; GroupNorm per frame, proj_in, attention blocks over
// time with the stored sinusoid tables added to the normed input, a GEGLU feed-forward, proj_out,
// and the input added back.
import { Linear } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope } from '../../engine/tensor.js';
import { ModuleList } from '../tokenizer/containers.js';
import type { DepthMotionConfig } from './config.js';
import { LayerNorm } from '../../engine/layers.js';
import { GroupNorm } from './layers.js';

/** Elements (B * T * pixels * C) of one run of pixels through the transformer blocks. */
const PIXEL_RUN_ELEMENTS = 1 << 22;

class PositionalEncoding extends Module {
  readonly pe: Param;
  constructor(dim: number, maxLen: number) {
    super();
    // loaded from the checkpoint, not recomputed: a bf16 file holds the rounded table
    this.pe = this.param('pe', [1, maxLen, dim]);
  }
}

class TemporalAttention extends Module {
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut = new ModuleList<Linear>();
  readonly posEncoder: PositionalEncoding;
  constructor(readonly dim: number, readonly heads: number, readonly maxLen: number) {
    super();
    this.toQ = this.add('to_q', new Linear(dim, dim, false));
    this.toK = this.add('to_k', new Linear(dim, dim, false));
    this.toV = this.add('to_v', new Linear(dim, dim, false));
    this.add('to_out', this.toOut);
    this.toOut.push(new Linear(dim, dim, true));
    this.posEncoder = this.add('pos_encoder', new PositionalEncoding(dim, maxLen));
  }
  /** x [S, T, C] (S sequences of T frames) -> [S, T, C] */
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [S, T, C] = x.shape;
      if (T > this.maxLen) throw new ShapeError(`${this.path}: ${T} frames, more than the ${this.maxLen} rows of its position table`);
      const pe = F.cast(F.slice(this.posEncoder.pe.t, 1, 0, T), x.dtype);
      const h = F.add(x, pe);
      const hd = C / this.heads;
      const split = (t: Tensor) => F.permute(t.reshape([S, T, this.heads, hd]), [0, 2, 1, 3]);
      const o = F.attention(split(this.toQ.forward(h)), split(this.toK.forward(h)), split(this.toV.forward(h)), { scale: hd ** -0.5 });
      return this.toOut.at(0).forward(F.permute(o, [0, 2, 1, 3]).reshape([S, T, C]));
    });
  }
}

class Geglu extends Module {
  readonly proj: Linear;
  constructor(dim: number, readonly inner: number) {
    super();
    this.proj = this.add('proj', new Linear(dim, 2 * inner, true));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [h, gate] = F.split(this.proj.forward(x), [this.inner, this.inner], -1);
      return F.mul(h, F.gelu(gate));
    });
  }
}

class FeedForward extends Module {
  readonly net = new ModuleList<Module>();
  readonly act: Geglu;
  readonly out: Linear;
  constructor(dim: number) {
    super();
    this.add('net', this.net);
    this.act = new Geglu(dim, 4 * dim);
    this.out = new Linear(4 * dim, dim, true);
    this.net.push(this.act);
    // net.1 is the dropout: no parameters
    this.net.push(new Module());
    this.net.push(this.out);
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.out.forward(this.act.forward(x)));
  }
}

class TemporalTransformerBlock extends Module {
  readonly attentionBlocks = new ModuleList<TemporalAttention>();
  readonly norms = new ModuleList<LayerNorm>();
  readonly ff: FeedForward;
  readonly ffNorm: LayerNorm;
  constructor(dim: number, c: DepthMotionConfig) {
    super();
    this.add('attention_blocks', this.attentionBlocks);
    this.add('norms', this.norms);
    for (let i = 0; i < c.numAttentionBlocks; i++) {
      this.attentionBlocks.push(new TemporalAttention(dim, c.numHeads, c.maxLen));
      this.norms.push(new LayerNorm(dim, c.layerNormEps));
    }
    this.ff = this.add('ff', new FeedForward(dim));
    this.ffNorm = this.add('ff_norm', new LayerNorm(dim, c.layerNormEps));
  }
  /** h [B, T, P, C] (P pixels) -> same */
  forward(h: Tensor): Tensor {
    return scope(() => {
      const [B, T, P, C] = h.shape;
      for (let i = 0; i < this.attentionBlocks.length; i++) {
        const n = F.permute(this.norms.at(i).forward(h), [0, 2, 1, 3]).reshape([B * P, T, C]);
        const a = this.attentionBlocks.at(i).forward(n);
        h = F.add(F.permute(a.reshape([B, P, T, C]), [0, 2, 1, 3]), h);
      }
      return F.add(this.ff.forward(this.ffNorm.forward(h)), h);
    });
  }
}

class TemporalTransformer3D extends Module {
  readonly norm: GroupNorm;
  readonly projIn: Linear;
  readonly blocks = new ModuleList<TemporalTransformerBlock>();
  readonly projOut: Linear;
  constructor(dim: number, c: DepthMotionConfig) {
    super();
    this.norm = this.add('norm', new GroupNorm(c.groups, dim, c.groupNormEps));
    this.projIn = this.add('proj_in', new Linear(dim, dim, true));
    this.add('transformer_blocks', this.blocks);
    for (let i = 0; i < c.numTransformerBlocks; i++) this.blocks.push(new TemporalTransformerBlock(dim, c));
    this.projOut = this.add('proj_out', new Linear(dim, dim, true));
  }
  /** x [B * T, C, h, w] frames in order -> same */
  forward(x: Tensor, frames: number): Tensor {
    return scope(() => {
      const [BT, C, H, W] = x.shape;
      const B = BT / frames;
      const P = H * W;
      const h = this.projIn.forward(F.permute(this.norm.forward(x).reshape([BT, C, P]), [0, 2, 1])).reshape([B, frames, P, C]);
      // every pixel's frames are one sequence and the rest acts per token, so runs of pixels give
      // the same values while bounding the feed-forward's 8C-wide activations
      const run = Math.max(1, Math.floor(PIXEL_RUN_ELEMENTS / (B * frames * C)));
      const parts: Tensor[] = [];
      for (let p0 = 0; p0 < P; p0 += run) {
        parts.push(scope(() => {
          let part = P <= run ? h : F.slice(h, 2, p0, Math.min(p0 + run, P));
          for (const blk of this.blocks.items) part = blk.forward(part);
          return this.projOut.forward(part);
        }));
      }
      const y = parts.length === 1 ? parts[0] : F.concat(parts, 2);
      const out = F.permute(y.reshape([BT, P, C]), [0, 2, 1]).reshape([BT, C, H, W]);
      return F.add(out, x);
    });
  }
}

export class TemporalModule extends Module {
  readonly temporalTransformer: TemporalTransformer3D;
  constructor(dim: number, c: DepthMotionConfig) {
    super();
    this.temporalTransformer = this.add('temporal_transformer', new TemporalTransformer3D(dim, c));
  }
  /** x [B * T, C, h, w] -> same; tapped as upstream returns it, (B, C, T, h, w) */
  forward(x: Tensor, frames: number): Tensor {
    const y = this.temporalTransformer.forward(x, frames);
    const [BT, C, H, W] = y.shape;
    this.tapBCT(y, BT / frames, frames, C, H, W);
    return y;
  }
  private tapBCT(y: Tensor, B: number, T: number, C: number, H: number, W: number): void {
    if (!this.wantsTap()) return;
    scope(() => { this.tap(F.permute(y.reshape([B, T, C, H, W]), [0, 2, 1, 3, 4])); });
  }
}
