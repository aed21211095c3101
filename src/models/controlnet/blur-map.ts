// The blur ("vis") control map of Cosmos-Transfer (spec control_maps.md "Blur"): per frame an
// OpenCV INTER_AREA downscale, a bilateral filter and an INTER_LINEAR upscale, then torchvision's
// antialiased bicubic resize down and back up. Every stage ends in uint8 as upstream's does, and
// each one emulates its library's arithmetic (float32 where the library uses float32, in its order)
// so that each stage lands on the reference's bytes, not merely near them.
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import { antialiasBicubicTaps, areaPlanes, areaTables, bilateralPlanes, bilateralTables, resampleAxis, resizeU8Planes, rintEven } from '../../engine/image.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { VIDEO_RES_SIZE_INFO } from './resolution.js';

const rint = rintEven;

const u8 = (x: number) => Math.min(Math.max(x, 0), 255);

// ------------------------------------------------------------------ settings

export interface BilateralSettings {
  d: number;
  sigmaColor: number;
  sigmaSpace: number;
  iter: number;
}

/** The resolved numbers of one blur map; `null` is the `none` preset (input returned). */
export interface BlurMapSettings {
  /** INTER_AREA factor before the bilateral filter (1: no down/up) */
  areaDownFactor: number;
  bilateral: BilateralSettings;
  /** antialiased bicubic down to (int(H / s), int(W / s)) and back */
  downupFactor: number;
  /**
   * Transfer1 only: [W, H] of the 720p box; larger frames are first shrunk into it with INTER_AREA
   * (upstream's resize_frames), and the map has the shrunk size
   */
  fitBox?: readonly [number, number];
}

/** VIDEO_RES_SIZE_INFO["720"]: [W, H] per aspect ratio. */
export const RES_720: Readonly<Record<string, readonly [number, number]>> = VIDEO_RES_SIZE_INFO['720'];

/** The size resize_frames shrinks a W x H frame to inside `box` (unchanged when it fits). */
export function fitSize(W: number, H: number, box: readonly [number, number]): [number, number] {
  const r = Math.min(box[0] / W, box[1] / H);
  return r < 1 ? [Math.trunc(r * W + 0.5), Math.trunc(r * H + 0.5)] : [W, H];
}

export type BlurVariant = 'transfer2.5' | 'transfer1';
export const BLUR_PRESETS = ['none', 'very_low', 'low', 'medium', 'high', 'very_high'] as const;
export type BlurPreset = (typeof BLUR_PRESETS)[number];

const AREA_FACTOR: Record<Exclude<BlurPreset, 'none'>, number> = { very_low: 1, low: 4, medium: 2, high: 1, very_high: 4 };
const DOWNUP_FACTOR: Record<Exclude<BlurPreset, 'none'>, number> = { very_low: 4, low: 4, medium: 10, high: 16, very_high: 16 };
// Transfer2.5 keeps the bilateral config's defaults whatever the preset; Transfer1 ties them to it.
const T25_BILATERAL: BilateralSettings = { d: 30, sigmaColor: 150, sigmaSpace: 100, iter: 1 };
const T1_BILATERAL: Record<BlurPreset, BilateralSettings> = {
  none: { d: 1, sigmaColor: 1, sigmaSpace: 1, iter: 1 },
  very_low: { d: 15, sigmaColor: 100, sigmaSpace: 50, iter: 1 },
  low: { d: 15, sigmaColor: 100, sigmaSpace: 50, iter: 1 },
  medium: { d: 30, sigmaColor: 150, sigmaSpace: 100, iter: 1 },
  high: { d: 50, sigmaColor: 300, sigmaSpace: 150, iter: 1 },
  very_high: { d: 50, sigmaColor: 300, sigmaSpace: 150, iter: 1 },
};

/** The settings of a named preset. Transfer2.5 `none` returns the input (null); Transfer1 `none` still runs its (1, 1, 1) filter. */
export function blurPreset(variant: BlurVariant, preset: BlurPreset): BlurMapSettings | null {
  if (variant === 'transfer1') {
    // the augmentor's data carries no aspect ratio at inference, so its 16:9 default box applies
    const fitBox = RES_720['16,9'];
    if (preset === 'none') return { areaDownFactor: 1, bilateral: T1_BILATERAL.none, downupFactor: 1, fitBox };
    return { areaDownFactor: AREA_FACTOR[preset], bilateral: T1_BILATERAL[preset], downupFactor: DOWNUP_FACTOR[preset], fitBox };
  }
  if (preset === 'none') return null;
  return { areaDownFactor: AREA_FACTOR[preset], bilateral: T25_BILATERAL, downupFactor: DOWNUP_FACTOR[preset] };
}

/** Python's (int(H / s), int(W / s)) of the bicubic down stage. */
export function bicubicDownSize(H: number, W: number, s: number): [number, number] {
  return [Math.trunc(H / s), Math.trunc(W / s)];
}

// ------------------------------------------------------------------ INTER_AREA

/**
 * cv2.resize(src, (dw, dh), interpolation=INTER_AREA) of a uint8 [sh, sw, cn] image, shrinking
 * (engine/image.ts areaPlanes, channel by channel).
 */
export function resizeAreaU8(src: Uint8Array, sw: number, sh: number, dw: number, dh: number, cn: number): Uint8Array {
  const n = sw * sh;
  const planes = new Uint8Array(cn * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < cn; c++) planes[c * n + p] = src[p * cn + c];
  const res = areaPlanes(planes, cn, sh, sw, areaTables(sh, sw, dh, dw));
  const m = dw * dh;
  const out = new Uint8Array(cn * m);
  for (let p = 0; p < m; p++) for (let c = 0; c < cn; c++) out[p * cn + c] = res[c * m + p];
  return out;
}

// ------------------------------------------------------------------ bilateral

/** The support and weights of cv2.bilateralFilter(d, sigmaColor, sigmaSpace) (engine/image.ts). */
export function bilateralKernel(d: number, sigmaSpace: number): { radius: number; dy: Int32Array; dx: Int32Array; weight: Float32Array } {
  const t = bilateralTables(d, 1, sigmaSpace);
  return { radius: t.radius, dy: t.dy, dx: t.dx, weight: t.space };
}

/** cv2.bilateralFilter(src, d, sigmaColor, sigmaSpace) of a uint8 [h, w, 3] image (BORDER_DEFAULT). */
export function bilateralFilterU8(src: Uint8Array, w: number, h: number, d: number, sigmaColor: number, sigmaSpace: number): Uint8Array {
  const n = w * h;
  const planes = new Uint8Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) planes[c * n + p] = src[p * 3 + c];
  const res = bilateralPlanes(planes, 1, h, w, bilateralTables(d, sigmaColor, sigmaSpace));
  const out = new Uint8Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = res[c * n + p];
  return out;
}

// ------------------------------------------------------------------ torch bicubic, antialiased

/** torch's antialiased bicubic taps of one axis (engine/image.ts). */
export const bicubicAATaps = antialiasBicubicTaps;

/**
 * torchvision resize(BICUBIC, antialias=True) of one uint8 plane: float32 width pass, float32
 * height pass (each a fused multiply-add chain from the first tap), clamp to [0, 255], round half
 * to even.
 */
export function resizeBicubicAAPlane(src: ArrayLike<number>, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  let plane: ArrayLike<number> = src;
  if (dw !== sw) plane = resampleAxis(plane, sh, sw, 1, antialiasBicubicTaps(sw, dw), false);
  if (dh !== sh) plane = resampleAxis(plane, 1, sh, dw, antialiasBicubicTaps(sh, dh), false);
  const out = new Uint8Array(dw * dh);
  for (let i = 0; i < out.length; i++) out[i] = u8(rint(plane[i]));
  return out;
}

// ------------------------------------------------------------------ the whole map

export type BlurStage = 'area_down' | 'bilateral' | 'linear_up' | 'bicubic_down';

/** Where the stages run: on the host (engine/image.ts) or on a backend's engine ops. */
export interface BlurStages {
  /** INTER_AREA of `count` planes [h, w] to [oh, ow] */
  area(planes: ArrayLike<number>, count: number, h: number, w: number, oh: number, ow: number): Promise<ArrayLike<number>> | ArrayLike<number>;
  /** INTER_LINEAR of `count` planes [h, w] to [oh, ow] */
  linear(planes: ArrayLike<number>, count: number, h: number, w: number, oh: number, ow: number): Promise<ArrayLike<number>> | ArrayLike<number>;
  /** the bilateral filter of planes [3, T, h, w] */
  bilateral(planes: Uint8Array, T: number, h: number, w: number, b: BilateralSettings): Promise<ArrayLike<number>> | ArrayLike<number>;
  /** the antialiased bicubic resize of `count` planes [h, w] to [oh, ow], rounded to uint8 */
  bicubic(planes: ArrayLike<number>, count: number, h: number, w: number, oh: number, ow: number): Promise<ArrayLike<number>> | ArrayLike<number>;
}

export const hostStages: BlurStages = {
  area: (planes, count, h, w, oh, ow) => areaPlanes(planes, count, h, w, areaTables(h, w, oh, ow)),
  linear: (planes, count, h, w, oh, ow) => resizeU8Planes(planes, count, h, w, oh, ow, 'linear'),
  bilateral: (planes, T, h, w, b) => bilateralPlanes(planes, T, h, w, bilateralTables(b.d, b.sigmaColor, b.sigmaSpace)),
  bicubic: (planes, count, h, w, oh, ow) => {
    const out = new Uint8Array(count * oh * ow);
    for (let p = 0; p < count; p++) out.set(resizeBicubicAAPlane(Array.prototype.slice.call(planes, p * h * w, (p + 1) * h * w), w, h, ow, oh), p * oh * ow);
    return out;
  },
};

async function readOnce(t: Tensor): Promise<Float32Array | Int32Array> {
  try {
    return await t.read();
  } finally {
    t.dispose();
  }
}

/** Every stage on `backend` (F.resizeAreaU8, F.bilateralFilter, F.resizeU8, F.resizeBicubicAA). */
export function engineStages(backend: Backend): BlurStages {
  return {
    area: (planes, count, h, w, oh, ow) => readOnce(scope(() => F.resizeAreaU8(F.fromArray(backend, planes, [count, h, w]), oh, ow))),
    linear: (planes, count, h, w, oh, ow) => readOnce(scope(() => F.resizeU8(F.fromArray(backend, planes, [count, h, w]), oh, ow, 'linear'))),
    bilateral: (planes, T, h, w, b) => readOnce(scope(() => F.bilateralFilter(F.fromArray(backend, planes, [3, T, h, w]), b.d, b.sigmaColor, b.sigmaSpace))),
    bicubic: (planes, count, h, w, oh, ow) => readOnce(scope(() => F.resizeBicubicAA(F.fromArray(backend, planes, [count, h, w]), oh, ow))),
  };
}

/**
 * The blur map of a C x T x H x W uint8 RGB video (C = 3), returned C x T x H x W (Transfer1:
 * at the size `fitBox` shrinks it to, see `fitSize`). `onStage` sees
 * each stage's C x T x h x w result (the area and linear stages only run when the factor is > 1);
 * `stages` says where the stages run (default: on the host).
 */
export async function blurMap(
  video: Uint8Array, shape: readonly [number, number, number, number], settings: BlurMapSettings | null,
  onStage?: (stage: BlurStage, values: Uint8Array, shape: [number, number, number, number]) => void,
  stages: BlurStages = hostStages,
): Promise<Uint8Array> {
  if (shape[0] !== 3) throw new Error(`blurMap: the video has ${shape[0]} channels; the bilateral filter needs RGB (3)`);
  if (video.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`blurMap: ${video.length} values for [${shape.join(', ')}]`);
  if (!settings) return video.slice();
  if (settings.fitBox) {
    const [fw, fh] = fitSize(shape[3], shape[2], settings.fitBox);
    if (fw !== shape[3] || fh !== shape[2]) {
      const [, T0, H0, W0] = shape;
      video = Uint8Array.from(await stages.area(video, 3 * T0, H0, W0, fh, fw));
      shape = [3, T0, fh, fw];
    }
  }
  const [C, T, H, W] = shape;
  const f = settings.areaDownFactor;
  const sw = f > 1 ? Math.trunc(W / f) : W;
  const sh = f > 1 ? Math.trunc(H / f) : H;
  let planes = video;
  if (f > 1) {
    planes = Uint8Array.from(await stages.area(video, C * T, H, W, sh, sw));
    onStage?.('area_down', planes, [C, T, sh, sw]);
  }
  for (let k = 0; k < settings.bilateral.iter; k++) planes = Uint8Array.from(await stages.bilateral(planes, T, sh, sw, settings.bilateral));
  onStage?.('bilateral', planes, [C, T, sh, sw]);
  let up = planes;
  if (f > 1) {
    up = Uint8Array.from(await stages.linear(planes, C * T, sh, sw, H, W));
    onStage?.('linear_up', up, [C, T, H, W]);
  }
  const [dh, dw] = bicubicDownSize(H, W, settings.downupFactor);
  // torchvision refuses an empty size too
  if (dh < 1 || dw < 1) throw new UserError(`blur control: a ${W}x${H} frame is too small for the down-up factor ${settings.downupFactor} (it needs at least ${settings.downupFactor} pixels on each side)`);
  const down = Uint8Array.from(await stages.bicubic(up, C * T, H, W, dh, dw));
  const out = Uint8Array.from(await stages.bicubic(down, C * T, dh, dw, H, W));
  onStage?.('bicubic_down', down, [C, T, dh, dw]);
  return out;
}
