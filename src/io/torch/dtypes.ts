// The storage classes a checkpoint may name (GLOBAL `torch <X>Storage`) and the safetensors dtype
// each one reads as. Complex and quantized storages have no safetensors dtype: they are refused.
import type { FileDType } from '../safetensors/dtypes.js';

export type TorchDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const STORAGE_DTYPES: Readonly<Record<string, TorchDType>> = {
  DoubleStorage: 'F64',
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

export const STORAGE_CLASS: Readonly<Record<TorchDType, string>> = Object.fromEntries(
  Object.entries(STORAGE_DTYPES).map(([cls, dt]) => [dt, cls]),
) as Record<TorchDType, string>;

export const TORCH_ITEM_SIZE: Readonly<Record<TorchDType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isTorchDType(d: string): d is TorchDType & FileDType {
  return Object.hasOwn(TORCH_ITEM_SIZE, d);
}

/** Why a storage class outside the table is refused, for the message. */
export function storageRefusal(name: string): string | null {
  if (/^Complex(Float|Double)Storage$/.test(name)) return 'complex tensors have no safetensors dtype';
  if (/^Q(U?Int\d+|UInt\dx\d)Storage$/.test(name)) return 'quantized tensors are not supported';
  return null;
}
