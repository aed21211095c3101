// Convolution on the WebGPU backend against the CPU oracle (PyTorch Conv3d semantics:
// cross-correlation, symmetric zero padding, stride, dilation, groups, optional bias; 1d / 2d
// convs lifted to 3d by ops.ts).
//
// Tolerance: atol = 1e-6 + 1e-7 * K, rtol = 1e-5, with K = Cin / groups * kD * kH * kW the
// length of each output's dot product and inputs / weights in [-1, 1]. The oracle accumulates
// in float64; the kernels accumulate K products in f32 (GEMM tiles: sequential fma along k;
// naive: sequential fma). The rounding error is a random walk of about 2^-24 * rms(term) *
// K / sqrt(2) ~ 1.4e-8 * K here (standard deviation), so the bound is ~7 sigma, while a wrong
// tap, channel or padding cell moves an output by O(0.1). Half-precision inputs are rounded once on upload
// and both backends read the same rounded values, so they share the tolerance.
//
// Paths: 'auto' picks the texture-fed implicit GEMM (conv_tex*) on a software adapter where it
// applies (groups 1, f32 x, width a multiple of 4, kernel width / width padding (1, 0) or (3, 1),
// stride and dilation 1 along width), else conv_naive for groups with <= 2 output channels,
// conv_1x1 for 1x1x1 / stride 1 / unpadded convs, conv_gemm otherwise, with 64 x 64 or 16 x 256
// tiles by the group's output channel count; the properties below draw channel counts that reach every
// one of them, and one property forces every path on the same inputs. Most properties keep x
// f32 and weights f32 / bf16 (what the models run; every new dtype combination compiles the
// kernels again, ~1 s each on llvmpipe); one property draws f16 / bf16 for both.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ConvParams } from '../../src/engine/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import type { WebGpuBackend } from '../../src/engine/webgpu/backend.js';
import { gridLimit } from '../../src/engine/webgpu/context.js';
import { type ConvPath, convConfig, conv as gpuConv, is1x1, texApplies } from '../../src/engine/webgpu/ops/conv.js';
import { type Tol, assertClose, checkAgainstCpu, cpu, gpu, gpuRuns, randomValues } from '../harness.js';

let be: WebGpuBackend;
beforeAll(async () => {
  be = await gpu(); // no adapter -> the suite fails, never skips
}, 60_000);

const tolFor = (K: number): Tol => ({ atol: 1e-6 + 1e-7 * K, rtol: 1e-5 });

type T3 = [number, number, number];

interface Case {
  N: number;
  Cin: number;
  Cout: number;
  groups: number;
  spatial: number[];
  kernel: number[];
  stride: number[];
  padding: number[];
  dilation: number[];
  bias: boolean;
  xd: DType;
  wd: DType;
  seed: number;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const outDim = (i: number, k: number, s: number, p: number, d: number) => Math.floor((i + 2 * p - d * (k - 1) - 1) / s) + 1;

function describeCase(c: Case): string {
  return `x [${c.N}, ${c.Cin}, ${c.spatial}] ${c.xd}, w [${c.Cout}, ${c.Cin / c.groups}, ${c.kernel}] ${c.wd}, ` +
    `stride ${c.stride} pad ${c.padding} dil ${c.dilation} groups ${c.groups}${c.bias ? ' +bias' : ''}`;
}

/** conv through ops.ts on both backends. */
async function checkConv(c: Case): Promise<void> {
  const xShape = [c.N, c.Cin, ...c.spatial];
  const wShape = [c.Cout, c.Cin / c.groups, ...c.kernel];
  const inputs = [
    { values: randomValues(prod(xShape), `x${c.seed}`), shape: xShape, dtype: c.xd },
    { values: randomValues(prod(wShape), `w${c.seed}`), shape: wShape, dtype: c.wd },
  ];
  if (c.bias) inputs.push({ values: randomValues(c.Cout, `b${c.seed}`), shape: [c.Cout], dtype: 'f32' });
  const K = (c.Cin / c.groups) * prod(c.kernel);
  await checkAgainstCpu(
    be,
    describeCase(c),
    inputs,
    (x, w, b) => F.conv(x, w, b ?? null, { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups }),
    tolFor(K),
  );
}

const lift = (v: number[], fill: number): T3 => [...new Array(3 - v.length).fill(fill), ...v] as T3;

/** The normalised primitive parameters of a 3d case (what ops.ts hands the backend). */
function paramsOf(c: Case): ConvParams {
  const inSize = lift(c.spatial, 1);
  const kernel = lift(c.kernel, 1);
  const stride = lift(c.stride, 1);
  const padding = lift(c.padding, 0);
  const dilation = lift(c.dilation, 1);
  const outSize = [0, 1, 2].map((i) => outDim(inSize[i], kernel[i], stride[i], padding[i], dilation[i])) as T3;
  return { N: c.N, Cin: c.Cin, inSize, Cout: c.Cout, kernel, stride, padding, dilation, groups: c.groups, outSize };
}

const dtypeArb = (ds: DType[]) => fc.constantFrom(...ds);
/** Output channels per group reaching every path and tile shape: naive (<= 2), 16- and 64-row tiles. */
const coutgArb = fc.constantFrom(1, 2, 3, 5, 7, 16, 17, 31, 33, 65);

const MODEL_X: DType[] = ['f32'];
const MODEL_W: DType[] = ['f32', 'bf16'];

/** A random conv of rank nd whose output is non-empty. */
const caseArb = (nd: number, maxSpatial: number, xds = MODEL_X, wds = MODEL_W) =>
  fc
    .record({
      N: fc.integer({ min: 1, max: 2 }),
      groups: fc.constantFrom(1, 1, 2, 3),
      cg: fc.integer({ min: 1, max: 4 }),
      coutg: coutgArb,
      spatial: fc.array(fc.integer({ min: 1, max: maxSpatial }), { minLength: nd, maxLength: nd }),
      kernel: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: nd, maxLength: nd }),
      stride: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: nd, maxLength: nd }),
      padding: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: nd, maxLength: nd }),
      dilation: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: nd, maxLength: nd }),
      bias: fc.boolean(),
      xd: dtypeArb(xds),
      wd: dtypeArb(wds),
      seed: fc.integer({ min: 0, max: 1e6 }),
    })
    .map((r): Case => ({
      N: r.N, Cin: r.cg * r.groups, Cout: r.coutg * r.groups, groups: r.groups, spatial: r.spatial, kernel: r.kernel,
      stride: r.stride, padding: r.padding, dilation: r.dilation, bias: r.bias, xd: r.xd, wd: r.wd, seed: r.seed,
    }))
    .filter((c) => c.spatial.every((s, i) => outDim(s, c.kernel[i], c.stride[i], c.padding[i], c.dilation[i]) >= 1));

describe('conv: random shapes against the CPU oracle', () => {
  it('conv3d: any kernel, stride, padding, dilation, groups, bias', async () => {
    await fc.assert(fc.asyncProperty(caseArb(3, 6), checkConv), gpuRuns(10));
  }, 60_000);

  it('half-precision inputs and weights (f16 / bf16) are widened to f32', async () => {
    const arb = caseArb(3, 5, ['bf16', 'f16'], ['bf16', 'f16']).map((c) => ({ ...c, wd: c.xd, bias: true }));
    await fc.assert(fc.asyncProperty(arb, checkConv), gpuRuns(3));
  }, 60_000);

  it('conv2d and conv1d are lifted to 3d', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(caseArb(2, 11), caseArb(1, 23)), checkConv), gpuRuns(6));
  }, 60_000);

  it('1x1x1 convs (plain GEMM path)', async () => {
    const arb = fc
      .record({
        N: fc.integer({ min: 1, max: 3 }),
        groups: fc.constantFrom(1, 2),
        cg: fc.constantFrom(1, 3, 8, 17, 40),
        coutg: coutgArb,
        spatial: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 3, maxLength: 3 }),
        bias: fc.boolean(),
        xd: dtypeArb(MODEL_X),
        wd: dtypeArb(MODEL_W),
        seed: fc.integer({ min: 0, max: 1e6 }),
      })
      .map((r): Case => ({
        N: r.N, Cin: r.cg * r.groups, Cout: r.coutg * r.groups, groups: r.groups, spatial: r.spatial, kernel: [1, 1, 1],
        stride: [1, 1, 1], padding: [0, 0, 0], dilation: [1, 1, 1], bias: r.bias, xd: r.xd, wd: r.wd, seed: r.seed,
      }));
    await fc.assert(fc.asyncProperty(arb, checkConv), gpuRuns(6));
  }, 60_000);

  it('every kernel entry (naive reference, implicit GEMM, 1x1 GEMM) gives the same answer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(caseArb(3, 6), caseArb(3, 6).map((c) => ({ ...c, kernel: [1, 1, 1], stride: [1, 1, 1], padding: [0, 0, 0] }))), async (c) => {
        const p = paramsOf(c);
        const xv = randomValues(c.N * c.Cin * prod(p.inSize), `x${c.seed}`);
        const wv = randomValues(c.Cout * (c.Cin / c.groups) * prod(p.kernel), `w${c.seed}`);
        const bv = randomValues(c.Cout, `b${c.seed}`);
        const tensors = (b: typeof be | typeof cpu): [Tensor, Tensor, Tensor | null] => [
          F.fromArray(b, xv, [c.N, c.Cin, ...p.inSize], c.xd),
          F.fromArray(b, wv, [c.Cout, c.Cin / c.groups, ...p.kernel], c.wd),
          c.bias ? F.fromArray(b, bv, [c.Cout]) : null,
        ];
        const want = await cpu.conv(...tensors(cpu), p).read();
        const paths: ConvPath[] = is1x1(p) ? ['naive', 'gemm', '1x1'] : ['naive', 'gemm'];
        if (texApplies(be, F.zeros(be, [1]), p)) paths.push('tex');
        for (const path of paths) {
          const got = gpuConv(be, ...tensors(be), p, path);
          assertClose(await got.read(), want, tolFor((c.Cin / c.groups) * prod(p.kernel)), `${path}: ${describeCase(c)}`);
        }
      }),
      gpuRuns(6),
    );
  }, 60_000);
});

const base = (over: Partial<Case>): Case => ({
  N: 1, Cin: 4, Cout: 4, groups: 1, spatial: [3, 4, 5], kernel: [1, 1, 1], stride: [1, 1, 1], padding: [0, 0, 0],
  dilation: [1, 1, 1], bias: true, xd: 'f32', wd: 'f32', seed: 7, ...over,
});

describe('conv: the texture-fed implicit GEMM (conv_tex*) against the CPU oracle', () => {
  // Widths are multiples of 4 (the path's condition); everything else is awkward: output channels
  // around both tiles (32 and 8 rows: 1, 3, 5, 17, 31, 33, 37, 65), odd / prime depths, heights,
  // input channels and batches, positions that leave the last 16- or 32-wide tile partly empty,
  // any kernel / stride / padding / dilation along depth and height, bf16 weights.
  const texArb = fc
    .record({
      N: fc.integer({ min: 1, max: 3 }),
      Cin: fc.constantFrom(1, 2, 3, 5, 8, 17),
      Cout: fc.constantFrom(1, 3, 5, 16, 17, 31, 33, 37, 65),
      D: fc.integer({ min: 1, max: 5 }),
      H: fc.integer({ min: 1, max: 7 }),
      W: fc.constantFrom(4, 8, 12, 20),
      kd: fc.integer({ min: 1, max: 3 }),
      kh: fc.integer({ min: 1, max: 3 }),
      win: fc.constantFrom([1, 0], [3, 1]),
      stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      padding: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
      dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      bias: fc.boolean(),
      wd: dtypeArb(['f32', 'bf16', 'f16']),
      seed: fc.integer({ min: 0, max: 1e6 }),
    })
    .map((r): Case => ({
      N: r.N, Cin: r.Cin, Cout: r.Cout, groups: 1, spatial: [r.D, r.H, r.W], kernel: [r.kd, r.kh, r.win[0]],
      stride: [...r.stride, 1], padding: [...r.padding, r.win[1]], dilation: [...r.dilation, 1], bias: r.bias,
      xd: 'f32', wd: r.wd, seed: r.seed,
    }))
    .filter((c) => [0, 1].every((i) => outDim(c.spatial[i], c.kernel[i], c.stride[i], c.padding[i], c.dilation[i]) >= 1));

  it('forced texture path: any depth / height kernel, stride, padding, dilation; 1 or 3 wide', async () => {
    await fc.assert(
      fc.asyncProperty(texArb, async (c) => {
        const p = paramsOf(c);
        expect(texApplies(be, F.zeros(be, [1]), p)).toBe(true);
        const xv = randomValues(c.N * c.Cin * prod(p.inSize), `x${c.seed}`);
        const wv = randomValues(c.Cout * c.Cin * prod(p.kernel), `w${c.seed}`);
        const bv = randomValues(c.Cout, `b${c.seed}`);
        const tensors = (b: typeof be | typeof cpu): [Tensor, Tensor, Tensor | null] => [
          F.fromArray(b, xv, [c.N, c.Cin, ...p.inSize]),
          F.fromArray(b, wv, [c.Cout, c.Cin, ...p.kernel], c.wd),
          c.bias ? F.fromArray(b, bv, [c.Cout]) : null,
        ];
        const want = await cpu.conv(...tensors(cpu), p).read();
        // both reductions: 4 input channels per update (the default) and the first, rank-1 version
        for (const version of ['c4', 'c1'] as const) {
          convConfig.texVersion = version;
          try {
            const got = gpuConv(be, ...tensors(be), p, 'tex');
            assertClose(await got.read(), want, tolFor(c.Cin * prod(p.kernel)), `tex ${version}: ${describeCase(c)}`);
          } finally {
            convConfig.texVersion = 'c4';
          }
        }
      }),
      gpuRuns(12),
    );
  }, 120_000);

  it('the model shapes through ops.ts (auto picks the texture path): 1x3x3, 3x1x1, 1x1x1, 3x3x3, bf16 weights', async () => {
    // 70 channels = three 32-row tiles; 5 * 13 * 12 positions = 49 16-wide tiles (the last partly empty)
    await checkConv(base({ Cin: 37, Cout: 70, spatial: [5, 13, 12], kernel: [1, 3, 3], padding: [0, 1, 1], wd: 'bf16' }));
    await checkConv(base({ Cin: 37, Cout: 70, spatial: [5, 13, 12], kernel: [3, 1, 1], padding: [1, 0, 0], wd: 'bf16' }));
    await checkConv(base({ N: 2, Cin: 24, Cout: 3, spatial: [2, 9, 16] }));
    await checkConv(base({ Cin: 11, Cout: 13, spatial: [4, 5, 8], kernel: [3, 3, 3], padding: [0, 1, 1] }));
    // 2 x 2048 tiles: the 64-invocation workgroups (smaller dispatches run 8 per workgroup)
    await checkConv(base({ Cin: 2, Cout: 40, spatial: [8, 64, 64], kernel: [1, 3, 3], padding: [0, 1, 1] }));
    expect(texApplies(be, F.zeros(be, [1]), paramsOf(base({ Cin: 37, Cout: 70, spatial: [5, 13, 12], kernel: [1, 3, 3], padding: [0, 1, 1] })))).toBe(true);
  }, 120_000);
});


describe('conv: the shapes the models run', () => {
  it('factorised tokenizer convs, several tiles each way: (1,3,3) spatial and (3,1,1) temporal, bf16 weights', async () => {
    // 70 channels = two 64-row tiles; 5*13*11 positions = 12 64-wide tiles; K = 40*9 = 45 k-steps
    await checkConv(base({ Cin: 40, Cout: 70, spatial: [5, 13, 11], kernel: [1, 3, 3], padding: [0, 1, 1], wd: 'bf16' }));
    await checkConv(base({ Cin: 40, Cout: 70, spatial: [5, 13, 11], kernel: [3, 1, 1], padding: [1, 0, 0], wd: 'bf16' }));
  }, 60_000);

  it('1x1x1 channel mixing over many positions, and a 1x1 with stride 2 (general path)', async () => {
    await checkConv(base({ N: 2, Cin: 24, Cout: 48, spatial: [2, 9, 12], wd: 'bf16' }));
    await checkConv(base({ N: 2, Cin: 24, Cout: 48, spatial: [2, 9, 12], stride: [1, 2, 2] }));
  }, 60_000);

  it('patch embedding: kernel == stride, no padding', async () => {
    await checkConv(base({ Cin: 3, Cout: 40, spatial: [4, 16, 12], kernel: [2, 4, 4], stride: [2, 4, 4], bias: true, wd: 'bf16' }));
    await checkConv(base({ N: 2, Cin: 3, Cout: 20, spatial: [16, 16], kernel: [8, 8], stride: [8, 8], padding: [0, 0], dilation: [1, 1] }));
  }, 60_000);

  it('depthwise (groups == Cin == Cout) and grouped convs with wide groups', async () => {
    await checkConv(base({ Cin: 6, Cout: 6, groups: 6, spatial: [3, 5, 4], kernel: [3, 3, 3], padding: [1, 1, 1] }));
    await checkConv(base({ Cin: 6, Cout: 36, groups: 3, spatial: [3, 5, 4], kernel: [3, 1, 3], padding: [1, 0, 2], dilation: [1, 1, 2] }));
  }, 60_000);

  it('single pixel and size-1 everything', async () => {
    await checkConv(base({ Cin: 1, Cout: 1, spatial: [1, 1, 1], bias: false }));
    await checkConv(base({ Cin: 1, Cout: 9, spatial: [1, 1, 1], kernel: [3, 3, 3], padding: [1, 1, 1] }));
  }, 60_000);
});

describe('conv: edge cases', () => {
  it('an empty batch gives an empty output', async () => {
    const x = F.zeros(be, [0, 3, 4, 4]);
    const w = F.zeros(be, [5, 3, 3, 3]);
    const y = F.conv(x, w, null, { padding: 1 });
    expect(y.shape).toEqual([0, 5, 4, 4]);
    expect((await y.read()).length).toBe(0);
  });

  it('zero input channels: the output is the bias', async () => {
    const bias = randomValues(6, 'zc');
    const y = F.conv(F.zeros(be, [2, 0, 3, 5]), F.zeros(be, [6, 0, 3, 3]), F.fromArray(be, bias, [6]), { padding: 1 });
    const want = new Float32Array(2 * 6 * 15).map((_, i) => bias[Math.floor(i / 15) % 6]);
    assertClose(await y.read(), want, { atol: 0, rtol: 0 }, 'Cin = 0');
  });

  it('grids folded into 2D (the > 65535-workgroup layout) on every entry', async () => {
    // The kernels decode a folded grid the same way whatever the row width, so small problems
    // folded at width 3 check it; a real > 65535-workgroup conv (16.8M outputs for the naive
    // entry, 66000 GEMM tiles) takes 5-30 s on llvmpipe, too slow for this suite.
    const saved = gridLimit.x;
    gridLimit.x = 3;
    try {
      convConfig.software = false; // the storage-buffer entries, as on a GPU
      await checkConv(base({ N: 5, Cin: 3, Cout: 40, spatial: [1, 9, 8], bias: true })); // 1x1: 10 tiles
      await checkConv(base({ Cin: 6, Cout: 60, groups: 3, spatial: [2, 9, 16], kernel: [1, 3, 3], padding: [0, 1, 1] })); // gemm: 6 tiles
      await checkConv(base({ N: 2, Cin: 2, Cout: 2, spatial: [3, 9, 11], kernel: [3, 3, 3], padding: [1, 1, 1] })); // naive: 5 workgroups
      convConfig.software = true;
      await checkConv(base({ N: 5, Cin: 3, Cout: 40, spatial: [1, 9, 8], bias: true })); // tex: 2 * 23 tiles, 1 workgroup
      await checkConv(base({ N: 3, Cin: 3, Cout: 5, spatial: [7, 16, 64], kernel: [1, 3, 3], padding: [0, 1, 1] })); // tex: 672 tiles, 11 workgroups
    } finally {
      gridLimit.x = saved;
      convConfig.software = undefined;
    }
  });
});
