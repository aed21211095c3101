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
    // sample n is the run of F values from ((n * C + c) * T + t) * F (contiguous rows when T = 1)
    const { N, C, groups, eps } = p;
    const T = p.frames ?? 1;
    const F = p.S / T;
    const cg = C / groups;
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < groups; g++) {
        for (let t = 0; t < T; t++) {
          const first = ((n * C + g * cg) * T + t) * F;
          const step = T * F;
          let mean = 0;
          for (let c = 0; c < cg; c++) {
            const base = first + c * step;
            for (let s = 0; s < F; s++) mean += x[base + s];
          }
          mean /= cg * F;
          let sq = 0;
          for (let c = 0; c < cg; c++) {
            const base = first + c * step;
            for (let s = 0; s < F; s++) {
              const d = x[base + s] - mean;
              sq += d * d;
            }
          }
          const inv = 1 / Math.sqrt(sq / (cg * F) + eps);
          for (let c = 0; c < cg; c++) {
            const w = weight ? weight[g * cg + c] : 1;
            const b = bias ? bias[g * cg + c] : 0;
            const base = first + c * step;
            if (p.silu) {
              for (let s = 0; s < F; s++) {
                const y = (x[base + s] - mean) * inv * w + b;
                out[base + s] = y / (1 + Math.exp(-y));
              }
            } else {
              for (let s = 0; s < F; s++) out[base + s] = (x[base + s] - mean) * inv * w + b;
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
