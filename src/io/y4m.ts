// YUV4MPEG2 (.y4m) reading and writing, 8-bit 4:2:0 and 4:4:4; the pixels go through yuv.ts.
//
// Format: one header line "YUV4MPEG2 W<w> H<h> [F<n>:<d>] [I<p|t|b|m|?>] [A<n>:<d>] [C<space>] [X<ext>]...\n",
// then per frame "FRAME[ <params>]\n" followed by the planes Y (w*h bytes), Cb, Cr (each w*h
// bytes for 4:4:4, (w/2)*(h/2) for 4:2:0). Unknown header tags, the pixel aspect ratio and frame
// parameters are accepted and ignored. Only progressive video is read: `Ip` or `I?` (unknown,
// taken as progressive) or no I tag; `It`, `Ib` (field-interlaced) and `Im` (mixed) are refused,
// since treating fields as frames would silently give combed pictures. The F tag must be a
// positive n:d; `F0:0` ("unknown"), a zero numerator or denominator, or a malformed value is
// refused. A header without F (ffmpeg always writes one) has `fps` undefined: openVideoSource
// then takes the caller's rate (--fps), else 24 (DEFAULT_FPS), and says it was assumed.
//
// Limits: the header's W x H, the frame count its size implies and the float32 bytes are
// checked against `limits` (limits.ts) before any frame buffer is allocated.
//
// Range: `XCOLORRANGE=FULL` is full range, `XCOLORRANGE=LIMITED` limited. When the tag is absent
// we assume LIMITED, which is what ffmpeg writes for `-pix_fmt yuv420p` (tv range) and what it
// assumes on reading a y4m file without the tag. The sample clips (weights/samples) carry
// XCOLORRANGE=FULL; writing their tensors reproduces them byte for byte, and reading them back
// gives the expected.json y4m_roundtrip_psnr_vs_tensor. 4:2:0 is written as C420jpeg (centre
// siting); the 420mpeg2 / 420paldv siting variants are read the same way (siting differences are
// ignored). W and H must be even for 4:2:0 (odd sizes are rejected on reading and writing).
//
// Files are reached through a FileSystem: positioned reads of one frame at a time (a clip is
// never held whole unless readY4m is asked for it) and an atomic output for the writer.
import { FileError, type FileSystem, fileSystem, openAs, type RandomAccessFile } from './files.js';
import { checkFrameCount, checkFrameLimits, DEFAULT_LIMITS, type InputLimits } from './limits.js';
import { checkVideo, DEFAULT_FPS, type FrameSource, getFrame, type Rational, type Video } from './video.js';
import { type Chroma, type ChromaUpsample, type ColorRange, frameBytesOf, rgbToYuv, yuvToRgb } from './yuv.js';

export class Y4mError extends FileError {}

export interface Y4mHeader {
  width: number;
  height: number;
  /** From the F tag; undefined when the header has none (the caller's rate, else 24, is then used). */
  fps: Rational | undefined;
  chroma: Chroma;
  /** The C tag as written ("420jpeg", "444", ...), or undefined when absent (= 420). */
  colorspaceTag: string | undefined;
  range: ColorRange;
  /** True when the header has an XCOLORRANGE tag (otherwise `range` is the limited default). */
  rangeExplicit: boolean;
  /** The I tag value ("p" or "?": only progressive video is accepted) when present. */
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

/** An error about one header tag: `<file>: header tag X: <problem>`. */
function tagError(file: string, tag: string, problem: string): Y4mError {
  return new Y4mError(file, `header tag ${tag}: ${problem}`);
}

/** An n:d tag value; undefined for 0:0 and the like, which mean "unknown". */
function parseRatio(file: string, tag: string, value: string): Rational | undefined {
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m) throw tagError(file, tag, `malformed value ${tag}${value}; expected ${tag}<n>:<d>`);
  const r = { num: Number(m[1]), den: Number(m[2]) };
  return r.num > 0 && r.den > 0 ? r : undefined;
}

/** The F tag: a frame rate of positive integers; 0:0 ("unknown"), zeros and malformed values are refused. */
function parseFrameRate(file: string, value: string): Rational {
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m) throw tagError(file, 'F', `malformed frame rate F${value}; expected F<n>:<d> with positive integers (e.g. F30:1, F30000:1001)`);
  const num = Number(m[1]);
  const den = Number(m[2]);
  if (num === 0 || den === 0 || !Number.isSafeInteger(num) || !Number.isSafeInteger(den)) {
    const why = num === 0 && den === 0 ? 'an unknown frame rate' : den === 0 ? 'a zero denominator' : num === 0 ? 'a zero frame rate' : 'out of range';
    throw tagError(file, 'F', `F${value} is ${why}; give the file its real rate (e.g. ffmpeg -i in.y4m -r 30 out.y4m, or edit the header to F30:1)`);
  }
  return { num, den };
}

/** The I tag: progressive (p) or unknown (?) are read as progressive; interlaced or mixed fields are refused. */
function checkInterlacing(file: string, value: string): void {
  if (value === 'p' || value === '?') return;
  const kinds: Record<string, string> = { t: 'interlaced video (It, top field first)', b: 'interlaced video (Ib, bottom field first)', m: 'mixed progressive and interlaced video (Im)' };
  const what = kinds[value] ?? `unknown interlacing I${value}`;
  throw tagError(file, 'I', `${what} is not supported; only progressive (Ip) video is read. Deinterlace it first (ffmpeg -vf yadif)`);
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
    throw tagError(file, 'C', `C${tag} is ${deep[1]}-bit; only 8-bit Y4M is supported (C420, C420jpeg, C420paldv, C420mpeg2, C444)`);
  }
  throw tagError(file, 'C', `unsupported colour space C${tag}; expected one of C420, C420jpeg, C420paldv, C420mpeg2, C444 (8-bit; convert with ffmpeg -pix_fmt yuv420p)`);
}

/** Parse a header line (without its newline). */
export function parseY4mHeader(line: string, file = '<y4m>', limits: InputLimits = DEFAULT_LIMITS): Omit<Y4mHeader, 'headerBytes'> {
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
    if (tag === 'W' || tag === 'H') {
      if (!/^\d+$/.test(value) || Number(value) <= 0 || !Number.isSafeInteger(Number(value))) {
        throw tagError(file, tag, `malformed value ${tok}; expected ${tag}<positive integer>`);
      }
      if (tag === 'W') width = Number(value);
      else height = Number(value);
    } else if (tag === 'F') fps = parseFrameRate(file, value);
    else if (tag === 'A') aspect = parseRatio(file, tag, value);
    else if (tag === 'I') {
      checkInterlacing(file, value);
      interlacing = value;
    }
    else if (tag === 'C') colorspaceTag = value;
    else if (tag === 'X') {
      const m = /^COLORRANGE=(.*)$/i.exec(value);
      if (!m) extensions.push(value);
      else if (/^(full|limited)$/i.test(m[1])) range = m[1].toLowerCase() as ColorRange;
      else throw tagError(file, 'XCOLORRANGE', `unknown value ${m[1]}; expected FULL or LIMITED`);
    }
    // The format says unknown tags are to be ignored.
  }
  if (width === undefined || height === undefined) {
    const missing = [width === undefined ? 'W' : '', height === undefined ? 'H' : ''].filter(Boolean).join(' and ');
    throw tagError(file, missing, `missing; expected "${MAGIC} W<width> H<height> ..."`);
  }
  const chroma = colorspaceTag === undefined ? '420' : parseColorspace(file, colorspaceTag);
  if (chroma === '420' && (width % 2 !== 0 || height % 2 !== 0)) {
    throw tagError(file, 'W/H', `${width}x${height} is odd-sized; 4:2:0 (C${colorspaceTag ?? '420'}) needs an even width and height here`);
  }
  // before frameBytes (and any buffer) is computed from them
  checkFrameLimits(`${file}: header tags W${width} H${height}`, width, height, undefined, limits);
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

// ---------------------------------------------------------------------------------------------
// reading

export interface Y4mReadOptions {
  /** 4:2:0 chroma upsampling (default 'nearest'). */
  chromaUpsample?: ChromaUpsample;
  /** what the header may claim (default DEFAULT_LIMITS); openY4m holds one frame at a time, readY4m the clip */
  limits?: InputLimits;
}

export interface Y4mReader extends FrameSource {
  readonly path: string;
  readonly header: Y4mHeader;
  /** The most frames the file's size leaves room for (frameCount when that is known). */
  readonly mostFrames: number;
  /** Decoded [3, H, W] frames in [-1, 1]. Iterate once; the file closes at the end. */
  frames(): AsyncIterableIterator<Float32Array>;
  /** The raw planes of each frame (Y, Cb, Cr), a fresh array per frame. */
  rawFrames(): AsyncIterableIterator<Uint8Array>;
  close(): Promise<void>;
}

/** Read up to and including the next newline at `position`; returns the line (without newline) and its byte length, or null at EOF. */
async function readLine(
  f: RandomAccessFile,
  position: number,
  max: number,
): Promise<{ line: Uint8Array; bytes: number; terminated: boolean } | null> {
  let size = 256;
  for (;;) {
    const buf = new Uint8Array(Math.min(size, max + 1));
    const got = await f.read(position, buf);
    if (got === 0) return null;
    const nl = buf.subarray(0, got).indexOf(0x0a);
    if (nl >= 0) return { line: buf.subarray(0, nl), bytes: nl + 1, terminated: true };
    if (got < buf.length || buf.length > max) return { line: buf.subarray(0, got), bytes: got, terminated: false };
    size *= 4;
  }
}

const latin1 = (b: Uint8Array) => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
};
const latin1Bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

const FRAME_LINE = latin1Bytes('FRAME\n');

/** Open a .y4m file: reads and checks the header; frames are read on demand. */
export async function openY4m(path: string, options: Y4mReadOptions = {}, fs: FileSystem = fileSystem()): Promise<Y4mReader> {
  const f = await openAs(path, fs, Y4mError);
  let header: Y4mHeader;
  try {
    const first = await readLine(f, 0, MAX_HEADER_LINE);
    if (first === null) throw new Y4mError(path, 'file is empty; expected a YUV4MPEG2 header');
    const text = latin1(first.line);
    if (!text.startsWith(MAGIC)) {
      throw new Y4mError(path, `bad magic ${JSON.stringify(text.slice(0, 12))}; expected a YUV4MPEG2 file starting with "${MAGIC} "`);
    }
    if (!first.terminated) throw new Y4mError(path, `header line is not terminated by a newline within ${MAX_HEADER_LINE} bytes`);
    header = { ...parseY4mHeader(text, path, options.limits), headerBytes: first.bytes };
  } catch (e) {
    await f.close();
    throw e;
  }
  const upsample = options.chromaUpsample ?? 'nearest';
  const { width, height, frameBytes } = header;
  // Exact when every frame header is a bare "FRAME\n" (and the file is not truncated).
  const body = f.size - header.headerBytes;
  const frameCount = body % (FRAME_LINE.length + frameBytes) === 0 ? body / (FRAME_LINE.length + frameBytes) : undefined;
  // every frame takes at least a FRAME line and its planes: at most this many are in the file
  const mostFrames = Math.floor(body / (FRAME_LINE.length + frameBytes));
  try {
    checkFrameCount(path, frameCount ?? mostFrames, options.limits);
  } catch (e) {
    await f.close();
    throw e;
  }

  let closed = false;
  let started = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await f.close();
  };

  /** The planes of the frame whose FRAME line starts at `pos`, and where the next one starts; null at the end. */
  async function readFrame(pos: number, index: number): Promise<{ planes: Uint8Array; next: number } | null> {
    // Most files have bare "FRAME\n" lines: then one read gets the line and the planes.
    const buf = new Uint8Array(FRAME_LINE.length + frameBytes);
    const got = await f.read(pos, buf);
    if (got === 0) return null;
    let start: number;
    let have: number;
    if (got >= FRAME_LINE.length && FRAME_LINE.every((b, i) => buf[i] === b)) {
      start = pos + FRAME_LINE.length;
      have = got - FRAME_LINE.length;
    } else {
      const l = await readLine(f, pos, MAX_FRAME_LINE);
      if (l === null) return null;
      const text = latin1(l.line);
      if (!(text === 'FRAME' || text.startsWith('FRAME '))) {
        throw new Y4mError(
          path,
          `frame ${index}: expected a "FRAME" line at byte ${pos}, found ${JSON.stringify(text.slice(0, 16))}` +
            (index > 0 ? ' (wrong frame size for the header, or trailing garbage?)' : ''),
        );
      }
      if (!l.terminated) throw new Y4mError(path, `frame ${index} is truncated: its FRAME line has no newline`);
      start = pos + l.bytes;
      have = await f.read(start, buf.subarray(FRAME_LINE.length));
    }
    if (have < frameBytes) {
      throw new Y4mError(path, `frame ${index} is truncated: expected ${frameBytes} bytes of picture data, got ${have}`);
    }
    return { planes: buf.subarray(FRAME_LINE.length), next: start + frameBytes };
  }

  async function* raw(): AsyncGenerator<Uint8Array> {
    if (started) throw new Y4mError(path, 'frames can be iterated only once; open the file again');
    started = true;
    let pos = header.headerBytes;
    try {
      for (let index = 0; !closed; index++) {
        const frame = await readFrame(pos, index);
        if (frame === null) return;
        pos = frame.next;
        yield frame.planes;
      }
    } finally {
      await close();
    }
  }

  async function* decoded(): AsyncGenerator<Float32Array> {
    for await (const planes of raw()) {
      const out = new Float32Array(3 * width * height);
      yuvToRgb(planes, header, out, 0, width * height, upsample);
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
    mostFrames,
    frames: decoded,
    rawFrames: raw,
    close,
  };
}

/** Read a whole .y4m clip into [3, T, H, W]. */
export async function readY4m(path: string, options: Y4mReadOptions = {}, fs: FileSystem = fileSystem()): Promise<Video & { header: Y4mHeader }> {
  const r = await openY4m(path, options, fs);
  const { width, height } = r.header;
  try {
    // the whole clip is held: every frame counts against maxBytes
    checkFrameLimits(path, width, height, r.frameCount ?? r.mostFrames, options.limits);
  } catch (e) {
    await r.close();
    throw e;
  }
  const hw = width * height;
  const planes: Uint8Array[] = [];
  for await (const p of r.rawFrames()) planes.push(p);
  const T = planes.length;
  const data = new Float32Array(3 * T * hw);
  planes.forEach((p, t) => {
    yuvToRgb(p, r.header, data, t * hw, T * hw, options.chromaUpsample);
  });
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

function formatY4mHeader(width: number, height: number, opts: Required<Y4mWriteOptions>): string {
  const c = opts.chroma === '444' ? 'C444' : 'C420jpeg';
  return `${MAGIC} W${width} H${height} F${opts.fps.num}:${opts.fps.den} Ip A1:1 ${c} XCOLORRANGE=${opts.range.toUpperCase()}\n`;
}

/** Encode a whole clip as .y4m bytes. */
export function encodeY4m(video: Video, options: Y4mWriteOptions = {}): Uint8Array {
  checkVideo(video, 'encodeY4m');
  const opts = resolveWriteOptions(video.width, video.height, options, video.fps);
  const head = latin1Bytes(formatY4mHeader(video.width, video.height, opts));
  const fb = frameBytesOf(video.width, video.height, opts.chroma);
  const out = new Uint8Array(head.length + video.frames * (FRAME_LINE.length + fb));
  out.set(head, 0);
  let at = head.length;
  const hw = video.width * video.height;
  for (let t = 0; t < video.frames; t++) {
    out.set(FRAME_LINE, at);
    at += FRAME_LINE.length;
    rgbToYuv(video.data, { ...opts, width: video.width, height: video.height }, t * hw, video.frames * hw, out.subarray(at, at + fb));
    at += fb;
  }
  return out;
}

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
  /** Finish: the file appears at `path` (nothing is there until then). */
  close(): Promise<void>;
  /** Give up: nothing appears at `path`. */
  abort(): Promise<void>;
}

/** A streaming writer; frames are encoded and written one at a time. */
export async function createY4mWriter(
  path: string,
  init: { width: number; height: number } & Y4mWriteOptions,
  fs: FileSystem = fileSystem(),
): Promise<Y4mWriter> {
  const { width, height } = init;
  const opts = resolveWriteOptions(width, height, init);
  const format = { width, height, chroma: opts.chroma, range: opts.range };
  const out = await fs.create(path);
  const hw = width * height;
  const fb = frameBytesOf(width, height, opts.chroma);
  let count = 0;
  let done = false;
  try {
    await out.write(latin1Bytes(formatY4mHeader(width, height, opts)));
  } catch (e) {
    await out.abort().catch(() => {});
    throw e;
  }
  const writer: Y4mWriter = {
    path,
    get framesWritten() {
      return count;
    },
    async writeFrame(frame) {
      if (done) throw new Y4mError(path, 'write after close()');
      if (frame.length !== 3 * hw) {
        throw new RangeError(`y4m writer: frame has ${frame.length} values; expected 3 x ${height} x ${width} = ${3 * hw}`);
      }
      const buf = new Uint8Array(FRAME_LINE.length + fb);
      buf.set(FRAME_LINE, 0);
      rgbToYuv(frame, format, 0, hw, buf.subarray(FRAME_LINE.length));
      await out.write(buf);
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
      await out.commit();
    },
    async abort() {
      if (done) return;
      done = true;
      await out.abort();
    },
  };
  return writer;
}

/** Write a whole [3, T, H, W] clip as .y4m, frame by frame (atomically: complete or not at all). */
export async function writeY4m(path: string, video: Video, options: Y4mWriteOptions = {}, fs: FileSystem = fileSystem()): Promise<void> {
  checkVideo(video, 'writeY4m');
  const w = await createY4mWriter(path, { width: video.width, height: video.height, ...options, fps: options.fps ?? video.fps }, fs);
  try {
    await w.writeVideo(video);
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
