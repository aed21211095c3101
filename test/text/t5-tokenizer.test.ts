// T5's conventions on top of SentencePiece, as transformers' T5 tokenizer applies them: </s>
// appended, truncation keeping </s>, right padding with <pad> = 0, sentinels above the pieces.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { T5Tokenizer } from '../../src/text/t5-tokenizer.js';
import { memoryFileSystem } from './memory-files.js';

const SPIECE = join(fileURLToPath(new URL('../fixtures/t5', import.meta.url)), 'sentencepiece', 'spiece.model');

describe('T5 tokenizer conventions', () => {
  it('appends </s>, pads with <pad> = 0 and reports lengths and the mask', async () => {
    const tok = await T5Tokenizer.load(SPIECE);
    const b = tok.encodeBatch(['A robot arm', '', '   '], { maxLength: 6 });
    expect(b.shape).toEqual([3, 6]);
    expect(tok.sp.encodeAsPieces('A robot arm')).toEqual(['▁A', '▁robot', '▁a', 'rm']);
    expect(Array.from(b.ids)).toEqual([...tok.sp.encode('A robot arm'), 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(b.lengths).toEqual([5, 1, 1]);
    expect(Array.from(b.mask)).toEqual([1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
  });

  it('truncates to maxLength keeping </s> last, or refuses without truncation', async () => {
    const tok = await T5Tokenizer.load(SPIECE);
    const text = 'Generate a 5-second video of a car driving in heavy rain at night.';
    const full = tok.encode(text);
    const b = tok.encodeBatch([text], { maxLength: 5 });
    expect(Array.from(b.ids)).toEqual([...full.slice(0, 4), 1]);
    expect(b.lengths).toEqual([5]);
    expect(() => tok.encodeBatch([text], { maxLength: 5, truncation: false })).toThrow(/more than maxLength/);
    // without maxLength: pad to the longest row
    expect(tok.encodeBatch(['a', text]).shape).toEqual([2, full.length]);
  });

  it('maps sentinel tokens to the ids above the pieces', async () => {
    const tok = await T5Tokenizer.load(SPIECE);
    const n = tok.sp.vocabSize;
    expect(tok.encode('<extra_id_0> cube <extra_id_1>')).toEqual([n + 99, ...tok.sp.encode(' cube '), n + 98, 1]);
    expect(tok.decode(tok.encode('a red cube'))).toBe('a red cube');
  });
});

describe('T5 tokenizer loading', () => {
  it('reads spiece.model through the given file system, or takes its bytes', async () => {
    const bytes = new Uint8Array(readFileSync(SPIECE));
    const a = await T5Tokenizer.load('/t5/spiece.model', 100, memoryFileSystem({ '/t5/spiece.model': bytes }));
    const b = T5Tokenizer.fromBytes(bytes);
    expect(a.vocabSize).toBe(b.vocabSize);
    expect(a.encode('<extra_id_3> a red cube')).toEqual(b.encode('<extra_id_3> a red cube'));
  });
});
