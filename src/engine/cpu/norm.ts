// Layer, RMS and group normalisation. Statistics are two-pass in float64 (mean first, then
// the biased variance about it) so the oracle adds no cancellation error of its own.
import type { NormParams } from '../backend.js';

/** Mean (0 when not centring) and 1/sqrt(mean squared deviation + eps) of x[start, start+count). */
function stats(x: Float32Array, start: number, count: number, eps: number, centre: boolean): [number, number] {
  let mean = 0;
  if (centre) {
    for (let i = 0; i < count; i++) mean += x[start + i];
    mean /= count;
  }
  let sq = 0;
  for (let i = 0; i < count; i++) {
    const d = x[start + i] - mean;
    sq += d * d;
  }
  return [mean, 1 / Math.sqrt(sq / count + eps)];
}

export function norm(x: Float32Array, weight: Float32Array | null, bias: Float32Array | null, p: NormParams): Float32Array {
  const out = new Float32Array(x.length);
  if (p.kind === 'group') {
    const { N, C, S, groups, eps } = p;
    const cg = C / groups;
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        const [mean, inv] = stats(x, (n * C + g * cg) * S, cg * S, eps, true);
        for (let c = g * cg; c < (g + 1) * cg; c++) {
          const w = weight ? weight[c] : 1;
          const b = bias ? bias[c] : 0;
          const base = (n * C + c) * S;
          for (let s = 0; s < S; s++) out[base + s] = (x[base + s] - mean) * inv * w + b;
        }
      }
    }
    return out;
  }
  const { rows, D, eps } = p;
  const centre = p.kind === 'layer';
  for (let r = 0; r < rows; r++) {
    const start = r * D;
    const [mean, inv] = stats(x, start, D, eps, centre);
    for (let d = 0; d < D; d++) {
      const w = weight ? weight[d] : 1;
      const b = bias ? bias[d] : 0;
      out[start + d] = (x[start + d] - mean) * inv * w + b;
    }
  }
  return out;
}
