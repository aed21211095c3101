// Tokenizer benchmarks (benchmark.js through bench/harness.ts): encode and decode throughput in
// frames/s of
// - the tiny trained tokenizers (weights/cosmos-tokenizer-tiny-{cv,dv}4x8x8) on 17x64x64 clips
//   (the sample clips' size), on the CPU backend and on WebGPU;
// - the released CV8x8x8 architecture (src/models/tokenizer/released.ts, 105.7M parameters)
//   with random weights on 17 frames of 256x256, WebGPU only (the CPU oracle would take minutes
//   per clip). If it cannot run on the adapter (a buffer or binding over its limits), the row
//   says so instead of a timing.
// Every row gives the peak device memory of its op (backend.memory()) and a ratio (pixels/s)
// against a baseline measured in the same run: the CPU backend encoding a 17x64x64 clip with the
// tiny CV tokenizer. Then the issue-17 yardstick: the round trip (encode + decode) of the three
// sample clips (weights/samples, 17x64x64 each) through the tiny trained CV4x8x8 tokenizer, on each
// backend, with WebGPU's speed-up over the CPU backend in the same run. Writes
// bench/results/tokenizer-latest.json.
//
//   npm run bench:tokenizer                  every case
//   npm run bench:tokenizer -- --quick       fewer samples; the CV8x8x8 case on 9x64x64 (a smoke run)
//   npm run bench:tokenizer -- --filter dv   only cases whose name contains "dv"
//   npm run bench:tokenizer -- --backend cpu only the CPU rows
import { fileURLToPath } from 'node:url';
import type { Backend, BackendName } from '../src/engine/backend.js';
import type { Module } from '../src/engine/module.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, numel } from '../src/engine/tensor.js';
import { readExpected, readSample, samplesDir, tinyModelDir } from '../src/conform/samples.js';
import { buildTokenizer, loadTokenizer } from '../src/models/tokenizer/load.js';
import { RELEASED_TOKENIZERS } from '../src/models/tokenizer/released.js';
import { type VideoModel, loadVideoTokenizer, roundtrip } from '../src/pipelines/tokenizer.js';
import { type BenchRow, benchArgs, benchBackends, cpuBackend, measure, randomValues, runBench, timeBestAsync, writeResult } from './harness.js';

const args = benchArgs('tokenizer-latest.json');
const { quick } = args;
const WEIGHTS = fileURLToPath(new URL('../weights/', import.meta.url));
const FORMULA = 'frames*H*W pixels';

interface Row extends BenchRow {
  op: 'encode' | 'decode';
  weights: 'trained' | 'random';
  frames_per_s: number | null;
  megapixels_per_s: number | null;
  /** pixels/s over the baseline's pixels/s */
  vs_baseline: number | null;
  /** the most device memory live during the op (weights included), bytes */
  peak_bytes: number;
  error?: string;
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
    const r = randomValues(n, `tokenizer-${k++}`);
    const isNorm = /norm/.test(p.key) && p.shape.length === 1;
    const fanIn = p.shape.length > 1 ? numel(p.shape.slice(1)) : 1;
    for (let i = 0; i < n; i++) {
      r[i] = isNorm ? (p.name === 'weight' ? 1 + 0.1 * r[i] : 0.1 * r[i]) : p.shape.length === 1 ? 0.05 * r[i] : (1.5 * r[i]) / Math.sqrt(fanIn);
    }
    p.set(F.fromArray(be, r, p.shape));
  }
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

interface Case {
  name: string;
  weights: 'trained' | 'random';
  T: number;
  H: number;
  W: number;
  backends: BackendName[];
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

const header = `${'case'.padEnd(27)} ${'op'.padEnd(6)} ${'backend'.padEnd(7)} ${'clip'.padEnd(10)} ${'s/clip'.padStart(8)} ${'frames/s'.padStart(9)} ${'Mpx/s'.padStart(8)} ${'peak'.padStart(9)}  vs baseline`;

function rowText(r: Row): string {
  const lead = `${r.name.padEnd(27)} ${r.op.padEnd(6)} ${r.backend.padEnd(7)} ${r.shape.padEnd(10)}`;
  if (r.seconds === null) return `${lead} ${r.error}`;
  return `${lead} ${r.seconds.toFixed(3).padStart(8)} ${r.frames_per_s!.toFixed(2).padStart(9)} ${r.megapixels_per_s!.toFixed(3).padStart(8)} ${MiB(r.peak_bytes).padStart(9)}  x${r.vs_baseline!.toFixed(2)}`;
}

/** A row for an op that could not run: the error, worded as "does not fit" when it is about the adapter's limits. */
function failure(base: Pick<Row, 'name' | 'backend' | 'adapter' | 'weights' | 'shape' | 'formula'>, op: Row['op'], e: unknown, be: Backend): Row {
  const msg = ((e as Error).message ?? String(e)).split('\n')[0];
  const tooBig = be.name === 'webgpu' && /binding ?size|maxStorageBufferBindingSize|max.*buffer.*size|out of memory/i.test(msg);
  const error = tooBig
    ? `does not fit: largest binding ${MiB(be.limits.maxBindingBytes)}, peak ${MiB(be.memory().peakBytes)} (${msg.slice(0, 160)})`
    : `error: ${msg.slice(0, 240)}`;
  return { ...base, op, seconds: null, frames_per_s: null, megapixels_per_s: null, vs_baseline: null, peak_bytes: be.memory().peakBytes, error };
}

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  const cpu = await cpuBackend();
  for (const be of backends) {
    console.log(`# ${be.name}: ${be.adapter}; largest binding ${MiB(be.limits.maxBindingBytes)}${be.software ? ' (software)' : ''}`);
  }
  if (quick) console.log('# --quick: fewer samples, CV8x8x8 on 9x64x64 instead of 17x256x256');
  if (!quick && backends.some((b) => b.name === 'webgpu' && b.software)) {
    console.log('# note: a software adapter; the CV8x8x8 17x256x256 case takes a long time here (tens of minutes per call)');
  }

  // the baseline, measured first (also when --filter or --backend leave its case out)
  const BASE = CASES[0];
  const baseModel = await BASE.load(cpu);
  const baseX = F.fromArray(cpu, clip(BASE.T, BASE.H, BASE.W), [1, 3, BASE.T, BASE.H, BASE.W]);
  const baselineSeconds = await measure(cpu, encodeFn(baseModel, baseX), 1, quick);
  baseX.dispose();
  baseModel.dispose();
  const baselinePxPerS = (BASE.T * BASE.H * BASE.W) / baselineSeconds;
  console.log(`\nbaseline (same run): ${BASE.name} encode on cpu, ${BASE.T}x${BASE.H}x${BASE.W}: ${(BASE.T / baselineSeconds).toFixed(2)} frames/s, ${(baselinePxPerS / 1e6).toFixed(3)} Mpx/s`);

  const rows: Row[] = [];
  console.log(`\n${header}`);
  const push = (r: Row) => {
    rows.push(r);
    console.log(rowText(r));
  };
  for (const c of CASES) {
    if (args.filter && !c.name.toLowerCase().includes(args.filter.toLowerCase())) continue;
    for (const be of backends) {
      if (!c.backends.includes(be.name)) continue;
      const base = { name: c.name, backend: be.name, adapter: be.adapter, weights: c.weights, shape: `${c.T}x${c.H}x${c.W}`, formula: FORMULA };
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
            be.resetPeakMemory();
            const s = c === BASE && op === 'encode' && be.name === 'cpu' ? baselineSeconds : await measure(be, fn, 1, quick);
            const pxPerS = (c.T * c.H * c.W) / s;
            push({
              ...base, op, seconds: s, frames_per_s: c.T / s, megapixels_per_s: pxPerS / 1e6, vs_baseline: pxPerS / baselinePxPerS, peak_bytes: be.memory().peakBytes,
            });
          } catch (e) {
            push(failure(base, op, e, be));
          } finally {
            dispose();
          }
        }
      } catch (e) {
        push(failure(base, 'encode', e, be));
      } finally {
        x?.dispose();
        model?.dispose();
      }
    }
  }
  const samples = args.filter && !'sample clips round trip'.includes(args.filter.toLowerCase()) ? null : await sampleRoundTrips(backends);
  writeResult(args.out, {
    bench: 'tokenizer',
    date: new Date().toISOString(),
    quick,
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    limits: Object.fromEntries(backends.map((b) => [b.name, b.limits])),
    baseline: { what: 'tiny CV4x8x8 encode, 17x64x64, cpu backend, same run', formula: FORMULA, megapixels_per_s: baselinePxPerS / 1e6 },
    rows,
    sample_round_trip: samples,
  });
}

interface RoundTripRow {
  backend: BackendName;
  adapter: string;
  /** best of the repetitions, the three clips' encode + decode together */
  seconds: number;
  /** CPU seconds over these seconds, same run (null on the CPU row) */
  vs_cpu: number | null;
}

/**
 * The three sample clips through the tiny CV4x8x8 tokenizer (tokenize + detokenize, host arrays in
 * and out, as `cosmos-ts roundtrip` runs them), on every backend of the run plus the CPU backend.
 * Issue 17 measured 9.75 s on llvmpipe and 14.55 s on the CPU backend when it was filed.
 */
async function sampleRoundTrips(backends: readonly Backend[]): Promise<RoundTripRow[]> {
  const dir = samplesDir(WEIGHTS);
  const expected = await readExpected(dir);
  const clips = await Promise.all(expected.samples.map((s) => readSample(s, dir)));
  const runOn = backends.some((b) => b.name === 'cpu') ? backends : [...backends, await cpuBackend()];
  const reps = quick ? 1 : 2;
  const out: RoundTripRow[] = [];
  console.log(`
sample clips round trip: ${clips.length} x ${clips[0].shape.slice(2).join('x')}, tiny CV4x8x8, encode + decode, best of ${reps} (+1 warm-up)`);
  for (const be of runOn) {
    const model = await loadVideoTokenizer(tinyModelDir(WEIGHTS, 'cv'), be);
    try {
      const all = async () => {
        for (const c of clips) {
          const [, , frames, height, width] = c.shape;
          const r = await roundtrip(model, { data: c.input, frames, height, width, fps: { num: 8, den: 1 } }, { clamp: false });
          r.tokens.dispose();
        }
      };
      out.push({ backend: be.name, adapter: be.adapter, seconds: await timeBestAsync(all, reps), vs_cpu: null });
    } finally {
      model.dispose();
    }
  }
  const cpuSeconds = out.find((r) => r.backend === 'cpu')!.seconds;
  for (const r of out) {
    if (r.backend !== 'cpu') r.vs_cpu = cpuSeconds / r.seconds;
    console.log(`  ${r.backend.padEnd(7)} ${r.seconds.toFixed(3).padStart(8)} s${r.vs_cpu === null ? '' : `   x${r.vs_cpu.toFixed(2)} the cpu backend`}   (${r.adapter})`);
  }
  return out;
}

runBench(main);
