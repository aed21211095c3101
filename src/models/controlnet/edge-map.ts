// The edge control of Cosmos-Transfer (spec/control_maps.md "Edge"): cv2.Canny on every RGB frame
// of the C x T x H x W uint8 chunk, no blur, no grey conversion; the T binary maps repeated on 3
// channels under a batch dim, 1 x 3 x T x H x W of 0 / 255, as `control_input_edge`.
import { UserError } from '../../engine/errors.js';
import { bytesPerElement } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';

/** Canny thresholds per `preset_edge_threshold` (AddControlInputEdge with use_random=False). */
export const EDGE_PRESETS: Readonly<Record<string, readonly [number, number]>> = {
  none: [20, 50],
  very_low: [20, 50],
  low: [50, 100],
  medium: [100, 200],
  high: [200, 300],
  very_high: [300, 400],
};

export const DEFAULT_EDGE_PRESET = 'medium';

/** [t_lower, t_upper] of a preset name; `what` names the flag or field for the error. */
export function edgeThresholds(preset: string, what = 'edge preset'): [number, number] {
  const t = Object.hasOwn(EDGE_PRESETS, preset) ? EDGE_PRESETS[preset] : undefined;
  if (!t) throw new UserError(`${what}: unknown edge preset '${preset}' (expected one of ${Object.keys(EDGE_PRESETS).join(', ')})`);
  return [t[0], t[1]];
}

/**
 * Frames per canny call: a call binds its frames of the input, and then of the 3-channel i32 map,
 * at once, and each must fit one binding of the backend (a 93-frame 1280 x 704 chunk does not on
 * most devices).
 */
export function edgeFramesPerCall(video: Tensor): number {
  const [C, , H, W] = video.shape;
  const frameBytes = Math.max(C * bytesPerElement(video.dtype), 3 * 4) * H * W;
  return Math.max(1, Math.floor(video.backend.limits.maxBindingBytes / Math.max(1, frameBytes)));
}

/**
 * The edge map of a C x T x H x W uint8 video (any dtype holding the pixel values):
 * i32 1 x 3 x T x H x W of 0 / 255, every frame's edges on 3 identical channels.
 * `framesPerCall` (default edgeFramesPerCall) splits the frames over several canny calls.
 */
export async function edgeMap(video: Tensor, tLower: number, tUpper: number, framesPerCall = edgeFramesPerCall(video)): Promise<Tensor> {
  if (video.rank !== 4) throw new UserError(`video: expected a C x T x H x W frame stack, got shape [${video.shape.join(', ')}]`);
  const [, T, H, W] = video.shape;
  const step = Math.max(1, Math.floor(framesPerCall));
  const starts: number[] = [];
  for (let t0 = 0; t0 === 0 || t0 < T; t0 += step) starts.push(t0);
  const parts: Tensor[] = [];
  try {
    for (const t0 of starts) {
      const part = starts.length === 1 ? video : scope(() => F.slice(video, 1, t0, Math.min(T, t0 + step)));
      let edges: Tensor | undefined;
      try {
        edges = await F.canny(part, tLower, tUpper);
        const e = edges;
        const n = e.shape[0];
        parts.push(scope(() => F.expand(e.reshape([1, 1, n, H, W]), [1, 3, n, H, W])));
      } finally {
        edges?.dispose();
        if (part !== video) part.dispose();
      }
    }
    return parts.length === 1 ? (parts.pop() as Tensor) : scope(() => F.concat(parts, 2));
  } finally {
    for (const p of parts) p.dispose();
  }
}
