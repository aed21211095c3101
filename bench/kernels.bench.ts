// Kernel benchmarks (benchmark.js): matmul at transformer shapes, attention (prefill and
// decode), conv3d at tokenizer shapes, norms and a permute, on every available backend, each
// reported as GFLOP/s or GB/s and as a ratio against a naive JS matmul timed in the same run.
// Writes bench/results/latest.json.
//
//   npm run bench                 every case, webgpu (+ cpu oracle on the small cases)
//   npm run bench -- --quick      fewer samples and smaller shapes (smoke run)
//   npm run bench -- --filter mat only cases whose name contains "mat"
import Benchmark from 'benchmark';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Backend } from '../src/engine/backend.js';
import { cpu } from '../src/engine/cpu/backend.js';
import type { DType } from '../src/engine/dtype.js';
import * as F from '../src/engine/ops.js';
import type { Tensor } from '../src/engine/tensor.js';
import { webgpu } from '../src/engine/webgpu/backend.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1] : '';
const outFile = args.includes('--out') ? args[args.indexOf('--out') + 1] : new URL('./results/latest.json', import.meta.url).pathname;

interface Row {
  name: string;
  backend: string;
  adapter: string;
  shape: string;
  gflops?: number;
  gbps?: number;
  ms: number;
  vs_naive_js: number;
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

function tensor(be: Backend, shape: number[], dtype: DType = 'f32', seed = 1): Tensor {
  return F.fromArray(be, rand(shape.reduce((a, b) => a * b, 1), seed), shape, dtype);
}

/** Mean seconds per call of fn (which enqueues work) measured by benchmark.js, synced each cycle. */
function measure(be: Backend, fn: () => Tensor | Tensor[], reps: number): Promise<number> {
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
    // warm-up (pipeline compilation) outside the measurement
    const w = [fn()].flat();
    be.sync().then(() => {
      for (const t of w) t.dispose();
      bench.run({ async: true });
    }, reject);
  });
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

async function naiveBaseline(): Promise<number> {
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
  const s = (performance.now() - t0) / 1000 / reps;
  return (2 * n * n * n) / s / 1e9;
}

interface Case {
  name: string;
  shape: string;
  /** work per call: flops (for GFLOP/s) or bytes moved (for GB/s) */
  flops?: number;
  bytes?: number;
  /** run on the CPU oracle too (small enough) */
  cpu?: boolean;
  setup: (be: Backend) => { fn: () => Tensor | Tensor[]; dispose: () => void };
}

function matmulCase(M: number, K: number, N: number, wdtype: DType, opts: { cpu?: boolean } = {}): Case {
  return {
    name: `linear ${wdtype} weight`,
    shape: `M${M} K${K} N${N}`,
    flops: 2 * M * K * N,
    cpu: opts.cpu,
    setup: (be) => {
      const x = tensor(be, [M, K]);
      const w = tensor(be, [N, K], wdtype, 2);
      return { fn: () => F.linear(x, w), dispose: () => { x.dispose(); w.dispose(); } };
    },
  };
}

function attentionCase(H: number, Lq: number, Lk: number, D: number, causal: boolean): Case {
  return {
    name: Lq === 1 ? 'attention decode' : `attention${causal ? ' causal' : ''}`,
    shape: `H${H} Lq${Lq} Lk${Lk} D${D}`,
    flops: 4 * H * Lq * Lk * D * (causal ? 0.5 : 1),
    setup: (be) => {
      const q = tensor(be, [1, H, Lq, D]);
      const k = tensor(be, [1, H, Lk, D], 'f32', 2);
      const v = tensor(be, [1, H, Lk, D], 'f32', 3);
      return { fn: () => F.attention(q, k, v, { causal }), dispose: () => { q.dispose(); k.dispose(); v.dispose(); } };
    },
  };
}

function convCase(C: number, T: number, HW: number, k: [number, number, number]): Case {
  const pad = k.map((x) => (x - 1) / 2);
  return {
    name: `conv3d ${k.join('x')}`,
    shape: `C${C}->${C} T${T} ${HW}x${HW}`,
    flops: 2 * C * C * k[0] * k[1] * k[2] * (T - 2 * 0) * HW * HW,
    setup: (be) => {
      const x = tensor(be, [1, C, T, HW, HW]);
      const w = tensor(be, [C, C, ...k], 'f32', 2);
      return { fn: () => F.conv(x, w, null, { padding: [0, pad[1], pad[2]] }), dispose: () => { x.dispose(); w.dispose(); } };
    },
  };
}

function normCase(kind: 'layer' | 'rms' | 'group', rows: number, D: number): Case {
  return {
    name: `${kind} norm`,
    shape: kind === 'group' ? `N1 C${rows} S${D}` : `rows${rows} D${D}`,
    bytes: 2 * 4 * rows * D,
    setup: (be) => {
      const x = tensor(be, kind === 'group' ? [1, rows, D] : [rows, D]);
      const w = tensor(be, [kind === 'group' ? rows : D], 'f32', 2);
      const fn = kind === 'layer' ? () => F.layerNorm(x, w, null, 1e-6)
        : kind === 'rms' ? () => F.rmsNorm(x, w, 1e-6)
        : () => F.groupNorm(x, 1, w, null, 1e-6);
      return { fn, dispose: () => { x.dispose(); w.dispose(); } };
    },
  };
}

function permuteCase(n: number): Case {
  const shape = [1, n / (16 * 64), 16, 64];
  return {
    name: 'permute BLHD->BHLD',
    shape: shape.join('x'),
    bytes: 2 * 4 * n,
    setup: (be) => {
      const x = tensor(be, shape);
      return { fn: () => F.permute(x, [0, 2, 1, 3]), dispose: () => x.dispose() };
    },
  };
}

const q = quick;
const CASES: Case[] = [
  matmulCase(q ? 128 : 256, q ? 256 : 512, q ? 256 : 512, 'f32', { cpu: true }),
  matmulCase(q ? 256 : 1024, 1024, 1024, 'f32'),
  matmulCase(q ? 256 : 1024, 1024, 1024, 'bf16'),
  matmulCase(256, 2048, 2048, 'bf16'),
  matmulCase(1, 4096, 4096, 'bf16'),
  matmulCase(1, 4096, 4096, 'f32'),
  attentionCase(4, q ? 256 : 1024, q ? 256 : 1024, 64, false),
  attentionCase(4, q ? 256 : 1024, q ? 256 : 1024, 64, true),
  attentionCase(16, 1, q ? 512 : 2048, 128, false),
  convCase(q ? 32 : 128, 5, q ? 32 : 64, [1, 3, 3]),
  convCase(q ? 32 : 128, 5, q ? 32 : 64, [3, 1, 1]),
  convCase(q ? 32 : 128, 5, q ? 32 : 64, [1, 1, 1]),
  normCase('layer', 4096, 1024),
  normCase('rms', 4096, 1024),
  normCase('group', 128, 5 * 64 * 64),
  permuteCase(q ? 1 << 20 : 1 << 22),
];

async function main(): Promise<void> {
  const backends: Backend[] = [];
  try {
    backends.push(await webgpu());
  } catch (e) {
    console.error(`webgpu: ${(e as Error).message}`);
  }
  backends.push(cpu);
  const naive = await naiveBaseline();
  console.log(`baseline: naive JS matmul ${naive.toFixed(2)} GFLOP/s (same run)`);
  const rows: Row[] = [];
  for (const be of backends) {
    console.log(`\n# ${be.name}: ${be.adapter}`);
    for (const c of CASES) {
      if (filter && !c.name.includes(filter)) continue;
      if (be.name === 'cpu' && !c.cpu) continue;
      let s: number;
      const { fn, dispose } = c.setup(be);
      try {
        s = await measure(be, fn, be.name === 'cpu' ? 1 : 4);
      } catch (e) {
        console.log(`${c.name.padEnd(24)} ${c.shape.padEnd(24)} error: ${(e as Error).message.split('\n')[0]}`);
        dispose();
        continue;
      } finally {
        // nothing
      }
      dispose();
      const row: Row = { name: c.name, backend: be.name, adapter: be.adapter, shape: c.shape, ms: s * 1000, vs_naive_js: 0 };
      let rate: string;
      if (c.flops) {
        row.gflops = c.flops / s / 1e9;
        row.vs_naive_js = row.gflops / naive;
        rate = `${row.gflops.toFixed(2).padStart(8)} GFLOP/s`;
      } else {
        row.gbps = c.bytes! / s / 1e9;
        // bandwidth cases compare time against a naive JS matmul doing the same number of bytes' worth of flops is
        // meaningless; report the ratio of throughput in elements against the naive matmul's flops instead
        row.vs_naive_js = c.bytes! / 8 / s / 1e9 / naive;
        rate = `${row.gbps.toFixed(2).padStart(8)} GB/s   `;
      }
      rows.push(row);
      console.log(`${c.name.padEnd(24)} ${c.shape.padEnd(24)} ${rate} ${row.ms.toFixed(3).padStart(10)} ms  x${row.vs_naive_js.toFixed(1)} naive JS`);
    }
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(outFile, JSON.stringify(rows, null, 2) + '\n');
  console.log(`\nwrote ${outFile}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
