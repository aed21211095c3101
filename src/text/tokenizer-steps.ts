// The steps of a tokenizer.json around its model: the normaliser, the pre-tokeniser (Split by a
// regex, ByteLevel) and the post-processor's special ids, each read into a plain function or
// value. Only the step types a byte-level BPE such as Qwen2's uses are accepted; any other
// raises BpeTokenizerError rather than being approximated.
import { BpeTokenizerError } from './errors.js';
import { translateOnigurumaRegex } from './oniguruma.js';

export type TextNormalizer = (s: string) => string;

export type SplitBehavior = 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** A pre-tokenizer step: pieces in -> pieces out. */
export type PreTokenizer = (pieces: string[]) => string[];

/** The ids a post-processor's single-sequence template puts before and after the sequence. */
export interface SpecialIds {
  before: number[];
  after: number[];
}

export function parseNormalizer(spec: unknown): TextNormalizer {
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
      throw new BpeTokenizerError(`normalizer: type ${JSON.stringify(o.type)} is not supported`);
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
      // a delimiter joins the text after it; of two delimiters in a row, the first stays alone
      const out: string[] = [];
      let carried = '';
      parts.forEach(([s, isMatch], k) => {
        const next = parts[k + 1];
        if (isMatch && next && !next[1]) carried = s;
        else {
          out.push(carried + s);
          carried = '';
        }
      });
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

export function parsePreTokenizer(spec: unknown): PreTokenizer {
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
      if (o.invert) throw new BpeTokenizerError('pre_tokenizer: Split with invert=true is not supported');
      const behavior = (o.behavior ?? 'Isolated') as SplitBehavior;
      if (!['Isolated', 'Removed', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(behavior)) {
        throw new BpeTokenizerError(`pre_tokenizer: Split behavior ${JSON.stringify(behavior)} is not supported`);
      }
      const re = new RegExp(source, 'gu');
      return (pieces) => pieces.flatMap((p) => splitWithRegex(p, re, behavior));
    }
    case 'ByteLevel': {
      const prefix = o.add_prefix_space === true;
      const useRegex = o.use_regex !== false;
      const re = useRegex ? new RegExp(translateOnigurumaRegex(GPT2_PATTERN), 'gu') : null;
      // Qwen2's case: the Split step did the splitting, and nothing is prefixed
      if (!prefix && !re) return (pieces) => pieces;
      return (pieces) =>
        pieces.flatMap((p) => {
          const q = prefix && !p.startsWith(' ') ? ` ${p}` : p;
          return re ? splitWithRegex(q, re, 'Isolated') : [q];
        });
      // the byte mapping itself happens once, just before BPE (always applied: this loader
      // only accepts byte-level models, checked in the constructor)
    }
    default:
      throw new BpeTokenizerError(`pre_tokenizer: type ${JSON.stringify(o.type)} is not supported`);
  }
}

/** Whether a pre_tokenizer (or a step of its Sequence) is ByteLevel. */
export function hasByteLevel(spec: unknown): boolean {
  const o = spec as Record<string, unknown> | null;
  if (!o) return false;
  if (o.type === 'ByteLevel') return true;
  if (o.type === 'Sequence') return ((o.pretokenizers as unknown[]) ?? []).some(hasByteLevel);
  return false;
}

export function parsePostProcessor(spec: unknown, tokenId: (t: string) => number | undefined): SpecialIds | null {
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
      return { before, after };
    }
    case 'Sequence': {
      const steps = ((o.processors as unknown[]) ?? []).map((p) => parsePostProcessor(p, tokenId)).filter((p) => p !== null);
      if (steps.length > 1) throw new BpeTokenizerError('post_processor: more than one id-adding processor');
      return steps[0] ?? null;
    }
    default:
      throw new BpeTokenizerError(`post_processor: type ${JSON.stringify(o.type)} is not supported`);
  }
}

// ------------------------------------------------------------------ BPE merge loop
