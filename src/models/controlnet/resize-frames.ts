// TEMPORARY (replaced by the resize helper's merge): identity and INTER_AREA shrink only.
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';

export type ResizeMode = 'area' | 'linear' | 'nearest';

export function resizeFrames(video: Tensor, width: number, height: number, mode: ResizeMode): Tensor {
  const [, , H, W] = video.shape;
  if (H === height && W === width) return video.keep();
  if (mode !== 'area' || height > H || width > W) throw new Error('resizeFrames: not yet');
  return F.resizeAreaU8(video, height, width);
}
