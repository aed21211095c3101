// PNG images. The chunk layer, filters and colour handling are
// ours; deflate and inflate are fflate's (zlib.ts), so this runs in a browser too. fast-png was
// measured against this file and not taken (README): it accepts malformed files that this one
// rejects, does not check CRCs unless asked, and writes unfiltered rows (larger files).
//
// Writing: 8-bit RGB, non-interlaced, one IDAT, each row filtered with the type (0-4) that
// minimises the sum of absolute filtered bytes (the usual libpng heuristic) unless a filter is
// forced.
// Reading: non-interlaced greyscale (bit depths 1, 2, 4, 8, 16), RGB (8, 16), palette (1, 2, 4,
// 8), grey + alpha (8, 16) and RGBA (8, 16), all five filter types; the result is always 8-bit RGB
// (16-bit samples are rounded to 8 bits, low grey depths scaled to 0..255, alpha and tRNS
// ignored). Interlaced (Adam7) files are rejected with a clear error. Every chunk's CRC and the
// zlib stream's Adler-32 are checked. The IHDR size is checked against the input limits
// (limits.ts) before anything is inflated, and the inflate is bounded by the bytes IHDR implies,
// so a small file claiming a huge image costs nothing.
// Float frames and folders of numbered PNG frames are in png-frames.ts.
import { asFileError, FileError, type FileSystem, fileSystem, readBytes, writeFileAtomic } from './files.js';
import { checkFrameLimits, DEFAULT_LIMITS, type InputLimits } from './limits.js';
import { crc32, deflateZlib, InflateLimitError, inflateZlib } from './zlib.js';

export class PngError extends FileError {}

/** An 8-bit RGB image, pixels interleaved row by row (H x W x 3). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

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
  // The first pixel has no left neighbour (a = c = 0).
  for (let i = 0; i < Math.min(bpp, n); i++) {
    const b = prev[i];
    out[i] = (row[i] - (type === 2 || type === 4 ? b : type === 3 ? b >> 1 : 0)) & 0xff;
  }
  switch (type) {
    case 0:
      out.set(row.subarray(bpp), bpp);
      return;
    case 1:
      for (let i = bpp; i < n; i++) out[i] = (row[i] - row[i - bpp]) & 0xff;
      return;
    case 2:
      for (let i = bpp; i < n; i++) out[i] = (row[i] - prev[i]) & 0xff;
      return;
    case 3:
      for (let i = bpp; i < n; i++) out[i] = (row[i] - ((row[i - bpp] + prev[i]) >> 1)) & 0xff;
      return;
    default:
      for (let i = bpp; i < n; i++) out[i] = (row[i] - paeth(row[i - bpp], prev[i], prev[i - bpp])) & 0xff;
  }
}

/** The filter type whose output has the least sum of |signed byte| (the lowest type on ties). */
function bestFilter(row: Uint8Array, prev: Uint8Array, bpp: number): number {
  // |v| of a filtered byte v read as signed (-128..127)
  const mag = (d: number) => Math.abs((d << 24) >> 24);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let s4 = 0;
  // The first pixel has no left neighbour (a = c = 0): Sub is None, and Paeth is Up.
  for (let i = 0; i < bpp; i++) {
    const x = row[i];
    const b = prev[i];
    s0 += mag(x);
    s2 += mag(x - b);
    s3 += mag(x - (b >> 1));
  }
  s1 = s0;
  s4 = s2;
  for (let i = bpp; i < row.length; i++) {
    const x = row[i];
    const a = row[i - bpp];
    const b = prev[i];
    const c = prev[i - bpp];
    s0 += mag(x);
    s1 += mag(x - a);
    s2 += mag(x - b);
    s3 += mag(x - ((a + b) >> 1));
    s4 += mag(x - paeth(a, b, c));
  }
  const scores = [s0, s1, s2, s3, s4];
  let best = 0;
  for (let t = 1; t < 5; t++) if (scores[t] < scores[best]) best = t;
  return best;
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
      for (let i = 0; i < bpp; i++) row[i] = (row[i] + (prev[i] >> 1)) & 0xff;
      for (let i = bpp; i < n; i++) row[i] = (row[i] + ((row[i - bpp] + prev[i]) >> 1)) & 0xff;
      return true;
    case 4:
      // With a = c = 0 the Paeth predictor is b.
      for (let i = 0; i < bpp; i++) row[i] = (row[i] + prev[i]) & 0xff;
      for (let i = bpp; i < n; i++) row[i] = (row[i] + paeth(row[i - bpp], prev[i], prev[i - bpp])) & 0xff;
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
  const level = options.level ?? 6;
  if (!(Number.isInteger(level) && level >= 0 && level <= 9)) throw new RangeError(`encodePng: level ${level} is not an integer 0-9`);
  const stride = width * 3;
  const filtered = new Uint8Array(height * (stride + 1));
  let prev: Uint8Array = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * stride, (y + 1) * stride);
    const type = options.filter ?? bestFilter(row, prev, 3);
    filtered[y * (stride + 1)] = type;
    filterRow(type, row, prev, 3, filtered.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    prev = row;
  }
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
  const idat = deflateZlib(filtered, level);
  return concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
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

interface Chunks {
  info: PngInfo;
  palette: Uint8Array | undefined;
  idat: Uint8Array[];
}

function readIhdr(data: Uint8Array, file: string): PngInfo {
  if (data.length !== 13) throw new PngError(file, `IHDR has ${data.length} bytes; expected 13`);
  const d = new DataView(data.buffer, data.byteOffset, 13);
  const info = { width: d.getUint32(0), height: d.getUint32(4), bitDepth: data[8], colorType: data[9], interlace: data[12] };
  if (info.width === 0 || info.height === 0) throw new PngError(file, `image size ${info.width}x${info.height} is empty`);
  const depths = ALLOWED_DEPTHS[info.colorType];
  if (!depths) throw new PngError(file, `invalid colour type ${info.colorType}`);
  if (!depths.includes(info.bitDepth)) {
    throw new PngError(file, `bit depth ${info.bitDepth} is not valid for colour type ${info.colorType} (${TYPE_NAMES[info.colorType]})`);
  }
  if (data[10] !== 0 || data[11] !== 0) throw new PngError(file, 'unknown compression or filter method');
  if (info.interlace !== 0) throw new PngError(file, 'interlaced (Adam7) PNG is not supported; re-save it non-interlaced');
  return info;
}

export interface PngReadOptions {
  /** what IHDR may claim (default DEFAULT_LIMITS) */
  limits?: InputLimits;
}

/** The first chunk must be IHDR (PNG spec); its size is checked against the limits as soon as it is read. */
function checkedIhdr(data: Uint8Array, file: string, limits: InputLimits): PngInfo {
  const info = readIhdr(data, file);
  checkFrameLimits(`${file}: IHDR`, info.width, info.height, undefined, limits);
  return info;
}

/** Walk the chunks, checking each CRC; keeps what decoding needs. */
function readChunks(bytes: Uint8Array, file: string, limits: InputLimits): Chunks {
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
    if (type === 'IHDR') info = checkedIhdr(data, file, limits);
    else if (type === 'PLTE') palette = data.slice();
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') {
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
  return { info, palette, idat };
}

/** Write one unfiltered row as 8-bit RGB at out[o...]. */
function rowToRgb(row: Uint8Array, y: number, info: PngInfo, palette: Uint8Array | undefined, out: Uint8Array, o: number, file: string): void {
  const { width, bitDepth, colorType } = info;
  const ch = CHANNELS[colorType];
  if (bitDepth === 8 && colorType === 2) {
    out.set(row, o);
    return;
  }
  // Colour types 2 and 6 have R, G, B first; 0 and 4 have one grey sample first.
  const colour = colorType === 2 || colorType === 6;
  if (bitDepth === 8 && colorType !== 3) {
    for (let x = 0, i = 0; x < width; x++, i += ch) {
      out[o + 3 * x] = row[i];
      out[o + 3 * x + 1] = row[colour ? i + 1 : i];
      out[o + 3 * x + 2] = row[colour ? i + 2 : i];
    }
    return;
  }
  if (bitDepth === 16) {
    const s = (i: number) => Math.round(((row[2 * i] << 8) | row[2 * i + 1]) / 257);
    for (let x = 0, i = 0; x < width; x++, i += ch) {
      const first = s(i);
      out[o + 3 * x] = first;
      out[o + 3 * x + 1] = colour ? s(i + 1) : first;
      out[o + 3 * x + 2] = colour ? s(i + 2) : first;
    }
    return;
  }
  // One channel: palette indices (1-8 bits) or grey below 8 bits, packed from the high bit.
  const max = (1 << bitDepth) - 1;
  for (let x = 0; x < width; x++) {
    const bit = x * bitDepth;
    const v = (row[bit >> 3] >> (8 - bitDepth - (bit & 7))) & max;
    if (colorType === 3) {
      if (3 * v + 2 >= palette!.length) throw new PngError(file, `pixel (${x}, ${y}) uses palette entry ${v} of ${palette!.length / 3}`);
      out[o + 3 * x] = palette![3 * v];
      out[o + 3 * x + 1] = palette![3 * v + 1];
      out[o + 3 * x + 2] = palette![3 * v + 2];
    } else {
      const g = Math.round((v * 255) / max);
      out[o + 3 * x] = out[o + 3 * x + 1] = out[o + 3 * x + 2] = g;
    }
  }
}

/** Decode PNG bytes to 8-bit RGB (`file` names the source in errors). */
export function decodePng(bytes: Uint8Array, file = '<png>', options: PngReadOptions = {}): RgbImage & { info: PngInfo } {
  const { info, palette, idat } = readChunks(bytes, file, options.limits ?? DEFAULT_LIMITS);
  const { width, height, colorType, bitDepth } = info;
  const bitsPerPixel = CHANNELS[colorType] * bitDepth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  // the filtered rows IHDR implies: the inflate may not give more
  const expected = height * (stride + 1);
  let raw: Uint8Array;
  try {
    raw = inflateZlib(idat.length === 1 ? idat[0] : concat(idat), expected);
  } catch (e) {
    if (e instanceof InflateLimitError) throw new PngError(file, `image data ${e.message} by IHDR's ${width}x${height} (corrupt file)`);
    throw new PngError(file, `image data does not inflate (${(e as Error).message})`);
  }
  if (raw.length < height * (stride + 1)) {
    throw new PngError(file, `image data has ${raw.length} bytes; a ${width}x${height} image needs ${height * (stride + 1)}`);
  }
  const out = new Uint8Array(width * height * 3);
  let prev: Uint8Array = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const type = raw[y * (stride + 1)];
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    if (!unfilterRow(type, row, prev, bpp)) throw new PngError(file, `row ${y} has invalid filter type ${type}`);
    prev = row;
    rowToRgb(row, y, info, palette, out, y * width * 3, file);
  }
  return { width, height, data: out, info };
}

export async function readPng(path: string, fs: FileSystem = fileSystem(), options: PngReadOptions = {}): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readBytes(path, fs);
  } catch (e) {
    throw asFileError(e, PngError);
  }
  return decodePng(bytes, path, options);
}

/** Bytes of the signature and the IHDR chunk that must follow it. */
const HEAD_BYTES = 8 + 12 + 13;

/**
 * Read only a PNG's signature and IHDR (33 bytes) and check them, the size against the limits
 * included: what a command checks of an image input before it loads any model.
 */
export async function probePng(path: string, options: PngReadOptions = {}, fs: FileSystem = fileSystem()): Promise<PngInfo> {
  let head: Uint8Array;
  try {
    const f = await fs.open(path);
    try {
      head = new Uint8Array(HEAD_BYTES);
      head = head.subarray(0, await f.read(0, head));
    } finally {
      await f.close();
    }
  } catch (e) {
    throw asFileError(e, PngError);
  }
  if (head.length < 8 || !PNG_SIGNATURE.every((b, i) => head[i] === b)) throw new PngError(path, 'not a PNG file (bad signature)');
  if (head.length < HEAD_BYTES) throw new PngError(path, 'truncated before the end of its IHDR chunk');
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const type = String.fromCharCode(...head.subarray(12, 16));
  if (type !== 'IHDR' || view.getUint32(8) !== 13) throw new PngError(path, `the first chunk is ${JSON.stringify(type)}; a PNG starts with a 13-byte IHDR`);
  if (crc32(head.subarray(12, 29)) !== view.getUint32(29)) throw new PngError(path, 'chunk IHDR at byte 8 has a bad CRC');
  return checkedIhdr(head.subarray(16, 29), path, options.limits ?? DEFAULT_LIMITS);
}

/** Write a PNG atomically (complete at `path`, or not at all). */
export async function writePng(path: string, img: RgbImage, options: PngEncodeOptions = {}, fs: FileSystem = fileSystem()): Promise<void> {
  await writeFileAtomic(path, encodePng(img, options), fs);
}
