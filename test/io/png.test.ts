import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { contactSheet } from '../../src/io/contact-sheet.js';
import { decodePng, encodePng, PngError, readPng, type RgbImage, writePng } from '../../src/io/png.js';
import { frameToImage, imageToFrame, listPngFrames, openPngFrames, readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { getFrame, type Video } from '../../src/io/video.js';
import { crc32 } from '../../src/io/zlib.js';
import { pngChunk } from './crafted-png.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-png-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const tmpPath = (name: string) => nodePath.join(tmp, `${n++}-${name}`);

// ---------------------------------------------------------------------------------------------
// An independent PNG builder (zlib.crc32, straightforward filters) to craft files the encoder
// never writes: every colour type and depth, every filter type, split IDATs.


function paethRef(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  if (pa <= pb && pa <= pc) return a;
  if (pb <= pc) return b;
  return c;
}

/** Filter raw scanlines (each `stride` bytes) with filter types chosen by `filterOf(row)`. */
function filterRaw(raw: Uint8Array, height: number, stride: number, bpp: number, filterOf: (y: number) => number): Buffer {
  const out = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const f = filterOf(y);
    out[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * stride + i];
      const a = i >= bpp ? raw[y * stride + i - bpp] : 0;
      const b = y > 0 ? raw[(y - 1) * stride + i] : 0;
      const c = i >= bpp && y > 0 ? raw[(y - 1) * stride + i - bpp] : 0;
      const pred = [0, a, b, Math.floor((a + b) / 2), paethRef(a, b, c)][f];
      out[y * (stride + 1) + 1 + i] = (x - pred + 256) % 256;
    }
  }
  return out;
}

interface Craft {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  raw: Uint8Array; // unfiltered scanlines
  filterOf?: (y: number) => number;
  palette?: Uint8Array;
  interlace?: number;
  idatParts?: number;
  extraChunks?: Buffer[];
  /** Change the zlib stream before it is split into IDAT chunks (CRCs are computed after). */
  mangle?: (z: Buffer) => Buffer;
}

function craftPng(c: Craft): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[c.colorType]!;
  const bits = channels * c.bitDepth;
  const stride = Math.ceil((c.width * bits) / 8);
  const filtered = filterRaw(c.raw, c.height, stride, Math.max(1, bits >> 3), c.filterOf ?? ((y) => y % 5));
  const z = (c.mangle ?? ((b) => b))(zlib.deflateSync(filtered));
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(c.width, 0);
  ihdr.writeUInt32BE(c.height, 4);
  ihdr.set([c.bitDepth, c.colorType, 0, 0, c.interlace ?? 0], 8);
  const parts = c.idatParts ?? 1;
  const idats: Buffer[] = [];
  const step = Math.ceil(z.length / parts);
  for (let i = 0; i < parts; i++) idats.push(pngChunk('IDAT', z.subarray(i * step, (i + 1) * step)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('tEXt', Buffer.from('Comment\0crafted', 'latin1')),
    ...(c.palette ? [pngChunk('PLTE', c.palette)] : []),
    ...(c.extraChunks ?? []),
    ...idats,
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s >>> 24;
  };
}

function randomBytes(len: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: len }, () => r());
}

/** Smooth-ish rows so the prediction filters do something interesting. */
function gradientBytes(len: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: len }, (_, i) => (i * 7 + (r() & 15)) & 0xff);
}

// ---------------------------------------------------------------------------------------------

describe('crc32', () => {
  it('matches zlib.crc32', () => {
    for (const s of ['', 'IEND', 'The quick brown fox jumps over the lazy dog']) {
      const b = Buffer.from(s);
      expect(crc32(b)).toBe(zlib.crc32(b));
    }
    const big = randomBytes(10_000, 5);
    expect(crc32(big)).toBe(zlib.crc32(big));
  });
});

describe('encode / decode', () => {
  it('round trips random RGB images with adaptive and every forced filter (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(undefined, 0, 1, 2, 3, 4),
        fc.integer(),
        fc.boolean(),
        (width, height, filter, seed, smooth) => {
          const data = (smooth ? gradientBytes : randomBytes)(width * height * 3, seed);
          const bytes = encodePng({ width, height, data }, filter === undefined ? {} : { filter: filter as 0 | 1 | 2 | 3 | 4 });
          const back = decodePng(bytes);
          expect([back.width, back.height, back.info.colorType, back.info.bitDepth]).toEqual([width, height, 2, 8]);
          expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('writes a PNG that the independent reader below accepts (CRCs, IHDR, filter bytes)', () => {
    const data = gradientBytes(5 * 4 * 3, 1);
    const bytes = Buffer.from(encodePng({ width: 5, height: 4, data }));
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    let pos = 8;
    const types: string[] = [];
    let idat = Buffer.alloc(0);
    while (pos < bytes.length) {
      const len = bytes.readUInt32BE(pos);
      const type = bytes.toString('latin1', pos + 4, pos + 8);
      expect(bytes.readUInt32BE(pos + 8 + len)).toBe(zlib.crc32(bytes.subarray(pos + 4, pos + 8 + len)));
      if (type === 'IHDR') expect([...bytes.subarray(pos + 8, pos + 21)]).toEqual([0, 0, 0, 5, 0, 0, 0, 4, 8, 2, 0, 0, 0]);
      if (type === 'IDAT') idat = Buffer.concat([idat, bytes.subarray(pos + 8, pos + 8 + len)]);
      types.push(type);
      pos += 12 + len;
    }
    expect(types).toEqual(['IHDR', 'IDAT', 'IEND']);
    const raw = zlib.inflateSync(idat);
    expect(raw.length).toBe(4 * 16);
    for (let y = 0; y < 4; y++) expect(raw[y * 16]).toBeLessThanOrEqual(4);
  });

  it('decodes crafted PNGs of every colour type, depth and filter type', () => {
    const W = 7;
    const H = 10; // rows cycle through filters 0..4 twice
    const r = rng(42);
    const cases: { name: string; c: Omit<Craft, 'raw'> & { raw?: Uint8Array }; want: (x: number, y: number) => number[] }[] = [];

    // RGB 8
    const rgb8 = gradientBytes(W * H * 3, 3);
    cases.push({ name: 'RGB 8', c: { width: W, height: H, bitDepth: 8, colorType: 2, raw: rgb8 }, want: (x, y) => [...rgb8.subarray(3 * (y * W + x), 3 * (y * W + x) + 3)] });
    // RGBA 8 (alpha dropped)
    const rgba8 = gradientBytes(W * H * 4, 4);
    cases.push({ name: 'RGBA 8', c: { width: W, height: H, bitDepth: 8, colorType: 6, raw: rgba8, idatParts: 3 }, want: (x, y) => [...rgba8.subarray(4 * (y * W + x), 4 * (y * W + x) + 3)] });
    // grey 8, grey+alpha 8
    const g8 = gradientBytes(W * H, 5);
    cases.push({ name: 'grey 8', c: { width: W, height: H, bitDepth: 8, colorType: 0, raw: g8 }, want: (x, y) => Array(3).fill(g8[y * W + x]) });
    const ga8 = gradientBytes(W * H * 2, 6);
    cases.push({ name: 'grey+alpha 8', c: { width: W, height: H, bitDepth: 8, colorType: 4, raw: ga8 }, want: (x, y) => Array(3).fill(ga8[2 * (y * W + x)]) });
    // 16-bit RGB, RGBA, grey: rounded to 8 bits
    const rgb16 = randomBytes(W * H * 6, 7);
    const s16 = (b: Uint8Array, i: number) => Math.round(((b[2 * i] << 8) | b[2 * i + 1]) / 257);
    cases.push({ name: 'RGB 16', c: { width: W, height: H, bitDepth: 16, colorType: 2, raw: rgb16 }, want: (x, y) => [0, 1, 2].map((c) => s16(rgb16, 3 * (y * W + x) + c)) });
    const rgba16 = randomBytes(W * H * 8, 8);
    cases.push({ name: 'RGBA 16', c: { width: W, height: H, bitDepth: 16, colorType: 6, raw: rgba16 }, want: (x, y) => [0, 1, 2].map((c) => s16(rgba16, 4 * (y * W + x) + c)) });
    const g16 = randomBytes(W * H * 2, 9);
    cases.push({ name: 'grey 16', c: { width: W, height: H, bitDepth: 16, colorType: 0, raw: g16 }, want: (x, y) => Array(3).fill(s16(g16, y * W + x)) });
    // palette 8 and 4, grey 1/2/4 (packed, rows padded to whole bytes)
    const palette = Uint8Array.from({ length: 16 * 3 }, () => r());
    const idx = Uint8Array.from({ length: W * H }, () => r() % 16);
    const pack = (vals: Uint8Array, depth: number) => {
      const stride = Math.ceil((W * depth) / 8);
      const out = new Uint8Array(stride * H);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * stride + ((x * depth) >> 3)] |= vals[y * W + x] << (8 - depth - ((x * depth) & 7));
      return out;
    };
    cases.push({ name: 'palette 8', c: { width: W, height: H, bitDepth: 8, colorType: 3, raw: idx, palette }, want: (x, y) => [...palette.subarray(3 * idx[y * W + x], 3 * idx[y * W + x] + 3)] });
    cases.push({ name: 'palette 4', c: { width: W, height: H, bitDepth: 4, colorType: 3, raw: pack(idx, 4), palette }, want: (x, y) => [...palette.subarray(3 * idx[y * W + x], 3 * idx[y * W + x] + 3)] });
    for (const depth of [1, 2, 4]) {
      const max = (1 << depth) - 1;
      const vals = Uint8Array.from({ length: W * H }, () => r() & max);
      cases.push({ name: `grey ${depth}`, c: { width: W, height: H, bitDepth: depth, colorType: 0, raw: pack(vals, depth) }, want: (x, y) => Array(3).fill(Math.round((vals[y * W + x] * 255) / max)) });
    }

    for (const { name, c, want } of cases) {
      const img = decodePng(craftPng(c as Craft), name);
      expect([img.width, img.height], name).toEqual([W, H]);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          expect([...img.data.subarray(3 * (y * W + x), 3 * (y * W + x) + 3)], `${name} (${x}, ${y})`).toEqual(want(x, y));
        }
      }
    }
  });

  const bad: [string, () => Uint8Array, RegExp][] = [
    ['a bad signature', () => Buffer.from('GIF89a..........'), /not a PNG file/],
    ['interlacing', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12), interlace: 1 }), /interlaced \(Adam7\) PNG is not supported/],
    ['a bad CRC', () => {
      const b = craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12) });
      b[b.length - 20] ^= 1; // inside the IDAT
      return b;
    }, /bad CRC/],
    ['a missing IEND', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12) }).subarray(0, -12), /no IEND chunk/],
    ['a truncated chunk', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12) }).subarray(0, -16), /truncated/],
    ['an invalid filter type', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12), filterOf: (y) => (y === 1 ? 5 : 0) }), /row 1 has invalid filter type 5/],
    ['an invalid bit depth', () => craftPng({ width: 2, height: 2, bitDepth: 4, colorType: 2, raw: new Uint8Array(6) }), /bit depth 4 is not valid for colour type 2/],
    ['an unknown critical chunk', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12), extraChunks: [pngChunk('ABCD', new Uint8Array(1))] }), /unknown critical chunk ABCD/],
    ['image data that is not a zlib stream', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12), mangle: () => Buffer.from([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]) }), /image data does not inflate/],
    ['image data with a bad Adler-32', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12), mangle: (z) => Buffer.concat([z.subarray(0, -1), Buffer.from([z[z.length - 1] ^ 1])]) }), /image data does not inflate \(bad Adler-32 checksum/],
    ['truncated image data', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw: new Uint8Array(12), mangle: (z) => z.subarray(0, z.length - 6) }), /image data does not inflate/],
    ['a palette image without PLTE', () => craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 3, raw: new Uint8Array(4) }), /without a valid PLTE/],
  ];
  for (const [what, make, re] of bad) {
    it(`rejects ${what}`, () => {
      expect(() => decodePng(make(), 'x.png')).toThrow(re);
      expect(() => decodePng(make(), 'x.png')).toThrow(PngError);
    });
  }

  it('ignores unknown ancillary chunks', () => {
    const raw = randomBytes(12, 1);
    const img = decodePng(craftPng({ width: 2, height: 2, bitDepth: 8, colorType: 2, raw, extraChunks: [pngChunk('zzZz', new Uint8Array(3))] }));
    expect([...img.data]).toEqual([...raw]);
  });

  it('rejects bad images on encoding', () => {
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8Array(11) })).toThrow(/11 bytes for a 2x2 RGB image/);
    expect(() => encodePng({ width: 0, height: 2, data: new Uint8Array(0) })).toThrow(/must be positive/);
  });
});

describe('frames and folders', () => {
  const clip = (frames: number, height: number, width: number, seed: number): Video => {
    const r = rng(seed);
    // exactly representable 8-bit values so the round trip is exact
    const data = Float32Array.from({ length: 3 * frames * height * width }, () => r() / 127.5 - 1);
    return { data, frames, height, width };
  };

  it('maps frames to bytes and back exactly for 8-bit values, clamping the rest', () => {
    const v = clip(1, 3, 4, 1);
    const img = frameToImage(v.data, 3, 4);
    expect(imageToFrame(img)).toEqual(v.data);
    const odd = frameToImage(new Float32Array([-2, 2, NaN, 0]), 1, 1, 0, 1);
    // channels at 0, 1, 2 with stride 1: -2 -> 0, 2 -> 255, NaN -> 0
    expect([...odd.data]).toEqual([0, 255, 0]);
  });

  it('writes and reads a folder of numbered frames in numeric order', async () => {
    const v = clip(12, 5, 6, 2);
    const dir = tmpPath('frames');
    const paths = await writePngFrames(dir, v);
    expect(nodePath.basename(paths[11])).toBe('frame_000011.png');
    writeFileSync(nodePath.join(dir, 'notes.txt'), 'not a frame');
    const back = await readPngFrames(dir, { num: 8, den: 1 });
    expect([back.frames, back.height, back.width, back.fps]).toEqual([12, 5, 6, { num: 8, den: 1 }]);
    expect(back.data).toEqual(v.data);

    // numeric, not lexical, order; unpadded names
    const d2 = tmpPath('unpadded');
    mkdirSync(d2);
    for (const t of [10, 2, 1]) await writePng(nodePath.join(d2, `f${t}.png`), frameToImage(getFrame(v, t), 5, 6));
    expect((await listPngFrames(d2)).map((p) => nodePath.basename(p))).toEqual(['f1.png', 'f2.png', 'f10.png']);
    const src = await openPngFrames(d2);
    expect(src.frameCount).toBe(3);
    const got: Float32Array[] = [];
    for await (const f of src.frames()) got.push(f);
    expect(got).toEqual([getFrame(v, 1), getFrame(v, 2), getFrame(v, 10)]);
  });

  it('reports folders without frames, frames of different sizes, and missing files', async () => {
    const empty = tmpPath('empty');
    mkdirSync(empty);
    await expect(readPngFrames(empty)).rejects.toThrow(/no numbered PNG frames/);
    await expect(readPngFrames(tmpPath('missing'))).rejects.toThrow(/cannot list: no such directory/);
    const mixed = tmpPath('mixed');
    mkdirSync(mixed);
    await writePng(nodePath.join(mixed, '0.png'), { width: 2, height: 2, data: new Uint8Array(12) });
    await writePng(nodePath.join(mixed, '1.png'), { width: 3, height: 2, data: new Uint8Array(18) });
    await expect(readPngFrames(mixed)).rejects.toThrow(/1\.png: is 3x2; the first frame \(0\.png\) is 2x2/);
    await expect(readPng(nodePath.join(mixed, 'nope.png'))).rejects.toThrow(/nope\.png: cannot open/);
  });
});

describe('contactSheet', () => {
  const solid = (frames: number, h: number, w: number, f: (t: number) => number): Video => {
    const data = new Float32Array(3 * frames * h * w);
    for (let c = 0; c < 3; c++) for (let t = 0; t < frames; t++) data.fill(f(t), (c * frames + t) * h * w, (c * frames + t + 1) * h * w);
    return { data, frames, height: h, width: w };
  };

  it('tiles every frameStep-th frame of each row with gaps', () => {
    // frame t has grey level t / 10 - 1 -> byte round((t / 20) * 255)
    const a = solid(9, 4, 5, (t) => t / 10 - 1);
    const b = solid(5, 4, 5, () => 1);
    const sheet = contactSheet([a, b], 4);
    const gap = 4;
    // columns: ceil(9 / 4) = 3 frames (0, 4, 8)
    expect([sheet.width, sheet.height]).toEqual([gap + 3 * (5 + gap), gap + 2 * (4 + gap)]);
    const px = (img: RgbImage, x: number, y: number) => [...img.data.subarray(3 * (y * img.width + x), 3 * (y * img.width + x) + 3)];
    for (const [ci, t] of [[0, 0], [1, 4], [2, 8]]) {
      const v = Math.round((t / 20) * 255);
      expect(px(sheet, gap + ci * 9 + 2, gap + 1)).toEqual([v, v, v]);
    }
    // row b has frames 0 and 4 only; the third cell stays background
    expect(px(sheet, gap + 1 * 9, gap + 8 + 3)).toEqual([255, 255, 255]);
    expect(px(sheet, gap + 2 * 9, gap + 8 + 3)).toEqual([32, 32, 32]);
    expect(px(sheet, 0, 0)).toEqual([32, 32, 32]);
  });

  it('draws labels in a column left of the tiles', () => {
    const a = solid(4, 64, 64, () => -1);
    const sheet = contactSheet([a, a, a], 2, ['input', 'CV', 'DV 8x8']);
    // label column: 6 chars x 6 px x scale 2 + gap
    const labelW = 6 * 6 * 2 + 4;
    expect(sheet.width).toBe(4 + labelW + 2 * (64 + 4));
    let ink = 0;
    for (let y = 0; y < sheet.height; y++) for (let x = 0; x < labelW; x++) if (sheet.data[3 * (y * sheet.width + x)] > 200) ink++;
    expect(ink).toBeGreaterThan(100);
    // tiles are black
    expect(sheet.data[3 * (4 * sheet.width + 4 + labelW)]).toBe(0);
    expect(() => contactSheet([a], 0)).toThrow(/frameStep/);
    expect(() => contactSheet([a, a], 1, ['x'])).toThrow(/1 labels for 2 rows/);
    const p = tmpPath('sheet.png');
    writeFileSync(p, encodePng(sheet));
    expect(Buffer.from(decodePng(readFileSync(p)).data).equals(Buffer.from(sheet.data))).toBe(true);
  });
});
