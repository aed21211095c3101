// Normalisation on the WebGPU backend against the CPU oracle: layerNorm and rmsNorm over the
// last axis (weight / bias optional, any dtype), groupNorm over x [N, C, ...] per (sample,
// group) with per-channel affine.
//
// Tolerance: atol 1e-5, rtol 1e-4 everywhere, large offsets included. The oracle is two-pass
// in float64. The kernels take Welford statistics in f32 of x - K (K = the row's first
// element) merged with Chan's formula, so the variance never comes from E[x^2] - E[x]^2 and a
// row at 1000 +- 1 loses nothing to its offset: outputs are O(1) with errors of a few f32 ulp
// (~1e-6). A naive single-pass f32 variance would be off by O(1) on those rows, far outside it.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import type { WebGpuBackend } from '../../src/engine/webgpu/backend.js';
import { gridLimit } from '../../src/engine/webgpu/context.js';
import { CHUNK, SPLIT_ABOVE, normConfig } from '../../src/engine/webgpu/ops/norm.js';
import { type Tol, assertClose, awkwardDim, checkAgainstCpu, cpu, gpu, gpuRuns, randomValues } from '../harness.js';

let be: WebGpuBackend;
beforeAll(async () => {
  be = await gpu(); // no adapter -> the suite fails, never skips
}, 60_000);

const TOL: Tol = { atol: 1e-5, rtol: 1e-4 };

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const dtypeArb = fc.constantFrom<DType>('f32', 'f32', 'bf16', 'f16');

type Input = { values: Float32Array; shape: number[]; dtype: DType };

/** x (values around `offset` with spread `scale`), then weight / bias of `n` elements where present. */
function inputsFor(shape: number[], n: number, xd: DType, wd: DType | null, bd: DType | null, seed: number, offset = 0, scale = 1): Input[] {
  const x = randomValues(prod(shape), `x${seed}`, offset - scale, offset + scale);
  const inputs: Input[] = [{ values: x, shape, dtype: xd }];
  if (wd) inputs.push({ values: randomValues(n, `w${seed}`, -2, 2), shape: [n], dtype: wd });
  if (bd) inputs.push({ values: randomValues(n, `b${seed}`), shape: [n], dtype: bd });
  return inputs;
}

async function checkLayer(shape: number[], xd: DType, wd: DType | null, bd: DType | null, eps: number, seed: number, offset = 0, scale = 1): Promise<void> {
  const D = shape[shape.length - 1];
  await checkAgainstCpu(be, `layerNorm [${shape}] x ${xd} w ${wd} b ${bd} offset ${offset}`, inputsFor(shape, D, xd, wd, bd, seed, offset, scale), (x, ...rest) => {
    const w = wd ? rest.shift()! : null;
    const b = bd ? rest.shift()! : null;
    return F.layerNorm(x, w, b, eps);
  }, TOL);
}

async function checkRms(shape: number[], xd: DType, wd: DType | null, eps: number, seed: number, offset = 0, scale = 1): Promise<void> {
  const D = shape[shape.length - 1];
  await checkAgainstCpu(be, `rmsNorm [${shape}] x ${xd} w ${wd}`, inputsFor(shape, D, xd, wd, null, seed, offset, scale), (x, w) => F.rmsNorm(x, w ?? null, eps), TOL);
}

async function checkGroup(shape: number[], groups: number, xd: DType, wd: DType | null, bd: DType | null, eps: number, seed: number, offset = 0, scale = 1, silu = false): Promise<void> {
  const C = shape[1];
  await checkAgainstCpu(be, `groupNorm [${shape}] groups ${groups} x ${xd} w ${wd} b ${bd} offset ${offset} silu ${silu}`, inputsFor(shape, C, xd, wd, bd, seed, offset, scale), (x, ...rest) => {
    const w = wd ? rest.shift()! : null;
    const b = bd ? rest.shift()! : null;
    return F.groupNorm(x, groups, w, b, eps, { silu });
  }, TOL);
}

/** Which of weight / bias are present, both in one dtype (each dtype combination compiles the
 *  kernels again, ~0.5 s on llvmpipe, so the draws share them). */
const affineArb = fc.record({ pd: dtypeArb, hasW: fc.boolean(), hasB: fc.boolean() });
const epsArb = fc.constantFrom(1e-5, 1e-6, 1e-3);
const seedArb = fc.integer({ min: 0, max: 1e6 });

describe('norm: random shapes against the CPU oracle', () => {
  it('layerNorm over the last axis, weight / bias optional, any dtypes', async () => {
    const shape = fc.tuple(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 2 }), fc.oneof(awkwardDim(70), fc.constantFrom(255, 256, 257, 1000, 4099)));
    await fc.assert(fc.asyncProperty(shape, dtypeArb, affineArb, epsArb, seedArb, async ([lead, D], xd, a, eps, seed) => {
      await checkLayer([...lead, D], xd, a.hasW ? a.pd : null, a.hasB ? a.pd : null, eps, seed);
    }), gpuRuns(10));
  }, 60_000);

  it('rmsNorm over the last axis, weight optional, any dtypes', async () => {
    const shape = fc.tuple(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 2 }), fc.oneof(awkwardDim(70), fc.constantFrom(255, 257, 2048)));
    await fc.assert(fc.asyncProperty(shape, dtypeArb, affineArb, epsArb, seedArb, async ([lead, D], xd, a, eps, seed) => {
      await checkRms([...lead, D], xd, a.hasW ? a.pd : null, eps, seed);
    }), gpuRuns(8));
  }, 60_000);

  it('groupNorm per (sample, group) with per-channel affine, 0-3 spatial dims', async () => {
    const arb = fc.record({
      N: fc.integer({ min: 1, max: 3 }),
      groups: fc.constantFrom(1, 2, 3, 4, 32),
      cg: fc.integer({ min: 1, max: 5 }),
      spatial: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 0, maxLength: 3 }),
    });
    await fc.assert(fc.asyncProperty(arb, dtypeArb, affineArb, epsArb, seedArb, async (r, xd, a, eps, seed) => {
      await checkGroup([r.N, r.cg * r.groups, ...r.spatial], r.groups, xd, a.hasW ? a.pd : null, a.hasB ? a.pd : null, eps, seed);
    }), gpuRuns(10));
  }, 60_000);
});

describe('norm: the texture path (software adapters) and the storage-buffer path, each forced', () => {
  // The texture entries take f32 x with rows of a multiple of 4 values: one invocation per row
  // from 64 rows of up to SPLIT_ABOVE values, else split statistics over 1024-value chunks. Row
  // counts straddle 64, lengths straddle a chunk and SPLIT_ABOVE, group norms have frames of a
  // multiple of 4 (4 outputs share a channel) and not (channels change inside a texel).
  const rowsArb = fc.constantFrom(1, 3, 63, 64, 67);
  const dArb = fc.constantFrom(4, 12, 20, 1020, 1028, 2052);
  const pdArb = fc.constantFrom<DType>('f32', 'bf16');
  const both = async (body: () => Promise<void>) => {
    for (const software of [true, false]) {
      normConfig.software = software;
      try {
        await body();
      } finally {
        normConfig.software = undefined;
      }
    }
  };

  it('layer and rms norm, offsets up to 1000, weight / bias optional', async () => {
    await fc.assert(fc.asyncProperty(rowsArb, dArb, pdArb, fc.boolean(), fc.boolean(), fc.constantFrom(0, 1000), seedArb, async (rows, D, pd, hasW, hasB, offset, seed) => {
      await both(async () => {
        await checkLayer([rows, D], 'f32', hasW ? pd : null, hasB ? pd : null, 1e-5, seed, offset);
        await checkRms([rows, D], 'f32', hasW ? pd : null, 1e-6, seed);
      });
    }), gpuRuns(6));
  }, 120_000);

  it('group norm: frames of a multiple of 4 or not, one or several groups, long rows', async () => {
    const shapeArb = fc.constantFrom<[number[], number]>([[1, 8, 4096], 1], [[2, 6, 12], 3], [[3, 4, 5], 1], [[1, 12, 5, 7], 2], [[2, 3, 6000], 1], [[70, 4, 4], 2]);
    await fc.assert(fc.asyncProperty(shapeArb, pdArb, fc.boolean(), fc.constantFrom(0, 1000), seedArb, async ([shape, groups], pd, affine, offset, seed) => {
      await both(() => checkGroup(shape, groups, 'f32', affine ? pd : null, affine ? pd : null, 1e-6, seed, offset));
    }), gpuRuns(6));
  }, 120_000);

  it('rows longer than SPLIT_ABOVE and a single long row', async () => {
    await both(async () => {
      await checkLayer([3, SPLIT_ABOVE + 4], 'f32', 'f32', 'f32', 1e-5, 5, 1000);
      await checkRms([1, 4 * 1031], 'f32', 'bf16', 1e-6, 6);
    });
  }, 120_000);
});

describe('groupNorm + SiLU in one pass', () => {
  // The fused SiLU is applied to the f32 norm output as the elementwise op would be; the oracle
  // applies it in f64 before rounding. Both paths (texture / storage), frames of a multiple of 4
  // or not, one or several groups, split and per-row statistics.
  it('random shapes, both paths, against the CPU oracle (which is groupNorm then silu)', async () => {
    const arb = fc.record({
      N: fc.integer({ min: 1, max: 3 }),
      groups: fc.constantFrom(1, 2, 3, 32),
      cg: fc.integer({ min: 1, max: 5 }),
      spatial: fc.array(awkwardDim(23), { minLength: 0, maxLength: 3 }),
      software: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arb, fc.constantFrom<DType>('f32', 'bf16'), fc.boolean(), fc.constantFrom(0, 1000), seedArb, async (r, pd, affine, offset, seed) => {
      normConfig.software = r.software;
      try {
        await checkGroup([r.N, r.cg * r.groups, ...r.spatial], r.groups, 'f32', affine ? pd : null, affine ? pd : null, 1e-6, seed, offset, 1, true);
      } finally {
        normConfig.software = undefined;
      }
    }), gpuRuns(10));
  }, 120_000);

  it('equals groupNorm then F.silu on the CPU oracle, and on WebGPU within the tolerance', async () => {
    const shape = [2, 6, 5, 12];
    const xs = randomValues(prod(shape), 'gs', -3, 3);
    const ws = randomValues(6, 'gsw', -2, 2);
    const bs = randomValues(6, 'gsb');
    for (const b of [cpu, be]) {
      const x = F.fromArray(b, xs, shape);
      const w = F.fromArray(b, ws, [6]);
      const bias = F.fromArray(b, bs, [6]);
      const fused = await F.groupNorm(x, 3, w, bias, 1e-6, { silu: true }).read();
      const split = await F.silu(F.groupNorm(x, 3, w, bias, 1e-6)).read();
      assertClose(fused, split, TOL, `fused vs separate on ${b.name}`);
    }
  });
});

describe('groupNorm per frame (x [N, C, T, ...], statistics per (sample, group, frame))', () => {
  async function checkFrames(shape: number[], groups: number, pd: DType | null, silu: boolean, seed: number, offset = 0): Promise<void> {
    await checkAgainstCpu(be, `groupNorm perFrame [${shape}] groups ${groups} w ${pd} silu ${silu} offset ${offset}`, inputsFor(shape, shape[1], 'f32', pd, pd, seed, offset), (x, ...rest) => {
      const w = pd ? rest.shift()! : null;
      const b = pd ? rest.shift()! : null;
      return F.groupNorm(x, groups, w, b, 1e-6, { silu, perFrame: true });
    }, TOL);
  }

  it('the oracle equals groupNorm of the frames moved into the batch (the permutes it replaces)', async () => {
    const [N, C, T, H, W] = [2, 6, 3, 5, 4];
    const x = F.fromArray(cpu, randomValues(N * C * T * H * W, 'pf', -2, 2), [N, C, T, H, W]);
    const w = F.fromArray(cpu, randomValues(C, 'pfw', -2, 2), [C]);
    const b = F.fromArray(cpu, randomValues(C, 'pfb'), [C]);
    for (const silu of [false, true]) {
      const direct = await F.groupNorm(x, 3, w, b, 1e-6, { silu, perFrame: true }).read();
      const xf = F.permute(x, [0, 2, 1, 3, 4]).reshape([N * T, C, H * W]);
      const viaBatch = await F.permute(F.groupNorm(xf, 3, w, b, 1e-6, { silu }).reshape([N, T, C, H, W]), [0, 2, 1, 3, 4]).read();
      assertClose(direct, viaBatch, { atol: 0, rtol: 0 }, `silu ${silu}`);
    }
  });

  it('the texture path: channels longer than one statistics chunk, several groups, a frame of 4 values', async () => {
    normConfig.software = true;
    try {
      await checkFrames([1, 4, 3, 1100], 2, 'f32', true, 1, 1000);
      await checkFrames([2, 6, 5, 8, 4], 3, 'bf16', false, 2);
      await checkFrames([1, 3, 7, 4], 1, null, true, 3);
      await checkFrames([1, 2, 2, 3, 5], 1, 'f32', false, 4); // frames of 15 values: the storage path
    } finally {
      normConfig.software = undefined;
    }
  }, 60_000);

  it('random shapes, both paths, frames of a multiple of 4 values or not, split statistics', async () => {
    const arb = fc.record({
      N: fc.integer({ min: 1, max: 2 }),
      groups: fc.constantFrom(1, 2, 3),
      cg: fc.integer({ min: 1, max: 4 }),
      T: fc.constantFrom(1, 2, 3, 5),
      spatial: fc.oneof(fc.array(awkwardDim(13), { minLength: 0, maxLength: 2 }), fc.constantFrom([4], [8, 4], [3, 4], [1100], [4, 4099])),
      software: fc.boolean(),
      silu: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arb, fc.constantFrom<DType | null>('f32', 'bf16', null), fc.constantFrom(0, 1000), seedArb, async (r, pd, offset, seed) => {
      normConfig.software = r.software;
      try {
        await checkFrames([r.N, r.cg * r.groups, r.T, ...r.spatial], r.groups, pd, r.silu, seed, offset);
      } finally {
        normConfig.software = undefined;
      }
    }), gpuRuns(12));
  }, 180_000);
});

describe('layerNormModulate (adaLN: LayerNorm, then x (1 + scale) + shift, in one pass)', () => {
  async function checkAdaLn(B: number, N: number, D: number, Mb: number, Mf: number, pd: DType, seed: number, offset = 0): Promise<void> {
    const inputs: Input[] = [
      { values: randomValues(B * N * D, `ax${seed}`, offset - 1, offset + 1), shape: [B, N, D], dtype: 'f32' },
      { values: randomValues(Mb * Mf * D, `as${seed}`, -1, 1), shape: [Mb, Mf, 1, D], dtype: pd },
      { values: randomValues(Mb * Mf * D, `ah${seed}`, -1, 1), shape: [Mb, Mf, 1, D], dtype: pd },
    ];
    await checkAgainstCpu(be, `layerNormModulate [${B},${N},${D}] mod [${Mb},${Mf}] ${pd} offset ${offset}`, inputs, (x, scale, shift) => F.layerNormModulate(x, scale, shift, 1e-6), TOL);
  }

  it('the oracle equals the unfused LayerNorm -> mul (1 + scale) -> add shift', async () => {
    const [B, N, D, Mf] = [2, 6, 10, 3];
    const x = F.fromArray(cpu, randomValues(B * N * D, 'am', -2, 2), [B, N, D]);
    for (const Mb of [1, B]) {
      const scale = F.fromArray(cpu, randomValues(Mb * Mf * D, 'ams'), [Mb, Mf, 1, D]);
      const shift = F.fromArray(cpu, randomValues(Mb * Mf * D, 'amh'), [Mb, Mf, 1, D]);
      const fused = await F.layerNormModulate(x, scale, shift, 1e-6).read();
      const x4 = F.layerNorm(x, null, null, 1e-6).reshape([B, Mf, N / Mf, D]);
      const split = await F.add(F.mul(x4, F.affine(scale, 1, 1)), shift).read();
      assertClose(fused, split, TOL, `Mb ${Mb}`);
    }
  });

  it('random shapes, both paths (rows per texture-row invocation and split statistics), bf16 modulation', async () => {
    const arb = fc.record({
      B: fc.integer({ min: 1, max: 3 }),
      Mf: fc.constantFrom(1, 2, 3, 5),
      per: fc.constantFrom(1, 2, 7, 13, 30),
      D: fc.constantFrom(1, 4, 7, 20, 33, 64, 260),
      perBatch: fc.boolean(),
      software: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arb, fc.constantFrom<DType>('f32', 'bf16'), fc.constantFrom(0, 1000), seedArb, async (r, pd, offset, seed) => {
      normConfig.software = r.software;
      try {
        await checkAdaLn(r.B, r.Mf * r.per, r.D, r.perBatch ? r.B : 1, r.Mf, pd, seed, offset);
      } finally {
        normConfig.software = undefined;
      }
    }), gpuRuns(12));
  }, 180_000);

  it('many rows (the one-invocation-per-row texture entry) and a long row (split)', async () => {
    for (const software of [true, false]) {
      normConfig.software = software;
      try {
        await checkAdaLn(2, 96, 128, 2, 4, 'f32', 1);
        await checkAdaLn(1, 150, 36, 1, 5, 'bf16', 2, 1000);
        await checkAdaLn(1, 2, SPLIT_ABOVE + 4, 1, 2, 'f32', 3);
      } finally {
        normConfig.software = undefined;
      }
    }
  }, 120_000);

  it('rejects scale / shift that do not broadcast', () => {
    const x = F.zeros(cpu, [2, 6, 4]);
    expect(() => F.layerNormModulate(x, F.zeros(cpu, [3, 1, 1, 4]), F.zeros(cpu, [3, 1, 1, 4]), 1e-6)).toThrow(/layerNormModulate/);
    expect(() => F.layerNormModulate(x, F.zeros(cpu, [1, 4, 1, 4]), F.zeros(cpu, [1, 4, 1, 4]), 1e-6)).toThrow(/divisor/);
    expect(() => F.layerNormModulate(x, F.zeros(cpu, [1, 2, 1, 4]), F.zeros(cpu, [1, 3, 1, 4]), 1e-6)).toThrow(/differ/);
  });
});

describe('norm: numerics', () => {
  it('constant rows (variance 0) give exactly the bias', async () => {
    const D = 37;
    const x = F.fromArray(be, new Float32Array(3 * D).map((_, i) => [1000.25, -3, 0][Math.floor(i / D)]), [3, D]);
    const bias = randomValues(D, 'cb');
    const y = await F.layerNorm(x, F.fromArray(be, randomValues(D, 'cw'), [D]), F.fromArray(be, bias, [D]), 1e-5).read();
    assertClose(y, [...bias, ...bias, ...bias], { atol: 0, rtol: 0 }, 'constant rows');
    const g = await F.groupNorm(F.full(be, [2, 4, 5], 7.5), 2, null, null, 1e-5).read();
    assertClose(g, new Float32Array(40), { atol: 0, rtol: 0 }, 'constant groups');
  });

  it('D = 1: layerNorm gives the bias, rmsNorm gives x / sqrt(x^2 + eps)', async () => {
    await checkLayer([6, 1], 'f32', 'f32', 'f32', 1e-5, 1);
    await checkRms([6, 1], 'f32', 'f32', 1e-6, 2);
    await checkGroup([3, 4], 4, 'f32', 'f32', 'f32', 1e-5, 3);
  });

  it('large offsets (mean 1000, std ~1) keep the variance, short and long rows', async () => {
    await checkLayer([5, 300], 'f32', 'f32', 'f32', 1e-5, 4, 1000, 1.7);
    await checkLayer([2, SPLIT_ABOVE + 3001], 'f32', null, 'f32', 1e-5, 5, 1000, 1.7);
    await checkGroup([2, 6, 7, 9], 3, 'f32', 'bf16', 'f32', 1e-6, 6, -1000, 1.7);
    await checkGroup([1, 4, 5, 3001], 2, 'f32', 'f32', 'f32', 1e-6, 7, 1000, 1.7);
    await checkRms([4, 129], 'f32', null, 1e-6, 8, 1000, 1.7);
  }, 60_000);

  it('tiny spreads stay above eps, huge values do not overflow', async () => {
    await checkLayer([4, 50], 'f32', null, null, 1e-12, 9, 1, 1e-3);
    await checkLayer([4, 50], 'f32', null, null, 1e-5, 10, 0, 1e15);
    await checkRms([4, 50], 'f32', null, 1e-6, 11, 0, 1e15);
  });
});

describe('norm: sizes', () => {
  it('long rows use the split reduction (several chunks, a partial last one)', async () => {
    const L = 5 * CHUNK + 17;
    expect(L).toBeGreaterThan(SPLIT_ABOVE);
    await checkLayer([3, L], 'bf16', 'bf16', 'f16', 1e-5, 12);
    await checkRms([2, L], 'f32', 'f32', 1e-6, 13);
    // group norm of a whole frame: 2 channels x 3 x 29 x 61 positions per group
    await checkGroup([2, 8, 3, 29, 61], 4, 'f32', 'f32', 'f32', 1e-6, 14);
  }, 60_000);

  it('more than 65535 rows (a 2D grid of row workgroups)', async () => {
    await checkLayer([70000, 3], 'f32', 'f32', 'f32', 1e-5, 15);
  }, 60_000);

  it('grids folded into 2D (the > 65535-workgroup layout) on every entry', async () => {
    // the kernels decode a folded grid the same way whatever the row width: fold small problems
    const saved = gridLimit.x;
    gridLimit.x = 4;
    try {
      await checkGroup([3, 4, 5], 2, 'f32', 'f32', 'f32', 1e-5, 16); // norm_row: 6 rows
      // split path: 2 x 6 chunk workgroups, 2 rows to combine, 2 * L / 256 elementwise groups
      await checkLayer([2, 5 * CHUNK + 17], 'f32', 'f32', 'f32', 1e-5, 17);
    } finally {
      gridLimit.x = saved;
    }
  }, 60_000);

  it('empty tensors give empty outputs', async () => {
    const y = F.layerNorm(F.zeros(be, [0, 8]), null, null, 1e-5);
    expect(y.shape).toEqual([0, 8]);
    expect((await y.read()).length).toBe(0);
    const g = F.groupNorm(F.zeros(be, [2, 4, 0]), 2, null, null, 1e-5);
    expect(g.shape).toEqual([2, 4, 0]);
    expect((await g.read()).length).toBe(0);
  });
});

describe('l2NormalizeChannels (channel-first L2 normalisation, optional SiLU)', () => {
  async function checkL2(shape: number[], xd: DType, wd: DType | null, silu: boolean, eps: number, seed: number, offset = 0, scale = 1): Promise<void> {
    await checkAgainstCpu(be, `l2NormalizeChannels [${shape}] x ${xd} w ${wd} silu ${silu}`, inputsFor(shape, shape[1], xd, wd, null, seed, offset, scale), (x, w) => F.l2NormalizeChannels(x, w ?? null, eps, { silu }), TOL);
  }

  it('random shapes [N, C, ...0-3 spatial dims], weight optional, any dtypes', async () => {
    const arb = fc.record({
      N: fc.integer({ min: 1, max: 3 }),
      C: awkwardDim(70),
      spatial: fc.array(awkwardDim(17), { minLength: 0, maxLength: 3 }),
      silu: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arb, dtypeArb, affineArb, seedArb, async (r, xd, a, seed) => {
      await checkL2([r.N, r.C, ...r.spatial], xd, a.hasW ? a.pd : null, r.silu, 1e-12, seed);
    }), gpuRuns(10));
  }, 60_000);

  it('both paths (texture: positions a multiple of 4, 4 columns per invocation), weight optional, silu', async () => {
    const shapeArb = fc.constantFrom<number[]>([1, 16, 3, 5, 4], [2, 7, 12], [1, 3, 4], [3, 33, 8, 8], [1, 5, 2, 3, 5]);
    await fc.assert(fc.asyncProperty(shapeArb, fc.boolean(), fc.constantFrom<DType | null>('f32', 'bf16', null), fc.boolean(), seedArb, async (shape, software, wd, silu, seed) => {
      normConfig.software = software;
      try {
        await checkL2(shape, 'f32', wd, silu, 1e-12, seed);
      } finally {
        normConfig.software = undefined;
      }
    }), gpuRuns(10));
  }, 60_000);

  it('a zero vector gives 0 (not NaN); tiny and huge columns; more columns than one grid row', async () => {
    const x = F.fromArray(be, new Float32Array([0, 0, 0, 1, 0, 0, 2, 0]), [1, 2, 4]);
    const y = await F.l2NormalizeChannels(x, null, 1e-12).read();
    assertClose(y, [0, 0, 0, 1, 0, 0, 1, 0], { atol: 0, rtol: 1e-6 }, 'zero columns');
    await checkL2([2, 5, 7], 'f32', 'f32', true, 1e-12, 20, 0, 1e-8);
    await checkL2([2, 5, 7], 'f32', 'f32', false, 1e-12, 21, 0, 1e15);
    await checkL2([1, 3, 70000], 'f32', 'bf16', true, 1e-12, 22);
  }, 60_000);
});
