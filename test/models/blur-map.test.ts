// The blur (vis) control map (spec control_maps.md "Blur"): the four public cases stage by stage,
// then the stages against hand-computed values (block means and OpenCV's fractional area path,
// the bilateral filter's identity on a flat image, the rounding and clamping of each stage) and
// the preset tables of both variants.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  bicubicAATaps, bicubicDownSize, bilateralFilterU8, bilateralKernel, blurMap, blurPreset, engineStages, fitSize, resizeAreaU8, resizeBicubicAAPlane,
} from '../../src/models/controlnet/blur-map.js';
import { resizeLinearU8 } from '../../src/models/guardrail/face-post.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/control_maps', import.meta.url));
const CASES = ['blur_medium', 'blur_low', 'blur_high', 'blur_t1_high'];

describe('controlnet.blur_map conformance', () => {
  for (const name of CASES) {
    it(`${name} on cpu: the output and every stage tap`, async () => {
      const r = await expectCasePasses(join(FIXTURES, name), cpu);
      expect(Object.keys(r.taps).length).toBeGreaterThanOrEqual(2);
      // uint8 results compare exactly: each stage emulates its library's arithmetic
      for (const c of [...Object.values(r.outputs), ...Object.values(r.taps)]) expect(c.max_abs).toBe(0);
    }, 60_000);
    it(`${name} on webgpu: every stage on the engine ops`, async () => {
      const r = await expectCasePasses(join(FIXTURES, name), await webgpu());
      for (const c of [...Object.values(r.outputs), ...Object.values(r.taps)]) expect(c.max_abs).toBe(0);
    }, 120_000);
  }
});

describe('INTER_AREA downscale', () => {
  it('2x2 blocks are (a+b+c+d+2) >> 2', () => {
    const ramp = Uint8Array.from({ length: 8 }, (_, i) => i); // 2 rows x 4
    expect([...resizeAreaU8(ramp, 4, 2, 2, 1, 1)]).toEqual([3, 5]); // (0+1+4+5+2)>>2, (2+3+6+7+2)>>2
  });
  it('other integer factors round the block mean half to even', () => {
    const block = (v: number) => {
      const img = new Uint8Array(16);
      img[5] = v;
      return resizeAreaU8(img, 4, 4, 1, 1, 1)[0];
    };
    expect([block(8), block(24), block(40), block(41)]).toEqual([0, 2, 2, 3]); // 0.5, 1.5, 2.5, 2.5625
  });
  it('a non-integer factor weighs the fractional coverage', () => {
    // 3 -> 2: out0 = (0 * 1 + 30 * 0.5) / 1.5, out1 = (30 * 0.5 + 60 * 1) / 1.5
    expect([...resizeAreaU8(Uint8Array.from([0, 30, 60]), 3, 1, 2, 1, 1)]).toEqual([10, 50]);
  });
  it('keeps the channels apart', () => {
    const img = Uint8Array.from([10, 200, 0, 20, 100, 255, 30, 0, 0, 40, 0, 1]); // 2x2 RGB
    expect([...resizeAreaU8(img, 2, 2, 1, 1, 3)]).toEqual([25, 75, 64]);
  });
});

describe('bilateral filter', () => {
  it('is the identity on a flat image', () => {
    const img = new Uint8Array(7 * 5 * 3);
    for (let i = 0; i < img.length; i++) img[i] = [17, 128, 250][i % 3];
    expect([...bilateralFilterU8(img, 7, 5, 30, 150, 100)]).toEqual([...img]);
  });
  it('takes a circular support of radius d // 2, row by row', () => {
    const k = bilateralKernel(30, 100);
    expect(k.radius).toBe(15);
    expect(k.dy[0]).toBe(-15);
    expect(k.dx[0]).toBe(0); // only the centre column reaches the top row
    let n = 0;
    for (let i = -15; i <= 15; i++) for (let j = -15; j <= 15; j++) if (i * i + j * j <= 225) n++;
    expect(k.weight.length).toBe(n);
    expect(bilateralKernel(0, 2).radius).toBe(3); // d <= 0: round(1.5 sigmaSpace)
  });
  it('weighs each neighbour by space and summed colour distance (3x1 image, d = 3)', () => {
    // support: the pixel, its two row neighbours (reflected onto itself, h = 1) and its two column
    // neighbours; space weight exp(-1 / (2 * 100^2)), colour weight exp(-270^2 / (2 * 100^2))
    const img = new Uint8Array(9);
    img.set([90, 90, 90], 3);
    const s = Math.exp(-1 / 20000);
    const c = Math.exp(-(270 * 270) / 20000);
    const wsum = 1 + 2 * s + 2 * s * c;
    const mid = Math.round((90 * (1 + 2 * s)) / wsum); // 88.46
    const side = Math.round((90 * 2 * s * c) / wsum); // 1.54
    expect([mid, side]).toEqual([88, 2]);
    expect([...bilateralFilterU8(img, 3, 1, 3, 100, 100)]).toEqual([2, 2, 2, 88, 88, 88, 2, 2, 2]);
  });
});

describe('INTER_LINEAR upscale (the OpenCV fixed-point resize of face-post.ts)', () => {
  it('half-pixel centres clamped at the borders', () => {
    expect([...resizeLinearU8(Uint8Array.from([0, 100]), 2, 1, 4, 1, 1)]).toEqual([0, 25, 75, 100]);
  });
});

describe('antialiased bicubic (torchvision)', () => {
  it('normalises each output pixel weights to 1 and stretches the support when shrinking', () => {
    const t = bicubicAATaps(96, 9);
    for (let i = 0; i < 9; i++) {
      let s = 0;
      for (let j = 0; j < t.size[i]; j++) s += t.weights[i * t.stride + j];
      expect(s).toBeCloseTo(1, 6);
    }
    expect(t.size[4]).toBeGreaterThan(4);
    expect(bicubicAATaps(6, 64).size[32]).toBeLessThanOrEqual(4);
  });
  it('keeps a flat plane flat and clamps the overshoot of a step to [0, 255]', () => {
    expect(new Set(resizeBicubicAAPlane(new Uint8Array(6 * 9).fill(77), 9, 6, 96, 64))).toEqual(new Set([77]));
    const step = Uint8Array.from({ length: 8 }, (_, i) => (i < 4 ? 0 : 255));
    const up = resizeBicubicAAPlane(step, 8, 1, 32, 1);
    expect(Math.min(...up)).toBe(0);
    expect(Math.max(...up)).toBe(255);
    // without the clamp the negative lobes would undershoot next to the edge
    expect(up.filter((v) => v === 0).length).toBeGreaterThan(12);
  });
  it('rounds to the nearest level, ties to even', () => {
    // 2 -> 1 of [1, 2] is 1.5 exactly (symmetric weights): even 2; [2, 3] gives 2.5: even 2
    expect(resizeBicubicAAPlane(Uint8Array.from([1, 2]), 2, 1, 1, 1)[0]).toBe(2);
    expect(resizeBicubicAAPlane(Uint8Array.from([2, 3]), 2, 1, 1, 1)[0]).toBe(2);
  });
  it('the down size is int(H / s), int(W / s)', () => {
    expect(bicubicDownSize(64, 96, 10)).toEqual([6, 9]);
    expect(bicubicDownSize(704, 1280, 16)).toEqual([44, 80]);
  });
});

describe('presets and the whole map', () => {
  it('Transfer2.5 keeps the bilateral defaults; Transfer1 follows the preset', () => {
    expect(blurPreset('transfer2.5', 'high')).toEqual({ areaDownFactor: 1, bilateral: { d: 30, sigmaColor: 150, sigmaSpace: 100, iter: 1 }, downupFactor: 16 });
    expect(blurPreset('transfer1', 'high')?.bilateral).toEqual({ d: 50, sigmaColor: 300, sigmaSpace: 150, iter: 1 });
    // the same numbers, apart from Transfer1's 720p box
    const { fitBox: _box, ...t1Medium } = blurPreset('transfer1', 'medium')!;
    expect(t1Medium).toEqual(blurPreset('transfer2.5', 'medium'));
    expect(blurPreset('transfer2.5', 'low')).toMatchObject({ areaDownFactor: 4, downupFactor: 4 });
    expect(blurPreset('transfer2.5', 'none')).toBeNull();
    expect(blurPreset('transfer1', 'low')?.fitBox).toEqual([1280, 704]);
    expect(blurPreset('transfer2.5', 'low')?.fitBox).toBeUndefined();
  });

  it('Transfer1 first shrinks frames larger than the 720p box (int(r * size + 0.5))', async () => {
    expect(fitSize(1920, 1080, [1280, 704])).toEqual([1252, 704]); // r = 704 / 1080
    expect(fitSize(1280, 704, [1280, 704])).toEqual([1280, 704]);
    expect(fitSize(96, 64, [1280, 704])).toEqual([96, 64]);
    // a 2x-too-wide frame: shrunk to the box's width by the area resize, then blurred at that size
    const v = Uint8Array.from({ length: 3 * 1 * 2 * 2600 }, (_, i) => (i * 7) % 256);
    const settings = { ...blurPreset('transfer1', 'very_low')!, bilateral: { d: 1, sigmaColor: 1, sigmaSpace: 1, iter: 1 }, downupFactor: 1 };
    const stages: string[] = [];
    const out = await blurMap(v, [3, 1, 2, 2600], settings, (s, _v, shape) => stages.push(`${s}:${shape.join('x')}`));
    expect(stages).toEqual(['bilateral:3x1x1x1280', 'bicubic_down:3x1x1x1280']);
    expect(out.length).toBe(3 * 1280);
  });
  it('`none` returns the input; odd sizes run through every stage, on the host or the engine op alike', async () => {
    const v = Uint8Array.from({ length: 3 * 2 * 13 * 19 }, (_, i) => (i * 37) % 256);
    expect([...(await blurMap(v, [3, 2, 13, 19], null))]).toEqual([...v]);
    const stages: string[] = [];
    const out = await blurMap(v, [3, 2, 13, 19], blurPreset('transfer2.5', 'medium'), (s, vals, shape) => {
      stages.push(`${s}:${shape.join('x')}`);
      expect(vals.length).toBe(shape.reduce((a, b) => a * b, 1));
    });
    expect(out.length).toBe(v.length);
    expect(stages).toEqual(['area_down:3x2x6x9', 'bilateral:3x2x6x9', 'linear_up:3x2x13x19', 'bicubic_down:3x2x1x1']);
    const w = Uint8Array.from({ length: 3 * 2 * 17 * 33 }, (_, i) => (i * 37) % 256);
    const viaEngine = await blurMap(w, [3, 2, 17, 33], blurPreset('transfer1', 'very_high'), undefined, engineStages(cpu));
    expect([...viaEngine]).toEqual([...(await blurMap(w, [3, 2, 17, 33], blurPreset('transfer1', 'very_high')))]);
    await expect(blurMap(v, [3, 2, 13, 19], blurPreset('transfer1', 'very_high'))).rejects.toThrow(/too small for the down-up factor 16/);
  });
});
