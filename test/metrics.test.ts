import { readFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSafetensors } from '../src/io/safetensors.js';
import { gaussianKernel, mse, psnr, ssim, ssimPerFrame } from '../src/metrics/quality.js';

const SAMPLES = nodePath.resolve(import.meta.dirname, '../weights/samples');
const expected = JSON.parse(readFileSync(nodePath.join(SAMPLES, 'expected.json'), 'utf8'));

/** Half a unit in the last printed digit of a rounded expected.json value. */
function halfUlp(x: number): number {
  const s = String(x);
  const dot = s.indexOf('.');
  return dot < 0 ? 0.5 : 0.5 * 10 ** -(s.length - dot - 1);
}

describe('expected.json reproduction', () => {
  for (const i of [0, 1, 2]) {
    it(`sample_${i}: PSNR and SSIM of rec_cv and rec_dv against input`, async () => {
      const f = await openSafetensors(nodePath.join(SAMPLES, `sample_${i}.safetensors`));
      try {
        const input = (await f.read('input')).raw as Float32Array;
        const shape = (await f.read('input')).shape;
        expect(shape).toEqual([1, 3, 17, 64, 64]);
        for (const m of ['cv', 'dv'] as const) {
          const rec = (await f.read(`rec_${m}`)).raw as Float32Array;
          const want = expected.samples[i][m];
          const p = psnr(rec, input);
          const s = ssim(rec, input, shape);
          // within the rounding of the printed value, plus the stated float32 tolerance
          expect(Math.abs(p - want.psnr), `${m} psnr ${p} vs ${want.psnr}`).toBeLessThanOrEqual(Math.min(0.01, halfUlp(want.psnr) + 1e-3));
          expect(Math.abs(s - want.ssim), `${m} ssim ${s} vs ${want.ssim}`).toBeLessThanOrEqual(Math.min(1e-4, halfUlp(want.ssim) + 1e-6));
        }
      } finally {
        await f.close();
      }
    });
  }
});

describe('definitions', () => {
  it('the Gaussian window is symmetric, peaks in the middle and sums to 1', () => {
    const k = gaussianKernel();
    expect(k.length).toBe(11);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    expect(k[0]).toBeCloseTo(k[10], 15);
    expect(k[5]).toBe(Math.max(...k));
    expect(k[4] / k[5]).toBeCloseTo(Math.exp(-1 / 4.5), 12);
  });

  it('psnr: identical clips give Infinity, a constant error of 0.2 gives 10 log10(4 / 0.04) = 20 dB', () => {
    const a = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i) * 0.7);
    expect(psnr(a, a)).toBe(Infinity);
    const b = a.map((v) => v + 0.2);
    expect(psnr(b, a)).toBeCloseTo(20, 5);
  });

  it('psnr clamps the reconstruction (not the reference) to [-1, 1] first', () => {
    const ref = new Float32Array([1, -1, 0.5, 0]);
    expect(mse(new Float32Array([3, -7, 0.5, 0]), ref)).toBe(0);
    expect(mse(ref, new Float32Array([3, -1, 0.5, 0]))).toBe(1);
  });

  it('ssim: 1 for identical frames, below 1 otherwise, per frame on the valid 54x54 map', () => {
    const T = 2;
    const H = 16;
    const W = 13;
    const a = Float32Array.from({ length: 3 * T * H * W }, (_, i) => Math.sin(i * 0.37) * 0.8);
    expect(ssim(a, a, [3, T, H, W])).toBeCloseTo(1, 12);
    const b = a.slice();
    // perturb frame 1 only
    for (let c = 0; c < 3; c++) for (let p = 0; p < H * W; p++) b[(c * T + 1) * H * W + p] += 0.3 * Math.cos(p);
    const per = ssimPerFrame(b, a, [3, T, H, W]);
    expect(per[0]).toBeCloseTo(1, 12);
    expect(per[1]).toBeLessThan(0.9);
    expect(ssim(b, a, [1, 3, T, H, W])).toBeCloseTo((per[0] + per[1]) / 2, 14);
  });

  it('ssim of a constant frame against itself shifted in brightness follows the luminance term', () => {
    // constant frames: variances 0, so SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1)
    const H = 11;
    const W = 11;
    const x = new Float32Array(3 * H * W).fill(0); // luma 0.5
    const y = new Float32Array(3 * H * W).fill(-0.5); // luma 0.25
    const C1 = 1e-4;
    expect(ssim(x, y, [3, 1, H, W])).toBeCloseTo((2 * 0.5 * 0.25 + C1) / (0.25 + 0.0625 + C1), 12);
  });

  it('rejects mismatched or too small inputs', () => {
    expect(() => psnr(new Float32Array(3), new Float32Array(4))).toThrow(/same shape/);
    expect(() => ssim(new Float32Array(3 * 10 * 10), new Float32Array(3 * 10 * 10), [3, 1, 10, 10])).toThrow(/^ssim: is 10x10 \(W x H\); PSNR\/SSIM need frames of at least 11x11$/);
    expect(() => ssim(new Float32Array(12), new Float32Array(12), [4, 1, 1, 3])).toThrow(/not \[3, T, H, W\]/);
  });
});
