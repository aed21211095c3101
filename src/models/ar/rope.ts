// Position tables of the autoregressive video decoder (spec ar.md §1), computed on the host the
// way upstream computes them, then uploaded once:
//
// - 3D RoPE (RotaryPositionEmbedding rope_dim "3D" + RotaryPositionEmbeddingPytorchV2):
//   head_dim splits into dim_t / dim_h / dim_w (dim_h = dim_w = head_dim // 6 * 2); inverse
//   frequencies 1 / theta^(2k / dim) in float32, optionally YaRN-scaled per axis (spatial
//   against original_latent_shape[1], temporal against original_latent_shape[0]); grid token
//   (t, h, w) has the half angle vector [t*f_t, h*f_s, w*f_s], repeated twice ("rotate-half"
//   pairing of dims j and j + head_dim/2); rows follow the T-major token order, a zero row is
//   prepended for <bov> (text_to_video), and zero rows pad to pad_to_multiple_of. mscale is
//   not applied (v2 never multiplies cos/sin by it).
// - the absolute position embedding (SinCosPosEmbAxisTE): float64 sin/cos tables per axis
//   (dim split t, h, w with dim_h = dim_w = dim // 6 * 2), concatenated per grid token,
//   rounded to bfloat16 (the module's dtype), same <bov> row and zero padding.
import type { ArConfig } from './config.js';
import { ArConfigError } from './config.js';

const f32 = Math.fround;

/** Sequence rows of the position tables: grid tokens (+1 for <bov>), padded to pad_to_multiple_of. */
export function positionTableRows(cfg: ArConfig): number {
  const [T, H, W] = cfg.videoLatentShape;
  const n = T * H * W + (cfg.trainingType === 'text_to_video' ? 1 : 0);
  const m = cfg.padToMultipleOf;
  return m && n % m ? n + (m - (n % m)) : n;
}

/** Offset of grid token 0 in the sequence (1 when <bov> comes first). */
export function gridOffset(cfg: ArConfig): number {
  return cfg.trainingType === 'text_to_video' ? 1 : 0;
}

/** [dim_t, dim_h, dim_w] of the RoPE head-dim split. */
export function ropeAxisDims(headDim: number): [number, number, number] {
  const dimH = Math.floor(headDim / 6) * 2;
  return [headDim - 2 * dimH, dimH, dimH];
}

/** 1 / theta^(2k / dim) for k < dim/2, in float32 as torch computes it. */
function invFreq(theta: number, dim: number): Float32Array {
  const out = new Float32Array(Math.floor(dim / 2));
  for (let k = 0; k < out.length; k++) {
    const r = f32((2 * k) / dim);
    out[k] = f32(1 / f32(f32(theta) ** r));
  }
  return out;
}

/**
 * YaRN (get_scale_factors): per frequency f, m = clamp((f - lo) / (hi - lo), 0, 1) with
 * hi = 2 pi beta_fast / orig, lo = 2 pi beta_slow / orig; f' = f * ((1 - m) / scale + m).
 */
export function yarnScale(inv: Float32Array, orig: number, betaFast: number, betaSlow: number, scale: number): Float32Array {
  const hi = (2 * Math.PI * betaFast) / orig;
  const lo = (2 * Math.PI * betaSlow) / orig;
  const out = new Float32Array(inv.length);
  for (let k = 0; k < inv.length; k++) {
    const m = Math.min(Math.max(f32(f32(inv[k] - f32(lo)) / f32(hi - lo)), 0), 1);
    const factor = f32(f32(f32(1 - m) / f32(scale)) + m);
    out[k] = f32(inv[k] * factor);
  }
  return out;
}

/** The temporal and spatial inverse frequencies (YaRN applied when configured). */
export function ropeInverseFrequencies(cfg: ArConfig): { temporal: Float32Array; spatial: Float32Array } {
  const [dimT, dimH] = ropeAxisDims(cfg.headDim);
  let temporal = invFreq(cfg.ropeTheta, dimT);
  let spatial = invFreq(cfg.ropeTheta, dimH);
  if (cfg.applyYarn) {
    const orig = cfg.originalLatentShape!;
    spatial = yarnScale(spatial, orig[1], cfg.yarnBetaFast!, cfg.yarnBetaSlow!, cfg.yarnScale!);
    temporal = yarnScale(temporal, orig[0], cfg.yarnBetaFast!, cfg.yarnBetaSlow!, cfg.yarnScale!);
  }
  return { temporal, spatial };
}

export interface RopeTables {
  /** angles of the grid tokens, [T*H*W, head_dim] (upstream `freqs`, before <bov>/padding) */
  freqs: Float32Array;
  /** cos / sin of the full table, [rows, head_dim] (upstream cos_cached / sin_cached) */
  cos: Float32Array;
  sin: Float32Array;
  rows: number;
}

export function ropeTables(cfg: ArConfig): RopeTables {
  const [T, H, W] = cfg.videoLatentShape;
  const D = cfg.headDim;
  const half = D / 2;
  const { temporal, spatial } = ropeInverseFrequencies(cfg);
  const nt = temporal.length;
  const ns = spatial.length;
  const n = T * H * W;
  const freqs = new Float32Array(n * D);
  let row = 0;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, row++) {
        const base = row * D;
        for (let k = 0; k < nt; k++) freqs[base + k] = f32(t * temporal[k]);
        for (let k = 0; k < ns; k++) freqs[base + nt + k] = f32(h * spatial[k]);
        for (let k = 0; k < ns; k++) freqs[base + nt + ns + k] = f32(w * spatial[k]);
        for (let k = 0; k < half; k++) freqs[base + half + k] = freqs[base + k];
      }
    }
  }
  const rows = positionTableRows(cfg);
  const off = gridOffset(cfg);
  const cos = new Float32Array(rows * D).fill(1);
  const sin = new Float32Array(rows * D);
  for (let i = 0; i < n * D; i++) {
    cos[off * D + i] = Math.cos(freqs[i]);
    sin[off * D + i] = Math.sin(freqs[i]);
  }
  return { freqs, cos, sin, rows };
}

// ------------------------------------------------------------------ absolute position embedding

/** get_1d_sincos_pos_embed_from_grid(D, arange(n)) in float64: [n, D] = [sin(p w), cos(p w)]. */
export function sincos1d(D: number, n: number): Float64Array {
  if (D % 2) throw new ArConfigError(`abs pos emb: axis dim ${D} must be even`);
  const h = D / 2;
  const omega = new Float64Array(h);
  for (let k = 0; k < h; k++) omega[k] = 1 / 10000 ** (k / (D / 2));
  const out = new Float64Array(n * D);
  for (let p = 0; p < n; p++) {
    for (let k = 0; k < h; k++) {
      const a = p * omega[k];
      out[p * D + k] = Math.sin(a);
      out[p * D + h + k] = Math.cos(a);
    }
  }
  return out;
}

const cvt = new Float32Array(1);
const cvtBits = new Uint32Array(cvt.buffer);

/** A float64 value rounded straight to bfloat16 (round to nearest even, as torch's .to(bfloat16)). */
export function float64ToBf16Bits(x: number): number {
  cvt[0] = x;
  const f = cvt[0];
  const u = cvtBits[0];
  if (Number.isNaN(x)) return 0x7fc0;
  const low = u & 0xffff;
  let up: boolean;
  if (low !== 0x8000) up = low > 0x8000;
  // the float32 value sits exactly between two bf16 values: the float64 one decides
  else if (Math.abs(x) !== Math.abs(f)) up = Math.abs(x) > Math.abs(f);
  else up = ((u >>> 16) & 1) === 1;
  return ((u >>> 16) + (up ? 1 : 0)) & 0xffff;
}

/** The absolute position table [rows, dim] as bfloat16 bits (T-major grid rows, <bov> row, zero padding). */
export function absPosEmbTable(cfg: ArConfig): { bits: Uint16Array; rows: number } {
  const [T, H, W] = cfg.videoLatentShape;
  const dim = cfg.dim;
  const dh = Math.floor(dim / 6) * 2;
  const dt = dim - 2 * dh;
  const et = sincos1d(dt, T);
  const eh = sincos1d(dh, H);
  const ew = sincos1d(dh, W);
  const rows = positionTableRows(cfg);
  const bits = new Uint16Array(rows * dim);
  let r = gridOffset(cfg);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, r++) {
        const base = r * dim;
        for (let k = 0; k < dt; k++) bits[base + k] = float64ToBf16Bits(et[t * dt + k]);
        for (let k = 0; k < dh; k++) bits[base + dt + k] = float64ToBf16Bits(eh[h * dh + k]);
        for (let k = 0; k < dh; k++) bits[base + dt + dh + k] = float64ToBf16Bits(ew[w * dh + k]);
      }
    }
  }
  return { bits, rows };
}
