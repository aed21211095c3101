// Reductions and scans over the middle axis of a [outer, n, inner] view, plus row-wise topk.
// Sums accumulate in float64; max/min/softmax propagate NaN like torch.
import type { ReduceOp } from '../backend.js';

export function reduce(op: ReduceOp, x: Float32Array, outer: number, n: number, inner: number): Float32Array {
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let acc = op === 'max' ? -Infinity : op === 'min' ? Infinity : 0;
      for (let j = 0; j < n; j++) {
        const v = x[base + j * inner];
        if (op === 'max') acc = Math.max(acc, v);
        else if (op === 'min') acc = Math.min(acc, v);
        else acc += v;
      }
      out[o * inner + i] = op === 'mean' ? acc / n : acc;
    }
  }
  return out;
}

/** First index of the maximum; NaN counts as larger than everything (torch.argmax). */
export function argmax(x: Float32Array, outer: number, n: number, inner: number): Int32Array {
  const out = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let best = 0;
      let bestVal = x[base];
      for (let j = 1; j < n && !Number.isNaN(bestVal); j++) {
        const v = x[base + j * inner];
        if (v > bestVal || Number.isNaN(v)) {
          best = j;
          bestVal = v;
        }
      }
      out[o * inner + i] = best;
    }
  }
  return out;
}

/**
 * exp(x - max) / sum. A row that is entirely -inf gives NaN (-inf - -inf), as torch.softmax
 * does; attention handles its fully-masked rows itself.
 */
export function softmax(x: Float32Array, outer: number, n: number, inner: number): Float32Array {
  const out = new Float32Array(x.length);
  const e = new Float64Array(n);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, x[base + j * inner]);
      let sum = 0;
      for (let j = 0; j < n; j++) {
        e[j] = Math.exp(x[base + j * inner] - mx);
        sum += e[j];
      }
      for (let j = 0; j < n; j++) out[base + j * inner] = e[j] / sum;
    }
  }
  return out;
}

/** Inclusive prefix sum. */
export function cumsum(x: Float32Array, outer: number, n: number, inner: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let acc = 0;
      for (let j = 0; j < n; j++) {
        acc += x[base + j * inner];
        out[base + j * inner] = acc;
      }
    }
  }
  return out;
}

/**
 * Descending order with ties broken by lower index first; NaN sorts above +inf, as in
 * torch.topk / torch.sort(descending=True, stable=True).
 */
export function topk(x: Float32Array, rows: number, n: number, k: number): [Float32Array, Int32Array] {
  const values = new Float32Array(rows * k);
  const indices = new Int32Array(rows * k);
  const order = new Array<number>(n);
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    for (let j = 0; j < n; j++) order[j] = j;
    order.sort((i, j) => {
      const a = x[base + i];
      const b = x[base + j];
      const an = Number.isNaN(a);
      const bn = Number.isNaN(b);
      if (an || bn) return an && bn ? i - j : an ? -1 : 1;
      if (a !== b) return a > b ? -1 : 1;
      return i - j;
    });
    for (let j = 0; j < k; j++) {
      values[r * k + j] = x[base + order[j]];
      indices[r * k + j] = order[j];
    }
  }
  return [values, indices];
}
