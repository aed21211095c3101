// Cases of layer / RMS / group norm and the channel L2 norm: rows of 1, odd and prime lengths,
// lengths past the kernels' chunking, rows sitting on a large offset (1000 +- 1: a one-pass f32
// variance would lose everything there), half inputs and weights.
//
// Tolerance (as test/ops/norm.test.ts argues it): atol 1e-5, rtol 1e-4. The kernels take Welford
// statistics in f32 around the row's first element; the oracle is two-pass in f64.
import { type DType, bytesPerElement } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { type Tensor, numel } from '../../engine/tensor.js';
import { type OpCase, dtypeLabel, makeCase } from './case.js';

const TOL = { atol: 1e-5, rtol: 1e-4 };

export type NormKind = 'layer' | 'rms' | 'group' | 'l2';

export interface NormShape {
  kind: NormKind;
  /** layer / rms: [rows, D]; group / l2: [N, C, ...spatial] */
  shape: readonly number[];
  groups?: number;
  weight?: boolean;
  bias?: boolean;
  xDtype?: DType;
  wDtype?: DType;
  /** values in [offset - 1, offset + 1) */
  offset?: number;
  /** group / l2: SiLU of the result in the same pass */
  silu?: boolean;
  /** group: x [N, C, T, ...] normalised frame by frame */
  perFrame?: boolean;
}

const OP: Record<NormKind, string> = { layer: 'layerNorm', rms: 'rmsNorm', group: 'groupNorm', l2: 'l2NormalizeChannels' };

export function normCase(s: NormShape): OpCase {
  const { kind, groups = 1, weight = true, bias = kind === 'layer' || kind === 'group', xDtype = 'f32', wDtype = 'f32', offset = 0, silu = false, perFrame = false } = s;
  const n = numel(s.shape);
  const perParam = kind === 'layer' || kind === 'rms' ? s.shape[s.shape.length - 1] : s.shape[1];
  const hasBias = bias && kind !== 'rms' && kind !== 'l2';
  const inputs = [
    { shape: s.shape, dtype: xDtype, lo: offset - 1, hi: offset + 1 },
    ...(weight ? [{ shape: [perParam], dtype: wDtype }] : []),
    ...(hasBias ? [{ shape: [perParam], dtype: wDtype }] : []),
  ];
  const fn = (x: Tensor, ...p: Tensor[]) => {
    const w = weight ? p[0] : null;
    const b = hasBias ? p[weight ? 1 : 0] : null;
    if (kind === 'layer') return F.layerNorm(x, w, b, 1e-5);
    if (kind === 'rms') return F.rmsNorm(x, w, 1e-6);
    if (kind === 'group') return F.groupNorm(x, groups, w, b, 1e-6, { silu, perFrame });
    return F.l2NormalizeChannels(x, w, 1e-12, { silu });
  };
  const params = `${groups > 1 ? ` groups ${groups}` : ''}${weight ? '' : ' no weight'}${hasBias ? ' +bias' : ''}${offset ? ` offset ${offset}` : ''}${silu ? ' +silu' : ''}${perFrame ? ' per frame' : ''}`;
  return makeCase({
    op: OP[kind],
    family: 'norm',
    shape: `${s.shape.join('x')}${params}`,
    dtype: weight ? dtypeLabel({ x: xDtype, w: wDtype }) : xDtype,
    tol: TOL,
    // one read of x and one f32 write of y per element; the per-row parameters are negligible
    bytes: (bytesPerElement(xDtype) + 4) * n,
    formula: '(bytes per x element + 4)*numel(x): x read once, y written once',
    inputs,
    fn,
  });
}

/**
 * adaLN modulation (F.layerNormModulate): LayerNorm of x [B, N, D] times (1 + scale) plus shift,
 * scale / shift [Mb, Mf, 1, D] (Mb 1 or B; Mf token groups of N / Mf tokens).
 */
export function adaLnCase(B: number, N: number, D: number, Mb: number, Mf: number, o: { offset?: number; pDtype?: DType } = {}): OpCase {
  const { offset = 0, pDtype = 'f32' } = o;
  const mod = { shape: [Mb, Mf, 1, D], dtype: pDtype };
  return makeCase({
    op: 'layerNormModulate',
    family: 'norm',
    shape: `${B}x${N}x${D} mod ${Mb}x${Mf}${offset ? ` offset ${offset}` : ''}`,
    dtype: pDtype === 'f32' ? 'f32' : dtypeLabel({ x: 'f32', mod: pDtype }),
    tol: TOL,
    bytes: 8 * B * N * D,
    formula: '8*numel(x): x read once, y written once (f32); scale / shift negligible',
    inputs: [{ shape: [B, N, D], dtype: 'f32', lo: offset - 1, hi: offset + 1 }, mod, mod],
    fn: (x: Tensor, scale: Tensor, shift: Tensor) => F.layerNormModulate(x, scale, shift, 1e-6),
  });
}

export const NORM_CASES: OpCase[] = [
  normCase({ kind: 'layer', shape: [1, 1] }),
  normCase({ kind: 'layer', shape: [7, 33] }),
  normCase({ kind: 'layer', shape: [3, 1031], weight: false }),
  normCase({ kind: 'layer', shape: [5, 97], offset: 1000 }),
  normCase({ kind: 'layer', shape: [4, 64], xDtype: 'bf16', wDtype: 'bf16' }),
  normCase({ kind: 'rms', shape: [1, 5] }),
  normCase({ kind: 'rms', shape: [13, 257], wDtype: 'bf16' }),
  normCase({ kind: 'rms', shape: [2, 4099], xDtype: 'f16' }),
  normCase({ kind: 'group', shape: [1, 6, 7], groups: 3 }),
  normCase({ kind: 'group', shape: [2, 32, 3, 5, 7], groups: 32 }),
  normCase({ kind: 'group', shape: [1, 8, 2, 31, 33], groups: 2, offset: 1000 }),
  normCase({ kind: 'group', shape: [1, 4, 9, 9], groups: 1, xDtype: 'bf16', wDtype: 'f16' }),
  normCase({ kind: 'group', shape: [1, 12, 7, 11], groups: 3, silu: true }),
  normCase({ kind: 'group', shape: [2, 8, 3, 8, 4], groups: 1, silu: true, wDtype: 'bf16' }),
  normCase({ kind: 'group', shape: [1, 4, 4099], groups: 2, silu: true, offset: 1000 }),
  normCase({ kind: 'group', shape: [1, 8, 3, 4, 5], groups: 1, perFrame: true, silu: true }),
  normCase({ kind: 'group', shape: [2, 6, 5, 7, 3], groups: 3, perFrame: true, offset: 1000 }),
  normCase({ kind: 'group', shape: [1, 4, 2, 1100], groups: 2, perFrame: true, wDtype: 'bf16' }),
  adaLnCase(1, 6, 33, 1, 3),
  adaLnCase(2, 10, 64, 2, 5, { offset: 1000 }),
  adaLnCase(3, 7, 20, 1, 1, { pDtype: 'bf16' }),
  normCase({ kind: 'l2', shape: [1, 16, 3, 5, 5] }),
  normCase({ kind: 'l2', shape: [1, 7, 2, 3], silu: true }),
  normCase({ kind: 'l2', shape: [2, 3, 17], weight: false }),
];
