// Cases of the elementwise ops: every unary op on its input range, every binary op broadcasting
// both ways, where, and casts between the storage dtypes.
//
// Tolerances (as test/ops/elementwise.test.ts argues them; the oracle rounds an f64 result once):
// exact where WGSL rounds correctly (+ - *, neg, abs, relu, rounding, min / max, where, casts);
// a few ulp for div, recip, sqrt, rsqrt, exp, log; atol 4e-6 for sin / cos on [-pi, pi]; rtol 1e-5
// (atol 1e-6 near 0) for what is built from exp / log; atol 2e-6 for the exact GELU's erf; rtol
// 2e-5 for pow.
import type { BinaryOp } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { type Tensor, numel } from '../../engine/tensor.js';
import { EXACT, type OpCase, type OpTolerance, dtypeLabel, makeCase } from './case.js';

interface UnarySpec {
  name: string;
  fn: (x: Tensor) => Tensor;
  lo: number;
  hi: number;
  tol: OpTolerance;
  /** snap inputs to quarters (the rounding ops' ties) */
  quarters?: boolean;
}

const UNARY: UnarySpec[] = [
  { name: 'neg', fn: F.neg, lo: -10, hi: 10, tol: EXACT },
  { name: 'abs', fn: F.abs, lo: -10, hi: 10, tol: EXACT },
  { name: 'exp', fn: F.exp, lo: -10, hi: 10, tol: { atol: 0, rtol: 3e-6 } },
  { name: 'log', fn: F.log, lo: 1e-3, hi: 100, tol: { atol: 1e-6, rtol: 1e-6 } },
  { name: 'sqrt', fn: F.sqrt, lo: 0, hi: 100, tol: { atol: 0, rtol: 1e-6 } },
  { name: 'rsqrt', fn: F.rsqrt, lo: 1e-3, hi: 100, tol: { atol: 0, rtol: 1e-6 } },
  { name: 'recip', fn: F.recip, lo: 0.01, hi: 10, tol: { atol: 0, rtol: 1e-6 } },
  { name: 'square', fn: F.square, lo: -10, hi: 10, tol: EXACT },
  { name: 'sin', fn: F.sin, lo: -Math.PI, hi: Math.PI, tol: { atol: 4e-6, rtol: 0 } },
  { name: 'cos', fn: F.cos, lo: -Math.PI, hi: Math.PI, tol: { atol: 4e-6, rtol: 0 } },
  { name: 'tanh', fn: F.tanh, lo: -12, hi: 12, tol: { atol: 1e-6, rtol: 1e-5 } },
  { name: 'atanh', fn: F.atanh, lo: -0.99, hi: 0.99, tol: { atol: 1e-6, rtol: 1e-5 } },
  { name: 'sigmoid', fn: F.sigmoid, lo: -30, hi: 30, tol: { atol: 1e-6, rtol: 1e-5 } },
  { name: 'silu', fn: F.silu, lo: -30, hi: 30, tol: { atol: 1e-6, rtol: 1e-5 } },
  { name: 'relu', fn: F.relu, lo: -10, hi: 10, tol: EXACT },
  { name: 'gelu', fn: F.gelu, lo: -8, hi: 8, tol: { atol: 2e-6, rtol: 1e-5 } },
  { name: 'geluTanh', fn: F.geluTanh, lo: -8, hi: 8, tol: { atol: 1e-6, rtol: 1e-5 } },
  { name: 'round', fn: F.round, lo: -10, hi: 10, tol: EXACT, quarters: true },
  { name: 'floor', fn: F.floor, lo: -10, hi: 10, tol: EXACT, quarters: true },
  { name: 'ceil', fn: F.ceil, lo: -10, hi: 10, tol: EXACT, quarters: true },
  { name: 'sign', fn: F.sign, lo: -3, hi: 3, tol: EXACT, quarters: true },
  { name: 'affine', fn: (x) => F.affine(x, -1.7, 0.3), lo: -10, hi: 10, tol: { atol: 1e-6, rtol: 1e-6 } },
  { name: 'clamp', fn: (x) => F.clamp(x, -0.5, 2), lo: -3, hi: 3, tol: EXACT },
  { name: 'powScalar', fn: (x) => F.powScalar(x, 2.5), lo: 0, hi: 3, tol: { atol: 1e-6, rtol: 2e-5 } },
];

export function unaryCase(name: string, shape: readonly number[], dtype: DType = 'f32'): OpCase {
  const u = UNARY.find((c) => c.name === name);
  if (!u) throw new Error(`unaryCase: no unary op ${name}`);
  const n = numel(shape);
  return makeCase({
    op: name,
    family: 'unary',
    shape: shape.join('x'),
    dtype,
    tol: u.tol,
    bytes: n * 8,
    formula: '(4 + 4)*n bytes: one f32 read, one f32 write per element',
    inputs: [{
      shape, dtype,
      make: (len, next) => {
        const v = new Float32Array(len);
        for (let i = 0; i < len; i++) {
          const x = u.lo + (u.hi - u.lo) * next();
          v[i] = u.quarters ? Math.round(x * 4) / 4 : x;
        }
        return v;
      },
    }],
    fn: u.fn,
  });
}

const BINARY: { op: BinaryOp; name: string; fn: (a: Tensor, b: Tensor) => Tensor; tol: OpTolerance; bLo?: number; aLo?: number }[] = [
  { op: 'add', name: 'add', fn: F.add, tol: EXACT },
  { op: 'sub', name: 'sub', fn: F.sub, tol: EXACT },
  { op: 'mul', name: 'mul', fn: F.mul, tol: EXACT },
  { op: 'div', name: 'div', fn: F.div, tol: { atol: 0, rtol: 1e-6 }, bLo: 0.25 },
  { op: 'max', name: 'maximum', fn: F.maximum, tol: EXACT },
  { op: 'min', name: 'minimum', fn: F.minimum, tol: EXACT },
  { op: 'pow', name: 'pow', fn: F.pow, tol: { atol: 1e-6, rtol: 2e-5 }, aLo: 0.25 },
];

export function binaryCase(name: string, a: readonly number[], b: readonly number[], dtypes: [DType, DType] = ['f32', 'f32']): OpCase {
  const c = BINARY.find((x) => x.name === name);
  if (!c) throw new Error(`binaryCase: no binary op ${name}`);
  const out = F.broadcastShapes(a, b);
  return makeCase({
    op: name,
    family: 'binary',
    shape: `${a.join('x')} . ${b.join('x')}`,
    dtype: dtypeLabel({ a: dtypes[0], b: dtypes[1] }),
    tol: c.tol,
    bytes: 4 * (numel(a) + numel(b) + numel(out)),
    formula: '4*(numel(a) + numel(b) + numel(out)) bytes',
    inputs: [
      { shape: a, dtype: dtypes[0], lo: c.aLo ?? -4, hi: 4 },
      { shape: b, dtype: dtypes[1], lo: c.bLo ?? -4, hi: 4 },
    ],
    fn: c.fn,
  });
}

function whereCase(cond: readonly number[], a: readonly number[], b: readonly number[]): OpCase {
  return makeCase({
    op: 'where',
    family: 'where',
    shape: `${cond.join('x')} ? ${a.join('x')} : ${b.join('x')}`,
    dtype: 'cond i32, f32',
    tol: EXACT,
    inputs: [{ shape: cond, dtype: 'i32', lo: 0, hi: 2 }, { shape: a }, { shape: b }],
    fn: F.where,
  });
}

function castCase(from: DType, to: DType, shape: readonly number[]): OpCase {
  return makeCase({
    op: 'cast',
    family: 'cast',
    shape: `${shape.join('x')} -> ${to}`,
    dtype: from,
    tol: EXACT,
    inputs: [{ shape, dtype: from, lo: from === 'i32' ? -70000 : -70, hi: from === 'i32' ? 70000 : 70 }],
    fn: (x) => F.cast(x, to),
  });
}

export const ELEMENTWISE_CASES: OpCase[] = [
  ...UNARY.map((u) => unaryCase(u.name, [3, 37])),
  unaryCase('exp', [1], 'bf16'),
  unaryCase('silu', [5, 7, 11], 'bf16'),
  unaryCase('gelu', [131], 'f16'),
  unaryCase('abs', [17, 3], 'i32'),
  binaryCase('add', [1], [1]),
  binaryCase('add', [7, 1, 5], [3, 1], ['f32', 'bf16']),
  binaryCase('sub', [2, 3, 5], [5]),
  binaryCase('mul', [4, 1], [1, 33], ['f16', 'f32']),
  binaryCase('mul', [2, 1, 3, 1, 7], [5, 1], ['f32', 'i32']),
  binaryCase('div', [13, 17], [13, 1]),
  binaryCase('maximum', [1, 19], [23, 1]),
  binaryCase('minimum', [3, 4, 5], [3, 4, 5], ['bf16', 'bf16']),
  binaryCase('pow', [6, 7], [7]),
  whereCase([5, 1], [1, 7], [5, 7]),
  whereCase([2, 3, 4], [4], [1]),
  castCase('f32', 'bf16', [65]),
  castCase('f32', 'f16', [3, 67]),
  castCase('bf16', 'f32', [31]),
  castCase('f16', 'bf16', [29]),
  castCase('i32', 'f32', [40]),
  castCase('f32', 'i32', [41]),
];
