// The T5 text encoder (transformers' T5EncoderModel), as Cosmos uses it to embed prompts.
// Built from a transformers config.json alone; parameters keep transformers' key names:
//
//   shared.weight (= encoder.embed_tokens.weight, tied)
//   encoder.block.{i}.layer.0.layer_norm.weight
//   encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight
//   encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight   (block 0 only)
//   encoder.block.{i}.layer.1.layer_norm.weight
//   encoder.block.{i}.layer.1.DenseReluDense.{wi | wi_0, wi_1}.weight, .wo.weight
//   encoder.final_layer_norm.weight
//
// Forward (eval mode): h = shared[ids] (no scaling); a position bias [1, H, L, L] is gathered
// from block 0's relative_attention_bias table by host-computed buckets and, with the padding
// mask (1 - mask) * finfo(float32).min added, shared by every block; each block does
// h += o(attn(LN(h))) with UNscaled scores q.k + bias, then h += FF(LN(h)); LN is RMS without
// mean or bias; the result is final_layer_norm(h). Padded positions are not zeroed here
// (encodePrompts does that, as Cosmos does after the encoder).
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import { Embedding, Linear } from '../../engine/layers.js';
import { type LoadOptions, Module, type Param, type TensorSource } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope } from '../../engine/tensor.js';
import type { ModuleFamily } from '../load.js';

// ------------------------------------------------------------------ config

export type T5Activation = 'relu' | 'gelu' | 'gelu_new' | 'silu' | 'tanh' | 'sigmoid';

export interface T5Config {
  vocabSize: number;
  dModel: number;
  dKv: number;
  numHeads: number;
  dFf: number;
  numLayers: number;
  /** as written in the config ('relu', 'gated-gelu', ...) */
  feedForwardProj: string;
  /** the activation it implies ('gated-gelu' means gelu_new, as transformers maps it) */
  denseActFn: T5Activation;
  isGatedAct: boolean;
  relativeAttentionNumBuckets: number;
  relativeAttentionMaxDistance: number;
  layerNormEpsilon: number;
}

export class T5ConfigError extends UserError {}

const ACTIVATIONS: Record<string, T5Activation> = {
  relu: 'relu',
  gelu: 'gelu',
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  gelu_fast: 'gelu_new',
  silu: 'silu',
  swish: 'silu',
  tanh: 'tanh',
  sigmoid: 'sigmoid',
};

/** T5Config from a transformers config.json object (missing fields take T5Config's defaults). */
export function parseT5Config(json: Record<string, unknown>): T5Config {
  const int = (key: string, def: number): number => {
    const v = json[key] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new T5ConfigError(`config.json: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const proj = json.feed_forward_proj ?? 'relu';
  if (typeof proj !== 'string') throw new T5ConfigError(`config.json: feed_forward_proj must be a string, got ${JSON.stringify(proj)}`);
  const parts = proj.split('-');
  const isGatedAct = parts[0] === 'gated';
  if ((parts.length > 1 && !isGatedAct) || parts.length > 2) {
    throw new T5ConfigError(`config.json: feed_forward_proj ${JSON.stringify(proj)} is not '{ACT_FN}' or 'gated-{ACT_FN}'`);
  }
  const actName = proj === 'gated-gelu' ? 'gelu_new' : parts[parts.length - 1];
  const denseActFn = ACTIVATIONS[actName];
  if (!denseActFn) throw new T5ConfigError(`config.json: activation ${JSON.stringify(actName)} (from feed_forward_proj ${JSON.stringify(proj)}) is not supported; known: ${Object.keys(ACTIVATIONS).join(', ')}`);
  const eps = json.layer_norm_epsilon ?? 1e-6;
  if (typeof eps !== 'number' || !(eps > 0)) throw new T5ConfigError(`config.json: layer_norm_epsilon must be a positive number, got ${JSON.stringify(eps)}`);
  const cfg: T5Config = {
    vocabSize: int('vocab_size', 32128),
    dModel: int('d_model', 512),
    dKv: int('d_kv', 64),
    numHeads: int('num_heads', 8),
    dFf: int('d_ff', 2048),
    numLayers: int('num_layers', 6),
    feedForwardProj: proj,
    denseActFn,
    isGatedAct,
    relativeAttentionNumBuckets: int('relative_attention_num_buckets', 32),
    relativeAttentionMaxDistance: int('relative_attention_max_distance', 128),
    layerNormEpsilon: eps,
  };
  if (cfg.relativeAttentionNumBuckets < 4 || cfg.relativeAttentionNumBuckets % 2) {
    throw new T5ConfigError(`config.json: relative_attention_num_buckets must be an even number >= 4, got ${cfg.relativeAttentionNumBuckets}`);
  }
  return cfg;
}

// ------------------------------------------------------------------ relative position buckets

/**
 * T5's bucket of a relative position (key - query), computed as transformers does in float32:
 * exact buckets for |rel| < maxExact, then logarithmic ones up to maxDistance, the far ones
 * sharing the last bucket; bidirectional buckets put rel > 0 in the upper half.
 */
export function relativePositionBucket(rel: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  const f32 = Math.fround;
  let bucket = 0;
  let nb = numBuckets;
  let n: number;
  if (bidirectional) {
    nb = Math.floor(nb / 2);
    if (rel > 0) bucket += nb;
    n = Math.abs(rel);
  } else {
    n = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(nb / 2);
  if (n < maxExact) return bucket + n;
  // float32 throughout: n / maxExact, its log, divided by log(maxDistance / maxExact) (a Python
  // double, used as a float32 scalar), times (nb - maxExact), then truncated toward zero
  const logRatio = f32(Math.log(f32(n / maxExact)));
  const scaled = f32(f32(logRatio / f32(Math.log(maxDistance / maxExact))) * (nb - maxExact));
  const large = maxExact + Math.trunc(scaled);
  return bucket + Math.min(large, nb - 1);
}

/** Buckets of (key_pos - query_pos) as a [qLen, kLen] row-major Int32Array. */
export function relativePositionBuckets(qLen: number, kLen: number, bidirectional: boolean, numBuckets: number, maxDistance: number): Int32Array {
  const out = new Int32Array(qLen * kLen);
  const memo = new Map<number, number>();
  for (let i = 0; i < qLen; i++) {
    for (let j = 0; j < kLen; j++) {
      const rel = j - i;
      let b = memo.get(rel);
      if (b === undefined) {
        b = relativePositionBucket(rel, bidirectional, numBuckets, maxDistance);
        memo.set(rel, b);
      }
      out[i * kLen + j] = b;
    }
  }
  return out;
}

/** torch.finfo(torch.float32).min: what transformers adds at padded keys (not -inf). */
export const FLOAT32_MIN = -3.4028234663852886e38;

// ------------------------------------------------------------------ modules

/** RMS norm: x * rsqrt(mean(x²) + eps) * weight (no mean subtraction, no bias). */
class T5LayerNorm extends Module {
  readonly weight: Param;
  constructor(d: number, private readonly eps: number) {
    super();
    this.weight = this.param('weight', [d]);
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.rmsNorm(x, this.weight.t, this.eps));
  }
}

/**
 * On a software adapter (llvmpipe) the fused attention kernel loads storage lane by lane, while the
 * matmul kernels read through textures: at T5-11B's 128 heads x 128 dims x 512 tokens, scores
 * materialised by matmul (128 MiB, one binding, which positionBias checks) take 2.1 s a layer
 * against 29 s fused (2 cores). The CPU oracle and hardware GPUs keep the fused op.
 */
function materialisedScoresFaster(be: Backend): boolean {
  return be.name === 'webgpu' && be.software;
}

class T5Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly relative_attention_bias: Embedding | null;
  private readonly inner: number;

  constructor(private readonly cfg: T5Config, hasRelativeBias: boolean) {
    super();
    this.inner = cfg.numHeads * cfg.dKv;
    this.q = this.add('q', new Linear(cfg.dModel, this.inner));
    this.k = this.add('k', new Linear(cfg.dModel, this.inner));
    this.v = this.add('v', new Linear(cfg.dModel, this.inner));
    this.o = this.add('o', new Linear(this.inner, cfg.dModel));
    this.relative_attention_bias = hasRelativeBias
      ? this.add('relative_attention_bias', new Embedding(cfg.relativeAttentionNumBuckets, cfg.numHeads))
      : null;
  }

  /** [1, H, qLen, kLen] bias gathered by bucket; `buckets` is the i32 [qLen, kLen] table on the device. */
  computeBias(buckets: Tensor): Tensor {
    if (!this.relative_attention_bias) throw new Error(`${this.path}: this layer has no relative_attention_bias`);
    const [qLen, kLen] = buckets.shape;
    const values = this.relative_attention_bias.forward(buckets); // [q, k, H]
    return F.permute(values, [2, 0, 1]).reshape([1, this.cfg.numHeads, qLen, kLen]);
  }

  /**
   * x [B, L, d_model]; biasMask [B|1, H, L, L] added to the unscaled scores. `explicit`
   * computes softmax(q k^T + biasMask) v through materialised float32 scores, which is what
   * upstream does and what a fully padded row needs (all its scores round to finfo.min, so it
   * attends uniformly); otherwise the fused attention op runs, except on a software adapter
   * (see materialisedScoresFaster).
   */
  forward(x: Tensor, biasMask: Tensor, explicit: boolean): Tensor {
    const { numHeads: H, dKv } = this.cfg;
    const [B, L] = x.shape;
    const heads = (t: Tensor) => F.permute(t.reshape([B, L, H, dKv]), [0, 2, 1, 3]);
    const q = heads(this.q.forward(x));
    const k = heads(this.k.forward(x));
    const v = heads(this.v.forward(x));
    let ctx: Tensor;
    if (explicit || materialisedScoresFaster(x.backend)) {
      const scores = F.add(F.matmul(q, k, { transB: true }), biasMask);
      ctx = F.matmul(F.softmax(scores, -1), v);
    } else {
      ctx = F.attention(q, k, v, { scale: 1, mask: biasMask });
    }
    const merged = F.permute(ctx, [0, 2, 1, 3]).reshape([B, L, this.inner]);
    return this.tap(this.o.forward(merged));
  }
}

class T5LayerSelfAttention extends Module {
  readonly SelfAttention: T5Attention;
  readonly layer_norm: T5LayerNorm;
  constructor(cfg: T5Config, hasRelativeBias: boolean) {
    super();
    this.SelfAttention = this.add('SelfAttention', new T5Attention(cfg, hasRelativeBias));
    this.layer_norm = this.add('layer_norm', new T5LayerNorm(cfg.dModel, cfg.layerNormEpsilon));
  }
  forward(h: Tensor, biasMask: Tensor, explicit: boolean): Tensor {
    return this.tap(F.add(h, this.SelfAttention.forward(this.layer_norm.forward(h), biasMask, explicit)));
  }
}

function activate(act: T5Activation, x: Tensor): Tensor {
  switch (act) {
    case 'relu': return F.relu(x);
    case 'gelu': return F.gelu(x);
    case 'gelu_new': return F.geluTanh(x);
    case 'silu': return F.silu(x);
    case 'tanh': return F.tanh(x);
    case 'sigmoid': return F.sigmoid(x);
  }
}

/** wo(act(wi(x))), or gated: wo(act(wi_0(x)) * wi_1(x)). */
class T5DenseActDense extends Module {
  readonly wi: Linear | null = null;
  readonly wi_0: Linear | null = null;
  readonly wi_1: Linear | null = null;
  readonly wo: Linear;
  constructor(private readonly cfg: T5Config) {
    super();
    if (cfg.isGatedAct) {
      this.wi_0 = this.add('wi_0', new Linear(cfg.dModel, cfg.dFf));
      this.wi_1 = this.add('wi_1', new Linear(cfg.dModel, cfg.dFf));
    } else {
      this.wi = this.add('wi', new Linear(cfg.dModel, cfg.dFf));
    }
    this.wo = this.add('wo', new Linear(cfg.dFf, cfg.dModel));
  }
  forward(x: Tensor): Tensor {
    // The hidden state is d_ff floats per token (T5-11B: 256 KiB): more tokens than one device
    // binding holds (llvmpipe: 128 MiB, 512 tokens) go through in row chunks.
    const D = this.cfg.dModel;
    const rows = x.size / D;
    const per = Math.max(1, Math.floor(x.backend.limits.maxBindingBytes / (4 * this.cfg.dFf)));
    if (rows <= per) return this.tap(this.dense(x));
    const flat = x.reshape([rows, D]);
    const parts: Tensor[] = [];
    for (let r = 0; r < rows; r += per) parts.push(scope(() => this.dense(F.slice(flat, 0, r, Math.min(r + per, rows)))));
    return this.tap(F.concat(parts, 0).reshape(x.shape));
  }

  private dense(x: Tensor): Tensor {
    const act = this.cfg.denseActFn;
    const hidden = this.wi
      ? activate(act, this.wi.forward(x))
      : F.mul(activate(act, this.wi_0!.forward(x)), this.wi_1!.forward(x));
    return this.wo.forward(hidden);
  }
}

class T5LayerFF extends Module {
  readonly DenseReluDense: T5DenseActDense;
  readonly layer_norm: T5LayerNorm;
  constructor(cfg: T5Config) {
    super();
    this.DenseReluDense = this.add('DenseReluDense', new T5DenseActDense(cfg));
    this.layer_norm = this.add('layer_norm', new T5LayerNorm(cfg.dModel, cfg.layerNormEpsilon));
  }
  forward(h: Tensor): Tensor {
    return this.tap(F.add(h, this.DenseReluDense.forward(this.layer_norm.forward(h))));
  }
}

class T5Block extends Module {
  readonly attention: T5LayerSelfAttention;
  readonly ff: T5LayerFF;
  constructor(cfg: T5Config, hasRelativeBias: boolean) {
    super();
    this.attention = this.add('layer.0', new T5LayerSelfAttention(cfg, hasRelativeBias));
    this.ff = this.add('layer.1', new T5LayerFF(cfg));
  }
  forward(h: Tensor, biasMask: Tensor, explicit: boolean): Tensor {
    return this.tap(this.ff.forward(this.attention.forward(h, biasMask, explicit)));
  }
}

class T5Stack extends Module {
  readonly block: T5Block[];
  readonly final_layer_norm: T5LayerNorm;
  constructor(cfg: T5Config) {
    super();
    this.block = Array.from({ length: cfg.numLayers }, (_, i) => this.add(`block.${i}`, new T5Block(cfg, i === 0)));
    this.final_layer_norm = this.add('final_layer_norm', new T5LayerNorm(cfg.dModel, cfg.layerNormEpsilon));
  }
  forward(h0: Tensor, biasMask: Tensor, explicit: boolean): Tensor {
    let h = h0;
    for (const b of this.block) {
      const prev = h;
      h = scope(() => b.forward(prev, biasMask, explicit));
      if (prev !== h0) prev.dispose();
    }
    const out = this.final_layer_norm.forward(h);
    if (h !== h0) h.dispose();
    return out;
  }
}

// ------------------------------------------------------------------ the model

/** A host batch of token ids or mask values: nested rows, or flat data with its [B, L] shape. */
export type IdMatrix = readonly (readonly number[])[] | { data: ArrayLike<number>; shape: readonly number[] };

function flatten(m: IdMatrix, what: string): { data: ArrayLike<number>; B: number; L: number } {
  if (Array.isArray(m)) {
    const rows = m as readonly (readonly number[])[];
    const L = rows[0]?.length ?? 0;
    rows.forEach((r, i) => {
      if (!Array.isArray(r)) throw new ShapeError(`T5 encoder: ${what} must be a list of rows (row ${i} is not an array)`);
      if (r.length !== L) throw new ShapeError(`T5 encoder: ${what} rows differ in length (row 0 has ${L}, row ${i} has ${r.length})`);
    });
    return { data: rows.flat(), B: rows.length, L };
  }
  const { data, shape } = m as { data: ArrayLike<number>; shape: readonly number[] };
  if (shape.length !== 2) throw new ShapeError(`T5 encoder: ${what} must be [batch, length], got shape [${shape.join(', ')}]`);
  if (data.length !== shape[0] * shape[1]) throw new ShapeError(`T5 encoder: ${what} has ${data.length} values for shape [${shape.join(', ')}]`);
  return { data, B: shape[0], L: shape[1] };
}

/** A checked batch, as the encoder's stages take it. */
export interface T5Batch {
  readonly B: number;
  readonly L: number;
  readonly ids: Int32Array;
  /** (1 - mask) * finfo(float32).min per key, [B, L] */
  readonly maskBias: Float32Array;
  /** some row is all padding: attention runs through materialised scores (see T5Attention) */
  readonly explicit: boolean;
}

export class T5EncoderModel extends Module {
  readonly shared: Embedding;
  readonly encoder: T5Stack;

  constructor(readonly config: T5Config) {
    super();
    this.shared = this.add('shared', new Embedding(config.vocabSize, config.dModel));
    this.encoder = this.add('encoder', new T5Stack(config));
  }

  private get backend(): Backend {
    return this.shared.weight.t.backend;
  }

  /**
   * last_hidden_state [B, L, d_model] (float32) for input ids [B, L] and an attention mask of the
   * same shape (1 = token, 0 = padding; all ones when absent).
   */
  forward(inputIds: IdMatrix, attentionMask: IdMatrix | null = null): Tensor {
    const batch = this.batch(inputIds, attentionMask);
    return scope(() => this.encoder.forward(this.embed(batch), this.positionBias(batch), batch.explicit));
  }

  /** The token embeddings h0 [B, L, d_model] (needs `shared`). */
  embed(batch: T5Batch): Tensor {
    return this.shared.forward(F.fromArray(this.backend, batch.ids, [batch.B, batch.L], 'i32'));
  }

  /**
   * The position bias plus the padding mask [B, H, L, L] every block adds to its scores: block 0's
   * table gathered by host buckets (needs block 0's relative_attention_bias).
   */
  positionBias(batch: T5Batch): Tensor {
    const { numHeads: H, relativeAttentionNumBuckets: nb, relativeAttentionMaxDistance: maxDist } = this.config;
    const { B, L } = batch;
    const rel = this.encoder.block[0].attention.SelfAttention;
    const backend = rel.relative_attention_bias!.weight.t.backend;
    const bytes = B * H * L * L * 4;
    if (bytes > backend.limits.maxBindingBytes) {
      throw new UserError(
        `T5 encoder: the position bias of ${B} x ${L} tokens and ${H} heads takes ${(bytes / 2 ** 20).toFixed(0)} MiB, more than the ${(backend.limits.maxBindingBytes / 2 ** 20).toFixed(0)} MiB one binding of the ${backend.name} backend holds; encode fewer or shorter sequences at once`,
      );
    }
    return scope(() => {
      const buckets = F.fromArray(backend, relativePositionBuckets(L, L, true, nb, maxDist), [L, L], 'i32');
      this.tap(buckets, 'relative_position_bucket');
      const bias = this.tap(rel.computeBias(buckets), 'relative_position_bias');
      const biasMask = this.tap(F.add(bias, F.fromArray(backend, batch.maskBias, [B, 1, 1, L])), 'position_bias_plus_mask');
      if (biasMask.shape[1] !== H) throw new Error('T5 encoder: position bias has the wrong head count (internal error)');
      return biasMask;
    });
  }

  /** Check ids against vocab_size and the mask against the ids (host arrays, nothing on the device). */
  batch(inputIds: IdMatrix, attentionMask: IdMatrix | null = null): T5Batch {
    const { vocabSize } = this.config;
    const ids = flatten(inputIds, 'input_ids');
    const { B, L } = ids;
    if (B < 1 || L < 1) throw new ShapeError(`T5 encoder: input_ids must be a non-empty [batch, length] batch, got [${B}, ${L}]`);
    const idArr = new Int32Array(B * L);
    for (let i = 0; i < idArr.length; i++) {
      const v = Number(ids.data[i]);
      if (!Number.isInteger(v) || v < 0 || v >= vocabSize) {
        throw new RangeError(`T5 encoder: token id ${ids.data[i]} at [${Math.floor(i / L)}, ${i % L}] is outside [0, ${vocabSize}) (vocab_size)`);
      }
      idArr[i] = v;
    }
    const ext = new Float32Array(B * L);
    const fullyMasked: boolean[] = new Array(B).fill(false);
    if (attentionMask) {
      const m = flatten(attentionMask, 'attention_mask');
      if (m.B !== B || m.L !== L) throw new ShapeError(`T5 encoder: attention_mask is [${m.B}, ${m.L}] but input_ids is [${B}, ${L}]`);
      for (let b = 0; b < B; b++) {
        let any = false;
        for (let j = 0; j < L; j++) {
          const v = Number(m.data[b * L + j]);
          if (v !== 0 && v !== 1) throw new RangeError(`T5 encoder: attention_mask value ${m.data[b * L + j]} at [${b}, ${j}] is not 0 or 1`);
          // (1 - mask) * finfo(float32).min, as transformers' extended attention mask
          ext[b * L + j] = (1 - v) * FLOAT32_MIN;
          any ||= v === 1;
        }
        fullyMasked[b] = !any;
      }
    }
    return { B, L, ids: idArr, maskBias: ext, explicit: fullyMasked.some((x) => x) };
  }
}

/** transformers' T5 checkpoints (config.json + *.safetensors): build with loadModule. */
export const T5EncoderFamily = {
  name: 'T5EncoderModel',
  build: (config: Record<string, unknown>) => new T5EncoderModel(parseT5Config(config)),
  /** decoder.* and lm_head.* are ignored; the tied embedding fills shared.weight from either key */
  loadOptions(_model: T5EncoderModel, src: TensorSource): LoadOptions {
    const names = new Set(src.names);
    return {
      ignore: (k) => k.startsWith('decoder.') || k.startsWith('lm_head.'),
      mapKey: (k) => (k === 'encoder.embed_tokens.weight' ? (names.has('shared.weight') ? null : 'shared.weight') : k),
    };
  },
} satisfies ModuleFamily<T5EncoderModel>;
