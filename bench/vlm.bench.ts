// VLM (Cosmos-Reason1 = Qwen2.5-VL) benchmarks with random weights, timed with benchmark.js:
//
//   tiny              the vlm fixtures' config (vision C 32 x 4 blocks, text D 64 x 2 layers, vocab
//                     300, f32) on the cpu backend and on WebGPU: the vision tower on the
//                     vision_encoder grids ([1,8,12] image + [2,6,10] video: 216 patches -> 54
//                     tokens), prefill of a 64-token prompt, decode steps after it
//   7b-layer xN       N decoder layers of the released 7B widths (D 3584, 28 heads / 4 kv, head
//                     128, MLP 18944, M-RoPE), bf16 weights, WebGPU only; the vocabulary is cut to
//                     1024 so that the rows time the layers (the head has its own row); prefill of
//                     --prefill tokens (default 512), decode steps after it. N = 1 and 2: the
//                     difference is the per-layer cost, the rest the fixed cost of a step
//   7b-lm_head        the released head [152064, 3584] bf16 on one token (decode) (WebGPU)
//   7b-vision-block   one vision block of the released widths (C 1280, 16 heads, MLP 3420) with
//                     the patch embedding and merger (out 3584), bf16, on a 448x448 image
//                     (1024 patches -> 256 tokens): a window-attention block and a full-attention
//                     block (WebGPU)
//   host-sampling     the recipe's sampling on the host over a 152064-entry logits row
//                     (repetition penalty 1.05, temperature 0.6, top-p 0.95) per decoded token
//
// Rates: vision tokens/s (merged output tokens), prefill tokens/s (prompt tokens), decode tokens/s
// (one token per step, the next id read back each step as `reason` does), with GFLOP/s. Baselines
// measured in the same run: a naive JS matmul (GFLOP/s, as bench/kernels.bench.ts) for every row's
// vs_naive_js, and the cpu backend's tiny numbers for the webgpu tiny rows' vs_cpu; decode rows at
// 7B also give the weight bytes read per second. From the 7B rows the run estimates the full 28-layer
// model (x1 + 27 * (x2 - x1) + head) and the 32-block tower (28 window + 4 full blocks). A size the
// adapter's buffer limits refuse is reported as refused, not run. Writes bench/results/vlm-latest.json.
//
//   npm run bench:vlm                    everything available
//   npm run bench:vlm -- --quick         fewer samples, a 128-token 7B prompt
//   npm run bench:vlm -- --backend cpu   one backend only (cpu | webgpu)
//   npm run bench:vlm -- --no-7b         tiny configs only
//   npm run bench:vlm -- --prefill 1024  7B prompt length
import Benchmark from 'benchmark';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Backend } from '../src/engine/backend.js';
import { cpu } from '../src/engine/cpu/backend.js';
import type { DType, RawArray } from '../src/engine/dtype.js';
import type { Module, TensorSource } from '../src/engine/module.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, numel, scope } from '../src/engine/tensor.js';
import { processLogits, sampleToken, VlmKVCache } from '../src/models/vlm/generate.js';
import { COSMOS_REASON1_7B_CONFIG, parseVlmConfig, Qwen2_5_VLForConditionalGeneration, type TextConfig, type VlmConfig } from '../src/models/vlm/language.js';
import type { Grid } from '../src/models/vlm/rope-index.js';
import { frameCuSeqlens, patchCount, type VisionConfig, windowIndex } from '../src/models/vlm/vision.js';

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes('--quick');
const only = opt('--backend');
const skip7b = args.includes('--no-7b');
const prefill7b = Number(opt('--prefill') ?? (quick ? 128 : 512));
const outFile = opt('--out') ?? new URL('./results/vlm-latest.json', import.meta.url).pathname;

// ------------------------------------------------------------------ configs

/** test/fixtures/vlm/*\/config.json (spec vlm.md tiny config "a"). */
const TINY: Record<string, unknown> = {
  bos_token_id: 280, eos_token_id: 281, hidden_act: 'silu', hidden_size: 64, image_token_id: 292, intermediate_size: 96, max_position_embeddings: 4096,
  num_attention_heads: 4, num_hidden_layers: 2, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_scaling: { mrope_section: [2, 3, 3], type: 'mrope' },
  rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: false, video_token_id: 293, vision_end_token_id: 291, vision_start_token_id: 290,
  vocab_size: 300,
  vision_config: {
    depth: 4, fullatt_block_indexes: [1, 3], hidden_act: 'silu', hidden_size: 32, in_channels: 3, intermediate_size: 48, num_heads: 2,
    out_hidden_size: 64, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2, tokens_per_second: 2, window_size: 56,
  },
};
const TINY_GRIDS: Grid[] = [[1, 8, 12], [2, 6, 10]];
const TINY_PREFILL = 64;

function released(over: Record<string, unknown>, vision: Record<string, unknown> = {}): VlmConfig {
  const base = COSMOS_REASON1_7B_CONFIG as Record<string, unknown>;
  return parseVlmConfig({ ...base, ...over, vision_config: { ...(base.vision_config as Record<string, unknown>), ...vision } });
}

// ------------------------------------------------------------------ random weights

const BLOCK = (() => {
  const a = new Float32Array(1 << 20);
  let s = 12345;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
})();

function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Every parameter of `model`, random (1-D: ones), in `dtype`, generated when read. */
function randomSource(model: Module, dtype: DType): TensorSource {
  const shapes = new Map<string, readonly number[]>();
  for (const p of model.parameters()) shapes.set(p.key, p.shape);
  const patterns = new Map<number, RawArray>();
  const pattern = (scale: number): RawArray => {
    let p = patterns.get(scale);
    if (!p) {
      p = dtype === 'bf16' ? Uint16Array.from(BLOCK, (x) => bf16Bits(x * scale)) : Float32Array.from(BLOCK, (x) => x * scale);
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
        const fanIn = numel(shape.slice(1));
        const src = pattern(name.includes('embed_tokens') ? 1 : 1 / Math.sqrt(fanIn));
        for (let o = 0; o < n; o += src.length) raw.set(n - o >= src.length ? src : src.subarray(0, n - o), o);
      }
      return { dtype, raw, shape };
    },
  };
}

// ------------------------------------------------------------------ timing (benchmark.js)

/** Mean seconds per call of an async body (which waits for its own results), after a warm-up call. */
async function measure(body: () => Promise<void>, slow = false): Promise<{ s: number; samples: number }> {
  await body(); // warm-up: pipeline compilation, first allocations
  return new Promise((resolve, reject) => {
    const bench = new Benchmark({
      defer: true,
      minSamples: quick || slow ? 2 : 5,
      maxTime: quick ? 0.5 : slow ? 1 : 2,
      initCount: 1,
      fn: (deferred: { resolve: () => void }) => {
        body().then(() => deferred.resolve(), reject);
      },
      onComplete: function (this: Benchmark) {
        resolve({ s: this.stats.mean, samples: this.stats.sample.length });
      },
      onError: (e: unknown) => reject(e),
    });
    bench.run({ async: true });
  });
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

// ------------------------------------------------------------------ flops

function layerMatParams(t: TextConfig): number {
  const { hiddenSize: D, numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: hd, intermediateSize: I } = t;
  return 2 * D * H * hd + 2 * D * Hkv * hd + 3 * D * I;
}

function prefillFlops(t: TextConfig, P: number): number {
  const attn = 4 * t.numAttentionHeads * t.headDim * ((P * (P + 1)) / 2);
  return t.numHiddenLayers * (2 * P * layerMatParams(t) + attn) + 2 * t.hiddenSize * t.vocabSize;
}

function decodeFlops(t: TextConfig, pos: number): number {
  return t.numHiddenLayers * (2 * layerMatParams(t) + 4 * t.numAttentionHeads * t.headDim * (pos + 1)) + 2 * t.hiddenSize * t.vocabSize;
}

function visionFlops(v: VisionConfig, grids: readonly Grid[]): number {
  const N = patchCount(grids);
  const C = v.hiddenSize;
  const segs = (cu: number[]) => cu.slice(1).reduce((s, x, i) => s + (x - cu[i]) ** 2, 0);
  const win = segs(windowIndex(grids, v).cuWindowSeqlens);
  const frame = segs(frameCuSeqlens(grids));
  const full = new Set(v.fullattBlockIndexes);
  let f = 2 * N * (v.inChannels * v.temporalPatchSize * v.patchSize ** 2) * C;
  for (let b = 0; b < v.depth; b++) f += 2 * N * (4 * C * C + 3 * C * v.intermediateSize) + 4 * C * (full.has(b) ? frame : win);
  const m2 = v.spatialMergeSize ** 2;
  f += 2 * (N / m2) * (m2 * C * m2 * C + m2 * C * v.outHiddenSize);
  return f;
}

// ------------------------------------------------------------------ rows

interface Row {
  config: string;
  part: 'vision' | 'prefill' | 'decode' | 'lm_head' | 'host_sampling';
  backend: string;
  adapter: string;
  weights: DType | 'host';
  shape: string;
  tokens: number;
  ms: number;
  tokens_per_s: number;
  gflops: number;
  vs_naive_js: number;
  vs_cpu?: number;
  weight_gb_per_s?: number;
  samples: number;
}

interface Refused {
  config: string;
  backend: string;
  adapter: string;
  reason: string;
}

const rows: Row[] = [];
const refused: Refused[] = [];
const cpuRate = new Map<string, number>();
let naive = 1;

function record(r: Omit<Row, 'vs_naive_js' | 'tokens_per_s'>): Row {
  const row: Row = { ...r, tokens_per_s: r.tokens / (r.ms / 1000), vs_naive_js: r.gflops / naive };
  const key = `${r.config}|${r.part}`;
  if (r.weights === 'host') { /* no backend */ } else if (r.backend === 'cpu') cpuRate.set(key, row.tokens_per_s);
  else if (cpuRate.has(key)) row.vs_cpu = row.tokens_per_s / cpuRate.get(key)!;
  rows.push(row);
  console.log(
    `${r.config.padEnd(24)} ${r.part.padEnd(13)} ${r.shape.padEnd(30)} ${row.tokens_per_s.toFixed(1).padStart(10)} tok/s ${r.ms.toFixed(3).padStart(10)} ms ` +
      `${r.gflops.toFixed(2).padStart(9)} GFLOP/s  x${row.vs_naive_js.toFixed(1)} naive JS${row.vs_cpu !== undefined ? `, x${row.vs_cpu.toFixed(2)} cpu` : ''}` +
      `${row.weight_gb_per_s !== undefined ? `, ${row.weight_gb_per_s.toFixed(0)} GB/s weights` : ''}`,
  );
  return row;
}

/** min(maxStorageBufferBindingSize, maxBufferSize) of a WebGPU backend; Infinity on the cpu. */
function bufferLimit(be: Backend): number {
  const lim = (be as unknown as { ctx?: { device: { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } } } }).ctx?.device.limits;
  return lim ? Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize) : Infinity;
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** The buffers over the adapter's limit, as text, or null when everything fits. */
function refusal(be: Backend, buffers: [string, number][]): string | null {
  const max = bufferLimit(be);
  const big = buffers.filter(([, b]) => b > max);
  if (!big.length) return null;
  return `the adapter's buffer limit (min(maxStorageBufferBindingSize, maxBufferSize) = ${MiB(max)}) refuses: ${big.map(([n, b]) => `${n} = ${MiB(b)}`).join('; ')}`;
}

function paramBuffers(model: Module, dtype: DType): [string, number][] {
  const el = dtype === 'bf16' ? 2 : 4;
  return [...model.parameters()].map((p) => [`${p.key} [${p.shape.join(', ')}] ${dtype}`, numel(p.shape) * el] as [string, number]);
}

function refuse(config: string, be: Backend, reason: string): void {
  refused.push({ config, backend: be.name, adapter: be.adapter, reason });
  console.log(`${config.padEnd(24)} REFUSED on ${be.name}: ${reason}`);
}

// ------------------------------------------------------------------ language model

interface LmResult {
  prefill?: Row;
  decode?: Row;
}

async function benchLanguage(be: Backend, name: string, cfg: VlmConfig, dtype: DType, P: number): Promise<LmResult> {
  const model = new Qwen2_5_VLForConditionalGeneration(cfg, { vision: false });
  const t = cfg.text;
  const why = refusal(be, [
    ...paramBuffers(model, dtype),
    [`KV cache layer [1, ${t.numKeyValueHeads}, ${P + 2}, ${t.headDim}] f32`, t.numKeyValueHeads * (P + 2) * t.headDim * 4],
    [`prefill MLP activations [${P}, ${t.intermediateSize}] f32`, P * t.intermediateSize * 4],
  ]);
  if (why) {
    refuse(name, be, why);
    model.dispose();
    return {};
  }
  await model.load(randomSource(model, dtype), be);
  const cache = new VlmKVCache(be, t, 1, P + 2);
  const out: LmResult = {};
  try {
    const ids = { data: Int32Array.from({ length: P }, (_, i) => (i * 7919 + 11) % Math.min(t.vocabSize, 280)), shape: [1, P] };
    const readId = async (logits: Tensor) => {
      const id = scope(() => F.argmax(logits, -1));
      logits.dispose();
      await id.read();
      id.dispose();
    };
    const pre = await measure(async () => {
      const { logits } = model.forward({ inputIds: ids }, { lastOnly: true, cache });
      await readId(logits);
    }, dtype === 'bf16');
    out.prefill = record({
      config: name, part: 'prefill', backend: be.name, adapter: be.adapter, weights: dtype, shape: `prompt ${P}`, tokens: P, ms: pre.s * 1000,
      gflops: prefillFlops(t, P) / pre.s / 1e9, samples: pre.samples,
    });
    // one decode step at position P (the cache holds the prompt; each call rewrites row P)
    const pos = [P, P, P];
    const dec = await measure(async () => {
      const logits = scope(() => model.decode(model.embedInputs({ data: [5], shape: [1, 1] }), pos, null, { cache, past: P }));
      await readId(logits);
    });
    const row: Omit<Row, 'vs_naive_js' | 'tokens_per_s'> = {
      config: name, part: 'decode', backend: be.name, adapter: be.adapter, weights: dtype, shape: `1 token after ${P}`, tokens: 1, ms: dec.s * 1000,
      gflops: decodeFlops(t, P) / dec.s / 1e9, samples: dec.samples,
    };
    if (dtype === 'bf16') row.weight_gb_per_s = (t.numHiddenLayers * layerMatParams(t) * 2) / dec.s / 1e9;
    out.decode = record(row);
  } finally {
    cache.dispose();
    model.dispose();
  }
  return out;
}

// ------------------------------------------------------------------ vision tower

async function benchVision(be: Backend, name: string, cfg: VlmConfig, dtype: DType, grids: Grid[]): Promise<Row | undefined> {
  const model = new Qwen2_5_VLForConditionalGeneration(cfg, { language: false });
  const v = cfg.vision;
  const N = patchCount(grids);
  const cols = v.inChannels * v.temporalPatchSize * v.patchSize ** 2;
  const why = refusal(be, [
    ...paramBuffers(model, dtype),
    [`pixel_values [${N}, ${cols}] f32`, N * cols * 4],
    [`MLP activations [${N}, ${v.intermediateSize}] f32`, N * v.intermediateSize * 4],
  ]);
  if (why) {
    refuse(name, be, why);
    model.dispose();
    return undefined;
  }
  await model.load(randomSource(model, dtype), be);
  const px = new Float32Array(N * cols);
  for (let o = 0; o < px.length; o += BLOCK.length) px.set(BLOCK.subarray(0, Math.min(BLOCK.length, px.length - o)), o);
  const pixels = F.fromArray(be, px, [N, cols]).keep();
  try {
    const r = await measure(async () => {
      const o = model.encodeVisual(pixels, grids);
      await be.sync();
      o.dispose();
    }, dtype === 'bf16');
    const tokens = N / v.spatialMergeSize ** 2;
    return record({
      config: name, part: 'vision', backend: be.name, adapter: be.adapter, weights: dtype, shape: `grid ${grids.map((g) => g.join('x')).join(' + ')} (${N} patches)`,
      tokens, ms: r.s * 1000, gflops: visionFlops(v, grids) / r.s / 1e9, samples: r.samples,
    });
  } finally {
    pixels.dispose();
    model.dispose();
  }
}

// ------------------------------------------------------------------ 7B head and host sampling

async function benchHead(be: Backend, t: TextConfig): Promise<Row | undefined> {
  const name = '7b-lm_head';
  const bytes = t.vocabSize * t.hiddenSize * 2;
  const why = refusal(be, [[`lm_head.weight [${t.vocabSize}, ${t.hiddenSize}] bf16`, bytes]]);
  if (why) {
    refuse(name, be, why);
    return undefined;
  }
  const n = t.vocabSize * t.hiddenSize;
  const raw = new Uint16Array(n);
  const pat = Uint16Array.from(BLOCK, (x) => bf16Bits(x / Math.sqrt(t.hiddenSize)));
  for (let o = 0; o < n; o += pat.length) raw.set(n - o >= pat.length ? pat : pat.subarray(0, n - o), o);
  const w = F.fromArray(be, raw, [t.vocabSize, t.hiddenSize], 'bf16').keep();
  const x = F.fromArray(be, BLOCK.subarray(0, t.hiddenSize), [1, 1, t.hiddenSize]).keep();
  try {
    const r = await measure(async () => {
      const id = scope(() => F.argmax(F.linear(x, w), -1));
      await id.read();
      id.dispose();
    });
    return record({
      config: name, part: 'lm_head', backend: be.name, adapter: be.adapter, weights: 'bf16', shape: `[1, ${t.hiddenSize}] x [${t.vocabSize}, ${t.hiddenSize}]^T + argmax`,
      tokens: 1, ms: r.s * 1000, gflops: (2 * n) / r.s / 1e9, weight_gb_per_s: (2 * n) / r.s / 1e9, samples: r.samples,
    });
  } finally {
    w.dispose();
    x.dispose();
  }
}

async function benchHostSampling(V: number): Promise<Row> {
  const logits = Float32Array.from({ length: V }, (_, i) => BLOCK[i % BLOCK.length] * 8);
  const seen = Array.from({ length: 600 }, (_, i) => (i * 7919) % V);
  let u = 0.37;
  const r = await measure(async () => {
    const row = logits.slice();
    processLogits(row, seen, { doSample: true, temperature: 0.6, topP: 0.95, repetitionPenalty: 1.05 });
    sampleToken(row, u);
    u = (u + 0.618) % 1;
  });
  return record({
    config: 'host-sampling', part: 'host_sampling', backend: 'cpu', adapter: 'node (JS)', weights: 'host', shape: `V ${V}, penalty 1.05, T 0.6, top-p 0.95`,
    tokens: 1, ms: r.s * 1000, gflops: 0, samples: r.samples,
  });
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
  naive = naiveMatmulGflops();
  console.log(`baseline: naive JS matmul ${naive.toFixed(3)} GFLOP/s (same run)`);
  const tiny = parseVlmConfig(TINY);
  const estimates: Record<string, unknown> = {};
  for (const be of backends) {
    console.log(`\n# ${be.name}: ${be.adapter}${Number.isFinite(bufferLimit(be)) ? ` (buffer limit ${MiB(bufferLimit(be))})` : ''}`);
    const guard = async <T>(config: string, fn: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0];
        refused.push({ config, backend: be.name, adapter: be.adapter, reason: `failed: ${msg}` });
        console.log(`${config.padEnd(24)} FAILED: ${msg}`);
        return undefined;
      }
    };
    await guard('tiny', () => benchVision(be, 'tiny', tiny, 'f32', TINY_GRIDS));
    await guard('tiny', () => benchLanguage(be, 'tiny', tiny, 'f32', TINY_PREFILL));
    if (be.name === 'cpu' || skip7b) continue;

    const x1 = await guard('7b-layer x1', () => benchLanguage(be, '7b-layer x1', released({ num_hidden_layers: 1, vocab_size: 1024 }), 'bf16', prefill7b));
    const x2 = await guard('7b-layer x2', () => benchLanguage(be, '7b-layer x2', released({ num_hidden_layers: 2, vocab_size: 1024 }), 'bf16', prefill7b));
    const full7b = released({});
    const head = await guard('7b-lm_head', () => benchHead(be, full7b.text));
    const img: Grid[] = [[1, 32, 32]];
    const win = await guard('7b-vision-block window', () => benchVision(be, '7b-vision-block window', released({}, { depth: 1, fullatt_block_indexes: [] }), 'bf16', img));
    const full = await guard('7b-vision-block full', () => benchVision(be, '7b-vision-block full', released({}, { depth: 1, fullatt_block_indexes: [0] }), 'bf16', img));

    // full-model estimates from the measured pieces
    const L = full7b.text.numHiddenLayers;
    if (x1?.decode && x2?.decode) {
      const perLayer = x2.decode.ms - x1.decode.ms;
      const fixed = x1.decode.ms - perLayer;
      const step = fixed + L * perLayer + (head?.ms ?? 0);
      estimates.decode_7b = {
        per_layer_ms: perLayer, fixed_ms: fixed, head_ms: head?.ms ?? null, step_ms: step, tokens_per_s: 1000 / step,
        note: head ? 'x1 + 27 * (x2 - x1) + lm_head, greedy (device argmax)' : 'lm_head refused: layers only',
      };
    }
    if (x1?.prefill && x2?.prefill) {
      const perLayer = x2.prefill.ms - x1.prefill.ms;
      const ms = x1.prefill.ms - perLayer + L * perLayer + (head?.ms ?? 0);
      estimates.prefill_7b = { prompt: prefill7b, per_layer_ms: perLayer, ms, tokens_per_s: prefill7b / (ms / 1000) };
    }
    if (win && full) {
      const depth = full7b.vision.depth;
      const nFull = full7b.vision.fullattBlockIndexes.length;
      const ms = (depth - nFull) * win.ms + nFull * full.ms;
      estimates.vision_tower_7b = {
        grid: img, tokens: win.tokens, ms, tokens_per_s: win.tokens / (ms / 1000),
        note: `${depth - nFull} window + ${nFull} full blocks, each timed with the patch embedding and merger (an over-estimate of their share)`,
      };
    }
    console.log(`\nestimates for the released 7B on ${be.name}: ${JSON.stringify(estimates, null, 1)}`);
  }
  await benchHostSampling(152064);

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    quick,
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    buffer_limits: Object.fromEntries(backends.map((b) => [b.name, Number.isFinite(bufferLimit(b)) ? bufferLimit(b) : null])),
    baseline: {
      naive_js_matmul_gflops: naive,
      cpu_tiny_tokens_per_s: Object.fromEntries(cpuRate),
      note: 'vs_naive_js = achieved GFLOP/s over a naive JS matmul timed in this run; vs_cpu = webgpu tokens/s over the cpu backend at the same config in this run',
    },
    rows,
    estimates,
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
