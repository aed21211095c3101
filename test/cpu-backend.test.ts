// The CPU backend is the oracle the WebGPU kernels are checked against, so these tests pin it
// to the primitive semantics of backend.ts on small hand-computed cases, going through the
// user-facing ops exactly as model code does.
import { describe, expect, it } from 'vitest';
import { cpu } from '../src/engine/cpu/backend.js';
import { f32ToBf16, f32ToF16 } from '../src/engine/dtype.js';
import * as ops from '../src/engine/ops.js';
import { type Tensor, scope } from '../src/engine/tensor.js';

const t = (values: number[], shape: number[], dtype: 'f32' | 'f16' | 'bf16' | 'i32' = 'f32') =>
  ops.fromArray(cpu, values, shape, dtype);
const vals = async (x: Tensor) => Array.from(await x.read());

/** Deterministic values in [-1, 1) (a tiny LCG, so cases are reproducible without fixtures). */
function rand(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e)) expect(a, `element ${i}`).toBeNaN();
    else if (!Number.isFinite(e)) expect(a, `element ${i}`).toBe(e);
    else expect(Math.abs(a - e), `element ${i}: ${a} vs ${e}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(e)));
  }
}

describe('cpu backend: identity and memory', () => {
  it('names itself', () => {
    expect(cpu.name).toBe('cpu');
    expect(cpu.adapter).toBe('cpu (TypeScript reference)');
  });

  it('upload copies the caller array and read returns copies', async () => {
    const src = new Float32Array([1, 2, 3]);
    const x = ops.fromArray(cpu, src, [3]);
    src[0] = 99;
    const r = await x.read();
    expect(Array.from(r)).toEqual([1, 2, 3]);
    r[1] = 77;
    expect(await vals(x)).toEqual([1, 2, 3]);
  });

  it('reads half types widened to f32 and readRaw gives the 16-bit patterns', async () => {
    const b = t([1.5, -2, 3.140625], [3], 'bf16');
    const h = t([0.5, 65504, -0.099975586], [3], 'f16');
    expect(Array.from(await b.readRaw())).toEqual([1.5, -2, 3.140625].map(f32ToBf16));
    expect(await b.read()).toBeInstanceOf(Float32Array);
    expect(await vals(b)).toEqual([1.5, -2, 3.140625]);
    expect(Array.from(await h.readRaw())).toEqual([0.5, 65504, -0.099975586].map(f32ToF16));
    expectClose(await h.read(), [0.5, 65504, -0.099975586], 1e-7);
  });

  it('i32 tensors read as Int32Array', async () => {
    const r = await t([3, -4], [2], 'i32').read();
    expect(r).toBeInstanceOf(Int32Array);
    expect(Array.from(r)).toEqual([3, -4]);
  });

  it('rejects a raw array of the wrong kind', () => {
    expect(() => ops.fromRaw(cpu, new Float32Array(2), [2], 'bf16')).toThrow(/cannot hold bf16/);
  });

  it('frees storage when the last view is disposed, and reshape views share it', async () => {
    const x = t([1, 2, 3, 4], [2, 2]);
    const v = x.reshape([4]);
    x.dispose();
    expect(await vals(v)).toEqual([1, 2, 3, 4]);
    v.dispose();
    expect(x.storage.refs).toBe(0);
    await expect(cpu.readRaw(v)).rejects.toThrow(/after free/);
  });

  it('scope frees intermediates and keeps results', async () => {
    let inner: Tensor | undefined;
    const y = scope(() => {
      inner = ops.neg(t([1, 2], [2]));
      return ops.abs(inner);
    });
    expect(inner!.isDisposed).toBe(true);
    expect(await vals(y)).toEqual([1, 2]);
  });

  it('sync resolves immediately', async () => {
    await expect(cpu.sync()).resolves.toBeUndefined();
  });
});

describe('cpu backend: cast', () => {
  it('to i32 truncates toward zero like torch .to(int32)', async () => {
    const y = ops.cast(t([1.7, -1.7, 2.5, -0.2, 3], [5]), 'i32');
    expect(y.dtype).toBe('i32');
    expect(await vals(y)).toEqual([1, -1, 2, 0, 3]);
  });

  it('to bf16 and f16 rounds to nearest even, and back to f32 widens exactly', async () => {
    const x = t([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -11], [3]);
    const b = ops.cast(x, 'bf16');
    expect(b.dtype).toBe('bf16');
    // bf16 keeps 7 mantissa bits: the halfway 1+2^-8 ties to 1, 1+3*2^-8 ties up to 1+2^-6
    expect(await vals(b)).toEqual([1, 1 + 2 ** -6, 1]);
    const h = ops.cast(x, 'f16');
    expect(await vals(h)).toEqual([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1]);
    const back = ops.cast(b, 'f32');
    expect(back.dtype).toBe('f32');
    expect(await vals(back)).toEqual([1, 1 + 2 ** -6, 1]);
  });

  it('i32 to f32 converts values', async () => {
    expect(await vals(ops.cast(t([7, -3], [2], 'i32'), 'f32'))).toEqual([7, -3]);
  });
});

describe('cpu backend: unary', () => {
  const x = [-2, -0.5, 0, 0.5, 1, 3];
  const cases: [string, (a: Tensor) => Tensor, (v: number) => number][] = [
    ['neg', ops.neg, (v) => -v],
    ['abs', ops.abs, Math.abs],
    ['exp', ops.exp, Math.exp],
    ['square', ops.square, (v) => v * v],
    ['sin', ops.sin, Math.sin],
    ['cos', ops.cos, Math.cos],
    ['tanh', ops.tanh, Math.tanh],
    ['sigmoid', ops.sigmoid, (v) => 1 / (1 + Math.exp(-v))],
    ['silu', ops.silu, (v) => v / (1 + Math.exp(-v))],
    ['relu', ops.relu, (v) => Math.max(0, v)],
    ['floor', ops.floor, Math.floor],
    ['ceil', ops.ceil, Math.ceil],
    ['affine 2x-1', (a) => ops.affine(a, 2, -1), (v) => 2 * v - 1],
    ['scale 3x', (a) => ops.scale(a, 3), (v) => 3 * v],
    ['clamp to [-1, 0.7]', (a) => ops.clamp(a, -1, 0.7), (v) => Math.min(Math.max(v, -1), 0.7)],
    ['pow_scalar x^2', (a) => ops.powScalar(a, 2), (v) => v ** 2],
  ];
  for (const [name, f, ref] of cases) {
    it(`${name} matches its formula`, async () => {
      expectClose(await vals(f(t(x, [2, 3]))), x.map(ref), 1e-6);
    });
  }

  it('log, sqrt, rsqrt, recip, atanh on their domains (and outside)', async () => {
    const p = [0.25, 1, 4];
    expectClose(await vals(ops.log(t(p, [3]))), p.map(Math.log), 1e-6);
    expectClose(await vals(ops.sqrt(t(p, [3]))), [0.5, 1, 2]);
    expectClose(await vals(ops.rsqrt(t(p, [3]))), [2, 1, 0.5]);
    expectClose(await vals(ops.recip(t(p, [3]))), [4, 1, 0.25]);
    expectClose(await vals(ops.atanh(t([0, 0.5, -0.5], [3]))), [0, Math.atanh(0.5), -Math.atanh(0.5)], 1e-6);
    expectClose(await vals(ops.log(t([0, -1], [2]))), [-Infinity, NaN]);
    expectClose(await vals(ops.recip(t([0], [1]))), [Infinity]);
  });

  it('round is round-half-to-even (torch.round)', async () => {
    const y = await vals(ops.round(t([0.5, 1.5, 2.5, -2.5, -0.5, 2.4, -3.7, 3.5], [8])));
    expect(y).toEqual([0, 2, 2, -2, -0, 2, -4, 4]);
  });

  it('gelu is the exact erf form; gelu_tanh the tanh approximation', async () => {
    const g = await vals(ops.gelu(t([1, -1, 0, 2, -3], [5])));
    // 0.5 x (1 + erf(x / sqrt 2)), values from scipy
    expectClose(g, [0.8413447460685429, -0.15865525393145707, 0, 1.9544997361036416, -0.004049694094890284], 1e-6);
    const k = Math.sqrt(2 / Math.PI);
    const gt = await vals(ops.geluTanh(t([1, -1, 2], [3])));
    expectClose(gt, [1, -1, 2].map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3)))), 1e-6);
    expect(Math.abs(gt[0] - 0.8413447460685429)).toBeGreaterThan(1e-5);
  });

  it('sign gives -1, 0, 1 (and 0 for NaN, as ATen does)', async () => {
    expect(await vals(ops.sign(t([-3, 0, 0.1, NaN], [4])))).toEqual([-1, 0, 1, 0]);
  });

  it('propagates NaN through relu and clamp', async () => {
    expectClose(await vals(ops.relu(t([NaN], [1]))), [NaN]);
    expectClose(await vals(ops.clamp(t([NaN], [1]), 0, 1)), [NaN]);
  });

  it('widens bf16 inputs and outputs f32', async () => {
    const y = ops.neg(t([1.5, -2], [2], 'bf16'));
    expect(y.dtype).toBe('f32');
    expect(await vals(y)).toEqual([-1.5, 2]);
  });
});

describe('cpu backend: binary and where', () => {
  it('broadcasts size-1 dims numpy-style', async () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 1, 3]);
    const b = t([10, 20], [2, 1]);
    const y = ops.add(a, b);
    expect(y.shape).toEqual([2, 2, 3]);
    expect(await vals(y)).toEqual([11, 12, 13, 21, 22, 23, 14, 15, 16, 24, 25, 26]);
  });

  it('each op follows its formula', async () => {
    const a = t([1, -2, 3, 4], [2, 2]);
    const b = t([2, 4], [2]);
    expect(await vals(ops.sub(a, b))).toEqual([-1, -6, 1, 0]);
    expect(await vals(ops.mul(a, b))).toEqual([2, -8, 6, 16]);
    expect(await vals(ops.div(a, b))).toEqual([0.5, -0.5, 1.5, 1]);
    expect(await vals(ops.maximum(a, b))).toEqual([2, 4, 3, 4]);
    expect(await vals(ops.minimum(a, b))).toEqual([1, -2, 2, 4]);
    expect(await vals(ops.pow(a, b))).toEqual([1, 16, 9, 256]);
  });

  it('broadcasts a scalar-like [1] operand and mixes dtypes', async () => {
    const y = ops.mul(t([1, 2, 3], [3], 'f16'), t([0.5], [1], 'bf16'));
    expect(await vals(y)).toEqual([0.5, 1, 1.5]);
  });

  it('where picks a where cond != 0, broadcasting all three', async () => {
    const cond = t([1, 0, 0, 2], [2, 2], 'i32');
    const y = ops.where(cond, t([10, 20], [2]), t([-1], [1]));
    expect(await vals(y)).toEqual([10, -1, -1, 20]);
  });

  it('additiveMask gives 0 where allowed and -inf elsewhere', async () => {
    expect(await vals(ops.additiveMask(t([1, 0], [2], 'i32')))).toEqual([0, -Infinity]);
  });
});

describe('cpu backend: reductions', () => {
  // x[o, n, i] = 100o + 10n + i over [2, 3, 2]
  const x = () => t([0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121], [2, 3, 2]);

  it('sum, mean, max, min over the middle axis', async () => {
    expect(await vals(ops.sum(x(), 1))).toEqual([30, 33, 330, 333]);
    expect(await vals(ops.mean(x(), 1))).toEqual([10, 11, 110, 111]);
    expect(await vals(ops.max(x(), 1))).toEqual([20, 21, 120, 121]);
    expect(await vals(ops.min(x(), 0))).toEqual([0, 1, 10, 11, 20, 21]);
    const k = ops.sum(x(), -1, true);
    expect(k.shape).toEqual([2, 3, 1]);
    expect(await vals(k)).toEqual([1, 21, 41, 201, 221, 241]);
  });

  it('max propagates NaN', async () => {
    expectClose(await vals(ops.max(t([1, NaN, 3], [3]), 0)), [NaN]);
  });

  it('argmax returns the first index of the max as i32; NaN beats everything', async () => {
    const y = ops.argmax(t([1, 5, 5, 2, 7, 7, 0, 7], [2, 4]));
    expect(y.dtype).toBe('i32');
    expect(await vals(y)).toEqual([1, 0]);
    expect(await vals(ops.argmax(t([3, NaN, Infinity, NaN], [4])))).toEqual([1]);
    expect(await vals(ops.argmax(t([0, 9, 4, 2, 9, 3], [2, 3]), 0))).toEqual([1, 0, 0]);
  });

  it('softmax rows sum to one and are shift-invariant', async () => {
    // multiples of 1/64, so that the +1000 shift is exact in f32
    const xs = rand(12, 7).map((v) => Math.round(v * 50 * 64) / 64);
    const y = await vals(ops.softmax(t(xs, [3, 4])));
    const z = await vals(ops.softmax(t(xs.map((v) => v + 1000), [3, 4])));
    for (let r = 0; r < 3; r++) {
      const row = y.slice(r * 4, r * 4 + 4);
      expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
      const e = xs.slice(r * 4, r * 4 + 4).map(Math.exp);
      const se = e.reduce((s, v) => s + v, 0);
      expectClose(row, e.map((v) => v / se), 1e-5);
    }
    expectClose(z, y, 1e-5);
  });

  it('softmax over a non-last axis, -inf entries get zero, an all -inf row is NaN like torch', async () => {
    const y = await vals(ops.softmax(t([0, 1, Math.log(3), 1], [2, 2]), 0));
    expectClose(y, [0.25, 0.5, 0.75, 0.5]);
    expectClose(await vals(ops.softmax(t([0, -Infinity], [2]))), [1, 0]);
    expectClose(await vals(ops.softmax(t([-Infinity, -Infinity], [2]))), [NaN, NaN]);
  });

  it('cumsum is inclusive along the axis', async () => {
    expect(await vals(ops.cumsum(t([1, 2, 3, 4, 5, 6], [2, 3])))).toEqual([1, 3, 6, 4, 9, 15]);
    expect(await vals(ops.cumsum(t([1, 2, 3, 4, 5, 6], [2, 3]), 0))).toEqual([1, 2, 3, 5, 7, 9]);
  });

  it('topk is a stable descending sort: ties keep ascending index order', async () => {
    const [v, i] = ops.topk(t([2, 5, 2, 5, 1, 2, 0, 0, 0, 0, 0, 0], [2, 6]), 4);
    expect(v.shape).toEqual([2, 4]);
    expect(i.dtype).toBe('i32');
    expect(await vals(v)).toEqual([5, 5, 2, 2, 0, 0, 0, 0]);
    expect(await vals(i)).toEqual([1, 3, 0, 2, 0, 1, 2, 3]);
    const [sv, si] = ops.sortDescending(t([-Infinity, 3, NaN, Infinity], [4]));
    expectClose(await vals(sv), [NaN, Infinity, 3, -Infinity]);
    expect(await vals(si)).toEqual([2, 3, 1, 0]);
  });
});

describe('cpu backend: data movement', () => {
  const x23 = () => t([1, 2, 3, 4, 5, 6], [2, 3]);

  it('permute/transpose and contiguous', async () => {
    const y = ops.transpose(x23(), 0, 1);
    expect(y.shape).toEqual([3, 2]);
    expect(await vals(y)).toEqual([1, 4, 2, 5, 3, 6]);
    const z = ops.permute(t(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]), [2, 0, 1]);
    expect(z.shape).toEqual([4, 2, 3]);
    const zv = await vals(z);
    // z[a, b, c] = x[b, c, a] = 12b + 4c + a
    for (let a = 0; a < 4; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) {
      expect(zv[(a * 2 + b) * 3 + c]).toBe(12 * b + 4 * c + a);
    }
    expect(await vals(ops.contiguous(x23()))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('slice with start/end/step and negative bounds', async () => {
    const r = t([0, 1, 2, 3, 4, 5, 6, 7], [8]);
    expect(await vals(ops.slice(r, 0, 1, 7, 2))).toEqual([1, 3, 5]);
    expect(await vals(ops.slice(r, 0, -3))).toEqual([5, 6, 7]);
    expect(await vals(ops.slice(x23(), 1, 1, 3))).toEqual([2, 3, 5, 6]);
  });

  it('flip reverses one axis', async () => {
    expect(await vals(ops.flip(x23(), 1))).toEqual([3, 2, 1, 6, 5, 4]);
    expect(await vals(ops.flip(x23(), 0))).toEqual([4, 5, 6, 1, 2, 3]);
  });

  it('pad constant, replicate and reflect (PyTorch reflect: -1 -> 1, n -> n-2)', async () => {
    const r = () => t([1, 2, 3, 4], [1, 4]);
    expect(await vals(ops.pad(r(), [[0, 0], [2, 1]], 'constant', 9))).toEqual([9, 9, 1, 2, 3, 4, 9]);
    expect(await vals(ops.pad(r(), [[0, 0], [2, 1]], 'replicate'))).toEqual([1, 1, 1, 2, 3, 4, 4]);
    expect(await vals(ops.pad(r(), [[0, 0], [3, 2]], 'reflect'))).toEqual([4, 3, 2, 1, 2, 3, 4, 3, 2]);
    const p2 = ops.pad(t([1, 2, 3, 4], [2, 2]), [[1, 0], [0, 1]], 'reflect');
    expect(p2.shape).toEqual([3, 3]);
    expect(await vals(p2)).toEqual([3, 4, 3, 1, 2, 1, 3, 4, 3]);
  });

  it('expand materialises broadcast dims', async () => {
    const y = ops.expand(t([1, 2], [2, 1]), [3, 2, 2]);
    expect(await vals(y)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
  });

  it('repeatInterleave repeats each element in place', async () => {
    expect(await vals(ops.repeatInterleave(x23(), 2, 1))).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]);
    expect(await vals(ops.repeatInterleave(x23(), 2, 0))).toEqual([1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
  });

  it('upsampleNearest scales trailing axes by integer factors', async () => {
    const y = ops.upsampleNearest(t([1, 2, 3, 4], [1, 1, 2, 2]), [2, 3]);
    expect(y.shape).toEqual([1, 1, 4, 6]);
    expect(await vals(y)).toEqual([
      1, 1, 1, 2, 2, 2,
      1, 1, 1, 2, 2, 2,
      3, 3, 3, 4, 4, 4,
      3, 3, 3, 4, 4, 4,
    ]);
  });

  it('tile repeats the whole tensor', async () => {
    expect(await vals(ops.tile(t([1, 2], [2]), 3, 0))).toEqual([1, 2, 1, 2, 1, 2]);
  });

  it('concat then split round-trips, along an inner axis', async () => {
    const a = t(rand(2 * 3 * 2, 1), [2, 3, 2]);
    const b = t(rand(2 * 1 * 2, 2), [2, 1, 2]);
    const c = ops.concat([a, b], 1);
    expect(c.shape).toEqual([2, 4, 2]);
    expect((await vals(c)).slice(0, 8)).toEqual([...(await vals(a)).slice(0, 6), ...(await vals(b)).slice(0, 2)]);
    const [a2, b2] = ops.split(c, [3, 1], 1);
    expect(await vals(a2)).toEqual(await vals(a));
    expect(await vals(b2)).toEqual(await vals(b));
    const parts = ops.chunk(c, 2, 1);
    expect(await vals(ops.concat(parts, 1))).toEqual(await vals(c));
  });

  it('concat keeps i32 when every input is i32', async () => {
    const c = ops.concat([t([1, 2], [2], 'i32'), t([3], [1], 'i32')], 0);
    expect(c.dtype).toBe('i32');
    expect(await vals(c)).toEqual([1, 2, 3]);
  });

  it('setSlice writes in place; into an i32 dst values truncate', async () => {
    const d = ops.zeros(cpu, [3, 4]);
    ops.setSlice(d, t([1, 2, 3, 4], [2, 2]), [1, 2]);
    expect(await vals(d)).toEqual([0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4]);
    const di = ops.zeros(cpu, [4], 'i32');
    ops.setSlice(di, t([2.9, -2.9], [2], 'bf16'), [1]);
    expect(await vals(di)).toEqual([0, 2, -2, 0]);
  });

  it('setSlice from a view of its own storage reads before writing', async () => {
    const d = t([1, 2, 3, 4], [4]);
    ops.setSlice(d.reshape([2, 2]), d.reshape([2, 2]).reshape([1, 4]).reshape([2, 2]), [0, 0]);
    expect(await vals(d)).toEqual([1, 2, 3, 4]);
    const e = t([1, 2, 3, 4, 5, 6], [6]);
    ops.setSlice(e, ops.slice(e, 0, 0, 4), [2]);
    expect(await vals(e)).toEqual([1, 2, 1, 2, 3, 4]);
  });

  it('embedding picks rows; ids outside [0, V) give zeros', async () => {
    const table = t([1, 2, 3, 4, 5, 6], [3, 2], 'bf16');
    const y = ops.embedding(table, t([2, 0, -1, 3, 1, 2], [2, 3], 'i32'));
    expect(y.shape).toEqual([2, 3, 2]);
    expect(await vals(y)).toEqual([5, 6, 1, 2, 0, 0, 0, 0, 3, 4, 5, 6]);
  });

  it('indexSelect along an inner axis', async () => {
    const y = ops.indexSelect(x23(), 1, t([2, 0], [2], 'i32'));
    expect(y.shape).toEqual([2, 2]);
    expect(await vals(y)).toEqual([3, 1, 6, 4]);
  });
});

describe('cpu backend: matmul', () => {
  // A = [[1,2,3],[4,5,6]] (2x3), B = [[1,0],[0,1],[2,-1]] (3x2): A@B = [[7,-1],[16,-1]]
  const A = [1, 2, 3, 4, 5, 6];
  const At = [1, 4, 2, 5, 3, 6];
  const B = [1, 0, 0, 1, 2, -1];
  const Bt = [1, 0, 2, 0, 1, -1];
  const AB = [7, -1, 16, -1];

  it('all four transpose combinations agree', async () => {
    expect(await vals(ops.matmul(t(A, [2, 3]), t(B, [3, 2])))).toEqual(AB);
    expect(await vals(ops.matmul(t(At, [3, 2]), t(B, [3, 2]), { transA: true }))).toEqual(AB);
    expect(await vals(ops.matmul(t(A, [2, 3]), t(Bt, [2, 3]), { transB: true }))).toEqual(AB);
    expect(await vals(ops.matmul(t(At, [3, 2]), t(Bt, [2, 3]), { transA: true, transB: true }))).toEqual(AB);
  });

  it('scales by alpha before adding the bias', async () => {
    const y = ops.matmul(t(A, [2, 3]), t(B, [3, 2]), { alpha: 2, bias: t([100, 200], [2]) });
    expect(await vals(y)).toEqual([114, 198, 132, 198]);
  });

  it('batches a, and shares an unbatched b across the batch', async () => {
    const a = t([...A, ...A.map((v) => -v)], [2, 2, 3]);
    const shared = ops.matmul(a, t(B, [3, 2]));
    expect(shared.shape).toEqual([2, 2, 2]);
    expect(await vals(shared)).toEqual([...AB, ...AB.map((v) => -v)]);
    const perBatch = ops.matmul(a, t([...B, ...B.map((v) => 2 * v)], [2, 3, 2]));
    expect(await vals(perBatch)).toEqual([...AB, ...AB.map((v) => -2 * v)]);
  });

  it('matches a direct triple sum on random operands', async () => {
    const [bt, M, K, N] = [3, 4, 5, 6];
    const a = rand(bt * K * M, 3);
    const b = rand(bt * N * K, 4);
    const y = await vals(ops.matmul(t(a, [bt, K, M]), t(b, [bt, N, K]), { transA: true, transB: true, alpha: 0.5 }));
    const ref: number[] = [];
    for (let q = 0; q < bt; q++) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[(q * K + k) * M + m] * b[(q * N + n) * K + k];
      ref.push(0.5 * s);
    }
    expectClose(y, ref, 1e-6);
  });

  it('linear widens a bf16 weight and f16 bias', async () => {
    const w = [0.5, -1, 2, 0.25, 3, -0.125];
    const y = ops.linear(t([1, 2, 3, 4, 5, 6], [2, 1, 3]), t(w, [2, 3], 'bf16'), t([1, -1], [2], 'f16'));
    expect(y.shape).toEqual([2, 1, 2]);
    // row · w[o] + b[o]
    expect(await vals(y)).toEqual([0.5 - 2 + 6 + 1, 0.25 + 6 - 0.375 - 1, 2 - 5 + 12 + 1, 1 + 15 - 0.75 - 1]);
  });

  it('the nn.Linear layout (blocks of 4 rows and the rest) equals the general loop on the transposed weight, bit for bit', async () => {
    const [M, K, N] = [6, 37, 5];
    const a = t(rand(M * K, 5), [M, K]);
    const w = t(rand(N * K, 6), [N, K]);
    const bias = t(rand(N, 7), [N]);
    const viaLinear = await vals(ops.matmul(a, w, { transB: true, alpha: 0.5, bias }));
    expect(viaLinear).toEqual(await vals(ops.matmul(a, ops.transpose(w, 0, 1), { alpha: 0.5, bias })));
  });

  it('a bf16 weight widened row by row gives exactly what its f32 copy gives, batched or shared', async () => {
    const [bt, M, K, N] = [2, 6, 37, 5];
    const a = t(rand(bt * M * K, 7), [bt, M, K]);
    const w16 = t(rand(bt * N * K, 8), [bt, N, K], 'bf16');
    const w32 = ops.cast(w16, 'f32');
    for (const [w, w2] of [[w16, w32], [ops.slice(w16, 0, 0, 1).reshape([N, K]), ops.slice(w32, 0, 0, 1).reshape([N, K])]]) {
      const bias = t(rand(N, 9), [N]);
      expect(await vals(ops.matmul(a, w, { transB: true, alpha: 0.75, bias }))).toEqual(await vals(ops.matmul(a, w2, { transB: true, alpha: 0.75, bias })));
    }
  });
});

describe('cpu backend: conv', () => {
  /** Conv3d straight from its definition, one output element at a time. */
  function conv3dRef(
    x: number[], xs: number[], w: number[], ws: number[], bias: number[] | null,
    stride: number[], pad: number[], dil: number[], groups: number,
  ): { out: number[]; shape: number[] } {
    const [N, Cin, D, H, W] = xs;
    const [Cout, Cg, kD, kH, kW] = ws;
    const os = [D, H, W].map((s, i) => Math.floor((s + 2 * pad[i] - dil[i] * ([kD, kH, kW][i] - 1) - 1) / stride[i]) + 1);
    const out: number[] = [];
    const at = (n: number, c: number, d: number, h: number, ww: number) =>
      d < 0 || d >= D || h < 0 || h >= H || ww < 0 || ww >= W ? 0 : x[(((n * Cin + c) * D + d) * H + h) * W + ww];
    for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / (Cout / groups));
      for (let od = 0; od < os[0]; od++) for (let oh = 0; oh < os[1]; oh++) for (let ow = 0; ow < os[2]; ow++) {
        let s = bias ? bias[co] : 0;
        for (let c = 0; c < Cg; c++) for (let a = 0; a < kD; a++) for (let b = 0; b < kH; b++) for (let e = 0; e < kW; e++) {
          s += w[(((co * Cg + c) * kD + a) * kH + b) * kW + e]
            * at(n, g * Cg + c, od * stride[0] - pad[0] + a * dil[0], oh * stride[1] - pad[1] + b * dil[1], ow * stride[2] - pad[2] + e * dil[2]);
        }
        out.push(s);
      }
    }
    return { out, shape: [N, Cout, ...os] };
  }

  it('conv3d with stride, padding, dilation and groups matches the direct formula', async () => {
    const xs = [2, 4, 4, 5, 6];
    const ws = [6, 2, 2, 3, 2];
    const x = rand(xs.reduce((a, b) => a * b), 11);
    const w = rand(ws.reduce((a, b) => a * b), 12);
    const bias = rand(6, 13);
    const opts = { stride: [1, 2, 2], padding: [1, 1, 0], dilation: [2, 1, 2], groups: 2 };
    const y = ops.conv(t(x, xs), t(w, ws), t(bias, [6]), opts);
    const ref = conv3dRef(x, xs, w, ws, bias, opts.stride, opts.padding, opts.dilation, 2);
    expect(y.shape).toEqual(ref.shape);
    expectClose(await vals(y), ref.out, 1e-5);
  });

  it('depthwise conv3d (groups = channels) without bias', async () => {
    const xs = [1, 3, 3, 3, 3];
    const ws = [3, 1, 3, 3, 3];
    const x = rand(81, 21);
    const w = rand(81, 22);
    const y = ops.conv(t(x, xs), t(w, ws), null, { padding: 1, groups: 3 });
    const ref = conv3dRef(x, xs, w, ws, null, [1, 1, 1], [1, 1, 1], [1, 1, 1], 3);
    expect(y.shape).toEqual([1, 3, 3, 3, 3]);
    expectClose(await vals(y), ref.out, 1e-5);
  });

  it('conv1d by hand: [1,2,3,4] * [1,0,-1] with padding 1', async () => {
    const y = ops.conv(t([1, 2, 3, 4], [1, 1, 4]), t([1, 0, -1], [1, 1, 3]), null, { padding: 1 });
    expect(y.shape).toEqual([1, 1, 4]);
    // out[i] = x[i-1] - x[i+1]
    expect(await vals(y)).toEqual([-2, -2, -2, 3]);
  });

  it('conv2d by hand: 2x2 ones kernel, stride 2, bias', async () => {
    const x = Array.from({ length: 16 }, (_, i) => i);
    const y = ops.conv(t(x, [1, 1, 4, 4]), t([1, 1, 1, 1], [1, 1, 2, 2]), t([0.5], [1]), { stride: 2 });
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect(await vals(y)).toEqual([0 + 1 + 4 + 5 + 0.5, 2 + 3 + 6 + 7 + 0.5, 8 + 9 + 12 + 13 + 0.5, 10 + 11 + 14 + 15 + 0.5]);
  });

  it('a bf16 kernel is widened', async () => {
    const y = ops.conv(t([1, 2, 3], [1, 1, 3]), t([0.5, 0.25], [1, 1, 2], 'bf16'));
    expect(await vals(y)).toEqual([1, 1.75]);
  });
});

describe('cpu backend: normalisation', () => {
  it('layerNorm uses the biased variance, then weight and bias', async () => {
    // row [1,2,3,4]: mean 2.5, var 1.25
    const inv = 1 / Math.sqrt(1.25 + 1e-5);
    const y = ops.layerNorm(t([1, 2, 3, 4, 2, 2, 2, 2], [2, 4]), t([1, 2, 1, 1], [4]), t([0, 0, 0, 1], [4]), 1e-5);
    expectClose(await vals(y), [-1.5 * inv, -0.5 * inv * 2, 0.5 * inv, 1.5 * inv + 1, 0, 0, 0, 1]);
    expectClose(await vals(ops.layerNorm(t([1, 3], [2]), null, null, 0)), [-1, 1]);
  });

  it('rmsNorm divides by the root mean square, then weight', async () => {
    // row [3, 4]: mean square 12.5
    const r = Math.sqrt(12.5 + 1e-6);
    expectClose(await vals(ops.rmsNorm(t([3, 4], [1, 2]), t([2, 0.5], [2], 'bf16'), 1e-6)), [6 / r, 2 / r]);
    expectClose(await vals(ops.rmsNorm(t([3, 4], [2]), null, 0)), [3 / Math.sqrt(12.5), 4 / Math.sqrt(12.5)]);
  });

  it('groupNorm normalises per (sample, group of channels) over all positions', async () => {
    // N=2, C=4, S=2, 2 groups: each group pools 2 channels x 2 positions
    const x = [1, 2, 3, 4, 10, 10, 10, 10, 0, 0, 0, 8, -1, 1, -1, 1];
    const w = [1, 2, 3, 4];
    const b = [0, 1, 0, -1];
    const y = await vals(ops.groupNorm(t(x, [2, 4, 2]), 2, t(w, [4]), t(b, [4]), 1e-5));
    const ref: number[] = [];
    for (let n = 0; n < 2; n++) for (let g = 0; g < 2; g++) {
      const vs = x.slice(n * 8 + g * 4, n * 8 + g * 4 + 4);
      const m = vs.reduce((s, v) => s + v, 0) / 4;
      const v = vs.reduce((s, u) => s + (u - m) ** 2, 0) / 4;
      vs.forEach((u, j) => {
        const c = g * 2 + Math.floor(j / 2);
        ref.push(((u - m) / Math.sqrt(v + 1e-5)) * w[c] + b[c]);
      });
    }
    expectClose(y, ref);
    // the all-equal group normalises to zero, leaving only the bias
    expectClose(y.slice(4, 8), [0, 0, -1, -1]);
  });

  it('groupNorm over a 5-d video tensor keeps its shape', async () => {
    const x = t(rand(2 * 4 * 2 * 3 * 3, 5), [2, 4, 2, 3, 3]);
    const y = ops.groupNorm(x, 4, null, null, 1e-6);
    expect(y.shape).toEqual([2, 4, 2, 3, 3]);
    const v = await vals(y);
    // one group per channel: each channel's 18 values have mean 0 and variance ~1
    const ch = v.slice(18, 36);
    expect(ch.reduce((s, u) => s + u, 0) / 18).toBeCloseTo(0, 5);
    expect(ch.reduce((s, u) => s + u * u, 0) / 18).toBeCloseTo(1, 4);
  });
});

describe('cpu backend: attention', () => {
  /** softmax(scale QK^T + mask, causal) V written out per head, with no shortcuts. */
  function attentionRef(
    q: number[], k: number[], v: number[], mask: number[] | null,
    [B, Hq, Hkv, Lq, Lk, kvLen, D, Dv]: number[], scale: number, causal: boolean, maskB: number, maskH: number,
  ): number[] {
    const out: number[] = [];
    for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / (Hq / Hkv));
      for (let i = 0; i < Lq; i++) {
        const scores: number[] = [];
        for (let j = 0; j < kvLen; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[((b * Hq + h) * Lq + i) * D + d] * k[((b * Hkv + kh) * Lk + j) * D + d];
          s *= scale;
          if (mask) s += mask[(((maskB === 1 ? 0 : b) * maskH + (maskH === 1 ? 0 : h)) * Lq + i) * kvLen + j];
          if (causal && j > i + kvLen - Lq) s = -Infinity;
          scores.push(s);
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let d = 0; d < Dv; d++) {
          let acc = 0;
          for (let j = 0; j < kvLen; j++) acc += (e[j] / z) * v[((b * Hkv + kh) * Lk + j) * Dv + d];
          out.push(acc);
        }
      }
    }
    return out;
  }

  it('GQA + causal + partial KV cache + per-head additive mask match softmax(QK^T)V', async () => {
    const [B, Hq, Hkv, Lq, Lk, kvLen, D, Dv] = [2, 4, 2, 3, 7, 5, 4, 3];
    const q = rand(B * Hq * Lq * D, 31);
    const k = rand(B * Hkv * Lk * D, 32);
    const v = rand(B * Hkv * Lk * Dv, 33);
    // mask [1, Hq, Lq, kvLen]: shared over batch, different per head; one -inf to bite
    const mask = rand(Hq * Lq * kvLen, 34).map((u, i) => (i === 7 ? -Infinity : u));
    const y = ops.attention(t(q, [B, Hq, Lq, D]), t(k, [B, Hkv, Lk, D]), t(v, [B, Hkv, Lk, Dv]), {
      causal: true, kvLen, mask: t(mask, [1, Hq, Lq, kvLen]), scale: 0.7,
    });
    expect(y.shape).toEqual([B, Hq, Lq, Dv]);
    const ref = attentionRef(q, k, v, mask, [B, Hq, Hkv, Lq, Lk, kvLen, D, Dv], 0.7, true, 1, Hq);
    expectClose(await vals(y), ref, 1e-5);
  });

  it('defaults to scale 1/sqrt(D), no mask, all keys; a [B,1,Lq,Lk] mask broadcasts over heads', async () => {
    const [B, H, L, D] = [2, 2, 3, 4];
    const q = rand(B * H * L * D, 41);
    const k = rand(B * H * L * D, 42);
    const v = rand(B * H * L * D, 43);
    const mask = rand(B * L * L, 44);
    const dims = [B, H, H, L, L, L, D, D];
    const plain = ops.attention(t(q, [B, H, L, D]), t(k, [B, H, L, D]), t(v, [B, H, L, D]));
    expectClose(await vals(plain), attentionRef(q, k, v, null, dims, 0.5, false, 0, 0), 1e-5);
    const masked = ops.attention(t(q, [B, H, L, D]), t(k, [B, H, L, D]), t(v, [B, H, L, D]), { mask: t(mask, [B, 1, L, L]) });
    expectClose(await vals(masked), attentionRef(q, k, v, mask, dims, 0.5, false, B, 1), 1e-5);
  });

  it('a single query sees a causal KV cache in full (decode step)', async () => {
    const q = rand(4, 51);
    const k = rand(6 * 4, 52);
    const v = rand(6 * 2, 53);
    const y = ops.attention(t(q, [1, 1, 1, 4]), t(k, [1, 1, 6, 4]), t(v, [1, 1, 6, 2]), { causal: true, kvLen: 4 });
    expectClose(await vals(y), attentionRef(q, k, v, null, [1, 1, 1, 1, 6, 4, 4, 2], 0.5, false, 0, 0), 1e-5);
  });

  it('a fully masked query row outputs zeros rather than NaN', async () => {
    const mask = [0, 0, -Infinity, -Infinity];
    const y = ops.attention(t([1, 0, 0, 1], [1, 1, 2, 2]), t([1, 0, 0, 1], [1, 1, 2, 2]), t([1, 2, 3, 4], [1, 1, 2, 2]), {
      mask: t(mask, [2, 2]),
    });
    const out = await vals(y);
    expect(out.slice(2)).toEqual([0, 0]);
    expect(out.slice(0, 2).every(Number.isFinite)).toBe(true);
  });

  it('bf16 k/v are widened', async () => {
    const k = [1, 0.5, -0.25, 2];
    const v = [1.5, -3, 0.75, 8];
    const y = ops.attention(t([1, 1], [1, 1, 1, 2]), t(k, [1, 1, 2, 2], 'bf16'), t(v, [1, 1, 2, 2], 'bf16'), { scale: 1 });
    expectClose(await vals(y), attentionRef([1, 1], k, v, null, [1, 1, 1, 1, 2, 2, 2, 2], 1, false, 0, 0), 1e-6);
  });
});

describe('cpu backend: rope', () => {
  const D = 6;
  const R = 4;
  const L = 2;
  // per position l and rotated dim d an arbitrary angle; tables are [L, R]
  const theta = (l: number, d: number) => 0.3 * (l + 1) * (d + 1);
  const cos = Array.from({ length: L * R }, (_, i) => Math.cos(theta(Math.floor(i / R), i % R)));
  const sin = Array.from({ length: L * R }, (_, i) => Math.sin(theta(Math.floor(i / R), i % R)));

  function ropeRow(x: number[], l: number, mode: 'half' | 'interleaved'): number[] {
    const c = cos.slice(l * R, l * R + R);
    const s = sin.slice(l * R, l * R + R);
    const y = [...x];
    if (mode === 'half') {
      // rotate_half: [-x2, x1]
      for (let d = 0; d < R / 2; d++) y[d] = x[d] * c[d] - x[d + R / 2] * s[d];
      for (let d = R / 2; d < R; d++) y[d] = x[d] * c[d] + x[d - R / 2] * s[d];
    } else {
      for (let j = 0; j < R / 2; j++) {
        y[2 * j] = x[2 * j] * c[2 * j] - x[2 * j + 1] * s[2 * j];
        y[2 * j + 1] = x[2 * j + 1] * c[2 * j + 1] + x[2 * j] * s[2 * j + 1];
      }
    }
    return y;
  }

  for (const mode of ['half', 'interleaved'] as const) {
    it(`${mode} mode rotates the first R dims and passes the rest through, in both layouts`, async () => {
      const [B, H] = [1, 2];
      const x = rand(B * H * L * D, mode === 'half' ? 61 : 62);
      // x is [B, H, L, D]
      const ref: number[] = [];
      for (let h = 0; h < H; h++) for (let l = 0; l < L; l++) ref.push(...ropeRow(x.slice((h * L + l) * D, (h * L + l + 1) * D), l, mode));
      const y = await vals(ops.rope(t(x, [B, H, L, D]), t(cos, [L, R]), t(sin, [L, R]), { mode }));
      expectClose(y, ref, 1e-6);
      expect(y.slice(4, 6)).toEqual(Array.from(new Float32Array(x.slice(4, 6))));
      const xl = await vals(ops.transpose(t(x, [B, H, L, D]), 1, 2));
      const yl = ops.rope(t(xl, [B, L, H, D]), t(cos, [L, R]), t(sin, [L, R]), { mode, layout: 'blhd' });
      expectClose(await vals(ops.transpose(yl, 1, 2)), ref, 1e-6);
    });
  }

  it('by hand: half mode on [x0, x1] with a 90-degree angle gives [-x1, x0]', async () => {
    const y = ops.rope(t([3, 5], [1, 1, 1, 2]), t([0, 0], [1, 2]), t([1, 1], [1, 2]), { mode: 'half' });
    expect(await vals(y)).toEqual([-5, 3]);
  });

  it('per-batch tables [B, L, R] pick their own batch', async () => {
    const x = [1, 0, 1, 0];
    // batch 0: identity; batch 1: 90 degrees
    const c = t([1, 1, 0, 0], [2, 1, 2]);
    const s = t([0, 0, 1, 1], [2, 1, 2]);
    const y = ops.rope(t(x, [2, 1, 1, 2]), c, s, { mode: 'interleaved' });
    expect(await vals(y)).toEqual([1, 0, 0, 1]);
  });
});
