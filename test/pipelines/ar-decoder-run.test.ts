// ar-video2world with the diffusion decoder, end to end on tiny real models: the AR model of the
// tiny DV tokenizer's 64000 codes generates the grid, the decoder (the ar_decoder case's network,
// widened to that codebook and to the tiny CV tokenizer's 16 latent channels, random weights under
// the released net.* names, aux_vars.pt beside it as the release ships it) samples CV latents
// window by window, and the tiny CV tokenizer (with a mean_std.pt) decodes them. Nothing here is
// a stand-in: the chain's own unit tests (ar-decoder.test.ts) cover the windows and the blend.
import { copyFileSync, mkdirSync } from 'node:fs';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { arVideo2World } from '../../src/pipelines/ar-video2world.js';
import { decodeArTokens, readDecoderContext } from '../../src/pipelines/ar-decoder.js';
import { runCli } from '../cli/run-cli.js';
import { cpu, gpu } from '../harness.js';
import { DECODER_CASE, TEXT_DIM, writeCv, writeDecoder } from './ar-decoder-fixtures.js';
import { DV, SAMPLE, tempFolder, tinyConfig, writeArCheckpoint } from './arvlm-fixtures.js';

const { dir: tmp, remove } = tempFolder('cosmos-ar-decoder-run-');
afterAll(remove);

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
  it('cpu: the same tokens as the DV decode; one window of 8 latent frames sampled from them, the CV decode of 9 frames', async () => {
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
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(nodePath.join(DECODER_CASE, f), nodePath.join(other, f));
    await one(['--decoder', other, '--cv-tokenizer', cvFolder, '--embeddings', await textFile()], /decoder-320: the decoder's token embedding has 320 rows/);
  }, 240_000);
});

/** T5 states of the decoder's width for a run whose decoder folder has no aux_vars.pt. */
async function textFile(): Promise<string> {
  const path = nodePath.join(tmp, 'text.safetensors');
  await writeSafetensors(path, { embeddings: { dtype: 'f32', shape: [4, TEXT_DIM], raw: new Float32Array(4 * TEXT_DIM).fill(0.1) } });
  return path;
}
