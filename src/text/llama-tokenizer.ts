// The Llama-2 tokenizer (LlamaGuard-7b's tokenizer.model): SentencePiece BPE with byte fallback,
// encoded as transformers' LlamaTokenizerFast does with add_special_tokens=False:
//
//   * the control pieces written in the text (<s>, </s>) are cut out first and become their ids;
//   * every other stretch of text gets the dummy prefix "▁" and its spaces become "▁";
//   * the stretch starts as one symbol per character and the adjacent pair whose concatenation is
//     a piece of the highest score merges, leftmost among equals, until no pair is a piece
//     (sentencepiece bpe_model.cc; tokenizers' merges follow the same scores);
//   * a final symbol that is no piece becomes the <0xNN> pieces of its UTF-8 bytes (byte fallback)
//     or <unk>.
// Decoding with skip_special_tokens drops control and unknown ids, joins byte pieces into UTF-8,
// turns "▁" into spaces and removes one leading space.
import { type FileSystem, fileSystem, readBytes } from '../io/files.js';
import { SentencePieceModelError } from './errors.js';
import { MODEL_TYPE_NAMES, type ModelProto, PieceType, parseModelProto } from './sentencepiece-model.js';
import { utf8Decoder, utf8Encoder } from './utf8.js';

const BPE = 2;
const SPACE = '\u2581';

export class LlamaTokenizer {
  private readonly ids = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly special: { text: string; id: number }[] = [];
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;

  constructor(readonly model: ModelProto) {
    const { pieces, trainerSpec, normalizerSpec } = model;
    if (trainerSpec.modelType !== BPE) {
      throw new SentencePieceModelError(`model_type: ${MODEL_TYPE_NAMES[trainerSpec.modelType] || trainerSpec.modelType} is not BPE (the Llama tokenizer is a BPE model)`);
    }
    if (normalizerSpec.precompiledCharsmap.length) throw new SentencePieceModelError('normalizer_spec: a precompiled charsmap is not supported (Llama\'s is the identity)');
    if (normalizerSpec.removeExtraWhitespaces) throw new SentencePieceModelError('normalizer_spec: remove_extra_whitespaces is not supported (Llama keeps whitespace)');
    let unk = -1;
    pieces.forEach((p, id) => {
      if (p.type === PieceType.BYTE) {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(p.piece);
        if (!m) throw new SentencePieceModelError(`byte piece ${id}: not of the form <0xNN> (${JSON.stringify(p.piece)})`);
        this.byteIds[Number.parseInt(m[1], 16)] = id;
        return;
      }
      if (p.type === PieceType.UNKNOWN) unk = id;
      if (p.type === PieceType.CONTROL) {
        // only named control pieces are matched in text (the fast tokenizer's special tokens)
        if (p.piece.length) this.special.push({ text: p.piece, id });
        return;
      }
      if (p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED) this.ids.set(p.piece, id);
    });
    if (unk < 0) throw new SentencePieceModelError('<unk>: the model defines no such piece');
    this.unkId = unk;
    this.special.push({ text: pieces[unk].piece, id: unk });
    this.special.sort((a, b) => b.text.length - a.text.length);
    this.bosId = this.special.find((s) => s.text === trainerSpec.bosPiece)?.id ?? -1;
    this.eosId = this.special.find((s) => s.text === trainerSpec.eosPiece)?.id ?? -1;
  }

  static fromBytes(bytes: Uint8Array): LlamaTokenizer {
    return new LlamaTokenizer(parseModelProto(bytes));
  }

  static async load(path: string, fs: FileSystem = fileSystem()): Promise<LlamaTokenizer> {
    const bytes = await readBytes(path, fs);
    try {
      return LlamaTokenizer.fromBytes(bytes);
    } catch (e) {
      if (e instanceof SentencePieceModelError) e.message = `${path}: ${e.message}`;
      throw e;
    }
  }

  private score(id: number): number {
    return this.model.pieces[id].score;
  }

  /** Ids of one stretch of text without special tokens. */
  private encodeStretch(text: string, out: number[]): void {
    const ns = this.model.normalizerSpec;
    let s = ns.escapeWhitespaces ? text.replaceAll(' ', SPACE) : text;
    if (ns.addDummyPrefix) s = (ns.escapeWhitespaces ? SPACE : ' ') + s;
    const sym = [...s];
    for (;;) {
      let best = -1;
      let bestScore = -Infinity;
      for (let i = 0; i + 1 < sym.length; i++) {
        const id = this.ids.get(sym[i] + sym[i + 1]);
        if (id !== undefined && this.score(id) > bestScore) {
          best = i;
          bestScore = this.score(id);
        }
      }
      if (best < 0) break;
      sym.splice(best, 2, sym[best] + sym[best + 1]);
    }
    for (const p of sym) {
      const id = this.ids.get(p);
      if (id !== undefined) out.push(id);
      else if (this.byteIds[0] >= 0) for (const b of utf8Encoder.encode(p)) out.push(this.byteIds[b]);
      else out.push(this.unkId);
    }
  }

  /** Token ids of `text` with add_special_tokens=False (no BOS). */
  encode(text: string): number[] {
    const out: number[] = [];
    let rest = text;
    while (rest.length) {
      let at = -1;
      let hit: { text: string; id: number } | null = null;
      for (const s of this.special) {
        const i = rest.indexOf(s.text);
        if (i >= 0 && (at < 0 || i < at)) {
          at = i;
          hit = s;
        }
      }
      if (!hit) {
        this.encodeStretch(rest, out);
        break;
      }
      if (at > 0) this.encodeStretch(rest.slice(0, at), out);
      out.push(hit.id);
      rest = rest.slice(at + hit.text.length);
    }
    return out;
  }

  /** decode(ids, skip_special_tokens=True). */
  decode(ids: Iterable<number>): string {
    const bytes: number[] = [];
    const pieces = this.model.pieces;
    for (const id of ids) {
      const p = pieces[id];
      if (!p) throw new SentencePieceModelError(`decode: id ${id} is outside the vocabulary [0, ${pieces.length})`);
      if (p.type === PieceType.CONTROL || p.type === PieceType.UNKNOWN) continue;
      if (p.type === PieceType.BYTE) bytes.push(Number.parseInt(p.piece.slice(3, 5), 16));
      else bytes.push(...utf8Encoder.encode(p.piece.replaceAll(SPACE, ' ')));
    }
    const text = utf8Decoder.decode(Uint8Array.from(bytes));
    return text.startsWith(' ') ? text.slice(1) : text;
  }
}
