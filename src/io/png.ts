// PNG images and folders of numbered PNG frames, on node:zlib (no dependency).
//
// Writing: 8-bit RGB, non-interlaced, one IDAT, each row filtered with the type (0-4) that
// minimises the sum of absolute filtered bytes (the usual libpng heuristic) unless a filter is
// forced.
// Reading: non-interlaced greyscale (bit depths 1, 2, 4, 8, 16), RGB (8, 16), palette (1, 2, 4,
// 8), grey + alpha (8, 16) and RGBA (8, 16), all five filter types; the result is always 8-bit RGB
// (16-bit samples are rounded to 8 bits, low grey depths scaled to 0..255, alpha and tRNS
// ignored). Interlaced (Adam7) files are rejected with a clear error. Every chunk's CRC is
// checked.
//
// Frames: a [3, H, W] float frame in [-1, 1] maps to bytes by round((v + 1) / 2 * 255) after
// clamping, and bytes back by v = b / 127.5 - 1 (the Y4M module's convention).
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { checkVideo, type FrameSource, getFrame, type Rational, setFrame, type Video } from './video.js';
import { UserError } from '../engine/errors.js';

export class PngError extends UserError {
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'PngError';
    this.file = file;
  }
}

/** An 8-bit RGB image, pixels interleaved row by row (H x W x 3). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// ---------------------------------------------------------------------------------------------
// CRC-32 (ISO-HDLC, as PNG and zlib use)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------------------------
// filters

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filter `row` (with `prev` the previous raw row, zeros for the first) with type `type` into `out`. */
function filterRow(type: number, row: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): void {
  const n = row.length;
  for (let i = 0; i < n; i++) {
    const a = i >= bpp ? row[i - bpp] : 0;
    const b = prev[i];
    const c = i >= bpp ? prev[i - bpp] : 0;
    const x = row[i];
    let pred = 0;
    if (type === 1) pred = a;
    else if (type === 2) pred = b;
    else if (type === 3) pred = (a + b) >> 1;
    else if (type === 4) pred = paeth(a, b, c);
    out[i] = (x - pred) & 0xff;
  }
}

/** Undo the filter of one row in place (`row` holds the filtered bytes, `prev` the previous decoded row). */
function unfilterRow(type: number, row: Uint8Array, prev: Uint8Array, bpp: number): boolean {
  const n = row.length;
  switch (type) {
    case 0:
      return true;
    case 1:
      for (let i = bpp; i < n; i++) row[i] = (row[i] + row[i - bpp]) & 0xff;
      return true;
    case 2:
      for (let i = 0; i < n; i++) row[i] = (row[i] + prev[i]) & 0xff;
      return true;
    case 3:
      for (let i = 0; i < n; i++) row[i] = (row[i] + (((i >= bpp ? row[i - bpp] : 0) + prev[i]) >> 1)) & 0xff;
      return true;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const c = i >= bpp ? prev[i - bpp] : 0;
        row[i] = (row[i] + paeth(a, prev[i], c)) & 0xff;
      }
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// encoding

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export interface PngEncodeOptions {
  /** Force one filter type for every row (default: adaptive per row). */
  filter?: 0 | 1 | 2 | 3 | 4;
  /** zlib level 0-9 (default 6). */
  level?: number;
}

/** Encode an 8-bit RGB image as PNG bytes. */
export function encodePng(img: RgbImage, options: PngEncodeOptions = {}): Uint8Array {
  const { width, height, data } = img;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 && width < 2 ** 31 && height < 2 ** 31)) {
    throw new RangeError(`encodePng: image size ${width}x${height} must be positive integers`);
  }
  if (data.length !== width * height * 3) {
    throw new RangeError(`encodePng: ${data.length} bytes for a ${width}x${height} RGB image; expected ${width * height * 3}`);
  }
  const stride = width * 3;
  const filtered = new Uint8Array(height * (stride + 1));
  const candidate = new Uint8Array(stride);
  let prev: Uint8Array = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const dst = filtered.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    let best = options.filter ?? 0;
    if (options.filter === undefined) {
      let bestScore = Infinity;
      for (let type = 0; type < 5; type++) {
        filterRow(type, row, prev, 3, candidate);
        let score = 0;
        for (let i = 0; i < stride; i++) score += candidate[i] < 128 ? candidate[i] : 256 - candidate[i];
        if (score < bestScore) {
          bestScore = score;
          best = type as 0 | 1 | 2 | 3 | 4;
        }
      }
    }
    filtered[y * (stride + 1)] = best;
    filterRow(best, row, prev, 3, dst);
    prev = row;
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
  const idat = deflateSync(filtered, { level: options.level ?? 6 });
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// decoding

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ALLOWED_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const TYPE_NAMES: Record<number, string> = { 0: 'greyscale', 2: 'RGB', 3: 'palette', 4: 'grey+alpha', 6: 'RGBA' };

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
}

/** Decode PNG bytes to 8-bit RGB (`file` names the source in errors). */
export function decodePng(bytes: Uint8Array, file = '<png>'): RgbImage & { info: PngInfo } {
  if (bytes.length < 8 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    throw new PngError(file, 'not a PNG file (bad signature)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let info: PngInfo | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) throw new PngError(file, `truncated chunk header at byte ${pos}`);
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (pos + 12 + len > bytes.length) throw new PngError(file, `chunk ${type} at byte ${pos} is truncated (${len} bytes declared)`);
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    const crc = view.getUint32(pos + 8 + len);
    if (crc32(bytes.subarray(pos + 4, pos + 8 + len)) !== crc) throw new PngError(file, `chunk ${type} at byte ${pos} has a bad CRC`);
    pos += 12 + len;
    if (type === 'IHDR') {
      if (len !== 13) throw new PngError(file, `IHDR has ${len} bytes; expected 13`);
      const d = new DataView(data.buffer, data.byteOffset, 13);
      info = { width: d.getUint32(0), height: d.getUint32(4), bitDepth: data[8], colorType: data[9], interlace: data[12] };
      if (info.width === 0 || info.height === 0) throw new PngError(file, `image size ${info.width}x${info.height} is empty`);
      const depths = ALLOWED_DEPTHS[info.colorType];
      if (!depths) throw new PngError(file, `invalid colour type ${info.colorType}`);
      if (!depths.includes(info.bitDepth)) {
        throw new PngError(file, `bit depth ${info.bitDepth} is not valid for colour type ${info.colorType} (${TYPE_NAMES[info.colorType]})`);
      }
      if (data[10] !== 0 || data[11] !== 0) throw new PngError(file, 'unknown compression or filter method');
      if (info.interlace !== 0) {
        throw new PngError(file, 'interlaced (Adam7) PNG is not supported; re-save it non-interlaced');
      }
    } else if (type === 'PLTE') {
      palette = data.slice();
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      ended = true;
      break;
    } else if ((type.charCodeAt(0) & 0x20) === 0) {
      // An uppercase first letter marks a chunk that a decoder must understand.
      throw new PngError(file, `unknown critical chunk ${type}`);
    }
  }
  if (!info) throw new PngError(file, 'no IHDR chunk');
  if (!ended) throw new PngError(file, 'no IEND chunk (truncated file?)');
  if (idat.length === 0) throw new PngError(file, 'no IDAT chunk');
  if (info.colorType === 3 && (!palette || palette.length % 3 !== 0)) throw new PngError(file, 'palette image without a valid PLTE chunk');

  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new PngError(file, `image data does not inflate (${(e as Error).message})`);
  }
  const { width, height, bitDepth, colorType } = info;
  const bitsPerPixel = CHANNELS[colorType] * bitDepth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < height * (stride + 1)) {
    throw new PngError(file, `image data has ${raw.length} bytes; a ${width}x${height} image needs ${height * (stride + 1)}`);
  }
  const out = new Uint8Array(width * height * 3);
  let prev: Uint8Array = new Uint8Array(stride);
  const maxSample = (1 << bitDepth) - 1;
  for (let y = 0; y < height; y++) {
    const type = raw[y * (stride + 1)];
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    if (!unfilterRow(type, row, prev, bpp)) throw new PngError(file, `row ${y} has invalid filter type ${type}`);
    prev = row;
    const o = y * width * 3;
    // The sample of channel ch of pixel x, scaled to 8 bits.
    const sample = (x: number, ch: number): number => {
      if (bitDepth === 8) return row[x * CHANNELS[colorType] + ch];
      if (bitDepth === 16) {
        const i = 2 * (x * CHANNELS[colorType] + ch);
        return Math.round(((row[i] << 8) | row[i + 1]) / 257);
      }
      const bit = x * bitDepth; // sub-byte depths only occur with one channel
      return (row[bit >> 3] >> (8 - bitDepth - (bit & 7))) & maxSample;
    };
    for (let x = 0; x < width; x++) {
      if (colorType === 2 || colorType === 6) {
        out[o + 3 * x] = sample(x, 0);
        out[o + 3 * x + 1] = sample(x, 1);
        out[o + 3 * x + 2] = sample(x, 2);
      } else if (colorType === 3) {
        const idx = sample(x, 0);
        if (3 * idx + 2 >= palette!.length) throw new PngError(file, `pixel (${x}, ${y}) uses palette entry ${idx} of ${palette!.length / 3}`);
        out[o + 3 * x] = palette![3 * idx];
        out[o + 3 * x + 1] = palette![3 * idx + 1];
        out[o + 3 * x + 2] = palette![3 * idx + 2];
      } else {
        let g = sample(x, 0);
        if (bitDepth < 8) g = Math.round((g * 255) / maxSample);
        out[o + 3 * x] = out[o + 3 * x + 1] = out[o + 3 * x + 2] = g;
      }
    }
  }
  return { width, height, data: out, info };
}

export async function readPng(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new PngError(path, `cannot open: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
  return decodePng(bytes, path);
}

export async function writePng(path: string, img: RgbImage, options: PngEncodeOptions = {}): Promise<void> {
  await fsp.writeFile(path, encodePng(img, options));
}

// ---------------------------------------------------------------------------------------------
// float frames <-> images

/** A [3, H, W] frame in [-1, 1] (or frame t of a [3, T, H, W] clip) as an 8-bit RGB image. */
export function frameToImage(frame: Float32Array, height: number, width: number, base = 0, channelStride = height * width): RgbImage {
  const hw = height * width;
  const data = new Uint8Array(3 * hw);
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const v = frame[base + c * channelStride + p];
      data[3 * p + c] = v <= -1 ? 0 : v >= 1 ? 255 : Math.round(((v + 1) / 2) * 255); // NaN -> 0
    }
  }
  return { width, height, data };
}

/** An 8-bit RGB image as a [3, H, W] frame in [-1, 1]. */
export function imageToFrame(img: RgbImage): Float32Array {
  const hw = img.width * img.height;
  const out = new Float32Array(3 * hw);
  for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) out[c * hw + p] = img.data[3 * p + c] / 127.5 - 1;
  return out;
}

// ---------------------------------------------------------------------------------------------
// folders of numbered frames

const NUMBERED = /(\d+)\.png$/i;

/** The numbered .png files of a folder (the last run of digits before ".png"), in numeric order. */
export async function listPngFrames(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new PngError(dir, `cannot list: ${err.code === 'ENOENT' ? 'no such directory' : err.code === 'ENOTDIR' ? 'not a directory' : err.message}`);
  }
  const numbered = names
    .map((n) => ({ n, m: NUMBERED.exec(n) }))
    .filter((e): e is { n: string; m: RegExpExecArray } => e.m !== null)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]) || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
  if (numbered.length === 0) throw new PngError(dir, 'no numbered PNG frames (e.g. frame_000000.png) in this folder');
  return numbered.map((e) => nodePath.join(dir, e.n));
}

/** Stream a folder of numbered PNG frames (all the same size). */
export async function openPngFrames(dir: string, fps?: Rational): Promise<FrameSource & { files: string[] }> {
  const files = await listPngFrames(dir);
  const first = await readPng(files[0]);
  const { width, height } = first;
  let started = false;
  async function* frames(): AsyncGenerator<Float32Array> {
    if (started) throw new PngError(dir, 'frames can be iterated only once');
    started = true;
    for (let i = 0; i < files.length; i++) {
      const img = i === 0 ? first : await readPng(files[i]);
      if (img.width !== width || img.height !== height) {
        throw new PngError(files[i], `is ${img.width}x${img.height}; the first frame (${nodePath.basename(files[0])}) is ${width}x${height}`);
      }
      yield imageToFrame(img);
    }
  }
  return { files, width, height, fps, frameCount: files.length, frames, close: async () => {} };
}

/** Read a folder of numbered PNG frames as one [3, T, H, W] clip. */
export async function readPngFrames(dir: string, fps?: Rational): Promise<Video> {
  const src = await openPngFrames(dir, fps);
  const v: Video = { data: new Float32Array(3 * src.frameCount! * src.height * src.width), frames: src.frameCount!, height: src.height, width: src.width };
  if (fps) v.fps = fps;
  let t = 0;
  for await (const f of src.frames()) setFrame(v, t++, f);
  return v;
}

export interface PngFramesOptions {
  /** File name prefix (default "frame_"). */
  prefix?: string;
  /** Zero-padded digits (default 6). */
  digits?: number;
  /** Number of the first frame (default 0). */
  start?: number;
}

export function pngFrameName(index: number, o: PngFramesOptions = {}): string {
  return `${o.prefix ?? 'frame_'}${String(index).padStart(o.digits ?? 6, '0')}.png`;
}

/** Write one [3, H, W] frame as `<dir>/<prefix><index>.png`; returns the path. */
export async function writePngFrame(dir: string, index: number, frame: Float32Array, height: number, width: number, o: PngFramesOptions = {}): Promise<string> {
  const path = nodePath.join(dir, pngFrameName((o.start ?? 0) + index, o));
  await writePng(path, frameToImage(frame, height, width));
  return path;
}

/** Write every frame of a clip into `dir` (created if needed); returns the paths. */
export async function writePngFrames(dir: string, video: Video, o: PngFramesOptions = {}): Promise<string[]> {
  checkVideo(video, 'writePngFrames');
  await fsp.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let t = 0; t < video.frames; t++) paths.push(await writePngFrame(dir, t, getFrame(video, t), video.height, video.width, o));
  return paths;
}

// ---------------------------------------------------------------------------------------------
// contact sheet

// 5x7 glyphs, one string of 7 rows (5 columns each, '#' = ink) per character.
const GLYPH_ROWS: Record<string, string> = {
  A: '.###.#...##...#######...##...##...#', B: '####.#...##...#####.#...##...#####.',
  C: '.###.#...##....#....#....#...#.###.', D: '####.#...##...##...##...##...#####.',
  E: '######....#....####.#....#....#####', F: '######....#....####.#....#....#....',
  G: '.###.#...##....#.####...##...#.####', H: '#...##...##...#######...##...##...#',
  I: '.###...#....#....#....#....#...###.', J: '..###...#....#....#....#.#..#..##..',
  K: '#...##..#.#.#..##...#.#..#..#.#...#', L: '#....#....#....#....#....#....#####',
  M: '#...###.###.#.##.#.##...##...##...#', N: '#...##...###..##.#.##..###...##...#',
  O: '.###.#...##...##...##...##...#.###.', P: '####.#...##...#####.#....#....#....',
  Q: '.###.#...##...##...##.#.##..#..##.#', R: '####.#...##...#####.#.#..#..#.#...#',
  S: '.#####....#.....###.....#....#####.', T: '#####..#....#....#....#....#....#..',
  U: '#...##...##...##...##...##...#.###.', V: '#...##...##...##...##...#.#.#...#..',
  W: '#...##...##...##.#.##.#.##.#.#.#.#.', X: '#...##...#.#.#...#...#.#.#...##...#',
  Y: '#...##...#.#.#...#....#....#....#..', Z: '#####....#...#...#...#...#....#####',
  '0': '.###.#...##..###.#.###..##...#.###.', '1': '..#...##....#....#....#....#...###.',
  '2': '.###.#...#....#...#...#...#...#####', '3': '#####...#...#.....#.....##...#.###.',
  '4': '...#...##..#.#.#..#.#####...#....#.', '5': '######....####.....#....##...#.###.',
  '6': '..##..#...#....####.#...##...#.###.', '7': '#####....#...#...#...#....#....#...',
  '8': '.###.#...##...#.###.#...##...#.###.', '9': '.###.#...##...#.####....#...#..##..',
  ' ': '...................................', '-': '...............#####...............',
  _: '..............................#####', '.': '..........................##...##..',
  ':': '......##...##........##...##.......', '/': '.........#...#...#...#...#.........',
  '(': '...#...#...#....#....#.....#.....#.', ')': '.#.....#.....#....#....#...#...#...',
  '=': '..........#####.....#####..........', '+': '.......#....#..#####..#....#.......',
  '%': '##...##..#...#...#...#...#..##...##', ',': '.....................##....#...#...',
  '?': '.###.#...#....#...#...#.........#..',
};
/** Ink pixels per glyph, rows of 5. */
const GLYPHS = new Map(Object.entries(GLYPH_ROWS).map(([k, s]) => [k, Uint8Array.from(s, (ch) => (ch === '#' ? 1 : 0))]));
const GLYPH_W = 5;
const GLYPH_H = 7;

function drawText(img: RgbImage, text: string, x0: number, y0: number, scale: number, rgb: readonly [number, number, number]): void {
  let x = x0;
  for (const chRaw of text.toUpperCase()) {
    const g = GLYPHS.get(chRaw) ?? GLYPHS.get('?')!;
    for (let gy = 0; gy < GLYPH_H; gy++) {
      for (let gx = 0; gx < GLYPH_W; gx++) {
        if (!g[gy * GLYPH_W + gx]) continue;
        for (let sy = 0; sy < scale; sy++) {
          for (let sx = 0; sx < scale; sx++) {
            const px = x + gx * scale + sx;
            const py = y0 + gy * scale + sy;
            if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
            img.data.set(rgb, 3 * (py * img.width + px));
          }
        }
      }
    }
    x += (GLYPH_W + 1) * scale;
  }
}

export interface ContactSheetOptions {
  /** Pixels between tiles and around the sheet (default 4). */
  gap?: number;
  /** Background grey level 0-255 (default 32). */
  background?: number;
}

/**
 * Tile frames 0, frameStep, 2*frameStep, ... of each clip into one image, one row per clip
 * (e.g. input, continuous reconstruction, discrete reconstruction), with small gaps, and an
 * optional label drawn left of each row. Clips may differ in length and size (each cell is as
 * large as the largest frame).
 */
export function contactSheet(rows: readonly Video[], frameStep: number, labels?: readonly string[], options: ContactSheetOptions = {}): RgbImage {
  if (rows.length === 0) throw new RangeError('contactSheet: no rows');
  if (!Number.isInteger(frameStep) || frameStep < 1) throw new RangeError(`contactSheet: frameStep must be a positive integer, got ${frameStep}`);
  if (labels && labels.length !== rows.length) throw new RangeError(`contactSheet: ${labels.length} labels for ${rows.length} rows`);
  rows.forEach((r, i) => checkVideo(r, `contactSheet row ${i}`));
  const gap = options.gap ?? 4;
  const bg = options.background ?? 32;
  const cellH = Math.max(...rows.map((r) => r.height));
  const cellW = Math.max(...rows.map((r) => r.width));
  const cols = Math.max(...rows.map((r) => Math.ceil(r.frames / frameStep)));
  const scale = cellH >= 48 ? 2 : 1;
  const labelW = labels && labels.some((l) => l.length > 0) ? Math.max(...labels.map((l) => l.length)) * (GLYPH_W + 1) * scale + gap : 0;
  const width = gap + labelW + cols * (cellW + gap);
  const height = gap + rows.length * (cellH + gap);
  const img: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(bg) };
  rows.forEach((r, ri) => {
    const top = gap + ri * (cellH + gap);
    if (labels && labels[ri]) drawText(img, labels[ri], gap, top + Math.max(0, Math.floor((cellH - GLYPH_H * scale) / 2)), scale, [235, 235, 235]);
    const hw = r.height * r.width;
    for (let ci = 0, t = 0; t < r.frames; ci++, t += frameStep) {
      const left = gap + labelW + ci * (cellW + gap);
      const tile = frameToImage(r.data, r.height, r.width, t * hw, r.frames * hw);
      for (let y = 0; y < r.height; y++) {
        img.data.set(tile.data.subarray(y * r.width * 3, (y + 1) * r.width * 3), 3 * ((top + y) * width + left));
      }
    }
  });
  return img;
}
