// `--plan` on the release skeletons (every weight a sparse hole): each model command checks its
// folder against the checkpoint headers and reports the bytes of every component and the peak,
// exit 0, reading no tensor data (a FileSystem that records every read proves it); a transposed
// or a missing tensor is a one-line error naming it, exit 2.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FileSystem, fileSystem, setFileSystem } from '../../src/io/files.js';
import { embeddingsFile, useReleases } from '../pipelines/release-runs.js';
import { brokenCopy, drop, tensorNames, transpose } from '../releases/header-edit.js';
import { runCli } from './run-cli.js';
import { recordingFs } from '../recording-fs.js';
import { writeArDecoderSkeleton } from '../releases/ar-decoder-skeleton.js';
import { torchTuple, writeTorchCheckpoint } from '../../src/io/torch.js';

const { release, scratch } = useReleases();

// ------------------------------------------------------------------ a file system that records reads

const { fs: recorded, reads } = recordingFs();

/** Bytes read from the data region of a .safetensors file (after its 8-byte length and JSON header). */
function dataBytesRead(): { path: string; bytes: number }[] {
  const headerEnd = new Map<string, number>();
  const out: { path: string; bytes: number }[] = [];
  for (const r of reads) {
    if (!r.path.endsWith('.safetensors')) continue;
    if (!headerEnd.has(r.path)) {
      const first = reads.find((x) => x.path === r.path && x.position === 8);
      headerEnd.set(r.path, 8 + (first?.length ?? 0));
    }
    const past = r.position + r.length - headerEnd.get(r.path)!;
    if (past > 0) out.push({ path: r.path, bytes: past });
  }
  return out;
}

let saved: FileSystem;
beforeAll(() => {
  saved = fileSystem();
  setFileSystem(recorded);
});
afterAll(() => setFileSystem(saved));

// ------------------------------------------------------------------ helpers

interface Plan {
  command: string;
  plan: true;
  backend: string;
  planned_bytes: Record<string, number>;
  peak_bytes: number;
  phase_peak_bytes: Record<string, number>;
  largest_tensor_bytes: number;
  limits: { max_buffer_bytes: number; max_binding_bytes: number; from: string };
  notes: string[];
  seconds: number;
  [k: string]: unknown;
}

/** Run a --plan --json command; it must succeed, print ONE JSON object, and read no tensor data. */
async function plan(...argv: string[]): Promise<Plan> {
  reads.length = 0;
  const r = await runCli(...argv, '--plan', '--json');
  expect(r.err.split('\n').filter((l) => l.startsWith('error')), r.err).toEqual([]);
  expect(r.rc).toBe(0);
  expect(r.out.split('\n')).toHaveLength(1);
  const p = JSON.parse(r.out) as Plan;
  expect(p.plan).toBe(true);
  expect(reads.some((x) => x.path.endsWith('.safetensors'))).toBe(true);
  expect(dataBytesRead()).toEqual([]);
  // every component has bytes, and the peak holds at least the largest of them
  const bytes = Object.values(p.planned_bytes);
  expect(bytes.length).toBeGreaterThan(0);
  for (const b of bytes) expect(b).toBeGreaterThan(0);
  expect(p.peak_bytes).toBeGreaterThanOrEqual(Math.max(...bytes));
  expect(p.peak_bytes).toBe(Math.max(...Object.values(p.phase_peak_bytes)));
  return p;
}

const GiB = 2 ** 30;

describe('--plan on every pipeline folder', () => {
  it('text2world, Predict2-2B-Text2Image at its default size: text encoder, transformer, VAE one after the other', async () => {
    const p = await plan('text2world', '--model', release('Cosmos-Predict2-2B-Text2Image'), '--backend', 'cpu');
    expect(p).toMatchObject({ command: 'text2world', backend: 'cpu', frames: 1, height: 768, width: 1360, steps: 35, latent_shape: [1, 16, 1, 96, 170] });
    const c = p.planned_bytes;
    expect(Object.keys(c).sort()).toEqual(['text_encoder', 'transformer', 'vae']);
    // T5-11B's encoder (bf16) and the 2B transformer (bf16) as their headers say
    expect(c.text_encoder / GiB).toBeCloseTo(9.06, 1);
    expect(c.transformer / GiB).toBeCloseTo(3.64, 1);
    // never two of them on the device together
    expect(p.peak_bytes).toBeLessThan(c.text_encoder + c.transformer);
    expect(Object.keys(p.phase_peak_bytes)).toEqual(['prompt', 'denoise', 'decode']);
    expect(p.notes.join(' ')).toMatch(/no prompt given/);
    expect(p.seconds).toBeLessThan(60);
  }, 120_000);

  it('video2world, Predict2-2B-Video2World without an input clip', async () => {
    const p = await plan('video2world', '--model', release('Cosmos-Predict2-2B-Video2World'), '--backend', 'cpu', '--steps', '2', '--embeddings-out', 'unused.safetensors');
    expect(p).toMatchObject({ frames: 93, height: 704, width: 1280, latent_shape: [1, 16, 24, 88, 160] });
    expect(Object.keys(p.phase_peak_bytes)).toEqual(['prompt', 'condition', 'denoise', 'decode']);
  }, 120_000);

  it('text2world, Cosmos-1.0-Diffusion-7B-Text2World (T5 + 7B + Cosmos tokenizer), latents only with --latents-out', async () => {
    const p = await plan('text2world', '--model', release('Cosmos-1.0-Diffusion-7B-Text2World'), '--backend', 'cpu', '--steps', '2', '--latents-out', 'x.safetensors');
    expect(p).toMatchObject({ frames: 121, latent_shape: [1, 16, 16, 88, 160] });
    expect(Object.keys(p.planned_bytes).sort()).toEqual(['text_encoder', 'transformer']);
    expect(p.planned_bytes.transformer / GiB).toBeGreaterThan(12);
  }, 120_000);

  it('text2world and video2world, Predict2.5-2B (the Reason1 prompt encoder), a prompt given', async () => {
    const dir = release('Cosmos-Predict2.5-2B@diffusers-base-post-trained');
    const t = await plan('text2world', '--model', dir, '--backend', 'cpu', '--steps', '2', '--prompt', 'a robot arm', '--frames', '5', '--height', '256', '--width', '256');
    expect(t.planned_bytes.text_encoder).toBeGreaterThan(t.planned_bytes.transformer);
    const v = await plan('video2world', '--model', dir, '--backend', 'cpu', '--steps', '2', '--embeddings', await embeddingsFile(scratch(), 100352));
    expect(Object.keys(v.planned_bytes).sort()).toEqual(['transformer', 'vae']);
  }, 120_000);

  it('transfer --spec, Transfer2.5-2B + the edge ControlNet, no control video on disk', async () => {
    const spec = join(scratch(), 'transfer-spec.json');
    writeFileSync(spec, JSON.stringify({
      model: release('Cosmos-Transfer2.5-2B@diffusers-general'), num_steps: 2,
      controls: { edge: { input_control: 'edge.y4m', control_weight: 1, ckpt_path: release('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge') } },
    }));
    const p = await plan('transfer', '--spec', spec, '--backend', 'cpu');
    expect(Object.keys(p.planned_bytes).sort()).toEqual(['controlnet:edge', 'text_encoder', 'transformer', 'vae']);
    expect(p).toMatchObject({ frames: 93, height: 704, width: 1280 });
    expect(p.notes.join(' ')).toMatch(/no control video found/);
  }, 120_000);

  it('ar-video2world, the 5B Video2World model (converted) with the DV8x16x16 tokenizer (converted)', async () => {
    const model = arFolder('Cosmos-1.0-Autoregressive-5B-Video2World-converted', 'text_to_video');
    const p = await plan('ar-video2world', '--model', model, '--tokenizer', release('Cosmos-1.0-Tokenizer-DV8x16x16-converted'), '--backend', 'cpu');
    expect(Object.keys(p.planned_bytes).sort()).toEqual(['model', 'tokenizer']);
    expect(p).toMatchObject({ grid: [5, 40, 64], context_frames: 9 });
    expect(Object.keys(p.phase_peak_bytes)).toEqual(['load', 'encode', 'generate', 'decode']);
  }, 120_000);

  it('ar-video2world with the diffusion decoder: the 4B, DV8x16x16, the 7B decoder and CV8x8x8 (converted; the decoder and the CV tokenizer load after the AR model is freed)', async () => {
    const model = arFolder('Cosmos-1.0-Autoregressive-4B-converted', 'video_to_video');
    const decoder = await writeArDecoderSkeleton(join(scratch(), 'Cosmos-1.0-Diffusion-7B-Decoder-DV8x16x16ToCV8x8x8-converted'));
    const cv = join(scratch(), 'Cosmos-1.0-Tokenizer-CV8x8x8-with-mean-std');
    mkdirSync(cv, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) symlinkSync(join(release('Cosmos-1.0-Tokenizer-CV8x8x8-converted'), f), join(cv, f));
    const t = () => ({ dtype: 'F32' as const, shape: [16 * 8], bytes: new Uint8Array(16 * 8 * 4) });
    await writeTorchCheckpoint(join(cv, 'mean_std.pt'), torchTuple(t(), t()));
    const p = await plan('ar-video2world', '--model', model, '--tokenizer', release('Cosmos-1.0-Tokenizer-DV8x16x16-converted'), '--backend', 'cpu',
      '--decoder', decoder, '--cv-tokenizer', cv);
    expect(p).toMatchObject({ grid: [5, 40, 64], decode: 'diffusion-decoder', decoder_chunks: 1 });
    expect(Object.keys(p.planned_bytes).sort()).toEqual(['cv_tokenizer', 'decoder', 'model', 'tokenizer']);
    // the 7B in bf16: 14 GB
    expect(p.planned_bytes.decoder / GiB).toBeGreaterThan(12);
    expect(p.planned_bytes.decoder / GiB).toBeLessThan(15);
    expect(Object.keys(p.phase_peak_bytes)).toEqual(['load', 'encode', 'generate', 'decoder', 'cv-decode']);
    // the decoder's phase holds neither the AR model nor the DV tokenizer
    expect(p.phase_peak_bytes.decoder).toBeLessThan(p.planned_bytes.decoder + p.planned_bytes.model);
    expect(p.peak_bytes).toBe(Math.max(...Object.values(p.phase_peak_bytes)));
    expect(p.notes.join(' ')).toMatch(/generic-prompt context \(aux_vars\.pt\) planned as 512 x 1024/);
  }, 180_000);

  it('reason, Cosmos-Reason1-7B', async () => {
    const p = await plan('reason', '--model', release('Cosmos-Reason1-7B'), '--backend', 'cpu');
    expect(p.planned_bytes.model / GiB).toBeGreaterThan(14);
    expect(p.phase_peak_bytes.generate).toBeGreaterThan(p.planned_bytes.model);
  }, 120_000);

  it('tokenize and roundtrip, the CV8x8x8 and DV8x16x16 tokenizers (converted)', async () => {
    const cv = await plan('tokenize', '--model', release('Cosmos-1.0-Tokenizer-CV8x8x8-converted'), '--backend', 'cpu', '--frames', '33', '--height', '256', '--width', '256');
    expect(cv).toMatchObject({ kind: 'CV', token_shape: [1, 16, 5, 32, 32] });
    expect(Object.keys(cv.phase_peak_bytes)).toEqual(['load', 'encode']);
    const dv = await plan('roundtrip', '--model', release('Cosmos-1.0-Tokenizer-DV8x16x16-converted'), '--backend', 'cpu', '--frames', '33', '--height', '256', '--width', '256');
    expect(dv).toMatchObject({ kind: 'DV', token_shape: [1, 5, 16, 16] });
    expect(Object.keys(dv.phase_peak_bytes)).toEqual(['load', 'encode', 'decode']);
  }, 120_000);

  it('prints the plan as text without --json, and needs --input / --out only without --plan', async () => {
    const r = await runCli('tokenize', '--model', release('Cosmos-1.0-Tokenizer-CV8x8x8-converted'), '--backend', 'cpu', '--plan', '--frames', '9', '--height', '64', '--width', '64');
    expect(r.rc).toBe(0);
    expect(r.out).toMatch(/^plan tokenize: 9 frames 64x64 -> CV tokens \[1, 16, 2, 8, 8\] on cpu/);
    expect(r.out).toMatch(/\n {2}tokenizer +\d+\.\d MiB/);
    expect(r.out).toMatch(/\n {2}peak +/);
    const missing = await runCli('tokenize', '--model', release('Cosmos-1.0-Tokenizer-CV8x8x8-converted'));
    expect(missing.rc).toBe(2);
    expect(missing.errLines).toEqual(["error: --input, --out: missing (required unless --plan; run 'cosmos-ts tokenize --help')"]);
  }, 120_000);
});

describe('--plan refuses a checkpoint that does not fit its config: one line naming the tensor, exit 2', () => {
  it('a transposed transformer tensor', async () => {
    const src = release('Cosmos-Predict2-2B-Text2Image');
    const name = 'transformer_blocks.0.ff.net.0.proj.weight';
    const dir = brokenCopy(src, join(scratch(), 'transposed'), 'transformer/diffusion_pytorch_model.safetensors', transpose(name));
    const r = await runCli('text2world', '--model', dir, '--plan', '--json', '--backend', 'cpu');
    expect(r.rc).toBe(2);
    expect(r.out).toBe('');
    expect(r.errLines).toHaveLength(1);
    expect(r.errLines[0]).toMatch(/^error: /);
    expect(r.errLines[0]).toContain(`${name}: checkpoint [2048, 8192], config implies [8192, 2048]`);
  }, 120_000);

  it('a VAE tensor missing (found before anything runs, though the VAE is loaded last)', async () => {
    const src = release('Cosmos-Predict2-2B-Text2Image');
    const file = 'vae/diffusion_pytorch_model.safetensors';
    const name = tensorNames(join(src, file)).find((n) => n.startsWith('decoder.') && n.endsWith('.weight'))!;
    const dir = brokenCopy(src, join(scratch(), 'missing'), file, drop(name));
    const r = await runCli('text2world', '--model', dir, '--plan', '--backend', 'cpu');
    expect(r.rc).toBe(2);
    expect(r.errLines).toHaveLength(1);
    expect(r.errLines[0]).toMatch(/^error: .*missing keys \(1\): /);
    expect(r.errLines[0]).toContain(name);
  }, 120_000);
});

describe('--plan --backend webgpu', () => {
  it("plans with the adapter's limits (or typical GPU limits, said so, where there is none)", async () => {
    const p = await plan('tokenize', '--model', release('Cosmos-1.0-Tokenizer-CV8x8x8-converted'), '--backend', 'webgpu', '--frames', '9', '--height', '64', '--width', '64');
    expect(p.backend).toBe('webgpu');
    expect(p.limits.from).toMatch(/^(adapter |typical discrete-GPU limits)/);
    expect(p.limits.max_binding_bytes).toBeLessThanOrEqual(p.limits.max_buffer_bytes);
  }, 120_000);
});

// ------------------------------------------------------------------ inputs

/**
 * An AR folder of the converted skeleton with the fields the released config.json leaves out
 * (video_latent_shape, training_type), as loading the release folder will fill them in.
 */
function arFolder(name: string, trainingType: string): string {
  const dir = join(scratch(), `${name}-with-grid`);
  mkdirSync(dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(release(name), 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, video_latent_shape: [5, 40, 64], training_type: trainingType }));
  symlinkSync(join(release(name), 'model.safetensors'), join(dir, 'model.safetensors'));
  return dir;
}
