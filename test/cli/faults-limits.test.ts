// Limits and inputs checked before models load (issue 14), through the command line in-process:
// a Y4M header claiming 100000x100000 and a small PNG whose IHDR says 20000x20000 are refused with
// exit 2 in well under a second, before any model is read (the model folder given is broken: a
// command that loaded it first would name it); --max-frame-pixels / --max-frames /
// --max-input-bytes raise the limits; frames too small for PSNR / SSIM are refused before the
// encode; a prompt longer than the text encoder's window gives a warning with the count.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { writeY4m } from '../../src/io/y4m.js';
import { SentencePieceProcessor } from '../../src/text/sentencepiece.js';
import { T5Tokenizer } from '../../src/text/t5-tokenizer.js';
import { readTransferSpec } from '../../src/models/controlnet/spec.js';
import { transfer } from '../../src/pipelines/transfer.js';
import { video2world } from '../../src/pipelines/video2world.js';
import { cpu } from '../harness.js';
import { recordingFs } from '../recording-fs.js';
import { ReasonPromptTokenizer } from '../../src/models/vlm/prompt-tokenizer.js';
import { type WorldFolders, transferSpecJson, writePredict25PromptFolder, writeTransferFolder, writeWorldFolders } from '../pipelines/world-fixtures.js';
import { type CliRun, runCli as run } from './run-cli.js';
import { craftPng } from '../io/crafted-png.js';

const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const CV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-cv4x8x8');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-cli-limits-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const at = (name: string) => nodePath.join(tmp, name);

/** The CV tokenizer folder with its weights cut to 64 bytes: any command that loads it fails naming model.safetensors. */
const BROKEN = at('broken-cv');
let HUGE_Y4M: string;
let HUGE_PNG: string;
let SMALL: string;
let TINY: string;


/** A ~1 KB PNG whose IHDR says 20000x20000 RGB, with a valid zlib stream of zero rows. */
function hugePng(): Buffer {
  return craftPng(20000, 20000, zlib.deflateSync(Buffer.alloc(1 << 20), { level: 9 }));
}

/** A clip of `frames` frames, width x height, a gradient (4:2:0, F30:1, progressive). */
async function clip(path: string, frames: number, width: number, height: number): Promise<string> {
  const data = new Float32Array(3 * frames * height * width);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 37) % 200) / 100 - 1;
  await writeY4m(path, { data, frames, height, width, fps: { num: 30, den: 1 } }, { chroma: '420' });
  return path;
}

beforeAll(async () => {
  mkdirSync(BROKEN);
  for (const f of readdirSync(CV)) copyFileSync(nodePath.join(CV, f), nodePath.join(BROKEN, f));
  writeFileSync(nodePath.join(BROKEN, 'model.safetensors'), readFileSync(nodePath.join(CV, 'model.safetensors')).subarray(0, 64));
  HUGE_Y4M = at('huge.y4m');
  writeFileSync(HUGE_Y4M, 'YUV4MPEG2 W100000 H100000 F30:1 Ip C420jpeg\nFRAME\n');
  HUGE_PNG = at('huge.png');
  writeFileSync(HUGE_PNG, hugePng());
  SMALL = await clip(at('small.y4m'), 5, 16, 16);
  TINY = await clip(at('tiny.y4m'), 5, 8, 6);
});

/** The error contract: exit 2, one last line `error: ...` naming `what`, no stack, nothing written at `out`. */
function expectRefused(r: CliRun, what: string, ms: number, out?: string): string {
  expect(r.rc, r.err).toBe(2);
  const last = r.errLines.at(-1) ?? '';
  expect(last.startsWith('error: '), r.err).toBe(true);
  expect(last).toContain(what);
  expect(r.err).not.toMatch(/^ {4}at /m);
  expect(ms).toBeLessThan(1000);
  if (out !== undefined) expect(existsSync(out)).toBe(false);
  return last;
}

async function timed(...argv: string[]): Promise<[CliRun, number]> {
  const t0 = performance.now();
  const r = await run(...argv);
  return [r, performance.now() - t0];
}

describe('the broken model folder (the proof that a refusal came before any model load)', () => {
  it('fails naming its weights when a command gets as far as loading it', async () => {
    const r = await run('tokenize', '--model', BROKEN, '--input', SMALL, '--out', at('never.safetensors'), '--backend', 'cpu');
    expect(r.rc).toBe(2);
    expect(r.errLines.at(-1)).toContain(nodePath.join(BROKEN, 'model.safetensors'));
  });
});

describe('headers past the limits, refused before any model loads', () => {
  for (const command of ['tokenize', 'roundtrip']) {
    it(`${command}: a Y4M header claiming 100000x100000`, async () => {
      const out = at(`${command}-huge.out`);
      const [r, ms] = await timed(command, '--model', BROKEN, '--input', HUGE_Y4M, '--out', out, '--backend', 'cpu');
      const last = expectRefused(r, HUGE_Y4M, ms, out);
      expect(last).toMatch(/header tags W100000 H100000: 100000x100000 \(W x H\) is 10000000000 pixels a frame, over the limit of 33554432 pixels; raise it with --max-frame-pixels/);
    });

    it(`${command}: a 1 KB PNG whose IHDR says 20000x20000`, async () => {
      const out = at(`${command}-huge-png.out`);
      const [r, ms] = await timed(command, '--model', BROKEN, '--input', HUGE_PNG, '--out', out, '--backend', 'cpu');
      const last = expectRefused(r, `${HUGE_PNG}: IHDR: 20000x20000 (W x H) is 400000000 pixels a frame`, ms, out);
      expect(last).toContain('--max-frame-pixels');
    });
  }

  it('interlaced Y4M and a zero frame rate name the header tag', async () => {
    const it = at('interlaced.y4m');
    writeFileSync(it, Buffer.concat([Buffer.from('YUV4MPEG2 W16 H16 F30:1 It C420jpeg\nFRAME\n'), Buffer.alloc(384, 128)]));
    let [r, ms] = await timed('tokenize', '--model', BROKEN, '--input', it, '--out', at('never.safetensors'), '--backend', 'cpu');
    expectRefused(r, `${it}: header tag I: interlaced video (It, top field first) is not supported`, ms);
    const f0 = at('f00.y4m');
    writeFileSync(f0, Buffer.concat([Buffer.from('YUV4MPEG2 W16 H16 F0:0 Ip C420jpeg\nFRAME\n'), Buffer.alloc(384, 128)]));
    [r, ms] = await timed('roundtrip', '--model', BROKEN, '--input', f0, '--out', at('never.y4m'), '--backend', 'cpu');
    expectRefused(r, `${f0}: header tag F: F0:0 is an unknown frame rate`, ms);
  });

  it('detokenize: a tokens file recording a 100000x100000 clip, before the model in it is loaded', async () => {
    const tokens = at('huge-tokens.safetensors');
    const meta = { format: 'cosmos-ts.tokens.v1', model: BROKEN, kind: 'CV', frames: '1', height: '100000', width: '100000' };
    await writeSafetensors(tokens, { latent: { dtype: 'f32', shape: [1, 16, 1, 2, 2], raw: new Float32Array(64) } }, meta);
    const [r, ms] = await timed('detokenize', '--tokens', tokens, '--out', at('never2.y4m'), '--backend', 'cpu');
    expectRefused(r, `${tokens}: metadata: 100000x100000 (W x H)`, ms, at('never2.y4m'));
  });
});

describe('the limit flags', () => {
  it('--max-frame-pixels lowers and raises the frame limit', async () => {
    const out = at('small.safetensors');
    let [r, ms] = await timed('tokenize', '--model', BROKEN, '--input', SMALL, '--out', out, '--max-frame-pixels', '255', '--backend', 'cpu');
    expectRefused(r, `${SMALL}: header tags W16 H16: 16x16 (W x H) is 256 pixels a frame, over the limit of 255 pixels; raise it with --max-frame-pixels`, ms, out);
    r = await run('tokenize', '--model', CV, '--input', SMALL, '--out', out, '--max-frame-pixels', '256', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(existsSync(out)).toBe(true);
  });

  it('--max-frames; --max-input-bytes counts one frame for a streamed tokenize, the whole clip for roundtrip', async () => {
    let [r, ms] = await timed('tokenize', '--model', BROKEN, '--input', SMALL, '--out', at('x.safetensors'), '--max-frames', '4', '--backend', 'cpu');
    expectRefused(r, `${SMALL}: 5 frames, over the limit of 4 frames; raise it with --max-frames`, ms);
    // a 16x16 frame decodes to 3 KiB of float32; the clip to 15 KiB
    r = await run('tokenize', '--model', CV, '--input', SMALL, '--out', at('y.safetensors'), '--max-input-bytes', '4KiB', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    [r, ms] = await timed('roundtrip', '--model', BROKEN, '--input', SMALL, '--out', at('z.y4m'), '--max-input-bytes', '4KiB', '--backend', 'cpu');
    expectRefused(r, `${SMALL}: 5 frames of 16x16 (W x H) decode to 15 KiB of float32, over the limit of 4 KiB; raise it with --max-input-bytes`, ms, at('z.y4m'));
  });

  it('a malformed limit value names its flag', async () => {
    for (const [flag, value] of [['--max-frames', 'abc'], ['--max-frame-pixels', '0'], ['--max-input-bytes', '4 lots']]) {
      const [r, ms] = await timed('tokenize', '--model', BROKEN, '--input', SMALL, '--out', at('w.safetensors'), flag, value, '--backend', 'cpu');
      expectRefused(r, `${flag}: must be a positive integer, optionally with a suffix`, ms);
    }
  });

  it('every command that reads video, images or tokens takes them', async () => {
    for (const command of ['tokenize', 'roundtrip', 'detokenize', 'video2world', 'ar-video2world', 'transfer', 'reason']) {
      const r = await run(command, '--help');
      for (const flag of ['--max-frame-pixels', '--max-frames', '--max-input-bytes']) expect(r.out + r.err, `${command} ${flag}`).toContain(flag);
    }
  });
});

describe('frames too small for the metrics', () => {
  it('roundtrip refuses an 8x6 clip before loading the model or encoding (W x H, as the rest of the CLI)', async () => {
    const out = at('tiny-rec.y4m');
    const [r, ms] = await timed('roundtrip', '--model', BROKEN, '--input', TINY, '--out', out, '--backend', 'cpu');
    const last = expectRefused(r, TINY, ms, out);
    expect(last).toBe(`error: ${TINY}: is 8x6 (W x H); PSNR/SSIM need frames of at least 11x11`);
  });

  it('tokenize still takes it (no metrics there)', async () => {
    const r = await run('tokenize', '--model', CV, '--input', TINY, '--out', at('tiny.safetensors'), '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
  });
});

describe('world pipelines', () => {
  let W: WorldFolders;
  beforeAll(async () => {
    mkdirSync(at('world'));
    W = await writeWorldFolders(at('world'));
  });

  it('video2world: a bad input header is refused before any file of the model folder is read', async () => {
    const rec = recordingFs();
    const e = await video2world({ model: W.V2W, input: HUGE_Y4M, embeddings: W.EMB48, backend: cpu, fs: rec.fs }).catch((x: unknown) => x);
    expect(String(e)).toContain(`${HUGE_Y4M}: header tags W100000 H100000`);
    expect(rec.reads.filter((r) => r.path.startsWith(W.V2W))).toEqual([]);
    const [r, ms] = await timed('video2world', '--model', W.V2W, '--input', HUGE_Y4M, '--embeddings', W.EMB48, '--out', at('v2w.y4m'), '--backend', 'cpu');
    expectRefused(r, `${HUGE_Y4M}: header tags W100000 H100000`, ms, at('v2w.y4m'));
  });

  it('transfer: a control video past the limits is refused before any checkpoint is read', async () => {
    const dir = at('transfer');
    mkdirSync(dir);
    await writeTransferFolder(dir);
    const json = transferSpecJson();
    json.controls.depth.input_control = HUGE_Y4M;
    const specPath = nodePath.join(dir, 'huge-spec.json');
    writeFileSync(specPath, JSON.stringify(json));
    const rec = recordingFs();
    const e = await transfer({ spec: await readTransferSpec(specPath), backend: cpu, fs: rec.fs }).catch((x: unknown) => x);
    expect(String(e)).toContain(`${HUGE_Y4M}: header tags W100000 H100000`);
    expect(rec.reads.filter((r) => r.path.endsWith('.safetensors') || r.path.endsWith('.json'))).toEqual([]);
    const [r, ms] = await timed('transfer', '--spec', specPath, '--out', at('tr.y4m'), '--backend', 'cpu');
    expectRefused(r, `${HUGE_Y4M}: header tags W100000 H100000`, ms, at('tr.y4m'));
  });

  it('a prompt past the T5 window of 512 tokens is cut with a warning that says how many tokens', async () => {
    const prompt = Array.from({ length: 300 }, (_, i) => `robot arm ${i} picks up the red cube`).join(', ');
    const sp = SentencePieceProcessor.fromBytes(new Uint8Array(readFileSync(nodePath.join(W.T2W, 'tokenizer', 'spiece.model'))));
    const total = new T5Tokenizer(sp).encode(prompt).length;
    expect(total).toBeGreaterThan(512);
    const out = at('long-prompt.y4m');
    const r = await run('text2world', '--model', W.T2W, '--prompt', prompt, '--steps', '1', '--frames', '9', '--height', '32', '--width', '32',
      '--guidance', '1', '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    const warnings = r.errLines.filter((l) => l.startsWith('warning: '));
    expect(warnings).toEqual([`warning: --prompt: ${total} tokens, the T5 encoder reads 512: ${total - 512} tokens cut (shorten it to keep them)`]);
    // a prompt that fits says nothing
    const short = await run('text2world', '--model', W.T2W, '--prompt', 'a red cube', '--steps', '1', '--frames', '9', '--height', '32', '--width', '32',
      '--out', at('short-prompt.y4m'), '--backend', 'cpu');
    expect(short.rc, short.err).toBe(0);
    expect(short.err).not.toContain('warning:');
  });

  it("Predict2.5's Cosmos-Reason1 prompt encoder warns the same way", async () => {
    const folder = await writePredict25PromptFolder(at('p25-prompt'));
    const prompt = Array.from({ length: 200 }, (_, i) => `robot arm ${i} picks up the red cube`).join(', ');
    const total = (await ReasonPromptTokenizer.load(nodePath.join(folder, 'tokenizer'))).tokenize([prompt], 512).lengths[0];
    expect(total).toBeGreaterThan(512);
    const r = await run('text2world', '--model', folder, '--prompt', prompt, '--guidance', '1', '--steps', '1', '--frames', '1', '--height', '16', '--width', '16',
      '--out', at('p25-long.png'), '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.errLines.filter((l) => l.startsWith('warning: '))).toEqual([
      `warning: --prompt: ${total} tokens, the Reason1 encoder reads 512: ${total - 512} tokens cut (shorten it to keep them)`,
    ]);
  });
});
