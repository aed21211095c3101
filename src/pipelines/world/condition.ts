// The condition phase of video2world: the last `condFrames` frames of the input (resized to the
// output size) are padded to the output length, encoded with the VAE and normalised into the
// sampler's space; the first (condFrames - 1) // tc + 1 latent frames are the conditioning the
// samplers re-impose. Spec: dit.md §5 (1.0) and §6, wan_vae.md §9. Per family, as upstream:
//   Cosmos-1.0  zeros after the given frames (CosmosVideoToWorldPipeline)
//   Predict2    the last frame repeated; the Wan posterior SAMPLED (the pipeline's generator)
//   Predict2.5  an image: zeros after it; a clip: its last 1 or 5 frames (1 or 2 latent frames),
//               the last frame repeated; the Wan posterior's MODE
import { checkFrameLimits, type InputLimits } from '../../io/limits.js';
import { readVideo } from '../../io/open-video.js';
import { type FrameSource, type Rational, type Video, padVideo, sliceFrames, stackFrames } from '../../io/video.js';
import { type RunOptions, stage } from '../progress.js';
import { PipelineInputError } from './errors.js';
import type { FileSystem } from '../../io/files.js';
import type { WorldFamily } from './folder.js';
import type { WorldConditioning } from './sample.js';
import { GaussianNoise } from '../../models/dit/noise.js';
import { type LoadedVae, type Posterior, encodeClip } from './vae.js';

/** A clip to continue or follow: in memory, a frame source, or a path (.y4m, PNG frames folder, .png). */
export type ClipInput = Video | FrameSource | string;

/** The clip as a Video; `fps` is assumed where the input has none (PNG). A path's headers, or a source's size, are checked against `limits` (the whole clip is held). */
export async function readClip(input: ClipInput, fps?: Rational, fs?: FileSystem, limits?: InputLimits): Promise<Video> {
  if (typeof input === 'string') return readVideo(input, fps, fs, { limits });
  if ('data' in input) return input;
  try {
    checkFrameLimits('input', input.width, input.height, input.frameCount, limits);
  } catch (e) {
    await input.close();
    throw e;
  }
  const frames: Float32Array[] = [];
  try {
    for await (const f of input.frames()) frames.push(f);
  } finally {
    await input.close();
  }
  return stackFrames(frames, input.height, input.width, input.fps ?? fps);
}

/** Bilinear resize of a [3, T, H, W] clip (half-pixel centres, no antialiasing: torch's bilinear, align_corners=False). */
export function resizeClip(v: Video, height: number, width: number): Video {
  if (v.height === height && v.width === width) return v;
  const axis = (inSize: number, outSize: number) => {
    const i0 = new Int32Array(outSize);
    const i1 = new Int32Array(outSize);
    const f = new Float32Array(outSize);
    const scale = inSize / outSize;
    for (let o = 0; o < outSize; o++) {
      const src = Math.max(0, (o + 0.5) * scale - 0.5);
      const a = Math.min(Math.floor(src), inSize - 1);
      i0[o] = a;
      i1[o] = Math.min(a + 1, inSize - 1);
      f[o] = src - a;
    }
    return { i0, i1, f };
  };
  const ay = axis(v.height, height);
  const ax = axis(v.width, width);
  const out: Video = { data: new Float32Array(3 * v.frames * height * width), frames: v.frames, height, width };
  if (v.fps) out.fps = v.fps;
  for (let p = 0; p < 3 * v.frames; p++) {
    const src = p * v.height * v.width;
    const dst = p * height * width;
    for (let y = 0; y < height; y++) {
      const r0 = src + ay.i0[y] * v.width;
      const r1 = src + ay.i1[y] * v.width;
      const fy = ay.f[y];
      for (let x = 0; x < width; x++) {
        const fx = ax.f[x];
        const top = v.data[r0 + ax.i0[x]] * (1 - fx) + v.data[r0 + ax.i1[x]] * fx;
        const bot = v.data[r1 + ax.i0[x]] * (1 - fx) + v.data[r1 + ax.i1[x]] * fx;
        out.data[dst + y * width + x] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return out;
}

/** The conditioning clip of the output length: the given frames, then zeros (1.0) or the last frame repeated. */
export function conditioningClip(frames: Video, total: number, padWith: 'zeros' | 'last'): Video {
  if (padWith === 'last') return padVideo(frames, total, frames.height, frames.width);
  const hw = frames.height * frames.width;
  const out: Video = { data: new Float32Array(3 * total * hw), frames: total, height: frames.height, width: frames.width };
  for (let c = 0; c < 3; c++) out.data.set(frames.data.subarray(c * frames.frames * hw, (c + 1) * frames.frames * hw), c * total * hw);
  return out;
}

/** What video2world conditions on, as decided from the input and the settings. */
export interface ConditionPlan {
  /** input frames taken from the end of the clip */
  condFrames: number;
  /** output size and length */
  frames: number;
  height: number;
  width: number;
  augmentSigma?: number;
  /** the run's seed: Predict2's posterior draw is a stream of its own (`<seed>/posterior`), so the initial noise matches text2world's */
  seed: number | string;
}

/** Check the conditioning frame count and noise augmentation against the input and the output length. */
export function checkCondition(clip: Video, frames: number, condFrames: number, augmentSigma: number | undefined, family?: WorldFamily, tc = 4): void {
  if (!Number.isInteger(condFrames) || condFrames < 1) throw new PipelineInputError('condFrames', `must be a positive integer, got ${condFrames}`);
  if (family === 'predict2.5' && condFrames !== 1 && condFrames !== 1 + tc) {
    throw new PipelineInputError('condFrames', `Predict2.5 conditions on 1 or 2 latent frames: 1 or ${1 + tc} input frames, got ${condFrames}`);
  }
  if (condFrames > clip.frames) throw new PipelineInputError('condFrames', `${condFrames} frames asked for, the input has ${clip.frames}`);
  if (condFrames > frames) throw new PipelineInputError('condFrames', `${condFrames} conditioning frames do not fit in the ${frames} output frames`);
  if (augmentSigma !== undefined && !(Number.isFinite(augmentSigma) && augmentSigma >= 0)) {
    throw new PipelineInputError('augmentSigma', `must be a number >= 0, got ${augmentSigma}`);
  }
}

/** The video2world conditioning: encoded and normalised, with its latent frame count. Reports stage 'condition'. */
export function encodeCondition(vae: LoadedVae, family: WorldFamily, clip: Video, p: ConditionPlan, sigmaData: number, run: RunOptions): WorldConditioning {
  const report = stage(run, 'condition', 'clips', 1);
  report(0, { frames: p.condFrames });
  const given = resizeClip(sliceFrames(clip, clip.frames - p.condFrames, clip.frames), p.height, p.width);
  const zeros = family === 'cosmos1' || (family === 'predict2.5' && clip.frames === 1);
  // padded as conditioningClip pads, piece by piece inside the encode (never the whole clip on the host)
  const full = { clip: given, frames: p.frames, padWith: zeros ? 'zeros' : 'last' } as const;
  const posterior: Posterior = family === 'predict2'
    ? { kind: 'sample', noise: new GaussianNoise(`${p.seed}/posterior`).source(vae.backend) }
    : { kind: 'mode' };
  const latents = encodeClip(vae, full, sigmaData, posterior);
  const tc = vae.temporalCompression;
  const cond = { latents, numCondLatentFrames: Math.floor((p.condFrames - 1) / tc) + 1, augmentSigma: p.augmentSigma };
  try {
    report(1);
  } catch (e) {
    latents.dispose();
    throw e;
  }
  return cond;
}
