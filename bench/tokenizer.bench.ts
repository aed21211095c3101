// Tokenizer benchmarks (benchmark.js): encode and decode throughput in frames/s of
// - the tiny trained tokenizers (weights/cosmos-tokenizer-tiny-{cv,dv}4x8x8) on 17x64x64 clips
//   (the sample clips' size), on the CPU backend and on WebGPU;
// - the released CV8x8x8 architecture (src/models/tokenizer/released.ts, 105.7M parameters)
//   with random weights on 17 frames of 256x256, WebGPU only (the CPU oracle would take minutes
//   per clip). If a buffer it needs is larger than the adapter's maxStorageBufferBindingSize,
//   the row says so instead of a timing.
// Every row is also given as a ratio (pixels/s) against a baseline measured in the same run: the
// CPU backend encoding a 17x64x64 clip with the tiny CV tokenizer. Writes
// bench/results/tokenizer-latest.json.
//
//   npm run bench:tokenizer                  every case
//   npm run bench:tokenizer -- --quick       fewer samples; the CV8x8x8 case on 9x64x64 (a smoke run)
//   npm run bench:tokenizer -- --filter dv   only cases whose name contains "dv"
import Benchmark from 'benchmark';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/engine/backend.js';
import { cpu } from '../src/engine/cpu/backend.js';
import type { Module } from '../src/engine/module.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, numel } from '../src/engine/tensor.js';
import { type WebGpuBackend, webgpu } from '../src/engine/webgpu/backend.js';
import './harness.js';
import { RELEASED_TOKENIZERS, buildTokenizer, loadTokenizer } from '../src/models/tokenizer/index.js';
import type { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from '../src/models/tokenizer/video.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1] : '';
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : fileURLToPath(new URL('./results/tokenizer-latest.json', import.meta.url));
const WEIGHTS = fileURLToPath(new URL('../weights/', import.meta.url));

type VideoModel = CausalContinuousVideoTokenizer | CausalDiscreteVideoTokenizer;

interface Row {
  name: string;
  op: 'encode' | 'decode';
  backend: string;
  adapter: string;
  weights: 'trained' | 'random';
  /** frames x height x width of the clip */
  clip: string;
  seconds: number | null;
  frames_per_s: number | null;
  megapixels_per_s: number | null;
  /** pixels/s over the baseline's pixels/s */
  vs_baseline: number | null;
  /** the largest GPU buffer the case asked for, bytes (webgpu) */
  largest_buffer?: number;
  error?: string;
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** A smooth-ish clip in [-1, 1]: [1, 3, T, H, W]. */
function clip(T: number, H: number, W: number): Float32Array {
  const a = new Float32Array(3 * T * H * W);
  let i = 0;
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < T; t++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) a[i++] = Math.sin(0.11 * x + 0.07 * y * (c + 1) + 0.3 * t) * 0.9;
      }
    }
  }
  return a;
}

/** Random weights: norm scales near 1, other vectors small, matrices scaled by 1/sqrt(fan-in). */
function randomize(model: Module, be: Backend): void {
  let k = 1;
  for (const p of model.parameters()) {
    const n = numel(p.shape);
    const r = rand(n, k++);
    const isNorm = /norm/.test(p.key) && p.shape.length === 1;
    const fanIn = p.shape.length > 1 ? numel(p.shape.slice(1)) : 1;
    for (let i = 0; i < n; i++) {
      r[i] = isNorm ? (p.name === 'weight' ? 1 + 0.1 * r[i] : 0.1 * r[i]) : p.shape.length === 1 ? 0.05 * r[i] : (1.5 * r[i]) / Math.sqrt(fanIn);
    }
    p.set(F.fromArray(be, r, p.shape));
  }
}

/** Mean seconds per call of fn (which enqueues work) measured by benchmark.js, synced each cycle; one warm-up call first. */
function measure(be: Backend, fn: () => Tensor[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark({
      defer: true,
      minSamples: quick ? 1 : 3,
      maxTime: quick ? 0 : 10,
      initCount: 1,
      fn: (deferred: { resolve: () => void }) => {
        let outs: Tensor[];
        try {
          outs = fn();
        } catch (e) {
          reject(e);
          return;
        }
        be.sync().then(() => {
          for (const t of outs) t.dispose();
          deferred.resolve();
        }, reject);
      },
      onComplete: function (this: Benchmark) {
        resolve(this.stats.mean);
      },
      onError: (e: unknown) => reject(e),
    });
    // warm-up (pipeline compilation, JIT) outside the measurement
    let w: Tensor[];
    try {
      w = fn();
    } catch (e) {
      reject(e);
      return;
    }
    be.sync().then(() => {
      for (const t of w) t.dispose();
      bench.run({ async: true });
    }, reject);
  });
}

/** Track the largest buffer the WebGPU context is asked for (wraps its allocator once). */
function bufferWatch(gpu: WebGpuBackend | null): { largest: () => number; reset: () => void } {
  let largest = 0;
  if (gpu) {
    const ctx = gpu.ctx;
    const orig = ctx.createBuffer.bind(ctx);
    ctx.createBuffer = (bytes: number) => {
      largest = Math.max(largest, bytes);
      return orig(bytes);
    };
  }
  return { largest: () => largest, reset: () => { largest = 0; } };
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

interface Case {
  name: string;
  weights: 'trained' | 'random';
  T: number;
  H: number;
  W: number;
  backends: ('cpu' | 'webgpu')[];
  load: (be: Backend) => Promise<VideoModel>;
}

const tiny = (m: 'cv' | 'dv'): Case => ({
  name: `tiny ${m.toUpperCase()}4x8x8`,
  weights: 'trained',
  T: 17,
  H: 64,
  W: 64,
  backends: ['cpu', 'webgpu'],
  load: async (be) => (await loadTokenizer(`${WEIGHTS}cosmos-tokenizer-tiny-${m}4x8x8`, be)) as VideoModel,
});

const REAL = quick ? { T: 9, H: 64, W: 64 } : { T: 17, H: 256, W: 256 };
const CASES: Case[] = [
  tiny('cv'),
  tiny('dv'),
  {
    name: 'CV8x8x8 (released config)',
    weights: 'random',
    ...REAL,
    backends: ['webgpu'],
    load: async (be) => {
      const model = buildTokenizer(RELEASED_TOKENIZERS.CV8x8x8.config as Record<string, unknown>) as VideoModel;
      randomize(model, be);
      return model;
    },
  },
];

function encodeFn(model: VideoModel, x: Tensor): () => Tensor[] {
  return model.kind === 'CV' ? () => [model.encode(x)] : () => {
    const { indices, codes } = model.encode(x);
    return [indices, codes];
  };
}

/** The decoder's input, kept: CV latent, DV token ids. */
function decodeFn(model: VideoModel, x: Tensor): { fn: () => Tensor[]; dispose: () => void } {
  if (model.kind === 'CV') {
    const z = model.encode(x).keep();
    return { fn: () => [model.decode(z)], dispose: () => z.dispose() };
  }
  const { indices, codes } = model.encode(x);
  codes.dispose();
  indices.keep();
  return { fn: () => [model.decodeIndices(indices)], dispose: () => indices.dispose() };
}

async function main(): Promise<void> {
  const backends: Backend[] = [cpu];
  let gpu: WebGpuBackend | null = null;
  try {
    gpu = await webgpu();
    backends.push(gpu);
  } catch (e) {
    console.error(`webgpu: ${(e as Error).message.split('\n')[0]} (webgpu rows skipped)`);
  }
  const gpuLimit = gpu ? gpu.ctx.device.limits.maxStorageBufferBindingSize : 0;
  const watch = bufferWatch(gpu);
  for (const be of backends) {
    console.log(`# ${be.name}: ${be.adapter}${be.name === 'webgpu' ? `, maxStorageBufferBindingSize ${MiB(gpuLimit)}` : ''}`);
  }
  if (quick) console.log('# --quick: fewer samples, CV8x8x8 on 9x64x64 instead of 17x256x256');
  if (gpu && !quick && /llvmpipe|swiftshader|software/i.test(gpu.adapter)) {
    console.log('# note: a software adapter; the CV8x8x8 17x256x256 case takes a long time here (tens of minutes per call)');
  }

  // the baseline, measured first (also when --filter leaves its case out)
  const BASE = CASES[0];
  const baseModel = await BASE.load(cpu);
  const baseX = F.fromArray(cpu, clip(BASE.T, BASE.H, BASE.W), [1, 3, BASE.T, BASE.H, BASE.W]);
  const baselineSeconds = await measure(cpu, encodeFn(baseModel, baseX));
  baseX.dispose();
  baseModel.dispose();
  const baselinePxPerS = (BASE.T * BASE.H * BASE.W) / baselineSeconds;
  console.log(`\nbaseline (same run): ${BASE.name} encode on cpu, ${BASE.T}x${BASE.H}x${BASE.W}: ${(BASE.T / baselineSeconds).toFixed(2)} frames/s, ${(baselinePxPerS / 1e6).toFixed(3)} Mpx/s`);

  const rows: Row[] = [];
  const header = `${'case'.padEnd(27)} ${'op'.padEnd(6)} ${'backend'.padEnd(7)} ${'clip'.padEnd(10)} ${'s/clip'.padStart(8)} ${'frames/s'.padStart(9)} ${'Mpx/s'.padStart(8)}  vs baseline`;
  console.log(`\n${header}`);
  for (const c of CASES) {
    if (filter && !c.name.toLowerCase().includes(filter.toLowerCase())) continue;
    for (const be of backends) {
      if (!c.backends.includes(be.name as 'cpu' | 'webgpu')) continue;
      const clipText = `${c.T}x${c.H}x${c.W}`;
      const base = { name: c.name, backend: be.name, adapter: be.adapter, weights: c.weights, clip: clipText };
      let model: VideoModel | null = null;
      let x: Tensor | null = null;
      try {
        model = await c.load(be);
        x = F.fromArray(be, clip(c.T, c.H, c.W), [1, 3, c.T, c.H, c.W]);
        for (const op of ['encode', 'decode'] as const) {
          let dispose = () => {};
          try {
            let fn: () => Tensor[];
            if (op === 'encode') fn = encodeFn(model, x);
            else ({ fn, dispose } = decodeFn(model, x));
            watch.reset();
            const s = c === BASE && op === 'encode' && be === cpu ? baselineSeconds : await measure(be, fn);
            const pxPerS = (c.T * c.H * c.W) / s;
            const row: Row = {
              ...base, op, seconds: s, frames_per_s: c.T / s, megapixels_per_s: pxPerS / 1e6, vs_baseline: pxPerS / baselinePxPerS,
            };
            if (be.name === 'webgpu') row.largest_buffer = watch.largest();
            rows.push(row);
            console.log(
              `${c.name.padEnd(27)} ${op.padEnd(6)} ${be.name.padEnd(7)} ${clipText.padEnd(10)} ${s.toFixed(3).padStart(8)} ` +
                `${(c.T / s).toFixed(2).padStart(9)} ${(pxPerS / 1e6).toFixed(3).padStart(8)}  x${(pxPerS / baselinePxPerS).toFixed(2)}`,
            );
          } catch (e) {
            rows.push(failure(base, op, e, be, watch.largest(), gpuLimit));
          } finally {
            dispose();
          }
        }
      } catch (e) {
        rows.push(failure(base, 'encode', e, be, watch.largest(), gpuLimit));
      } finally {
        x?.dispose();
        model?.dispose();
      }
    }
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const result = {
    bench: 'tokenizer',
    date: new Date().toISOString(),
    quick,
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    max_storage_buffer_binding_size: gpuLimit || null,
    baseline: { what: 'tiny CV4x8x8 encode, 17x64x64, cpu backend, same run', megapixels_per_s: baselinePxPerS / 1e6 },
    rows,
  };
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nwrote ${outFile}`);
}

function failure(base: Omit<Row, 'op' | 'seconds' | 'frames_per_s' | 'megapixels_per_s' | 'vs_baseline'>, op: 'encode' | 'decode', e: unknown, be: Backend, largest: number, limit: number): Row {
  const msg = ((e as Error).message ?? String(e)).split('\n')[0];
  const tooBig = be.name === 'webgpu' && (largest > limit || /binding ?size|maxStorageBufferBindingSize|max.*buffer.*size/i.test(msg));
  const text = tooBig
    ? `does not fit: a buffer of ${MiB(largest)} > this adapter's maxStorageBufferBindingSize ${MiB(limit)} (${msg.slice(0, 160)})`
    : `error: ${msg.slice(0, 240)}`;
  console.log(`${base.name.padEnd(27)} ${op.padEnd(6)} ${be.name.padEnd(7)} ${base.clip.padEnd(10)} ${text}`);
  return { ...base, op, seconds: null, frames_per_s: null, megapixels_per_s: null, vs_baseline: null, largest_buffer: largest || undefined, error: text };
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
