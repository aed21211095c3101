// The edge control of Cosmos-Transfer (spec/control_maps.md "Edge"): cv2.Canny on every RGB frame
// of the C x T x H x W uint8 chunk, no blur, no grey conversion; the T binary maps repeated on 3
// channels under a batch dim, 1 x 3 x T x H x W of 0 / 255, as `control_input_edge`.
import { UserError } from '../../engine/errors.js';
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
 * The edge map of a C x T x H x W uint8 video (any dtype holding the pixel values):
 * i32 1 x 3 x T x H x W of 0 / 255, every frame's edges on 3 identical channels.
 */
export async function edgeMap(video: Tensor, tLower: number, tUpper: number): Promise<Tensor> {
  if (video.rank !== 4) throw new UserError(`video: expected a C x T x H x W frame stack, got shape [${video.shape.join(', ')}]`);
  const edges = await F.canny(video, tLower, tUpper);
  const [T, H, W] = edges.shape;
  try {
    return scope(() => F.expand(edges.reshape([1, 1, T, H, W]), [1, 3, T, H, W]));
  } finally {
    edges.dispose();
  }
}
