// The second WebGPU adapter of the test suite: a CORE adapter (Dawn's Vulkan backend on Chromium's
// SwiftShader ICD, COSMOS_VULKAN_ICD or /usr/lib/chromium/vk_swiftshader_icd.json), which has what
// llvmpipe's compatibility adapter lacks: subgroups and timestamp queries. CI installs chromium and
// libvulkan1 before `npm test`; without them this file fails (it never skips).
//
// - a focused subset of the op registry (every family whose kernels differ on a core adapter or
//   that the subgroup kernels touch), each case against the CPU oracle with the registry's own
//   tolerance;
// - the subgroup kernels (reduce / softmax rows, the split GEMV) by fast-check over awkward shapes
//   against the CPU oracle, each run also checked to have taken the subgroup entry;
// - timeKernels gives device time from timestamp queries.
//
// Tolerances: sum / mean as test/ops/reduce.test.ts argues them (|gpu - cpu| <= 4e-6 * L1 of the
// column + 1e-6 |cpu|; the subgroup fold reorders the same f32 sum); max / min exact (NaN and
// ±inf included); softmax atol 1e-7, rtol 2e-5 (as the registry); the GEMV as the registry's
// matmul / linear cases (matmulTol: atol 1e-5 * max(1, sqrt K), rtol 1e-4).
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { selectOpCases } from '../../src/conform/op-cases/index.js';
import { matmulTol } from '../../src/conform/op-cases/linalg.js';
import type { ReduceOp } from '../../src/engine/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import { SWIFTSHADER_ICD, type WebGpuOptions } from '../../src/engine/select.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { type WebGpuBackend, webgpu as webgpuDevice } from '../../src/engine/webgpu/backend.js';
import { type DispatchArgs, gridLimit } from '../../src/engine/webgpu/context.js';
import { matmulConfig } from '../../src/engine/webgpu/ops/matmul.js';
import { subgroupConfig } from '../../src/engine/webgpu/ops/subgroups.js';
import { checkOps } from '../../src/pipelines/check-ops.js';
import { type Tol, assertClose, awkwardDim, cpu, gpuRuns, randomInts, randomValues } from '../harness.js';

const CORE: WebGpuOptions = { api: 'vulkan', icd: process.env.COSMOS_VULKAN_ICD || SWIFTSHADER_ICD };

let be: WebGpuBackend;
beforeAll(async () => {
  be = await webgpuDevice(CORE); // no adapter -> the suite fails, never skips
}, 60_000);

afterEach(() => {
  vi.restoreAllMocks();
  subgroupConfig.enabled = undefined;
  matmulConfig.version = 'auto';
});

/** The entry points dispatched while `body` runs (family:entry). */
async function entriesOf<T>(body: () => Promise<T>): Promise<{ result: T; entries: Set<string> }> {
  const entries = new Set<string>();
  const real = be.ctx.dispatch.bind(be.ctx);
  const spy = vi.spyOn(be.ctx, 'dispatch').mockImplementation((a: DispatchArgs) => {
    entries.add(`${a.family.name}:${a.entry}`);
    real(a);
  });
  try {
    return { result: await body(), entries };
  } finally {
    spy.mockRestore();
  }
}

describe('the core adapter (Vulkan on SwiftShader)', () => {
  it('is a core adapter with subgroups and timestamp queries', () => {
    expect(be.adapter).toMatch(/swiftshader/i);
    expect(be.deviceInfo.featureLevel).toBe('core');
    expect(be.ctx.hasSubgroups).toBe(true);
    expect(be.ctx.hasTimestamps).toBe(true);
    expect(be.details.subgroups).toBe(true);
    expect(be.software).toBe(true);
  });

  it('times kernels from timestamp queries', async () => {
    const a = F.fromArray(be, randomValues(128 * 96, 1), [128, 96]);
    const b = F.fromArray(be, randomValues(96 * 64, 2), [96, 64]);
    const { result, ns } = await be.timeKernels(() => F.matmul(a, b));
    expect(ns).not.toBeNull();
    expect(ns!).toBeGreaterThan(0);
    // a 128x96x64 matmul on two CPU cores: well under a second of device time
    expect(ns!).toBeLessThan(1e9);
    for (const t of [a, b, result]) t.dispose();
  });
});

// Families whose kernels a core adapter runs differently (the storage-buffer conv / norm /
// attention entries: the texture-fed ones are Mesa's), the reductions and GEMVs the subgroup
// kernels touch, and the elementwise ops whose builtins SwiftShader computes its own way.
const SUBSET = ['matmul', 'linear', 'attention', 'conv3d', 'layerNorm', 'rmsNorm', 'groupNorm', 'sum', 'mean', 'max', 'min', 'softmax', 'argmax', 'cumsum', 'sin', 'cos', 'exp', 'gelu', 'tanh'];

describe('op registry cases on the core adapter against the cpu oracle', () => {
  const { cases, unknown } = selectOpCases(SUBSET);
  it('selects known ops', () => {
    expect(unknown).toEqual([]);
    expect(cases.length).toBeGreaterThan(30);
  });
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { results } = await checkOps({ backends: [be], oracle: cpu, cases: [c], timeReps: 0 });
    const r = results[0];
    expect(r.error, c.name).toBeNull();
    expect(r.pass, `${c.name}: max_abs ${r.max_abs} max_rel ${r.max_rel} worst ${JSON.stringify(r.worst)}`).toBe(true);
  });
});

// ------------------------------------------------------------------ subgroup kernels

/** Values in [-3, 3), or few distinct integers, optionally with NaN / ±inf / ±0 sprinkled in. */
function values(n: number, seed: number, special: boolean): Float32Array {
  const v = randomValues(n, seed, -3, 3);
  if (special) {
    const pick = randomInts(n, seed + 1, 0, 40);
    const sp = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0];
    for (let i = 0; i < n; i++) if (pick[i] < sp.length) v[i] = sp[pick[i]];
  }
  return v;
}

function rowSumTol(x: Float32Array, rows: number, n: number): Tol {
  let l1 = 0;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(x[r * n + j]);
    if (Number.isFinite(s)) l1 = Math.max(l1, s);
  }
  return { atol: 4e-6 * l1, rtol: 1e-6 };
}

/** op on cpu and on the core adapter (subgroups on), compared; returns the entries dispatched. */
async function compare(label: string, xs: { values: Float32Array; shape: number[]; dtype?: DType }[], op: (...t: Tensor[]) => Tensor, tol: Tol): Promise<Set<string>> {
  const c = xs.map((x) => F.fromArray(cpu, x.values, x.shape, x.dtype ?? 'f32'));
  const g = xs.map((x) => F.fromArray(be, x.values, x.shape, x.dtype ?? 'f32'));
  const want = op(...c);
  const { result: got, entries } = await entriesOf(async () => op(...g));
  expect(got.shape, label).toEqual(want.shape);
  assertClose(await got.read(), await want.read(), tol, label);
  for (const t of [...c, ...g, want, got]) t.dispose();
  return entries;
}

describe('subgroup reductions over rows against the cpu oracle', () => {
  it('sum / mean / max / min of awkward rows, with NaN and ±inf', async () => {
    await fc.assert(
      fc.asyncProperty(
        awkwardDim(9), fc.oneof(awkwardDim(600), fc.constantFrom(1024, 4099, 9001)), fc.constantFrom<ReduceOp>('sum', 'mean', 'max', 'min'),
        fc.boolean(), fc.constantFrom<DType>('f32', 'bf16'), fc.integer({ min: 1, max: 1e6 }),
        async (rows, n, op, special, dtype, seed) => {
          const x = values(rows * n, seed, special && op !== 'sum' && op !== 'mean');
          const sumLike = op === 'sum' || op === 'mean';
          const tol = sumLike ? rowSumTol(x, rows, n) : { atol: 0, rtol: 0 };
          const entries = await compare(`${op} ${rows}x${n} ${dtype}`, [{ values: x, shape: [rows, n], dtype }], (t) => F.reduce(op, t, -1), op === 'mean' ? { atol: tol.atol / n, rtol: tol.rtol } : tol);
          expect([...entries]).toContain('reduce-sg:reduce_main_sg');
          expect([...entries].some((e) => e.startsWith('reduce:reduce_main'))).toBe(false);
        },
      ),
      gpuRuns(30),
    );
  });

  it('softmax of awkward rows, long split rows, -inf rows and NaN', async () => {
    await fc.assert(
      fc.asyncProperty(
        awkwardDim(7), fc.oneof(awkwardDim(700), fc.constantFrom(2048, 8209, 20011)), fc.constantFrom('plain', 'masked', 'special'),
        fc.integer({ min: 1, max: 1e6 }),
        async (rows, n, kind, seed) => {
          const x = randomValues(rows * n, seed, -8, 8);
          // a masked row is all -inf (NaN out, as torch); other rows partly masked
          if (kind === 'masked') for (let i = 0; i < rows * n; i++) if (i < n || i % 3 === 0) x[i] = Number.NEGATIVE_INFINITY;
          if (kind === 'special') x[Math.floor(rows * n / 2)] = Number.NaN;
          const entries = await compare(`softmax ${rows}x${n} ${kind}`, [{ values: x, shape: [rows, n] }], (t) => F.softmax(t, -1), { atol: 1e-7, rtol: 2e-5 });
          expect([...entries].some((e) => e.startsWith('reduce-sg:softmax_'))).toBe(true);
          expect([...entries].some((e) => e.startsWith('reduce:softmax_'))).toBe(false);
        },
      ),
      gpuRuns(25),
    );
  });

  it('keeps the workgroup-memory kernels when subgroups are turned off, and for strided axes', async () => {
    subgroupConfig.enabled = false;
    const x = randomValues(5 * 77, 3);
    let entries = await compare('sum 5x77 off', [{ values: x, shape: [5, 77] }], (t) => F.reduce('sum', t, -1), rowSumTol(x, 5, 77));
    expect([...entries]).toEqual(['reduce:reduce_main']);
    subgroupConfig.enabled = undefined;
    entries = await compare('softmax 5x77 axis 0', [{ values: x, shape: [5, 77] }], (t) => F.softmax(t, 0), { atol: 1e-7, rtol: 2e-5 });
    expect([...entries]).toEqual(['reduce:softmax_main']);
  });
});

describe('subgroup split GEMV against the cpu oracle', () => {

  it('x @ W^T + bias for decode-shaped rows (M <= 4, K >= 256), f32 and bf16 weights', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }), fc.oneof(fc.integer({ min: 256, max: 1300 }), fc.constantFrom(256, 257, 1024, 4099)), awkwardDim(70),
        fc.constantFrom<DType>('f32', 'bf16'), fc.boolean(), fc.integer({ min: 1, max: 1e6 }),
        async (M, K, N, wdtype, withBias, seed) => {
          matmulConfig.version = 'gemv_split';
          const x = randomValues(M * K, seed, -1, 1);
          const w = randomValues(N * K, seed + 1, -1, 1);
          const b = randomValues(N, seed + 2, -1, 1);
          const ins = [{ values: x, shape: [M, K] }, { values: w, shape: [N, K], dtype: wdtype }, ...(withBias ? [{ values: b, shape: [N] }] : [])];
          const entries = await compare(`linear ${M}x${K} -> ${N} w ${wdtype}${withBias ? ' +bias' : ''}`, ins, (xx, ww, bb) => F.linear(xx, ww, bb ?? null), matmulTol(K));
          expect([...entries]).toEqual(['matmul-sg:gemv_split_sg']);
        },
      ),
      gpuRuns(25),
    );
  });

  it('batched, transposed, scaled operands and a grid folded into 2D', async () => {
    matmulConfig.version = 'gemv_split';
    const [B, M, K, N] = [3, 4, 13, 9];
    const a = randomValues(B * K * M, 7, -1, 1);
    const b = randomValues(B * K * N, 8, -1, 1);
    const ins = [{ values: a, shape: [B, K, M] }, { values: b, shape: [B, K, N], dtype: 'f16' as DType }];
    const mm = (x: Tensor, y: Tensor) => F.matmul(x, y, { transA: true, alpha: 1.5 });
    expect([...(await compare('gemv transA alpha batch 3', ins, mm, matmulTol(K)))]).toEqual(['matmul-sg:gemv_split_sg']);
    const saved = gridLimit.x;
    gridLimit.x = 7; // 3 * 4 * 3 = 36 workgroups fold into x 6, y 6
    try {
      expect([...(await compare('gemv transA alpha folded grid', ins, mm, matmulTol(K)))]).toEqual(['matmul-sg:gemv_split_sg']);
    } finally {
      gridLimit.x = saved;
    }
  });
});
