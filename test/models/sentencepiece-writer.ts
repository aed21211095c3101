// A SentencePiece BPE ModelProto for tests (a minimal protobuf writer): the Llama-2 tokenizer's
// tokenizer.model shape (dummy prefix, escaped spaces, byte fallback when byte pieces are given).

function varint(v: number): number[] {
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
const field = (f: number, w: number, body: number[]) => [...varint((f << 3) | w), ...body];
const vf = (f: number, v: number) => field(f, 0, varint(v));
const bf = (f: number, bytes: ArrayLike<number>) => field(f, 2, [...varint(bytes.length), ...Array.from(bytes)]);
const sf = (f: number, s: string) => bf(f, new TextEncoder().encode(s));
const ff = (f: number, x: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, x, true);
  return field(f, 5, [...b]);
};

/** [piece, score, type]: 1 normal, 2 unknown, 3 control, 6 byte */
export type Piece = [piece: string, score: number, type: number];

/** The ModelProto bytes of a BPE model with these pieces (ids in order; unk 0, bos 1, eos 2). */
export function sentencePieceModel(pieces: readonly Piece[]): Uint8Array {
  const out: number[] = [];
  for (const [p, s, t] of pieces) out.push(...bf(1, [...sf(1, p), ...ff(2, s), ...vf(3, t)]));
  out.push(...bf(2, [...vf(3, 2), ...vf(4, pieces.length), ...vf(35, 1), ...vf(40, 0), ...vf(41, 1), ...vf(42, 2), ...vf(43, -1)]));
  out.push(...bf(3, [...sf(1, 'identity'), ...vf(3, 1), ...vf(4, 0), ...vf(5, 1)]));
  return Uint8Array.from(out);
}
