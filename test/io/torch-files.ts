// Building blocks for hand-made PyTorch files in the tests: pickle opcodes as bytes, the pickle of
// one tensor with any persistent id and view, and a zip of records under `archive/`.
import { encodeZip } from '../../src/io/torch.js';

export type Part = number | string | Uint8Array | Part[];

/** Concatenate opcodes: numbers are bytes, strings latin-1 bytes. */
export function pk(...parts: Part[]): Uint8Array {
  const out: number[] = [];
  const add = (p: Part) => {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') for (const c of p) out.push(c.charCodeAt(0) & 0xff);
    else if (p instanceof Uint8Array) for (const b of p) out.push(b);
    else for (const q of p) add(q);
  };
  for (const p of parts) add(p);
  return new Uint8Array(out);
}

const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

export const PROTO2 = [0x80, 2];
export const STOP = 0x2e;
export const MARK = 0x28;
export const TUPLE = 0x74;
export const EMPTY_TUPLE = 0x29;
export const REDUCE = 0x52;
export const EMPTY_DICT = 0x7d;
export const SETITEM = 0x73;
export const NEWFALSE = 0x89;
export const BINPERSID = 0x51;

export function str(s: string): Part {
  const b = new TextEncoder().encode(s);
  return [0x58, ...u32(b.length), b];
}

export function glob(module: string, name: string): Part {
  return ['c', `${module}\n${name}\n`];
}

/** An int as torch's pickler writes it (BININT1/2, BININT, else LONG1). */
export function int(x: number | bigint): Part {
  if (typeof x === 'number' && x >= 0 && x < 256) return [0x4b, x];
  if (typeof x === 'number' && x >= 0 && x < 65536) return [0x4d, x & 0xff, x >> 8];
  if (typeof x === 'number' && x >= -(2 ** 31) && x < 2 ** 31) return [0x4a, ...u32(x >>> 0)];
  let v = BigInt(x);
  const bytes: number[] = [];
  for (;;) {
    bytes.push(Number(v & 0xffn));
    const rest = v >> 8n;
    const sign = bytes[bytes.length - 1] & 0x80;
    if ((rest === 0n && !sign) || (rest === -1n && sign)) break;
    v = rest;
  }
  return [0x8a, bytes.length, ...bytes];
}

export function tuple(...items: Part[]): Part {
  return items.length === 0 ? EMPTY_TUPLE : [MARK, ...items, TUPLE];
}

export interface TensorSpec {
  storage?: string; // class, default FloatStorage
  key?: string;
  numel: number | bigint;
  offset?: number | bigint;
  size: (number | bigint)[];
  stride: (number | bigint)[];
}

/** `_rebuild_tensor_v2` of a view of a storage, with any (even inconsistent) claims. */
export function tensor(t: TensorSpec): Part {
  return [
    glob('torch._utils', '_rebuild_tensor_v2'),
    MARK,
    tuple(str('storage'), glob('torch', t.storage ?? 'FloatStorage'), str(t.key ?? '0'), str('cpu'), int(t.numel)),
    BINPERSID,
    int(t.offset ?? 0),
    tuple(...t.size.map(int)),
    tuple(...t.stride.map(int)),
    NEWFALSE,
    glob('collections', 'OrderedDict'),
    EMPTY_TUPLE,
    REDUCE,
    TUPLE,
    REDUCE,
  ];
}

/** A pickle of {name: value} pairs (a plain dict). */
export function dictPickle(items: [string, Part][]): Uint8Array {
  return pk(PROTO2, EMPTY_DICT, ...items.map(([k, v]) => [str(k), v, SETITEM]), STOP);
}

/** A zip of records named `archive/<name>` (or as given when the name has a '!' prefix). */
export function zipOf(records: [string, Uint8Array][], opts: { zip64?: boolean; method?: Record<string, number> } = {}): Uint8Array {
  return encodeZip(
    records.map(([name, data]) => ({
      name: name.startsWith('!') ? name.slice(1) : `archive/${name}`,
      data,
      method: opts.method?.[name],
    })),
    { zip64: opts.zip64 },
  );
}

export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
