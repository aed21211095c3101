// Cosmos Predict2 (2.0) sampling: FlowMatchEulerDiscreteScheduler(use_karras_sigmas=True) as
// Cosmos2VideoToWorldPipeline / Cosmos2TextToImagePipeline re-configure and drive it (spec dit.md
// §6, last paragraph; no public loop fixture).
//
// Schedule: Karras sigmas (rho 7, float64 ramp) from sigma_max 80 to sigma_min 0.002 in EDM
// units, float32, then a final 0 that final_sigmas_type "sigma_min" replaces by the last sigma
// (so the last step has dt = 0). x = noise * sigma_max. Per step, with t = s/(s+1):
// c_in = c_skip = 1 - t, c_out = -t; the model sees x c_in (conditioning frames: the
// conditioning latents) with timestep t (conditioning frames: sc/(sc+1), sc = 0.0001);
// x0 = c_skip x + c_out F, conditioning frames re-imposed; CFG x0c + g (x0c - x0u);
// v = (x - x0) / s; Euler x <- x + (s_next - s) v.
import * as F from '../../../engine/ops.js';
import type { Tensor } from '../../../engine/tensor.js';
import { DiTInputError } from '../config.js';
import { blend, conditionTensors, frameTimesteps } from '../conditioning.js';
import {
  type DiTDenoiser, type GuidanceOptions, type LoopOptions, checkLatents, f32, hasMaskChannel, guide, karras, numpyLinspace, runSteps,
  usesGuidance,
} from './common.js';
import type { SampleResult } from './edm.js';

export interface FlowEulerConfig {
  sigmaMin: number;
  sigmaMax: number;
  sigmaData: number;
  /** fixed at 7 in diffusers' _convert_to_karras */
  rho: number;
  finalSigmasType: 'zero' | 'sigma_min';
  numTrainTimesteps: number;
}

/** What the Predict2 pipelines register on the scheduler. */
export const PREDICT2_FLOW_EULER: Readonly<FlowEulerConfig> = Object.freeze({
  sigmaMin: 0.002,
  sigmaMax: 80,
  sigmaData: 1.0,
  rho: 7,
  finalSigmasType: 'sigma_min',
  numTrainTimesteps: 1000,
});

/** Scheduler sigmas (steps + 1, float32, final sigma applied as the pipeline does) and timesteps. */
export function flowEulerSchedule(cfg: FlowEulerConfig, steps: number): { sigmas: Float32Array; timesteps: Float32Array } {
  if (!Number.isInteger(steps) || steps < 1) throw new DiTInputError(`steps: must be a positive integer; got ${steps}`);
  const s = karras(numpyLinspace(0, 1, steps), cfg.sigmaMin, cfg.sigmaMax, cfg.rho).map(f32);
  const sigmas = Float32Array.from([...s, 0]);
  if (cfg.finalSigmasType === 'sigma_min') sigmas[steps] = sigmas[steps - 1];
  return { sigmas, timesteps: Float32Array.from(s, (v) => f32(v * cfg.numTrainTimesteps)) };
}

export interface FlowEulerConditioning {
  /** (z - mean) / std * sigma_data latents [B, C, T, H, W]; only the given frames are read */
  latents: Tensor;
  numCondLatentFrames: number | readonly number[];
  /** sigma of the conditioning frames (default 0.0001) */
  sigmaConditioning?: number;
}

export interface FlowEulerSampleOptions extends GuidanceOptions, LoopOptions {
  /** unit Gaussian [B, C, T, H, W]; the loop starts from noise * sigma_max */
  noise: Tensor;
  /** default 35 */
  steps?: number;
  scheduler?: FlowEulerConfig;
  conditioning?: FlowEulerConditioning | null;
  /** RoPE fps: video2world passes it (default 16); text2image passes none */
  fps?: number | null;
  paddingMask?: Tensor | null;
}

/** The Predict2 loop (video2world with `conditioning`, text2image / text2world without). */
export async function sampleFlowEuler(model: DiTDenoiser, o: FlowEulerSampleOptions): Promise<SampleResult> {
  const cfg = o.scheduler ?? PREDICT2_FLOW_EULER;
  const steps = o.steps ?? 35;
  const g = o.guidanceScale ?? 7;
  const cfgOn = usesGuidance(o);
  const shape = checkLatents(o.noise, model.config, 'sampleFlowEuler');
  const [B, , T] = shape;
  const backend = o.noise.backend;
  const { sigmas, timesteps } = flowEulerSchedule(cfg, steps);
  const cond = o.conditioning ?? null;
  const needsMask = hasMaskChannel(model, shape, cond);
  const fps = o.fps === undefined ? (cond ? 16 : null) : o.fps;
  const ct = needsMask ? conditionTensors(backend, shape, cond ? cond.numCondLatentFrames : 0) : null;
  ct?.indicator.keep();
  ct?.mask.keep();
  const sc = f32(cond?.sigmaConditioning ?? 0.0001);
  const tCond = f32(sc / f32(sc + 1));
  const step = (i: number, x: Tensor) => {
    const sigma = sigmas[i];
    const t = f32(sigma / f32(sigma + 1));
    const cIn = f32(1 - t);
    const cOut = -t;
    const ts = cond && ct
      ? frameTimesteps(backend, ct.indicatorValues, [B, 1, T, 1, 1], tCond, t)
      : F.full(backend, [B], t);
    const scaled = F.scale(x, cIn);
    const input = cond && ct ? blend(ct.indicator, cond.latents, scaled) : scaled;
    const args = { hiddenStates: input, timestep: ts, conditionMask: ct?.mask ?? null, paddingMask: o.paddingMask ?? null, fps };
    const toX0 = (out: Tensor) => {
      const x0 = F.add(F.scale(x, cIn), F.scale(out, cOut));
      return cond && ct ? blend(ct.indicator, cond.latents, x0) : x0;
    };
    const outCond = model.forward({ ...args, encoderHiddenStates: o.promptEmbeds });
    let x0 = toX0(outCond);
    let outUncond: Tensor | null = null;
    if (cfgOn) {
      outUncond = model.forward({ ...args, encoderHiddenStates: o.negativePromptEmbeds! });
      x0 = guide(x0, toX0(outUncond), g);
    }
    const v = F.scale(F.sub(x, x0), f32(1 / sigma));
    return { latents: F.add(x, F.scale(v, f32(sigmas[i + 1] - sigma))), modelOutCond: outCond, modelOutUncond: outUncond };
  };
  const latents = await runSteps(F.scale(o.noise, cfg.sigmaMax).keep(), { sigmas, timesteps }, steps, o, step, () => {
    ct?.indicator.dispose();
    ct?.mask.dispose();
  });
  return { latents, sigmas, timesteps };
}
