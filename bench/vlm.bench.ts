// VLM (Cosmos-Reason1 = Qwen2.5-VL) benchmarks with random weights:
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
// measured in the same run: a naive JS matmul (GFLOP/s) for every row's vs_naive_js, and the cpu
// backend's tiny numbers for the webgpu tiny rows' vs_cpu; decode rows at 7B also give the weight
// bytes read per second. From the 7B rows the run estimates the full 28-layer model
// (x1 + 27 * (x2 - x1) + head) and the 32-block tower (28 window + 4 full blocks). A size the
// backend's buffer limits refuse is reported as refused, not run. Times are the best of several
// repetitions of a whole step (its result read back). Writes bench/results/vlm-latest.json.
//
//   npm run bench:vlm                    everything available
//   npm run bench:vlm -- --quick         fewer repetitions, a 128-token 7B prompt
//   npm run bench:vlm -- --backend cpu   one backend only (cpu | webgpu | auto | all)
//   npm run bench:vlm -- --no-7b         tiny configs only
//   npm run bench:vlm -- --prefill 1024  7B prompt length
import type { Backend } from '../src/engine/backend.js';
import type { DType } from '../src/engine/dtype.js';
import { loadWeights } from '../src/engine/module.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, scope } from '../src/engine/tensor.js';
import { COSMOS_REASON1_7B_CONFIG, type TextConfig, type VisionConfig, type VlmConfig, parseVlmConfig } from '../src/models/vlm/config.js';
import { VlmKVCache, processLogits, sampleToken } from '../src/models/vlm/generate.js';
import { type ModelParts, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLFamily } from '../src/models/vlm/language.js';
import type { Grid } from '../src/models/vlm/rope-index.js';
import { frameCuSeqlens, patchCount, windowIndex } from '../src/models/vlm/vision.js';
import { type BenchRow, benchArgs, benchBackends, naiveMatmulGflops, runBench, timeBestAsync, writeResult } from './harness.js';
import { BLOCK, type Refused, bindingLimit, parameterBuffers, randomWeights, refusal, tiled } from './models.js';

const args = benchArgs('vlm-latest.json', { prefill: { type: 'string' }, 'no-7b': { type: 'boolean' } });
const quick = args.quick;
const prefill7b = Number(args.extra.prefill ?? (quick ? 128 : 512));

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

/** Best seconds of an async body (one whole step, its result read back); fewer repetitions for the slow 7B rows. */
function time(body: () => Promise<void>, slow = false): Promise<number> {
  return timeBestAsync(body, quick || slow ? 2 : 5);
}

// ------------------------------------------------------------------ flops

function layerMatParams(t: TextConfig): number {
  const { hiddenSize: D, numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: hd, intermediateSize: I } = t;
  return 2 * D * H * hd + 2 * D * Hkv * hd + 3 * D * I;
}

const PREFILL_FORMULA = 'layers*(2*P*W + 4*H*hd*P*(P+1)/2) + 2*D*vocab (W: matmul weights of a layer, head on the last position)';
const DECODE_FORMULA = 'layers*(2*W + 4*H*hd*(pos+1)) + 2*D*vocab (W: matmul weights of a layer)';
const VISION_FORMULA = '2*N*patch*C + blocks*(2*N*(4*C^2 + 3*C*I) + 4*C*sum(segment^2)) + merger (N patches, segments: windows or frames)';

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

interface VlmRow extends BenchRow {
  config: string;
  part: 'vision' | 'prefill' | 'decode' | 'lm_head' | 'host_sampling';
  weights: DType | 'host';
  tokens: number;
  tokens_per_s: number;
  vs_naive_js: number;
  vs_cpu?: number;
  weight_gb_per_s?: number;
}

const rows: VlmRow[] = [];
const refused: Refused[] = [];
let naive = 1;

/** What a measurement gives; record() names the row and adds the rates. */
interface Measured {
  config: string;
  part: VlmRow['part'];
  backend: string;
  adapter: string;
  weights: VlmRow['weights'];
  shape: string;
  formula: string;
  tokens: number;
  seconds: number;
  gflops: number;
  weight_gb_per_s?: number;
}

function record(r: Measured): VlmRow {
  const row: VlmRow = { name: `${r.config} ${r.part}`, ...r, tokens_per_s: r.tokens / r.seconds, vs_naive_js: r.gflops / naive };
  rows.push(row);
  console.log(
    `${r.config.padEnd(24)} ${r.part.padEnd(13)} ${r.shape.padEnd(30)} ${row.tokens_per_s.toFixed(1).padStart(10)} tok/s ${(r.seconds * 1000).toFixed(3).padStart(10)} ms ` +
      `${r.gflops.toFixed(2).padStart(9)} GFLOP/s  x${row.vs_naive_js.toFixed(1)} naive JS` +
      `${row.weight_gb_per_s !== undefined ? `, ${row.weight_gb_per_s.toFixed(0)} GB/s weights` : ''}`,
  );
  return row;
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

function refuse(config: string, be: Backend, reason: string): void {
  refused.push({ config, backend: be.name, adapter: be.adapter, reason });
  console.log(`${config.padEnd(24)} REFUSED on ${be.name}: ${reason}`);
}

/** The model (or `parts` of it) with random weights on `be`, or null (reported) when the backend refuses its buffers. */
async function randomModel(be: Backend, name: string, cfg: VlmConfig, parts: ModelParts, dtype: DType, extra: [string, number][]) {
  const model = new Qwen2_5_VLForConditionalGeneration(cfg, parts);
  const why = refusal(be, [...parameterBuffers(model, dtype), ...extra]);
  if (why) {
    refuse(name, be, why);
    model.dispose();
    return null;
  }
  const src = randomWeights(model, dtype, (n) => n.includes('embed_tokens'));
  await loadWeights(model, src, be, Qwen2_5_VLFamily(parts).loadOptions!(model, src));
  return model;
}

// ------------------------------------------------------------------ language model

interface LmResult {
  prefill?: VlmRow;
  decode?: VlmRow;
}

async function benchLanguage(be: Backend, name: string, cfg: VlmConfig, dtype: DType, P: number): Promise<LmResult> {
  const t = cfg.text;
  const model = await randomModel(be, name, cfg, { vision: false }, dtype, [
    [`KV cache layer [1, ${t.numKeyValueHeads}, ${P + 2}, ${t.headDim}] f32`, t.numKeyValueHeads * (P + 2) * t.headDim * 4],
    [`prefill MLP activations [${P}, ${t.intermediateSize}] f32`, P * t.intermediateSize * 4],
  ]);
  if (!model) return {};
  const cache = new VlmKVCache(be, t, 1, P + 2);
  const out: LmResult = {};
  const base = { config: name, backend: be.name, adapter: be.adapter, weights: dtype };
  try {
    const ids = { data: Int32Array.from({ length: P }, (_, i) => (i * 7919 + 11) % Math.min(t.vocabSize, 280)), shape: [1, P] };
    const readId = async (logits: Tensor) => {
      const id = scope(() => F.argmax(logits, -1));
      logits.dispose();
      await id.read();
      id.dispose();
    };
    const pre = await time(async () => {
      const { logits } = model.forward({ inputIds: ids }, { lastOnly: true, cache });
      await readId(logits);
    }, dtype === 'bf16');
    out.prefill = record({ ...base, part: 'prefill', shape: `prompt ${P}`, formula: PREFILL_FORMULA, tokens: P, seconds: pre, gflops: prefillFlops(t, P) / pre / 1e9 });
    // one decode step at position P (the cache holds the prompt; each call rewrites row P)
    const pos = [P, P, P];
    const dec = await time(async () => {
      const logits = scope(() => model.decode(model.embedInputs({ data: [5], shape: [1, 1] }), pos, null, { cache, past: P }));
      await readId(logits);
    });
    out.decode = record({
      ...base, part: 'decode', shape: `1 token after ${P}`, formula: DECODE_FORMULA, tokens: 1, seconds: dec, gflops: decodeFlops(t, P) / dec / 1e9,
      ...(dtype === 'bf16' ? { weight_gb_per_s: (t.numHiddenLayers * layerMatParams(t) * 2) / dec / 1e9 } : {}),
    });
  } finally {
    cache.dispose();
    model.dispose();
  }
  return out;
}

// ------------------------------------------------------------------ vision tower

async function benchVision(be: Backend, name: string, cfg: VlmConfig, dtype: DType, grids: Grid[]): Promise<VlmRow | undefined> {
  const v = cfg.vision;
  const N = patchCount(grids);
  const cols = v.inChannels * v.temporalPatchSize * v.patchSize ** 2;
  const model = await randomModel(be, name, cfg, { language: false }, dtype, [
    [`pixel_values [${N}, ${cols}] f32`, N * cols * 4],
    [`MLP activations [${N}, ${v.intermediateSize}] f32`, N * v.intermediateSize * 4],
  ]);
  if (!model) return undefined;
  const pixels = F.fromArray(be, tiled(N * cols, 'f32'), [N, cols]).keep();
  try {
    const s = await time(async () => {
      const o = model.encodeVisual(pixels, grids);
      await be.sync();
      o.dispose();
    }, dtype === 'bf16');
    return record({
      config: name, part: 'vision', backend: be.name, adapter: be.adapter, weights: dtype, shape: `grid ${grids.map((g) => g.join('x')).join(' + ')} (${N} patches)`,
      formula: VISION_FORMULA, tokens: N / v.spatialMergeSize ** 2, seconds: s, gflops: visionFlops(v, grids) / s / 1e9,
    });
  } finally {
    pixels.dispose();
    model.dispose();
  }
}

// ------------------------------------------------------------------ 7B head and host sampling

async function benchHead(be: Backend, t: TextConfig): Promise<VlmRow | undefined> {
  const name = '7b-lm_head';
  const n = t.vocabSize * t.hiddenSize;
  const why = refusal(be, [[`lm_head.weight [${t.vocabSize}, ${t.hiddenSize}] bf16`, 2 * n]]);
  if (why) {
    refuse(name, be, why);
    return undefined;
  }
  const w = F.fromArray(be, tiled(n, 'bf16', 1 / Math.sqrt(t.hiddenSize)), [t.vocabSize, t.hiddenSize], 'bf16').keep();
  const x = F.fromArray(be, BLOCK.subarray(0, t.hiddenSize), [1, 1, t.hiddenSize]).keep();
  try {
    const s = await time(async () => {
      const id = scope(() => F.argmax(F.linear(x, w), -1));
      await id.read();
      id.dispose();
    });
    return record({
      config: name, part: 'lm_head', backend: be.name, adapter: be.adapter, weights: 'bf16', shape: `[1, ${t.hiddenSize}] x [${t.vocabSize}, ${t.hiddenSize}]^T + argmax`,
      formula: '2*vocab*D (bytes: 2*vocab*D)', tokens: 1, seconds: s, gflops: (2 * n) / s / 1e9, weight_gb_per_s: (2 * n) / s / 1e9,
    });
  } finally {
    w.dispose();
    x.dispose();
  }
}

async function benchHostSampling(V: number): Promise<VlmRow> {
  const logits = Float32Array.from({ length: V }, (_, i) => BLOCK[i % BLOCK.length] * 8);
  const seen = Array.from({ length: 600 }, (_, i) => (i * 7919) % V);
  let u = 0.37;
  const s = await time(async () => {
    const row = logits.slice();
    processLogits(row, seen, { doSample: true, temperature: 0.6, topP: 0.95, repetitionPenalty: 1.05 });
    sampleToken(row, u);
    u = (u + 0.618) % 1;
  });
  return record({
    config: 'host-sampling', part: 'host_sampling', backend: 'cpu', adapter: 'node (JS)', weights: 'host', shape: `V ${V}, penalty 1.05, T 0.6, top-p 0.95`,
    formula: 'tokens / seconds (host JS, no FLOP count)', tokens: 1, seconds: s, gflops: 0,
  });
}

// ------------------------------------------------------------------ main

/** Full-model estimates of the released 7B from its measured pieces. */
function estimates7b(full7b: VlmConfig, x1: LmResult | undefined, x2: LmResult | undefined, head: VlmRow | undefined, win?: VlmRow, full?: VlmRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ms = (r: VlmRow) => r.seconds! * 1000;
  const L = full7b.text.numHiddenLayers;
  if (x1?.decode && x2?.decode) {
    const perLayer = ms(x2.decode) - ms(x1.decode);
    const fixed = ms(x1.decode) - perLayer;
    const step = fixed + L * perLayer + (head ? ms(head) : 0);
    out.decode_7b = {
      per_layer_ms: perLayer, fixed_ms: fixed, head_ms: head ? ms(head) : null, step_ms: step, tokens_per_s: 1000 / step,
      note: head ? 'x1 + 27 * (x2 - x1) + lm_head, greedy (device argmax)' : 'lm_head refused: layers only',
    };
  }
  if (x1?.prefill && x2?.prefill) {
    const perLayer = ms(x2.prefill) - ms(x1.prefill);
    const total = ms(x1.prefill) - perLayer + L * perLayer + (head ? ms(head) : 0);
    out.prefill_7b = { prompt: prefill7b, per_layer_ms: perLayer, ms: total, tokens_per_s: prefill7b / (total / 1000) };
  }
  if (win && full) {
    const depth = full7b.vision.depth;
    const nFull = full7b.vision.fullattBlockIndexes.length;
    const total = (depth - nFull) * ms(win) + nFull * ms(full);
    out.vision_tower_7b = {
      tokens: win.tokens, ms: total, tokens_per_s: win.tokens / (total / 1000),
      note: `${depth - nFull} window + ${nFull} full blocks, each timed with the patch embedding and merger (an over-estimate of their share)`,
    };
  }
  return out;
}

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  naive = naiveMatmulGflops(quick);
  console.log(`baseline: naive JS matmul ${naive.toFixed(3)} GFLOP/s (same run)`);
  const tiny = parseVlmConfig(TINY);
  const estimates: Record<string, unknown> = {};
  for (const be of backends) {
    console.log(`\n# ${be.name}: ${be.adapter} (buffer limit ${MiB(bindingLimit(be))})`);
    const guard = async <T>(config: string, fn: () => Promise<T>): Promise<T | undefined> => {
      if (args.filter && !config.includes(args.filter)) return undefined;
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
    if (be.name === 'cpu' || args.extra['no-7b']) continue;

    const x1 = await guard('7b-layer x1', () => benchLanguage(be, '7b-layer x1', released({ num_hidden_layers: 1, vocab_size: 1024 }), 'bf16', prefill7b));
    const x2 = await guard('7b-layer x2', () => benchLanguage(be, '7b-layer x2', released({ num_hidden_layers: 2, vocab_size: 1024 }), 'bf16', prefill7b));
    const full7b = released({});
    const head = await guard('7b-lm_head', () => benchHead(be, full7b.text));
    const img: Grid[] = [[1, 32, 32]];
    const win = await guard('7b-vision-block window', () => benchVision(be, '7b-vision-block window', released({}, { depth: 1, fullatt_block_indexes: [] }), 'bf16', img));
    const full = await guard('7b-vision-block full', () => benchVision(be, '7b-vision-block full', released({}, { depth: 1, fullatt_block_indexes: [0] }), 'bf16', img));
    Object.assign(estimates, estimates7b(full7b, x1, x2, head, win, full));
    console.log(`\nestimates for the released 7B on ${be.name}: ${JSON.stringify(estimates, null, 1)}`);
  }
  await benchHostSampling(152064);
  // vs_cpu: a webgpu row's tokens/s over the cpu row of the same config and part in this run
  const cpuRate = new Map(rows.filter((r) => r.backend === 'cpu' && r.weights !== 'host').map((r) => [r.name, r.tokens_per_s]));
  for (const r of rows) {
    const c = cpuRate.get(r.name);
    if (r.backend !== 'cpu' && c) r.vs_cpu = r.tokens_per_s / c;
  }
  for (const r of rows.filter((x) => x.vs_cpu !== undefined)) console.log(`${r.name.padEnd(38)} ${r.backend}: x${r.vs_cpu!.toFixed(2)} cpu`);

  writeResult(args.out, {
    date: new Date().toISOString(),
    node: process.version,
    quick,
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    buffer_limits: Object.fromEntries(backends.map((b) => [b.name, bindingLimit(b)])),
    baseline: {
      naive_js_matmul_gflops: naive,
      note: 'vs_naive_js = achieved GFLOP/s over a naive JS matmul timed in this run; vs_cpu = webgpu tokens/s over the cpu backend at the same row in this run',
    },
    rows,
    estimates,
    refused,
  });
}

runBench(main);
