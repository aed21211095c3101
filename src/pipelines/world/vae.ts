// The VAE phases of the world pipelines: a clip encoded into the sampler's latent space (the
// conditioning frames of video2world, the control videos of transfer) and sampler latents decoded
// to a clip. Two implementations sit behind one interface: the Wan2.1 VAE (Predict2, Predict2.5,
// Transfer2.5; models/wan) and the Cosmos tokenizers (Cosmos-1.0: a Cosmos-Tokenizer CV folder or
// a diffusers AutoencoderKLCosmos; models/tokenizer).
//
// The sampler's space is the VAE latent normalised by the pipelines' rule,
// (z - mean) * sigma_data / std with diffusers' latents_mean / latents_std (z * sigma_data without
// them). The three Cosmos2 forms ((z - mean) / std * sigma_data with sigma_data 1, (z - mean) *
// (1 / std), (z - mean) / std) agree to float rounding (spec wan_vae.md §9).
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { type FileSystem, fileSystem, readJsonObjectIfPresent } from '../../io/files.js';
import { join } from '../../io/path.js';
import { checkFiniteValues } from '../finite.js';
import type { Video } from '../../io/video.js';
import type { NoiseSource } from '../../models/dit/noise.js';
import type { Config } from '../../models/load.js';
import { AutoencoderKLCosmos, type LatentStats, denormalizeLatent, latentStats, normalizeLatent } from '../../models/tokenizer/diffusers.js';
import { loadTokenizer } from '../../models/tokenizer/load.js';
import { CausalContinuousVideoTokenizer } from '../../models/tokenizer/video.js';
import { type AutoencoderKLWan, loadWanVae } from '../../models/wan/autoencoder.js';
import { type RunOptions, stage } from '../progress.js';
import { PipelineFilesError } from './errors.js';
import type { SchedulerChoice } from './folder.js';

/**
 * Which latent a Wan posterior gives: its mean (Predict2.5's `sample_mode="argmax"`) or a draw
 * mean + std * noise (Predict2 video2world and Transfer2.5 sample with the pipeline's generator).
 * The Cosmos tokenizers are deterministic and ignore it.
 */
export type Posterior = { kind: 'mode' } | { kind: 'sample'; noise: NoiseSource };

export interface LoadedVae {
  readonly kind: 'wan' | 'cosmos';
  readonly backend: Backend;
  readonly latentChannels: number;
  readonly temporalCompression: number;
  readonly spatialCompression: number;
  /** the latent statistics (diffusers' latents_mean / latents_std), or null */
  readonly stats: LatentStats | null;
  /** a clip [3, T, H, W] in [-1, 1] -> its latent [1, C, t, h, w] (not normalised) */
  encode(clip: Video | PaddedClip, posterior: Posterior): Tensor;
  /** a latent [1, C, t, h, w] -> the clip in [-1, 1] (clamped), at frame rate `fps`, streamed to the host frame group by frame group */
  decode(z: Tensor, fps: number, run?: RunOptions): Promise<Video>;
  dispose(): void;
}

/**
 * A clip padded at its end to `frames` frames (zeros, or its last frame repeated) without the
 * padding ever being made on the host: the Wan VAE reads a clip piece by piece, so a 5-frame
 * conditioning clip padded to 93 frames costs 5 frames, not 93 (1 GB at 704 x 1280).
 */
export interface PaddedClip {
  clip: Video;
  frames: number;
  padWith: 'zeros' | 'last';
}

/** Frames [start, start + count) of a clip, padded or not, as one [3, count, H, W] array. */
function clipPiece(c: Video | PaddedClip, start: number, count: number): Float32Array {
  const v = 'clip' in c ? c.clip : c;
  const pad = 'clip' in c ? c.padWith : 'last';
  const plane = v.height * v.width;
  const out = new Float32Array(3 * count * plane);
  for (let t = start; t < start + count; t++) {
    const src = t < v.frames ? t : pad === 'last' ? v.frames - 1 : -1;
    if (src < 0) continue;
    for (let ch = 0; ch < 3; ch++) out.set(v.data.subarray((ch * v.frames + src) * plane, (ch * v.frames + src + 1) * plane), (ch * count + t - start) * plane);
  }
  return out;
}

function clipFrames(c: Video | PaddedClip): { frames: number; height: number; width: number } {
  return 'clip' in c ? { frames: c.frames, height: c.clip.height, width: c.clip.width } : c;
}

function cosmosVae(m: CausalContinuousVideoTokenizer, backend: Backend): LoadedVae {
  const stats = m instanceof AutoencoderKLCosmos ? m.latentStats(backend) : m.latentMeanStd ? latentStats(backend, m.latentMeanStd.mean, m.latentMeanStd.std, m.latentChannels) : null;
  return {
    kind: 'cosmos', backend, latentChannels: m.latentChannels, temporalCompression: m.temporalCompression, spatialCompression: m.spatialCompression, stats,
    encode(clip) {
      const { frames, height, width } = clipFrames(clip);
      const data = 'clip' in clip ? clipPiece(clip, 0, frames) : clip.data;
      return m.encode(F.fromArray(backend, data, [1, 3, frames, height, width]));
    },
    async decode(z, fps, run) {
      const report = run ? stage(run, 'decode', 'clips', 1) : null;
      report?.(0);
      const out = m.decode(z);
      const [, , T, H, W] = out.shape;
      let data: Float32Array;
      if (shapeOnly(backend)) data = new Float32Array(3 * T * H * W);
      else {
        try {
          data = (await out.read()) as Float32Array;
          checkFiniteValues(data, { component: 'vae decoder' });
        } catch (e) {
          out.dispose();
          throw e;
        }
        for (let i = 0; i < data.length; i++) data[i] = Math.max(-1, Math.min(1, data[i]));
      }
      out.dispose();
      report?.(1);
      return { data, frames: T, height: H, width: W, fps: fpsRational(fps) };
    },
    dispose() {
      stats?.mean.dispose();
      stats?.std.dispose();
      m.dispose();
    },
  };
}

function wanVae(m: AutoencoderKLWan, backend: Backend): LoadedVae {
  const stats = m.latentStats(backend);
  return {
    kind: 'wan', backend, latentChannels: m.latentChannels, temporalCompression: m.temporalCompression, spatialCompression: m.spatialCompression, stats,
    encode(clip, posterior) {
      const { frames, height, width } = clipFrames(clip);
      // one group of frames on the device at a time: the clip is [3, T, H, W] on the host
      const p = m.encodeFrames(frames, (start, count) => F.fromArray(backend, clipPiece(clip, start, count), [1, 3, count, height, width]));
      if (posterior.kind === 'mode') {
        p.logvar.dispose();
        return p.mean;
      }
      try {
        return scope(() => F.add(p.mean, F.mul(F.exp(F.scale(p.logvar, 0.5)), posterior.noise(p.mean.shape))));
      } finally {
        p.dispose();
      }
    },
    async decode(z, fps, run) {
      const [, , t, h, w] = z.shape;
      const T = 1 + m.temporalCompression * (t - 1);
      const H = h * m.spatialCompression;
      const W = w * m.spatialCompression;
      const plane = H * W;
      const data = new Float32Array(3 * T * plane);
      const report = run ? stage(run, 'decode', 'frames', T) : null;
      report?.(0);
      await m.decodeFrames(z, async (frames, first) => {
        const n = frames.shape[2];
        if (!shapeOnly(backend)) {
          const part = (await frames.read()) as Float32Array;
          checkFiniteValues(part, { component: 'vae decoder', step: `frames ${first + 1}-${first + n}` });
          for (let c = 0; c < 3; c++) data.set(part.subarray(c * n * plane, (c + 1) * n * plane), (c * T + first) * plane);
        }
        report?.(first + n);
      }, { signal: run?.signal });
      return { data, frames: T, height: H, width: W, fps: fpsRational(fps) };
    },
    dispose() {
      stats?.mean.dispose();
      stats?.std.dispose();
      m.dispose();
    },
  };
}

/**
 * The plan backend holds no values (src/engine/plan/): a clip decoded there is not copied to the
 * host (its zeros would cost host memory for nothing), the Video returned is zeros of its size.
 */
function shapeOnly(backend: Backend): boolean {
  return backend.name === 'plan';
}

/** The VAE folder on `backend`: an AutoencoderKLWan, or a continuous video tokenizer (Cosmos-Tokenizer CV or AutoencoderKLCosmos). */
export async function loadVae(dir: string, backend: Backend, config?: Config, fs: FileSystem = fileSystem()): Promise<LoadedVae> {
  const json = config ?? (await readJsonObjectIfPresent(join(dir, 'config.json'), 'vae config.json', fs));
  if (json?._class_name === 'AutoencoderKLWan') return wanVae(await loadWanVae(dir, backend, { config: json, fs }), backend);
  const m = await loadTokenizer(dir, backend, { config, fs });
  if (!(m instanceof CausalContinuousVideoTokenizer)) {
    m.dispose();
    throw new PipelineFilesError(dir, 'the VAE must be an AutoencoderKLWan or a continuous video tokenizer (Cosmos-Tokenizer CV or a diffusers AutoencoderKLCosmos)');
  }
  return cosmosVae(m, backend);
}

/** sigma_data of a scheduler's latent space. */
export function latentSigmaData(s: SchedulerChoice): number {
  return s.kind === 'edm' ? s.config.sigmaData : s.kind === 'flow-euler' ? s.config.sigmaData : 1;
}

/** A clip [3, T, H, W] in [-1, 1] encoded and normalised into the sampler's space: [1, C, t, h, w]. */
export function encodeClip(vae: LoadedVae, clip: Video | PaddedClip, sigmaData: number, posterior: Posterior = { kind: 'mode' }): Tensor {
  return scope(() => normalizeLatent(vae.encode(clip, posterior), vae.stats, sigmaData));
}

/** Sampler latents decoded to a clip in [-1, 1] (clamped), with frame rate `fps`. Reports stage 'decode'. */
export async function decodeLatents(latents: Tensor, vae: LoadedVae, sigmaData: number, fps: number, run?: RunOptions): Promise<Video> {
  const z = denormalizeLatent(latents, vae.stats, sigmaData);
  try {
    return await vae.decode(z, fps, run);
  } finally {
    z.dispose();
  }
}

export function fpsRational(fps: number): { num: number; den: number } {
  if (Number.isInteger(fps)) return { num: fps, den: 1 };
  return { num: Math.round(fps * 1000), den: 1000 };
}
