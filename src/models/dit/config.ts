// The config of diffusers' CosmosTransformer3DModel (config.json), parsed and checked. Field
// meanings: spec dit.md §1. Missing fields take diffusers' constructor defaults.
import { UserError } from '../../engine/errors.js';

export type Triple = readonly [number, number, number];

export interface CosmosTransformerConfig {
  /** latent channels fed in, including the condition-mask channel of video2world models */
  inChannels: number;
  outChannels: number;
  numAttentionHeads: number;
  attentionHeadDim: number;
  numLayers: number;
  mlpRatio: number;
  /** width of the text states cross-attention K/V project from */
  textEmbedDim: number;
  adalnLoraDim: number;
  /** maximum latent (T, H, W); divided by the patch size: RoPE / learnable table lengths */
  maxSize: Triple;
  patchSize: Triple;
  /** NTK extrapolation ratios (t, h, w) */
  ropeScale: Triple;
  concatPaddingMask: boolean;
  /** 'learnable' (Cosmos-1.0) or null (Predict2 / 2.5) */
  extraPosEmbedType: 'learnable' | null;
  /** Predict2.5: text -> GELU(Linear(+bias)) of width encoderHiddenStatesChannels */
  useCrossattnProjection: boolean;
  crossattnProjInChannels: number;
  encoderHiddenStatesChannels: number;
  /** Transfer2.5: control residual k goes after base block k*every_n */
  controlnetBlockEveryN: number | null;
  /** Transfer2.5: image-context branch of the cross-attention (null: none) */
  imgContextDimIn: number | null;
  imgContextNumTokens: number;
  imgContextDimOut: number;
}

export class DiTConfigError extends UserError {
  override name = 'DiTConfigError';
}

export class DiTInputError extends UserError {
  override name = 'DiTInputError';
}

/** D = heads * head_dim */
export function hiddenSize(c: CosmosTransformerConfig): number {
  return c.numAttentionHeads * c.attentionHeadDim;
}

/** Input channels of the patch embedding (the padding-mask channel included). */
export function patchEmbedInChannels(c: CosmosTransformerConfig): number {
  return c.concatPaddingMask ? c.inChannels + 1 : c.inChannels;
}

/** max_size // patch_size per axis. */
export function maxGrid(c: Pick<CosmosTransformerConfig, 'maxSize' | 'patchSize'>): [number, number, number] {
  return [0, 1, 2].map((i) => Math.floor(c.maxSize[i] / c.patchSize[i])) as [number, number, number];
}

function posInt(json: Record<string, unknown>, key: string, def: number): number {
  const v = json[key] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new DiTConfigError(`config.json: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function posNum(json: Record<string, unknown>, key: string, def: number): number {
  const v = json[key] ?? def;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new DiTConfigError(`config.json: ${key} must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function triple(json: Record<string, unknown>, key: string, def: Triple, int: boolean): Triple {
  const v = json[key] ?? def;
  const ok = Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && x > 0 && Number.isFinite(x) && (!int || Number.isInteger(x)));
  if (!ok) throw new DiTConfigError(`config.json: ${key} must be 3 positive ${int ? 'integers' : 'numbers'} (t, h, w), got ${JSON.stringify(v)}`);
  return Object.freeze([...(v as number[])]) as unknown as Triple;
}

function bool(json: Record<string, unknown>, key: string, def: boolean): boolean {
  const v = json[key] ?? def;
  if (typeof v !== 'boolean') throw new DiTConfigError(`config.json: ${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function optPosInt(json: Record<string, unknown>, key: string): number | null {
  const v = json[key];
  if (v === undefined || v === null || v === 0) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new DiTConfigError(`config.json: ${key} must be a positive integer or null, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parse a diffusers CosmosTransformer3DModel config.json object. */
export function parseCosmosTransformerConfig(json: Record<string, unknown>): CosmosTransformerConfig {
  if (json._class_name !== undefined && json._class_name !== 'CosmosTransformer3DModel') {
    throw new DiTConfigError(`config.json: _class_name is ${JSON.stringify(json._class_name)}, expected "CosmosTransformer3DModel"`);
  }
  const extra = json.extra_pos_embed_type === undefined ? 'learnable' : json.extra_pos_embed_type;
  if (extra !== null && extra !== 'learnable') {
    throw new DiTConfigError(`config.json: extra_pos_embed_type must be "learnable" or null, got ${JSON.stringify(extra)}`);
  }
  const cfg: CosmosTransformerConfig = {
    inChannels: posInt(json, 'in_channels', 16),
    outChannels: posInt(json, 'out_channels', 16),
    numAttentionHeads: posInt(json, 'num_attention_heads', 32),
    attentionHeadDim: posInt(json, 'attention_head_dim', 128),
    numLayers: posInt(json, 'num_layers', 28),
    mlpRatio: posNum(json, 'mlp_ratio', 4.0),
    textEmbedDim: posInt(json, 'text_embed_dim', 1024),
    adalnLoraDim: posInt(json, 'adaln_lora_dim', 256),
    maxSize: triple(json, 'max_size', [128, 240, 240], true),
    patchSize: triple(json, 'patch_size', [1, 2, 2], true),
    ropeScale: triple(json, 'rope_scale', [2.0, 1.0, 1.0], false),
    concatPaddingMask: bool(json, 'concat_padding_mask', true),
    extraPosEmbedType: extra as 'learnable' | null,
    useCrossattnProjection: bool(json, 'use_crossattn_projection', false),
    crossattnProjInChannels: posInt(json, 'crossattn_proj_in_channels', 1024),
    encoderHiddenStatesChannels: posInt(json, 'encoder_hidden_states_channels', 1024),
    controlnetBlockEveryN: optPosInt(json, 'controlnet_block_every_n'),
    imgContextDimIn: optPosInt(json, 'img_context_dim_in'),
    imgContextNumTokens: posInt(json, 'img_context_num_tokens', 256),
    imgContextDimOut: posInt(json, 'img_context_dim_out', 2048),
  };
  validateConfig(cfg);
  return cfg;
}

export function validateConfig(cfg: CosmosTransformerConfig): void {
  const d = cfg.attentionHeadDim;
  // RoPE split: dim_h = dim_w = (d // 6) * 2, dim_t = d - 2 dim_h; the NTK exponent dim/(dim-2)
  // needs every part wider than 2
  const dh = Math.floor(d / 6) * 2;
  if (dh <= 2 || d - 2 * dh <= 2 || d % 2) {
    throw new DiTConfigError(`config.json: attention_head_dim ${d} is too small (or odd) for the 3D RoPE split (t ${d - 2 * dh}, h ${dh}, w ${dh}; each must exceed 2)`);
  }
  if (cfg.useCrossattnProjection && cfg.encoderHiddenStatesChannels !== cfg.textEmbedDim) {
    throw new DiTConfigError(`config.json: encoder_hidden_states_channels ${cfg.encoderHiddenStatesChannels} must equal text_embed_dim ${cfg.textEmbedDim} (the projected text feeds the cross-attention)`);
  }
  if (cfg.imgContextDimIn !== null && cfg.imgContextDimOut !== hiddenSize(cfg)) {
    throw new DiTConfigError(`config.json: img_context_dim_out ${cfg.imgContextDimOut} must equal the hidden size ${hiddenSize(cfg)} (k_img / v_img read it)`);
  }
  maxGrid(cfg).forEach((g, i) => {
    if (g < 1) throw new DiTConfigError(`config.json: max_size ${JSON.stringify(cfg.maxSize)} is smaller than patch_size ${JSON.stringify(cfg.patchSize)} on axis ${'THW'[i]}`);
  });
}
