// A SentencePiece BPE ModelProto for tests (a minimal protobuf writer): the Llama-2 tokenizer's
// tokenizer.model shape (dummy prefix, escaped spaces, byte fallback when byte pieces are given).

import { bField as bf, fField as ff, sField as sf, vField as vf } from '../text/model-proto.js';

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
