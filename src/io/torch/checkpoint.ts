// A PyTorch checkpoint as a TensorReader: torch.save zip archives, TorchScript archives and the
// legacy stream. Opening reads the zip directory, each used record's local header and the
// pickles (data.pkl, constants.pkl), or the legacy stream's pickles and storage counts: never
// tensor data. Every tensor is then a checked view of a located storage, read on demand with
// positioned reads (strided views gathered into contiguous bytes).
import { asFileError, type FileSystem, fileSystem, openAs, type RandomAccessFile } from '../files.js';
import { FileAccessError, OffsetsPastEndError, TensorNotFoundError } from '../errors.js';
import { decodeTensor, LOADABLE, type LoadedTensor, unsupported } from '../safetensors/dtypes.js';
import { checkByteRange, readTensorRange, type TensorReader } from '../safetensors/file.js';
import type { ByteSource, TensorInfo } from '../safetensors/header.js';
import { TORCH_ITEM_SIZE } from './dtypes.js';
import { PickleTruncated, TorchFormatError } from './errors.js';
import { flatten } from './flatten.js';
import { readLegacy } from './legacy.js';
import { unpickle } from './pickle.js';
import { describeForeign, EXPECTED_MAGIC, isTorchScript, SNIFF_BYTES, torchFormatOf } from './sniff.js';
import { gather, isContiguous } from './storage.js';
import type { StorageRef, TensorRef } from './values.js';
import { checkStored, readRecord, readZipDirectory, recordDataOffset, type ZipArchive } from './zip.js';

export type TorchFormat = 'zip' | 'legacy' | 'torchscript';

export interface TorchCheckpoint extends TensorReader {
  readonly path: string;
  readonly format: TorchFormat;
  /** Plain values (int, float, str, bool, None) by dotted key; not tensors. */
  readonly nonTensorLeaves: ReadonlyMap<string, unknown>;
  /** A TorchScript archive's constants (constants.pkl) as `CONSTANTS.c<i>`; null for other files. */
  readonly constants: TensorReader | null;
  /** The archive's top-level folder (`archive`, `model`, ...); '' for the legacy stream. */
  readonly folder: string;
  readonly fileSize: number;
}

/** data.pkl / constants.pkl above this size are refused (a 14B-parameter state dict's is about 100 KiB). */
export const MAX_PICKLE_BYTES = 512 * 2 ** 20;

interface Located {
  ref: TensorRef;
  /** absolute file offset of the storage's element 0 */
  base: number;
}

/** The tensors of one pickle, located in the file. */
class TensorTable implements TensorReader {
  readonly names: readonly string[];
  private readonly infos = new Map<string, TensorInfo>();
  private closed = false;

  constructor(
    readonly path: string,
    private readonly src: ByteSource,
    private readonly located: Map<string, Located>,
  ) {
    this.names = Object.freeze([...located.keys()]);
    for (const [name, { ref, base }] of located) {
      const size = TORCH_ITEM_SIZE[ref.storage.dtype];
      const byteOffset = ref.numel === 0 ? base : isContiguous(ref) ? base + ref.offset * size : -1;
      this.infos.set(name, Object.freeze({ name, dtype: ref.storage.dtype, shape: ref.shape, byteOffset, byteLength: ref.numel * size, file: path }));
    }
  }

  entries(): TensorInfo[] {
    return [...this.infos.values()];
  }
  has(name: string): boolean {
    return this.infos.has(name);
  }
  info(name: string): TensorInfo {
    const t = this.infos.get(name);
    if (!t) throw new TensorNotFoundError({ file: this.path, tensor: name }, `no such tensor (the checkpoint has ${this.infos.size})`);
    return t;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    this.info(name);
    if (this.closed) throw new FileAccessError({ file: this.path, tensor: name }, 'read after close()');
    const { ref, base } = this.located.get(name)!;
    return gather(ref, async (offset, into) => {
      let got: number;
      try {
        got = await this.src.read(base + offset, into);
      } catch (e) {
        throw asFileError(e, TorchFormatError);
      }
      if (got < into.length) {
        throw new OffsetsPastEndError(
          { file: this.path, tensor: name },
          `only ${got} of ${into.length} bytes could be read at offset ${base + offset}; the file was truncated after it was opened`,
        );
      }
    });
  }

  async read(name: string): Promise<LoadedTensor> {
    const info = this.info(name);
    if (!LOADABLE.includes(info.dtype)) throw unsupported(info);
    return decodeTensor(info, await this.readBytes(name));
  }

  /**
   * Bytes [byteOffset, byteOffset + into.length) of the tensor's contiguous form, straight into
   * `into`: one positioned read for a contiguous view (the usual state-dict entry), a gather for
   * any other view.
   */
  async readInto(name: string, into: Uint8Array, byteOffset = 0): Promise<void> {
    const info = this.info(name);
    if (this.closed) throw new FileAccessError({ file: this.path, tensor: name }, 'read after close()');
    checkByteRange(info, into.length, byteOffset);
    if (info.byteOffset < 0) into.set((await this.readBytes(name)).subarray(byteOffset, byteOffset + into.length));
    else await readTensorRange(this.src, info, into, byteOffset, (e) => asFileError(e, TorchFormatError));
  }

  markClosed(): void {
    this.closed = true;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

class TorchCheckpointImpl implements TorchCheckpoint {
  readonly names: readonly string[];
  readonly fileSize: number;
  private closed = false;

  constructor(
    readonly path: string,
    readonly format: TorchFormat,
    readonly folder: string,
    private readonly src: ByteSource,
    private readonly table: TensorTable,
    readonly nonTensorLeaves: ReadonlyMap<string, unknown>,
    private readonly constantTable: TensorTable | null,
  ) {
    this.names = table.names;
    this.fileSize = src.size;
  }

  get constants(): TensorReader | null {
    return this.constantTable;
  }
  entries(): TensorInfo[] {
    return this.table.entries();
  }
  has(name: string): boolean {
    return this.table.has(name);
  }
  info(name: string): TensorInfo {
    return this.table.info(name);
  }
  read(name: string): Promise<LoadedTensor> {
    return this.table.read(name);
  }
  readBytes(name: string): Promise<Uint8Array> {
    return this.table.readBytes(name);
  }
  readInto(name: string, into: Uint8Array, byteOffset?: number): Promise<void> {
    return this.table.readInto(name, into, byteOffset);
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.table.markClosed();
    this.constantTable?.markClosed();
    await this.src.close();
  }
}

function checkedPickle(bytes: Uint8Array, file: string, record: string, storageDir: string, storages: Map<string, StorageRef>) {
  try {
    return unpickle(bytes, 0, { file, record, pidFields: 5, storages, storageDir }).value;
  } catch (e) {
    if (e instanceof PickleTruncated) throw new TorchFormatError(file, `${record} ends inside the opcode at byte ${e.at} (truncated or corrupt; expected a STOP)`);
    throw e;
  }
}

/** Find each storage's record (`<dir><key>`), check it holds exactly numel x itemsize stored bytes, and return where its data starts. */
async function locateRecords(src: ByteSource, file: string, archive: ZipArchive, dir: string, storages: Map<string, StorageRef>): Promise<Map<string, number>> {
  const base = new Map<string, number>();
  const list = [...storages.values()];
  for (const s of list) {
    const name = `${dir}${s.key}`;
    const e = archive.records.get(name);
    if (!e) throw new TorchFormatError(file, `storage ${name} is used by a tensor but the archive has no record ${JSON.stringify(`${archive.folder}/${name}`)}`);
    checkStored(file, e);
    const need = BigInt(s.numel) * BigInt(TORCH_ITEM_SIZE[s.dtype]);
    if (need !== BigInt(e.size)) {
      throw new TorchFormatError(file, `storage ${name} claims ${s.numel} ${s.dtype} elements (${need} bytes) but its record holds ${e.size} bytes`);
    }
  }
  // Local headers are 30 bytes plus the name: read a few at a time.
  for (let i = 0; i < list.length; i += 32) {
    const part = list.slice(i, i + 32);
    const offsets = await Promise.all(part.map((s) => recordDataOffset(src, file, archive, archive.records.get(`${dir}${s.key}`)!)));
    for (let k = 0; k < part.length; k++) base.set(part[k].key, offsets[k]);
  }
  return base;
}

function locate(tensors: Map<string, TensorRef>, base: Map<string, number>, rename: (k: string) => string = (k) => k): Map<string, Located> {
  const out = new Map<string, Located>();
  for (const [k, ref] of tensors) out.set(rename(k), { ref, base: base.get(ref.storage.key)! });
  return out;
}

async function openZip(src: ByteSource, file: string): Promise<TorchCheckpointImpl> {
  const archive = await readZipDirectory(src, file);
  const records = archive.records;
  const script = isTorchScript(records);
  const order = records.get('byteorder');
  if (order) {
    const text = new TextDecoder().decode(await readRecord(src, file, archive, order, 64)).trim();
    if (text !== 'little') throw new TorchFormatError(file, `byteorder record says ${JSON.stringify(text)}; only little-endian checkpoints are supported`);
  }
  const pkl = records.get('data.pkl');
  if (!pkl) {
    const some = [...records.keys()].slice(0, 6).join(', ');
    throw new TorchFormatError(file, `zip archive has no ${archive.folder}/data.pkl record (it holds ${some}${records.size > 6 ? ', ...' : ''}); expected a torch.save or torch.jit.save archive`);
  }
  const storages = new Map<string, StorageRef>();
  const root = checkedPickle(await readRecord(src, file, archive, pkl, MAX_PICKLE_BYTES), file, 'data.pkl', 'data/', storages);
  const flat = flatten(root, file, 'data.pkl');
  const table = new TensorTable(file, src, locate(flat.tensors, await locateRecords(src, file, archive, 'data/', storages)));

  let constants: TensorTable | null = null;
  const cpkl = records.get('constants.pkl');
  if (script && cpkl) {
    const cstorages = new Map<string, StorageRef>();
    const croot = checkedPickle(await readRecord(src, file, archive, cpkl, MAX_PICKLE_BYTES), file, 'constants.pkl', 'constants/', cstorages);
    const cflat = flatten(croot, file, 'constants.pkl');
    const cbase = await locateRecords(src, file, archive, 'constants/', cstorages);
    constants = new TensorTable(file, src, locate(cflat.tensors, cbase, (k) => `CONSTANTS.c${k}`));
  }
  return new TorchCheckpointImpl(file, script ? 'torchscript' : 'zip', archive.folder, src, table, flat.leaves, constants);
}

async function openLegacyStream(src: ByteSource, file: string): Promise<TorchCheckpointImpl> {
  const stream = await readLegacy(src, file);
  const flat = flatten(stream.root, file, 'the checkpoint');
  const table = new TensorTable(file, src, locate(flat.tensors, stream.dataStart));
  return new TorchCheckpointImpl(file, 'legacy', '', src, table, flat.leaves, null);
}

/** Open a checkpoint held by any ByteSource (a file, or bytes in memory); `file` names it in messages. */
export async function openTorchSource(src: ByteSource, file: string): Promise<TorchCheckpoint> {
  const first = new Uint8Array(Math.min(SNIFF_BYTES, src.size));
  await src.read(0, first);
  const kind = torchFormatOf(first);
  if (kind === 'zip') return openZip(src, file);
  if (kind === 'legacy') return openLegacyStream(src, file);
  if (kind === 'safetensors') throw new TorchFormatError(file, 'is a safetensors file, not a PyTorch checkpoint; open it as safetensors');
  let head = first;
  if (first.every((b) => b === 0) && src.size > first.length) {
    head = new Uint8Array(Math.min(4096, src.size));
    await src.read(0, head);
  }
  throw new TorchFormatError(file, `not a PyTorch checkpoint (${describeForeign(head, src.size)}; ${EXPECTED_MAGIC})`);
}

/** Open a .pt / .pth / .jit file: reads its directory and pickles only; tensors are read on demand. */
export async function openTorchCheckpoint(path: string, fs: FileSystem = fileSystem()): Promise<TorchCheckpoint> {
  const st = await fs.stat(path).catch((e) => {
    throw asFileError(e, TorchFormatError);
  });
  if (!st) throw new TorchFormatError(path, 'cannot open: no such file or directory');
  if (st.kind !== 'file') throw new TorchFormatError(path, 'not a regular file; expected a .pt, .pth or .jit file');
  const f: RandomAccessFile = await openAs(path, fs, TorchFormatError);
  try {
    return await openTorchSource(f, path);
  } catch (e) {
    await f.close();
    throw asFileError(e, TorchFormatError);
  }
}

/** The same reader over bytes in memory (`label` names them in messages). */
export function openTorchBuffer(bytes: Uint8Array, label = '<buffer>'): Promise<TorchCheckpoint> {
  return openTorchSource(
    {
      size: bytes.length,
      async read(position, into) {
        const part = bytes.subarray(Math.min(position, bytes.length), Math.min(position + into.length, bytes.length));
        into.set(part);
        return part.length;
      },
      async close() {},
    },
    label,
  );
}

/**
 * The tensors under `prefix.` alone, named without it (upstream loaders take `ckpt["model"]` of a
 * Cosmos AR model.pt, `ckpt["state_dict"]` of others); closing it closes `ck`.
 */
export function torchSubtree(ck: TorchCheckpoint, prefix: string): TorchCheckpoint {
  const p = `${prefix}.`;
  const inner = (name: string) => `${p}${name}`;
  const names = Object.freeze(ck.names.filter((n) => n.startsWith(p)).map((n) => n.slice(p.length)));
  const known = new Set(names);
  const check = (name: string) => {
    if (!known.has(name)) throw new TensorNotFoundError({ file: ck.path, tensor: name }, `no such tensor under ${JSON.stringify(prefix)} (it has ${names.length})`);
  };
  const leaves = new Map([...ck.nonTensorLeaves].filter(([k]) => k.startsWith(p)).map(([k, v]) => [k.slice(p.length), v]));
  return {
    path: ck.path,
    format: ck.format,
    folder: ck.folder,
    fileSize: ck.fileSize,
    constants: ck.constants,
    nonTensorLeaves: leaves,
    names,
    has: (name) => known.has(name),
    info(name) {
      check(name);
      return { ...ck.info(inner(name)), name };
    },
    entries() {
      return names.map((n) => this.info(n));
    },
    async read(name) {
      check(name);
      return ck.read(inner(name));
    },
    async readBytes(name) {
      check(name);
      return ck.readBytes(inner(name));
    },
    ...(ck.readInto
      ? {
          async readInto(name: string, into: Uint8Array, byteOffset?: number) {
            check(name);
            return ck.readInto!(inner(name), into, byteOffset);
          },
        }
      : {}),
    close: () => ck.close(),
  };
}
