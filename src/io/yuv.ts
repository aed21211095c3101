// BT.601 colour conversion between 8-bit Y'CbCr planes (4:2:0 or 4:4:4, full or limited range)
// and RGB float frames in [-1, 1]: the pixel side of the Y4M reader and writer.
//
// - matrix: always BT.601 (Kr = 0.299, Kb = 0.114), the only one Y4M files written by ffmpeg
//   imply (the format has no matrix tag).
// - range: full is JFIF (Y 0..255, Cb/Cr 128 +- 127.5); limited is Y 16..235, Cb/Cr 16..240.
// - RGB <-> float: v = R / 127.5 - 1 with R in 0..255, computed in float64 and stored as
//   float32; decoding does NOT round RGB to integers (that would add a second quantisation step)
//   but clamps R, G, B to 0..255. Encoding clamps v to [-1, 1], R = (v + 1) / 2 * 255, applies
//   the JFIF matrix in float64 and rounds each Y/Cb/Cr value to the nearest integer (halves up),
//   clamped to 0..255. With these conventions writing a sample tensor reproduces the sample
//   .y4m byte for byte.
// - 4:2:0: chroma is downsampled by averaging each 2x2 block of (unrounded) chroma values, which
//   places the chroma sample at the block centre (C420jpeg siting). On reading, chroma is
//   upsampled by nearest neighbour by default (each chroma sample covers its 2x2 block, the exact
//   inverse of the averaging for blockwise-constant chroma) or bilinearly with centre siting.
//   W and H must be even.

export type Chroma = '420' | '444';
export type ColorRange = 'full' | 'limited';
export type ChromaUpsample = 'nearest' | 'bilinear';

/** The layout of one frame's planes (a Y4mHeader is one). */
export interface YuvFormat {
  width: number;
  height: number;
  chroma: Chroma;
  range: ColorRange;
}

/** Bytes of one frame's Y, Cb and Cr planes. */
export function frameBytesOf(width: number, height: number, chroma: Chroma): number {
  return chroma === '444' ? 3 * width * height : width * height + 2 * (width / 2) * (height / 2);
}

// The JFIF (BT.601 full range) matrix on 0..255 RGB, with its published constants, evaluated in
// the same order as the generator of the sample clips (so that writing their tensors reproduces
// the files byte for byte). Limited range rescales: Y = 16 + Yf * 219/255, C = 128 + (Cf - 128) * 224/255.
const toY = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;
const toCb = (r: number, g: number, b: number) => 128 - 0.168736 * r - 0.331264 * g + 0.5 * b;
const toCr = (r: number, g: number, b: number) => 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;

const clamp255 = (x: number) => Math.min(255, Math.max(0, x));
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
  { width, height, chroma, range }: YuvFormat,
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
  { width, height, chroma, range }: YuvFormat,
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

