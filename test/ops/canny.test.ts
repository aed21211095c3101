// The canny op on WebGPU against the CPU oracle (engine/cpu/canny.ts), exactly: awkward frame
// sizes (1, odd, primes, past the hysteresis tile), 1 to 4 channels, f32 / i32 storage holding
// values outside 0..255 and fractions (read as uint8: truncated, saturated), random thresholds;
// a weak chain snaking across many tiles (hysteresis needs many passes and several flag reads);
// a folded dispatch grid; and the four public edge cases on WebGPU.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import { gridLimit } from '../../src/engine/webgpu/context.js';
import { TILE } from '../../src/engine/webgpu/kernels/canny.wgsl.js';
import { GROW_BATCH } from '../../src/engine/webgpu/ops/canny.js';
import { edgeMap } from '../../src/models/controlnet/edge-map.js';
import { awkwardDim, cpu, expectCasePasses, gpuRuns, randomInts, webgpu } from '../harness.js';

let gpu: Backend;
beforeAll(async () => {
  gpu = await webgpu(); // no adapter -> the suite fails, never skips
}, 60_000);

async function both(values: ArrayLike<number>, shape: number[], lo: number, hi: number, dtype: DType = 'i32') {
  const xc = F.fromArray(cpu, values, shape, dtype);
  const xg = F.fromArray(gpu, values, shape, dtype);
  const [c, g] = [await F.canny(xc, lo, hi), await F.canny(xg, lo, hi)];
  const want = Array.from(await c.read());
  const got = Array.from(await g.read());
  expect(g.shape).toEqual(c.shape);
  expect(g.dtype).toBe('i32');
  for (const t of [xc, xg, c, g]) t.dispose();
  return { want, got };
}

/** Blocky content plus noise: smooth areas, sharp block edges of many strengths, weak texture. */
function content(n: number, seed: number, W: number, amplitude: number): number[] {
  const blocks = randomInts(64, seed, 0, 256);
  const noise = randomInts(n, seed + 1, -amplitude, amplitude + 1);
  return Array.from({ length: n }, (_, i) => blocks[(Math.floor(i / W / 5) * 3 + Math.floor((i % W) / 7)) % 64] + noise[i]);
}

describe('canny: WebGPU equals the CPU oracle', () => {
  it('awkward sizes, channels, thresholds and storages', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          C: fc.integer({ min: 1, max: 4 }),
          T: fc.integer({ min: 1, max: 3 }),
          H: awkwardDim(40),
          W: awkwardDim(40),
          lo: fc.integer({ min: 0, max: 500 }),
          hi: fc.integer({ min: 0, max: 700 }),
          amplitude: fc.constantFrom(0, 3, 20, 60),
          seed: fc.integer({ min: 0, max: 1e6 }),
          dtype: fc.constantFrom<DType>('i32', 'f32'),
        }),
        async ({ C, T, H, W, lo, hi, amplitude, seed, dtype }) => {
          const n = C * T * H * W;
          // f32 storage also carries fractions and negatives: both backends read them as uint8
          const values = content(n, seed, W, amplitude).map((v, i) => (dtype === 'f32' && i % 3 === 0 ? v + 0.75 : v));
          const { want, got } = await both(values, [C, T, H, W], lo, hi, dtype);
          expect(got).toEqual(want);
        },
      ),
      gpuRuns(30),
    );
  }, 600_000);

  it('a weak chain across many tiles is followed to its end', async () => {
    // the outline of a 3-pixel-wide serpentine of value 20 (weak steps, magnitude 60 to 80 at
    // thresholds 30 / 200) winding through 70 x 70; a 255 pixel at its head makes the only strong edges
    const H = 70;
    const W = 70;
    const img = new Array(H * W).fill(0);
    const fill = (y: number, x: number) => {
      img[y * W + x] = 20;
    };
    for (let band = 0; band * 6 + 4 < H; band++) {
      const y = band * 6 + 2;
      for (let x = 2; x < W - 2; x++) for (let k = 0; k < 3; k++) fill(y + k, x);
      const xEnd = band % 2 === 0 ? W - 5 : 2;
      for (let k = 0; k < 6 && y + k < H - 2; k++) for (let j = 0; j < 3; j++) fill(y + k, xEnd + j);
    }
    const headless = await both(img, [1, 1, H, W], 30, 200);
    expect(headless.got).toEqual(headless.want);
    expect(headless.want.filter((v) => v === 255).length).toBe(0);
    img[3 * W + 3] = 255;
    const run = await both(img, [1, 1, H, W], 30, 200);
    expect(run.got).toEqual(run.want);
    // the outline runs the serpentine's length: through every tile, far more passes than one batch
    expect(run.want.filter((v) => v === 255).length).toBeGreaterThan(GROW_BATCH * TILE * 10);
  }, 120_000);

  it('dispatch grids folded into y', async () => {
    const saved = gridLimit.x;
    gridLimit.x = 3;
    try {
      const shape = [3, 2, 37, 41];
      const { want, got } = await both(content(3 * 2 * 37 * 41, 5, 41, 20), shape, 40, 90);
      expect(got).toEqual(want);
    } finally {
      gridLimit.x = saved;
    }
  }, 120_000);

  it('an empty stack; a tensor that is not C x T x H x W', async () => {
    const { want, got } = await both([], [3, 0, 4, 5], 100, 200);
    expect(got).toEqual(want);
    const flat = F.fromArray(gpu, [1, 2], [2]);
    expect(() => F.canny(flat, 1, 2)).toThrow(/^canny: expected video \[C >= 1, T, H, W\]/);
    flat.dispose();
  });
});

describe('the edge map on WebGPU', () => {
  it('frames split over several canny calls give the CPU map', async () => {
    const values = content(3 * 7 * 19 * 23, 9, 23, 20);
    const xc = F.fromArray(cpu, values, [3, 7, 19, 23], 'i32');
    const xg = F.fromArray(gpu, values, [3, 7, 19, 23], 'i32');
    const want = await edgeMap(xc, 60, 150);
    const got = await edgeMap(xg, 60, 150, 3);
    expect(got.shape).toEqual([1, 3, 7, 19, 23]);
    expect(Array.from(await got.read())).toEqual(Array.from(await want.read()));
    for (const t of [xc, xg, want, got]) t.dispose();
  }, 120_000);
});

const FIXTURES = fileURLToPath(new URL('../fixtures/control_maps', import.meta.url));

describe('controlnet.edge_map conformance (WebGPU)', () => {
  for (const name of ['edge_medium', 'edge_low', 'edge_very_low', 'edge_high']) {
    it(name, async () => void (await expectCasePasses(join(FIXTURES, name), gpu)), 120_000);
  }
});
