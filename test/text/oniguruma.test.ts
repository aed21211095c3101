// Oniguruma patterns (tokenizer.json's Split regexes) run by JavaScript's RegExp: the translation
// and the splitting behaviours of `tokenizers`' Split pre-tokenizer.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BpeTokenizerError } from '../../src/text/errors.js';
import { translateOnigurumaRegex } from '../../src/text/oniguruma.js';
import { type SplitBehavior, splitWithRegex } from '../../src/text/tokenizer-steps.js';

const TOKENIZER_JSON = join(fileURLToPath(new URL('../fixtures/vlm', import.meta.url)), 'bpe_tokenize', 'tokenizer.json');
const tokenizerJson = () => JSON.parse(readFileSync(TOKENIZER_JSON, 'utf8')) as { pre_tokenizer: { pretokenizers: { pattern: { Regex: string } }[] } };
const onig = (pattern: string) => new RegExp(translateOnigurumaRegex(pattern), 'gu');

describe('Oniguruma patterns in JavaScript', () => {
  it('splits with the Qwen2 pattern as Oniguruma does', () => {
    const re = new RegExp(translateOnigurumaRegex(tokenizerJson().pre_tokenizer.pretokenizers[0].pattern.Regex), 'gu');
    const split = (s: string) => splitWithRegex(s, re);
    expect(split('a   b')).toEqual(['a', '  ', ' b']);
    expect(split('word   \n')).toEqual(['word', '   \n']);
    expect(split(', 121')).toEqual([',', ' ', '1', '2', '1']);
    expect(split('1280x')).toEqual(['1', '2', '8', '0', 'x']);
    expect(split("It's IT'S we'Ve")).toEqual(['It', "'s", ' IT', "'S", ' we', "'Ve"]);
    expect(split("x'\u017F")).toEqual(['x', "'\u017F"]); // LONG S folds to s
    expect(split('x\u2019s')).toEqual(['x', '\u2019s']); // the curly apostrophe is no contraction
    expect(split(' (x) .\n')).toEqual([' (', 'x', ')', ' .\n']);
    expect(split('\tand \u00A0space')).toEqual(['\tand', ' ', '\u00A0space']);
    // U+FEFF is not white space for Oniguruma (it is for JS \s); U+0085 and U+3000 are
    expect(split('\uFEFFword')).toEqual(['\uFEFFword']);
    expect(split('a\u0085\u0085b')).toEqual(['a', '\u0085', '\u0085b']);
    expect(split('a\u3000\u3000')).toEqual(['a', '\u3000\u3000']);
    expect(split('x²½Ⅰ٣')).toEqual(['x', '²', '½', 'Ⅰ', '٣']);
    // every character is covered
    const unit = fc.oneof(fc.integer({ min: 0, max: 0x3000 }).map((c) => String.fromCodePoint(c)), fc.constantFrom(...' \t\r\n\'sA1.'));
    fc.assert(fc.property(fc.string({ unit, maxLength: 30 }), (s) => split(s).join('') === s));
  });

  it('reads white space, digits and word characters as Oniguruma does under Unicode', () => {
    const all = (pattern: string, s: string) => [...s.matchAll(onig(pattern))].map((m) => m[0]);
    expect(all('\\s', 'a\u0085b\uFEFFc\u3000d\u00A0')).toEqual(['\u0085', '\u3000', '\u00A0']);
    expect(all('\\S+', 'a\uFEFFb c')).toEqual(['a\uFEFFb', 'c']);
    expect(all('\\d+', '12٣x²')).toEqual(['12٣']);
    expect(all('\\w+', 'é_x1-y')).toEqual(['é_x1', 'y']);
    expect(all('[\\s\\d]+', 'a 1\u0085b')).toEqual([' 1\u0085']);
    expect(all('\\p{^L}+', 'ab12cd')).toEqual(['12']);
    expect(all('\\x{1F916}', 'a🤖b')).toEqual(['🤖']);
  });

  it('spells out case variants inside (?i:...) only', () => {
    const all = (pattern: string, s: string) => [...s.matchAll(onig(pattern))].map((m) => m[0]);
    expect(all("(?i:'s)|x", "'s 'S '\u017F X x")).toEqual(["'s", "'S", "'\u017F", 'x']);
    expect(all('(?i:k)', 'kK\u212A')).toEqual(['k', 'K', '\u212A']);
    expect(all('(?i:[a-b])', 'aBc')).toEqual(['a', 'B']);
    expect(all('(?i:\\x41)|\\x42', 'aAbB')).toEqual(['a', 'A', 'B']);
  });

  it('refuses what it cannot translate faithfully', () => {
    for (const p of ['\\G', '[a[b]]', '[a-z&&[^d]]', '(?>a)', 'a)', '(a', '[a', '\\', '[z-a]', '\\xZZ', '(?i:[\\x41-Z])']) {
      expect(() => translateOnigurumaRegex(p), p).toThrow(BpeTokenizerError);
    }
  });

  it('splits with every delimiter behaviour of the Split pre-tokenizer', () => {
    const split = (b: SplitBehavior) => splitWithRegex('the-final--countdown', /-/gu, b);
    expect(split('Removed')).toEqual(['the', 'final', 'countdown']);
    expect(split('Isolated')).toEqual(['the', '-', 'final', '-', '-', 'countdown']);
    expect(split('MergedWithPrevious')).toEqual(['the-', 'final-', '-', 'countdown']);
    expect(split('MergedWithNext')).toEqual(['the', '-final', '-', '-countdown']);
    expect(split('Contiguous')).toEqual(['the', '-', 'final', '--', 'countdown']);
    // a delimiter at either end stays whole; an empty match splits nothing
    expect(splitWithRegex('-a-', /-/gu, 'MergedWithNext')).toEqual(['-a', '-']);
    expect(splitWithRegex('-a-', /-/gu, 'MergedWithPrevious')).toEqual(['-', 'a-']);
    expect(splitWithRegex('abc', /x*/gu)).toEqual(['abc']);
  });
});
