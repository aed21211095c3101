// DiT benchmarks: one denoising step = the transformer run for both guidance branches (prompt and
// negative prompt), as the samplers do with guidance > 1.
//   - the tiny Cosmos-1.0 and Predict2.5 fixture configs (test/fixtures/dit/*_forward/config.json),
//     the whole network, on webgpu and on the cpu backend;
//   - one CosmosTransformerBlock at the released 2B widths (Predict2-2B: 16 heads x 128 = 2048,
//     MLP 8192, text 1024, adaLN LoRA 256; bf16 weights as released, random values) on a realistic
//     token count: the 121 x 704 x 1280 video's latent 16 x 88 x 160 patched (1, 2, 2) to
//     16 x 44 x 80 = 56320 tokens, 512 text tokens, per-frame timesteps; webgpu only. On a
//     software adapter (llvmpipe) the token grid is cut to 2 x 8 x 16 (said in the output), and a
//     shape the adapter refuses is halved in time until it runs (also said).
// Reported: ms per step, tokens/s (latent tokens x 2 branches per second), estimated GFLOP/s, and
// ratios against a naive JS matmul timed in the same run (and webgpu against cpu at the tiny
// configs). Writes bench/results/dit-latest.json.
//
//   npm run bench:dit                    everything
//   npm run bench:dit -- --quick         fewer repetitions
//   npm run bench:dit -- --grid 8,44,80  the 2B block's token grid (T', H', W')
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Backend } from '../src/engine/backend.js';
import { cpu } from '../src/engine/cpu/backend.js';
import type { DType } from '../src/engine/dtype.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, scope } from '../src/engine/tensor.js';
import { webgpu } from '../src/engine/webgpu/backend.js';
import { type CosmosTransformerConfig, hiddenSize, parseCosmosTransformerConfig } from '../src/models/dit/config.js';
import { RELEASED_DITS } from '../src/models/dit/released.js';
import { CosmosTransformer3DModel, type CosmosForwardInputs } from '../src/models/dit/transformer.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const gridArg = args.includes('--grid') ? args[args.indexOf('--grid') + 1] : undefined;
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : new URL('./results/dit-latest.json', import.meta.url).pathname;

function rand(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return a;
}

/** Random parameters (norm weights near 1, others U(-1, 1)/sqrt(fan-in)). */
function randomize(m: CosmosTransformer3DModel, be: Backend, dtype: DType): void {
  let seed = 1;
  for (const p of m.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const isNorm = p.key.includes('norm') && p.shape.length === 1;
    const v = isNorm ? rand(n, seed++, 0.05).map((x) => 1 + x) : rand(n, seed++, p.shape.length >= 2 ? 1 / Math.sqrt(p.shape[p.shape.length - 1]) : 0.05);
    p.set(F.fromArray(be, v, p.shape, p.shape.length >= 2 ? dtype : 'f32'));
  }
}

function naiveMatmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Float32Array {
  const c = new Float32Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      c[i * N + j] = s;
    }
  }
  return c;
}

/** GFLOP/s of a naive triple-loop JS matmul (the same baseline as bench/kernels.bench.ts). */
function naiveBaseline(): number {
  const n = quick ? 128 : 256;
  const a = rand(n * n, 1);
  const b = rand(n * n, 2);
  naiveMatmul(a, b, n, n, n);
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < (quick ? 300 : 1500)) {
    naiveMatmul(a, b, n, n, n);
    reps++;
  }
  return (2 * n * n * n) / ((performance.now() - t0) / 1000 / reps) / 1e9;
}

/** Matmul FLOPs of one block forward over N tokens with S text tokens. */
function blockFlops(c: CosmosTransformerConfig, N: number, S: number): number {
  const D = hiddenSize(c);
  const inner = Math.trunc(D * c.mlpRatio);
  return 4 * 2 * N * D * D + 4 * N * N * D // self-attention: q k v o, scores and values
    + 2 * 2 * N * D * D + 2 * 2 * S * c.textEmbedDim * D + 4 * N * S * D // cross-attention
    + 2 * 2 * N * D * inner; // MLP
}

function modelFlops(c: CosmosTransformerConfig, N: number, S: number): number {
  const D = hiddenSize(c);
  const [pt, ph, pw] = c.patchSize;
  const cin = c.inChannels + (c.concatPaddingMask ? 1 : 0);
  const proj = c.useCrossattnProjection ? 2 * S * c.crossattnProjInChannels * c.encoderHiddenStatesChannels : 0;
  return c.numLayers * blockFlops(c, N, S) + 2 * N * cin * pt * ph * pw * D + 2 * N * D * pt * ph * pw * c.outChannels + proj;
}

/** Mean seconds of `step` (awaiting the backend each time) after one warm-up run. */
async function timeSteps(be: Backend, step: () => Tensor[], minReps: number, budgetS: number): Promise<{ s: number; reps: number }> {
  const run = async () => {
    const outs = step();
    await be.sync();
    for (const t of outs) t.dispose();
  };
  await run();
  let reps = 0;
  const t0 = performance.now();
  while (reps < minReps || ((performance.now() - t0) / 1000 < budgetS && reps < 50)) {
    await run();
    reps++;
  }
  return { s: (performance.now() - t0) / 1000 / reps, reps };
}

interface Row {
  name: string;
  backend: string;
  adapter: string;
  /** latent [B, C, T, H, W] and the patched token grid */
  latent: number[];
  tokens: number;
  text_tokens: number;
  weights: string;
  step_ms: number;
  /** latent tokens x 2 guidance branches per second */
  tokens_per_s: number;
  gflops: number;
  vs_naive_js: number;
  vs_cpu?: number;
  reps: number;
  note?: string;
}

const FIXTURES = new URL('../test/fixtures/dit/', import.meta.url);

function tinyConfig(name: string): CosmosTransformerConfig {
  return parseCosmosTransformerConfig(JSON.parse(readFileSync(new URL(`${name}/config.json`, FIXTURES), 'utf8')));
}

/** One full DiT step (cond + uncond forward) of a tiny fixture config. */
async function tinyStep(name: string, be: Backend, naive: number): Promise<Row> {
  const cfg = tinyConfig(name);
  const model = new CosmosTransformer3DModel(cfg);
  randomize(model, be, 'f32');
  const hasMask = name.startsWith('cosmos2');
  const C = cfg.outChannels;
  const latent = [1, C, 4, 16, 16];
  const [, , T, H, W] = latent;
  const S = 16;
  const textW = cfg.useCrossattnProjection ? cfg.crossattnProjInChannels : cfg.textEmbedDim;
  const x = F.fromArray(be, rand(C * T * H * W, 3), latent);
  const text = F.fromArray(be, rand(S * textW, 4), [1, S, textW]);
  const neg = F.fromArray(be, rand(S * textW, 5), [1, S, textW]);
  const mask = hasMask ? F.fromArray(be, Float32Array.from({ length: T * H * W }, (_, i) => (i < 2 * H * W ? 1 : 0)), [1, 1, T, H, W]) : null;
  const ts = hasMask ? F.fromArray(be, [1e-4, 1e-4, 0.6, 0.6], [1, 1, T, 1, 1]) : F.fromArray(be, [0.25 * Math.log(2)], [1]);
  const base: Omit<CosmosForwardInputs, 'encoderHiddenStates'> = { hiddenStates: x, timestep: ts, conditionMask: mask, fps: hasMask ? null : 30 };
  const N = (T / cfg.patchSize[0]) * (H / cfg.patchSize[1]) * (W / cfg.patchSize[2]);
  try {
    const { s, reps } = await timeSteps(be, () => [model.forward({ ...base, encoderHiddenStates: text }), model.forward({ ...base, encoderHiddenStates: neg })], 3, quick ? 0.5 : 2);
    const gflops = (2 * modelFlops(cfg, N, S)) / s / 1e9;
    return {
      name: `tiny ${name.replace('_forward', '')} step (${cfg.numLayers} blocks, D ${hiddenSize(cfg)})`, backend: be.name, adapter: be.adapter,
      latent, tokens: N, text_tokens: S, weights: 'f32', step_ms: s * 1000, tokens_per_s: (2 * N) / s, gflops, vs_naive_js: gflops / naive, reps,
    };
  } finally {
    for (const t of [x, text, neg, ts, ...(mask ? [mask] : [])]) t.dispose();
    model.dispose();
  }
}

function isSoftware(be: Backend): boolean {
  return /llvmpipe|swiftshader|software|compatibility/i.test(be.adapter);
}

/** One 2B-width CosmosTransformerBlock, both guidance branches, on a token grid (T', H', W'). */
async function block2B(be: Backend, grid: [number, number, number], naive: number, note?: string): Promise<Row> {
  const json = { ...RELEASED_DITS['Cosmos-Predict2-2B-Video2World'].config, num_layers: 1 };
  const cfg = parseCosmosTransformerConfig(json);
  const model = new CosmosTransformer3DModel(cfg);
  randomize(model, be, 'bf16');
  const [pt, ph, pw] = cfg.patchSize;
  const [Tp, Hp, Wp] = grid;
  const latent = [1, cfg.outChannels, Tp * pt, Hp * ph, Wp * pw];
  const [, C, T, H, W] = latent;
  const N = Tp * Hp * Wp;
  const S = 512;
  const D = hiddenSize(cfg);
  const limits = (be as { ctx?: { device?: { limits?: { maxStorageBufferBindingSize?: number } } } }).ctx?.device?.limits;
  const maxBinding = limits?.maxStorageBufferBindingSize ?? Infinity;
  const inner = Math.trunc(D * cfg.mlpRatio);
  const rows = Math.floor(maxBinding / (4 * inner));
  if (N > rows) model.ffChunkTokens = rows;
  const made: Tensor[] = [];
  const mk = (t: Tensor) => (made.push(t), t);
  try {
    const x = mk(F.fromArray(be, rand(C * T * H * W, 3), latent));
    const ind = Float32Array.from({ length: T }, (_, i) => (i < 2 ? 1 : 0));
    const mask = mk(F.expand(mk(F.fromArray(be, ind, [1, 1, T, 1, 1])), [1, 1, T, H, W]));
    const ts = mk(F.fromArray(be, Array.from(ind, (v) => (v ? 1e-4 : 0.6)), [1, 1, T, 1, 1]));
    const text = mk(F.fromArray(be, rand(S * cfg.textEmbedDim, 4), [1, S, cfg.textEmbedDim]));
    const neg = mk(F.fromArray(be, rand(S * cfg.textEmbedDim, 5), [1, S, cfg.textEmbedDim]));
    // everything before the blocks once per branch, outside the timing
    const base = { hiddenStates: x, timestep: ts, conditionMask: mask, fps: 16 };
    const eC = scope(() => model.embed({ ...base, encoderHiddenStates: text }));
    const eU = scope(() => model.embed({ ...base, encoderHiddenStates: neg }));
    const block = model.transformer_blocks[0];
    const opts = { ffChunkTokens: model.ffChunkTokens };
    try {
      const { s, reps } = await timeSteps(be, () => [block.forward(eC.tokens, eC.cond, opts), block.forward(eU.tokens, eU.cond, opts)], quick ? 1 : 2, quick ? 1 : 5);
      const gflops = (2 * blockFlops(cfg, N, S)) / s / 1e9;
      const notes = [note, model.ffChunkTokens ? `MLP run ${model.ffChunkTokens} tokens at a time (binding limit ${maxBinding} bytes)` : undefined].filter(Boolean);
      return {
        name: `2B block step (D ${D}, heads ${cfg.numAttentionHeads}, MLP ${inner})`, backend: be.name, adapter: be.adapter, latent, tokens: N,
        text_tokens: S, weights: 'bf16', step_ms: s * 1000, tokens_per_s: (2 * N) / s, gflops, vs_naive_js: gflops / naive, reps,
        ...(notes.length ? { note: notes.join('; ') } : {}),
      };
    } finally {
      for (const e of [eC, eU]) {
        const c = e.cond;
        // (the RoPE tables belong to the model's cache)
        for (const t of [e.tokens, c.text, c.act, c.temb, ...(c.extraPosEmb ? [c.extraPosEmb] : [])]) t.dispose();
      }
    }
  } finally {
    for (const t of made) t.dispose();
    model.dispose();
  }
}

function fmt(r: Row): string {
  const ratio = r.vs_cpu !== undefined ? `  x${r.vs_cpu.toFixed(1)} cpu` : '';
  return `${r.name.padEnd(46)} ${`${r.tokens} tok`.padStart(10)} ${r.step_ms.toFixed(2).padStart(11)} ms/step ${r.tokens_per_s.toFixed(0).padStart(10)} tok/s ` +
    `${r.gflops.toFixed(2).padStart(9)} GFLOP/s  x${r.vs_naive_js.toFixed(1)} naive JS${ratio}${r.note ? `  (${r.note})` : ''}`;
}

async function main(): Promise<void> {
  let gpu: Backend | null = null;
  try {
    gpu = await webgpu();
  } catch (e) {
    console.error(`webgpu: ${(e as Error).message.split('\n')[0]}`);
  }
  const naive = naiveBaseline();
  console.log(`baseline: naive JS matmul ${naive.toFixed(3)} GFLOP/s (same run)`);
  const rows: Row[] = [];
  for (const name of ['cosmos1_forward', 'cosmos2_forward']) {
    const c = await tinyStep(name, cpu, naive);
    rows.push(c);
    console.log(`[cpu] ${fmt(c)}`);
    if (gpu) {
      const g = await tinyStep(name, gpu, naive);
      g.vs_cpu = c.step_ms / g.step_ms;
      rows.push(g);
      console.log(`[webgpu] ${fmt(g)}`);
    }
  }
  if (gpu) {
    console.log(`# webgpu adapter: ${gpu.adapter}`);
    let grid: [number, number, number] = [16, 44, 80];
    let note: string | undefined;
    if (gridArg) grid = gridArg.split(',').map(Number) as [number, number, number];
    else if (isSoftware(gpu)) {
      grid = [2, 8, 16];
      note = `software adapter: token grid cut from 16x44x80 to ${grid.join('x')}`;
    }
    for (;;) {
      try {
        const r = await block2B(gpu, grid, naive, note);
        rows.push(r);
        console.log(`[webgpu] ${fmt(r)}`);
        break;
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0];
        if (grid[0] <= 1) {
          console.log(`2B block: failed at ${grid.join('x')}: ${msg}`);
          break;
        }
        const was = grid.join('x');
        grid = [Math.floor(grid[0] / 2), grid[1], grid[2]];
        note = `${note ? `${note}; ` : ''}${was} refused (${msg.slice(0, 120)}), halved to ${grid.join('x')}`;
        console.log(`2B block: ${was} refused: ${msg}; trying ${grid.join('x')}`);
      }
    }
  } else {
    console.log('no WebGPU adapter: the 2B block (webgpu only) is skipped');
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(outFile, JSON.stringify({
    bench: 'dit', date: new Date().toISOString(), node: process.version, quick,
    baseline: { name: 'naive JS matmul', gflops: naive },
    definitions: {
      step: 'one denoising step: the transformer (tiny: whole network; 2B: one block) for the prompt and the negative prompt',
      tokens_per_s: 'latent tokens x 2 guidance branches / step time',
      gflops: 'estimated matmul + attention FLOPs of the step / step time',
    },
    rows,
  }, null, 2) + '\n');
  console.log(`\nwrote ${outFile}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
