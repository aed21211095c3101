// Video2World: continue a clip. The last `condFrames` frames of the input (resized to the output
// size) are padded to the output length — with zeros for Cosmos-1.0 (CosmosVideoToWorldPipeline),
// by repeating the last frame for Predict2 / Predict2.5 — encoded with the VAE and normalised
// into the sampler's latent space; the first (condFrames - 1) // tc + 1 latent frames are the
// conditioning the samplers re-impose (EDM: noise-augmented input frames + condition mask, clean
// x0 on those frames; flow: cond_mask blend, per-frame timesteps, ground-truth velocity).
// Spec: dit.md §5 (video2world 1.0) and §6. Everything else is text2world's (text2world.ts).
import type { Backend } from '../engine/backend.js';
import * as F from '../engine/ops.js';
import { readVideo } from '../io/open-video.js';
import { type Rational, type Video, padVideo, sliceFrames } from '../io/video.js';
import {
  type LoadedVae, PipelineInputError, type SizePlan, type WorldConditioning, type WorldModelInfo, type WorldOptions,
  type WorldResult, inspectWorldModel, latentSigmaData, normalizeLatents, resolveSettings, runWorld,
} from './text2world.js';

export interface Video2WorldOptions extends WorldOptions {
  /** the input clip: a .y4m file, a folder of PNG frames, or one .png image */
  input: string;
  /** pixel frames taken from the end of the input as conditioning (default min(input, 1 + tc)) */
  condFrames?: number;
  /** Cosmos-1.0 noise augmentation of the conditioning latents (default 0.001) */
  augmentSigma?: number;
  /** frame rate assumed for PNG input */
  inputFps?: Rational;
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

/** The video2world conditioning for a loaded VAE and a size plan. */
export async function encodeConditioning(info: WorldModelInfo, vae: LoadedVae, plan: SizePlan, clip: Video, condFrames: number, augmentSigma?: number): Promise<WorldConditioning> {
  const tc = vae.model.temporalCompression;
  const given = resizeClip(sliceFrames(clip, clip.frames - condFrames, clip.frames), plan.height, plan.width);
  const full = conditioningClip(given, plan.frames, info.family === 'cosmos1' ? 'zeros' : 'last');
  const backend = vae.model.quant_conv.weight.backend;
  const x = F.fromArray(backend, full.data, [1, 3, full.frames, full.height, full.width]);
  let z;
  try {
    z = vae.model.encode(x);
  } finally {
    x.dispose();
  }
  try {
    const latents = normalizeLatents(z, vae, latentSigmaData(info));
    return { latents, numCondLatentFrames: Math.floor((condFrames - 1) / tc) + 1, augmentSigma };
  } finally {
    z.dispose();
  }
}

/** Video2World on a model folder. */
export async function video2world(modelDir: string, backend: Backend, o: Video2WorldOptions): Promise<WorldResult> {
  const info = inspectWorldModel(modelDir);
  const t = info.transformer;
  if (t.inChannels !== t.outChannels + 1) {
    throw new PipelineInputError('--model', `${info.transformerDir} has in_channels ${t.inChannels}: a text2world model; video2world needs the condition-mask channel (in_channels ${t.outChannels + 1})`);
  }
  if (!info.vae) throw new PipelineInputError('--model', `${info.vaeDir}: ${info.vaeUnsupported}; video2world needs it to encode the input`);
  const clip = await readVideo(o.input, o.inputFps);
  if (clip.frames < 1) throw new PipelineInputError('--input', `${o.input} has no frames`);
  // default size: the input's, rounded down to what the VAE and the patch size take
  const unit = (p: number) => info.vae!.spatialCompression * p;
  const fit = (n: number, u: number) => Math.max(u, Math.floor(n / u) * u);
  const st = resolveSettings(info, o, { height: fit(clip.height, unit(t.patchSize[1])), width: fit(clip.width, unit(t.patchSize[2])) });
  const tc = info.vae.temporalCompression;
  const condFrames = o.condFrames ?? Math.min(clip.frames, 1 + tc);
  if (!Number.isInteger(condFrames) || condFrames < 1) throw new PipelineInputError('--cond-frames', `must be a positive integer, got ${condFrames}`);
  if (condFrames > clip.frames) throw new PipelineInputError('--cond-frames', `${condFrames} frames asked for, the input ${o.input} has ${clip.frames}`);
  if (condFrames > st.frames) throw new PipelineInputError('--cond-frames', `${condFrames} conditioning frames do not fit in the ${st.frames} output frames (--frames)`);
  const aug = o.augmentSigma;
  if (aug !== undefined && !(Number.isFinite(aug) && aug >= 0)) throw new PipelineInputError('--augment-sigma', `must be a number >= 0, got ${aug}`);
  o.onPhase?.(`input ${o.input}: ${clip.frames} frames ${clip.width}x${clip.height}; conditioning on the last ${condFrames}` +
    (clip.width !== st.width || clip.height !== st.height ? `, resized to ${st.width}x${st.height}` : ''));
  return runWorld(info, backend, o, st, (vae, plan) => encodeConditioning(info, vae, plan, clip, condFrames, aug));
}
