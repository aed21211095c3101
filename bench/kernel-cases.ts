// The kernel bench's rows and their timing, shared by bench/kernels.bench.ts (npm run bench) and
// bench/device-run.ts. Every row is built by a factory of the op registry (src/conform/op-cases),
// the same code that `cosmos-ts check-ops` and test/ops/registry.test.ts check, and states the
// FLOP or byte formula of that factory. The registry's own checked cases are too small to time
// (chosen for awkward sizes, not throughput), so the rows use the factories at these shapes.
import {
  type OpCase, adaLnCase, attentionCase, convCase, linearCase, normCase, permuteCase,
} from '../src/conform/op-cases/index.js';
import type { Backend } from '../src/engine/backend.js';
import type { DType } from '../src/engine/dtype.js';
import * as F from '../src/engine/ops.js';
import type { Tensor } from '../src/engine/tensor.js';
import { type BenchRow, gpuSeconds, measure } from './harness.js';

export interface KernelCase {
  /** the row's name (what --filter matches) */
  name: string;
  c: OpCase;
  /** run on the CPU oracle too (small enough) */
  cpu?: boolean;
  /** only on a hardware adapter (or with --large) */
  large?: boolean;
}

const linear = (M: number, K: number, N: number, w: DType, o: { cpu?: boolean; large?: boolean } = {}): KernelCase =>
  ({ name: `linear ${w} weight`, c: linearCase(M, K, N, w), ...o });

const attention = (H: number, Lq: number, Lk: number, D: number, causal: boolean, large = false): KernelCase =>
  // the CPU oracle's row too (the issue's bar: every WebGPU attention row faster than the oracle's of the same shape)
  ({ name: Lq === 1 ? 'attention decode' : `attention${causal ? ' causal' : ''}`, c: attentionCase({ Hq: H, Lq, Lk, D, causal }), large, cpu: !large });

/** A C -> C conv3d over [T, HW, HW] frames: no padding in time, 'same' padding in space (T - kT + 1 output frames). */
const conv3d = (C: number, T: number, HW: number, k: [number, number, number], large = false): KernelCase => ({
  name: `conv3d ${k.join('x')}`,
  c: convCase({ Cin: C, Cout: C, size: [T, HW, HW], kernel: k, padding: [0, (k[1] - 1) / 2, (k[2] - 1) / 2] }),
  large,
  cpu: !large,
});

const norm = (kind: 'layer' | 'rms' | 'group', shape: number[], large = false): KernelCase =>
  ({ name: `${kind} norm`, c: normCase({ kind, shape, groups: 1, bias: false }), large, cpu: !large });

const permute = (n: number, large = false): KernelCase =>
  ({ name: 'permute BLHD->BHLD', c: permuteCase([1, n / (16 * 64), 16, 64], [0, 2, 1, 3]), large });

/** The rows: `quick` shrinks the default shapes; the large rows are for real GPUs. */
export function kernelCases(quick: boolean): KernelCase[] {
  const q = quick;
  return [
    linear(q ? 128 : 256, q ? 256 : 512, q ? 256 : 512, 'f32', { cpu: true }),
    linear(q ? 256 : 1024, 1024, 1024, 'f32'),
    linear(q ? 256 : 1024, 1024, 1024, 'bf16'),
    linear(256, 2048, 2048, 'bf16'),
    linear(1, 4096, 4096, 'bf16'),
    linear(1, 4096, 4096, 'f32'),
    attention(4, q ? 256 : 1024, q ? 256 : 1024, 64, false),
    attention(4, q ? 256 : 1024, q ? 256 : 1024, 64, true),
    attention(16, 1, q ? 512 : 2048, 128, false),
    conv3d(q ? 32 : 128, 5, q ? 32 : 64, [1, 3, 3]),
    conv3d(q ? 32 : 128, 5, q ? 32 : 64, [3, 1, 1]),
    conv3d(q ? 32 : 128, 5, q ? 32 : 64, [1, 1, 1]),
    conv3d(q ? 16 : 64, 5, q ? 16 : 32, [3, 3, 3]),
    norm('layer', [4096, 1024]),
    norm('rms', [4096, 1024]),
    norm('group', [1, 128, 5 * 64 * 64]),
    // the fused forms the models call: the tokenizer's per-frame norm -> SiLU, the DiT's adaLN
    { name: 'group norm frames+silu', c: normCase({ kind: 'group', shape: [1, 128, 5, 64 * 64], groups: 1, bias: true, silu: true, perFrame: true }), cpu: true },
    { name: 'adaLN norm', c: adaLnCase(1, 4096, 1024, 1, 4), cpu: true },
    // the Wan VAE's channel RMS norm -> SiLU
    { name: 'l2 channel norm+silu', c: normCase({ kind: 'l2', shape: [1, 128, 5, 64 * 64], silu: true }), cpu: true },
    permute(q ? 1 << 20 : 1 << 22),
    // real-GPU sizes: compute-bound matmul / attention / conv, bandwidth-bound norms (256 MiB of f32 in)
    linear(4096, 4096, 4096, 'f32', { large: true }),
    linear(4096, 4096, 4096, 'bf16', { large: true }),
    attention(16, 4096, 4096, 128, false, true),
    attention(16, 4096, 4096, 128, true, true),
    attention(32, 1, 8192, 128, false, true),
    conv3d(256, 5, 128, [1, 3, 3], true),
    conv3d(256, 5, 128, [3, 1, 1], true),
    conv3d(128, 5, 64, [3, 3, 3], true),
    norm('layer', [16384, 4096], true),
    norm('rms', [16384, 4096], true),
    norm('group', [1, 512, 16 * 64 * 64], true),
    permute(1 << 26, true),
  ];
}

export interface KernelBenchOptions {
  quick: boolean;
  /** run the large rows on a software adapter too */
  large: boolean;
  filter: string;
  /** naive JS matmul GFLOP/s of this run (the yardstick) */
  naive: number;
  log: (line: string) => void;
  /** told of each case that could not run ("<name> <shape>: <message>"); the row is left out */
  onError?: (what: string) => void;
}

/** Time every case on every backend; one row each (a case that throws is printed and skipped). */
export async function benchKernels(backends: readonly Backend[], cases: readonly KernelCase[], o: KernelBenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const be of backends) {
    o.log(`\n# ${be.name}: ${be.adapter}`);
    const large = o.large || (!o.quick && be.name !== 'cpu' && !be.software);
    for (const k of cases) {
      if (o.filter && !k.name.includes(o.filter)) continue;
      if (be.name === 'cpu' && !k.cpu) continue;
      if (k.large && !large) continue;
      const { inputs, run } = k.c.setup(be, 1);
      const fn = run as () => Tensor | Tensor[];
      const reps = be.name === 'cpu' ? 1 : 4;
      let s: number;
      let gpu: number | null;
      try {
        s = await measure(be, fn, reps, o.quick);
        gpu = await gpuSeconds(be, fn, reps);
      } catch (e) {
        const msg = (e as Error).message.split('\n')[0];
        o.log(`${k.name.padEnd(24)} ${k.c.shape.padEnd(34)} error: ${msg}`);
        o.onError?.(`${k.name} ${k.c.shape}: ${msg}`);
        continue;
      } finally {
        for (const t of inputs) t.dispose();
      }
      const row: BenchRow = {
        name: k.name, op: k.c.op, backend: be.name, adapter: be.adapter, shape: k.c.shape, dtype: k.c.dtype,
        formula: k.c.formula ?? '', seconds: s, ms: s * 1000, gpu_seconds: gpu,
      };
      let rate: string;
      if (k.c.flops !== undefined) {
        row.flops = k.c.flops;
        row.gflops = k.c.flops / s / 1e9;
        if (gpu) row.gpu_gflops = k.c.flops / gpu / 1e9;
        row.vs_naive_js = row.gflops / o.naive;
        rate = `${row.gflops.toFixed(2).padStart(9)} GFLOP/s`;
      } else {
        row.bytes = k.c.bytes!;
        row.gbps = k.c.bytes! / s / 1e9;
        if (gpu) row.gpu_gbps = k.c.bytes! / gpu / 1e9;
        // f32 elements moved per second against the naive matmul's flops per second
        row.vs_naive_js = k.c.bytes! / 8 / s / 1e9 / o.naive;
        rate = `${row.gbps.toFixed(2).padStart(9)} GB/s   `;
      }
      rows.push(row);
      const gpuText = gpu === null ? '' : `  gpu ${(gpu * 1000).toFixed(3)} ms (${(row.gpu_gflops ?? row.gpu_gbps)!.toFixed(2)} ${row.gpu_gflops ? 'GFLOP/s' : 'GB/s'})`;
      o.log(`${k.name.padEnd(24)} ${k.c.shape.padEnd(34)} ${rate} ${(s * 1000).toFixed(3).padStart(10)} ms  x${(row.vs_naive_js as number).toFixed(1)} naive JS${gpuText}`);
    }
  }
  return rows;
}

/** dispatches per timed call of the overhead row */
const OVERHEAD_DISPATCHES = 512;

/**
 * The fixed cost of one dispatch: OVERHEAD_DISPATCHES chained 4-element adds queued in one call and
 * synced once, wall time per dispatch (recording, submission in the backend's batches, the
 * adapter's launch; the arithmetic is nil). What a model pays per op beyond its kernel's time, so
 * the figure that says when fusing two ops pays.
 */
export async function dispatchOverheadRow(be: Backend, o: Pick<KernelBenchOptions, 'quick' | 'log'>): Promise<BenchRow> {
  const x = F.fromArray(be, new Float32Array([1, 2, 3, 4]), [4]);
  const fn = () => {
    let y = F.add(x, x);
    for (let i = 1; i < OVERHEAD_DISPATCHES; i++) {
      const z = F.add(y, x);
      y.dispose();
      y = z;
    }
    return y;
  };
  try {
    const s = await measure(be, fn, be.name === 'cpu' ? 2 : 4, o.quick);
    const gpu = await gpuSeconds(be, fn, 1);
    const us = (s / OVERHEAD_DISPATCHES) * 1e6;
    const gpuText = gpu === null ? '' : `  gpu ${((gpu / OVERHEAD_DISPATCHES) * 1e6).toFixed(2)} us per kernel`;
    o.log(`${'dispatch overhead'.padEnd(24)} ${`${OVERHEAD_DISPATCHES} x add [4]`.padEnd(34)} ${us.toFixed(2).padStart(9)} us/dispatch${gpuText}`);
    return {
      name: 'dispatch overhead', op: 'add', backend: be.name, adapter: be.adapter, shape: `${OVERHEAD_DISPATCHES} x [4]`, dtype: 'f32',
      formula: `wall seconds / ${OVERHEAD_DISPATCHES} dispatches (4-element adds, one sync)`, seconds: s, ms: s * 1000, gpu_seconds: gpu,
      us_per_dispatch: us, gpu_us_per_dispatch: gpu === null ? null : (gpu / OVERHEAD_DISPATCHES) * 1e6,
    };
  } finally {
    x.dispose();
  }
}
