// The text2world / video2world commands end to end on the cpu backend, on tiny diffusers-style
// model folders built here: random-weight DiTs (Cosmos-1.0 text2world / video2world, Predict2.5),
// a tiny random T5 with the t5 fixture's SentencePiece model, and two VAEs — the diffusers_vae
// fixture (AutoencoderKLCosmos layout, with latents_mean/std) and the trained tiny CV4x8x8
// tokenizer in its own Cosmos-Tokenizer layout. Checks the written clips (frame count, size),
// the per-step reports, the latents file, and the typed errors naming the argument at fault.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import seedrandom from 'seedrandom';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { cpu } from '../../src/engine/cpu/backend.js';
import { webgpu } from '../../src/engine/webgpu/backend.js';
import type { Module } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { readPngFrames, writePngFrames } from '../../src/io/png.js';
import { type Video, cropVideo, sliceFrames } from '../../src/io/video.js';
import { type TensorToWrite, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { readY4m } from '../../src/io/y4m.js';
import { quality } from '../../src/metrics/quality.js';
import { CosmosTransformer3DModel } from '../../src/models/dit/transformer.js';
import { T5EncoderModel, parseT5Config } from '../../src/models/t5/encoder.js';
import { loadTokenizer } from '../../src/models/tokenizer/load.js';
import type { CausalContinuousVideoTokenizer } from '../../src/models/tokenizer/video.js';
import {
  PipelineFilesError, PipelineInputError, inspectWorldModel, planSizes, text2world,
} from '../../src/pipelines/text2world.js';
import { conditioningClip, resizeClip } from '../../src/pipelines/video2world.js';

const ROOT = nodePath.resolve(import.meta.dirname, '../..');
const FIXTURES = nodePath.join(ROOT, 'test/fixtures');
const CV = nodePath.join(ROOT, 'weights/cosmos-tokenizer-tiny-cv4x8x8');
const SAMPLE = nodePath.join(ROOT, 'weights/samples/sample_0.y4m');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-world-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

// ------------------------------------------------------------------ building the folders

/** Random values for every declared parameter (norm weights near 1, others ~ U(-1, 1)/sqrt(fan-in)). */
function randomWeights(m: Module, seed: string): Record<string, TensorToWrite> {
  const rng = seedrandom(seed);
  const out: Record<string, TensorToWrite> = {};
  for (const p of m.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const raw = new Float32Array(n);
    const isNorm = /norm/.test(p.key) && p.key.endsWith('weight') && p.shape.length === 1;
    const a = p.shape.length >= 2 ? 1 / Math.sqrt(p.shape[p.shape.length - 1]) : 0.05;
    for (let i = 0; i < n; i++) raw[i] = isNorm ? 1 + 0.1 * (rng() - 0.5) : a * (2 * rng() - 1) * 1.7;
    out[p.key] = { dtype: 'f32', shape: p.shape, raw };
  }
  return out;
}

function writeJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v, null, 2));
}

const DIT_COMMON = {
  _class_name: 'CosmosTransformer3DModel',
  adaln_lora_dim: 16,
  attention_head_dim: 32,
  num_attention_heads: 2,
  num_layers: 2,
  mlp_ratio: 4.0,
  max_size: [16, 32, 32],
  patch_size: [1, 2, 2],
  concat_padding_mask: true,
  text_embed_dim: 32,
};

/** transformer/ in two shards with an index, as the released folders are. */
async function writeTransformer(dir: string, config: Record<string, unknown>, seed: string): Promise<void> {
  const t = nodePath.join(dir, 'transformer');
  mkdirSync(t, { recursive: true });
  writeJson(nodePath.join(t, 'config.json'), config);
  const w = randomWeights(CosmosTransformer3DModel.fromConfigJson(config), seed);
  const names = Object.keys(w).sort();
  const shards = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < 2; i++) {
    const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(nodePath.join(t, file), Object.fromEntries(shards[i].map((n) => [n, w[n]])));
    for (const n of shards[i]) weightMap[n] = file;
  }
  writeJson(nodePath.join(t, 'diffusion_pytorch_model.safetensors.index.json'), { metadata: {}, weight_map: weightMap });
}

const T5_CONFIG = {
  architectures: ['T5EncoderModel'], model_type: 't5', d_model: 32, d_kv: 8, num_heads: 4, d_ff: 64, num_layers: 2,
  feed_forward_proj: 'gated-gelu', vocab_size: 704, relative_attention_num_buckets: 32, relative_attention_max_distance: 128,
  layer_norm_epsilon: 1e-6, eos_token_id: 1, pad_token_id: 0,
};

async function writeT5(dir: string): Promise<void> {
  const te = nodePath.join(dir, 'text_encoder');
  mkdirSync(te, { recursive: true });
  writeJson(nodePath.join(te, 'config.json'), T5_CONFIG);
  await writeSafetensors(nodePath.join(te, 'model.safetensors'), randomWeights(new T5EncoderModel(parseT5Config(T5_CONFIG)), 't5'));
  mkdirSync(nodePath.join(dir, 'tokenizer'), { recursive: true });
  copyFileSync(nodePath.join(FIXTURES, 't5/sentencepiece/spiece.model'), nodePath.join(dir, 'tokenizer/spiece.model'));
}

function writeVae(dir: string, kind: 'diffusers' | 'cosmos'): void {
  const v = nodePath.join(dir, 'vae');
  mkdirSync(v, { recursive: true });
  if (kind === 'diffusers') {
    const src = nodePath.join(FIXTURES, 'tokenizer/diffusers_vae');
    copyFileSync(nodePath.join(src, 'config.json'), nodePath.join(v, 'config.json'));
    copyFileSync(nodePath.join(src, 'model.safetensors'), nodePath.join(v, 'diffusion_pytorch_model.safetensors'));
  } else {
    copyFileSync(nodePath.join(CV, 'config.json'), nodePath.join(v, 'config.json'));
    copyFileSync(nodePath.join(CV, 'model.safetensors'), nodePath.join(v, 'model.safetensors'));
  }
}

const EDM = {
  _class_name: 'EDMEulerScheduler', final_sigmas_type: 'sigma_min', num_train_timesteps: 1000, prediction_type: 'epsilon',
  rho: 7.0, sigma_data: 0.5, sigma_max: 80, sigma_min: 0.002, sigma_schedule: 'karras',
};
const UNIPC = {
  _class_name: 'UniPCMultistepScheduler', beta_end: 0.02, beta_schedule: 'linear', beta_start: 0.0001, final_sigmas_type: 'zero',
  flow_shift: 1.0, lower_order_final: true, num_train_timesteps: 1000, predict_x0: true, prediction_type: 'flow_prediction',
  sigma_max: 200.0, sigma_min: 0.01, solver_order: 2, solver_type: 'bh2', use_flow_sigmas: true, use_karras_sigmas: true,
};

function writeScheduler(dir: string, cfg: Record<string, unknown>): void {
  mkdirSync(nodePath.join(dir, 'scheduler'), { recursive: true });
  writeJson(nodePath.join(dir, 'scheduler/scheduler_config.json'), cfg);
}

/** Cosmos-1.0 text2world: diffusers VAE (8 latent channels, 8x8x8, latents_mean/std), T5, EDM. */
const T2W = nodePath.join(tmp, 'cosmos1-t2w');
/** Cosmos-1.0 video2world: the trained CV4x8x8 in the Cosmos-Tokenizer layout (16 channels), T5, EDM. */
const V2W = nodePath.join(tmp, 'cosmos1-v2w');
/** Predict2.5: text projection 48 -> 32, UniPC, the CV4x8x8 VAE, no text encoder (embeddings only). */
const P25 = nodePath.join(tmp, 'predict25');
/** Predict2 video2world: no learnable pos-emb, FlowMatchEulerDiscreteScheduler, T5, the CV4x8x8 VAE. */
const P2 = nodePath.join(tmp, 'predict2');
const EMB48 = nodePath.join(tmp, 'emb48.safetensors');
const EMB32 = nodePath.join(tmp, 'emb32.safetensors');

beforeAll(async () => {
  mkdirSync(T2W);
  writeJson(nodePath.join(T2W, 'model_index.json'), {
    _class_name: 'CosmosTextToWorldPipeline', scheduler: ['diffusers', 'EDMEulerScheduler'], text_encoder: ['transformers', 'T5EncoderModel'],
    tokenizer: ['transformers', 'T5TokenizerFast'], transformer: ['diffusers', 'CosmosTransformer3DModel'], vae: ['diffusers', 'AutoencoderKLCosmos'],
  });
  await writeTransformer(T2W, { ...DIT_COMMON, in_channels: 8, out_channels: 8, extra_pos_embed_type: 'learnable', rope_scale: [2, 1, 1] }, 'dit-t2w');
  writeVae(T2W, 'diffusers');
  await writeT5(T2W);
  writeScheduler(T2W, EDM);

  mkdirSync(V2W);
  writeJson(nodePath.join(V2W, 'model_index.json'), { _class_name: 'CosmosVideoToWorldPipeline' });
  await writeTransformer(V2W, { ...DIT_COMMON, in_channels: 17, out_channels: 16, extra_pos_embed_type: 'learnable', rope_scale: [2, 1, 1] }, 'dit-v2w');
  writeVae(V2W, 'cosmos');
  await writeT5(V2W);
  writeScheduler(V2W, EDM);

  mkdirSync(P25);
  writeJson(nodePath.join(P25, 'model_index.json'), {
    _class_name: 'Cosmos2_5_PredictBasePipeline', text_encoder: ['transformers', 'Qwen2_5_VLForConditionalGeneration'],
  });
  await writeTransformer(P25, {
    ...DIT_COMMON, in_channels: 17, out_channels: 16, extra_pos_embed_type: null, rope_scale: [1, 3, 3],
    use_crossattn_projection: true, crossattn_proj_in_channels: 48, encoder_hidden_states_channels: 32,
  }, 'dit-p25');
  writeVae(P25, 'cosmos');
  writeScheduler(P25, UNIPC);

  mkdirSync(P2);
  writeJson(nodePath.join(P2, 'model_index.json'), { _class_name: 'Cosmos2VideoToWorldPipeline' });
  await writeTransformer(P2, { ...DIT_COMMON, in_channels: 17, out_channels: 16, extra_pos_embed_type: null, rope_scale: [1, 3, 3] }, 'dit-p2');
  writeVae(P2, 'cosmos');
  await writeT5(P2);
  writeScheduler(P2, { _class_name: 'FlowMatchEulerDiscreteScheduler', num_train_timesteps: 1000, shift: 1.0, use_karras_sigmas: true });

  const rng = seedrandom('emb');
  const emb = (S: number, D: number) => ({ dtype: 'f32' as const, shape: [1, S, D], raw: Float32Array.from({ length: S * D }, () => 2 * rng() - 1) });
  await writeSafetensors(EMB48, { prompt_embeds: emb(6, 48), negative_prompt_embeds: emb(6, 48) });
  await writeSafetensors(EMB32, { prompt_embeds: emb(6, 32), negative_prompt_embeds: emb(6, 32) });
});

/** decode(encode(clip)) with the tiny CV tokenizer, clamped (what the pipelines write for conditioning frames). */
async function cvRoundtrip(clip: Video): Promise<Video> {
  const m = (await loadTokenizer(CV, cpu)) as CausalContinuousVideoTokenizer;
  try {
    const x = F.fromArray(cpu, clip.data, [1, 3, clip.frames, clip.height, clip.width]);
    const data = (await m.decode(m.encode(x)).read()) as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = Math.max(-1, Math.min(1, data[i]));
    return { ...clip, data };
  } finally {
    m.dispose();
  }
}

// ------------------------------------------------------------------ running the CLI

async function run(...argv: string[]): Promise<{ rc: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const rc = await main(argv);
    return { rc, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    write.mockRestore();
  }
}

function stepLines(err: string): string[] {
  return err.split('\n').filter((l) => /denoise step \d+\/\d+ +sigma [\d.e+-]+ +[\d.]+ s\/step/.test(l));
}

describe('text2world', () => {
  it('Cosmos-1.0 folder (T5 prompt, EDM, diffusers VAE): writes a 9-frame 32x32 Y4M and reports every step', async () => {
    const out = nodePath.join(tmp, 't2w.y4m');
    const r = await run('text2world', '--model', T2W, '--prompt', 'A robot arm picks up a red cube.', '--steps', '3', '--frames', '9',
      '--height', '32', '--width', '32', '--seed', '7', '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 32]);
    expect(v.header.fps).toEqual({ num: 30, den: 1 });
    const steps = stepLines(r.err);
    expect(steps.map((l) => /step (\d+\/\d+)/.exec(l)![1])).toEqual(['1/3', '2/3', '3/3']);
    expect(steps[0]).toContain('sigma 80.0');
    expect(r.err).toContain('Cosmos-1.0 Diffusion (EDM)');
    expect(r.out).toContain('9 frames 32x32 @ 30 fps');
    // the decoded clip is not flat: the VAE saw real latents
    const d = v.data;
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of d) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    expect(hi - lo).toBeGreaterThan(0.05);
  });

  it('is deterministic for a seed, and the seed matters', async () => {
    const o = { prompt: 'a car in the rain', steps: 2, frames: 1, height: 16, width: 16, decode: false, maxSequenceLength: 16 };
    const a = await text2world(T2W, cpu, { ...o, seed: 3 });
    const b = await text2world(T2W, cpu, { ...o, seed: 3 });
    const c = await text2world(T2W, cpu, { ...o, seed: 4 });
    expect(a.latents.shape).toEqual([1, 8, 1, 2, 2]);
    expect(Array.from(b.latents.data)).toEqual(Array.from(a.latents.data));
    expect(Array.from(c.latents.data)).not.toEqual(Array.from(a.latents.data));
    expect(a.video).toBeNull();
  });

  it('Predict2.5 folder with --embeddings (UniPC, guidance off): PNG frames, and latents only without --out', async () => {
    const dir = nodePath.join(tmp, 'p25-frames');
    const r = await run('text2world', '--model', P25, '--embeddings', EMB48, '--steps', '2', '--guidance', '1', '--frames', '5',
      '--height', '16', '--width', '32', '--out', dir, '--backend', 'cpu', '--json');
    expect(r.rc, r.err).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.png'))).toHaveLength(5);
    const v = await readPngFrames(dir);
    expect([v.frames, v.height, v.width]).toEqual([5, 16, 32]);
    expect(stepLines(r.err)).toHaveLength(2);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ family: 'predict2.5', steps: 2, guidance: 1, frames: 5, latent_shape: [1, 16, 2, 2, 4] });

    const lat = nodePath.join(tmp, 'p25-latents.safetensors');
    const r2 = await run('text2world', '--model', P25, '--embeddings', EMB48, '--steps', '2', '--frames', '9', '--height', '16',
      '--width', '16', '--latents-out', lat, '--backend', 'cpu');
    expect(r2.rc, r2.err).toBe(0);
    const f = await openSafetensors(lat);
    try {
      expect((await f.read('latents')).shape).toEqual([1, 16, 3, 2, 2]);
      expect(f.metadata).toMatchObject({ format: 'cosmos-ts.latents.v1', family: 'predict2.5', frames: '9' });
    } finally {
      await f.close();
    }
    expect(r2.err).not.toContain('\ndecode');
  });
});

describe('both backends', () => {
  it('text2world on WebGPU matches the CPU run (Predict2.5 folder, decoded)', async () => {
    const o = { embeddings: EMB48, steps: 2, frames: 5, height: 16, width: 32, seed: 11 };
    const a = await text2world(P25, cpu, o);
    const b = await text2world(P25, await webgpu(), o);
    expect(b.latents.shape).toEqual(a.latents.shape);
    let worst = 0;
    a.latents.data.forEach((x, i) => { worst = Math.max(worst, Math.abs(x - b.latents.data[i])); });
    expect(worst).toBeLessThan(2e-3);
    expect(quality(b.video!.data, a.video!.data, [3, 5, 16, 32]).psnr).toBeGreaterThan(50);
  });
});

describe('video2world', () => {
  it('Cosmos-1.0 folder (Cosmos-layout CV4x8x8 VAE): continues sample_0 from its last 5 frames, resized 64 -> 32', async () => {
    const out = nodePath.join(tmp, 'v2w.y4m');
    const r = await run('video2world', '--model', V2W, '--input', SAMPLE, '--prompt', 'the scene goes on', '--steps', '2',
      '--frames', '9', '--height', '32', '--width', '32', '--cond-frames', '5', '--fps', '24', '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 32]);
    expect(v.header.fps).toEqual({ num: 24, den: 1 });
    expect(stepLines(r.err)).toHaveLength(2);
    expect(r.err).toContain('conditioning on the last 5');
    expect(r.err).toContain('resized to 32x32');
    // the 5 conditioning frames come back as the VAE's own reconstruction of the input's last 5
    // (the conditioning latents went through the normalisation both ways, and EDM ends at sigma_min)
    const input = await readY4m(SAMPLE);
    const want = resizeClip(sliceFrames(input, input.frames - 5, input.frames), 32, 32);
    const got = sliceFrames(v, 0, 5);
    expect(quality(got.data, (await cvRoundtrip(want)).data, [3, 5, 32, 32]).psnr).toBeGreaterThan(45);
  });

  it('Predict2.5 folder with --embeddings: size defaults to the input (rounded to 16), conditioning frames to 1 + tc', async () => {
    // a 7-frame 36x50 PNG clip cut from the sample: the output size defaults to 32x48
    const frames = nodePath.join(tmp, 'in-frames');
    await writePngFrames(frames, cropVideo(sliceFrames(await readY4m(SAMPLE), 0, 7), 7, 36, 50));
    const out = nodePath.join(tmp, 'v2w-p25.y4m');
    const r = await run('video2world', '--model', P25, '--input', frames, '--input-fps', '12', '--embeddings', EMB48, '--steps', '2',
      '--frames', '9', '--out', out, '--backend', 'cpu', '--json');
    expect(r.rc, r.err).toBe(0);
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 48]);
    expect(r.err).toContain('7 frames 50x36; conditioning on the last 5, resized to 48x32');
    expect(JSON.parse(r.out)).toMatchObject({ command: 'video2world', family: 'predict2.5', latent_shape: [1, 16, 3, 4, 6] });
    // conditioning frames: the VAE reconstruction of the input's last 5, up to the flow loop's
    // start (x0 = x - sigma_0 v with sigma_0 = 200/201, spec dit.md §6)
    const want = await cvRoundtrip(resizeClip(sliceFrames(await readPngFrames(frames), 2, 7), 32, 48));
    expect(quality(sliceFrames(v, 0, 5).data, want.data, [3, 5, 32, 48]).psnr).toBeGreaterThan(45);
  });
});

describe('Predict2 (flow Euler)', () => {
  it('video2world from one PNG image: 9 frames, the first the VAE reconstruction of the image', async () => {
    const img = nodePath.join(tmp, 'one-frame');
    await writePngFrames(img, cropVideo(sliceFrames(await readY4m(SAMPLE), 8, 9), 1, 16, 32));
    const png = nodePath.join(img, readdirSync(img)[0]);
    const out = nodePath.join(tmp, 'v2w-p2');
    const r = await run('video2world', '--model', P2, '--input', png, '--prompt', 'a ball rolls', '--steps', '3', '--frames', '9',
      '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toContain('Cosmos-Predict2 (flow matching, Euler)');
    expect(r.err).toContain('conditioning on the last 1');
    expect(stepLines(r.err)).toHaveLength(3);
    const v = await readPngFrames(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 16, 32]);
    const want = await cvRoundtrip(await readPngFrames(img));
    expect(quality(sliceFrames(v, 0, 1).data, want.data, [3, 1, 16, 32]).psnr).toBeGreaterThan(45);
  });
});

describe('errors', () => {
  it('names the argument: frame counts and sizes the VAE / transformer cannot take', async () => {
    const base = ['text2world', '--model', T2W, '--prompt', 'x', '--steps', '1', '--out', nodePath.join(tmp, 'never.y4m'), '--backend', 'cpu'];
    let r = await run(...base, '--frames', '10', '--height', '32', '--width', '32');
    expect(r.rc).toBe(1);
    expect(r.err).toMatch(/--frames: must be 1 \+ k\*8 .*try 9 or 17/);
    r = await run(...base, '--frames', '9', '--height', '24', '--width', '32');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('--height: must be a multiple of 16');
    r = await run(...base, '--frames', '9', '--height', '32', '--width', '512');
    expect(r.rc).toBe(1);
    expect(r.err).toContain("--width: 64 latent positions exceed the transformer's max_size 32");
    r = await run(...base, '--frames', '9', '--height', '32', '--width', '32', '--steps', '0');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('--steps must be an integer >= 1');
    expect(existsSync(nodePath.join(tmp, 'never.y4m'))).toBe(false);
  });

  it('embeddings: wrong width, missing tensors, required for Predict2.5', async () => {
    const base = ['text2world', '--model', P25, '--steps', '1', '--frames', '1', '--height', '16', '--width', '16', '--out', nodePath.join(tmp, 'n.y4m'), '--backend', 'cpu'];
    let r = await run(...base, '--embeddings', EMB32);
    expect(r.rc).toBe(1);
    expect(r.err).toContain('--embeddings: ');
    expect(r.err).toContain('prompt_embeds has width 32 but the transformer reads text states of width 48');
    r = await run(...base, '--prompt', 'hello');
    expect(r.rc).toBe(1);
    expect(r.err).toMatch(/--embeddings: needed for this model: Predict2\.5's text encoder is the Cosmos-Reason VLM/);
    const onlyPrompt = nodePath.join(tmp, 'only-prompt.safetensors');
    await writeSafetensors(onlyPrompt, { prompt_embeds: { dtype: 'f32', shape: [6, 48], raw: new Float32Array(6 * 48) } });
    r = await run(...base, '--embeddings', onlyPrompt);
    expect(r.rc).toBe(1);
    expect(r.err).toContain('holds no "negative_prompt_embeds"; guidance > 1 needs them');
    // guidance 1: the negative is not needed, and [S, D] embeddings are taken as batch 1
    r = await run(...base, '--embeddings', onlyPrompt, '--guidance', '1');
    expect(r.rc, r.err).toBe(0);
  });

  it('missing subfolders and files, a text2world model given to video2world, missing flags', async () => {
    const empty = nodePath.join(tmp, 'empty-model');
    mkdirSync(empty);
    let r = await run('text2world', '--model', empty, '--prompt', 'x', '--out', nodePath.join(tmp, 'n.y4m'), '--backend', 'cpu');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('the scheduler/ subfolder is required');
    mkdirSync(nodePath.join(empty, 'scheduler'));
    writeJson(nodePath.join(empty, 'scheduler/scheduler_config.json'), EDM);
    expect(() => inspectWorldModel(empty)).toThrow(/transformer\/ subfolder is required/);
    mkdirSync(nodePath.join(empty, 'transformer'));
    expect(() => inspectWorldModel(empty)).toThrow(PipelineFilesError);
    expect(() => inspectWorldModel(empty)).toThrow(/transformer\/config\.json/);

    r = await run('video2world', '--model', T2W, '--input', SAMPLE, '--prompt', 'x', '--out', nodePath.join(tmp, 'n.y4m'), '--backend', 'cpu');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('--model: ');
    expect(r.err).toContain('a text2world model; video2world needs the condition-mask channel (in_channels 9)');

    r = await run('video2world', '--model', V2W, '--input', SAMPLE, '--prompt', 'x', '--frames', '9', '--cond-frames', '12',
      '--out', nodePath.join(tmp, 'n.y4m'), '--backend', 'cpu');
    expect(r.rc).toBe(1);
    expect(r.err).toContain('--cond-frames: 12 conditioning frames do not fit in the 9 output frames');

    r = await run('text2world', '--model', T2W, '--prompt', 'x');
    expect(r.rc).toBe(2);
    expect(r.err).toContain('missing --out');
  });

  it('planSizes and the clip helpers', () => {
    const info = inspectWorldModel(V2W);
    expect(info.family).toBe('cosmos1');
    expect(info.vae).toEqual({ latentChannels: 16, temporalCompression: 4, spatialCompression: 8 });
    expect(planSizes(info, info.vae!, 9, 32, 48).latentShape).toEqual([1, 16, 3, 4, 6]);
    expect(() => planSizes(info, info.vae!, 8, 32, 48)).toThrow(PipelineInputError);
    const clip = { data: Float32Array.from({ length: 3 * 2 * 2 * 2 }, (_, i) => i), frames: 2, height: 2, width: 2 };
    const up = resizeClip(clip, 4, 4);
    expect(up.data[0]).toBe(0);
    expect(up.data[3]).toBe(1);
    expect(up.data[1]).toBeCloseTo(0.25, 6);
    const z = conditioningClip(clip, 4, 'zeros');
    expect(z.frames).toBe(4);
    expect(Array.from(z.data.subarray(8, 16))).toEqual(new Array(8).fill(0));
    const l = conditioningClip(clip, 4, 'last');
    expect(Array.from(l.data.subarray(8, 12))).toEqual([4, 5, 6, 7]);
  });
});
