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

export class DiTConfigError extends UserError {}

export class DiTInputError extends UserError {}

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

/**
 * Readers of a config.json's fields: a missing field takes `def`; a present one must have the
 * expected type, or `Err` is thrown naming `file`, the key and the value. The DiT and its
 * ControlNet read their configs through these.
 */
export function configFields(json: Record<string, unknown>, file: string, Err: new (message: string) => Error) {
  const get = (key: string, def: unknown, ok: (v: unknown) => boolean, expected: string): unknown => {
    const v = json[key] ?? def;
    if (!ok(v)) throw new Err(`${file}: ${key} must be ${expected}, got ${JSON.stringify(v)}`);
    return v;
  };
  const isPosInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1;
  return {
    num: (key: string, def: number) => get(key, def, (v) => typeof v === 'number' && Number.isFinite(v), 'a number') as number,
    oneOf<T extends string>(key: string, def: T, allowed: readonly T[]): T {
      const ok = (v: unknown) => typeof v === 'string' && allowed.includes(v as T);
      return get(key, def, ok, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')} (no other is supported)`) as T;
    },
    posInt: (key: string, def: number) => get(key, def, isPosInt, 'a positive integer') as number,
    posNum: (key: string, def: number) => get(key, def, (v) => typeof v === 'number' && v > 0 && Number.isFinite(v), 'a positive number') as number,
    bool: (key: string, def: boolean) => get(key, def, (v) => typeof v === 'boolean', 'true or false') as boolean,
    triple(key: string, def: Triple, int: boolean): Triple {
      const ok = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && x > 0 && Number.isFinite(x) && (!int || Number.isInteger(x)));
      const v = get(key, def, ok, `3 positive ${int ? 'integers' : 'numbers'} (t, h, w)`) as number[];
      return Object.freeze([...v]) as unknown as Triple;
    },
    /** null when missing, null or 0 */
    optPosInt(key: string): number | null {
      const v = json[key];
      if (v === undefined || v === null || v === 0) return null;
      return get(key, undefined, isPosInt, 'a positive integer or null') as number;
    },
  };
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
  const { posInt, posNum, triple, bool, optPosInt } = configFields(json, 'config.json', DiTConfigError);
  const cfg: CosmosTransformerConfig = {
    inChannels: posInt('in_channels', 16),
    outChannels: posInt('out_channels', 16),
    numAttentionHeads: posInt('num_attention_heads', 32),
    attentionHeadDim: posInt('attention_head_dim', 128),
    numLayers: posInt('num_layers', 28),
    mlpRatio: posNum('mlp_ratio', 4.0),
    textEmbedDim: posInt('text_embed_dim', 1024),
    adalnLoraDim: posInt('adaln_lora_dim', 256),
    maxSize: triple('max_size', [128, 240, 240], true),
    patchSize: triple('patch_size', [1, 2, 2], true),
    ropeScale: triple('rope_scale', [2.0, 1.0, 1.0], false),
    concatPaddingMask: bool('concat_padding_mask', true),
    extraPosEmbedType: extra as 'learnable' | null,
    useCrossattnProjection: bool('use_crossattn_projection', false),
    crossattnProjInChannels: posInt('crossattn_proj_in_channels', 1024),
    encoderHiddenStatesChannels: posInt('encoder_hidden_states_channels', 1024),
    controlnetBlockEveryN: optPosInt('controlnet_block_every_n'),
    imgContextDimIn: optPosInt('img_context_dim_in'),
    imgContextNumTokens: posInt('img_context_num_tokens', 256),
    imgContextDimOut: posInt('img_context_dim_out', 2048),
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
