// ar-video2world with the diffusion decoder, end to end on tiny real models: the AR model of the
// tiny DV tokenizer's 64000 codes generates the grid, the decoder (the ar_decoder case's network,
// widened to that codebook and to the tiny CV tokenizer's 16 latent channels, random weights under
// the released net.* names, aux_vars.pt beside it as the release ships it) samples CV latents
// window by window, and the tiny CV tokenizer (with a mean_std.pt) decodes them. Nothing here is
// a stand-in: the chain's own unit tests (ar-decoder.test.ts) cover the windows and the blend.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, writeSafetensors } from '../../src/io/safetensors.js';
import { torchTuple, writeTorchCheckpoint } from '../../src/io/torch.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { ArDecoderFamily, arDecoderCheckpointKey, isIgnoredArDecoderKey } from '../../src/models/ar-decoder/model.js';
import { arVideo2World } from '../../src/pipelines/ar-video2world.js';
import { decodeArTokens, readDecoderContext } from '../../src/pipelines/ar-decoder.js';
import { runCli } from '../cli/run-cli.js';
import { cpu, gpu } from '../harness.js';
import { DV, SAMPLE, tempFolder, tinyConfig, writeArCheckpoint } from './arvlm-fixtures.js';

const FIXTURES = nodePath.resolve(import.meta.dirname, '../fixtures');
const CASE = nodePath.join(FIXTURES, 'ar_decoder/forward');
const CV_TINY = nodePath.resolve(import.meta.dirname, '../../weights/cosmos-tokenizer-tiny-cv4x8x8');
const TEXT_DIM = 32;

const { dir: tmp, remove } = tempFolder('cosmos-ar-decoder-run-');
afterAll(remove);

const f32 = (a: Float32Array) => ({ dtype: 'F32' as const, shape: [a.length], bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });

/**
 * The case's decoder config on the tiny tokenizers' sizes, its weights random under the case
 * checkpoint's (released) names with the shapes this config gives them.
 */
async function writeDecoder(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const config = {
    ...JSON.parse(readFileSync(nodePath.join(CASE, 'config.json'), 'utf8')),
    diffusion_decoder_token_condition_voc_size: 64000, in_channels: 16, out_channels: 16, crossattn_emb_channels: TEXT_DIM,
  };
  const shapes = new Map([...ArDecoderFamily.build(config).parameters()].map((p) => [p.key, p.shape]));
  const src = await openCheckpoint(nodePath.join(CASE, 'model.safetensors'));
  const rng = seedrandom('ar-decoder-run');
  const state = new Map<string, { dtype: 'F32'; shape: number[]; bytes: Uint8Array }>();
  try {
    for (const name of src.names) {
      if (isIgnoredArDecoderKey(name)) continue;
      const shape = shapes.get(arDecoderCheckpointKey(name) ?? '');
      if (!shape) throw new Error(`${name}: no parameter of the widened decoder`);
      const n = shape.reduce((a, b) => a * b, 1);
      const norm = shape.length === 1 && /norm|k\.1|q\.1/.test(name) && name.endsWith('weight');
      const a = shape.length >= 2 ? 1 / Math.sqrt(shape[shape.length - 1]) : 0.05;
      const data = Float32Array.from({ length: n }, () => (norm ? 1 + 0.1 * (rng() - 0.5) : a * (2 * rng() - 1) * 1.7));
      state.set(name, { dtype: 'F32', shape, bytes: new Uint8Array(data.buffer) });
    }
  } finally {
    await src.close();
  }
  expect(state.size).toBe(shapes.size);
  // the release's layout: model.pt (torch.save of the net.* state dict) and aux_vars.pt (the generic prompt's T5 context)
  await writeTorchCheckpoint(nodePath.join(dir, 'model.pt'), state);
  const context = Float32Array.from({ length: 512 * TEXT_DIM }, (_, i) => (i < 9 * TEXT_DIM ? Math.sin(i) : 0));
  await writeTorchCheckpoint(nodePath.join(dir, 'aux_vars.pt'), {
    context: { dtype: 'F32', shape: [1, 512, TEXT_DIM], bytes: new Uint8Array(context.buffer) },
    context_mask: { dtype: 'F32', shape: [1, 512], bytes: new Uint8Array(Float32Array.from({ length: 512 }, (_, i) => (i < 9 ? 1 : 0)).buffer) },
  });
  // the widened config: a folder with model.pt and config.json (the release has none: the 7B's is built in)
  writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** The tiny CV tokenizer with a mean_std.pt (16 channels x 8 latent frames, as the release's tuple). */
async function writeCv(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(nodePath.join(CV_TINY, f), nodePath.join(dir, f));
  const mean = Float32Array.from({ length: 16 * 8 }, (_, i) => 0.05 * Math.sin(i));
  const std = Float32Array.from({ length: 16 * 8 }, (_, i) => 0.8 + 0.2 * Math.cos(i));
  await writeTorchCheckpoint(nodePath.join(dir, 'mean_std.pt'), torchTuple(f32(mean), f32(std)));
  return dir;
}

let ar = '';
let decoder = '';
let cvFolder = '';
let clip = '';
beforeAll(async () => {
  // a [3, 8, 8] grid: 2 latent frames of context (5 frames), 1 generated: one decoder window, reflected
  ar = await writeArCheckpoint(nodePath.join(tmp, 'ar'), tinyConfig(), 7);
  decoder = await writeDecoder(nodePath.join(tmp, 'decoder'));
  cvFolder = await writeCv(nodePath.join(tmp, 'cv'));
  clip = nodePath.join(tmp, 'clip5.y4m');
  await writeY4m(clip, sliceFrames(await readY4m(SAMPLE), 0, 5));
}, 120_000);

describe('ar-video2world with the diffusion decoder (tiny AR, DV, decoder and CV models)', () => {
  it('cpu: the same tokens as the DV decode; one window of 8 latent frames sampled from them, the CV decode of 9 frames; the AR model freed first', async () => {
    const input = await readY4m(clip);
    const plain = await arVideo2World({ model: ar, tokenizer: DV, input, backend: cpu, seed: 5 });
    expect(plain.decode).toBe('dv');
    const phases: string[] = [];
    const steps: number[] = [];
    const r = await arVideo2World({
      model: ar, tokenizer: DV, input, backend: cpu, seed: 5, decoder, cvTokenizer: cvFolder, decoderSteps: 3,
      onPhase: (p) => phases.push(p), onProgress: (e) => e.stage === 'decoder' && steps.push(e.done),
    });
    expect(r.decode).toBe('diffusion-decoder');
    expect(Array.from(r.tokens)).toEqual(Array.from(plain.tokens));
    expect(r.decoder).toMatchObject({ steps: 3, guidance: 1.8, latentShape: [1, 16, 8, 8, 8] });
    expect(r.decoder!.chunks.map((c) => c.frames)).toEqual([[0, 1, 2, 1, 0, 1, 2, 1]]);
    expect(steps).toEqual([1, 2, 3]);
    expect(phases).toEqual(['decoder', 'cv-decode']);
    expect([r.video.frames, r.video.height, r.video.width]).toEqual([plain.video.frames, 64, 64]);
    // a video in [-1, 1] that is not the DV decode
    let diff = 0;
    for (let i = 0; i < r.video.data.length; i++) {
      expect(Math.abs(r.video.data[i])).toBeLessThanOrEqual(1);
      diff = Math.max(diff, Math.abs(r.video.data[i] - plain.video.data[i]));
    }
    expect(diff).toBeGreaterThan(0.01);
    // the chain alone on the same ids and the aux_vars.pt text gives the same clip (seeded per window)
    const again = await decodeArTokens({
      ids: r.tokens, grid: [3, 8, 8], dv: { vocabSize: 64000, temporalCompression: 4, spatialCompression: 8 },
      text: await readDecoderContext(decoder),
      decoder, cvTokenizer: cvFolder, backend: cpu, steps: 3, seed: 5,
    });
    expect(again.video.data).toEqual(r.video.data);
  }, 240_000);

  it('webgpu: the whole chain agrees with the cpu run', async () => {
    const be = await gpu();
    const input = await readY4m(clip);
    const opts = { model: ar, tokenizer: DV, input, seed: 2, decoder, cvTokenizer: cvFolder, decoderSteps: 2 };
    const want = await arVideo2World({ ...opts, backend: cpu });
    const got = await arVideo2World({ ...opts, backend: be });
    expect(Array.from(got.tokens)).toEqual(Array.from(want.tokens));
    let worst = 0;
    for (let i = 0; i < want.video.data.length; i++) worst = Math.max(worst, Math.abs(got.video.data[i] - want.video.data[i]));
    expect(worst).toBeLessThan(2e-3);
  }, 300_000);

  it('the command line: --decoder / --cv-tokenizer write the sharper clip and say which decode ran; without them a note says what they add', async () => {
    const out = nodePath.join(tmp, 'out-dec.y4m');
    const r = await runCli('ar-video2world', '--model', ar, '--tokenizer', DV, '--input', clip, '--out', out, '--backend', 'cpu',
      '--decoder', decoder, '--cv-tokenizer', cvFolder, '--decoder-steps', '2', '--seed', '1');
    expect(r.rc, r.err).toBe(0);
    expect(r.out).toMatch(/decoder [\d.]+ s \(1 window\(s\) x 2 steps\), cv decode [\d.]+ s on cpu/);
    expect(r.err).not.toContain('note: decoded by the DV tokenizer');
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 64, 64]);

    const plain = await runCli('ar-video2world', '--model', ar, '--tokenizer', DV, '--input', clip, '--out', nodePath.join(tmp, 'out-dv.y4m'), '--backend', 'cpu');
    expect(plain.rc, plain.err).toBe(0);
    expect(plain.err).toContain('note: decoded by the DV tokenizer');
  }, 240_000);

  it('mistakes are one line before any token is generated: a missing partner flag, steps without a decoder, a DV tokenizer as --cv-tokenizer, a decoder of another codebook', async () => {
    const base = ['ar-video2world', '--model', ar, '--tokenizer', DV, '--input', clip, '--out', nodePath.join(tmp, 'bad.y4m'), '--backend', 'cpu'];
    const one = async (args: string[], pattern: RegExp) => {
      const r = await runCli(...base, ...args);
      expect(r.rc, r.err).toBe(2);
      // notes (no guardrails, the input) may come first; the error is the one last line
      expect(r.errLines.filter((l) => !l.startsWith('note: ') && !l.startsWith('input '))).toEqual([expect.stringMatching(pattern)]);
      expect(r.err).not.toMatch(/^\s+at /m);
    };
    await one(['--decoder', decoder], /^error: --decoder: .*--cv-tokenizer/);
    await one(['--cv-tokenizer', cvFolder], /^error: --cv-tokenizer: .*--decoder/);
    await one(['--decoder-steps', '4'], /^error: --decoder-steps: only means something with --decoder/);
    await one(['--decoder', decoder, '--cv-tokenizer', DV], /^error: cv-tokenizer .*: a DV \(discrete\) tokenizer/);
    // the case's own decoder embeds 320 token ids, not the DV tokenizer's 64000 codes
    const other = nodePath.join(tmp, 'decoder-320');
    mkdirSync(other, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(nodePath.join(CASE, f), nodePath.join(other, f));
    await one(['--decoder', other, '--cv-tokenizer', cvFolder, '--embeddings', await textFile()], /decoder-320: the decoder's token embedding has 320 rows/);
  }, 240_000);
});

/** T5 states of the decoder's width for a run whose decoder folder has no aux_vars.pt. */
async function textFile(): Promise<string> {
  const path = nodePath.join(tmp, 'text.safetensors');
  await writeSafetensors(path, { embeddings: { dtype: 'f32', shape: [4, TEXT_DIM], raw: new Float32Array(4 * TEXT_DIM).fill(0.1) } });
  return path;
}
