// Synthetic SentencePiece models written as ModelProto bytes by a tiny protobuf writer: byte
// fallback, user-defined, unused and control pieces in a handful of entries.
const textEncoder = new TextEncoder();

export function varint(v: number): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, BigInt(v));
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
  return out;
}
const tag = (f: number, w: number) => varint((f << 3) | w);
export const vField = (f: number, v: number) => [...tag(f, 0), ...varint(v)];
export const bField = (f: number, bytes: ArrayLike<number>) => [...tag(f, 2), ...varint(bytes.length), ...Array.from(bytes)];
export const sField = (f: number, s: string) => bField(f, textEncoder.encode(s));
export const fField = (f: number, x: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, x, true);
  return [...tag(f, 5), ...b];
};

/** [piece, score, type] with type as in sentencepiece_model.proto (1 normal ... 6 byte) */
export type P = [piece: string, score: number, type: number];

/** A unigram model with the identity normaliser: pad 0, eos 1, unk 2, no bos. */
export function modelProto(pieces: P[], byteFallback: boolean): Uint8Array {
  const out: number[] = [];
  for (const [p, s, t] of pieces) out.push(...bField(1, [...sField(1, p), ...fField(2, s), ...vField(3, t)]));
  out.push(...bField(2, [...vField(3, 1), ...vField(4, pieces.length), ...vField(35, byteFallback ? 1 : 0),
    ...vField(40, 2), ...vField(41, -1), ...vField(42, 1), ...vField(43, 0)]));
  out.push(...bField(3, [...sField(1, 'identity'), ...vField(3, 1), ...vField(4, 1), ...vField(5, 1)]));
  return Uint8Array.from(out);
}

export const BASE: P[] = [['<pad>', 0, 3], ['</s>', 0, 3], ['<unk>', 0, 2]];
export const WORDS: P[] = [['▁', -2, 1], ['a', -3, 1], ['b', -3, 1], ['ab', -4, 1], ['▁a', -3.5, 1], ['<sep>', 0, 4], ['c', -3, 1],
  ['abc', -1, 5], ['▁b', -3, 1], ['é', -5, 1]];
export const BYTES: P[] = Array.from({ length: 256 }, (_, i) => [`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`, 0, 6]);
