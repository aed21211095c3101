// Summary statistics of a tensor, as a researcher inspecting taps wants them: computed on the
// host in float64 over every element (NaN and infinities counted, not propagated), so a single
// bad value shows up instead of turning the mean into NaN.
import type { Tensor } from './tensor.js';

export interface TensorStats {
  count: number;
  /** over the finite elements */
  min: number;
  max: number;
  mean: number;
  std: number;
  /** root mean square of the finite elements */
  rms: number;
  nan: number;
  inf: number;
}

export function statsOf(values: ArrayLike<number>): TensorStats {
  let n = 0;
  let nan = 0;
  let inf = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) nan++;
    else if (!Number.isFinite(v)) inf++;
    else {
      n++;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      sumSq += v * v;
    }
  }
  const mean = n ? sum / n : Number.NaN;
  // a second pass: the variance from squared deviations, not from sumSq - mean² (cancellation)
  let dev = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) dev += (v - mean) * (v - mean);
  }
  const variance = n ? dev / n : Number.NaN;
  return {
    count: values.length,
    min: n ? min : Number.NaN,
    max: n ? max : Number.NaN,
    mean,
    std: Math.sqrt(variance),
    rms: n ? Math.sqrt(sumSq / n) : Number.NaN,
    nan,
    inf,
  };
}

/** Statistics of a tensor's values (read from its backend: call it outside a forward pass). */
export async function tensorStats(t: Tensor): Promise<TensorStats> {
  return statsOf(await t.read());
}
