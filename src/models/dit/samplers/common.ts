// What the sampling loops share: the model interface they drive, the step loop itself with its
// per-step progress record, classifier-free guidance, and the schedule arithmetic (torch / numpy
// linspace, Karras sigmas) in the precision upstream uses.
import { throwIfAborted } from '../../../engine/errors.js';
import * as F from '../../../engine/ops.js';
import { type Tensor, scopeAsync } from '../../../engine/tensor.js';
import type { CosmosTransformerConfig } from '../config.js';
import { DiTInputError } from '../config.js';
import type { CosmosForwardInputs } from '../transformer.js';

export const f32 = Math.fround;

/** What a sampler calls: a CosmosTransformer3DModel, or a wrapper (e.g. one adding ControlNet residuals). */
export interface DiTDenoiser {
  readonly config: CosmosTransformerConfig;
  forward(inputs: CosmosForwardInputs): Tensor;
}

/**
 * One finished denoising step, for progress reports and taps. The tensors are freed when the
 * callback returns: `reshape(shape).keep()` (a view) retains one.
 */
export interface DenoiseStep {
  /** 0-based step index */
  step: number;
  steps: number;
  /** the scheduler sigma of this step */
  sigma: number;
  /** the scheduler's timestep of this step (what upstream enumerates) */
  timestep: number;
  /** latents after the step */
  latents: Tensor;
  /** raw transformer outputs of the conditional and unconditional (negative prompt) passes */
  modelOutCond: Tensor;
  modelOutUncond: Tensor | null;
}

export type OnStep = (s: DenoiseStep) => void | Promise<void>;

/** Progress and cancellation of a sampling loop. */
export interface LoopOptions {
  /** called after every step, awaited before the next */
  onStep?: OnStep;
  /** checked before every step; an aborted loop throws the signal's reason */
  signal?: AbortSignal;
}

/** What one step of a sampler produces (the new latents and the raw model outputs behind them). */
export interface StepOutputs {
  latents: Tensor;
  modelOutCond: Tensor;
  modelOutUncond: Tensor | null;
}

/**
 * The loop of every sampler: x <- step(i, x) for each step of the schedule. Each step runs in a
 * scope (only what it returns survives), reports to onStep before the next one, and replaces x;
 * the loop owns x (from `x0` on) and returns the last one. `release` frees what the sampler kept
 * across steps, whatever happens.
 */
export async function runSteps(
  x0: Tensor, schedule: { sigmas: Float32Array; timesteps: Float32Array | Int32Array }, steps: number, o: LoopOptions,
  step: (i: number, x: Tensor) => StepOutputs, release: () => void,
): Promise<Tensor> {
  let x = x0;
  try {
    for (let i = 0; i < steps; i++) {
      throwIfAborted(o.signal);
      const next = await scopeAsync(async () => {
        const out = step(i, x);
        await o.onStep?.({ step: i, steps, sigma: schedule.sigmas[i], timestep: schedule.timesteps[i], ...out });
        return out.latents;
      });
      x.dispose();
      x = next.keep();
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    release();
  }
}

/** The text inputs and guidance of a sampling run. */
export interface GuidanceOptions {
  promptEmbeds: Tensor;
  /** needed when guidanceScale > 1 (classifier-free guidance runs only then, as upstream) */
  negativePromptEmbeds?: Tensor | null;
  guidanceScale?: number;
}

export function usesGuidance(o: GuidanceOptions): boolean {
  const g = o.guidanceScale ?? 7;
  if (g > 1 && !o.negativePromptEmbeds) throw new DiTInputError(`guidance: ${g} > 1 needs negative prompt embeddings`);
  return g > 1;
}

/** NVIDIA's CFG form: cond + g * (cond - uncond). */
export function guide(cond: Tensor, uncond: Tensor, g: number): Tensor {
  return F.add(cond, F.scale(F.sub(cond, uncond), g));
}

export function checkLatents(noise: Tensor, cfg: CosmosTransformerConfig, what: string): [number, number, number, number, number] {
  if (noise.rank !== 5) throw new DiTInputError(`${what}: noise must be [B, C, T, H, W], got [${noise.shape.join(', ')}]`);
  if (noise.shape[1] !== cfg.outChannels) throw new DiTInputError(`${what}: noise has ${noise.shape[1]} channels, the transformer outputs ${cfg.outChannels}`);
  return noise.shape as unknown as [number, number, number, number, number];
}

/** Conditioning latents must have the noise's shape. */
export function checkConditioning(shape: readonly number[], cond: { latents: Tensor } | null): void {
  if (cond && cond.latents.shape.join() !== shape.join()) {
    throw new DiTInputError(`conditioning latents: [${cond.latents.shape.join(', ')}] must match the noise [${shape.join(', ')}]`);
  }
}

/** Whether the model reads a condition-mask channel after the latent's (video2world conditioning needs one). */
export function hasMaskChannel(model: DiTDenoiser, shape: readonly number[], cond: { latents: Tensor } | null): boolean {
  const C = shape[1];
  const needsMask = model.config.inChannels === C + 1;
  if (cond && !needsMask) throw new DiTInputError(`video2world conditioning: needs a model with a condition-mask channel (in_channels ${C + 1}); this one has ${model.config.inChannels}`);
  checkConditioning(shape, cond);
  return needsMask;
}

/** torch.linspace (CPU kernel: the first half counts up from start, the rest down from end). */
export function torchLinspace(start: number, end: number, n: number, round: (x: number) => number = (x) => x): number[] {
  if (n === 1) return [round(start)];
  const s = round(start);
  const e = round(end);
  const step = round((e - s) / (n - 1));
  const half = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i < half ? round(s + round(step * i)) : round(e - round(step * (n - i - 1)))));
}

/** numpy.linspace (float64): start + i * step, the last value set to stop. */
export function numpyLinspace(start: number, stop: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (stop - start) / (n - 1);
  const out = Array.from({ length: n }, (_, i) => i * step + start);
  out[n - 1] = stop;
  return out;
}

/** Karras et al. sigmas over a ramp in [0, 1] (float64). */
export function karras(ramp: readonly number[], sigmaMin: number, sigmaMax: number, rho: number): number[] {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return ramp.map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}
