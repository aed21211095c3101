// Video2World conditioning shared by the sampling loops: which latent frames are given, the
// indicator [B,1,T,1,1] and mask [B,1,T,H,W] built from it (1 on conditioning frames), and the
// blend mask * a + (1 - mask) * b the pipelines use to re-impose the conditioning latents.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { DiTInputError } from './config.js';

/** Latent frames that pixel frames occupy under a causal temporal compression (1 + (n-1)/tc). */
export function latentFrames(pixelFrames: number, temporalCompression: number): number {
  if (!(Number.isInteger(pixelFrames) && pixelFrames >= 1)) throw new DiTInputError(`frames: must be a positive integer; got ${pixelFrames}`);
  return Math.floor((pixelFrames - 1) / temporalCompression) + 1;
}

/** 1 on the first numCond[b] frames of sample b, as [B, 1, T, 1, 1] row-major values. */
export function conditionIndicator(batch: number, frames: number, numCond: number | readonly number[]): Float32Array {
  const counts = typeof numCond === 'number' ? new Array<number>(batch).fill(numCond) : [...numCond];
  if (counts.length !== batch) throw new DiTInputError(`conditioning frames: ${counts.length} counts for a batch of ${batch}`);
  const out = new Float32Array(batch * frames);
  counts.forEach((n, b) => {
    if (!Number.isInteger(n) || n < 0 || n > frames) throw new DiTInputError(`conditioning frames: must be an integer in [0, ${frames}]; got ${n}`);
    out.fill(1, b * frames, b * frames + n);
  });
  return out;
}

export interface ConditionTensors {
  /** host values of the indicator [B, 1, T, 1, 1] */
  indicatorValues: Float32Array;
  indicator: Tensor;
  /** the indicator broadcast to [B, 1, T, H, W] (the transformer's condition_mask) */
  mask: Tensor;
}

/** Indicator and mask for latents of shape [B, C, T, H, W]. */
export function conditionTensors(backend: Backend, latentShape: readonly number[], numCond: number | readonly number[]): ConditionTensors {
  const [B, , T, H, W] = latentShape;
  const indicatorValues = conditionIndicator(B, T, numCond);
  const indicator = F.fromArray(backend, indicatorValues, [B, 1, T, 1, 1]);
  return { indicatorValues, indicator, mask: F.expand(indicator, [B, 1, T, H, W]) };
}

/** mask * a + (1 - mask) * b (mask broadcasts). */
export function blend(mask: Tensor, a: Tensor, b: Tensor): Tensor {
  return F.add(F.mul(mask, a), F.mul(F.affine(mask, -1, 1), b));
}

/** Per-frame timesteps [B, 1, T, 1, 1]: `condValue` on conditioning frames, `value` elsewhere (float32). */
export function frameTimesteps(backend: Backend, indicatorValues: Float32Array, shape: readonly number[], condValue: number, value: number): Tensor {
  const f32 = Math.fround;
  const c = f32(condValue);
  const out = indicatorValues.map((ind) => f32(f32(ind * c) + f32(f32(1 - ind) * value)));
  return F.fromArray(backend, out, shape);
}
