// The legacy torch.save stream (torch < 1.6, or _use_new_zipfile_serialization=False; spec §3.5):
// five pickles back to back (magic number, protocol 1001, sys_info, the data, the storage keys),
// then each storage as an int64 element count and its bytes, in key order. The pickles are read
// through growing windows of the file's head (never more than they need); the storages are
// located by walking the counts, each checked against the pickle and the file size.
import type { ByteSource } from '../safetensors/header.js';
import { TORCH_ITEM_SIZE } from './dtypes.js';
import { PickleTruncated, TorchFormatError } from './errors.js';
import { type PickleContext, unpickle } from './pickle.js';
import { PyDict, PyList, type PyValue, type StorageRef } from './values.js';

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL = 1001;
/** The header pickles (with the data pickle) of a legacy file above this size are refused. */
const MAX_HEADER = 512 * 2 ** 20;

export interface LegacyStream {
  root: PyValue;
  storages: Map<string, StorageRef>;
  /** absolute file offset of each storage's first byte */
  dataStart: Map<string, number>;
}

async function readAt(src: ByteSource, position: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  const got = await src.read(position, buf);
  return got === length ? buf : buf.subarray(0, got);
}

export async function readLegacy(src: ByteSource, file: string): Promise<LegacyStream> {
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  let window = Math.min(src.size, 64 << 10);
  for (;;) {
    const head = await readAt(src, 0, window);
    const storages = new Map<string, StorageRef>();
    const pickles: PyValue[] = [];
    let pos = 0;
    let grow = 0;
    const names = ['magic number', 'protocol version', 'sys_info', 'data', 'storage keys'];
    for (let i = 0; i < 5; i++) {
      const ctx: PickleContext = { file, record: `the ${names[i]} pickle (legacy stream)`, pidFields: 6, storages, storageDir: '' };
      try {
        const r = unpickle(head, pos, ctx);
        pickles.push(r.value);
        pos = r.end;
      } catch (e) {
        if (!(e instanceof PickleTruncated)) throw e;
        const needEnd = pos + e.needEnd;
        if (needEnd > src.size) fail(`the legacy stream's ${names[i]} pickle is cut off at the end of the file (${src.size} bytes; truncated file?)`);
        if (needEnd > MAX_HEADER) fail(`the legacy stream's pickles run past ${MAX_HEADER} bytes; expected a smaller header`);
        grow = Math.min(src.size, Math.max(needEnd, window * 2));
        break;
      }
      if (i === 0 && pickles[0] !== MAGIC) fail("not a PyTorch checkpoint (a pickle that does not start with torch's magic number; expected a legacy torch.save stream)");
      if (i === 1 && pickles[1] !== PROTOCOL) fail(`legacy torch.save protocol ${String(pickles[1])}; expected ${PROTOCOL}`);
      if (i === 2) checkSysInfo(pickles[2], fail);
    }
    if (grow > 0) {
      window = grow;
      continue;
    }
    return locateStorages(src, file, pickles[3], pickles[4], storages, pos);
  }
}

function checkSysInfo(info: PyValue, fail: (p: string) => never): void {
  if (!(info instanceof PyDict)) fail('the legacy stream has no sys_info dict');
  const d = (info as PyDict).items;
  if (d.get('little_endian') === false) fail('the legacy stream was written on a big-endian machine; only little-endian files are supported');
  const v = d.get('protocol_version');
  if (v !== undefined && v !== PROTOCOL) fail(`legacy sys_info protocol_version ${String(v)}; expected ${PROTOCOL}`);
}

async function locateStorages(
  src: ByteSource,
  file: string,
  root: PyValue,
  keysValue: PyValue,
  storages: Map<string, StorageRef>,
  start: number,
): Promise<LegacyStream> {
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  if (!(keysValue instanceof PyList) || !keysValue.items.every((k) => typeof k === 'string')) {
    fail('the legacy stream\'s last pickle is not a list of storage keys');
  }
  const keys = (keysValue as PyList).items as string[];
  if (new Set(keys).size !== keys.length) fail('the legacy stream lists a storage key twice');
  for (const k of storages.keys()) if (!keys.includes(k)) fail(`storage ${k} is used by a tensor but missing from the legacy stream's key list`);
  const dataStart = new Map<string, number>();
  const count = new Uint8Array(8);
  const cv = new DataView(count.buffer);
  let pos = start;
  for (const k of keys) {
    const s = storages.get(k);
    if (!s) return fail(`storage ${JSON.stringify(k)} is listed but no tensor uses it, so its size is unknown`);
    if (pos + 8 > src.size || (await src.read(pos, count)) !== 8) {
      fail(`storage ${k}'s element count at byte ${pos} runs past the end of the file (${src.size} bytes; truncated file?)`);
    }
    const n = cv.getBigInt64(0, true);
    if (n !== BigInt(s.numel)) fail(`storage ${k} at byte ${pos} holds ${n} elements but the pickle says ${s.numel}`);
    const bytes = s.numel * TORCH_ITEM_SIZE[s.dtype];
    if (!Number.isSafeInteger(bytes) || pos + 8 + bytes > src.size) {
      fail(`storage ${k} (${s.numel} ${s.dtype} elements at byte ${pos + 8}) runs past the end of the file (${src.size} bytes; truncated file?)`);
    }
    dataStart.set(k, pos + 8);
    pos += 8 + bytes;
  }
  if (pos !== src.size) fail(`${src.size - pos} bytes follow the last storage of the legacy stream (at byte ${pos}); expected none`);
  return { root, storages, dataStart };
}
