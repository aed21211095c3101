// Writing a zip archive the way torch's PyTorchStreamWriter does (spec §3.2): every record
// STORED, local headers with flags 0x0808 and zero CRC/sizes, an `FB` extra field of `Z` bytes
// that puts each record's data on a 64-byte boundary, a data descriptor after each record, the
// central directory, then always a zip64 end record and locator before the classic end record.
// An empty record has no data descriptor (flags 0x0800), as miniz writes it.
// Sizes and offsets that do not fit 32 bits (or all of them, with `zip64: true`) go to zip64
// extra fields.
import { crc32 } from '../zlib.js';

export interface ZipRecordToWrite {
  /** the full entry name (folder included) */
  name: string;
  data: Uint8Array;
  /** the method written in the headers (default 0, stored); the data is written as given */
  method?: number;
}

const ALIGN = 64;
const MAX32 = 0xffffffff;

class Bytes {
  private readonly buf: Uint8Array;
  private readonly v: DataView;
  private p = 0;
  constructor(n: number) {
    this.buf = new Uint8Array(n);
    this.v = new DataView(this.buf.buffer);
  }
  u16(x: number): this {
    this.v.setUint16(this.p, x, true);
    this.p += 2;
    return this;
  }
  u32(x: number): this {
    this.v.setUint32(this.p, x, true);
    this.p += 4;
    return this;
  }
  u64(x: number): this {
    this.v.setBigUint64(this.p, BigInt(x), true);
    this.p += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.p);
    this.p += b.length;
    return this;
  }
  fill(byte: number, n: number): this {
    this.buf.fill(byte, this.p, this.p + n);
    this.p += n;
    return this;
  }
  done(): Uint8Array {
    if (this.p !== this.buf.length) throw new Error(`zip writer: wrote ${this.p} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

interface Written {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
  method: number;
  flags: number;
}

/** The archive as chunks (tensor bytes are passed through, not copied). */
export function* zipChunks(records: Iterable<ZipRecordToWrite>, opts: { zip64?: boolean } = {}): Generator<Uint8Array> {
  const force = opts.zip64 ?? false;
  const written: Written[] = [];
  let offset = 0;
  for (const r of records) {
    const name = new TextEncoder().encode(r.name);
    const size = r.data.length;
    const method = r.method ?? 0;
    const big = force || size >= MAX32 || offset >= MAX32;
    const zip64Extra = big ? 20 : 0;
    const start = offset + 30 + name.length + zip64Extra + 4;
    const pad = (ALIGN - (start % ALIGN)) % ALIGN;
    const flags = size > 0 ? 0x0808 : 0x0800;
    const head = new Bytes(30 + name.length + zip64Extra + 4 + pad)
      .u32(0x04034b50).u16(big ? 45 : 0).u16(flags).u16(method).u16(0).u16(0)
      .u32(0).u32(big ? MAX32 : 0).u32(big ? MAX32 : 0)
      .u16(name.length).u16(zip64Extra + 4 + pad).bytes(name);
    if (big) head.u16(1).u16(16).u64(size).u64(size);
    head.u16(0x4246).u16(pad).fill(0x5a, pad);
    const crc = crc32(r.data);
    yield head.done();
    let descriptor = 0;
    if (size > 0) {
      yield r.data;
      const desc = big ? new Bytes(24).u32(0x08074b50).u32(crc).u64(size).u64(size) : new Bytes(16).u32(0x08074b50).u32(crc).u32(size).u32(size);
      yield desc.done();
      descriptor = big ? 24 : 16;
    }
    written.push({ name, crc, size, offset, method, flags });
    offset += 30 + name.length + zip64Extra + 4 + pad + size + descriptor;
  }
  const dirOffset = offset;
  let dirSize = 0;
  for (const w of written) {
    const bigSize = force || w.size >= MAX32;
    const bigOffset = force || w.offset >= MAX32;
    const extra = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
    const big = extra > 0;
    const e = new Bytes(46 + w.name.length + (big ? 4 + extra : 0))
      .u32(0x02014b50).u16(big ? 45 : 0).u16(big ? 45 : 0).u16(w.flags).u16(w.method).u16(0).u16(0)
      .u32(w.crc).u32(bigSize ? MAX32 : w.size).u32(bigSize ? MAX32 : w.size)
      .u16(w.name.length).u16(big ? 4 + extra : 0).u16(0).u16(0).u16(0).u32(0)
      .u32(bigOffset ? MAX32 : w.offset).bytes(w.name);
    if (big) {
      e.u16(1).u16(extra);
      if (bigSize) e.u64(w.size).u64(w.size);
      if (bigOffset) e.u64(w.offset);
    }
    const b = e.done();
    dirSize += b.length;
    yield b;
  }
  const end64At = dirOffset + dirSize;
  const n = written.length;
  yield new Bytes(56).u32(0x06064b50).u64(44).u16(0x031e).u16(45).u32(0).u32(0).u64(n).u64(n).u64(dirSize).u64(dirOffset).done();
  yield new Bytes(20).u32(0x07064b50).u32(0).u64(end64At).u32(1).done();
  const sat = (x: number) => (force || x >= MAX32 ? MAX32 : x);
  const count = Math.min(n, 0xffff);
  yield new Bytes(22).u32(0x06054b50).u16(0).u16(0).u16(count).u16(count).u32(sat(dirSize)).u32(sat(dirOffset)).u16(0).done();
}

export function concatChunks(chunks: Iterable<Uint8Array>): Uint8Array {
  const list = [...chunks];
  const out = new Uint8Array(list.reduce((a, c) => a + c.length, 0));
  let p = 0;
  for (const c of list) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/** A zip of the given records, in memory (tests build archives of their own with it). */
export function encodeZip(records: readonly ZipRecordToWrite[], opts: { zip64?: boolean } = {}): Uint8Array {
  return concatChunks(zipChunks(records, opts));
}
