import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../../src/io/safetensors.js';
import { getFrame, stackFrames, type Video } from '../../src/io/video.js';
import { createY4mWriter, encodeY4m, openY4m, parseY4mHeader, readY4m, writeY4m, Y4mError } from '../../src/io/y4m.js';
import { frameBytesOf, rgbToYuv, yuvToRgb } from '../../src/io/yuv.js';

const SAMPLES = nodePath.resolve(import.meta.dirname, '../../weights/samples');
const expected = JSON.parse(readFileSync(nodePath.join(SAMPLES, 'expected.json'), 'utf8'));
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-y4m-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const tmpPath = (name: string) => nodePath.join(tmp, `${n++}-${name}`);

async function sampleInput(i: number): Promise<Float32Array> {
  const f = await openSafetensors(nodePath.join(SAMPLES, `sample_${i}.safetensors`));
  try {
    return (await f.read('input')).raw as Float32Array;
  } finally {
    await f.close();
  }
}

function psnr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return 10 * Math.log10(4 / (s / a.length));
}

/** A y4m file from a header line and raw frame payloads. */
function y4mBytes(header: string, frames: Uint8Array[], frameLine = 'FRAME'): Uint8Array {
  const parts: Buffer[] = [Buffer.from(`${header}\n`, 'latin1')];
  for (const f of frames) parts.push(Buffer.from(`${frameLine}\n`, 'latin1'), Buffer.from(f));
  return Buffer.concat(parts);
}

function writeTmp(name: string, bytes: Uint8Array): string {
  const p = tmpPath(name);
  writeFileSync(p, bytes);
  return p;
}

function randomVideo(frames: number, height: number, width: number, seed: number): Video {
  let s = seed >>> 0 || 1;
  const data = new Float32Array(3 * frames * height * width);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    data[i] = (s / 2 ** 32) * 2 - 1;
  }
  return { data, frames, height, width };
}

describe('sample clips', () => {
  for (const i of [0, 1, 2]) {
    it(`sample_${i}.y4m decodes to the tensor within the expected quantisation PSNR`, async () => {
      const x = await sampleInput(i);
      const v = await readY4m(nodePath.join(SAMPLES, `sample_${i}.y4m`));
      expect([v.frames, v.height, v.width]).toEqual([17, 64, 64]);
      expect(v.fps).toEqual({ num: 8, den: 1 });
      expect(v.header.chroma).toBe('444');
      expect(v.header.range).toBe('full');
      expect(v.header.rangeExplicit).toBe(true);
      expect(Math.abs(psnr(v.data, x) - expected.samples[i].y4m_roundtrip_psnr_vs_tensor)).toBeLessThan(0.05);
    });

    it(`writing sample_${i}'s tensor reproduces sample_${i}.y4m byte for byte`, async () => {
      const x = await sampleInput(i);
      const file = readFileSync(nodePath.join(SAMPLES, `sample_${i}.y4m`));
      const bytes = encodeY4m({ data: x, frames: 17, height: 64, width: 64 }, { fps: { num: 8, den: 1 }, chroma: '444', range: 'full' });
      expect(Buffer.from(bytes).equals(file)).toBe(true);
    });
  }

  it('the streaming reader gives the same frames as readY4m, with a frame count', async () => {
    const path = nodePath.join(SAMPLES, 'sample_1_rec_cv.y4m');
    const whole = await readY4m(path);
    const r = await openY4m(path);
    expect(r.frameCount).toBe(17);
    let t = 0;
    for await (const f of r.frames()) {
      expect(f).toEqual(getFrame(whole, t));
      t++;
    }
    expect(t).toBe(17);
    await expect(async () => {
      for await (const _ of r.frames()) void _;
    }).rejects.toThrow(/only once/);
  });
});

describe('header parsing', () => {
  it('maps every 4:2:0 tag and a missing C tag to 420, and defaults to limited range', () => {
    for (const c of ['', ' C420', ' C420jpeg', ' C420paldv', ' C420mpeg2']) {
      const h = parseY4mHeader(`YUV4MPEG2 W4 H2 F30000:1001 Ip A0:0${c} XYSCSS=420JPEG`);
      expect(h.chroma).toBe('420');
      expect(h.range).toBe('limited');
      expect(h.rangeExplicit).toBe(false);
      expect(h.fps).toEqual({ num: 30000, den: 1001 });
      expect(h.interlacing).toBe('p');
      expect(h.aspect).toBeUndefined();
      expect(h.extensions).toEqual(['YSCSS=420JPEG']);
      expect(h.frameBytes).toBe(8 + 2 + 2);
    }
  });

  it('reads C444, XCOLORRANGE, unknown tags, and no F tag as an unknown fps', () => {
    const h = parseY4mHeader('YUV4MPEG2 H3 W5 C444 Zfoo XCOLORRANGE=LIMITED Ip');
    expect([h.width, h.height, h.chroma, h.range, h.rangeExplicit, h.fps]).toEqual([5, 3, '444', 'limited', true, undefined]);
    expect(parseY4mHeader('YUV4MPEG2 W2 H2 XCOLORRANGE=full').range).toBe('full');
  });

  const bad: [string, string, RegExp][] = [
    ['bad magic', 'YUV4MPEG W2 H2', /bad magic/],
    ['missing W', 'YUV4MPEG2 H2 C444', /^x\.y4m: header tag W: missing/],
    ['missing W and H', 'YUV4MPEG2 C444', /^x\.y4m: header tag W and H: missing/],
    ['zero width', 'YUV4MPEG2 W0 H2', /^x\.y4m: header tag W: malformed value W0/],
    ['odd 420', 'YUV4MPEG2 W3 H2 C420jpeg', /3x2 is odd-sized; 4:2:0 \(C420jpeg\)/],
    ['odd default 420', 'YUV4MPEG2 W2 H5', /odd-sized; 4:2:0 \(C420\)/],
    ['10-bit', 'YUV4MPEG2 W2 H2 C420p10 XYSCSS=420P10', /^x\.y4m: header tag C: C420p10 is 10-bit; only 8-bit/],
    ['16-bit mono', 'YUV4MPEG2 W2 H2 Cmono16', /header tag C: Cmono16 is 16-bit/],
    ['4:2:2', 'YUV4MPEG2 W2 H2 C422', /header tag C: unsupported colour space C422/],
    ['bad range', 'YUV4MPEG2 W2 H2 XCOLORRANGE=PC', /header tag XCOLORRANGE: unknown value PC/],
    ['bad fps', 'YUV4MPEG2 W2 H2 F30', /^x\.y4m: header tag F: malformed frame rate F30/],
  ];
  for (const [what, line, re] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => parseY4mHeader(line, 'x.y4m')).toThrow(re);
      expect(() => parseY4mHeader(line, 'x.y4m')).toThrow(Y4mError);
    });
  }
});

describe('colour conversion', () => {
  it('decodes the extremes of full and limited range', () => {
    const out = new Float32Array(3);
    yuvToRgb(new Uint8Array([16, 128, 128]), { width: 1, height: 1, chroma: '444', range: 'limited' }, out);
    expect([...out]).toEqual([-1, -1, -1]);
    yuvToRgb(new Uint8Array([235, 128, 128]), { width: 1, height: 1, chroma: '444', range: 'limited' }, out);
    expect([...out]).toEqual([1, 1, 1]);
    yuvToRgb(new Uint8Array([0, 128, 128]), { width: 1, height: 1, chroma: '444', range: 'full' }, out);
    expect([...out]).toEqual([-1, -1, -1]);
    yuvToRgb(new Uint8Array([255, 128, 128]), { width: 1, height: 1, chroma: '444', range: 'full' }, out);
    expect([...out]).toEqual([1, 1, 1]);
    // out-of-gamut YUV is clamped to [-1, 1]
    yuvToRgb(new Uint8Array([255, 255, 255]), { width: 1, height: 1, chroma: '444', range: 'full' }, out);
    expect(Math.max(...out)).toBe(1);
    expect(Math.min(...out)).toBeGreaterThanOrEqual(-1);
  });

  it('encodes black, white and pure red as BT.601 full and limited range', () => {
    const px = (r: number, g: number, b: number) => new Float32Array([r, g, b]);
    expect([...rgbToYuv(px(-1, -1, -1), { width: 1, height: 1, chroma: '444', range: 'full' })]).toEqual([0, 128, 128]);
    expect([...rgbToYuv(px(1, 1, 1), { width: 1, height: 1, chroma: '444', range: 'full' })]).toEqual([255, 128, 128]);
    expect([...rgbToYuv(px(-1, -1, -1), { width: 1, height: 1, chroma: '444', range: 'limited' })]).toEqual([16, 128, 128]);
    expect([...rgbToYuv(px(1, 1, 1), { width: 1, height: 1, chroma: '444', range: 'limited' })]).toEqual([235, 128, 128]);
    // red: Y = 0.299 * 255 = 76.2, Cb = 128 - 43.03 = 84.97, Cr = 128 + 127.5 = 255.5 -> 255
    expect([...rgbToYuv(px(1, -1, -1), { width: 1, height: 1, chroma: '444', range: 'full' })]).toEqual([76, 85, 255]);
    // limited red: Y = 16 + 65.48 = 81.5 -> 81 or 82; Cr = 128 + 112 = 240
    const lr = rgbToYuv(px(1, -1, -1), { width: 1, height: 1, chroma: '444', range: 'limited' });
    expect(Math.abs(lr[0] - 81.48)).toBeLessThan(0.6);
    expect(lr[2]).toBe(240);
    // values beyond [-1, 1] clamp, NaN reads as black
    expect([...rgbToYuv(px(5, 5, 5), { width: 1, height: 1, chroma: '444', range: 'full' })]).toEqual([255, 128, 128]);
    expect(rgbToYuv(px(NaN, -1, -1), { width: 1, height: 1, chroma: '444', range: 'full' })[0]).toBe(0);
  });

  it('4:2:0 averages each 2x2 block of chroma and upsamples by nearest neighbour by default', () => {
    // 2x2 frame: red, green / blue, white -> one chroma sample, the mean of the four.
    const frame = new Float32Array([1, -1, -1, 1, /* G */ -1, 1, -1, 1, /* B */ -1, -1, 1, 1]);
    const planes = rgbToYuv(frame, { width: 2, height: 2, chroma: '420', range: 'full' });
    expect(planes.length).toBe(6);
    const cb = (128 - 0.168736 * 255 + 128 - 0.331264 * 255 + 128 + 0.5 * 255 + 128) / 4;
    expect(planes[4]).toBe(Math.round(cb));
    const out = new Float32Array(12);
    yuvToRgb(planes, { width: 2, height: 2, chroma: '420', range: 'full' }, out);
    const bil = new Float32Array(12);
    yuvToRgb(planes, { width: 2, height: 2, chroma: '420', range: 'full' }, bil, 0, 4, 'bilinear');
    // one chroma sample: bilinear and nearest agree
    expect(bil).toEqual(out);
  });

  it('bilinear upsampling interpolates between chroma samples (centre siting)', () => {
    // 4x2 luma, chroma 2x1: Cb 100 and 200. Luma x = 1 sits at chroma 0.25 -> 125; x = 0 -> clamped 100.
    const planes = new Uint8Array([128, 128, 128, 128, 128, 128, 128, 128, 100, 200, 128, 128]);
    const out = new Float32Array(24);
    yuvToRgb(planes, { width: 4, height: 2, chroma: '420', range: 'full' }, out, 0, 8, 'bilinear');
    const blue = (cb: number) => Math.min(255, Math.max(0, 128 + 1.772 * (cb - 128))) / 127.5 - 1;
    const b = out.subarray(16, 24);
    expect(b[0]).toBeCloseTo(blue(100), 6);
    expect(b[1]).toBeCloseTo(blue(125), 6);
    expect(b[2]).toBeCloseTo(blue(175), 6);
    expect(b[3]).toBeCloseTo(blue(200), 6);
  });

  it('round trips random frames within the quantisation error (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom('full' as const, 'limited' as const),
        fc.integer(),
        (frames, h2, w2, range, seed) => {
          const [h, w] = [2 * h2, 2 * w2];
          const v = randomVideo(frames, h, w, seed);
          // 4:4:4: rounding Y, Cb, Cr by <= 0.5 moves B by at most 0.5 + 1.772 * 0.5 = 1.39 code
          // values (full range; 1.59 for limited, whose steps are 255/219 and 255/224 larger)
          const back = decode(encodeY4m(v, { chroma: '444', range }), frames, h, w);
          const tol = (range === 'full' ? 1.387 : 1.59) / 127.5 + 1e-6;
          for (let i = 0; i < v.data.length; i++) expect(Math.abs(back[i] - v.data[i])).toBeLessThanOrEqual(tol);
          // a second trip moves no byte by more than 1 (rounded YCbCr can fall just outside the
          // RGB cube; decoding clamps those, so exact idempotence is not guaranteed)
          const once = encodeY4m(v, { chroma: '444', range });
          const twice = encodeY4m({ data: decode(once, frames, h, w), frames, height: h, width: w }, { chroma: '444', range });
          let worst = 0;
          for (let i = 0; i < once.length; i++) worst = Math.max(worst, Math.abs(once[i] - twice[i]));
          expect(worst).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 60 },
    );
    // 4:2:0: in-gamut planes (chroma constant over each 2x2 block after nearest upsampling)
    // decode and re-encode to the same bytes.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom('full' as const, 'limited' as const),
        fc.integer(),
        (h2, w2, range, seed) => {
          const [h, w] = [2 * h2, 2 * w2];
          let s = seed >>> 0;
          const rnd = (lo: number, hi: number) => {
            s = (s * 1664525 + 1013904223) >>> 0;
            return lo + Math.floor((s / 2 ** 32) * (hi - lo + 1));
          };
          const planes = new Uint8Array(frameBytesOf(w, h, '420'));
          for (let i = 0; i < h * w; i++) planes[i] = rnd(70, 180);
          for (let i = h * w; i < planes.length; i++) planes[i] = rnd(110, 146);
          const rgb = new Float32Array(3 * h * w);
          yuvToRgb(planes, { width: w, height: h, chroma: '420', range }, rgb);
          expect([...rgbToYuv(rgb, { width: w, height: h, chroma: '420', range })]).toEqual([...planes]);
        },
      ),
      { numRuns: 60 },
    );

    function decode(bytes: Uint8Array, frames: number, h: number, w: number): Float32Array {
      const text = Buffer.from(bytes.subarray(0, 200)).toString('latin1');
      const hdr = parseY4mHeader(text.slice(0, text.indexOf('\n')));
      let at = text.indexOf('\n') + 1;
      const out = new Float32Array(3 * frames * h * w);
      for (let t = 0; t < frames; t++) {
        at += 6;
        yuvToRgb(bytes.subarray(at, at + hdr.frameBytes), { width: w, height: h, chroma: hdr.chroma, range: hdr.range }, out, t * h * w, frames * h * w);
        at += hdr.frameBytes;
      }
      return out;
    }
  });
});

describe('files', () => {
  it('writes and reads back 4:2:0 and 4:4:4 clips with their header', async () => {
    // colour constant over 2x2 blocks: chroma subsampling loses nothing
    const v: Video = { data: new Float32Array(3 * 3 * 4 * 6), frames: 3, height: 4, width: 6 };
    v.data.forEach((_, i) => {
      const [x, y, ct] = [i % 6, Math.floor(i / 6) % 4, Math.floor(i / 24)];
      v.data[i] = 0.8 * Math.sin(ct * 1.3 + (x >> 1) * 0.7 + (y >> 1) * 1.9);
    });
    for (const [chroma, range, tag] of [['420', 'limited', 'C420jpeg XCOLORRANGE=LIMITED'], ['444', 'full', 'C444 XCOLORRANGE=FULL']] as const) {
      const p = tmpPath(`${chroma}.y4m`);
      await writeY4m(p, v, { fps: { num: 25, den: 1 }, chroma, range });
      const bytes = readFileSync(p);
      expect(bytes.toString('latin1', 0, 60).split('\n')[0]).toBe(`YUV4MPEG2 W6 H4 F25:1 Ip A1:1 ${tag}`);
      expect(bytes.length).toBe(bytes.indexOf(0x0a) + 1 + 3 * (6 + frameBytesOf(6, 4, chroma)));
      const back = await readY4m(p);
      expect([back.frames, back.height, back.width, back.header.chroma, back.header.range]).toEqual([3, 4, 6, chroma, range]);
      expect(psnr(back.data, v.data)).toBeGreaterThan(40);
    }
    // defaults: 4:4:4 full range, the clip's fps or 24
    const p = tmpPath('default.y4m');
    await writeY4m(p, v);
    expect(readFileSync(p).toString('latin1', 0, 60).split('\n')[0]).toBe('YUV4MPEG2 W6 H4 F24:1 Ip A1:1 C444 XCOLORRANGE=FULL');
  });

  it('accepts FRAME lines with parameters and files without a C or X tag', async () => {
    const y = new Uint8Array([16, 235, 16, 235, 128, 128]);
    const p = writeTmp('params.y4m', y4mBytes('YUV4MPEG2 W2 H2 F1:1', [y, y], 'FRAME Ixyz Xfoo=bar'));
    const r = await openY4m(p);
    expect(r.frameCount).toBeUndefined();
    const v = await readY4m(p);
    expect(v.frames).toBe(2);
    // limited range: 16 -> black, 235 -> white
    expect([...getFrame(v, 1).subarray(0, 4)]).toEqual([-1, 1, -1, 1]);
  });

  it('streams frames to a writer that matches encodeY4m, and abort leaves nothing', async () => {
    const v = randomVideo(4, 2, 4, 3);
    const p = tmpPath('stream.y4m');
    const w = await createY4mWriter(p, { width: 4, height: 2, fps: { num: 8, den: 1 }, chroma: '420' });
    await w.writeFrame(getFrame(v, 0));
    await w.writeVideo(stackFrames([getFrame(v, 1), getFrame(v, 2), getFrame(v, 3)], 2, 4));
    expect(w.framesWritten).toBe(4);
    await expect(w.writeFrame(new Float32Array(5))).rejects.toThrow(/expected 3 x 2 x 4/);
    await w.close();
    expect(Buffer.from(readFileSync(p)).equals(Buffer.from(encodeY4m(v, { fps: { num: 8, den: 1 }, chroma: '420' })))).toBe(true);

    const dir = mkdtempSync(nodePath.join(tmp, 'abort-'));
    const a = await createY4mWriter(nodePath.join(dir, 'x.y4m'), { width: 2, height: 2 });
    await a.writeFrame(new Float32Array(12));
    await a.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('rejects odd sizes for 4:2:0 and bad clip shapes on writing', async () => {
    const v = randomVideo(1, 3, 4, 1);
    expect(() => encodeY4m(v, { chroma: '420' })).toThrow(/odd-sized/);
    expect(() => encodeY4m({ ...v, frames: 2 })).toThrow(/data has 36 values/);
    await expect(createY4mWriter(tmpPath('odd.y4m'), { width: 3, height: 2, chroma: '420' })).rejects.toThrow(/odd-sized/);
  });

  const errors: [string, () => Uint8Array, RegExp][] = [
    ['bad magic', () => Buffer.from('RIFF0000WAVEfmt '), /bad magic "RIFF0000WAVE"/],
    ['an empty file', () => new Uint8Array(0), /file is empty/],
    ['a header without newline', () => Buffer.from('YUV4MPEG2 W2 H2'), /not terminated/],
    ['a truncated frame', () => y4mBytes('YUV4MPEG2 W2 H2 C444', [new Uint8Array(12), new Uint8Array(12)]).subarray(0, -5), /frame 1 is truncated: expected 12 bytes of picture data, got 7/],
    ['a truncated FRAME line', () => Buffer.concat([y4mBytes('YUV4MPEG2 W2 H2 C444', [new Uint8Array(12)]), Buffer.from('FRA')]), /frame 1: expected a "FRAME" line/],
    ['a missing FRAME marker', () => Buffer.concat([Buffer.from('YUV4MPEG2 W2 H2 C444\n'), new Uint8Array(18)]), /frame 0: expected a "FRAME" line at byte 21/],
    ['a 10-bit file', () => y4mBytes('YUV4MPEG2 W2 H2 C444p10', []), /C444p10 is 10-bit; only 8-bit Y4M is supported/],
  ];
  for (const [what, make, re] of errors) {
    it(`reports ${what} with the file name`, async () => {
      const p = writeTmp('bad.y4m', make());
      await expect(readY4m(p)).rejects.toThrow(re);
      await expect(readY4m(p)).rejects.toThrow(p);
    });
  }

  it('reports a missing file', async () => {
    await expect(openY4m(nodePath.join(tmp, 'nope.y4m'))).rejects.toThrow(/nope\.y4m: cannot open: no such file/);
  });
});
