// Storage dtypes. Compute is always f32; f16/bf16 exist so that weights keep their checkpoint
// precision in memory and are widened inside the kernels; i32 holds ids and indices.
import { getFloat16, setFloat16 } from '@petamoriken/float16';

export type DType = 'f32' | 'f16' | 'bf16' | 'i32';

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32'];

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f16' || dtype === 'bf16' ? 2 : 4;
}

/** The typed array a tensor of this dtype reads back as (half types widen to f32). */
export type ReadArray = Float32Array | Int32Array;

/** Raw element storage for each dtype (half types as their 16-bit patterns). */
export type RawArray = Float32Array | Uint16Array | Int32Array;

export function rawArrayFor(dtype: DType, n: number): RawArray {
  if (dtype === 'f32') return new Float32Array(n);
  if (dtype === 'i32') return new Int32Array(n);
  return new Uint16Array(n);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** bf16 bits -> f32 value (exact). */
export function bf16ToF32(bits: number): number {
  u32buf[0] = (bits & 0xffff) << 16;
  return f32buf[0];
}

/** f32 value -> bf16 bits, round to nearest even (NaN stays NaN), as torch does. */
export function f32ToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return ((u >>> 16) | 0x40) & 0xffff;
  const rounded = u + 0x7fff + ((u >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

const dv = new DataView(new ArrayBuffer(4));

/** f16 bits -> f32 value (exact). */
export function f16ToF32(bits: number): number {
  dv.setUint16(0, bits, true);
  return getFloat16(dv, 0, true);
}

/** f32 value -> f16 bits, round to nearest even. */
export function f32ToF16(x: number): number {
  setFloat16(dv, 0, x, true);
  return dv.getUint16(0, true);
}

/** Widen a raw array of `dtype` to f32 (a copy for half types, the same array for f32). */
export function widen(dtype: DType, raw: RawArray): Float32Array {
  if (dtype === 'f32') return raw as Float32Array;
  const n = raw.length;
  const out = new Float32Array(n);
  if (dtype === 'i32') {
    for (let i = 0; i < n; i++) out[i] = raw[i];
  } else if (dtype === 'bf16') {
    const o32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) o32[i] = raw[i] << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = f16ToF32(raw[i]);
  }
  return out;
}

/** Narrow f32 values to the raw storage of `dtype` (rounding to nearest even; i32 truncates toward zero after rounding-free conversion). */
export function narrow(dtype: DType, values: ArrayLike<number>): RawArray {
  const n = values.length;
  if (dtype === 'f32') return Float32Array.from(values);
  if (dtype === 'i32') {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.trunc(values[i]);
    return out;
  }
  const out = new Uint16Array(n);
  if (dtype === 'bf16') for (let i = 0; i < n; i++) out[i] = f32ToBf16(values[i]);
  else for (let i = 0; i < n; i++) out[i] = f32ToF16(values[i]);
  return out;
}
