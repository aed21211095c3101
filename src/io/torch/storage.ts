// Tensor views of storages (`_rebuild_tensor_v2`, spec §6): the checks that make a view safe to
// read (non-negative sizes, strides and offset; every element inside the storage; counts that
// cannot overflow), and the gather of a strided view into contiguous little-endian bytes through
// positioned reads of the storage's bytes.
import { TORCH_ITEM_SIZE } from './dtypes.js';
import { TorchFormatError } from './errors.js';
import { type StorageRef, TensorRef } from './values.js';

/** Dimensions of a tensor view (torch allows 64; checkpoints use at most 6). */
export const MAX_RANK = 64;

export interface ViewContext {
  file: string;
  /** e.g. `tensor at byte 120 of data.pkl` */
  where: string;
  /** e.g. `data/3` */
  storageName: string;
}

/** Check a view of `storage` and return it; every claim is compared with the storage first. */
export function viewOf(storage: StorageRef, offset: number, shape: number[], stride: number[], ctx: ViewContext): TensorRef {
  const fail = (problem: string): never => {
    throw new TorchFormatError(ctx.file, `${ctx.where}: ${problem}`);
  };
  if (shape.length !== stride.length) fail(`size (${shape.join(', ')}) and stride (${stride.join(', ')}) differ in length`);
  if (shape.length > MAX_RANK) fail(`has ${shape.length} dimensions; expected at most ${MAX_RANK}`);
  if (offset < 0) fail(`storage offset ${offset} is negative`);
  if (shape.some((d) => d < 0)) fail(`size (${shape.join(', ')}) has a negative dimension`);
  if (stride.some((s) => s < 0)) fail(`stride (${stride.join(', ')}) is negative; torch saves only non-negative strides`);
  // Exact integer arithmetic: a hostile size or stride cannot wrap around.
  let numel = 1n;
  for (const d of shape) numel *= BigInt(d);
  if (numel > BigInt(Number.MAX_SAFE_INTEGER)) fail(`size (${shape.join(', ')}) holds ${numel} elements; expected fewer than 2^53`);
  if (numel > 0n) {
    let last = BigInt(offset);
    for (let k = 0; k < shape.length; k++) last += BigInt(shape[k] - 1) * BigInt(stride[k]);
    if (last >= BigInt(storage.numel)) {
      fail(
        `view (offset ${offset}, size (${shape.join(', ')}), stride (${stride.join(', ')})) reaches element ${last} but storage ${ctx.storageName} holds ${storage.numel} ${storage.dtype} elements`,
      );
    }
  }
  return new TensorRef(storage, offset, Object.freeze([...shape]), Object.freeze([...stride]), Number(numel));
}

/** True when the view's elements lie in row-major order with no gaps (dims of size 1 ignored). */
export function isContiguous(t: TensorRef): boolean {
  let expect = 1;
  for (let k = t.shape.length - 1; k >= 0; k--) {
    if (t.shape[k] === 1) continue;
    if (t.stride[k] !== expect) return false;
    expect *= t.shape[k];
  }
  return true;
}

/** Positioned reads of a storage's bytes (byte 0 = element 0). */
export type StorageReader = (byteOffset: number, into: Uint8Array) => Promise<void>;

/** Reads spanning at most this many bytes are done at once, then gathered in memory. */
const WINDOW = 16 * 2 ** 20;

/** The view as contiguous row-major bytes: one read when contiguous, else windows of the storage. */
export async function gather(t: TensorRef, read: StorageReader): Promise<Uint8Array> {
  const size = TORCH_ITEM_SIZE[t.storage.dtype];
  const out = new Uint8Array(t.numel * size);
  if (t.numel === 0) return out;
  if (isContiguous(t)) {
    await read(t.offset * size, out);
    return out;
  }
  // Drop dimensions of size 1: they do not move through the storage.
  const shape: number[] = [];
  const stride: number[] = [];
  t.shape.forEach((d, k) => {
    if (d !== 1) {
      shape.push(d);
      stride.push(t.stride[k]);
    }
  });
  const rank = shape.length;
  // span[k] = elements from the first to the last element of a sub-view over dims k.. (inclusive)
  const span: number[] = new Array(rank + 1).fill(1);
  for (let k = rank - 1; k >= 0; k--) span[k] = span[k + 1] + (shape[k] - 1) * stride[k];

  let cursor = 0;
  const copyFrom = (buf: Uint8Array, base: number, k: number) => {
    // base: element index (relative to buf) of the sub-view over dims k..
    if (k === rank) {
      out.set(buf.subarray(base * size, base * size + size), cursor);
      cursor += size;
      return;
    }
    if (k === rank - 1) {
      if (stride[k] === 1) {
        const n = shape[k] * size;
        out.set(buf.subarray(base * size, base * size + n), cursor);
        cursor += n;
        return;
      }
      const step = stride[k] * size;
      for (let i = 0, src = base * size; i < shape[k]; i++, src += step) {
        for (let b = 0; b < size; b++) out[cursor++] = buf[src + b];
      }
      return;
    }
    for (let i = 0; i < shape[k]; i++) copyFrom(buf, base + i * stride[k], k + 1);
  };
  const visit = async (start: number, k: number): Promise<void> => {
    if (span[k] * size <= WINDOW || k === rank) {
      const buf = new Uint8Array(span[k] * size);
      await read(start * size, buf);
      copyFrom(buf, 0, k);
      return;
    }
    for (let i = 0; i < shape[k]; i++) await visit(start + i * stride[k], k + 1);
  };
  await visit(t.offset, 0);
  if (cursor !== out.length) throw new Error(`gather wrote ${cursor} of ${out.length} bytes`);
  return out;
}
