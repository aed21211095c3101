// SentencePiece unigram tokenizer, read from a real `spiece.model` (a ModelProto protobuf) and
// run as SentencePiece 0.1.x does:
//
//   text --normalise--> "▁A▁robot▁arm" --Viterbi over piece scores--> pieces --> ids
//
// * Normalisation uses the model's own precompiled charsmap (a darts-clone double-array trie
//   over UTF-8 bytes plus a blob of NUL-terminated replacement strings), longest match first,
//   so whatever rule set the model was trained with (nmt_nfkc, nfkc_cf, ...) is reproduced
//   byte for byte; no String.prototype.normalize is involved. Then: leading/trailing/repeated
//   whitespace removal, the dummy prefix "▁" and spaces escaped as "▁", as the normaliser spec
//   says.
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
// T5 conventions (append </s>, right-pad with <pad>, truncate) live in `T5Tokenizer` below.
import { readFile } from 'node:fs/promises';
import { UserError } from '../engine/errors.js';

// ------------------------------------------------------------------ protobuf wire format

export class SentencePieceModelError extends UserError {
  override name = 'SentencePieceModelError';
}

/** One field of a protobuf message: varints as [lo, hi] 32-bit halves, the rest as bytes. */
interface WireField {
  field: number;
  wire: number;
  lo: number;
  hi: number;
  bytes: Uint8Array | null;
}

/** Minimal protobuf reader: splits a message into its fields (unknown ones are kept and ignored by the caller). */
function readMessage(buf: Uint8Array, what: string): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  const fail = (msg: string): never => {
    throw new SentencePieceModelError(`${what}: malformed protobuf at byte ${pos}: ${msg}`);
  };
  const varint = (): [number, number] => {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) fail('truncated varint');
      const b = buf[pos++];
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= (bits & 0x0f) << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (!(b & 0x80)) return [lo >>> 0, hi >>> 0];
    }
    return fail('varint longer than 10 bytes');
  };
  while (pos < buf.length) {
    const [tag, tagHi] = varint();
    if (tagHi !== 0) fail('field tag out of range');
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) fail('field number 0');
    switch (wire) {
      case 0: {
        const [lo, hi] = varint();
        out.push({ field, wire, lo, hi, bytes: null });
        break;
      }
      case 1:
        if (pos + 8 > buf.length) fail('truncated fixed64');
        out.push({ field, wire, lo: 0, hi: 0, bytes: buf.subarray(pos, pos + 8) });
        pos += 8;
        break;
      case 2: {
        const [len, lenHi] = varint();
        if (lenHi !== 0 || pos + len > buf.length) fail(`length-delimited field ${field} runs past the end`);
        out.push({ field, wire, lo: 0, hi: 0, bytes: buf.subarray(pos, pos + len) });
        pos += len;
        break;
      }
      case 5:
        if (pos + 4 > buf.length) fail('truncated fixed32');
        out.push({ field, wire, lo: 0, hi: 0, bytes: buf.subarray(pos, pos + 4) });
        pos += 4;
        break;
      default:
        fail(`unsupported wire type ${wire} (field ${field})`);
    }
  }
  return out;
}

// ignoreBOM: keep a U+FEFF at the start of a piece (by default TextDecoder would drop it)
const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const encoder = new TextEncoder();

function expectWire(f: WireField, wire: number, what: string): void {
  if (f.wire !== wire) throw new SentencePieceModelError(`${what}: field ${f.field} has wire type ${f.wire}, expected ${wire}`);
}
const asString = (f: WireField, what: string): string => {
  expectWire(f, 2, what);
  return utf8.decode(f.bytes!);
};
const asBool = (f: WireField, what: string): boolean => {
  expectWire(f, 0, what);
  return f.lo !== 0 || f.hi !== 0;
};
/** int32 / enum: the low 32 bits, two's complement (negative values are sign-extended varints). */
const asInt32 = (f: WireField, what: string): number => {
  expectWire(f, 0, what);
  return f.lo | 0;
};
const asFloat = (f: WireField, what: string): number => {
  expectWire(f, 5, what);
  return new DataView(f.bytes!.buffer, f.bytes!.byteOffset, 4).getFloat32(0, true);
};

// ------------------------------------------------------------------ model proto

export enum PieceType {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export interface Piece {
  piece: string;
  score: number;
  type: PieceType;
}

export enum ModelType {
  UNIGRAM = 1,
  BPE = 2,
  WORD = 3,
  CHAR = 4,
}

export interface TrainerSpec {
  modelType: ModelType;
  vocabSize: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  unkSurface: string;
}

export interface NormalizerSpec {
  name: string;
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface ModelProto {
  pieces: Piece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
  /** present when the model has a denormaliser with rules of its own */
  denormalizerSpec: NormalizerSpec | null;
}

function defaultTrainerSpec(): TrainerSpec {
  return {
    modelType: ModelType.UNIGRAM, vocabSize: 8000, byteFallback: false, treatWhitespaceAsSuffix: false,
    unkId: 0, bosId: 1, eosId: 2, padId: -1,
    unkPiece: '<unk>', bosPiece: '<s>', eosPiece: '</s>', padPiece: '<pad>', unkSurface: ' \u2047 ',
  };
}

function defaultNormalizerSpec(): NormalizerSpec {
  return { name: '', precompiledCharsmap: new Uint8Array(0), addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true };
}

function parsePiece(buf: Uint8Array, i: number): Piece {
  const what = `piece ${i}`;
  const p: Piece = { piece: '', score: 0, type: PieceType.NORMAL };
  for (const f of readMessage(buf, what)) {
    if (f.field === 1) p.piece = asString(f, what);
    else if (f.field === 2) p.score = asFloat(f, what);
    else if (f.field === 3) p.type = asInt32(f, what) as PieceType;
  }
  return p;
}

function parseTrainerSpec(buf: Uint8Array): TrainerSpec {
  const what = 'trainer_spec';
  const t = defaultTrainerSpec();
  for (const f of readMessage(buf, what)) {
    switch (f.field) {
      case 3: t.modelType = asInt32(f, what) as ModelType; break;
      case 4: t.vocabSize = asInt32(f, what); break;
      case 24: t.treatWhitespaceAsSuffix = asBool(f, what); break;
      case 35: t.byteFallback = asBool(f, what); break;
      case 40: t.unkId = asInt32(f, what); break;
      case 41: t.bosId = asInt32(f, what); break;
      case 42: t.eosId = asInt32(f, what); break;
      case 43: t.padId = asInt32(f, what); break;
      case 44: t.unkSurface = asString(f, what); break;
      case 45: t.unkPiece = asString(f, what); break;
      case 46: t.bosPiece = asString(f, what); break;
      case 47: t.eosPiece = asString(f, what); break;
      case 48: t.padPiece = asString(f, what); break;
      default: break;
    }
  }
  return t;
}

function parseNormalizerSpec(buf: Uint8Array, what: string): NormalizerSpec {
  const n = defaultNormalizerSpec();
  for (const f of readMessage(buf, what)) {
    switch (f.field) {
      case 1: n.name = asString(f, what); break;
      case 2: expectWire(f, 2, what); n.precompiledCharsmap = f.bytes!.slice(); break;
      case 3: n.addDummyPrefix = asBool(f, what); break;
      case 4: n.removeExtraWhitespaces = asBool(f, what); break;
      case 5: n.escapeWhitespaces = asBool(f, what); break;
      default: break;
    }
  }
  return n;
}

/** Parse a serialized sentencepiece ModelProto (the bytes of a `.model` file). */
export function parseModelProto(bytes: Uint8Array): ModelProto {
  const pieces: Piece[] = [];
  let trainerSpec = defaultTrainerSpec();
  let normalizerSpec = defaultNormalizerSpec();
  let denormalizerSpec: NormalizerSpec | null = null;
  for (const f of readMessage(bytes, 'ModelProto')) {
    if (f.wire !== 2) continue;
    if (f.field === 1) pieces.push(parsePiece(f.bytes!, pieces.length));
    else if (f.field === 2) trainerSpec = parseTrainerSpec(f.bytes!);
    else if (f.field === 3) normalizerSpec = parseNormalizerSpec(f.bytes!, 'normalizer_spec');
    else if (f.field === 5) denormalizerSpec = parseNormalizerSpec(f.bytes!, 'denormalizer_spec');
  }
  return { pieces, trainerSpec, normalizerSpec, denormalizerSpec };
}

// ------------------------------------------------------------------ UTF-8 helpers

/** Bytes of the UTF-8 character starting with lead byte b (by the lead byte alone, as upstream). */
function oneCharLen(b: number): number {
  return b < 0xc0 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
}

/** Length of the valid UTF-8 character at s[i], or 0 when it is malformed. */
function validCharLen(s: Uint8Array, i: number): number {
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

function concatBytes(parts: Uint8Array[]): Uint8Array {
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

const SPACE_SYMBOL = encoder.encode('\u2581'); // ▁
const REPLACEMENT = encoder.encode('\ufffd');
const SPACE = 0x20;

// ------------------------------------------------------------------ normaliser

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

/** Longest-prefix matcher over a set of byte strings (user-defined symbols). */
class PrefixMatcher {
  private readonly root = new Map<number, TrieNode>();
  constructor(words: readonly Uint8Array[]) {
    for (const w of words) {
      let level = this.root;
      let node: TrieNode | undefined;
      for (const b of w) {
        node = level.get(b);
        if (!node) level.set(b, (node = { next: new Map(), value: -1 }));
        level = node.next;
      }
      if (node) node.value = 1;
    }
  }
  get empty(): boolean {
    return this.root.size === 0;
  }
  /** Length of the longest word that prefixes s[i..], 0 if none. */
  longest(s: Uint8Array, i: number): number {
    let level = this.root;
    let best = 0;
    for (let k = i; k < s.length; k++) {
      const node = level.get(s[k]);
      if (!node) break;
      if (node.value >= 0) best = k - i + 1;
      level = node.next;
    }
    return best;
  }
}

interface TrieNode {
  next: Map<number, TrieNode>;
  value: number;
}

export class Normalizer {
  private readonly trie: DoubleArray | null = null;
  private readonly normalized: Uint8Array = new Uint8Array(0);
  private readonly matcher: PrefixMatcher | null;

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
    const m = new PrefixMatcher(userDefined.map((w) => encoder.encode(w)));
    this.matcher = m.empty ? null : m;
  }

  /** Normalised bytes and consumed input length of the longest rule at s[i..]. */
  private prefix(s: Uint8Array, i: number): [Uint8Array, number] {
    if (this.matcher) {
      const n = this.matcher.longest(s, i);
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
      return n === 0 ? [REPLACEMENT, 1] : [s.subarray(i, i + n), n];
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
    return utf8.decode(this.normalizeBytes(encoder.encode(text)));
  }
}

// ------------------------------------------------------------------ the processor

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
  /** byte-level trie of the pieces the Viterbi may use (normal, user-defined, unused) */
  private readonly trie: Map<number, TrieNode> = new Map();
  private readonly minScore: number;
  private readonly maxScore: number;
  private readonly byteIds: Int32Array | null;
  private readonly hasDenormalizer: boolean;

  constructor(readonly model: ModelProto) {
    const { pieces, trainerSpec, normalizerSpec } = model;
    this.pieces = pieces;
    this.trainerSpec = trainerSpec;
    this.normalizerSpec = normalizerSpec;
    if (trainerSpec.modelType !== ModelType.UNIGRAM) {
      throw new SentencePieceModelError(`model_type ${ModelType[trainerSpec.modelType] ?? trainerSpec.modelType} is not supported (only UNIGRAM, as T5 uses)`);
    }
    if (pieces.length === 0) throw new SentencePieceModelError('the model has no pieces');
    if (trainerSpec.treatWhitespaceAsSuffix) throw new SentencePieceModelError('treat_whitespace_as_suffix models are not supported');
    let unk = -1;
    let minScore = Infinity;
    let maxScore = FLT_MIN;
    const userDefined: string[] = [];
    const byteIds = new Int32Array(256).fill(-1);
    let hasBytes = false;
    this.pieceBytes = pieces.map((p) => encoder.encode(p.piece));
    pieces.forEach((p, id) => {
      if (!p.piece) throw new SentencePieceModelError(`piece ${id} is empty`);
      if (!(p.type in PieceType)) throw new SentencePieceModelError(`piece ${id} (${JSON.stringify(p.piece)}) has unknown type ${p.type}`);
      if (this.pieceToIdMap.has(p.piece)) throw new SentencePieceModelError(`piece ${JSON.stringify(p.piece)} is defined twice (ids ${this.pieceToIdMap.get(p.piece)} and ${id})`);
      this.pieceToIdMap.set(p.piece, id);
      if (p.type === PieceType.UNKNOWN) {
        if (unk >= 0) throw new SentencePieceModelError(`<unk> is defined twice (ids ${unk} and ${id})`);
        unk = id;
      }
      if (p.type === PieceType.NORMAL) {
        minScore = Math.min(minScore, p.score);
        maxScore = Math.max(maxScore, p.score);
      }
      if (p.type === PieceType.USER_DEFINED) userDefined.push(p.piece);
      if (p.type === PieceType.BYTE) {
        const b = pieceToByte(p.piece);
        if (b < 0) throw new SentencePieceModelError(`byte piece ${id} is not of the form <0xNN>: ${JSON.stringify(p.piece)}`);
        byteIds[b] = id;
        hasBytes = true;
      }
      if (p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED || p.type === PieceType.UNUSED) {
        let level = this.trie;
        let node: TrieNode | undefined;
        for (const b of this.pieceBytes[id]) {
          node = level.get(b);
          if (!node) level.set(b, (node = { next: new Map(), value: -1 }));
          level = node.next;
        }
        node!.value = id;
      }
    });
    if (unk < 0) throw new SentencePieceModelError('the model defines no <unk> piece');
    if (hasBytes && !trainerSpec.byteFallback) throw new SentencePieceModelError('the model has byte pieces but byte_fallback is off');
    if (trainerSpec.byteFallback) {
      const missing = [...byteIds].findIndex((v) => v < 0);
      if (missing >= 0) throw new SentencePieceModelError(`byte_fallback is on but the byte piece <0x${hex2(missing)}> is missing`);
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

  static async load(path: string): Promise<SentencePieceProcessor> {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (e) {
      throw new SentencePieceModelError(`cannot read ${path}: ${(e as Error).message}`);
    }
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
      const mblen = Math.min(oneCharLen(s[start]), n - start);
      let hasSingle = false;
      let level = this.trie;
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
    const s = this.normalizer.normalizeBytes(encoder.encode(text));
    const out: EncodedPiece[] = [];
    let prevUnk = false;
    for (const [a, b, id] of this.viterbi(s)) {
      const w = s.subarray(a, b);
      const isUnk = id === this.unkId;
      if (isUnk && this.byteIds) {
        for (const byte of w) out.push({ piece: `<0x${hex2(byte)}>`, id: this.byteIds[byte] });
      } else if (isUnk && prevUnk) {
        const last = out[out.length - 1];
        last.piece += utf8.decode(w);
      } else {
        out.push({ piece: utf8.decode(w), id });
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
    if (this.hasDenormalizer) throw new SentencePieceModelError('decoding with a denormalizer_spec charsmap is not supported');
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
        const piece = n === 0 ? REPLACEMENT : b.subarray(i, i + n);
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
      const enc = encoder.encode(surface);
      parts.push(enc);
      if (atBos && (enc.length > 0 || hadBosWs)) atBos = false;
    }
    flushBytes();
    return utf8.decode(concatBytes(parts));
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

// ------------------------------------------------------------------ T5 conventions

export interface T5EncodeOptions {
  /** pad (and truncate) every row to this many ids; default: the longest row */
  maxLength?: number;
  /** cut rows longer than maxLength, keeping </s> last (default true; false throws instead) */
  truncation?: boolean;
  /** pad to maxLength (default true when maxLength is given) */
  padding?: boolean;
  /** append </s> (default true) */
  addEos?: boolean;
}

export interface T5Batch {
  /** [batch, length] row-major, right-padded with <pad> */
  ids: Int32Array;
  /** 1 = token, 0 = padding */
  mask: Int32Array;
  /** ids per row, </s> included */
  lengths: number[];
  shape: [number, number];
}

/**
 * The transformers T5 tokenizer on top of SentencePiece: ids = sp.encode(text) + [</s>],
 * truncated to maxLength (keeping </s>), right-padded with <pad> = 0. The 100 sentinel tokens
 * <extra_id_0..99> written in a text map to vocab_size - 1 - N, as T5's added tokens do.
 */
export class T5Tokenizer {
  readonly eosId: number;
  readonly padId: number;
  private readonly sentinel = /<extra_id_(\d+)>/g;

  constructor(readonly sp: SentencePieceProcessor, readonly extraIds = 100) {
    if (sp.eosId < 0) throw new SentencePieceModelError('T5 tokenizer: the model has no </s> control piece');
    this.eosId = sp.eosId;
    this.padId = sp.padId >= 0 ? sp.padId : 0;
  }

  static async load(path: string, extraIds = 100): Promise<T5Tokenizer> {
    return new T5Tokenizer(await SentencePieceProcessor.load(path), extraIds);
  }

  /** ids used by sentinels and pieces together */
  get vocabSize(): number {
    return this.sp.vocabSize + this.extraIds;
  }

  /** ids of one text, </s> appended unless addEos is false; no padding or truncation. */
  encode(text: string, addEos = true): number[] {
    const ids: number[] = [];
    let last = 0;
    for (const m of text.matchAll(this.sentinel)) {
      const n = Number(m[1]);
      if (n >= this.extraIds) continue;
      ids.push(...this.sp.encode(text.slice(last, m.index)));
      ids.push(this.sp.vocabSize + this.extraIds - 1 - n);
      last = m.index + m[0].length;
    }
    ids.push(...this.sp.encode(text.slice(last)));
    if (addEos) ids.push(this.eosId);
    return ids;
  }

  encodeBatch(texts: readonly string[], opts: T5EncodeOptions = {}): T5Batch {
    const { maxLength, truncation = true, addEos = true } = opts;
    if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength >= 1)) {
      throw new RangeError(`T5 tokenizer: maxLength must be a positive integer, got ${maxLength}`);
    }
    const rows = texts.map((t, i) => {
      let ids = this.encode(t, addEos);
      if (maxLength !== undefined && ids.length > maxLength) {
        if (!truncation) throw new RangeError(`T5 tokenizer: text ${i} has ${ids.length} ids, more than maxLength ${maxLength}`);
        ids = addEos ? [...ids.slice(0, maxLength - 1), this.eosId] : ids.slice(0, maxLength);
      }
      return ids;
    });
    const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const padding = opts.padding ?? maxLength !== undefined;
    const L = padding && maxLength !== undefined ? maxLength : longest;
    const ids = new Int32Array(rows.length * L).fill(this.padId);
    const mask = new Int32Array(rows.length * L);
    rows.forEach((r, i) => {
      ids.set(r, i * L);
      mask.fill(1, i * L, i * L + r.length);
    });
    return { ids, mask, lengths: rows.map((r) => r.length), shape: [rows.length, L] };
  }

  decode(ids: readonly number[], skipSpecial = true): string {
    const out: string[] = [];
    let run: number[] = [];
    const flush = () => {
      if (run.length) out.push(this.sp.decode(run));
      run = [];
    };
    for (const id of ids) {
      if (id >= this.sp.vocabSize && id < this.vocabSize) {
        flush();
        if (!skipSpecial) out.push(`<extra_id_${this.vocabSize - 1 - id}>`);
      } else if (skipSpecial && (id === this.padId || id === this.eosId)) continue;
      else run.push(id);
    }
    flush();
    return out.join(skipSpecial ? '' : ' ');
  }
}
