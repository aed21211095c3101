// The edge control of Cosmos-Transfer (spec/control_maps.md "Edge"): cv2.Canny on every RGB frame
// of the C x T x H x W uint8 chunk, no blur, no grey conversion; the T binary maps repeated on 3
// channels under a batch dim, 1 x 3 x T x H x W of 0 / 255, as `control_input_edge`.
import { UserError } from '../../engine/errors.js';
import { cannyFrame } from './canny.js';

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

function checkVideoShape(shape: readonly number[]): [number, number, number, number] {
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new UserError(`video: expected a C x T x H x W frame stack, got shape [${shape.join(', ')}]`);
  }
  return shape as [number, number, number, number];
}

/**
 * The edge map of a C x T x H x W uint8 video (values as numbers, planar) on the host:
 * 1 x 3 x T x H x W of 0 / 255.
 */
export function edgeMapHost(video: ArrayLike<number>, shape: readonly number[], tLower: number, tUpper: number): Uint8Array {
  const [C, T, H, W] = checkVideoShape(shape);
  const plane = H * W;
  const out = new Uint8Array(3 * T * plane);
  for (let t = 0; t < T; t++) {
    const edges = cannyFrame(video, C, H, W, tLower, tUpper, t * plane, T * plane);
    for (let c = 0; c < 3; c++) out.set(edges, (c * T + t) * plane);
  }
  return out;
}
