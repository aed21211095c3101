// The Aegis prompt guard: the vendored cases on both backends, the PEFT LoRA Linear against its
// merged weights, greedy KV-cached generation against cache-free recomputation, the moderation
// template and upstream's parse on our own answers (its quirks included), the Llama-2 BPE
// tokenizer on a small model built here, and loadAegis over a Hugging Face cache made here.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import * as F from '../../src/engine/ops.js';
import { encodeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { aegisFolders, loadAegis } from '../../src/models/guardrail/aegis.js';
import { LlamaForCausalLM, parseLlamaConfig } from '../../src/models/guardrail/llama.js';
import { generateGreedy, loadLlama } from '../../src/models/guardrail/llamaguard.js';
import { LoraLinear, LoraSwitch, isLoraTarget, parseLoraConfig, peftKeyToModel } from '../../src/models/lora.js';
import { AEGIS_DEFAULT_BLOCK_MESSAGE, AEGIS_UNSAFE_CATEGORIES, aegisModerationPrompt, parseAegisAnswer, pythonInt } from '../../src/text/aegis.js';
import { LlamaTokenizer } from '../../src/text/llama-tokenizer.js';
import { assertClose, cpu, expectCasePasses, randomValues, webgpu } from '../harness.js';
import { type Piece, sentencePieceModel } from './sentencepiece-writer.js';

const FIX = fileURLToPath(new URL('../fixtures/guardrail', import.meta.url));
const CASES = ['aegis_text', 'llamaguard_lora', 'llamaguard_lora_bf16'];

describe('Aegis conformance cases', () => {
  for (const dir of CASES) {
    it(`${dir} passes on the CPU backend`, async () => {
      const r = await expectCasePasses(join(FIX, dir), cpu);
      if (dir !== 'aegis_text') expect(Object.keys(r.taps)).toHaveLength(5);
    });
    it(`${dir} passes on the WebGPU backend`, async () => {
      const r = await expectCasePasses(join(FIX, dir), await webgpu());
      if (dir !== 'aegis_text') expect(Object.keys(r.taps)).toHaveLength(5);
    });
  }
});

describe('Aegis template and parse', () => {
  it('renders the policy, the conversation and the instructions in order', () => {
    const p = aegisModerationPrompt('a cat on a mat');
    expect(p.startsWith("[INST] Task: Check if there is unsafe content in 'User' messages")).toBe(true);
    expect(p.endsWith('comma-separated list of violated categories. [/INST]')).toBe(true);
    expect(p).toContain('<BEGIN CONVERSATION>\n\n        User: a cat on a mat\n\n<END CONVERSATION>');
    expect(AEGIS_UNSAFE_CATEGORIES).toHaveLength(11);
    expect(p).not.toContain('O9:');
    let at = 0;
    for (const c of AEGIS_UNSAFE_CATEGORIES) {
      const i = p.indexOf(c.instruction, at);
      expect(i).toBeGreaterThan(at);
      at = i;
    }
  });

  it('reads verdicts and categories as upstream does, quirks included', () => {
    const msg = (name: string) => {
      const c = AEGIS_UNSAFE_CATEGORIES.find((x) => x.category === name)!;
      return `${c.category}: ${c.blockedReason}`;
    };
    const cases: [string, boolean, string][] = [
      ['safe', true, ''],
      ['Safe.', true, ''],
      ['unsafe\nO4', false, msg('weapons')],
      ['unsafe\nO9', false, msg('harassment')], // the 9th entry is O10
      ['unsafe\nO11', false, msg('profanity')],
      ['unsafe\nO12', false, AEGIS_DEFAULT_BLOCK_MESSAGE],
      ['unsafe\nO0', false, AEGIS_DEFAULT_BLOCK_MESSAGE], // index -1 is not read from the end
      ['unsafe\nOO2', false, msg('sexual')], // every leading O goes
      ['unsafe\n +3 \r', false, msg('criminal_planning')], // int() takes a sign and whitespace
      ['unsafe\nO1_0', false, msg('threat')], // and underscores between digits
      ['unsafe\nO\u0663', false, msg('criminal_planning')], // and any Unicode decimal digit
      ['unsafe\n O4', false, AEGIS_DEFAULT_BLOCK_MESSAGE], // a space before the O stays
      ['unsafe\nO4\nO5', false, msg('weapons')],
      ['this is NOT UNSAFE', false, AEGIS_DEFAULT_BLOCK_MESSAGE],
      ['', true, ''],
    ];
    for (const [answer, safe, message] of cases) expect(parseAegisAnswer(answer), JSON.stringify(answer)).toEqual({ safe, message });
    expect([pythonInt('12'), pythonInt('_1'), pythonInt('1_'), pythonInt('1__0'), pythonInt('-'), pythonInt('\u00a07\u3000')]).toEqual([12, null, null, null, null, 7]);
  });
});

// ------------------------------------------------------------------ LoRA

async function values(t: { read(): Promise<ArrayLike<number>> }): Promise<Float64Array> {
  return Float64Array.from(await t.read());
}

describe('PEFT LoRA Linear', () => {
  const backends: [string, () => Promise<Backend>][] = [['cpu', async () => cpu], ['webgpu', webgpu]];
  for (const [name, get] of backends) {
    it(`unmerged equals merged W + (alpha / r) B A on ${name}`, async () => {
      const be = await get();
      const [inF, outF, r, N] = [13, 7, 3, 5];
      const lora = parseLoraConfig({ r, lora_alpha: 5, target_modules: ['q_proj'] });
      const lin = new LoraLinear(inF, outF, true, lora, new LoraSwitch());
      const W = randomValues(outF * inF, 'w');
      const b = randomValues(outF, 'b');
      const A = randomValues(r * inF, 'a');
      const B = randomValues(outF * r, 'B');
      const x = randomValues(N * inF, 'x');
      lin.weight.set(F.fromArray(be, W, [outF, inF]));
      lin.bias!.set(F.fromArray(be, b, [outF]));
      lin.lora_A.weight.set(F.fromArray(be, A, [r, inF]));
      lin.lora_B.weight.set(F.fromArray(be, B, [outF, r]));
      const merged = new Float64Array(outF * inF);
      for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += B[o * r + k] * A[k * inF + i];
        merged[o * inF + i] = W[o * inF + i] + (5 / 3) * s;
      }
      const want = new Float64Array(N * outF);
      for (let n = 0; n < N; n++) for (let o = 0; o < outF; o++) {
        let s = b[o];
        for (let i = 0; i < inF; i++) s += merged[o * inF + i] * x[n * inF + i];
        want[n * outF + o] = s;
      }
      const y = lin.forward(F.fromArray(be, x, [N, inF]));
      assertClose(await values(y), want, { atol: 1e-5, rtol: 1e-5 });
      y.dispose();
      lin.dispose();
    });
  }

  it('matches targets and adapter keys as PEFT names them', () => {
    const list = parseLoraConfig({ r: 2, lora_alpha: 4, target_modules: ['q_proj', 'down_proj'] });
    expect(list.scaling).toBe(2);
    expect(isLoraTarget(list, 'model.layers.3.self_attn.q_proj')).toBe(true);
    expect(isLoraTarget(list, 'model.layers.3.self_attn.k_proj')).toBe(false);
    expect(isLoraTarget(list, 'model.layers.3.mlp.xdown_proj')).toBe(false);
    const re = parseLoraConfig({ r: 4, lora_alpha: 4, target_modules: '.*layers\\.0\\..*proj', use_rslora: true });
    expect(re.scaling).toBe(2);
    expect(isLoraTarget(re, 'model.layers.0.mlp.up_proj')).toBe(true);
    expect(isLoraTarget(re, 'model.layers.1.mlp.up_proj')).toBe(false);
    expect(peftKeyToModel('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')).toBe('model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(peftKeyToModel('base_model.model.lm_head.lora_B.default.weight')).toBe('lm_head.lora_B.weight');
    expect(() => parseLoraConfig({ r: 2, target_modules: ['q_proj'], use_dora: true })).toThrow(/use_dora/);
    expect(() => parseLoraConfig({ r: 0, target_modules: ['q_proj'] })).toThrow(/r must be/);
  });
});

// ------------------------------------------------------------------ a tiny release

const CONFIG = {
  model_type: 'llama', hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000, vocab_size: 0, eos_token_id: 2, bos_token_id: 1,
  tie_word_embeddings: false,
};

/** [piece, score, type]: 1 normal, 2 unknown, 3 control, 6 byte */
const PIECES: Piece[] = [
  ['<unk>', 0, 2], ['<s>', 0, 3], ['</s>', 0, 3],
  ...Array.from({ length: 256 }, (_, i): Piece => [`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`, 0, 6]),
  ['\u2581', -1, 1], ['a', -2, 1], ['b', -2, 1], ['s', -2, 1], ['f', -2, 1], ['e', -2, 1], ['\u2581a', -1, 1], ['ab', -2, 1],
  ['\u2581ab', -0.5, 1], ['\u2581s', -3, 1], ['af', -3, 1], ['\u2581saf', -0.2, 1], ['\u2581safe', -0.1, 1], ['\u2581sa', -2.5, 1],
];
function bpeModel(extra: readonly string[] = []): Uint8Array {
  const have = new Set(PIECES.map((p) => p[0]));
  const pieces = [...PIECES, ...extra.filter((p) => !have.has(p)).map((p): Piece => [p, p.length, 1])];
  return sentencePieceModel(pieces);
}

describe('Llama-2 tokenizer (SentencePiece BPE, byte fallback)', () => {
  const tok = LlamaTokenizer.fromBytes(bpeModel());
  const id = (p: string) => PIECES.findIndex((x) => x[0] === p);
  it('merges by piece score, leftmost first, with the dummy prefix and escaped spaces', () => {
    expect(tok.encode('ab a')).toEqual([id('\u2581ab'), id('\u2581a')]);
    expect(tok.encode('safe')).toEqual([id('\u2581safe')]);
  });
  it('falls back to UTF-8 bytes and cuts out control pieces written in the text', () => {
    expect(tok.encode('a\u00e9')).toEqual([id('\u2581a'), id('<0xC3>'), id('<0xA9>')]);
    expect(tok.encode('a</s>b')).toEqual([id('\u2581a'), 2, id('\u2581'), id('b')]);
    expect(tok.eosId).toBe(2);
    expect(tok.bosId).toBe(1);
  });
  it('decodes without special tokens, bytes joined, one leading space removed', () => {
    expect(tok.decode([1, id('\u2581safe'), 2])).toBe('safe');
    expect(tok.decode([id('\u2581ab'), id('\u2581a'), id('<0xC3>'), id('<0xA9>'), 0])).toBe('ab a\u00e9');
  });
});

function weights(cfg: typeof CONFIG, seed: string): Record<string, TensorToWrite> {
  const c = parseLlamaConfig(cfg);
  const out: Record<string, TensorToWrite> = {};
  const put = (k: string, shape: number[], scale = 0.3, offset = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    out[k] = { dtype: 'F32', shape, raw: Float32Array.from(randomValues(n, `${seed}${k}`), (v) => offset + scale * v) };
  };
  const { hiddenSize: D, intermediateSize: I, numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: hd, vocabSize: V } = c;
  put('model.embed_tokens.weight', [V, D], 1);
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    put(`${p}.self_attn.q_proj.weight`, [H * hd, D]);
    put(`${p}.self_attn.k_proj.weight`, [Hkv * hd, D]);
    put(`${p}.self_attn.v_proj.weight`, [Hkv * hd, D]);
    put(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    put(`${p}.mlp.gate_proj.weight`, [I, D]);
    put(`${p}.mlp.up_proj.weight`, [I, D]);
    put(`${p}.mlp.down_proj.weight`, [D, I]);
    put(`${p}.input_layernorm.weight`, [D], 0.1, 1);
    put(`${p}.post_attention_layernorm.weight`, [D], 0.1, 1);
  }
  put('model.norm.weight', [D], 0.1, 1);
  put('lm_head.weight', [V, D], 1);
  return out;
}

function adapter(cfg: typeof CONFIG, r: number): Record<string, TensorToWrite> {
  const c = parseLlamaConfig(cfg);
  const out: Record<string, TensorToWrite> = {};
  for (let i = 0; i < c.numHiddenLayers; i++) {
    for (const [name, inF, outF] of [['self_attn.q_proj', c.hiddenSize, c.numAttentionHeads * c.headDim], ['self_attn.v_proj', c.hiddenSize, c.numKeyValueHeads * c.headDim]] as const) {
      const k = `base_model.model.model.layers.${i}.${name}`;
      out[`${k}.lora_A.weight`] = { dtype: 'F32', shape: [r, inF], raw: randomValues(r * inF, `A${k}`) };
      out[`${k}.lora_B.weight`] = { dtype: 'F32', shape: [outF, r], raw: randomValues(outF * r, `B${k}`) };
    }
  }
  return out;
}

/**
 * Every prefix of every "▁word" of the template, scored by length: each word then merges into
 * one token, so the prompt is ~1300 tokens instead of one per character (CPU attention is O(L²)).
 */
function templateWords(): string[] {
  const words = new Set<string>();
  for (const w of aegisModerationPrompt('').split(' ')) {
    const chars = [...`\u2581${w}`];
    for (let n = 2; n <= chars.length; n++) words.add(chars.slice(0, n).join(''));
  }
  return [...words].sort();
}

describe('loadAegis over a Hugging Face cache', () => {
  const root = mkdtempSync(join(tmpdir(), 'aegis-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const tokBytes = bpeModel(templateWords());
  const tok = LlamaTokenizer.fromBytes(tokBytes);
  const cfg = { ...CONFIG, vocab_size: tok.model.pieces.length };
  const base = join(root, 'models--meta-llama--LlamaGuard-7b');
  const ad = join(root, 'models--nvidia--Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0');
  const baseSnap = join(base, 'snapshots', 'abc123');
  const adSnap = join(ad, 'snapshots', 'def456');
  for (const d of [baseSnap, join(base, 'snapshots', 'old000'), join(base, 'refs'), adSnap]) mkdirSync(d, { recursive: true });
  writeFileSync(join(base, 'refs', 'main'), 'abc123\n');
  writeFileSync(join(baseSnap, 'config.json'), JSON.stringify(cfg));
  writeFileSync(join(baseSnap, 'tokenizer.model'), tokBytes);
  writeFileSync(join(baseSnap, 'model.safetensors'), encodeSafetensors(weights(cfg, 's')));
  writeFileSync(join(adSnap, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'], bias: 'none' }));
  writeFileSync(join(adSnap, 'adapter_model.safetensors'), encodeSafetensors(adapter(cfg, 2)));

  it('finds the snapshots refs/main names', async () => {
    expect(await aegisFolders(root)).toEqual({ base: baseSnap, adapter: adSnap });
  });

  it('answers as tokenizer -> greedy generation -> decode -> parse, the KV-cached tokens equal to recomputation', async () => {
    const guard = await loadAegis(root, cpu);
    const v = await guard.check('a robot arm');
    guard.dispose();
    expect(v.error).toBeUndefined();
    const model = await loadLlama(baseSnap, cpu, { adapter: adSnap });
    expect(model.loraTargets).toHaveLength(4);
    const ids = tok.encode(aegisModerationPrompt('a robot arm'));
    const gen = await generateGreedy(model, { data: ids, shape: [1, ids.length] }, { maxNewTokens: 100, padTokenId: 2 });
    expect(v.answer).toBe(tok.decode(gen.tokens));
    expect({ safe: v.safe, message: v.message }).toEqual(parseAegisAnswer(v.answer));
    // cache-free: the whole sequence again at every step, argmax of the last row
    const seq = ids.slice(0, 40);
    const cached = await generateGreedy(model, { data: seq, shape: [1, seq.length] }, { maxNewTokens: 6, eosTokenIds: [-1] });
    const V = cfg.vocab_size;
    for (let s = 0; s < 6; s++) {
      const logits = await model.forward({ data: seq, shape: [1, seq.length] }).read();
      const last = Array.from(logits.slice((seq.length - 1) * V));
      const next = last.indexOf(Math.max(...last));
      expect(cached.tokens[s]).toBe(next);
      seq.push(next);
    }
    // the adapter changes the model
    const withA = await model.forward({ data: ids.slice(0, 8), shape: [1, 8] }).read();
    const without = await model.withoutAdapter(() => model.forward({ data: ids.slice(0, 8), shape: [1, 8] }).read());
    expect(Math.max(...Array.from(withA, (x, i) => Math.abs(x - without[i])))).toBeGreaterThan(1e-3);
    model.dispose();
  });

  for (const [name, get] of [['cpu', async () => cpu], ['webgpu', webgpu]] as const) it(`generates a left-padded batch as each row alone on ${name} (positions from the mask, padded keys masked)`, async () => {
    const model = await loadLlama(baseSnap, await get(), { adapter: adSnap });
    const rows = [[5, 270, 261, 7, 9, 11], [40, 41, 42, 43]];
    const alone = [];
    for (const r of rows) alone.push(Array.from((await generateGreedy(model, { data: r, shape: [1, r.length] }, { maxNewTokens: 5, eosTokenIds: [-1] })).tokens));
    const L = 6;
    const data = rows.flatMap((r) => [...new Array(L - r.length).fill(0), ...r]);
    const mask = rows.flatMap((r) => [...new Array(L - r.length).fill(0), ...new Array(r.length).fill(1)]);
    const both = await generateGreedy(model, { data, shape: [2, L] }, { maxNewTokens: 5, eosTokenIds: [-1], attentionMask: mask, stepLogits: true });
    expect([Array.from(both.tokens.slice(0, 5)), Array.from(both.tokens.slice(5))]).toEqual(alone);
    expect(both.stepLogits).toHaveLength(2 * 5 * cfg.vocab_size);
    model.dispose();
  });

  it('also loads a plain folder with the adapter files beside the base model', async () => {
    const plain = join(root, 'plain');
    mkdirSync(plain);
    for (const f of ['config.json', 'tokenizer.model', 'model.safetensors']) writeFileSync(join(plain, f), new Uint8Array(readFileSync(join(baseSnap, f))));
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) writeFileSync(join(plain, f), new Uint8Array(readFileSync(join(adSnap, f))));
    expect(await aegisFolders(plain)).toEqual({ base: plain, adapter: plain });
    (await loadAegis(plain, cpu)).dispose();
    const a = await loadLlama(plain, cpu, { adapter: plain });
    const b = await loadLlama(baseSnap, cpu, { adapter: adSnap });
    const ids = { data: [5, 270, 261, 7, 9], shape: [1, 5] };
    expect(Array.from(await a.forward(ids).read())).toEqual(Array.from(await b.forward(ids).read()));
    a.dispose();
    b.dispose();
  });

  it('refuses a cache missing the adapter, and a model whose targets match nothing', async () => {
    const half = join(root, 'half');
    mkdirSync(join(half, 'models--meta-llama--LlamaGuard-7b', 'snapshots', 'x'), { recursive: true });
    await expect(aegisFolders(half)).rejects.toThrow(/Aegis-AI-Content-Safety/);
    expect(() => new LlamaForCausalLM(parseLlamaConfig(cfg), parseLoraConfig({ r: 2, target_modules: ['qkv'] }))).toThrow(/names no Linear/);
  });
});
