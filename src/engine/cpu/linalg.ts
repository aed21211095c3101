// Matrix multiply and direct convolution, accumulating in float64.
import type { ConvParams, MatmulParams } from '../backend.js';

/** out[b, m, n] = alpha * sum_k A(b, m, k) B(b', k, n) + bias[n], b' = 0 when b is shared. */
export function matmul(a: Float32Array, b: Float32Array, bias: Float32Array | null, p: MatmulParams): Float32Array {
  const { M, N, K, batch, batchB, transA, transB, alpha } = p;
  // element strides of A(m, k) and B(k, n) within one batch, whichever way each is stored
  const aM = transA ? 1 : K;
  const aK = transA ? M : 1;
  const bK = transB ? 1 : N;
  const bN = transB ? K : 1;
  const out = new Float32Array(batch * M * N);
  const acc = new Float64Array(N);
  for (let bt = 0; bt < batch; bt++) {
    const aBase = bt * M * K;
    const bBase = (batchB === 1 ? 0 : bt) * K * N;
    const oBase = bt * M * N;
    for (let m = 0; m < M; m++) {
      acc.fill(0);
      // k-outer order keeps the inner loop walking B along n
      for (let k = 0; k < K; k++) {
        const av = a[aBase + m * aM + k * aK];
        const bRow = bBase + k * bK;
        for (let n = 0; n < N; n++) acc[n] += av * b[bRow + n * bN];
      }
      for (let n = 0; n < N; n++) out[oBase + m * N + n] = alpha * acc[n] + (bias ? bias[n] : 0);
    }
  }
  return out;
}

/**
 * PyTorch Conv3d (cross-correlation): out[n, co, o] = bias[co] + sum over the group's input
 * channels ci and taps t of w[co, ci - g*Cin/groups, t] * x[n, ci, o*stride - padding + t*dilation],
 * reads outside the input being zero. Looping over taps outermost keeps the inner loop a
 * straight run along the output row.
 */
export function conv(x: Float32Array, w: Float32Array, bias: Float32Array | null, p: ConvParams): Float32Array {
  const { N, Cin, Cout, groups } = p;
  const [iD, iH, iW] = p.inSize;
  const [kD, kH, kW] = p.kernel;
  const [sD, sH, sW] = p.stride;
  const [pD, pH, pW] = p.padding;
  const [dD, dH, dW] = p.dilation;
  const [oD, oH, oW] = p.outSize;
  const cinG = Cin / groups;
  const coutG = Cout / groups;
  const inPlane = iD * iH * iW;
  const outPlane = oD * oH * oW;
  const taps = kD * kH * kW;
  const out = new Float32Array(N * Cout * outPlane);
  const acc = new Float64Array(outPlane);
  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / coutG);
      acc.fill(bias ? bias[co] : 0);
      for (let c = 0; c < cinG; c++) {
        const xBase = (n * Cin + g * cinG + c) * inPlane;
        const wBase = (co * cinG + c) * taps;
        for (let kd = 0; kd < kD; kd++) {
          for (let kh = 0; kh < kH; kh++) {
            for (let kw = 0; kw < kW; kw++) {
              const wv = w[wBase + (kd * kH + kh) * kW + kw];
              for (let od = 0; od < oD; od++) {
                const id = od * sD - pD + kd * dD;
                if (id < 0 || id >= iD) continue;
                for (let oh = 0; oh < oH; oh++) {
                  const ih = oh * sH - pH + kh * dH;
                  if (ih < 0 || ih >= iH) continue;
                  const oRow = (od * oH + oh) * oW;
                  const xRow = xBase + (id * iH + ih) * iW;
                  for (let ow = 0; ow < oW; ow++) {
                    const iw = ow * sW - pW + kw * dW;
                    if (iw >= 0 && iw < iW) acc[oRow + ow] += wv * x[xRow + iw];
                  }
                }
              }
            }
          }
        }
      }
      out.set(acc, (n * Cout + co) * outPlane);
    }
  }
  return out;
}
