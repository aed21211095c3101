// Pillow's `ImagingResample` (Resample.c) for 8-bit images, as Qwen2VLImageProcessor runs it:
// separable, horizontal pass first then vertical, each pass only when that size changes; per
// output pixel the filter (bicubic a = -0.5, support 2; also box, bilinear, hamming, lanczos) is
// evaluated at (x + xmin - center + 0.5) / filterscale with its support scaled by the downscale
// factor, normalised to sum 1, converted to 22-bit fixed point (round half away from zero),
// accumulated in integers from 2^21 and shifted/clipped to 0..255 after each pass.
import { PreprocessError } from './config.js';

/** PIL.Image.Resampling values (as `resample` in preprocessor_config.json). */
export const PIL_RESAMPLE = { NEAREST: 0, LANCZOS: 1, BILINEAR: 2, BICUBIC: 3, BOX: 4, HAMMING: 5 } as const;

interface Filter {
  fn: (x: number) => number;
  support: number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const y = x * Math.PI;
  return Math.sin(y) / y;
}

const FILTERS: Record<number, Filter> = {
  [PIL_RESAMPLE.BOX]: { fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0), support: 0.5 },
  [PIL_RESAMPLE.BILINEAR]: {
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
    support: 1,
  },
  [PIL_RESAMPLE.HAMMING]: {
    fn: (x) => {
      let a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      a *= Math.PI;
      return (Math.sin(a) / a) * (0.54 + 0.46 * Math.cos(a));
    },
    support: 1,
  },
  [PIL_RESAMPLE.BICUBIC]: {
    // Keys' cubic convolution with a = -0.5, in Pillow's evaluation order
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
    support: 2,
  },
  [PIL_RESAMPLE.LANCZOS]: { fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0), support: 3 },
};

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  ksize: number;
  /** per output index: first input index and count */
  bounds: Int32Array;
  /** fixed-point weights, outSize x ksize */
  kk: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box [in0, in1) of an axis. */
function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: Filter): Coeffs {
  const scale = (in1 - in0) / outSize;
  const filterscale = Math.max(1, scale);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let ww = 0;
    // C casts truncate toward zero
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    k.fill(0);
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0) k[x] /= ww;
    for (let x = 0; x < ksize; x++) {
      const v = k[x] * (1 << PRECISION_BITS);
      kk[xx * ksize + x] = Math.trunc(k[x] < 0 ? -0.5 + v : 0.5 + v);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

const HALF = 1 << (PRECISION_BITS - 1);
const SHIFT = 2 ** PRECISION_BITS;

function clip8(ss: number): number {
  const v = Math.floor(ss / SHIFT);
  return Math.min(255, Math.max(0, v));
}

/**
 * Resize a uint8 HWC image as Pillow's `Image.resize((outW, outH), resample)` does (default
 * bicubic). Equal sizes return a copy. `channels` values per pixel, each resampled independently.
 */
export function resizeU8(
  src: Uint8Array, height: number, width: number, channels: number, outH: number, outW: number,
  resample: number = PIL_RESAMPLE.BICUBIC,
): Uint8Array {
  if (src.length !== height * width * channels) {
    throw new PreprocessError(`resize: ${src.length} values for ${height}x${width}x${channels}`);
  }
  if (!(outH > 0 && outW > 0 && Number.isInteger(outH) && Number.isInteger(outW))) {
    throw new PreprocessError(`resize: bad output size ${outH}x${outW}`);
  }
  if (outH === height && outW === width) return src.slice();
  if (resample === PIL_RESAMPLE.NEAREST) return resizeNearest(src, height, width, channels, outH, outW);
  const filter = FILTERS[resample];
  if (!filter) throw new PreprocessError(`resize: resample ${resample} is not a Pillow filter`);
  const needH = outW !== width;
  const needV = outH !== height;
  const horiz = precomputeCoeffs(width, 0, width, outW, filter);
  const vert = precomputeCoeffs(height, 0, height, outH, filter);
  let img = src;
  let h = height;
  let w = width;
  let rowOffset = 0;
  const vb = vert.bounds.slice();
  if (needH) {
    // only the source rows the vertical pass will read
    const first = vb[0];
    const last = vb[2 * outH - 2] + vb[2 * outH - 1];
    for (let i = 0; i < outH; i++) vb[2 * i] -= first;
    rowOffset = first;
    const rows = last - first;
    const out = new Uint8Array(rows * outW * channels);
    const { ksize, bounds, kk } = horiz;
    for (let y = 0; y < rows; y++) {
      const rowIn = (y + rowOffset) * w * channels;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[2 * xx];
        const xmax = bounds[2 * xx + 1];
        const kb = xx * ksize;
        for (let c = 0; c < channels; c++) {
          let ss = HALF;
          for (let x = 0; x < xmax; x++) ss += img[rowIn + (x + xmin) * channels + c] * kk[kb + x];
          out[(y * outW + xx) * channels + c] = clip8(ss);
        }
      }
    }
    img = out;
    h = rows;
    w = outW;
  }
  if (needV) {
    const out = new Uint8Array(outH * w * channels);
    const { ksize, kk } = vert;
    for (let yy = 0; yy < outH; yy++) {
      const ymin = vb[2 * yy];
      const ymax = vb[2 * yy + 1];
      const kb = yy * ksize;
      for (let xx = 0; xx < w; xx++) {
        for (let c = 0; c < channels; c++) {
          let ss = HALF;
          for (let y = 0; y < ymax; y++) ss += img[((y + ymin) * w + xx) * channels + c] * kk[kb + y];
          out[(yy * w + xx) * channels + c] = clip8(ss);
        }
      }
    }
    img = out;
    h = outH;
  }
  if (h !== outH || w !== outW) throw new Error('resize: internal size mismatch');
  return img;
}

/**
 * Pillow's nearest-neighbour resize (ImagingScaleAffine): the source coordinate starts at
 * scale / 2 and accumulates `+= scale` in float64 per output pixel; index = trunc(coordinate).
 */
function resizeNearest(src: Uint8Array, height: number, width: number, channels: number, outH: number, outW: number): Uint8Array {
  const table = (inSize: number, outSize: number) => {
    const a = inSize / outSize;
    const t = new Int32Array(outSize);
    let o = a * 0.5;
    for (let i = 0; i < outSize; i++) {
      t[i] = o < 0 ? -1 : Math.trunc(o);
      o += a;
    }
    return t;
  };
  const ys = table(height, outH);
  const xs = table(width, outW);
  const out = new Uint8Array(outH * outW * channels); // out-of-range positions stay 0 (Pillow's fill)
  for (let y = 0; y < outH; y++) {
    const iy = ys[y];
    if (iy < 0 || iy >= height) continue;
    for (let x = 0; x < outW; x++) {
      const ix = xs[x];
      if (ix < 0 || ix >= width) continue;
      for (let c = 0; c < channels; c++) out[(y * outW + x) * channels + c] = src[(iy * width + ix) * channels + c];
    }
  }
  return out;
}
