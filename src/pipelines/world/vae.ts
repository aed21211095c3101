// The VAE phases of the world pipelines: a clip encoded into the sampler's latent space (the
// conditioning frames of video2world, the control videos of transfer) and sampler latents decoded
// to a clip. The sampler's space is the VAE latent normalised by the pipelines' rule,
// (z - mean) * sigma_data / std (diffusers' latents_mean / latents_std; z * sigma_data without
// them): models/tokenizer/diffusers.ts normalizeLatent / denormalizeLatent.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import type { Video } from '../../io/video.js';
import type { Config } from '../../models/load.js';
import { AutoencoderKLCosmos, type LatentStats, denormalizeLatent, normalizeLatent } from '../../models/tokenizer/diffusers.js';
import { loadTokenizer } from '../../models/tokenizer/load.js';
import { CausalContinuousVideoTokenizer } from '../../models/tokenizer/video.js';
import { PipelineFilesError } from './errors.js';
import type { SchedulerChoice } from './folder.js';

export interface LoadedVae {
  model: CausalContinuousVideoTokenizer;
  /** the latent statistics [1, C, t, 1, 1] (diffusers' latents_mean / latents_std), or null */
  stats: LatentStats | null;
  dispose(): void;
}

/** A continuous video tokenizer folder (Cosmos-Tokenizer CV or AutoencoderKLCosmos) on `backend`. */
export async function loadVae(dir: string, backend: Backend, config?: Config, fs?: FileSystem): Promise<LoadedVae> {
  const m = await loadTokenizer(dir, backend, { config, fs });
  if (!(m instanceof CausalContinuousVideoTokenizer)) {
    m.dispose();
    throw new PipelineFilesError(dir, 'the VAE must be a continuous video tokenizer (Cosmos-Tokenizer CV or a diffusers AutoencoderKLCosmos)');
  }
  const stats = m instanceof AutoencoderKLCosmos ? m.latentStats(backend) : null;
  return {
    model: m,
    stats,
    dispose() {
      stats?.mean.dispose();
      stats?.std.dispose();
      m.dispose();
    },
  };
}

/** sigma_data of a scheduler's latent space. */
export function latentSigmaData(s: SchedulerChoice): number {
  return s.kind === 'edm' ? s.config.sigmaData : s.kind === 'flow-euler' ? s.config.sigmaData : 1;
}

/** A clip [3, T, H, W] in [-1, 1] encoded and normalised into the sampler's space: [1, C, t, h, w]. */
export function encodeClip(vae: LoadedVae, clip: Video, sigmaData: number): Tensor {
  const backend = vae.model.quant_conv.weight.backend;
  return scope(() => normalizeLatent(vae.model.encode(F.fromArray(backend, clip.data, [1, 3, clip.frames, clip.height, clip.width])), vae.stats, sigmaData));
}

/** Sampler latents decoded to a clip in [-1, 1] (clamped), with frame rate `fps`. */
export async function decodeLatents(latents: Tensor, vae: LoadedVae, sigmaData: number, fps: number): Promise<Video> {
  const out = scope(() => vae.model.decode(denormalizeLatent(latents, vae.stats, sigmaData)));
  const [, , T, H, W] = out.shape;
  const data = (await out.read()) as Float32Array;
  out.dispose();
  for (let i = 0; i < data.length; i++) data[i] = Math.max(-1, Math.min(1, data[i]));
  return { data, frames: T, height: H, width: W, fps: fpsRational(fps) };
}

export function fpsRational(fps: number): { num: number; den: number } {
  if (Number.isInteger(fps)) return { num: fps, den: 1 };
  return { num: Math.round(fps * 1000), den: 1000 };
}
