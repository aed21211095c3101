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
  if (transB && !transA) {
    linearRows(a, (n, row) => row.set(b.subarray(n * K, n * K + K)), bias, p, out);
    return out;
  }
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
 * nn.Linear's layout (B stored [N, K], not transposed A): both operands walk k contiguously, so
 * one dot product per output, each B row fetched once (by `rowOf`, into a scratch row) and kept
 * in cache across the M rows of A. Same k order and float64 sums as the general loop, so the
 * same results.
 */
function linearRows(
  a: Float32Array, rowOf: (n: number, into: Float32Array) => void, bias: Float32Array | null, p: MatmulParams, out: Float32Array,
): void {
  const { M, N, K, batch, batchB, alpha } = p;
  const row = new Float32Array(K);
  for (let bt = 0; bt < batch; bt++) {
    const aBase = bt * M * K;
    const bBase = (batchB === 1 ? 0 : bt) * N;
    const oBase = bt * M * N;
    for (let n = 0; n < N; n++) {
      rowOf(bBase + n, row);
      const bn = bias ? bias[n] : 0;
      let m = 0;
      // four rows of A at a time: each B element loaded once feeds four sums (each sum still
      // runs over k in order, so every output is what one row times one column gives)
      for (; m + 4 <= M; m += 4) {
        const r0 = aBase + m * K;
        const r1 = r0 + K;
        const r2 = r1 + K;
        const r3 = r2 + K;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let k = 0; k < K; k++) {
          const w = row[k];
          s0 += a[r0 + k] * w;
          s1 += a[r1 + k] * w;
          s2 += a[r2 + k] * w;
          s3 += a[r3 + k] * w;
        }
        const o = oBase + m * N + n;
        out[o] = alpha * s0 + bn;
        out[o + N] = alpha * s1 + bn;
        out[o + 2 * N] = alpha * s2 + bn;
        out[o + 3 * N] = alpha * s3 + bn;
      }
      for (; m < M; m++) {
        const aRow = aBase + m * K;
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a[aRow + k] * row[k];
        out[oBase + m * N + n] = alpha * acc + bn;
      }
    }
  }
}

/**
 * matmul with B [.., N, K] stored as bf16 bit patterns (transB, A not transposed): each row of B
 * is widened into one scratch row as it is used, instead of widening the whole weight (a second
 * copy of every weight matrix per call).
 */
export function matmulBf16B(a: Float32Array, b: Uint16Array, bias: Float32Array | null, p: MatmulParams): Float32Array {
  const out = new Float32Array(p.batch * p.M * p.N);
  const K = p.K;
  let bits: Uint32Array | null = null;
  linearRows(a, (n, row) => {
    bits ??= new Uint32Array(row.buffer);
    const base = n * K;
    for (let k = 0; k < K; k++) bits[k] = b[base + k] << 16;
  }, bias, p, out);
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
