// Configuration of the cosmos-predict1 autoregressive video decoder (spec ar.md §1, §3):
// upstream `ModelConfig` fields (as the fixtures' config.json spells them, snake_case) parsed
// into a typed ArConfig, the four released configurations, and the typed errors the decoder
// raises on bad arguments.
import { UserError } from '../../engine/errors.js';

export type TrainingType = 'video_to_video' | 'text_to_video';

export interface ArConfig {
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** head_dim, or dim / n_heads when the config leaves it null */
  headDim: number;
  /** the video tokenizer's vocabulary (64000); <bov> = vocabSize in text_to_video */
  vocabSize: number;
  ffnHiddenSize: number;
  normEps: number;
  ropeTheta: number;
  /** [T, H, W] of the discrete latent grid */
  videoLatentShape: [number, number, number];
  maxSeqLen: number;
  padToMultipleOf: number | null;
  useQkNormalization: boolean;
  applyAbsPosEmb: boolean;
  insertCrossAttn: boolean;
  insertCrossAttnEveryKLayers: number;
  contextDim: number;
  applyYarn: boolean;
  yarnScale: number | null;
  yarnBetaFast: number | null;
  yarnBetaSlow: number | null;
  originalLatentShape: [number, number, number] | null;
  trainingType: TrainingType;
  /** rows of tok_embeddings (Video2World: vocab_size + 1 rounded up to a multiple of 64) */
  embeddingRows: number;
  /** rows of the output head (vocab_size: <bov> is never sampled) */
  outputRows: number;
  maxBatchSize: number;
}

// ------------------------------------------------------------------ errors

export class ArConfigError extends UserError {}

/** A bad argument to the decoder; `argument` names it. */
export class ArArgumentError extends UserError {
  constructor(readonly argument: string, message: string) {
    super(`${argument}: ${message}`);
  }
}

/** A token id outside the embedding table (checked on the host before anything is uploaded). */
export class TokenIdError extends ArArgumentError {}

/** Positions past the model's window (max_seq_len, or the RoPE / abs-pos tables). */
export class ContextLengthError extends ArArgumentError {}

/** A cross-attention (Video2World) model called without its text embeddings. */
export class MissingContextError extends ArArgumentError {}

// ------------------------------------------------------------------ parsing

/**
 * Rows of tok_embeddings after upstream's vocabulary growth: text_to_video adds the <bov> id
 * (update_vocab_size), and expand_vocab rounds a size that is not a multiple of 64 up to the
 * next one (64001 -> 64064). Base models keep vocab_size rows.
 */
export function expandedEmbeddingRows(vocabSize: number, trainingType: TrainingType, multipleOf = 64): number {
  if (trainingType !== 'text_to_video') return vocabSize;
  const wanted = vocabSize + 1;
  return wanted % multipleOf === 0 ? wanted : (Math.floor(wanted / multipleOf) + 1) * multipleOf;
}

/** ArConfig from an upstream-style config object (ModelConfig fields + training_type). */
export function parseArConfig(json: Record<string, unknown>): ArConfig {
  const has = (k: string) => json[k] !== undefined && json[k] !== null;
  const int = (k: string, def?: number, min = 1): number => {
    const v = json[k] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new ArConfigError(`config: ${k} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const num = (k: string, def?: number): number => {
    const v = json[k] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ArConfigError(`config: ${k} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (k: string, def: boolean): boolean => {
    const v = json[k] ?? def;
    if (typeof v !== 'boolean') throw new ArConfigError(`config: ${k} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const triple = (k: string): [number, number, number] => {
    const v = json[k];
    if (!Array.isArray(v) || v.length !== 3 || v.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 1)) {
      throw new ArConfigError(`config: ${k} must be [T, H, W] positive integers, got ${JSON.stringify(v)}`);
    }
    return [v[0], v[1], v[2]];
  };

  const ropeDim = json.rope_dim ?? '3D';
  if (ropeDim !== '3D') throw new ArConfigError(`config: rope_dim ${JSON.stringify(ropeDim)} is not supported (the video decoder uses "3D")`);
  const ropeVersion = json.pytorch_rope_version ?? 'v2';
  if (ropeVersion !== 'v2') throw new ArConfigError(`config: pytorch_rope_version ${JSON.stringify(ropeVersion)} is not supported (the released models use "v2")`);
  const normType = String(json.norm_type ?? 'rmsnorm').toLowerCase();
  if (normType !== 'rmsnorm') throw new ArConfigError(`config: norm_type ${JSON.stringify(json.norm_type)} is not supported (rmsnorm only)`);
  if (json.fuse_qkv === true) throw new ArConfigError('config: fuse_qkv is not supported (the released checkpoints store wq/wk/wv)');
  if ((json.tensor_model_parallel_size ?? 1) !== 1) throw new ArConfigError('config: tensor_model_parallel_size must be 1 (checkpoints are loaded unsharded)');
  if (json.causal_mask === false) throw new ArConfigError('config: causal_mask false is not supported');

  const trainingType = (json.training_type ?? 'video_to_video') as string;
  if (trainingType !== 'video_to_video' && trainingType !== 'text_to_video') {
    throw new ArConfigError(`config: training_type ${JSON.stringify(trainingType)} is not supported (video_to_video or text_to_video)`);
  }
  const dim = int('dim');
  const nHeads = int('n_heads');
  const nKvHeads = has('n_kv_heads') ? int('n_kv_heads') : nHeads;
  if (nHeads % nKvHeads) throw new ArConfigError(`config: n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  let headDim: number;
  if (has('head_dim')) headDim = int('head_dim');
  else {
    if (dim % nHeads) throw new ArConfigError(`config: dim ${dim} is not divisible by n_heads ${nHeads} (give head_dim)`);
    headDim = dim / nHeads;
  }
  if (headDim % 2) throw new ArConfigError(`config: head_dim ${headDim} must be even for RoPE`);
  const vocabSize = int('vocab_size');
  const applyYarn = bool('apply_yarn', false);
  const cfg: ArConfig = {
    dim,
    nLayers: int('n_layers'),
    nHeads,
    nKvHeads,
    headDim,
    vocabSize,
    ffnHiddenSize: int('ffn_hidden_size'),
    normEps: num('norm_eps', 1e-5),
    ropeTheta: num('rope_theta', 10000),
    videoLatentShape: triple('video_latent_shape'),
    maxSeqLen: int('max_seq_len'),
    padToMultipleOf: has('pad_to_multiple_of') ? int('pad_to_multiple_of') : null,
    useQkNormalization: bool('use_qk_normalization', false),
    applyAbsPosEmb: bool('apply_abs_pos_emb', false),
    insertCrossAttn: bool('insert_cross_attn', false),
    insertCrossAttnEveryKLayers: int('insert_cross_attn_every_k_layers', 1),
    contextDim: int('context_dim', 1024),
    applyYarn,
    yarnScale: applyYarn ? num('yarn_scale') : null,
    yarnBetaFast: applyYarn ? num('yarn_beta_fast') : null,
    yarnBetaSlow: applyYarn ? num('yarn_beta_slow') : null,
    originalLatentShape: applyYarn ? triple('original_latent_shape') : null,
    trainingType,
    embeddingRows: 0,
    outputRows: 0,
    maxBatchSize: int('max_batch_size', 1),
  };
  if (applyYarn && cfg.yarnBetaFast === cfg.yarnBetaSlow) throw new ArConfigError('config: yarn_beta_fast and yarn_beta_slow must differ');
  cfg.embeddingRows = has('embedding_rows') ? int('embedding_rows') : expandedEmbeddingRows(vocabSize, trainingType);
  cfg.outputRows = has('output_rows') ? int('output_rows') : vocabSize;
  const minRows = trainingType === 'text_to_video' ? vocabSize + 1 : vocabSize;
  if (cfg.embeddingRows < minRows) {
    throw new ArConfigError(`config: embedding_rows ${cfg.embeddingRows} cannot hold vocab_size ${vocabSize}${trainingType === 'text_to_video' ? ' + <bov>' : ''}`);
  }
  return cfg;
}

/** Whether block `layer` carries cross-attention (insert_cross_attn, every k-th layer from 0). */
export function hasCrossAttention(cfg: ArConfig, layer: number): boolean {
  return cfg.insertCrossAttn && layer % cfg.insertCrossAttnEveryKLayers === 0;
}

// ------------------------------------------------------------------ released configurations

export const RELEASED_AR_MODELS = ['Cosmos-Predict1-4B', 'Cosmos-Predict1-5B-Video2World', 'Cosmos-Predict1-12B', 'Cosmos-Predict1-13B-Video2World'] as const;
export type ReleasedArModel = (typeof RELEASED_AR_MODELS)[number];

/**
 * The configuration create_inference_config builds for a released checkpoint (spec §3), as
 * config.json fields: 33 frames at 640x1024 -> latent grid [5, 40, 64], pad_to_multiple_of 64,
 * QK-norm, theta 5e5, 8 kv heads, ffn 14336; the Video2World models add cross-attention to
 * T5-XXL (1024) in every layer, the absolute position embedding and the <bov> slot; 12B/13B
 * use YaRN.
 */
export function releasedArConfigJson(name: ReleasedArModel): Record<string, unknown> {
  const big = name.includes('12B') || name.includes('13B');
  const v2w = name.endsWith('Video2World');
  const latent: [number, number, number] = [5, 40, 64];
  const tokens = latent[0] * latent[1] * latent[2];
  const seq = v2w ? tokens + 1 : tokens;
  return {
    n_layers: big ? 40 : 16,
    dim: big ? 5120 : 4096,
    n_heads: 32,
    n_kv_heads: 8,
    head_dim: big ? 128 : null,
    vocab_size: 64000,
    ffn_hidden_size: 14336,
    norm_eps: 1e-5,
    rope_theta: 500000,
    rope_dim: '3D',
    video_latent_shape: latent,
    max_seq_len: Math.ceil(seq / 64) * 64,
    pad_to_multiple_of: 64,
    use_qk_normalization: true,
    apply_abs_pos_emb: v2w,
    insert_cross_attn: v2w,
    insert_cross_attn_every_k_layers: 1,
    context_dim: 1024,
    training_type: v2w ? 'text_to_video' : 'video_to_video',
    max_batch_size: 1,
    ...(big ? { apply_yarn: true, original_latent_shape: [3, 40, 64], yarn_beta_fast: 4, yarn_beta_slow: 1, yarn_scale: 2 } : {}),
  };
}

/** The released configuration of `name` (see releasedArConfigJson), parsed. */
export function releasedArConfig(name: ReleasedArModel): ArConfig {
  return parseArConfig(releasedArConfigJson(name));
}

/**
 * The released model a published config.json describes: the Cosmos-1.0-Autoregressive folders
 * carry the architecture (dim, layers, cross-attention) but not the video grid or the training
 * type, and those four architectures are distinct. Null when it matches none.
 */
export function releasedArModelOf(json: Record<string, unknown>): ReleasedArModel | null {
  for (const name of RELEASED_AR_MODELS) {
    const r = releasedArConfigJson(name);
    if (json.dim === r.dim && json.n_layers === r.n_layers && Boolean(json.insert_cross_attn) === r.insert_cross_attn) return name;
  }
  return null;
}

/**
 * A config.json as released (no video_latent_shape / training_type) completed from its released
 * configuration: `release` when given, else the one its architecture matches. The file's own
 * fields win; a config that already has a video grid is returned unchanged.
 */
export function completeArConfig(json: Record<string, unknown>, release?: ReleasedArModel): Record<string, unknown> {
  if (json.video_latent_shape !== undefined && json.video_latent_shape !== null && release === undefined) return json;
  const name = release ?? releasedArModelOf(json);
  if (!name) {
    throw new ArConfigError(
      `config: no video_latent_shape, and the architecture (dim ${JSON.stringify(json.dim)}, n_layers ${JSON.stringify(json.n_layers)}, ` +
        `insert_cross_attn ${JSON.stringify(json.insert_cross_attn ?? false)}) is none of the released models ${RELEASED_AR_MODELS.join(', ')}; ` +
        'add video_latent_shape, max_seq_len and training_type to config.json',
    );
  }
  const released = releasedArConfigJson(name);
  for (const k of ['dim', 'n_layers', 'insert_cross_attn'] as const) {
    const differs = k === 'insert_cross_attn' ? Boolean(json[k]) !== released[k] : json[k] !== undefined && json[k] !== released[k];
    if (differs) {
      throw new ArConfigError(`config: ${k} ${JSON.stringify(json[k])} contradicts the release ${name} (${JSON.stringify(released[k])})`);
    }
  }
  const out: Record<string, unknown> = { ...released };
  for (const [k, v] of Object.entries(json)) if (v !== undefined && v !== null) out[k] = v;
  return out;
}
