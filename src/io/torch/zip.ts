// The zip container of torch.save and torch.jit.save archives (spec §3): the end record (zip64
// when a count, size or offset does not fit its 16/32-bit slot), the central directory, the
// entry-name rules (one top-level folder; relative names without `..`, backslashes or
// duplicates) and each record's data offset, taken from its LOCAL header (whose extra field, the
// 64-byte `FB` padding, differs from the directory's). Only STORED records are ever read.
import type { ByteSource } from '../safetensors/header.js';
import { crc32 } from '../zlib.js';
import { TorchFormatError } from './errors.js';

export interface ZipEntry {
  /** the full name, as stored */
  readonly name: string;
  /** the name below the archive's top-level folder (`data.pkl`, `data/0`) */
  readonly record: string;
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
  readonly nameBytes: Uint8Array;
}

export interface ZipArchive {
  /** the top-level folder every record lives in */
  readonly folder: string;
  /** in directory order */
  readonly entries: readonly ZipEntry[];
  /** by record name (relative to the folder); directory entries are not records */
  readonly records: ReadonlyMap<string, ZipEntry>;
  /** where the central directory starts: every record's data lies before it */
  readonly directoryOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const END_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** A central directory bigger than this is refused (a million entries take about 100 MiB). */
const MAX_DIRECTORY = 256 * 2 ** 20;

const utf8 = new TextDecoder('utf-8', { fatal: true });

async function readAt(src: ByteSource, position: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  const got = await src.read(position, buf);
  return got === length ? buf : buf.subarray(0, got);
}

function u64(v: DataView, at: number, file: string, what: string): number {
  const x = v.getBigUint64(at, true);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new TorchFormatError(file, `zip ${what} is ${x}, beyond any file; the archive is corrupt`);
  return Number(x);
}

/** Find and read the end records and the central directory. */
export async function readZipDirectory(src: ByteSource, file: string): Promise<ZipArchive> {
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  const size = src.size;
  if (size < END_SIZE) fail(`zip archive of ${size} bytes is too short for its end record (truncated file?)`);
  const tailLength = Math.min(size, END_SIZE + MAX_COMMENT);
  const tailStart = size - tailLength;
  const tail = await readAt(src, tailStart, tailLength);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let endAt = -1;
  for (let i = tail.length - END_SIZE; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_END && i + END_SIZE + tv.getUint16(i + 20, true) === tail.length) {
      endAt = i;
      break;
    }
  }
  if (endAt < 0) fail('no zip end-of-central-directory record at the end of the file (truncated download, or not a zip archive)');
  const endPos = tailStart + endAt;
  if (tv.getUint16(endAt + 4, true) !== 0 || tv.getUint16(endAt + 6, true) !== 0) fail('is a multi-part zip archive; expected a single file');
  let count = tv.getUint16(endAt + 10, true);
  let dirSize = tv.getUint32(endAt + 12, true);
  let dirOffset = tv.getUint32(endAt + 16, true);
  // Every record lies before the central directory, which lies before the end records.
  let dirLimit = endPos;
  if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    if (endPos < 20) fail('zip end record asks for zip64 values but there is no room for the zip64 locator');
    const loc = await readAt(src, endPos - 20, 20);
    const lv = new DataView(loc.buffer, loc.byteOffset, loc.byteLength);
    if (lv.getUint32(0, true) !== SIG_LOCATOR64) fail('zip end record asks for zip64 values but the zip64 locator is missing');
    const end64 = u64(lv, 8, file, 'zip64 end record offset');
    if (end64 + 56 > endPos - 20) fail(`zip64 end record offset ${end64} lies past the locator at ${endPos - 20}`);
    const rec = await readAt(src, end64, 56);
    const rv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    if (rv.getUint32(0, true) !== SIG_END64) fail(`no zip64 end record at offset ${end64}`);
    if (rv.getUint32(16, true) !== 0 || rv.getUint32(20, true) !== 0) fail('is a multi-part zip archive; expected a single file');
    count = u64(rv, 32, file, 'entry count');
    dirSize = u64(rv, 40, file, 'central directory size');
    dirOffset = u64(rv, 48, file, 'central directory offset');
    dirLimit = end64;
  }
  if (dirOffset > dirLimit || dirSize > dirLimit - dirOffset) {
    fail(`zip central directory (offset ${dirOffset}, ${dirSize} bytes) runs past its end record at ${dirLimit} in a file of ${size} bytes (truncated or corrupt archive)`);
  }
  if (dirSize > MAX_DIRECTORY) fail(`zip central directory of ${dirSize} bytes is larger than the ${MAX_DIRECTORY}-byte limit`);
  if (count * 46 > dirSize) fail(`zip end record claims ${count} entries but the central directory holds ${dirSize} bytes (at most ${Math.floor(dirSize / 46)})`);
  const dir = await readAt(src, dirOffset, dirSize);
  if (dir.length !== dirSize) fail(`zip central directory was cut short (${dir.length} of ${dirSize} bytes)`);
  const entries = parseDirectory(dir, count, dirOffset, file);
  return { ...checkNames(entries, file), entries, directoryOffset: dirOffset };
}

function parseDirectory(dir: Uint8Array, count: number, dirOffset: number, file: string): ZipEntry[] {
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  const v = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dir.length || v.getUint32(p, true) !== SIG_CENTRAL) fail(`zip central directory entry ${i} (at offset ${dirOffset + p}) is missing or corrupt`);
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc32 = v.getUint32(p + 16, true);
    let compressedSize = v.getUint32(p + 20, true);
    let size = v.getUint32(p + 24, true);
    const nameLength = v.getUint16(p + 28, true);
    const extraLength = v.getUint16(p + 30, true);
    const commentLength = v.getUint16(p + 32, true);
    const diskStart = v.getUint16(p + 34, true);
    let localHeaderOffset = v.getUint32(p + 42, true);
    const next = p + 46 + nameLength + extraLength + commentLength;
    if (next > dir.length) fail(`zip central directory entry ${i} runs past the end of the directory`);
    const nameBytes = dir.slice(p + 46, p + 46 + nameLength);
    let name: string;
    try {
      name = utf8.decode(nameBytes);
    } catch {
      return fail(`zip entry ${i} has a name that is not valid UTF-8`);
    }
    const shown = JSON.stringify(name);
    if (flags & 1) fail(`zip entry ${shown} is encrypted`);
    // zip64 extra field: the 8-byte values of the saturated slots, in this fixed order.
    let q = p + 46 + nameLength;
    const extraEnd = q + extraLength;
    let zip64Disk = false;
    while (q + 4 <= extraEnd) {
      const id = v.getUint16(q, true);
      const len = v.getUint16(q + 2, true);
      if (q + 4 + len > extraEnd) fail(`zip entry ${shown} has a malformed extra field`);
      if (id === 0x0001) {
        let r = q + 4;
        const take = (what: string): number => {
          if (r + 8 > q + 4 + len) fail(`zip entry ${shown} has a zip64 extra field too short for its ${what}`);
          const x = u64(v, r, file, `${what} of ${shown}`);
          r += 8;
          return x;
        };
        if (size === 0xffffffff) size = take('size');
        if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take('local header offset');
        zip64Disk = diskStart === 0xffff;
      }
      q += 4 + len;
    }
    if (diskStart !== 0 && !zip64Disk) fail(`zip entry ${shown} lies on disk ${diskStart}; expected a single-file archive`);
    // Bounds from the directory alone: the local header and data lie before the directory.
    if (localHeaderOffset + 30 + nameLength + compressedSize > dirOffset) {
      fail(`zip entry ${shown} (local header at ${localHeaderOffset}, ${compressedSize} bytes) runs past the central directory at ${dirOffset} (truncated or corrupt archive)`);
    }
    entries.push({ name, record: '', method, crc32, compressedSize, size, localHeaderOffset, nameBytes });
    p = next;
  }
  return entries;
}

/** The entry-name rules; returns the folder and the records by relative name. */
function checkNames(entries: ZipEntry[], file: string): { folder: string; records: Map<string, ZipEntry> } {
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  if (entries.length === 0) fail('zip archive has no entries; expected data.pkl and data/ records');
  const seen = new Set<string>();
  for (const e of entries) {
    const shown = JSON.stringify(e.name);
    if (e.name.includes('\\')) fail(`zip entry ${shown} contains a backslash; expected '/'-separated relative names`);
    if (e.name.startsWith('/') || /^[A-Za-z]:/.test(e.name)) fail(`zip entry ${shown} is an absolute path; expected names relative to the archive`);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (/[\u0000-\u001f\u007f]/.test(e.name)) fail(`zip entry ${shown} contains control characters`);
    for (const s of (e.name.endsWith('/') ? e.name.slice(0, -1) : e.name).split('/')) {
      if (s === '..' || s === '.') fail(`zip entry ${shown} has a ${JSON.stringify(s)} segment; expected plain relative names`);
      if (s === '') fail(`zip entry ${shown} has an empty path segment`);
    }
    if (seen.has(e.name)) fail(`zip entry ${shown} appears twice; each record must be stored once`);
    seen.add(e.name);
  }
  const first = entries[0].name;
  const slash = first.indexOf('/');
  if (slash < 0) fail(`zip entry ${JSON.stringify(first)} is not inside a folder; a torch archive keeps every record under one top-level folder`);
  const folder = first.slice(0, slash);
  const records = new Map<string, ZipEntry>();
  for (const e of entries) {
    const shown = JSON.stringify(e.name);
    if (!e.name.startsWith(`${folder}/`)) fail(`zip entry ${shown} is outside the archive's top-level folder ${JSON.stringify(`${folder}/`)}`);
    if (e.name.endsWith('/')) {
      if (e.size !== 0) fail(`zip entry ${shown} is a folder with ${e.size} bytes of data`);
      continue;
    }
    const record = e.name.slice(folder.length + 1);
    (e as { record: string }).record = record;
    records.set(record, e);
  }
  return { folder, records };
}

/** The absolute offset of a record's data, from its local header (read and checked here). */
export async function recordDataOffset(src: ByteSource, file: string, archive: ZipArchive, e: ZipEntry): Promise<number> {
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  const head = await readAt(src, e.localHeaderOffset, 30 + e.nameBytes.length);
  const shown = JSON.stringify(e.name);
  if (head.length < 30 + e.nameBytes.length) fail(`zip local header of ${shown} at ${e.localHeaderOffset} is cut short (truncated file?)`);
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (v.getUint32(0, true) !== SIG_LOCAL) fail(`no zip local header for ${shown} at offset ${e.localHeaderOffset} (corrupt archive)`);
  if (v.getUint16(8, true) !== e.method) fail(`zip local header of ${shown} disagrees with the directory on the compression method`);
  const nameLength = v.getUint16(26, true);
  const extraLength = v.getUint16(28, true);
  if (nameLength !== e.nameBytes.length || head.subarray(30).some((b, i) => b !== e.nameBytes[i])) {
    fail(`zip local header at ${e.localHeaderOffset} names another entry than the directory's ${shown}`);
  }
  const data = e.localHeaderOffset + 30 + nameLength + extraLength;
  if (data + e.compressedSize > archive.directoryOffset) {
    fail(`zip record ${shown} (${e.compressedSize} bytes at ${data}) runs into the central directory at ${archive.directoryOffset}`);
  }
  return data;
}

/** A STORED record's bytes, whole and CRC-checked (only small records: data.pkl, constants.pkl, byteorder). */
export async function readRecord(src: ByteSource, file: string, archive: ZipArchive, e: ZipEntry, maxBytes: number): Promise<Uint8Array> {
  checkStored(file, e);
  if (e.size > maxBytes) throw new TorchFormatError(file, `record ${JSON.stringify(e.name)} is ${e.size} bytes, more than the ${maxBytes}-byte limit for it`);
  const at = await recordDataOffset(src, file, archive, e);
  const bytes = await readAt(src, at, e.size);
  if (bytes.length !== e.size) throw new TorchFormatError(file, `record ${JSON.stringify(e.name)} is cut short (truncated file?)`);
  // Records read whole are small: their checksum is cheap, and a corrupt pickle is better refused here.
  const crc = crc32(bytes);
  if (crc !== e.crc32) {
    throw new TorchFormatError(file, `record ${JSON.stringify(e.name)} fails its CRC-32 check (${crc.toString(16)}, the directory says ${e.crc32.toString(16)}); the file is corrupt`);
  }
  return bytes;
}

export function checkStored(file: string, e: ZipEntry): void {
  if (e.method !== 0) {
    throw new TorchFormatError(file, `record ${JSON.stringify(e.name)} is compressed (zip method ${e.method}); torch stores the records a reader needs uncompressed (method 0)`);
  }
  if (e.compressedSize !== e.size) {
    throw new TorchFormatError(file, `stored record ${JSON.stringify(e.name)} has compressed size ${e.compressedSize} but size ${e.size}; they must be equal`);
  }
}
