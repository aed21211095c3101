// The DINOv2 ViT backbone of Video-Depth-Anything (`pretrained.*`): 14-pixel patch embedding, a
// cls token, the stored 37 x 37 position table resized to the frame's patch grid, pre-norm blocks
// with LayerScale, and the intermediate outputs the DPT head reads (final norm, cls dropped).
import { Linear } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { ModuleList } from '../tokenizer/containers.js';
import type { DepthBackboneConfig } from './config.js';
import { LayerNorm } from '../../engine/layers.js';
import { Conv2d } from './layers.js';

class PatchEmbed extends Module {
  readonly proj: Conv2d;
  constructor(c: DepthBackboneConfig) {
    super();
    this.proj = this.add('proj', new Conv2d(3, c.embedDim, c.patchSize, c.patchSize, 0));
  }
  /** [N, 3, H, W] -> tokens [N, ph * pw, E] */
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      const y = this.proj.forward(x);
      const [N, E, h, w] = y.shape;
      return F.permute(y.reshape([N, E, h * w]), [0, 2, 1]);
    }));
  }
}

class LayerScale extends Module {
  readonly gamma: Param;
  constructor(dim: number) {
    super();
    this.gamma = this.param('gamma', [dim]);
  }
  forward(x: Tensor): Tensor {
    return F.mul(x, this.gamma.t);
  }
}

class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(readonly dim: number, readonly heads: number) {
    super();
    this.qkv = this.add('qkv', new Linear(dim, 3 * dim, true));
    this.proj = this.add('proj', new Linear(dim, dim, true));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [N, L, E] = x.shape;
      const hd = E / this.heads;
      const qkv = F.permute(this.qkv.forward(x).reshape([N, L, 3, this.heads, hd]), [2, 0, 3, 1, 4]);
      const [q, k, v] = [0, 1, 2].map((i) => F.slice(qkv, 0, i, i + 1).reshape([N, this.heads, L, hd]));
      const o = F.attention(q, k, v, { scale: hd ** -0.5 });
      return this.proj.forward(F.permute(o, [0, 2, 1, 3]).reshape([N, L, E]));
    });
  }
}

class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.fc1 = this.add('fc1', new Linear(dim, hidden, true));
    this.fc2 = this.add('fc2', new Linear(hidden, dim, true));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.fc2.forward(F.gelu(this.fc1.forward(x))));
  }
}

class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly ls1: LayerScale;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly ls2: LayerScale;
  constructor(c: DepthBackboneConfig) {
    super();
    const E = c.embedDim;
    this.norm1 = this.add('norm1', new LayerNorm(E, c.eps));
    this.attn = this.add('attn', new Attention(E, c.numHeads));
    this.ls1 = this.add('ls1', new LayerScale(E));
    this.norm2 = this.add('norm2', new LayerNorm(E, c.eps));
    this.mlp = this.add('mlp', new Mlp(E, Math.floor(E * c.mlpRatio)));
    this.ls2 = this.add('ls2', new LayerScale(E));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      const h = F.add(x, this.ls1.forward(this.attn.forward(this.norm1.forward(x))));
      return F.add(h, this.ls2.forward(this.mlp.forward(this.norm2.forward(h))));
    }));
  }
}

export class DinoVisionTransformer extends Module {
  readonly clsToken: Param;
  readonly posEmbed: Param;
  readonly maskToken: Param;
  readonly patchEmbed: PatchEmbed;
  readonly blocks = new ModuleList<Block>();
  readonly norm: LayerNorm;
  constructor(readonly c: DepthBackboneConfig) {
    super();
    const E = c.embedDim;
    this.clsToken = this.param('cls_token', [1, 1, E]);
    this.posEmbed = this.param('pos_embed', [1, 1 + c.posGrid * c.posGrid, E]);
    // in the released files, unused by inference (no masks)
    this.maskToken = this.param('mask_token', [1, E], { optional: true });
    this.patchEmbed = this.add('patch_embed', new PatchEmbed(c));
    this.add('blocks', this.blocks);
    for (let i = 0; i < c.depth; i++) this.blocks.push(new Block(c));
    this.norm = this.add('norm', new LayerNorm(E, c.eps));
  }

  /**
   * The position table for an H x W frame's ph x pw grid [1 + ph * pw, E] (f32): the stored one when
   * the frame is square with the stored number of patches (upstream's test), else its patch part
   * resized by torch's bicubic with the scale factors (n + offset) / grid, whose source step is the
   * inverse factor rather than grid / n.
   */
  positions(H: number, W: number, ph: number, pw: number): Tensor {
    return scope(() => {
      const { posGrid: g, embedDim: E, interpolateOffset: off } = this.c;
      const table = F.cast(this.posEmbed.t, 'f32').reshape([1 + g * g, E]);
      if (ph * pw === g * g && H === W) return table;
      const grid = F.permute(F.slice(table, 0, 1).reshape([g, g, E]), [2, 0, 1]);
      const sh = (ph + off) / g;
      const sw = (pw + off) / g;
      const outH = Math.floor(g * sh);
      const outW = Math.floor(g * sw);
      if (outH !== ph || outW !== pw) throw new Error(`pos_embed: interpolation gives ${outH}x${outW}, not the ${ph}x${pw} patch grid`);
      const resized = F.resizeFloat(grid, ph, pw, 'torch_cubic', { scaleFactor: [sh, sw] });
      return F.concat([F.slice(table, 0, 0, 1), F.permute(resized.reshape([E, ph * pw]), [1, 0])], 0);
    });
  }

  /** Normalised patch tokens [N, ph * pw, E] after each of `layers` (block indices, ascending or not). */
  intermediateLayers(x: Tensor, layers: readonly number[]): Tensor[] {
    const [N, , H, W] = x.shape;
    const p = this.c.patchSize;
    const ph = Math.floor(H / p);
    const pw = Math.floor(W / p);
    const E = this.c.embedDim;
    const last = Math.max(...layers);
    const outs = new Map<number, Tensor>();
    let h = scope(() => {
      const tokens = this.patchEmbed.forward(x);
      const cls = F.expand(F.cast(this.clsToken.t, tokens.dtype), [N, 1, E]);
      return F.add(F.concat([cls, tokens], 1), this.positions(H, W, ph, pw));
    });
    for (let i = 0; i <= last; i++) {
      const next = this.blocks.at(i).forward(h);
      h.dispose();
      h = next;
      if (layers.includes(i)) outs.set(i, scope(() => F.slice(this.norm.forward(h), 1, 1)));
    }
    h.dispose();
    return layers.map((i) => outs.get(i) as Tensor);
  }
}
