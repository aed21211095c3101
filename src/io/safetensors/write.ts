// Writing safetensors: tensors sorted by name, the header padded to 8 bytes, the file written
// atomically and streamed tensor by tensor.
import type { DType } from '../../engine/dtype.js';
import { type FileSystem, fileSystem, writeFileAtomic } from '../files.js';
import { WriteError } from '../errors.js';
import { byteSizeOf, ENGINE_TO_FILE, type FileDType, HOST_LE, ITEM_SIZE, isFileDType, numelOf, swapInPlace } from './dtypes.js';
import { isCount, MAX_HEADER_LENGTH } from './header.js';

export type WriteDType = DType | FileDType;

export interface TensorToWrite {
  dtype: WriteDType;
  shape: readonly number[];
  /**
   * The values. A view whose byteLength equals numel x itemsize is written as its bytes (host
   * order swapped to little-endian). Otherwise integer values of length numel are converted to an
   * integer file dtype (e.g. Int32Array -> I64), and floats of length numel to F64, range-checked.
   */
  raw: ArrayBufferView;
}

export type TensorsToWrite = Readonly<Record<string, TensorToWrite>> | ReadonlyMap<string, TensorToWrite>;

const INT_WRITERS: Partial<Record<FileDType, [number, number, (v: DataView, o: number, x: number) => void]>> = {
  I8: [-128, 127, (v, o, x) => v.setInt8(o, x)],
  U8: [0, 255, (v, o, x) => v.setUint8(o, x)],
  BOOL: [0, 1, (v, o, x) => v.setUint8(o, x)],
  I16: [-32768, 32767, (v, o, x) => v.setInt16(o, x, true)],
  U16: [0, 65535, (v, o, x) => v.setUint16(o, x, true)],
  I32: [-(2 ** 31), 2 ** 31 - 1, (v, o, x) => v.setInt32(o, x, true)],
  U32: [0, 2 ** 32 - 1, (v, o, x) => v.setUint32(o, x, true)],
  I64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, (v, o, x) => v.setBigInt64(o, BigInt(x), true)],
  U64: [0, Number.MAX_SAFE_INTEGER, (v, o, x) => v.setBigUint64(o, BigInt(x), true)],
};

function isIntegerArray(raw: ArrayBufferView): raw is Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array {
  return (
    raw instanceof Int8Array || raw instanceof Uint8Array || raw instanceof Uint8ClampedArray || raw instanceof Int16Array ||
    raw instanceof Uint16Array || raw instanceof Int32Array || raw instanceof Uint32Array
  );
}

function tensorBytes(name: string, fileDtype: FileDType, t: TensorToWrite): Uint8Array {
  const ctx = { file: '<writer>', tensor: name };
  const { shape, raw } = t;
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new WriteError(ctx, `shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  const need = byteSizeOf(shape, fileDtype);
  if (need === undefined) throw new WriteError(ctx, `shape [${shape.join(', ')}] is too large`);
  const n = numelOf(shape);
  if (!ArrayBuffer.isView(raw)) throw new WriteError(ctx, 'raw is not a typed array');
  if (raw.byteLength === need) {
    const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    if (HOST_LE) return bytes;
    const copy = bytes.slice();
    swapInPlace(copy, ITEM_SIZE[fileDtype]);
    return copy;
  }
  const length = (raw as unknown as { length?: number }).length;
  const out = new Uint8Array(need);
  const view = new DataView(out.buffer);
  const intWriter = INT_WRITERS[fileDtype];
  if (length === n && intWriter && isIntegerArray(raw)) {
    const [lo, hi, set] = intWriter;
    for (let i = 0; i < n; i++) {
      const x = raw[i];
      if (x < lo || x > hi) throw new WriteError(ctx, `value ${x} at element ${i} does not fit in ${fileDtype}`);
      set(view, i * ITEM_SIZE[fileDtype], x);
    }
    return out;
  }
  if (length === n && fileDtype === 'F64' && (raw instanceof Float32Array || raw instanceof Float64Array)) {
    for (let i = 0; i < n; i++) view.setFloat64(8 * i, raw[i], true);
    return out;
  }
  throw new WriteError(
    ctx,
    `raw is a ${raw.constructor.name} of ${raw.byteLength} bytes but shape [${shape.join(', ')}] of ${fileDtype} needs ${need} bytes`,
  );
}

const RAW_CLASS = { f32: Float32Array, f16: Uint16Array, bf16: Uint16Array, i32: Int32Array } as const;

interface Layout {
  header: Uint8Array;
  chunks: Uint8Array[];
  size: number;
}

function layout(tensors: TensorsToWrite, metadata?: Readonly<Record<string, string>>): Layout {
  const map: ReadonlyMap<string, TensorToWrite> = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  // Sorted by name so the same tensors always give the same bytes.
  const names = [...map.keys()].sort();
  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort();
    for (const k of keys) {
      if (typeof metadata[k] !== 'string') throw new WriteError({ file: '<writer>' }, `metadata ${JSON.stringify(k)} is not a string`);
    }
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new WriteError({ file: '<writer>', tensor: name }, 'is reserved for the header metadata');
    const t = map.get(name)!;
    const fileDtype = isFileDType(t.dtype) ? t.dtype : Object.hasOwn(ENGINE_TO_FILE, t.dtype) ? ENGINE_TO_FILE[t.dtype as DType] : undefined;
    if (!fileDtype) throw new WriteError({ file: '<writer>', tensor: name }, `unknown dtype ${JSON.stringify(t.dtype)}`);
    // Engine dtypes promise their RawArray class; a mismatch would silently reinterpret bits.
    if (!isFileDType(t.dtype) && !(t.raw instanceof RAW_CLASS[t.dtype as DType])) {
      throw new WriteError(
        { file: '<writer>', tensor: name },
        `dtype ${t.dtype} needs raw as ${RAW_CLASS[t.dtype as DType].name}, got ${t.raw?.constructor?.name ?? typeof t.raw}`,
      );
    }
    const bytes = tensorBytes(name, fileDtype, t);
    chunks.push(bytes);
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${fileDtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`,
    );
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned, as the
  // reference implementation does.
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  if (padded > MAX_HEADER_LENGTH) throw new WriteError({ file: '<writer>' }, `header of ${padded} bytes exceeds the ${MAX_HEADER_LENGTH}-byte limit`);
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, chunks, size: header.length + offset };
}

/** Encode tensors as a safetensors file in memory. */
export function encodeSafetensors(tensors: TensorsToWrite, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const { header, chunks, size } = layout(tensors, metadata);
  const out = new Uint8Array(size);
  out.set(header, 0);
  let at = header.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Write a safetensors file, streaming tensor by tensor; the file appears complete or not at all. */
export async function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  metadata?: Readonly<Record<string, string>>,
  fs: FileSystem = fileSystem(),
): Promise<void> {
  const { header, chunks } = layout(tensors, metadata);
  await writeFileAtomic(path, [header, ...chunks], fs);
}
