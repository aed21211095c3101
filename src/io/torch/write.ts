// The reader's counterpart: a torch.save archive that torch.load(weights_only=True) reads, laid out
// as recent torch 2.x writes it (data.pkl, .format_version, .storage_alignment, byteorder,
// data/0.., version, .data/serialization_id). The pickle is protocol 2 as Python's pickler writes
// it: dicts, OrderedDicts (`collections OrderedDict` + REDUCE), lists, tuples, plain values, and
// each tensor as `torch._utils _rebuild_tensor_v2` over a `torch <X>Storage` persistent id, one
// contiguous storage per tensor (a tensor object given twice is stored once and pickled as a memo
// reference, as torch does for tied weights).
import { type FileSystem, fileSystem, writeFileAtomic } from '../files.js';
import { basename } from '../path.js';
import { crc32 } from '../zlib.js';
import { isTorchDType, STORAGE_CLASS, TORCH_ITEM_SIZE, type TorchDType } from './dtypes.js';
import { TorchFormatError } from './errors.js';
import { concatChunks, type ZipRecordToWrite, zipChunks } from './zip-write.js';

export interface TorchTensor {
  dtype: TorchDType;
  shape: readonly number[];
  /** numel x itemsize bytes, little-endian, row-major */
  bytes: Uint8Array;
}

/** A Python tuple (arrays are written as lists). */
export class TorchTuple {
  constructor(readonly items: readonly TorchValue[]) {}
}

export const torchTuple = (...items: TorchValue[]): TorchTuple => new TorchTuple(items);

/**
 * What can be saved: tensors, plain objects (dict), Maps (OrderedDict, str or int keys), arrays
 * (list), TorchTuples, and plain values (integral numbers are ints, others floats).
 */
export type TorchValue =
  | TorchTensor
  | null
  | boolean
  | number
  | bigint
  | string
  | TorchTuple
  | readonly TorchValue[]
  | ReadonlyMap<string | number, TorchValue>
  | { readonly [key: string]: TorchValue };

export interface TorchWriteOptions {
  /** the archive's top-level folder (default `archive`, as torch names a save to a file object) */
  folder?: string;
  /** put every size and offset in zip64 fields, as files over 4 GiB have them */
  zip64?: boolean;
  /**
   * the record list: '2.x' (default; recent torch: .format_version, .storage_alignment,
   * byteorder, storages in numeric order, .data/serialization_id) or '1.13' (data.pkl, storages in
   * string order, version)
   */
  layout?: '2.x' | '1.13';
}

const WRITER = '<torch writer>';

function isTensor(v: unknown): v is TorchTensor {
  return typeof v === 'object' && v !== null && (v as TorchTensor).bytes instanceof Uint8Array && Array.isArray((v as TorchTensor).shape) && typeof (v as TorchTensor).dtype === 'string';
}

const enc = new TextEncoder();

/** Protocol-2 pickle bytes, growing as they are written. */
class PickleOut {
  private buf = new Uint8Array(1024);
  private v = new DataView(this.buf.buffer);
  private p = 0;
  private memo = new Map<unknown, number>();

  private room(n: number) {
    if (this.p + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.p + n));
    next.set(this.buf.subarray(0, this.p));
    this.buf = next;
    this.v = new DataView(next.buffer);
  }
  op(...bytes: number[]): void {
    this.room(bytes.length);
    for (const b of bytes) this.buf[this.p++] = b;
  }
  raw(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.p);
    this.p += b.length;
  }
  u32(x: number): void {
    this.room(4);
    this.v.setUint32(this.p, x, true);
    this.p += 4;
  }
  /** BINPUT the value on top of the stack under `key`. */
  put(key: unknown): void {
    const i = this.memo.size;
    this.memo.set(key, i);
    if (i < 256) this.op(0x71, i);
    else {
      this.op(0x72);
      this.u32(i);
    }
  }
  /** BINGET `key` if it was stored; false otherwise. */
  get(key: unknown): boolean {
    const i = this.memo.get(key);
    if (i === undefined) return false;
    if (i < 256) this.op(0x68, i);
    else {
      this.op(0x6a);
      this.u32(i);
    }
    return true;
  }
  int(x: number | bigint): void {
    if (typeof x === 'number' && x >= 0 && x <= 0xff) this.op(0x4b, x);
    else if (typeof x === 'number' && x >= 0 && x <= 0xffff) this.op(0x4d, x & 0xff, x >> 8);
    else if (typeof x === 'number' && x >= -(2 ** 31) && x < 2 ** 31) {
      this.op(0x4a);
      this.room(4);
      this.v.setInt32(this.p, x, true);
      this.p += 4;
    } else {
      // LONG1: minimal little-endian two's complement
      let v = BigInt(x);
      const bytes: number[] = [];
      while (true) {
        bytes.push(Number(v & 0xffn));
        const rest = v >> 8n;
        const sign = bytes[bytes.length - 1] & 0x80;
        if ((rest === 0n && !sign) || (rest === -1n && sign)) break;
        v = rest;
      }
      this.op(0x8a, bytes.length, ...bytes);
    }
  }
  float(x: number): void {
    this.op(0x47);
    this.room(8);
    this.v.setFloat64(this.p, x, false);
    this.p += 8;
  }
  str(s: string): void {
    const key = `s:${s}`;
    if (this.get(key)) return;
    const b = enc.encode(s);
    this.op(0x58);
    this.u32(b.length);
    this.raw(b);
    this.put(key);
  }
  global(module: string, name: string): void {
    const key = `g:${module}\n${name}`;
    if (this.get(key)) return;
    this.op(0x63);
    this.raw(enc.encode(`${module}\n${name}\n`));
    this.put(key);
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.p);
  }
}

interface Plan {
  pickle: Uint8Array;
  /** storages in key order */
  storages: TorchTensor[];
}

function pickleRoot(root: TorchValue): Plan {
  const out = new PickleOut();
  const storages: TorchTensor[] = [];
  const active = new Set<object>();
  const fail = (problem: string): never => {
    throw new TorchFormatError(WRITER, problem);
  };

  const tuple = (items: (() => void)[], memoKey: object) => {
    if (items.length === 0) {
      out.op(0x29);
      return;
    }
    if (items.length <= 3) {
      for (const f of items) f();
      out.op(0x84 + items.length);
    } else {
      out.op(0x28);
      for (const f of items) f();
      out.op(0x74);
    }
    out.put(memoKey);
  };
  const batched = (n: number, one: (i: number) => void, single: number, many: number) => {
    for (let i = 0; i < n; i += 1000) {
      const m = Math.min(1000, n - i);
      if (m === 1) {
        one(i);
        out.op(single);
      } else {
        out.op(0x28);
        for (let k = i; k < i + m; k++) one(k);
        out.op(many);
      }
    }
  };

  const tensor = (t: TorchTensor, path: string) => {
    if (out.get(t)) return;
    if (!isTorchDType(t.dtype)) fail(`tensor ${path}: dtype ${JSON.stringify(t.dtype)} has no torch storage class`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor ${path}: shape [${t.shape.join(', ')}] is not a list of non-negative integers`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.bytes.length !== numel * TORCH_ITEM_SIZE[t.dtype]) {
      fail(`tensor ${path}: ${t.bytes.length} bytes but shape [${t.shape.join(', ')}] of ${t.dtype} needs ${numel * TORCH_ITEM_SIZE[t.dtype]}`);
    }
    const key = storages.length;
    storages.push(t);
    const stride: number[] = [];
    let s = 1;
    for (let k = t.shape.length - 1; k >= 0; k--) {
      stride.unshift(s);
      s *= t.shape[k];
    }
    out.global('torch._utils', '_rebuild_tensor_v2');
    out.op(0x28); // args
    const pid = {};
    out.op(0x28);
    out.str('storage');
    out.global('torch', STORAGE_CLASS[t.dtype]);
    out.str(String(key));
    out.str('cpu');
    out.int(numel);
    out.op(0x74);
    out.put(pid);
    out.op(0x51); // BINPERSID
    out.int(0);
    tuple(t.shape.map((d) => () => out.int(d)), {});
    tuple(stride.map((d) => () => out.int(d)), {});
    out.op(0x89); // requires_grad False
    out.global('collections', 'OrderedDict');
    out.op(0x29, 0x52);
    out.put({});
    out.op(0x74);
    out.put({});
    out.op(0x52);
    out.put(t);
  };

  const value = (v: TorchValue, path: string, depth: number): void => {
    if (depth > 100) fail(`value at ${path} nests deeper than 100 levels (a cycle?)`);
    if (v === null) out.op(0x4e);
    else if (v === true) out.op(0x88);
    else if (v === false) out.op(0x89);
    else if (typeof v === 'bigint') out.int(v);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) out.int(v);
      else out.float(v);
    } else if (typeof v === 'string') out.str(v);
    else if (isTensor(v)) tensor(v, path);
    else if (typeof v !== 'object') fail(`value at ${path} is a ${typeof v}; expected tensors, containers and plain values`);
    else {
      if (active.has(v)) fail(`value at ${path} contains itself`);
      if (out.get(v)) return;
      active.add(v);
      const at = (k: string | number) => (path === '' ? String(k) : `${path}.${k}`);
      if (v instanceof TorchTuple) {
        tuple(v.items.map((x, i) => () => value(x, at(i), depth + 1)), v);
      } else if (Array.isArray(v)) {
        out.op(0x5d);
        out.put(v);
        batched(v.length, (i) => value(v[i], at(i), depth + 1), 0x61, 0x65);
      } else if (v instanceof Map) {
        out.global('collections', 'OrderedDict');
        out.op(0x29, 0x52);
        out.put(v);
        const items = [...v.entries()];
        for (const [k] of items) {
          if (typeof k !== 'string' && !Number.isSafeInteger(k)) fail(`Map at ${path} has key ${String(k)}; expected str or int keys`);
        }
        batched(items.length, (i) => {
          const [k, x] = items[i];
          if (typeof k === 'string') out.str(k);
          else out.int(k);
          value(x, at(k), depth + 1);
        }, 0x73, 0x75);
      } else {
        const items = Object.entries(v as Record<string, TorchValue>);
        out.op(0x7d);
        out.put(v);
        batched(items.length, (i) => {
          out.str(items[i][0]);
          value(items[i][1], at(items[i][0]), depth + 1);
        }, 0x73, 0x75);
      }
      active.delete(v);
    }
  };

  out.op(0x80, 2);
  value(root, '', 0);
  out.op(0x2e);
  return { pickle: out.done(), storages };
}

function checkFolder(folder: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(folder) || folder === '..') {
    throw new TorchFormatError(WRITER, `archive folder ${JSON.stringify(folder)} is not a plain name`);
  }
  return folder;
}

function* records(root: TorchValue, folder: string, layout: '2.x' | '1.13'): Generator<ZipRecordToWrite> {
  const plan = pickleRoot(root);
  const text = (s: string) => enc.encode(s);
  yield { name: `${folder}/data.pkl`, data: plan.pickle };
  if (layout === '1.13') {
    const keys = plan.storages.map((_, i) => String(i)).sort();
    for (const k of keys) yield { name: `${folder}/data/${k}`, data: plan.storages[Number(k)].bytes };
    yield { name: `${folder}/version`, data: text('3\n') };
    return;
  }
  yield { name: `${folder}/.format_version`, data: text('1') };
  yield { name: `${folder}/.storage_alignment`, data: text('64') };
  yield { name: `${folder}/byteorder`, data: text('little') };
  let h = crc32(plan.pickle);
  for (let i = 0; i < plan.storages.length; i++) {
    const bytes = plan.storages[i].bytes;
    h = crc32(new Uint8Array([bytes.length & 0xff, i & 0xff]), h);
    yield { name: `${folder}/data/${i}`, data: bytes };
  }
  yield { name: `${folder}/version`, data: text('3\n') };
  // torch writes 40 decimal digits identifying the save; these derive from the content, so the
  // same checkpoint always gives the same bytes.
  let id = '';
  for (let k = 0; id.length < 40; k++) {
    h = crc32(new Uint8Array([k]), h);
    id += String(h).padStart(10, '0');
  }
  yield { name: `${folder}/.data/serialization_id`, data: text(id.slice(0, 40)) };
}

/** A torch.save zip archive of `root`, in memory. */
export function encodeTorchZip(root: TorchValue, opts: TorchWriteOptions = {}): Uint8Array {
  return concatChunks(zipChunks(records(root, checkFolder(opts.folder ?? 'archive'), opts.layout ?? '2.x'), { zip64: opts.zip64 }));
}

/**
 * The archive of `root` as chunks, in file order, each tensor's bytes passed through as the very
 * array given (not copied): for writers that place the data themselves (e.g. seek over zeros).
 */
export function torchZipChunks(root: TorchValue, opts: TorchWriteOptions = {}): Generator<Uint8Array> {
  return zipChunks(records(root, checkFolder(opts.folder ?? 'archive'), opts.layout ?? '2.x'), { zip64: opts.zip64 });
}

/** Write `root` as a torch.save checkpoint at `path`, atomically (the folder defaults to the file's stem, as torch.save(obj, path) names it). */
export async function writeTorchCheckpoint(path: string, root: TorchValue, opts: TorchWriteOptions = {}, fs: FileSystem = fileSystem()): Promise<void> {
  const stem = basename(path).replace(/\.[^.]*$/, '') || 'archive';
  const folder = checkFolder(opts.folder ?? (/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(stem) ? stem : 'archive'));
  await writeFileAtomic(path, zipChunks(records(root, folder, opts.layout ?? '2.x'), { zip64: opts.zip64 }), fs);
}
