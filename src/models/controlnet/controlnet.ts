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
import { join } from 'node:path';
import type { Backend } from '../../engine/backend.js';
import { type LoadOptions, type LoadReport, Module, type TensorSource, loadWeights, plannedBytes } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, numel, scope, shapeStr } from '../../engine/tensor.js';
import { openCheckpoint } from '../../io/safetensors.js';
import { type CosmosTransformerConfig, DiTConfigError, type Triple, maxGrid, validateConfig } from '../dit/config.js';
import { patchGrid } from '../dit/rope3d.js';
import {
  type BlockConditioning, CosmosEmbedding, CosmosLearnablePositionalEmbed, CosmosPatchEmbed, CosmosRotaryPosEmbed,
  CosmosTransformerBlock, LinearGelu, resizePaddingMask,
} from '../dit/transformer.js';
import { UserError } from '../../engine/errors.js';

// ------------------------------------------------------------------ config

export interface CosmosControlNetConfig {
  /** number of control blocks = number of residuals */
  nControlnetBlocks: number;
  /** control patch-embed channels: padded control channels + condition mask + padding mask */
  inChannels: number;
  /** base patch-embed channels: latent + condition mask + padding mask */
  latentChannels: number;
  /** hidden size D (= heads * head_dim) */
  modelChannels: number;
  numAttentionHeads: number;
  attentionHeadDim: number;
  mlpRatio: number;
  textEmbedDim: number;
  adalnLoraDim: number;
  patchSize: Triple;
  maxSize: Triple;
  ropeScale: Triple;
  extraPosEmbedType: 'learnable' | null;
  imgContextDimIn: number | null;
  imgContextDimOut: number;
  useCrossattnProjection: boolean;
  crossattnProjInChannels: number;
  encoderHiddenStatesChannels: number;
}

export class ControlNetConfigError extends UserError {
  override name = 'ControlNetConfigError';
}

export class ControlNetInputError extends UserError {
  override name = 'ControlNetInputError';
}

function posInt(json: Record<string, unknown>, key: string, def: number): number {
  const v = json[key] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new ControlNetConfigError(`ControlNet config.json: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function posNum(json: Record<string, unknown>, key: string, def: number): number {
  const v = json[key] ?? def;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new ControlNetConfigError(`ControlNet config.json: ${key} must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function triple(json: Record<string, unknown>, key: string, def: Triple, int: boolean): Triple {
  const v = json[key] ?? def;
  const ok = Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && x > 0 && Number.isFinite(x) && (!int || Number.isInteger(x)));
  if (!ok) throw new ControlNetConfigError(`ControlNet config.json: ${key} must be 3 positive ${int ? 'integers' : 'numbers'} (t, h, w), got ${JSON.stringify(v)}`);
  return Object.freeze([...(v as number[])]) as unknown as Triple;
}

function bool(json: Record<string, unknown>, key: string, def: boolean): boolean {
  const v = json[key] ?? def;
  if (typeof v !== 'boolean') throw new ControlNetConfigError(`ControlNet config.json: ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

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
  const cfg: CosmosControlNetConfig = {
    nControlnetBlocks: posInt(json, 'n_controlnet_blocks', 4),
    inChannels: posInt(json, 'in_channels', 130),
    latentChannels: posInt(json, 'latent_channels', 18),
    modelChannels: posInt(json, 'model_channels', 2048),
    numAttentionHeads: posInt(json, 'num_attention_heads', 32),
    attentionHeadDim: posInt(json, 'attention_head_dim', 128),
    mlpRatio: posNum(json, 'mlp_ratio', 4.0),
    textEmbedDim: posInt(json, 'text_embed_dim', 1024),
    adalnLoraDim: posInt(json, 'adaln_lora_dim', 256),
    patchSize: triple(json, 'patch_size', [1, 2, 2], true),
    maxSize: triple(json, 'max_size', [128, 240, 240], true),
    ropeScale: triple(json, 'rope_scale', [2.0, 1.0, 1.0], false),
    extraPosEmbedType: extra as 'learnable' | null,
    imgContextDimIn: typeof img === 'number' && img > 0 ? img : null,
    imgContextDimOut: posInt(json, 'img_context_dim_out', 2048),
    useCrossattnProjection: bool(json, 'use_crossattn_projection', false),
    crossattnProjInChannels: posInt(json, 'crossattn_proj_in_channels', 1024),
    encoderHiddenStatesChannels: posInt(json, 'encoder_hidden_states_channels', 1024),
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

export interface ControlNetForwardInputs {
  /** control video latent [B, Cc, T, H, W] (normalised VAE latent); zero-padded to in_channels - 2 */
  controlsLatents: Tensor;
  /** the base's (noisy, conditioning-frames-replaced) latent [B, C, T, H, W] */
  latents: Tensor;
  /** [B] (or [1]) per sample, or [B, 1, T, 1, 1] per frame (sigma in [0, 1], not scaled) */
  timestep: Tensor;
  /** raw text embeddings [B, L, crossattn_proj_in_channels] (text_embed_dim without the projection) */
  encoderHiddenStates: Tensor;
  /** image context [B, Si, img_context_dim_in]; null skips the image branch */
  imageContext?: Tensor | null;
  /** [B, 1, T, H, W], 1 on conditioning frames; absent: no mask channel on the base stream, zeros on the control stream */
  conditionMask?: Tensor | null;
  /** [1, 1, Hp, Wp] pixel padding mask (1 = padded), resized NEAREST; absent: zeros */
  paddingMask?: Tensor | null;
  /** RoPE fps (t / fps * 24); null: frame indices (the pipeline passes none) */
  fps?: number | null;
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

  static fromConfigJson(json: Record<string, unknown>): CosmosControlNetModel {
    return new CosmosControlNetModel(parseControlNetConfig(json));
  }

  /** Number of residuals the forward returns. */
  get numResiduals(): number {
    return this.config.nControlnetBlocks;
  }

  /** control channels the patch embedding takes before the two mask channels (in_channels - 2) */
  get controlChannels(): number {
    return this.config.inChannels - 2;
  }


  plannedBytes(src: TensorSource, opts: LoadOptions = {}): number {
    return plannedBytes(this, src, opts);
  }

  /** Fill the parameters from a diffusers-layout ControlNet checkpoint (keys and shapes checked first). */
  async load(src: TensorSource, backend: Backend, opts: LoadOptions = {}): Promise<LoadReport> {
    this.rope.cache.clear();
    return loadWeights(this, src, backend, opts);
  }

  /** A diffusers `controlnet/` folder (config.json + diffusion_pytorch_model*.safetensors, sharded or not). */
  static async fromPretrained(dir: string, backend: Backend, opts: { maxBytes?: number; load?: LoadOptions } = {}): Promise<{ model: CosmosControlNetModel; plannedBytes: number; report: LoadReport }> {
    const ckpt = await openCheckpoint(dir);
    try {
      const cfgJson = ckpt.config;
      if (!cfgJson || typeof cfgJson !== 'object') throw new ControlNetConfigError(`${join(dir, 'config.json')}: missing beside the ControlNet checkpoint`);
      const model = CosmosControlNetModel.fromConfigJson(cfgJson as Record<string, unknown>);
      const bytes = model.plannedBytes(ckpt, opts.load);
      if (opts.maxBytes !== undefined && bytes > opts.maxBytes) {
        throw new ControlNetConfigError(`${dir}: the ControlNet needs ${(bytes / 2 ** 30).toFixed(2)} GiB of parameters, more than the ${(opts.maxBytes / 2 ** 30).toFixed(2)} GiB allowed`);
      }
      const report = await model.load(ckpt, backend, opts.load);
      return { model, plannedBytes: bytes, report };
    } finally {
      await ckpt.close();
    }
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
    if (ctrl0.rank !== 5) throw new ControlNetInputError(`controls_latents must be [B, C, T, H, W], got ${shapeStr(ctrl0.shape)}`);
    if (lat.rank !== 5) throw new ControlNetInputError(`latents must be [B, C, T, H, W], got ${shapeStr(lat.shape)}`);
    const [B, Cc, T, H, W] = ctrl0.shape;
    if (lat.shape[0] !== B || lat.shape[2] !== T || lat.shape[3] !== H || lat.shape[4] !== W) {
      throw new ControlNetInputError(`controls_latents ${shapeStr(ctrl0.shape)} and latents ${shapeStr(lat.shape)} must agree on batch, frames, height and width`);
    }
    const [pt, ph, pw] = cfg.patchSize;
    if (T % pt || H % ph || W % pw) {
      throw new ControlNetInputError(`latents ${shapeStr(lat.shape)}: T, H, W must be multiples of patch_size ${JSON.stringify(cfg.patchSize)}`);
    }
    const P = this.controlChannels;
    if (Cc > P) {
      throw new ControlNetInputError(`controls_latents has ${Cc} channels, the ControlNet takes at most ${P} (in_channels ${cfg.inChannels} less the condition-mask and padding-mask channels)`);
    }
    const backend = lat.backend;
    const mask = inputs.conditionMask ?? null;
    if (mask && mask.shape.join() !== [B, 1, T, H, W].join()) {
      throw new ControlNetInputError(`condition_mask must be ${shapeStr([B, 1, T, H, W])}, got ${shapeStr(mask.shape)}`);
    }
    const pm = inputs.paddingMask ? resizePaddingMask(inputs.paddingMask, H, W) : F.zeros(backend, [1, 1, H, W]);
    const padChannel = F.expand(pm.reshape([1, 1, 1, H, W]), [B, 1, T, H, W]);

    // 1. control stream: control latent, zero channels up to in_channels - 2, condition mask (or zeros), padding mask
    const cparts = [ctrl0];
    if (Cc < P) cparts.push(F.zeros(backend, [B, P - Cc, T, H, W]));
    cparts.push(mask ?? F.zeros(backend, [B, 1, T, H, W]), padChannel);
    const ctrl = F.concat(cparts, 1);

    // 2. base stream: latents, condition mask, padding mask
    const base = F.concat(mask ? [lat, mask, padChannel] : [lat, padChannel], 1);
    if (base.shape[1] !== cfg.latentChannels) {
      throw new ControlNetInputError(
        `patch_embed_base takes latent_channels = ${cfg.latentChannels} channels, got ${lat.shape[1]} latent channels` +
        `${mask ? ' + condition mask' : ''} + padding mask = ${base.shape[1]}` +
        (!mask && base.shape[1] + 1 === cfg.latentChannels ? ' (this ControlNet expects a condition_mask)' : ''),
      );
    }

    // 3. positional embeddings (from the control tensor's grid, which is the base's)
    const grid = patchGrid([T, H, W], cfg.patchSize);
    const rope = this.rope.forward(backend, grid, inputs.fps ?? null);
    this.tap(rope.cos, 'rope');
    const extraPosEmb = this.learnable_pos_embed ? this.learnable_pos_embed.forward(grid, B) : null;

    // 4-5. patch embeddings, flattened in (t, h, w) order
    const N = grid[0] * grid[1] * grid[2];
    const control = this.patch_embed.forward(ctrl).reshape([B, N, D]);
    const baseTokens = this.patch_embed_base.forward(base).reshape([B, N, D]);

    // 6. timestep embedding: one row per sample, or per frame
    const ts = inputs.timestep;
    let modBatch: number;
    let modFrames: number;
    if (ts.rank === 1) {
      if (ts.shape[0] !== B && ts.shape[0] !== 1) throw new ControlNetInputError(`timestep [${ts.shape[0]}] must have one value per sample (batch ${B}) or one in all`);
      modBatch = ts.shape[0];
      modFrames = 1;
    } else if (ts.rank === 5) {
      if (ts.shape.join() !== [B, 1, T, 1, 1].join()) throw new ControlNetInputError(`a per-frame timestep must be ${shapeStr([B, 1, T, 1, 1])}, got ${shapeStr(ts.shape)}`);
      if (pt !== 1) throw new ControlNetInputError(`per-frame timesteps need patch_size t = 1 (got ${pt})`);
      modBatch = B;
      modFrames = grid[0];
    } else {
      throw new ControlNetInputError(`timestep must be [B] or [B, 1, T, 1, 1], got ${shapeStr(ts.shape)}`);
    }
    const { temb, embeddedTimestep } = this.time_embed.forward(ts);
    this.tap(temb, 'time_embed');
    const act = F.silu(embeddedTimestep);

    // 7. context projections
    let text = inputs.encoderHiddenStates;
    if (text.rank !== 3 || text.shape[0] !== B) throw new ControlNetInputError(`encoder_hidden_states must be [${B}, S, dim], got ${shapeStr(text.shape)}`);
    const wantText = this.crossattn_proj ? cfg.crossattnProjInChannels : cfg.textEmbedDim;
    if (text.shape[2] !== wantText) {
      throw new ControlNetInputError(`encoder_hidden_states has ${text.shape[2]} features, the ControlNet expects ${wantText}${this.crossattn_proj ? ' (crossattn_proj_in_channels)' : ' (text_embed_dim)'}`);
    }
    if (this.crossattn_proj) text = this.crossattn_proj.forward(text);
    let image: Tensor | null = null;
    if (inputs.imageContext && this.img_context_proj) {
      const ic = inputs.imageContext;
      if (ic.rank !== 3 || ic.shape[0] !== B || ic.shape[2] !== cfg.imgContextDimIn) {
        throw new ControlNetInputError(`img_context must be [${B}, S, ${cfg.imgContextDimIn}], got ${shapeStr(ic.shape)}`);
      }
      image = this.img_context_proj.forward(ic);
    }

    return { control, base: baseTokens, cond: { text, image, act, temb, modBatch, modFrames, rope, extraPosEmb }, grid };
  }
}
