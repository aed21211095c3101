// Video-Depth-Anything's per-frame preprocessing (infer_video_depth with util/transform.py): the
// input-size rule for wide clips, the lower-bound resize to multiples of the patch with OpenCV's
// float cubic, the ImageNet normalisation, channels first.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope } from '../../engine/tensor.js';

/** The RGB uint8 clip the depth path reads: planar [3, T, H, W]. */
export interface DepthFrames {
  data: Uint8Array;
  frames: number;
  height: number;
  width: number;
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const MULTIPLE = 14;
const FRAMES_PER_UPLOAD = 4;

/** Python's round / numpy's round: half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The network input size after the rule for clips wider than 1.78:1 (upstream's constants). */
export function effectiveInputSize(H: number, W: number, inputSize: number): number {
  const ratio = Math.max(H, W) / Math.min(H, W);
  if (!(ratio > 1.78)) return inputSize;
  return roundHalfEven(Math.trunc((inputSize * 1.777) / ratio) / MULTIPLE) * MULTIPLE;
}

/**
 * The network frame size [H', W'] for an H x W frame: the smallest scale that brings both sides to
 * at least `inputSize`, each side rounded to a multiple of 14 (half to even), rounded up instead
 * when rounding would fall below `inputSize`.
 */
export function depthNetSize(H: number, W: number, inputSize: number): [number, number] {
  const s = Math.max(inputSize / H, inputSize / W);
  const side = (n: number): number => {
    const x = s * n;
    const y = roundHalfEven(x / MULTIPLE) * MULTIPLE;
    return y < inputSize ? Math.ceil(x / MULTIPLE) * MULTIPLE : y;
  };
  return [side(H), side(W)];
}

/**
 * Frames [start, start + count) of the clip (indices past its end read its last frame, as the
 * windows' padding does) -> normalised network input [count, 3, H', W'] f32.
 */
export function preprocessFrames(backend: Backend, clip: DepthFrames, inputSize: number, range: { start?: number; count?: number } = {}): Tensor {
  const { frames: T, height: H, width: W } = clip;
  if (clip.data.length !== 3 * T * H * W) throw new ShapeError(`depth frames: ${clip.data.length} bytes for [3, ${T}, ${H}, ${W}]`);
  const start = range.start ?? 0;
  const count = range.count ?? T - start;
  const [h, w] = depthNetSize(H, W, effectiveInputSize(H, W, inputSize));
  const hw = H * W;
  // a few frames per upload: the clip's float copy at full size is the largest buffer otherwise
  const parts: Tensor[] = [];
  for (let i0 = 0; i0 < count; i0 += FRAMES_PER_UPLOAD) {
    const n = Math.min(FRAMES_PER_UPLOAD, count - i0);
    // frame.astype(float32) / 255: one float32 division per value
    const host = new Float32Array(3 * n * hw);
    for (let ch = 0; ch < 3; ch++) {
      for (let i = 0; i < n; i++) {
        const t = Math.min(start + i0 + i, T - 1);
        const src = clip.data.subarray((ch * T + t) * hw, (ch * T + t + 1) * hw);
        const dst = host.subarray((ch * n + i) * hw, (ch * n + i + 1) * hw);
        for (let p = 0; p < hw; p++) dst[p] = src[p] / 255;
      }
    }
    parts.push(scope(() => {
      const resized = F.resizeFloat(F.fromArray(backend, host, [3, n, H, W]), h, w, 'cv2_cubic');
      const mean = F.fromArray(backend, MEAN, [3, 1, 1, 1]);
      const std = F.fromArray(backend, STD, [3, 1, 1, 1]);
      return F.permute(F.div(F.sub(resized, mean), std), [1, 0, 2, 3]);
    }));
  }
  if (parts.length === 1) return parts[0];
  const out = F.concat(parts, 0);
  for (const p of parts) p.dispose();
  return out;
}
