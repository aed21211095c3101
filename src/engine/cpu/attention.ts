// Scaled dot-product attention (GQA, causal, KV-cache length, additive mask) and rotary
// position embedding.
import type { AttentionParams, RopeParams } from '../backend.js';

/**
 * out[b, h, i] = softmax_j(scale * q[b,h,i] . k[b,kh,j] + mask[bm,hm,i,j]) @ v[b,kh], with
 * kh = floor(h / (Hq/Hkv)), j < kvLen, and under `causal` keys j > i + (kvLen - Lq) excluded.
 *
 * A query whose every score is -inf (fully masked, e.g. a padding row) outputs zeros rather
 * than the NaN a literal softmax would give: fused/flash kernels behave that way, and a NaN
 * would otherwise poison every later layer of the padded sequence.
 */
export function attention(
  q: Float32Array, k: Float32Array, v: Float32Array, mask: Float32Array | null, p: AttentionParams,
): Float32Array {
  const { B, Hq, Hkv, Lq, Lk, kvLen, D, Dv, scale, causal, maskB, maskH } = p;
  const group = Hq / Hkv;
  const shift = kvLen - Lq;
  const out = new Float32Array(B * Hq * Lq * Dv);
  const s = new Float64Array(kvLen);
  const acc = new Float64Array(Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      const kBase = (b * Hkv + kh) * Lk * D;
      const vBase = (b * Hkv + kh) * Lk * Dv;
      const mBase = mask ? ((maskB === 1 ? 0 : b) * maskH + (maskH === 1 ? 0 : h)) * Lq * kvLen : 0;
      for (let i = 0; i < Lq; i++) {
        const qBase = ((b * Hq + h) * Lq + i) * D;
        let mx = -Infinity;
        for (let j = 0; j < kvLen; j++) {
          if (causal && j > i + shift) {
            s[j] = -Infinity;
            continue;
          }
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qBase + d] * k[kBase + j * D + d];
          s[j] = scale * dot + (mask ? mask[mBase + i * kvLen + j] : 0);
          mx = Math.max(mx, s[j]);
        }
        const oBase = ((b * Hq + h) * Lq + i) * Dv;
        if (mx === -Infinity) continue; // fully masked: the output row stays zero
        acc.fill(0);
        let sum = 0;
        for (let j = 0; j < kvLen; j++) {
          const e = Math.exp(s[j] - mx);
          sum += e;
          for (let d = 0; d < Dv; d++) acc[d] += e * v[vBase + j * Dv + d];
        }
        for (let d = 0; d < Dv; d++) out[oBase + d] = acc[d] / sum;
      }
    }
  }
  return out;
}

/**
 * Rotates the first R dims of each head by the per-position angles whose cos/sin are tabled
 * as [tableB, L, R]; 'half' pairs d with d + R/2 (rotate_half), 'interleaved' pairs 2j with
 * 2j+1. Dims R..D pass through.
 */
export function rope(x: Float32Array, cos: Float32Array, sin: Float32Array, p: RopeParams): Float32Array {
  const { layout, B, H, L, D, R, tableB, mode } = p;
  const half = R / 2;
  const out = x.slice();
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let l = 0; l < L; l++) {
        const base = layout === 'bhld' ? ((b * H + h) * L + l) * D : ((b * L + l) * H + h) * D;
        const t = ((tableB === 1 ? 0 : b) * L + l) * R;
        if (mode === 'half') {
          for (let d = 0; d < half; d++) {
            const x1 = x[base + d];
            const x2 = x[base + d + half];
            out[base + d] = x1 * cos[t + d] - x2 * sin[t + d];
            out[base + d + half] = x2 * cos[t + d + half] + x1 * sin[t + d + half];
          }
        } else {
          for (let j = 0; j < half; j++) {
            const x1 = x[base + 2 * j];
            const x2 = x[base + 2 * j + 1];
            out[base + 2 * j] = x1 * cos[t + 2 * j] - x2 * sin[t + 2 * j];
            out[base + 2 * j + 1] = x2 * cos[t + 2 * j + 1] + x1 * sin[t + 2 * j + 1];
          }
        }
      }
    }
  }
  return out;
}
