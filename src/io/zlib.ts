// zlib streams (RFC 1950) for PNG, on fflate's pure-JavaScript deflate and inflate, with the
// checksums PNG needs: CRC-32 of each chunk and the stream's Adler-32 (which fflate does not check).
import { Unzlib, unzlibSync, zlibSync } from 'fflate';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC), as PNG chunks use; `crc` continues an earlier value. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Adler-32, the checksum that ends a zlib stream. */
function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  // 5552 bytes is the most that can be summed before b could pass 2^32.
  for (let i = 0; i < bytes.length; ) {
    const end = Math.min(bytes.length, i + 5552);
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** The inflated stream is longer than the caller said it may be. */
export class InflateLimitError extends Error {}

/** Compressed bytes fed to the inflater at a time: a push gives at most ~1032x this (deflate's best ratio, 66 MB) before the bound is checked; smaller pushes cost more copies (16 KiB: +50% time, 64 KiB: +20%). */
const PUSH_BYTES = 64 * 1024;

/** Inflate with the output bounded to `maxBytes`: stops (InflateLimitError) as soon as the stream passes it. */
function inflateBounded(z: Uint8Array, maxBytes: number): Uint8Array {
  const out = new Uint8Array(maxBytes);
  let at = 0;
  const inflater = new Unzlib((chunk) => {
    if (at + chunk.length > maxBytes) throw new InflateLimitError(`inflates to more than the ${maxBytes} bytes expected`);
    out.set(chunk, at);
    at += chunk.length;
  });
  if (z.length === 0) throw new Error('empty zlib stream');
  for (let i = 0; i < z.length; i += PUSH_BYTES) inflater.push(z.subarray(i, i + PUSH_BYTES), i + PUSH_BYTES >= z.length);
  return out.subarray(0, at);
}

/**
 * Inflate a zlib stream; throws an Error saying why when it is not one (corrupt, truncated, bad
 * checksum). With `maxBytes`, the output is never allowed past it (an InflateLimitError as soon as
 * the stream passes it): memory and time stay bounded by what the caller expects.
 */
export function inflateZlib(z: Uint8Array, maxBytes?: number): Uint8Array {
  const raw = maxBytes === undefined ? unzlibSync(z) : inflateBounded(z, maxBytes);
  const n = z.length;
  const stored = n >= 6 ? ((z[n - 4] << 24) | (z[n - 3] << 16) | (z[n - 2] << 8) | z[n - 1]) >>> 0 : -1;
  if (stored !== adler32(raw)) throw new Error('bad Adler-32 checksum (corrupt or truncated data)');
  return raw;
}

/** Deflate `bytes` as a zlib stream at `level` (0-9). */
export function deflateZlib(bytes: Uint8Array, level: number): Uint8Array {
  return zlibSync(bytes, { level: level as 6 });
}
