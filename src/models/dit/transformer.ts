// The Cosmos diffusion transformer: diffusers' CosmosTransformer3DModel (Cosmos-1.0 Diffusion,
// Predict2, Predict2.5, and the base network of Transfer2.5), in forward order. Spec: dit.md §2.
//
//   x = cat(hidden_states, condition_mask?, resize_nearest(padding_mask)?)   [B, C', T, H, W]
//   cos, sin = rope(T/pt, H/ph, W/pw, fps)                                   [N, head_dim]
//   pe = learnable_pos_embed(grid)  (Cosmos-1.0)                             [B, N, D]
//   tokens = patch_embed(x)  (Linear over (c, pt, ph, pw) features)          [B, T', H', W', D]
//   temb, emb = time_embed(timestep)   one row per sample or per frame       [R, 3D], [R, D]
//   text = GELU(crossattn_proj(text))  (Predict2.5)
//   for each block: x += pe; x += g1 * attn1(adaLN1(x))  (QK RMSNorm, RoPE)
//                            x += g2 * attn2(adaLN2(x), text)
//                            x += g3 * ff(adaLN3(x)); x += controlnet residual?
//   out = unpatchify(proj_out(adaLN_final(x)))   channels ordered (ph, pw, pt, C)
//
// The adaLN modulations are computed per timestep row and broadcast over the tokens of their
// sample (or frame, for per-frame timesteps [B,1,T,1,1]) instead of being expanded to every token.
// Parameters keep diffusers' key names; bf16 checkpoints stay bf16 on the device (every op
// reads them widened and computes in float32). Taps are recorded at diffusers' module paths.
// Built and loaded through loadModule (models/load.ts) with CosmosTransformer3DFamily.
import { Linear } from '../../engine/layers.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import type { ModuleFamily } from '../load.js';
import { CosmosRotaryPosEmbed, CosmosTransformerBlock } from './block.js';
import {
  type CosmosTransformerConfig, DiTInputError, hiddenSize, maxGrid, parseCosmosTransformerConfig, patchEmbedInChannels,
} from './config.js';
import { type ConditioningInputs, paddingChannel, positionEmbeddings, timestepAndContext } from './embed.js';
import {
  type BlockConditioning, CosmosAdaLayerNorm, CosmosEmbedding, CosmosLearnablePositionalEmbed, CosmosPatchEmbed, LinearGelu,
} from './layers.js';
import { patchGrid } from './rope3d.js';

export interface CosmosForwardInputs extends ConditioningInputs {
  /** [B, C, T, H, W] latent (C = in_channels, less one when a condition mask is passed) */
  hiddenStates: Tensor;
  /** [B, 1, T, H, W], concatenated after the latent channels */
  conditionMask?: Tensor | null;
  /** ControlNet residuals: entry k is added after block k * controlnet_block_every_n */
  controlnetResiduals?: readonly Tensor[] | null;
}

export interface EmbeddedInputs {
  /** [B, N, D] patch tokens */
  tokens: Tensor;
  cond: BlockConditioning;
  /** patched grid (T', H', W') */
  grid: [number, number, number];
  /** latent (T, H, W) */
  latentThw: [number, number, number];
  batch: number;
}

export class CosmosTransformer3DModel extends Module {
  readonly patch_embed: CosmosPatchEmbed;
  readonly rope: CosmosRotaryPosEmbed;
  readonly learnable_pos_embed: CosmosLearnablePositionalEmbed | null;
  readonly time_embed: CosmosEmbedding;
  readonly transformer_blocks: CosmosTransformerBlock[];
  readonly norm_out: CosmosAdaLayerNorm;
  readonly proj_out: Linear;
  readonly crossattn_proj: LinearGelu | null;
  readonly img_context_proj: LinearGelu | null;
  readonly hiddenSize: number;
  /**
   * Run each block's MLP this many tokens at a time (null: all at once). The MLP activation is
   * tokens x 4D floats: at full resolution (e.g. 84480 tokens x 8192 for the 2B models) that is
   * larger than one GPU buffer binding may be, so a pipeline sets this from the device's limits.
   */
  ffChunkTokens: number | null = null;

  constructor(readonly config: CosmosTransformerConfig) {
    super();
    const cfg = config;
    const D = hiddenSize(cfg);
    this.hiddenSize = D;
    const [pt, ph, pw] = cfg.patchSize;
    this.patch_embed = this.add('patch_embed', new CosmosPatchEmbed(patchEmbedInChannels(cfg), D, cfg.patchSize));
    this.rope = this.add('rope', new CosmosRotaryPosEmbed(cfg));
    this.learnable_pos_embed = cfg.extraPosEmbedType === 'learnable'
      ? this.add('learnable_pos_embed', new CosmosLearnablePositionalEmbed(D, maxGrid(cfg)))
      : null;
    this.time_embed = this.add('time_embed', new CosmosEmbedding(D));
    this.transformer_blocks = Array.from({ length: cfg.numLayers }, (_, i) => this.add(`transformer_blocks.${i}`, new CosmosTransformerBlock(cfg)));
    this.norm_out = this.add('norm_out', new CosmosAdaLayerNorm(D, cfg.adalnLoraDim));
    this.proj_out = this.add('proj_out', new Linear(D, pt * ph * pw * cfg.outChannels));
    this.crossattn_proj = cfg.useCrossattnProjection
      ? this.add('crossattn_proj', new LinearGelu(cfg.crossattnProjInChannels, cfg.encoderHiddenStatesChannels))
      : null;
    this.img_context_proj = cfg.imgContextDimIn !== null
      ? this.add('img_context_proj', new LinearGelu(cfg.imgContextDimIn, cfg.imgContextDimOut))
      : null;
  }

  override dispose(): void {
    this.rope.cache.clear();
    super.dispose();
  }

  /**
   * Everything before the blocks: channel concat, RoPE, learnable position embedding, patch
   * embedding, timestep embedding, text / image projections.
   */
  embed(inputs: CosmosForwardInputs): EmbeddedInputs {
    const cfg = this.config;
    const x0 = inputs.hiddenStates;
    if (x0.rank !== 5) throw new DiTInputError(`hidden_states: must be [B, C, T, H, W]; got ${shapeStr(x0.shape)}`);
    const [B, , T, H, W] = x0.shape;
    const [pt, ph, pw] = cfg.patchSize;
    if (T % pt || H % ph || W % pw) {
      throw new DiTInputError(`hidden_states ${shapeStr(x0.shape)}: T, H, W must be multiples of patch_size ${JSON.stringify(cfg.patchSize)}`);
    }
    const backend = x0.backend;

    // 1. input channels: latent, condition mask, resized padding mask
    const parts = [x0];
    if (inputs.conditionMask) {
      const m = inputs.conditionMask;
      if (m.shape.join() !== [B, 1, T, H, W].join()) throw new DiTInputError(`condition_mask: must be ${shapeStr([B, 1, T, H, W])}; got ${shapeStr(m.shape)}`);
      parts.push(m);
    }
    if (cfg.concatPaddingMask) parts.push(paddingChannel(inputs.paddingMask, x0.shape, backend));
    const x = parts.length === 1 ? x0 : F.concat(parts, 1);
    const cin = patchEmbedInChannels(cfg);
    if (x.shape[1] !== cin) {
      throw new DiTInputError(
        `hidden_states: the patch embedding takes ${cin} channels (in_channels ${cfg.inChannels}${cfg.concatPaddingMask ? ' + padding mask' : ''}), ` +
        `got ${x0.shape[1]} latent channels${inputs.conditionMask ? ' + condition mask' : ''}${cfg.concatPaddingMask ? ' + padding mask' : ''} = ${x.shape[1]}` +
        (!inputs.conditionMask && x.shape[1] + 1 === cin ? ' (this model expects a condition_mask)' : ''),
      );
    }

    // 2. positional embeddings, 3. patchify, 4-5. timestep rows and context projections
    const grid = patchGrid([T, H, W], cfg.patchSize);
    const { rope, extraPosEmb } = positionEmbeddings(this, backend, grid, B, inputs.fps);
    const tokens = this.patch_embed.forward(x).reshape([B, grid[0] * grid[1] * grid[2], this.hiddenSize]);
    const rest = timestepAndContext(this, cfg, inputs, B, T, grid, { Err: DiTInputError, who: 'the model' });
    return { tokens, cond: { ...rest, rope, extraPosEmb }, grid, latentThw: [T, H, W], batch: B };
  }

  /** Final adaLN, projection and unpatchify: [B, N, D] -> [B, C_out, T, H, W]. */
  head(x: Tensor, e: EmbeddedInputs): Tensor {
    const [pt, ph, pw] = this.config.patchSize;
    const C = this.config.outChannels;
    const [Tp, Hp, Wp] = e.grid;
    const [T, H, W] = e.latentThw;
    const h = this.proj_out.forward(this.norm_out.forward(x, e.cond));
    return F.permute(h.reshape([e.batch, Tp, Hp, Wp, ph, pw, pt, C]), [0, 7, 1, 6, 2, 4, 3, 5]).reshape([e.batch, C, T, H, W]);
  }

  /** The raw network output [B, out_channels, T, H, W] (EDM F for 1.0, velocity for 2.5). */
  forward(inputs: CosmosForwardInputs): Tensor {
    const residuals = inputs.controlnetResiduals ?? null;
    const every = this.config.controlnetBlockEveryN;
    if (residuals && !every) throw new DiTInputError('controlnet residuals: given, but the config has no controlnet_block_every_n');
    return scope(() => {
      const e = this.embed(inputs);
      let x = e.tokens;
      this.transformer_blocks.forEach((block, i) => {
        let residual: Tensor | null = null;
        if (residuals && i % every! === 0) {
          const k = i / every!;
          if (k >= residuals.length) throw new DiTInputError(`controlnet residuals: block ${i} takes residual ${k}, but only ${residuals.length} were given`);
          residual = residuals[k];
        }
        const prev = x;
        x = scope(() => block.forward(prev, e.cond, { controlnetResidual: residual, ffChunkTokens: this.ffChunkTokens }));
        if (prev !== e.tokens) prev.dispose();
      });
      return this.head(x, e);
    });
  }
}

/** diffusers' `transformer/` folders (config.json + diffusion_pytorch_model*.safetensors): build with loadModule. */
export const CosmosTransformer3DFamily = {
  name: 'CosmosTransformer3DModel',
  build: (config: Record<string, unknown>) => new CosmosTransformer3DModel(parseCosmosTransformerConfig(config)),
} satisfies ModuleFamily<CosmosTransformer3DModel>;
