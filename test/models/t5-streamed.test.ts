// T5 prompt encoding as the pipelines run it: the streamed encoder (each block loaded when the pass
// reaches it, freed after) against the resident one, each prompt on its real tokens, the prompt
// phase (prompt and negative prompt in one pass, on another backend, saved and reloaded as
// embeddings), the feed-forward in row chunks above one binding, and T5-11B's largest weights
// (128 MiB bf16, exactly one binding of the software adapter) on WebGPU.
// Tolerances: CPU paths that only regroup the same arithmetic must be bit-identical; WebGPU
// against the CPU oracle 1e-4 abs + 1e-3 rel, as the conformance cases.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { CpuBackend } from '../../src/engine/cpu/backend.js';
import { f32ToBf16 } from '../../src/engine/dtype.js';
import { UserError } from '../../src/engine/errors.js';
import * as F from '../../src/engine/ops.js';
import { T5EncoderModel, parseT5Config } from '../../src/models/t5/encoder.js';
import { T5TextEncoder } from '../../src/models/t5/prompts.js';
import { encodePrompt, readEmbeddings, writeEmbeddings, embeddingArrays } from '../../src/pipelines/world/prompt.js';
import { nodeFileSystem } from '../../src/io/node-files.js';
import { assertClose, countingCpu, cpu, webgpu } from '../harness.js';
import { BASE, WORDS, modelProto } from '../text/model-proto.js';

const FIX = fileURLToPath(new URL('../fixtures/t5', import.meta.url));
const TOL = { atol: 1e-4, rtol: 1e-3 };

/** A transformers-style T5 folder: the t5_encoder case's config and weights, a synthetic spiece.model. */
const dir = mkdtempSync(join(tmpdir(), 't5-streamed-'));
copyFileSync(join(FIX, 't5_encoder', 'config.json'), join(dir, 'config.json'));
copyFileSync(join(FIX, 't5_encoder', 'model.safetensors'), join(dir, 'model.safetensors'));
writeFileSync(join(dir, 'spiece.model'), modelProto([...BASE, ...WORDS], false));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEXTS = ['ab a b c ab', 'c', 'a b'];

async function raw(t: { read(): Promise<ArrayLike<number>> }): Promise<number[]> {
  return Array.from(await t.read());
}

describe('streamed T5 encoder', () => {
  it('gives the resident encoder\'s states bit for bit on the CPU, and holds no weights between passes', async () => {
    const resident = await T5TextEncoder.load(dir, cpu);
    const want = resident.encodePrompts(TEXTS, { maxLength: 12 });
    const { backend, liveBytes } = countingCpu();
    const streamed = await T5TextEncoder.load(dir, backend, { streamed: true });
    expect(streamed.streamed).toBe(true);
    expect(liveBytes()).toBe(0);
    const got = await streamed.encode(TEXTS, { maxLength: 12 });
    expect(got.embeddings.shape).toEqual([3, 12, 64]);
    expect(got.lengths).toEqual(want.lengths);
    expect(await raw(got.embeddings)).toEqual(await raw(want.embeddings));
    // only the output is left: every block was freed after its turn
    expect(liveBytes()).toBe(3 * 12 * 64 * 4);
    // a second pass reads the weights again and gives the same
    const again = await streamed.encode(TEXTS, { maxLength: 12 });
    expect(await raw(again.embeddings)).toEqual(await raw(want.embeddings));
    expect(() => streamed.encodePrompts(TEXTS)).toThrow(/use encode\(\)/);
    // a lone prompt as long as maxLength (nothing to pad) and one with nothing but </s>
    for (const text of ['ab a b c ab a b', '']) {
      const w = resident.encodePrompts([text], { maxLength: 6 });
      const g = await streamed.encode([text], { maxLength: 6 });
      expect(g.lengths).toEqual(w.lengths);
      expect(await raw(g.embeddings)).toEqual(await raw(w.embeddings));
      w.embeddings.dispose();
      g.embeddings.dispose();
    }
    for (const t of [want.embeddings, got.embeddings, again.embeddings]) t.dispose();
    streamed.dispose();
    resident.dispose();
  });

  it('peaks at one block, not the whole encoder', async () => {
    const a = countingCpu();
    const resident = await T5TextEncoder.load(dir, a.backend);
    const weights = a.liveBytes();
    resident.encodePrompts(TEXTS, { maxLength: 12 }).embeddings.dispose();
    const b = countingCpu();
    const streamed = await T5TextEncoder.load(dir, b.backend, { streamed: true });
    (await streamed.encode(TEXTS, { maxLength: 12 })).embeddings.dispose();
    const block = [...resident.model.encoder.block[1].parameters()].reduce((n, p) => n + p.t.size * 4, 0);
    expect(b.backend.memory().peakBytes).toBeLessThan(weights / 2);
    expect(b.backend.memory().peakBytes).toBeGreaterThanOrEqual(block);
    resident.dispose();
    streamed.dispose();
  });

  it('on WebGPU gives the CPU oracle\'s states (streamed and resident)', async () => {
    const gpu = await webgpu();
    const want = await T5TextEncoder.load(dir, cpu);
    const w = await raw(want.encodePrompts(TEXTS, { maxLength: 12 }).embeddings);
    for (const streamed of [true, false]) {
      const enc = await T5TextEncoder.load(dir, gpu, { streamed });
      const got = await enc.encode(TEXTS, { maxLength: 12 });
      assertClose(await got.embeddings.read(), w, TOL, `webgpu streamed=${streamed}`);
      got.embeddings.dispose();
      enc.dispose();
    }
    want.dispose();
  });

  it('each prompt on its real tokens gives what the padded batch gives at those tokens, zeros after', async () => {
    const enc = await T5TextEncoder.load(dir, cpu);
    const r = enc.encodePrompts(TEXTS, { maxLength: 12 });
    const direct = await enc.model.forward({ data: r.ids, shape: [3, 12] }, { data: r.mask, shape: [3, 12] }).read();
    const got = await r.embeddings.read();
    for (let b = 0; b < 3; b++) {
      for (let j = 0; j < 12; j++) {
        const at = (b * 12 + j) * 64;
        const row = Array.from(got.subarray(at, at + 64));
        expect(row).toEqual(j < r.lengths[b] ? Array.from(direct.subarray(at, at + 64)) : new Array(64).fill(0));
      }
    }
    enc.dispose();
  });
});

describe('the prompt phase with a T5 folder', () => {
  const source = { dir };

  it('encodes the prompt and the negative prompt in one pass, reports each, and frees the encoder', async () => {
    const { backend, liveBytes } = countingCpu();
    const events: [number, unknown][] = [];
    const e = await encodePrompt({ prompt: 'ab a', negativePrompt: 'c c', maxSequenceLength: 10 }, 64, 7, source, backend, nodeFileSystem, {
      onProgress: (ev) => events.push([ev.done, ev.detail]),
    });
    expect(e.source).toBe('T5');
    expect(e.prompt.shape).toEqual([1, 10, 64]);
    expect(e.negative!.shape).toEqual([1, 10, 64]);
    expect(events).toEqual([[0, { source: 'T5' }], [1, { source: 'T5', tokens: 4 }], [2, { source: 'T5' }]]);
    expect(liveBytes()).toBe(2 * 10 * 64 * 4);
    const enc = await T5TextEncoder.load(dir, cpu);
    const want = enc.encodePrompts(['ab a', 'c c'], { maxLength: 10 });
    const w = await want.embeddings.read();
    expect(Array.from(await e.prompt.read())).toEqual(Array.from(w.subarray(0, 640)));
    expect(Array.from(await e.negative!.read())).toEqual(Array.from(w.subarray(640)));
    enc.dispose();
  });

  it('encodes on another backend (textBackend) and hands the states to the run\'s', async () => {
    const gpu = await webgpu();
    const o = { prompt: 'ab a', negativePrompt: 'c c', maxSequenceLength: 10 };
    const onCpu = await encodePrompt(o, 64, 7, source, cpu, nodeFileSystem, {});
    const viaGpu = await encodePrompt({ ...o, textBackend: gpu }, 64, 7, source, cpu, nodeFileSystem, {});
    expect(viaGpu.prompt.backend).toBe(cpu);
    assertClose(await viaGpu.prompt.read(), await onCpu.prompt.read(), TOL, 'prompt');
    assertClose(await viaGpu.negative!.read(), await onCpu.negative!.read(), TOL, 'negative');
  });

  it('saved embeddings (--embeddings-out) reload as the same states (--embeddings)', async () => {
    const e = await encodePrompt({ prompt: 'ab a', maxSequenceLength: 10 }, 64, 7, source, cpu, nodeFileSystem, {});
    const out = mkdtempSync(join(tmpdir(), 't5-embeds-'));
    const file = join(out, 'prompt.safetensors');
    await writeEmbeddings(file, await embeddingArrays(e), { family: 'cosmos1' }, nodeFileSystem);
    const back = await readEmbeddings(file, 64, true, cpu, nodeFileSystem);
    expect(Array.from(await back.prompt.read())).toEqual(Array.from(await e.prompt.read()));
    expect(Array.from(await back.negative!.read())).toEqual(Array.from(await e.negative!.read()));
    const again = await encodePrompt({ embeddings: file }, 64, 7, source, cpu, nodeFileSystem, {});
    expect(again.source).toBe(file);
    expect(Array.from(await again.prompt.read())).toEqual(Array.from(await e.prompt.read()));
    rmSync(out, { recursive: true, force: true });
  });
});

describe('T5 at the device limits', () => {
  it('runs the feed-forward in row chunks when its hidden state is more than one binding, with the same result', async () => {
    const enc = await T5TextEncoder.load(dir, cpu);
    const cfg = enc.model.config;
    // a CPU backend that claims a binding of 8 hidden rows (d_ff 96 floats each): 13 tokens go as 8 + 5
    const small = new CpuBackend();
    Object.defineProperty(small, 'limits', { value: { maxBufferBytes: 2 ** 40, maxBindingBytes: 8 * cfg.dFf * 4 + 3 } });
    const chunked = new T5EncoderModel(cfg);
    for (const p of chunked.parameters()) {
      const src = [...enc.model.parameters()].find((q) => q.key === p.key)!;
      p.set(F.fromArray(small, await src.t.read(), p.shape));
    }
    const ids = { data: Int32Array.from({ length: 13 }, (_, i) => (i * 7) % 100), shape: [1, 13] };
    const want = await enc.model.forward(ids).read();
    const got = await chunked.forward(ids).read();
    expect(Array.from(got)).toEqual(Array.from(want));
    // the position bias of 13 tokens x 4 heads (2704 bytes) is more than that binding: refused, named
    Object.defineProperty(small, 'limits', { value: { maxBufferBytes: 2 ** 40, maxBindingBytes: 2000 } });
    expect(() => chunked.forward(ids)).toThrow(UserError);
    expect(() => chunked.forward(ids)).toThrow(/position bias of 1 x 13 tokens and 4 heads/);
    chunked.dispose();
    enc.dispose();
  });

  it('T5-11B\'s feed-forward (wi, wo: 65536 x 1024 bf16 = 128 MiB, one whole binding on llvmpipe) gives the CPU\'s result on WebGPU', async () => {
    const gpu: Backend = await webgpu();
    const config = {
      vocab_size: 32, d_model: 1024, d_kv: 8, num_heads: 2, d_ff: 65536, num_layers: 1, feed_forward_proj: 'relu',
    };
    // bf16 weights of scale 1 / sqrt(fan-in) (norm weights near 1), from a cheap seeded generator
    let state = 12345;
    const weights = new T5EncoderModel(parseT5Config(config));
    const raws = [...weights.parameters()].map((p) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      const scale = p.shape.length === 2 ? 2 / Math.sqrt(p.shape[1]) : 0.2;
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        out[i] = f32ToBf16((state / 2 ** 32 - 0.5) * scale + (p.shape.length === 1 ? 1 : 0));
      }
      return out;
    });
    const outs: Float32Array[] = [];
    for (const be of [cpu, gpu]) {
      const m = new T5EncoderModel(parseT5Config(config));
      for (const [k, p] of [...m.parameters()].entries()) p.set(F.fromRaw(be, raws[k], p.shape, 'bf16'));
      const wi = m.encoder.block[0].ff.DenseReluDense.wi!.weight.t;
      expect(wi.size * 2).toBe(128 * 2 ** 20);
      outs.push((await m.forward({ data: [3, 1, 4, 1, 5], shape: [1, 5] }).read()) as Float32Array);
      m.dispose();
    }
    assertClose(outs[1], outs[0], TOL, 'webgpu vs cpu');
  });
});
