// The ar-video2world and reason commands, in-process on the cpu backend: what they print, stream
// and write, and the error contract (a user's mistake: `error: <message>`, exit status 2). What
// the pipelines compute is tested in test/pipelines/.
import { writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it, } from 'vitest';
import { encodePng } from '../../src/io/png.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { readImageFile } from '../../src/pipelines/reason-inputs.js';
import { reason } from '../../src/pipelines/reason.js';
import { DV, SAMPLE, tempFolder, tinyConfig, tinyV2wConfig, writeArCheckpoint, writeReasonFolder, writeReasonInputs } from '../pipelines/arvlm-fixtures.js';
import { cpu } from '../harness.js';
import { runCli } from './run-cli.js';

const { dir: tmp, remove } = tempFolder('cosmos-cli-arvlm-');
afterAll(remove);

/** Run the CLI in-process: its out / err lines, and what was written to stdout / stderr directly. */
const run = runCli;

describe('ar-video2world', () => {
  let base: string;
  let v2w: string;
  let clip5: string;
  beforeAll(async () => {
    // a [2, 8, 8] grid: one context frame, one latent frame (64 tokens) generated
    base = await writeArCheckpoint(nodePath.join(tmp, 'ar-base'), tinyConfig({ video_latent_shape: [2, 8, 8], max_seq_len: 128 }), 1);
    v2w = await writeArCheckpoint(nodePath.join(tmp, 'ar-v2w'), tinyV2wConfig(), 100);
    clip5 = nodePath.join(tmp, 'clip5.y4m');
    await writeY4m(clip5, sliceFrames(await readY4m(SAMPLE), 0, 5));
  }, 60_000);

  it('writes the continued clip and prints the plan, the times and tokens/s; a progress bar per stage on stderr', async () => {
    const out = nodePath.join(tmp, 'out-base.y4m');
    const r = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', out, '--backend', 'cpu', '--seed', '3', '--top-p', '0.7');
    expect(r.rc, r.err).toBe(0);
    expect(r.out).toContain('1 context frames (1 latent, 64 prompt tokens) + 1 generated latent frames -> 5 frames 64x64');
    expect(r.out).toMatch(/generated 64 tokens at [\d.]+ tokens\/s/);
    expect(r.err).toContain('input ');
    expect(r.err).toMatch(/generate .*64\/64 tokens/); // the progress bar's final line
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([5, 64, 64]);
  }, 120_000);

  it("a user's mistake is one line and exit status 2: a missing embeddings file, a frame count, the model's need of embeddings", async () => {
    const x = nodePath.join(tmp, 'x.y4m');
    const r = await run('ar-video2world', '--model', v2w, '--tokenizer', DV, '--input', clip5, '--out', x, '--backend', 'cpu');
    expect(r.rc).toBe(2);
    expect(r.err).toMatch(/^error: embeddings: this model .* needs T5 text embeddings: .*--embeddings file\.safetensors/m);
    const r2 = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', x, '--backend', 'cpu', '--frames', '4');
    expect(r2.rc).toBe(2);
    expect(r2.err).toContain('error: frames: the tokenizer (4x temporal, causal) takes 1 + k*4 context frames');
    const r3 = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', x, '--backend', 'cpu', '--embeddings', nodePath.join(tmp, 'none.safetensors'));
    expect(r3.rc).toBe(2);
    expect(r3.err).toMatch(/^error: .*none\.safetensors/m);
  });

  it('bad and missing flags: one line naming the flag, exit status 2; --help', async () => {
    const r = await run('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', nodePath.join(tmp, 'x.y4m'), '--top-p', '1.5');
    expect(r.rc).toBe(2);
    expect(r.errLines).toEqual(['error: --top-p: must be a number > 0 and <= 1; got "1.5"']);
    const r2 = await run('ar-video2world', '--model', base, '--input', clip5);
    expect(r2.rc).toBe(2);
    expect(r2.errLines).toEqual(["error: --tokenizer, --out: missing (required; run 'cosmos-ts ar-video2world --help')"]);
    const r3 = await run('ar-video2world', '--help');
    expect(r3.rc).toBe(0);
    expect(r3.out).toContain('usage: cosmos-ts ar-video2world');
  });
});

describe('reason', () => {
  let folder: string;
  let image: string;
  let clip: string;
  beforeAll(async () => {
    ({ folder, image, clip } = await writeReasonInputs(tmp));
  }, 60_000);

  it('image: streams the answer to stdout as it comes, prints the input, vision / prefill / decode speeds on stderr', async () => {
    const r = await run('reason', '--model', folder, '--image', image, '--prompt', 'What is in the picture?', '--max-new-tokens', '8', '--temperature', '0',
      '--repetition-penalty', '1', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    // streamed: one write per token that completed text, then the final newline
    expect(r.writes.length).toBeGreaterThan(2);
    expect(r.writes.at(-1)).toBe('\n');
    expect(r.err).toMatch(/image .*img\.png: 84x56 -> 84x56/);
    expect(r.err).toMatch(/vision: 24 patches \(grid 1x4x6\) -> 6 tokens in [\d.]+ s \([\d.]+ tokens\/s\)/);
    expect(r.err).toMatch(/prefill: \d+ tokens in [\d.]+ s \([\d.]+ tokens\/s\)/);
    expect(r.err).toMatch(/decode: \d+ tokens \((stopped at a stop token|max new tokens reached)\) in [\d.]+ s \(([\d.]+|n\/a) tokens\/s\)/);
  });

  it('video: frames sampled at --fps and resized by the processor (64x64 -> 56x56)', async () => {
    const r = await run('reason', '--model', folder, '--video', clip, '--fps', '4', '--prompt', 'What happens?', '--max-new-tokens', '4', '--backend', 'cpu', '--seed', '1');
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/video .*clip9\.y4m: 9 frames 64x64 at 8 fps -> 4 frames at 3\.556 fps, 56x56/);
    expect(r.err).toMatch(/vision: 32 patches \(grid 2x4x4\) -> 8 tokens/);
  });

  it('stops on an eos id from generation_config.json', async () => {
    // the first greedy token of the tiny model on this prompt becomes an eos id
    const first = (await reason({ model: folder, backend: cpu, prompt: 'Hi', images: [await readImageFile(image)], maxNewTokens: 1, temperature: 0, repetitionPenalty: 1 })).tokens[0];
    const dir = writeReasonFolder(nodePath.join(tmp, 'tiny-eos'), { generation: { eos_token_id: [281, first] } });
    const r = await run('reason', '--model', dir, '--image', image, '--prompt', 'Hi', '--max-new-tokens', '6', '--temperature', '0', '--repetition-penalty', '1', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/decode: 1 tokens \(stopped at a stop token\)/);
  });

  it("a user's mistake is one line `error: <what>: <why>`, exit status 2", async () => {
    const e1 = await run('reason', '--model', nodePath.join(tmp, 'nope'), '--prompt', 'x', '--backend', 'cpu');
    expect(e1.rc).toBe(2);
    expect(e1.err).toMatch(/^error: --model .*nope: no such file or folder$/m);

    const jpeg = nodePath.join(tmp, 'photo.png');
    writeFileSync(jpeg, Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1]));
    const e2 = await run('reason', '--model', folder, '--image', jpeg, '--prompt', 'x', '--backend', 'cpu');
    expect(e2.rc).toBe(2);
    expect(e2.err).toMatch(/^error: image .*photo\.png: a JPEG file; only PNG images are supported/m);

    const small = nodePath.join(tmp, 'small.png');
    writeFileSync(small, encodePng({ width: 20, height: 20, data: new Uint8Array(20 * 20 * 3) }));
    const e3 = await run('reason', '--model', folder, '--image', small, '--prompt', 'x', '--backend', 'cpu');
    expect(e3.rc).toBe(2);
    expect(e3.err).toMatch(/small\.png: 20x20 cannot be processed .*must be larger than factor:28/);

    const e4 = await run('reason', '--model', folder, '--image', image, '--backend', 'cpu');
    expect(e4.rc).toBe(2);
    expect(e4.errLines.at(-1)).toMatch(/^error: --prompt: missing/);
    expect(e4.err).not.toContain('usage:');

    const e5 = await run('reason', '--model', folder, '--image', image, '--prompt', 'x', '--fps', '4', '--backend', 'cpu');
    expect(e5.rc).toBe(2);
    expect(e5.err).toMatch(/--fps: is the video sampling rate/);

    const e6 = await run('reason', '--model', folder, '--image', image, '--prompt', 'x', '--top-p', '0', '--backend', 'cpu');
    expect(e6.rc).toBe(2);
    expect(e6.err).toMatch(/--top-p: must be a number > 0 and <= 1/);
  });

  it('--help prints the usage and the options', async () => {
    const r = await run('reason', '--help');
    expect(r.rc).toBe(0);
    expect(r.out).toMatch(/^usage: cosmos-ts reason .*--model <dir>/);
    expect(r.out).toContain('--repetition-penalty R');
  });
});
