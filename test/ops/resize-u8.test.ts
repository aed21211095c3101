// F.resizeU8: cv2.resize of uint8 planes in INTER_AREA, INTER_LINEAR and INTER_NEAREST for every
// size pair. The CPU oracle (engine/image.ts) against OpenCV's own outputs
// (test/fixtures/opencv-resize: sha256 of each output, small ones whole; the inputs are
// recomputed here from their seeds), then the WebGPU kernel against the oracle over awkward sizes.
//
// Tolerance: exact. OpenCV's uint8 resizes are integer arithmetic after float32 tables (area
// coverage aside, which the existing area op reproduces in float32 order); the tables are built
// once on the host and both backends apply the same integer formulas.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ResizeMode, resizeU8Interleaved, resizeU8Planes } from '../../src/engine/image.js';
import * as F from '../../src/engine/ops.js';
import { resizeFrames } from '../../src/models/controlnet/resize-frames.js';
import { resizeLinearU8, resizeNearestU8 } from '../../src/models/guardrail/face-post.js';
import { awkwardDim, checkAgainstCpu, cpu, gpu, gpuRuns } from '../harness.js';

const EXACT = { atol: 0, rtol: 0 };

interface RefCase {
  seed: number;
  channels: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  mode: ResizeMode;
  sha256: string;
  out?: string;
}

const FIXTURE = new URL('../fixtures/opencv-resize/cases.json', import.meta.url);
const REF: { opencv: string; cases: RefCase[] } = JSON.parse(readFileSync(FIXTURE, 'utf8'));

/** gen.py's counter hash of (seed, i), top byte: the input pixels of a case. */
function pixels(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let h = (Math.imul(seed, 0x9e3779b1) + Math.imul(i, 0x85ebca77)) >>> 0;
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d) >>> 0;
    h ^= h >>> 12;
    h = Math.imul(h, 0x297a2d39) >>> 0;
    h ^= h >>> 15;
    out[i] = h >>> 24;
  }
  return out;
}

const label = (c: RefCase) => `${c.mode} [${c.channels}, ${c.sh}, ${c.sw}] -> ${c.dh}x${c.dw} (seed ${c.seed})`;

function expectReference(c: RefCase, got: ArrayLike<number>): void {
  const bytes = Uint8Array.from(got);
  if (c.out) expect(Buffer.from(bytes).toString('hex'), label(c)).toBe(c.out);
  expect(createHash('sha256').update(bytes).digest('hex'), label(c)).toBe(c.sha256);
}

describe('resizeU8: the CPU oracle against OpenCV', () => {
  it(`the vendored cases cover shrinking, enlarging, mixed and equal sizes in every mode`, () => {
    const kinds = new Set(REF.cases.map((c) => {
      const dirs = [Math.sign(c.dh - c.sh), Math.sign(c.dw - c.sw)].sort().join();
      return `${c.mode}:${dirs}`;
    }));
    for (const mode of ['area', 'linear', 'nearest']) {
      for (const dirs of ['-1,-1', '1,1', '-1,1', '0,0', '-1,0', '0,1']) expect(kinds.has(`${mode}:${dirs}`), `${mode} ${dirs}`).toBe(true);
    }
  });

  it(`resizeU8Planes equals cv2.resize (OpenCV ${REF.opencv}) on every case`, () => {
    for (const c of REF.cases) {
      expectReference(c, resizeU8Planes(pixels(c.seed, c.channels * c.sh * c.sw), c.channels, c.sh, c.sw, c.dh, c.dw, c.mode));
    }
  });

  it('F.resizeU8 on the cpu backend equals it too (the op path: plan, backend method, reshape)', async () => {
    for (const c of REF.cases.filter((k) => k.sh * k.sw <= 20000)) {
      const x = F.fromArray(cpu, pixels(c.seed, c.channels * c.sh * c.sw), [c.channels, c.sh, c.sw]);
      const y = F.resizeU8(x, c.dh, c.dw, c.mode);
      expect(y.shape).toEqual([c.channels, c.dh, c.dw]);
      expectReference(c, await y.read());
      x.dispose();
      y.dispose();
    }
  });

  it('the interleaved host helpers (face-post, pixelation) keep OpenCV bytes', () => {
    for (const c of REF.cases.filter((k) => k.mode !== 'area' && k.sh * k.sw <= 20000)) {
      const planes = pixels(c.seed, c.channels * c.sh * c.sw);
      const n = c.sh * c.sw;
      const img = new Uint8Array(planes.length);
      for (let p = 0; p < n; p++) for (let ch = 0; ch < c.channels; ch++) img[p * c.channels + ch] = planes[ch * n + p];
      const fn = c.mode === 'linear' ? resizeLinearU8 : resizeNearestU8;
      const out = fn(img, c.sw, c.sh, c.dw, c.dh, c.channels);
      expect(Array.from(out)).toEqual(Array.from(resizeU8Interleaved(img, c.sw, c.sh, c.dw, c.dh, c.channels, c.mode)));
      const m = c.dh * c.dw;
      const back = new Uint8Array(out.length);
      for (let p = 0; p < m; p++) for (let ch = 0; ch < c.channels; ch++) back[ch * m + p] = out[p * c.channels + ch];
      expectReference(c, back);
    }
  });

  it('rejects bad sizes and modes', () => {
    const x = F.zeros(cpu, [2, 3]);
    expect(() => F.resizeU8(x, 0, 3, 'linear')).toThrow(/bad output size/);
    expect(() => F.resizeU8(x, 2, 3, 'cubic' as ResizeMode)).toThrow(/unknown mode/);
    expect(() => F.resizeU8(F.zeros(cpu, [3]), 2, 3, 'area')).toThrow(/2 or more dims/);
  });
});

describe('webgpu resizeU8', () => {
  const arb = fc.record({
    lead: fc.constantFrom([1], [3], [2, 2], [3, 1]),
    H: awkwardDim(40),
    W: awkwardDim(70),
    outH: awkwardDim(40),
    outW: awkwardDim(70),
    mode: fc.constantFrom<ResizeMode>('area', 'linear', 'nearest'),
    seed: fc.nat({ max: 1e6 }),
  });

  it('matches the oracle over awkward size pairs in every mode', async () => {
    await fc.assert(fc.asyncProperty(arb, async (c) => {
      const shape = [...c.lead, c.H, c.W];
      await checkAgainstCpu(await gpu(), `resizeU8 ${c.mode} [${shape}] -> ${c.outH}x${c.outW}`, [
        { values: pixels(c.seed + 1, shape.reduce((a, b) => a * b, 1)), shape },
      ], (x) => F.resizeU8(x, c.outH, c.outW, c.mode), EXACT);
    }), gpuRuns(30));
  });

  it('equals OpenCV on the vendored cases (the realistic frame sizes included)', async () => {
    const be = await gpu();
    for (const c of REF.cases) {
      const x = F.fromArray(be, pixels(c.seed, c.channels * c.sh * c.sw), [c.channels, c.sh, c.sw]);
      const y = F.resizeU8(x, c.dh, c.dw, c.mode);
      expectReference(c, await y.read());
      x.dispose();
      y.dispose();
    }
  });

  it('splits the planes over calls where asked, with the same bytes (i32 input too)', async () => {
    const be = await gpu();
    const shape = [3, 5, 13, 17];
    const values = pixels(77, 3 * 5 * 13 * 17);
    for (const mode of ['area', 'linear', 'nearest'] as const) {
      for (const [h, w] of [[7, 9], [20, 30], [13, 40]]) {
        const want = await F.resizeU8(F.fromArray(cpu, values, shape), h, w, mode).read();
        for (const per of [1, 4, 15]) {
          const x = F.fromArray(be, values, shape, 'i32');
          const y = F.resizeU8(x, h, w, mode, { planesPerCall: per });
          expect(y.shape).toEqual([3, 5, h, w]);
          expect(Array.from(await y.read()), `${mode} ${h}x${w} per ${per}`).toEqual(Array.from(want));
          x.dispose();
          y.dispose();
        }
      }
    }
  });
});

describe('resizeFrames', () => {
  it('resizes every frame of a [3, T, H, W] clip as cv2.resize does one frame, keeping the layout', async () => {
    const [T, H, W] = [3, 9, 14];
    const values = pixels(5, 3 * T * H * W);
    for (const mode of ['area', 'linear', 'nearest'] as const) {
      for (const [w, h] of [[6, 4], [20, 13], [6, 13], [14, 9]]) {
        const y = resizeFrames(F.fromArray(cpu, values, [3, T, H, W]), w, h, mode);
        expect(y.shape).toEqual([3, T, h, w]);
        const got = await y.read();
        for (let c = 0; c < 3; c++) {
          for (let t = 0; t < T; t++) {
            const plane = values.subarray((c * T + t) * H * W, (c * T + t + 1) * H * W);
            const want = resizeU8Planes(plane, 1, H, W, h, w, mode);
            expect(Array.from(got.subarray((c * T + t) * h * w, (c * T + t + 1) * h * w)), `${mode} ${w}x${h} c${c} t${t}`).toEqual(Array.from(want));
          }
        }
      }
    }
  });

  it('refuses a tensor that is not a frame stack and a bad size', () => {
    expect(() => resizeFrames(F.zeros(cpu, [3, 4, 5]), 2, 2, 'area')).toThrow(/C x T x H x W/);
    expect(() => resizeFrames(F.zeros(cpu, [3, 1, 4, 5]), 0, 2, 'area')).toThrow(/target size/);
  });

  it('a clip larger than one binding of the device resizes on webgpu (input, then output over the limit)', async () => {
    const be = await gpu();
    const limit = be.limits.maxBindingBytes;
    // planes of 1280 x 704 f32: enough frames that the clip passes one binding
    const T = Math.floor(limit / (3 * 4 * 704 * 1280)) + 1;
    for (const [[H, W], [h, w], mode] of [[[704, 1280], [176, 320], 'area'], [[176, 320], [704, 1280], 'linear']] as const) {
      const count = 3 * T;
      const values = pixels(11, count * H * W);
      const x = F.fromArray(be, values, [3, T, H, W]);
      const y = resizeFrames(x, w, h, mode);
      expect(y.shape).toEqual([3, T, h, w]);
      expect(Math.max(x.size, y.size) * 4).toBeGreaterThan(limit);
      const got = await y.read();
      for (const p of [0, Math.floor(count / 2), count - 1]) {
        const want = resizeU8Planes(values.subarray(p * H * W, (p + 1) * H * W), 1, H, W, h, w, mode);
        expect(Array.from(got.subarray(p * h * w, (p + 1) * h * w)).every((v, i) => v === want[i]), `${mode} plane ${p}`).toBe(true);
      }
      x.dispose();
      y.dispose();
    }
  });
});
