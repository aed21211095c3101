// check-ops as a workflow: every case of the op registry (src/conform/op-cases) on each given
// backend against the CPU oracle, as ggml's test-backend-ops does for its backends. One typed
// result per case and backend (pass, largest absolute and relative error, time, GPU kernel time
// where the device has timestamp queries); nothing printed: each result also arrives as a
// progress event (stage 'check-ops', detail { result }).
import type { Backend, BackendName } from '../engine/backend.js';
import { throwIfAborted } from '../engine/errors.js';
import { cpuBackend } from '../engine/select.js';
import { Tensor } from '../engine/tensor.js';
import { OP_CASES, type OpCase, type OpOutput, type OpTolerance, opNames, selectOpCases } from '../conform/op-cases/index.js';
import { type RunOptions, stage } from './progress.js';

export interface OpCheckResult {
  /** the registry case's name */
  case: string;
  op: string;
  family: string;
  shape: string;
  dtype: string;
  backend: BackendName;
  adapter: string;
  pass: boolean;
  /** largest |got - want| over every output element */
  max_abs: number;
  /** largest |got - want| / |want| over the elements where want is not 0 */
  max_rel: number;
  atol: number;
  rtol: number;
  /** wall seconds of one run, synced (the best timed run; the checked run itself when none are timed) */
  seconds: number;
  /** GPU seconds of one run measured with timestamp queries; null where the backend cannot measure */
  gpu_seconds: number | null;
  /** the element furthest out of tolerance (output index, flat index, values), when one is */
  worst: { output: number; index: number; got: number; want: number } | null;
  /** "<ErrorName>: <message>" when the case could not run or its outputs do not match in shape / dtype */
  error: string | null;
}

export interface CheckOpsReport {
  /** backend-major: every case on backends[0], then on backends[1], ... */
  results: OpCheckResult[];
  passed: number;
  failed: number;
}

export interface CheckOpsOptions extends RunOptions {
  backends: readonly Backend[];
  /** the reference (default: the CPU backend) */
  oracle?: Backend;
  /** op or family names (see opNames()); empty or absent: every case */
  ops?: readonly string[];
  /** the cases to run instead of the registry's */
  cases?: readonly OpCase[];
  /** seed of every case's inputs (default 1) */
  seed?: number;
  /** timed runs after the checked run (default 1); 0 reports the checked run's time (pipeline compilation included) */
  timeReps?: number;
  /** each result as soon as it is known */
  onResult?: (r: OpCheckResult) => void;
}

/** An --op name the registry does not know: names the known ones. */
export class UnknownOpError extends Error {
  constructor(readonly unknown: readonly string[], readonly known: readonly string[]) {
    super(`${unknown.map((u) => JSON.stringify(u)).join(', ')}: no such op; known ops: ${known.join(', ')}`);
    this.name = 'UnknownOpError';
  }
}

interface Outputs {
  values: ArrayLike<number>[];
  shapes: number[][];
  dtypes: string[];
}

async function settle(out: OpOutput): Promise<Tensor[]> {
  return [await out].flat();
}

async function readAll(ts: readonly Tensor[]): Promise<Outputs> {
  const values: ArrayLike<number>[] = [];
  for (const t of ts) values.push(await t.read());
  return { values, shapes: ts.map((t) => [...t.shape]), dtypes: ts.map((t) => t.dtype) };
}

function disposeAll(ts: readonly Tensor[]): void {
  for (const t of ts) if (t instanceof Tensor) t.dispose();
}

export interface Comparison {
  pass: boolean;
  max_abs: number;
  max_rel: number;
  /** the flat index of the element furthest out of tolerance, -1 when every one is within */
  worst: number;
}

/**
 * |got - want| <= atol + rtol |want| at every element (exactly for integer outputs); NaN must
 * meet NaN and an infinity the same infinity. max_abs / max_rel cover the finite pairs; a
 * mismatch of NaN or infinity makes them Infinity.
 */
export function compareValues(got: ArrayLike<number>, want: ArrayLike<number>, tol: OpTolerance, exact = false): Comparison {
  if (got.length !== want.length) return { pass: false, max_abs: Infinity, max_rel: Infinity, worst: 0 };
  const atol = exact ? 0 : tol.atol;
  const rtol = exact ? 0 : tol.rtol;
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let worstOver = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g) || !Number.isFinite(w) || !Number.isFinite(g)) {
      if (Object.is(g, w) || (Number.isNaN(g) && Number.isNaN(w)) || g === w) continue;
      maxAbs = Infinity;
      maxRel = Infinity;
      if (worstOver !== Infinity) { worst = i; worstOver = Infinity; }
      continue;
    }
    const err = Math.abs(g - w);
    if (err > maxAbs) maxAbs = err;
    if (w !== 0 && err / Math.abs(w) > maxRel) maxRel = err / Math.abs(w);
    const over = err - (atol + rtol * Math.abs(w));
    if (over > 0 && over > worstOver) { worstOver = over; worst = i; }
  }
  return { pass: worst < 0, max_abs: maxAbs, max_rel: maxRel, worst };
}

function errorText(e: unknown): string {
  const err = e instanceof Error ? e : new Error(String(e));
  return `${err.name}: ${err.message.split('\n')[0]}`;
}

/** Seconds of one synced run, best of `reps`; and the GPU seconds of one more run where timestamps exist. */
async function timeCase(be: Backend, run: () => OpOutput, reps: number): Promise<{ seconds: number; gpu: number | null }> {
  let seconds = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const outs = await settle(run());
    await be.sync();
    seconds = Math.min(seconds, (performance.now() - t0) / 1000);
    disposeAll(outs);
  }
  let gpu: number | null = null;
  if (be.timeKernels && reps > 0) {
    const { result, ns } = await be.timeKernels(run);
    // an op that reads back inside (canny) ran partly after the timed window: no kernel time for it
    const asynchronous = result instanceof Promise;
    disposeAll(await settle(result));
    if (ns !== null && !asynchronous) gpu = ns / 1e9;
  }
  return { seconds, gpu };
}

async function checkOne(c: OpCase, be: Backend, want: Outputs | Error, seed: number, reps: number): Promise<OpCheckResult> {
  const base = {
    case: c.name, op: c.op, family: c.family, shape: c.shape, dtype: c.dtype, backend: be.name, adapter: be.adapter,
    atol: c.tol.atol, rtol: c.tol.rtol, gpu_seconds: null, worst: null,
  };
  if (want instanceof Error) return { ...base, pass: false, max_abs: NaN, max_rel: NaN, seconds: 0, error: `oracle: ${errorText(want)}` };
  const { inputs, run } = c.setup(be, seed);
  let outs: Tensor[] = [];
  try {
    const t0 = performance.now();
    outs = await settle(run());
    await be.sync();
    const first = (performance.now() - t0) / 1000;
    const got = await readAll(outs);
    disposeAll(outs);
    outs = [];
    if (got.values.length !== want.values.length) {
      return { ...base, pass: false, max_abs: NaN, max_rel: NaN, seconds: first, error: `Mismatch: ${got.values.length} outputs, the oracle gives ${want.values.length}` };
    }
    let maxAbs = 0;
    let maxRel = 0;
    let pass = true;
    let worst: OpCheckResult['worst'] = null;
    for (let k = 0; k < want.values.length; k++) {
      if (got.shapes[k].join() !== want.shapes[k].join() || got.dtypes[k] !== want.dtypes[k]) {
        return {
          ...base, pass: false, max_abs: NaN, max_rel: NaN, seconds: first,
          error: `Mismatch: output ${k} is ${got.dtypes[k]} [${got.shapes[k]}], the oracle's ${want.dtypes[k]} [${want.shapes[k]}]`,
        };
      }
      const cmp = compareValues(got.values[k], want.values[k], c.tol, want.dtypes[k] === 'i32');
      maxAbs = Math.max(maxAbs, cmp.max_abs);
      maxRel = Math.max(maxRel, cmp.max_rel);
      if (!cmp.pass) {
        if (pass) worst = { output: k, index: cmp.worst, got: got.values[k][cmp.worst], want: want.values[k][cmp.worst] };
        pass = false;
      }
    }
    const timed = await timeCase(be, run, reps);
    return { ...base, pass, max_abs: maxAbs, max_rel: maxRel, seconds: reps > 0 ? timed.seconds : first, gpu_seconds: timed.gpu, worst, error: null };
  } catch (e) {
    return { ...base, pass: false, max_abs: NaN, max_rel: NaN, seconds: 0, error: errorText(e) };
  } finally {
    disposeAll(outs);
    disposeAll(inputs);
  }
}

async function oracleOutputs(c: OpCase, oracle: Backend, seed: number): Promise<Outputs | Error> {
  const { inputs, run } = c.setup(oracle, seed);
  let outs: Tensor[] = [];
  try {
    outs = await settle(run());
    return await readAll(outs);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  } finally {
    disposeAll(outs);
    disposeAll(inputs);
  }
}

/**
 * Run the registry's cases (or `opts.cases`, narrowed to `opts.ops`) on every backend and compare
 * each with the oracle's outputs for the same inputs. A kernel that disagrees or throws is a failed
 * result, not an exception; an unknown op name throws UnknownOpError before anything runs; a
 * cancel (opts.signal) stops between cases.
 */
export async function checkOps(opts: CheckOpsOptions): Promise<CheckOpsReport> {
  const all = opts.cases ?? OP_CASES;
  const { cases, unknown } = selectOpCases(opts.ops ?? [], all);
  if (unknown.length) throw new UnknownOpError(unknown, opNames(all));
  const oracle = opts.oracle ?? (await cpuBackend());
  const seed = opts.seed ?? 1;
  const reps = opts.timeReps ?? 1;
  const report = stage(opts, 'check-ops', 'cases', cases.length * opts.backends.length);
  report(0);
  const wants = new Map<OpCase, Outputs | Error>();
  const results: OpCheckResult[] = [];
  for (const be of opts.backends) {
    for (const c of cases) {
      throwIfAborted(opts.signal);
      let want = wants.get(c);
      if (!want) {
        want = await oracleOutputs(c, oracle, seed);
        wants.set(c, want);
      }
      const r = await checkOne(c, be, want, seed, reps);
      results.push(r);
      opts.onResult?.(r);
      report(results.length, { result: r });
    }
  }
  const passed = results.filter((r) => r.pass).length;
  return { results, passed, failed: results.length - passed };
}
