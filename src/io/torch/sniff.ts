// Which kind of weights file this is, from its first bytes (spec §2): a zip archive (torch.save
// since 1.6, or TorchScript: told apart by the directory), the legacy torch.save stream, or a
// safetensors file. Anything else, a zero-filled placeholder included, is none of them.
import { type FileSystem, fileSystem } from '../files.js';
import type { ByteSource } from '../safetensors/header.js';
import { readZipDirectory } from './zip.js';

export type WeightsFormat = 'zip' | 'torchscript' | 'legacy' | 'safetensors';

/** Bytes torchFormatOf looks at. */
export const SNIFF_BYTES = 16;

/** The format the first bytes announce: 'zip' for any zip archive (see sniffCheckpointFormat), or null. */
export function torchFormatOf(first: Uint8Array): 'zip' | 'legacy' | 'safetensors' | null {
  if (first.length >= 4 && first[0] === 0x50 && first[1] === 0x4b && first[2] === 0x03 && first[3] === 0x04) return 'zip';
  if (first.length >= 2 && first[0] === 0x80 && first[1] === 0x02) return 'legacy';
  if (first.length >= 9 && first[8] === 0x7b) {
    // safetensors: u64 LE header length, then the JSON header's '{'
    const v = new DataView(first.buffer, first.byteOffset, first.byteLength);
    const n = v.getBigUint64(0, true);
    if (n >= 2n && n <= 100_000_000n) return 'safetensors';
  }
  return null;
}

/** A one-line account of bytes that are none of the formats, for messages. */
export function describeForeign(first: Uint8Array, size: number): string {
  if (size === 0) return 'the file is empty';
  if (first.every((b) => b === 0)) return `its first ${first.length} bytes are all zero: a placeholder or an unfinished download`;
  const hex = [...first.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `it starts with bytes ${hex}`;
}

/** The expected magic bytes, for messages. */
export const EXPECTED_MAGIC = 'expected a torch.save / torch.jit.save zip archive (starting PK\\x03\\x04) or a legacy torch.save stream (starting \\x80\\x02)';

async function sniffSource(src: ByteSource, file: string): Promise<WeightsFormat | null> {
  const first = new Uint8Array(Math.min(SNIFF_BYTES, src.size));
  await src.read(0, first);
  const f = torchFormatOf(first);
  if (f !== 'zip') return f;
  try {
    const archive = await readZipDirectory(src, file);
    return isTorchScript(archive.records) ? 'torchscript' : 'zip';
  } catch {
    return 'zip';
  }
}

/** TorchScript archives have constants.pkl or code/ records (spec §2). */
export function isTorchScript(records: ReadonlyMap<string, unknown>): boolean {
  if (records.has('constants.pkl')) return true;
  for (const r of records.keys()) if (r.startsWith('code/')) return true;
  return false;
}

/** The format of the file at `path` from its magic bytes (and, for a zip, its directory); null when none. */
export async function sniffCheckpointFormat(path: string, fs: FileSystem = fileSystem()): Promise<WeightsFormat | null> {
  const f = await fs.open(path);
  try {
    return await sniffSource(f, path);
  } finally {
    await f.close();
  }
}
