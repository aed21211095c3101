// matmul on the WebGPU backend against the CPU oracle: out[batch, M, N] = alpha * op(a) @ op(b) + bias,
// every transpose combination, b shared by the batch or not, bf16 / f16 weights and biases, sizes
// that are not multiples of any tile, and every kernel version forced in turn.
//
// Tolerance, |gpu - cpu| <= atol + rtol |cpu|: the oracle sums in float64 and rounds once; the
// kernels accumulate in float32 in another order (4-wide blocks, fma). With |values| <= 1 the
// float32 error is a few K * 2^-24 * sum|a b| in the worst case and ~sqrt(K) * 2^-24 * |a||b| in
// practice (observed <= 2e-6 for K <= 300): atol 1e-5 * max(1, sqrt(K)), rtol 1e-4 keep ~10x headroom.
// Half inputs (bf16 / f16 weights, biases) are widened exactly on both sides, so they add nothing.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { type MatmulVersion, matmulConfig, pickVersion } from '../../src/engine/webgpu/ops/matmul.js';
import { type Tol, assertClose, awkwardDim, cpu, gpu, gpuRuns, randomValues } from '../harness.js';

const tolFor = (K: number): Tol => ({ atol: 1e-5 * Math.max(1, Math.sqrt(K)), rtol: 1e-4 });

interface Case {
  batch: number;
  /** 1: b has no batch dims (a weight shared by the batch); else b is batched like a */
  batchB: number;
  M: number;
  K: number;
  N: number;
  transA: boolean;
  transB: boolean;
  bDtype: DType;
  bias: DType | null;
  alpha: number;
}

const show = (c: Case) =>
  `batch ${c.batch}${c.batchB === 1 && c.batch > 1 ? ' (b shared)' : ''} M ${c.M} K ${c.K} N ${c.N}` +
  `${c.transA ? ' aT' : ''}${c.transB ? ' bT' : ''} b ${c.bDtype}${c.bias ? ` bias ${c.bias}` : ''} alpha ${c.alpha}`;

/**
 * Build the operands on both backends, run F.matmul, compare. With `version`, that kernel is forced
 * and the case must be one it takes (so the test cannot silently exercise another kernel).
 */
async function check(c: Case, version: MatmulVersion = 'auto', seed = 1): Promise<void> {
  const be = await gpu();
  const lead = c.batch === 1 ? [] : [c.batch];
  const aShape = [...lead, ...(c.transA ? [c.K, c.M] : [c.M, c.K])];
  const bShape = [...(c.batchB === 1 ? [] : lead), ...(c.transB ? [c.N, c.K] : [c.K, c.N])];
  const av = randomValues(c.batch * c.M * c.K, `a${seed}`);
  const bv = randomValues(c.batchB * c.K * c.N, `b${seed}`);
  const cv = randomValues(c.N, `c${seed}`);
  const made: Tensor[] = [];
  const run = (backend: typeof cpu | typeof be) => {
    const a = F.fromArray(backend, av, aShape);
    const b = F.fromArray(backend, bv, bShape, c.bDtype);
    const bias = c.bias ? F.fromArray(backend, cv, [c.N], c.bias) : null;
    made.push(a, b, ...(bias ? [bias] : []));
    if (backend === be && version !== 'auto') {
      const used = pickVersion(be, a, b, { transA: c.transA, transB: c.transB, M: c.M, N: c.N, K: c.K, batch: c.batch, batchB: c.batchB, alpha: c.alpha });
      expect(used, `${show(c)}: forced version`).toBe(version);
    }
    const y = F.matmul(a, b, { transA: c.transA, transB: c.transB, bias, alpha: c.alpha });
    made.push(y);
    return y;
  };
  matmulConfig.version = version;
  try {
    const want = run(cpu);
    const got = run(be);
    expect(got.shape, show(c)).toEqual([...lead, c.M, c.N]);
    expect(got.dtype).toBe('f32');
    assertClose(await got.read(), await want.read(), tolFor(c.K), `${version}: ${show(c)}`);
  } finally {
    matmulConfig.version = 'auto';
    for (const t of made) t.dispose();
  }
}

const base: Case = { batch: 1, batchB: 1, M: 1, K: 1, N: 1, transA: false, transB: false, bDtype: 'f32', bias: null, alpha: 1 };
const mk = (o: Partial<Case>): Case => ({ ...base, ...o });

afterEach(() => {
  matmulConfig.version = 'auto';
  matmulConfig.texRows = undefined;
});

describe('webgpu matmul (automatic kernel choice)', () => {
  it('matches the oracle over random shapes, layouts, dtypes, bias and alpha', async () => {
    const caseArb = fc.record({
      batch: fc.integer({ min: 1, max: 3 }),
      sharedB: fc.boolean(),
      M: awkwardDim(40),
      K: awkwardDim(40),
      N: awkwardDim(40),
      transA: fc.boolean(),
      transB: fc.boolean(),
      bDtype: fc.constantFrom<DType>('f32', 'bf16', 'f16'),
      bias: fc.constantFrom<DType | null>(null, 'f32', 'bf16'),
      alpha: fc.constantFrom(1, -0.5, 2.25),
    });
    await fc.assert(fc.asyncProperty(caseArb, fc.nat(1000), async (r, seed) => {
      await check({ ...r, batchB: r.sharedB ? 1 : r.batch }, 'auto', seed);
    }), gpuRuns(10));
  });

  it('nn.Linear shape: x [2, 5, 40] @ w[24, 40]^T + b with bf16 weight and bias', async () => {
    await check(mk({ batch: 10, M: 1, K: 40, N: 24, transB: true, bDtype: 'bf16', bias: 'bf16' }));
    const be = await gpu();
    const x = randomValues(400, 'x');
    const w = randomValues(24 * 40, 'w');
    const bb = randomValues(24, 'bb');
    const y = F.linear(F.fromArray(be, x, [2, 5, 40]), F.fromArray(be, w, [24, 40], 'bf16'), F.fromArray(be, bb, [24], 'bf16'));
    const yc = F.linear(F.fromArray(cpu, x, [2, 5, 40]), F.fromArray(cpu, w, [24, 40], 'bf16'), F.fromArray(cpu, bb, [24], 'bf16'));
    expect(y.shape).toEqual([2, 5, 24]);
    assertClose(await y.read(), await yc.read(), tolFor(40), 'linear');
  });

  it('K = 0 gives alpha * 0 + bias; M = 0 gives an empty result', async () => {
    await check(mk({ M: 3, K: 0, N: 5, bias: 'f32', alpha: 3 }));
    const be = await gpu();
    const y = F.matmul(F.fromArray(be, [], [0, 4]), F.fromArray(be, randomValues(20, 'z'), [4, 5]));
    expect(y.shape).toEqual([0, 5]);
    expect((await y.read()).length).toBe(0);
  });

  it('picks the texture kernels on a CPU adapter for large aligned shapes, storage kernels otherwise', async () => {
    const be = await gpu();
    const pick = (M: number, K: number, N: number, bDtype: DType = 'bf16') => {
      const a = F.fromArray(be, new Float32Array(M * K), [M, K]);
      const b = F.fromArray(be, new Float32Array(N * K), [N, K], bDtype);
      const v = pickVersion(be, a, b, { transA: false, transB: true, M, N, K, batch: 1, batchB: 1, alpha: 1 });
      a.dispose();
      b.dispose();
      return v;
    };
    const software = /llvmpipe|softpipe|lavapipe|swiftshader/i.test(be.adapter);
    if (software) {
      expect(pick(256, 256, 256)).toBe('v5_tex32x16');
      expect(pick(8, 512, 512)).toBe('v6_tex4x32');
      expect(pick(1, 1024, 1024)).toBe('gemv_tex8');
      expect(pick(1, 1024, 1024, 'f32')).toBe('gemv_tex');
      expect(pick(256, 255, 256)).toBe('v4_reg16'); // K % 4 != 0: no texture path
    }
    expect(pick(2, 2, 2)).toBe('v1_naive');
  });
});

// Each version on cases it must take: edges that are not multiples of its tile, every layout and
// dtype spread over the cases. Few cases per version: on llvmpipe each new specialisation of the
// big tiles costs seconds of JIT.
const versionCases: Record<Exclude<MatmulVersion, 'auto'>, Case[]> = {
  v1_naive: [
    mk({ batch: 2, M: 5, K: 7, N: 3, transA: true, bDtype: 'f16', bias: 'f32', alpha: -0.5 }),
  ],
  v2_shared: [
    mk({ batch: 2, M: 70, K: 37, N: 65, transB: true, bDtype: 'bf16', bias: 'bf16', alpha: 0.5 }),
    mk({ batch: 3, batchB: 3, M: 9, K: 20, N: 10, transA: true }),
  ],
  v7_shared8x8: [
    mk({ batch: 2, M: 131, K: 37, N: 130, transB: true, bDtype: 'bf16', bias: 'bf16', alpha: 0.5 }),
    mk({ batch: 3, batchB: 3, M: 9, K: 20, N: 10, transA: true }),
  ],
  v3_reg4: [
    mk({ M: 6, K: 9, N: 7, transA: true, transB: true }),
    mk({ batch: 2, M: 13, K: 16, N: 8, bDtype: 'bf16', bias: 'f32', alpha: 2 }),
  ],
  v4_reg16: [
    mk({ M: 35, K: 22, N: 36, transB: true, bDtype: 'bf16', bias: 'bf16' }),
    mk({ batch: 2, M: 17, K: 12, N: 20, transA: true, alpha: -1 }),
  ],
  v5_tex32x16: [
    mk({ M: 70, K: 36, N: 52, transB: true, bDtype: 'bf16', bias: 'bf16', alpha: 0.75 }),
    mk({ batch: 2, batchB: 2, M: 36, K: 20, N: 20, transA: true, bDtype: 'f16' }),
  ],
  v6_tex4x32: [
    mk({ batch: 2, M: 5, K: 24, N: 40, transB: true, bDtype: 'f16', bias: 'f32' }),
  ],
  gemv_split: [
    mk({ M: 1, K: 300, N: 9, transB: true, bDtype: 'bf16', bias: 'bf16' }),
    mk({ batch: 2, M: 3, K: 13, N: 6, transA: true, alpha: 1.5 }),
  ],
  gemv_tex: [
    mk({ M: 1, K: 64, N: 36, transB: true, bDtype: 'bf16', bias: 'bf16' }),
    mk({ batch: 2, M: 3, K: 8, N: 8 }),
  ],
  gemv_tex8: [
    mk({ M: 1, K: 64, N: 36, transB: true, bDtype: 'bf16', bias: 'bf16' }),
    mk({ batch: 2, M: 3, K: 24, N: 8, transB: true, bDtype: 'f16', alpha: 0.5 }),
  ],
};

describe('webgpu matmul versions against the oracle', () => {
  for (const [version, cases] of Object.entries(versionCases)) {
    it.each(cases.map((c) => [show(c), c] as const))(`${version}: %s`, async (_label, c) => {
      await check(c, version as MatmulVersion);
    });
  }

  it('texture path: operands bigger than one texture are split into row / column chunks', async () => {
    matmulConfig.texRows = 1; // 4096 texels a texture: 16384 f32 elements
    // a: 2 x 150 rows of 64 (19200 elements, batch folded into rows) in chunks of 256 rows;
    // b: 260 x 64 bf16 in chunks of 256 columns, the last one 4 wide
    await check(mk({ batch: 2, M: 150, K: 64, N: 260, transB: true, bDtype: 'bf16', bias: 'bf16', alpha: 0.5 }), 'v5_tex32x16');
    matmulConfig.texRows = 1;
    await check(mk({ M: 1, K: 64, N: 600, transB: true, bDtype: 'bf16', bias: 'bf16' }), 'gemv_tex8');
  });

  it('dispatches past 65535 workgroups fold into a 2D grid (per-output and per-workgroup kernels)', async () => {
    await check(mk({ M: 2100, N: 2000, K: 1, bias: 'f32' }), 'v1_naive');
    await check(mk({ batch: 66000, batchB: 66000, M: 1, N: 1, K: 2 }), 'gemv_split');
  });
});
