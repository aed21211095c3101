// OpenCV's uint8 bilateral filter (F.bilateralFilter) on the WebGPU backend against the CPU
// oracle (engine/image.ts): RGB planes [3, T, H, W] of random bytes over awkward frame sizes
// (1, odd, primes, widths around OpenCV's 32-pixel vector blocks, supports wider than the frame,
// which fold the reflect-101 border) and the diameters and sigmas of the blur-map presets.
//
// Tolerance: exact. Both sides take the same float32 operations in the same order from the same
// host tables and round ties to even the same way, so the rounded bytes agree (on llvmpipe; a GPU
// whose fma or division rounds otherwise could move a value sitting on a .5 boundary).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as F from '../../src/engine/ops.js';
import { awkwardDim, checkAgainstCpu, cpu, gpu, gpuRuns } from '../harness.js';

const EXACT = { atol: 0, rtol: 0 };

function bytes(n: number, seed: number, levels = 256): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = (s >>> 8) % levels;
  }
  return v;
}

interface Case {
  T: number;
  H: number;
  W: number;
  d: number;
  sigmaColor: number;
  sigmaSpace: number;
  levels: number;
  seed: number;
}

async function check(c: Case): Promise<void> {
  const shape = [3, c.T, c.H, c.W];
  await checkAgainstCpu(await gpu(), `bilateral [${shape}] d ${c.d} sigma ${c.sigmaColor}/${c.sigmaSpace}`, [
    { values: bytes(3 * c.T * c.H * c.W, c.seed, c.levels), shape },
  ], (x) => F.bilateralFilter(x, c.d, c.sigmaColor, c.sigmaSpace), EXACT);
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  T: fc.integer({ min: 1, max: 2 }),
  H: awkwardDim(20),
  W: fc.oneof(awkwardDim(40), fc.constantFrom(31, 32, 33, 64, 65)),
  d: fc.constantFrom(1, 3, 5, 15, 30),
  sigmaColor: fc.constantFrom(1, 100, 150, 300),
  sigmaSpace: fc.constantFrom(1, 50, 100, 150),
  // few levels: many exact colour ties and flat patches
  levels: fc.constantFrom(2, 7, 256),
  seed: fc.nat(),
});

describe('webgpu bilateralFilter', () => {
  it('matches the oracle on awkward frame sizes and the preset settings', async () => {
    await fc.assert(fc.asyncProperty(caseArb, async (c) => { await check(c); }), gpuRuns(20));
  });

  it('the presets diameters (30, 50) on a frame wider than a vector block, and [3, H, W] frames', async () => {
    await check({ T: 1, H: 19, W: 70, d: 30, sigmaColor: 150, sigmaSpace: 100, levels: 256, seed: 3 });
    await check({ T: 1, H: 9, W: 40, d: 50, sigmaColor: 300, sigmaSpace: 150, levels: 256, seed: 4 });
    const x = F.fromArray(cpu, Array.from(bytes(3 * 5 * 6, 9)), [3, 5, 6]);
    expect(F.bilateralFilter(x, 5, 100, 50).shape).toEqual([3, 5, 6]);
  });

  it('rounds an exact .5 to even (150.5 -> 150, 151.5 -> 152)', async () => {
    // two pixels, d = 1 (radius 1): with sigmaColor huge every weight is ~1 and the centre pixel of
    // a 1x2 frame averages itself (x3: its two row reflections) with its neighbour (x2)
    const x = F.fromArray(await gpu(), [150, 151, 150, 151, 150, 151], [3, 1, 2]);
    const y = F.fromArray(cpu, [150, 151, 150, 151, 150, 151], [3, 1, 2]);
    expect(Array.from(await F.bilateralFilter(x, 1, 1e9, 1e9).read())).toEqual(Array.from(await F.bilateralFilter(y, 1, 1e9, 1e9).read()));
  });

  it('rejects a tensor that is not RGB planes', () => {
    expect(() => F.bilateralFilter(F.zeros(cpu, [4, 2, 2]), 5, 100, 50)).toThrow(/RGB planes/);
  });
});

describe('webgpu resizeBicubicAA', () => {
  const sizeArb = fc.record({
    lead: fc.integer({ min: 1, max: 3 }),
    H: awkwardDim(40),
    W: awkwardDim(70),
    outH: awkwardDim(40),
    outW: awkwardDim(70),
    levels: fc.constantFrom(2, 256),
    seed: fc.nat(),
  });
  it('matches the oracle shrinking and enlarging over awkward sizes', async () => {
    await fc.assert(fc.asyncProperty(sizeArb, async (c) => {
      const shape = [c.lead, c.H, c.W];
      await checkAgainstCpu(await gpu(), `resizeBicubicAA [${shape}] -> ${c.outH}x${c.outW}`, [
        { values: bytes(c.lead * c.H * c.W, c.seed, c.levels), shape },
      ], (x) => F.resizeBicubicAA(x, c.outH, c.outW), EXACT);
    }), gpuRuns(25));
  });

  it('the blur-map sizes (64x96 -> 6x9 -> 64x96, 704x1280 -> 44x80) and equal sizes', async () => {
    for (const [H, W, h, w] of [[64, 96, 6, 9], [6, 9, 64, 96], [704, 1280, 44, 80], [5, 7, 5, 7], [5, 7, 5, 3]]) {
      await checkAgainstCpu(await gpu(), `resizeBicubicAA ${H}x${W} -> ${h}x${w}`, [
        { values: bytes(2 * H * W, H * W), shape: [2, H, W] },
      ], (x) => F.resizeBicubicAA(x, h, w), EXACT);
    }
  });
});

describe('webgpu resizeAreaU8', () => {
  const arb = fc.record({
    lead: fc.integer({ min: 1, max: 3 }),
    H: awkwardDim(40),
    W: awkwardDim(70),
    fh: fc.double({ min: 0, max: 1, noNaN: true }),
    fw: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.nat(),
  });
  it('matches the oracle on whole blocks and fractional coverage', async () => {
    await fc.assert(fc.asyncProperty(arb, async (c) => {
      const outH = Math.max(1, Math.ceil(c.fh * c.H));
      const outW = Math.max(1, Math.ceil(c.fw * c.W));
      await checkAgainstCpu(await gpu(), `resizeAreaU8 [${c.lead},${c.H},${c.W}] -> ${outH}x${outW}`, [
        { values: bytes(c.lead * c.H * c.W, c.seed), shape: [c.lead, c.H, c.W] },
      ], (x) => F.resizeAreaU8(x, outH, outW), EXACT);
    }), gpuRuns(25));
  });

  it('2x2, 4x4 and 3 -> 2 blocks; enlarging is refused', async () => {
    for (const [H, W, h, w] of [[64, 96, 32, 48], [64, 96, 16, 24], [3, 3, 2, 2], [97, 65, 48, 32]]) {
      await checkAgainstCpu(await gpu(), `resizeAreaU8 ${H}x${W} -> ${h}x${w}`, [
        { values: bytes(3 * H * W, H + W), shape: [3, H, W] },
      ], (x) => F.resizeAreaU8(x, h, w), EXACT);
    }
    expect(() => F.resizeAreaU8(F.zeros(cpu, [2, 3]), 3, 3)).toThrow(/not a shrink/);
  });
});
