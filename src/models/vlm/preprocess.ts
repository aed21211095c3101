// Image / video preprocessing of Qwen2-VL / Qwen2.5-VL (Cosmos-Reason1): transformers'
// `Qwen2VLImageProcessor._preprocess`, reproduced on uint8 HWC RGB input.
//
//   smart_resize -> PIL resize (bicubic by default) on uint8 -> x * (1/255) in float64, stored
//   float32 -> (x - mean) / std in float32 -> CHW -> frames padded to a multiple of
//   temporal_patch_size by repeating the last one -> patches:
//   (T/tp, tp, C, h/(m p), m, p, w/(m p), m, p) -> (T/tp, h/(m p), w/(m p), m, m, C, tp, p, p)
//   -> rows (grid_t * grid_h * grid_w), columns C * tp * p * p. grid_thw = (T/tp, h/p, w/p).
//
// The resize is Pillow's, byte for byte (resize.ts).
//
// Videos: frame sampling follows qwen-vl-utils' `smart_nframes` (see `sampleVideoFrames`), then
// every sampled frame goes through the same processor; second_per_grid_t = temporal_patch_size /
// sampled fps (Qwen2_5_VLProcessor).
import type { Video } from '../../io/video.js';
import { PreprocessError, SmartResizeError } from './config.js';
import { PIL_RESAMPLE, resizeU8 } from './resize.js';

/** uint8 RGB image, HWC. */
export interface ImageU8 {
  data: Uint8Array;
  height: number;
  width: number;
}

/** uint8 RGB frames, THWC. */
export interface VideoU8 {
  data: Uint8Array;
  frames: number;
  height: number;
  width: number;
}

// ------------------------------------------------------------------ smart_resize

/** Python's round(): to nearest, ties to even. */
export function pythonRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export const DEFAULT_MIN_PIXELS = 56 * 56;
export const DEFAULT_MAX_PIXELS = 28 * 28 * 1280;

/**
 * transformers' `smart_resize` (Qwen2-VL, early 2025): both sides multiples of `factor`, area within
 * [minPixels, maxPixels], aspect ratio kept as well as possible. Throws SmartResizeError where
 * upstream raises ValueError (a side below `factor`, or aspect ratio over 200).
 */
export function smartResize(
  height: number, width: number, factor = 28, minPixels = DEFAULT_MIN_PIXELS, maxPixels = DEFAULT_MAX_PIXELS,
): [number, number] {
  if (height < factor || width < factor) {
    throw new SmartResizeError(`height:${height} or width:${width} must be larger than factor:${factor}`);
  }
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new SmartResizeError(`aspect ratio: must be smaller than 200; got ${Math.max(height, width) / Math.min(height, width)}`);
  }
  let h = pythonRound(height / factor) * factor;
  let w = pythonRound(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.floor(height / beta / factor) * factor;
    w = Math.floor(width / beta / factor) * factor;
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return [h, w];
}

// ------------------------------------------------------------------ the processor

export interface Qwen2VLImageProcessorConfig {
  minPixels: number;
  maxPixels: number;
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  imageMean: readonly number[];
  imageStd: readonly number[];
  rescaleFactor: number;
  doResize: boolean;
  doRescale: boolean;
  doNormalize: boolean;
  resample: number;
}

/** OpenAI CLIP mean / std (Qwen2-VL's defaults). */
export const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export const DEFAULT_IMAGE_PROCESSOR_CONFIG: Readonly<Qwen2VLImageProcessorConfig> = Object.freeze({
  minPixels: DEFAULT_MIN_PIXELS,
  maxPixels: DEFAULT_MAX_PIXELS,
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
  imageMean: OPENAI_CLIP_MEAN,
  imageStd: OPENAI_CLIP_STD,
  rescaleFactor: 1 / 255,
  doResize: true,
  doRescale: true,
  doNormalize: true,
  resample: PIL_RESAMPLE.BICUBIC,
});

function num(v: unknown, what: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    // "1/255" style fractions
    const m = /^\s*([0-9.eE+-]+)\s*\/\s*([0-9.eE+-]+)\s*$/.exec(v);
    const x = m ? Number(m[1]) / Number(m[2]) : Number(v);
    if (Number.isFinite(x)) return x;
  }
  throw new PreprocessError(`${what}: ${JSON.stringify(v)} is not a number`);
}

/**
 * A Qwen2VLImageProcessor configuration from preprocessor_config.json (snake_case keys; also
 * `size: {min_pixels, max_pixels}` or `{shortest_edge, longest_edge}` as newer files write it).
 * Missing keys take the upstream defaults.
 */
export function parseImageProcessorConfig(json: Record<string, unknown> = {}): Qwen2VLImageProcessorConfig {
  const c: Qwen2VLImageProcessorConfig = { ...DEFAULT_IMAGE_PROCESSOR_CONFIG };
  const size = (json.size ?? {}) as Record<string, unknown>;
  const pick = (...vs: unknown[]) => vs.find((v) => v !== undefined && v !== null);
  const minP = pick(json.min_pixels, size.min_pixels, size.shortest_edge);
  const maxP = pick(json.max_pixels, size.max_pixels, size.longest_edge);
  if (minP !== undefined) c.minPixels = num(minP, 'min_pixels');
  if (maxP !== undefined) c.maxPixels = num(maxP, 'max_pixels');
  if (json.patch_size !== undefined) c.patchSize = num(json.patch_size, 'patch_size');
  if (json.temporal_patch_size !== undefined) c.temporalPatchSize = num(json.temporal_patch_size, 'temporal_patch_size');
  if (json.merge_size !== undefined) c.mergeSize = num(json.merge_size, 'merge_size');
  if (Array.isArray(json.image_mean)) c.imageMean = json.image_mean.map((v) => num(v, 'image_mean'));
  if (Array.isArray(json.image_std)) c.imageStd = json.image_std.map((v) => num(v, 'image_std'));
  if (json.rescale_factor !== undefined) c.rescaleFactor = num(json.rescale_factor, 'rescale_factor');
  if (typeof json.do_resize === 'boolean') c.doResize = json.do_resize;
  if (typeof json.do_rescale === 'boolean') c.doRescale = json.do_rescale;
  if (typeof json.do_normalize === 'boolean') c.doNormalize = json.do_normalize;
  if (json.resample !== undefined) c.resample = num(json.resample, 'resample');
  for (const k of ['patchSize', 'temporalPatchSize', 'mergeSize'] as const) {
    if (!(Number.isInteger(c[k]) && c[k] > 0)) throw new PreprocessError(`${k}: must be a positive integer; got ${c[k]}`);
  }
  if (c.imageMean.length !== 3 || c.imageStd.length !== 3) throw new PreprocessError('image_mean / image_std: need 3 values');
  return c;
}

export interface PixelBatch {
  /** [rows, C * temporal_patch_size * patch_size^2], row-major */
  pixelValues: Float32Array;
  shape: [number, number];
  /** one (t, h, w) row per item, in patches (t in temporal patches) */
  gridThw: [number, number, number][];
}

export interface PreprocessOptions {
  /** override the processor's min/max pixels (e.g. qwen-vl-utils' video limits) */
  minPixels?: number;
  maxPixels?: number;
}

export class Qwen2VLImageProcessor {
  readonly config: Qwen2VLImageProcessorConfig;

  constructor(config: Partial<Qwen2VLImageProcessorConfig> = {}) {
    this.config = { ...DEFAULT_IMAGE_PROCESSOR_CONFIG, ...config };
  }

  static fromJson(json: Record<string, unknown>): Qwen2VLImageProcessor {
    return new Qwen2VLImageProcessor(parseImageProcessorConfig(json));
  }

  /** The (height, width) an image of this size is resized to. */
  targetSize(height: number, width: number, options: PreprocessOptions = {}): [number, number] {
    const { patchSize, mergeSize, doResize } = this.config;
    if (!doResize) return [height, width];
    return smartResize(height, width, patchSize * mergeSize,
      options.minPixels ?? this.config.minPixels, options.maxPixels ?? this.config.maxPixels);
  }

  /**
   * `_preprocess` on one item: a list of equally sized HWC uint8 frames (one for an image).
   * Returns the flattened patches and the item's grid.
   */
  preprocessFrames(frames: readonly Uint8Array[], height: number, width: number, options: PreprocessOptions = {}): PixelBatch {
    const cfg = this.config;
    if (frames.length === 0) throw new PreprocessError('video: has no frames');
    for (const f of frames) {
      if (f.length !== height * width * 3) throw new PreprocessError(`frame: has ${f.length} values; expected ${height}x${width}x3`);
    }
    const [rh, rw] = this.targetSize(height, width, options);
    const p = cfg.patchSize;
    const m = cfg.mergeSize;
    const tp = cfg.temporalPatchSize;
    if (rh % (p * m) !== 0 || rw % (p * m) !== 0) {
      throw new PreprocessError(`size: ${rh}x${rw} is not a multiple of patch_size * merge_size = ${p * m}`);
    }
    // per frame: resize (uint8), rescale (float64 -> float32), normalise (float32), CHW
    const mean = cfg.imageMean.map(Math.fround);
    const std = cfg.imageStd.map(Math.fround);
    const hw = rh * rw;
    const chw: Float32Array[] = frames.map((f) => {
      const img = cfg.doResize ? resizeU8(f, height, width, 3, rh, rw, cfg.resample) : f;
      const out = new Float32Array(3 * hw);
      for (let i = 0; i < hw; i++) {
        for (let c = 0; c < 3; c++) {
          let x = Math.fround(img[3 * i + c]);
          if (cfg.doRescale) x = Math.fround(img[3 * i + c] * cfg.rescaleFactor);
          if (cfg.doNormalize) x = Math.fround(Math.fround(x - mean[c]) / std[c]);
          out[c * hw + i] = x;
        }
      }
      return out;
    });
    // pad T to a multiple of temporal_patch_size with copies of the last frame
    while (chw.length % tp !== 0) chw.push(chw[chw.length - 1]);
    const gt = chw.length / tp;
    const gh = rh / p;
    const gw = rw / p;
    const cols = 3 * tp * p * p;
    const rows = gt * gh * gw;
    const out = new Float32Array(rows * cols);
    let r = 0;
    for (let t = 0; t < gt; t++) {
      for (let bh = 0; bh < gh / m; bh++) {
        for (let bw = 0; bw < gw / m; bw++) {
          for (let mh = 0; mh < m; mh++) {
            for (let mw = 0; mw < m; mw++) {
              const y0 = (bh * m + mh) * p;
              const x0 = (bw * m + mw) * p;
              let o = r * cols;
              for (let c = 0; c < 3; c++) {
                for (let k = 0; k < tp; k++) {
                  const fr = chw[t * tp + k];
                  for (let py = 0; py < p; py++) {
                    const at = c * hw + (y0 + py) * rw + x0;
                    for (let px = 0; px < p; px++) out[o++] = fr[at + px];
                  }
                }
              }
              r++;
            }
          }
        }
      }
    }
    return { pixelValues: out, shape: [rows, cols], gridThw: [[gt, gh, gw]] };
  }

  /** Images (each its own item, one frame repeated to temporal_patch_size), concatenated. */
  preprocessImages(images: readonly ImageU8[], options: PreprocessOptions = {}): PixelBatch {
    return concatBatches(images.map((im) => this.preprocessFrames([im.data], im.height, im.width, options)), this.config);
  }

  /** Videos (THWC uint8 frames, already sampled), concatenated. */
  preprocessVideos(videos: readonly VideoU8[], options: PreprocessOptions = {}): PixelBatch {
    return concatBatches(videos.map((v) => this.preprocessFrames(splitFrames(v), v.height, v.width, options)), this.config);
  }
}

function concatBatches(parts: PixelBatch[], cfg: Qwen2VLImageProcessorConfig): PixelBatch {
  const cols = 3 * cfg.temporalPatchSize * cfg.patchSize * cfg.patchSize;
  const rows = parts.reduce((s, b) => s + b.shape[0], 0);
  const pixelValues = new Float32Array(rows * cols);
  let at = 0;
  for (const b of parts) {
    pixelValues.set(b.pixelValues, at);
    at += b.pixelValues.length;
  }
  return { pixelValues, shape: [rows, cols], gridThw: parts.flatMap((b) => b.gridThw) };
}

/** The frames of a THWC clip as HWC views. */
export function splitFrames(v: VideoU8): Uint8Array[] {
  const n = v.height * v.width * 3;
  if (v.data.length !== v.frames * n) throw new PreprocessError(`video: has ${v.data.length} values; expected ${v.frames}x${v.height}x${v.width}x3`);
  return Array.from({ length: v.frames }, (_, t) => v.data.subarray(t * n, (t + 1) * n));
}

// ------------------------------------------------------------------ video helpers

/**
 * Our float video ([3, T, H, W] RGB in [-1, 1]) as uint8 THWC frames, with the project's byte
 * convention: round((v + 1) / 2 * 255) after clamping (NaN -> 0).
 */
export function videoToU8(v: Video): VideoU8 {
  const { frames, height, width } = v;
  const hw = height * width;
  const out = new Uint8Array(frames * hw * 3);
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < frames; t++) {
      const src = (c * frames + t) * hw;
      for (let i = 0; i < hw; i++) {
        const x = v.data[src + i];
        out[(t * hw + i) * 3 + c] = x <= -1 ? 0 : x >= 1 ? 255 : x > -1 ? Math.round(((x + 1) / 2) * 255) : 0;
      }
    }
  }
  return { data: out, frames, height, width };
}

/** A frame of our [3, H, W] float layout as a uint8 HWC image. */
export function frameToU8(frame: Float32Array, height: number, width: number): ImageU8 {
  const u = videoToU8({ data: frame, frames: 1, height, width });
  return { data: u.data, height, width };
}

export interface FrameSamplingOptions {
  /** target sampling rate (qwen-vl-utils FPS = 2.0) */
  fps?: number;
  /** an explicit frame count instead of fps (rounded to a multiple of frameFactor) */
  nframes?: number;
  minFrames?: number;
  maxFrames?: number;
  /** frame-count granularity (FRAME_FACTOR = 2 = temporal_patch_size) */
  frameFactor?: number;
}

export interface FrameSampling {
  /** source frame indices, increasing */
  indices: number[];
  /** the rate of the sampled frames: nframes / total * source fps */
  fps: number;
}

/**
 * qwen-vl-utils' `smart_nframes` + index choice. With `nframes`: round_by_factor(nframes, 2).
 * Otherwise n = total / sourceFps * fps, clamped to [ceil_by_factor(minFrames = 4, 2),
 * floor_by_factor(maxFrames = min(768, total), 2)] and to total, then floor_by_factor(n, 2).
 * The count must lie in [2, total] (else PreprocessError). Indices are
 * round(linspace(0, total - 1, n)) computed in float32 as torch does, rounding half to even;
 * the sampled rate is n / total * sourceFps, and second_per_grid_t = temporal_patch_size / it.
 */
export function sampleVideoFrames(totalFrames: number, sourceFps: number, options: FrameSamplingOptions = {}): FrameSampling {
  const ff = options.frameFactor ?? 2;
  const roundBy = (x: number) => pythonRound(x / ff) * ff;
  const ceilBy = (x: number) => Math.ceil(x / ff) * ff;
  const floorBy = (x: number) => Math.floor(x / ff) * ff;
  if (options.fps !== undefined && options.nframes !== undefined) throw new PreprocessError('fps: cannot be given with nframes; give one');
  let n: number;
  if (options.nframes !== undefined) n = roundBy(options.nframes);
  else {
    const fps = options.fps ?? 2;
    const minFrames = ceilBy(options.minFrames ?? 4);
    const maxFrames = floorBy(options.maxFrames ?? Math.min(768, totalFrames));
    n = (totalFrames / sourceFps) * fps;
    n = Math.min(Math.min(Math.max(n, minFrames), maxFrames), totalFrames);
    n = floorBy(n);
  }
  if (!(ff <= n && n <= totalFrames)) {
    throw new PreprocessError(`nframes: should be in [${ff}, ${totalFrames}], got ${n}`);
  }
  return { indices: linspaceRound(0, totalFrames - 1, n), fps: (n / Math.max(totalFrames, 1e-6)) * sourceFps };
}

/** torch.linspace(start, end, steps) in float32, then torch.round (half to even). */
function linspaceRound(start: number, end: number, steps: number): number[] {
  const f = Math.fround;
  if (steps === 1) return [pythonRound(f(start))];
  const step = f(f(end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Array.from({ length: steps }, (_, i) =>
    pythonRound(i < half ? f(start + f(step * i)) : f(end - f(step * (steps - i - 1)))));
}

/** Pick frames of a THWC clip. */
export function selectFrames(v: VideoU8, indices: readonly number[]): VideoU8 {
  const n = v.height * v.width * 3;
  const out = new Uint8Array(indices.length * n);
  indices.forEach((t, k) => {
    if (!(t >= 0 && t < v.frames)) throw new PreprocessError(`frame index: ${t} out of range 0..${v.frames - 1}`);
    out.set(v.data.subarray(t * n, (t + 1) * n), k * n);
  });
  return { data: out, frames: indices.length, height: v.height, width: v.width };
}

/** second_per_grid_t of a video sampled at `fps` (Qwen2_5_VLProcessor). */
export function secondPerGridT(temporalPatchSize: number, fps: number): number {
  return temporalPatchSize / fps;
}

export interface PreparedVideo {
  batch: PixelBatch;
  fps: number;
  secondPerGridT: number;
  indices: number[];
}

/** Sample a clip at the requested rate and run the processor on the sampled frames. */
export function prepareVideo(
  processor: Qwen2VLImageProcessor, video: VideoU8, sourceFps: number,
  sampling: FrameSamplingOptions = {}, options: PreprocessOptions = {},
): PreparedVideo {
  const s = sampleVideoFrames(video.frames, sourceFps, { frameFactor: processor.config.temporalPatchSize, ...sampling });
  const batch = processor.preprocessVideos([selectFrames(video, s.indices)], options);
  return { batch, fps: s.fps, secondPerGridT: secondPerGridT(processor.config.temporalPatchSize, s.fps), indices: s.indices };
}
