// YUV4MPEG2 (.y4m) reading and writing, 8-bit 4:2:0 and 4:4:4, with RGB float conversion.
//
// Format: one header line "YUV4MPEG2 W<w> H<h> [F<n>:<d>] [I<p|t|b|m|?>] [A<n>:<d>] [C<space>] [X<ext>]...\n",
// then per frame "FRAME[ <params>]\n" followed by the planes Y (w*h bytes), Cb, Cr (each w*h
// bytes for 4:4:4, (w/2)*(h/2) for 4:2:0). Unknown header tags, the interlacing tag, the pixel
// aspect ratio and frame parameters are accepted and ignored.
//
// Colour conventions:
// - matrix: always BT.601 (Kr = 0.299, Kb = 0.114), the only one Y4M files written by ffmpeg
//   imply (the format has no matrix tag).
// - range: `XCOLORRANGE=FULL` is full range (JFIF: Y 0..255, Cb/Cr 128 +- 127.5);
//   `XCOLORRANGE=LIMITED` is limited (Y 16..235, Cb/Cr 16..240). When the tag is absent we assume
//   LIMITED, which is what ffmpeg writes for `-pix_fmt yuv420p` (tv range) and what it assumes
//   on reading a y4m file without the tag. The sample clips (weights/samples) carry
//   XCOLORRANGE=FULL.
// - RGB <-> float: v = R / 127.5 - 1 with R in 0..255, computed in float64 and stored as
//   float32; decoding does NOT round RGB to integers (that would add a second quantisation step)
//   but clamps R, G, B to 0..255. Encoding clamps v to [-1, 1], R = (v + 1) / 2 * 255, applies
//   the JFIF matrix in float64 and rounds each Y/Cb/Cr value to the nearest integer (halves up),
//   clamped to 0..255. With these conventions writing a sample tensor reproduces the sample
//   .y4m byte for byte, and reading it back gives the expected.json y4m_roundtrip_psnr_vs_tensor.
// - 4:2:0: chroma is downsampled by averaging each 2x2 block of (unrounded) chroma values, which
//   places the chroma sample at the block centre (C420jpeg siting; we write that tag). On
//   reading, chroma is upsampled by nearest neighbour by default (each chroma sample covers its
//   2x2 block, the exact inverse of the averaging for blockwise-constant chroma) or bilinearly
//   with centre siting (`chromaUpsample: 'bilinear'`). The 420mpeg2 / 420paldv siting variants
//   are read the same way (siting differences are ignored).
// - W and H must be even for 4:2:0 (odd sizes are rejected on reading and writing).
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { checkVideo, DEFAULT_FPS, type FrameSource, getFrame, type Rational, type Video } from './video.js';
import { UserError } from '../engine/errors.js';

export class Y4mError extends UserError {
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'Y4mError';
    this.file = file;
  }
}

export type Chroma = '420' | '444';
export type ColorRange = 'full' | 'limited';
export type ChromaUpsample = 'nearest' | 'bilinear';

export interface Y4mHeader {
  width: number;
  height: number;
  /** From the F tag; undefined when absent or 0:0 (unknown). */
  fps: Rational | undefined;
  chroma: Chroma;
  /** The C tag as written ("420jpeg", "444", ...), or undefined when absent (= 420). */
  colorspaceTag: string | undefined;
  range: ColorRange;
  /** True when the header has an XCOLORRANGE tag (otherwise `range` is the limited default). */
  rangeExplicit: boolean;
  /** The I tag value ("p", "t", ...) when present; not used. */
  interlacing: string | undefined;
  /** The A tag when present; not used. */
  aspect: Rational | undefined;
  /** Other X tags (without the X), in order. */
  extensions: string[];
  /** Bytes of the header line including its newline. */
  headerBytes: number;
  /** Bytes of one frame's planes (without the FRAME line). */
  frameBytes: number;
}

const MAGIC = 'YUV4MPEG2';
const MAX_HEADER_LINE = 64 * 1024;
const MAX_FRAME_LINE = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// header

function parseRatio(file: string, tag: string, value: string): Rational {
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m) throw new Y4mError(file, `malformed header tag ${tag}${value}; expected ${tag}<n>:<d>`);
  return { num: Number(m[1]), den: Number(m[2]) };
}

function parseColorspace(file: string, tag: string): Chroma {
  switch (tag) {
    case '420':
    case '420jpeg':
    case '420paldv':
    case '420mpeg2':
      return '420';
    case '444':
      return '444';
  }
  const deep = /^(?:420|422|444|411)p(\d+)$/.exec(tag) ?? /^mono(\d+)$/.exec(tag);
  if (deep) {
    throw new Y4mError(file, `colour space tag C${tag} is ${deep[1]}-bit; only 8-bit Y4M is supported (C420, C420jpeg, C420paldv, C420mpeg2, C444)`);
  }
  throw new Y4mError(file, `unsupported colour space tag C${tag}; expected one of C420, C420jpeg, C420paldv, C420mpeg2, C444 (8-bit)`);
}

/** Parse a header line (without its newline). */
export function parseY4mHeader(line: string, file = '<y4m>'): Omit<Y4mHeader, 'headerBytes'> {
  const tokens = line.split(' ').filter((t) => t !== '');
  if (tokens[0] !== MAGIC) {
    throw new Y4mError(file, `bad magic ${JSON.stringify(line.slice(0, 12))}; expected a YUV4MPEG2 file starting with "${MAGIC} "`);
  }
  let width: number | undefined;
  let height: number | undefined;
  let fps: Rational | undefined;
  let colorspaceTag: string | undefined;
  let range: ColorRange | undefined;
  let interlacing: string | undefined;
  let aspect: Rational | undefined;
  const extensions: string[] = [];
  for (const tok of tokens.slice(1)) {
    const tag = tok[0];
    const value = tok.slice(1);
    switch (tag) {
      case 'W':
      case 'H': {
        if (!/^\d+$/.test(value) || Number(value) <= 0) {
          throw new Y4mError(file, `malformed header tag ${tok}; expected ${tag}<positive integer>`);
        }
        if (tag === 'W') width = Number(value);
        else height = Number(value);
        break;
      }
      case 'F': {
        const r = parseRatio(file, 'F', value);
        fps = r.num > 0 && r.den > 0 ? r : undefined;
        break;
      }
      case 'I':
        interlacing = value;
        break;
      case 'A': {
        const r = parseRatio(file, 'A', value);
        aspect = r.num > 0 && r.den > 0 ? r : undefined;
        break;
      }
      case 'C':
        colorspaceTag = value;
        break;
      case 'X': {
        const m = /^COLORRANGE=(.*)$/i.exec(value);
        if (m) {
          const r = m[1].toUpperCase();
          if (r !== 'FULL' && r !== 'LIMITED') {
            throw new Y4mError(file, `unknown XCOLORRANGE=${m[1]}; expected FULL or LIMITED`);
          }
          range = r === 'FULL' ? 'full' : 'limited';
        } else extensions.push(value);
        break;
      }
      default:
        // The format says unknown tags are to be ignored.
        break;
    }
  }
  if (width === undefined || height === undefined) {
    const missing = [width === undefined ? 'W' : '', height === undefined ? 'H' : ''].filter(Boolean).join(' and ');
    throw new Y4mError(file, `header has no ${missing} tag; expected "${MAGIC} W<width> H<height> ..."`);
  }
  const chroma = colorspaceTag === undefined ? '420' : parseColorspace(file, colorspaceTag);
  if (chroma === '420' && (width % 2 !== 0 || height % 2 !== 0)) {
    throw new Y4mError(file, `${width}x${height} is odd-sized; 4:2:0 (C${colorspaceTag ?? '420'}) needs an even width and height here`);
  }
  return {
    width,
    height,
    fps,
    chroma,
    colorspaceTag,
    range: range ?? 'limited',
    rangeExplicit: range !== undefined,
    interlacing,
    aspect,
    extensions,
    frameBytes: frameBytesOf(width, height, chroma),
  };
}

export function frameBytesOf(width: number, height: number, chroma: Chroma): number {
  return chroma === '444' ? 3 * width * height : width * height + 2 * (width / 2) * (height / 2);
}

// ---------------------------------------------------------------------------------------------
// colour conversion (BT.601)

// The JFIF (BT.601 full range) matrix on 0..255 RGB, with its published constants, evaluated in
// the same order as the generator of the sample clips (so that writing their tensors reproduces
// the files byte for byte). Limited range rescales: Y = 16 + Yf * 219/255, C = 128 + (Cf - 128) * 224/255.
const toY = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;
const toCb = (r: number, g: number, b: number) => 128 - 0.168736 * r - 0.331264 * g + 0.5 * b;
const toCr = (r: number, g: number, b: number) => 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;

const clamp255 = (x: number) => (x < 0 ? 0 : x > 255 ? 255 : x);
const clampByte = (x: number) => (x <= 0 ? 0 : x >= 255 ? 255 : Math.round(x));
const LIMITED_Y = 219 / 255;
const LIMITED_C = 224 / 255;

/**
 * Decode one frame's planes into RGB floats in [-1, 1]: channel c, pixel p goes to
 * out[base + c * channelStride + p]. For a [3, H, W] frame: base 0, channelStride H*W; for frame
 * t of a [3, T, H, W] clip: base t*H*W, channelStride T*H*W.
 */
export function yuvToRgb(
  planes: Uint8Array,
  width: number,
  height: number,
  chroma: Chroma,
  range: ColorRange,
  out: Float32Array,
  base = 0,
  channelStride = width * height,
  upsample: ChromaUpsample = 'nearest',
): void {
  const full = range === 'full';
  const hw = width * height;
  const r0 = base;
  const g0 = base + channelStride;
  const b0 = base + 2 * channelStride;
  const put = (p: number, yv: number, cb: number, cr: number) => {
    // To full-range values, then the inverse JFIF matrix.
    const y = full ? yv : (yv - 16) / LIMITED_Y;
    const u = full ? cb - 128 : (cb - 128) / LIMITED_C;
    const v = full ? cr - 128 : (cr - 128) / LIMITED_C;
    out[r0 + p] = clamp255(y + 1.402 * v) / 127.5 - 1;
    out[g0 + p] = clamp255(y - 0.344136 * u - 0.714136 * v) / 127.5 - 1;
    out[b0 + p] = clamp255(y + 1.772 * u) / 127.5 - 1;
  };
  if (chroma === '444') {
    for (let p = 0; p < hw; p++) put(p, planes[p], planes[hw + p], planes[2 * hw + p]);
    return;
  }
  const cw = width / 2;
  const ch = height / 2;
  const uBase = hw;
  const vBase = hw + cw * ch;
  if (upsample === 'nearest') {
    for (let y = 0; y < height; y++) {
      const crow = (y >> 1) * cw;
      for (let x = 0; x < width; x++) {
        const ci = crow + (x >> 1);
        put(y * width + x, planes[y * width + x], planes[uBase + ci], planes[vBase + ci]);
      }
    }
    return;
  }
  // Bilinear, centre-sited: luma pixel x sits at chroma coordinate (x - 0.5) / 2.
  for (let y = 0; y < height; y++) {
    const fy = (y - 0.5) / 2;
    const y0 = Math.floor(fy);
    const wy = fy - y0;
    const ya = Math.max(0, y0) * cw;
    const yb = Math.min(ch - 1, y0 + 1) * cw;
    for (let x = 0; x < width; x++) {
      const fx = (x - 0.5) / 2;
      const x0 = Math.floor(fx);
      const wx = fx - x0;
      const xa = Math.max(0, x0);
      const xb = Math.min(cw - 1, x0 + 1);
      const lerp = (plane: number) =>
        (1 - wy) * ((1 - wx) * planes[plane + ya + xa] + wx * planes[plane + ya + xb]) +
        wy * ((1 - wx) * planes[plane + yb + xa] + wx * planes[plane + yb + xb]);
      put(y * width + x, planes[y * width + x], lerp(uBase), lerp(vBase));
    }
  }
}

/**
 * Encode RGB floats (read like yuvToRgb writes them) into one frame's planes: clamp to [-1, 1],
 * BT.601 in float64, round to 8 bits; 4:2:0 averages each 2x2 block of chroma before rounding.
 */
export function rgbToYuv(
  src: Float32Array,
  width: number,
  height: number,
  chroma: Chroma,
  range: ColorRange,
  base = 0,
  channelStride = width * height,
  out: Uint8Array = new Uint8Array(frameBytesOf(width, height, chroma)),
): Uint8Array {
  if (chroma === '420' && (width % 2 !== 0 || height % 2 !== 0)) {
    throw new RangeError(`rgbToYuv: ${width}x${height} is odd-sized; 4:2:0 needs an even width and height`);
  }
  const full = range === 'full';
  const hw = width * height;
  const to255 = (v: number) => (v < -1 ? 0 : v > 1 ? 255 : ((v + 1) / 2) * 255); // NaN stays NaN -> byte 0
  const lumaByte = (y: number) => clampByte(full ? y : 16 + y * LIMITED_Y);
  const chromaByte = (c: number) => clampByte(full ? c : 128 + (c - 128) * LIMITED_C);
  // Unrounded Cb / Cr for 4:2:0 averaging; unused for 4:4:4.
  const cbs = chroma === '420' ? new Float64Array(hw) : undefined;
  const crs = chroma === '420' ? new Float64Array(hw) : undefined;
  for (let p = 0; p < hw; p++) {
    const r = to255(src[base + p]);
    const g = to255(src[base + channelStride + p]);
    const b = to255(src[base + 2 * channelStride + p]);
    out[p] = lumaByte(toY(r, g, b));
    if (cbs && crs) {
      cbs[p] = toCb(r, g, b);
      crs[p] = toCr(r, g, b);
    } else {
      out[hw + p] = chromaByte(toCb(r, g, b));
      out[2 * hw + p] = chromaByte(toCr(r, g, b));
    }
  }
  if (cbs && crs) {
    const cw = width / 2;
    const ch = height / 2;
    const vBase = hw + cw * ch;
    for (let cy = 0; cy < ch; cy++) {
      for (let cx = 0; cx < cw; cx++) {
        const p = 2 * cy * width + 2 * cx;
        out[hw + cy * cw + cx] = chromaByte((cbs[p] + cbs[p + 1] + cbs[p + width] + cbs[p + width + 1]) / 4);
        out[vBase + cy * cw + cx] = chromaByte((crs[p] + crs[p + 1] + crs[p + width] + crs[p + width + 1]) / 4);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// reading

export interface Y4mReadOptions {
  /** 4:2:0 chroma upsampling (default 'nearest'). */
  chromaUpsample?: ChromaUpsample;
}

export interface Y4mReader extends FrameSource {
  readonly path: string;
  readonly header: Y4mHeader;
  /** Decoded [3, H, W] frames in [-1, 1]. Iterate once; the file closes at the end. */
  frames(): AsyncIterableIterator<Float32Array>;
  /** The raw planes of each frame (Y, Cb, Cr), a fresh array per frame. */
  rawFrames(): AsyncIterableIterator<Uint8Array>;
  close(): Promise<void>;
}

async function readFully(fh: FileHandle, into: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Read up to and including the next newline at `position`; returns the line (without newline) and its byte length, or null at EOF. */
async function readLine(
  fh: FileHandle,
  position: number,
  max: number,
): Promise<{ line: Uint8Array; bytes: number; terminated: boolean } | null> {
  let size = 256;
  for (;;) {
    const buf = new Uint8Array(Math.min(size, max + 1));
    const got = await readFully(fh, buf, position);
    if (got === 0) return null;
    const nl = buf.subarray(0, got).indexOf(0x0a);
    if (nl >= 0) return { line: buf.subarray(0, nl), bytes: nl + 1, terminated: true };
    if (got < buf.length || buf.length > max) return { line: buf.subarray(0, got), bytes: got, terminated: false };
    size *= 4;
  }
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

/** Open a .y4m file: reads and checks the header; frames are read on demand. */
export async function openY4m(path: string, options: Y4mReadOptions = {}): Promise<Y4mReader> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Y4mError(path, `cannot open: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
  let header: Y4mHeader;
  let size: number;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Y4mError(path, 'not a regular file; expected a .y4m file');
    size = st.size;
    const first = await readLine(fh, 0, MAX_HEADER_LINE);
    if (first === null) throw new Y4mError(path, 'file is empty; expected a YUV4MPEG2 header');
    const text = latin1(first.line);
    if (!text.startsWith(MAGIC)) {
      throw new Y4mError(path, `bad magic ${JSON.stringify(text.slice(0, 12))}; expected a YUV4MPEG2 file starting with "${MAGIC} "`);
    }
    if (!first.terminated) throw new Y4mError(path, `header line is not terminated by a newline within ${MAX_HEADER_LINE} bytes`);
    header = { ...parseY4mHeader(text, path), headerBytes: first.bytes };
  } catch (e) {
    await fh.close();
    throw e;
  }
  const upsample = options.chromaUpsample ?? 'nearest';
  const { width, height, frameBytes } = header;
  // Exact when every frame header is a bare "FRAME\n" (and the file is not truncated).
  const body = size - header.headerBytes;
  const frameCount = body % (6 + frameBytes) === 0 ? body / (6 + frameBytes) : undefined;

  let closed = false;
  let started = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await fh.close();
  };

  async function* raw(): AsyncGenerator<Uint8Array> {
    if (started) throw new Y4mError(path, 'frames can be iterated only once; open the file again');
    started = true;
    let pos = header.headerBytes;
    let index = 0;
    try {
      for (;;) {
        if (closed) return;
        const l = await readLine(fh, pos, MAX_FRAME_LINE);
        if (l === null) return;
        const text = latin1(l.line);
        if (!(text === 'FRAME' || text.startsWith('FRAME '))) {
          throw new Y4mError(
            path,
            `frame ${index}: expected a "FRAME" line at byte ${pos}, found ${JSON.stringify(text.slice(0, 16))}` +
              (index > 0 ? ' (wrong frame size for the header, or trailing garbage?)' : ''),
          );
        }
        if (!l.terminated) throw new Y4mError(path, `frame ${index} is truncated: its FRAME line has no newline`);
        pos += l.bytes;
        const planes = new Uint8Array(frameBytes);
        const got = await readFully(fh, planes, pos);
        if (got < frameBytes) {
          throw new Y4mError(path, `frame ${index} is truncated: expected ${frameBytes} bytes of picture data, got ${got}`);
        }
        pos += frameBytes;
        index++;
        yield planes;
      }
    } finally {
      await close();
    }
  }

  async function* decoded(): AsyncGenerator<Float32Array> {
    for await (const planes of raw()) {
      const out = new Float32Array(3 * width * height);
      yuvToRgb(planes, width, height, header.chroma, header.range, out, 0, width * height, upsample);
      yield out;
    }
  }

  return {
    path,
    header,
    width,
    height,
    fps: header.fps,
    frameCount,
    frames: decoded,
    rawFrames: raw,
    close,
  };
}

/** Read a whole .y4m clip into [3, T, H, W]. */
export async function readY4m(path: string, options: Y4mReadOptions = {}): Promise<Video & { header: Y4mHeader }> {
  const r = await openY4m(path, options);
  const { width, height } = r.header;
  const hw = width * height;
  const planes: Uint8Array[] = [];
  for await (const p of r.rawFrames()) planes.push(p);
  const T = planes.length;
  const data = new Float32Array(3 * T * hw);
  planes.forEach((p, t) => yuvToRgb(p, width, height, r.header.chroma, r.header.range, data, t * hw, T * hw, options.chromaUpsample));
  const v: Video & { header: Y4mHeader } = { data, frames: T, height, width, header: r.header };
  if (r.header.fps) v.fps = r.header.fps;
  return v;
}

// ---------------------------------------------------------------------------------------------
// writing

export interface Y4mWriteOptions {
  /** Default: the clip's fps, else 24. */
  fps?: Rational;
  /** Default '444'. */
  chroma?: Chroma;
  /** Default 'full' (what the sample clips use). */
  range?: ColorRange;
}

export function formatY4mHeader(width: number, height: number, opts: Required<Y4mWriteOptions>): string {
  const c = opts.chroma === '444' ? 'C444' : 'C420jpeg';
  return `${MAGIC} W${width} H${height} F${opts.fps.num}:${opts.fps.den} Ip A1:1 ${c} XCOLORRANGE=${opts.range.toUpperCase()}\n`;
}

/** Encode a whole clip as .y4m bytes. */
export function encodeY4m(video: Video, options: Y4mWriteOptions = {}): Uint8Array {
  checkVideo(video, 'encodeY4m');
  const opts = resolveWriteOptions(video.width, video.height, options, video.fps);
  const head = Buffer.from(formatY4mHeader(video.width, video.height, opts), 'latin1');
  const fb = frameBytesOf(video.width, video.height, opts.chroma);
  const out = new Uint8Array(head.length + video.frames * (6 + fb));
  out.set(head, 0);
  let at = head.length;
  const hw = video.width * video.height;
  for (let t = 0; t < video.frames; t++) {
    out.set(FRAME_LINE, at);
    at += 6;
    rgbToYuv(video.data, video.width, video.height, opts.chroma, opts.range, t * hw, video.frames * hw, out.subarray(at, at + fb));
    at += fb;
  }
  return out;
}

const FRAME_LINE = new Uint8Array(Buffer.from('FRAME\n', 'latin1'));

function resolveWriteOptions(width: number, height: number, o: Y4mWriteOptions, clipFps?: Rational): Required<Y4mWriteOptions> {
  const chroma = o.chroma ?? '444';
  const range = o.range ?? 'full';
  const fps = o.fps ?? clipFps ?? DEFAULT_FPS;
  if (chroma !== '420' && chroma !== '444') throw new RangeError(`y4m: chroma must be '420' or '444', got ${JSON.stringify(chroma)}`);
  if (range !== 'full' && range !== 'limited') throw new RangeError(`y4m: range must be 'full' or 'limited', got ${JSON.stringify(range)}`);
  if (!(Number.isInteger(fps.num) && Number.isInteger(fps.den) && fps.num > 0 && fps.den > 0)) {
    throw new RangeError(`y4m: fps must be a fraction of positive integers, got ${fps.num}/${fps.den}`);
  }
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`y4m: frame size ${width}x${height} must be positive integers`);
  }
  if (chroma === '420' && (width % 2 !== 0 || height % 2 !== 0)) {
    throw new RangeError(`y4m: ${width}x${height} is odd-sized; 4:2:0 needs an even width and height (use chroma '444')`);
  }
  return { chroma, range, fps };
}

export interface Y4mWriter {
  readonly path: string;
  readonly framesWritten: number;
  /** Append one [3, H, W] frame. */
  writeFrame(frame: Float32Array): Promise<void>;
  /** Append every frame of a [3, T, H, W] clip of the writer's size. */
  writeVideo(video: Video): Promise<void>;
  /** Finish: the file appears at `path` (written to a temporary name until then). */
  close(): Promise<void>;
  /** Give up: remove the partial file. */
  abort(): Promise<void>;
}

/** A streaming writer; frames are encoded and written one at a time. */
export async function createY4mWriter(
  path: string,
  init: { width: number; height: number } & Y4mWriteOptions,
): Promise<Y4mWriter> {
  const { width, height } = init;
  const opts = resolveWriteOptions(width, height, init);
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  const hw = width * height;
  const fb = frameBytesOf(width, height, opts.chroma);
  let count = 0;
  let done = false;
  try {
    await fh.write(Buffer.from(formatY4mHeader(width, height, opts), 'latin1'));
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  const ensureOpen = () => {
    if (done) throw new Y4mError(path, 'write after close()');
  };
  const writer: Y4mWriter = {
    path,
    get framesWritten() {
      return count;
    },
    async writeFrame(frame) {
      ensureOpen();
      if (frame.length !== 3 * hw) {
        throw new RangeError(`y4m writer: frame has ${frame.length} values; expected 3 x ${height} x ${width} = ${3 * hw}`);
      }
      const buf = new Uint8Array(6 + fb);
      buf.set(FRAME_LINE, 0);
      rgbToYuv(frame, width, height, opts.chroma, opts.range, 0, hw, buf.subarray(6));
      await fh.write(buf);
      count++;
    },
    async writeVideo(video) {
      checkVideo(video, 'y4m writer');
      if (video.width !== width || video.height !== height) {
        throw new RangeError(`y4m writer: clip is ${video.width}x${video.height}; the file is ${width}x${height}`);
      }
      for (let t = 0; t < video.frames; t++) await writer.writeFrame(getFrame(video, t));
    },
    async close() {
      if (done) return;
      done = true;
      try {
        await fh.close();
        await fsp.rename(tmp, path);
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw e;
      }
    },
    async abort() {
      if (done) return;
      done = true;
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
    },
  };
  return writer;
}

/** Write a whole [3, T, H, W] clip as .y4m (atomically: complete or not at all). */
export async function writeY4m(path: string, video: Video, options: Y4mWriteOptions = {}): Promise<void> {
  const bytes = encodeY4m(video, options);
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await fsp.writeFile(tmp, bytes);
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
