// Host arithmetic of the per-frame image filters (OpenCV's uint8 bilateral filter) shared by the
// CPU backend's primitive and the models that emulate upstream stage by stage: the support and
// weight tables (also uploaded by the WebGPU backend) and the reference loop.
import { borderCoord } from './backend.js';

/** cvRound / torch.round: round half to even. */
export function rintEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Pixels per vector block of OpenCV's uint8 bilateral (its AVX2 build, which the x86 wheels
 * dispatch to: 32 bytes per channel). The vector body fuses each multiply-add (one rounding); the
 * pixels of a row past the last whole block take the scalar loop, which rounds the product first.
 */
export const BILATERAL_LANES = 32;

/** The circular support of cv2.bilateralFilter and its float32 weight tables. */
export interface BilateralTables {
  radius: number;
  /** support offsets, row by row from (-r, ·): dy[k], dx[k] */
  dy: Int32Array;
  dx: Int32Array;
  /** exp(-(dy^2 + dx^2) / (2 sigmaSpace^2)) per offset */
  space: Float32Array;
  /** exp(-c^2 / (2 sigmaColor^2)) for the summed 3-channel distance c in [0, 765] */
  color: Float32Array;
}

export function bilateralTables(d: number, sigmaColor: number, sigmaSpace: number): BilateralTables {
  if (sigmaColor <= 0) sigmaColor = 1;
  if (sigmaSpace <= 0) sigmaSpace = 1;
  const radius = Math.max(d <= 0 ? rintEven(sigmaSpace * 1.5) : Math.trunc(d / 2), 1);
  const spaceCoeff = -0.5 / (sigmaSpace * sigmaSpace);
  const dy: number[] = [];
  const dx: number[] = [];
  const w: number[] = [];
  for (let i = -radius; i <= radius; i++) {
    for (let j = -radius; j <= radius; j++) {
      const r = Math.sqrt(i * i + j * j);
      if (r > radius) continue;
      dy.push(i);
      dx.push(j);
      w.push(Math.exp(r * r * spaceCoeff));
    }
  }
  const colorCoeff = -0.5 / (sigmaColor * sigmaColor);
  const color = new Float32Array(3 * 256);
  for (let i = 0; i < color.length; i++) color[i] = Math.exp(i * i * colorCoeff);
  return { radius, dy: Int32Array.from(dy), dx: Int32Array.from(dx), space: Float32Array.from(w), color };
}

const f32 = Math.fround;

/**
 * cv2.bilateralFilter of T RGB frames stored as planes, [3, T, H, W] (values 0..255), border
 * reflect-101; returns the same layout with the uint8 results. Float32 sums over the support in
 * order, times the float32 reciprocal of the weight sum, rounded half to even.
 */
export function bilateralPlanes(x: ArrayLike<number>, T: number, H: number, W: number, tab: BilateralTables): Float32Array {
  const plane = H * W;
  const cs = T * plane;
  const out = new Float32Array(3 * cs);
  const { dy, dx, space, color } = tab;
  const maxk = space.length;
  const vecEnd = Math.floor(W / BILATERAL_LANES) * BILATERAL_LANES;
  const xo = new Int32Array(maxk);
  for (let t = 0; t < T; t++) {
    for (let y = 0; y < H; y++) {
      for (let k = 0; k < maxk; k++) xo[k] = borderCoord(y + dy[k], H, 'reflect') * W;
      for (let xx = 0; xx < W; xx++) {
        const p0 = t * plane + y * W + xx;
        const r0 = x[p0];
        const g0 = x[cs + p0];
        const b0 = x[2 * cs + p0];
        const fused = xx < vecEnd;
        let ws = 0;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        for (let k = 0; k < maxk; k++) {
          const o = t * plane + xo[k] + borderCoord(xx + dx[k], W, 'reflect');
          const a = x[o];
          const b = x[cs + o];
          const c = x[2 * cs + o];
          const w = f32(space[k] * color[Math.abs(a - r0) + Math.abs(b - g0) + Math.abs(c - b0)]);
          ws = f32(ws + w);
          if (fused) {
            s0 = f32(a * w + s0);
            s1 = f32(b * w + s1);
            s2 = f32(c * w + s2);
          } else {
            s0 = f32(s0 + f32(a * w));
            s1 = f32(s1 + f32(b * w));
            s2 = f32(s2 + f32(c * w));
          }
        }
        const inv = f32(1 / ws);
        out[p0] = Math.min(Math.max(rintEven(f32(s0 * inv)), 0), 255);
        out[cs + p0] = Math.min(Math.max(rintEven(f32(s1 * inv)), 0), 255);
        out[2 * cs + p0] = Math.min(Math.max(rintEven(f32(s2 * inv)), 0), 255);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ antialiased resampling

/** The taps of one axis: output i reads size[i] inputs from start[i], weights[i * stride + j]. */
export interface ResampleTaps {
  outSize: number;
  start: Int32Array;
  size: Int32Array;
  weights: Float32Array;
  stride: number;
}

// torch's x86 kernels are built for AVX2 with FMA, and the compiler fuses each a * b + c of the
// filter and of the accumulation into one rounding; the fixtures only match with the fused form.
// A product of two float32 values is exact in a double, so rounding the double sum to float32 is
// the fused result (barring a double-rounding tie).
const fma = (a: number, b: number, c: number) => f32(a * b + c);
const A = -0.5;
function cubicAA(x: number): number {
  x = Math.abs(x);
  if (x < 1) return fma(f32(fma(A + 2, x, -(A + 3)) * x), x, 1);
  if (x < 2) return fma(fma(fma(A, x, -5 * A), x, 8 * A), x, -4 * A);
  return 0;
}

/**
 * torch's antialiased bicubic taps (interpolate(mode="bicubic", antialias=True), a = -0.5): the
 * kernel stretched by the scale when shrinking, float32 weights normalised to sum 1.
 */
export function antialiasBicubicTaps(inSize: number, outSize: number): ResampleTaps {
  const scale = f32(inSize / outSize);
  const support = scale >= 1 ? f32(2 * scale) : 2;
  const invscale = scale >= 1 ? f32(1 / scale) : 1;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = f32(scale * (i + 0.5));
    const xmin = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
    const xsize = Math.min(Math.min(Math.trunc(f32(center + support) + 0.5), inSize) - xmin, stride);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = cubicAA(f32((f32(j + xmin - center) + 0.5) * invscale));
      weights[i * stride + j] = w;
      total = f32(total + w);
    }
    if (total !== 0) for (let j = 0; j < xsize; j++) weights[i * stride + j] = f32(weights[i * stride + j] / total);
    start[i] = xmin;
    size[i] = xsize;
  }
  return { outSize, start, size, weights, stride };
}

/**
 * One separable pass over the middle axis of x [outer, inSize, inner] -> [outer, outSize, inner]:
 * a float32 fused multiply-add chain from the first tap. With `toU8` the result is clamped to
 * [0, 255] and rounded half to even.
 */
export function resampleAxis(x: ArrayLike<number>, outer: number, inSize: number, inner: number, taps: ResampleTaps, toU8: boolean): Float32Array {
  const { outSize, start, size, weights, stride } = taps;
  const out = new Float32Array(outer * outSize * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < outSize; i++) {
      const wo = i * stride;
      for (let k = 0; k < inner; k++) {
        const base = (o * inSize + start[i]) * inner + k;
        let t = size[i] > 0 ? f32(x[base] * weights[wo]) : 0;
        for (let j = 1; j < size[i]; j++) t = fma(x[base + j * inner], weights[wo + j], t);
        out[(o * outSize + i) * inner + k] = toU8 ? Math.min(Math.max(rintEven(t), 0), 255) : t;
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ float resizes without antialias

/**
 * Taps over the contiguous clamped range lo..hi: each wanted (index, weight) adds to the weight of
 * its index clamped to the axis, which is how a replicated border reads outside the image.
 */
function foldTaps(inSize: number, outSize: number, stride: number, tapsOf: (i: number) => [first: number, weights: number[]]): ResampleTaps {
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const [first, ws] = tapsOf(i);
    const clampIdx = (j: number) => Math.min(Math.max(j, 0), inSize - 1);
    const lo = clampIdx(first);
    const hi = clampIdx(first + ws.length - 1);
    for (let j = 0; j < ws.length; j++) {
      const k = clampIdx(first + j) - lo;
      weights[i * stride + k] = f32(weights[i * stride + k] + ws[j]);
    }
    start[i] = lo;
    size[i] = hi - lo + 1;
  }
  return { outSize, start, size, weights, stride };
}

/**
 * cv2.resize(INTER_CUBIC) of float images along one axis: half-pixel centres, float32 source
 * position, Keys' cubic with a = -0.75, the last weight 1 minus the others, indices clamped
 * (replicated border), no antialias when shrinking.
 */
export function cv2CubicTaps(inSize: number, outSize: number): ResampleTaps {
  const scale = 1 / (outSize / inSize); // OpenCV inverts the forward factor
  const A = -0.75;
  return foldTaps(inSize, outSize, 4, (i) => {
    const fx0 = f32((i + 0.5) * scale - 0.5);
    const sx = Math.floor(fx0);
    const x = f32(fx0 - sx);
    const c0 = f32(((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A);
    const c1 = f32(((A + 2) * x - (A + 3)) * x * x + 1);
    const c2 = f32(((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1);
    return [sx - 1, [c0, c1, c2, f32(f32(f32(1 - c0) - c1) - c2)]];
  });
}

/**
 * cv2.resize(INTER_LINEAR) of float images along one axis: half-pixel centres, the source clamped
 * to the first pixel below and to the last pixel above (weight 0 on its neighbour).
 */
export function cv2LinearTaps(inSize: number, outSize: number): ResampleTaps {
  const scale = 1 / (outSize / inSize);
  return foldTaps(inSize, outSize, 2, (i) => {
    let fx = f32((i + 0.5) * scale - 0.5);
    let sx = Math.floor(fx);
    fx = f32(fx - sx);
    if (sx < 0) { fx = 0; sx = 0; }
    if (sx >= inSize - 1) { fx = 0; sx = inSize - 1; }
    return [sx, [f32(1 - fx), fx]];
  });
}

/** torch interpolate(mode='bilinear', align_corners=True) along one axis. */
export function alignCornersLinearTaps(inSize: number, outSize: number): ResampleTaps {
  const scale = outSize > 1 ? f32((inSize - 1) / (outSize - 1)) : 0;
  return foldTaps(inSize, outSize, 2, (i) => {
    const src = f32(scale * i);
    const i0 = Math.trunc(src);
    const l1 = f32(src - i0);
    return [i0, [f32(1 - l1), l1]];
  });
}

/**
 * torch interpolate(mode='bicubic', align_corners=False, antialias=False) along one axis: a = -0.75,
 * indices clamped, the source position (dst + 0.5) * srcPerDst - 0.5 not clamped. `srcPerDst` is
 * 1 / scale_factor when the caller gave one (it need not be inSize / outSize), else inSize / outSize.
 */
export function torchCubicTaps(inSize: number, outSize: number, srcPerDst = inSize / outSize): ResampleTaps {
  const A = -0.75;
  const s = f32(srcPerDst);
  const near = (x: number) => f32(((A + 2) * x - (A + 3)) * x * x + 1);
  const far = (x: number) => f32(((A * x - 5 * A) * x + 8 * A) * x - 4 * A);
  return foldTaps(inSize, outSize, 4, (i) => {
    const src = f32(s * (i + 0.5) - 0.5);
    const i0 = Math.floor(src);
    const t = f32(src - i0);
    return [i0 - 1, [far(t + 1), near(t), near(1 - t), far(2 - t)]];
  });
}

// ------------------------------------------------------------------ INTER_AREA (shrinking)

/** OpenCV's area coverage of one axis, grouped by destination: entries first[d] .. first[d + 1]. */
export interface AreaAxis {
  first: Int32Array;
  src: Int32Array;
  alpha: Float32Array;
}

/** How cv2.resize(INTER_AREA) shrinks [sh, sw] to [dh, dw]: whole blocks, or coverage tables. */
export interface AreaTables {
  dh: number;
  dw: number;
  /** both factors integers: block means (ix x iy) */
  block: [number, number] | null;
  x: AreaAxis;
  y: AreaAxis;
}

function areaAxis(ssize: number, dsize: number, scale: number): AreaAxis {
  const first = [0];
  const src: number[] = [];
  const alpha: number[] = [];
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale;
    const fsx2 = fsx1 + scale;
    const cell = Math.min(scale, ssize - fsx1);
    const sx2 = Math.min(Math.floor(fsx2), ssize - 1);
    const sx1 = Math.min(Math.ceil(fsx1), sx2);
    if (sx1 - fsx1 > 1e-3) {
      src.push(sx1 - 1);
      alpha.push((sx1 - fsx1) / cell);
    }
    for (let sx = sx1; sx < sx2; sx++) {
      src.push(sx);
      alpha.push(1 / cell);
    }
    if (fsx2 - sx2 > 1e-3) {
      src.push(sx2);
      alpha.push(Math.min(Math.min(fsx2 - sx2, 1), cell) / cell);
    }
    first.push(src.length);
  }
  return { first: Int32Array.from(first), src: Int32Array.from(src), alpha: Float32Array.from(alpha) };
}

export function areaTables(sh: number, sw: number, dh: number, dw: number): AreaTables {
  if (dw > sw || dh > sh || dw < 1 || dh < 1) throw new Error(`areaTables: ${sw}x${sh} -> ${dw}x${dh} is not a shrink`);
  const scaleX = sw / dw;
  const scaleY = sh / dh;
  const block: [number, number] | null = Number.isInteger(scaleX) && Number.isInteger(scaleY) ? [scaleX, scaleY] : null;
  return { dh, dw, block, x: areaAxis(sw, dw, scaleX), y: areaAxis(sh, dh, scaleY) };
}

/**
 * INTER_AREA of `count` uint8 planes [sh, sw] -> [dh, dw]. Whole blocks: 2x2 is
 * (a + b + c + d + 2) >> 2, other sizes the int sum times the float32 1 / area, rounded half to
 * even. Otherwise OpenCV's float32 order: each source row's covered pixels summed with their
 * weights, the rows then summed with theirs.
 */
export function areaPlanes(x: ArrayLike<number>, count: number, sh: number, sw: number, tab: AreaTables): Float32Array {
  const { dh, dw } = tab;
  const out = new Float32Array(count * dh * dw);
  for (let p = 0; p < count; p++) {
    const base = p * sh * sw;
    for (let y = 0; y < dh; y++) {
      for (let xx = 0; xx < dw; xx++) {
        const o = (p * dh + y) * dw + xx;
        if (tab.block) {
          const [ix, iy] = tab.block;
          let sum = 0;
          for (let j = 0; j < iy; j++) for (let i = 0; i < ix; i++) sum += x[base + (y * iy + j) * sw + xx * ix + i];
          out[o] = ix * iy === 4 ? (sum + 2) >> 2 : Math.min(Math.max(rintEven(f32(sum * f32(1 / (ix * iy)))), 0), 255);
          continue;
        }
        let sum = 0;
        for (let k = tab.y.first[y]; k < tab.y.first[y + 1]; k++) {
          const row = base + tab.y.src[k] * sw;
          let buf = 0;
          for (let t = tab.x.first[xx]; t < tab.x.first[xx + 1]; t++) buf = f32(buf + f32(x[row + tab.x.src[t]] * tab.x.alpha[t]));
          const v = f32(tab.y.alpha[k] * buf);
          sum = k === tab.y.first[y] ? v : f32(sum + v);
        }
        out[o] = Math.min(Math.max(rintEven(sum), 0), 255);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ cv2.resize of uint8 (every size pair)

export type ResizeMode = 'area' | 'linear' | 'nearest';

/** OpenCV's fixed-point coefficient scale of the uint8 two-tap resize (INTER_RESIZE_COEF_BITS = 11). */
const COEF_ONE = 2048;

/**
 * The two-tap form of one axis: output d reads source indices i0[d], i1[d] (already clamped to
 * the axis) with weights w0[d], w1[d] in units of 1 / 2048.
 */
export interface TwoTapAxis {
  i0: Int32Array;
  i1: Int32Array;
  w0: Int32Array;
  w1: Int32Array;
}

/**
 * The taps of cv2.resize's uint8 linear path along one axis of `src` -> `dst` pixels. 'linear':
 * the pixel-centre mapping; 'area': the coefficients INTER_AREA uses when an axis does not shrink
 * on both sides (a step at each source boundary instead of a ramp). The horizontal axis (`isX`)
 * has its weights clamped at the image border; the vertical one keeps them and clamps the rows.
 */
export function twoTapAxis(src: number, dst: number, style: 'linear' | 'area', isX: boolean): TwoTapAxis {
  const inv = dst / src;
  const scale = 1 / inv;
  const out: TwoTapAxis = { i0: new Int32Array(dst), i1: new Int32Array(dst), w0: new Int32Array(dst), w1: new Int32Array(dst) };
  for (let d = 0; d < dst; d++) {
    let s: number;
    let f: number;
    if (style === 'linear') {
      f = f32((d + 0.5) * scale - 0.5);
      s = Math.floor(f);
      f = f32(f - s);
    } else {
      s = Math.floor(d * scale);
      f = f32(d + 1 - (s + 1) * inv);
      f = f <= 0 ? 0 : f32(f - Math.floor(f));
    }
    if (isX && s < 0) {
      s = 0;
      f = 0;
    }
    if (isX && s >= src - 1) {
      s = src - 1;
      f = 0;
    }
    out.i0[d] = Math.min(Math.max(s, 0), src - 1);
    out.i1[d] = Math.min(Math.max(s + 1, 0), src - 1);
    // cbuf * INTER_RESIZE_COEF_SCALE in float32 (exact: a power of two), then cvRound
    out.w0[d] = rintEven(f32(1 - f) * COEF_ONE);
    out.w1[d] = rintEven(f * COEF_ONE);
  }
  return out;
}

/**
 * INTER_NEAREST's source index min(floor(d * (1 / (dst / src))), src - 1) (float64, not
 * INTER_NEAREST_EXACT), as a two-tap axis whose second tap weighs nothing: the fixed-point
 * formula of `twoTapPlanes` returns such a pixel unchanged (v * 2048 >> 4 = 128 v, times 2048
 * >> 16 = 4 v, + 2 >> 2 = v).
 */
export function nearestAxis(src: number, dst: number): TwoTapAxis {
  const ifx = 1 / (dst / src);
  const idx = Int32Array.from({ length: dst }, (_, d) => Math.min(Math.floor(d * ifx), src - 1));
  return { i0: idx, i1: idx.slice(), w0: new Int32Array(dst).fill(COEF_ONE), w1: new Int32Array(dst) };
}

/** How cv2.resize maps [sh, sw] to [dh, dw] in a mode: the area-shrink tables or two taps per axis. */
export type ResizePlan = { kind: 'area'; tables: AreaTables } | { kind: 'twoTap'; x: TwoTapAxis; y: TwoTapAxis };

/**
 * cv2.resize's choice for uint8: the same size is a copy (identity taps); INTER_AREA shrinking
 * on both axes takes the area tables; INTER_AREA otherwise and INTER_LINEAR take the fixed-point
 * linear path (area-style or pixel-centre coefficients); INTER_NEAREST picks pixels. OpenCV sends
 * INTER_LINEAR halving both axes to its 2x2 area block, (a + b + c + d + 2) >> 2: the linear
 * taps there are 1024 / 1024 on both axes and give that same value, so no branch is needed.
 */
export function resizeU8Plan(sh: number, sw: number, dh: number, dw: number, mode: ResizeMode): ResizePlan {
  if (sh === dh && sw === dw) return { kind: 'twoTap', x: nearestAxis(sw, dw), y: nearestAxis(sh, dh) };
  if (mode === 'nearest') return { kind: 'twoTap', x: nearestAxis(sw, dw), y: nearestAxis(sh, dh) };
  if (mode === 'area' && dh <= sh && dw <= sw) return { kind: 'area', tables: areaTables(sh, sw, dh, dw) };
  const style = mode === 'area' ? 'area' : 'linear';
  return { kind: 'twoTap', x: twoTapAxis(sw, dw, style, true), y: twoTapAxis(sh, dh, style, false) };
}

const sat16 = (v: number) => Math.min(Math.max(v, -32768), 32767);
/** the high half of an int16 x int16 product (v_mul_hi) */
const mulHi16 = (a: number, b: number) => (a * b) >> 16;

/**
 * The fixed-point two-tap resize of `count` uint8 planes [sh, sw] -> [dh, dw]: the horizontal
 * pass in exact integers (v * w0 + v' * w1), then the vertical pass as OpenCV's vector body
 * computes it for every value of a row, ((h0 >> 4) * b0 >> 16) + ((h1 >> 4) * b1 >> 16), + 2 >> 2,
 * saturated to uint8. (Its scalar tail, (h0 b0 + h1 b1 + 2^21) >> 22, is never the one the
 * reference builds take: checked on OpenCV 4.6 against rows of every width.)
 */
export function twoTapPlanes(x: ArrayLike<number>, count: number, sh: number, sw: number, ax: TwoTapAxis, ay: TwoTapAxis): Float32Array {
  const dw = ax.i0.length;
  const dh = ay.i0.length;
  const out = new Float32Array(count * dh * dw);
  const row0 = new Int32Array(dw);
  const row1 = new Int32Array(dw);
  const hpass = (row: Int32Array, base: number) => {
    for (let d = 0; d < dw; d++) row[d] = x[base + ax.i0[d]] * ax.w0[d] + x[base + ax.i1[d]] * ax.w1[d];
  };
  for (let p = 0; p < count; p++) {
    for (let y = 0; y < dh; y++) {
      hpass(row0, (p * sh + ay.i0[y]) * sw);
      hpass(row1, (p * sh + ay.i1[y]) * sw);
      const b0 = ay.w0[y];
      const b1 = ay.w1[y];
      const o = (p * dh + y) * dw;
      for (let d = 0; d < dw; d++) {
        const v = (mulHi16(sat16(row0[d] >> 4), b0) + mulHi16(sat16(row1[d] >> 4), b1) + 2) >> 2;
        out[o + d] = Math.min(Math.max(v, 0), 255);
      }
    }
  }
  return out;
}

/** cv2.resize(plane, (dw, dh), interpolation=mode) of `count` uint8 planes [sh, sw]: the host reference. */
export function resizeU8Planes(x: ArrayLike<number>, count: number, sh: number, sw: number, dh: number, dw: number, mode: ResizeMode): Float32Array {
  const plan = resizeU8Plan(sh, sw, dh, dw, mode);
  return plan.kind === 'area' ? areaPlanes(x, count, sh, sw, plan.tables) : twoTapPlanes(x, count, sh, sw, plan.x, plan.y);
}

/** cv2.resize of one interleaved uint8 image [sh, sw, cn] (each channel resized on its own, as OpenCV's arithmetic is per value). */
export function resizeU8Interleaved(src: Uint8Array, sw: number, sh: number, dw: number, dh: number, cn: number, mode: ResizeMode): Uint8Array {
  const n = sw * sh;
  const planes = new Uint8Array(cn * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < cn; c++) planes[c * n + p] = src[p * cn + c];
  const res = resizeU8Planes(planes, cn, sh, sw, dh, dw, mode);
  const m = dw * dh;
  const out = new Uint8Array(cn * m);
  for (let p = 0; p < m; p++) for (let c = 0; c < cn; c++) out[p * cn + c] = res[c * m + p];
  return out;
}
