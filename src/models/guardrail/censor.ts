// The keyword censor the blocklist runs over a prompt (better_profanity 0.7.0's behaviour, which
// upstream's Blocklist loads with the release's custom/ words): a text is cut into words of
// "allowed" characters; each word, alone or glued to the words after it (with and without the
// separators between them), is compared case-insensitively with every keyword, where a keyword
// letter also accepts its leetspeak stand-ins (a: @ * 4, i: * l 1, ...). A hit becomes four
// censor characters. The quirks kept on purpose, because a prompt's verdict depends on them:
// - a text whose first word starts at its last character (or that has none) is returned as is;
// - look-ahead covers as many following words as the keyword with the most separator characters
//   has separators (at least one), and the window is moved on from word to word by dropping a
//   word: at a look-ahead of one it runs empty, so the next word is tried alone (a one-separator
//   phrase is then only found from every other word of a run);
// - a phrase that ends the text swallows its last character, and the trailing word is dropped.
// Characters are code points, as Python indexes strings.

/** Stand-ins a keyword letter accepts (each one character long). */
const LEET: Readonly<Record<string, string>> = {
  a: 'a@*4', i: 'i*l1', o: 'o*0@', u: 'u*v', v: 'v*u', l: 'l1', e: 'e*3', s: 's$5', t: 't7',
};

/**
 * Word characters: ASCII letters and digits, @ $ * " ' and (as better_profanity's table of
 * alphabetic Unicode characters) any Unicode letter. A blocklist prompt is ASCII by then.
 */
function isWordChar(c: string): boolean {
  return /^[A-Za-z0-9@$*"']$/.test(c) || (c > '\x7f' && /^\p{L}$/u.test(c));
}

type NextWord = [word: string, end: number];

export class KeywordCensor {
  /** keywords by length in code points (every stand-in is one character, so lengths match exactly) */
  private readonly byLength = new Map<number, string[][]>();
  /** how many following words a word is tried with */
  private readonly lookAhead: number;

  /** `words` (any case; duplicates are fine) minus the `whitelist` (compared lower-cased). */
  constructor(words: readonly string[], whitelist: readonly string[] = []) {
    const white = new Set(whitelist.map((w) => w.toLowerCase()));
    let most = 1;
    for (const raw of new Set(words)) {
      const w = raw.toLowerCase();
      if (white.has(w)) continue;
      const chars = Array.from(w);
      most = Math.max(most, chars.filter((c) => !isWordChar(c)).length);
      const list = this.byLength.get(chars.length) ?? [];
      list.push(chars);
      this.byLength.set(chars.length, list);
    }
    this.lookAhead = most;
  }

  /** Whether a (lower-cased) string is one of the keywords, stand-ins allowed. */
  has(text: string): boolean {
    const t = Array.from(text);
    const cands = this.byLength.get(t.length);
    if (!cands) return false;
    return cands.some((w) => w.every((c, i) => c === t[i] || (LEET[c]?.includes(t[i]) ?? false)));
  }

  /** The text with every keyword hit replaced by four `censorChar`s. */
  censor(text: string, censorChar: string): string {
    const all = Array.from(text);
    const first = nextWordStart(all, 0);
    if (first >= all.length - 1) return text;
    let out = all.slice(0, first).join('');
    const t = all.slice(first);
    const hidden = censorChar.repeat(4);
    let word = '';
    let skipBelow = -1;
    let ahead: NextWord[] = [];
    for (let i = 0; i < t.length; i++) {
      if (i < skipBelow) continue;
      let sep = t[i];
      if (isWordChar(sep)) {
        word += sep;
        continue;
      }
      if (word === '') {
        out += sep;
        continue;
      }
      ahead = this.slide(t, ahead, i);
      const end = this.phraseEnd(word, ahead);
      if (end >= 0) {
        word = hidden;
        skipBelow = end;
        sep = '';
        ahead = [];
      }
      if (this.has(word.toLowerCase())) word = hidden;
      out += word + sep;
      word = '';
    }
    if (word !== '' && skipBelow < t.length - 1) out += this.has(word.toLowerCase()) ? hidden : word;
    return out;
  }

  /** The following-word window at `at`: computed afresh, or the previous one moved on by a word. */
  private slide(t: string[], ahead: NextWord[], at: number): NextWord[] {
    if (ahead.length === 0) return nextWords(t, at, this.lookAhead);
    ahead.splice(0, 2);
    if (ahead.length > 0 && ahead[ahead.length - 1][0] !== '') ahead.push(...nextWords(t, ahead[ahead.length - 1][1], 1));
    return ahead;
  }

  /** Where the first keyword formed by `word` and its following words ends, or -1. */
  private phraseEnd(word: string, ahead: NextWord[]): number {
    let glued = word.toLowerCase();
    let spaced = glued;
    for (let k = 0; k + 1 < ahead.length; k += 2) {
      const [single, end] = ahead[k];
      if (single === '') continue;
      glued += single.toLowerCase();
      spaced += ahead[k + 1][0].toLowerCase();
      if (this.has(glued) || this.has(spaced)) return end;
    }
    return -1;
  }
}

function nextWordStart(t: string[], from: number): number {
  for (let i = from; i < t.length; i++) if (isWordChar(t[i])) return i;
  return t.length;
}

/** The word starting at `start` and the index that ended it (its last index when the text ends inside it). */
function wordAt(t: string[], start: number): NextWord {
  let word = '';
  let end = start;
  for (let k = start; k < t.length; k++) {
    end = k;
    if (!isWordChar(t[k])) break;
    word += t[k];
  }
  return [word, end];
}

/** `count` following words after `from`, each as a pair: the word, and the word with the separators before it. */
function nextWords(t: string[], from: number, count: number): NextWord[] {
  const start = nextWordStart(t, from);
  if (start >= t.length - 1) return [['', start], ['', start]];
  const [word, end] = wordAt(t, start);
  const out: NextWord[] = [[word, end], [t.slice(from, start).join('') + word, end]];
  if (count > 1) out.push(...nextWords(t, end, count - 1));
  return out;
}
