// Layer, RMS and group normalisation. Statistics are two-pass in float64 (mean first, then
// the biased variance about it) so the oracle adds no cancellation error of its own.
import type { NormParams } from '../backend.js';

/** Mean (0 when not centring) and 1/sqrt(mean squared deviation + eps) of x[start, start+count). */
function stats(x: Float32Array | Float64Array, start: number, count: number, eps: number, centre: boolean): [number, number] {
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

/** x / max(‖x‖₂ over C, eps) · w[c] at every (n, s) of [N, C, S], then SiLU if asked. */
function l2Channels(x: Float32Array, weight: Float32Array | null, p: NormParams): Float32Array {
  const { N, C, S, eps } = p;
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let s = 0; s < S; s++) {
      const base = n * C * S + s;
      let sq = 0;
      for (let c = 0; c < C; c++) sq += x[base + c * S] ** 2;
      const inv = 1 / Math.max(Math.sqrt(sq), eps);
      for (let c = 0; c < C; c++) {
        const y = x[base + c * S] * inv * (weight ? weight[c] : 1);
        out[base + c * S] = p.silu ? y / (1 + Math.exp(-y)) : y;
      }
    }
  }
  return out;
}

export function norm(x: Float32Array, weight: Float32Array | null, bias: Float32Array | null, p: NormParams): Float32Array {
  if (p.kind === 'l2_channels') return l2Channels(x, weight, p);
  const out = new Float32Array(x.length);
  if (p.kind === 'group') {
    // frames: x [N, C, T, S / T], statistics per (n, group, frame); channel c of frame t of
    // sample n starts at ((n * C + c) * T + t) * F
    const { N, C, groups, eps } = p;
    const T = p.frames ?? 1;
    const F = p.S / T;
    const cg = C / groups;
    const vals = new Float64Array(cg * F);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        for (let t = 0; t < T; t++) {
          const at = (c: number) => ((n * C + c) * T + t) * F;
          for (let c = 0; c < cg; c++) for (let s = 0; s < F; s++) vals[c * F + s] = x[at(g * cg + c) + s];
          const [mean, inv] = stats(vals, 0, cg * F, eps, true);
          for (let c = g * cg; c < (g + 1) * cg; c++) {
            const w = weight ? weight[c] : 1;
            const b = bias ? bias[c] : 0;
            const base = at(c);
            for (let s = 0; s < F; s++) {
              const y = (x[base + s] - mean) * inv * w + b;
              out[base + s] = p.silu ? y / (1 + Math.exp(-y)) : y;
            }
          }
        }
      }
    }
    return out;
  }
  const { rows, D, eps } = p;
  const centre = p.kind === 'layer';
  // adaLN: row r takes row floor(r / modRows) % M of the weight / bias tables, the weight as 1 + w
  const rpm = p.modRows ?? 0;
  const M = rpm ? Math.max(weight?.length ?? 0, bias?.length ?? 0) / D : 1;
  const one = p.onePlus ? 1 : 0;
  for (let r = 0; r < rows; r++) {
    const start = r * D;
    const m = rpm ? (Math.floor(r / rpm) % M) * D : 0;
    const [mean, inv] = stats(x, start, D, eps, centre);
    for (let d = 0; d < D; d++) {
      const w = weight ? one + weight[m + d] : 1;
      const b = bias ? bias[m + d] : 0;
      out[start + d] = (x[start + d] - mean) * inv * w + b;
    }
  }
  return out;
}
