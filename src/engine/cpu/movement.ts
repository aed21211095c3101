// Data movement: the general strided gather, in-place slice writes and row gathers.
import { type StridedParams, borderCoord } from '../backend.js';
import { numel, stridesOf } from '../tensor.js';

/** i32 input gives an i32 output (ids copy bit-exactly); anything else reads as f32. */
export function strided<A extends Float32Array | Int32Array>(x: A, p: StridedParams, outShape: readonly number[]): A {
  const r = p.dims.length;
  // per output axis: element offset contributed by each output index, -1 for a constant hole
  const tables = p.dims.map((d) => {
    const t = new Int32Array(d.size);
    for (let i = 0; i < d.size; i++) {
      const c = borderCoord(Math.floor(i / d.rep) * d.step + d.start, d.inSize, p.border);
      t[i] = c < 0 ? -1 : c * d.inStride;
    }
    return t;
  });
  const out = (x instanceof Int32Array ? new Int32Array(numel(outShape)) : new Float32Array(numel(outShape))) as A;
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < out.length; o++) {
    let off = 0;
    let hole = false;
    for (let d = 0; d < r; d++) {
      const t = tables[d][idx[d]];
      if (t < 0) {
        hole = true;
        break;
      }
      off += t;
    }
    out[o] = hole ? p.value : x[off];
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * dst[starts + idx] = src[idx]. Assigning into an Int32Array converts with ToInt32, which
 * truncates toward zero as the i32 cast does.
 */
export function setSlice(
  dst: Float32Array | Int32Array, dstShape: readonly number[],
  src: Float32Array | Int32Array, srcShape: readonly number[],
  starts: readonly number[],
): void {
  const r = srcShape.length;
  const dstStrides = stridesOf(dstShape);
  const n = numel(srcShape);
  const idx = new Array<number>(r).fill(0);
  let base = 0;
  for (let d = 0; d < r; d++) base += starts[d] * dstStrides[d];
  for (let i = 0; i < n; i++) {
    let off = base;
    for (let d = 0; d < r; d++) off += idx[d] * dstStrides[d];
    dst[off] = src[i];
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d] < srcShape[d]) break;
      idx[d] = 0;
    }
  }
}

/** Rows of a [V, D] table picked by ids; an id outside [0, V) yields a zero row. */
export function gather<A extends Float32Array | Int32Array>(table: A, ids: ArrayLike<number>, V: number, D: number): A {
  const out = (table instanceof Int32Array ? new Int32Array(ids.length * D) : new Float32Array(ids.length * D)) as A;
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (id >= 0 && id < V) out.set(table.subarray(id * D, id * D + D), r * D);
  }
  return out;
}
