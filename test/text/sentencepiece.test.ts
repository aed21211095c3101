// SentencePiece as the T5 text encoder uses it: the vendored case model (unigram, nmt_nfkc
// charsmap) and synthetic models covering byte fallback, user-defined, unused and control pieces.
// Expected values were checked against SentencePiece 0.1.97 when they were written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FileError } from '../../src/io/files.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { SentencePieceModelError } from '../../src/text/errors.js';
import { SentencePieceProcessor } from '../../src/text/sentencepiece.js';
import { memoryFileSystem } from './memory-files.js';
import { BASE, BYTES, WORDS, modelProto } from './model-proto.js';

const FIX = fileURLToPath(new URL('../fixtures/t5', import.meta.url));
const SPIECE = join(FIX, 'sentencepiece', 'spiece.model');
const smallModel = () => SentencePieceProcessor.fromBytes(modelProto([...BASE, ...WORDS], false));

describe('SentencePiece (the case model: unigram, nmt_nfkc charsmap)', () => {
  it('reproduces the case ids, lengths, pieces and decoded texts', async () => {
    const sp = await SentencePieceProcessor.load(SPIECE);
    const cj = JSON.parse(readFileSync(join(FIX, 'sentencepiece', 'case.json'), 'utf8'));
    const st = await openSafetensors(join(FIX, 'sentencepiece', 'case.safetensors'));
    const ids = await st.read('output.ids');
    const lengths = await st.read('output.lengths');
    await st.close();
    const L = ids.shape[1];
    (cj.args.texts as string[]).forEach((t, i) => {
      const got = sp.encode(t);
      expect(got.length).toBe(lengths.raw[i]);
      expect(got).toEqual(Array.from(ids.raw.slice(i * L, i * L + got.length)));
      expect(sp.encodeAsPieces(t)).toEqual(cj.expected_pieces[i]);
      expect(sp.decode(got)).toBe(cj.expected_decoded[i]);
    });
    expect([sp.padId, sp.eosId, sp.unkId, sp.bosId]).toEqual([0, 1, 2, -1]);
    expect(sp.normalizerSpec.name).toBe('nmt_nfkc');
  });

  it('normalises through the precompiled charsmap (NFKC + nmt rules) and whitespace rules', async () => {
    const sp = await SentencePieceProcessor.load(SPIECE);
    // ligature, full-width letter, circled digit, ideographic space
    expect(sp.encodeAsPieces('ﬁne Ａ①\u3000x')).toEqual(['▁fin', 'e', '▁A', '1', '▁', 'x']);
    expect(sp.encode('ﬁne Ａ①\u3000x')).toEqual([405, 9, 89, 121, 3, 24]);
    expect(sp.normalize('ﬁne Ａ①\u3000x')).toBe('▁fine▁A1▁x');
    // combining accents compose, a zero-width space becomes a space, a soft hyphen stays (unknown)
    expect(sp.encodeAsPieces('e\u0301te\u0301')).toEqual(['▁', 'é', 't', 'é']);
    expect(sp.encode('a\u200bb\u00adc')).toEqual([13, 200, 2, 27]);
    expect(sp.normalize('  leading and   repeated   spaces ')).toBe('▁leading▁and▁repeated▁spaces');
    expect(sp.encodeAsPieces('tabs\t\tand')).toEqual(['▁', 't', 'a', 'b', 's', '▁', 'and']);
  });

  it('handles empty and whitespace-only text', async () => {
    const sp = await SentencePieceProcessor.load(SPIECE);
    for (const t of ['', '   ', '\t\n', ' \u3000 ']) {
      expect(sp.encode(t)).toEqual([]);
      expect(sp.normalize(t)).toBe('');
    }
    expect(sp.decode([])).toBe('');
  });

  it('merges runs of unknown characters into one <unk> and decodes it as " ⁇ "', async () => {
    const sp = await SentencePieceProcessor.load(SPIECE);
    expect(sp.encodePieces('東京🤖')).toEqual([{ piece: '▁', id: 3 }, { piece: '東京🤖', id: 2 }]);
    expect(sp.decode(sp.encode('東京🤖'))).toBe(' ⁇ ');
    // a lone surrogate reaches the model as U+FFFD (which nmt_nfkc turns into a space)
    expect(sp.encodeAsPieces('a\ud800b')).toEqual(['▁a', '▁b']);
    expect(smallModel().encodeAsPieces('a\ud800b')).toEqual(['▁a', '\ufffd', 'b']);
  });

  it('breaks exact float32 score ties as SentencePiece does', async () => {
    const sp = await SentencePieceProcessor.load(SPIECE);
    expect(sp.encodeAsPieces('9,000')).toEqual(['▁', '9', ',', '00', '0']);
    expect(sp.encodeAsPieces('000')).toEqual(['▁', '0', '00']);
  });

  it('rejects files that are not a sentencepiece model', () => {
    expect(() => SentencePieceProcessor.fromBytes(Uint8Array.of(0x0a, 0x10, 0x01))).toThrow(SentencePieceModelError);
    expect(() => SentencePieceProcessor.fromBytes(Uint8Array.of(0x0f))).toThrow(/wire type/);
    const real = new Uint8Array(readFileSync(SPIECE));
    expect(() => SentencePieceProcessor.fromBytes(real.subarray(0, 1000))).toThrow(SentencePieceModelError);
  });
});

describe('SentencePiece (synthetic models)', () => {
  it('prefers user-defined pieces, never uses unused ones, removes extra spaces', () => {
    const sp = smallModel();
    expect(sp.encodeAsPieces('ab abc')).toEqual(['▁', 'ab', '▁', 'ab', 'c']);
    expect(sp.encode('a<sep>b')).toEqual([7, 8, 5]);
    expect(sp.encode('abcab<sep><sep>c')).toEqual([3, 6, 9, 6, 8, 8, 9]);
    expect(sp.encodeAsPieces(' a  b ')).toEqual(['▁a', '▁b']);
    expect(sp.decode(sp.encode('a<sep>b'))).toBe('a<sep>b');
    // identity normaliser: a decomposed accent stays decomposed and is unknown
    expect(sp.encodeAsPieces('c\u00e9\u0301zz a')).toEqual(['▁', 'c', 'é', '\u0301zz', '▁a']);
    expect(sp.decode(sp.encode('xé東'))).toBe(' ⁇ é ⁇ ');
  });

  it('falls back to UTF-8 byte pieces for unknown characters and reassembles them on decode', () => {
    const sp = SentencePieceProcessor.fromBytes(modelProto([...BASE, ...BYTES, ...WORDS], true));
    expect(sp.encode('xé東')).toEqual([259, 123, 268, 233, 160, 180]);
    expect(sp.encodeAsPieces('xé東')).toEqual(['▁', '<0x78>', 'é', '<0xE6>', '<0x9D>', '<0xB1>']);
    expect(sp.decode([259, 123, 268, 233, 160, 180])).toBe('xé東');
    expect(sp.encode('c\u00e9\u0301zz a')).toEqual([259, 265, 268, 207, 132, 125, 125, 263]);
    // an incomplete UTF-8 sequence decodes to one U+FFFD per byte
    expect(sp.decodePieces(['<0xE6>', '<0x9D>', '▁a'])).toBe('\ufffd\ufffd a');
  });

  it('refuses models it cannot run as upstream would', () => {
    expect(() => SentencePieceProcessor.fromBytes(modelProto([...BASE.slice(0, 2), ...WORDS], false))).toThrow(/^<unk>: the model defines no such piece/);
    expect(() => SentencePieceProcessor.fromBytes(modelProto([...BASE, ...WORDS, ['a', -1, 1]], false))).toThrow(/defined twice/);
    expect(() => SentencePieceProcessor.fromBytes(modelProto([...BASE, ...BYTES.slice(0, 10), ...WORDS], true))).toThrow(/byte piece/);
  });
});

describe('SentencePiece model files', () => {
  it('load through the file system they are given, or from bytes already in hand', async () => {
    const bytes = new Uint8Array(readFileSync(SPIECE));
    const fs = memoryFileSystem({ '/m/spiece.model': bytes });
    const fromFs = await SentencePieceProcessor.load('/m/spiece.model', fs);
    const fromBytes = SentencePieceProcessor.fromBytes(bytes);
    const text = 'A robot arm picks up a red cube.';
    expect(fromFs.encode(text)).toEqual(fromBytes.encode(text));
    expect(fromFs.encode(text)).toEqual((await SentencePieceProcessor.load(SPIECE)).encode(text));
  });

  it('name the file when it is missing or malformed', async () => {
    const fs = memoryFileSystem({ '/m/bad.model': Uint8Array.of(0x0f) });
    await expect(SentencePieceProcessor.load('/m/missing.model', fs)).rejects.toThrow(FileError);
    await expect(SentencePieceProcessor.load('/m/bad.model', fs)).rejects.toThrow(/^\/m\/bad\.model: .*wire type/);
    await expect(SentencePieceProcessor.load('/m/bad.model', fs)).rejects.toThrow(SentencePieceModelError);
  });
});
