// The inference preprocessing's cv2.resize of every frame (spec/control_maps.md "Where they sit"):
// the input clip goes to the model resolution with INTER_AREA whatever its size (shrinking,
// enlarging, or one axis each way), ready-made control videos with their own interpolation.
// The frames stay planes on the backend: the resize is one engine op over all of them.
import { UserError } from '../../engine/errors.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';

export type FrameResizeMode = F.ResizeMode;

/**
 * cv2.resize(frame, (width, height), interpolation=mode) of every frame of a C x T x H x W video
 * (values 0..255 in any dtype): f32 C x T x height x width of the uint8 results. Equal sizes copy.
 */
export function resizeFrames(video: Tensor, width: number, height: number, mode: FrameResizeMode): Tensor {
  if (video.rank !== 4) throw new UserError(`video: expected a C x T x H x W frame stack, got shape [${video.shape.join(', ')}]`);
  if (!(Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1)) {
    throw new UserError(`resize: the target size ${width}x${height} must be positive whole pixels`);
  }
  return F.resizeU8(video, height, width, mode);
}
