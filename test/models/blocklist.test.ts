// The blocklist stage on made-up keyword lists: the censor pass (case folding, leetspeak stand-ins,
// phrases glued or with their separator, the whitelist put back), the lemma pass, exact and partial
// matches with both threshold sets, the censor mark, the empty prompt, non-ASCII runs; and the
// Python string helpers it is written against (difflib ratio values known from Python).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Blocklist, loadBlocklist } from '../../src/models/guardrail/blocklist.js';
import { KeywordCensor } from '../../src/models/guardrail/censor.js';
import { lemmatize, pySplit, sequenceRatio, tokenize } from '../../src/models/guardrail/words.js';
import { WORDS, writeGuardrailFolder } from '../pipelines/guardrail-fakes.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-blocklist-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const bl = new Blocklist(WORDS);

describe('Blocklist', () => {
  it('an empty prompt is unsafe; a prompt of other words is safe', () => {
    expect(bl.check('')).toEqual({ safe: false, message: 'Input is empty' });
    expect(bl.check('A robot arm picks up a red cube.')).toEqual({ safe: true, message: 'Input is safe' });
  });

  it('censor pass: case folded, leetspeak stand-ins, punctuation around the word', () => {
    for (const p of ['the blarg walks', 'The BLARG walks', 'a bl4rg!', 'a (bl@rg), then', 'blarg', 'a "blarg" then']) {
      const v = bl.check(p);
      expect(v.safe, p).toBe(false);
      expect(v.message).toMatch(/^Prompt blocked by censorship: Censored Prompt: .*\*\*\*\*/);
    }
    expect(bl.check('the blarg walks').message).toBe('Prompt blocked by censorship: Censored Prompt: the **** walks');
    // a stand-in only stands for its own letter; a longer word is another word
    expect(bl.check('a blurg and a blargon').safe).toBe(true);
    // quotes are word characters to the censor ('"blarg"' is no keyword): the lemma pass, whose
    // tokens split the quotes off, catches it; there the tokenizer also splits at @, so this one passes both (as upstream)
    expect(bl.check('a "bl@rg", then').safe).toBe(true);
  });

  it('phrases: a spaced keyword with its one separator; a keyword split in the text is glued back', () => {
    expect(bl.check('zorp wibble here').safe).toBe(false);
    expect(bl.check('zorpwibble here').safe).toBe(true);
    expect(bl.check('bla-rg here').safe).toBe(false);
    expect(bl.check('z0rp wibble').safe).toBe(false);
    // two spaces: not for the censor pass, but the lemma pass joins the tokens with one
    expect(bl.check('zorp  wibble here').safe).toBe(false);
    expect(bl.check('zorp, wibble here').safe).toBe(true);
  });

  it("phrases: with one-separator keywords only, a phrase is only seen from every other word (better_profanity's window)", () => {
    // the following-word window is moved on by dropping one word; at a look-ahead of one word that
    // empties it, so the next word is tried alone and the one after it gets a fresh window
    expect(bl.check('a zorp wibble here').safe).toBe(true);
    expect(bl.check('a b zorp wibble here').safe).toBe(false);
    const wider = new Blocklist({ ...WORDS, custom: [...WORDS.custom, 'one two three'] });
    expect(wider.check('a zorp wibble here').safe).toBe(false);
    expect(wider.check('say one two three now').safe).toBe(false);
  });

  it('the whitelist: a word hidden by a stand-in match is put back when its own spelling is whitelisted', () => {
    expect(bl.check('the clank rings').safe).toBe(false);
    expect(bl.check('the cl@nk rings').safe).toBe(true);
    expect(bl.check('the (cl@nk) rings').safe).toBe(true);
    // a whitelisted keyword is not censored at all
    expect(new Blocklist({ custom: ['blarg'], whitelist: ['BLARG'], exactMatch: [] }).check('a blarg').safe).toBe(true);
  });

  it('the lemma pass catches plurals the censor pass does not', () => {
    const v = bl.check('two blargs walk');
    expect(v.safe).toBe(false);
    expect(v.message).toBe('Prompt blocked by censorship: Censored Prompt: two **** walk');
    expect(bl.check('many blarges').safe).toBe(true);
  });

  it('exact matches: whole words, spaces collapsed, case folded', () => {
    const v = bl.check('a QuibbleFlux appears');
    expect(v).toEqual({ safe: false, message: 'Prompt blocked by exact match blocklist: Prompt: a QuibbleFlux appears, Exact Match Word: quibbleflux' });
    expect(bl.check('the TANGLE \t vortex').safe).toBe(false);
    expect(bl.check('quibblefluxes').safe).toBe(true);
  });

  it('partial matches: predict1 6 / 0.4 lets no changed letter through; Cosmos-1.0 4 / 0.5 allows one extra letter', () => {
    expect(bl.check('a quibblefluxx appears').safe).toBe(true);
    const loose = new Blocklist(WORDS, { minChars: 4, letterCount: 0.5 });
    expect(loose.check('a quibblefluxx appears')).toEqual({
      safe: false, message: 'Prompt blocked by partial match blocklist: Prompt: a quibblefluxx appears, Partial Match Word: quibbleflux',
    });
    expect(loose.check('a quibbleflax appears').safe).toBe(true);
    // shorter than minChars: only the whole-word match
    expect(new Blocklist({ custom: [], whitelist: [], exactMatch: ['abcd'] }, { minChars: 5, letterCount: 0.5 }).check('abcde').safe).toBe(true);
    expect(new Blocklist({ custom: [], whitelist: [], exactMatch: ['abcd'] }, { minChars: 4, letterCount: 0.5 }).check('abcde').safe).toBe(false);
  });

  it('the censor mark: a literal * blocks only with the plain "*" mark (cosmos_guardrail)', () => {
    expect(bl.check('a * star').safe).toBe(true);
    expect(new Blocklist(WORDS, { censor: '*' }).check('a * star').safe).toBe(false);
  });

  it('non-ASCII runs become one space before any check', () => {
    expect(bl.check('caf\u00e9 blarg').safe).toBe(false);
    expect(bl.check('bl\u00e4rg').safe).toBe(true);
    expect(bl.check('\u{1F600}blarg\u{1F600}').safe).toBe(false);
  });

  it('loadBlocklist reads every file of custom/, whitelist/ and exact_match/ (CRLF, blank lines, stripped)', async () => {
    const dir = writeGuardrailFolder(nodePath.join(tmp, 'g'));
    const b = await loadBlocklist(nodePath.join(dir, 'blocklist'));
    expect([...b.words.custom].sort()).toEqual([...WORDS.custom].sort());
    expect(b.words.whitelist).toEqual(WORDS.whitelist);
    expect(b.words.exactMatch).toEqual(WORDS.exactMatch);
    await expect(loadBlocklist(nodePath.join(tmp, 'nope'))).rejects.toThrow(/nope[/\\]custom: missing/);
  });
});

describe('the censor', () => {
  it('keeps the separators and replaces each hit with four marks', () => {
    const c = new KeywordCensor(['blarg', 'zorp wibble']);
    expect(c.censor('  Blarg,blarg; zorp wibble!', '#')).toBe('  ####,####; ####!');
    // a phrase that ends the text takes its last character with it (as upstream)
    expect(c.censor('zorp wibble', '#')).toBe('####');
    // nothing to censor at the last character alone
    expect(c.censor('a', '#')).toBe('a');
  });
});

describe('Python string helpers', () => {
  it('difflib ratios as Python computes them', () => {
    expect(sequenceRatio('abcd', 'bcde')).toBe(0.75);
    expect(sequenceRatio('tide', 'diet')).toBe(0.25);
    expect(sequenceRatio('diet', 'tide')).toBe(0.5);
    expect(sequenceRatio('', '')).toBe(1);
    expect(sequenceRatio('quibblefluxx', 'quibbleflux')).toBeCloseTo(22 / 23, 15);
  });

  it('tokens split off punctuation, quotes and clitics; plurals lose their ending', () => {
    expect(tokenize('He said "blargs" don\'t stop.')).toEqual(['He', 'said', '``', 'blargs', "''", 'do', "n't", 'stop', '.']);
    expect(tokenize('(a, b) c?')).toEqual(['(', 'a', ',', 'b', ')', 'c', '?']);
    expect(['dogs', 'boxes', 'churches', 'flies', 'glasses', 'bus', 'children', 'firemen', 'Dogs', 'is'].map(lemmatize))
      .toEqual(['dog', 'box', 'church', 'fly', 'glass', 'bus', 'child', 'fireman', 'Dogs', 'is']);
    expect(pySplit(' a\x1cb\u3000c  ')).toEqual(['a', 'b', 'c']);
  });
});
