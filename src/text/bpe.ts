// Byte-level BPE (GPT-2 / Qwen2 style), read from a real HuggingFace `tokenizer.json` and run as
// the Rust `tokenizers` library (0.2x) does. Everything comes from the file: vocabulary, ordered
// merges (rank = position in `merges`), added tokens with their flags, the normaliser, the
// pre-tokeniser regex, the post-processor and the decoder. Nothing about sizes or ids is assumed.
//
//   text --added tokens (raw text, leftmost-longest)--> segments
//        --normaliser (NFC)--> --added tokens with normalized=true-->
//        --Split regex (ordered alternation, "Isolated")--> pieces
//        --ByteLevel (UTF-8 bytes -> GPT-2 symbols)--> --BPE by merge rank--> ids
//
// * Added tokens: `tokenizers`' AddedVocabulary. Tokens with normalized=false are found on the raw
//   text, the others on the normalised segments in between; leftmost match first, the longest of
//   those starting there (aho-corasick LeftmostLongest), case-sensitive. single_word drops a match
//   glued to a word character (the text it covered is then ordinary text), lstrip / rstrip absorb
//   the neighbouring whitespace into the token. Text never joins across an added token.
// * The Split regex is Oniguruma syntax. It is translated into a JavaScript RegExp with the 'u'
//   flag (`translateOnigurumaRegex`): `\s`/`\S` become Oniguruma's Unicode White_Space class (JS
//   `\s` differs: it has U+FEFF and lacks U+0085), `\d`/`\w` their Unicode forms, and `(?i:...)`
//   groups (unsupported by Node 20's RegExp) spell out every case variant of each literal letter
//   (Unicode simple case folding, so `s` also matches U+017F LONG S). Scanning is the regex
//   engine's own leftmost, ordered-alternation search, identical in both engines.
// * BPE: the word's byte symbols, then repeatedly the adjacent pair of lowest rank (leftmost among
//   equals) is merged, with a priority queue exactly as `tokenizers`' `Word::merge_all`; results are
//   cached per piece.
// * Decoding: ids -> tokens (added tokens -> their text; skipSpecialTokens drops only special=true
//   ones), then the ByteLevel decoder: each token's symbols back to bytes (a token with a character
//   outside the table contributes its own UTF-8 bytes), and the bytes as UTF-8 with each invalid
//   sequence replaced by U+FFFD (Rust's from_utf8_lossy = WHATWG TextDecoder).
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { UserError } from '../engine/errors.js';

export class BpeTokenizerError extends UserError {
  override name = 'BpeTokenizerError';
}

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
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i])));
  return out;
})();

/** The inverse table: symbol character -> byte. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 bytes of `text` as GPT-2 byte symbols. */
export function bytesToSymbols(text: string): string {
  const bytes = utf8Encoder.encode(text);
  let s = '';
  for (const b of bytes) s += BYTE_TO_UNICODE[b];
  return s;
}

// ------------------------------------------------------------------ Oniguruma -> JS regex

/** Oniguruma's `\s` under Unicode (the White_Space property), as the inside of a JS class. */
export const ONIG_WHITESPACE_CLASS = '\\t\\n\\x0B\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const ONIG_WORD_CLASS = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';
const SYNTAX_CHARS = new Set('^$\\.*+?()[]{}|/-'.split(''));

const caseVariantCache = new Map<string, string[]>();

/** Every code point that matches `ch` case-insensitively (Unicode simple case folding). */
function caseVariants(ch: string): string[] {
  let v = caseVariantCache.get(ch);
  if (v) return v;
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  if (lower === ch && upper === ch) {
    // no case mapping at all (digits, punctuation): only itself
    v = [ch];
  } else {
    // every case partner of a character lies in planes 0-1: let the regex engine scan them all
    v = [...allPlane01().matchAll(new RegExp(escapeForClass(ch), 'giu'))].map((m) => m[0]);
  }
  caseVariantCache.set(ch, v);
  return v;
}

let plane01: string | null = null;

/** Every code point of planes 0 and 1 except the surrogates, in order, as one string. */
function allPlane01(): string {
  if (plane01 === null) {
    const parts: string[] = [];
    for (let cp = 0; cp <= 0x1ffff; cp += 0x1000) {
      const cps: number[] = [];
      for (let c = cp; c < cp + 0x1000; c++) if (c < 0xd800 || c > 0xdfff) cps.push(c);
      parts.push(String.fromCodePoint(...cps));
    }
    plane01 = parts.join('');
  }
  return plane01;
}

function escapeForClass(ch: string): string {
  return SYNTAX_CHARS.has(ch) ? `\\${ch}` : ch;
}

/**
 * Translate an Oniguruma pattern (as `tokenizers` stores it) into a JavaScript RegExp source for
 * the 'u' flag. Supported: literals, escapes (\s \S \d \D \w \W \p{..} \P{..} \r \n \t ...), classes,
 * groups (?: ) (?= ) (?! ) (?<= ) (?<! ) and scoped case-insensitivity (?i: ... ). Anything else
 * Oniguruma-specific raises BpeTokenizerError.
 */
export function translateOnigurumaRegex(pattern: string): string {
  const chars = Array.from(pattern);
  let out = '';
  let inClass = false;
  // one entry per open group: whether it switched case-insensitivity on
  const groups: boolean[] = [];
  let ci = 0;
  const fail = (i: number, what: string): never => {
    throw new BpeTokenizerError(`regex ${JSON.stringify(pattern)}: ${what} at character ${i} is not supported`);
  };
  const literal = (ch: string): string => {
    if (ci > 0) {
      const vars = caseVariants(ch);
      if (vars.length > 1) {
        const body = vars.map(escapeForClass).join('');
        return inClass ? body : `[${body}]`;
      }
    }
    return inClass ? escapeForClass(ch) : SYNTAX_CHARS.has(ch) && ch !== '-' && ch !== '/' ? `\\${ch}` : ch;
  };
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '\\') {
      const e = chars[++i];
      if (e === undefined) fail(i, 'a trailing backslash');
      switch (e) {
        case 's': out += inClass ? ONIG_WHITESPACE_CLASS : `[${ONIG_WHITESPACE_CLASS}]`; break;
        case 'S': if (inClass) fail(i, '\\S inside a class'); out += `[^${ONIG_WHITESPACE_CLASS}]`; break;
        case 'd': out += '\\p{Nd}'; break;
        case 'D': out += '\\P{Nd}'; break;
        case 'w': out += inClass ? ONIG_WORD_CLASS : `[${ONIG_WORD_CLASS}]`; break;
        case 'W': if (inClass) fail(i, '\\W inside a class'); out += `[^${ONIG_WORD_CLASS}]`; break;
        case 'p': case 'P': {
          if (chars[i + 1] !== '{') fail(i, '\\p without braces');
          let j = i + 1;
          while (j < chars.length && chars[j] !== '}') j++;
          const name = chars.slice(i + 2, j).join('');
          // Oniguruma also accepts \p{^L} for the negation
          const neg = name.startsWith('^');
          out += `\\${(e === 'P') !== neg ? 'P' : 'p'}{${neg ? name.slice(1) : name}}`;
          i = j;
          break;
        }
        case 'r': case 'n': case 't': case 'f': case 'v': case '0':
          out += `\\${e}`; break;
        case 'x': case 'u':
          // \xHH, \uHHHH, \x{H..}: same spelling in JS ('u' flag accepts \u{...} for the braces)
          if (e === 'x' && chars[i + 1] === '{') {
            let j = i + 2;
            while (j < chars.length && chars[j] !== '}') j++;
            out += `\\u{${chars.slice(i + 2, j).join('')}}`;
            i = j;
          } else out += `\\${e}`;
          break;
        case 'b': case 'B':
          if (inClass) fail(i, `\\${e} inside a class`);
          out += `\\${e}`; break;
        default:
          if (/[A-Za-z0-9]/.test(e)) fail(i, `the escape \\${e}`);
          out += literal(e);
      }
      continue;
    }
    if (inClass) {
      if (ch === ']') { inClass = false; out += ']'; continue; }
      if (ch === '[') fail(i, 'a nested class');
      if (ch === '&' && chars[i + 1] === '&') fail(i, 'class intersection');
      if (ch === '-' || ch === '^') { out += ch; continue; }
      out += literal(ch);
      continue;
    }
    switch (ch) {
      case '[':
        inClass = true;
        out += '[';
        if (chars[i + 1] === '^') { out += '^'; i++; }
        if (chars[i + 1] === ']') { out += '\\]'; i++; }
        break;
      case '(': {
        if (chars[i + 1] !== '?') { groups.push(false); out += '('; break; }
        const rest = chars.slice(i + 2, i + 4).join('');
        const prefix = ['<=', '<!', ':', '=', '!'].find((p) => rest.startsWith(p));
        if (prefix) {
          groups.push(false);
          out += `(?${prefix}`;
          i += 1 + prefix.length;
          break;
        }
        if (rest === 'i:') {
          groups.push(true);
          ci++;
          out += '(?:';
          i += 3;
          break;
        }
        if (rest.startsWith('<')) {
          // named group: copy the name through
          const close = chars.indexOf('>', i);
          if (close < 0) fail(i, 'an unterminated group name');
          groups.push(false);
          out += chars.slice(i, close + 1).join('');
          i = close;
          break;
        }
        fail(i, 'this group syntax');
        break;
      }
      case ')': {
        const wasCi = groups.pop();
        if (wasCi === undefined) fail(i, 'an unbalanced ")"');
        if (wasCi) ci--;
        out += ')';
        break;
      }
      case '.': case '*': case '+': case '?': case '|': case '^': case '$': case '{': case '}':
        out += ch; break;
      default:
        out += literal(ch);
    }
  }
  if (inClass || groups.length) throw new BpeTokenizerError(`regex ${JSON.stringify(pattern)}: unbalanced`);
  return out;
}

// ------------------------------------------------------------------ tokenizer.json pieces

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

type Normalizer = (s: string) => string;

type SplitBehavior = 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** A pre-tokenizer step: pieces in -> pieces out. */
type PreTokenizer = (pieces: string[]) => string[];

interface PostProcessor {
  /** the ids a single-sequence template puts before and after the sequence */
  single(): { before: number[]; after: number[] };
}

const isWhitespace = (c: string) => /^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]$/u.test(c);
const isAlphanumeric = (c: string) => /^[\p{Alphabetic}\p{N}]$/u.test(c);

function parseNormalizer(spec: unknown): Normalizer {
  if (spec === null || spec === undefined) return (s) => s;
  const o = spec as Record<string, unknown>;
  switch (o.type) {
    case 'NFC': case 'NFD': case 'NFKC': case 'NFKD': {
      const form = o.type;
      return (s) => s.normalize(form);
    }
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'Sequence': {
      const steps = ((o.normalizers as unknown[]) ?? []).map(parseNormalizer);
      return (s) => steps.reduce((acc, f) => f(acc), s);
    }
    default:
      throw new BpeTokenizerError(`normalizer type ${JSON.stringify(o.type)} is not supported`);
  }
}

/** Split `text` at every match of `re` ('gu' flags), with tokenizers' SplitDelimiterBehavior. */
export function splitWithRegex(text: string, re: RegExp, behavior: SplitBehavior = 'Isolated'): string[] {
  // (piece, isMatch) covering the whole text
  const parts: [string, boolean][] = [];
  let last = 0;
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(text);
    if (!m) break;
    if (m[0].length === 0) {
      // an empty match delimits nothing; step over one code point
      re.lastIndex = m.index + (text.codePointAt(m.index)! > 0xffff ? 2 : 1);
      if (m.index >= text.length) break;
      continue;
    }
    if (m.index > last) parts.push([text.slice(last, m.index), false]);
    parts.push([m[0], true]);
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push([text.slice(last), false]);
  switch (behavior) {
    case 'Isolated':
      return parts.map((p) => p[0]);
    case 'Removed':
      return parts.filter((p) => !p[1]).map((p) => p[0]);
    case 'MergedWithPrevious': {
      const out: string[] = [];
      let prevMatch = false;
      for (const [s, isMatch] of parts) {
        if (isMatch && out.length && !prevMatch) out[out.length - 1] += s;
        else out.push(s);
        prevMatch = isMatch;
      }
      return out;
    }
    case 'MergedWithNext': {
      const out: string[] = [];
      let pending = '';
      for (const [s, isMatch] of parts) {
        if (isMatch) pending += s;
        else {
          out.push(pending + s);
          pending = '';
        }
      }
      if (pending) out.push(pending);
      return out;
    }
    case 'Contiguous': {
      const out: string[] = [];
      let prev: boolean | null = null;
      for (const [s, isMatch] of parts) {
        if (isMatch && prev === true) out[out.length - 1] += s;
        else out.push(s);
        prev = isMatch;
      }
      return out;
    }
  }
}

/** GPT-2's own split regex (ByteLevel use_regex=true). */
const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

function parsePreTokenizer(spec: unknown): PreTokenizer {
  if (spec === null || spec === undefined) return (p) => p;
  const o = spec as Record<string, unknown>;
  switch (o.type) {
    case 'Sequence': {
      const steps = ((o.pretokenizers as unknown[]) ?? []).map(parsePreTokenizer);
      return (p) => steps.reduce((acc, f) => f(acc), p);
    }
    case 'Split': {
      const pat = o.pattern as Record<string, unknown>;
      let source: string;
      if (typeof pat?.Regex === 'string') source = translateOnigurumaRegex(pat.Regex);
      else if (typeof pat?.String === 'string') source = pat.String.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
      else throw new BpeTokenizerError(`Split pre-tokenizer: pattern ${JSON.stringify(pat)} is not supported`);
      if (o.invert) throw new BpeTokenizerError('Split pre-tokenizer with invert=true is not supported');
      const behavior = (o.behavior ?? 'Isolated') as SplitBehavior;
      if (!['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(behavior)) {
        throw new BpeTokenizerError(`Split behavior ${JSON.stringify(behavior)} is not supported`);
      }
      const re = new RegExp(source, 'gu');
      return (pieces) => pieces.flatMap((p) => splitWithRegex(p, re, behavior));
    }
    case 'ByteLevel': {
      const prefix = o.add_prefix_space === true;
      const useRegex = o.use_regex !== false;
      const re = useRegex ? new RegExp(translateOnigurumaRegex(GPT2_PATTERN), 'gu') : null;
      return (pieces) =>
        pieces.flatMap((p) => {
          const q = prefix && !p.startsWith(' ') ? ` ${p}` : p;
          return re ? splitWithRegex(q, re, 'Isolated') : [q];
        });
      // the byte mapping itself happens once, just before BPE (always applied: this loader
      // only accepts byte-level models, checked in the constructor)
    }
    default:
      throw new BpeTokenizerError(`pre_tokenizer type ${JSON.stringify(o.type)} is not supported`);
  }
}

function hasByteLevel(spec: unknown): boolean {
  const o = spec as Record<string, unknown> | null;
  if (!o) return false;
  if (o.type === 'ByteLevel') return true;
  if (o.type === 'Sequence') return ((o.pretokenizers as unknown[]) ?? []).some(hasByteLevel);
  return false;
}

function parsePostProcessor(spec: unknown, tokenId: (t: string) => number | undefined): PostProcessor | null {
  if (spec === null || spec === undefined) return null;
  const o = spec as Record<string, unknown>;
  switch (o.type) {
    case 'ByteLevel':
      return null; // offsets only; adds no ids
    case 'TemplateProcessing': {
      const single = (o.single as Record<string, unknown>[]) ?? [];
      const specials = (o.special_tokens ?? {}) as Record<string, { ids: number[] }>;
      const before: number[] = [];
      const after: number[] = [];
      let seen = false;
      for (const item of single) {
        if ('Sequence' in item) seen = true;
        else if ('SpecialToken' in item) {
          const name = (item.SpecialToken as { id: string }).id;
          const sp = specials[name]?.ids ?? [tokenId(name)];
          for (const id of sp) {
            if (id === undefined) throw new BpeTokenizerError(`post_processor: unknown special token ${name}`);
            (seen ? after : before).push(id);
          }
        }
      }
      return { single: () => ({ before, after }) };
    }
    case 'Sequence': {
      const steps = ((o.processors as unknown[]) ?? []).map((p) => parsePostProcessor(p, tokenId)).filter((p) => p !== null);
      if (steps.length > 1) throw new BpeTokenizerError('post_processor: more than one id-adding processor');
      return steps[0] ?? null;
    }
    default:
      throw new BpeTokenizerError(`post_processor type ${JSON.stringify(o.type)} is not supported`);
  }
}

// ------------------------------------------------------------------ BPE merge loop

/** Binary min-heap of (rank, pos, newId), ordered by rank then pos. */
class MergeQueue {
  private rank: number[] = [];
  private pos: number[] = [];
  private nid: number[] = [];
  get size(): number {
    return this.rank.length;
  }
  private less(a: number, b: number): boolean {
    return this.rank[a] < this.rank[b] || (this.rank[a] === this.rank[b] && this.pos[a] < this.pos[b]);
  }
  private swap(a: number, b: number): void {
    [this.rank[a], this.rank[b]] = [this.rank[b], this.rank[a]];
    [this.pos[a], this.pos[b]] = [this.pos[b], this.pos[a]];
    [this.nid[a], this.nid[b]] = [this.nid[b], this.nid[a]];
  }
  push(rank: number, pos: number, newId: number): void {
    this.rank.push(rank);
    this.pos.push(pos);
    this.nid.push(newId);
    let i = this.rank.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number, number] {
    const top: [number, number, number] = [this.rank[0], this.pos[0], this.nid[0]];
    const last = this.rank.length - 1;
    this.swap(0, last);
    this.rank.pop();
    this.pos.pop();
    this.nid.pop();
    let i = 0;
    const n = this.rank.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
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

const CACHE_LIMIT = 10_000;

export class ByteLevelBpeTokenizer {
  readonly vocab: ReadonlyMap<string, number>;
  private readonly idToTok = new Map<number, string>();
  /** (leftId * base + rightId) -> [rank, newId] */
  private readonly merges = new Map<number, [number, number]>();
  private readonly base: number;
  readonly addedTokens: readonly AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly rawTrie: AddedToken[][];
  private readonly normTrie: AddedToken[][];
  private readonly normalize: Normalizer;
  private readonly preTokenize: PreTokenizer;
  private readonly post: PostProcessor | null;
  private readonly ignoreMerges: boolean;
  private readonly decoderByteLevel: boolean;
  private readonly cache = new Map<string, number[]>();
  /** tokenizer.json `padding` (null when the file sets none) */
  readonly padding: { padId: number; padToken: string } | null;

  constructor(json: unknown, private readonly source = 'tokenizer.json') {
    const j = json as Record<string, unknown>;
    const fail = (msg: string): never => {
      throw new BpeTokenizerError(`${source}: ${msg}`);
    };
    if (!j || typeof j !== 'object') fail('not a JSON object');
    const model = j.model as Record<string, unknown>;
    if (!model || typeof model !== 'object') fail('no "model"');
    if (model.type !== undefined && model.type !== 'BPE') fail(`model type ${JSON.stringify(model.type)} is not BPE`);
    if (model.dropout !== null && model.dropout !== undefined && model.dropout !== 0) fail('BPE dropout is not supported');
    if (model.byte_fallback === true) fail('byte_fallback is not supported (byte-level BPE needs none)');
    if ((model.continuing_subword_prefix ?? '') !== '' || (model.end_of_word_suffix ?? '') !== '') {
      fail('continuing_subword_prefix / end_of_word_suffix are not supported');
    }
    if (!hasByteLevel(j.pre_tokenizer)) fail('the pre_tokenizer has no ByteLevel step: not a byte-level BPE');
    this.ignoreMerges = model.ignore_merges === true;

    const vocabObj = model.vocab as Record<string, number>;
    if (!vocabObj || typeof vocabObj !== 'object') fail('model.vocab is missing');
    const vocab = new Map<string, number>();
    let maxId = -1;
    for (const [tok, id] of Object.entries(vocabObj)) {
      if (!Number.isInteger(id) || id < 0) fail(`vocab entry ${JSON.stringify(tok)} has id ${id}`);
      vocab.set(tok, id);
      this.idToTok.set(id, tok);
      if (id > maxId) maxId = id;
    }
    this.vocab = vocab;

    const added: AddedToken[] = ((j.added_tokens as Record<string, unknown>[]) ?? []).map((a) => ({
      id: Number(a.id),
      content: String(a.content),
      special: a.special === true,
      singleWord: a.single_word === true,
      lstrip: a.lstrip === true,
      rstrip: a.rstrip === true,
      normalized: a.normalized === true,
    }));
    for (const a of added) {
      if (!Number.isInteger(a.id) || a.id < 0) fail(`added token ${JSON.stringify(a.content)} has id ${a.id}`);
      if (a.content === '') fail(`added token ${a.id} is empty`);
      this.addedById.set(a.id, a);
      if (a.id > maxId) maxId = a.id;
    }
    this.addedTokens = added;
    this.base = maxId + 1;

    const merges = (model.merges as unknown[]) ?? [];
    merges.forEach((m, rank) => {
      let a: string;
      let b: string;
      if (typeof m === 'string') {
        const sp = m.indexOf(' ');
        if (sp < 0 || m.indexOf(' ', sp + 1) >= 0) fail(`merge ${rank} ${JSON.stringify(m)} is not "A B"`);
        a = m.slice(0, sp);
        b = m.slice(sp + 1);
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
        [a, b] = m as [string, string];
      } else {
        return fail(`merge ${rank} ${JSON.stringify(m)} is neither "A B" nor ["A", "B"]`);
      }
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      const inew = vocab.get(a + b);
      if (ia === undefined || ib === undefined) fail(`merge ${rank} ${JSON.stringify(m)}: a part is not in the vocabulary`);
      if (inew === undefined) fail(`merge ${rank} ${JSON.stringify(m)}: the result is not in the vocabulary`);
      // a repeated pair keeps its last rank (as tokenizers' HashMap collect does)
      this.merges.set(ia! * this.base + ib!, [rank, inew!]);
    });

    // added-token matchers: by first UTF-16 unit, longest first
    const trie = (toks: AddedToken[]) => {
      const t: AddedToken[][] = [];
      for (const a of toks) (t[a.content.charCodeAt(0)] ??= []).push(a);
      for (const l of t) l?.sort((x, y) => y.content.length - x.content.length);
      return t;
    };
    this.rawTrie = trie(added.filter((a) => !a.normalized));
    this.normTrie = trie(added.filter((a) => a.normalized));
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

  static async load(path: string): Promise<ByteLevelBpeTokenizer> {
    return ByteLevelBpeTokenizer.fromString(await readFile(path, 'utf8'), path);
  }

  static loadSync(path: string): ByteLevelBpeTokenizer {
    return ByteLevelBpeTokenizer.fromString(readFileSync(path, 'utf8'), path);
  }

  /** Number of ids (largest id + 1, added tokens included). */
  get size(): number {
    return this.base;
  }

  tokenToId(token: string): number | undefined {
    const a = this.addedTokens.find((t) => t.content === token);
    return a ? a.id : this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.idToTok.get(id);
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
    for (const seg of this.splitAdded(text, this.rawTrie)) {
      if (typeof seg !== 'string') {
        emitAdded(seg);
        continue;
      }
      for (const sub of this.splitAdded(this.normalize(seg), this.normTrie)) {
        if (typeof sub !== 'string') {
          emitAdded(sub);
          continue;
        }
        for (const piece of this.preTokenize([sub])) {
          if (piece === '') continue;
          for (const id of this.bpe(bytesToSymbols(piece))) {
            enc.ids.push(id);
            enc.tokens.push(this.idToTok.get(id)!);
            enc.wordIds.push(word);
          }
          word++;
        }
      }
    }
    if (options.addSpecialTokens !== false && this.post) {
      const { before, after } = this.post.single();
      const tok = (ids: number[]) => ids.map((id) => this.idToToken(id) ?? '');
      return {
        ids: [...before, ...enc.ids, ...after],
        tokens: [...tok(before), ...enc.tokens, ...tok(after)],
        wordIds: [...before.map(() => -1), ...enc.wordIds, ...after.map(() => -1)],
      };
    }
    return enc;
  }

  /** Split at added tokens (tokenizers' AddedVocabulary.find_matches). */
  private splitAdded(text: string, trie: AddedToken[][]): (string | AddedToken)[] {
    if (text === '') return [];
    if (trie.length === 0) return [text];
    const out: (string | AddedToken)[] = [];
    let startOffset = 0; // end of the last emitted token
    let i = 0;
    while (i < text.length) {
      const cands = trie[text.charCodeAt(i)];
      const a = cands?.find((t) => text.startsWith(t.content, i));
      if (!a) {
        i++;
        continue;
      }
      let start = i;
      let stop = i + a.content.length;
      i = stop; // the matcher resumes after the match, kept or not
      if (a.singleWord) {
        const before = start === 0 ? '' : lastChar(text, start);
        const after = stop === text.length ? '' : String.fromCodePoint(text.codePointAt(stop)!);
        if ((before && isAlphanumeric(before)) || (after && isAlphanumeric(after))) continue;
      }
      if (a.lstrip) {
        let s = start;
        while (s > 0 && isWhitespace(lastChar(text, s))) s -= lastChar(text, s).length;
        start = Math.max(s, startOffset);
      }
      if (a.rstrip) {
        while (stop < text.length) {
          const c = String.fromCodePoint(text.codePointAt(stop)!);
          if (!isWhitespace(c)) break;
          stop += c.length;
        }
      }
      if (start < startOffset) start = startOffset;
      if (startOffset < start) out.push(text.slice(startOffset, start));
      out.push(a);
      startOffset = stop;
      if (i < stop) i = stop;
    }
    if (startOffset < text.length) out.push(text.slice(startOffset));
    return out;
  }

  /** BPE on one piece given as byte symbols -> ids (cached). */
  bpe(symbols: string): number[] {
    const hit = this.cache.get(symbols);
    if (hit) return hit;
    let ids: number[];
    const whole = this.ignoreMerges ? this.vocab.get(symbols) : undefined;
    if (whole !== undefined) ids = [whole];
    else ids = this.mergeWord(symbols);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(symbols, ids);
    return ids;
  }

  private mergeWord(symbols: string): number[] {
    const id: number[] = [];
    for (const ch of symbols) {
      const v = this.vocab.get(ch);
      // no unk token: a symbol missing from the vocabulary is dropped (as tokenizers does)
      if (v !== undefined) id.push(v);
    }
    const n = id.length;
    if (n < 2) return id;
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const q = new MergeQueue();
    for (let i = 0; i + 1 < n; i++) {
      const m = this.merges.get(id[i] * this.base + id[i + 1]);
      if (m) q.push(m[0], i, m[1]);
    }
    while (q.size) {
      const [, pos, newId] = q.pop();
      if (!alive[pos]) continue;
      const nx = next[pos];
      if (nx < 0) continue;
      const cur = this.merges.get(id[pos] * this.base + id[nx]);
      if (!cur || cur[1] !== newId) continue; // expired entry
      id[pos] = newId;
      alive[nx] = 0;
      next[pos] = next[nx];
      if (next[nx] >= 0) prev[next[nx]] = pos;
      const pv = prev[pos];
      if (pv >= 0) {
        const m = this.merges.get(id[pv] * this.base + id[pos]);
        if (m) q.push(m[0], pv, m[1]);
      }
      const nn = next[pos];
      if (nn >= 0) {
        const m = this.merges.get(id[pos] * this.base + id[nn]);
        if (m) q.push(m[0], pos, m[1]);
      }
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(id[i]);
    return out;
  }

  // ---------------------------------------------------------------- decoding

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = Number(ids[k]);
      const a = this.addedById.get(id);
      if (a) {
        if (!(options.skipSpecialTokens && a.special)) tokens.push(a.content);
        continue;
      }
      const t = this.idToTok.get(id);
      if (t !== undefined) tokens.push(t);
    }
    if (!this.decoderByteLevel) return tokens.join('');
    const bytes: number[] = [];
    for (const t of tokens) {
      const tb: number[] = [];
      let ok = true;
      for (const ch of t) {
        const b = UNICODE_TO_BYTE.get(ch);
        if (b === undefined) {
          ok = false;
          break;
        }
        tb.push(b);
      }
      if (ok) bytes.push(...tb);
      else for (const b of utf8Encoder.encode(t)) bytes.push(b);
    }
    return utf8Decoder.decode(Uint8Array.from(bytes));
  }
}

function lastChar(text: string, end: number): string {
  const c = text.charCodeAt(end - 1);
  if (c >= 0xdc00 && c <= 0xdfff && end >= 2) {
    const h = text.charCodeAt(end - 2);
    if (h >= 0xd800 && h <= 0xdbff) return text.slice(end - 2, end);
  }
  return text[end - 1];
}
