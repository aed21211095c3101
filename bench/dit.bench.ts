// DiT benchmarks: one denoising step = the transformer run for both guidance branches (prompt and
// negative prompt), as the samplers do with guidance > 1.
//   - the tiny Cosmos-1.0 and Predict2.5 fixture configs (test/fixtures/dit/*_forward/config.json),
//     the whole network, on every backend;
//   - one CosmosTransformerBlock at the released 2B widths (Predict2-2B: 16 heads x 128 = 2048,
//     MLP 8192, text 1024, adaLN LoRA 256; bf16 weights as released, random values) on a realistic
//     token count: the 121 x 704 x 1280 video's latent 16 x 88 x 160 patched (1, 2, 2) to
//     16 x 44 x 80 = 56320 tokens, 512 text tokens, per-frame timesteps; GPU backends only. On a
//     software adapter (llvmpipe) the token grid is cut to 2 x 8 x 16 (said in the row), and a
//     shape the adapter refuses is halved in time until it runs (also said).
// Reported: ms per step (best of the repetitions), tokens/s (latent tokens x 2 branches per
// second), GFLOP/s of the FLOP count named in each row's `formula`, and ratios against a naive JS
// matmul timed in the same run (and against the cpu backend at the tiny configs). Writes
// bench/results/dit-latest.json.
//
//   npm run bench:dit                    everything
//   npm run bench:dit -- --quick         fewer repetitions
//   npm run bench:dit -- --grid 8,44,80  the 2B block's token grid (T', H', W')
import { readFileSync } from 'node:fs';
import type { Backend } from '../src/engine/backend.js';
import type { DType } from '../src/engine/dtype.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, scope } from '../src/engine/tensor.js';
import { type CosmosTransformerConfig, hiddenSize } from '../src/models/dit/config.js';
import { RELEASED_DITS } from '../src/models/dit/released.js';
import { type CosmosForwardInputs, type CosmosTransformer3DModel, CosmosTransformer3DFamily } from '../src/models/dit/transformer.js';
import { mlpChunkTokens } from '../src/pipelines/world/sample.js';
import { type BenchRow, benchArgs, benchBackends, naiveMatmulGflops, randomValues, runBench, timeBest, writeResult } from './harness.js';

const args = benchArgs('dit-latest.json', { grid: { type: 'string' } });
const quick = args.quick;

/** Random parameters (norm weights near 1, others U(-1, 1)/sqrt(fan-in)); matrices in `dtype`. */
function randomize(m: CosmosTransformer3DModel, be: Backend, dtype: DType): void {
  let seed = 1;
  for (const p of m.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const isNorm = p.key.includes('norm') && p.shape.length === 1;
    const scale = isNorm ? 0.05 : p.shape.length >= 2 ? 1 / Math.sqrt(p.shape[p.shape.length - 1]) : 0.05;
    const v = randomValues(n, seed++, -scale, scale).map((x) => (isNorm ? 1 + x : x));
    p.set(F.fromArray(be, v, p.shape, p.shape.length >= 2 ? dtype : 'f32'));
  }
}

/** Matmul and attention FLOPs of one block forward over N tokens with S text tokens. */
const BLOCK_FORMULA = '8*N*D^2 + 4*N^2*D (self-attention) + 4*N*D^2 + 4*S*Dt*D + 4*N*S*D (cross-attention) + 4*N*D*I (MLP)';
function blockFlops(c: CosmosTransformerConfig, N: number, S: number): number {
  const D = hiddenSize(c);
  const inner = Math.trunc(D * c.mlpRatio);
  return 4 * 2 * N * D * D + 4 * N * N * D // self-attention: q k v o, scores and values
    + 2 * 2 * N * D * D + 2 * 2 * S * c.textEmbedDim * D + 4 * N * S * D // cross-attention
    + 2 * 2 * N * D * inner; // MLP
}

const MODEL_FORMULA = `layers * (${BLOCK_FORMULA}) + 2*N*Cin*P*D (patch embed) + 2*N*D*P*Cout (head) + 2*S*Cproj*Dt (text projection)`;
function modelFlops(c: CosmosTransformerConfig, N: number, S: number): number {
  const D = hiddenSize(c);
  const [pt, ph, pw] = c.patchSize;
  const cin = c.inChannels + (c.concatPaddingMask ? 1 : 0);
  const proj = c.useCrossattnProjection ? 2 * S * c.crossattnProjInChannels * c.encoderHiddenStatesChannels : 0;
  return c.numLayers * blockFlops(c, N, S) + 2 * N * cin * pt * ph * pw * D + 2 * N * D * pt * ph * pw * c.outChannels + proj;
}

interface DitRow extends BenchRow {
  /** latent [B, C, T, H, W] */
  latent: number[];
  tokens: number;
  text_tokens: number;
  weights: string;
  step_ms: number;
  /** latent tokens x 2 guidance branches per second */
  tokens_per_s: number;
  vs_naive_js: number;
  vs_cpu?: number;
  note?: string;
}

const FIXTURES = new URL('../test/fixtures/dit/', import.meta.url);

function tinyConfig(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(`${name}/config.json`, FIXTURES), 'utf8')) as Record<string, unknown>;
}

/** One full DiT step (cond + uncond forward) of a tiny fixture config. */
async function tinyStep(name: string, be: Backend, naive: number): Promise<DitRow> {
  const model = CosmosTransformer3DFamily.build(tinyConfig(name));
  const cfg = model.config;
  randomize(model, be, 'f32');
  const hasMask = name.startsWith('cosmos2');
  const C = cfg.outChannels;
  const latent = [1, C, 4, 16, 16];
  const [, , T, H, W] = latent;
  const S = 16;
  const textW = cfg.useCrossattnProjection ? cfg.crossattnProjInChannels : cfg.textEmbedDim;
  const x = F.fromArray(be, randomValues(C * T * H * W, 3), latent);
  const text = F.fromArray(be, randomValues(S * textW, 4), [1, S, textW]);
  const neg = F.fromArray(be, randomValues(S * textW, 5), [1, S, textW]);
  const mask = hasMask ? F.fromArray(be, Float32Array.from({ length: T * H * W }, (_, i) => (i < 2 * H * W ? 1 : 0)), [1, 1, T, H, W]) : null;
  const ts = hasMask ? F.fromArray(be, [1e-4, 1e-4, 0.6, 0.6], [1, 1, T, 1, 1]) : F.fromArray(be, [0.25 * Math.log(2)], [1]);
  const base: Omit<CosmosForwardInputs, 'encoderHiddenStates'> = { hiddenStates: x, timestep: ts, conditionMask: mask, fps: hasMask ? null : 30 };
  const N = (T / cfg.patchSize[0]) * (H / cfg.patchSize[1]) * (W / cfg.patchSize[2]);
  try {
    const s = await timeBest(be, () => [model.forward({ ...base, encoderHiddenStates: text }), model.forward({ ...base, encoderHiddenStates: neg })], quick ? 3 : 10);
    const gflops = (2 * modelFlops(cfg, N, S)) / s / 1e9;
    return {
      name: `tiny ${name.replace('_forward', '')} step (${cfg.numLayers} blocks, D ${hiddenSize(cfg)})`, backend: be.name, adapter: be.adapter,
      shape: `latent ${latent.join('x')}, text ${S}`, formula: `2 branches x (${MODEL_FORMULA})`, seconds: s, gflops,
      latent, tokens: N, text_tokens: S, weights: 'f32', step_ms: s * 1000, tokens_per_s: (2 * N) / s, vs_naive_js: gflops / naive,
    };
  } finally {
    for (const t of [x, text, neg, ts, ...(mask ? [mask] : [])]) t.dispose();
    model.dispose();
  }
}

/** One 2B-width CosmosTransformerBlock, both guidance branches, on a token grid (T', H', W'). */
async function block2B(be: Backend, grid: [number, number, number], naive: number, note?: string): Promise<DitRow> {
  const model = CosmosTransformer3DFamily.build({ ...RELEASED_DITS['Cosmos-Predict2-2B-Video2World'].config, num_layers: 1 });
  const cfg = model.config;
  randomize(model, be, 'bf16');
  const [pt, ph, pw] = cfg.patchSize;
  const [Tp, Hp, Wp] = grid;
  const latent = [1, cfg.outChannels, Tp * pt, Hp * ph, Wp * pw];
  const [, C, T, H, W] = latent;
  const N = Tp * Hp * Wp;
  const S = 512;
  const D = hiddenSize(cfg);
  model.ffChunkTokens = mlpChunkTokens(be, cfg, D, N);
  const made: Tensor[] = [];
  const mk = (t: Tensor) => {
    made.push(t);
    return t;
  };
  try {
    const x = mk(F.fromArray(be, randomValues(C * T * H * W, 3), latent));
    const ind = Float32Array.from({ length: T }, (_, i) => (i < 2 ? 1 : 0));
    const mask = mk(F.expand(mk(F.fromArray(be, ind, [1, 1, T, 1, 1])), [1, 1, T, H, W]));
    const ts = mk(F.fromArray(be, Array.from(ind, (v) => (v ? 1e-4 : 0.6)), [1, 1, T, 1, 1]));
    const text = mk(F.fromArray(be, randomValues(S * cfg.textEmbedDim, 4), [1, S, cfg.textEmbedDim]));
    const neg = mk(F.fromArray(be, randomValues(S * cfg.textEmbedDim, 5), [1, S, cfg.textEmbedDim]));
    // everything before the blocks once per branch, outside the timing
    const base = { hiddenStates: x, timestep: ts, conditionMask: mask, fps: 16 };
    const eC = scope(() => model.embed({ ...base, encoderHiddenStates: text }));
    const eU = scope(() => model.embed({ ...base, encoderHiddenStates: neg }));
    const block = model.transformer_blocks[0];
    const opts = { ffChunkTokens: model.ffChunkTokens };
    try {
      const s = await timeBest(be, () => [block.forward(eC.tokens, eC.cond, opts), block.forward(eU.tokens, eU.cond, opts)], quick ? 1 : 3);
      const gflops = (2 * blockFlops(cfg, N, S)) / s / 1e9;
      const notes = [note, model.ffChunkTokens ? `MLP run ${model.ffChunkTokens} tokens at a time (binding limit ${be.limits.maxBindingBytes} bytes)` : undefined].filter(Boolean);
      return {
        name: `2B block step (D ${D}, heads ${cfg.numAttentionHeads}, MLP ${Math.trunc(D * cfg.mlpRatio)})`, backend: be.name, adapter: be.adapter,
        shape: `grid ${grid.join('x')}, text ${S}`, formula: `2 branches x (${BLOCK_FORMULA})`, seconds: s, gflops,
        latent, tokens: N, text_tokens: S, weights: 'bf16', step_ms: s * 1000, tokens_per_s: (2 * N) / s, vs_naive_js: gflops / naive,
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

/** The 2B block on a GPU backend, its grid halved in time while the adapter refuses it. */
async function block2BRow(gpu: Backend, naive: number): Promise<DitRow | null> {
  let grid: [number, number, number] = [16, 44, 80];
  let note: string | undefined;
  if (args.extra.grid) grid = String(args.extra.grid).split(',').map(Number) as [number, number, number];
  else if (gpu.software) {
    grid = [2, 8, 16];
    note = `software adapter: token grid cut from 16x44x80 to ${grid.join('x')}`;
  }
  for (;;) {
    try {
      return await block2B(gpu, grid, naive, note);
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      if (grid[0] <= 1) {
        console.log(`2B block: failed at ${grid.join('x')}: ${msg}`);
        return null;
      }
      const was = grid.join('x');
      grid = [Math.floor(grid[0] / 2), grid[1], grid[2]];
      note = `${note ? `${note}; ` : ''}${was} refused (${msg.slice(0, 120)}), halved to ${grid.join('x')}`;
      console.log(`2B block: ${was} refused: ${msg}; trying ${grid.join('x')}`);
    }
  }
}

function fmt(r: DitRow): string {
  const ratio = r.vs_cpu !== undefined ? `  x${r.vs_cpu.toFixed(1)} cpu` : '';
  return `[${r.backend}] ${r.name.padEnd(46)} ${`${r.tokens} tok`.padStart(10)} ${r.step_ms.toFixed(2).padStart(11)} ms/step ${r.tokens_per_s.toFixed(0).padStart(10)} tok/s ` +
    `${r.gflops!.toFixed(2).padStart(9)} GFLOP/s  x${r.vs_naive_js.toFixed(1)} naive JS${ratio}${r.note ? `  (${r.note})` : ''}`;
}

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  const naive = naiveMatmulGflops(quick);
  console.log(`baseline: naive JS matmul ${naive.toFixed(3)} GFLOP/s (same run)`);
  const rows: DitRow[] = [];
  const keep = (r: DitRow | null) => {
    if (!r) return;
    rows.push(r);
    console.log(fmt(r));
  };
  for (const name of ['cosmos1_forward', 'cosmos2_forward']) {
    if (args.filter && !name.includes(args.filter)) continue;
    const byBackend: DitRow[] = [];
    for (const be of backends) byBackend.push(await tinyStep(name, be, naive));
    const cpuRow = byBackend.find((r) => r.backend === 'cpu');
    for (const r of byBackend) {
      if (cpuRow && r !== cpuRow) r.vs_cpu = cpuRow.step_ms / r.step_ms;
      keep(r);
    }
  }
  for (const gpu of backends.filter((b) => b.name !== 'cpu')) {
    if (args.filter && !'2B block'.includes(args.filter)) continue;
    console.log(`# ${gpu.name} adapter: ${gpu.adapter}`);
    keep(await block2BRow(gpu, naive));
  }
  if (!backends.some((b) => b.name !== 'cpu')) console.log('no GPU backend: the 2B block is skipped');
  writeResult(args.out, {
    bench: 'dit', date: new Date().toISOString(), node: process.version, quick,
    baseline: { name: 'naive JS matmul', gflops: naive },
    definitions: {
      step: 'one denoising step: the transformer (tiny: whole network; 2B: one block) for the prompt and the negative prompt',
      seconds: 'the best of the repetitions, synced',
      tokens_per_s: 'latent tokens x 2 guidance branches / step time',
      gflops: "the row's formula (N tokens, S text tokens, D hidden, Dt text width, I MLP width, P patch volume) / step time",
    },
    rows,
  });
}

runBench(main);
