// The VLM's text side and preprocessing: the vendored cases (vlm.tokenize, vlm.chat_template,
// vlm.image_preprocess) through the runner on both backends, then smart_resize, Pillow-compatible
// resizing (reference hashes computed with Pillow 12.3.0's Image.resize), patch flattening and
// video frame sampling. The tokenizer and chat template units are in test/text/.
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PreprocessError, SmartResizeError } from '../../src/models/vlm/config.js';
import {
  Qwen2VLImageProcessor, parseImageProcessorConfig, prepareVideo, pythonRound, sampleVideoFrames, secondPerGridT, smartResize, videoToU8,
} from '../../src/models/vlm/preprocess.js';
import { resizeU8 } from '../../src/models/vlm/resize.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIX = fileURLToPath(new URL('../fixtures/vlm', import.meta.url));
const CASES = ['bpe_tokenize', 'chat_template', 'image_preprocess'];

describe('VLM text/preprocess conformance cases', () => {
  for (const dir of CASES) it(`${dir} passes on the CPU backend`, async () => expectCasePasses(join(FIX, dir), cpu));
  for (const dir of CASES) it(`${dir} passes on the WebGPU backend`, async () => expectCasePasses(join(FIX, dir), await webgpu()));
});

// ------------------------------------------------------------------ image processor

/** The test image of the Pillow references: ((y*31 + x*17 + c*101 + ((y*x) % 13) * 19) % 256). */
function testImage(h: number, w: number): Uint8Array {
  const a = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) {
    a[(y * w + x) * 3 + c] = (y * 31 + x * 17 + c * 101 + ((y * x) % 13) * 19) % 256;
  }
  return a;
}

// [h, w, outH, outW, resample, sha256 of Pillow 12.3.0's Image.fromarray(img).resize((outW, outH), resample)]
const PILLOW_REFERENCE: [number, number, number, number, number, string][] = [
  [9, 13, 5, 7, 3, 'ee4690b96b1d84ae179e297dc4c346fdeeab9dd111837c9a5e723c36bf1a6778'],
  [9, 13, 20, 31, 3, '571dfd85e8d65b3b05897f8056780a46583788b8b5b990f02ad56178fa083231'],
  [30, 40, 28, 56, 3, '6176ef8e9970ad299bb649f2b9a6a01210914df21db2a4a3b1d6fcd9ed6d0ff3'],
  [100, 37, 28, 84, 3, '332a577685e8104a12f69b75bd0a601dbc473a25810da1d4a2bd78bd4965eb67'],
  [333, 517, 84, 112, 3, 'c27e9804a10629a716787be5e2b5db8ba39fb54ccf5012b9a20df2e4cb4c286c'],
  [57, 57, 56, 56, 3, '04b55b3961437215661ab571eecc752aba9b822f0483ff1a35e44dfd697576c6'],
  [30, 40, 28, 56, 2, '384e38616d90799b9290995257049b77ff3970f00d068312680409e0c2ac41cf'],
  [100, 37, 28, 84, 1, '6dfd7373d58add5a2f38c5e4aa0acfd83099fbeb9a6a59d6375c59171bdfe711'],
  [64, 64, 28, 28, 0, '4c1c21f425d108eeeb747be90d387d265a9ac4bffa8c4e2c850eef2f30f6ac6f'],
  [100, 37, 28, 84, 4, '8de5211dece877416fccd85885560b99967e4e0a82d76448b856e7035f7c9202'],
  [30, 40, 28, 56, 5, 'bf0836a8196487bc36400bbb70223fa99b335a650c8dcb106449da3e58ae52b9'],
];

describe('smart_resize', () => {
  it('rounds like Python', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, 2.5001, 3].map(pythonRound)).toEqual([0, 2, 2, 0, -2, 2, 3, 3]);
  });

  it('reproduces the upstream table', () => {
    const M = 1003520;
    const rows: [number, number, number, number, [number, number] | null][] = [
      [56, 84, 3136, M, [56, 84]], [28, 28, 3136, M, [56, 56]], [20, 500, 3136, M, null],
      [1000, 700, 3136, M, [1008, 700]], [1000, 700, 3136, 12544, [112, 84]], [333, 517, 3136, M, [336, 504]],
      [333, 517, 3136, 12544, [84, 112]], [2000, 3000, 3136, M, [812, 1204]], [2000, 3000, 3136, 12544, [84, 112]],
      [57, 57, 3136, M, [56, 56]], [41, 97, 3136, M, [56, 112]], [42, 100, 3136, M, [56, 112]], [70, 70, 3136, M, [56, 56]],
      [28, 5601, 3136, M, null], [28, 5600, 3136, M, [28, 5600]], [1080, 1920, 3136, M, [728, 1316]],
    ];
    for (const [h, w, mn, mx, want] of rows) {
      if (want) expect(smartResize(h, w, 28, mn, mx), `${h}x${w}`).toEqual(want);
      else expect(() => smartResize(h, w, 28, mn, mx)).toThrow(SmartResizeError);
    }
  });

  it('gives multiples of the factor within the pixel budget', () => {
    fc.assert(fc.property(fc.integer({ min: 28, max: 4000 }), fc.integer({ min: 28, max: 4000 }), (h, w) => {
      fc.pre(Math.max(h, w) / Math.min(h, w) <= 200);
      const [rh, rw] = smartResize(h, w, 28, 3136, 1003520);
      expect(rh % 28).toBe(0);
      expect(rw % 28).toBe(0);
      expect(rh * rw).toBeLessThanOrEqual(1003520);
      expect(rh * rw).toBeGreaterThanOrEqual(3136);
    }));
  });
});

describe('Pillow-compatible resize', () => {
  it('reproduces Pillow byte for byte (bicubic, bilinear, lanczos, box, hamming, nearest)', () => {
    for (const [h, w, oh, ow, rs, sha] of PILLOW_REFERENCE) {
      const out = resizeU8(testImage(h, w), h, w, 3, oh, ow, rs);
      expect(createHash('sha256').update(out).digest('hex'), `${h}x${w} -> ${oh}x${ow} resample ${rs}`).toBe(sha);
    }
    expect(Array.from(resizeU8(testImage(9, 13), 9, 13, 3, 5, 7)).slice(0, 12)).toEqual([25, 131, 167, 74, 172, 153, 122, 122, 94, 144, 151, 113]);
  });

  it('is the identity when sizes match', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), fc.integer(), (h, w, seed) => {
      const a = Uint8Array.from({ length: h * w * 3 }, (_, i) => (i * 2654435761 + seed) >>> 24);
      expect(Array.from(resizeU8(a, h, w, 3, h, w))).toEqual(Array.from(a));
    }));
  });

  it('keeps constant images constant, in range, for any sizes', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 255 }), fc.constantFrom(1, 2, 3, 4, 5),
      (h, w, oh, ow, v, rs) => {
        const out = resizeU8(new Uint8Array(h * w * 3).fill(v), h, w, 3, oh, ow, rs);
        expect(out.length).toBe(oh * ow * 3);
        expect(out.every((x) => x === v)).toBe(true);
      }));
  });

  it('rejects bad sizes and filters', () => {
    expect(() => resizeU8(new Uint8Array(5), 2, 2, 3, 1, 1)).toThrow(PreprocessError);
    expect(() => resizeU8(new Uint8Array(12), 2, 2, 3, 0, 1)).toThrow(PreprocessError);
    expect(() => resizeU8(new Uint8Array(12), 2, 2, 3, 3, 3, 9)).toThrow(PreprocessError);
  });
});

describe('Qwen2VLImageProcessor', () => {
  it('flattens patches as (t, h/2, w/2, 2, 2) x (c, temporal, py, px)', () => {
    // no rescale / normalise: the values are the bytes, so the layout can be read off
    const proc = new Qwen2VLImageProcessor({ doRescale: false, doNormalize: false });
    const h = 56;
    const w = 84;
    const frames = [0, 1, 2].map((t) => Uint8Array.from({ length: h * w * 3 }, (_, i) => {
      const c = i % 3;
      const x = Math.floor(i / 3) % w;
      const y = Math.floor(i / 3 / w);
      return (t * 50 + c * 7 + (x % 14) * 3 + (y % 14) * 5 + Math.floor(x / 14) + Math.floor(y / 14) * 11) % 256;
    }));
    const b = proc.preprocessFrames(frames, h, w);
    expect(b.gridThw).toEqual([[2, 4, 6]]);
    expect(b.shape).toEqual([48, 1176]);
    const value = (t: number, y: number, x: number, c: number) => frames[t][(y * w + x) * 3 + c];
    // row r: t, merged block (bh, bw), inside (mh, mw); column: c, temporal k, py, px
    for (const [r, col] of [[0, 0], [1, 5], [5, 600], [13, 1175], [30, 300], [47, 1000]]) {
      const t = Math.floor(r / 24);
      const rr = r % 24;
      const blk = Math.floor(rr / 4);
      const bh = Math.floor(blk / 3);
      const bw = blk % 3;
      const mh = Math.floor((rr % 4) / 2);
      const mw = rr % 2;
      const c = Math.floor(col / 392);
      const k = Math.floor((col % 392) / 196);
      const py = Math.floor((col % 196) / 14);
      const px = col % 14;
      const frame = Math.min(2 * t + k, 2); // T = 3 is padded with the last frame
      expect(b.pixelValues[r * 1176 + col], `row ${r} col ${col}`).toBe(value(frame, (bh * 2 + mh) * 14 + py, (bw * 2 + mw) * 14 + px, c));
    }
  });

  it('rescales in float64 then normalises in float32, repeats a single image, resizes when needed', () => {
    const proc = Qwen2VLImageProcessor.fromJson(JSON.parse(readFileSync(join(FIX, 'image_preprocess', 'config.json'), 'utf8')));
    const img = { data: new Uint8Array(28 * 28 * 3).fill(200), height: 28, width: 28 };
    const b = proc.preprocessImages([img]);
    // 28x28 is below min_pixels 3136: resized to 56x56
    expect(b.gridThw).toEqual([[1, 4, 4]]);
    const f = Math.fround;
    const want = [0, 1, 2].map((c) => f(f(f(200 * (1 / 255)) - f(proc.config.imageMean[c])) / f(proc.config.imageStd[c])));
    expect(b.pixelValues[0]).toBe(want[0]);
    expect(b.pixelValues[392]).toBe(want[1]);
    expect(b.pixelValues[1175]).toBe(want[2]);
    const two = proc.preprocessImages([img, { data: new Uint8Array(56 * 84 * 3), height: 56, width: 84 }]);
    expect(two.gridThw).toEqual([[1, 4, 4], [1, 4, 6]]);
    expect(two.shape).toEqual([16 + 24, 1176]);
  });

  it('parses preprocessor configs (fractions, size dicts, defaults)', () => {
    const c = parseImageProcessorConfig({ rescale_factor: '1/255', size: { shortest_edge: 100, longest_edge: 200 } });
    expect(c.rescaleFactor).toBe(1 / 255);
    expect([c.minPixels, c.maxPixels, c.patchSize, c.mergeSize, c.temporalPatchSize]).toEqual([100, 200, 14, 2, 2]);
    expect(() => parseImageProcessorConfig({ patch_size: 0 })).toThrow(PreprocessError);
  });
});

describe('video frames', () => {
  it('samples like qwen-vl-utils smart_nframes', () => {
    expect(sampleVideoFrames(48, 24)).toEqual({ indices: [0, 16, 31, 47], fps: 2 });
    expect(sampleVideoFrames(10, 30).indices).toEqual([0, 3, 6, 9]);
    expect(sampleVideoFrames(121, 24, { fps: 4 }).indices).toHaveLength(20);
    expect(sampleVideoFrames(121, 24, { nframes: 7 }).indices).toHaveLength(8);
    expect(sampleVideoFrames(1000, 30, { fps: 30, maxFrames: 64 }).indices).toHaveLength(64);
    expect(() => sampleVideoFrames(1, 24)).toThrow(PreprocessError);
    expect(secondPerGridT(2, 2)).toBe(1);
    fc.assert(fc.property(fc.integer({ min: 2, max: 2000 }), fc.double({ min: 1, max: 120, noNaN: true }), fc.double({ min: 0.1, max: 30, noNaN: true }),
      (total, src, fps) => {
        const { indices } = sampleVideoFrames(total, src, { fps });
        return indices.length % 2 === 0 && indices[0] === 0 && indices[indices.length - 1] === total - 1
          && indices.every((t, i) => i === 0 || t > indices[i - 1]);
      }));
  });

  it('converts [-1, 1] frames to bytes and runs the whole video path', () => {
    const T = 5;
    const data = new Float32Array(3 * T * 56 * 56);
    data.fill(-1, 0, data.length / 3);
    data.fill(1, data.length / 3, (2 * data.length) / 3);
    data.fill(0, (2 * data.length) / 3);
    data[0] = Number.NaN;
    const u = videoToU8({ data, frames: T, height: 56, width: 56 });
    expect([u.data[0], u.data[1], u.data[2], u.data[3], u.data[4], u.data[5]]).toEqual([0, 255, 128, 0, 255, 128]);
    const proc = new Qwen2VLImageProcessor();
    const v = prepareVideo(proc, u, 2, { fps: 2, minFrames: 2 });
    expect(v.indices).toEqual([0, 1, 3, 4]);
    expect(v.batch.gridThw).toEqual([[2, 4, 4]]);
    expect(v.secondPerGridT).toBeCloseTo(2 / v.fps, 12);
  });
});
