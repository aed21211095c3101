// Cases of matmul / linear, attention and RoPE. The factories are what the kernel bench builds
// its rows from (with their FLOP formulas); LINALG_CASES are the checked shapes: sizes of 1, odd,
// primes and just past every tile (matmul tiles 64 / 32 / 16 / 4, attention key tiles, GEMV).
//
// Tolerances (as test/ops/matmul.test.ts and attention.test.ts argue them): matmul accumulates
// K products in f32 in another order than the oracle's f64: atol 1e-5 * max(1, sqrt K), rtol
// 1e-4; attention keeps f32 dot products and an f32 online softmax: atol 2e-5, rtol 1e-4 with
// inputs in [-1, 1); RoPE is one product pair per output: atol 2e-6, rtol 1e-6.
import type { DType } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { matmulTolerance } from '../../engine/tuning.js';
import { type OpCase, type OpTolerance, dtypeLabel, makeCase } from './case.js';

/** The engine's matmul tolerance (src/engine/tuning.ts), which autotune holds its candidates to as well. */
export const matmulTol = (K: number): OpTolerance => matmulTolerance(K);

export interface MatmulShape {
  batch?: number;
  /** b shared by the whole batch (a weight) when true */
  sharedB?: boolean;
  M: number;
  K: number;
  N: number;
  transA?: boolean;
  transB?: boolean;
  /** dtype of b (the weight): f32, bf16 or f16 */
  bDtype?: DType;
  bias?: DType | null;
  alpha?: number;
}

/** F.matmul: a [batch, M, K] (or [batch, K, M] with transA) times b, plus bias. */
export function matmulCase(s: MatmulShape): OpCase {
  const { batch = 1, sharedB = true, M, K, N, transA = false, transB = false, bDtype = 'f32', bias = null, alpha = 1 } = s;
  const aShape = [batch, transA ? K : M, transA ? M : K];
  const bCore = transB ? [N, K] : [K, N];
  const bShape = sharedB ? bCore : [batch, ...bCore];
  const flags = `${transA ? ' aT' : ''}${transB ? ' bT' : ''}${batch > 1 ? (sharedB ? ' b shared' : ' b batched') : ''}${alpha !== 1 ? ` alpha ${alpha}` : ''}`;
  return makeCase({
    op: 'matmul',
    family: 'matmul',
    shape: `${batch > 1 ? `batch${batch} ` : ''}M${M} K${K} N${N}${flags}${bias ? ' +bias' : ''}`,
    dtype: dtypeLabel({ a: 'f32', b: bDtype, ...(bias ? { bias } : {}) }),
    tol: matmulTol(K),
    flops: 2 * batch * M * K * N,
    formula: '2*batch*M*K*N',
    inputs: [{ shape: aShape }, { shape: bShape, dtype: bDtype }, ...(bias ? [{ shape: [N], dtype: bias }] : [])],
    fn: (a, b, bi) => F.matmul(a, b, { transA, transB, alpha, bias: bi ?? null }),
  });
}

/** F.linear: x [M, K] @ w[N, K]ᵀ (+ b), the models' projections; M = 1 is the decode GEMV. */
export function linearCase(M: number, K: number, N: number, wDtype: DType = 'f32', bias = false): OpCase {
  return makeCase({
    op: 'linear',
    family: 'matmul',
    shape: `M${M} K${K} N${N}${bias ? ' +bias' : ''}`,
    dtype: dtypeLabel({ x: 'f32', w: wDtype }),
    tol: matmulTol(K),
    flops: 2 * M * K * N,
    formula: '2*M*K*N',
    inputs: [{ shape: [M, K] }, { shape: [N, K], dtype: wDtype }, ...(bias ? [{ shape: [N], dtype: wDtype }] : [])],
    fn: (x, w, b) => F.linear(x, w, b ?? null),
  });
}

/** (query, key) pairs a causal mask leaves visible: query i sees keys 0 .. i + kvLen - Lq. */
export function causalPairs(Lq: number, kvLen: number): number {
  let n = 0;
  for (let i = 0; i < Lq; i++) n += Math.max(0, Math.min(kvLen, i + kvLen - Lq + 1));
  return n;
}

export interface AttentionShape {
  B?: number;
  Hq: number;
  /** kv heads (GQA); defaults to Hq */
  Hkv?: number;
  Lq: number;
  Lk: number;
  D: number;
  Dv?: number;
  causal?: boolean;
  /** valid keys of a KV cache with spare capacity (defaults to Lk) */
  kvLen?: number;
  /** an additive mask [1, 1, Lq, kvLen] with holes of -inf (key 0 always open) */
  mask?: boolean;
  dtype?: DType;
}

/** F.attention: prefill (Lq > 4, the tiled kernel), decode (Lq <= 4, split over the keys), causal, GQA, masks. */
export function attentionCase(s: AttentionShape): OpCase {
  const { B = 1, Hq, Hkv = Hq, Lq, Lk, D, Dv = D, causal = false, kvLen = Lk, mask = false, dtype = 'f32' } = s;
  const pairs = causal ? causalPairs(Lq, kvLen) : Lq * kvLen;
  const kind = Lq <= 4 ? 'decode' : causal ? 'causal' : 'prefill';
  const shape = `${B > 1 ? `B${B} ` : ''}H${Hq}${Hkv !== Hq ? `/${Hkv}` : ''} Lq${Lq} Lk${Lk}${kvLen !== Lk ? ` kv${kvLen}` : ''} D${D}${Dv !== D ? ` Dv${Dv}` : ''} ${kind}${mask ? ' mask' : ''}`;
  const maskSpec = {
    shape: [1, 1, Lq, kvLen],
    make: (n: number, next: () => number) => {
      const m = new Float32Array(n);
      for (let i = 0; i < n; i++) m[i] = i % kvLen === 0 ? 0 : next() < 0.2 ? -Infinity : -next();
      return m;
    },
  };
  return makeCase({
    op: 'attention',
    family: 'attention',
    shape,
    dtype,
    tol: { atol: 2e-5, rtol: 1e-4 },
    flops: 2 * (D + Dv) * B * Hq * pairs,
    formula: '2*(D+Dv)*B*Hq*pairs, pairs = visible (query, key) pairs: Lq*kvLen, causal sum_i min(kvLen, i+kvLen-Lq+1)',
    inputs: [
      { shape: [B, Hq, Lq, D], dtype },
      { shape: [B, Hkv, Lk, D], dtype },
      { shape: [B, Hkv, Lk, Dv], dtype },
      ...(mask ? [maskSpec] : []),
    ],
    fn: (q, k, v, m) => F.attention(q, k, v, { causal, kvLen, mask: m ?? null }),
  });
}

/** F.rope on x [B, H, L, D] ('bhld') or [B, L, H, D] ('blhd') with tables [L, R]. */
export function ropeCase(B: number, H: number, L: number, D: number, R: number, mode: 'half' | 'interleaved', layout: 'bhld' | 'blhd', dtype: DType = 'f32'): OpCase {
  return makeCase({
    op: 'rope',
    family: 'rope',
    shape: `${layout} B${B} H${H} L${L} D${D} R${R} ${mode}`,
    dtype,
    tol: { atol: 2e-6, rtol: 1e-6 },
    bytes: 2 * 4 * B * H * L * D,
    formula: '2*4*B*H*L*D bytes (x in, y out)',
    inputs: [{ shape: layout === 'bhld' ? [B, H, L, D] : [B, L, H, D], dtype }, { shape: [L, R] }, { shape: [L, R] }],
    fn: (x, c, s) => F.rope(x, c, s, { mode, layout }),
  });
}

export const LINALG_CASES: OpCase[] = [
  matmulCase({ M: 1, K: 1, N: 1 }),
  matmulCase({ M: 17, K: 33, N: 65 }),
  matmulCase({ M: 67, K: 131, N: 97, transB: true, bias: 'f32' }),
  matmulCase({ M: 130, K: 67, N: 129, transA: true }),
  matmulCase({ batch: 3, sharedB: false, M: 31, K: 37, N: 29, transB: true, alpha: 0.125 }),
  matmulCase({ batch: 2, M: 65, K: 64, N: 66, bDtype: 'bf16', bias: 'bf16' }),
  matmulCase({ M: 33, K: 63, N: 17, bDtype: 'f16', transB: true }),
  linearCase(1, 257, 300, 'f32'),
  linearCase(1, 257, 300, 'bf16', true),
  linearCase(3, 128, 131, 'bf16'),
  linearCase(97, 200, 70, 'bf16', true),
  linearCase(64, 256, 128, 'f16'),
  attentionCase({ Hq: 2, Lq: 1, Lk: 1, D: 8 }),
  attentionCase({ Hq: 3, Lq: 37, Lk: 37, D: 64 }),
  attentionCase({ B: 2, Hq: 4, Hkv: 2, Lq: 33, Lk: 33, D: 32, causal: true }),
  attentionCase({ Hq: 2, Lq: 5, Lk: 71, D: 24, Dv: 40, mask: true }),
  attentionCase({ Hq: 4, Hkv: 1, Lq: 1, Lk: 300, kvLen: 257, D: 64 }),
  attentionCase({ Hq: 2, Lq: 3, Lk: 130, D: 128, causal: true }),
  attentionCase({ Hq: 2, Lq: 19, Lk: 19, D: 16, dtype: 'bf16' }),
  attentionCase({ Hq: 1, Lq: 70, Lk: 70, D: 80, dtype: 'f16', causal: true }),
  ropeCase(1, 3, 17, 64, 64, 'half', 'bhld'),
  ropeCase(2, 5, 7, 40, 32, 'interleaved', 'blhd'),
  ropeCase(1, 2, 9, 16, 16, 'half', 'blhd', 'bf16'),
];
