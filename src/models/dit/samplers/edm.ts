// Cosmos-1.0 Diffusion sampling: diffusers' EDMEulerScheduler driven as CosmosTextToWorldPipeline
// and CosmosVideoToWorldPipeline drive it (spec dit.md §5).
//
//   sigmas   Karras (rho 7) from sigma_max to sigma_min in float64, cast to float32, plus a final
//            sigma (= the last one for final_sigmas_type "sigma_min", so the last step has dt = 0)
//   t_i      0.25 ln sigma_i (float32): the transformer's timestep
//   x        noise * sigma_max
//   step i   F = net(x c_in, t_i); x0 = c_skip x + c_out F (per prompt); x0 = x0c + g (x0c - x0u);
//            x <- x + (x - x0) / sigma_i * (sigma_{i+1} - sigma_i)
//   c_in = 1/sqrt(s² + sd²), c_skip = sd²/(s² + sd²), c_out = s sd / sqrt(s² + sd²) (float32 scalars)
//
// Video2World: the first latent frames are replaced by the noise-augmented conditioning latents
// (sigma augment_sigma, rescaled by c_in(aug)/c_in(sigma)) in the model input, the condition-mask
// channel marks them, and their x0 is replaced by the clean conditioning latents (not when
// augment_sigma >= sigma).
import * as F from '../../../engine/ops.js';
import type { Tensor } from '../../../engine/tensor.js';
import { DiTInputError, configFields } from '../config.js';
import { blend, conditionTensors } from '../conditioning.js';
import type { NoiseSource } from '../noise.js';
import {
  type DiTDenoiser, type GuidanceOptions, type LoopOptions, checkLatents, f32, hasMaskChannel, guide, karras, runSteps, torchLinspace,
  usesGuidance,
} from './common.js';

export interface EdmSchedulerConfig {
  sigmaMin: number;
  sigmaMax: number;
  sigmaData: number;
  rho: number;
  sigmaSchedule: 'karras' | 'exponential';
  predictionType: 'epsilon' | 'v_prediction';
  finalSigmasType: 'zero' | 'sigma_min';
}

/** As the Cosmos-1.0 conversion script builds it. */
export const COSMOS1_EDM_SCHEDULER: Readonly<EdmSchedulerConfig> = Object.freeze({
  sigmaMin: 0.002,
  sigmaMax: 80,
  sigmaData: 0.5,
  rho: 7,
  sigmaSchedule: 'karras',
  predictionType: 'epsilon',
  finalSigmasType: 'sigma_min',
});

/** An EDMEulerScheduler scheduler_config.json (missing fields: the scheduler's defaults). */
export function parseEdmSchedulerConfig(json: Record<string, unknown>): EdmSchedulerConfig {
  const what = 'EDMEulerScheduler config';
  if (json._class_name !== undefined && json._class_name !== 'EDMEulerScheduler') {
    throw new DiTInputError(`${what}: _class_name is ${JSON.stringify(json._class_name)}`);
  }
  const { num, oneOf } = configFields(json, what, DiTInputError);
  return {
    sigmaMin: num('sigma_min', 0.002),
    sigmaMax: num('sigma_max', 80),
    sigmaData: num('sigma_data', 0.5),
    rho: num('rho', 7),
    sigmaSchedule: oneOf('sigma_schedule', 'karras', ['karras', 'exponential'] as const),
    predictionType: oneOf('prediction_type', 'epsilon', ['epsilon', 'v_prediction'] as const),
    finalSigmasType: oneOf('final_sigmas_type', 'zero', ['zero', 'sigma_min'] as const),
  };
}

export interface EdmSchedule {
  /** steps + 1 float32 sigmas (the last is the final sigma) */
  sigmas: Float32Array;
  /** 0.25 ln sigma for each step (float32) */
  timesteps: Float32Array;
}

/** EDMEulerScheduler.set_timesteps(steps). */
export function edmSchedule(cfg: EdmSchedulerConfig, steps: number): EdmSchedule {
  if (!Number.isInteger(steps) || steps < 1) throw new DiTInputError(`steps: must be a positive integer; got ${steps}`);
  let s: number[];
  if (cfg.sigmaSchedule === 'karras') {
    s = karras(torchLinspace(0, 1, steps), cfg.sigmaMin, cfg.sigmaMax, cfg.rho).map(f32);
  } else {
    // torch.linspace(log min, log max, n) in float32, exp, flipped
    s = torchLinspace(Math.log(cfg.sigmaMin), Math.log(cfg.sigmaMax), steps, f32).map((v) => f32(Math.exp(v))).reverse();
  }
  const last = cfg.finalSigmasType === 'sigma_min' ? s[s.length - 1] : 0;
  return {
    sigmas: Float32Array.from([...s, last]),
    timesteps: Float32Array.from(s, (v) => f32(0.25 * f32(Math.log(v)))),
  };
}

/** EDM preconditioning scalars at sigma, in float32 as torch computes them from a float32 sigma. */
export function edmPreconditioning(sigma: number, cfg: EdmSchedulerConfig): { cIn: number; cSkip: number; cOut: number } {
  const sd2 = cfg.sigmaData ** 2;
  const denom = f32(f32(sigma * sigma) + sd2);
  const root = f32(Math.sqrt(denom));
  const sgn = cfg.predictionType === 'epsilon' ? 1 : -1;
  return {
    cIn: f32(1 / root),
    cSkip: f32(sd2 / denom),
    cOut: f32(sgn * f32(f32(sigma * cfg.sigmaData) / root)),
  };
}

/** EDMEulerScheduler.step with s_churn 0 (sigma_hat = sigma): x + (x - x0) / sigma * (sigma_next - sigma). */
export function edmEulerStep(x: Tensor, x0: Tensor, sigma: number, sigmaNext: number): Tensor {
  const dt = f32(sigmaNext - sigma);
  const derivative = F.scale(F.sub(x, x0), f32(1 / sigma));
  return F.add(x, F.scale(derivative, dt));
}

export interface EdmVideoConditioning {
  /** conditioning latents [B, C, T, H, W] already scaled as the pipeline does (x sigma_data) */
  latents: Tensor;
  /** leading latent frames that are given (e.g. (pixel frames - 1) // 8 + 1) */
  numCondLatentFrames: number;
  /** noise augmentation of the conditioning latents (default 0.001) */
  augmentSigma?: number;
  /** the unconditional pass sees no conditioning frames (default false) */
  inputFramesGuidance?: boolean;
  /** the augmentation noise, drawn once per pass and step (cond, then uncond) */
  noise: NoiseSource;
}

export interface EdmSampleOptions extends GuidanceOptions, LoopOptions {
  /** unit Gaussian [B, C, T, H, W]; the loop starts from noise * sigma_max */
  noise: Tensor;
  /** default 36 */
  steps?: number;
  /** RoPE fps (default 30, as the pipelines) */
  fps?: number | null;
  scheduler?: EdmSchedulerConfig;
  /** [1, 1, h, w]; default zeros, as the pipelines pass */
  paddingMask?: Tensor | null;
  conditioning?: EdmVideoConditioning | null;
}

export interface SampleResult {
  /** the final latents [B, C, T, H, W] (for 1.0: at sigma_min, before / sigma_data) */
  latents: Tensor;
  sigmas: Float32Array;
  /** the scheduler's timesteps (float for EDM / flow Euler, integers for UniPC) */
  timesteps: Float32Array | Int32Array;
}

/** The Cosmos-1.0 EDM loop (text2world, or video2world with `conditioning`). */
export async function sampleEdm(model: DiTDenoiser, o: EdmSampleOptions): Promise<SampleResult> {
  const cfg = o.scheduler ?? COSMOS1_EDM_SCHEDULER;
  const steps = o.steps ?? 36;
  const g = o.guidanceScale ?? 7;
  const cfgOn = usesGuidance(o);
  const fps = o.fps === undefined ? 30 : o.fps;
  const shape = checkLatents(o.noise, model.config, 'sampleEdm');
  const [B] = shape;
  const backend = o.noise.backend;
  const { sigmas, timesteps } = edmSchedule(cfg, steps);
  const cond = o.conditioning ?? null;
  const needsMask = hasMaskChannel(model, shape, cond);

  const ct = needsMask ? conditionTensors(backend, shape, cond ? cond.numCondLatentFrames : 0) : null;
  ct?.indicator.keep();
  ct?.mask.keep();
  const uncondMask = ct && cond?.inputFramesGuidance ? F.zeros(backend, ct.mask.shape).keep() : null;
  const aug = f32(cond?.augmentSigma ?? 0.001);
  const step = (i: number, x: Tensor) => {
    const sigma = sigmas[i];
    const { cIn, cSkip, cOut } = edmPreconditioning(sigma, cfg);
    const base = { timestep: F.full(backend, [B], timesteps[i]), fps, paddingMask: o.paddingMask ?? null };
    const denoise = (out: Tensor) => F.add(F.scale(x, cSkip), F.scale(out, cOut));
    let inCond: Tensor;
    let inUncond: Tensor | null = null;
    // conditioning frames re-imposed on x0 (zero when augment_sigma >= sigma)
    let indicator: Tensor | null = null;
    if (cond && ct) {
      const useCond = !(aug >= sigma);
      indicator = useCond ? ct.indicator : null;
      const cInAug = edmPreconditioning(aug, cfg).cIn;
      const condInput = (noise: Tensor) => {
        let cl = F.add(cond.latents, F.scale(noise, aug));
        cl = F.scale(F.scale(cl, cInAug), f32(1 / cIn));
        if (indicator) cl = blend(indicator, cl, x);
        else cl = x;
        return F.scale(cl, cIn);
      };
      inCond = condInput(cond.noise(shape));
      if (cfgOn) inUncond = condInput(cond.noise(shape));
    } else {
      inCond = F.scale(x, cIn);
      if (cfgOn) inUncond = inCond;
    }
    const outCond = model.forward({ ...base, hiddenStates: inCond, encoderHiddenStates: o.promptEmbeds, conditionMask: ct?.mask ?? null });
    let x0 = denoise(outCond);
    if (indicator) x0 = blend(indicator, cond!.latents, x0);
    let outUncond: Tensor | null = null;
    if (cfgOn) {
      outUncond = model.forward({
        ...base, hiddenStates: inUncond!, encoderHiddenStates: o.negativePromptEmbeds!, conditionMask: uncondMask ?? ct?.mask ?? null,
      });
      let x0u = denoise(outUncond);
      if (indicator) x0u = blend(indicator, cond!.latents, x0u);
      x0 = guide(x0, x0u, g);
    }
    return { latents: edmEulerStep(x, x0, sigma, sigmas[i + 1]), modelOutCond: outCond, modelOutUncond: outUncond };
  };
  const latents = await runSteps(F.scale(o.noise, cfg.sigmaMax).keep(), { sigmas, timesteps }, steps, o, step, () => {
    ct?.indicator.dispose();
    ct?.mask.dispose();
    uncondMask?.dispose();
  });
  return { latents, sigmas, timesteps };
}
