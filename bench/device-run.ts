// The device run: everything a session with a lent GPU measures, in one process and one JSON file.
// bench/device-run.sh starts it (it finds node and the dependencies, packed or installed); run it
// by hand as `node --import tsx bench/device-run.ts [--quick] [--out FILE]`. Where the fixtures do
// not fit one device call, later calls run `--conform-only` on the rest and `--merge` joins the
// files into one.
//
// It holds: the adapter (name, vendor, architecture, API, features, limits); first the matmul tuning
// of this adapter (src/engine/autotune.ts: the table, and the matmul bench rows before it and with
// it, the later steps all run tuned; --no-tune leaves it out); check-ops over the
// whole op registry on WebGPU against the CPU oracle, conformance of every vendored fixture case on
// WebGPU, and the kernel bench rows (the real-GPU shapes too on a hardware adapter), each row with
// its FLOP / byte formula and, where the adapter has timestamp queries, the GPU kernel time.
// Exit status 0 when every check passed, 1 when a kernel or a case disagreed (the file is written
// either way), 2 when there is no WebGPU adapter or a flag is wrong.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { autotune } from '../src/engine/autotune.js';
import type { Backend } from '../src/engine/backend.js';
import { type TuningTable, choiceLabel, MATMUL_CLASSES } from '../src/engine/tuning.js';
import { checkOps } from '../src/pipelines/check-ops.js';
import { conform } from '../src/pipelines/conform.js';
import { cpuBackend, webgpuBackend, webgpuOptionsFromEnv } from '../src/engine/select.js';
import { naiveMatmulGflops, writeResult } from './harness.js';
import { benchKernels, dispatchOverheadRow, kernelCases } from './kernel-cases.js';

// the checkout: bench/device-run.sh says where (a bundle of this file lives elsewhere than bench/)
const ROOT = process.env.COSMOS_ROOT ?? fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = resolve(ROOT, 'test/fixtures');

/** JSON has no NaN or infinities: written as the strings "NaN", "Infinity", "-Infinity". */
function finiteOrText(_key: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

function usage(msg: string): never {
  console.error(`error: ${msg}`);
  process.exit(2);
}

interface DeviceRunFile {
  conformance: { passed: number; failed: number; results: { case: string; pass: boolean }[] } | null;
  check_ops: { failed: number } | null;
  merged_from?: string[];
  [k: string]: unknown;
}

/** FIRST with the conformance results of the others appended (a case run twice keeps its first result). */
function merge(files: readonly string[], out: string): number {
  if (files.length < 2) usage('--merge: give the first run\'s file and the others');
  const read = (f: string): DeviceRunFile => {
    try {
      return JSON.parse(readFileSync(f, 'utf8')) as DeviceRunFile;
    } catch (e) {
      return usage(`${f}: ${(e as Error).message.split('\n')[0]}`);
    }
  };
  const [first, ...rest] = files.map(read);
  const results = [...(first.conformance?.results ?? [])];
  const seen = new Set(results.map((r) => r.case.replace(/^.*\/fixtures\//, '')));
  for (const f of rest) {
    for (const r of f.conformance?.results ?? []) {
      const key = r.case.replace(/^.*\/fixtures\//, '');
      if (!seen.has(key)) { seen.add(key); results.push(r); }
    }
  }
  const passed = results.filter((r) => r.pass).length;
  const merged = { ...first, conformance: { passed, failed: results.length - passed, results }, merged_from: files.map((f) => resolve(f)) };
  writeResult(resolve(out), merged);
  return merged.conformance.failed + (first.check_ops?.failed ?? 0) ? 1 : 0;
}

async function main(): Promise<number> {
  let values: {
    quick?: boolean; out?: string; fixtures?: string; 'no-conform'?: boolean; 'conform-only'?: boolean; large?: boolean; merge?: boolean; 'no-tune'?: boolean;
  };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: process.argv.slice(2),
      options: {
        quick: { type: 'boolean' },
        large: { type: 'boolean' },
        out: { type: 'string' },
        fixtures: { type: 'string' },
        'no-conform': { type: 'boolean' },
        'conform-only': { type: 'boolean' },
        'no-tune': { type: 'boolean' },
        merge: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  if (values.merge) {
    if (!values.out) usage('--merge: --out FILE is needed');
    return merge(positionals, values.out);
  }
  if (positionals.length) usage(`${positionals[0]}: unexpected argument`);
  if (values['no-conform'] && values['conform-only']) usage('--no-conform and --conform-only contradict each other');
  const only = values['conform-only'] === true;
  const quick = values.quick === true;
  const out = resolve(values.out ?? (process.env.OUT ? `${process.env.OUT}/device-run.json` : resolve(ROOT, 'bench/results/device-run-latest.json')));
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

  const naive = only ? 0 : naiveMatmulGflops(quick);
  const errors: string[] = [];
  const benchOpts = { quick, large: values.large === true, filter: '', naive, log, onError: (e: string) => errors.push(e) };
  // the matmul's rows (F.matmul / F.linear): the rows the tuning changes
  const isMatmul = (r: object) => ['matmul', 'linear'].includes(String((r as { op?: unknown }).op));

  // the tuning first, so that everything after (checks, conformance, benches) runs the tuned tiles
  let tuning: { table: TuningTable; matmul_before: Awaited<ReturnType<typeof benchKernels>> } | null = null;
  if (!only && !values['no-tune']) {
    log('\n== tune: the matmul tiles of this adapter (rows before tuning first)');
    const before = await benchKernels([be], kernelCases(quick).filter((k) => k.c.family === 'matmul'), benchOpts);
    const table = await autotune(be, {
      quick,
      onEvent: (e) => log(`  ${e.class.padEnd(6)} ${e.candidate.padEnd(18)} ${e.seconds === null ? e.note : `${(e.seconds * 1000).toFixed(3)} ms`}`),
    });
    be.setTuning!(table);
    log(`tune: ${MATMUL_CLASSES.map((c) => `${c} ${choiceLabel(table.matmul[c])}`).join(', ')}${table.applies ? '' : ' (not used on a software adapter)'}`);
    tuning = { table, matmul_before: before };
  }

  let ops: Awaited<ReturnType<typeof checkOps>> | null = null;
  if (!only) {
    log('\n== check-ops: the op registry on webgpu against the cpu oracle');
    ops = await checkOps({
      backends: [be], oracle: await cpuBackend(), timeReps: quick ? 0 : 2,
      onResult: (r) => { if (!r.pass) log(`FAIL ${r.case}: ${r.error ?? `max_abs ${r.max_abs} max_rel ${r.max_rel}`}`); },
    });
    log(`check-ops: ${ops.passed} of ${ops.results.length} cases agree`);
  }

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

  let kernels: { naive_js_gflops: number; rows: Awaited<ReturnType<typeof benchKernels>>; errors: string[] } | null = null;
  if (!only) {
    log(`\n== kernel benches${tuning ? ' (tuned)' : ''}`);
    log(`baseline: naive JS matmul ${naive.toFixed(2)} GFLOP/s (same run)`);
    const rows = await benchKernels([be], kernelCases(quick), benchOpts);
    rows.push(await dispatchOverheadRow(be, { quick, log }));
    kernels = { naive_js_gflops: naive, rows, errors };
  }

  const result = {
    what: 'cosmos-ts device run',
    started: started.toISOString(),
    seconds: (performance.now() - t0) / 1000,
    quick,
    commit: process.env.COSMOS_COMMIT ?? null,
    host: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, memory_bytes: totalmem() },
    adapter: { name: be.adapter, software: be.software, details: be.details, ...(be.deviceInfo ?? {}) },
    // the table, and the matmul rows before it and with it (the same rows as in kernels.rows)
    tuning: tuning && { table: tuning.table, matmul_before: tuning.matmul_before, matmul_after: kernels?.rows.filter(isMatmul) ?? [] },
    check_ops: ops && { passed: ops.passed, failed: ops.failed, results: ops.results },
    conformance,
    kernels,
  };
  writeResult(out, JSON.parse(JSON.stringify(result, finiteOrText)));
  // a bench case that could not run is a failure too: its row is missing from the file
  const failed = (ops?.failed ?? 0) + (conformance?.failed ?? 0) + (kernels?.errors.length ?? 0);
  log(`\ndevice run: ${failed ? `${failed} FAILED` : 'every check passed'}; ${kernels?.rows.length ?? 0} kernel rows; ${result.seconds.toFixed(1)} s`);
  return failed ? 1 : 0;
}

main().then(
  (rc) => process.exit(rc),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
