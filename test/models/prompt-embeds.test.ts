// The Predict2.5 / Transfer2.5 prompt encoder (spec prompt_embeds.md): the vendored
// vlm.prompt_embeds cases on both backends, then the spec point by point: the chat-templated ids
// (rendered text, truncation and padding on the sides the tokenizer files name, the pad token),
// which hidden states are concatenated and how they are standardised, rows independent of their
// batch, pads embedded like tokens, other sizes and bf16 weights on both backends, the errors a
// user meets, and the released folder layout (text weights only, planned without reading them).
import {
  closeSync, copyFileSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { CpuBackend } from '../../src/engine/cpu/backend.js';
import { capture } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { type TensorToWrite, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { ModelFolderError, loadModule } from '../../src/models/load.js';
import { COSMOS_REASON1_7B_CONFIG } from '../../src/models/vlm/config.js';
import { Qwen2_5_VLFamily } from '../../src/models/vlm/language.js';
import {
  COSMOS_PROMPT_SYSTEM, ReasonPromptEncoder, ReasonPromptTokenizer, ReasonTextFamily, STANDARDIZE_EPS, standardizeTokens,
} from '../../src/models/vlm/prompt-embeds.js';
import { assertClose, cpu, expectCasePasses, webgpu } from '../harness.js';

const FIX = fileURLToPath(new URL('../fixtures/prompt_embeds', import.meta.url));
const CASES = ['short_prompt', 'long_prompt_bf16', 'batch_negative'];
const TOL = { atol: 1e-4, rtol: 1e-3 };

interface CaseArgs {
  prompts: string[];
  rendered: string[];
  max_sequence_length: number;
  n_tokens_before_truncation: number[];
  negative_prompts_used?: string[];
  negative_rendered?: string[];
  negative_n_tokens_before_truncation?: number[];
  pad_token_id: number;
}

function caseArgs(name: string): CaseArgs {
  return JSON.parse(readFileSync(join(FIX, name, 'case.json'), 'utf8')).args as CaseArgs;
}

async function caseTensor(name: string, key: string): Promise<number[]> {
  const f = await openSafetensors(join(FIX, name, 'case.safetensors'));
  try {
    return Array.from((await f.read(key)).raw as ArrayLike<number>);
  } finally {
    await f.close();
  }
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'prompt-embeds-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A fresh folder holding copies of `files` from a case (the tokenizer files by default). */
function copyOf(name: string, files = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']): string {
  const dir = mkdtempSync(join(tmp, `${name}-`));
  for (const f of files) copyFileSync(join(FIX, name, f), join(dir, f));
  return dir;
}

/** A text_encoder folder as released: the case's config, weights and tokenizer files (no case.safetensors beside them). */
const encoderFolder = (name: string) => copyOf(name, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']);

function editJson(path: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(path, 'utf8'));
  edit(j);
  writeFileSync(path, JSON.stringify(j));
}

describe('vlm.prompt_embeds conformance cases', () => {
  for (const name of CASES) {
    it(`${name} passes on the CPU backend (with its 5 taps)`, async () => {
      const r = await expectCasePasses(join(FIX, name), cpu);
      expect(Object.keys(r.taps).sort()).toEqual(['hidden_states.0', 'hidden_states.1', 'hidden_states.2', 'hidden_states.3', 'model.layers.2']);
    });
  }
  for (const name of CASES) it(`${name} passes on the WebGPU backend`, async () => expectCasePasses(join(FIX, name), await webgpu()));
});

/** A copy of a case under another name, changed by `edit` (case.json as an object, the folder). */
async function variantCase(name: string, edit: (json: Record<string, unknown>, dir: string) => Promise<void> | void): Promise<string> {
  const dir = mkdtempSync(join(tmp, 'variant-'));
  for (const f of readdirSync(join(FIX, name))) copyFileSync(join(FIX, name, f), join(dir, f));
  const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
  await edit(json, dir);
  writeFileSync(join(dir, 'case.json'), JSON.stringify(json));
  return dir;
}

describe('vlm.prompt_embeds reads what the case gives, whatever its name', () => {
  it('the template in chat_template.json, as case.json lists it', async () => {
    const dir = await variantCase('batch_negative', (j, d) => {
      const template = readFileSync(join(d, 'chat_template.jinja'), 'utf8');
      rmSync(join(d, 'chat_template.jinja'));
      writeFileSync(join(d, 'chat_template.json'), JSON.stringify({ chat_template: template }));
      j.files = { 'chat_template.json': 'template', 'tokenizer.json': 'bpe', 'tokenizer_config.json': 'config' };
    });
    await expectCasePasses(dir, cpu);
  });

  it('tokenizer files in a subfolder, listed by path', async () => {
    const dir = await variantCase('short_prompt', (j, d) => {
      mkdirSync(join(d, 'tok'));
      for (const f of ['chat_template.jinja', 'tokenizer.json', 'tokenizer_config.json']) renameSync(join(d, f), join(d, 'tok', f));
      j.files = ['tok/tokenizer.json', 'tok/tokenizer_config.json', 'tok/chat_template.jinja'];
    });
    await expectCasePasses(dir, cpu);
  });

  it('without args.prompts: the encoder half on input.input_ids', async () => {
    const dir = await variantCase('short_prompt', (j) => {
      delete (j.args as Record<string, unknown>).prompts;
    });
    await expectCasePasses(dir, cpu);
  });

  it('num_videos_per_prompt = 2: each prompt\'s embeddings twice, copies adjacent', async () => {
    const dir = await variantCase('batch_negative', async (j, d) => {
      (j.args as Record<string, unknown>).num_videos_per_prompt = 2;
      const f = await openSafetensors(join(d, 'case.safetensors'));
      const out: Record<string, TensorToWrite> = {};
      for (const n of f.names) {
        const t = await f.read(n);
        if (n.endsWith('prompt_embeds')) {
          const row = t.raw.length / t.shape[0];
          const raw = new Float32Array(2 * t.raw.length);
          for (let b = 0; b < t.shape[0]; b++) for (let k = 0; k < 2; k++) raw.set((t.raw as Float32Array).subarray(b * row, (b + 1) * row), (2 * b + k) * row);
          out[n] = { dtype: 'f32', shape: [2 * t.shape[0], ...t.shape.slice(1)], raw };
        } else {
          out[n] = { dtype: t.dtype === 'i32' ? 'I64' : t.dtype, shape: t.shape, raw: t.raw };
        }
      }
      await f.close();
      await writeSafetensors(join(d, 'case.safetensors'), out);
    });
    const r = await expectCasePasses(dir, cpu);
    expect(Object.keys(r.outputs).sort()).toEqual(['input_ids', 'negative_input_ids', 'negative_prompt_embeds', 'prompt_embeds']);
  });
});

// ------------------------------------------------------------------ ids

describe('prompt ids', () => {
  it('render [system, user] with the template and give the cases\' ids, lengths before truncation included', async () => {
    for (const name of CASES) {
      const a = caseArgs(name);
      const tok = await ReasonPromptTokenizer.load(join(FIX, name));
      expect(tok.settings.padId).toBe(a.pad_token_id);
      expect(a.prompts.map((p) => tok.render(p))).toEqual(a.rendered);
      const t = tok.tokenize(a.prompts, a.max_sequence_length);
      expect([t.batch, t.length]).toEqual([a.prompts.length, a.max_sequence_length]);
      expect(Array.from(t.ids)).toEqual(await caseTensor(name, 'output.input_ids'));
      expect(t.lengths).toEqual(a.n_tokens_before_truncation);
      if (a.negative_prompts_used) {
        expect(a.negative_prompts_used.map((p) => tok.render(p))).toEqual(a.negative_rendered);
        const n = tok.tokenize(a.negative_prompts_used, a.max_sequence_length);
        expect(Array.from(n.ids)).toEqual(await caseTensor(name, 'output.negative_input_ids'));
        expect(n.lengths).toEqual(a.negative_n_tokens_before_truncation);
      }
    }
  });

  it('use the Cosmos system prompt and no assistant header', async () => {
    const tok = await ReasonPromptTokenizer.load(join(FIX, 'short_prompt'));
    expect(COSMOS_PROMPT_SYSTEM).toBe('You are a helpful assistant who will provide prompts to an image generator.');
    expect(tok.render('x')).toBe(`<|im_start|>system\n${COSMOS_PROMPT_SYSTEM}<|im_end|>\n<|im_start|>user\nx<|im_end|>\n`);
  });

  it('right by default: a short prompt ends <|im_end|> \\n then pads; a long one loses its tail and <|im_end|>', async () => {
    const tok = await ReasonPromptTokenizer.load(join(FIX, 'short_prompt'));
    const imEnd = tok.bpe.tokenToId('<|im_end|>')!;
    const pad = tok.bpe.tokenToId('<|endoftext|>')!;
    const [short, long] = [caseArgs('short_prompt').prompts[0], caseArgs('long_prompt_bf16').prompts[0]];
    const full = tok.encodeOne(short);
    const s = tok.tokenize([short], 80);
    expect(Array.from(s.ids.subarray(0, full.length))).toEqual(full);
    expect(s.ids[full.length - 2]).toBe(imEnd);
    expect(Array.from(s.ids.subarray(full.length))).toEqual(new Array(80 - full.length).fill(pad));
    const l = tok.tokenize([long], 80);
    expect(Array.from(l.ids)).toEqual(tok.encodeOne(long).slice(0, 80));
    // only the system turn's <|im_end|> is left; the user turn's closing one was cut
    expect(Array.from(l.ids).filter((id) => id === imEnd)).toHaveLength(1);
    expect(Array.from(s.ids).filter((id) => id === imEnd)).toHaveLength(2);
    expect(l.lengths[0]).toBeGreaterThan(80);
  });

  it('pad and truncate on the left when tokenizer_config.json says left', async () => {
    const dir = copyOf('short_prompt');
    editJson(join(dir, 'tokenizer_config.json'), (j) => { j.padding_side = 'left'; j.truncation_side = 'left'; });
    const tok = await ReasonPromptTokenizer.load(dir);
    expect(tok.settings).toMatchObject({ paddingSide: 'left', truncationSide: 'left' });
    const [short, long] = [caseArgs('short_prompt').prompts[0], caseArgs('long_prompt_bf16').prompts[0]];
    const full = tok.encodeOne(short);
    const s = tok.tokenize([short, long], 80);
    expect(Array.from(s.ids.subarray(0, 80))).toEqual([...new Array(80 - full.length).fill(tok.settings.padId), ...full]);
    const fullLong = tok.encodeOne(long);
    expect(Array.from(s.ids.subarray(80))).toEqual(fullLong.slice(fullLong.length - 80));
    expect(s.lengths).toEqual([full.length, fullLong.length]);
  });

  it('take the sides from tokenizer.json padding / truncation when tokenizer_config.json names none; the config wins', async () => {
    const dir = copyOf('short_prompt');
    editJson(join(dir, 'tokenizer.json'), (j) => {
      j.padding = { direction: 'Left', pad_id: 1456, pad_token: '<|endoftext|>', pad_type_id: 0, strategy: 'BatchLongest', pad_to_multiple_of: null };
      j.truncation = { direction: 'Left', max_length: 512, strategy: 'LongestFirst', stride: 0 };
    });
    expect((await ReasonPromptTokenizer.load(dir)).settings).toMatchObject({ paddingSide: 'left', truncationSide: 'left' });
    editJson(join(dir, 'tokenizer_config.json'), (j) => { j.padding_side = 'right'; });
    expect((await ReasonPromptTokenizer.load(dir)).settings).toMatchObject({ paddingSide: 'right', truncationSide: 'left' });
  });

  it('read the pad token from tokenizer_config.json', async () => {
    const dir = copyOf('short_prompt');
    editJson(join(dir, 'tokenizer_config.json'), (j) => { j.pad_token = '<|im_end|>'; });
    const tok = await ReasonPromptTokenizer.load(dir);
    expect(tok.settings.padId).toBe(tok.bpe.tokenToId('<|im_end|>'));
    expect(tok.tokenize(['a'], 60).ids[59]).toBe(tok.settings.padId);
  });

  it('find the template in chat_template.json or tokenizer_config.json as the release keeps it', async () => {
    const want = await ReasonPromptTokenizer.load(join(FIX, 'short_prompt'));
    const template = readFileSync(join(FIX, 'short_prompt', 'chat_template.jinja'), 'utf8');
    const a = copyOf('short_prompt', ['tokenizer.json', 'tokenizer_config.json']);
    writeFileSync(join(a, 'chat_template.json'), JSON.stringify({ chat_template: template }));
    const b = copyOf('short_prompt', ['tokenizer.json', 'tokenizer_config.json']);
    editJson(join(b, 'tokenizer_config.json'), (j) => { j.chat_template = template; });
    const p = caseArgs('batch_negative').prompts;
    for (const dir of [a, b]) expect((await ReasonPromptTokenizer.load(dir)).tokenize(p, 90).ids).toEqual(want.tokenize(p, 90).ids);
  });

  it('errors name the missing or malformed file', async () => {
    const empty = mkdtempSync(join(tmp, 'empty-'));
    await expect(ReasonPromptTokenizer.load(empty)).rejects.toThrow(/tokenizer\.json/);
    const noTemplate = copyOf('short_prompt', ['tokenizer.json']);
    await expect(ReasonPromptTokenizer.load(noTemplate)).rejects.toThrow(/chat_template\.jinja/);
    const badSide = copyOf('short_prompt');
    editJson(join(badSide, 'tokenizer_config.json'), (j) => { j.padding_side = 'middle'; });
    await expect(ReasonPromptTokenizer.load(badSide)).rejects.toThrow(/tokenizer_config\.json: padding_side: must be "left" or "right"/);
    // the encoder reads its tokenizer before any weight
    const model = copyOf('short_prompt', ['config.json', 'model.safetensors']);
    await expect(ReasonPromptEncoder.load(model, cpu)).rejects.toThrow(new RegExp(`${model}/tokenizer\\.json`));
  });
});

// ------------------------------------------------------------------ embeddings

describe('standardizeTokens', () => {
  function reference(x: Float32Array, D: number): Float32Array {
    const out = new Float32Array(x.length);
    for (let r = 0; r < x.length / D; r++) {
      const row = x.subarray(r * D, (r + 1) * D);
      const mean = row.reduce((s, v) => s + v, 0) / D;
      const std = Math.sqrt(row.reduce((s, v) => s + (v - mean) ** 2, 0) / (D - 1));
      for (let i = 0; i < D; i++) out[r * D + i] = (row[i] - mean) / (std + STANDARDIZE_EPS);
    }
    return out;
  }

  for (const [label, be] of [['CPU', async () => cpu], ['WebGPU', webgpu]] as const) {
    it(`is (h - mean) / (unbiased std + 1e-8) per token; a zero or constant row gives 0, not NaN (${label})`, async () => {
      const backend = await be();
      const rng = seedrandom('std');
      const D = 37;
      const x = Float32Array.from({ length: 5 * D }, () => 3 * (rng() - 0.3));
      x.fill(0, D, 2 * D); // an all-zero row
      x.fill(2.5, 3 * D, 4 * D); // a constant row
      const got = await standardizeTokens(F.fromArray(backend, x, [5, 1, D])).read();
      expect(got.every(Number.isFinite)).toBe(true);
      expect(Array.from(got.subarray(D, 2 * D))).toEqual(new Array(D).fill(0));
      expect(Array.from(got.subarray(3 * D, 4 * D)).every((v) => v === 0)).toBe(true);
      assertClose(got, reference(x, D), { atol: 1e-5, rtol: 1e-5 }, 'standardised');
    });
  }
});

describe('ReasonPromptEncoder on the tiny fixture model', () => {
  it('width = layers x hidden, and encode gives the case\'s ids and prompt_embeds', async () => {
    const enc = await ReasonPromptEncoder.load(encoderFolder('batch_negative'), cpu);
    try {
      expect(enc.width).toBe(3 * 48);
      const a = caseArgs('batch_negative');
      const r = enc.encode(a.prompts, { maxLength: a.max_sequence_length });
      expect(r.embeddings.shape).toEqual([2, 80, 144]);
      expect(Array.from(r.ids)).toEqual(await caseTensor('batch_negative', 'output.input_ids'));
      expect(r.lengths).toEqual(a.n_tokens_before_truncation);
      assertClose(await r.embeddings.read(), await caseTensor('batch_negative', 'output.prompt_embeds'), TOL, 'prompt_embeds');
      r.embeddings.dispose();
    } finally {
      enc.dispose();
    }
  });

  it('channel block k is hidden state k+1 standardised; the last is the final norm of the last layer, not its raw output', async () => {
    const enc = await ReasonPromptEncoder.load(encoderFolder('short_prompt'), cpu);
    try {
      const t = enc.tokenize(caseArgs('short_prompt').prompts, 80);
      const paths = ['hidden_states.1', 'hidden_states.2', 'hidden_states.3', 'model.layers.2'];
      const { result, taps } = await capture(paths, () => enc.embedIds(t.ids, t.batch, t.length));
      const e = F.reshape(result, [80, 3, 48]);
      for (let k = 0; k < 3; k++) {
        const block = await F.slice(e, 1, k, k + 1).read();
        assertClose(block, await standardizeTokens(taps.get(`hidden_states.${k + 1}`)!).read(), { atol: 1e-6, rtol: 1e-6 }, `block ${k}`);
      }
      const raw = await standardizeTokens(taps.get('model.layers.2')!).read();
      const last = await F.slice(e, 1, 2, 3).read();
      expect(Math.max(...last.map((v, i) => Math.abs(v - raw[i])))).toBeGreaterThan(1e-3);
      taps.dispose();
      result.dispose();
    } finally {
      enc.dispose();
    }
  });

  it('gives every row of a batch what it gives the row alone', async () => {
    const enc = await ReasonPromptEncoder.load(encoderFolder('short_prompt'), cpu);
    try {
      const prompts = ['A cat.', caseArgs('long_prompt_bf16').prompts[0], 'Waves crash on a rocky shore at night.'];
      const all = enc.encode(prompts, { maxLength: 64 });
      const rows = await all.embeddings.read();
      const n = 64 * enc.width;
      for (let b = 0; b < prompts.length; b++) {
        const alone = enc.encode([prompts[b]], { maxLength: 64 });
        expect(Array.from(alone.ids)).toEqual(Array.from(all.ids.subarray(b * 64, (b + 1) * 64)));
        assertClose(rows.subarray(b * n, (b + 1) * n), await alone.embeddings.read(), { atol: 1e-5, rtol: 1e-5 }, `row ${b}`);
        alone.embeddings.dispose();
      }
      all.embeddings.dispose();
    } finally {
      enc.dispose();
    }
  });

  it('refuses a result larger than one binding of the backend, with the sizes, before running the model', async () => {
    const small = new CpuBackend();
    Object.assign(small, { limits: { ...small.limits, maxBindingBytes: 80 * 144 * 4 } });
    const enc = await ReasonPromptEncoder.load(encoderFolder('short_prompt'), small);
    try {
      const one = enc.encode(['a'], { maxLength: 80 });
      expect(one.embeddings.shape).toEqual([1, 80, 144]);
      expect(() => enc.encode(['a', 'b'], { maxLength: 80 })).toThrow(/\[2, 80, 144\] take 92160 bytes, more than the 46080 bytes one binding of the cpu backend/);
    } finally {
      enc.dispose();
    }
  });

  it('embeds the pad positions too: each of their blocks is a standardised, non-zero vector', async () => {
    const enc = await ReasonPromptEncoder.load(encoderFolder('short_prompt'), cpu);
    try {
      const r = enc.encode(caseArgs('short_prompt').prompts, { maxLength: 80 });
      const e = await r.embeddings.read();
      const real = r.lengths[0];
      expect(real).toBeLessThan(80);
      for (let pos = real; pos < 80; pos++) {
        for (let k = 0; k < 3; k++) {
          const block = e.subarray(pos * 144 + k * 48, pos * 144 + (k + 1) * 48);
          let ss = 0;
          for (const v of block) ss += v * v;
          expect(ss / 47, `position ${pos} block ${k}`).toBeCloseTo(1, 3);
        }
      }
      // pads at different positions are different tokens to the model (positions and causal context differ)
      expect(e.subarray(real * 144, (real + 1) * 144)).not.toEqual(e.subarray((real + 1) * 144, (real + 2) * 144));
      r.embeddings.dispose();
    } finally {
      enc.dispose();
    }
  });
});

// ------------------------------------------------------------------ other sizes, bf16

/** Round f32 values to bf16 bits (nearest even). */
function toBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  return Uint16Array.from(u, (b) => (b + 0x7fff + ((b >> 16) & 1)) >>> 16);
}

/** A random Qwen2.5-VL folder of another size (visual.* and lm_head included, as released), with the fixture's tokenizer. */
async function randomModel(name: string, text: Record<string, unknown>, bf16: boolean): Promise<string> {
  const dir = copyOf('short_prompt');
  const base = JSON.parse(readFileSync(join(FIX, 'short_prompt', 'config.json'), 'utf8'));
  const config = { ...base, ...text };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const rng = seedrandom(name);
  const tensors: Record<string, { dtype: 'f32' | 'bf16'; shape: readonly number[]; raw: Float32Array | Uint16Array }> = {};
  for (const p of Qwen2_5_VLFamily().build(config).parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const isNorm = p.shape.length === 1 && /norm/.test(p.key);
    const scale = p.shape.length >= 2 ? 1.7 / Math.sqrt(p.shape[p.shape.length - 1]) : 0.1;
    const v = Float32Array.from({ length: n }, () => (isNorm ? 1 + 0.2 * (rng() - 0.5) : scale * (2 * rng() - 1)));
    tensors[p.key] = bf16 ? { dtype: 'bf16', shape: p.shape, raw: toBf16(v) } : { dtype: 'f32', shape: p.shape, raw: v };
  }
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}

describe('other sizes and bf16 weights', () => {
  const SIZES: [string, Record<string, unknown>, boolean][] = [
    ['2 layers, hidden 40, 5 heads, 1 kv head, bf16', {
      num_hidden_layers: 2, hidden_size: 40, num_attention_heads: 5, num_key_value_heads: 1, intermediate_size: 72,
      rope_scaling: { type: 'mrope', mrope_section: [1, 2, 1] },
    }, true],
    ['4 layers, hidden 64, 4 heads, 4 kv heads, f32', {
      num_hidden_layers: 4, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 4, intermediate_size: 100,
      rope_scaling: { type: 'mrope', mrope_section: [2, 3, 3] },
    }, false],
  ];
  for (const [label, text, bf16] of SIZES) {
    it(`${label}: width, finite values, CPU = WebGPU, batch of 3`, async () => {
      const dir = await randomModel(label, text, bf16);
      const prompts = ['A robot arm picks up a red cube.', '', caseArgs('long_prompt_bf16').prompts[0]];
      const run = async (backend: Backend) => {
        const enc = await ReasonPromptEncoder.load(dir, backend);
        try {
          expect(enc.width).toBe((text.num_hidden_layers as number) * (text.hidden_size as number));
          const r = enc.encode(prompts, { maxLength: 72 });
          expect(r.embeddings.shape).toEqual([3, 72, enc.width]);
          const v = await r.embeddings.read();
          r.embeddings.dispose();
          return v;
        } finally {
          enc.dispose();
        }
      };
      const want = await run(cpu);
      expect(want.every(Number.isFinite)).toBe(true);
      assertClose(await run(await webgpu()), want, TOL, label);
    });
  }

  it('bf16 weights keep their dtype on the device', async () => {
    const dir = await randomModel('bf16 dtype', SIZES[0][1], true);
    const { model } = await loadModule(ReasonTextFamily, dir, cpu);
    try {
      expect(model.model.layers[0].self_attn.q_proj.weight.t.dtype).toBe('bf16');
    } finally {
      model.dispose();
    }
  });
});

// ------------------------------------------------------------------ the released layout

/**
 * The Predict2.5 release's text_encoder/: the Reason1-7B config and its four shards with the real
 * names, shapes and bf16 dtype (data regions are sparse holes: nothing is written).
 */
function releaseTextEncoder(): string {
  const te = mkdtempSync(join(tmp, 'text_encoder-'));
  const config = { ...COSMOS_REASON1_7B_CONFIG, transformers_version: '4.51.3' };
  writeFileSync(join(te, 'config.json'), JSON.stringify(config));
  const params = [...Qwen2_5_VLFamily().build(config).parameters()].map((p) => ({ key: p.key, shape: p.shape }));
  const shards = 4;
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const p of params.filter((_, i) => i % shards === s)) {
      const bytes = p.shape.reduce((a, b) => a * b, 1) * 2;
      header[p.key] = { dtype: 'BF16', shape: p.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
      weightMap[p.key] = file;
    }
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const head = Buffer.alloc(8 + json.length);
    head.writeBigUInt64LE(BigInt(json.length), 0);
    head.write(json, 8, 'utf8');
    const fd = openSync(join(te, file), 'w');
    writeSync(fd, head);
    ftruncateSync(fd, head.length + offset);
    closeSync(fd);
  }
  writeFileSync(join(te, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return te;
}

/** The release's tokenizer/: the template in chat_template.json and inside tokenizer_config.json (no .jinja). */
function releaseTokenizer(): string {
  const tk = mkdtempSync(join(tmp, 'tokenizer-'));
  const template = readFileSync(join(FIX, 'short_prompt', 'chat_template.jinja'), 'utf8');
  copyFileSync(join(FIX, 'short_prompt', 'tokenizer.json'), join(tk, 'tokenizer.json'));
  const cfg = JSON.parse(readFileSync(join(FIX, 'short_prompt', 'tokenizer_config.json'), 'utf8'));
  writeFileSync(join(tk, 'tokenizer_config.json'), JSON.stringify({ ...cfg, chat_template: template, tokenizer_class: 'Qwen2Tokenizer' }));
  writeFileSync(join(tk, 'chat_template.json'), JSON.stringify({ chat_template: template }));
  return tk;
}

describe('the released text_encoder / tokenizer layout', () => {
  it('plans only the language model (no visual.*, no lm_head) and refuses it past maxBytes before reading a weight', async () => {
    const [textEncoder, tokenizer] = [releaseTextEncoder(), releaseTokenizer()];
    const text = ReasonTextFamily.build(COSMOS_REASON1_7B_CONFIG as Record<string, unknown>);
    expect(text.width).toBe(100352);
    const full = Qwen2_5_VLFamily().build(COSMOS_REASON1_7B_CONFIG as Record<string, unknown>);
    const textParams = text.parameterCount();
    expect(textParams).toBe(full.model!.parameterCount());
    expect(full.parameterCount() - textParams).toBe(full.visual!.parameterCount() + full.lm_head!.parameterCount());
    const gib = ((textParams * 2) / 2 ** 30).toFixed(2);
    const err = await ReasonPromptEncoder.load(textEncoder, cpu, { tokenizerDir: tokenizer, maxBytes: 2 ** 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFolderError);
    expect((err as Error).message).toContain(`needs ${gib} GiB of parameters`);
  });

  it('tokenizes through the release tokenizer folder (template from chat_template.json, pad <|endoftext|>)', async () => {
    const tok = await ReasonPromptTokenizer.load(releaseTokenizer());
    const want = await ReasonPromptTokenizer.load(join(FIX, 'short_prompt'));
    const p = caseArgs('batch_negative').negative_prompts_used!;
    const t = tok.tokenize(p);
    expect([t.batch, t.length]).toEqual([2, 512]);
    expect(t.ids).toEqual(want.tokenize(p, 512).ids);
    expect(t.ids[511]).toBe(tok.bpe.tokenToId('<|endoftext|>'));
  });
});
