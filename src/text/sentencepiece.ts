// SentencePiece unigram tokenizer, read from a real `spiece.model` and run as SentencePiece 0.1.x
// does:
//
//   text --normalise--> "▁A▁robot▁arm" --Viterbi over piece scores--> pieces --> ids
//
// * Normalisation: sentencepiece-normalizer.ts (the model's precompiled charsmap).
// * Encoding is the unigram Viterbi on float32 path scores. Candidates at one end position are
//   compared with a strict ">", visiting start positions left to right, so ties go to the
//   earliest start. A character no piece covers becomes <unk> with score min(normal scores) - 10;
//   runs of consecutive unknowns merge into one <unk> (one id), or, when the model has byte
//   pieces (byte_fallback), each unknown character becomes its UTF-8 bytes <0xNN>.
//   User-defined pieces are never split by normalisation and always win (score
//   length * max_score - 0.1, with max_score starting at FLT_MIN as upstream).
// * Decoding: control pieces vanish, <unk> shows as the model's unk surface (" ⁇ "), byte
//   pieces are reassembled into UTF-8 (invalid bytes -> U+FFFD), "▁" becomes " " and the first
//   piece's leading "▁" is dropped.
//
// T5's conventions (append </s>, right-pad with <pad>, truncate) live in t5-tokenizer.ts.
import { type FileSystem, fileSystem, readBytes } from '../io/files.js';
import { ByteTrie } from './byte-trie.js';
import { SentencePieceModelError } from './errors.js';
import {
  MODEL_TYPE_NAMES, type ModelProto, type NormalizerSpec, type Piece, PieceType, type TrainerSpec, UNIGRAM, parseModelProto,
} from './sentencepiece-model.js';
import { Normalizer } from './sentencepiece-normalizer.js';
import { REPLACEMENT_BYTES, concatBytes, leadByteCharLen, utf8Decoder, utf8Encoder, validCharLen } from './utf8.js';

export interface EncodedPiece {
  /** the piece text (for unknowns: the normalised text they cover) */
  piece: string;
  id: number;
}

/** Float32 arithmetic, as the upstream Viterbi accumulates path scores. */
const f32 = Math.fround;
/** The smallest positive normal float32 (C's FLT_MIN): upstream's initial max_score. */
const FLT_MIN = 1.1754943508222875e-38;
const UNK_PENALTY = 10;

export class SentencePieceProcessor {
  readonly pieces: readonly Piece[];
  readonly trainerSpec: TrainerSpec;
  readonly normalizerSpec: NormalizerSpec;
  readonly normalizer: Normalizer;
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  private readonly pieceToIdMap = new Map<string, number>();
  private readonly pieceBytes: Uint8Array[];
  /** the pieces the Viterbi may use (normal, user-defined, unused), by their UTF-8 bytes */
  private readonly trie = new ByteTrie();
  private readonly minScore: number;
  private readonly maxScore: number;
  private readonly byteIds: Int32Array | null;
  private readonly hasDenormalizer: boolean;

  constructor(readonly model: ModelProto) {
    const { pieces, trainerSpec, normalizerSpec } = model;
    this.pieces = pieces;
    this.trainerSpec = trainerSpec;
    this.normalizerSpec = normalizerSpec;
    if (trainerSpec.modelType !== UNIGRAM) {
      const name = MODEL_TYPE_NAMES[trainerSpec.modelType] || trainerSpec.modelType;
      throw new SentencePieceModelError(`model_type: ${name} is not supported (only UNIGRAM, as T5 uses)`);
    }
    if (pieces.length === 0) throw new SentencePieceModelError('pieces: the model has none');
    if (trainerSpec.treatWhitespaceAsSuffix) throw new SentencePieceModelError('treat_whitespace_as_suffix: models with it are not supported');
    let unk = -1;
    let minScore = Infinity;
    let maxScore = FLT_MIN;
    const userDefined: string[] = [];
    const byteIds = new Int32Array(256).fill(-1);
    let hasBytes = false;
    this.pieceBytes = pieces.map((p) => utf8Encoder.encode(p.piece));
    pieces.forEach((p, id) => {
      if (!p.piece) throw new SentencePieceModelError(`piece ${id}: is empty`);
      if (!(p.type in PieceType)) throw new SentencePieceModelError(`piece ${id} (${JSON.stringify(p.piece)}): unknown type ${p.type}`);
      if (this.pieceToIdMap.has(p.piece)) throw new SentencePieceModelError(`piece ${JSON.stringify(p.piece)}: defined twice (ids ${this.pieceToIdMap.get(p.piece)} and ${id})`);
      this.pieceToIdMap.set(p.piece, id);
      if (p.type === PieceType.UNKNOWN) {
        if (unk >= 0) throw new SentencePieceModelError(`<unk>: defined twice (ids ${unk} and ${id})`);
        unk = id;
      }
      if (p.type === PieceType.NORMAL) {
        minScore = Math.min(minScore, p.score);
        maxScore = Math.max(maxScore, p.score);
      }
      if (p.type === PieceType.USER_DEFINED) userDefined.push(p.piece);
      if (p.type === PieceType.BYTE) {
        const b = pieceToByte(p.piece);
        if (b < 0) throw new SentencePieceModelError(`byte piece ${id}: not of the form <0xNN> (${JSON.stringify(p.piece)})`);
        byteIds[b] = id;
        hasBytes = true;
      }
      if (p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED || p.type === PieceType.UNUSED) {
        this.trie.insert(this.pieceBytes[id], id);
      }
    });
    if (unk < 0) throw new SentencePieceModelError('<unk>: the model defines no such piece');
    if (hasBytes && !trainerSpec.byteFallback) throw new SentencePieceModelError('byte_fallback: off, but the model has byte pieces');
    if (trainerSpec.byteFallback) {
      const missing = [...byteIds].findIndex((v) => v < 0);
      if (missing >= 0) throw new SentencePieceModelError(`byte_fallback: on, but the byte piece <0x${hex2(missing)}> is missing`);
    }
    this.unkId = unk;
    this.minScore = minScore === Infinity ? 0 : minScore;
    this.maxScore = maxScore;
    this.byteIds = trainerSpec.byteFallback ? byteIds : null;
    const control = (piece: string) => {
      const id = this.pieceToIdMap.get(piece);
      return id !== undefined && pieces[id].type === PieceType.CONTROL ? id : -1;
    };
    this.bosId = control(trainerSpec.bosPiece);
    this.eosId = control(trainerSpec.eosPiece);
    this.padId = control(trainerSpec.padPiece);
    this.normalizer = new Normalizer(normalizerSpec, userDefined);
    this.hasDenormalizer = (model.denormalizerSpec?.precompiledCharsmap.length ?? 0) > 0;
  }

  static fromBytes(bytes: Uint8Array): SentencePieceProcessor {
    return new SentencePieceProcessor(parseModelProto(bytes));
  }

  /** Read a `.model` file (a FileError names it when it cannot be read). */
  static async load(path: string, fs: FileSystem = fileSystem()): Promise<SentencePieceProcessor> {
    const bytes = await readBytes(path, fs);
    try {
      return SentencePieceProcessor.fromBytes(bytes);
    } catch (e) {
      if (e instanceof SentencePieceModelError) e.message = `${path}: ${e.message}`;
      throw e;
    }
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  pieceToId(piece: string): number {
    return this.pieceToIdMap.get(piece) ?? this.unkId;
  }

  idToPiece(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
      throw new RangeError(`sentencepiece: id ${id} is outside [0, ${this.pieces.length})`);
    }
    return this.pieces[id].piece;
  }

  isControl(id: number): boolean {
    return this.pieces[id]?.type === PieceType.CONTROL;
  }
  isUnknown(id: number): boolean {
    return this.pieces[id]?.type === PieceType.UNKNOWN;
  }
  isByte(id: number): boolean {
    return this.pieces[id]?.type === PieceType.BYTE;
  }

  normalize(text: string): string {
    return this.normalizer.normalize(text);
  }

  /** Best segmentation of normalised bytes: [start, end, id] per piece (unknowns one character each). */
  private viterbi(s: Uint8Array): [number, number, number][] {
    const n = s.length;
    const score = new Float64Array(n + 1);
    const from = new Int32Array(n + 1).fill(-1);
    const ids = new Int32Array(n + 1).fill(-1);
    const unkScore = f32(this.minScore - UNK_PENALTY);
    let start = 0;
    while (start < n) {
      const base = score[start];
      const mblen = Math.min(leadByteCharLen(s[start]), n - start);
      let hasSingle = false;
      let level = this.trie.root;
      for (let k = start; k < n; k++) {
        const node = level.get(s[k]);
        if (!node) break;
        level = node.next;
        const id = node.value;
        if (id < 0) continue;
        const p = this.pieces[id];
        if (p.type === PieceType.UNUSED) continue;
        const end = k + 1;
        const len = end - start;
        // Upstream's piece score is a double (the user-defined bonus, length * max_score - 0.1, is
        // one and makes the other branch one too), so the candidate is compared unrounded with the
        // float32 score stored at `end`. This decides exact float32 ties ("0"+"00" vs "00"+"0").
        const pieceScore = p.type === PieceType.USER_DEFINED ? f32(len * this.maxScore) - 0.1 : p.score;
        const cand = pieceScore + base;
        if (from[end] < 0 || cand > score[end]) {
          score[end] = f32(cand);
          from[end] = start;
          ids[end] = id;
        }
        if (len === mblen) hasSingle = true;
      }
      if (!hasSingle) {
        const end = start + mblen;
        const cand = f32(unkScore + base);
        if (from[end] < 0 || cand > score[end]) {
          score[end] = cand;
          from[end] = start;
          ids[end] = this.unkId;
        }
      }
      start += mblen;
    }
    const out: [number, number, number][] = [];
    for (let end = n; end > 0; end = from[end]) {
      if (from[end] < 0) throw new Error(`sentencepiece: no path reaches byte ${end} (internal error)`);
      out.push([from[end], end, ids[end]]);
    }
    return out.reverse();
  }

  /** Pieces of a text with their ids, as SentencePieceProcessor::Encode (unknown runs merged, or split into bytes under byte_fallback). */
  encodePieces(text: string): EncodedPiece[] {
    const s = this.normalizer.normalizeBytes(utf8Encoder.encode(text));
    const out: EncodedPiece[] = [];
    let prevUnk = false;
    for (const [a, b, id] of this.viterbi(s)) {
      const w = s.subarray(a, b);
      const isUnk = id === this.unkId;
      if (isUnk && this.byteIds) {
        for (const byte of w) out.push({ piece: `<0x${hex2(byte)}>`, id: this.byteIds[byte] });
      } else if (isUnk && prevUnk) {
        const last = out[out.length - 1];
        last.piece += utf8Decoder.decode(w);
      } else {
        out.push({ piece: utf8Decoder.decode(w), id });
      }
      prevUnk = isUnk;
    }
    return out;
  }

  encode(text: string): number[] {
    return this.encodePieces(text).map((p) => p.id);
  }

  encodeAsPieces(text: string): string[] {
    return this.encodePieces(text).map((p) => p.piece);
  }

  /** Text of a sequence of ids (SentencePieceProcessor::Decode). */
  decode(ids: readonly number[]): string {
    return this.decodePieces(ids.map((id) => this.idToPiece(id)));
  }

  /** Text of a sequence of pieces; a piece not in the vocabulary counts as unknown and shows as itself. */
  decodePieces(pieces: readonly string[]): string {
    if (this.hasDenormalizer) throw new SentencePieceModelError('denormalizer_spec: decoding with its charsmap is not supported');
    const spec = this.normalizerSpec;
    const stripBos = spec.addDummyPrefix || spec.removeExtraWhitespaces;
    const parts: Uint8Array[] = [];
    let bytes: number[] = [];
    let atBos = true;
    const flushBytes = () => {
      let i = 0;
      const b = Uint8Array.from(bytes);
      while (i < b.length) {
        const n = validCharLen(b, i);
        const piece = n === 0 ? REPLACEMENT_BYTES : b.subarray(i, i + n);
        parts.push(piece);
        atBos = false;
        i += n === 0 ? 1 : n;
      }
      bytes = [];
    };
    for (const w of pieces) {
      const id = this.pieceToId(w);
      if (this.isByte(id)) {
        bytes.push(pieceToByte(w));
        continue;
      }
      flushBytes();
      let surface: string;
      // the piece consumed the dummy-prefix "▁" at the start of the text
      let hadBosWs = false;
      if (this.isControl(id)) surface = '';
      else if (this.isUnknown(id)) surface = w === this.pieces[id].piece ? this.trainerSpec.unkSurface : w;
      else {
        let p = w;
        if (atBos && stripBos && p.startsWith('\u2581')) {
          p = p.slice(1);
          // with remove_extra_whitespaces every leading "▁" is dropped, not just the first
          hadBosWs = !spec.removeExtraWhitespaces;
        }
        surface = p.replaceAll('\u2581', ' ');
      }
      const enc = utf8Encoder.encode(surface);
      parts.push(enc);
      if (atBos && (enc.length > 0 || hadBosWs)) atBos = false;
    }
    flushBytes();
    return utf8Decoder.decode(concatBytes(parts));
  }
}

function hex2(b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0');
}

/** <0xNN> -> NN, or -1. */
function pieceToByte(piece: string): number {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
  return m ? parseInt(m[1], 16) : -1;
}

