// zlib streams (RFC 1950) for PNG, on fflate's pure-JavaScript deflate and inflate, with the
// checksums PNG needs: CRC-32 of each chunk and the stream's Adler-32 (which fflate does not check).
import { unzlibSync, zlibSync } from 'fflate';

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

/** Inflate a zlib stream; throws an Error saying why when it is not one (corrupt, truncated, bad checksum). */
export function inflateZlib(z: Uint8Array): Uint8Array {
  const raw = unzlibSync(z);
  const n = z.length;
  const stored = n >= 6 ? ((z[n - 4] << 24) | (z[n - 3] << 16) | (z[n - 2] << 8) | z[n - 1]) >>> 0 : -1;
  if (stored !== adler32(raw)) throw new Error('bad Adler-32 checksum (corrupt or truncated data)');
  return raw;
}

/** Deflate `bytes` as a zlib stream at `level` (0-9). */
export function deflateZlib(bytes: Uint8Array, level: number): Uint8Array {
  return zlibSync(bytes, { level: level as 6 });
}
