// Byte-level BPE (GPT-2 / Qwen2 style), read from a real Hugging Face `tokenizer.json` and run as
// the Rust `tokenizers` library (0.2x) does. Everything comes from the file: vocabulary, ordered
// merges, added tokens with their flags, the normaliser, the pre-tokeniser regex, the
// post-processor and the decoder. Nothing about sizes or ids is assumed.
//
//   text --added tokens (raw text)--> segments --normaliser (NFC)--> --added tokens (normalized=true)-->
//        --Split regex (ordered alternation, "Isolated")--> words
//        --ByteLevel (UTF-8 bytes -> GPT-2 symbols)--> --BPE by merge rank--> ids
//
// The parts: added-tokens.ts, tokenizer-steps.ts (normaliser, pre-tokeniser with oniguruma.ts,
// post-processor), bpe-model.ts (merges). Decoding: ids -> tokens (added tokens -> their text;
// skipSpecialTokens drops only special=true ones), then the ByteLevel decoder: each token's
// symbols back to bytes (a token with a character outside the table contributes its own UTF-8
// bytes), and the bytes as UTF-8 with each invalid sequence replaced by U+FFFD (Rust's
// from_utf8_lossy = WHATWG TextDecoder).
import { type FileSystem, fileSystem, readText } from '../io/files.js';
import { type AddedToken, AddedTokenMatcher, readAddedTokens } from './added-tokens.js';
import { BpeModel } from './bpe-model.js';
import { BpeTokenizerError } from './errors.js';
import { type PreTokenizer, type SpecialIds, type TextNormalizer, hasByteLevel, parseNormalizer, parsePostProcessor, parsePreTokenizer } from './tokenizer-steps.js';
import { concatBytes, utf8Decoder, utf8Encoder } from './utf8.js';

// ------------------------------------------------------------------ GPT-2 byte <-> unicode

/** GPT-2's `bytes_to_unicode`: byte -> one printable character. */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  for (const [i, b] of bs.entries()) out[b] = String.fromCodePoint(cs[i]);
  return out;
})();

/** The inverse table: symbol character -> byte. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

/** UTF-8 bytes of `text` as GPT-2 byte symbols. */
export function bytesToSymbols(text: string): string {
  let s = '';
  for (const b of utf8Encoder.encode(text)) s += BYTE_TO_UNICODE[b];
  return s;
}

/** The bytes a token stands for: its symbols mapped back, or its own UTF-8 when a character is not a byte symbol. */
export function symbolsToBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const b = UNICODE_TO_BYTE.get(ch);
    if (b === undefined) return utf8Encoder.encode(token);
    out[n++] = b;
  }
  return out.subarray(0, n);
}

// ------------------------------------------------------------------ the tokenizer

export interface EncodeOptions {
  /** Apply the post-processor's special tokens (Qwen2: ByteLevel, which adds none). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop added tokens marked special=true (non-special added tokens stay). Default false. */
  skipSpecialTokens?: boolean;
}

export interface Encoding {
  ids: number[];
  /** the token strings (byte-level symbols, or an added token's content) */
  tokens: string[];
  /** per token, the index of the pre-token it came from (an added token is one piece); -1 for post-processor ids */
  wordIds: number[];
}

const WORD_CACHE_LIMIT = 10_000;

export class ByteLevelBpeTokenizer {
  private readonly model: BpeModel;
  readonly addedTokens: readonly AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly rawAdded: AddedTokenMatcher;
  private readonly normalizedAdded: AddedTokenMatcher;
  private readonly normalize: TextNormalizer;
  private readonly preTokenize: PreTokenizer;
  private readonly post: SpecialIds | null;
  private readonly decoderByteLevel: boolean;
  /** ids of the words seen lately, by their text (a hit skips the UTF-8 and byte-symbol work) */
  private readonly wordCache = new Map<string, number[]>();
  /** Number of ids (largest id + 1, added tokens included). */
  readonly size: number;
  /** tokenizer.json `padding` (null when the file sets none) */
  readonly padding: { padId: number; padToken: string } | null;

  /** `json`: a parsed tokenizer.json; `source` names it in messages. */
  constructor(json: unknown, source = 'tokenizer.json') {
    const j = json as Record<string, unknown>;
    const fail = (msg: string): never => {
      throw new BpeTokenizerError(`${source}: ${msg}`);
    };
    if (!j || typeof j !== 'object') fail('not a JSON object');
    const model = j.model as Record<string, unknown>;
    if (!model || typeof model !== 'object') fail('no "model"');
    if (!hasByteLevel(j.pre_tokenizer)) fail('the pre_tokenizer has no ByteLevel step: not a byte-level BPE');
    this.model = new BpeModel(model, source);

    const added = readAddedTokens(j.added_tokens);
    let maxId = this.model.maxId;
    for (const a of added) {
      if (!Number.isInteger(a.id) || a.id < 0) fail(`added token ${JSON.stringify(a.content)} has id ${a.id}`);
      if (a.content === '') fail(`added token ${a.id} is empty`);
      this.addedById.set(a.id, a);
      if (!this.addedByContent.has(a.content)) this.addedByContent.set(a.content, a);
      if (a.id > maxId) maxId = a.id;
    }
    this.addedTokens = added;
    this.size = maxId + 1;
    this.rawAdded = new AddedTokenMatcher(added.filter((a) => !a.normalized));
    this.normalizedAdded = new AddedTokenMatcher(added.filter((a) => a.normalized));

    this.normalize = parseNormalizer(j.normalizer);
    this.preTokenize = parsePreTokenizer(j.pre_tokenizer);
    this.post = parsePostProcessor(j.post_processor, (t) => this.tokenToId(t));
    const dec = j.decoder as Record<string, unknown> | null;
    if (dec && dec.type !== 'ByteLevel') fail(`decoder type ${JSON.stringify(dec.type)} is not supported`);
    this.decoderByteLevel = !!dec;
    const pad = j.padding as Record<string, unknown> | null;
    this.padding = pad && typeof pad.pad_id === 'number'
      ? { padId: pad.pad_id, padToken: String(pad.pad_token ?? this.idToToken(pad.pad_id) ?? '') }
      : null;
  }

  static fromJson(json: unknown, source?: string): ByteLevelBpeTokenizer {
    return new ByteLevelBpeTokenizer(json, source);
  }

  static fromString(text: string, source = 'tokenizer.json'): ByteLevelBpeTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new BpeTokenizerError(`${source}: not valid JSON (${(e as Error).message})`);
    }
    return new ByteLevelBpeTokenizer(json, source);
  }

  /** Read a tokenizer.json (a FileError names it when it cannot be read). */
  static async load(path: string, fs: FileSystem = fileSystem()): Promise<ByteLevelBpeTokenizer> {
    return ByteLevelBpeTokenizer.fromString(await readText(path, fs), path);
  }

  get vocab(): ReadonlyMap<string, number> {
    return this.model.vocab;
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken(id);
  }

  /** The added token with this id, if any. */
  addedToken(id: number): AddedToken | undefined {
    return this.addedById.get(id);
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  // ---------------------------------------------------------------- encoding

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.encodeDetailed(text, options).ids;
  }

  encodeDetailed(text: string, options: EncodeOptions = {}): Encoding {
    const enc: Encoding = { ids: [], tokens: [], wordIds: [] };
    let word = 0;
    const emitAdded = (a: AddedToken) => {
      enc.ids.push(a.id);
      enc.tokens.push(a.content);
      enc.wordIds.push(word++);
    };
    for (const seg of this.rawAdded.split(text)) {
      if (typeof seg !== 'string') {
        emitAdded(seg);
        continue;
      }
      for (const sub of this.normalizedAdded.split(this.normalize(seg))) {
        if (typeof sub !== 'string') {
          emitAdded(sub);
          continue;
        }
        for (const piece of this.preTokenize([sub])) {
          if (piece === '') continue;
          for (const id of this.encodeWord(piece)) {
            enc.ids.push(id);
            enc.tokens.push(this.model.idToToken(id)!);
            enc.wordIds.push(word);
          }
          word++;
        }
      }
    }
    if (options.addSpecialTokens === false || !this.post) return enc;
    const { before, after } = this.post;
    const tok = (ids: number[]) => ids.map((id) => this.idToToken(id) ?? '');
    return {
      ids: [...before, ...enc.ids, ...after],
      tokens: [...tok(before), ...enc.tokens, ...tok(after)],
      wordIds: [...before.map(() => -1), ...enc.wordIds, ...after.map(() => -1)],
    };
  }

  private encodeWord(word: string): number[] {
    let ids = this.wordCache.get(word);
    if (!ids) {
      ids = this.model.encodeWord(bytesToSymbols(word));
      if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache.clear();
      this.wordCache.set(word, ids);
    }
    return ids;
  }

  // ---------------------------------------------------------------- decoding

  /** The text of one id before byte decoding; undefined for an unknown id or a skipped special token. */
  private tokenText(id: number, options: DecodeOptions): string | undefined {
    const a = this.addedById.get(id);
    if (a) return options.skipSpecialTokens && a.special ? undefined : a.content;
    return this.model.idToToken(id);
  }

  /**
   * The bytes one id decodes to (none for an unknown id or, with skipSpecialTokens, a special
   * token). Concatenated over a sequence and read as UTF-8 they give `decode`'s text, so a caller
   * can decode a stream token by token.
   */
  tokenBytes(id: number, options: DecodeOptions = {}): Uint8Array {
    const t = this.tokenText(id, options);
    if (t === undefined) return new Uint8Array(0);
    return this.decoderByteLevel ? symbolsToBytes(t) : utf8Encoder.encode(t);
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const all = Array.from(ids, Number);
    if (!this.decoderByteLevel) return all.map((id) => this.tokenText(id, options) ?? '').join('');
    return utf8Decoder.decode(concatBytes(all.map((id) => this.tokenBytes(id, options))));
  }
}
