// The safetensors header: u64 LE length N, N bytes of UTF-8 JSON naming each tensor's dtype, shape
// and data_offsets (relative to the data section that follows), plus an optional __metadata__.
// Everything is validated here, at open, so that reading a tensor later cannot go wrong: entries
// well-formed, sizes consistent with shapes, and the data section indexed exactly (no overlaps,
// no holes, nothing past the end).
import {
  EntryFormatError,
  FileTooShortError,
  GapError,
  HeaderFormatError,
  HeaderLengthError,
  OffsetsPastEndError,
  OverlapError,
  TensorSizeError,
  UnknownDtypeError,
} from '../errors.js';
import { byteSizeOf, FILE_DTYPES, type FileDType, isFileDType } from './dtypes.js';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: FileDType;
  readonly shape: readonly number[];
  /**
   * Absolute offset of the first byte in `file` (not relative to the data section). For a PyTorch
   * checkpoint (src/io/torch.ts): the offset of the tensor's first element when its view of the
   * storage is contiguous, else -1 (a strided view, gathered by readBytes).
   */
  readonly byteOffset: number;
  /** Bytes readBytes returns: numel x itemsize (contiguous, little-endian). */
  readonly byteLength: number;
  /** The file holding the bytes. */
  readonly file: string;
}

/** Headers beyond this are refused, as the reference implementation does. */
export const MAX_HEADER_LENGTH = 100_000_000;

/** Positioned reads of a file or of bytes in memory. */
export interface ByteSource {
  readonly size: number;
  /** Fill `into` from `position`; returns how many bytes were available. */
  read(position: number, into: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

export interface ParsedHeader {
  headerLength: number;
  metadata: Record<string, string>;
  /** In data order. */
  infos: TensorInfo[];
}

export async function readHeader(src: ByteSource, file: string): Promise<ParsedHeader> {
  if (src.size < 8) {
    throw new FileTooShortError({ file }, `file is ${src.size} bytes; expected at least 8 (the header length prefix)`);
  }
  const prefix = new Uint8Array(8);
  await src.read(0, prefix);
  const n = new DataView(prefix.buffer).getBigUint64(0, true);
  if (n === 0n) throw new HeaderLengthError({ file }, 'header length is 0; expected a JSON header of at least 2 bytes');
  if (n > BigInt(MAX_HEADER_LENGTH)) {
    throw new HeaderLengthError({ file }, `header length ${n} exceeds the ${MAX_HEADER_LENGTH}-byte limit (is this a safetensors file?)`);
  }
  const headerLength = Number(n);
  if (8 + headerLength > src.size) {
    throw new HeaderLengthError(
      { file },
      `header length ${headerLength} runs past the end of the file (${src.size} bytes); expected at most ${src.size - 8}`,
    );
  }
  const headerBytes = new Uint8Array(headerLength);
  await src.read(8, headerBytes);
  return { headerLength, ...parseHeaderJson(file, headerBytes, src.size - 8 - headerLength, 8 + headerLength) };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseHeaderJson(file: string, bytes: Uint8Array, dataLength: number, dataStart: number) {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HeaderFormatError({ file }, 'header is not valid UTF-8; expected a UTF-8 JSON object');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HeaderFormatError({ file }, `header is not valid JSON (${(e as Error).message}); expected a JSON object`);
  }
  if (!isPlainObject(json)) throw new HeaderFormatError({ file }, 'header JSON is not an object; expected {name: {dtype, shape, data_offsets}}');

  let metadata: Record<string, string> = {};
  const infos: TensorInfo[] = [];
  // Relative data offsets, kept beside the infos for the layout checks below.
  const spans: { name: string; start: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, entry);
      continue;
    }
    const { dtype, shape, start, end } = parseEntry(file, name, entry);
    infos.push(Object.freeze({ name, dtype, shape: Object.freeze(shape), byteOffset: dataStart + start, byteLength: end - start, file }));
    spans.push({ name, start, end });
  }

  // Data order; zero-length tensors sort before a tensor starting at the same offset.
  const order = spans.map((_, i) => i).sort((a, b) => spans[a].start - spans[b].start || spans[a].end - spans[b].end);
  for (const i of order) {
    const s = spans[i];
    if (s.end > dataLength) {
      throw new OffsetsPastEndError(
        { file, tensor: s.name },
        `data_offsets [${s.start}, ${s.end}] run past the end of the data section (${dataLength} bytes; truncated file?); expected end <= ${dataLength}`,
      );
    }
  }
  // The format requires the data section to be indexed exactly: no overlaps, no holes.
  let cursor = 0;
  let prev: string | undefined;
  for (const i of order) {
    const s = spans[i];
    if (s.start < cursor) {
      throw new OverlapError(
        { file, tensor: s.name },
        `data_offsets [${s.start}, ${s.end}] overlap tensor ${JSON.stringify(prev)} (which ends at ${cursor}); expected tensors to occupy disjoint byte ranges`,
      );
    }
    if (s.start > cursor) {
      throw new GapError(
        { file, tensor: s.name },
        `data_offsets start at ${s.start} but the previous tensor${prev === undefined ? '' : ` ${JSON.stringify(prev)}`} ends at ${cursor}; expected the data section to be fully indexed without gaps`,
      );
    }
    cursor = s.end;
    prev = s.name;
  }
  if (cursor !== dataLength) {
    throw new GapError(
      { file },
      `the last ${dataLength - cursor} bytes of the ${dataLength}-byte data section belong to no tensor; expected the data section to be fully indexed`,
    );
  }
  return { metadata, infos: order.map((i) => infos[i]) };
}

function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (!isPlainObject(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
    throw new HeaderFormatError({ file }, '__metadata__ is not an object of string values; expected {key: "value"}');
  }
  return Object.fromEntries(Object.entries(entry as Record<string, string>));
}

function parseEntry(file: string, name: string, entry: unknown) {
  const ctx = { file, tensor: name };
  if (!isPlainObject(entry)) throw new EntryFormatError(ctx, 'header entry is not an object; expected {dtype, shape, data_offsets}');
  for (const key of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.hasOwn(entry, key)) throw new EntryFormatError(ctx, `header entry has no "${key}"; expected {dtype, shape, data_offsets}`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw new EntryFormatError(ctx, `dtype is ${JSON.stringify(dtype)}; expected a string`);
  if (!isFileDType(dtype)) {
    throw new UnknownDtypeError(ctx, `unknown dtype ${JSON.stringify(dtype)}; expected one of ${FILE_DTYPES.join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new EntryFormatError(ctx, `shape is ${JSON.stringify(shape)}; expected an array of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new EntryFormatError(ctx, `data_offsets is ${JSON.stringify(offsets)}; expected [start, end] of non-negative integers`);
  }
  const [start, end] = offsets as [number, number];
  if (end < start) throw new TensorSizeError(ctx, `data_offsets [${start}, ${end}] end before they start; expected end >= start`);
  const need = byteSizeOf(shape as number[], dtype);
  if (need !== end - start) {
    const needText = need === undefined ? 'more than 2^53' : String(need);
    throw new TensorSizeError(
      ctx,
      `data_offsets [${start}, ${end}] span ${end - start} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${needText}`,
    );
  }
  return { dtype, shape: [...(shape as number[])], start, end };
}
