// Oniguruma regexes (the syntax of tokenizer.json's Split patterns, compiled by the Rust
// `tokenizers` library) translated into JavaScript RegExp sources for the 'u' flag, so that the
// JS engine's own leftmost, ordered-alternation search splits text exactly as Oniguruma does.
// The differences that matter for real patterns:
// * `\s`/`\S` are Oniguruma's Unicode White_Space class (JS `\s` differs: it has U+FEFF and lacks
//   U+0085); `\d`/`\w` become their Unicode forms.
// * `(?i:...)` groups (unsupported by Node 20's RegExp) spell out every case variant of each
//   literal letter (Unicode simple case folding, so `s` also matches U+017F LONG S).
// Anything else Oniguruma-specific raises BpeTokenizerError instead of being guessed at.
import { BpeTokenizerError } from './errors.js';

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
  /** A class range under (?i:...): the range itself plus the case partners of every character in it. */
  const foldedRange = (i: number, from: string, to: string): string => {
    if (to === '\\' || to === '[') fail(i, 'a range ending in an escape inside (?i:...)');
    const lo = from.codePointAt(0)!;
    const hi = to.codePointAt(0)!;
    if (hi < lo) fail(i, 'a reversed range');
    if (hi - lo > 0xff) fail(i, 'a range of more than 256 characters inside (?i:...)');
    let body = `${escapeForClass(from)}-${escapeForClass(to)}`;
    for (let c = lo; c <= hi; c++) {
      const s = String.fromCodePoint(c);
      for (const v of caseVariants(s)) if (v !== s) body += escapeForClass(v);
    }
    return body;
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
        case 'x': case 'u': {
          // \xH, \xHH, \uHHHH, \x{H...}: the character itself, as any literal (case-folded under (?i:...))
          const braces = e === 'x' && chars[i + 1] === '{';
          let j = braces ? i + 2 : i + 1;
          while (j < chars.length && (braces || j - i <= (e === 'x' ? 2 : 4)) && /[0-9A-Fa-f]/.test(chars[j])) j++;
          const hex = chars.slice(braces ? i + 2 : i + 1, j).join('');
          if (hex === '' || (e === 'u' && hex.length !== 4) || (braces && chars[j] !== '}')) fail(i, `\\${e} without its hex digits`);
          const cp = parseInt(hex, 16);
          if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(i, `the code point \\x{${hex}}`);
          out += literal(String.fromCodePoint(cp));
          i = braces ? j : j - 1;
          break;
        }
        case 'b': case 'B':
          if (inClass) fail(i, `\\${e} inside a class`);
          out += `\\${e}`; break;
        default:
          if (/[A-Za-z0-9]/.test(e)) fail(i, `the escape \\${e}`);
          out += literal(e);
      }
      if (inClass && ci > 0 && chars[i + 1] === '-' && chars[i + 2] !== ']') fail(i, 'a range from an escape inside (?i:...)');
      continue;
    }
    if (inClass) {
      if (ch === ']') { inClass = false; out += ']'; continue; }
      if (ch === '[') fail(i, 'a nested class');
      if (ch === '&' && chars[i + 1] === '&') fail(i, 'class intersection');
      if (ch === '-' || ch === '^') { out += ch; continue; }
      if (ci > 0 && chars[i + 1] === '-' && chars[i + 2] !== undefined && chars[i + 2] !== ']') {
        out += foldedRange(i, ch, chars[i + 2]);
        i += 2;
        continue;
      }
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
  try {
    new RegExp(out, 'u');
  } catch (e) {
    throw new BpeTokenizerError(`regex ${JSON.stringify(pattern)}: ${(e as Error).message}`);
  }
  return out;
}

