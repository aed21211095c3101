// The device run: everything a session with a lent GPU measures, in one process and one JSON file.
// bench/device-run.sh starts it (it finds node and the dependencies, packed or installed); run it
// by hand as `node --import tsx bench/device-run.ts [--quick] [--out FILE]`.
//
// It holds: the adapter (name, vendor, architecture, API, features, limits), check-ops over the
// whole op registry on WebGPU against the CPU oracle, conformance of every vendored fixture case on
// WebGPU, and the kernel bench rows (the real-GPU shapes too on a hardware adapter), each row with
// its FLOP / byte formula and, where the adapter has timestamp queries, the GPU kernel time.
// Exit status 0 when every check passed, 1 when a kernel or a case disagreed (the file is written
// either way), 2 when there is no WebGPU adapter or a flag is wrong.
import { existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Backend } from '../src/engine/backend.js';
import { checkOps } from '../src/pipelines/check-ops.js';
import { conform } from '../src/pipelines/conform.js';
import { cpuBackend, webgpuBackend, webgpuOptionsFromEnv } from '../src/engine/select.js';
import { naiveMatmulGflops, writeResult } from './harness.js';
import { benchKernels, kernelCases } from './kernels.bench.js';

const FIXTURES = fileURLToPath(new URL('../test/fixtures', import.meta.url));

/** JSON has no NaN or infinities: written as the strings "NaN", "Infinity", "-Infinity". */
function finiteOrText(_key: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

function usage(msg: string): never {
  console.error(`error: ${msg}`);
  process.exit(2);
}

async function main(): Promise<number> {
  let values: { quick?: boolean; out?: string; fixtures?: string; 'no-conform'?: boolean; large?: boolean };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        quick: { type: 'boolean' },
        large: { type: 'boolean' },
        out: { type: 'string' },
        fixtures: { type: 'string' },
        'no-conform': { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  const quick = values.quick === true;
  const out = resolve(values.out ?? (process.env.OUT ? `${process.env.OUT}/device-run.json` : fileURLToPath(new URL('./results/device-run-latest.json', import.meta.url))));
  const fixtures = resolve(values.fixtures ?? FIXTURES);
  if (!values['no-conform'] && !existsSync(fixtures)) usage(`--fixtures: ${fixtures}: no such folder (the vendored fixtures did not travel: unpack them or pass --no-conform)`);
  const log = (l: string) => console.error(l);

  let be: Backend;
  try {
    be = await webgpuBackend(webgpuOptionsFromEnv(process.env));
  } catch (e) {
    usage(`webgpu: ${(e as Error).message.split('\n')[0]}`);
  }
  const started = new Date();
  log(`device run${quick ? ' (quick)' : ''}: ${be.adapter}${be.software ? ' [software adapter]' : ''}`);
  const t0 = performance.now();

  log('\n== check-ops: the op registry on webgpu against the cpu oracle');
  const ops = await checkOps({
    backends: [be], oracle: await cpuBackend(), timeReps: quick ? 0 : 2,
    onResult: (r) => { if (!r.pass) log(`FAIL ${r.case}: ${r.error ?? `max_abs ${r.max_abs} max_rel ${r.max_rel}`}`); },
  });
  log(`check-ops: ${ops.passed} of ${ops.results.length} cases agree`);

  let conformance: { passed: number; failed: number; results: unknown[] } | null = null;
  if (!values['no-conform']) {
    log(`\n== conformance: every case under ${fixtures} on webgpu`);
    const rep = await conform([fixtures], {
      backends: [be],
      onProgress: (e) => {
        const r = e.detail?.result as { case: string; pass: boolean; seconds: number } | undefined;
        if (r) log(`${r.pass ? 'PASS' : 'FAIL'}  ${r.case.replace(`${fixtures}/`, '')}  ${r.seconds.toFixed(2)}s`);
      },
    });
    conformance = rep;
    log(`conformance: ${rep.passed} of ${rep.results.length} cases pass`);
  }

  log('\n== kernel benches');
  const naive = naiveMatmulGflops(quick);
  log(`baseline: naive JS matmul ${naive.toFixed(2)} GFLOP/s (same run)`);
  const rows = await benchKernels([be], kernelCases(quick), { quick, large: values.large === true, filter: '', naive, log });

  const result = {
    what: 'cosmos-ts device run',
    started: started.toISOString(),
    seconds: (performance.now() - t0) / 1000,
    quick,
    commit: process.env.COSMOS_COMMIT ?? null,
    host: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, memory_bytes: totalmem() },
    adapter: { name: be.adapter, software: be.software, details: be.details, ...(be.deviceInfo ?? {}) },
    check_ops: { passed: ops.passed, failed: ops.failed, results: ops.results },
    conformance,
    kernels: { naive_js_gflops: naive, rows },
  };
  writeResult(out, JSON.parse(JSON.stringify(result, finiteOrText)));
  const failed = ops.failed + (conformance?.failed ?? 0);
  log(`\ndevice run: ${failed ? `${failed} FAILED` : 'every check passed'}; ${rows.length} kernel rows; ${result.seconds.toFixed(1)} s`);
  return failed ? 1 : 0;
}

main().then(
  (rc) => process.exit(rc),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
