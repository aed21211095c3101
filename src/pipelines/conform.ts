// Conformance as a workflow: every fixture case under the given folders, on every given backend,
// compared with the reference outputs (and taps) of the case. One result per case and backend;
// nothing is printed: each result also arrives as a progress event (stage 'conform', detail
// { result }) so that a caller can show it as soon as it is known.
import type { Backend } from '../engine/backend.js';
import type { FileSystem } from '../io/files.js';
import { type CaseResult, findCases, runCase } from '../conform/runner.js';
import { type RunOptions, stage } from './progress.js';

export type { CaseResult } from '../conform/runner.js';
export type { Comparison } from '../conform/compare.js';

export interface ConformOptions extends RunOptions {
  /** the backends to run every case on, in this order */
  backends: readonly Backend[];
  /** compare the recorded taps too (first_divergent_tap); default true */
  taps?: boolean;
  fs?: FileSystem;
}

export interface ConformReport {
  /** one per case and backend, backend-major (every case on backends[0], then on backends[1], ...) */
  results: CaseResult[];
  passed: number;
  failed: number;
}

/**
 * Run the fixture cases found under `paths` (a case folder, or a folder searched for them) on
 * each backend. A case that fails, errors or has no implemented kind is a failed result, not an
 * exception; a cancel (opts.signal) stops between cases.
 */
export async function conform(paths: readonly string[], opts: ConformOptions): Promise<ConformReport> {
  const cases = await findCases(paths, opts.fs);
  const total = cases.length * opts.backends.length;
  const report = stage(opts, 'conform', 'cases', total);
  report(0);
  const results: CaseResult[] = [];
  for (const backend of opts.backends) {
    for (const dir of cases) {
      const r = await runCase(dir, backend, { taps: opts.taps, signal: opts.signal, fs: opts.fs });
      results.push(r);
      report(results.length, { result: r });
    }
  }
  const passed = results.filter((r) => r.pass).length;
  return { results, passed, failed: results.length - passed };
}
