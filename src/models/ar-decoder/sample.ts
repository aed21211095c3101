// Sampling one chunk of CV latents from DV tokens (spec ar_decoder.md §4): diffusers'
// EDMEulerScheduler(sigma_max 80, sigma_min 0.02, sigma_data) with its defaults (Karras rho 7,
// epsilon prediction, final sigma zero), driven as LatentDiffusionDecoderModel does:
//
//   x = noise * sqrt(80^2 + 1)                      (init_noise_sigma, not sigma_max)
//   step i: x_in = x c_in(sigma_i); c = net(x_in, t_i, ids, text); u = net(x_in, t_i, 0, 0)
//           out = c + g (c - u); x0 = c_skip x + c_out out; x <- x + (x - x0) / sigma_i (sigma_{i+1} - sigma_i)
//
// The guidance combines the raw network outputs (not the denoised estimates as the Cosmos-1.0
// text2world loop does). Everything stays on the device; only the taps a caller asks for are kept.
import * as F from '../../engine/ops.js';
import { type Tensor, shapeStr } from '../../engine/tensor.js';
import { f32, guide, runSteps } from '../dit/samplers/common.js';
import { type EdmSchedule, type EdmSchedulerConfig, edmEulerStep, edmPreconditioning, edmSchedule } from '../dit/samplers/edm.js';
import { ArDecoderInputError } from './conditioning.js';
import type { DiffusionDecoderDiT } from './model.js';

export const DECODER_SIGMA_MIN = 0.02;
export const DECODER_SIGMA_MAX = 80;
export const DEFAULT_DECODER_STEPS = 15;
export const DEFAULT_DECODER_GUIDANCE = 1.8;
export const DEFAULT_DECODER_FPS = 24;

/** The decoder's scheduler (EDMEulerScheduler(sigma_max=80, sigma_min=0.02, sigma_data) + diffusers defaults). */
export function decoderScheduler(sigmaData: number): EdmSchedulerConfig {
  return {
    sigmaMin: DECODER_SIGMA_MIN, sigmaMax: DECODER_SIGMA_MAX, sigmaData, rho: 7, sigmaSchedule: 'karras', predictionType: 'epsilon', finalSigmasType: 'zero',
  };
}

/** set_timesteps(steps): steps + 1 float32 sigmas (Karras, then 0) and the steps' 0.25 ln sigma. */
export function decoderSigmas(steps: number, sigmaData = 0.5): EdmSchedule {
  return edmSchedule(decoderScheduler(sigmaData), steps);
}

/** diffusers' init_noise_sigma for sigma_max 80: sqrt(sigma_max^2 + 1). */
export const DECODER_INIT_NOISE_SIGMA = Math.sqrt(DECODER_SIGMA_MAX ** 2 + 1);

/** One step's tensors, valid during the callback only (keep a view with `reshape(shape).keep()`). */
export interface DecoderStepTap {
  step: number;
  steps: number;
  sigma: number;
  timestep: number;
  /** x_t entering the step */
  xt: Tensor;
  netOutputCond: Tensor;
  netOutputUncond: Tensor;
  netOutputGuided: Tensor;
  /** x after the step */
  latents: Tensor;
}

export interface DecoderChunkOptions {
  /** one chunk of DV token ids [1, 1, n, h, w] (i32) */
  ids: Tensor;
  /** T5 embeddings [1, M, crossattn_emb_channels] (the prompt's, or aux_vars.pt's generic context) */
  text: Tensor;
  /** the CV latent to sample: channels, frames (n), height, width */
  latent: { channels: number; frames: number; height: number; width: number };
  /** standard normal [1, C, n, H, W] */
  noise: Tensor;
  steps?: number;
  guidance?: number;
  fps?: number;
  /** pixel padding mask [1, 1, Hpx, Wpx]; absent: zeros, as the pipeline passes */
  paddingMask?: Tensor | null;
  signal?: AbortSignal;
  /** after every step */
  onStep?: (done: number, steps: number) => void;
  /** every step's tensors, for conformance taps (nothing is read back otherwise) */
  tap?: (s: DecoderStepTap) => void;
}

/**
 * Sample one chunk: the CV latent [1, C, n, H, W] still in the sigma_data-scaled normalised space
 * (the pipeline un-normalises it with the CV tokenizer's mean / std before decoding).
 */
export async function sampleDecoderChunk(model: DiffusionDecoderDiT, o: DecoderChunkOptions): Promise<Tensor> {
  const cfg = model.config;
  const steps = o.steps ?? DEFAULT_DECODER_STEPS;
  const g = o.guidance ?? DEFAULT_DECODER_GUIDANCE;
  const fps = o.fps ?? DEFAULT_DECODER_FPS;
  const { channels, frames, height, width } = o.latent;
  const want = [1, channels, frames, height, width];
  if (channels !== cfg.outChannels) throw new ArDecoderInputError(`latent: ${channels} channels, the decoder makes ${cfg.outChannels}`);
  if (o.noise.shape.join() !== want.join()) throw new ArDecoderInputError(`noise: must be ${shapeStr(want)} (the latent chunk); got ${shapeStr(o.noise.shape)}`);
  if (o.ids.rank !== 5 || o.ids.shape[0] !== 1 || o.ids.shape[1] !== 1 || o.ids.shape[2] !== frames) {
    throw new ArDecoderInputError(`token ids: must be [1, 1, ${frames}, h, w] (one chunk); got ${shapeStr(o.ids.shape)}`);
  }
  if (o.text.rank !== 3 || o.text.shape[0] !== 1) throw new ArDecoderInputError(`text: must be [1, M, ${cfg.crossattnEmbChannels}] T5 embeddings; got ${shapeStr(o.text.shape)}`);
  if (!(g >= 0 && Number.isFinite(g))) throw new ArDecoderInputError(`guidance: must be a finite number >= 0; got ${g}`);
  const scheduler = decoderScheduler(cfg.sigmaData);
  const schedule = edmSchedule(scheduler, steps);
  const { sigmas, timesteps } = schedule;
  const backend = o.noise.backend;

  // the uncondition: dropout 1.0 on the ids and the T5 embeddings (both all zeros)
  const zeroIds = F.zeros(backend, o.ids.shape, 'i32').keep();
  const zeroText = F.zeros(backend, o.text.shape).keep();
  const fwd = { fps, paddingMask: o.paddingMask ?? null };
  const step = (i: number, x: Tensor) => {
    const sigma = sigmas[i];
    const { cIn, cSkip, cOut } = edmPreconditioning(sigma, scheduler);
    const xIn = F.scale(x, cIn);
    const t = F.full(backend, [1], timesteps[i]);
    const cond = model.forward(xIn, t, o.text, o.ids, fwd);
    const uncond = model.forward(xIn, t, zeroText, zeroIds, fwd);
    const guided = guide(cond, uncond, g);
    const x0 = F.add(F.scale(x, cSkip), F.scale(guided, cOut));
    const latents = edmEulerStep(x, x0, sigma, sigmas[i + 1]);
    o.tap?.({ step: i, steps, sigma, timestep: timesteps[i], xt: x, netOutputCond: cond, netOutputUncond: uncond, netOutputGuided: guided, latents });
    return { latents, modelOutCond: cond, modelOutUncond: uncond };
  };
  const x0 = F.scale(o.noise, f32(DECODER_INIT_NOISE_SIGMA)).keep();
  return runSteps(x0, schedule, steps, { signal: o.signal, onStep: (s) => o.onStep?.(s.step + 1, s.steps) }, step, () => {
    zeroIds.dispose();
    zeroText.dispose();
  });
}
