// Elementwise ops on the WebGPU backend against the CPU oracle: cast, every unary op, every
// binary op with numpy broadcasting, and where.
//
// Tolerances, |gpu - cpu| <= atol + rtol |cpu| (the oracle computes in float64 and rounds once):
// - exact: cast (bit-exact half outputs: round to nearest even, overflow to inf, subnormals;
//   NaN only has to stay NaN), neg, abs, square, relu, round, floor, ceil, sign, clamp, max, min,
//   add, sub, mul (WGSL rounds + - * correctly) and where.
// - a few ulp, as WGSL specifies its builtins: div, recip, sqrt, rsqrt (2.5 ulp), exp
//   (3 + 2|x| ulp), log (2^-21 absolute near 1, 3 ulp elsewhere): rtol 1e-6 .. 3e-6.
// - sin, cos on [-pi, pi]: atol 4e-6. WGSL itself only promises 2^-11 there; we hold kernels to
//   what hardware sin/cos (and llvmpipe) deliver.
// - tanh, sigmoid, silu, gelu_tanh, atanh: built from exp/log, rtol 1e-5 with atol 1e-6 for the
//   cancellation near 0.
// - gelu (exact form): erf by Abramowitz-Stegun 7.1.26, absolute error 1.5e-7, so the error
//   grows like 0.5 |x| 1.5e-7: atol 2e-6 on [-8, 8].
// - pow / pow_scalar: integer exponents up to 64 by exact binary powering (a few roundings),
//   others through exp2(p log2 x): rtol 2e-5.
// Subnormal inputs are left out of the unary/binary tests: GPUs may flush them to zero.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BinaryOp, UnaryOp } from '../../src/engine/backend.js';
import { type DType, bf16ToF32, f16ToF32 } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import { type Tensor, numel } from '../../src/engine/tensor.js';
import { elementwiseConfig } from '../../src/engine/webgpu/ops/elementwise.js';
import { type Tol, assertClose, checkAgainstCpu, cpu, gpu, gpuRuns, randomInts, randomValues, shapeArb } from '../harness.js';

const EXACT: Tol = { atol: 0, rtol: 0 };
const FLOATS: DType[] = ['f32', 'bf16', 'f16'];

// ------------------------------------------------------------------ cast

/** Raw elements of a dtype from random 32-bit words (every bit pattern: NaNs, infs, subnormals). */
function randomRaw(dtype: DType, n: number, seed: number): Float32Array | Int32Array | Uint16Array {
  const w = Uint32Array.from(randomInts(n, seed, 0, 2 ** 32).map((v) => v >>> 0));
  if (dtype === 'f32') return new Float32Array(w.buffer);
  if (dtype === 'i32') return new Int32Array(w.buffer);
  return Uint16Array.from(w, (v) => v & 0xffff);
}

const isNanBits = (dtype: DType, bits: number) =>
  dtype === 'bf16' ? Number.isNaN(bf16ToF32(bits)) : dtype === 'f16' ? Number.isNaN(f16ToF32(bits)) : false;

/** Cast raw on both backends and require bit-identical results (NaN only has to stay NaN). */
async function checkCast(from: DType, to: DType, raw: Float32Array | Int32Array | Uint16Array, label: string): Promise<void> {
  const be = await gpu();
  const shape = [raw.length];
  const c = F.fromRaw(cpu, raw, shape, from);
  const g = F.fromRaw(be, raw, shape, from);
  const want = F.cast(c, to);
  const got = F.cast(g, to);
  expect(got.dtype).toBe(to);
  if (to === 'bf16' || to === 'f16') {
    const gw = await got.readRaw();
    const cw = await want.readRaw();
    for (let i = 0; i < cw.length; i++) {
      if (gw[i] !== cw[i] && !(isNanBits(to, gw[i]) && isNanBits(to, cw[i]))) {
        expect.fail(`${label}: element ${i} (input raw ${raw[i]}) got 0x${gw[i].toString(16)}, want 0x${cw[i].toString(16)}`);
      }
    }
  } else {
    assertClose(await got.read(), await want.read(), EXACT, label);
  }
  for (const t of [c, g, want, got]) t.dispose();
}

/** Raw values of `from` that a cast to i32 may see: torch leaves NaN, inf and out-of-range values undefined. */
function inI32Range(from: DType, raw: Float32Array | Int32Array | Uint16Array): typeof raw {
  if (from === 'i32') return raw;
  const v = from === 'f32' ? (raw as Float32Array) : Float32Array.from(raw as Uint16Array, (b) => (from === 'bf16' ? bf16ToF32(b) : f16ToF32(b)));
  const out = raw.slice();
  for (let i = 0; i < v.length; i++) if (!(Math.abs(v[i]) < 2 ** 31)) out[i] = 0;
  return out;
}

describe('webgpu cast', () => {
  const pairs = (['f32', 'bf16', 'f16', 'i32'] as DType[]).flatMap((a) => (['f32', 'bf16', 'f16', 'i32'] as DType[]).map((b) => [a, b] as const));

  it.each(pairs)('%s -> %s over random bit patterns (round to nearest even, NaN/inf, subnormals)', async (from, to) => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 3000 }), fc.nat(), async (n, seed) => {
      let raw = randomRaw(from, n, seed);
      if (to === 'i32') raw = inI32Range(from, raw);
      await checkCast(from, to, raw, `cast ${from}->${to} n=${n} seed=${seed}`);
    }), gpuRuns(3));
  });

  it('rounding ties, the overflow threshold and subnormal boundaries of f16 and bf16', async () => {
    const bits = [
      0x3f808000, 0x3f818000, 0x3f808001, 0x3f817fff, // bf16 ties to even / just off a tie
      0x477fefff, 0x477ff000, 0x477fe000, 0x477fffff, 0x7f7fffff, 0x7f7f8000, // f16 / bf16 overflow edges
      0x387fe000, 0x387ff000, 0x38800000, 0x33800000, 0x33800001, 0x33000000, 0x33000001, 0x337fffff, // f16 subnormal edges
      0x3f801000, 0x3f803000, 0x3f800fff, 0x3f801001, // f16 ties
      0x00000001, 0x00400000, 0x80000001, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00001, 0xffc00001,
      0x4effffff, 0x4f000000, 0xcf000000, 0x3fffffff, 0xbf7fffff, // i32 edges (2^31 is out of range)
    ];
    const raw = new Float32Array(Uint32Array.from(bits).buffer);
    for (const to of ['bf16', 'f16', 'f32'] as DType[]) await checkCast('f32', to, raw, `f32 edges -> ${to}`);
    await checkCast('f32', 'i32', inI32Range('f32', raw), 'f32 edges -> i32');
    const ints = Int32Array.from([2 ** 24 + 1, 2 ** 24 + 3, -(2 ** 24) - 1, 2 ** 31 - 1, -(2 ** 31), 65519, 65520, -65520, 0, -1, 123456789]);
    for (const to of ['bf16', 'f16', 'f32', 'i32'] as DType[]) await checkCast('i32', to, ints, `i32 edges -> ${to}`);
  });

  it('empty tensors', async () => {
    for (const to of ['bf16', 'f16', 'f32', 'i32'] as DType[]) await checkCast('f32', to, new Float32Array(0), `empty -> ${to}`);
  });
});

// ------------------------------------------------------------------ unary

interface UnaryCase {
  op: UnaryOp;
  fn: (x: Tensor) => Tensor;
  lo: number;
  hi: number;
  tol: Tol;
  /** i32 inputs make sense (values are truncated to integers) */
  ints?: boolean;
  /** snap inputs to quarters (rounding ties) */
  quarters?: boolean;
}

const UNARY: UnaryCase[] = [
  { op: 'neg', fn: F.neg, lo: -10, hi: 10, tol: EXACT, ints: true },
  { op: 'abs', fn: F.abs, lo: -10, hi: 10, tol: EXACT, ints: true },
  { op: 'exp', fn: F.exp, lo: -10, hi: 10, tol: { atol: 0, rtol: 3e-6 }, ints: true },
  { op: 'log', fn: F.log, lo: 1e-3, hi: 100, tol: { atol: 1e-6, rtol: 1e-6 } },
  { op: 'sqrt', fn: F.sqrt, lo: 0, hi: 100, tol: { atol: 0, rtol: 1e-6 } },
  { op: 'rsqrt', fn: F.rsqrt, lo: 1e-3, hi: 100, tol: { atol: 0, rtol: 1e-6 } },
  { op: 'recip', fn: F.recip, lo: 0.01, hi: 10, tol: { atol: 0, rtol: 1e-6 } },
  { op: 'square', fn: F.square, lo: -10, hi: 10, tol: EXACT, ints: true },
  { op: 'sin', fn: F.sin, lo: -Math.PI, hi: Math.PI, tol: { atol: 4e-6, rtol: 0 } },
  { op: 'cos', fn: F.cos, lo: -Math.PI, hi: Math.PI, tol: { atol: 4e-6, rtol: 0 } },
  { op: 'tanh', fn: F.tanh, lo: -12, hi: 12, tol: { atol: 1e-6, rtol: 1e-5 } },
  { op: 'sigmoid', fn: F.sigmoid, lo: -30, hi: 30, tol: { atol: 1e-6, rtol: 1e-5 } },
  { op: 'silu', fn: F.silu, lo: -30, hi: 30, tol: { atol: 1e-6, rtol: 1e-5 } },
  { op: 'relu', fn: F.relu, lo: -10, hi: 10, tol: EXACT, ints: true },
  { op: 'gelu', fn: F.gelu, lo: -8, hi: 8, tol: { atol: 2e-6, rtol: 1e-5 } },
  { op: 'gelu_tanh', fn: F.geluTanh, lo: -8, hi: 8, tol: { atol: 1e-6, rtol: 1e-5 } },
  { op: 'round', fn: F.round, lo: -10, hi: 10, tol: EXACT, ints: true, quarters: true },
  { op: 'floor', fn: F.floor, lo: -10, hi: 10, tol: EXACT, ints: true, quarters: true },
  { op: 'ceil', fn: F.ceil, lo: -10, hi: 10, tol: EXACT, ints: true, quarters: true },
  { op: 'sign', fn: F.sign, lo: -3, hi: 3, tol: EXACT, ints: true, quarters: true },
  { op: 'atanh', fn: F.atanh, lo: -0.99, hi: 0.99, tol: { atol: 1e-6, rtol: 1e-5 } },
  { op: 'affine', fn: (x) => F.affine(x, -1.7, 0.3), lo: -10, hi: 10, tol: { atol: 1e-6, rtol: 1e-6 }, ints: true },
  { op: 'clamp', fn: (x) => F.clamp(x, -0.5, 2), lo: -3, hi: 3, tol: EXACT, ints: true },
];

function unaryInput(c: UnaryCase, n: number, seed: number): Float32Array {
  const v = randomValues(n, seed, c.lo, c.hi);
  if (c.quarters) for (let i = 0; i < n; i++) v[i] = Math.round(v[i] * 4) / 4;
  return v;
}

describe('webgpu unary', () => {
  it.each(UNARY.map((c) => [c.op, c] as const))('%s on its input range, f32/bf16/f16 (and i32 where meaningful) inputs', async (_name, c) => {
    const be = await gpu();
    const dtypes: DType[] = c.ints ? [...FLOATS, 'i32'] : FLOATS;
    await fc.assert(fc.asyncProperty(shapeArb(0, 4, 9), fc.constantFrom(...dtypes), fc.nat(), async (shape, dtype, seed) => {
      await checkAgainstCpu(be, `${c.op} ${shape} ${dtype}`, [{ values: unaryInput(c, numel(shape), seed), shape, dtype }], c.fn, c.tol);
    }), gpuRuns(4));
  });

  it('pow_scalar: integer exponents on negative bases, fractional exponents (NaN on negatives), 0 ** p', async () => {
    const be = await gpu();
    const x = randomValues(400, 'pow', -3, 3);
    x.set([0, -0.5, 0.5, 1, -1, 2, -2, 3]);
    for (const p of [0, 1, 2, 3, 4, 5, -1, -2, -3, 7, 0.5, 1.5, -0.5, 2.5, 1 / 3, 65, -70, 100.5]) {
      await checkAgainstCpu(be, `pow_scalar ${p}`, [{ values: x, shape: [400] }], (t) => F.powScalar(t, p), { atol: 1e-6, rtol: 2e-5 });
    }
  });

  it('NaN and infinities propagate as in torch (relu, clamp, tanh, exp, sigmoid, pow)', async () => {
    const be = await gpu();
    const v = [NaN, Infinity, -Infinity, 0, 1, -1];
    const fns: [string, (t: Tensor) => Tensor][] = [
      ['relu', F.relu], ['clamp', (t) => F.clamp(t, -0.5, 0.5)], ['tanh', F.tanh], ['exp', F.exp], ['sigmoid', F.sigmoid],
      ['abs', F.abs], ['neg', F.neg], ['sqrt', F.sqrt], ['square', F.square], ['floor', F.floor], ['round', F.round],
      ['pow 2', (t) => F.powScalar(t, 2)], ['pow -1', (t) => F.powScalar(t, -1)], ['pow 0', (t) => F.powScalar(t, 0)], ['pow 0.5', (t) => F.powScalar(t, 0.5)],
    ];
    // non-finite results must match exactly (assertClose), finite ones to the op's accuracy
    for (const [name, fn] of fns) await checkAgainstCpu(be, name, [{ values: v, shape: [v.length] }], fn, { atol: 0, rtol: 1e-5 });
  });

  it('more than 65535 workgroups', async () => {
    const be = await gpu();
    const n = 2 ** 24 + 2 ** 16 + 3;
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (i % 1023) - 511;
    await checkAgainstCpu(be, 'affine large', [{ values: v, shape: [n] }], (t) => F.affine(t, 3, -1), EXACT);
  });
});

describe('webgpu 4-wide elementwise entries (unary_v4, binary_flat_v4)', () => {
  // sizes a multiple of 4 take the 4-wide entries, the rest the one-wide ones: both against the oracle
  const sizeArb = fc.oneof(fc.integer({ min: 1, max: 300 }).map((k) => 4 * k), fc.integer({ min: 1, max: 1201 }));
  it('every unary op, any float dtype, sizes with and without a multiple of 4', async () => {
    const be = await gpu();
    await fc.assert(fc.asyncProperty(fc.constantFrom(...UNARY), sizeArb, fc.constantFrom(...FLOATS), fc.nat(), async (c, n, dtype, seed) => {
      await checkAgainstCpu(be, `${c.op} [${n}] ${dtype}`, [{ values: unaryInput(c, n, seed), shape: [n], dtype }], c.fn, c.tol);
    }), gpuRuns(12));
  });

  it('every binary op on same-shape operands of any dtype, sizes with and without a multiple of 4', async () => {
    const be = await gpu();
    await fc.assert(fc.asyncProperty(fc.constantFrom(...BINARY), sizeArb, fc.constantFrom(...ALL), fc.constantFrom(...ALL), fc.nat(), async (c, n, da, db, seed) => {
      const dbb = c.bKind === 'nonzero' && db === 'i32' ? 'f32' : db;
      await checkAgainstCpu(be, `${c.op} [${n}] ${da} ${dbb}`, [
        { values: randomValues(n, seed, c.a[0], c.a[1]), shape: [2, n / 2].every(Number.isInteger) ? [2, n / 2] : [n], dtype: da },
        { values: binaryB(c, n, seed + 1), shape: [2, n / 2].every(Number.isInteger) ? [2, n / 2] : [n], dtype: dbb },
      ], c.fn, c.tol);
    }), gpuRuns(12));
  });

  it('the 4-wide and one-wide entries agree bit for bit on a large input (more than 65535 workgroups of the one-wide entry)', async () => {
    const be = await gpu();
    const n = 4 * (2 ** 22 + 5);
    const x = F.fromArray(be, randomValues(n, 'v4', -6, 6), [n]);
    const outs: Float32Array[] = [];
    for (const v4 of [true, false]) {
      elementwiseConfig.vec4 = v4;
      try {
        const y = F.add(F.silu(x), x);
        outs.push((await y.read()) as Float32Array);
        y.dispose();
      } finally {
        elementwiseConfig.vec4 = true;
      }
    }
    x.dispose();
    expect(Buffer.from(outs[0].buffer).equals(Buffer.from(outs[1].buffer))).toBe(true);
  });
});

// ------------------------------------------------------------------ binary and where

/** An output shape of rank 1-6 and two shapes that broadcast to it (size-1 dims and missing leading dims on either side). */
const bcastArb = (n = 2) => shapeArb(1, 6, 5).chain((out) => fc.tuple(
  fc.constant(out),
  fc.array(fc.tuple(fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }), fc.integer({ min: 0, max: out.length })),
    { minLength: n, maxLength: n }),
)).map(([out, specs]) => ({
  out,
  ins: specs.map(([ones, drop]) => out.map((d, i) => (ones[i] ? 1 : d)).slice(drop)),
}));

interface BinaryCase {
  op: BinaryOp;
  fn: (a: Tensor, b: Tensor) => Tensor;
  a: [number, number];
  b: [number, number];
  tol: Tol;
  /** b's values: integers (pow exponents) or away from zero (div) */
  bKind?: 'int-or-half' | 'nonzero';
}

const BINARY: BinaryCase[] = [
  { op: 'add', fn: F.add, a: [-4, 4], b: [-4, 4], tol: EXACT },
  { op: 'sub', fn: F.sub, a: [-4, 4], b: [-4, 4], tol: EXACT },
  { op: 'mul', fn: F.mul, a: [-4, 4], b: [-4, 4], tol: EXACT },
  { op: 'div', fn: F.div, a: [-4, 4], b: [0.25, 4], tol: { atol: 0, rtol: 1e-6 }, bKind: 'nonzero' },
  { op: 'max', fn: F.maximum, a: [-4, 4], b: [-4, 4], tol: EXACT },
  { op: 'min', fn: F.minimum, a: [-4, 4], b: [-4, 4], tol: EXACT },
  { op: 'pow', fn: F.pow, a: [-3, 3], b: [-3, 3], tol: { atol: 1e-6, rtol: 2e-5 }, bKind: 'int-or-half' },
];

function binaryB(c: BinaryCase, n: number, seed: number): Float32Array {
  const v = randomValues(n, seed, c.b[0], c.b[1]);
  if (c.bKind === 'nonzero') for (let i = 0; i < n; i++) if (i % 2) v[i] = -v[i];
  // exponents: mostly integers (defined on negative bases), some halves (NaN on negatives)
  if (c.bKind === 'int-or-half') for (let i = 0; i < n; i++) v[i] = i % 3 ? Math.round(v[i]) : Math.round(v[i] * 2) / 2;
  return v;
}

const ALL: DType[] = ['f32', 'bf16', 'f16', 'i32'];

describe('webgpu binary', () => {
  it.each(BINARY.map((c) => [c.op, c] as const))('%s broadcasting over random shapes, any input dtypes', async (_name, c) => {
    const be = await gpu();
    await fc.assert(fc.asyncProperty(bcastArb(), fc.constantFrom(...ALL), fc.constantFrom(...ALL), fc.nat(), async ({ out, ins }, da, db, seed) => {
      const [sa, sb] = ins;
      // i32 operands of pow/div keep the value ranges meaningful: truncation may give 0 divisors
      const dbb = c.bKind === 'nonzero' && db === 'i32' ? 'f32' : db;
      await checkAgainstCpu(be, `${c.op} ${sa}:${da} ${sb}:${dbb} -> ${out}`, [
        { values: randomValues(numel(sa), seed, c.a[0], c.a[1]), shape: sa, dtype: da },
        { values: binaryB(c, numel(sb), seed + 1), shape: sb, dtype: dbb },
      ], c.fn, c.tol);
    }), gpuRuns(6));
  });

  it('i32 operands are read as f32 (large ids round the same way), NaN propagates through max/min', async () => {
    const be = await gpu();
    const big = Int32Array.from([2 ** 24 + 1, -(2 ** 31), 2 ** 31 - 1, 7, -3]);
    await checkAgainstCpu(be, 'i32 + f32', [{ values: big, shape: [5], dtype: 'i32' }, { values: [0.5], shape: [1] }], F.add, EXACT);
    await checkAgainstCpu(be, 'i32 * i32', [{ values: big, shape: [5, 1], dtype: 'i32' }, { values: big, shape: [1, 5], dtype: 'i32' }], F.mul, EXACT);
    const v = [NaN, 1, NaN, -Infinity, Infinity, 0];
    const w = [2, NaN, NaN, 1, -1, -0];
    for (const fn of [F.maximum, F.minimum, F.add, F.mul, F.div, F.sub]) {
      await checkAgainstCpu(be, `nan ${fn.name}`, [{ values: v, shape: [6] }, { values: w, shape: [6] }], fn, EXACT);
    }
  });
});

describe('webgpu where', () => {
  it('broadcast condition (f32/i32/bf16, nonzero = true, NaN = true) between broadcast operands', async () => {
    const be = await gpu();
    await fc.assert(fc.asyncProperty(bcastArb(3), fc.constantFrom<DType>('f32', 'i32', 'bf16'), fc.constantFrom(...ALL), fc.constantFrom(...ALL), fc.nat(),
      async ({ out, ins }, dc, da, db, seed) => {
        const [sc, sa, sb] = ins;
        const cond = randomInts(numel(sc), seed, -1, 3).map((v) => (v === 2 ? 0 : v));
        const condValues = dc === 'i32' ? cond : Float32Array.from(cond, (v, i) => (i % 7 === 3 ? NaN : v === 1 ? 0.5 : v));
        await checkAgainstCpu(be, `where ${sc}:${dc} ${sa}:${da} ${sb}:${db} -> ${out}`, [
          { values: condValues, shape: sc, dtype: dc },
          { values: randomValues(numel(sa), seed + 1, -4, 4), shape: sa, dtype: da },
          { values: randomValues(numel(sb), seed + 2, -4, 4), shape: sb, dtype: db },
        ], F.where, EXACT);
      }), gpuRuns(10));
  });

  it('additiveMask: 0 where allowed, -inf elsewhere', async () => {
    const be = await gpu();
    await checkAgainstCpu(be, 'mask', [{ values: [1, 0, 1, 1, 0, 0], shape: [2, 3], dtype: 'i32' }], F.additiveMask, EXACT);
  });
});
