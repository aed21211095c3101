// `cosmos-ts reason` end to end on the tiny Qwen2.5-VL folder (test/pipelines/arvlm-fixtures.ts),
// cpu backend, in-process: an image, a .y4m clip, a folder of numbered PNG frames, and an image
// with a video in one prompt each answer, with the streamed text equal to the reason pipeline's
// answer for the same inputs (greedy); a user's mistake about a video is one `error:` line with
// exit status 2.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePngFrames } from '../../src/io/png-frames.js';
import { encodePng } from '../../src/io/png.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { readImageFile, readVideoFile } from '../../src/pipelines/reason-inputs.js';
import { type ReasonModel, loadReasonModel, reason } from '../../src/pipelines/reason.js';
import { cpu } from '../harness.js';
import { SAMPLE, tempFolder, writeReasonInputs } from '../pipelines/arvlm-fixtures.js';
import { type CliRun, runCli } from './run-cli.js';

const { dir: tmp, remove } = tempFolder('cosmos-cli-reason-');
afterAll(remove);

let folder: string;
let image: string;
let clip: string;
let frames: string;
let loaded: ReasonModel;
beforeAll(async () => {
  ({ folder, image, clip } = await writeReasonInputs(tmp));
  // the same 9 frames as PNG files (a folder has no rate of its own: 24 fps is assumed)
  frames = nodePath.join(tmp, 'frames');
  await writePngFrames(frames, await readY4m(clip));
  loaded = await loadReasonModel(folder, cpu);
}, 60_000);
afterAll(() => loaded?.model.dispose());

const GREEDY = ['--temperature', '0', '--repetition-penalty', '1', '--max-new-tokens', '6', '--backend', 'cpu'];

/** The streamed answer (the final newline dropped). */
const answer = (r: CliRun) => r.writes.join('').replace(/\n$/, '');

function expectOneLineError(r: CliRun, re: RegExp): void {
  expect(r.rc).toBe(2);
  expect(r.errLines).toHaveLength(1);
  expect(r.errLines[0]).toMatch(/^error: /);
  expect(r.errLines[0]).toMatch(re);
  expect(r.out).toBe('');
}

describe('reason answers', () => {
  it('about an image', async () => {
    const r = await runCli('reason', '--model', folder, '--image', image, '--prompt', 'What is in the picture?', ...GREEDY);
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/vision: 24 patches \(grid 1x4x6\) -> 6 tokens/);
    const want = await reason({ model: loaded, prompt: 'What is in the picture?', images: [await readImageFile(image)], maxNewTokens: 6, temperature: 0, repetitionPenalty: 1 });
    expect(want.tokens).toHaveLength(6);
    expect(answer(r)).toBe(want.text);
    expect(r.err).toContain(`decode: ${want.tokens.length} tokens`);
  });

  it('about a .y4m clip (sampled at --fps; second_per_grid_t = 2 / the sampled rate)', async () => {
    const r = await runCli('reason', '--model', folder, '--video', clip, '--fps', '4', '--prompt', 'What happens?', ...GREEDY);
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/video .*clip9\.y4m: 9 frames 64x64 at 8 fps -> 4 frames at 3\.556 fps, 56x56/);
    expect(r.err).toMatch(/vision: 32 patches \(grid 2x4x4\) -> 8 tokens/);
    const want = await reason({ model: loaded, prompt: 'What happens?', videos: [await readVideoFile(clip, 4)], maxNewTokens: 6, temperature: 0, repetitionPenalty: 1 });
    expect(want.secondPerGridTs).toEqual([2 / (4 / 9 * 8)]);
    expect(want.tokens).toHaveLength(6);
    expect(answer(r)).toBe(want.text);
  });

  it('about a folder of numbered PNG frames (the default --fps)', async () => {
    const r = await runCli('reason', '--model', folder, '--video', frames, '--prompt', 'What happens?', ...GREEDY);
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/video .*frames: 9 frames 64x64 at 24 fps -> 4 frames at 10\.667 fps, 56x56/);
    expect(r.err).toMatch(/vision: 32 patches \(grid 2x4x4\) -> 8 tokens/);
    const want = await reason({ model: loaded, prompt: 'What happens?', videos: [await readVideoFile(frames, 4)], maxNewTokens: 6, temperature: 0, repetitionPenalty: 1 });
    expect(want.tokens).toHaveLength(6);
    expect(answer(r)).toBe(want.text);
  });

  it('about an image and a video in one prompt', async () => {
    const r = await runCli('reason', '--model', folder, '--image', image, '--video', clip, '--fps', '2', '--prompt', 'Compare them.', ...GREEDY);
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/vision: 56 patches \(grid 1x4x6, 2x4x4\) -> 14 tokens/);
    const want = await reason({
      model: loaded, prompt: 'Compare them.', images: [await readImageFile(image)], videos: [await readVideoFile(clip, 2)], maxNewTokens: 6, temperature: 0, repetitionPenalty: 1,
    });
    expect(want.promptText).toContain('<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|video_pad|><|vision_end|>Compare them.');
    expect(want.tokens).toHaveLength(6);
    expect(answer(r)).toBe(want.text);
  });
});

describe("a user's mistake about a video is one line, exit status 2", () => {
  it('a clip of one frame (.y4m or a PNG folder)', async () => {
    const one = nodePath.join(tmp, 'clip1.y4m');
    await writeY4m(one, sliceFrames(await readY4m(SAMPLE), 0, 1));
    expectOneLineError(await runCli('reason', '--model', folder, '--video', one, '--prompt', 'x', '--backend', 'cpu'),
      /video .*clip1\.y4m: 1 frame; the frame sampling needs at least 2 \(temporal_patch_size\) frames$/);
    const oneDir = nodePath.join(tmp, 'one-frame');
    await writePngFrames(oneDir, sliceFrames(await readY4m(clip), 0, 1));
    expectOneLineError(await runCli('reason', '--model', folder, '--video', oneDir, '--prompt', 'x', '--backend', 'cpu'), /one-frame: 1 frame; the frame sampling needs at least 2/);
  });

  it('a bad --fps, or --fps without a video', async () => {
    const r1 = await runCli('reason', '--model', folder, '--video', clip, '--fps', '0', '--prompt', 'x', '--backend', 'cpu');
    expect(r1.rc).toBe(2);
    expect(r1.errLines[0]).toMatch(/^error: --fps: must be a number > 0/);
    const r2 = await runCli('reason', '--model', folder, '--image', image, '--fps', '4', '--prompt', 'x', '--backend', 'cpu');
    expect(r2.rc).toBe(2);
    expect(r2.errLines[0]).toMatch(/^error: --fps: is the video sampling rate; give it with --video$/);
  });

  it('the wrong kind of file, an empty folder, frames of different sizes, frames too small', async () => {
    expectOneLineError(await runCli('reason', '--model', folder, '--video', image, '--prompt', 'x', '--backend', 'cpu'), /img\.png: a single PNG image \(pass it as an image\)/);
    expectOneLineError(await runCli('reason', '--model', folder, '--image', clip, '--prompt', 'x', '--backend', 'cpu'), /clip9\.y4m: a Y4M video \(pass it as a video\)/);
    expectOneLineError(await runCli('reason', '--model', folder, '--video', nodePath.join(tmp, 'absent.y4m'), '--prompt', 'x', '--backend', 'cpu'), /--video .*absent\.y4m: no such file or folder/);
    const empty = nodePath.join(tmp, 'empty');
    mkdirSync(empty);
    expectOneLineError(await runCli('reason', '--model', folder, '--video', empty, '--prompt', 'x', '--backend', 'cpu'), /empty: no numbered PNG frames/);
    const mixed = nodePath.join(tmp, 'mixed');
    await writePngFrames(mixed, sliceFrames(await readY4m(clip), 0, 2));
    writeFileSync(nodePath.join(mixed, 'frame_000002.png'), encodePng({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) }));
    expectOneLineError(await runCli('reason', '--model', folder, '--video', mixed, '--prompt', 'x', '--backend', 'cpu'), /frame_000002\.png.* is 32x32; the first frame .* is 64x64/);
    const tiny = nodePath.join(tmp, 'tiny-frames');
    mkdirSync(tiny);
    for (let i = 0; i < 4; i++) writeFileSync(nodePath.join(tiny, `f${i}.png`), encodePng({ width: 20, height: 20, data: new Uint8Array(20 * 20 * 3) }));
    expectOneLineError(await runCli('reason', '--model', folder, '--video', tiny, '--prompt', 'x', '--backend', 'cpu'), /tiny-frames: 20x20 cannot be processed/);
  });
});
