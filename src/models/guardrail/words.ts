// The word-level text helpers of the blocklist. Upstream tokenises with NLTK's word_tokenize
// (punkt sentence splitting, then the Treebank rules) and lemmatises with WordNet's noun morphology
// (a suffix rule is only taken when WordNet knows the result). Neither data set is available here,
// so these are plain stand-ins written for the same purpose (the README lists where they differ):
// - tokenize: whitespace words with punctuation split off as Treebank does (quotes become `` and '',
//   clitics n't 's 're 've 'll 'd 'm are their own tokens, a sentence-final period is split off);
// - lemmatize: a lower-case noun loses its plural ending by fixed rules and a small table of
//   irregular plurals, without a dictionary to tell a plural from a word that ends in s.
// Plus the Python string behaviour the rules are written against (str.split / strip whitespace,
// string.punctuation, difflib's SequenceMatcher ratio).

/** Python's str.isspace() characters (str.split() and strip() cut on these). */
const PY_SPACE = new Set([
  9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
  0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
].map((c) => String.fromCharCode(c)));

const isSpace = (c: string) => PY_SPACE.has(c);

/** Python's str.split() with no argument. */
export function pySplit(s: string): string[] {
  const out: string[] = [];
  let w = '';
  for (const c of s) {
    if (isSpace(c)) {
      if (w !== '') out.push(w);
      w = '';
    } else w += c;
  }
  if (w !== '') out.push(w);
  return out;
}

/** Python's str.strip() with no argument. */
export function pyStrip(s: string): string {
  const a = Array.from(s);
  let i = 0;
  let j = a.length;
  while (i < j && isSpace(a[i])) i++;
  while (j > i && isSpace(a[j - 1])) j--;
  return a.slice(i, j).join('');
}

/** Python's re.sub(r"\s+", " ", s) on a str. */
export function pyCollapseSpaces(s: string): string {
  let out = '';
  let inSpace = false;
  for (const c of s) {
    if (isSpace(c)) {
      if (!inSpace) out += ' ';
      inSpace = true;
    } else {
      out += c;
      inSpace = false;
    }
  }
  return out;
}

/** Each run of non-ASCII characters as one space (upstream's to_ascii). */
export function toAscii(s: string): string {
  let out = '';
  let run = false;
  for (const c of s) {
    if (c.charCodeAt(0) > 0x7f) {
      if (!run) out += ' ';
      run = true;
    } else {
      out += c;
      run = false;
    }
  }
  return out;
}

/** Python's string.punctuation. */
export const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/** Python's s.strip(chars). */
export function stripChars(s: string, chars: string): string {
  const a = Array.from(s);
  let i = 0;
  let j = a.length;
  while (i < j && chars.includes(a[i])) i++;
  while (j > i && chars.includes(a[j - 1])) j--;
  return a.slice(i, j).join('');
}

const CLITIC = /^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$/i;

/** Word tokens of a prompt (see the header for how they compare with NLTK's word_tokenize). */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  const words = pySplit(text);
  words.forEach((w, k) => {
    const last = k === words.length - 1;
    const pre: string[] = [];
    const post: string[] = [];
    let s = w;
    // leading quotes and brackets
    for (;;) {
      const m = /^(``|"|'(?=[A-Za-z]{2})|[([{<])/.exec(s);
      if (!m || m[0].length === s.length) break;
      pre.push(m[0] === '"' ? '``' : m[0]);
      s = s.slice(m[0].length);
    }
    // trailing punctuation, quotes and brackets (a period only at the end of a sentence)
    for (;;) {
      const m = /(\.\.\.|''|"|[)\]}>,;:!?]|\.)$/.exec(s);
      if (!m || m[0].length === s.length) break;
      if (m[0] === '.' && !(last || /[A-Z"')\]]/.test(words[k + 1]?.[0] ?? '')) ) break;
      if (m[0] === '.' && /\.[A-Za-z]+\.$/.test(s)) break; // an abbreviation such as U.S.
      post.unshift(m[0] === '"' ? "''" : m[0]);
      s = s.slice(0, -m[0].length);
    }
    const inner: string[] = [];
    for (const part of s.split(/(\.\.\.|--|[,;@#$%&?!])/)) {
      if (part === '') continue;
      const c = CLITIC.exec(part);
      if (c) inner.push(c[1], c[2]);
      else inner.push(part);
    }
    out.push(...pre, ...inner, ...post);
  });
  return out;
}

/** Irregular plurals (as WordNet's noun exception list has them). */
const IRREGULAR: Readonly<Record<string, string>> = {
  children: 'child', mice: 'mouse', geese: 'goose', feet: 'foot', teeth: 'tooth', lice: 'louse', oxen: 'ox', people: 'person',
  knives: 'knife', wives: 'wife', lives: 'life', wolves: 'wolf', leaves: 'leaf', halves: 'half', selves: 'self', thieves: 'thief',
  loaves: 'loaf', shelves: 'shelf', calves: 'calf', elves: 'elf', dice: 'die', women: 'woman', men: 'man',
};

/** Words ending like a plural that are not plurals (no dictionary here to tell). */
const NOT_PLURAL = new Set(['specimen', 'abdomen', 'omen', 'amen', 'regimen', 'acumen', 'semen', 'stamen', 'hymen', 'yemen', 'series', 'species']);

/** A noun's singular (see the header): only lower-case ASCII words are changed. */
export function lemmatize(token: string): string {
  if (!/^[a-z]+$/.test(token)) return token;
  const irregular = IRREGULAR[token];
  if (irregular) return irregular;
  if (NOT_PLURAL.has(token) || token.length <= 3) return token;
  if (token.endsWith('men')) return `${token.slice(0, -3)}man`;
  if (token.endsWith('ies') && token.length > 4) return `${token.slice(0, -3)}y`;
  if (/(ches|shes|sses|xes|zes)$/.test(token)) return token.slice(0, -2);
  if (token.endsWith('s') && !/(ss|us|is)$/.test(token)) return token.slice(0, -1);
  return token;
}

/**
 * difflib.SequenceMatcher(None, a, b).ratio(): 2 M / (|a| + |b|), M the characters in the
 * matching blocks found by recursively taking the longest common block (earliest in a, then in b,
 * on ties). With autojunk (the default) characters of b that make up more than 1% of a b of 200 or
 * more characters are "popular": not used to seed a block, only to extend one.
 */
export function sequenceRatio(aText: string, bText: string): number {
  const a = Array.from(aText);
  const b = Array.from(bText);
  const total = a.length + b.length;
  if (total === 0) return 1;
  const b2j = new Map<string, number[]>();
  b.forEach((c, j) => {
    const l = b2j.get(c);
    if (l) l.push(j);
    else b2j.set(c, [j]);
  });
  if (b.length >= 200) {
    const limit = Math.floor(b.length / 100) + 1;
    for (const [c, l] of [...b2j]) if (l.length > limit) b2j.delete(c);
  }
  const longest = (alo: number, ahi: number, blo: number, bhi: number): [number, number, number] => {
    let bi = alo;
    let bj = blo;
    let size = 0;
    let lens = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      for (const j of b2j.get(a[i]) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (lens.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > size) {
          bi = i - k + 1;
          bj = j - k + 1;
          size = k;
        }
      }
      lens = next;
    }
    // popular characters extend a block on both sides
    while (bi > alo && bj > blo && a[bi - 1] === b[bj - 1]) {
      bi--;
      bj--;
      size++;
    }
    while (bi + size < ahi && bj + size < bhi && a[bi + size] === b[bj + size]) size++;
    return [bi, bj, size];
  };
  let matched = 0;
  const queue: [number, number, number, number][] = [[0, a.length, 0, b.length]];
  while (queue.length > 0) {
    const [alo, ahi, blo, bhi] = queue.pop()!;
    const [i, j, k] = longest(alo, ahi, blo, bhi);
    if (k === 0) continue;
    matched += k;
    if (alo < i && blo < j) queue.push([alo, i, blo, j]);
    if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
  }
  return (2 * matched) / total;
}
