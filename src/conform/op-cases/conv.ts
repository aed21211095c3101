// Cases of conv 1d / 2d / 3d: the tokenizers' factorised 1x3x3 and 3x1x1 and the Wan VAE's 3x3x3,
// 1x1x1 projections, strides, dilation, groups (depthwise), bias, half weights; channel counts that
// reach every path (naive for <= 2 output channels per group, 1x1, the GEMM tiles of 64 and 16).
//
// Tolerance (as test/ops/conv.test.ts argues it): each output is a dot product of
// K = Cin / groups * kD * kH * kW terms in [-1, 1], summed in f32 against the oracle's f64:
// atol 1e-6 + 1e-7 K, rtol 1e-5.
import type { DType } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import { numel } from '../../engine/tensor.js';
import { type OpCase, dtypeLabel, makeCase } from './case.js';

export interface ConvShape {
  N?: number;
  Cin: number;
  Cout: number;
  /** spatial input size, 1 to 3 axes */
  size: readonly number[];
  kernel: readonly number[];
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  groups?: number;
  bias?: boolean;
  xDtype?: DType;
  wDtype?: DType;
}

const perAxis = (v: number | readonly number[] | undefined, nd: number, def: number): number[] =>
  v === undefined ? new Array(nd).fill(def) : typeof v === 'number' ? new Array(nd).fill(v) : [...v];

/** The output size of a conv along each axis (PyTorch's formula). */
export function convOutSize(s: ConvShape): number[] {
  const nd = s.size.length;
  const st = perAxis(s.stride, nd, 1);
  const pd = perAxis(s.padding, nd, 0);
  const dl = perAxis(s.dilation, nd, 1);
  return s.size.map((n, d) => Math.floor((n + 2 * pd[d] - dl[d] * (s.kernel[d] - 1) - 1) / st[d]) + 1);
}

export function convCase(s: ConvShape): OpCase {
  const { N = 1, Cin, Cout, groups = 1, bias = false, xDtype = 'f32', wDtype = 'f32' } = s;
  const nd = s.size.length;
  const out = convOutSize(s);
  const K = (Cin / groups) * numel(s.kernel);
  const extra = [
    s.stride !== undefined && perAxis(s.stride, nd, 1).some((v) => v !== 1) ? ` stride ${perAxis(s.stride, nd, 1).join(',')}` : '',
    s.padding !== undefined && perAxis(s.padding, nd, 0).some((v) => v !== 0) ? ` pad ${perAxis(s.padding, nd, 0).join(',')}` : '',
    s.dilation !== undefined && perAxis(s.dilation, nd, 1).some((v) => v !== 1) ? ` dil ${perAxis(s.dilation, nd, 1).join(',')}` : '',
    groups > 1 ? ` groups ${groups}` : '',
    bias ? ' +bias' : '',
  ].join('');
  return makeCase({
    op: `conv${nd}d`,
    family: 'conv',
    shape: `${N > 1 ? `N${N} ` : ''}C${Cin}->${Cout} ${s.size.join('x')} k${s.kernel.join('x')}${extra}`,
    dtype: dtypeLabel({ x: xDtype, w: wDtype }),
    tol: { atol: 1e-6 + 1e-7 * K, rtol: 1e-5 },
    // every output element is one dot product of K = Cin/groups * kernel volume multiply-adds
    flops: 2 * N * Cout * numel(out) * K,
    formula: '2*N*Cout*outVolume*(Cin/groups)*kernelVolume, outVolume = product of the real output sizes',
    inputs: [
      { shape: [N, Cin, ...s.size], dtype: xDtype },
      { shape: [Cout, Cin / groups, ...s.kernel], dtype: wDtype },
      ...(bias ? [{ shape: [Cout], dtype: wDtype }] : []),
    ],
    fn: (x, w, b) => F.conv(x, w, b ?? null, { stride: s.stride, padding: s.padding, dilation: s.dilation, groups }),
  });
}

export const CONV_CASES: OpCase[] = [
  convCase({ Cin: 1, Cout: 1, size: [1], kernel: [1] }),
  convCase({ Cin: 3, Cout: 5, size: [37], kernel: [3], padding: 1, bias: true }),
  convCase({ Cin: 8, Cout: 66, size: [29], kernel: [4], stride: 2, dilation: 2, wDtype: 'bf16' }),
  convCase({ Cin: 3, Cout: 17, size: [13, 11], kernel: [3, 3], padding: 1, bias: true }),
  convCase({ Cin: 16, Cout: 16, size: [9, 7], kernel: [3, 3], padding: 1, groups: 16 }),
  convCase({ Cin: 6, Cout: 70, size: [10, 9], kernel: [4, 4], stride: 2, padding: 1 }),
  convCase({ Cin: 33, Cout: 65, size: [3, 7, 5], kernel: [1, 3, 3], padding: [0, 1, 1], bias: true }),
  convCase({ Cin: 33, Cout: 65, size: [5, 7, 5], kernel: [3, 1, 1], bias: true }),
  convCase({ Cin: 12, Cout: 20, size: [5, 6, 7], kernel: [3, 3, 3], padding: 1, wDtype: 'bf16' }),
  convCase({ Cin: 17, Cout: 129, size: [2, 5, 3], kernel: [1, 1, 1] }),
  convCase({ N: 2, Cin: 4, Cout: 2, size: [3, 4, 5], kernel: [2, 2, 2], stride: [1, 2, 2] }),
  convCase({ Cin: 8, Cout: 8, size: [3, 5, 5], kernel: [3, 3, 3], padding: 1, xDtype: 'f16', wDtype: 'f16' }),
];
