// One Cosmos DiT block (self-attention with RoPE, cross-attention to the text, MLP, each behind
// an adaLN modulation and a gate) and the RoPE module every block reads, as the base transformer
// and the ControlNet both stack them. Spec: dit.md §2, controlnet.md.
import type { Backend } from '../../engine/backend.js';
import { Linear } from '../../engine/layers.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { type CosmosTransformerConfig, DiTInputError, hiddenSize } from './config.js';
import {
  type BlockConditioning, CosmosAdaLayerNormZero, CosmosAttention, FeedForward, type RopeTables, gatedAdd,
} from './layers.js';
import { Rope3DCache } from './rope3d.js';

export interface BlockOptions {
  /** process the MLP this many tokens at a time (null: all at once) */
  ffChunkTokens?: number | null;
  /** block 0 of a ControlNet: x = before_proj(x) + latents */
  latents?: Tensor | null;
  /** ControlNet residual added after the MLP */
  controlnetResidual?: Tensor | null;
}

export class CosmosTransformerBlock extends Module {
  readonly norm1: CosmosAdaLayerNormZero;
  readonly attn1: CosmosAttention;
  readonly norm2: CosmosAdaLayerNormZero;
  readonly attn2: CosmosAttention;
  readonly norm3: CosmosAdaLayerNormZero;
  readonly ff: FeedForward;
  readonly before_proj: Linear | null;
  readonly after_proj: Linear | null;

  /** `qkNormEps`: the attention's q / k RMSNorm eps (diffusers' 1e-5 by default) */
  constructor(cfg: CosmosTransformerConfig, opts: { beforeProj?: boolean; afterProj?: boolean; qkNormEps?: number } = {}) {
    super();
    const D = hiddenSize(cfg);
    const H = cfg.numAttentionHeads;
    const d = cfg.attentionHeadDim;
    this.norm1 = this.add('norm1', new CosmosAdaLayerNormZero(D, cfg.adalnLoraDim));
    this.attn1 = this.add('attn1', new CosmosAttention(H, d, D, false, opts.qkNormEps));
    this.norm2 = this.add('norm2', new CosmosAdaLayerNormZero(D, cfg.adalnLoraDim));
    this.attn2 = this.add('attn2', new CosmosAttention(H, d, cfg.textEmbedDim, cfg.imgContextDimIn !== null, opts.qkNormEps));
    this.norm3 = this.add('norm3', new CosmosAdaLayerNormZero(D, cfg.adalnLoraDim));
    this.ff = this.add('ff', new FeedForward(D, Math.trunc(D * cfg.mlpRatio)));
    this.before_proj = opts.beforeProj ? this.add('before_proj', new Linear(D, D, true)) : null;
    this.after_proj = opts.afterProj ? this.add('after_proj', new Linear(D, D, true)) : null;
  }

  /** x [B, N, D] -> [B, N, D] (a ControlNet applies `after_proj` to the result itself). */
  forward(x0: Tensor, cond: BlockConditioning, opts: BlockOptions = {}): Tensor {
    let x = x0;
    if (this.before_proj) {
      if (!opts.latents) throw new DiTInputError(`${this.path}: before_proj needs the base latents`);
      x = F.add(this.before_proj.forward(x), opts.latents);
    }
    if (cond.extraPosEmb) x = F.add(x, cond.extraPosEmb);
    const Tm = cond.modFrames;
    // Each sub-layer in a scope of its own: its temporaries (q, k, v and their norms, the MLP
    // input...) are freed before the next one starts, so a block holds a few token-sized
    // activations at once instead of every one it makes (at 14B sizes ~8 instead of ~45).
    const sub = (norm: CosmosAdaLayerNormZero, f: (h: Tensor) => Tensor) => {
      const prev = x;
      x = scope(() => {
        const n = norm.forward(prev, cond);
        return gatedAdd(prev, n.gate, f(n.h), Tm);
      });
      if (prev !== x0) prev.dispose();
    };
    sub(this.norm1, (h) => this.attn1.forward(h, null, cond.rope));
    sub(this.norm2, (h) => this.attn2.forward(h, cond.text, null, cond.image));
    sub(this.norm3, (h) => this.ff.forward(h, opts.ffChunkTokens ?? null));
    if (opts.controlnetResidual) x = F.add(x, opts.controlnetResidual);
    return this.tap(x);
  }
}

/** The RoPE module (no parameters): records `rope.cos` / `rope.sin` taps. */
export class CosmosRotaryPosEmbed extends Module {
  readonly cache: Rope3DCache;
  constructor(cfg: CosmosTransformerConfig) {
    super();
    this.cache = new Rope3DCache({ headDim: cfg.attentionHeadDim, maxSize: cfg.maxSize, patchSize: cfg.patchSize, ropeScale: cfg.ropeScale });
  }
  forward(backend: Backend, grid: readonly [number, number, number], fps: number | null): RopeTables {
    const t = this.cache.tables(backend, grid, fps);
    return { cos: this.tap(t.cos, 'cos'), sin: this.tap(t.sin, 'sin') };
  }
}
