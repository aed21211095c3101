// The cosmos-predict1 autoregressive video decoder (networks/transformer.py `Transformer`),
// under its checkpoint key names (spec ar.md §4):
//
//   tok_embeddings.weight                      [embedding_rows, dim]
//   layers.{i}.attention_norm.weight           [dim]
//   layers.{i}.attention.{wq,wk,wv,wo}.weight  GQA, bias-free, head-major rows
//   layers.{i}.attention.{q_norm,k_norm}.weight [head_dim]   (use_qk_normalization)
//   layers.{i}.cross_attention_norm.weight, layers.{i}.cross_attention.*   (cross-attn blocks)
//   layers.{i}.ffn_norm.weight, layers.{i}.feed_forward.{w1,w2,w3}.weight  (SwiGLU)
//   norm.weight, output.weight                 [output_rows, dim] (untied)
//
// Forward (tokens [B, L] at positions input_pos = start..start+L-1):
//   h = tok_embeddings[tokens]
//   for each block: (abs pos emb: h += abs_pos_emb[input_pos], bf16 values, before EVERY block)
//     h += attention(attention_norm(h))          q/k RMS-normed per head (eps 1e-5), then 3D RoPE
//                                                ('half' pairing), k/v written to the KV cache,
//                                                causal over cache rows [0, start+L)
//     h += cross_attention(cross_attention_norm(h), context, context_mask)   no RoPE, no cache
//     h += w2(silu(w1 x) * w3 x), x = ffn_norm(h)
//   logits = output(norm(h))
// Taps at upstream module paths: tok_embeddings, layers.{i}.input (the hidden state entering
// block i, after the abs pos emb), layers.{i}.attention, layers.{i}.cross_attention,
// layers.{i}.feed_forward, layers.{i}, norm, output, abs_pos_emb, rope.freqs,
// rope.cos_cached, rope.sin_cached.
import type { Backend } from '../../engine/backend.js';
import { Embedding, Linear, RMSNorm } from '../../engine/layers.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import { GatedMLP } from '../decoder-layers.js';
import type { ModuleFamily } from '../load.js';
import {
  ArArgumentError, type ArConfig, ContextLengthError, MissingContextError, TokenIdError, completeArConfig, hasCrossAttention, parseArConfig,
} from './config.js';
import { KVCache } from './kvcache.js';
import { absPosEmbTable, positionTableRows as positionRows, ropeTables } from './rope.js';

/** eps of q_norm / k_norm: Attention's default, norm_eps is not forwarded to them (spec §1). */
const QK_NORM_EPS = 1e-5;

// ------------------------------------------------------------------ leaf modules

/**
 * The position tables (not in the state dict), built on the weights' backend at the first call;
 * a module only so that its tables tap as rope.*.
 */
class RotaryTables extends Module {
  cos: Tensor | null = null;
  sin: Tensor | null = null;
  freqs: Tensor | null = null;
  rows = 0;

  ensure(cfg: ArConfig, backend: Backend): void {
    if (this.cos?.backend === backend) return;
    this.dispose();
    const t = ropeTables(cfg);
    const D = cfg.headDim;
    this.rows = t.rows;
    this.cos = F.fromArray(backend, t.cos, [t.rows, D]).keep();
    this.sin = F.fromArray(backend, t.sin, [t.rows, D]).keep();
    this.freqs = F.fromArray(backend, t.freqs, [t.freqs.length / D, D]).keep();
  }

  /** cos/sin rows start..start+L-1, [L, head_dim] each; records the whole tables for taps. */
  rowsFor(start: number, L: number): { cos: Tensor; sin: Tensor } {
    if (!this.cos || !this.sin || !this.freqs) throw new Error('rope tables are not built');
    // upstream keeps the tables broadcastable over batch and heads: freqs [n, 1, 1, D], cos / sin [1, rows, 1, D]
    const [n, D] = this.freqs.shape;
    this.tap(this.freqs, 'freqs', [n, 1, 1, D]);
    this.tap(this.cos, 'cos_cached', [1, this.rows, 1, D]);
    this.tap(this.sin, 'sin_cached', [1, this.rows, 1, D]);
    return { cos: F.slice(this.cos, 0, start, start + L), sin: F.slice(this.sin, 0, start, start + L) };
  }

  override dispose(): void {
    for (const t of [this.cos, this.sin, this.freqs]) t?.dispose();
    this.cos = this.sin = this.freqs = null;
    super.dispose();
  }
}

// ------------------------------------------------------------------ blocks

/** Per-call state shared by every block. */
interface LayerContext {
  B: number;
  L: number;
  start: number;
  cos: Tensor;
  sin: Tensor;
  cache: KVCache | null;
  context: Tensor | null;
  /** additive [B|1, 1, L, Lc] or null (attend everything) */
  contextMask: Tensor | null;
}

/** modules/attention.py `Attention`: self (RoPE + KV cache) or cross (context k/v, mask). */
class Attention extends Module {
  readonly wq: Linear;
  readonly wk: Linear;
  readonly wv: Linear;
  readonly wo: Linear;
  readonly q_norm: RMSNorm | null;
  readonly k_norm: RMSNorm | null;

  constructor(private readonly cfg: ArConfig, readonly kind: 'self' | 'cross', private readonly layer: number) {
    super();
    const { dim, nHeads, nKvHeads, headDim } = cfg;
    const kvIn = kind === 'cross' ? cfg.contextDim : dim;
    this.wq = this.add('wq', new Linear(dim, nHeads * headDim));
    this.wk = this.add('wk', new Linear(kvIn, nKvHeads * headDim));
    this.wv = this.add('wv', new Linear(kvIn, nKvHeads * headDim));
    this.wo = this.add('wo', new Linear(nHeads * headDim, dim));
    this.q_norm = cfg.useQkNormalization ? this.add('q_norm', new RMSNorm(headDim, QK_NORM_EPS)) : null;
    this.k_norm = cfg.useQkNormalization ? this.add('k_norm', new RMSNorm(headDim, QK_NORM_EPS)) : null;
  }

  /** k, v [B, Hkv, Lc, D] of the context (QK-normed keys, no RoPE). */
  private contextKV(context: Tensor): { k: Tensor; v: Tensor } {
    const { nKvHeads: Hkv, headDim: D } = this.cfg;
    const [B, Lc] = context.shape;
    let k = this.wk.forward(context).reshape([B, Lc, Hkv, D]);
    if (this.k_norm) k = this.k_norm.forward(k);
    const v = this.wv.forward(context).reshape([B, Lc, Hkv, D]);
    return { k: F.permute(k, [0, 2, 1, 3]), v: F.permute(v, [0, 2, 1, 3]) };
  }

  forward(x: Tensor, c: LayerContext): Tensor {
    const { nHeads: H, nKvHeads: Hkv, headDim: D } = this.cfg;
    const { B, L } = c;
    let q = this.wq.forward(x).reshape([B, L, H, D]);
    if (this.q_norm) q = this.q_norm.forward(q);
    let out: Tensor;
    if (this.kind === 'self') {
      let k = this.wk.forward(x).reshape([B, L, Hkv, D]);
      if (this.k_norm) k = this.k_norm.forward(k);
      const v = F.permute(this.wv.forward(x).reshape([B, L, Hkv, D]), [0, 2, 1, 3]);
      q = F.rope(q, c.cos, c.sin, { mode: 'half', layout: 'blhd' });
      k = F.rope(k, c.cos, c.sin, { mode: 'half', layout: 'blhd' });
      const qh = F.permute(q, [0, 2, 1, 3]);
      const kh = F.permute(k, [0, 2, 1, 3]);
      if (c.cache) {
        c.cache.write(this.layer, kh, v, c.start);
        out = F.attention(qh, c.cache.keys[this.layer], c.cache.values[this.layer], { causal: true, kvLen: c.start + L });
      } else {
        out = F.attention(qh, kh, v, { causal: true });
      }
    } else {
      const ctx = c.context!;
      let kv = c.cache?.crossKV(this.layer, ctx) ?? null;
      if (!kv) {
        kv = this.contextKV(ctx);
        c.cache?.setCrossKV(this.layer, ctx, kv.k, kv.v);
      }
      out = F.attention(F.permute(q, [0, 2, 1, 3]), kv.k, kv.v, { mask: c.contextMask });
    }
    const merged = F.permute(out, [0, 2, 1, 3]).reshape([B, L, H * D]);
    return this.tap(this.wo.forward(merged));
  }
}

/** modules/mlp.py `MLP`: w2(silu(w1 x) * w3 x). */
const MLP_NAMES = { gate: 'w1', up: 'w3', down: 'w2' };

class TransformerBlock extends Module {
  readonly attention: Attention;
  readonly attention_norm: RMSNorm;
  readonly cross_attention: Attention | null;
  readonly cross_attention_norm: RMSNorm | null;
  readonly feed_forward: GatedMLP;
  readonly ffn_norm: RMSNorm;

  constructor(cfg: ArConfig, layer: number) {
    super();
    this.attention = this.add('attention', new Attention(cfg, 'self', layer));
    const cross = hasCrossAttention(cfg, layer);
    this.cross_attention = cross ? this.add('cross_attention', new Attention(cfg, 'cross', layer)) : null;
    this.cross_attention_norm = cross ? this.add('cross_attention_norm', new RMSNorm(cfg.dim, cfg.normEps)) : null;
    this.feed_forward = this.add('feed_forward', new GatedMLP(cfg.dim, cfg.ffnHiddenSize, { names: MLP_NAMES }));
    this.attention_norm = this.add('attention_norm', new RMSNorm(cfg.dim, cfg.normEps));
    this.ffn_norm = this.add('ffn_norm', new RMSNorm(cfg.dim, cfg.normEps));
  }

  forward(x: Tensor, c: LayerContext): Tensor {
    this.tap(x, 'input');
    let h = F.add(x, this.attention.forward(this.attention_norm.forward(x), c));
    if (this.cross_attention) h = F.add(h, this.cross_attention.forward(this.cross_attention_norm!.forward(h), c));
    return this.tap(F.add(h, this.feed_forward.forward(this.ffn_norm.forward(h))));
  }
}

// ------------------------------------------------------------------ the model

/** Host token ids: nested rows, or flat data with its [B, L] shape. */
export type TokenMatrix = readonly (readonly number[])[] | { data: ArrayLike<number>; shape: readonly number[] };

export interface ArForwardOptions {
  /** position of the first token (input_pos = start..start+L-1); default 0 */
  start?: number;
  /** upstream's input_pos; must be consecutive (it fixes `start`) */
  inputPos?: ArrayLike<number>;
  /**
   * KV cache to write this call's keys/values into and attend through (prefill / decode).
   * Without one the call behaves as upstream on a fresh cache.
   */
  cache?: KVCache | null;
  /** text embeddings [B, Lc, context_dim] for the cross-attention layers */
  context?: Tensor | null;
  /** [B, Lc] or [B, 1, 1, Lc], nonzero = attend (upstream bool context_mask); absent: attend all */
  contextMask?: Tensor | null;
  /** logits of the last position only ([B, 1, V]): what sampling needs */
  lastOnly?: boolean;
}

/** Mapping from checkpoint keys: an optional leading `model.` is stripped. */
function arCheckpointKey(k: string): string {
  return k.startsWith('model.') ? k.slice('model.'.length) : k;
}

export class ArTransformer extends Module {
  readonly tok_embeddings: Embedding;
  readonly layers: TransformerBlock[];
  readonly norm: RMSNorm;
  readonly output: Linear;
  readonly rope: RotaryTables;
  /** bf16 [rows, dim] table (apply_abs_pos_emb), built at load */
  absPosEmb: Tensor | null = null;

  constructor(readonly config: ArConfig) {
    super();
    const cfg = config;
    this.tok_embeddings = this.add('tok_embeddings', new Embedding(cfg.embeddingRows, cfg.dim));
    this.layers = Array.from({ length: cfg.nLayers }, (_, i) => this.add(`layers.${i}`, new TransformerBlock(cfg, i)));
    this.norm = this.add('norm', new RMSNorm(cfg.dim, cfg.normEps));
    this.output = this.add('output', new Linear(cfg.dim, cfg.outputRows));
    this.rope = this.add('rope', new RotaryTables());
  }

  /** Longest sequence the model can process: max_seq_len, bounded by its position tables. */
  get window(): number {
    return Math.min(this.config.maxSeqLen, positionRows(this.config));
  }

  get isCrossAttention(): boolean {
    return this.layers.some((l) => l.cross_attention !== null);
  }

  get backend(): Backend {
    return this.tok_embeddings.weight.t.backend;
  }

  /** Build the position tables (and the abs pos emb) on the weights' backend, once. */
  private ensureTables(): void {
    const backend = this.backend;
    this.rope.ensure(this.config, backend);
    if (this.config.applyAbsPosEmb && this.absPosEmb?.backend !== backend) {
      this.absPosEmb?.dispose();
      const { bits, rows } = absPosEmbTable(this.config);
      this.absPosEmb = F.fromRaw(backend, bits, [rows, this.config.dim], 'bf16').keep();
    }
  }

  /** A KV cache for `batch` sequences on the model's backend (capacity: max_seq_len). */
  createCache(batch: number, capacity = this.config.maxSeqLen): KVCache {
    return KVCache.create(this.config, this.backend, batch, capacity);
  }

  override dispose(): void {
    this.absPosEmb?.dispose();
    this.absPosEmb = null;
    this.rope.dispose();
    super.dispose();
  }

  /**
   * Token ids on the device as i32 [B, L]. Host ids are checked against the embedding rows;
   * a device i32 tensor (e.g. ids the sampler produced) is used as is.
   */
  tokenTensor(tokens: TokenMatrix | Tensor, argument = 'tokens'): Tensor {
    if (isTensor(tokens)) {
      if (tokens.dtype !== 'i32') throw new ArArgumentError(argument, `a device tensor of ids must be i32, got ${tokens.dtype}`);
      if (tokens.rank !== 2) throw new ArArgumentError(argument, `must be [batch, length], got ${shapeStr(tokens.shape)}`);
      return tokens;
    }
    const { data, B, L } = flattenTokens(tokens, argument);
    const rows = this.config.embeddingRows;
    const ids = new Int32Array(B * L);
    for (let i = 0; i < ids.length; i++) {
      const v = Number(data[i]);
      if (!Number.isInteger(v) || v < 0 || v >= rows) {
        throw new TokenIdError(argument, `token id ${data[i]} at [${Math.floor(i / L)}, ${i % L}] is outside [0, ${rows}) (the embedding rows)`);
      }
      ids[i] = v;
    }
    return F.fromArray(this.backend, ids, [B, L], 'i32');
  }

  /** Logits [B, L, output_rows] (or [B, 1, output_rows] with lastOnly), float32. */
  forward(tokens: TokenMatrix | Tensor, opts: ArForwardOptions = {}): Tensor {
    const cfg = this.config;
    const start = resolveStart(opts);
    const cache = opts.cache ?? null;
    const context = opts.context ?? null;
    const ownIds = !isTensor(tokens);
    const ids = this.tokenTensor(tokens);
    try {
      const [B, L] = ids.shape;
      if (L < 1) throw new ArArgumentError('tokens', 'needs at least one token');
      if (start + L > this.window) {
        throw new ContextLengthError(
          'tokens',
          `positions ${start}..${start + L - 1} exceed the model's window of ${this.window} positions ` +
            `(max_seq_len ${cfg.maxSeqLen}, position tables ${positionRows(cfg)})`,
        );
      }
      if (cache) {
        cache.assertAlive();
        if (cache.batch !== B) throw new ArArgumentError('cache', `holds ${cache.batch} sequences, the batch has ${B}`);
        if (start + L > cache.capacity) throw new ContextLengthError('cache', `capacity ${cache.capacity} is too small for positions up to ${start + L - 1}`);
        if (cache.backend !== this.backend) throw new ArArgumentError('cache', 'lives on another backend than the model');
      }
      this.checkContext(B, context, opts.contextMask ?? null);
      // without a cache, positions after 0 attend to the zeros of a fresh cache (as upstream)
      const tmp = !cache && start > 0 ? KVCache.create(cfg, this.backend, B, start + L) : null;
      try {
        return scope(() => this.run(ids, start, cache ?? tmp, context, opts.contextMask ?? null, opts.lastOnly ?? false));
      } finally {
        tmp?.dispose();
      }
    } finally {
      if (ownIds) ids.dispose();
    }
  }

  private checkContext(B: number, context: Tensor | null, mask: Tensor | null): void {
    const cfg = this.config;
    if (!this.isCrossAttention) {
      if (context) throw new ArArgumentError('context', 'this model has no cross-attention layers (insert_cross_attn is false)');
      if (mask) throw new ArArgumentError('context_mask', 'given without a cross-attention model');
      return;
    }
    if (!context) {
      throw new MissingContextError('context', `this model cross-attends to text embeddings in every ${cfg.insertCrossAttnEveryKLayers === 1 ? '' : `${cfg.insertCrossAttnEveryKLayers}th `}layer: pass context [B, Lc, ${cfg.contextDim}] (T5 embeddings)`);
    }
    if (context.rank !== 3 || context.shape[0] !== B || context.shape[2] !== cfg.contextDim) {
      throw new ArArgumentError('context', `must be [${B}, Lc, ${cfg.contextDim}], got ${shapeStr(context.shape)}`);
    }
    if (context.backend !== this.backend) throw new ArArgumentError('context', 'lives on another backend than the model');
    if (mask) {
      const Lc = context.shape[1];
      const ok = (mask.rank === 2 && mask.shape[0] === B && mask.shape[1] === Lc) ||
        (mask.rank === 4 && mask.shape[0] === B && mask.shape[1] === 1 && mask.shape[2] === 1 && mask.shape[3] === Lc);
      if (!ok) throw new ArArgumentError('context_mask', `must be [${B}, ${Lc}] or [${B}, 1, 1, ${Lc}], got ${shapeStr(mask.shape)}`);
      if (mask.backend !== this.backend) throw new ArArgumentError('context_mask', 'lives on another backend than the model');
    }
  }

  private run(ids: Tensor, start: number, cache: KVCache | null, context: Tensor | null, mask: Tensor | null, lastOnly: boolean): Tensor {
    const [B, L] = ids.shape;
    this.ensureTables();
    const shared = scope(() => {
      const { cos, sin } = this.rope.rowsFor(start, L);
      let abs: Tensor | null = null;
      if (this.absPosEmb) {
        this.tap(this.absPosEmb.reshape([1, ...this.absPosEmb.shape]), 'abs_pos_emb');
        abs = F.slice(this.absPosEmb, 0, start, start + L);
      }
      let contextMask: Tensor | null = null;
      if (context && mask) {
        const Lc = context.shape[1];
        contextMask = F.expand(F.additiveMask(mask.reshape([B, 1, 1, Lc])), [B, 1, L, Lc]);
      }
      return { cos, sin, abs, contextMask };
    });
    const c: LayerContext = { B, L, start, cos: shared.cos, sin: shared.sin, cache, context, contextMask: shared.contextMask };
    try {
      let h = scope(() => this.tok_embeddings.forward(ids));
      for (const layer of this.layers) {
        const prev = h;
        h = scope(() => layer.forward(shared.abs ? F.add(prev, shared.abs) : prev, c));
        prev.dispose();
      }
      const out = scope(() => {
        const last = lastOnly && L > 1 ? F.slice(h, 1, L - 1, L) : h;
        return this.output.forward(this.norm.forward(last));
      });
      h.dispose();
      if (cache) cache.length = Math.max(cache.length, start + L);
      return out;
    } finally {
      for (const t of [shared.cos, shared.sin, shared.abs, shared.contextMask]) t?.dispose();
    }
  }
}

// ------------------------------------------------------------------ helpers

function isTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && 'storage' in x && 'shape' in x && typeof (x as Tensor).reshape === 'function';
}

function resolveStart(opts: ArForwardOptions): number {
  if (opts.inputPos !== undefined) {
    const p = opts.inputPos;
    if (p.length < 1) throw new ArArgumentError('input_pos', 'is empty');
    const s = Number(p[0]);
    for (let i = 0; i < p.length; i++) {
      if (Number(p[i]) !== s + i) {
        throw new ArArgumentError('input_pos', `must be consecutive positions (start, start+1, ...); element ${i} is ${p[i]}, expected ${s + i}`);
      }
    }
    if (opts.start !== undefined && opts.start !== s) throw new ArArgumentError('input_pos', `starts at ${s} but start is ${opts.start}`);
    if (!Number.isInteger(s) || s < 0) throw new ArArgumentError('input_pos', `must start at a non-negative integer, got ${s}`);
    return s;
  }
  const s = opts.start ?? 0;
  if (!Number.isInteger(s) || s < 0) throw new ArArgumentError('start', `must be a non-negative integer, got ${s}`);
  return s;
}

function flattenTokens(m: TokenMatrix, what: string): { data: ArrayLike<number>; B: number; L: number } {
  if (Array.isArray(m)) {
    const rows = m as readonly (readonly number[])[];
    const L = rows[0]?.length ?? 0;
    rows.forEach((r, i) => {
      if (!Array.isArray(r)) throw new ShapeError(`${what}: must be a list of rows (row ${i} is not an array)`);
      if (r.length !== L) throw new ShapeError(`${what}: rows differ in length (row 0 has ${L}, row ${i} has ${r.length})`);
    });
    if (rows.length < 1) throw new ArArgumentError(what, 'needs at least one row');
    return { data: rows.flat(), B: rows.length, L };
  }
  const { data, shape } = m as { data: ArrayLike<number>; shape: readonly number[] };
  if (shape.length !== 2) throw new ArArgumentError(what, `must be [batch, length], got shape ${shapeStr(shape)}`);
  if (data.length !== shape[0] * shape[1]) throw new ArArgumentError(what, `has ${data.length} values for shape ${shapeStr(shape)}`);
  if (shape[0] < 1) throw new ArArgumentError(what, 'needs at least one row');
  return { data, B: shape[0], L: shape[1] };
}

/**
 * How loadModule builds the decoder from its config.json (ModelConfig fields + training_type)
 * and reads its checkpoints: an optional leading `model.`, TransformerEngine `_extra_state`
 * buffers ignored. Floating weights keep the checkpoint's dtype.
 */
export const ArTransformerFamily: ModuleFamily<ArTransformer> = {
  name: 'the AR video decoder (ModelConfig fields + training_type, or a released config.json)',
  // a released config.json lacks the video grid and training type: they come from the release
  build: (config) => new ArTransformer(parseArConfig(completeArConfig(config))),
  loadOptions: () => ({ mapKey: arCheckpointKey, ignore: (k) => k.endsWith('_extra_state') }),
};
