// The one harness of the benches and the tests: which backends to run, seeded data, timing
// (synced, best of repetitions or benchmark.js statistics), the same-run baseline, and the JSON
// rows every bench writes. Benches run as plain Node scripts; tests import the backend and data
// parts through test/harness.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Benchmark from 'benchmark';
import seedrandom from 'seedrandom';
import type { Backend } from '../src/engine/backend.js';
import type { DType } from '../src/engine/dtype.js';
import * as F from '../src/engine/ops.js';
import { type BackendChoice, cpuBackend, selectBackends, webgpuBackend, webgpuOptionsFromEnv } from '../src/engine/select.js';
import { Tensor, numel } from '../src/engine/tensor.js';
import { setFileSystem } from '../src/io/files.js';
import { nodeFileSystem } from '../src/io/node-files.js';

setFileSystem(nodeFileSystem);

export { cpuBackend, webgpuBackend };

// ------------------------------------------------------------------ data

/** Deterministic values in [lo, hi). */
export function randomValues(n: number, seed: string | number, lo = -1, hi = 1): Float32Array {
  const rng = seedrandom(String(seed));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

export function randomInts(n: number, seed: string | number, lo: number, hi: number): Int32Array {
  const rng = seedrandom(String(seed));
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor((hi - lo) * rng());
  return out;
}

/** A tensor of seeded values in [-1, 1). */
export function randomTensor(be: Backend, shape: readonly number[], dtype: DType = 'f32', seed: string | number = 1): Tensor {
  return F.fromArray(be, randomValues(numel(shape), seed), shape, dtype);
}

// ------------------------------------------------------------------ command line

export interface BenchArgs {
  quick: boolean;
  filter: string;
  out: string;
  backend: BackendChoice | 'all';
  /** flags a bench declares for itself */
  extra: Record<string, string | boolean | undefined>;
}

/**
 * The flags every bench takes (--quick, --filter, --out, --backend cpu|webgpu|all|auto) plus its
 * own; `defaultOut` is the file name under bench/results/.
 */
export function benchArgs(defaultOut: string, extra: Record<string, { type: 'string' | 'boolean' }> = {}): BenchArgs {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      filter: { type: 'string', default: '' },
      out: { type: 'string' },
      backend: { type: 'string', default: 'all' },
      ...extra,
    },
    strict: true,
  });
  const backend = values.backend as string;
  if (!['cpu', 'webgpu', 'auto', 'all'].includes(backend)) throw new Error(`--backend must be cpu, webgpu, auto or all; got ${backend}`);
  const rest: Record<string, string | boolean | undefined> = {};
  for (const k of Object.keys(extra)) rest[k] = (values as Record<string, string | boolean | undefined>)[k];
  return {
    quick: values.quick as boolean,
    filter: values.filter as string,
    out: (values.out as string | undefined) ?? fileURLToPath(new URL(`./results/${defaultOut}`, import.meta.url)),
    backend: backend as BenchArgs['backend'],
    extra: rest,
  };
}

/**
 * The backends a bench runs on, WebGPU first. 'all' runs WebGPU when an adapter can be had (the
 * reason is printed when not) and the CPU oracle. The WebGPU device follows COSMOS_WEBGPU_BACKEND /
 * COSMOS_DAWN_ENABLE / COSMOS_DAWN_DISABLE (see webgpuOptionsFromEnv).
 */
export async function benchBackends(choice: BenchArgs['backend']): Promise<Backend[]> {
  const webgpu = webgpuOptionsFromEnv(process.env);
  if (choice !== 'all') return selectBackends(choice, (why) => console.error(`note: ${why}`), webgpu);
  const out: Backend[] = [];
  try {
    out.push(await webgpuBackend(webgpu));
  } catch (e) {
    console.error(`webgpu: ${(e as Error).message.split('\n')[0]}`);
  }
  out.push(await cpuBackend());
  return out;
}

// ------------------------------------------------------------------ timing

/** Dispose what a timed body returned: a tensor or an array of them (anything else is left alone). */
function freeResult(out: unknown): void {
  for (const t of [out].flat()) if (t instanceof Tensor) t.dispose();
}

/**
 * Best-of-`reps` seconds of `body` (which enqueues work and may return tensors to free), synced
 * every repetition after one warm-up call (pipeline compilation; `warmup: false` skips it where
 * nothing compiles and one call is long). The minimum, not the mean: on a shared machine other
 * processes only ever add time.
 */
export async function timeBest(be: Backend, body: () => unknown, reps: number, o: { warmup?: boolean } = {}): Promise<number> {
  if (o.warmup ?? true) {
    freeResult(body());
    await be.sync();
  }
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const out = body();
    await be.sync();
    best = Math.min(best, (performance.now() - t0) / 1000);
    freeResult(out);
  }
  return best;
}

/**
 * Device seconds per call of `fn` from timestamp queries (Backend.timeKernels): the kernels of
 * `reps` calls recorded in one measurement, their summed pass time divided by `reps`. Null where
 * the backend cannot measure (the CPU, an adapter without 'timestamp-query'): then only wall
 * time is reported. The GPU figure excludes submission, readback and idle gaps between passes.
 */
export async function gpuSeconds(be: Backend, fn: () => unknown, reps: number): Promise<number | null> {
  if (!be.timeKernels || reps < 1) return null;
  freeResult(fn()); // compile outside the measurement
  await be.sync();
  const { result, ns } = await be.timeKernels(() => {
    const outs: unknown[] = [];
    for (let r = 0; r < reps; r++) outs.push(fn());
    return outs;
  });
  for (const o of result) freeResult(o);
  return ns === null ? null : ns / reps / 1e9;
}

/** Best-of-`reps` seconds of an async body (a whole pipeline stage that syncs by itself). */
export async function timeBestAsync(body: () => Promise<void>, reps: number): Promise<number> {
  await body();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await body();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/**
 * Mean seconds per call of `fn` (which enqueues work) by benchmark.js, `reps` calls per synced
 * cycle, after a warm-up call outside the measurement.
 */
export function measure(be: Backend, fn: () => Tensor | Tensor[], reps: number, quick: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark({
      defer: true,
      minSamples: quick ? 2 : 5,
      maxTime: quick ? 0.5 : 2,
      initCount: 1,
      fn: (deferred: { resolve: () => void }) => {
        const outs: Tensor[] = [];
        for (let i = 0; i < reps; i++) outs.push(...[fn()].flat());
        be.sync().then(() => {
          for (const t of outs) t.dispose();
          deferred.resolve();
        }, reject);
      },
      onComplete: function (this: Benchmark) {
        resolve(this.stats.mean / reps);
      },
      onError: (e: unknown) => reject(e),
    });
    let w: Tensor[];
    try {
      w = [fn()].flat();
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

// ------------------------------------------------------------------ the same-run baseline

export { naiveMatmulGflops } from './naive-matmul.js';

// ------------------------------------------------------------------ rows

/** What every row of every bench says: what ran, where, and the formula its rate comes from. */
export interface BenchRow {
  name: string;
  backend: string;
  adapter: string;
  shape: string;
  /** the FLOP or byte count behind the rate, as a formula (e.g. '2*M*K*N') */
  formula: string;
  seconds: number | null;
  gflops?: number;
  gbps?: number;
  /** kernel time from timestamp queries, where the adapter has them (else absent) */
  gpu_seconds?: number | null;
  gpu_gflops?: number;
  gpu_gbps?: number;
  [field: string]: unknown;
}

/** Write a bench's result (rows and whatever else it reports) as JSON, creating bench/results/. */
export function writeResult(path: string, result: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${path}`);
}

/** Run a bench's main: exit 0, or print the error and exit 1. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
