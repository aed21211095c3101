// Weights read straight from a checkpoint into the memory that becomes each tensor, with the next
// reads in flight while the current one is handed to the backend. Two ways, by backend:
// - host memory (the CPU backend's `adopt`): each tensor's bytes are read into a fresh array that
//   becomes its storage: one read, no copy;
// - device memory (`writeBytes`): reads go into a few reused scratch slots (bounded host memory)
//   and each is written to the device while the following slots fill. A fresh array per tensor
//   would cost a page fault per 4 KiB before the device copy even starts.
// Reads follow the file order the caller sorted them in, so a shard is read front to back.
import type { Backend, Storage } from './backend.js';
import type { DType, RawArray } from './dtype.js';
import { rawArrayFor } from './dtype.js';
import { Tensor } from './tensor.js';

/** One tensor to read whose stored bytes are the engine dtype's raw layout (no conversion). */
export interface StreamItem {
  /** the name `readInto` takes */
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly length: number;
  readonly bytes: number;
  /** receives the filled tensor (which it owns) */
  done(t: Tensor): void;
}

/** Fill `into` with the stored bytes of `name` from `byteOffset` into its data. */
export type ReadInto = (name: string, into: Uint8Array, byteOffset: number) => Promise<void>;

export interface StreamOptions {
  /** host bytes of reads in flight and of scratch slots (default 512 MiB) */
  aheadBytes?: number;
  /** the largest read into one scratch slot (default 256 MiB; bigger tensors are read in pieces) */
  slotBytes?: number;
}

const MiB = 2 ** 20;

/** Whether `backend` can take streamed reads (otherwise the caller reads and uploads). */
export function canStream(backend: Backend): boolean {
  return backend.adopt !== undefined || backend.writeBytes !== undefined;
}

/** Read every item into a tensor on `backend`, in the given order. */
export async function streamTensors(backend: Backend, items: readonly StreamItem[], readInto: ReadInto, o: StreamOptions = {}): Promise<void> {
  const ahead = o.aheadBytes ?? 512 * MiB;
  if (backend.adopt) return streamAdopted(backend, items, readInto, ahead);
  if (backend.writeBytes) return streamWritten(backend, items, readInto, ahead, o.slotBytes ?? 256 * MiB);
  throw new Error(`streamTensors: the ${backend.name} backend takes neither adopted arrays nor byte writes`);
}

function bytesOf(raw: RawArray): Uint8Array {
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** Settle every read still in flight (a failure must not leave reads writing into freed memory unobserved). */
async function settle(reads: Iterable<Promise<void>>): Promise<void> {
  await Promise.allSettled(reads);
}

async function streamAdopted(backend: Backend, items: readonly StreamItem[], readInto: ReadInto, ahead: number): Promise<void> {
  const adopt = backend.adopt!.bind(backend);
  const queue: { item: StreamItem; raw: RawArray; read: Promise<void> }[] = [];
  let queued = 0;
  let next = 0;
  try {
    while (next < items.length || queue.length) {
      // at least one read, then more while they fit the read-ahead budget
      while (next < items.length && (queue.length === 0 || queued + items[next].bytes <= ahead)) {
        const item = items[next++];
        const raw = rawArrayFor(item.dtype, item.length);
        const read = item.bytes ? readInto(item.name, bytesOf(raw), 0) : Promise.resolve();
        read.catch(() => {});
        queue.push({ item, raw, read });
        queued += item.bytes;
      }
      const q = queue.shift()!;
      queued -= q.item.bytes;
      await q.read;
      q.item.done(new Tensor(adopt(q.item.dtype, q.raw), q.item.shape));
    }
  } finally {
    await settle(queue.map((q) => q.read));
  }
}

const roundUp4 = (n: number) => Math.ceil(n / 4) * 4;

interface Chunk {
  item: StreamItem;
  /** byte offset in the tensor's data */
  offset: number;
  length: number;
  first: boolean;
  last: boolean;
}

async function streamWritten(backend: Backend, items: readonly StreamItem[], readInto: ReadInto, ahead: number, slotCap: number): Promise<void> {
  const writeBytes = backend.writeBytes!.bind(backend);
  const largest = items.reduce((m, it) => Math.max(m, it.bytes), 0);
  // a multiple of 4, so every piece but a tensor's last starts and ends on a word
  const slotBytes = roundUp4(Math.max(4, Math.min(largest, Math.max(4, Math.floor(slotCap / 4) * 4))));
  const slotCount = Math.max(2, Math.min(4, Math.floor(ahead / slotBytes)));
  const chunks: Chunk[] = [];
  for (const item of items) {
    if (item.bytes === 0) {
      chunks.push({ item, offset: 0, length: 0, first: true, last: true });
      continue;
    }
    for (let off = 0; off < item.bytes; off += slotBytes) {
      chunks.push({ item, offset: off, length: Math.min(slotBytes, item.bytes - off), first: off === 0, last: off + slotBytes >= item.bytes });
    }
  }
  const free: Uint8Array[] = [];
  let made = 0;
  const slot = (): Uint8Array | null => {
    const reused = free.pop();
    if (reused || made === slotCount) return reused ?? null;
    made++;
    return new Uint8Array(slotBytes);
  };
  const queue: { chunk: Chunk; buf: Uint8Array; read: Promise<void> }[] = [];
  const open = new Map<StreamItem, Storage>();
  let next = 0;
  try {
    while (next < chunks.length || queue.length) {
      for (let buf = next < chunks.length ? slot() : null; buf; buf = next < chunks.length ? slot() : null) {
        const chunk = chunks[next++];
        const read = chunk.length ? readInto(chunk.item.name, buf.subarray(0, chunk.length), chunk.offset) : Promise.resolve();
        read.catch(() => {});
        queue.push({ chunk, buf, read });
      }
      const { chunk, buf, read } = queue.shift()!;
      await read;
      const { item } = chunk;
      if (chunk.first) open.set(item, backend.alloc(item.dtype, item.length));
      const storage = open.get(item)!;
      if (chunk.length) {
        // the device takes whole words: a tensor's odd tail goes with zeros after it
        const n = roundUp4(chunk.length);
        buf.fill(0, chunk.length, n);
        writeBytes(storage, chunk.offset, buf.subarray(0, n));
      }
      free.push(buf);
      if (chunk.last) {
        open.delete(item);
        item.done(new Tensor(storage, item.shape));
      }
    }
  } finally {
    await settle(queue.map((q) => q.read));
    for (const s of open.values()) backend.free(s);
  }
}
