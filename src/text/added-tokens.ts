// Added tokens of a tokenizer.json (special tokens such as <|im_end|>, and any others), found in
// text as `tokenizers`' AddedVocabulary finds them: leftmost match first, the longest of those
// starting there (aho-corasick LeftmostLongest), case-sensitive. single_word drops a match glued
// to a word character (the text it covered is then ordinary text); lstrip / rstrip absorb the
// neighbouring whitespace into the token. Text never joins across an added token.
import { ONIG_WHITESPACE_CLASS } from './oniguruma.js';

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  /** matched on the normalised text (true) or on the raw text (false) */
  normalized: boolean;
}

/** tokenizer.json `added_tokens` entries (checked by the caller). */
export function readAddedTokens(list: unknown): AddedToken[] {
  return ((list as Record<string, unknown>[] | null) ?? []).map((a) => ({
    id: Number(a.id),
    content: String(a.content),
    special: a.special === true,
    singleWord: a.single_word === true,
    lstrip: a.lstrip === true,
    rstrip: a.rstrip === true,
    normalized: a.normalized === true,
  }));
}

const WHITESPACE = new RegExp(`^[${ONIG_WHITESPACE_CLASS}]$`, 'u');
const ALPHANUMERIC = /^[\p{Alphabetic}\p{N}]$/u;

/** Finds a set of added tokens in text. */
export class AddedTokenMatcher {
  /** candidates by their first UTF-16 unit, longest first */
  private readonly byFirstUnit: AddedToken[][] = [];

  constructor(tokens: readonly AddedToken[]) {
    for (const a of tokens) {
      const first = a.content.charCodeAt(0);
      this.byFirstUnit[first] ??= [];
      this.byFirstUnit[first].push(a);
    }
    for (const l of this.byFirstUnit) l?.sort((x, y) => y.content.length - x.content.length);
  }

  /** `text` cut into ordinary text and the added tokens found in it, in order (no empty strings). */
  split(text: string): (string | AddedToken)[] {
    if (text === '') return [];
    if (this.byFirstUnit.length === 0) return [text];
    const out: (string | AddedToken)[] = [];
    let startOffset = 0; // end of the last emitted token
    let i = 0;
    while (i < text.length) {
      const a = this.byFirstUnit[text.charCodeAt(i)]?.find((t) => text.startsWith(t.content, i));
      if (!a) {
        i++;
        continue;
      }
      let start = i;
      let stop = i + a.content.length;
      i = stop; // the matcher resumes after the match, kept or not
      if (a.singleWord) {
        const before = start === 0 ? '' : charBefore(text, start);
        const after = stop === text.length ? '' : charAt(text, stop);
        if (ALPHANUMERIC.test(before) || ALPHANUMERIC.test(after)) continue;
      }
      if (a.lstrip) {
        let s = start;
        while (s > 0 && WHITESPACE.test(charBefore(text, s))) s -= charBefore(text, s).length;
        start = Math.max(s, startOffset);
      }
      if (a.rstrip) {
        while (stop < text.length && WHITESPACE.test(charAt(text, stop))) stop += charAt(text, stop).length;
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
}

/** The code point that starts at `at`. */
function charAt(text: string, at: number): string {
  return String.fromCodePoint(text.codePointAt(at)!);
}

/** The code point that ends at `end`. */
function charBefore(text: string, end: number): string {
  const c = text.charCodeAt(end - 1);
  if (c >= 0xdc00 && c <= 0xdfff && end >= 2) {
    const h = text.charCodeAt(end - 2);
    if (h >= 0xd800 && h <= 0xdbff) return text.slice(end - 2, end);
  }
  return text[end - 1];
}
