// Generation with Qwen2.5-VL (transformers GenerationMixin._sample semantics with the model's
// prepare_inputs_for_generation, v4.49): one prefill over the prompt (vision tower, get_rope_index,
// rope deltas kept), then one token per step with a device KV cache preallocated for the whole
// context: step n writes its key/value at cache row n (setSlice) and attends to rows [0, n]
// (attention kvLen); its M-RoPE position is n + rope_delta on all three axes; the attention mask
// grows by a 1 per step (padded prompt keys stay masked); pixel inputs are used at step 0 only,
// so a generated <|image_pad|> / <|video_pad|> is fed back as the plain token embedding.
//
// Decoding: greedy (argmax on the device), or sampled on the host from the processed logits
// (repetition penalty -> temperature -> top-k -> top-p, as transformers orders its processors
// and warpers) with a seeded generator. A row stops at any of the stop tokens (config eos by
// default; the chat's <|im_end|> is 151645 = the released eos); finished rows are fed and
// padded with the pad token, as upstream; generation ends when every row has stopped or after
// maxNewTokens. A callback sees each step's tokens as they come (streaming).
import seedrandom from 'seedrandom';
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { type CacheShape, LayerKVBuffers, kvBufferBytes } from '../decoder-layers.js';
import { type TextConfig, VlmInputError } from './config.js';
import type { ForwardInputs, IdBatch, Qwen2_5_VLForConditionalGeneration } from './language.js';

// ------------------------------------------------------------------ KV cache

function cacheShape(cfg: TextConfig): CacheShape {
  return { layers: cfg.numHiddenLayers, kvHeads: cfg.numKeyValueHeads, headDim: cfg.headDim };
}

/** The language model's self-attention cache for `batch` rows of up to `capacity` positions. */
export class VlmKVCache extends LayerKVBuffers {
  constructor(backend: Backend, cfg: TextConfig, batch: number, capacity: number) {
    if (!Number.isInteger(batch) || batch < 1) throw new VlmInputError(`KV cache: batch must be a positive integer, got ${batch}`);
    if (!Number.isInteger(capacity) || capacity < 1) throw new VlmInputError(`KV cache: capacity must be a positive integer, got ${capacity}`);
    super(backend, cacheShape(cfg), batch, capacity);
  }

  /** Bytes a cache of this size holds on the device. */
  static bytes(cfg: TextConfig, batch: number, capacity: number): number {
    return kvBufferBytes(cacheShape(cfg), batch, capacity);
  }
}

// ------------------------------------------------------------------ session

/** [B, 1, V] -> [B, V], handing over ownership. */
function flatten(logits: Tensor): Tensor {
  const out = logits.reshape([logits.shape[0], logits.shape[2]]);
  logits.dispose();
  return out;
}

/**
 * A prompt being continued: the KV cache, the rope deltas and the attention mask so far. The
 * `reason` pipeline drives it as prefill() once, then step() per token (generate() does that).
 */
export class VlmSession {
  readonly cache: VlmKVCache;
  readonly batch: number;
  /** tokens in the cache (prompt padding included) = the next cache_position */
  length = 0;
  ropeDeltas: Int32Array = new Int32Array(0);
  /** [B, length] key mask so far, row-major (rebuilt per step) */
  private keyMask: number[][] = [];

  constructor(readonly model: Qwen2_5_VLForConditionalGeneration, batch: number, capacity: number) {
    this.batch = batch;
    this.cache = new VlmKVCache(model.backend, model.config.text, batch, capacity);
  }

  /** Prefill the prompt: last-position logits [B, V] (device). */
  prefill(inputs: ForwardInputs): Tensor {
    if (this.length !== 0) throw new VlmInputError('prefill: the session already holds a prompt');
    const [B, L] = inputs.inputIds.shape;
    if (B !== this.batch) throw new VlmInputError(`prefill: batch ${B} but the session was made for ${this.batch}`);
    if (L > this.cache.capacity) throw new VlmInputError(`prefill: the prompt has ${L} tokens, the KV cache holds ${this.cache.capacity}`);
    const { logits, rope } = this.model.forward(inputs, { lastOnly: true, cache: this.cache });
    this.ropeDeltas = rope.ropeDeltas;
    const m = inputs.attentionMask?.data;
    this.keyMask = Array.from({ length: B }, (_, b) => Array.from({ length: L }, (_, l) => (m ? Number(m[b * L + l]) : 1)));
    this.length = L;
    return flatten(logits);
  }

  /** Feed one token per row: its logits [B, V] (device). */
  step(tokens: ArrayLike<number>): Tensor {
    const B = this.batch;
    if (this.length === 0) throw new VlmInputError('step: prefill first');
    if (tokens.length !== B) throw new VlmInputError(`step: ${tokens.length} tokens for a batch of ${B}`);
    if (this.length + 1 > this.cache.capacity) throw new VlmInputError(`step: the KV cache (capacity ${this.cache.capacity}) is full`);
    const n = this.length;
    const pos = new Int32Array(3 * B);
    for (let a = 0; a < 3; a++) for (let b = 0; b < B; b++) pos[a * B + b] = n + this.ropeDeltas[b];
    for (const row of this.keyMask) row.push(1);
    const ids: IdBatch = { data: Array.from(tokens), shape: [B, 1] };
    const logits = scope(() => {
      const embeds = this.model.embedTokens(ids);
      return this.model.decode(embeds, pos, this.keyMask.flat(), { cache: this.cache, past: n });
    });
    this.length = n + 1;
    return flatten(logits);
  }

  dispose(): void {
    this.cache.dispose();
  }
}

// ------------------------------------------------------------------ sampling (host)

export interface SamplingOptions {
  /** false: greedy (argmax) */
  doSample?: boolean;
  temperature?: number;
  /** keep the k most likely tokens (0 / undefined: all) */
  topK?: number;
  /** nucleus: keep the smallest set whose probability reaches topP (1: all) */
  topP?: number;
  /** transformers' repetition penalty over prompt + generated tokens (1: none) */
  repetitionPenalty?: number;
}

/** Logits processors in transformers' order, in place on one row: penalty, temperature, top-k, top-p. */
export function processLogits(logits: Float32Array, seen: Iterable<number>, o: SamplingOptions): Float32Array {
  const p = o.repetitionPenalty ?? 1;
  if (p !== 1) {
    for (const id of new Set(seen)) {
      const s = logits[id];
      logits[id] = Math.fround(s < 0 ? s * p : s / p);
    }
  }
  if (!o.doSample) return logits;
  const t = o.temperature ?? 1;
  if (!(t > 0)) throw new VlmInputError(`temperature: must be > 0; got ${t}`);
  if (t !== 1) for (let i = 0; i < logits.length; i++) logits[i] = Math.fround(logits[i] / t);
  const k = o.topK ?? 0;
  if (k > 0 && k < logits.length) {
    const kth = Float32Array.from(logits).sort().reverse()[k - 1];
    for (let i = 0; i < logits.length; i++) if (logits[i] < kth) logits[i] = -Infinity;
  }
  const topP = o.topP ?? 1;
  if (topP < 1) {
    // ascending sort; drop the tokens whose cumulative probability stays <= 1 - top_p (always
    // keeping the most likely one)
    const order = Array.from(logits.keys()).sort((a, b) => logits[a] - logits[b] || a - b);
    const mx = logits[order[order.length - 1]];
    let z = 0;
    for (const i of order) z += Math.exp(logits[i] - mx);
    let cum = 0;
    for (let r = 0; r < order.length - 1; r++) {
      const i = order[r];
      cum += Math.exp(logits[i] - mx) / z;
      if (cum <= 1 - topP) logits[i] = -Infinity;
      else break;
    }
  }
  return logits;
}

/** Draw a token from softmax(logits) with one uniform number u in [0, 1). */
export function sampleToken(logits: Float32Array, u: number): number {
  let mx = -Infinity;
  for (const v of logits) if (v > mx) mx = v;
  let z = 0;
  for (const v of logits) z += Math.exp(v - mx);
  let acc = 0;
  let last = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] === -Infinity) continue;
    acc += Math.exp(logits[i] - mx) / z;
    last = i;
    if (u < acc) return i;
  }
  return last;
}

/** The index of the largest value (the first on ties), as torch.argmax. */
export function argmaxRow(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

// ------------------------------------------------------------------ generate

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** seed of the sampling generator (seedrandom), or the generator itself */
  seed?: string | number;
  rng?: () => number;
  /** a row stops after producing one of these (default: config eos_token_id); [] never stops */
  stopTokenIds?: readonly number[];
  /** fills finished rows (default: config pad_token_id, else the first stop token, else 0) */
  padTokenId?: number;
  /** KV cache rows (default: prompt length + maxNewTokens) */
  cacheCapacity?: number;
  /** keep every step's raw logits [B, steps, V] */
  returnStepLogits?: boolean;
  /** called after each step with that step's token per row (streaming) */
  onToken?: (tokens: readonly number[], step: number) => void | Promise<void>;
}

export interface GenerateResult {
  /** [B, L + steps] prompt + generated tokens (pad after a row stopped), row-major */
  sequences: Int32Array;
  /** per row: generated tokens up to and including its stop token */
  generated: number[][];
  finishReason: ('stop' | 'length')[];
  steps: number;
  ropeDeltas: Int32Array;
  /** [B, steps, V] when returnStepLogits */
  stepLogits?: Float32Array;
}

export async function generate(model: Qwen2_5_VLForConditionalGeneration, inputs: ForwardInputs, opts: GenerateOptions): Promise<GenerateResult> {
  const [B, L] = inputs.inputIds.shape;
  const maxNew = opts.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new VlmInputError(`maxNewTokens: must be a positive integer; got ${maxNew}`);
  const cfg = model.config;
  const stop = new Set(opts.stopTokenIds ?? cfg.eosTokenIds);
  const pad = opts.padTokenId ?? cfg.padTokenId ?? [...stop][0] ?? 0;
  const rng = opts.rng ?? (opts.doSample ? seedrandom(String(opts.seed ?? 0)) : () => 0);
  const penalty = (opts.repetitionPenalty ?? 1) !== 1;
  const hostLogits = opts.doSample || penalty || opts.returnStepLogits;
  const capacity = opts.cacheCapacity ?? L + maxNew;
  // the last token is never fed back, so L + maxNew - 1 rows suffice; keep the round number
  const session = new VlmSession(model, B, Math.max(capacity, L));
  const V = cfg.text.vocabSize;
  const rows: number[][] = Array.from({ length: B }, (_, b) => Array.from({ length: L }, (_, l) => Number(inputs.inputIds.data[b * L + l])));
  const generated: number[][] = Array.from({ length: B }, () => []);
  const done = new Array<boolean>(B).fill(false);
  const finishReason: ('stop' | 'length')[] = new Array(B).fill('length');
  const stepLogits: Float32Array[] = [];
  let steps = 0;
  try {
    let logits: Tensor | null = session.prefill(inputs);
    while (logits) {
      const current: Tensor = logits;
      let next: number[];
      if (hostLogits) {
        const all = (await current.read()) as Float32Array;
        if (opts.returnStepLogits) stepLogits.push(all.slice());
        next = [];
        for (let b = 0; b < B; b++) {
          const row = all.slice(b * V, (b + 1) * V);
          processLogits(row, rows[b], opts);
          next.push(opts.doSample ? sampleToken(row, rng()) : argmaxRow(row));
        }
      } else {
        const ids = scope(() => F.argmax(current, -1));
        next = Array.from(await ids.read());
        ids.dispose();
      }
      current.dispose();
      logits = null;
      for (let b = 0; b < B; b++) {
        if (done[b]) next[b] = pad;
        else {
          generated[b].push(next[b]);
          if (stop.has(next[b])) {
            done[b] = true;
            finishReason[b] = 'stop';
          }
        }
        rows[b].push(next[b]);
      }
      steps++;
      if (opts.onToken) await opts.onToken(next, steps - 1);
      if (steps >= maxNew || done.every((d) => d)) break;
      logits = session.step(next);
    }
  } finally {
    session.dispose();
  }
  const sequences = new Int32Array(B * (L + steps));
  rows.forEach((r, b) => {
    sequences.set(r, b * (L + steps));
  });
  const result: GenerateResult = { sequences, generated, finishReason, steps, ropeDeltas: session.ropeDeltas };
  if (opts.returnStepLogits) {
    // [steps][B, V] -> [B, steps, V]
    const out = new Float32Array(B * steps * V);
    stepLogits.forEach((s, k) => {
      for (let b = 0; b < B; b++) out.set(s.subarray(b * V, (b + 1) * V), (b * steps + k) * V);
    });
    result.stepLogits = out;
  }
  return result;
}
