// Kernel benchmarks (benchmark.js): matmul at transformer shapes, attention (prefill, causal and
// decode), conv3d at tokenizer shapes, norms and a permute, on every available backend, each
// reported as GFLOP/s or GB/s and as a ratio against a naive JS matmul timed in the same run;
// with the GPU kernel time beside the wall time where the adapter has timestamp queries. The rows
// come from bench/kernel-cases.ts (the op registry's factories, each row with its formula).
// Writes bench/results/latest.json.
//
//   npm run bench                 every case, webgpu (+ cpu oracle on the small cases)
//   npm run bench -- --quick      fewer samples and smaller shapes (smoke run)
//   npm run bench -- --large      also the real-GPU shapes (added by themselves on a hardware adapter
//                                 unless --quick): matmul 4096^3, attention seq 4096 head 128, norms
//                                 of 256 MiB
//   npm run bench -- --filter mat only cases whose name contains "mat"
//   npm run bench -- --backend cpu|webgpu|all|auto
import { benchKernels, dispatchOverheadRow, kernelCases } from './kernel-cases.js';
import { benchArgs, benchBackends, naiveMatmulGflops, runBench, writeResult } from './harness.js';

async function main(): Promise<void> {
  const args = benchArgs('latest.json', { large: { type: 'boolean' } });
  const backends = await benchBackends(args.backend);
  const naive = naiveMatmulGflops(args.quick);
  console.log(`baseline: naive JS matmul ${naive.toFixed(2)} GFLOP/s (same run)`);
  const rows = await benchKernels(backends, kernelCases(args.quick), {
    quick: args.quick, large: args.extra.large === true, filter: args.filter, naive, log: (l) => console.log(l),
  });
  if (!args.filter || 'dispatch overhead'.includes(args.filter)) {
    console.log('');
    for (const be of backends) rows.push(await dispatchOverheadRow(be, { quick: args.quick, log: (l) => console.log(`${l}   (${be.name})`) }));
  }
  writeResult(args.out, { naive_js_gflops: naive, rows });
}

runBench(main);
