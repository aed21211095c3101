// The contents of a SentencePiece `.model` file (a serialized ModelProto): the pieces with their
// scores and types, the trainer settings the encoder depends on, and the normaliser rules.
// Field numbers and defaults are those of sentencepiece_model.proto.
import { asBool, asBytes, asFloat, asInt32, asString, readMessage } from './protobuf.js';

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

/** TrainerSpec.model_type values, by number (only UNIGRAM = 1 is run here). */
export const MODEL_TYPE_NAMES: readonly string[] = ['', 'UNIGRAM', 'BPE', 'WORD', 'CHAR'];
export const UNIGRAM = 1;

export interface TrainerSpec {
  /** see MODEL_TYPE_NAMES */
  modelType: number;
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
    modelType: UNIGRAM, vocabSize: 8000, byteFallback: false, treatWhitespaceAsSuffix: false,
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
      case 3: t.modelType = asInt32(f, what); break;
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
      case 2: n.precompiledCharsmap = asBytes(f, what).slice(); break;
      case 3: n.addDummyPrefix = asBool(f, what); break;
      case 4: n.removeExtraWhitespaces = asBool(f, what); break;
      case 5: n.escapeWhitespaces = asBool(f, what); break;
      default: break;
    }
  }
  return n;
}

/** Parse a serialized ModelProto (the bytes of a `.model` file). */
export function parseModelProto(bytes: Uint8Array): ModelProto {
  const pieces: Piece[] = [];
  let trainerSpec = defaultTrainerSpec();
  let normalizerSpec = defaultNormalizerSpec();
  let denormalizerSpec: NormalizerSpec | null = null;
  for (const f of readMessage(bytes, 'ModelProto')) {
    if (f.wire !== 2 || !f.bytes) continue;
    if (f.field === 1) pieces.push(parsePiece(f.bytes, pieces.length));
    else if (f.field === 2) trainerSpec = parseTrainerSpec(f.bytes);
    else if (f.field === 3) normalizerSpec = parseNormalizerSpec(f.bytes, 'normalizer_spec');
    else if (f.field === 5) denormalizerSpec = parseNormalizerSpec(f.bytes, 'denormalizer_spec');
  }
  return { pieces, trainerSpec, normalizerSpec, denormalizerSpec };
}
