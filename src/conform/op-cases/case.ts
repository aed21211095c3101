// One case of the op registry: an op of the op table at one shape and dtype, the tolerance it is
// held to against the CPU oracle, and a builder that makes its inputs from a seed (the same values
// on every backend) and runs the op. check-ops, test/ops/registry.test.ts and the kernel bench
// all build from these, so a shape that is checked is the shape that is timed.
import type { Backend } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { type Tensor, numel } from '../../engine/tensor.js';

/** |got - want| <= atol + rtol |want| elementwise; integer outputs are always compared exactly. */
export interface OpTolerance {
  atol: number;
  rtol: number;
}

export const EXACT: OpTolerance = { atol: 0, rtol: 0 };

/** What one run of a case returns: the op's outputs (async for the ops that read back, e.g. canny). */
export type OpOutput = Tensor | Tensor[] | Promise<Tensor | Tensor[]>;

export interface OpSetup {
  /** the inputs, made once; the caller disposes them */
  inputs: Tensor[];
  /** runs the op on them (each call enqueues the op once and returns fresh outputs) */
  run: () => OpOutput;
}

export interface OpCase {
  /** unique across the registry: `${op} ${shape} ${dtype}` */
  name: string;
  /** the F.* function the case calls (the --op filter takes this or the family) */
  op: string;
  /** the backend primitive behind it (matmul, conv, norm, unary, strided, ...) */
  family: string;
  /** e.g. 'M17 K33 N65 bT' */
  shape: string;
  /** the input dtypes, e.g. 'f32' or 'x f32, w bf16' */
  dtype: string;
  tol: OpTolerance;
  /** arithmetic per run (GFLOP/s) or bytes moved per run (GB/s), and how it is counted */
  flops?: number;
  bytes?: number;
  formula?: string;
  /** makes the inputs from `seed` on `backend` (deterministic: the same values everywhere) */
  setup(backend: Backend, seed: number): OpSetup;
}

// ------------------------------------------------------------------ deterministic data

/** mulberry32: a tiny seeded generator, so the registry needs no dependency and any backend sees the same data. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface InputSpec {
  shape: readonly number[];
  dtype?: DType;
  /** values uniform in [lo, hi) (default [-1, 1)); integers in [lo, hi) when `ints` */
  lo?: number;
  hi?: number;
  ints?: boolean;
  /** values of the input made otherwise (NaN planting, tables): from the case's generator */
  make?: (n: number, next: () => number) => ArrayLike<number>;
}

/** The values of input `index` of a case for `seed`: one stream per input, so adding an input moves no other. */
export function inputValues(spec: InputSpec, seed: number, index: number): ArrayLike<number> {
  const n = numel(spec.shape);
  const next = rng(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b));
  if (spec.make) return spec.make(n, next);
  const lo = spec.lo ?? -1;
  const hi = spec.hi ?? 1;
  if (spec.ints || spec.dtype === 'i32') {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + Math.floor((hi - lo) * next());
    return out;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

export interface CaseSpec {
  op: string;
  family: string;
  shape: string;
  dtype: string;
  tol: OpTolerance;
  inputs: readonly InputSpec[];
  fn: (...xs: Tensor[]) => OpOutput;
  flops?: number;
  bytes?: number;
  formula?: string;
}

/** A case from its inputs and the op applied to them. */
export function makeCase(s: CaseSpec): OpCase {
  return {
    name: `${s.op} ${s.shape} ${s.dtype}`,
    op: s.op,
    family: s.family,
    shape: s.shape,
    dtype: s.dtype,
    tol: s.tol,
    flops: s.flops,
    bytes: s.bytes,
    formula: s.formula,
    setup(backend, seed) {
      const inputs = s.inputs.map((spec, i) => F.fromArray(backend, inputValues(spec, seed, i), spec.shape, spec.dtype ?? 'f32'));
      return { inputs, run: () => s.fn(...inputs) };
    },
  };
}

/** Several dtypes written compactly: 'f32' when all agree, else 'x f32, w bf16'. */
export function dtypeLabel(named: Readonly<Record<string, DType>>): string {
  const vs = Object.values(named);
  if (vs.every((v) => v === vs[0])) return vs[0];
  return Object.entries(named).map(([k, v]) => `${k} ${v}`).join(', ');
}
