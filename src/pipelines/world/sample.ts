// The sampling phase of the world pipelines: seeded Gaussian noise, then the family's loop (EDM
// for Cosmos-1.0, flow Euler for Predict2, flow UniPC for Predict2.5 and Transfer2.5) with one
// progress event and one record per step.
import type { Backend } from '../../engine/backend.js';
import type { Tensor } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import type { CosmosTransformerConfig } from '../../models/dit/config.js';
import { GaussianNoise } from '../../models/dit/noise.js';
import type { DenoiseStep, DiTDenoiser } from '../../models/dit/samplers/common.js';
import type { SampleResult } from '../../models/dit/samplers/edm.js';
import { sampleEdm } from '../../models/dit/samplers/edm.js';
import { sampleFlowEuler } from '../../models/dit/samplers/flow-euler.js';
import { sampleFlowUniPC } from '../../models/dit/samplers/unipc.js';
import { type CosmosTransformer3DModel, CosmosTransformer3DFamily } from '../../models/dit/transformer.js';
import { type Config, loadModule } from '../../models/load.js';
import { checkFinite } from '../finite.js';
import { type RunOptions, stage } from '../progress.js';
import type { SchedulerChoice } from './folder.js';
import type { PromptEmbeds } from './prompt.js';

/** One finished denoising step. */
export interface StepRecord {
  /** 0-based */
  step: number;
  sigma: number;
  /** the scheduler's timestep of the step */
  timestep: number;
  /** seconds the step took (every guidance pass), the device synced */
  seconds: number;
}

/** Conditioning latents (video2world, transfer's input video), in the sampler's space. */
export interface WorldConditioning {
  /** [1, C, T, h, w]: the conditioning clip (padded to the output length) encoded and normalised */
  latents: Tensor;
  numCondLatentFrames: number;
  /** EDM noise augmentation (default 0.001) */
  augmentSigma?: number;
}

export interface SampleSettings {
  seed: number | string;
  steps: number;
  guidance: number;
  /** RoPE fps (EDM always; flow Euler with conditioning) */
  fps: number;
}

/** Below this, an MLP activation is never split for memory's sake (only for the binding limit). */
const MLP_CHUNK_FLOOR_BYTES = 256 * 2 ** 20;

/**
 * MLP rows per pass (null: all tokens at once) so that one [rows, inner] float32 activation fits a
 * binding of the backend and, once the tokens are many, is no larger than the block's own
 * [tokens, hidden] input: the MLP's activation and its GELU would otherwise be the largest thing a
 * block holds (2 x mlp_ratio token-sized tensors: 10 GB at once for a 14B model at 121 frames).
 */
export function mlpChunkTokens(backend: Backend, config: Pick<CosmosTransformerConfig, 'mlpRatio'>, hidden: number, tokens: number): number | null {
  const inner = Math.trunc(hidden * config.mlpRatio);
  const budget = Math.min(backend.limits.maxBindingBytes, Math.max(MLP_CHUNK_FLOOR_BYTES, 4 * tokens * hidden));
  const rows = Math.floor(budget / (4 * inner));
  return tokens > rows ? Math.max(1, rows) : null;
}

/** A diffusers transformer/ folder loaded, its MLP chunked for `tokens` on this backend. */
export async function loadTransformer(dir: string, backend: Backend, tokens: number, opts: { config?: Config; fs?: FileSystem } = {}): Promise<CosmosTransformer3DModel> {
  const { model } = await loadModule(CosmosTransformer3DFamily, dir, backend, { config: opts.config, fs: opts.fs });
  model.ffChunkTokens = mlpChunkTokens(backend, model.config, model.hiddenSize, tokens);
  return model;
}

/**
 * Run the scheduler's loop from seeded noise of `latentShape`; the final latents (sampler space)
 * and a record per step. Reports stage 'denoise' (unit 'steps'), once per step.
 */
export async function sampleLatents(
  model: DiTDenoiser, scheduler: SchedulerChoice, latentShape: readonly number[], embeds: PromptEmbeds, s: SampleSettings,
  cond: WorldConditioning | null, run: RunOptions & { paddingMask?: Tensor | null },
): Promise<{ latents: Tensor; steps: StepRecord[] }> {
  const backend = embeds.prompt.backend;
  const report = stage(run, 'denoise', 'steps', s.steps);
  const records: StepRecord[] = [];
  const noise = new GaussianNoise(s.seed).tensor(backend, latentShape);
  let last = performance.now();
  const onStep = async (d: DenoiseStep) => {
    const step = `${d.step + 1}/${s.steps}`;
    await checkFinite(d.modelOutCond, { component: 'denoiser', step });
    if (d.modelOutUncond) await checkFinite(d.modelOutUncond, { component: 'denoiser', step, tensor: 'unconditional output' });
    await checkFinite(d.latents, { component: 'sampler', step, tensor: 'latents' });
    await backend.sync();
    const now = performance.now();
    const r: StepRecord = { step: d.step, sigma: d.sigma, timestep: d.timestep, seconds: (now - last) / 1000 };
    last = now;
    records.push(r);
    report(d.step + 1, { sigma: r.sigma, timestep: r.timestep, seconds: r.seconds });
  };
  const common = {
    noise, promptEmbeds: embeds.prompt, negativePromptEmbeds: embeds.negative, steps: s.steps, guidanceScale: s.guidance,
    paddingMask: run.paddingMask ?? null, onStep, signal: run.signal,
  };
  const given = cond ? { latents: cond.latents, numCondLatentFrames: cond.numCondLatentFrames } : null;
  try {
    let r: SampleResult;
    if (scheduler.kind === 'edm') {
      r = await sampleEdm(model, {
        ...common, scheduler: scheduler.config, fps: s.fps,
        conditioning: cond ? {
          ...given!, augmentSigma: cond.augmentSigma,
          // augmentation draws: a stream of their own, so the initial noise matches text2world's for a seed
          noise: new GaussianNoise(`${s.seed}/augment`).source(backend),
        } : null,
      });
    } else if (scheduler.kind === 'unipc') {
      r = await sampleFlowUniPC(model, { ...common, scheduler: scheduler.config, fps: null, conditioning: given });
    } else {
      r = await sampleFlowEuler(model, { ...common, scheduler: scheduler.config, fps: cond ? s.fps : null, conditioning: given });
    }
    return { latents: r.latents, steps: records };
  } finally {
    noise.dispose();
  }
}
