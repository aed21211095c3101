// Runs one fixture case on a backend and compares every output (and tap) with the reference.
// Case folders are found and read through a FileSystem; nothing here prints (the conform
// pipeline, src/pipelines/conform.ts, runs many cases and reports progress).
import type { Backend } from '../engine/backend.js';
import { type DType, type RawArray, widen } from '../engine/dtype.js';
import { throwIfAborted } from '../engine/errors.js';
import { Tensor, scopeAsync } from '../engine/tensor.js';
import { type FileSystem, FileError, fileSystem } from '../io/files.js';
import { join } from '../io/path.js';
import { CaseFormatError, FixtureCase } from './case.js';
import { type Comparison, compareArrays, compareStrings } from './compare.js';
import { type KindResult, type ShapedArray, handlerFor } from './registry.js';
import './kinds.js';

export interface CaseResult {
  case: string;
  kind: string;
  backend: string;
  adapter: string;
  pass: boolean;
  seconds: number;
  outputs: Record<string, Comparison>;
  taps: Record<string, Comparison>;
  first_divergent_tap: string | null;
  error: string | null;
  not_implemented: boolean;
}

/** How deep findCases looks below each path it is given. */
const MAX_DEPTH = 4;

/**
 * Case folders under the given paths, in order (a folder with case.json is a case; other folders
 * are searched, their entries in sorted order).
 */
export async function findCases(paths: readonly string[], fs: FileSystem = fileSystem()): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string, depth: number): Promise<void> => {
    if ((await fs.stat(join(p, 'case.json')))?.kind === 'file') {
      out.push(p);
      return;
    }
    if (depth > MAX_DEPTH) return;
    for (const e of await fs.list(p)) {
      const q = join(p, e);
      if ((await fs.stat(q))?.kind === 'directory') await walk(q, depth + 1);
    }
  };
  for (const p of paths) {
    const st = await fs.stat(p);
    if (!st) throw new FileError(p, 'no such file or directory; expected a fixture case folder or a folder of cases');
    if (st.kind !== 'directory') throw new FileError(p, 'not a folder; expected a fixture case folder or a folder of cases');
    // walked as given: resolve() is for records and messages (over HTTP it is a URL, not a path)
    await walk(p, 0);
  }
  return out;
}

export interface RunCaseOptions {
  /** compare the recorded taps with the case's tap.* tensors (default true) */
  taps?: boolean;
  signal?: AbortSignal;
  fs?: FileSystem;
}

function isIntDtype(d: string | null): boolean {
  return d !== null && /^(I|U|BOOL)/.test(d);
}

async function valuesOf(v: Tensor | ShapedArray): Promise<ArrayLike<number>> {
  return v instanceof Tensor ? v.read() : v.values;
}

/** Reference values as numbers (half types widened; i32 as is). */
function asNumbers(dtype: DType, raw: RawArray): ArrayLike<number> {
  return dtype === 'i32' ? raw : widen(dtype, raw);
}

const MISSING = (note: string): Comparison => ({ max_abs: Infinity, max_rel: Infinity, pass: false, note });

async function compareOutputs(c: FixtureCase, got: KindResult): Promise<Record<string, Comparison>> {
  const out: Record<string, Comparison> = {};
  const wantNames = new Set([...c.outputNames, ...Object.keys(c.json.outputs ?? {})]);
  for (const name of wantNames) {
    const g = got.outputs[name];
    if (g === undefined) {
      out[name] = MISSING('not produced');
      continue;
    }
    const spec = c.json.outputs?.[name];
    if ((Array.isArray(g) && typeof g[0] === 'string') || (spec && Array.isArray(spec.value))) {
      out[name] = compareStrings(g as readonly string[], (spec?.value ?? []) as string[]);
      continue;
    }
    const want = await c.output(name);
    const gv = g as Tensor | ShapedArray;
    // the same numbers in another layout are a different answer (a transposed output has every
    // element of the reference, at the wrong place): shapes must agree exactly
    if (gv.shape.join() !== want.shape.join()) {
      out[name] = MISSING(`shape ${JSON.stringify(gv.shape)} differs from the reference's ${JSON.stringify(want.shape)}`);
      continue;
    }
    const { tol, integersExact } = c.toleranceOf(name);
    out[name] = compareArrays(await valuesOf(gv), asNumbers(want.dtype, want.raw), tol, integersExact && isIntDtype(c.storedDtype('output.', name)));
  }
  return out;
}

/** The case's taps in forward order (the order the model recorded them), then those never recorded. */
async function compareTaps(c: FixtureCase, got: KindResult, result: CaseResult): Promise<void> {
  const skipped = got.uncomparedTaps ?? {};
  for (const path of c.tapNames.filter((p) => p in skipped)) result.taps[path] = { max_abs: Number.NaN, max_rel: Number.NaN, pass: true, note: `not compared: ${skipped[path]}` };
  if (!got.taps) return;
  const order = [...new Set(got.taps.records.map((r) => r.path))];
  const wanted = c.tapNames.filter((p) => !(p in skipped));
  for (const path of [...order.filter((p) => wanted.includes(p)), ...wanted.filter((p) => !order.includes(p))]) {
    const want = await c.tap(path);
    const candidates = got.taps.all(path);
    const g = candidates.filter((t) => t.shape.join() === want.shape.join()).at(-1);
    const shapes = [...new Set(candidates.map((t) => JSON.stringify(t.shape)))].join(', ');
    result.taps[path] = g
      ? compareArrays(await g.read(), asNumbers(want.dtype, want.raw), c.toleranceOf(`tap.${path}`).tol, isIntDtype(c.storedDtype('tap.', path)))
      : MISSING(candidates.length ? `shape ${shapes} differs from the reference's ${JSON.stringify(want.shape)}` : 'not recorded');
    if (!result.taps[path].pass && result.first_divergent_tap === null) result.first_divergent_tap = path;
  }
}

/** Run one case on one backend. Failures of the case are in the result, not thrown; a cancel is thrown. */
export async function runCase(dir: string, backend: Backend, opts: RunCaseOptions = {}): Promise<CaseResult> {
  const t0 = performance.now();
  const result: CaseResult = {
    case: dir, kind: '?', backend: backend.name, adapter: backend.adapter, pass: false, seconds: 0,
    outputs: {}, taps: {}, first_divergent_tap: null, error: null, not_implemented: false,
  };
  throwIfAborted(opts.signal);
  let c: FixtureCase | null = null;
  try {
    c = await FixtureCase.open(dir, opts.fs);
    result.kind = c.kind;
    const handler = handlerFor(c.kind);
    if (!handler) {
      result.not_implemented = true;
      throw new Error(`kind ${c.kind} (component ${c.json.component}) is not implemented yet`);
    }
    const fc = c;
    await scopeAsync(async () => {
      const got = await handler(fc, backend);
      try {
        result.outputs = got.compared ?? (await compareOutputs(fc, got));
        if (opts.taps ?? true) await compareTaps(fc, got, result);
      } finally {
        got.taps?.dispose();
      }
    });
    if (Object.keys(result.outputs).length === 0) throw new CaseFormatError(`${dir}: the case names no outputs to compare (no output.* tensors in case.safetensors, no outputs in case.json)`);
    result.pass = Object.values(result.outputs).every((o) => o.pass);
  } catch (e) {
    result.error = `${(e as Error).name}: ${(e as Error).message}`;
    result.pass = false;
  } finally {
    await c?.close();
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
