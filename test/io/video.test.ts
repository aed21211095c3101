import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  concatFrames, cropVideo, getFrame, padVideo, parseFps, sliceFrames, stackFrames, tokenizerSize, type Video,
} from '../../src/io/video.js';

const clip = (frames: number, height: number, width: number): Video => ({
  data: Float32Array.from({ length: 3 * frames * height * width }, (_, i) => i),
  frames,
  height,
  width,
});

describe('video helpers', () => {
  it('stacks, slices and concatenates frames', () => {
    const v = clip(5, 2, 3);
    const frames = [0, 1, 2, 3, 4].map((t) => getFrame(v, t));
    expect(stackFrames(frames, 2, 3).data).toEqual(v.data);
    const parts = [sliceFrames(v, 0, 2), sliceFrames(v, 2, 5)];
    expect(parts.map((p) => p.frames)).toEqual([2, 3]);
    expect(concatFrames(parts).data).toEqual(v.data);
    expect(getFrame(parts[1], 0)).toEqual(getFrame(v, 2));
  });

  it('pads by edge replication and crops back (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })),
        fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3)),
        ([t, h, w], [dt, dh, dw]) => {
          const v = clip(t, h, w);
          const p = padVideo(v, t + dt, h + dh, w + dw);
          expect(cropVideo(p, t, h, w).data).toEqual(v.data);
          // every padded value equals the clamped source position
          const at = (x: Video, c: number, tt: number, y: number, xx: number) => x.data[((c * x.frames + tt) * x.height + y) * x.width + xx];
          for (let c = 0; c < 3; c++)
            for (let tt = 0; tt < p.frames; tt++)
              for (let y = 0; y < p.height; y++)
                for (let x = 0; x < p.width; x++)
                  expect(at(p, c, tt, y, x)).toBe(at(v, c, Math.min(tt, t - 1), Math.min(y, h - 1), Math.min(x, w - 1)));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('computes the tokenizer size: T = 1 + k*tc, H and W multiples of sc', () => {
    expect(tokenizerSize(17, 64, 64, 4, 8)).toEqual([17, 64, 64]);
    expect(tokenizerSize(18, 60, 65, 4, 8)).toEqual([21, 64, 72]);
    expect(tokenizerSize(1, 1, 1, 4, 8)).toEqual([1, 8, 8]);
  });

  it('parses frame rates', () => {
    expect(parseFps('8')).toEqual({ num: 8, den: 1 });
    expect(parseFps('30000/1001')).toEqual({ num: 30000, den: 1001 });
    expect(parseFps('25:1')).toEqual({ num: 25, den: 1 });
    expect(parseFps('29.97')).toEqual({ num: 30000, den: 1001 });
    expect(parseFps('12.5')).toEqual({ num: 12500, den: 1000 });
    expect(parseFps('0')).toBeUndefined();
    expect(parseFps('x')).toBeUndefined();
  });
});
