// The tokenize / detokenize / roundtrip commands on the cpu backend with the tiny trained
// tokenizers: the sample clip's PSNR against expected.json, the padding / cropping of a small
// odd-sized clip through tokens files, and the error contract (usage and file errors exit 2).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePng } from '../../src/io/png.js';
import { readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { cropVideo, sliceFrames } from '../../src/io/video.js';
import { readY4m } from '../../src/io/y4m.js';
import { runCli as run } from './run-cli.js';

const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const SAMPLES = nodePath.join(WEIGHTS, 'samples');
const CV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-cv4x8x8');
const DV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-dv4x8x8');
const expected = JSON.parse(readFileSync(nodePath.join(SAMPLES, 'expected.json'), 'utf8'));
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('roundtrip', () => {
  it('sample_0.y4m with the tiny CV model: prints the PSNR of expected.json', async () => {
    const out = nodePath.join(tmp, 'rec_cv.y4m');
    const r = await run('roundtrip', '--model', CV, '--input', nodePath.join(SAMPLES, 'sample_0.y4m'), '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    const psnr = Number(/PSNR ([\d.]+) dB/.exec(r.out)?.[1]);
    const ssim = Number(/SSIM ([\d.]+)/.exec(r.out)?.[1]);
    // The clip is the 8-bit y4m of the tensor expected.json was computed from (54 dB apart), so
    // the metrics agree closely but not to the last digit.
    expect(Math.abs(psnr - expected.samples[0].cv.psnr)).toBeLessThan(0.02);
    expect(Math.abs(ssim - expected.samples[0].cv.ssim)).toBeLessThan(0.005);
    // The written reconstruction is within one code value of the upstream one.
    const ours = readFileSync(out);
    const theirs = readFileSync(nodePath.join(SAMPLES, expected.samples[0].cv.recon_y4m));
    expect(ours.length).toBe(theirs.length);
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
    expect(worst).toBeLessThanOrEqual(1);
  });
});

describe('tokenize / detokenize', () => {
  it('pads an odd-sized PNG clip for the DV model, records it, and crops it back', async () => {
    // 6 frames of 12x20 -> padded to 9 x 16 x 24 (T = 1 + 2*4, multiples of 8)
    const clip = cropVideo(sliceFrames(await readY4m(nodePath.join(SAMPLES, 'sample_2.y4m')), 0, 6), 6, 12, 20);
    const frames = nodePath.join(tmp, 'in-frames');
    await writePngFrames(frames, clip);
    const tokens = nodePath.join(tmp, 'dv.safetensors');
    const t = await run('tokenize', '--model', DV, '--input', frames, '--out', tokens, '--backend', 'cpu', '--chunk', '4', '--fps', '8');
    expect(t.rc, t.err).toBe(0);
    expect(t.out).toContain('indices [1, 3, 2, 3] from 6 frames (padded to 9x16x24)');
    const f = await openSafetensors(tokens);
    try {
      expect(f.metadata).toMatchObject({ kind: 'DV', model: DV, frames: '6', height: '12', width: '20', padded_frames: '9', fps: '8/1' });
      const idx = await f.read('indices');
      expect([idx.dtype, idx.shape]).toEqual(['i32', [1, 3, 2, 3]]);
      expect((await f.read('codes')).shape).toEqual([1, 6, 3, 2, 3]);
      for (const id of idx.raw) expect(id >= 0 && id < 64000).toBe(true);
    } finally {
      await f.close();
    }

    // detokenize (model from the metadata)
    const y4m = nodePath.join(tmp, 'dv.y4m');
    const d = await run('detokenize', '--tokens', tokens, '--out', y4m, '--backend', 'cpu');
    expect(d.rc, d.err).toBe(0);
    const rec = await readY4m(y4m);
    expect([rec.frames, rec.height, rec.width, rec.fps]).toEqual([6, 12, 20, { num: 8, den: 1 }]);

    // roundtrip on the same frames writes the same reconstruction as tokenize + detokenize,
    // plus PNG frames and a contact sheet
    const rt = nodePath.join(tmp, 'rt.y4m');
    const pngDir = nodePath.join(tmp, 'rt-frames');
    const sheet = nodePath.join(tmp, 'sheet.png');
    const r = await run('roundtrip', '--model', DV, '--input', frames, '--out', rt, '--png', pngDir, '--sheet', sheet, '--backend', 'cpu', '--fps', '8', '--chunk', '4', '--json');
    expect(r.rc, r.err).toBe(0);
    const m = JSON.parse(r.out);
    expect([m.input, m.kind, m.frames, m.height, m.width]).toEqual([frames, 'DV', 6, 12, 20]);
    expect(m.psnr).toBeGreaterThan(10);
    expect(readFileSync(rt).equals(readFileSync(y4m))).toBe(true);
    expect(readdirSync(pngDir).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `frame_00000${i}.png`));
    const png = await readPngFrames(pngDir);
    let worst = 0;
    for (let i = 0; i < png.data.length; i++) worst = Math.max(worst, Math.abs(png.data[i] - rec.data[i]));
    expect(worst).toBeLessThan(0.05); // 8-bit RGB vs 8-bit YUV of the same frames
    const img = decodePng(readFileSync(sheet));
    expect([img.width, img.height]).toEqual([4 + 5 * 6 + 4 + 2 * (20 + 4), 4 + 2 * (12 + 4)]);
  });

  it('reports bad arguments and bad files in one line, exit status 2 (a user error)', async () => {
    const missing = await run('tokenize', '--model', CV);
    expect(missing.rc).toBe(2);
    expect(missing.errLines).toEqual(["error: --input, --out: missing (required unless --plan; run 'cosmos-ts tokenize --help')"]);
    const unknown = await run('roundtrip', '--nope');
    expect(unknown.rc).toBe(2);
    expect(unknown.errLines).toEqual(["error: --nope: not an option of cosmos-ts roundtrip (run 'cosmos-ts roundtrip --help' for the options)"]);
    const noFile = await run('roundtrip', '--model', CV, '--input', nodePath.join(tmp, 'none.y4m'), '--out', nodePath.join(tmp, 'x.y4m'), '--backend', 'cpu');
    expect(noFile.rc).toBe(2);
    expect(noFile.errLines).toEqual([expect.stringMatching(/^error: --input .*none\.y4m: no such file or folder$/)]);
    const badBackend = await run('roundtrip', '--model', CV, '--input', 'a.y4m', '--out', 'b.y4m', '--backend', 'tpu');
    expect(badBackend.rc).toBe(2);
    expect(badBackend.errLines).toEqual(['error: --backend: must be one of auto, webgpu, cpu; got "tpu"']);
    const badChunk = await run('tokenize', '--model', CV, '--input', nodePath.join(SAMPLES, 'sample_0.y4m'), '--out', nodePath.join(tmp, 'x.safetensors'), '--backend', 'cpu', '--chunk', '3');
    expect(badChunk.rc).toBe(2);
    expect(badChunk.errLines.at(-1)).toBe("error: --chunk: must be a multiple of the model's temporal compression 4; got 3");
    // the input is opened before the model: a real clip, so the model's error is the one reported
    const image = await run('tokenize', '--model', nodePath.resolve(import.meta.dirname, '../fixtures/tokenizer/ci_image'), '--input', nodePath.join(SAMPLES, 'sample_0.y4m'), '--out', nodePath.join(tmp, 'b.safetensors'), '--backend', 'cpu');
    expect(image.rc).toBe(2);
    expect(image.errLines).toEqual([expect.stringMatching(/^error: .*ci_image: a CI \(image\) tokenizer; these workflows take the causal video tokenizers \(CV, DV\)$/)]);
    const noTokens = await run('detokenize', '--tokens', nodePath.join(tmp, 'none.safetensors'), '--out', nodePath.join(tmp, 'x.y4m'));
    expect(noTokens.rc).toBe(2);
    expect(noTokens.errLines).toEqual([expect.stringMatching(/^error: --tokens .*none\.safetensors: no such file or folder$/)]);
    const help = await run('detokenize', '--help');
    expect(help.rc).toBe(0);
    expect(help.out).toMatch(/^usage: cosmos-ts detokenize/);
    expect(existsSync(nodePath.join(tmp, 'x.y4m'))).toBe(false);
  });
});
