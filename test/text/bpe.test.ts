// Byte-level BPE as Qwen2 / Qwen2.5-VL (Cosmos-Reason1) uses it, read from the vendored
// tokenizer.json: the GPT-2 byte table, round trips, NFC, added tokens with their flags, merge
// order, malformed files, decoding. Expectations follow the Rust `tokenizers` library.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FileError } from '../../src/io/files.js';
import { BYTE_TO_UNICODE, ByteLevelBpeTokenizer, bytesToSymbols } from '../../src/text/bpe.js';
import { BpeTokenizerError } from '../../src/text/errors.js';
import { memoryFileSystem } from './memory-files.js';

const FIX = fileURLToPath(new URL('../fixtures/vlm', import.meta.url));
const TOKENIZER_JSON = join(FIX, 'bpe_tokenize', 'tokenizer.json');
/** The parts of tokenizer.json these tests reach into. */
interface TokenizerJson {
  model: { merges: string[]; [key: string]: unknown };
  pre_tokenizer: { pretokenizers: { pattern: { Regex: string } }[] };
  [key: string]: unknown;
}
const tokenizerJson = () => JSON.parse(readFileSync(TOKENIZER_JSON, 'utf8')) as TokenizerJson;
const tok = await ByteLevelBpeTokenizer.load(TOKENIZER_JSON);

/** A minimal Qwen2-layout tokenizer.json: 256 byte symbols, the given merges and added tokens. */
function tinyTokenizer(merges: (string | [string, string])[], added: Record<string, unknown>[] = []): ByteLevelBpeTokenizer {
  const base = tokenizerJson();
  const vocab: Record<string, number> = {};
  // ids 0..255: the byte symbols in table order (= by code point), as in the Qwen files
  const syms = [...BYTE_TO_UNICODE].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
  for (const [i, s] of syms.entries()) vocab[s] = i;
  let next = 256;
  for (const m of merges) {
    const [a, b] = typeof m === 'string' ? m.split(' ') : m;
    vocab[a + b] ??= next++;
  }
  return ByteLevelBpeTokenizer.fromJson({
    ...base,
    added_tokens: added.map((a, i) => ({
      id: next + i, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...a,
    })),
    model: { ...base.model, vocab, merges },
  });
}

describe('byte-level BPE tokenizer', () => {
  it('has the GPT-2 byte table', () => {
    expect(BYTE_TO_UNICODE[0x20]).toBe('Ġ');
    expect(BYTE_TO_UNICODE[0x0a]).toBe('Ċ');
    expect(BYTE_TO_UNICODE[0x0d]).toBe('č');
    expect(BYTE_TO_UNICODE[0x09]).toBe('ĉ');
    expect(BYTE_TO_UNICODE[0xa0]).toBe('ł');
    expect(BYTE_TO_UNICODE[0x21]).toBe('!');
    expect(BYTE_TO_UNICODE[0x00]).toBe('Ā');
    expect(new Set(BYTE_TO_UNICODE).size).toBe(256);
    expect(bytesToSymbols('é ')).toBe('Ã©Ġ');
    // ids of the fixture: '!' = 0, '~' = 93, byte 0 = 188, space = 220, LF = 198
    expect([tok.tokenToId('!'), tok.tokenToId('~'), tok.tokenToId('Ā'), tok.tokenToId('Ġ'), tok.tokenToId('Ċ')]).toEqual([0, 93, 188, 220, 198]);
  });

  it('round-trips any text to its NFC form', () => {
    // Any code point (no lone surrogates: not text), weighted towards the characters the pattern
    // and NFC treat specially. (fast-check's own 'binary' unit costs seconds to set up under vitest.)
    const special = [...'\u0301\u0308\u0338 \t\r\n\u00A0\u0085\u2028\u3000\uFEFF\u200B\u200D\'’sS1²½eEKÅ>한東🤖👍🏽🇺🇸'];
    const codePoint = fc.oneof(
      fc.integer({ min: 0, max: 0x10ffff }).filter((c) => c < 0xd800 || c > 0xdfff).map((c) => String.fromCodePoint(c)),
      fc.integer({ min: 0, max: 0x24f }).map((c) => String.fromCodePoint(c)),
      fc.constantFrom(...special),
    );
    // plain comparisons: a vitest expect() per run costs more than the encoding itself
    fc.assert(fc.property(fc.string({ unit: codePoint, maxLength: 40 }), (s) => tok.decode(tok.encode(s)) === s.normalize('NFC')),
      { numRuns: 500 });
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (s) => tok.decode(tok.encode(s)) === s.normalize('NFC')),
      { numRuns: 200 });
  });

  it('normalises to NFC (decomposed input, singletons) but keeps compatibility characters', () => {
    expect(tok.encode('cafe\u0301')).toEqual(tok.encode('café'));
    expect(tok.decode(tok.encode('\u212A\u212B\u2126'))).toBe('KÅΩ');
    expect(tok.decode(tok.encode('ﬁ½²'))).toBe('ﬁ½²');
  });

  it('matches added tokens on the raw text before splitting; near misses stay text', () => {
    const id = (t: string) => tok.tokenToId(t)!;
    const e = tok.encodeDetailed('say<|im_end|>x');
    expect(e.ids).toContain(id('<|im_end|>'));
    expect(e.tokens.slice(-2)).toEqual(['<|im_end|>', 'x']);
    expect(e.tokens.slice(0, -2).join('')).toBe('say');
    expect(e.wordIds).toEqual([...e.tokens.slice(0, -2).map(() => 0), 1, 2]);
    for (const miss of ['<|image_pad |>', '<|IMAGE_PAD|>', '<image_pad>']) {
      expect(tok.encode(miss)).not.toContain(id('<|image_pad|>'));
      expect(tok.decode(tok.encode(miss))).toBe(miss);
    }
    // pieces never join across an added token: ' ' before it is its own piece
    expect(tok.encodeDetailed('a <|vision_start|> b').tokens).toEqual(['a', 'Ġ', '<|vision_start|>', 'Ġb']);
    // non-special added tokens are matched too, and survive skipSpecialTokens
    const t = tok.encode('<tool_call>x</tool_call><|endoftext|>');
    expect(t[0]).toBe(id('<tool_call>'));
    expect(tok.decode(t, { skipSpecialTokens: true })).toBe('<tool_call>x</tool_call>');
    expect(tok.encode('')).toEqual([]);
    expect(tok.encode('x', { addSpecialTokens: false })).toEqual(tok.encode('x', { addSpecialTokens: true }));
  });

  it('takes the longest added token at the leftmost position, and honours lstrip/rstrip/single_word', () => {
    const t = tinyTokenizer([], [
      { content: '<a>' }, { content: '<a><b>' }, { content: '[L]', lstrip: true }, { content: '[R]', rstrip: true },
      { content: 'ab', single_word: true, special: false },
    ]);
    const at = (s: string) => t.encodeDetailed(s).tokens;
    expect(at('x<a><b>y')).toEqual(['x', '<a><b>', 'y']);
    expect(at('<a><a>')).toEqual(['<a>', '<a>']);
    expect(at('x  [L]')).toEqual(['x', '[L]']);
    expect(at('[R]  y')).toEqual(['[R]', 'y']);
    expect(at('ab cab ab')).toEqual(['ab', 'Ġ', 'c', 'a', 'b', 'Ġ', 'ab']);
  });

  it('merges by rank, leftmost first (8 spaces -> four pairs)', () => {
    for (const merges of [['Ġ Ġ', 'ĠĠ Ġ'], [['Ġ', 'Ġ'], ['ĠĠ', 'Ġ']]] as (string | [string, string])[][]) {
      const t = tinyTokenizer(merges);
      expect(t.encodeDetailed(`x${' '.repeat(8)}\n`).tokens).toEqual(['x', 'ĠĠ', 'ĠĠ', 'ĠĠ', 'ĠĠ', 'Ċ']);
      expect(t.encodeDetailed('   ').tokens).toEqual(['ĠĠĠ']);
    }
    // a later merge can only apply once its parts exist
    const t = tinyTokenizer(['a b', 'b c', 'ab c']);
    expect(t.encodeDetailed('abc').tokens).toEqual(['abc']);
    const u = tinyTokenizer(['b c', 'a b', 'a bc']);
    expect(u.encodeDetailed('abc').tokens).toEqual(['abc']);
    const v = tinyTokenizer(['b c', 'a b']);
    expect(v.encodeDetailed('abc').tokens).toEqual(['a', 'bc']);
  });

  it('reads both merge spellings identically and rejects malformed files', () => {
    const j = tokenizerJson();
    const pairs = ByteLevelBpeTokenizer.fromJson({ ...j, model: { ...j.model, merges: j.model.merges.map((m: string) => m.split(' ')) } });
    const text = 'Accents: café naïve — 東京 🤖 1280x704   end\n';
    expect(pairs.encode(text)).toEqual(tok.encode(text));
    expect(() => ByteLevelBpeTokenizer.fromJson({ ...j, model: { ...j.model, merges: ['Ġ q', 'zz@@ y'] } })).toThrow(BpeTokenizerError);
    expect(() => ByteLevelBpeTokenizer.fromJson({ ...j, model: { ...j.model, type: 'WordPiece' } })).toThrow(BpeTokenizerError);
    expect(() => ByteLevelBpeTokenizer.fromString('{')).toThrow(BpeTokenizerError);
  });

  it('decodes invalid UTF-8 with U+FFFD and keeps unknown ids out', () => {
    // 'Ã' is byte 0xC3, a lead byte without its continuation
    expect(tok.decode([tok.tokenToId('Ã')!])).toBe('\uFFFD');
    expect(tok.decode([tok.tokenToId('Ã')!, tok.tokenToId('©')!])).toBe('é');
    expect(tok.decode([999999, ...tok.encode('ok')])).toBe('ok');
  });
});

describe('byte-level BPE loading and streaming', () => {
  it('reads tokenizer.json through the file system it is given, or from text or an object in hand', async () => {
    const text = readFileSync(TOKENIZER_JSON, 'utf8');
    const fromFs = await ByteLevelBpeTokenizer.load('/q/tokenizer.json', memoryFileSystem({ '/q/tokenizer.json': text }));
    const sample = 'A robot arm<|im_end|> 東京 🤖';
    expect(fromFs.encode(sample)).toEqual(tok.encode(sample));
    expect(ByteLevelBpeTokenizer.fromString(text).encode(sample)).toEqual(tok.encode(sample));
    expect(ByteLevelBpeTokenizer.fromJson(JSON.parse(text)).encode(sample)).toEqual(tok.encode(sample));
    await expect(ByteLevelBpeTokenizer.load('/q/missing.json', memoryFileSystem({}))).rejects.toThrow(FileError);
    await expect(ByteLevelBpeTokenizer.load('/q/t.json', memoryFileSystem({ '/q/t.json': '{' }))).rejects.toThrow(/^\/q\/t\.json: not valid JSON/);
  });

  it('gives the bytes of each token, so that a stream decodes token by token', () => {
    const ids = tok.encode('naïve 東京🤖 <|im_end|>\n<tool_call>');
    for (const skipSpecialTokens of [false, true]) {
      const dec = new TextDecoder();
      const streamed = ids.map((id) => dec.decode(tok.tokenBytes(id, { skipSpecialTokens }), { stream: true })).join('') + dec.decode();
      expect(streamed).toBe(tok.decode(ids, { skipSpecialTokens }));
    }
    expect(tok.tokenBytes(tok.tokenToId('<|im_end|>')!, { skipSpecialTokens: true })).toEqual(new Uint8Array(0));
    expect(tok.tokenBytes(999999)).toEqual(new Uint8Array(0));
    // a single byte symbol is a single byte, even when it is half a character
    expect(Array.from(tok.tokenBytes(tok.tokenToId('Ã')!))).toEqual([0xc3]);
  });

  it('counts its ids (added tokens included) and reports the pad the file sets', () => {
    const ids = [...tok.vocab.values(), ...tok.addedTokens.map((a) => a.id)];
    expect(tok.size).toBe(Math.max(...ids) + 1);
    expect(tok.padding).toBeNull();
    const padded = ByteLevelBpeTokenizer.fromJson({ ...tokenizerJson(), padding: { pad_id: tok.tokenToId('<|endoftext|>') } });
    expect(padded.padding).toEqual({ padId: tok.tokenToId('<|endoftext|>'), padToken: '<|endoftext|>' });
  });
});
