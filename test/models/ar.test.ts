// The cosmos-predict1 autoregressive video decoder: conformance of every vendored ar case (CPU
// and WebGPU), KV-cache equivalence and memory, sampling properties, generate semantics, typed
// errors, and the released configurations.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { cpu } from '../../src/engine/cpu/backend.js';
import { CheckpointMismatchError, type TensorSource, loadWeights, plannedBytes } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { findCases, runCase } from '../../src/conform/runner.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import {
  ArArgumentError, ArConfigError, ContextLengthError, MissingContextError, RELEASED_AR_MODELS, TokenIdError,
  expandedEmbeddingRows, parseArConfig, releasedArConfig,
} from '../../src/models/ar/config.js';
import { decodeStep, generate, prefill } from '../../src/models/ar/generate.js';
import { KVCache } from '../../src/models/ar/kvcache.js';
import { float64ToBf16Bits, positionTableRows, ropeAxisDims, ropeInverseFrequencies } from '../../src/models/ar/rope.js';
import { ExponentialDraws, resolveSampling, sampleGreedy, sampleNext, sampleTopK, sampleTopP } from '../../src/models/ar/sampling.js';
import { ArTransformer, ArTransformerFamily } from '../../src/models/ar/transformer.js';
import { loadModule } from '../../src/models/load.js';
import { countingCpu, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/ar', import.meta.url));
const CASES = await findCases([FIXTURES]);
const caseDir = (name: string) => CASES.find((c) => c.endsWith(`/${name}`))!;
const readConfig = (dir: string) => JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as Record<string, unknown>;
const TOL = { atol: 1e-4, rtol: 1e-4 };

async function loadModel(name: string, backend: Backend = cpu): Promise<ArTransformer> {
  const dir = caseDir(name);
  return (await loadModule(ArTransformerFamily, `${dir}/model.safetensors`, backend)).model;
}

async function caseInput(name: string, input: string, backend: Backend = cpu): Promise<Tensor> {
  const st = await openSafetensors(`${caseDir(name)}/case.safetensors`);
  const t = await st.read(`input.${input}`);
  await st.close();
  return F.fromRaw(backend, t.raw, t.shape, t.dtype);
}

/** Deterministic ints in [lo, hi). */
function randInts(n: number, seed: number, lo: number, hi: number): Int32Array {
  let s = seed >>> 0;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + Math.floor((s / 2 ** 32) * (hi - lo));
  }
  return out;
}

function randFloats(n: number, seed: number, scale = 1): Float32Array {
  return Float32Array.from(randInts(n, seed, -1_000_000, 1_000_000), (v) => (v / 1_000_000) * scale);
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, label: string): void {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= TOL.atol + TOL.rtol * Math.abs(want[i]))) expect.fail(`${label}: element ${i} got ${got[i]}, want ${want[i]}`);
  }
}


// ------------------------------------------------------------------ conformance

describe('ar conformance (vendored fixtures)', () => {
  it('finds the ar cases, of all three kinds', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(7);
    const kinds = new Set(CASES.map((d) => JSON.parse(readFileSync(`${d}/case.json`, 'utf8')).kind));
    expect([...kinds].sort()).toEqual(['ar.forward', 'ar.generate', 'ar.kv_cache']);
  });

  for (const [label, get] of [['cpu', async () => cpu], ['webgpu', webgpu]] as const) {
    for (const dir of CASES) {
      const name = dir.split('/').pop()!;
      it(`${label}: ${name}`, async () => {
        const r = await runCase(dir, await get());
        expect(r.error).toBeNull();
        for (const [k, o] of Object.entries(r.outputs)) expect(o.pass, `output ${k}: ${JSON.stringify(o)}`).toBe(true);
        for (const [k, o] of Object.entries(r.taps)) expect(o.pass, `tap ${k}: ${JSON.stringify(o)}`).toBe(true);
        expect(r.pass).toBe(true);
      }, 900_000);
    }
  }
});

// ------------------------------------------------------------------ KV cache

describe('KV cache', () => {
  it('prefill then single-token decode gives the full forward logits; buffers are written in place', async () => {
    const m = await loadModel('base_forward');
    const B = 2;
    const L = 40;
    const tokens = randInts(B * L, 11, 0, m.config.vocabSize);
    const full = await m.forward({ data: tokens, shape: [B, L] }).read();
    const V = m.config.outputRows;
    const rowOf = (b: number, p: number) => full.subarray((b * L + p) * V, (b * L + p + 1) * V);
    const cache = m.createCache(B);
    const storages = [...cache.keys, ...cache.values].map((t) => t.storage);
    const P = 13;
    const prompt = new Int32Array(B * P);
    for (let b = 0; b < B; b++) prompt.set(tokens.subarray(b * L, b * L + P), b * P);
    const first = await prefill(m, cache, { data: prompt, shape: [B, P] }).read();
    expect(cache.length).toBe(P);
    for (let b = 0; b < B; b++) expectClose(first.subarray(b * V, (b + 1) * V), rowOf(b, P - 1), `prefill row ${b}`);
    for (let p = P; p < L; p++) {
      // the next ids as a device i32 tensor, as the sampler hands them over
      const ids = F.fromArray(cpu, [tokens[p], tokens[L + p]], [B], 'i32');
      const step = await decodeStep(m, cache, ids).read();
      for (let b = 0; b < B; b++) expectClose(step.subarray(b * V, (b + 1) * V), rowOf(b, p), `step ${p} row ${b}`);
    }
    expect(cache.length).toBe(L);
    expect([...cache.keys, ...cache.values].map((t) => t.storage)).toEqual(storages);
    expect(cache.keys[0].shape).toEqual([B, m.config.nKvHeads, m.config.maxSeqLen, m.config.headDim]);
    cache.dispose();
    m.dispose();
  });

  it('holds for any split point (property)', async () => {
    const m = await loadModel('yarn_forward');
    const L = 48;
    const V = m.config.outputRows;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: L - 2 }), fc.integer({ min: 0, max: 1000 }), async (P, seed) => {
        const tokens = randInts(L, seed, 0, m.config.vocabSize);
        const n = Math.min(L, P + 3);
        const full = await m.forward({ data: tokens.subarray(0, n), shape: [1, n] }).read();
        const cache = m.createCache(1, n);
        expectClose(await prefill(m, cache, { data: tokens.subarray(0, P), shape: [1, P] }).read(), full.subarray((P - 1) * V, P * V), 'prefill');
        for (let p = P; p < n; p++) {
          expectClose(await decodeStep(m, cache, [[tokens[p]]]).read(), full.subarray(p * V, (p + 1) * V), `step ${p}`);
        }
        cache.dispose();
      }),
      { numRuns: 8, seed: 20261125 },
    );
    m.dispose();
  });

  it('with cross-attention: the context k/v are computed once per context and reused by every step', async () => {
    const m = await loadModel('video2world_forward');
    const context = await caseInput('video2world_forward', 'context');
    const mask = await caseInput('video2world_forward', 'context_mask');
    const B = 2;
    const L = 33;
    const V = m.config.outputRows;
    const tokens = randInts(B * L, 5, 0, m.config.vocabSize);
    for (let b = 0; b < B; b++) tokens[b * L] = m.config.vocabSize; // <bov>
    const full = await m.forward({ data: tokens, shape: [B, L] }, { context, contextMask: mask }).read();
    const cache = m.createCache(B);
    const P = 17;
    const prompt = new Int32Array(B * P);
    for (let b = 0; b < B; b++) prompt.set(tokens.subarray(b * L, b * L + P), b * P);
    const first = await prefill(m, cache, { data: prompt, shape: [B, P] }, { context, contextMask: mask }).read();
    for (let b = 0; b < B; b++) expectClose(first.subarray(b * V, (b + 1) * V), full.subarray((b * L + P - 1) * V, (b * L + P) * V), 'prefill');
    const kv0 = cache.crossKV(0, context);
    expect(kv0).not.toBeNull();
    for (let p = P; p < L; p++) {
      const step = await decodeStep(m, cache, [[tokens[p]], [tokens[L + p]]], { context, contextMask: mask }).read();
      for (let b = 0; b < B; b++) expectClose(step.subarray(b * V, (b + 1) * V), full.subarray((b * L + p) * V, (b * L + p + 1) * V), `step ${p}`);
    }
    expect(cache.crossKV(0, context)).toBe(kv0);
    // a different context tensor is not served from the cache
    const other = F.contiguous(context);
    expect(cache.crossKV(0, other)).toBeNull();
    cache.dispose();
    m.dispose();
  });

  it('decoding allocates nothing that lives on: memory stays flat per token and all is freed after generate', async () => {
    const { backend, liveBytes } = countingCpu();
    const m = await loadModel('base_forward', backend);
    m.forward([[1]]).dispose(); // the first call builds the position tables, which stay
    const loaded = liveBytes();
    const cache = m.createCache(1);
    expect(liveBytes() - loaded).toBe(KVCache.bytes(m.config, 1));
    prefill(m, cache, [[1, 2, 3, 4]]).dispose();
    const levels: number[] = [];
    for (let i = 0; i < 6; i++) {
      decodeStep(m, cache, [[i + 7]]).dispose();
      levels.push(liveBytes());
    }
    expect(new Set(levels).size).toBe(1);
    expect(levels[0]).toBe(loaded + KVCache.bytes(m.config, 1));
    cache.dispose();
    expect(liveBytes()).toBe(loaded);
    const r = await generate(m, [[1, 2, 3]], { maxGenLen: 9, temperature: 1, topP: 0.9, seed: 3, returnLogits: true });
    expect(r.stepLogits!.shape).toEqual([9, 1, m.config.outputRows]);
    r.stepLogits!.dispose();
    expect(liveBytes()).toBe(loaded);
    await generate(m, [[1, 2, 3]], { maxGenLen: 5, temperature: 0 });
    expect(liveBytes()).toBe(loaded);
    m.dispose();
    expect(liveBytes()).toBe(0);
  });
});

// ------------------------------------------------------------------ sampling

/** softmax in float64 */
function softmax(x: ArrayLike<number>, t = 1): number[] {
  const m = Math.max(...Array.from(x));
  const e = Array.from(x, (v) => Math.exp((v - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** `n` samples of one row of logits, each with its own draws (batched as n identical rows). */
async function samples(backend: Backend, logits: Float32Array, n: number, fn: (l: Tensor, q: Tensor) => Tensor, seed = 1): Promise<Int32Array> {
  const V = logits.length;
  const rows = F.expand(F.fromArray(backend, logits, [1, V]), [n, V]);
  const q = new ExponentialDraws(seed).next(backend, n, V);
  return (await fn(rows, q).read()) as Int32Array;
}

function frequencies(ids: Int32Array, V: number): number[] {
  const f = new Array<number>(V).fill(0);
  for (const i of ids) f[i] += 1 / ids.length;
  return f;
}

/** empirical frequencies within 5 standard errors (+ a little) of p */
function expectDistribution(freq: number[], p: number[], n: number, label: string): void {
  p.forEach((pi, i) => {
    const bound = 5 * Math.sqrt((pi * (1 - pi)) / n) + 2e-3;
    if (Math.abs(freq[i] - pi) > bound) expect.fail(`${label}: token ${i} frequency ${freq[i]}, probability ${pi}`);
  });
}

describe('sampling', () => {
  const V = 12;
  const logits = randFloats(V, 42, 2.5);

  it('resolves modes as upstream: temperature 0 is greedy whatever top_p says; top_p and top_k exclude each other', () => {
    expect(resolveSampling({ temperature: 0, topP: 0.8 }).mode).toBe('greedy');
    expect(resolveSampling({ temperature: 1, topP: 0.8 }).mode).toBe('top_p');
    expect(resolveSampling({ temperature: 0.5, topK: 3 }).mode).toBe('top_k');
    expect(resolveSampling({ temperature: 1 }).mode).toBe('multinomial');
    expect(() => resolveSampling({ temperature: 1, topP: 0.8, topK: 4 })).toThrow(ArArgumentError);
    expect(() => resolveSampling({ temperature: -1 })).toThrow(/temperature/);
    expect(() => resolveSampling({ temperature: 1, topP: 0 })).toThrow(/top_p/);
    expect(() => resolveSampling({ temperature: 1, topK: 0 })).toThrow(/top_k/);
  });

  it('greedy is the argmax (first index on ties)', async () => {
    const t = F.fromArray(cpu, [0, 3, 1, 3, -2, 0, 5, 5], [2, 4]);
    expect(Array.from(await sampleGreedy(t).read())).toEqual([1, 2]);
  });

  it('exponential draws: positive, mean 1, the same stream for the same seed', () => {
    const a = new ExponentialDraws(9).nextValues(20000);
    expect(a.every((v) => v > 0 && Number.isFinite(v))).toBe(true);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    expect(Math.abs(mean - 1)).toBeLessThan(0.03);
    expect(new ExponentialDraws(9).nextValues(50)).toEqual(a.subarray(0, 50));
    expect(new ExponentialDraws(10).nextValues(50)).not.toEqual(a.subarray(0, 50));
  });

  it('top-p draws only from the nucleus, with the renormalised probabilities', async () => {
    const n = 6000;
    for (const [T, topP] of [[1, 0.8], [0.7, 0.5], [1.5, 0.95]] as const) {
      const p = softmax(logits, T);
      const order = p.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
      const kept = new Set<number>();
      let c = 0;
      for (const [v, i] of order) {
        if (c > topP) break; // exclusive cumsum above top_p: dropped
        kept.add(i);
        c += v;
      }
      const mass = [...kept].reduce((s, i) => s + p[i], 0);
      expect(mass).toBeGreaterThanOrEqual(topP);
      const ids = await samples(cpu, logits, n, (l, q) => sampleTopP(l, T, topP, q));
      expect([...ids].every((i) => kept.has(i))).toBe(true);
      expectDistribution(frequencies(ids, V), p.map((v, i) => (kept.has(i) ? v / mass : 0)), n, `T=${T} top_p=${topP}`);
    }
  });

  it('a tiny top_p keeps only the top token; top_p 1 samples the whole softmax', async () => {
    const top = (await sampleGreedy(F.fromArray(cpu, logits, [1, V])).read())[0];
    const ids = await samples(cpu, logits, 500, (l, q) => sampleTopP(l, 1, 1e-6, q));
    expect(new Set(ids)).toEqual(new Set([top]));
    const n = 6000;
    const all = await samples(cpu, logits, n, (l, q) => sampleTopP(l, 1, 1, q), 5);
    expectDistribution(frequencies(all, V), softmax(logits), n, 'top_p=1');
  });

  it('temperature reshapes the distribution: softmax(logits / T), sharper below 1, flatter above', async () => {
    const n = 6000;
    const topFreq: number[] = [];
    for (const T of [0.5, 1, 2]) {
      const ids = await samples(cpu, logits, n, (l, q) => sampleNext(l, resolveSampling({ temperature: T }), q), 7);
      const f = frequencies(ids, V);
      expectDistribution(f, softmax(logits, T), n, `T=${T}`);
      topFreq.push(Math.max(...f));
    }
    expect(topFreq[0]).toBeGreaterThan(topFreq[1]);
    expect(topFreq[1]).toBeGreaterThan(topFreq[2]);
  });

  it('top-k draws only from the k largest logits', async () => {
    const n = 6000;
    const k = 4;
    const order = Array.from(logits, (v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
    const kept = new Set(order.slice(0, k).map(([, i]) => i));
    const ids = await samples(cpu, logits, n, (l, q) => sampleTopK(l, 1, k, q), 3);
    expect([...ids].every((i) => kept.has(i))).toBe(true);
    const p = softmax(Array.from(logits, (v, i) => (kept.has(i) ? v : -Infinity)));
    expectDistribution(frequencies(ids, V), p, n, 'top_k=4');
  });

  it('top-p reads the draws by sorted rank, top-k / multinomial by token id', async () => {
    const l = F.fromArray(cpu, [0.5, 0.1, 3, 2, -1, 1], [1, 6]); // ranks: 2, 3, 5, 0, 1, 4
    const q = F.fromArray(cpu, [1, 1e-9, 1, 1, 1, 1], [1, 6]);
    // top-p: the tiny draw at rank 1 picks the second most probable token (id 3)
    expect((await sampleTopP(l, 1, 1, q).read())[0]).toBe(3);
    // multinomial: the tiny draw at id 1 picks token 1
    expect((await sampleTopK(l, 1, null, q).read())[0]).toBe(1);
  });

  it('WebGPU samples the same ids as the CPU from the same logits and draws', async () => {
    const gpu = await webgpu();
    const B = 64;
    const Vb = 1000;
    const data = randFloats(B * Vb, 99, 4);
    const qv = new ExponentialDraws(4).nextValues(B * Vb);
    for (const s of [{ temperature: 1, topP: 0.8 }, { temperature: 0.7, topK: 20 }, { temperature: 1.3 }, { temperature: 0 }]) {
      const r = resolveSampling(s);
      const got: Int32Array[] = [];
      for (const be of [cpu, gpu]) {
        got.push((await sampleNext(F.fromArray(be, data, [B, Vb]), r, F.fromArray(be, qv, [B, Vb])).read()) as Int32Array);
      }
      expect(Array.from(got[1]), JSON.stringify(s)).toEqual(Array.from(got[0]));
    }
  });
});

// ------------------------------------------------------------------ generate

describe('generate', () => {
  it('greedy: each id is the argmax of the logits after the previous one; echo prepends the prompt', async () => {
    const m = await loadModel('base_forward');
    const prompt = Array.from(randInts(10, 3, 0, 1024));
    const r = await generate(m, [prompt], { maxGenLen: 6, temperature: 0, returnLogits: true });
    expect(r.shape).toEqual([1, 6]);
    expect(r.generated).toBe(6);
    // teacher-forced check: the full forward over prompt + ids argmaxes to the same ids
    const seq = [...prompt, ...r.ids];
    const full = await m.forward([seq.slice(0, 15)]).read();
    const V = m.config.outputRows;
    for (let k = 0; k < 6; k++) {
      const row = full.subarray((9 + k) * V, (10 + k) * V);
      expect(row.indexOf(Math.max(...row))).toBe(r.ids[k]);
    }
    r.stepLogits!.dispose();
    const e = await generate(m, prompt, { maxGenLen: 6, temperature: 0, echo: true });
    expect(Array.from(e.ids)).toEqual(seq);
    expect(e.shape).toEqual([1, 16]);
    m.dispose();
  });

  it('is deterministic for a seed, and the seed matters', async () => {
    const m = await loadModel('base_forward');
    const run = async (seed: number) => Array.from((await generate(m, [[5, 6, 7, 8]], { maxGenLen: 12, temperature: 1, topP: 0.95, seed })).ids);
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(await run(8)).not.toEqual(a);
    m.dispose();
  });

  it('num_gen_seq samples several continuations of one prompt in a batch; supplied draws are used per step', async () => {
    const m = await loadModel('base_forward');
    const V = m.config.outputRows;
    const steps = 5;
    const qv = new ExponentialDraws(1).nextValues(steps * 3 * V);
    const draws = F.fromArray(cpu, qv, [steps, 3, V]);
    const r = await generate(m, [[9, 8, 7]], { maxGenLen: steps, temperature: 1, topP: 0.9, numGenSeq: 3, draws });
    expect(r.shape).toEqual([3, steps]);
    // each row equals a single-sequence run fed that row's draws
    for (let b = 0; b < 3; b++) {
      const rowDraws = new Float32Array(steps * V);
      for (let s = 0; s < steps; s++) rowDraws.set(qv.subarray((s * 3 + b) * V, (s * 3 + b + 1) * V), s * V);
      const one = await generate(m, [[9, 8, 7]], { maxGenLen: steps, temperature: 1, topP: 0.9, draws: F.fromArray(cpu, rowDraws, [steps, 1, V]) });
      expect(Array.from(one.ids)).toEqual(Array.from(r.ids.subarray(b * steps, (b + 1) * steps)));
    }
    m.dispose();
  });

  it('truncates max_gen_len to the window left after the prompt, as upstream', async () => {
    const m = await loadModel('base_forward');
    const r = await generate(m, [Array.from(randInts(60, 1, 0, 1024))], { maxGenLen: 10, temperature: 0 });
    expect(r.truncatedFrom).toBe(10);
    expect(r.generated).toBe(4);
    expect(r.shape).toEqual([1, 4]);
    m.dispose();
  });

  it('stops when every sequence produced a stop token in a decode step (not appended); prefill ids are not checked', async () => {
    const m = await loadModel('base_forward');
    const prompt = [[3, 1, 4, 1, 5, 9, 2, 6]];
    const ref = Array.from((await generate(m, prompt, { maxGenLen: 12, temperature: 0 })).ids);
    // a decode-step id that did not occur in the decode steps before it (from step 2 if possible)
    const fresh = (i: number) => !ref.slice(1, i).includes(ref[i]);
    const k = ref.findIndex((_, i) => i >= 2 && fresh(i)) > 0 ? ref.findIndex((_, i) => i >= 2 && fresh(i)) : 1;
    const r = await generate(m, prompt, { maxGenLen: 12, temperature: 0, stopTokens: [ref[k]] });
    expect(Array.from(r.ids)).toEqual(ref.slice(0, k));
    expect(r.generated).toBe(k);
    // the prefill id as a stop token does not stop at step 0
    const r0 = await generate(m, prompt, { maxGenLen: 12, temperature: 0, stopTokens: [ref[0]] });
    expect(r0.ids[0]).toBe(ref[0]);
    expect(r0.generated).toBeGreaterThanOrEqual(1);
    m.dispose();
  });

  it('Video2World: the context reaches every step; a repeated single context serves num_gen_seq', async () => {
    const m = await loadModel('video2world_forward');
    const context = await caseInput('video2world_forward', 'context');
    const mask = await caseInput('video2world_forward', 'context_mask');
    const prompt = [[1000, 1, 2, 3], [1000, 4, 5, 6]];
    const a = await generate(m, prompt, { maxGenLen: 6, temperature: 0, context, contextMask: mask, returnLogits: true });
    const one = F.slice(context, 0, 1, 2);
    const oneMask = F.slice(mask.reshape([2, 12]), 0, 1, 2);
    const b = await generate(m, [prompt[1]], { maxGenLen: 6, temperature: 0, context: one, contextMask: oneMask, numGenSeq: 2 });
    expect(Array.from(b.ids)).toEqual([...a.ids.subarray(6), ...a.ids.subarray(6)]);
    // the context reaches every step's logits (the decode steps included)
    const c = await generate(m, prompt, { maxGenLen: 6, temperature: 0, context: F.scale(context, -1), contextMask: mask, returnLogits: true });
    const la = await a.stepLogits!.read();
    const lc = await c.stepLogits!.read();
    const V = m.config.outputRows;
    for (let k = 0; k < 6; k++) {
      let d = 0;
      for (let i = k * 2 * V; i < (k + 1) * 2 * V; i++) d = Math.max(d, Math.abs(la[i] - lc[i]));
      expect(d, `step ${k}`).toBeGreaterThan(1e-3);
    }
    m.dispose();
  });
});

// ------------------------------------------------------------------ errors

describe('errors', () => {
  it('token ids out of range: TokenIdError naming the argument, before anything runs', async () => {
    const m = await loadModel('base_forward');
    expect(() => m.forward([[0, 5, 1024]])).toThrow(TokenIdError);
    expect(() => m.forward([[0, 5, 1024]])).toThrow(/tokens: token id 1024 at \[0, 2\] is outside \[0, 1024\)/);
    expect(() => m.forward([[0, -1]])).toThrow(TokenIdError);
    expect(() => m.forward([[0, 1.5]])).toThrow(TokenIdError);
    await expect(generate(m, [[1, 2, 5000]], { maxGenLen: 2, temperature: 0 })).rejects.toThrow(/prompt_tokens: token id 5000/);
    try {
      m.forward([[7, 2000]]);
      expect.fail('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(TokenIdError);
      expect((e as TokenIdError).argument).toBe('tokens');
    }
    m.dispose();
  });

  it('Video2World: <bov> is a valid id; ids past the grown embedding are not', async () => {
    const m = await loadModel('video2world_forward');
    expect(m.config.embeddingRows).toBe(1024);
    expect(m.config.outputRows).toBe(1000);
    const context = await caseInput('video2world_forward', 'context');
    expect(m.forward([[1000, 1], [1000, 2]], { context }).shape).toEqual([2, 2, 1000]);
    expect(() => m.forward([[1024, 1], [1000, 2]], { context })).toThrow(TokenIdError);
    m.dispose();
  });

  it('contexts longer than the window: ContextLengthError', async () => {
    const m = await loadModel('base_forward');
    expect(m.window).toBe(64);
    expect(() => m.forward([Array.from(randInts(65, 2, 0, 1024))])).toThrow(ContextLengthError);
    expect(() => m.forward([[1, 2, 3, 4, 5]], { start: 60 })).toThrow(/positions 60\.\.64 exceed the model's window of 64/);
    await expect(generate(m, [Array.from(randInts(64, 2, 0, 1024))], { maxGenLen: 1, temperature: 0 })).rejects.toThrow(ContextLengthError);
    const small = m.createCache(1, 8);
    expect(() => prefill(m, small, [Array.from(randInts(9, 2, 0, 1024))])).toThrow(ContextLengthError);
    small.dispose();
    expect(() => m.createCache(1, 65)).toThrow(/capacity/);
    m.dispose();
  });

  it('cross-attention variants without text embeddings: MissingContextError; a context for a model without cross-attention is refused', async () => {
    const v2w = await loadModel('video2world_forward');
    expect(() => v2w.forward([[1000, 1]])).toThrow(MissingContextError);
    expect(() => v2w.forward([[1000, 1]])).toThrow(/context: .*pass context \[B, Lc, 48\]/);
    await expect(generate(v2w, [[1000, 1]], { maxGenLen: 2, temperature: 0 })).rejects.toThrow(MissingContextError);
    const context = await caseInput('video2world_forward', 'context');
    expect(() => v2w.forward([[1000, 1]], { context })).toThrow(/context: must be \[1, Lc, 48\]/);
    const wrongDim = F.zeros(cpu, [2, 3, 40]);
    expect(() => v2w.forward([[1000, 1], [1000, 2]], { context: wrongDim })).toThrow(ArArgumentError);
    expect(() => v2w.forward([[1000, 1], [1000, 2]], { context, contextMask: F.zeros(cpu, [2, 5], 'i32') })).toThrow(/context_mask/);
    v2w.dispose();
    const base = await loadModel('base_forward');
    expect(() => base.forward([[1, 2]], { context: F.zeros(cpu, [1, 3, 1024]) })).toThrow(/context: this model has no cross-attention/);
    base.dispose();
  });

  it('input_pos must be consecutive; cache/batch and sampling arguments are checked', async () => {
    const m = await loadModel('base_forward');
    expect(() => m.forward([[1, 2, 3]], { inputPos: [0, 2, 3] })).toThrow(/input_pos: must be consecutive/);
    const cache = m.createCache(2);
    expect(() => prefill(m, cache, [[1, 2]])).toThrow(/cache: holds 2 sequences, the batch has 1/);
    cache.dispose();
    await expect(generate(m, [[1, 2]], { maxGenLen: 0, temperature: 0 })).rejects.toThrow(/max_gen_len/);
    await expect(generate(m, [[1, 2]], { maxGenLen: 3, temperature: 1, topP: 0.5, topK: 3 })).rejects.toThrow(/top_p/);
    await expect(generate(m, [[1, 2]], { maxGenLen: 3, temperature: 1, draws: F.zeros(cpu, [2, 1, 1024]) })).rejects.toThrow(/draws/);
    m.dispose();
  });

  it('configs it cannot build: ArConfigError naming the field', () => {
    const cfg = readConfig(caseDir('base_forward'));
    expect(() => parseArConfig({ ...cfg, rope_dim: '1D' })).toThrow(ArConfigError);
    expect(() => parseArConfig({ ...cfg, pytorch_rope_version: 'v1' })).toThrow(/pytorch_rope_version/);
    expect(() => parseArConfig({ ...cfg, n_kv_heads: 3 })).toThrow(/n_kv_heads/);
    expect(() => parseArConfig({ ...cfg, head_dim: 15 })).toThrow(/head_dim/);
    expect(() => parseArConfig({ ...cfg, video_latent_shape: [2, 4] })).toThrow(/video_latent_shape/);
    expect(() => parseArConfig({ ...cfg, apply_yarn: true })).toThrow(/yarn_scale/);
    expect(() => parseArConfig({ ...cfg, fuse_qkv: true })).toThrow(/fuse_qkv/);
  });

  it('checkpoints: an optional leading model. and TransformerEngine _extra_state keys load; a missing key is named', async () => {
    const dir = caseDir('base_forward');
    const st = await openSafetensors(`${dir}/model.safetensors`);
    const tensors = new Map<string, Awaited<ReturnType<typeof st.read>>>();
    for (const n of st.names) tensors.set(n, await st.read(n));
    await st.close();
    const source = (names: string[], rename: (n: string) => string): TensorSource => {
      const map = new Map(names.map((n) => [rename(n), n]));
      return {
        names: [...map.keys(), ...(names.length ? ['model.layers.0.attention._extra_state'] : [])],
        info: (n) => ({ dtype: 'F32', shape: tensors.get(map.get(n)!)?.shape ?? [0] }),
        read: async (n) => tensors.get(map.get(n)!)!,
      };
    };
    const want = await (await loadModel('base_forward')).forward([[1, 2, 3]]).read();
    const m = ArTransformerFamily.build(readConfig(dir));
    const renamed = source([...tensors.keys()], (n) => `model.${n}`);
    await loadWeights(m, renamed, cpu, ArTransformerFamily.loadOptions!(m, renamed));
    expect(Array.from(await m.forward([[1, 2, 3]]).read())).toEqual(Array.from(want));
    m.dispose();
    const m2 = ArTransformerFamily.build(readConfig(dir));
    const missing = source([...tensors.keys()].filter((n) => n !== 'layers.1.attention.k_norm.weight'), (n) => n);
    await expect(loadWeights(m2, missing, cpu, ArTransformerFamily.loadOptions!(m2, missing))).rejects.toThrow(CheckpointMismatchError);
    await expect(loadWeights(m2, missing, cpu, ArTransformerFamily.loadOptions!(m2, missing))).rejects.toThrow(/layers\.1\.attention\.k_norm\.weight/);
  });
});

// ------------------------------------------------------------------ released configs and tables

describe('released configurations', () => {
  const counts: Record<string, number> = {
    'Cosmos-Predict1-4B': 4_014_088_192,
    'Cosmos-Predict1-5B-Video2World': 4_584_845_312,
    'Cosmos-Predict1-12B': 11_560_975_360,
    'Cosmos-Predict1-13B-Video2World': 13_323_125_760,
  };
  for (const name of RELEASED_AR_MODELS) {
    it(`${name} builds from its config: ${counts[name].toLocaleString('en')} parameters, ${(counts[name] * 2 / 2 ** 30).toFixed(2)} GiB in bf16, nothing allocated`, () => {
      const cfg = releasedArConfig(name);
      const m = new ArTransformer(cfg);
      const v2w = name.endsWith('Video2World');
      const { dim, nHeads: H, nKvHeads: Hkv, headDim: hd, ffnHiddenSize: ffn, nLayers } = cfg;
      const self = 2 * dim * H * hd + 2 * dim * Hkv * hd + 2 * hd;
      const cross = v2w ? 2 * dim * H * hd + 2 * cfg.contextDim * Hkv * hd + 2 * hd + dim : 0;
      const perLayer = self + cross + 3 * dim * ffn + 2 * dim;
      const expected = nLayers * perLayer + (cfg.embeddingRows + cfg.outputRows) * dim + dim;
      expect(m.parameterCount()).toBe(expected);
      expect(m.parameterCount()).toBe(counts[name]);
      const bf16: TensorSource = {
        names: [...m.parameters()].map((p) => p.key),
        info: (n) => ({ dtype: 'BF16', shape: [...m.parameters()].find((p) => p.key === n)!.shape }),
        read: async () => {
          throw new Error('sizes only');
        },
      };
      expect(plannedBytes(m, bf16, ArTransformerFamily.loadOptions!(m, bf16))).toBe(2 * counts[name]);
      expect([...m.parameters()].every((p) => !p.loaded)).toBe(true);
      expect(m.absPosEmb).toBeNull();
      expect(cfg.headDim).toBe(128);
      expect(cfg.embeddingRows).toBe(v2w ? 64064 : 64000);
      expect(cfg.outputRows).toBe(64000);
      expect(cfg.maxSeqLen).toBe(v2w ? 12864 : 12800);
      expect(m.window).toBe(cfg.maxSeqLen);
      expect(positionTableRows(cfg)).toBe(cfg.maxSeqLen);
      expect(m.isCrossAttention).toBe(v2w);
      expect(m.layers.every((l) => (l.cross_attention !== null) === v2w)).toBe(true);
      if (name.includes('12B')) expect(m.layers[0].attention.wq.weight.shape).toEqual([4096, 5120]);
      // the KV cache for the full context, float32
      expect(KVCache.bytes(cfg, 1)).toBe(2 * nLayers * 8 * cfg.maxSeqLen * 128 * 4);
    });
  }

  it('vocabulary growth: text_to_video adds <bov> and rounds to a multiple of 64', () => {
    expect(expandedEmbeddingRows(64000, 'text_to_video')).toBe(64064);
    expect(expandedEmbeddingRows(1000, 'text_to_video')).toBe(1024);
    expect(expandedEmbeddingRows(1023, 'text_to_video')).toBe(1024);
    expect(expandedEmbeddingRows(64000, 'video_to_video')).toBe(64000);
  });

  it('RoPE: head_dim splits t/h/w as 44/42/42; YaRN halves every temporal frequency and the low spatial ones', () => {
    expect(ropeAxisDims(128)).toEqual([44, 42, 42]);
    expect(ropeAxisDims(16)).toEqual([8, 4, 4]);
    expect(ropeAxisDims(24)).toEqual([8, 8, 8]);
    const yarn = ropeInverseFrequencies(releasedArConfig('Cosmos-Predict1-12B'));
    const plain = ropeInverseFrequencies({ ...releasedArConfig('Cosmos-Predict1-12B'), applyYarn: false });
    yarn.temporal.forEach((f, k) => {
      expect(f).toBe(Math.fround(plain.temporal[k] * 0.5));
    });
    // spatial: above 2 pi 4 / 40 unchanged, below 2 pi / 40 halved
    plain.spatial.forEach((f, k) => {
      if (f >= (2 * Math.PI * 4) / 40) expect(yarn.spatial[k]).toBe(f);
      if (f <= (2 * Math.PI) / 40) expect(yarn.spatial[k]).toBe(Math.fround(f * 0.5));
    });
  });

  it('abs pos emb values round straight from float64 to bfloat16 (no double rounding through float32)', () => {
    const mid = 1.00390625; // float32-exact midpoint of bf16 1.0 (0x3f80) and 1.0078125 (0x3f81)
    expect(float64ToBf16Bits(mid)).toBe(0x3f80);
    expect(float64ToBf16Bits(mid + 1e-12)).toBe(0x3f81);
    expect(float64ToBf16Bits(mid - 1e-12)).toBe(0x3f80);
    expect(float64ToBf16Bits(1.01171875)).toBe(0x3f82);
    expect(float64ToBf16Bits(-(mid + 1e-12))).toBe(0xbf81);
    expect(float64ToBf16Bits(0.5)).toBe(0x3f00);
  });
});
