// UTF-8 at the byte level, as SentencePiece and byte-level BPE see text.

export const utf8Encoder = new TextEncoder();
/** Lenient (invalid sequences become U+FFFD, as Rust's from_utf8_lossy) and keeping a leading U+FEFF. */
export const utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** U+FFFD, the replacement for a malformed sequence. */
export const REPLACEMENT_BYTES = utf8Encoder.encode('\ufffd');

/** Bytes of the UTF-8 character starting with lead byte b, judged by the lead byte alone (as SentencePiece does). */
export function leadByteCharLen(b: number): number {
  return b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
}

/** Length of the valid UTF-8 character at s[i], or 0 when it is malformed. */
export function validCharLen(s: Uint8Array, i: number): number {
  const b0 = s[i];
  if (b0 < 0x80) return 1;
  const need = b0 >= 0xc2 && b0 <= 0xdf ? 2 : b0 >= 0xe0 && b0 <= 0xef ? 3 : b0 >= 0xf0 && b0 <= 0xf4 ? 4 : 0;
  if (!need || i + need > s.length) return 0;
  for (let k = 1; k < need; k++) if ((s[i + k] & 0xc0) !== 0x80) return 0;
  const b1 = s[i + 1];
  if (b0 === 0xe0 && b1 < 0xa0) return 0; // overlong
  if (b0 === 0xed && b1 >= 0xa0) return 0; // surrogate
  if (b0 === 0xf0 && b1 < 0x90) return 0; // overlong
  if (b0 === 0xf4 && b1 >= 0x90) return 0; // > U+10FFFF
  return need;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
