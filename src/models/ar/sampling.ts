// Next-token sampling of the autoregressive decoder (upstream utils/sampling.py), entirely on
// the device: logits [B, V] in, i32 ids [B] out, nothing read back.
//
// - greedy (temperature 0): argmax(logits).
// - top-p (sample_top_p), in upstream's order: probs = softmax(logits / temperature); sort
//   descending; c = cumsum(sorted); zero the entries with c - sorted > top_p (the exclusive
//   cumsum, so the top token always stays); renormalise by the sum; j = argmax(sorted / q)
//   with q ~ Exp(1) of shape [B, V] INDEXED BY SORTED RANK; token = sorted_idx[j].
// - top-k / plain multinomial (sample_top_k): logits / max(temperature, 1e-5); with top_k the
//   logits below the k-th largest become -inf; softmax; token = argmax(probs / q), q indexed by
//   TOKEN ID.
// argmax(p / q) with exponential q is an exact draw from p (the exponential-race trick of
// multinomial_sample_one_no_sync). Torch's exponential_ stream cannot be reproduced, so the draws
// come from a seeded generator here (ExponentialDraws) or are supplied (the fixtures feed them).
import seedrandom from 'seedrandom';
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { type Tensor, shapeStr } from '../../engine/tensor.js';
import { ArArgumentError } from './config.js';

export interface SamplingParams {
  /** 0 = greedy; upstream's generate default is 1.0 */
  temperature: number;
  /** nucleus threshold (the released pipeline uses 0.8 / 0.7) */
  topP?: number | null;
  topK?: number | null;
}

export type SamplingMode = 'greedy' | 'top_p' | 'top_k' | 'multinomial';

export interface ResolvedSampling {
  mode: SamplingMode;
  temperature: number;
  topP: number | null;
  topK: number | null;
}

/** Upstream's rules: temperature 0 forces greedy; top_p and top_k are exclusive. */
export function resolveSampling(p: SamplingParams): ResolvedSampling {
  const { temperature } = p;
  const topP = p.topP ?? null;
  const topK = p.topK ?? null;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) {
    throw new ArArgumentError('temperature', `must be a finite number >= 0, got ${temperature}`);
  }
  if (topP !== null && topK !== null) throw new ArArgumentError('top_p', `and top_k (${topK}) cannot both be given`);
  if (temperature === 0) return { mode: 'greedy', temperature, topP: null, topK: null };
  if (topP !== null) {
    if (!(topP > 0 && topP <= 1)) throw new ArArgumentError('top_p', `must be in (0, 1], got ${topP}`);
    return { mode: 'top_p', temperature, topP, topK: null };
  }
  if (topK !== null) {
    if (!Number.isInteger(topK) || topK < 1) throw new ArArgumentError('top_k', `must be a positive integer, got ${topK}`);
    return { mode: 'top_k', temperature, topP: null, topK };
  }
  return { mode: 'multinomial', temperature, topP: null, topK: null };
}

/** Whether a sampling mode consumes exponential draws. */
export function needsDraws(mode: SamplingMode): boolean {
  return mode !== 'greedy';
}

function checkLogits(logits: Tensor): [number, number] {
  if (logits.rank !== 2) throw new ArArgumentError('logits', `must be [batch, vocab], got ${shapeStr(logits.shape)}`);
  return [logits.shape[0], logits.shape[1]];
}

function checkDraws(q: Tensor | null, B: number, V: number): Tensor {
  if (!q) throw new ArArgumentError('exponential draws', 'are required when sampling with temperature > 0');
  if (q.size !== B * V) throw new ArArgumentError('exponential draws', `must be [${B}, ${V}], got ${shapeStr(q.shape)}`);
  return q.reshape([B, V]);
}

/** ids[b, j[b]] for i32 ids [B, V] and i32 j [B] -> i32 [B] (a gather, kept on the device). */
function takeRows(ids: Tensor, j: Tensor): Tensor {
  const [B, V] = ids.shape;
  if (B === 1) return F.embedding(ids.reshape([V, 1]), j.reshape([1])).reshape([1]);
  const offsets = F.fromArray(ids.backend, Int32Array.from({ length: B }, (_, b) => b * V), [B], 'i32');
  const flat = F.cast(F.add(j.reshape([B]), offsets), 'i32');
  return F.embedding(ids.reshape([B * V, 1]), flat).reshape([B]);
}

export function sampleGreedy(logits: Tensor): Tensor {
  checkLogits(logits);
  return F.argmax(logits, -1);
}

/** sample_top_p: see the file comment; q [B, V] is indexed by sorted rank. */
export function sampleTopP(logits: Tensor, temperature: number, topP: number, q: Tensor | null): Tensor {
  const [B, V] = checkLogits(logits);
  const draws = checkDraws(q, B, V);
  const be = logits.backend;
  const probs = F.softmax(F.div(logits, F.full(be, [1], temperature)), -1);
  const [sorted, idx] = F.sortDescending(probs);
  const excl = F.sub(F.cumsum(sorted, -1), sorted);
  // excl > top_p, compared in float32 as torch does (top_p becomes a float32 scalar): the
  // float32 difference is positive exactly when excl exceeds it
  const over = F.relu(F.affine(excl, 1, -Math.fround(topP)));
  const kept = F.where(over, F.full(be, [1], 0), sorted);
  const renorm = F.div(kept, F.sum(kept, -1, true));
  const j = F.argmax(F.div(renorm, draws), -1);
  return takeRows(idx, j);
}

/** sample_top_k (topK null: plain multinomial over the whole vocabulary); q is indexed by token id. */
export function sampleTopK(logits: Tensor, temperature: number, topK: number | null, q: Tensor | null): Tensor {
  const [B, V] = checkLogits(logits);
  const draws = checkDraws(q, B, V);
  const be = logits.backend;
  let x = F.div(logits, F.full(be, [1], Math.max(temperature, 1e-5)));
  if (topK !== null) {
    const k = Math.min(topK, V);
    const [vals] = F.topk(x, k);
    const pivot = F.slice(vals, -1, k - 1, k);
    // logits < pivot -> -inf (the float32 difference is positive exactly then)
    x = F.where(F.relu(F.sub(pivot, x)), F.full(be, [1], -Infinity), x);
  }
  const probs = F.softmax(x, -1);
  return F.argmax(F.div(probs, draws), -1);
}

/** One sampling step: i32 ids [B] on the device. `q` (Exp(1) draws [B, V]) is unused when greedy. */
export function sampleNext(logits: Tensor, s: ResolvedSampling, q: Tensor | null): Tensor {
  switch (s.mode) {
    case 'greedy': return sampleGreedy(logits);
    case 'top_p': return sampleTopP(logits, s.temperature, s.topP!, q);
    case 'top_k': return sampleTopK(logits, s.temperature, s.topK, q);
    case 'multinomial': return sampleTopK(logits, s.temperature, null, q);
  }
}

/**
 * Exp(1) draws from a seeded generator (seedrandom): q = -ln(u), u uniform in (0, 1). The
 * stream is deterministic for a seed; it is not torch's.
 */
export class ExponentialDraws {
  private readonly rng: seedrandom.PRNG;
  constructor(readonly seed: number | string = 0) {
    this.rng = seedrandom(`cosmos-ar:${seed}`);
  }
  /** Host values for n draws. */
  nextValues(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let u = this.rng();
      while (u <= 0) u = this.rng();
      out[i] = -Math.log(u);
    }
    return out;
  }
  /** A [B, V] tensor of draws on `backend`. */
  next(backend: Backend, B: number, V: number): Tensor {
    return F.fromArray(backend, this.nextValues(B * V), [B, V]);
  }
}
