// Autoregressive decoder benchmarks: prefill and decode tokens/s of the AR video decoder with
// random weights, on the cpu backend (tiny configs only) and on WebGPU:
//
//   tiny        the base_forward fixture dims (dim 64, 2 layers, 4 heads / 2 kv, vocab 1024, f32)
//   tiny-v2w    the video2world_forward dims (+ cross-attention to 512 x 48 context, abs pos emb)
//   tiny-long   tiny widths with a [5, 16, 16] grid (1280 positions) for the cached-length table
//   4b-shape    Cosmos-Predict1-4B widths (dim 4096, 32 heads / 8 kv, ffn 14336, vocab 64000,
//               grid [5, 40, 64]) with --layers of its 16 layers, bf16 weights (webgpu only)
//
// Each config reports prefill tokens/s (one latent frame of prompt: 16 tokens tiny, 2560 at 4B),
// decode tokens/s (greedy steps through the KV cache, ids kept on the device), and generate()
// tokens/s with the released top-p 0.8 sampling (host-seeded exponential draws included). The
// decode-vs-cached table times one decode step with 1, 100 and 1000 tokens in the cache next to
// the attention op alone at the same lengths (x layers): what grows with the cache should be the
// attention's own cost and nothing else. Baselines measured in the same run: a naive JS matmul
// (GFLOP/s, as bench/kernels.bench.ts) for every row's vs_naive_js, the cpu backend's tiny decode
// for the webgpu tiny rows' vs_cpu, and (4B) one matvec per weight matrix for the weight-read
// floor of a decode step. A size the adapter's buffer limits refuse is reported, not run.
// Times are the best of several synced repetitions (generate(): one timed run).
// Writes bench/results/ar-latest.json.
//
//   npm run bench:ar                      everything available
//   npm run bench:ar -- --quick           fewer repetitions, 1 layer at 4B
//   npm run bench:ar -- --layers 4        4B-shaped stack depth (default 2)
//   npm run bench:ar -- --backend cpu     one backend only (cpu | webgpu)
//   npm run bench:ar -- --no-4b           skip the 4B-shaped stack
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Backend } from '../src/engine/backend.js';
import { cpu } from '../src/engine/cpu/backend.js';
import type { DType, RawArray } from '../src/engine/dtype.js';
import type { TensorSource } from '../src/engine/module.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, numel } from '../src/engine/tensor.js';
import { type ArConfig, parseArConfig, releasedArConfig } from '../src/models/ar/config.js';
import { decodeStep, generate, prefill } from '../src/models/ar/generate.js';
import { ArTransformer } from '../src/models/ar/transformer.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes('--quick');
const layers4b = Number(opt('--layers') ?? (quick ? 1 : 2));
const only = opt('--backend');
const skip4b = args.includes('--no-4b');
const outFile = opt('--out') ?? new URL('./results/ar-latest.json', import.meta.url).pathname;
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
  /** cached lengths for the decode-vs-cached table (empty: none) */
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
 * decode cost and the cached-length table still get measured at the released widths.
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
  if (!skip4b) {
    const cfg = { ...releasedArConfig('Cosmos-Predict1-4B'), nLayers: layers4b };
    out.push({ name: `4b-shape x${layers4b} layers`, cfg, dtype: 'bf16', prefill: 2560, decode: quick ? 16 : 32, cached: [1, 100, 1000], cpu: false, contextRows: 0 });
  }
  return out;
}

// ------------------------------------------------------------------ random weights

/** A pseudo-random block, tiled over each tensor (timing does not care about the values). */
const BLOCK = (() => {
  const a = new Float32Array(1 << 20);
  let s = 12345;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 * 2 - 1;
  }
  return a;
})();

function bf16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Every parameter of `model`, random (norm weights 1), in `dtype`; generated when read. */
function randomSource(model: ArTransformer, dtype: DType): TensorSource {
  const shapes = new Map<string, readonly number[]>();
  for (const p of model.parameters()) shapes.set(p.key, p.shape);
  const patterns = new Map<number, RawArray>();
  const pattern = (scale: number): RawArray => {
    let p = patterns.get(scale);
    if (!p) {
      if (dtype === 'bf16') p = Uint16Array.from(BLOCK, (x) => bf16Bits(x * scale));
      else p = Float32Array.from(BLOCK, (x) => x * scale);
      patterns.set(scale, p);
    }
    return p;
  };
  return {
    names: [...shapes.keys()],
    path: '<random>',
    info: (name) => ({ dtype: dtype === 'bf16' ? 'BF16' : 'F32', shape: shapes.get(name)! }),
    read: async (name) => {
      const shape = shapes.get(name)!;
      const n = numel(shape);
      const raw: RawArray = dtype === 'bf16' ? new Uint16Array(n) : new Float32Array(n);
      if (shape.length === 1) raw.fill(dtype === 'bf16' ? 0x3f80 : 1);
      else {
        const src = pattern(name.startsWith('tok_embeddings') ? 1 : 1 / Math.sqrt(shape[1]));
        for (let o = 0; o < n; o += src.length) raw.set(n - o >= src.length ? src : src.subarray(0, n - o), o);
      }
      return { dtype, raw, shape };
    },
  };
}

// ------------------------------------------------------------------ timing

/**
 * Best-of-reps seconds of `body` (which enqueues work and returns tensors to free), synced each
 * rep. The minimum, not the mean: on a shared machine other processes only ever add time.
 */
async function time(be: Backend, body: () => Tensor[] | void, reps: number): Promise<number> {
  for (const t of body() ?? []) t.dispose(); // warm-up: pipeline compilation
  await be.sync();
  const xs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const out = body() ?? [];
    await be.sync();
    xs.push((performance.now() - t0) / 1000);
    for (const t of out) t.dispose();
  }
  return Math.min(...xs);
}

function naiveMatmulGflops(): number {
  const n = quick ? 128 : 256;
  const a = BLOCK.subarray(0, n * n);
  const b = BLOCK.subarray(n * n, 2 * n * n);
  const c = new Float32Array(n * n);
  const once = () => {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
        c[i * n + j] = s;
      }
    }
  };
  once();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < (quick ? 300 : 1500)) {
    once();
    reps++;
  }
  return (2 * n ** 3) / ((performance.now() - t0) / 1000 / reps) / 1e9;
}

// ------------------------------------------------------------------ flops and bytes

/** Matmul weights a token passes through (all layers, plus the head when it is computed). */
function matmulParams(cfg: ArConfig, head: boolean): number {
  const { dim, nHeads, nKvHeads, headDim, ffnHiddenSize } = cfg;
  const attn = dim * nHeads * headDim * 2 + dim * nKvHeads * headDim * 2;
  const cross = cfg.insertCrossAttn ? dim * nHeads * headDim * 2 : 0; // q + o (context k/v are cached)
  return cfg.nLayers * (attn + cross + 3 * dim * ffnHiddenSize) + (head ? dim * cfg.outputRows : 0);
}

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

// ------------------------------------------------------------------ one config on one backend

interface Row {
  config: string;
  backend: string;
  adapter: string;
  weights: DType;
  parameters: number;
  prefill_tokens: number;
  prefill_tokens_per_s: number;
  prefill_gflops: number;
  decode_tokens_per_s: number;
  decode_ms_per_token: number;
  decode_gflops: number;
  generate_top_p_tokens_per_s: number;
  vs_naive_js_prefill: number;
  vs_naive_js_decode: number;
  vs_cpu_decode?: number;
  weight_read_floor_ms?: number;
  decode_vs_floor?: number;
  weight_gb_per_s?: number;
}

interface CachedRow {
  config: string;
  backend: string;
  cached: number;
  decode_ms: number;
  attention_ms: number;
  other_ms: number;
}

interface Refused {
  config: string;
  backend: string;
  adapter: string;
  reason: string;
}

/** Buffers larger than the adapter allows, or null when everything fits. */
function refusal(be: Backend, model: ArTransformer, spec: Spec): string | null {
  const lim = (be as unknown as { ctx?: { device: { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } } } }).ctx?.device.limits;
  if (!lim) return null;
  const max = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
  const el = spec.dtype === 'bf16' ? 2 : 4;
  const cfg = spec.cfg;
  const big: string[] = [];
  for (const p of model.parameters()) {
    const bytes = numel(p.shape) * el;
    if (bytes > max) big.push(`${p.key} [${p.shape.join(', ')}] ${spec.dtype} = ${(bytes / 2 ** 20).toFixed(0)} MiB`);
  }
  const capacity = Math.max(spec.prefill + spec.decode, ...spec.cached.map((n) => n + 2));
  const kv = cfg.nKvHeads * capacity * cfg.headDim * 4;
  if (kv > max) big.push(`KV cache layer buffer [1, ${cfg.nKvHeads}, ${capacity}, ${cfg.headDim}] f32 = ${(kv / 2 ** 20).toFixed(0)} MiB`);
  const ffn = spec.prefill * cfg.ffnHiddenSize * 4;
  if (ffn > max) big.push(`prefill FFN activations [${spec.prefill}, ${cfg.ffnHiddenSize}] f32 = ${(ffn / 2 ** 20).toFixed(0)} MiB`);
  if (!big.length) return null;
  return `the adapter's buffer limit (min(maxStorageBufferBindingSize, maxBufferSize) = ${(max / 2 ** 20).toFixed(0)} MiB) refuses: ${big.join('; ')}`;
}

/** Run one config; false when the adapter's limits refuse it. */
async function benchOne(be: Backend, spec: Spec, naive: number, cpuDecode: Map<string, number>, rows: Row[], cached: CachedRow[], refused: Refused[]): Promise<boolean> {
  const { cfg } = spec;
  const reps = spec.reps ?? REPS;
  const model = new ArTransformer(cfg);
  const why = refusal(be, model, spec);
  if (why) {
    refused.push({ config: spec.name, backend: be.name, adapter: be.adapter, reason: why });
    console.log(`${spec.name.padEnd(26)} REFUSED: ${why}`);
    return false;
  }
  const tLoad = performance.now();
  await model.load(randomSource(model, spec.dtype), be);
  await be.sync();
  const loadS = (performance.now() - tLoad) / 1000;
  const capacity = Math.max(spec.prefill + spec.decode + 1, ...spec.cached.map((n) => n + 2));
  const cache = model.createCache(1, Math.min(capacity, cfg.maxSeqLen));
  let context: Tensor | null = null;
  const disposeAll: Tensor[] = [];
  try {
    if (spec.contextRows) {
      context = F.fromArray(be, BLOCK.subarray(0, spec.contextRows * cfg.contextDim), [1, spec.contextRows, cfg.contextDim]).keep();
      disposeAll.push(context);
    }
    const cross = { context };
    const P = spec.prefill;
    const prompt = F.fromArray(be, Int32Array.from({ length: P }, (_, i) => (i * 7919) % cfg.vocabSize), [1, P], 'i32').keep();
    disposeAll.push(prompt);

    // ---- prefill
    const tPrefill = await time(be, () => {
      cache.reset();
      return [prefill(model, cache, prompt, cross)];
    }, reps);

    // ---- decode: greedy steps from the end of the prompt, ids kept on the device
    const K = spec.decode;
    const tDecode = await time(be, () => {
      cache.length = P;
      let id = F.full(be, [1, 1], 5, 'i32');
      for (let k = 0; k < K; k++) {
        const logits = decodeStep(model, cache, id, cross);
        const next = F.argmax(logits, -1).reshape([1, 1]);
        logits.dispose();
        id.dispose();
        id = next;
      }
      return [id];
    }, Math.max(2, Math.ceil(reps / 2)));
    const perToken = tDecode / K;

    // ---- generate() with the released sampling (top-p 0.8, seeded host draws)
    const hostPrompt = { data: Int32Array.from({ length: P }, (_, i) => (i * 7919) % cfg.vocabSize), shape: [1, P] };
    const gen = K;
    await generate(model, hostPrompt, { maxGenLen: 2, temperature: 1, topP: 0.8, cache, context }); // warm-up
    const tg0 = performance.now();
    await generate(model, hostPrompt, { maxGenLen: gen, temperature: 1, topP: 0.8, seed: 1, cache, context });
    const tGen = (performance.now() - tg0) / 1000;

    const pos = P + K / 2;
    const row: Row = {
      config: spec.name,
      backend: be.name,
      adapter: be.adapter,
      weights: spec.dtype,
      parameters: model.parameterCount(),
      prefill_tokens: P,
      prefill_tokens_per_s: P / tPrefill,
      prefill_gflops: prefillFlops(cfg, P, spec.contextRows) / tPrefill / 1e9,
      decode_tokens_per_s: 1 / perToken,
      decode_ms_per_token: perToken * 1000,
      decode_gflops: decodeFlops(cfg, pos, spec.contextRows) / perToken / 1e9,
      generate_top_p_tokens_per_s: gen / tGen,
      vs_naive_js_prefill: 0,
      vs_naive_js_decode: 0,
    };
    row.vs_naive_js_prefill = row.prefill_gflops / naive;
    row.vs_naive_js_decode = row.decode_gflops / naive;
    if (be.name === 'cpu') cpuDecode.set(spec.name, row.decode_tokens_per_s);
    else if (cpuDecode.has(spec.name)) row.vs_cpu_decode = row.decode_tokens_per_s / cpuDecode.get(spec.name)!;

    // ---- weight-read floor (4B): one matvec per weight matrix of the stack + head
    if (!spec.cpu) {
      const mats = [...model.parameters()].filter((p) => p.shape.length === 2 && !p.key.startsWith('tok_embeddings'));
      const xs = new Map<number, Tensor>();
      for (const p of mats) if (!xs.has(p.shape[1])) xs.set(p.shape[1], F.fromArray(be, BLOCK.subarray(0, p.shape[1]), [1, p.shape[1]]).keep());
      const tFloor = await time(be, () => mats.map((p) => F.linear(xs.get(p.shape[1])!, p.t)), reps);
      for (const x of xs.values()) x.dispose();
      const bytes = mats.reduce((a, p) => a + numel(p.shape) * 2, 0);
      row.weight_read_floor_ms = tFloor * 1000;
      row.decode_vs_floor = perToken / tFloor;
      row.weight_gb_per_s = bytes / perToken / 1e9;
    }
    rows.push(row);
    console.log(
      `${spec.name.padEnd(26)} prefill ${P} tok ${row.prefill_tokens_per_s.toFixed(1).padStart(9)} tok/s (${row.prefill_gflops.toFixed(2)} GFLOP/s, x${row.vs_naive_js_prefill.toFixed(1)} naive JS)` +
        `  decode ${row.decode_tokens_per_s.toFixed(1).padStart(8)} tok/s (${row.decode_ms_per_token.toFixed(2)} ms/tok, x${row.vs_naive_js_decode.toFixed(2)} naive JS` +
        `${row.vs_cpu_decode ? `, x${row.vs_cpu_decode.toFixed(2)} cpu` : ''})  generate top-p ${row.generate_top_p_tokens_per_s.toFixed(1)} tok/s` +
        `${row.weight_read_floor_ms !== undefined ? `  floor ${row.weight_read_floor_ms.toFixed(2)} ms (decode x${row.decode_vs_floor!.toFixed(2)}), ${row.weight_gb_per_s!.toFixed(0)} GB/s weights` : ''}` +
        `  [load ${loadS.toFixed(1)} s]`,
    );

    // ---- decode time per token vs cached tokens, next to the attention op alone
    if (spec.cached.length) {
      const { nHeads: H, headDim: D, nLayers: L } = cfg;
      const q = F.fromArray(be, BLOCK.subarray(0, H * D), [1, H, 1, D]).keep();
      disposeAll.push(q);
      const steps = 8;
      for (const n of spec.cached) {
        const tStep = await time(be, () => {
          let id = F.full(be, [1, 1], 5, 'i32');
          for (let k = 0; k < steps; k++) {
            cache.length = n;
            const logits = decodeStep(model, cache, id, cross);
            const next = F.argmax(logits, -1).reshape([1, 1]);
            logits.dispose();
            id.dispose();
            id = next;
          }
          return [id];
        }, reps);
        const tAttn = await time(be, () => {
          const outs: Tensor[] = [];
          for (let k = 0; k < steps * L; k++) outs.push(F.attention(q, cache.keys[k % L], cache.values[k % L], { causal: true, kvLen: n + 1 }));
          return outs;
        }, reps);
        const r: CachedRow = {
          config: spec.name, backend: be.name, cached: n, decode_ms: (tStep / steps) * 1000, attention_ms: (tAttn / steps) * 1000, other_ms: 0,
        };
        r.other_ms = r.decode_ms - r.attention_ms;
        cached.push(r);
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

async function main(): Promise<void> {
  const backends: Backend[] = [];
  if (only !== 'webgpu') backends.push(cpu);
  if (only !== 'cpu') {
    try {
      const { webgpu } = await import('../src/engine/webgpu/backend.js');
      backends.push(await webgpu());
    } catch (e) {
      console.log(`webgpu: none (${(e as Error).message.split('\n')[0]})`);
    }
  }
  const naive = naiveMatmulGflops();
  console.log(`baseline: naive JS matmul ${naive.toFixed(3)} GFLOP/s (same run)`);
  const rows: Row[] = [];
  const cached: CachedRow[] = [];
  const refused: Refused[] = [];
  const cpuDecode = new Map<string, number>();
  for (const be of backends) {
    console.log(`\n# ${be.name}: ${be.adapter}`);
    for (const spec of specs()) {
      if (be.name === 'cpu' && !spec.cpu) continue;
      try {
        const ran = await benchOne(be, spec, naive, cpuDecode, rows, cached, refused);
        if (!ran && spec.name.startsWith('4b-shape')) await benchOne(be, fallback4b(), naive, cpuDecode, rows, cached, refused);
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0];
        refused.push({ config: spec.name, backend: be.name, adapter: be.adapter, reason: `failed: ${msg}` });
        console.log(`${spec.name.padEnd(26)} FAILED: ${msg}`);
      }
    }
  }
  if (cached.length) {
    console.log('\ndecode time per token vs tokens in the KV cache (attention = the attention op alone, x layers; other = the rest)');
    console.log(`${'config'.padEnd(28)}${'backend'.padEnd(8)}${'cached'.padStart(7)}${'decode ms'.padStart(11)}${'attention ms'.padStart(14)}${'other ms'.padStart(10)}`);
    for (const r of cached) {
      console.log(`${r.config.padEnd(28)}${r.backend.padEnd(8)}${String(r.cached).padStart(7)}${r.decode_ms.toFixed(3).padStart(11)}${r.attention_ms.toFixed(3).padStart(14)}${r.other_ms.toFixed(3).padStart(10)}`);
    }
  }
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    quick,
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    baseline: {
      naive_js_matmul_gflops: naive,
      cpu_decode_tokens_per_s: Object.fromEntries(cpuDecode),
      note: 'vs_naive_js = achieved GFLOP/s over a naive JS matmul timed in this run; vs_cpu = webgpu decode tokens/s over the cpu backend at the same config in this run; decode_vs_floor = decode time per token over one matvec per weight matrix (the weight-read floor)',
    },
    rows,
    decode_vs_cached: cached,
    refused,
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nwrote ${outFile}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
