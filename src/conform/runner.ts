// Runs fixture cases on a backend and compares every output (and tap) with the reference.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Backend } from '../engine/backend.js';
import { cpu } from '../engine/cpu/backend.js';
import { type WebGpuBackend, webgpu } from '../engine/webgpu/backend.js';
import { Tensor, scopeAsync } from '../engine/tensor.js';
import { type DType, type RawArray, widen } from '../engine/dtype.js';
import { FixtureCase } from './case.js';
import { type Comparison, compareArrays, compareStrings } from './compare.js';
import { handlerFor } from './registry.js';
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

/** Case folders under the given paths (a folder with case.json is a case; others are searched). */
export function findCases(paths: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (p: string, depth: number) => {
    if (existsSync(join(p, 'case.json'))) {
      out.push(p);
      return;
    }
    if (depth > 4) return;
    for (const e of readdirSync(p).sort()) {
      const q = join(p, e);
      if (statSync(q).isDirectory()) walk(q, depth + 1);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) throw new Error(`conform: ${p} does not exist`);
    walk(resolve(p), 0);
  }
  return out;
}

export type BackendName = 'cpu' | 'webgpu';

export async function getBackend(name: BackendName): Promise<Backend> {
  return name === 'cpu' ? cpu : ((await webgpu()) as WebGpuBackend);
}

function isIntDtype(d: string | null): boolean {
  return d !== null && /^(I|U|BOOL)/.test(d);
}

async function valuesOf(v: Tensor | ArrayLike<number>): Promise<ArrayLike<number>> {
  return v instanceof Tensor ? v.read() : v;
}

export async function runCase(dir: string, backend: Backend): Promise<CaseResult> {
  const t0 = performance.now();
  const result: CaseResult = {
    case: dir, kind: '?', backend: backend.name, adapter: backend.adapter, pass: false, seconds: 0,
    outputs: {}, taps: {}, first_divergent_tap: null, error: null, not_implemented: false,
  };
  let c: FixtureCase | null = null;
  try {
    c = await FixtureCase.open(dir);
    result.kind = c.kind;
    const handler = handlerFor(c.kind);
    if (!handler) {
      result.not_implemented = true;
      throw new Error(`kind ${c.kind} (component ${c.json.component}) is not implemented yet`);
    }
    const fc = c;
    await scopeAsync(async () => {
      const got = await handler(fc, backend);
      const tol = fc.tolerance;
      try {
        const wantNames = new Set([...fc.outputNames, ...Object.keys(fc.json.outputs ?? {})]);
        for (const name of wantNames) {
          const g = got.outputs[name];
          if (g === undefined) {
            result.outputs[name] = { max_abs: Infinity, max_rel: Infinity, pass: false, note: 'not produced' };
            continue;
          }
          const spec = fc.json.outputs?.[name];
          if (Array.isArray(g) && typeof g[0] === 'string' || (spec && Array.isArray(spec.value))) {
            result.outputs[name] = compareStrings(g as readonly string[], (spec?.value ?? []) as string[]);
            continue;
          }
          const want = await fc.output(name);
          const gv = await valuesOf(g as Tensor | ArrayLike<number>);
          const cmp = compareArrays(gv, asNumbers(want.dtype, want.raw), tol, isIntDtype(fc.storedDtype('output.', name)));
          if (g instanceof Tensor && numelOf(want.shape) === g.size && want.shape.join() !== g.shape.join()) {
            cmp.note = `shape ${JSON.stringify(g.shape)} vs ${JSON.stringify(want.shape)}`;
          }
          result.outputs[name] = cmp;
        }
        if (got.taps) {
          // forward order: the order in which the model recorded them
          const order = [...new Set(got.taps.records.map((r) => r.path))];
          const wanted = fc.tapNames;
          for (const path of [...order.filter((p) => wanted.includes(p)), ...wanted.filter((p) => !order.includes(p))]) {
            const want = await fc.tap(path);
            const candidates = got.taps.all(path);
            const match = candidates.filter((t) => t.size === want.raw.length);
            const g = match[match.length - 1];
            if (!g) {
              result.taps[path] = { max_abs: Infinity, max_rel: Infinity, pass: false, note: candidates.length ? 'shape differs' : 'not recorded' };
            } else {
              result.taps[path] = compareArrays(await g.read(), asNumbers(want.dtype, want.raw), tol, isIntDtype(fc.storedDtype('tap.', path)));
            }
            if (!result.taps[path].pass && result.first_divergent_tap === null) result.first_divergent_tap = path;
          }
        }
      } finally {
        got.taps?.dispose();
      }
    });
    result.pass = Object.values(result.outputs).length > 0 && Object.values(result.outputs).every((o) => o.pass);
  } catch (e) {
    result.error = `${(e as Error).name}: ${(e as Error).message}`;
    result.pass = false;
  } finally {
    await c?.close();
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

/** Reference values as numbers (half types widened; i32 as is). */
function asNumbers(dtype: DType, raw: RawArray): ArrayLike<number> {
  return dtype === 'i32' ? raw : widen(dtype, raw);
}

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
