// The AR diffusion decoder (DV8x16x16 tokens -> CV8x8x8 latents): every vendored ar_decoder case
// through the conformance runner on both backends; loading from the cases' safetensors, from a real
// torch.save model.pt (with the training-only logvar.* and TransformerEngine _extra_state entries)
// and from a release-style folder without config.json; missing / extra keys and bad config fields
// named; bf16 weights; the chunking, schedule and input checks.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FixtureCase } from '../../src/conform/case.js';
import { findCases } from '../../src/conform/runner.js';
import type { Backend } from '../../src/engine/backend.js';
import { f32ToBf16 } from '../../src/engine/dtype.js';
import { CheckpointMismatchError } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { type TorchValue, writeTorchCheckpoint } from '../../src/io/torch.js';
import { ArDecoderInputError, bilinearTaps, splitTokenChunks, tokenChunkFrames } from '../../src/models/ar-decoder/conditioning.js';
import { ArDecoderConfigError, RELEASED_AR_DECODER_CONFIG, parseArDecoderConfig, patchEmbedInChannels } from '../../src/models/ar-decoder/config.js';
import { ArDecoderFamily, DiffusionDecoderDiT, arDecoderCheckpointKey, isIgnoredArDecoderKey } from '../../src/models/ar-decoder/model.js';
import { DECODER_INIT_NOISE_SIGMA, decoderSigmas, sampleDecoderChunk } from '../../src/models/ar-decoder/sample.js';
import { loadModule } from '../../src/models/load.js';
import { assertClose, cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/ar_decoder', import.meta.url));
const CASES = await findCases([FIXTURES]);
const FORWARD = join(FIXTURES, 'forward');
const SAMPLING = join(FIXTURES, 'sampling');
const CONFIG = join(FORWARD, 'config.json');

const tmp = mkdtempSync(join(tmpdir(), 'ar-decoder-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ar_decoder conformance cases', () => {
  it('finds the vendored cases', () => {
    expect(CASES.map((d) => d.split('/').pop()).sort()).toEqual(['conditioning', 'forward', 'forward_uncond_fps30', 'sampling']);
  });
  for (const dir of CASES) {
    it(`${dir.split('/').pop()} passes on the CPU backend`, async () => expectCasePasses(dir, cpu));
  }
  for (const dir of CASES) {
    it(`${dir.split('/').pop()} passes on the WebGPU backend`, async () => expectCasePasses(dir, await webgpu()));
  }
  it('reports the conditioning case\'s random latent_condition_sigma tap as not compared, every other tap compared', async () => {
    const r = await expectCasePasses(join(FIXTURES, 'conditioning'), cpu);
    expect(r.taps.latent_condition_sigma.note).toMatch(/^not compared: .*torch\.rand/);
    const f = await expectCasePasses(FORWARD, cpu);
    expect(Object.keys(f.taps)).toHaveLength(10);
    for (const cmp of Object.values(f.taps)) expect(Number.isFinite(cmp.max_abs)).toBe(true);
  });
});

// ------------------------------------------------------------------ a forward pass to compare loads

async function forwardOf(model: DiffusionDecoderDiT, backend: Backend, dir = FORWARD): Promise<Float32Array> {
  const c = await FixtureCase.open(dir);
  try {
    const out = model.forward(
      await c.inputTensor('x', backend), await c.inputTensor('timesteps', backend), await c.inputTensor('crossattn_emb', backend),
      await c.inputTensor('latent_condition', backend), { fps: 24, paddingMask: await c.inputTensor('padding_mask', backend) },
    );
    const v = await out.read();
    out.dispose();
    return v as Float32Array;
  } finally {
    await c.close();
  }
}

async function caseTensors(dir: string) {
  const st = await openSafetensors(join(dir, 'model.safetensors'));
  const out: { name: string; dtype: string; shape: number[]; raw: Uint8Array }[] = [];
  for (const name of st.names) out.push({ name, dtype: st.info(name).dtype, shape: [...st.info(name).shape], raw: await st.readBytes(name) });
  await st.close();
  return out;
}

async function writeFolder(name: string, tensors: { name: string; dtype: string; shape: number[]; raw: Uint8Array }[], config: string | null = CONFIG): Promise<string> {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (config) copyFileSync(config, join(dir, 'config.json'));
  await writeSafetensors(join(dir, 'model.safetensors'), Object.fromEntries(tensors.map((t) => [t.name, { dtype: t.dtype as 'F32', shape: t.shape, raw: t.raw }])));
  return dir;
}

describe('DiffusionDecoderDiT loading', () => {
  it('holds the released net.* and logvar.* names in the case checkpoints', async () => {
    const names = (await caseTensors(FORWARD)).map((t) => t.name);
    expect(names).toContain('net.x_embedder.proj.1.weight');
    expect(names).toContain('net.token_embedder.weight');
    expect(names.some((n) => n.startsWith('logvar.'))).toBe(true);
    expect(names.every((n) => n.startsWith('net.') || n.startsWith('logvar.'))).toBe(true);
  });

  it('maps the upstream names onto the dit modules', () => {
    expect(arDecoderCheckpointKey('net.blocks.block3.blocks.0.block.attn.to_q.0.weight')).toBe('blocks.block3.attn1.to_q.weight');
    expect(arDecoderCheckpointKey('net.blocks.block3.blocks.1.block.attn.to_k.1.weight')).toBe('blocks.block3.attn2.norm_k.weight');
    expect(arDecoderCheckpointKey('net.blocks.block0.blocks.1.block.attn.to_out.0.weight')).toBe('blocks.block0.attn2.to_out.0.weight');
    expect(arDecoderCheckpointKey('net.blocks.block0.blocks.2.block.layer2.weight')).toBe('blocks.block0.ff.net.2.weight');
    expect(arDecoderCheckpointKey('net.blocks.block0.blocks.2.adaLN_modulation.1.weight')).toBe('blocks.block0.norm3.linear_1.weight');
    expect(arDecoderCheckpointKey('net.final_layer.adaLN_modulation.2.weight')).toBe('final_layer.norm.linear_2.weight');
    expect(arDecoderCheckpointKey('net.t_embedder.1.linear_1.weight')).toBe('t_embedder.1.linear_1.weight');
    // an unknown name keeps its name, so it is reported as unexpected
    expect(arDecoderCheckpointKey('net.blocks.block0.blocks.0.block.attn.to_v.1.weight')).toBe('blocks.block0.blocks.0.block.attn.to_v.1.weight');
    expect(isIgnoredArDecoderKey('logvar.1.weight')).toBe(true);
    expect(isIgnoredArDecoderKey('net.blocks.block0.blocks.0.block.attn.to_q.0._extra_state')).toBe(true);
    expect(isIgnoredArDecoderKey('net.pos_embedder.seq')).toBe(true);
    expect(isIgnoredArDecoderKey('net.final_layer.linear.weight')).toBe(false);
  });

  it('loads a real torch.save model.pt (net.*, logvar.*, _extra_state) to the same outputs as the safetensors', async () => {
    const tensors = await caseTensors(FORWARD);
    const state = new Map<string, TorchValue>(tensors.map((t) => [t.name, { dtype: t.dtype as 'F32', shape: t.shape, bytes: t.raw }]));
    // TransformerEngine keeps its FP8 metadata as a uint8 tensor beside the weights
    state.set('net.blocks.block0.blocks.0.block.attn._extra_state', { dtype: 'U8', shape: [5], bytes: new Uint8Array([128, 2, 125, 113, 0]) });
    const dir = join(tmp, 'pt');
    mkdirSync(dir, { recursive: true });
    copyFileSync(CONFIG, join(dir, 'config.json'));
    await writeTorchCheckpoint(join(dir, 'model.pt'), state);
    // aux_vars.pt beside it, as in the release folder: the family names model.pt as the weights
    await writeTorchCheckpoint(join(dir, 'aux_vars.pt'), { context: { dtype: 'F32', shape: [1, 2], bytes: new Uint8Array(8) } });
    const want = await forwardOf((await loadModule(ArDecoderFamily, join(FORWARD, 'model.safetensors'), cpu)).model, cpu);
    for (const path of [dir, join(dir, 'model.pt')]) {
      const loaded = await loadModule(ArDecoderFamily, path, cpu);
      expect(loaded.report.ignored.sort()).toEqual([...tensors.map((t) => t.name).filter((n) => !n.startsWith('net.') || n === 'net.pos_embedder.seq'), 'net.blocks.block0.blocks.0.block.attn._extra_state'].sort());
      expect(await forwardOf(loaded.model, cpu)).toEqual(want);
      loaded.model.dispose();
    }
  });

  it('builds the released 7B from a folder without config.json (model.pt + aux_vars.pt)', async () => {
    const dir = join(tmp, 'pt');
    const release = join(tmp, 'release');
    mkdirSync(release, { recursive: true });
    copyFileSync(join(dir, 'model.pt'), join(release, 'model.pt'));
    copyFileSync(join(dir, 'aux_vars.pt'), join(release, 'aux_vars.pt'));
    // the tiny weights do not fit the released config: the mismatch names the released shapes
    const err = await loadModule(ArDecoderFamily, release, cpu).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    expect((err as Error).message).toContain('net.x_embedder.proj.1.weight: checkpoint [48, 68], config implies [4096, 196]');
    expect((err as Error).message).toContain('model.pt');
  });

  it('names missing and unexpected keys', async () => {
    const tensors = await caseTensors(FORWARD);
    const kept = tensors.filter((t) => t.name !== 'net.blocks.block1.blocks.2.block.layer1.weight');
    kept.push({ name: 'net.blocks.block0.blocks.0.block.attn.to_v.1.weight', dtype: 'F32', shape: [24], raw: new Uint8Array(96) });
    const dir = await writeFolder('keys', kept);
    const err = await loadModule(ArDecoderFamily, dir, cpu).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    expect((err as CheckpointMismatchError).missing).toEqual(['blocks.block1.ff.net.0.proj.weight']);
    expect((err as CheckpointMismatchError).unexpected).toEqual(['net.blocks.block0.blocks.0.block.attn.to_v.1.weight']);
  });

  it('keeps bf16 weights in bf16 and runs them as their float32 widening does, on both backends', async () => {
    const tensors = (await caseTensors(FORWARD)).map((t) => {
      if (t.dtype !== 'F32' || !t.name.startsWith('net.')) return t;
      const f = new Float32Array(t.raw.buffer.slice(t.raw.byteOffset, t.raw.byteOffset + t.raw.byteLength));
      const b = Uint16Array.from(f, (v) => f32ToBf16(v));
      return { ...t, dtype: 'BF16', raw: new Uint8Array(b.buffer) };
    });
    const dir = await writeFolder('bf16', tensors);
    const ref = await forwardOf((await loadModule(ArDecoderFamily, join(FORWARD, 'model.safetensors'), cpu)).model, cpu);
    for (const backend of [cpu, await webgpu()]) {
      const bf = (await loadModule(ArDecoderFamily, dir, backend)).model;
      for (const p of bf.parameters()) expect(p.t.dtype).toBe('bf16');
      const wide = (await loadModule(ArDecoderFamily, dir, backend, { castTo: 'f32' })).model;
      const got = await forwardOf(bf, backend);
      assertClose(got, await forwardOf(wide, backend), { atol: 1e-5, rtol: 1e-5 }, `bf16 on ${backend.name}`);
      // bf16 rounding moves the output, but not far from the float32 weights' answer
      assertClose(got, ref, { atol: 0.05, rtol: 0.05 }, `bf16 vs f32 on ${backend.name}`);
      bf.dispose();
      wide.dispose();
    }
  });
});

// ------------------------------------------------------------------ config

describe('ArDecoderConfig', () => {
  const json = () => JSON.parse(readFileSync(CONFIG, 'utf8')) as Record<string, unknown>;

  it('parses the released 7B and the tiny case config', async () => {
    const r = RELEASED_AR_DECODER_CONFIG;
    expect([r.modelChannels, r.numBlocks, r.numHeads, r.vocabSize, r.tokenDim, r.inChannels, r.sigmaData]).toEqual([4096, 28, 32, 64000, 32, 16, 0.5]);
    expect(patchEmbedInChannels(r) * 4).toBe(196);
    const t = parseArDecoderConfig(json());
    expect([t.modelChannels, t.numBlocks, t.numHeads, t.vocabSize, t.tokenDim, t.ropeHExtrapolationRatio]).toEqual([48, 2, 2, 320, 12, 1.5]);
  });

  it('builds the released 7B without allocating: its parameter count', () => {
    const m = new DiffusionDecoderDiT(RELEASED_AR_DECODER_CONFIG);
    const n = m.parameterCount();
    // 28 blocks of (4 + 2 + 8) D^2 + the CA k/v from 1024 + adaLN (3 x (D x 256 + 256 x 3D)) ...
    expect(n).toBeGreaterThan(7.0e9);
    expect(n).toBeLessThan(7.5e9);
    expect(m.token_embedder.weight.shape).toEqual([64000, 32]);
    expect(m.x_embedder.proj.weight.shape).toEqual([4096, 196]);
  });

  it('names the bad field', async () => {
    const base = json();
    const bad = (patch: Record<string, unknown>, field: string) => {
      expect(() => parseArDecoderConfig({ ...base, ...patch })).toThrow(ArDecoderConfigError);
      expect(() => parseArDecoderConfig({ ...base, ...patch })).toThrow(new RegExp(`^config\\.json: ${field}`));
    };
    bad({ block_config: 'FA-MLP' }, 'block_config');
    bad({ num_heads: 2.5 }, 'num_heads');
    bad({ model_channels: 50 }, 'model_channels');
    bad({ diffusion_decoder_token_condition_voc_size: 0 }, 'diffusion_decoder_token_condition_voc_size');
    bad({ sigma_data: -1 }, 'sigma_data');
    bad({ extra_per_block_abs_pos_emb: true }, 'extra_per_block_abs_pos_emb');
    bad({ diffusion_decoder_condition_on_sigma: true }, 'diffusion_decoder_condition_on_sigma');
    bad({ _class_name: 'GeneralDIT' }, '_class_name');
    bad({ model_channels: 12, num_heads: 2 }, 'model_channels');
  });
});

// ------------------------------------------------------------------ chunks, schedule, resize

describe('decoder conditioning and schedule', () => {
  it('chunks latent time as split_with_overlap, reflecting past the end', () => {
    expect(tokenChunkFrames(5, 8, 2)).toEqual([[0, 1, 2, 3, 4, 3, 2, 1]]);
    expect(tokenChunkFrames(13, 8, 2)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [6, 7, 8, 9, 10, 11, 12, 11]]);
    expect(tokenChunkFrames(14, 8, 2)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [6, 7, 8, 9, 10, 11, 12, 13]]);
    expect(tokenChunkFrames(20, 8, 2).map((c) => c[0])).toEqual([0, 6, 12]);
    expect(() => tokenChunkFrames(2, 8, 2)).toThrow(ArDecoderInputError);
    // torch's reflect padding needs more frames than it pads
    expect(() => tokenChunkFrames(9, 8, 2)).toThrow(/reflect padding/);
  });

  it('splits int ids on the device', async () => {
    const ids = F.fromArray(cpu, Int32Array.from({ length: 5 * 2 }, (_, i) => i), [1, 1, 5, 1, 2], 'i32');
    const [c] = splitTokenChunks(ids, 8, 2);
    expect(c.dtype).toBe('i32');
    expect(Array.from(await c.read())).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 6, 7, 4, 5, 2, 3]);
  });

  it('computes the Karras schedule with a final zero and the init noise sigma', () => {
    const { sigmas, timesteps } = decoderSigmas(3);
    expect(sigmas[0]).toBe(80);
    expect(sigmas[1]).toBeCloseTo(4.0456, 3);
    expect(sigmas[2]).toBeCloseTo(0.02, 6);
    expect(sigmas[3]).toBe(0);
    expect(timesteps[0]).toBeCloseTo(0.25 * Math.log(80), 5);
    expect(decoderSigmas(15).sigmas.length).toBe(16);
    expect(DECODER_INIT_NOISE_SIGMA).toBeCloseTo(80.00624975587844, 12);
  });

  it('resizes 2x bilinear with torch\'s half-pixel taps', () => {
    const { lo, hi, w } = bilinearTaps(3, 6);
    expect(Array.from(lo)).toEqual([0, 0, 0, 1, 1, 2]);
    expect(Array.from(hi)).toEqual([1, 1, 1, 2, 2, 2]);
    expect(Array.from(w)).toEqual([0, 0.25, 0.75, 0.25, 0.75, 0.25]);
  });
});

// ------------------------------------------------------------------ the sampler and input checks

describe('sampleDecoderChunk', () => {
  async function setup(backend: Backend) {
    const c = await FixtureCase.open(SAMPLING);
    const model = (await loadModule(ArDecoderFamily, join(SAMPLING, 'model.safetensors'), backend)).model;
    const noise = await c.inputTensor('noise', backend);
    const [, channels, frames, height, width] = noise.shape;
    const o = { ids: await c.inputTensor('token_chunk', backend), text: await c.inputTensor('t5_text_embeddings', backend), latent: { channels, frames, height, width }, noise, steps: 3 };
    await c.close();
    return { model, o };
  }

  it('reports progress, stops on abort and checks its inputs', async () => {
    const { model, o } = await setup(cpu);
    const seen: number[] = [];
    const out = await sampleDecoderChunk(model, { ...o, onStep: (i, n) => seen.push(i * 10 + n) });
    expect(seen).toEqual([13, 23, 33]);
    expect(out.shape).toEqual(o.noise.shape);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(sampleDecoderChunk(model, { ...o, signal: ac.signal })).rejects.toThrow('stop');
    await expect(sampleDecoderChunk(model, { ...o, latent: { ...o.latent, frames: 3 } })).rejects.toThrow(/^noise: must be/);
    const floatIds = F.cast(o.ids, 'f32');
    expect(() => model.forward(F.scale(o.noise, 1), 0, o.text, floatIds, { fps: 24 })).toThrow(/^latent_condition: must hold integer token ids/);
    expect(() => model.forward(o.noise, 0, o.text, F.slice(o.ids, 2, 0, 2), { fps: 24 })).toThrow(/^latent_condition: must be \[1, 1, 4, h, w\]/);
    const big = F.zeros(cpu, [1, 1, 4, 12, 16], 'i32');
    expect(() => model.forward(o.noise, 0, o.text, big, { fps: 24 })).toThrow(/resizes tokens up only/);
    model.dispose();
  });

  it('keeps the loop on the device: nothing is read back per step', async () => {
    const { model, o } = await setup(cpu);
    let reads = 0;
    const proto = Object.getPrototypeOf(o.noise) as { read: () => Promise<unknown> };
    const read = proto.read;
    proto.read = function (this: Tensor) {
      reads++;
      return read.call(this);
    };
    try {
      const out = await sampleDecoderChunk(model, o);
      expect(reads).toBe(0);
      expect(out.shape).toEqual([1, 4, 4, 6, 8]);
    } finally {
      proto.read = read;
      model.dispose();
    }
  });
});
