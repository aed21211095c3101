// The boundary check of every pipeline: after each component (text encoder, denoiser step, VAE or
// tokenizer decoder, ...) its output is counted for NaN / Inf on the device (F.countNonFinite) and
// only the two counts come back (8 bytes), so a NaN weight or input is reported where it first
// shows, naming the component and the step, instead of reaching a writer or a metric.
import { NonFiniteError, countNonFiniteValues, nonFiniteCounts, requireFiniteRaw, requireFiniteValues } from '../engine/finite.js';
import * as F from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';

export { NonFiniteError, requireFiniteRaw, requireFiniteValues };

/** Where a checked tensor comes from, for the message. */
export interface CheckPoint {
  /** the component whose output it is: 'vae decoder', 'denoiser', 'tokenizer encoder', ... */
  component: string;
  /** the step or chunk (`3/35` reads "step 3/35"; a string that names its own unit is kept) */
  step?: string | number;
  /** what is checked, when not the component's output ('latents', 'logits', ...) */
  tensor?: string;
  /** the checkpoint to suspect, named in the hint */
  file?: string;
}

function stepText(step: string | number): string {
  return typeof step === 'number' || /^\d+(\/\d+)?$/.test(step) ? `step ${step}` : step;
}

/** `denoiser (step 3/35): output holds 12 NaN and 0 Inf of 196608 values; ...` */
export function nonFiniteMessage(where: CheckPoint, nan: number, inf: number, total: number): string {
  const head = where.step !== undefined ? `${where.component} (${stepText(where.step)})` : where.component;
  const check = where.file ? ` (check ${where.file})` : '';
  return `${head}: ${where.tensor ?? 'output'} ${nonFiniteCounts(nan, inf, total)}; its weights or inputs hold NaN/Inf${check}`;
}

/**
 * Throw NonFiniteError when `t` holds a NaN or an infinity (one device pass, one 8-byte read back,
 * which also waits for the work queued before it). A plan backend holds no values: nothing to check.
 */
export async function checkFinite(t: Tensor, where: CheckPoint): Promise<void> {
  if (t.backend.name === 'plan' || t.size === 0) return;
  const c = F.countNonFinite(t);
  let counts: ArrayLike<number>;
  try {
    counts = await c.read();
  } finally {
    c.dispose();
  }
  const [nan, inf] = [counts[0], counts[1]];
  if (nan || inf) throw new NonFiniteError(nonFiniteMessage(where, nan, inf, t.size), nan, inf, t.size);
}

/** checkFinite for values already on the host (logits read back for sampling, a read clip). */
export function checkFiniteValues(values: ArrayLike<number>, where: CheckPoint): void {
  const [nan, inf] = countNonFiniteValues(values);
  if (nan || inf) throw new NonFiniteError(nonFiniteMessage(where, nan, inf, values.length), nan, inf, values.length);
}

/**
 * Throw for the first step whose counts are not zero, given the [steps, 2] NaN / Inf counts a loop
 * kept on the device (F.countNonFinite of each step's output, written into its row): one read
 * after the loop instead of one per step.
 */
export async function checkStepCounts(counts: Tensor, valuesPerStep: number, where: Omit<CheckPoint, 'step'>): Promise<void> {
  if (counts.backend.name === 'plan') return;
  const c = await counts.read();
  const steps = counts.shape[0];
  for (let k = 0; k < steps; k++) {
    const [nan, inf] = [c[2 * k], c[2 * k + 1]];
    if (nan || inf) throw new NonFiniteError(nonFiniteMessage({ ...where, step: `${k + 1}/${steps}` }, nan, inf, valuesPerStep), nan, inf, valuesPerStep);
  }
}
