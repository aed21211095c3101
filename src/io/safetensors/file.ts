// One .safetensors file, read lazily: the header at open, each tensor's bytes when asked for.
import { FileError, type FileSystem, fileSystem, type RandomAccessFile } from '../files.js';
import { FileAccessError, OffsetsPastEndError, TensorNotFoundError } from '../errors.js';
import { decodeTensor, LOADABLE, type LoadedTensor, unsupported } from './dtypes.js';
import { type ByteSource, type ParsedHeader, readHeader, type TensorInfo } from './header.js';

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
  /**
   * Fill `into` with a tensor's stored bytes from `byteOffset` into its data (positioned reads,
   * no copy): what loading uses to read weights straight into their storage. Optional for other
   * readers (loading then goes through read()).
   */
  readInto?(name: string, into: Uint8Array, byteOffset?: number): Promise<void>;
  close(): Promise<void>;
}

export interface SafetensorsFile extends TensorReader {
  readonly path: string;
  /** The header's __metadata__ (string -> string), {} when absent. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly fileSize: number;
  readonly headerLength: number;
  readInto(name: string, into: Uint8Array, byteOffset?: number): Promise<void>;
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
    const bytes = new Uint8Array(this.info(name).byteLength);
    await this.readInto(name, bytes);
    return bytes;
  }

  async readInto(name: string, into: Uint8Array, byteOffset = 0): Promise<void> {
    const info = this.info(name);
    if (this.closed) throw new FileAccessError({ file: this.path, tensor: name }, 'read after close()');
    checkByteRange(info, into.length, byteOffset);
    await readTensorRange(this.src, info, into, byteOffset, (e) => accessError(this.path, e, name));
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

/** A byte range asked of a tensor must lie inside it (a caller's bug otherwise). */
export function checkByteRange(info: TensorInfo, length: number, byteOffset: number): void {
  if (!(Number.isSafeInteger(byteOffset) && byteOffset >= 0 && byteOffset + length <= info.byteLength)) {
    throw new RangeError(`${info.file}: ${info.name}: bytes [${byteOffset}, ${byteOffset + length}) are outside its ${info.byteLength} bytes`);
  }
}

/**
 * Bytes [byteOffset, byteOffset + into.length) of a tensor stored contiguously at info.byteOffset,
 * by one positioned read; `wrap` turns a read failure into the reader's own error.
 */
export async function readTensorRange(src: ByteSource, info: TensorInfo, into: Uint8Array, byteOffset: number, wrap: (e: unknown) => unknown): Promise<void> {
  if (into.length === 0) return;
  const at = info.byteOffset + byteOffset;
  let got: number;
  try {
    got = await src.read(at, into);
  } catch (e) {
    throw wrap(e);
  }
  if (got < into.length) {
    // Only possible when the file shrank after open(), which validated the size.
    throw new OffsetsPastEndError(
      { file: info.file, tensor: info.name },
      `only ${got} of ${into.length} bytes could be read at offset ${at}; the file was truncated after it was opened`,
    );
  }
}

/** A FileError as a FileAccessError (a SafetensorsError) of `file` and `tensor`; anything else unchanged. */
export function accessError(file: string, e: unknown, tensor?: string): unknown {
  return e instanceof FileError ? new FileAccessError({ file, tensor }, e.problem) : e;
}

/** Open a .safetensors file, reading and validating only its header. */
export async function openSafetensors(path: string, fs: FileSystem = fileSystem()): Promise<SafetensorsFile> {
  let f: RandomAccessFile;
  try {
    const st = await fs.stat(path);
    if (st && st.kind !== 'file') throw new FileAccessError({ file: path }, 'not a regular file; expected a .safetensors file');
    f = await fs.open(path);
  } catch (e) {
    throw accessError(path, e);
  }
  try {
    return new SafetensorsFileImpl(path, f, await readHeader(f, path));
  } catch (e) {
    await f.close();
    throw accessError(path, e);
  }
}

/** The same reader over bytes already in memory (`label` names them in errors). */
export async function openSafetensorsBuffer(bytes: Uint8Array, label = '<buffer>'): Promise<SafetensorsFile> {
  const src = memorySource(bytes);
  return new SafetensorsFileImpl(label, src, await readHeader(src, label));
}
