// Video2World: continue a clip with a diffusers-style Cosmos model folder. The last `condFrames`
// frames of the input, resized to the output size, condition the generation (world/condition.ts);
// the rest is text2world's (world/run.ts). Spec: dit.md §5 (1.0) and §6.
import { throwIfAborted } from '../engine/errors.js';
import type { InputLimits } from '../io/limits.js';
import { probeVideo } from '../io/open-video.js';
import type { Rational } from '../io/video.js';
import { type ClipInput, checkCondition, encodeCondition, readClip } from './world/condition.js';
import { PipelineInputError } from './world/errors.js';
import { openWorldModel } from './world/model.js';
import { type WorldOptions, type WorldResult, runWorld } from './world/run.js';
import { resolveSettings } from './world/settings.js';
import { latentSigmaData } from './world/vae.js';

export interface Video2WorldOptions extends WorldOptions {
  /** the clip to continue (a path is read as .y4m, a folder of PNG frames, or one .png) */
  input: ClipInput;
  /** frame rate assumed for input that has none (PNG) */
  inputFps?: Rational;
  /** input frames taken from its end as conditioning (default min(input, 1 + the VAE's temporal compression); Predict2.5 takes 1 or 5) */
  condFrames?: number;
  /** Cosmos-1.0 noise augmentation of the conditioning latents (default 0.001) */
  augmentSigma?: number;
  /** what the input's headers may claim (default DEFAULT_LIMITS; the whole clip is held) */
  limits?: InputLimits;
}

export interface Video2WorldResult extends WorldResult {
  /** what the generation was conditioned on */
  condition: { inputFrames: number; inputHeight: number; inputWidth: number; condFrames: number; latentFrames: number };
}

export async function video2world(o: Video2WorldOptions): Promise<Video2WorldResult> {
  throwIfAborted(o.signal);
  // the input's header first: a bad or oversized clip is refused before the folder is looked at
  if (typeof o.input === 'string') await probeVideo(o.input, { limits: o.limits, whole: true }, o.fs);
  const m = await openWorldModel(o);
  const { info } = m;
  const t = info.transformer;
  if (t.inChannels !== t.outChannels + 1) {
    throw new PipelineInputError('model', `${info.transformerDir} has in_channels ${t.inChannels}: a text2world model; video2world needs the condition-mask channel (in_channels ${t.outChannels + 1})`);
  }
  const vae = info.vae;
  if (!vae) throw new PipelineInputError('model', `${info.vaeDir}: ${info.vaeUnsupported}; video2world needs it to encode the input`);
  const clip = await readClip(o.input, o.inputFps, m.fs, o.limits);
  if (clip.frames < 1) throw new PipelineInputError('input', 'the clip has no frames');
  // default size: the input's, rounded down to what the VAE and the patch size take
  const roundDown = (n: number, p: number) => {
    const u = vae.spatialCompression * p;
    return Math.max(u, Math.floor(n / u) * u);
  };
  const st = resolveSettings(o, info.defaults, { height: roundDown(clip.height, t.patchSize[1]), width: roundDown(clip.width, t.patchSize[2]) });
  const tc = vae.temporalCompression;
  // Predict2.5 takes 1 or 2 latent frames (num_latent_conditional_frames, default 2)
  const condFrames = o.condFrames ?? (info.family === 'predict2.5' ? (clip.frames >= 1 + tc ? 1 + tc : 1) : Math.min(clip.frames, 1 + tc));
  checkCondition(clip, st.frames, condFrames, o.augmentSigma, info.family, tc);
  const plan = { condFrames, frames: st.frames, height: st.height, width: st.width, augmentSigma: o.augmentSigma, seed: st.seed };
  let latentFrames = 0;
  const r = await runWorld(m, o, st, (loadedVae) => {
    const cond = encodeCondition(loadedVae, info.family, clip, plan, latentSigmaData(info.scheduler), o);
    latentFrames = cond.numCondLatentFrames;
    return cond;
  });
  return { ...r, condition: { inputFrames: clip.frames, inputHeight: clip.height, inputWidth: clip.width, condFrames, latentFrames } };
}
