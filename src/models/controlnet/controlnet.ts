// The ControlNet of Cosmos Transfer2.5: diffusers' CosmosControlNetModel (spec controlnet.md), in
// forward order.
//
//   ctrl = cat(controls_latents, zeros up to in_channels-2, condition_mask | 0, pad(H, W))  [B, in_channels, T, H, W]
//   base = cat(latents, condition_mask?, pad(H, W))                                    [B, latent_channels, T, H, W]
//   cos, sin = rope(T', H', W', fps); pe = learnable_pos_embed (if configured)
//   c = patch_embed(ctrl), b = patch_embed_base(base)                                  [B, N, D] each
//   temb, emb = time_embed(timestep)  (per sample or per frame)
//   text = GELU(crossattn_proj(text)), img = GELU(img_context_proj(img))
//   h = before_proj(c) + b; for block i: h = block_i(h); residual_i = after_proj(h) * scale_i
//
// The ControlNet has its own copies of the base's embedding modules (patch_embed_base,
// time_embed, crossattn_proj, img_context_proj, learnable_pos_embed) and loads them from its own
// checkpoint. It does not see the base's hidden states. Residual i is added by the base after
// block i * controlnet_block_every_n (CosmosTransformer3DModel.forward's controlnetResiduals).
// Parameters keep diffusers' key names; bf16 checkpoints stay bf16. Taps at diffusers' module
// paths; `rope` / `time_embed` (tuple-valued upstream) record their first element (cos, temb).
import { UserError } from '../../engine/errors.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import { CosmosRotaryPosEmbed, CosmosTransformerBlock } from '../dit/block.js';
import { type CosmosTransformerConfig, DiTConfigError, configFields, maxGrid, validateConfig } from '../dit/config.js';
import { type ConditioningInputs, paddingChannel, positionEmbeddings, timestepAndContext } from '../dit/embed.js';
import { type BlockConditioning, CosmosEmbedding, CosmosLearnablePositionalEmbed, CosmosPatchEmbed, LinearGelu } from '../dit/layers.js';
import { patchGrid } from '../dit/rope3d.js';
import type { ModuleFamily } from '../load.js';

// ------------------------------------------------------------------ config

/** The ControlNet's own fields, and the block settings it shares with the base transformer's config. */
export interface CosmosControlNetConfig extends Pick<CosmosTransformerConfig,
  | 'numAttentionHeads' | 'attentionHeadDim' | 'mlpRatio' | 'textEmbedDim' | 'adalnLoraDim' | 'patchSize' | 'maxSize' | 'ropeScale'
  | 'extraPosEmbedType' | 'imgContextDimIn' | 'imgContextDimOut' | 'useCrossattnProjection' | 'crossattnProjInChannels' | 'encoderHiddenStatesChannels'> {
  /** number of control blocks = number of residuals */
  nControlnetBlocks: number;
  /** control patch-embed channels: padded control channels + condition mask + padding mask */
  inChannels: number;
  /** base patch-embed channels: latent + condition mask + padding mask */
  latentChannels: number;
  /** hidden size D (= heads * head_dim) */
  modelChannels: number;
}

export class ControlNetConfigError extends UserError {}

export class ControlNetInputError extends UserError {}

/** Parse a diffusers CosmosControlNetModel config.json (missing fields: diffusers' constructor defaults). */
export function parseControlNetConfig(json: Record<string, unknown>): CosmosControlNetConfig {
  if (json._class_name !== undefined && json._class_name !== 'CosmosControlNetModel') {
    throw new ControlNetConfigError(`ControlNet config.json: _class_name is ${JSON.stringify(json._class_name)}, expected "CosmosControlNetModel"`);
  }
  const extra = json.extra_pos_embed_type ?? null;
  if (extra !== null && extra !== 'learnable') {
    throw new ControlNetConfigError(`ControlNet config.json: extra_pos_embed_type must be "learnable" or null, got ${JSON.stringify(extra)}`);
  }
  const img = json.img_context_dim_in;
  if (img !== undefined && img !== null && (typeof img !== 'number' || !Number.isInteger(img) || img < 0)) {
    throw new ControlNetConfigError(`ControlNet config.json: img_context_dim_in must be a non-negative integer or null, got ${JSON.stringify(img)}`);
  }
  const { posInt, posNum, triple, bool } = configFields(json, 'ControlNet config.json', ControlNetConfigError);
  const cfg: CosmosControlNetConfig = {
    nControlnetBlocks: posInt('n_controlnet_blocks', 4),
    inChannels: posInt('in_channels', 130),
    latentChannels: posInt('latent_channels', 18),
    modelChannels: posInt('model_channels', 2048),
    numAttentionHeads: posInt('num_attention_heads', 32),
    attentionHeadDim: posInt('attention_head_dim', 128),
    mlpRatio: posNum('mlp_ratio', 4.0),
    textEmbedDim: posInt('text_embed_dim', 1024),
    adalnLoraDim: posInt('adaln_lora_dim', 256),
    patchSize: triple('patch_size', [1, 2, 2], true),
    maxSize: triple('max_size', [128, 240, 240], true),
    ropeScale: triple('rope_scale', [2.0, 1.0, 1.0], false),
    extraPosEmbedType: extra as 'learnable' | null,
    imgContextDimIn: typeof img === 'number' && img > 0 ? img : null,
    imgContextDimOut: posInt('img_context_dim_out', 2048),
    useCrossattnProjection: bool('use_crossattn_projection', false),
    crossattnProjInChannels: posInt('crossattn_proj_in_channels', 1024),
    encoderHiddenStatesChannels: posInt('encoder_hidden_states_channels', 1024),
  };
  validateControlNetConfig(cfg);
  return cfg;
}

/** The block settings as the base DiT's config type (what CosmosTransformerBlock / the RoPE read). */
export function blockConfig(c: CosmosControlNetConfig): CosmosTransformerConfig {
  return {
    inChannels: c.latentChannels - 1,
    outChannels: 1,
    numAttentionHeads: c.numAttentionHeads,
    attentionHeadDim: c.attentionHeadDim,
    numLayers: c.nControlnetBlocks,
    mlpRatio: c.mlpRatio,
    textEmbedDim: c.textEmbedDim,
    adalnLoraDim: c.adalnLoraDim,
    maxSize: c.maxSize,
    patchSize: c.patchSize,
    ropeScale: c.ropeScale,
    concatPaddingMask: true,
    extraPosEmbedType: c.extraPosEmbedType,
    useCrossattnProjection: c.useCrossattnProjection,
    crossattnProjInChannels: c.crossattnProjInChannels,
    encoderHiddenStatesChannels: c.encoderHiddenStatesChannels,
    controlnetBlockEveryN: null,
    imgContextDimIn: c.imgContextDimIn,
    imgContextNumTokens: 1,
    imgContextDimOut: c.imgContextDimOut,
  };
}

export function validateControlNetConfig(c: CosmosControlNetConfig): void {
  const D = c.numAttentionHeads * c.attentionHeadDim;
  if (c.modelChannels !== D) {
    throw new ControlNetConfigError(`ControlNet config.json: model_channels ${c.modelChannels} must equal num_attention_heads * attention_head_dim = ${c.numAttentionHeads} * ${c.attentionHeadDim} = ${D}`);
  }
  if (c.inChannels < 3) {
    throw new ControlNetConfigError(`ControlNet config.json: in_channels ${c.inChannels} must hold at least one control channel plus the condition-mask and padding-mask channels`);
  }
  if (c.latentChannels < 2) {
    throw new ControlNetConfigError(`ControlNet config.json: latent_channels ${c.latentChannels} must hold the latent plus the padding-mask channel`);
  }
  try {
    validateConfig(blockConfig(c));
  } catch (e) {
    if (e instanceof DiTConfigError) throw new ControlNetConfigError(`ControlNet ${e.message}`);
    throw e;
  }
}

// ------------------------------------------------------------------ inputs

export interface ControlNetForwardInputs extends ConditioningInputs {
  /** control video latent [B, Cc, T, H, W] (normalised VAE latent); zero-padded to in_channels - 2 */
  controlsLatents: Tensor;
  /** the base's (noisy, conditioning-frames-replaced) latent [B, C, T, H, W] */
  latents: Tensor;
  /** [B, 1, T, H, W], 1 on conditioning frames; absent: no mask channel on the base stream, zeros on the control stream */
  conditionMask?: Tensor | null;
  /** a float for every block, or one per block (a shorter list repeats cyclically) */
  conditioningScale?: number | readonly number[];
}

/** diffusers `_expand_conditioning_scale`: float -> all blocks; short list -> (list * N)[:N]; long list truncated. */
export function expandConditioningScale(scale: number | readonly number[], n: number): number[] {
  const list = typeof scale === 'number' ? new Array<number>(n).fill(scale) : [...scale];
  if (list.length === 0) throw new ControlNetInputError('conditioning_scale: an empty list gives no scale to any control block');
  for (const s of list) {
    if (typeof s !== 'number' || !Number.isFinite(s)) throw new ControlNetInputError(`conditioning_scale: ${JSON.stringify(scale)} must hold finite numbers`);
  }
  return Array.from({ length: n }, (_, i) => list[i % list.length]);
}

// ------------------------------------------------------------------ the model

export class CosmosControlNetModel extends Module {
  readonly patch_embed: CosmosPatchEmbed;
  readonly patch_embed_base: CosmosPatchEmbed;
  readonly time_embed: CosmosEmbedding;
  readonly learnable_pos_embed: CosmosLearnablePositionalEmbed | null;
  readonly img_context_proj: LinearGelu | null;
  readonly crossattn_proj: LinearGelu | null;
  readonly rope: CosmosRotaryPosEmbed;
  readonly control_blocks: CosmosTransformerBlock[];
  readonly hiddenSize: number;
  /** as CosmosTransformer3DModel.ffChunkTokens: MLP rows per pass (null: all at once) */
  ffChunkTokens: number | null = null;

  constructor(readonly config: CosmosControlNetConfig) {
    super();
    const c = config;
    const D = c.modelChannels;
    this.hiddenSize = D;
    const bc = blockConfig(c);
    this.patch_embed = this.add('patch_embed', new CosmosPatchEmbed(c.inChannels, D, c.patchSize));
    this.patch_embed_base = this.add('patch_embed_base', new CosmosPatchEmbed(c.latentChannels, D, c.patchSize));
    this.time_embed = this.add('time_embed', new CosmosEmbedding(D));
    this.learnable_pos_embed = c.extraPosEmbedType === 'learnable'
      ? this.add('learnable_pos_embed', new CosmosLearnablePositionalEmbed(D, maxGrid(c)))
      : null;
    this.img_context_proj = c.imgContextDimIn !== null ? this.add('img_context_proj', new LinearGelu(c.imgContextDimIn, c.imgContextDimOut)) : null;
    this.crossattn_proj = c.useCrossattnProjection
      ? this.add('crossattn_proj', new LinearGelu(c.crossattnProjInChannels, c.encoderHiddenStatesChannels))
      : null;
    this.rope = this.add('rope', new CosmosRotaryPosEmbed(bc));
    this.control_blocks = Array.from({ length: c.nControlnetBlocks }, (_, i) =>
      this.add(`control_blocks.${i}`, new CosmosTransformerBlock(bc, { beforeProj: i === 0, afterProj: true })));
  }

  /** Number of residuals the forward returns. */
  get numResiduals(): number {
    return this.config.nControlnetBlocks;
  }

  /** control channels the patch embedding takes before the two mask channels (in_channels - 2) */
  get controlChannels(): number {
    return this.config.inChannels - 2;
  }


  override dispose(): void {
    this.rope.cache.clear();
    super.dispose();
  }

  /**
   * The per-block residuals [B, N, D] (already multiplied by their conditioning scale), for
   * CosmosTransformer3DModel.forward's `controlnetResiduals`. `tokenWeight` [B|1, N, 1] further
   * multiplies every residual (a spatio-temporal control weight on the token grid).
   */
  forward(inputs: ControlNetForwardInputs, tokenWeight: Tensor | null = null): Tensor[] {
    return scope(() => {
      const e = this.embed(inputs);
      const scales = expandConditioningScale(inputs.conditioningScale ?? 1, this.config.nControlnetBlocks);
      const out: Tensor[] = [];
      let h = e.control;
      this.control_blocks.forEach((block, i) => {
        const prev = h;
        const [next, residual] = scope(() => {
          const x = block.forward(prev, e.cond, { latents: i === 0 ? e.base : null, ffChunkTokens: this.ffChunkTokens });
          let r = block.after_proj!.forward(x);
          if (scales[i] !== 1) r = F.scale(r, scales[i]);
          if (tokenWeight) r = F.mul(r, tokenWeight);
          return [x, r];
        });
        out.push(residual);
        if (prev !== e.control) prev.dispose();
        h = next;
      });
      return out;
    });
  }

  /** Everything before the control blocks: both streams' channels and patch embeddings, RoPE, timestep, context. */
  embed(inputs: ControlNetForwardInputs): { control: Tensor; base: Tensor; cond: BlockConditioning; grid: [number, number, number] } {
    const cfg = this.config;
    const D = this.hiddenSize;
    const ctrl0 = inputs.controlsLatents;
    const lat = inputs.latents;
    if (ctrl0.rank !== 5) throw new ControlNetInputError(`controls_latents: must be [B, C, T, H, W]; got ${shapeStr(ctrl0.shape)}`);
    if (lat.rank !== 5) throw new ControlNetInputError(`latents: must be [B, C, T, H, W]; got ${shapeStr(lat.shape)}`);
    const [B, Cc, T, H, W] = ctrl0.shape;
    if (lat.shape[0] !== B || lat.shape[2] !== T || lat.shape[3] !== H || lat.shape[4] !== W) {
      throw new ControlNetInputError(`controls_latents: ${shapeStr(ctrl0.shape)} and latents ${shapeStr(lat.shape)} must agree on batch, frames, height and width`);
    }
    const [pt, ph, pw] = cfg.patchSize;
    if (T % pt || H % ph || W % pw) {
      throw new ControlNetInputError(`latents ${shapeStr(lat.shape)}: T, H, W must be multiples of patch_size ${JSON.stringify(cfg.patchSize)}`);
    }
    const P = this.controlChannels;
    if (Cc > P) {
      throw new ControlNetInputError(`controls_latents: has ${Cc} channels, the ControlNet takes at most ${P} (in_channels ${cfg.inChannels} less the condition-mask and padding-mask channels)`);
    }
    const backend = lat.backend;
    const mask = inputs.conditionMask ?? null;
    if (mask && mask.shape.join() !== [B, 1, T, H, W].join()) {
      throw new ControlNetInputError(`condition_mask: must be ${shapeStr([B, 1, T, H, W])}; got ${shapeStr(mask.shape)}`);
    }
    const padChannel = paddingChannel(inputs.paddingMask, lat.shape, backend);

    // 1. control stream: control latent, zero channels up to in_channels - 2, condition mask (or zeros), padding mask
    const cparts = [ctrl0];
    if (Cc < P) cparts.push(F.zeros(backend, [B, P - Cc, T, H, W]));
    cparts.push(mask ?? F.zeros(backend, [B, 1, T, H, W]), padChannel);
    const ctrl = F.concat(cparts, 1);

    // 2. base stream: latents, condition mask, padding mask
    const base = F.concat(mask ? [lat, mask, padChannel] : [lat, padChannel], 1);
    if (base.shape[1] !== cfg.latentChannels) {
      throw new ControlNetInputError(
        `latents: patch_embed_base takes latent_channels = ${cfg.latentChannels} channels; got ${lat.shape[1]}` +
        `${mask ? ' + condition mask' : ''} + padding mask = ${base.shape[1]}` +
        (!mask && base.shape[1] + 1 === cfg.latentChannels ? ' (this ControlNet expects a condition_mask)' : ''),
      );
    }

    // 3. positional embeddings (from the control tensor's grid, which is the base's)
    const grid = patchGrid([T, H, W], cfg.patchSize);
    const { rope, extraPosEmb } = positionEmbeddings(this, backend, grid, B, inputs.fps);
    this.tap(rope.cos, 'rope');

    // 4-5. patch embeddings, flattened in (t, h, w) order
    const N = grid[0] * grid[1] * grid[2];
    const control = this.patch_embed.forward(ctrl).reshape([B, N, D]);
    const baseTokens = this.patch_embed_base.forward(base).reshape([B, N, D]);

    // 6-7. timestep rows (per sample or per frame) and context projections
    const rest = timestepAndContext(this, cfg, inputs, B, T, grid, { Err: ControlNetInputError, who: 'the ControlNet' });
    this.tap(rest.temb, 'time_embed');
    return { control, base: baseTokens, cond: { ...rest, rope, extraPosEmb }, grid };
  }
}

/** diffusers' `controlnet/` folders (config.json + diffusion_pytorch_model*.safetensors): build with loadModule. */
export const CosmosControlNetFamily = {
  name: 'CosmosControlNetModel',
  build: (config: Record<string, unknown>) => new CosmosControlNetModel(parseControlNetConfig(config)),
} satisfies ModuleFamily<CosmosControlNetModel>;
