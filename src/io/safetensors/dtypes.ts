// The dtypes of the safetensors format: their item sizes, which ones the engine loads, and the
// conversion of a tensor's stored (little-endian) bytes to an engine array.
import type { DType, RawArray } from '../../engine/dtype.js';
import { UnsupportedDtypeError, ValueRangeError } from '../errors.js';
import type { TensorInfo } from './header.js';

/** Item sizes of every dtype the format defines that we recognise (listing works for all). */
export const ITEM_SIZE = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;

/** A dtype as a safetensors file spells it. */
export type FileDType = keyof typeof ITEM_SIZE;

export const FILE_DTYPES = Object.keys(ITEM_SIZE) as readonly FileDType[];

/** File dtypes that read() can turn into an engine dtype. */
export const LOADABLE: readonly FileDType[] = ['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'BOOL', 'F64'];

export const ENGINE_TO_FILE: Record<DType, FileDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32' };

export function isFileDType(s: unknown): s is FileDType {
  return typeof s === 'string' && Object.hasOwn(ITEM_SIZE, s);
}

export interface LoadedTensor {
  dtype: DType;
  raw: RawArray;
  shape: number[];
}

// The format is little-endian; typed-array views are host-endian, so big-endian hosts swap.
export const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function swapInPlace(bytes: Uint8Array, size: number): void {
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/** Bytes for `shape` of `dtype`, or undefined when that is not a safe integer. */
export function byteSizeOf(shape: readonly number[], dtype: FileDType): number | undefined {
  if (shape.includes(0)) return 0;
  let n = ITEM_SIZE[dtype];
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------
// conversion of stored bytes to engine arrays

/** `bytes` must own its buffer from offset 0 (read() allocates it so), which makes views aligned. */
export function decodeTensor(info: TensorInfo, bytes: Uint8Array): LoadedTensor {
  const ctx = { file: info.file, tensor: info.name };
  const shape = [...info.shape];
  const n = numelOf(shape);
  const buf = bytes.buffer as ArrayBuffer;
  const view = new DataView(buf);
  const typed = (size: number) => {
    if (!HOST_LE) swapInPlace(bytes, size);
  };
  switch (info.dtype) {
    case 'F32':
      typed(4);
      return { dtype: 'f32', raw: new Float32Array(buf, 0, n), shape };
    case 'F16':
    case 'BF16':
      typed(2);
      return { dtype: info.dtype === 'F16' ? 'f16' : 'bf16', raw: new Uint16Array(buf, 0, n), shape };
    case 'I32':
      typed(4);
      return { dtype: 'i32', raw: new Int32Array(buf, 0, n), shape };
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = view.getInt32(8 * i, true);
        const hi = view.getInt32(8 * i + 4, true);
        // Fits in int32 exactly when the high word is the sign extension of the low word.
        if (hi !== lo >> 31) {
          throw new ValueRangeError(
            ctx,
            `I64 value ${view.getBigInt64(8 * i, true)} at element ${i} does not fit in int32; expected values in [-2^31, 2^31)`,
          );
        }
        out[i] = lo;
      }
      return { dtype: 'i32', raw: out, shape };
    }
    case 'U8':
      return { dtype: 'i32', raw: Int32Array.from(bytes), shape };
    case 'BOOL': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = bytes[i] === 0 ? 0 : 1;
      return { dtype: 'i32', raw: out, shape };
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
      return { dtype: 'f32', raw: out, shape };
    }
    default:
      throw unsupported(info);
  }
}

export function unsupported(info: TensorInfo): UnsupportedDtypeError {
  return new UnsupportedDtypeError(
    { file: info.file, tensor: info.name },
    `dtype ${info.dtype} cannot be loaded; expected one of ${LOADABLE.join(', ')}`,
  );
}
