// F.resizeFloat: float resizes without antialias (cv2.resize INTER_CUBIC / INTER_LINEAR of float
// images, torch's bilinear with align_corners=True and bicubic with a given scale factor). The CPU
// oracle against a direct float64 evaluation of each documented formula (every tap read at its
// clamped index, no folding of border weights), hand values on tiny inputs, then the WebGPU
// backend against the oracle over awkward shapes (1, primes, shrink and enlarge, odd ratios).
//
// Tolerance: the oracle folds taps that clamp onto one index and accumulates in float32, the
// direct form in float64: 1e-5 on values in [0, 1). CPU against WebGPU: the same float32 fused
// chain from the same host taps, 1e-6.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as F from '../../src/engine/ops.js';
import type { FloatResizeMode } from '../../src/engine/ops.js';
import { assertClose, awkwardDim, checkAgainstCpu, cpu, gpu, gpuRuns } from '../harness.js';

const MODES: FloatResizeMode[] = ['cv2_cubic', 'cv2_linear', 'align_corners', 'torch_cubic'];

function values(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = (s >>> 8) / 2 ** 24;
  }
  return v;
}

const cubic = (x: number, A = -0.75): number => {
  const a = Math.abs(x);
  if (a <= 1) return ((A + 2) * a - (A + 3)) * a * a + 1;
  if (a < 2) return ((A * a - 5 * A) * a + 8 * A) * a - 4 * A;
  return 0;
};

/** (index, weight) pairs of one output position, straight from each library's formula. */
function directTaps(mode: FloatResizeMode, n: number, m: number, i: number, factor?: number): [number, number][] {
  const clamp = (j: number) => Math.min(Math.max(j, 0), n - 1);
  switch (mode) {
    case 'cv2_cubic': {
      const src = (i + 0.5) * (n / m) - 0.5;
      const f = Math.floor(src);
      return [-1, 0, 1, 2].map((k) => [clamp(f + k), cubic(src - (f + k))]);
    }
    case 'cv2_linear': {
      const src = (i + 0.5) * (n / m) - 0.5;
      let f = Math.floor(src);
      let t = src - f;
      if (f < 0) { f = 0; t = 0; }
      if (f >= n - 1) { f = n - 1; t = 0; }
      return [[f, 1 - t], [clamp(f + 1), t]];
    }
    case 'align_corners': {
      const src = m > 1 ? (i * (n - 1)) / (m - 1) : 0;
      const f = Math.floor(src);
      return [[f, 1 - (src - f)], [clamp(f + 1), src - f]];
    }
    case 'torch_cubic': {
      const src = (i + 0.5) * (factor ? 1 / factor : n / m) - 0.5;
      const f = Math.floor(src);
      return [-1, 0, 1, 2].map((k) => [clamp(f + k), cubic(src - (f + k))]);
    }
  }
}

function direct(x: Float32Array, H: number, W: number, h: number, w: number, mode: FloatResizeMode, factor?: [number, number]): Float64Array {
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const ty = directTaps(mode, H, h, y, factor?.[0]);
    for (let xo = 0; xo < w; xo++) {
      const tx = directTaps(mode, W, w, xo, factor?.[1]);
      let s = 0;
      for (const [iy, wy] of ty) for (const [ix, wx] of tx) s += wy * wx * x[iy * W + ix];
      out[y * w + xo] = s;
    }
  }
  return out;
}

describe('resizeFloat: the CPU oracle', () => {
  it('gives the hand values on tiny inputs', async () => {
    const x = F.fromArray(cpu, [0, 1], [1, 2]);
    expect(Array.from(await F.resizeFloat(x, 1, 4, 'cv2_linear').read())).toEqual([0, 0.25, 0.75, 1]);
    const ac = await F.resizeFloat(x, 1, 4, 'align_corners').read();
    assertClose(ac, [0, 1 / 3, 2 / 3, 1], { atol: 1e-7, rtol: 0 });
    // cubic at the pixel centres of an unchanged size reads each pixel alone
    const y = F.fromArray(cpu, values(35, 3), [5, 7]);
    expect(Array.from(await F.resizeFloat(y, 5, 7, 'cv2_cubic').read())).toEqual(Array.from(await y.read()));
    // a constant stays constant through the clamped borders, shrinking or enlarging
    for (const mode of MODES) {
      const c = F.fromArray(cpu, new Float32Array(6 * 9).fill(0.375), [6, 9]);
      assertClose(await F.resizeFloat(c, 13, 4, mode).read(), new Float32Array(13 * 4).fill(0.375), { atol: 1e-6, rtol: 0 }, mode);
    }
  });

  it('equals the direct evaluation of each formula', async () => {
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...MODES), awkwardDim(23), awkwardDim(23), awkwardDim(29), awkwardDim(29), fc.nat(),
      async (mode, H, W, h, w, seed) => {
        const x = values(H * W, seed);
        const factor: [number, number] | undefined = mode === 'torch_cubic' ? [(h + 0.1) / H, (w + 0.1) / W] : undefined;
        const got = await F.resizeFloat(F.fromArray(cpu, x, [H, W]), h, w, mode, factor ? { scaleFactor: factor } : {}).read();
        assertClose(got, direct(x, H, W, h, w, mode, factor), { atol: 1e-5, rtol: 0 }, `${mode} ${H}x${W} -> ${h}x${w}`);
      },
    ), { numRuns: 200 });
  });

  it('refuses a bad size or mode', () => {
    const x = F.fromArray(cpu, [1, 2, 3, 4], [2, 2]);
    expect(() => F.resizeFloat(x, 0, 2, 'cv2_linear')).toThrow(/bad output size/);
    expect(() => F.resizeFloat(x, 2, 2, 'area' as FloatResizeMode)).toThrow(/unknown mode/);
  });
});

describe('webgpu resizeFloat', () => {
  it('matches the oracle over awkward shapes, leading dims and every mode', async () => {
    const backend = await gpu();
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...MODES), fc.integer({ min: 1, max: 3 }), awkwardDim(40), awkwardDim(40), awkwardDim(45), awkwardDim(45), fc.nat(),
      async (mode, lead, H, W, h, w, seed) => {
        const opts = mode === 'torch_cubic' ? { scaleFactor: [(h + 0.1) / H, (w + 0.1) / W] as const } : {};
        await checkAgainstCpu(backend, `${mode} [${lead}, ${H}, ${W}] -> ${h}x${w}`, [{ values: values(lead * H * W, seed), shape: [lead, H, W] }],
          (x) => F.resizeFloat(x, h, w, mode, opts), { atol: 1e-6, rtol: 0 });
      },
    ), gpuRuns(30));
  }, 120_000);
});
