// OpenCV's Canny (cv2.Canny defaults: aperture 3, L1 gradient) on planar frames, in integers, as
// spec/control_maps.md "OpenCV Canny, exactly" states it: the oracle of the `canny` op, which the
// WGSL kernels (webgpu/kernels/canny.wgsl.ts) must match bit for bit.

import { type CannyThresholds, cannyThresholds } from '../backend.js';

/** round(tan(22.5°) * 2^15): OpenCV's fixed-point slope for the direction test */
const TG22 = 13573;

/**
 * Sobel dx, dy of the channel with the largest L1 magnitude at each pixel (the lowest channel on
 * a tie), and that magnitude. `frame` is planar: channel c's pixel (y, x) at
 * `offset + c * channelStride + y * W + x`. Borders replicate the edge pixel.
 */
export function cannyGradients(frame: ArrayLike<number>, C: number, H: number, W: number, offset = 0, channelStride = H * W) {
  const n = H * W;
  const dxs = new Int32Array(n);
  const dys = new Int32Array(n);
  const mag = new Int32Array(n);
  for (let y = 0; y < H; y++) {
    const ym = Math.max(y - 1, 0) * W;
    const yc = y * W;
    const yp = Math.min(y + 1, H - 1) * W;
    for (let x = 0; x < W; x++) {
      const xm = Math.max(x - 1, 0);
      const xp = Math.min(x + 1, W - 1);
      let best = -1;
      let bdx = 0;
      let bdy = 0;
      for (let c = 0; c < C; c++) {
        const o = offset + c * channelStride;
        const a = frame[o + ym + xm];
        const b = frame[o + ym + x];
        const d = frame[o + ym + xp];
        const l = frame[o + yc + xm];
        const r = frame[o + yc + xp];
        const e = frame[o + yp + xm];
        const f = frame[o + yp + x];
        const g = frame[o + yp + xp];
        const dx = d - a + 2 * (r - l) + (g - e);
        const dy = e - a + 2 * (f - b) + (g - d);
        const m = Math.abs(dx) + Math.abs(dy);
        if (m > best) {
          best = m;
          bdx = dx;
          bdy = dy;
        }
      }
      dxs[yc + x] = bdx;
      dys[yc + x] = bdy;
      mag[yc + x] = best;
    }
  }
  return { dx: dxs, dy: dys, mag };
}

/** 0: not a candidate, 1: weak (kept, m <= high), 2: strong (kept, m > high). */
export function cannySuppress(dx: Int32Array, dy: Int32Array, mag: Int32Array, H: number, W: number, t: CannyThresholds): Uint8Array {
  const at = (y: number, x: number) => (y < 0 || y >= H || x < 0 || x >= W ? 0 : mag[y * W + x]);
  const cls = new Uint8Array(H * W);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const m = mag[i];
      if (m <= t.low) continue;
      const gx = dx[i];
      const gy = dy[i];
      const ax = Math.abs(gx);
      // OpenCV's shifts as products: |d| <= 1020 (8-bit input) keeps every term an exact integer
      const ay = Math.abs(gy) * 32768;
      const tg22x = ax * TG22;
      let keep: boolean;
      if (ay < tg22x) keep = m > at(y, x - 1) && m >= at(y, x + 1);
      else if (ay > tg22x + ax * 65536) keep = m > at(y - 1, x) && m >= at(y + 1, x);
      else {
        const s = gx < 0 !== gy < 0 ? -1 : 1;
        keep = m > at(y - 1, x - s) && m > at(y + 1, x + s);
      }
      if (keep) cls[i] = m > t.high ? 2 : 1;
    }
  }
  return cls;
}

/** Every weak pixel 8-connected through weak pixels to a strong one becomes an edge: 255, else 0. */
export function cannyHysteresis(cls: Uint8Array, H: number, W: number): Uint8Array {
  const out = new Uint8Array(H * W);
  const stack: number[] = [];
  for (let i = 0; i < H * W; i++) {
    if (cls[i] === 2) {
      out[i] = 255;
      stack.push(i);
    }
  }
  while (stack.length > 0) {
    const i = stack.pop() as number;
    const y = Math.floor(i / W);
    const x = i - y * W;
    for (let yy = Math.max(y - 1, 0); yy <= Math.min(y + 1, H - 1); yy++) {
      for (let xx = Math.max(x - 1, 0); xx <= Math.min(x + 1, W - 1); xx++) {
        const j = yy * W + xx;
        if (cls[j] === 1 && out[j] === 0) {
          out[j] = 255;
          stack.push(j);
        }
      }
    }
  }
  return out;
}

/** cv2.Canny(frame, tLower, tUpper) on a planar C x H x W frame (integer values): H x W of 0 / 255. */
export function cannyFrame(frame: ArrayLike<number>, C: number, H: number, W: number, tLower: number, tUpper: number, offset = 0, channelStride = H * W): Uint8Array {
  const { dx, dy, mag } = cannyGradients(frame, C, H, W, offset, channelStride);
  return cannyHysteresis(cannySuppress(dx, dy, mag, H, W, cannyThresholds(tLower, tUpper)), H, W);
}

/** A frame element as OpenCV sees a uint8 pixel: truncated toward zero and saturated to 0..255. */
export function pixelU8(v: number): number {
  return Math.min(255, Math.max(0, Math.trunc(v)));
}

/**
 * The `canny` op: every frame of a C x T x H x W stack (values as pixelU8 reads them), thresholds
 * already floored and ordered -> T x H x W of 0 / 255.
 */
export function cannyVideo(values: ArrayLike<number>, C: number, T: number, H: number, W: number, low: number, high: number): Int32Array {
  const plane = H * W;
  const px = Uint8Array.from(values as ArrayLike<number>, pixelU8);
  const out = new Int32Array(T * plane);
  for (let t = 0; t < T; t++) {
    const { dx, dy, mag } = cannyGradients(px, C, H, W, t * plane, T * plane);
    out.set(cannyHysteresis(cannySuppress(dx, dy, mag, H, W, { low, high }), H, W), t * plane);
  }
  return out;
}
