// SiglipImageProcessor (the slow PIL one, transformers da4ab2a1) for uint8 RGB frames, as the
// guardrail hands each frame over (PIL.Image.fromarray): Pillow's 8-bit resize to size x size
// (no crop, aspect ratio not kept), rescale (float64 product cast to float32), normalise in
// float32, channels first. Spec guardrail.md "SigLIP image encoder" step 1.
import { UserError } from '../../engine/errors.js';
import type { Config } from '../load.js';
import { PIL_RESAMPLE, resizeU8 } from '../vlm/resize.js';

export class SiglipPreprocessError extends UserError {
  override name = 'SiglipPreprocessError';
}

export interface SiglipImageProcessorConfig {
  height: number;
  width: number;
  /** PIL resample filter (3 = BICUBIC) */
  resample: number;
  doResize: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * A preprocessor_config.json (or the `preprocessor_config` object a fixture's config.json holds),
 * with SiglipImageProcessor's defaults for absent fields (224 x 224, bicubic, 1/255, mean = std =
 * 0.5). `where` names the file in messages.
 */
export function parseSiglipProcessorConfig(json: Config, where = 'preprocessor_config.json'): SiglipImageProcessorConfig {
  const num = (key: string, def: number) => {
    const v = json[key] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new SiglipPreprocessError(`${where}: ${key}: expected a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string) => {
    const v = json[key] ?? true;
    if (typeof v !== 'boolean') throw new SiglipPreprocessError(`${where}: ${key}: expected true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const triple = (key: string): [number, number, number] => {
    const v = json[key] ?? 0.5;
    const list = typeof v === 'number' ? [v, v, v] : v;
    if (!Array.isArray(list) || list.length !== 3 || !list.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new SiglipPreprocessError(`${where}: ${key}: expected a number or three numbers, got ${JSON.stringify(v)}`);
    }
    return list as [number, number, number];
  };
  const size = (json.size ?? { height: 224, width: 224 }) as Record<string, unknown>;
  const side = (key: 'height' | 'width') => {
    const v = size?.[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new SiglipPreprocessError(`${where}: size.${key}: expected a positive integer, got ${JSON.stringify(v)} (SiglipImageProcessor resizes to {height, width})`);
    }
    return v;
  };
  const resample = num('resample', PIL_RESAMPLE.BICUBIC);
  if (!Object.values(PIL_RESAMPLE).includes(resample as never)) throw new SiglipPreprocessError(`${where}: resample: ${resample} is not a PIL filter (0-5)`);
  const std = triple('image_std');
  if (std.some((s) => s === 0)) throw new SiglipPreprocessError(`${where}: image_std: ${JSON.stringify(std)} holds a zero`);
  return {
    height: side('height'), width: side('width'), resample,
    doResize: bool('do_resize'), doRescale: bool('do_rescale'), rescaleFactor: num('rescale_factor', 1 / 255),
    doNormalize: bool('do_normalize'), mean: triple('image_mean'), std,
  };
}

/**
 * pixel_values [T, 3, height, width] (float32, flat) of T uint8 RGB frames [T, H, W, 3]. Without a
 * resize the frames must already have the processor's size (the model's position table has one).
 */
export function preprocessFrames(cfg: SiglipImageProcessorConfig, frames: Uint8Array, T: number, H: number, W: number): Float32Array {
  if (![T, H, W].every((v) => Number.isInteger(v) && v >= 1)) throw new SiglipPreprocessError(`frames: size ${T}x${H}x${W}: expected positive whole numbers`);
  if (frames.length !== T * H * W * 3) throw new SiglipPreprocessError(`frames: ${frames.length} bytes for ${T} x ${H} x ${W} x 3 RGB`);
  const { height: S1, width: S2 } = cfg;
  if (!cfg.doResize && (H !== S1 || W !== S2)) throw new SiglipPreprocessError(`frames: ${H}x${W}, but the processor does not resize and expects ${S1}x${S2}`);
  const f = Math.fround;
  // numpy casts mean / std to the image's float32 before (x - mean) / std
  const mean = cfg.mean.map(f);
  const std = cfg.std.map(f);
  const plane = S1 * S2;
  const out = new Float32Array(T * 3 * plane);
  for (let t = 0; t < T; t++) {
    const frame = frames.subarray(t * H * W * 3, (t + 1) * H * W * 3);
    const img = cfg.doResize ? resizeU8(frame, H, W, 3, S1, S2, cfg.resample) : frame;
    const base = t * 3 * plane;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        let v = img[i * 3 + c];
        if (cfg.doRescale) v = f(v * cfg.rescaleFactor);
        if (cfg.doNormalize) v = f(f(v - mean[c]) / std[c]);
        out[base + c * plane + i] = v;
      }
    }
  }
  return out;
}
