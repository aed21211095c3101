// Kernel benchmarks (benchmark.js): matmul at transformer shapes, attention (prefill and
// decode), conv3d at tokenizer shapes, norms and a permute, on every available backend, each
// reported as GFLOP/s or GB/s (every row names the formula of its count) and as a ratio against a
// naive JS matmul timed in the same run. Writes bench/results/latest.json.
//
//   npm run bench                 every case, webgpu (+ cpu oracle on the small cases)
//   npm run bench -- --quick      fewer samples and smaller shapes (smoke run)
//   npm run bench -- --filter mat only cases whose name contains "mat"
//   npm run bench -- --backend cpu|webgpu|all|auto
import type { Backend } from '../src/engine/backend.js';
import type { DType } from '../src/engine/dtype.js';
import * as F from '../src/engine/ops.js';
import type { Tensor } from '../src/engine/tensor.js';
import {
  type BenchRow, benchArgs, benchBackends, measure, naiveMatmulGflops, randomTensor, runBench, writeResult,
} from './harness.js';

const args = benchArgs('latest.json');
const q = args.quick;

interface Case {
  name: string;
  shape: string;
  /** work per call: flops (for GFLOP/s) or bytes moved (for GB/s), and how it is counted */
  flops?: number;
  bytes?: number;
  formula: string;
  /** run on the CPU oracle too (small enough) */
  cpu?: boolean;
  setup: (be: Backend) => { fn: () => Tensor | Tensor[]; inputs: Tensor[] };
}

function matmulCase(M: number, K: number, N: number, wdtype: DType, opts: { cpu?: boolean } = {}): Case {
  return {
    name: `linear ${wdtype} weight`,
    shape: `M${M} K${K} N${N}`,
    flops: 2 * M * K * N,
    formula: '2*M*K*N',
    cpu: opts.cpu,
    setup: (be) => {
      const x = randomTensor(be, [M, K]);
      const w = randomTensor(be, [N, K], wdtype, 2);
      return { fn: () => F.linear(x, w), inputs: [x, w] };
    },
  };
}

/** (query, key) pairs a causal mask leaves visible: query i sees keys 0 .. i + Lk - Lq. */
function causalPairs(Lq: number, Lk: number): number {
  let n = 0;
  for (let i = 0; i < Lq; i++) n += Math.max(0, Math.min(Lk, i + Lk - Lq + 1));
  return n;
}

function attentionCase(H: number, Lq: number, Lk: number, D: number, causal: boolean): Case {
  return {
    name: Lq === 1 ? 'attention decode' : `attention${causal ? ' causal' : ''}`,
    shape: `H${H} Lq${Lq} Lk${Lk} D${D}`,
    flops: 4 * H * D * (causal ? causalPairs(Lq, Lk) : Lq * Lk),
    cpu: true,
    formula: causal ? '4*H*D*pairs, pairs = visible (query, key) pairs = Lq*(Lq+1)/2 for Lq = Lk' : '4*H*Lq*Lk*D',
    setup: (be) => {
      const qt = randomTensor(be, [1, H, Lq, D]);
      const k = randomTensor(be, [1, H, Lk, D], 'f32', 2);
      const v = randomTensor(be, [1, H, Lk, D], 'f32', 3);
      return { fn: () => F.attention(qt, k, v, { causal }), inputs: [qt, k, v] };
    },
  };
}

/** A C -> C conv3d over [T, HW, HW] frames: no padding in time, 'same' padding in space. */
function convCase(C: number, T: number, HW: number, k: [number, number, number]): Case {
  const padding: [number, number, number] = [0, (k[1] - 1) / 2, (k[2] - 1) / 2];
  const inSize = [T, HW, HW];
  // stride 1: out = in + 2 * pad - kernel + 1 along each axis (T - kT + 1 frames)
  const [oT, oH, oW] = inSize.map((n, d) => n + 2 * padding[d] - k[d] + 1);
  return {
    name: `conv3d ${k.join('x')}`,
    shape: `C${C}->${C} T${T} ${HW}x${HW}`,
    flops: 2 * C * C * k[0] * k[1] * k[2] * oT * oH * oW,
    formula: '2*Cout*Cin*kT*kH*kW*oT*oH*oW, oT = T - kT + 1',
    setup: (be) => {
      const x = randomTensor(be, [1, C, T, HW, HW]);
      const w = randomTensor(be, [C, C, ...k], 'f32', 2);
      return { fn: () => F.conv(x, w, null, { padding }), inputs: [x, w] };
    },
  };
}

function normCase(kind: 'layer' | 'rms' | 'group', rows: number, D: number): Case {
  return {
    name: `${kind} norm`,
    shape: kind === 'group' ? `N1 C${rows} S${D}` : `rows${rows} D${D}`,
    bytes: 2 * 4 * rows * D,
    formula: kind === 'group' ? '2*4*C*S bytes' : '2*4*rows*D bytes',
    setup: (be) => {
      const x = randomTensor(be, kind === 'group' ? [1, rows, D] : [rows, D]);
      const w = randomTensor(be, [kind === 'group' ? rows : D], 'f32', 2);
      const fn = kind === 'layer' ? () => F.layerNorm(x, w, null, 1e-6)
        : kind === 'rms' ? () => F.rmsNorm(x, w, 1e-6)
        : () => F.groupNorm(x, 1, w, null, 1e-6);
      return { fn, inputs: [x, w] };
    },
  };
}

function permuteCase(n: number): Case {
  const shape = [1, n / (16 * 64), 16, 64];
  return {
    name: 'permute BLHD->BHLD',
    shape: shape.join('x'),
    bytes: 2 * 4 * n,
    formula: '2*4*n bytes',
    setup: (be) => {
      const x = randomTensor(be, shape);
      return { fn: () => F.permute(x, [0, 2, 1, 3]), inputs: [x] };
    },
  };
}

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
  const backends = await benchBackends(args.backend);
  const naive = naiveMatmulGflops(q);
  console.log(`baseline: naive JS matmul ${naive.toFixed(2)} GFLOP/s (same run)`);
  const rows: BenchRow[] = [];
  for (const be of backends) {
    console.log(`\n# ${be.name}: ${be.adapter}`);
    for (const c of CASES) {
      if (args.filter && !c.name.includes(args.filter)) continue;
      if (be.name === 'cpu' && !c.cpu) continue;
      const { fn, inputs } = c.setup(be);
      let s: number;
      try {
        s = await measure(be, fn, be.name === 'cpu' ? 1 : 4, q);
      } catch (e) {
        console.log(`${c.name.padEnd(24)} ${c.shape.padEnd(24)} error: ${(e as Error).message.split('\n')[0]}`);
        continue;
      } finally {
        for (const t of inputs) t.dispose();
      }
      const row: BenchRow = { name: c.name, backend: be.name, adapter: be.adapter, shape: c.shape, formula: c.formula, seconds: s, ms: s * 1000 };
      let rate: string;
      if (c.flops !== undefined) {
        row.gflops = c.flops / s / 1e9;
        row.vs_naive_js = row.gflops / naive;
        rate = `${row.gflops.toFixed(2).padStart(8)} GFLOP/s`;
      } else {
        row.gbps = c.bytes! / s / 1e9;
        // f32 elements moved per second against the naive matmul's flops per second
        row.vs_naive_js = c.bytes! / 8 / s / 1e9 / naive;
        rate = `${row.gbps.toFixed(2).padStart(8)} GB/s   `;
      }
      rows.push(row);
      console.log(`${c.name.padEnd(24)} ${c.shape.padEnd(24)} ${rate} ${(s * 1000).toFixed(3).padStart(10)} ms  x${(row.vs_naive_js as number).toFixed(1)} naive JS`);
    }
  }
  writeResult(args.out, { naive_js_gflops: naive, rows });
}

runBench(main);
