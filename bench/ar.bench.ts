// Autoregressive decoder benchmarks: prefill and decode tokens/s of the AR video decoder with
// random weights, on the cpu backend (tiny configs only) and on WebGPU:
//
//   tiny        the base_forward fixture dims (dim 64, 2 layers, 4 heads / 2 kv, vocab 1024, f32)
//   tiny-v2w    the video2world_forward dims (+ cross-attention to 512 x 48 context, abs pos emb)
//   tiny-long   tiny widths with a [5, 16, 16] grid (1280 positions) for the cached-length table
//   4b-shape    Cosmos-Predict1-4B widths (dim 4096, 32 heads / 8 kv, ffn 14336, vocab 64000,
//               grid [5, 40, 64]) with --layers of its 16 layers, bf16 weights (webgpu only)
//
// Each config gives a prefill row (one latent frame of prompt: 16 tokens tiny, 2560 at 4B), a
// decode row (greedy steps through the KV cache, ids kept on the device) and a generate() row with
// the released top-p 0.8 sampling (host-seeded exponential draws included). The decode-vs-cached
// rows time one decode step with 1, 100 and 1000 tokens in the cache next to the attention op alone
// at the same lengths (x layers): what grows with the cache should be the attention's own cost
// and nothing else. Baselines measured in the same run: a naive JS matmul (GFLOP/s) for every
// row's vs_naive_js, the cpu backend's decode at the same config for the webgpu rows' vs_cpu, and
// (4B) one matvec per weight matrix for the weight-read floor of a decode step. A size the
// backend's buffer limits refuse is reported, not run. Times are the best of several synced
// repetitions (generate(): one timed run). Writes bench/results/ar-latest.json.
//
//   npm run bench:ar                      everything available
//   npm run bench:ar -- --quick           fewer repetitions, 1 layer at 4B
//   npm run bench:ar -- --layers 4        4B-shaped stack depth (default 2)
//   npm run bench:ar -- --backend cpu     one backend only (cpu | webgpu | auto | all)
//   npm run bench:ar -- --no-4b           skip the 4B-shaped stack
import type { Backend } from '../src/engine/backend.js';
import type { DType } from '../src/engine/dtype.js';
import { loadWeights } from '../src/engine/module.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, numel } from '../src/engine/tensor.js';
import { type ArConfig, parseArConfig, releasedArConfig } from '../src/models/ar/config.js';
import { decodeStep, generate, prefill } from '../src/models/ar/generate.js';
import { ArTransformer, ArTransformerFamily } from '../src/models/ar/transformer.js';
import { type BenchRow, benchArgs, benchBackends, naiveMatmulGflops, runBench, timeBest, writeResult } from './harness.js';
import { BLOCK, type Refused, parameterBuffers, randomWeights, refusal } from './models.js';

const args = benchArgs('ar-latest.json', { layers: { type: 'string' }, 'no-4b': { type: 'boolean' } });
const quick = args.quick;
const layers4b = Number(args.extra.layers ?? (quick ? 1 : 2));
const REPS = quick ? 3 : 7;

// ------------------------------------------------------------------ configs

const TINY: Record<string, unknown> = {
  dim: 64, n_layers: 2, n_heads: 4, n_kv_heads: 2, ffn_hidden_size: 176, vocab_size: 1024, norm_eps: 1e-5, rope_theta: 500000,
  video_latent_shape: [2, 4, 4], max_seq_len: 64, pad_to_multiple_of: 64, use_qk_normalization: true, training_type: 'video_to_video',
};
const TINY_V2W = { ...TINY, vocab_size: 1000, insert_cross_attn: true, context_dim: 48, apply_abs_pos_emb: true, training_type: 'text_to_video' };
const TINY_LONG = { ...TINY, video_latent_shape: [5, 16, 16], max_seq_len: 1280 };

interface Spec {
  name: string;
  cfg: ArConfig;
  dtype: DType;
  /** prompt tokens for prefill (one latent frame) */
  prefill: number;
  /** greedy decode steps timed after the prefill */
  decode: number;
  /** cached lengths for the decode-vs-cached rows (empty: none) */
  cached: number[];
  cpu: boolean;
  /** T5-like context rows for cross-attention models */
  contextRows: number;
  /** timed repetitions (default REPS) */
  reps?: number;
}

/**
 * What runs when an adapter refuses the 4B shape (the 64000 x 4096 vocabulary tables, 500 MiB
 * each in bf16, and the prefill activations exceed e.g. llvmpipe's 128 MiB bindings): one layer
 * of the 4B widths with a 1024-entry vocabulary and a 64-token prefill, so that the per-layer
 * decode cost and the cached-length rows still get measured at the released widths.
 */
function fallback4b(): Spec {
  const cfg = { ...releasedArConfig('Cosmos-Predict1-4B'), nLayers: 1, vocabSize: 1024, embeddingRows: 1024, outputRows: 1024 };
  return { name: '4b-widths x1, vocab 1024', cfg, dtype: 'bf16', prefill: 64, decode: 8, cached: [1, 100, 1000], cpu: false, contextRows: 0, reps: 2 };
}

function specs(): Spec[] {
  const out: Spec[] = [
    { name: 'tiny', cfg: parseArConfig(TINY), dtype: 'f32', prefill: 16, decode: 32, cached: [], cpu: true, contextRows: 0 },
    { name: 'tiny-v2w', cfg: parseArConfig(TINY_V2W), dtype: 'f32', prefill: 17, decode: 32, cached: [], cpu: true, contextRows: 512 },
    { name: 'tiny-long', cfg: parseArConfig(TINY_LONG), dtype: 'f32', prefill: 256, decode: 32, cached: [1, 100, 1000], cpu: true, contextRows: 0 },
  ];
  if (!args.extra['no-4b']) {
    const cfg = { ...releasedArConfig('Cosmos-Predict1-4B'), nLayers: layers4b };
    out.push({ name: `4b-shape x${layers4b} layers`, cfg, dtype: 'bf16', prefill: 2560, decode: quick ? 16 : 32, cached: [1, 100, 1000], cpu: false, contextRows: 0 });
  }
  return out;
}

// ------------------------------------------------------------------ flops

/** Matmul weights a token passes through (all layers, plus the head when it is computed). */
function matmulParams(cfg: ArConfig, head: boolean): number {
  const { dim, nHeads, nKvHeads, headDim, ffnHiddenSize } = cfg;
  const attn = dim * nHeads * headDim * 2 + dim * nKvHeads * headDim * 2;
  const cross = cfg.insertCrossAttn ? dim * nHeads * headDim * 2 : 0; // q + o (context k/v are cached)
  return cfg.nLayers * (attn + cross + 3 * dim * ffnHiddenSize) + (head ? dim * cfg.outputRows : 0);
}

const DECODE_FORMULA = '2*W + layers*4*H*hd*(pos+1+Lc) (W: matmul weights of the stack and head, pos: tokens before)';
const PREFILL_FORMULA = '2*P*W + 2*dim*vocab + layers*4*H*hd*(P*(P+1)/2 + P*Lc) (W: matmul weights of the stack, head on the last position)';

/** FLOPs of one token at position `pos` (attention over pos + 1 keys), head included. */
function decodeFlops(cfg: ArConfig, pos: number, contextRows: number): number {
  const attn = 4 * cfg.nHeads * cfg.headDim * (pos + 1 + (cfg.insertCrossAttn ? contextRows : 0));
  return 2 * matmulParams(cfg, true) + cfg.nLayers * attn;
}

/** FLOPs of a prefill of P tokens (causal attention, the head on the last position only). */
function prefillFlops(cfg: ArConfig, P: number, contextRows: number): number {
  const attn = 4 * cfg.nHeads * cfg.headDim * ((P * (P + 1)) / 2 + (cfg.insertCrossAttn ? P * contextRows : 0));
  return 2 * P * matmulParams(cfg, false) + 2 * cfg.dim * cfg.outputRows + cfg.nLayers * attn;
}

// ------------------------------------------------------------------ rows

interface ArRow extends BenchRow {
  part: 'prefill' | 'decode' | 'generate' | 'weight_floor' | 'decode_cached' | 'attention_cached';
  weights: DType;
  tokens_per_s?: number;
  vs_naive_js?: number;
  vs_cpu?: number;
}

const rows: ArRow[] = [];
const refused: Refused[] = [];
let naive = 1;

function record(r: ArRow): void {
  if (r.gflops !== undefined) r.vs_naive_js = r.gflops / naive;
  rows.push(r);
}

/** Buffers larger than the backend takes, or null when everything fits. */
function refusalOf(be: Backend, model: ArTransformer, spec: Spec): string | null {
  const cfg = spec.cfg;
  const capacity = Math.max(spec.prefill + spec.decode, ...spec.cached.map((n) => n + 2));
  return refusal(be, [
    ...parameterBuffers(model, spec.dtype),
    [`KV cache layer buffer [1, ${cfg.nKvHeads}, ${capacity}, ${cfg.headDim}] f32`, cfg.nKvHeads * capacity * cfg.headDim * 4],
    [`prefill FFN activations [${spec.prefill}, ${cfg.ffnHiddenSize}] f32`, spec.prefill * cfg.ffnHiddenSize * 4],
  ]);
}

/** Greedy decode steps from `start`, ids kept on the device; returns the last id to free. */
function greedySteps(model: ArTransformer, cache: ReturnType<ArTransformer['createCache']>, steps: number, cross: { context: Tensor | null }, at?: number): Tensor[] {
  let id = F.full(model.backend, [1, 1], 5, 'i32');
  for (let k = 0; k < steps; k++) {
    if (at !== undefined) cache.length = at;
    const logits = decodeStep(model, cache, id, cross);
    const next = F.argmax(logits, -1).reshape([1, 1]);
    logits.dispose();
    id.dispose();
    id = next;
  }
  return [id];
}

/** Run one config; false when the backend's limits refuse it. */
async function benchOne(be: Backend, spec: Spec): Promise<boolean> {
  const { cfg } = spec;
  const reps = spec.reps ?? REPS;
  const model = new ArTransformer(cfg);
  const why = refusalOf(be, model, spec);
  if (why) {
    refused.push({ config: spec.name, backend: be.name, adapter: be.adapter, reason: why });
    console.log(`${spec.name.padEnd(26)} REFUSED: ${why}`);
    return false;
  }
  const base = { backend: be.name, adapter: be.adapter, weights: spec.dtype };
  const tLoad = performance.now();
  const src = randomWeights(model, spec.dtype, (n) => n.startsWith('tok_embeddings'));
  await loadWeights(model, src, be, ArTransformerFamily.loadOptions!(model, src));
  await be.sync();
  const loadS = (performance.now() - tLoad) / 1000;
  const capacity = Math.max(spec.prefill + spec.decode + 1, ...spec.cached.map((n) => n + 2));
  const cache = model.createCache(1, Math.min(capacity, cfg.maxSeqLen));
  const disposeAll: Tensor[] = [];
  try {
    const context = spec.contextRows ? F.fromArray(be, BLOCK.subarray(0, spec.contextRows * cfg.contextDim), [1, spec.contextRows, cfg.contextDim]).keep() : null;
    if (context) disposeAll.push(context);
    const cross = { context };
    const P = spec.prefill;
    const promptIds = Int32Array.from({ length: P }, (_, i) => (i * 7919) % cfg.vocabSize);
    const prompt = F.fromArray(be, promptIds, [1, P], 'i32').keep();
    disposeAll.push(prompt);

    const tPrefill = await timeBest(be, () => {
      cache.reset();
      return [prefill(model, cache, prompt, cross)];
    }, reps);
    const K = spec.decode;
    const tDecode = await timeBest(be, () => {
      cache.length = P;
      return greedySteps(model, cache, K, cross);
    }, Math.max(2, Math.ceil(reps / 2)));
    const perToken = tDecode / K;

    // generate() with the released sampling (top-p 0.8, seeded host draws)
    const hostPrompt = { data: promptIds, shape: [1, P] };
    await generate(model, hostPrompt, { maxGenLen: 2, temperature: 1, topP: 0.8, cache, context }); // warm-up
    const tg0 = performance.now();
    await generate(model, hostPrompt, { maxGenLen: K, temperature: 1, topP: 0.8, seed: 1, cache, context });
    const tGen = (performance.now() - tg0) / 1000;

    const lc = cfg.insertCrossAttn ? `, context ${spec.contextRows}` : '';
    record({
      ...base, name: `${spec.name} prefill`, part: 'prefill', shape: `prompt ${P}${lc}`, formula: PREFILL_FORMULA, seconds: tPrefill,
      gflops: prefillFlops(cfg, P, spec.contextRows) / tPrefill / 1e9, tokens_per_s: P / tPrefill, parameters: model.parameterCount(),
    });
    const decodeRow: ArRow = {
      ...base, name: `${spec.name} decode`, part: 'decode', shape: `1 token after ${P}${lc}`, formula: DECODE_FORMULA, seconds: perToken,
      gflops: decodeFlops(cfg, P + K / 2, spec.contextRows) / perToken / 1e9, tokens_per_s: 1 / perToken,
    };
    record(decodeRow);
    record({
      ...base, name: `${spec.name} generate top-p`, part: 'generate', shape: `${K} tokens after ${P}, top-p 0.8`, formula: 'tokens / seconds (sampling included)',
      seconds: tGen / K, tokens_per_s: K / tGen,
    });

    // weight-read floor (4B): one matvec per weight matrix of the stack + head
    if (!spec.cpu) {
      const mats = [...model.parameters()].filter((p) => p.shape.length === 2 && !p.key.startsWith('tok_embeddings'));
      const xs = new Map<number, Tensor>();
      for (const p of mats) if (!xs.has(p.shape[1])) xs.set(p.shape[1], F.fromArray(be, BLOCK.subarray(0, p.shape[1]), [1, p.shape[1]]).keep());
      const tFloor = await timeBest(be, () => mats.map((p) => F.linear(xs.get(p.shape[1])!, p.t)), reps);
      for (const x of xs.values()) x.dispose();
      const bytes = mats.reduce((a, p) => a + numel(p.shape) * 2, 0);
      record({
        ...base, name: `${spec.name} weight-read floor`, part: 'weight_floor', shape: `${mats.length} matvecs`, formula: 'bytes = 2 * sum(numel(weight matrices))',
        seconds: tFloor, gbps: bytes / tFloor / 1e9, decode_vs_floor: perToken / tFloor, decode_weight_gbps: bytes / perToken / 1e9,
      });
    }
    console.log(`${spec.name.padEnd(26)} ${be.name.padEnd(7)} loaded in ${loadS.toFixed(1)} s`);

    // decode time per token vs cached tokens, next to the attention op alone
    if (spec.cached.length) {
      const { nHeads: H, headDim: D, nLayers: L } = cfg;
      const q = F.fromArray(be, BLOCK.subarray(0, H * D), [1, H, 1, D]).keep();
      disposeAll.push(q);
      const steps = 8;
      for (const n of spec.cached) {
        const tStep = await timeBest(be, () => greedySteps(model, cache, steps, cross, n), reps);
        const tAttn = await timeBest(be, () => {
          const outs: Tensor[] = [];
          for (let k = 0; k < steps * L; k++) outs.push(F.attention(q, cache.keys[k % L], cache.values[k % L], { causal: true, kvLen: n + 1 }));
          return outs;
        }, reps);
        record({
          ...base, name: `${spec.name} decode, ${n} cached`, part: 'decode_cached', shape: `1 token after ${n}`, formula: DECODE_FORMULA,
          seconds: tStep / steps, gflops: decodeFlops(cfg, n, 0) / (tStep / steps) / 1e9, tokens_per_s: steps / tStep,
        });
        record({
          ...base, name: `${spec.name} attention x${L}, ${n} cached`, part: 'attention_cached', shape: `[1, ${H}, 1, ${D}] over ${n + 1} keys x ${L}`,
          formula: 'layers*4*H*hd*(n+1)', seconds: tAttn / steps, gflops: (L * 4 * H * D * (n + 1)) / (tAttn / steps) / 1e9,
        });
      }
    }
  } finally {
    for (const t of disposeAll) t.dispose();
    cache.dispose();
    model.dispose();
  }
  return true;
}

// ------------------------------------------------------------------ main

function printRows(): void {
  const head = `${'row'.padEnd(50)}${'backend'.padEnd(8)}${'shape'.padEnd(34)}${'ms'.padStart(10)}${'tok/s'.padStart(10)}${'GFLOP/s'.padStart(9)}${'x naive'.padStart(9)}${'x cpu'.padStart(7)}`;
  console.log(`\n${head}`);
  for (const r of rows) {
    const f = (x: number | undefined, d: number) => (x === undefined ? '' : x.toFixed(d));
    console.log(
      `${r.name.padEnd(50)}${r.backend.padEnd(8)}${r.shape.padEnd(34)}${f((r.seconds ?? 0) * 1000, 3).padStart(10)}${f(r.tokens_per_s, 1).padStart(10)}` +
        `${f(r.gflops, 2).padStart(9)}${f(r.vs_naive_js, 2).padStart(9)}${f(r.vs_cpu, 2).padStart(7)}`,
    );
  }
}

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  naive = naiveMatmulGflops(quick);
  console.log(`baseline: naive JS matmul ${naive.toFixed(3)} GFLOP/s (same run)`);
  for (const be of backends) {
    console.log(`\n# ${be.name}: ${be.adapter}`);
    for (const spec of specs()) {
      if (be.name === 'cpu' && !spec.cpu) continue;
      if (args.filter && !spec.name.includes(args.filter)) continue;
      try {
        const ran = await benchOne(be, spec);
        if (!ran && spec.name.startsWith('4b-shape')) await benchOne(be, fallback4b());
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0];
        refused.push({ config: spec.name, backend: be.name, adapter: be.adapter, reason: `failed: ${msg}` });
        console.log(`${spec.name.padEnd(26)} FAILED: ${msg}`);
      }
    }
  }
  // vs_cpu: a webgpu row's tokens/s over the cpu row of the same name in this run
  const cpuRate = new Map(rows.filter((r) => r.backend === 'cpu').map((r) => [r.name, r.tokens_per_s]));
  for (const r of rows) {
    const c = cpuRate.get(r.name);
    if (r.backend !== 'cpu' && c && r.tokens_per_s) r.vs_cpu = r.tokens_per_s / c;
  }
  printRows();
  writeResult(args.out, {
    date: new Date().toISOString(),
    node: process.version,
    quick,
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    baseline: {
      naive_js_matmul_gflops: naive,
      note: 'vs_naive_js = achieved GFLOP/s over a naive JS matmul timed in this run; vs_cpu = webgpu tokens/s over the cpu backend at the same row in this run; decode_vs_floor = decode time per token over one matvec per weight matrix (the weight-read floor)',
    },
    rows,
    refused,
  });
}

runBench(main);
