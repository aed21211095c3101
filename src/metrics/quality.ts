// Reconstruction quality metrics on RGB clips in [-1, 1] laid out [3, T, H, W], exactly as
// weights/samples/expected.json defines them (and as the tiny tokenizers' READMEs report):
// - psnr = 10 log10(4 / MSE) over all values (peak-to-peak 2), the reconstruction clamped to
//   [-1, 1] first, accumulated in float64;
// - ssim = mean over frames of the mean SSIM map on luma Y = 0.299 R + 0.587 G + 0.114 B of
//   (v + 1) / 2 (reconstruction clamped first), 11x11 Gaussian window with sigma 1.5 normalised
//   to sum 1, 'valid' filtering ((H-10) x (W-10) map), C1 = 0.01^2, C2 = 0.03^2 (data range 1),
//   biased (window-weighted) variances.

import { UserError } from '../engine/errors.js';
import { requireFiniteValues } from '../engine/finite.js';

const clamp1 = (x: number) => Math.min(1, Math.max(-1, x));

function checkPair(what: string, rec: ArrayLike<number>, ref: ArrayLike<number>): void {
  if (rec.length !== ref.length) {
    throw new RangeError(`${what}: reconstruction has ${rec.length} values, reference ${ref.length}; expected the same shape`);
  }
  if (rec.length === 0) throw new RangeError(`${what}: empty input`);
  // a NaN would come out as a NaN score (clamping keeps NaN), which reads like a measurement
  requireFiniteValues(rec, what, 'the reconstruction');
  requireFiniteValues(ref, what, 'the reference');
}

/** Mean squared error after clamping `rec` to [-1, 1] (float64). */
export function mse(rec: ArrayLike<number>, ref: ArrayLike<number>): number {
  checkPair('mse', rec, ref);
  let s = 0;
  for (let i = 0; i < rec.length; i++) {
    const d = clamp1(rec[i]) - ref[i];
    s += d * d;
  }
  return s / rec.length;
}

/** PSNR in dB for values in [-1, 1]: 10 log10(4 / MSE); Infinity when identical. */
export function psnr(rec: ArrayLike<number>, ref: ArrayLike<number>): number {
  return 10 * Math.log10(4 / mse(rec, ref));
}

export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
const C1 = 0.01 ** 2;
const C2 = 0.03 ** 2;

/** The normalised 1-D Gaussian; the 2-D window is its outer product (which also sums to 1). */
export function gaussianKernel(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float64Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let s = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    s += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= s;
  return k;
}

/** Accept [3, T, H, W] or [1, 3, T, H, W]. */
function dimsOf(shape: readonly number[], n: number): [number, number, number] {
  const s = shape.length === 5 && shape[0] === 1 ? shape.slice(1) : shape;
  if (s.length !== 4 || s[0] !== 3) {
    throw new RangeError(`ssim: shape [${shape.join(', ')}] is not [3, T, H, W] (or [1, 3, T, H, W])`);
  }
  const [, T, H, W] = s;
  if (3 * T * H * W !== n) throw new RangeError(`ssim: shape [${shape.join(', ')}] does not hold ${n} values`);
  checkMetricFrameSize('ssim', W, H);
  return [T, H, W];
}

/** Frames smaller than the SSIM window cannot be measured. */
export class MetricFrameSizeError extends UserError {}

/**
 * Refuse frames smaller than the SSIM window (11x11), naming `what` (a file, or 'ssim'): what a
 * command that prints PSNR / SSIM checks before it encodes anything.
 */
export function checkMetricFrameSize(what: string, width: number, height: number): void {
  if (width < SSIM_WINDOW || height < SSIM_WINDOW) {
    throw new MetricFrameSizeError(`${what}: is ${width}x${height} (W x H); PSNR/SSIM need frames of at least ${SSIM_WINDOW}x${SSIM_WINDOW}`);
  }
}

/** BT.601 luma of (v + 1) / 2 for frame t, float64; clamps first when `clampIt`. */
function luma(x: ArrayLike<number>, T: number, H: number, W: number, t: number, clampIt: boolean): Float64Array {
  const hw = H * W;
  const out = new Float64Array(hw);
  const r0 = t * hw;
  const g0 = (T + t) * hw;
  const b0 = (2 * T + t) * hw;
  for (let p = 0; p < hw; p++) {
    let r = x[r0 + p];
    let g = x[g0 + p];
    let b = x[b0 + p];
    if (clampIt) {
      r = clamp1(r);
      g = clamp1(g);
      b = clamp1(b);
    }
    out[p] = 0.299 * ((r + 1) / 2) + 0.587 * ((g + 1) / 2) + 0.114 * ((b + 1) / 2);
  }
  return out;
}

/** Separable 'valid' filtering of an H x W image with the 1-D kernel k. */
function filterValid(img: Float64Array, H: number, W: number, k: Float64Array, tmp: Float64Array, out: Float64Array): void {
  const n = k.length;
  const OW = W - n + 1;
  const OH = H - n + 1;
  // rows: H x OW
  for (let y = 0; y < H; y++) {
    const row = y * W;
    for (let x = 0; x < OW; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i] * img[row + x + i];
      tmp[y * OW + x] = s;
    }
  }
  // columns: OH x OW
  for (let y = 0; y < OH; y++) {
    for (let x = 0; x < OW; x++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += k[i] * tmp[(y + i) * OW + x];
      out[y * OW + x] = s;
    }
  }
}

/** Mean SSIM of each frame (see the file comment). */
export function ssimPerFrame(rec: ArrayLike<number>, ref: ArrayLike<number>, shape: readonly number[]): number[] {
  checkPair('ssim', rec, ref);
  const [T, H, W] = dimsOf(shape, rec.length);
  const k = gaussianKernel();
  const OH = H - SSIM_WINDOW + 1;
  const OW = W - SSIM_WINDOW + 1;
  const m = OH * OW;
  const tmp = new Float64Array(H * OW);
  const mx = new Float64Array(m);
  const my = new Float64Array(m);
  const sxx = new Float64Array(m);
  const syy = new Float64Array(m);
  const sxy = new Float64Array(m);
  const prod = new Float64Array(H * W);
  const result: number[] = [];
  for (let t = 0; t < T; t++) {
    const x = luma(rec, T, H, W, t, true);
    const y = luma(ref, T, H, W, t, false);
    filterValid(x, H, W, k, tmp, mx);
    filterValid(y, H, W, k, tmp, my);
    for (let p = 0; p < H * W; p++) prod[p] = x[p] * x[p];
    filterValid(prod, H, W, k, tmp, sxx);
    for (let p = 0; p < H * W; p++) prod[p] = y[p] * y[p];
    filterValid(prod, H, W, k, tmp, syy);
    for (let p = 0; p < H * W; p++) prod[p] = x[p] * y[p];
    filterValid(prod, H, W, k, tmp, sxy);
    let s = 0;
    for (let p = 0; p < m; p++) {
      const ux = mx[p];
      const uy = my[p];
      const vx = sxx[p] - ux * ux;
      const vy = syy[p] - uy * uy;
      const cxy = sxy[p] - ux * uy;
      s += ((2 * ux * uy + C1) * (2 * cxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
    }
    result.push(s / m);
  }
  return result;
}

/** SSIM: the mean over frames of each frame's mean SSIM map. */
export function ssim(rec: ArrayLike<number>, ref: ArrayLike<number>, shape: readonly number[]): number {
  const per = ssimPerFrame(rec, ref, shape);
  return per.reduce((a, b) => a + b, 0) / per.length;
}

export interface Quality {
  psnr: number;
  ssim: number;
}

/** Both metrics of a reconstruction against its reference. */
export function quality(rec: ArrayLike<number>, ref: ArrayLike<number>, shape: readonly number[]): Quality {
  return { psnr: psnr(rec, ref), ssim: ssim(rec, ref, shape) };
}
