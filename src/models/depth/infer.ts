// infer_video_depth over a whole clip: overlapping 32-frame windows (stride 22, the clip padded with
// its last frame), each window after the first starting with ten of the previous window's input
// frames (its keyframes), every window's depth brought to the clip's size, then aligned onto the
// first window by a least-squares scale and shift and cross-faded over the overlap. Windows are
// run one at a time: the device holds one window's activations, the host the clip's depth.
import { throwIfAborted } from '../../engine/errors.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { VideoDepthAnything } from './model.js';
import { type DepthFrames, preprocessFrames } from './preprocess.js';

// upstream's module constants: the motion modules were trained on these windows
export const INFER_LEN = 32;
export const OVERLAP = 10;
export const KEYFRAMES = [0, 12, 24, 25, 26, 27, 28, 29, 30, 31];
export const INTERP_LEN = 8;
const STEP = INFER_LEN - OVERLAP;
/** frames per resize of a window's depth to the clip's size (divides INFER_LEN) */
const RESIZE_FRAMES = 8;
/** keyframes whose depths tie a window to the ones before it */
const ALIGN_LEN = OVERLAP - INTERP_LEN;

const f32 = Math.fround;

export interface InferDepthOptions {
  /** the network's nominal input size before the wide-clip rule (upstream: 518) */
  inputSize?: number;
  /** frames per backbone call (see VideoDepthAnything.forward) */
  backboneBatch?: number;
  /** frames per run of the head's finest stages (see VideoDepthAnything.forward; default: headRun) */
  headBatch?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** each window's depth [32, H, W] at the clip's size, before alignment (borrowed: copy to keep) */
  onWindowDepth?: (depth: Float32Array) => void;
}

export interface VideoDepth {
  /** aligned relative depth [T, H, W] */
  depth: Float32Array;
  /** (scale, shift) of each window after the first */
  scaleShift: [number, number][];
}

/** Bytes of the widest activation of one run of the head's finest stages (output_conv2's input). */
const HEAD_RUN_BYTES = 64 * 2 ** 20;

/**
 * Frames per run of the head's finest stages for an h x w network frame: as many as keep the
 * widest activation within HEAD_RUN_BYTES (one frame at 910x504, the whole window at small sizes,
 * where more dispatches would cost more than the memory they save).
 */
export function headRun(model: VideoDepthAnything, h: number, w: number): number {
  const perFrame = 4 * model.c.headFeatures2 * h * w;
  return Math.min(INFER_LEN, Math.max(1, Math.floor(HEAD_RUN_BYTES / perFrame)));
}

/** Least squares of s * pred + t onto target (compute_scale_and_shift_full with an all-ones mask). */
export function scaleAndShift(pred: readonly Float32Array[], target: readonly Float32Array[]): [number, number] {
  let a00 = 0;
  let a01 = 0;
  let n = 0;
  let b0 = 0;
  let b1 = 0;
  for (let k = 0; k < pred.length; k++) {
    const p = pred[k];
    const g = target[k];
    for (let i = 0; i < p.length; i++) {
      a00 += p[i] * p[i];
      a01 += p[i];
      b0 += p[i] * g[i];
      b1 += g[i];
    }
    n += p.length;
  }
  const det = a00 * n - a01 * a01;
  if (det === 0) return [1, 0];
  return [f32((n * b0 - a01 * b1) / det), f32((-a01 * b0 + a00 * b1) / det)];
}

function affineClamped(d: Float32Array, s: number, t: number): Float32Array {
  const out = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = f32(f32(d[i] * s) + t);
    out[i] = Math.max(v, 0);
  }
  return out;
}

export async function inferVideoDepth(model: VideoDepthAnything, clip: DepthFrames, opts: InferDepthOptions = {}): Promise<VideoDepth> {
  const { frames: T, height: H, width: W } = clip;
  const HW = H * W;
  const backend = model.pretrained.posEmbed.t.backend;
  const inputSize = opts.inputSize ?? 518;
  const windows = Math.ceil(T / STEP);
  const depth = new Float32Array(T * HW);
  const scaleShift: [number, number][] = [];
  // aligned frames not final yet (the last INTERP_LEN are cross-faded by the next window)
  let tail: { index: number; frame: Float32Array }[] = [];
  let count = 0;
  const emit = (frame: Float32Array): void => {
    tail.push({ index: count++, frame });
    while (tail.length > INTERP_LEN) {
      const done = tail.shift() as { index: number; frame: Float32Array };
      if (done.index < T) depth.set(done.frame, done.index * HW);
    }
  };
  let ref: Float32Array[] = [];
  let prevInput: Tensor | null = null;
  try {
    for (let k = 0; k < windows; k++) {
      throwIfAborted(opts.signal);
      const start = k * STEP;
      const input: Tensor = scope(() => {
        if (!prevInput) return preprocessFrames(backend, clip, inputSize, { start, count: INFER_LEN });
        const fresh = preprocessFrames(backend, clip, inputSize, { start: start + OVERLAP, count: INFER_LEN - OVERLAP });
        const kept = KEYFRAMES.map((i) => F.slice(prevInput as Tensor, 0, i, i + 1));
        return F.concat([...kept, fresh], 0);
      });
      prevInput?.dispose();
      prevInput = input;
      const d = scope(() => {
        const [, , h, w] = input.shape;
        const out = model.forward(input.reshape([1, INFER_LEN, 3, h, w]), { backboneBatch: opts.backboneBatch, headBatch: opts.headBatch ?? headRun(model, h, w) });
        return out.reshape([INFER_LEN, h, w]);
      });
      // brought to the clip's size a few frames at a time: a window at 1080p is over 256 MiB, more
      // than one buffer or one read of many devices
      const host = new Float32Array(INFER_LEN * HW);
      try {
        for (let i0 = 0; i0 < INFER_LEN; i0 += RESIZE_FRAMES) {
          const up = scope(() => F.resizeFloat(F.slice(d, 0, i0, i0 + RESIZE_FRAMES), H, W, 'align_corners'));
          try {
            host.set(await up.read(), i0 * HW);
          } finally {
            up.dispose();
          }
        }
      } finally {
        d.dispose();
      }
      opts.onWindowDepth?.(host);
      const win = (i: number) => host.subarray(i * HW, (i + 1) * HW);
      if (k === 0) {
        for (let i = 0; i < INFER_LEN; i++) emit(win(i).slice());
        ref = KEYFRAMES.slice(0, ALIGN_LEN).map((i) => win(i).slice());
      } else {
        const [s, t] = scaleAndShift([win(0), win(1)], ref);
        scaleShift.push([s, t]);
        for (let j = 0; j < INTERP_LEN; j++) {
          const post = affineClamped(win(ALIGN_LEN + j), s, t);
          const pre = tail[j].frame;
          const c = j === INTERP_LEN - 1 ? 1 : j * (1 / (INTERP_LEN - 1));
          const wPre = f32(1 - c);
          const wPost = f32(c);
          for (let i = 0; i < HW; i++) pre[i] = f32(f32(pre[i] * wPre) + f32(post[i] * wPost));
        }
        for (let i = OVERLAP; i < INFER_LEN; i++) emit(affineClamped(win(i), s, t));
        ref = [ref[0], ...KEYFRAMES.slice(1, ALIGN_LEN).map((i) => affineClamped(win(i), s, t))];
      }
      opts.onProgress?.(k + 1, windows);
    }
  } finally {
    prevInput?.dispose();
  }
  for (const { index, frame } of tail) if (index < T) depth.set(frame, index * HW);
  tail = [];
  return { depth, scaleShift };
}
