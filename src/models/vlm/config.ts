// The Qwen2.5-VL configuration (transformers Qwen2_5_VLConfig, v4.49): the text fields (top
// level, or under text_config in newer transformers), vision_config, the special token ids,
// transformers' defaults for what a config.json leaves out, and the released Cosmos-Reason1-7B
// config. Spec vlm.md "Real config".
import { UserError } from '../../engine/errors.js';
import type { RopeIndexConfig } from './rope-index.js';

/** A config.json field the model cannot be built from (names the field). */
export class VlmConfigError extends UserError {}

/** Inputs that do not fit the model (ids, grids, pixel shapes, cache sizes). */
export class VlmInputError extends UserError {}

/** An image or frame size smart_resize refuses (too small, too thin). */
export class SmartResizeError extends UserError {}

/** Pixels or frame counts the image processor cannot take. */
export class PreprocessError extends UserError {}

// ------------------------------------------------------------------ vision_config

export interface VisionConfig {
  depth: number;
  hiddenSize: number;
  hiddenAct: Activation;
  intermediateSize: number;
  numHeads: number;
  inChannels: number;
  patchSize: number;
  spatialMergeSize: number;
  temporalPatchSize: number;
  tokensPerSecond: number;
  windowSize: number;
  outHiddenSize: number;
  fullattBlockIndexes: readonly number[];
}

export type Activation = 'silu' | 'gelu' | 'gelu_tanh' | 'relu' | 'quick_gelu';

const ACTIVATIONS: Record<string, Activation> = {
  silu: 'silu', swish: 'silu', gelu: 'gelu', gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh',
  gelu_fast: 'gelu_tanh', relu: 'relu', quick_gelu: 'quick_gelu',
};

function parseActivation(v: unknown, where: string): Activation {
  const a = typeof v === 'string' ? ACTIVATIONS[v] : undefined;
  if (!a) throw new VlmConfigError(`config.json: ${where} ${JSON.stringify(v)} is not supported; known: ${Object.keys(ACTIVATIONS).join(', ')}`);
  return a;
}

/** A positive integer field of a config object (missing: `def`). */
function intField(json: Record<string, unknown>, key: string, def: number | undefined, where: string, min = 1): number {
  const v = json[key] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new VlmConfigError(`config.json: ${where}${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Qwen25VisionConfig from the `vision_config` object (missing fields: transformers' defaults). */
export function parseVisionConfig(json: Record<string, unknown>): VisionConfig {
  const w = 'vision_config.';
  const int = (k: string, d: number) => intField(json, k, d, w);
  const depth = int('depth', 32);
  const full = json.fullatt_block_indexes ?? [7, 15, 23, 31];
  if (!Array.isArray(full) || full.some((i) => typeof i !== 'number' || !Number.isInteger(i) || i < 0)) {
    throw new VlmConfigError(`config.json: vision_config.fullatt_block_indexes must be a list of block indexes, got ${JSON.stringify(full)}`);
  }
  const tps = json.tokens_per_second ?? 4;
  if (typeof tps !== 'number' || !(tps >= 0)) throw new VlmConfigError(`config.json: vision_config.tokens_per_second must be a number >= 0, got ${JSON.stringify(tps)}`);
  const cfg: VisionConfig = {
    depth,
    hiddenSize: int('hidden_size', 3584),
    hiddenAct: parseActivation(json.hidden_act ?? 'silu', 'vision_config.hidden_act'),
    intermediateSize: int('intermediate_size', 3420),
    numHeads: int('num_heads', 16),
    // released configs spell it in_chans
    inChannels: intField({ in_channels: json.in_channels ?? json.in_chans }, 'in_channels', 3, w),
    patchSize: int('patch_size', 14),
    spatialMergeSize: int('spatial_merge_size', 2),
    temporalPatchSize: int('temporal_patch_size', 2),
    tokensPerSecond: tps,
    windowSize: int('window_size', 112),
    outHiddenSize: int('out_hidden_size', 3584),
    fullattBlockIndexes: full as number[],
  };
  if (cfg.hiddenSize % cfg.numHeads) throw new VlmConfigError(`config.json: vision_config.hidden_size ${cfg.hiddenSize} is not divisible by num_heads ${cfg.numHeads}`);
  const d = cfg.hiddenSize / cfg.numHeads;
  if (d % 4) throw new VlmConfigError(`config.json: the vision head dim ${d} must be a multiple of 4 (2D rotary embedding)`);
  if (windowMergedSide(cfg) < 1) {
    throw new VlmConfigError(`config.json: vision_config.window_size ${cfg.windowSize} is smaller than spatial_merge_size * patch_size`);
  }
  return cfg;
}

/** Window side in merged tokens: window_size // spatial_merge_size // patch_size. */
export function windowMergedSide(cfg: Pick<VisionConfig, 'windowSize' | 'spatialMergeSize' | 'patchSize'>): number {
  return Math.floor(Math.floor(cfg.windowSize / cfg.spatialMergeSize) / cfg.patchSize);
}

// ------------------------------------------------------------------ the model config

export interface TextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  /** hidden_size / num_attention_heads */
  headDim: number;
  hiddenAct: Activation;
  rmsNormEps: number;
  ropeTheta: number;
  /** channels (per half of head_dim) rotated by the t, h, w position */
  mropeSection: readonly [number, number, number];
  maxPositionEmbeddings: number;
  /** keys further back than this are masked (v4.49 applies it whenever set); null: never */
  slidingWindow: number | null;
  tieWordEmbeddings: boolean;
}

export interface VlmConfig {
  text: TextConfig;
  vision: VisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  bosTokenId: number | null;
  /** config eos_token_id (a number or a list) */
  eosTokenIds: number[];
  padTokenId: number | null;
}

function num(json: Record<string, unknown>, key: string, def: number, where = ''): number {
  const v = json[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new VlmConfigError(`config.json: ${where}${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function tokenId(json: Record<string, unknown>, key: string, def: number | null): number | null {
  const v = json[key] ?? def;
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new VlmConfigError(`config.json: ${key} must be a token id, got ${JSON.stringify(v)}`);
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Qwen2_5_VLConfig from a config.json object: text fields at the top level or under
 * `text_config` (newer transformers), vision fields under `vision_config`; missing fields take
 * transformers' defaults (the special token ids default to the released ones).
 */
export function parseVlmConfig(json: Record<string, unknown>): VlmConfig {
  if (!isObject(json)) throw new VlmConfigError('config.json: must be a JSON object');
  const t: Record<string, unknown> = isObject(json.text_config) ? { ...json, ...json.text_config } : json;
  const w = isObject(json.text_config) ? 'text_config.' : '';
  const int = (k: string, d: number) => intField(t, k, d, w);
  const hiddenSize = int('hidden_size', 8192);
  const numAttentionHeads = int('num_attention_heads', 64);
  if (hiddenSize % numAttentionHeads) throw new VlmConfigError(`config.json: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`);
  const headDim = hiddenSize / numAttentionHeads;
  if (t.head_dim !== undefined && t.head_dim !== null && t.head_dim !== headDim) {
    throw new VlmConfigError(`config.json: head_dim ${JSON.stringify(t.head_dim)} differs from hidden_size / num_attention_heads = ${headDim} (not supported)`);
  }
  const numKeyValueHeads = t.num_key_value_heads === null ? numAttentionHeads : int('num_key_value_heads', 8);
  if (numAttentionHeads % numKeyValueHeads) throw new VlmConfigError(`config.json: num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);

  const rs = t.rope_scaling;
  if (!isObject(rs)) throw new VlmConfigError(`config.json: rope_scaling must be an object with mrope_section (Qwen2.5-VL uses M-RoPE), got ${JSON.stringify(rs)}`);
  const ropeType = rs.rope_type ?? rs.type ?? 'default';
  if (ropeType !== 'mrope' && ropeType !== 'default') {
    throw new VlmConfigError(`config.json: rope_scaling type ${JSON.stringify(ropeType)} is not supported (only the default / mrope frequencies)`);
  }
  const sec = rs.mrope_section;
  if (!Array.isArray(sec) || sec.length !== 3 || sec.some((s) => typeof s !== 'number' || !Number.isInteger(s) || s < 0)) {
    throw new VlmConfigError(`config.json: rope_scaling.mrope_section must be three channel counts, got ${JSON.stringify(sec)}`);
  }
  if (2 * (sec[0] + sec[1] + sec[2]) !== headDim) {
    throw new VlmConfigError(`config.json: rope_scaling.mrope_section ${JSON.stringify(sec)} must add up to head_dim / 2 = ${headDim / 2}`);
  }
  const sw = t.sliding_window === undefined ? 4096 : t.sliding_window;
  if (sw !== null && (typeof sw !== 'number' || !Number.isInteger(sw) || sw < 1)) {
    throw new VlmConfigError(`config.json: sliding_window must be a positive integer or null, got ${JSON.stringify(sw)}`);
  }
  const eps = num(t, 'rms_norm_eps', 1e-5, w);
  if (!(eps > 0)) throw new VlmConfigError(`config.json: ${w}rms_norm_eps must be positive, got ${eps}`);
  const text: TextConfig = {
    vocabSize: int('vocab_size', 152064),
    hiddenSize,
    intermediateSize: int('intermediate_size', 29568),
    numHiddenLayers: int('num_hidden_layers', 80),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    hiddenAct: parseActivation(t.hidden_act ?? 'silu', `${w}hidden_act`),
    rmsNormEps: eps,
    ropeTheta: num(t, 'rope_theta', 1000000.0, w),
    mropeSection: [sec[0], sec[1], sec[2]],
    maxPositionEmbeddings: int('max_position_embeddings', 32768),
    slidingWindow: sw as number | null,
    tieWordEmbeddings: (json.tie_word_embeddings ?? t.tie_word_embeddings ?? false) === true,
  };
  const vjson = json.vision_config ?? {};
  if (!isObject(vjson)) throw new VlmConfigError(`config.json: vision_config must be an object, got ${JSON.stringify(vjson)}`);
  const vision = parseVisionConfig(vjson);
  const eos = json.eos_token_id ?? t.eos_token_id ?? null;
  const eosTokenIds = eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  if (eosTokenIds.some((e) => typeof e !== 'number' || !Number.isInteger(e))) throw new VlmConfigError(`config.json: eos_token_id must be a token id or a list of them, got ${JSON.stringify(eos)}`);
  return {
    text,
    vision,
    imageTokenId: tokenId(json, 'image_token_id', 151655)!,
    videoTokenId: tokenId(json, 'video_token_id', 151656)!,
    visionStartTokenId: tokenId(json, 'vision_start_token_id', 151652)!,
    visionEndTokenId: tokenId(json, 'vision_end_token_id', 151653)!,
    bosTokenId: tokenId(json.bos_token_id !== undefined ? json : t, 'bos_token_id', null),
    eosTokenIds: eosTokenIds as number[],
    padTokenId: tokenId(json.pad_token_id !== undefined ? json : t, 'pad_token_id', null),
  };
}

export function ropeIndexConfig(cfg: VlmConfig): RopeIndexConfig {
  return {
    imageTokenId: cfg.imageTokenId,
    videoTokenId: cfg.videoTokenId,
    visionStartTokenId: cfg.visionStartTokenId,
    spatialMergeSize: cfg.vision.spatialMergeSize,
    tokensPerSecond: cfg.vision.tokensPerSecond,
  };
}

/**
 * The published config.json of Cosmos-Reason1-7B (= Qwen2.5-VL-7B-Instruct; spec vlm.md "Real
 * config"), for sizing and for building the model without its files.
 */
export const COSMOS_REASON1_7B_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  architectures: ['Qwen2_5_VLForConditionalGeneration'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  vision_start_token_id: 151652,
  vision_end_token_id: 151653,
  vision_token_id: 151654,
  image_token_id: 151655,
  video_token_id: 151656,
  hidden_act: 'silu',
  hidden_size: 3584,
  initializer_range: 0.02,
  intermediate_size: 18944,
  max_position_embeddings: 128000,
  max_window_layers: 28,
  model_type: 'qwen2_5_vl',
  num_attention_heads: 28,
  num_hidden_layers: 28,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vision_config: {
    depth: 32,
    hidden_act: 'silu',
    hidden_size: 1280,
    intermediate_size: 3420,
    num_heads: 16,
    in_chans: 3,
    out_hidden_size: 3584,
    patch_size: 14,
    spatial_merge_size: 2,
    spatial_patch_size: 14,
    window_size: 112,
    fullatt_block_indexes: [7, 15, 23, 31],
    tokens_per_second: 2,
    temporal_patch_size: 2,
  },
  rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] },
  vocab_size: 152064,
});
