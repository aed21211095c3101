// The contents of a SentencePiece `.model` file (a serialized ModelProto): the pieces with their
// scores and types, the trainer settings the encoder depends on, and the normaliser rules.
// Field numbers and defaults are those of sentencepiece_model.proto.
import { type WireField, asBool, asBytes, asFloat, asInt32, asString, readMessage } from './protobuf.js';

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

/** How to read each field a message schema knows: field number -> [property, reader]. */
type FieldReaders<T> = Record<number, { [K in keyof T]: [K, (f: WireField, what: string) => T[K]] }[keyof T]>;

/** Fill `into` from the fields of a message; fields not in `readers` are skipped. */
function readFields<T>(buf: Uint8Array, what: string, into: T, readers: FieldReaders<T>): T {
  for (const f of readMessage(buf, what)) {
    const r = readers[f.field];
    if (r) into[r[0]] = r[1](f, what);
  }
  return into;
}

const PIECE_FIELDS: FieldReaders<Piece> = {
  1: ['piece', asString],
  2: ['score', asFloat],
  3: ['type', asInt32],
};

const TRAINER_FIELDS: FieldReaders<TrainerSpec> = {
  3: ['modelType', asInt32], 4: ['vocabSize', asInt32], 24: ['treatWhitespaceAsSuffix', asBool], 35: ['byteFallback', asBool],
  40: ['unkId', asInt32], 41: ['bosId', asInt32], 42: ['eosId', asInt32], 43: ['padId', asInt32],
  44: ['unkSurface', asString], 45: ['unkPiece', asString], 46: ['bosPiece', asString], 47: ['eosPiece', asString], 48: ['padPiece', asString],
};

const NORMALIZER_FIELDS: FieldReaders<NormalizerSpec> = {
  1: ['name', asString],
  // a copy: the spec outlives the file's bytes
  2: ['precompiledCharsmap', (f, what) => asBytes(f, what).slice()],
  3: ['addDummyPrefix', asBool], 4: ['removeExtraWhitespaces', asBool], 5: ['escapeWhitespaces', asBool],
};

/** Parse a serialized ModelProto (the bytes of a `.model` file). */
export function parseModelProto(bytes: Uint8Array): ModelProto {
  const pieces: Piece[] = [];
  let trainerSpec = defaultTrainerSpec();
  let normalizerSpec = defaultNormalizerSpec();
  let denormalizerSpec: NormalizerSpec | null = null;
  for (const f of readMessage(bytes, 'ModelProto')) {
    if (f.wire !== 2 || !f.bytes) continue;
    if (f.field === 1) pieces.push(readFields(f.bytes, `piece ${pieces.length}`, { piece: '', score: 0, type: PieceType.NORMAL }, PIECE_FIELDS));
    else if (f.field === 2) trainerSpec = readFields(f.bytes, 'trainer_spec', defaultTrainerSpec(), TRAINER_FIELDS);
    else if (f.field === 3) normalizerSpec = readFields(f.bytes, 'normalizer_spec', defaultNormalizerSpec(), NORMALIZER_FIELDS);
    else if (f.field === 5) denormalizerSpec = readFields(f.bytes, 'denormalizer_spec', defaultNormalizerSpec(), NORMALIZER_FIELDS);
  }
  return { pieces, trainerSpec, normalizerSpec, denormalizerSpec };
}
