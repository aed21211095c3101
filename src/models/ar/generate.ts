// AutoRegressiveModel.generate (upstream model.py + utils/sampling.py) over the device KV cache:
//
//   prefill:  forward(prompt, input_pos = 0..P-1) -> sample from the LAST position's logits
//   decode:   max_gen_len - 1 times: forward(previous id, input_pos = [P + k - 1]) -> sample
//   output:   the max_gen_len new ids (echo: prompt first)
//
// Upstream's rules kept: temperature 0 forces greedy (top_p/top_k dropped); max_gen_len is
// truncated to the window left after the prompt; stop tokens are checked on the decode steps
// only, and a step where every sequence has produced one ends generation without appending it.
// The default stop set is {eov} = {vocab_size + 1}, which the output head (vocab_size rows) can
// never produce, so generation runs to max_gen_len.
//
// Sampled ids stay on the device: each step feeds the previous step's i32 ids straight into the
// embedding and writes them into a [B, max_gen_len] i32 buffer read once at the end. Only a stop
// set that the head can actually produce needs the ids on the host every step.
import * as F from '../../engine/ops.js';
import { type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import { ArArgumentError, ContextLengthError } from './config.js';
import type { KVCache } from './kvcache.js';
import { ExponentialDraws, type SamplingParams, needsDraws, resolveSampling, sampleNext } from './sampling.js';
import type { ArTransformer, TokenMatrix } from './transformer.js';

export interface CrossInputs {
  /** text embeddings [B, Lc, context_dim] (Video2World) */
  context?: Tensor | null;
  /** [B, Lc] or [B, 1, 1, Lc], nonzero = attend */
  contextMask?: Tensor | null;
}

/**
 * Prefill: the prompt at positions 0..P-1 into `cache`; returns the last position's logits
 * [B, V] (float32, on the device).
 */
export function prefill(model: ArTransformer, cache: KVCache, prompt: TokenMatrix | Tensor, cross: CrossInputs = {}): Tensor {
  const out = scope(() => {
    const logits = model.forward(prompt, { start: 0, cache, lastOnly: true, ...cross });
    return logits.reshape([logits.shape[0], logits.shape[2]]);
  });
  cache.length = promptLength(prompt);
  return out;
}

/**
 * One decode step: `ids` (i32 [B] or [B, 1] on the device, or host rows) at position
 * cache.length; advances the cache and returns the logits [B, V].
 */
export function decodeStep(model: ArTransformer, cache: KVCache, ids: Tensor | TokenMatrix, cross: CrossInputs = {}): Tensor {
  const B = cache.batch;
  const start = cache.length;
  const out = scope(() => {
    const tokens = isDeviceTensor(ids) ? ids.reshape([B, 1]) : ids;
    const logits = model.forward(tokens, { start, cache, lastOnly: true, ...cross });
    return logits.reshape([B, logits.shape[2]]);
  });
  cache.length = start + 1;
  return out;
}

function isDeviceTensor(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && 'storage' in x && 'dtype' in x;
}

function promptLength(prompt: TokenMatrix | Tensor): number {
  if (isDeviceTensor(prompt)) return prompt.shape[1];
  if (Array.isArray(prompt)) return (prompt as readonly (readonly number[])[])[0].length;
  return (prompt as { shape: readonly number[] }).shape[1];
}

export interface GenerateOptions extends SamplingParams, CrossInputs {
  /** number of new tokens (truncated to the window left after the prompt, as upstream) */
  maxGenLen: number;
  /** include the prompt in `ids` (the pipeline's echo=True) */
  echo?: boolean;
  /** default {vocab_size + 1} (eov) */
  stopTokens?: Iterable<number> | null;
  /**
   * Exp(1) draws: [steps, B, V] (step 0 = prefill; indexed by sorted rank for top-p, by token
   * id otherwise), or a function giving the [B, V] draws of a step. Default: a seeded stream.
   */
  draws?: Tensor | ((step: number, batch: number, vocab: number) => Tensor) | null;
  /** seed of the default draw stream (0, as misc.set_random_seed(0) in the released scripts) */
  seed?: number | string;
  /** copies of a single prompt to sample in one batch (upstream num_gen_seq) */
  numGenSeq?: number;
  /** keep each step's sampling logits, [n, B, V] */
  returnLogits?: boolean;
  /** reuse this cache (batch must match); otherwise one sized for the run is made and freed */
  cache?: KVCache | null;
  /** called with each step's logits [B, V] (step 0 = prefill) inside the step's scope, before sampling */
  onLogits?: (logits: Tensor, step: number) => void;
  /** called after each sampled token (steps done, total) */
  onStep?: (done: number, total: number) => void;
  /** wait for the device every this many steps (bounds queued work; default 8) */
  syncEvery?: number;
}

export interface GenerateResult {
  /** host ids [B, n] (n = generated tokens, plus the prompt length with echo) */
  ids: Int32Array;
  shape: [number, number];
  /** new tokens produced */
  generated: number;
  /** [generated, B, V] float32 on the device when returnLogits, else null (caller disposes) */
  stepLogits: Tensor | null;
  /** the requested max_gen_len when it had to be truncated to the window, else null */
  truncatedFrom: number | null;
}

export async function generate(model: ArTransformer, promptTokens: TokenMatrix | readonly number[], opts: GenerateOptions): Promise<GenerateResult> {
  const cfg = model.config;
  const s = resolveSampling(opts);
  const backend = model.backend;

  // ---- the prompt (host ids, checked before anything is uploaded)
  let rows = promptRows(promptTokens);
  const numGenSeq = opts.numGenSeq ?? 1;
  if (!Number.isInteger(numGenSeq) || numGenSeq < 1) throw new ArArgumentError('num_gen_seq', `must be a positive integer, got ${numGenSeq}`);
  if (numGenSeq > 1) {
    if (rows.B !== 1) throw new ArArgumentError('num_gen_seq', `> 1 needs a single prompt, got ${rows.B}`);
    const data = new Int32Array(numGenSeq * rows.L);
    for (let b = 0; b < numGenSeq; b++) for (let j = 0; j < rows.L; j++) data[b * rows.L + j] = Number(rows.data[j]);
    rows = { data, B: numGenSeq, L: rows.L };
  }
  const { B, L: P } = rows;
  if (P < 1) throw new ArArgumentError('prompt_tokens', 'needs at least one token');
  const window = model.window;
  if (P >= window) {
    throw new ContextLengthError('prompt_tokens', `${P} prompt tokens leave no room in the model's window of ${window} positions`);
  }
  let maxGen = opts.maxGenLen;
  if (!Number.isInteger(maxGen) || maxGen < 1) throw new ArArgumentError('max_gen_len', `must be a positive integer, got ${maxGen}`);
  const truncatedFrom = P + maxGen > window ? maxGen : null;
  if (truncatedFrom !== null) maxGen = window - P;
  const V = cfg.outputRows;

  // ---- stop tokens (only ids the head can produce matter)
  const stop = new Set<number>(opts.stopTokens ?? [cfg.vocabSize + 1]);
  const reachable = [...stop].filter((t) => Number.isInteger(t) && t >= 0 && t < V);

  // ---- draws
  const draws = opts.draws ?? null;
  if (draws && !(typeof draws === 'function')) {
    if (draws.rank !== 3 || draws.shape[1] !== B || draws.shape[2] !== V || draws.shape[0] < maxGen) {
      throw new ArArgumentError('draws', `must be [>= ${maxGen}, ${B}, ${V}] (steps, batch, vocab), got ${shapeStr(draws.shape)}`);
    }
  }
  const stream = draws ? null : new ExponentialDraws(opts.seed ?? 0);
  const drawFor = (step: number): Tensor | null => {
    if (!needsDraws(s.mode)) return null;
    if (typeof draws === 'function') return draws(step, B, V);
    if (draws) return F.slice(draws, 0, step, step + 1).reshape([B, V]);
    return stream!.next(backend, B, V);
  };

  // ---- cross-attention inputs (one text per prompt copy)
  let context = opts.context ?? null;
  let contextMask = opts.contextMask ?? null;
  const owned: Tensor[] = [];
  if (numGenSeq > 1 && context && context.shape[0] === 1) {
    context = F.tile(context, numGenSeq, 0);
    owned.push(context);
    if (contextMask && contextMask.shape[0] === 1) {
      contextMask = F.tile(contextMask, numGenSeq, 0);
      owned.push(contextMask);
    }
  }
  if (contextMask && contextMask.rank === 2) contextMask = contextMask.reshape([contextMask.shape[0], 1, 1, contextMask.shape[1]]);
  const cross = { context, contextMask };

  const ownCache = !opts.cache;
  const cache = opts.cache ?? model.createCache(B, Math.min(cfg.maxSeqLen, P + maxGen - 1));
  if (cache.batch !== B) throw new ArArgumentError('cache', `holds ${cache.batch} sequences, the batch has ${B}`);
  if (cache.capacity < P + maxGen - 1) throw new ContextLengthError('cache', `capacity ${cache.capacity} is too small for ${P} + ${maxGen - 1} positions`);
  cache.reset();

  const out = F.zeros(backend, [B, maxGen], 'i32').keep();
  const logitsBuf = opts.returnLogits ? F.zeros(backend, [maxGen, B, V]).keep() : null;
  const syncEvery = Math.max(1, opts.syncEvery ?? 8);
  let tok: Tensor | null = null;
  let generated = 0;
  try {
    const promptIds = model.tokenTensor({ data: rows.data, shape: [B, P] }, 'prompt_tokens');
    tok = scope(() => {
      const logits = prefill(model, cache, promptIds, cross);
      opts.onLogits?.(logits, 0);
      if (logitsBuf) F.setSlice(logitsBuf, logits.reshape([1, B, V]), [0, 0, 0]);
      const t = sampleNext(logits, s, drawFor(0));
      F.setSlice(out, t.reshape([B, 1]), [0, 0]);
      return t;
    });
    promptIds.dispose();
    generated = 1;
    opts.onStep?.(1, maxGen);
    const eos = new Array<boolean>(B).fill(false);
    for (let k = 1; k < maxGen; k++) {
      const prev: Tensor = tok!;
      const next = scope(() => {
        const logits = decodeStep(model, cache, prev, cross);
        opts.onLogits?.(logits, k);
        const t = sampleNext(logits, s, drawFor(k));
        if (logitsBuf) F.setSlice(logitsBuf, logits.reshape([1, B, V]), [k, 0, 0]);
        return t;
      });
      prev.dispose();
      tok = next;
      if (reachable.length) {
        const ids = await next.read();
        for (let b = 0; b < B; b++) if (stop.has(ids[b])) eos[b] = true;
        if (eos.every(Boolean)) break;
      }
      const col = next.reshape([B, 1]);
      F.setSlice(out, col, [0, k]);
      col.dispose();
      generated = k + 1;
      opts.onStep?.(generated, maxGen);
      if (k % syncEvery === 0) await backend.sync();
    }
    const all = (await out.read()) as Int32Array;
    const width = (opts.echo ? P : 0) + generated;
    const ids = new Int32Array(B * width);
    for (let b = 0; b < B; b++) {
      let o = b * width;
      if (opts.echo) for (let j = 0; j < P; j++) ids[o++] = Number(rows.data[b * P + j]);
      ids.set(all.subarray(b * maxGen, b * maxGen + generated), o);
    }
    let stepLogits: Tensor | null = null;
    if (logitsBuf) stepLogits = generated === maxGen ? logitsBuf : F.slice(logitsBuf, 0, 0, generated).keep();
    return { ids, shape: [B, width], generated, stepLogits, truncatedFrom };
  } catch (e) {
    logitsBuf?.dispose();
    throw e;
  } finally {
    tok?.dispose();
    out.dispose();
    if (logitsBuf && generated !== maxGen) logitsBuf.dispose();
    for (const t of owned) t.dispose();
    if (ownCache) cache.dispose();
  }
}

function promptRows(p: TokenMatrix | readonly number[]): { data: ArrayLike<number>; B: number; L: number } {
  if (Array.isArray(p)) {
    if (p.length > 0 && !Array.isArray(p[0])) {
      const flat = p as readonly number[];
      return { data: flat, B: 1, L: flat.length };
    }
    const rows = p as readonly (readonly number[])[];
    if (rows.length < 1) throw new ArArgumentError('prompt_tokens', 'needs at least one row');
    const L = rows[0].length;
    rows.forEach((r, i) => {
      if (!Array.isArray(r) || r.length !== L) throw new ArArgumentError('prompt_tokens', `rows differ in length (row 0 has ${L}, row ${i} has ${Array.isArray(r) ? r.length : 'no'} ids)`);
    });
    return { data: rows.flat(), B: rows.length, L };
  }
  const { data, shape } = p as { data: ArrayLike<number>; shape: readonly number[] };
  if (shape.length === 1) return { data, B: 1, L: shape[0] };
  if (shape.length !== 2) throw new ArArgumentError('prompt_tokens', `must be [batch, length], got ${shapeStr(shape)}`);
  if (data.length !== shape[0] * shape[1]) throw new ArArgumentError('prompt_tokens', `has ${data.length} values for shape ${shapeStr(shape)}`);
  return { data, B: shape[0], L: shape[1] };
}
