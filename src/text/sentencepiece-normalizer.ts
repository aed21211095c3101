// SentencePiece's normaliser, driven by the model's own precompiled charsmap: a darts-clone
// double-array trie over UTF-8 bytes plus a blob of NUL-terminated replacement strings, applied
// longest match first. Whatever rule set the model was trained with (nmt_nfkc, nfkc_cf, ...) is
// thereby reproduced byte for byte; String.prototype.normalize is never involved. Then, as the
// normaliser spec says: leading, trailing and repeated whitespace removed, the dummy prefix "▁"
// added and spaces escaped as "▁". User-defined symbols are never normalised.
import { ByteTrie } from './byte-trie.js';
import { SentencePieceModelError } from './errors.js';
import type { NormalizerSpec } from './sentencepiece-model.js';
import { REPLACEMENT_BYTES, utf8Decoder, utf8Encoder, validCharLen } from './utf8.js';

const SPACE_SYMBOL = utf8Encoder.encode('\u2581'); // ▁
const SPACE = 0x20;

/** darts-clone double array: common-prefix search over byte keys. */
class DoubleArray {
  constructor(private readonly units: Uint32Array) {}

  /** [value, length] of every key that is a prefix of s[start..end). */
  commonPrefixSearch(s: Uint8Array, start: number, end: number): [number, number][] {
    const u = this.units;
    const res: [number, number][] = [];
    if (u.length === 0) return res;
    let node = 0;
    let unit = u[0];
    node ^= offsetOf(unit);
    for (let i = start; i < end; i++) {
      const c = s[i];
      node ^= c;
      if (node >= u.length) return res;
      unit = u[node];
      // label: the low byte plus the leaf flag (bit 31); a leaf never matches a key byte
      if (((unit & 0x800000ff) >>> 0) !== c) return res;
      node ^= offsetOf(unit);
      if ((unit >>> 8) & 1) {
        if (node >= u.length) return res;
        res.push([u[node] & 0x7fffffff, i - start + 1]);
      }
    }
    return res;
  }
}

function offsetOf(unit: number): number {
  return ((unit >>> 10) << ((unit & (1 << 9)) >>> 6)) >>> 0;
}

export class Normalizer {
  private readonly trie: DoubleArray | null = null;
  private readonly normalized: Uint8Array = new Uint8Array(0);
  private readonly userDefined: ByteTrie | null;

  constructor(readonly spec: NormalizerSpec, userDefined: readonly string[] = []) {
    const blob = spec.precompiledCharsmap;
    if (blob.length > 0) {
      if (blob.length < 4) throw new SentencePieceModelError('precompiled_charsmap: shorter than its 4-byte header');
      const trieSize = new DataView(blob.buffer, blob.byteOffset, 4).getUint32(0, true);
      if (4 + trieSize > blob.length || trieSize % 4 !== 0) {
        throw new SentencePieceModelError(`precompiled_charsmap: trie size ${trieSize} does not fit the ${blob.length}-byte blob`);
      }
      const trieBytes = blob.slice(4, 4 + trieSize);
      this.trie = new DoubleArray(new Uint32Array(trieBytes.buffer, trieBytes.byteOffset, trieSize / 4));
      this.normalized = blob.subarray(4 + trieSize);
    }
    const t = new ByteTrie();
    for (const w of userDefined) t.insert(utf8Encoder.encode(w), 1);
    this.userDefined = t.empty ? null : t;
  }

  /** Normalised bytes and consumed input length of the longest rule at s[i..]. */
  private prefix(s: Uint8Array, i: number): [Uint8Array, number] {
    if (this.userDefined) {
      const n = this.userDefined.longestPrefix(s, i);
      if (n > 0) return [s.subarray(i, i + n), n];
    }
    let bestLen = 0;
    let bestValue = 0;
    if (this.trie) {
      for (const [value, len] of this.trie.commonPrefixSearch(s, i, s.length)) {
        if (len > bestLen) {
          bestLen = len;
          bestValue = value;
        }
      }
    }
    if (bestLen === 0) {
      const n = validCharLen(s, i);
      // a malformed byte becomes U+FFFD and is consumed alone
      return n === 0 ? [REPLACEMENT_BYTES, 1] : [s.subarray(i, i + n), n];
    }
    const blob = this.normalized;
    if (bestValue >= blob.length) throw new SentencePieceModelError(`precompiled_charsmap: rule offset ${bestValue} past the ${blob.length}-byte string table`);
    let end = bestValue;
    while (end < blob.length && blob[end] !== 0) end++;
    return [blob.subarray(bestValue, end), bestLen];
  }

  /** Normalise UTF-8 bytes (as SentencePiece's Normalizer::Normalize). */
  normalizeBytes(input: Uint8Array): Uint8Array {
    const spec = this.spec;
    const out: number[] = [];
    let i = 0;
    const isSingleSpace = (b: Uint8Array) => b.length === 1 && b[0] === SPACE;
    if (spec.removeExtraWhitespaces) {
      while (i < input.length) {
        const [norm, len] = this.prefix(input, i);
        if (!isSingleSpace(norm)) break;
        i += len;
      }
    }
    if (i >= input.length) return new Uint8Array(0);
    const ws = spec.escapeWhitespaces ? SPACE_SYMBOL : Uint8Array.of(SPACE);
    const pushWs = () => { for (const b of ws) out.push(b); };
    if (spec.addDummyPrefix) pushWs();
    let prevSpace = spec.removeExtraWhitespaces;
    while (i < input.length) {
      const [norm, len] = this.prefix(input, i);
      let k = 0;
      if (prevSpace) while (k < norm.length && norm[k] === SPACE) k++;
      if (k < norm.length) {
        for (; k < norm.length; k++) {
          if (spec.escapeWhitespaces && norm[k] === SPACE) pushWs();
          else out.push(norm[k]);
        }
        prevSpace = norm[norm.length - 1] === SPACE;
      }
      i += len;
      if (!spec.removeExtraWhitespaces) prevSpace = false;
    }
    if (spec.removeExtraWhitespaces) {
      const w = ws.length;
      while (out.length >= w && ws.every((b, j) => out[out.length - w + j] === b)) out.length -= w;
    }
    return Uint8Array.from(out);
  }

  normalize(text: string): string {
    return utf8Decoder.decode(this.normalizeBytes(utf8Encoder.encode(text)));
  }
}
