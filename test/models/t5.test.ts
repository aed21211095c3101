// The T5 text encoder: the vendored conformance cases (sentencepiece, t5_encoder, t5_encoder_relu)
// on both backends, the relative-position buckets, and the encoder's loading and input checks.
// The SentencePiece tokenizer's own tests are in test/text/.
import fc from 'fast-check';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import type { DType, RawArray } from '../../src/engine/dtype.js';
import { f32ToBf16 } from '../../src/engine/dtype.js';
import { type TensorSource, loadWeights } from '../../src/engine/module.js';
import { ShapeError } from '../../src/engine/tensor.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { T5Tokenizer } from '../../src/text/t5-tokenizer.js';
import {
  T5ConfigError, T5EncoderModel, parseT5Config, relativePositionBucket, relativePositionBuckets,
} from '../../src/models/t5/encoder.js';
import { T5EncoderFamily } from '../../src/models/t5/encoder.js';
import { T5TextEncoder, encodePrompts } from '../../src/models/t5/prompts.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';
import { BASE, WORDS, modelProto } from '../text/model-proto.js';

const FIX = fileURLToPath(new URL('../fixtures/t5', import.meta.url));
const CASES = ['sentencepiece', 't5_encoder', 't5_encoder_relu'];

/** The encoder cases also record one tap per named module (7). */
async function expectCasePassesT5(dir: string, backend: Backend) {
  const r = await expectCasePasses(join(FIX, dir), backend);
  if (dir.startsWith('t5_encoder')) expect(Object.keys(r.taps)).toHaveLength(7);
}

describe('T5 conformance cases', () => {
  for (const dir of CASES) {
    it(`${dir} passes on the CPU backend`, async () => expectCasePassesT5(dir, cpu));
  }
  for (const dir of CASES) {
    it(`${dir} passes on the WebGPU backend`, async () => expectCasePassesT5(dir, await webgpu()));
  }
});

// ------------------------------------------------------------------ buckets

describe('relative position buckets', () => {
  it('reproduces the T5 table (32 buckets, max distance 128, bidirectional)', () => {
    const b = (r: number) => relativePositionBucket(r, true, 32, 128);
    // exact region, then logarithmic, then saturated; keys after the query use the upper half
    expect([0, -1, -7, -8, -11, -12, -16, -31, -32, -64, -127, -128, -1000].map(b)).toEqual([0, 1, 7, 8, 8, 9, 10, 11, 12, 14, 15, 15, 15]);
    expect([1, 7, 8, 16, 32, 64, 128, 5000].map(b)).toEqual([17, 23, 24, 26, 28, 30, 31, 31]);
  });

  it('lays out (key - query) as a [q, k] table', () => {
    const t = relativePositionBuckets(3, 4, true, 32, 128);
    expect(Array.from(t)).toEqual([0, 17, 18, 19, 1, 0, 17, 18, 2, 1, 0, 17]);
  });

  it('unidirectional buckets only see the past', () => {
    expect([5, 1, 0].map((r) => relativePositionBucket(r, false, 32, 128))).toEqual([0, 0, 0]);
    expect([-1, -15, -16, -1000].map((r) => relativePositionBucket(r, false, 32, 128))).toEqual([1, 15, 16, 31]);
  });

  it('are in range, split by direction, symmetric, monotone, exact near zero and saturate far away', () => {
    const cfg = fc.record({
      half: fc.integer({ min: 2, max: 40 }),
      extra: fc.integer({ min: 1, max: 600 }),
    });
    fc.assert(fc.property(cfg, fc.integer({ min: 0, max: 3000 }), ({ half, extra }, n) => {
      const nb = 2 * half;
      const maxExact = Math.floor(half / 2);
      const maxDist = maxExact + extra;
      const b = (r: number) => relativePositionBucket(r, true, nb, maxDist);
      const neg = b(-n);
      const pos = b(n);
      expect(neg).toBeGreaterThanOrEqual(0);
      expect(neg).toBeLessThan(half);
      if (n > 0) expect(pos).toBe(neg + half);
      if (n < maxExact) expect(neg).toBe(n);
      else expect(neg).toBeGreaterThanOrEqual(maxExact);
      expect(b(-(n + 1))).toBeGreaterThanOrEqual(neg);
      if (n >= 2 * maxDist) expect(neg).toBe(half - 1);
    }), { numRuns: 400, seed: 5 });
  });
});

// ------------------------------------------------------------------ tokenizer

const SPIECE = join(FIX, 'sentencepiece', 'spiece.model');

// The synthetic SentencePiece model of test/text (ModelProto bytes from a tiny protobuf writer).

// ------------------------------------------------------------------ encoder

interface CaseData {
  config: Record<string, unknown>;
  ids: Int32Array;
  mask: Int32Array;
  shape: [number, number];
  want: Float32Array;
}

async function loadCase(name: string): Promise<CaseData> {
  const dir = join(FIX, name);
  const st = await openSafetensors(join(dir, 'case.safetensors'));
  const ids = await st.read('input.input_ids');
  const mask = await st.read('input.attention_mask');
  const want = await st.read('output.last_hidden_state');
  await st.close();
  return {
    config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')),
    ids: ids.raw as Int32Array,
    mask: mask.raw as Int32Array,
    shape: [ids.shape[0], ids.shape[1]],
    want: want.raw as Float32Array,
  };
}

/** The case's weights as an in-memory source, optionally rewritten (dtype, dropped keys). */
async function weights(name: string, opts: { bf16?: boolean; drop?: string[]; extra?: Record<string, Float32Array> } = {}): Promise<TensorSource> {
  const st = await openSafetensors(join(FIX, name, 'model.safetensors'));
  const tensors: Record<string, { dtype: DType; raw: RawArray; shape: number[] }> = {};
  for (const n of st.names) {
    if (opts.drop?.includes(n)) continue;
    const t = await st.read(n);
    tensors[n] = opts.bf16 ? { dtype: 'bf16', raw: Uint16Array.from(t.raw as Float32Array, f32ToBf16), shape: t.shape } : t;
  }
  await st.close();
  for (const [n, v] of Object.entries(opts.extra ?? {})) tensors[n] = { dtype: 'f32', raw: v, shape: [v.length] };
  return {
    names: Object.keys(tensors),
    info: (n) => ({ dtype: tensors[n].dtype === 'bf16' ? 'BF16' : 'F32', shape: tensors[n].shape }),
    read: async (n) => tensors[n],
  };
}

/** Fill a T5 encoder from an in-memory source, as loadModule would (the family's key mapping). */
async function fill(m: T5EncoderModel, src: TensorSource, backend: Backend): Promise<void> {
  await loadWeights(m, src, backend, T5EncoderFamily.loadOptions(m, src));
}

async function model(name: string, src?: TensorSource): Promise<T5EncoderModel> {
  const c = await loadCase(name);
  const m = new T5EncoderModel(parseT5Config(c.config));
  await fill(m, src ?? (await weights(name)), cpu);
  return m;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('T5 encoder', () => {
  it('parses transformers configs (feed_forward_proj) and rejects bad ones', () => {
    const g = parseT5Config({ feed_forward_proj: 'gated-gelu' });
    expect([g.isGatedAct, g.denseActFn, g.dModel, g.vocabSize]).toEqual([true, 'gelu_new', 512, 32128]);
    const r = parseT5Config({ feed_forward_proj: 'relu', d_model: 1024, num_heads: 128, d_kv: 128 });
    expect([r.isGatedAct, r.denseActFn]).toEqual([false, 'relu']);
    expect(parseT5Config({ feed_forward_proj: 'gated-silu' }).denseActFn).toBe('silu');
    expect(() => parseT5Config({ feed_forward_proj: 'fancy-relu' })).toThrow(T5ConfigError);
    expect(() => parseT5Config({ feed_forward_proj: 'gated-mish' })).toThrow(/not supported/);
    expect(() => parseT5Config({ d_model: 0 })).toThrow(/d_model/);
  });

  it('checks token ids against vocab_size and the mask against the ids', async () => {
    const m = await model('t5_encoder');
    expect(() => m.forward([[0, 5, 128]])).toThrow(RangeError);
    expect(() => m.forward([[0, 5, 128]])).toThrow(/token id 128 at \[0, 2\] is outside \[0, 128\)/);
    expect(() => m.forward([[0, -1]])).toThrow(/outside/);
    expect(() => m.forward([[0, 1.5]])).toThrow(/outside/);
    expect(() => m.forward([[1, 2], [3]])).toThrow(ShapeError);
    expect(() => m.forward([[1, 2, 3]], [[1, 1]])).toThrow(/attention_mask is \[1, 2\] but input_ids is \[1, 3\]/);
    expect(() => m.forward({ data: [1, 2, 3], shape: [3] })).toThrow(/\[batch, length\]/);
    expect(() => m.forward([[1, 2]], [[1, 2]])).toThrow(/not 0 or 1/);
    expect(() => m.forward([[]])).toThrow(/non-empty/);
    // the case tokenizer's ids go beyond this tiny model's vocabulary
    const tok = await T5Tokenizer.load(SPIECE);
    expect(() => encodePrompts(m, tok, ['A robot arm picks up a red cube'], { maxLength: 16 })).toThrow(/outside \[0, 128\)/);
    m.dispose();
  });

  it('loads either tied embedding key, ignores decoder.* / lm_head.*, and names missing keys', async () => {
    const c = await loadCase('t5_encoder_relu');
    const want = await (await model('t5_encoder_relu')).forward({ data: c.ids, shape: c.shape }, { data: c.mask, shape: c.shape }).read();
    for (const drop of [['shared.weight'], ['encoder.embed_tokens.weight']]) {
      const src = await weights('t5_encoder_relu', { drop, extra: { 'decoder.final_layer_norm.weight': new Float32Array(64), 'lm_head.weight': new Float32Array(4) } });
      const m = await model('t5_encoder_relu', src);
      expect(maxDiff(await m.forward({ data: c.ids, shape: c.shape }, { data: c.mask, shape: c.shape }).read(), want)).toBe(0);
      m.dispose();
    }
    const src = await weights('t5_encoder_relu', { drop: ['encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight'] });
    await expect(model('t5_encoder_relu', src)).rejects.toThrow(/relative_attention_bias/);
  });

  it('keeps bf16 weights in bf16 and computes with them exactly as with their float32 widening', async () => {
    const c = await loadCase('t5_encoder');
    const src = await weights('t5_encoder', { bf16: true });
    const m16 = await model('t5_encoder', src);
    expect(m16.encoder.block[1].ff.DenseReluDense.wo.weight.t.dtype).toBe('bf16');
    expect(m16.shared.weight.t.dtype).toBe('bf16');
    const m32 = new T5EncoderModel(parseT5Config(c.config));
    await loadWeights(m32, src, cpu, { castTo: 'f32', mapKey: (k) => (k === 'encoder.embed_tokens.weight' ? null : k) });
    expect(m32.shared.weight.t.dtype).toBe('f32');
    const a = await m16.forward({ data: c.ids, shape: c.shape }, { data: c.mask, shape: c.shape }).read();
    const b = await m32.forward({ data: c.ids, shape: c.shape }, { data: c.mask, shape: c.shape }).read();
    expect(maxDiff(a, b)).toBe(0);
    m16.dispose();
    m32.dispose();
  });

  it('a fully padded row attends uniformly (finfo.min, not -inf) and leaves the other rows alone', async () => {
    const c = await loadCase('t5_encoder');
    const m = await model('t5_encoder');
    const [B, L] = c.shape;
    const D = 64;
    // row 0 as in the case; row 1 keeps its ids but its mask is all zeros
    const mask = c.mask.slice();
    mask.fill(0, L, 2 * L);
    const out = await m.forward({ data: c.ids, shape: [B, L] }, { data: mask, shape: [B, L] }).read();
    expect(out.every(Number.isFinite)).toBe(true);
    expect(maxDiff(out.subarray(0, L * D), c.want.subarray(0, L * D))).toBeLessThan(1e-4);
    // uniform attention: each position sees the mean over all positions, so permuting the
    // padded row's tokens permutes its outputs (a relative-position bias would break this)
    const perm = Array.from({ length: L }, (_, j) => (j * 7 + 3) % L);
    const ids2 = c.ids.slice();
    perm.forEach((p, j) => { ids2[L + j] = c.ids[L + p]; });
    const out2 = await m.forward({ data: ids2, shape: [B, L] }, { data: mask, shape: [B, L] }).read();
    const row = out.subarray(L * D);
    const row2 = out2.subarray(L * D);
    let worst = 0;
    perm.forEach((p, j) => { worst = Math.max(worst, maxDiff(row2.subarray(j * D, (j + 1) * D), row.subarray(p * D, (p + 1) * D))); });
    expect(worst).toBeLessThan(1e-5);
    m.dispose();
  });

  it('on WebGPU too: bf16 weights and a fully padded row give the CPU oracle\'s results', async () => {
    const c = await loadCase('t5_encoder');
    const gpu = await webgpu();
    const mask = c.mask.slice();
    mask.fill(0, c.shape[1]);
    const outs: Float32Array[] = [];
    for (const be of [cpu, gpu]) {
      const m = new T5EncoderModel(parseT5Config(c.config));
      await fill(m, await weights('t5_encoder', { bf16: true }), be);
      expect(m.encoder.block[0].attention.SelfAttention.q.weight.t.dtype).toBe('bf16');
      outs.push((await m.forward({ data: c.ids, shape: c.shape }, { data: mask, shape: c.shape }).read()) as Float32Array);
      m.dispose();
    }
    for (let i = 0; i < outs[0].length; i++) {
      if (!(Math.abs(outs[1][i] - outs[0][i]) <= 1e-4 + 1e-3 * Math.abs(outs[0][i]))) {
        expect.fail(`element ${i}: webgpu ${outs[1][i]}, cpu ${outs[0][i]}`);
      }
    }
  });

  it('encodePrompts tokenizes, pads to maxLength and zeroes the padded positions', async () => {
    // a transformers-style folder: config.json, model.safetensors, spiece.model
    const dir = mkdtempSync(join(tmpdir(), 't5-'));
    copyFileSync(join(FIX, 't5_encoder', 'config.json'), join(dir, 'config.json'));
    copyFileSync(join(FIX, 't5_encoder', 'model.safetensors'), join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'spiece.model'), modelProto([...BASE, ...WORDS], false));
    const enc = await T5TextEncoder.load(dir, cpu);
    rmSync(dir, { recursive: true, force: true });
    const m = enc.model;
    // 13 pieces + 100 sentinels: <extra_id_0> is id 112
    expect(enc.tokenizer.encode('<extra_id_0>')).toEqual([112, 1]);
    expect(enc.encodePrompts(['<extra_id_0> ab'], { maxLength: 8 }).lengths).toEqual([4]);
    const tok = enc.tokenizer;
    const texts = ['ab a b', 'c'];
    const { embeddings, mask, lengths, ids } = encodePrompts(m, tok, texts, { maxLength: 8 });
    expect(embeddings.shape).toEqual([2, 8, 64]);
    // 'ab a b' -> ▁ ab ▁a ▁b </s>; 'c' -> ▁ c </s>
    expect(lengths).toEqual([5, 3]);
    expect(Array.from(ids)).toEqual([3, 6, 7, 11, 1, 0, 0, 0, 3, 9, 1, 0, 0, 0, 0, 0]);
    const e = await embeddings.read();
    const direct = await m.forward({ data: ids, shape: [2, 8] }, { data: mask, shape: [2, 8] }).read();
    for (let b = 0; b < 2; b++) {
      for (let j = 0; j < 8; j++) {
        const got = e.subarray((b * 8 + j) * 64, (b * 8 + j + 1) * 64);
        if (j < lengths[b]) expect(maxDiff(got, direct.subarray((b * 8 + j) * 64, (b * 8 + j + 1) * 64))).toBe(0);
        else expect(got.every((v) => v === 0)).toBe(true);
      }
    }
    m.dispose();
  });
});
