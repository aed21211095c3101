// Transfer2.5's depth control from an RGB clip (cosmos inference/utils.py, the depth branch): the
// clip's depth at its own size, one min / max over the whole video to [0, 255], three identical
// channels, each frame resized to the model resolution with OpenCV's float INTER_LINEAR and stored
// as uint8 by truncation (the float is assigned into a uint8 array, not rounded). The resize comes
// after the normalisation and acts on floats, so a uint8 resize (F.resizeU8) would round twice.
import * as F from '../../engine/ops.js';
import { ShapeError, scope } from '../../engine/tensor.js';
import { type Aspect, detectAspect } from '../controlnet/resolution.js';
import { type InferDepthOptions, inferVideoDepth } from './infer.js';
import type { VideoDepthAnything } from './model.js';
import type { DepthFrames } from './preprocess.js';

export type { DepthFrames } from './preprocess.js';

/** [W, H] per aspect key ("16,9", "4,3", ...): a row of VIDEO_RES_SIZE_INFO. */
export type AspectTable = Partial<Record<Aspect | string, readonly [number, number]>>;

/** [W, H] the control of a W x H clip is resized to under `table`. */
export function controlSizeFor(width: number, height: number, table: AspectTable): [number, number] {
  const key = detectAspect(width, height);
  const wh = table[key];
  if (!wh) throw new ShapeError(`depth control: the resolution table has no size for aspect ${key}`);
  return [wh[0], wh[1]];
}

export interface DepthControlOptions {
  /** the model resolution (the control's frame size) */
  width: number;
  height: number;
  /** the network's nominal input size (upstream: 518) */
  inputSize?: number;
  backboneBatch?: number;
  signal?: AbortSignal;
  /** windows of the network done, of all */
  onProgress?: (done: number, total: number) => void;
}

export interface DepthControlFloat {
  /** aligned relative depth [T, H, W] at the clip's size */
  depth: Float32Array;
  /** [T, H, W] in [0, 255], one min / max for the whole clip */
  normalized: Float32Array;
  control: DepthFrames;
  scaleShift: [number, number][];
}

/** Frames resized per call: bounds the device memory of the resize on long clips. */
const RESIZE_FRAMES = 8;

/** (d - min) / (max - min + 1e-8) * 255 over the whole clip, into `out` (which may be `d`). */
function normalizeVideo(d: Float32Array, out: Float32Array): void {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < d.length; i++) {
    if (d[i] < lo) lo = d[i];
    if (d[i] > hi) hi = d[i];
  }
  const den = hi - lo + 1e-8;
  for (let i = 0; i < d.length; i++) out[i] = Math.fround(Math.fround((d[i] - lo) / den) * 255);
}

async function toControl(model: VideoDepthAnything, normalized: Float32Array, T: number, H: number, W: number, w: number, h: number): Promise<DepthFrames> {
  const backend = model.pretrained.posEmbed.t.backend;
  const plane = T * h * w;
  const data = new Uint8Array(3 * plane);
  for (let t0 = 0; t0 < T; t0 += RESIZE_FRAMES) {
    const n = Math.min(RESIZE_FRAMES, T - t0);
    const y = scope(() => F.resizeFloat(F.fromArray(backend, normalized.subarray(t0 * H * W, (t0 + n) * H * W), [n, H, W]), h, w, 'cv2_linear'));
    let vals: ArrayLike<number>;
    try {
      vals = await y.read();
    } finally {
      y.dispose();
    }
    const off = t0 * h * w;
    for (let i = 0; i < vals.length; i++) {
      const v = Math.trunc(vals[i]);
      data[off + i] = Math.min(Math.max(v, 0), 255);
    }
  }
  data.copyWithin(plane, 0, plane);
  data.copyWithin(2 * plane, 0, plane);
  return { data, frames: T, height: h, width: w };
}

function checkClip(clip: DepthFrames, o: DepthControlOptions): void {
  const { frames: T, height: H, width: W } = clip;
  for (const [k, v] of [['frames', T], ['height', H], ['width', W], ['control width', o.width], ['control height', o.height]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`depth control: ${k} must be a positive integer, got ${v}`);
  }
  if (clip.data.length !== 3 * T * H * W) throw new ShapeError(`depth control: ${clip.data.length} bytes for a [3, ${T}, ${H}, ${W}] clip`);
}

/** The whole depth branch, keeping its float stages (for conformance and inspection). */
export async function depthControlFloat(
  model: VideoDepthAnything, clip: DepthFrames, o: DepthControlOptions & Pick<InferDepthOptions, 'onWindowDepth'>,
): Promise<DepthControlFloat> {
  checkClip(clip, o);
  const { depth, scaleShift } = await inferVideoDepth(model, clip, o);
  const normalized = new Float32Array(depth.length);
  normalizeVideo(depth, normalized);
  const control = await toControl(model, normalized, clip.frames, clip.height, clip.width, o.width, o.height);
  return { depth, normalized, control, scaleShift };
}

/**
 * The depth control of an RGB clip (planar [3, T, H, W] uint8 at its own size): planar
 * [3, T, o.height, o.width] uint8, three identical channels. The network runs one 32-frame window
 * at a time; the host holds the clip's float depth once (normalised in place).
 */
export async function depthControl(model: VideoDepthAnything, clip: DepthFrames, o: DepthControlOptions): Promise<DepthFrames> {
  checkClip(clip, o);
  const { depth } = await inferVideoDepth(model, clip, o);
  normalizeVideo(depth, depth);
  return toControl(model, depth, clip.frames, clip.height, clip.width, o.width, o.height);
}
