// Cosmos Predict2.5 sampling: flow matching solved with diffusers' UniPCMultistepScheduler as the
// conversion script configures it (karras + flow sigmas, flow_prediction, bh2, order 2, predict_x0,
// lower_order_final, final sigma 0), driven as Cosmos2_5_PredictBasePipeline does (spec dit.md §6).
//
// Schedule: Karras sigmas s_i (rho 7, float64) from sigma_max to sigma_min, flow sigma
// s/(1+s) (no flow_shift on this path), final 0; timesteps int64(sigma * 1000).
// Loop: x = noise; gt_v = (x - cond) * mask (once); per step the model sees
// mask * cond + (1 - mask) * x with per-frame timesteps (conditional_frame_timestep on given
// frames, sigma elsewhere; no fps), v = gt_v + v_model * (1 - mask), CFG v = vc + g (vc - vu),
// then one UniPC step: x0 = x - sigma v, corrector (UniC) from the previous step, predictor (UniP).
// Scheduler scalars are float32 (torch 0-d tensors), the sigma schedule float64 then float32.
import * as F from '../../../engine/ops.js';
import { type Tensor, scope } from '../../../engine/tensor.js';
import { DiTInputError, configFields } from '../config.js';
import { blend, conditionTensors, frameTimesteps } from '../conditioning.js';
import {
  type DiTDenoiser, type GuidanceOptions, type LoopOptions, checkConditioning, checkLatents, f32, guide, karras,
  numpyLinspace, runSteps, torchLinspace, usesGuidance,
} from './common.js';
import type { SampleResult } from './edm.js';

export interface UniPCConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'linear' | 'scaled_linear';
  solverOrder: number;
  predictionType: 'epsilon' | 'sample' | 'v_prediction' | 'flow_prediction';
  predictX0: boolean;
  solverType: 'bh1' | 'bh2';
  lowerOrderFinal: boolean;
  disableCorrector: readonly number[];
  useKarrasSigmas: boolean;
  useFlowSigmas: boolean;
  flowShift: number;
  finalSigmasType: 'zero' | 'sigma_min';
  sigmaMin: number | null;
  sigmaMax: number | null;
  shiftTerminal: number | null;
}

/** As the Predict2.5 conversion script builds it (diffusers defaults elsewhere). */
export const PREDICT25_UNIPC: Readonly<UniPCConfig> = Object.freeze({
  numTrainTimesteps: 1000,
  betaStart: 0.0001,
  betaEnd: 0.02,
  betaSchedule: 'linear',
  solverOrder: 2,
  predictionType: 'flow_prediction',
  predictX0: true,
  solverType: 'bh2',
  lowerOrderFinal: true,
  disableCorrector: [],
  useKarrasSigmas: true,
  useFlowSigmas: true,
  flowShift: 1.0,
  finalSigmasType: 'zero',
  sigmaMin: 0.01,
  sigmaMax: 200,
  shiftTerminal: null,
});

/** A UniPCMultistepScheduler scheduler_config.json; options this port does not implement are refused. */
export function parseUniPCConfig(json: Record<string, unknown>): UniPCConfig {
  const what = 'UniPCMultistepScheduler config';
  if (json._class_name !== undefined && json._class_name !== 'UniPCMultistepScheduler') {
    throw new DiTInputError(`${what}: _class_name is ${JSON.stringify(json._class_name)}`);
  }
  const refuse = (key: string, ok: (v: unknown) => boolean) => {
    if (json[key] !== undefined && !ok(json[key])) throw new DiTInputError(`${what}: ${key} = ${JSON.stringify(json[key])} is not supported`);
  };
  refuse('thresholding', (v) => v === false);
  refuse('use_dynamic_shifting', (v) => v === false);
  refuse('use_exponential_sigmas', (v) => v === false);
  refuse('use_beta_sigmas', (v) => v === false);
  refuse('rescale_betas_zero_snr', (v) => v === false);
  refuse('trained_betas', (v) => v === null);
  refuse('solver_p', (v) => v === null);
  const { num, oneOf, bool } = configFields(json, what, DiTInputError);
  const opt = (key: string) => (json[key] === undefined || json[key] === null ? null : num(key, 0));
  const disable = json.disable_corrector ?? [];
  if (!Array.isArray(disable) || disable.some((v) => !Number.isInteger(v))) throw new DiTInputError(`${what}: disable_corrector must be a list of step indices`);
  const cfg: UniPCConfig = {
    numTrainTimesteps: num('num_train_timesteps', 1000),
    betaStart: num('beta_start', 0.0001),
    betaEnd: num('beta_end', 0.02),
    betaSchedule: oneOf('beta_schedule', 'linear', ['linear', 'scaled_linear'] as const),
    solverOrder: num('solver_order', 2),
    predictionType: oneOf('prediction_type', 'epsilon', ['epsilon', 'sample', 'v_prediction', 'flow_prediction'] as const),
    predictX0: bool('predict_x0', true),
    solverType: oneOf('solver_type', 'bh2', ['bh1', 'bh2'] as const),
    lowerOrderFinal: bool('lower_order_final', true),
    disableCorrector: disable as number[],
    useKarrasSigmas: bool('use_karras_sigmas', false),
    useFlowSigmas: bool('use_flow_sigmas', false),
    flowShift: num('flow_shift', 1.0),
    finalSigmasType: oneOf('final_sigmas_type', 'zero', ['zero', 'sigma_min'] as const),
    sigmaMin: opt('sigma_min'),
    sigmaMax: opt('sigma_max'),
    shiftTerminal: opt('shift_terminal'),
  };
  if (!Number.isInteger(cfg.solverOrder) || cfg.solverOrder < 1) throw new DiTInputError(`${what}: solver_order must be a positive integer`);
  if (!cfg.useFlowSigmas) throw new DiTInputError(`${what}: only use_flow_sigmas = true (flow matching, as Predict2.5) is implemented`);
  return cfg;
}

/** ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 of the training betas, in float32 (VP sigmas). */
function trainingSigmas(cfg: UniPCConfig): number[] {
  const n = cfg.numTrainTimesteps;
  const betas = cfg.betaSchedule === 'linear'
    ? torchLinspace(cfg.betaStart, cfg.betaEnd, n, f32)
    : torchLinspace(Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd), n, f32).map((b) => f32(b * b));
  let acc = 1;
  return betas.map((b) => {
    acc = f32(acc * f32(1 - b));
    return f32(Math.sqrt(f32(f32(1 - acc) / acc)));
  });
}

/** Solve A x = b (small dense system, partial pivoting). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let k = r + 1; k < n; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

/** Σ_k w[k] * t[k] */
function weighted(ws: readonly number[], ts: readonly Tensor[]): Tensor {
  let acc = F.scale(ts[0], ws[0]);
  for (let k = 1; k < ts.length; k++) acc = F.add(acc, F.scale(ts[k], ws[k]));
  return acc;
}

/**
 * UniPCMultistepScheduler (flow-sigma configurations). `step` takes the model output and the
 * current sample and returns the next sample; the scheduler keeps (and owns) the converted model
 * outputs and the last sample between steps. Call `dispose()` when done.
 */
export class UniPCMultistepScheduler {
  sigmas = new Float32Array(0);
  timesteps = new Int32Array(0);
  private stepIndex = 0;
  private modelOutputs: (Tensor | null)[];
  private lastSample: Tensor | null = null;
  private lowerOrderNums = 0;
  private thisOrder = 0;

  constructor(readonly config: UniPCConfig) {
    if (!config.useFlowSigmas) throw new DiTInputError('UniPCMultistepScheduler: only flow sigmas are implemented');
    this.modelOutputs = new Array(config.solverOrder).fill(null);
  }

  /** set_timesteps(steps): float32 sigmas (steps + 1) and integer timesteps (steps). */
  setTimesteps(steps: number): { sigmas: Float32Array; timesteps: Int32Array } {
    const cfg = this.config;
    if (!Number.isInteger(steps) || steps < 1) throw new DiTInputError(`steps: must be a positive integer; got ${steps}`);
    let s: number[];
    if (cfg.useKarrasSigmas) {
      let sMin = cfg.sigmaMin;
      let sMax = cfg.sigmaMax;
      if (sMin === null || sMax === null) {
        const train = trainingSigmas(cfg);
        sMin ??= train[0];
        sMax ??= train[train.length - 1];
      }
      s = karras(numpyLinspace(0, 1, steps), sMin, sMax, 7.0).map((v) => v / (v + 1));
    } else {
      s = numpyLinspace(1, 1 / cfg.numTrainTimesteps, steps + 1).slice(0, steps);
      s = s.map((v) => (cfg.flowShift * v) / (1 + (cfg.flowShift - 1) * v));
      if (cfg.shiftTerminal !== null) {
        const scale = (1 - s[s.length - 1]) / (1 - cfg.shiftTerminal);
        s = s.map((v) => 1 - (1 - v) / scale);
      }
      if (Math.abs(s[0] - 1) < 1e-6) s[0] -= 1e-6;
    }
    const last = cfg.finalSigmasType === 'sigma_min' ? s[s.length - 1] : 0;
    this.sigmas = Float32Array.from([...s, last]);
    this.timesteps = Int32Array.from(s, (v) => Math.trunc(v * cfg.numTrainTimesteps));
    this.reset();
    return { sigmas: this.sigmas, timesteps: this.timesteps };
  }

  private reset(): void {
    for (const m of this.modelOutputs) m?.dispose();
    this.modelOutputs = new Array(this.config.solverOrder).fill(null);
    this.lastSample?.dispose();
    this.lastSample = null;
    this.lowerOrderNums = 0;
    this.thisOrder = 0;
    this.stepIndex = 0;
  }

  dispose(): void {
    this.reset();
  }

  get step_index(): number {
    return this.stepIndex;
  }

  /** (alpha_t, sigma_t) of a schedule sigma. */
  private alphaSigma(sigma: number): [number, number] {
    return [f32(1 - sigma), sigma];
  }

  private lambda(sigma: number): number {
    const [a, s] = this.alphaSigma(sigma);
    return f32(f32(Math.log(a)) - f32(Math.log(s)));
  }

  /** x0 (predict_x0) or epsilon from the model output. */
  private convert(modelOutput: Tensor, sample: Tensor): Tensor {
    const sigma = this.sigmas[this.stepIndex];
    const [alpha, sigmaT] = this.alphaSigma(sigma);
    const p = this.config.predictionType;
    if (this.config.predictX0) {
      switch (p) {
        case 'epsilon': return F.scale(F.sub(sample, F.scale(modelOutput, sigmaT)), f32(1 / alpha));
        case 'sample': return modelOutput;
        case 'v_prediction': return F.sub(F.scale(sample, alpha), F.scale(modelOutput, sigmaT));
        case 'flow_prediction': return F.sub(sample, F.scale(modelOutput, sigma));
      }
    }
    switch (p) {
      case 'epsilon': return modelOutput;
      case 'sample': return F.scale(F.sub(sample, F.scale(modelOutput, alpha)), f32(1 / sigmaT));
      case 'v_prediction': return F.add(F.scale(modelOutput, alpha), F.scale(sample, sigmaT));
      default: throw new DiTInputError(`UniPC: prediction_type ${p} needs predict_x0`);
    }
  }

  /** R, b and the B(h) factor of the UniPC update for order `order` with ratios rks (last = 1). */
  private coefficients(h: number, rks: number[], order: number): { R: number[][]; b: number[]; hPhi1: number; Bh: number } {
    const hh = this.config.predictX0 ? -h : h;
    const hPhi1 = f32(Math.expm1(hh));
    let hPhiK = f32(f32(hPhi1 / hh) - 1);
    let fact = 1;
    const Bh = this.config.solverType === 'bh1' ? hh : f32(Math.expm1(hh));
    const R: number[][] = [];
    const b: number[] = [];
    for (let i = 1; i <= order; i++) {
      R.push(rks.map((r) => f32(r ** (i - 1))));
      b.push(f32(f32(hPhiK * fact) / Bh));
      fact *= i + 1;
      hPhiK = f32(f32(hPhiK / hh) - f32(1 / fact));
    }
    return { R, b, hPhi1, Bh };
  }

  /**
   * What a UniP / UniC update from sigma s0 to sigma t shares: the differences D1_k of the stored
   * outputs (`earlier(k)`: the sigma of the output k back), the solver coefficients, and the
   * update itself, x_t = the exponential integrator step of `sample` less B(h) times `correction`.
   */
  private interval(sigT: number, sigS0: number, order: number, earlier: (k: number) => number) {
    const mos = this.modelOutputs;
    const m0 = mos[mos.length - 1]!;
    const [alphaT, sigmaT] = this.alphaSigma(sigT);
    const [alphaS0, sigmaS0] = this.alphaSigma(sigS0);
    const lamS0 = this.lambda(sigS0);
    const h = f32(this.lambda(sigT) - lamS0);
    const rks: number[] = [];
    const D1s: Tensor[] = [];
    for (let k = 1; k < order; k++) {
      const mi = mos[mos.length - (k + 1)]!;
      const rk = f32(f32(this.lambda(earlier(k)) - lamS0) / h);
      rks.push(rk);
      D1s.push(F.scale(F.sub(mi, m0), f32(1 / rk)));
    }
    rks.push(1);
    const { R, b, hPhi1, Bh } = this.coefficients(h, rks, order);
    const [ratio, m0Scale, correctionScale] = this.config.predictX0
      ? [f32(sigmaT / sigmaS0), f32(alphaT * hPhi1), f32(alphaT * Bh)]
      : [f32(alphaT / alphaS0), f32(sigmaT * hPhi1), f32(sigmaT * Bh)];
    const update = (sample: Tensor, correction: Tensor | null): Tensor => {
      const xt = F.sub(F.scale(sample, ratio), F.scale(m0, m0Scale));
      return correction ? F.sub(xt, F.scale(correction, correctionScale)) : xt;
    };
    return { m0, D1s, R, b, update };
  }

  /** x_{i+1} from x_i with the stored outputs (UniP, order `order`). */
  private predictor(sample: Tensor, order: number): Tensor {
    const i = this.stepIndex;
    const { D1s, R, b, update } = this.interval(this.sigmas[i + 1], this.sigmas[i], order, (k) => this.sigmas[i - k]);
    if (!D1s.length) return update(sample, null);
    const rhos = order === 2 ? [0.5] : solve(R.slice(0, -1).map((r) => r.slice(0, -1)), b.slice(0, -1)).map(f32);
    return update(sample, weighted(rhos, D1s));
  }

  /** The corrected current sample from the previous step's sample and this step's output (UniC). */
  private corrector(modelT: Tensor, last: Tensor, order: number): Tensor {
    const i = this.stepIndex;
    const { m0, D1s, R, b, update } = this.interval(this.sigmas[i], this.sigmas[i - 1], order, (k) => this.sigmas[i - (k + 1)]);
    const rhos = order === 1 ? [0.5] : solve(R, b).map(f32);
    const D1t = F.sub(modelT, m0);
    let res = F.scale(D1t, rhos[rhos.length - 1]);
    if (D1s.length) res = F.add(weighted(rhos.slice(0, -1), D1s), res);
    return update(last, res);
  }

  /** One scheduler step: the sample at the next sigma. */
  step(modelOutput: Tensor, sample: Tensor): Tensor {
    const cfg = this.config;
    const i = this.stepIndex;
    const n = this.timesteps.length;
    if (i >= n) throw new DiTInputError(`UniPC: step ${i} past the ${n}-step schedule (call setTimesteps)`);
    const useCorrector = i > 0 && !cfg.disableCorrector.includes(i - 1) && this.lastSample !== null;
    const converted = this.convert(modelOutput, sample);
    let current = sample;
    if (useCorrector) current = this.corrector(converted, this.lastSample!, this.thisOrder);
    // shift the stored outputs; the scheduler owns views of what it keeps
    this.modelOutputs[0]?.dispose();
    for (let k = 0; k < cfg.solverOrder - 1; k++) this.modelOutputs[k] = this.modelOutputs[k + 1];
    this.modelOutputs[cfg.solverOrder - 1] = converted.reshape(converted.shape).keep();
    const order = cfg.lowerOrderFinal ? Math.min(cfg.solverOrder, n - i) : cfg.solverOrder;
    this.thisOrder = Math.min(order, this.lowerOrderNums + 1);
    this.lastSample?.dispose();
    this.lastSample = current.reshape(current.shape).keep();
    const prev = this.predictor(current, this.thisOrder);
    if (this.lowerOrderNums < cfg.solverOrder) this.lowerOrderNums++;
    this.stepIndex++;
    return prev;
  }
}

export interface FlowVideoConditioning {
  /** normalised conditioning latents [B, C, T, H, W] ((z - mean) / std); only the given frames are read */
  latents: Tensor;
  /** leading latent frames given, per sample or for all (Predict2.5: 1 or 2) */
  numCondLatentFrames: number | readonly number[];
}

export interface FlowSampleOptions extends GuidanceOptions, LoopOptions {
  /** unit Gaussian [B, C, T, H, W] (flow time 1; not scaled) */
  noise: Tensor;
  /** default 36 */
  steps?: number;
  scheduler?: UniPCConfig;
  /** absent: text2world (no conditioning frames; the mask channel is zeros) */
  conditioning?: FlowVideoConditioning | null;
  /** timestep of conditioning frames (default 0.0001); negative: one timestep sigma per sample */
  conditionalFrameTimestep?: number;
  /** RoPE fps; the Predict2.5 pipeline passes none (default null) */
  fps?: number | null;
  paddingMask?: Tensor | null;
}

/** The Predict2.5 flow-matching loop with UniPC. */
export async function sampleFlowUniPC(model: DiTDenoiser, o: FlowSampleOptions): Promise<SampleResult> {
  const steps = o.steps ?? 36;
  const g = o.guidanceScale ?? 7;
  const cfgOn = usesGuidance(o);
  const shape = checkLatents(o.noise, model.config, 'sampleFlowUniPC');
  const [B] = shape;
  const backend = o.noise.backend;
  const sched = new UniPCMultistepScheduler(o.scheduler ?? PREDICT25_UNIPC);
  const { sigmas, timesteps } = sched.setTimesteps(steps);
  const cond = o.conditioning ?? null;
  checkConditioning(shape, cond);
  const cft = o.conditionalFrameTimestep ?? 0.0001;
  const ct = conditionTensors(backend, shape, cond ? cond.numCondLatentFrames : 0);
  const zeroLatents = cond ? null : F.zeros(backend, shape).keep();
  const condLatents = cond ? cond.latents : zeroLatents!;
  // kept across steps (the caller's tensors stay the caller's)
  const owned = [ct.indicator.keep(), ct.mask.keep(), ...(zeroLatents ? [zeroLatents] : [])];
  const gtVelocity = scope(() => F.mul(F.sub(o.noise, condLatents), ct.mask)).keep();
  const notMask = F.affine(ct.mask, -1, 1).keep();
  const step = (i: number, x: Tensor) => {
    const sigma = sigmas[i];
    const ts = cft >= 0
      ? frameTimesteps(backend, ct.indicatorValues, [B, 1, shape[2], 1, 1], cft, sigma)
      : F.full(backend, [B], sigma);
    const input = blend(ct.mask, condLatents, x);
    const args = { hiddenStates: input, timestep: ts, conditionMask: ct.mask, paddingMask: o.paddingMask ?? null, fps: o.fps ?? null };
    const outCond = model.forward({ ...args, encoderHiddenStates: o.promptEmbeds });
    let v = F.add(gtVelocity, F.mul(outCond, notMask));
    let outUncond: Tensor | null = null;
    if (cfgOn) {
      outUncond = model.forward({ ...args, encoderHiddenStates: o.negativePromptEmbeds! });
      v = guide(v, F.add(gtVelocity, F.mul(outUncond, notMask)), g);
    }
    return { latents: sched.step(v, x), modelOutCond: outCond, modelOutUncond: outUncond };
  };
  const latents = await runSteps(o.noise.reshape(o.noise.shape).keep(), { sigmas, timesteps }, steps, o, step, () => {
    sched.dispose();
    for (const t of owned) t.dispose();
    gtVelocity.dispose();
    notMask.dispose();
  });
  return { latents, sigmas, timesteps };
}
