// safetensors reading (lazy: header at open, tensor bytes on demand), sharded checkpoints, and
// writing. Format: u64 LE header length N, N bytes of JSON header, then the data section that the
// header's data_offsets index (relative to the start of the data section).
// Spec: https://github.com/huggingface/safetensors#format
import type { DType, RawArray } from '../engine/dtype.js';
import { FileError, type FileSystem, type RandomAccessFile, fileSystem, writeFileAtomic } from './files.js';
import * as nodePath from './path.js';
import {
  CheckpointError,
  EntryFormatError,
  FileAccessError,
  FileTooShortError,
  GapError,
  HeaderFormatError,
  HeaderLengthError,
  IndexMismatchError,
  OffsetsPastEndError,
  OverlapError,
  SafetensorsError,
  TensorNotFoundError,
  TensorSizeError,
  UnknownDtypeError,
  UnsupportedDtypeError,
  ValueRangeError,
  WriteError,
} from './errors.js';

// ---------------------------------------------------------------------------------------------
// dtypes

/** Item sizes of every dtype the format defines that we recognise (listing works for all). */
const ITEM_SIZE = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;

/** A dtype as a safetensors file spells it. */
export type FileDType = keyof typeof ITEM_SIZE;

export const FILE_DTYPES = Object.keys(ITEM_SIZE) as readonly FileDType[];

/** File dtypes that read() can turn into an engine dtype. */
const LOADABLE: readonly FileDType[] = ['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'BOOL', 'F64'];

const ENGINE_TO_FILE: Record<DType, FileDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32' };

export function isFileDType(s: unknown): s is FileDType {
  return typeof s === 'string' && Object.hasOwn(ITEM_SIZE, s);
}

export function itemSize(dtype: FileDType): number {
  return ITEM_SIZE[dtype];
}

/** The file dtype an engine dtype is stored as. */
export function fileDTypeOf(dtype: DType): FileDType {
  return ENGINE_TO_FILE[dtype];
}

// The format is little-endian; typed-array views are host-endian, so big-endian hosts swap.
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapInPlace(bytes: Uint8Array, size: number): void {
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// public types

export interface TensorInfo {
  readonly name: string;
  readonly dtype: FileDType;
  readonly shape: readonly number[];
  /** Absolute offset of the first byte in `file` (not relative to the data section). */
  readonly byteOffset: number;
  readonly byteLength: number;
  /** The file holding the bytes. */
  readonly file: string;
}

export interface LoadedTensor {
  dtype: DType;
  raw: RawArray;
  shape: number[];
}

/** The lazy read interface shared by a single file and a (sharded) checkpoint. */
export interface TensorReader {
  /** Tensor names: in data order for a file, sorted for a multi-file checkpoint. */
  readonly names: readonly string[];
  entries(): TensorInfo[];
  info(name: string): TensorInfo;
  has(name: string): boolean;
  /** Read one tensor and convert it to an engine dtype. */
  read(name: string): Promise<LoadedTensor>;
  /** Read one tensor's stored bytes unchanged (little-endian, file dtype). */
  readBytes(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface SafetensorsFile extends TensorReader {
  readonly path: string;
  /** The header's __metadata__ (string -> string), {} when absent. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly fileSize: number;
  readonly headerLength: number;
}

export interface Checkpoint extends TensorReader {
  /** What was opened, as given. */
  readonly path: string;
  /** The .safetensors files the tensors live in. */
  readonly files: readonly string[];
  readonly shards: readonly SafetensorsFile[];
  /** The index's "metadata" object, or a lone file's __metadata__; {} otherwise. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The parsed config.json beside the checkpoint, or null when there is none. */
  readonly config: unknown;
}

/** Headers beyond this are refused, as the reference implementation does. */
export const MAX_HEADER_LENGTH = 100_000_000;

// ---------------------------------------------------------------------------------------------
// byte sources (a file, or memory for callers that already hold the bytes)

interface ByteSource {
  readonly size: number;
  /** Fill `into` from `position`; returns how many bytes were available. */
  read(position: number, into: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

function fileSource(f: RandomAccessFile): ByteSource {
  return { size: f.size, read: (position, into) => f.read(position, into), close: () => f.close() };
}

function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    async read(position, into) {
      const part = bytes.subarray(Math.min(position, bytes.length), Math.min(position + into.length, bytes.length));
      into.set(part);
      return part.length;
    },
    async close() {},
  };
}

// ---------------------------------------------------------------------------------------------
// header parsing and validation

interface ParsedHeader {
  headerLength: number;
  metadata: Record<string, string>;
  /** In data order. */
  infos: TensorInfo[];
}

async function readHeader(src: ByteSource, file: string): Promise<ParsedHeader> {
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

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
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

/** Bytes for `shape` of `dtype`, or undefined when that is not a safe integer. */
function byteSizeOf(shape: readonly number[], dtype: FileDType): number | undefined {
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
function decodeTensor(info: TensorInfo, bytes: Uint8Array): LoadedTensor {
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

function unsupported(info: TensorInfo): UnsupportedDtypeError {
  return new UnsupportedDtypeError(
    { file: info.file, tensor: info.name },
    `dtype ${info.dtype} cannot be loaded; expected one of ${LOADABLE.join(', ')}`,
  );
}

// ---------------------------------------------------------------------------------------------
// single file

class SafetensorsFileImpl implements SafetensorsFile {
  readonly names: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly headerLength: number;
  readonly fileSize: number;
  private readonly byName: Map<string, TensorInfo>;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly src: ByteSource,
    header: ParsedHeader,
  ) {
    this.metadata = Object.freeze(header.metadata);
    this.headerLength = header.headerLength;
    this.fileSize = src.size;
    this.byName = new Map(header.infos.map((t) => [t.name, t]));
    this.names = Object.freeze(header.infos.map((t) => t.name));
  }

  entries(): TensorInfo[] {
    return [...this.byName.values()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new TensorNotFoundError({ file: this.path, tensor: name }, `no such tensor (the file has ${this.byName.size})`);
    return t;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    if (this.closed) throw new FileAccessError({ file: this.path, tensor: name }, 'read after close()');
    const bytes = new Uint8Array(info.byteLength);
    if (bytes.length === 0) return bytes;
    const got = await this.src.read(info.byteOffset, bytes);
    if (got < bytes.length) {
      // Only possible when the file shrank after open(), which validated the size.
      throw new OffsetsPastEndError(
        { file: this.path, tensor: name },
        `only ${got} of ${bytes.length} bytes could be read at offset ${info.byteOffset}; the file was truncated after it was opened`,
      );
    }
    return bytes;
  }

  async read(name: string): Promise<LoadedTensor> {
    const info = this.info(name);
    if (!LOADABLE.includes(info.dtype)) throw unsupported(info);
    return decodeTensor(info, await this.readBytes(name));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.src.close();
  }
}

function accessError(file: string, e: unknown): unknown {
  return e instanceof FileError ? new FileAccessError({ file }, e.problem) : e;
}

/** Open a .safetensors file, reading and validating only its header. */
export async function openSafetensors(path: string, fs: FileSystem = fileSystem()): Promise<SafetensorsFile> {
  const st = await fs.stat(path);
  if (st && st.kind !== 'file') throw new FileAccessError({ file: path }, 'not a regular file; expected a .safetensors file');
  let f: RandomAccessFile;
  try {
    f = await fs.open(path);
  } catch (e) {
    throw accessError(path, e);
  }
  try {
    const src = fileSource(f);
    return new SafetensorsFileImpl(path, src, await readHeader(src, path));
  } catch (e) {
    await f.close();
    throw e;
  }
}

/** The same reader over bytes already in memory (`label` names them in errors). */
export async function openSafetensorsBuffer(bytes: Uint8Array, label = '<buffer>'): Promise<SafetensorsFile> {
  const src = memorySource(bytes);
  return new SafetensorsFileImpl(label, src, await readHeader(src, label));
}

// ---------------------------------------------------------------------------------------------
// checkpoints: one file, several disjoint files, or an index with shards

class CheckpointImpl implements Checkpoint {
  readonly names: readonly string[];
  readonly files: readonly string[];

  constructor(
    readonly path: string,
    readonly shards: readonly SafetensorsFile[],
    private readonly owner: Map<string, SafetensorsFile>,
    readonly metadata: Readonly<Record<string, unknown>>,
    readonly config: unknown,
  ) {
    this.files = shards.map((s) => s.path);
    this.names = shards.length === 1 ? shards[0].names : Object.freeze([...owner.keys()].sort());
  }

  private shardOf(name: string): SafetensorsFile {
    const s = this.owner.get(name);
    if (!s) throw new TensorNotFoundError({ file: this.path, tensor: name }, `no such tensor in the checkpoint (it has ${this.owner.size})`);
    return s;
  }

  entries(): TensorInfo[] {
    return this.names.map((n) => this.shardOf(n).info(n));
  }
  has(name: string): boolean {
    return this.owner.has(name);
  }
  info(name: string): TensorInfo {
    return this.shardOf(name).info(name);
  }
  read(name: string): Promise<LoadedTensor> {
    return this.shardOf(name).read(name);
  }
  readBytes(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readBytes(name);
  }
  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

async function readJson(fs: FileSystem, path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    const f = await fs.open(path);
    try {
      const bytes = new Uint8Array(f.size);
      await f.read(0, bytes);
      text = new TextDecoder().decode(bytes);
    } finally {
      await f.close();
    }
  } catch (e) {
    throw accessError(path, e);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError({ file: path }, `${what} is not valid JSON (${(e as Error).message})`);
  }
}

async function readConfig(fs: FileSystem, dir: string): Promise<unknown> {
  const path = nodePath.join(dir, 'config.json');
  return (await fs.stat(path))?.kind === 'file' ? readJson(fs, path, 'config.json') : null;
}

/** Open each path; if one fails, close the ones already open. */
async function openAll(fs: FileSystem, paths: readonly string[]): Promise<SafetensorsFile[]> {
  const opened: SafetensorsFile[] = [];
  try {
    for (const p of paths) opened.push(await openSafetensors(p, fs));
    return opened;
  } catch (e) {
    await Promise.all(opened.map((f) => f.close()));
    throw e;
  }
}

function listSome(items: readonly string[], max = 8): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown}, ... (${items.length} in all)` : shown;
}

/**
 * Open a checkpoint: a .safetensors file, a *.safetensors.index.json, or a directory holding
 * either (the index wins; several .safetensors without an index are merged when their tensor
 * names are disjoint).
 */
export async function openCheckpoint(pathOrDir: string, fs: FileSystem = fileSystem()): Promise<Checkpoint> {
  const st = await fs.stat(pathOrDir);
  if (!st) throw new FileAccessError({ file: pathOrDir }, 'cannot open: no such file or directory');
  if (st.kind === 'directory') {
    const names = await fs.list(pathOrDir);
    const indexes = names.filter((n) => n.endsWith('.safetensors.index.json'));
    if (indexes.length > 1) {
      throw new CheckpointError({ file: pathOrDir }, `several index files (${listSome(indexes)}); expected at most one *.safetensors.index.json`);
    }
    if (indexes.length === 1) return openIndexed(fs, nodePath.join(pathOrDir, indexes[0]), pathOrDir);
    const files = names.filter((n) => n.endsWith('.safetensors')).map((n) => nodePath.join(pathOrDir, n));
    if (files.length === 0) {
      throw new CheckpointError({ file: pathOrDir }, 'no .safetensors file or *.safetensors.index.json in this directory');
    }
    return openFiles(fs, pathOrDir, files);
  }
  if (pathOrDir.endsWith('.json')) return openIndexed(fs, pathOrDir, pathOrDir);
  return openFiles(fs, pathOrDir, [pathOrDir]);
}

async function openFiles(fs: FileSystem, label: string, paths: readonly string[]): Promise<Checkpoint> {
  const config = await readConfig(fs, nodePath.dirname(paths[0]));
  const shards = await openAll(fs, paths);
  const owner = new Map<string, SafetensorsFile>();
  for (const s of shards) {
    for (const n of s.names) {
      const other = owner.get(n);
      if (other) {
        await Promise.all(shards.map((f) => f.close()));
        throw new CheckpointError(
          { file: label, tensor: n },
          `is in both ${other.path} and ${s.path}; ${paths.length} .safetensors files without an index (${listSome(paths.map((p) => nodePath.basename(p)))}) must have distinct tensor names, or add a *.safetensors.index.json`,
        );
      }
      owner.set(n, s);
    }
  }
  const metadata = shards.length === 1 ? shards[0].metadata : {};
  return new CheckpointImpl(label, shards, owner, metadata, config);
}

async function openIndexed(fs: FileSystem, indexPath: string, label: string): Promise<Checkpoint> {
  const index = await readJson(fs, indexPath, 'index');
  const file = indexPath;
  if (!isPlainObject(index) || !isPlainObject(index.weight_map)) {
    throw new CheckpointError({ file }, 'index has no "weight_map" object; expected {"weight_map": {tensor: shard file}}');
  }
  const weightMap = index.weight_map;
  const metadata = index.metadata ?? {};
  if (!isPlainObject(metadata)) throw new CheckpointError({ file }, '"metadata" is not an object');

  const dir = nodePath.dirname(indexPath);
  const shardNames: string[] = [];
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new CheckpointError({ file, tensor }, `weight_map value ${JSON.stringify(shard)} is not a shard file name`);
    }
    // Shards live beside the index; refuse paths that would read elsewhere.
    if (nodePath.isAbsolute(shard) || !nodePath.isInside(dir, nodePath.join(dir, shard))) {
      throw new CheckpointError({ file, tensor }, `shard ${JSON.stringify(shard)} is outside the index's directory`);
    }
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  shardNames.sort();
  const shardPaths = shardNames.map((s) => nodePath.join(dir, s));
  const missing: string[] = [];
  for (let i = 0; i < shardPaths.length; i++) if ((await fs.stat(shardPaths[i]))?.kind !== 'file') missing.push(shardNames[i]);
  if (missing.length > 0) {
    throw new CheckpointError({ file }, `weight_map names ${missing.length} shard file(s) that do not exist: ${listSome(missing)}`);
  }

  const config = await readConfig(fs, dir);
  const shards = await openAll(fs, shardPaths);
  const byShardName = new Map(shardNames.map((s, i) => [s, shards[i]]));
  const owner = new Map<string, SafetensorsFile>();
  const notInShard: string[] = [];
  for (const [tensor, shard] of Object.entries(weightMap) as [string, string][]) {
    const s = byShardName.get(shard)!;
    if (s.has(tensor)) owner.set(tensor, s);
    else notInShard.push(`${tensor} (mapped to ${shard})`);
  }
  const unmapped: string[] = [];
  for (const [shard, s] of byShardName) {
    for (const n of s.names) {
      if (owner.get(n) !== s) {
        const mapped = Object.hasOwn(weightMap, n) ? `mapped to ${weightMap[n] as string}` : 'not in weight_map';
        unmapped.push(`${n} (in ${shard}, ${mapped})`);
      }
    }
  }
  if (notInShard.length > 0 || unmapped.length > 0) {
    await Promise.all(shards.map((s) => s.close()));
    const parts: string[] = [];
    if (notInShard.length > 0) parts.push(`${notInShard.length} tensor(s) in weight_map missing from their shard: ${listSome(notInShard, 5)}`);
    if (unmapped.length > 0) parts.push(`${unmapped.length} shard tensor(s) not mapped to their shard: ${listSome(unmapped, 5)}`);
    throw new IndexMismatchError({ file }, `index and shards disagree; ${parts.join('; ')}`);
  }
  return new CheckpointImpl(label, shards, owner, metadata, config);
}

// ---------------------------------------------------------------------------------------------
// writing

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
