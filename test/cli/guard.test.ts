// `guard` and `--guardrails` in-process, with a tiny guardrail folder made here and the FAKE model
// stages of test/pipelines/guardrail-fakes.ts registered as the build's loaders (rule-based
// stand-ins, not the models): blocked and allowed prompts (exit 3 / 0, one verdict line per stage),
// a sample clip with a synthetic face pattern (the blur changes exactly its box, the written
// frames are the blurred ones), a refused clip writes nothing; text2world refuses a blocked prompt
// with exit 3 before any model loads and writes nothing, and writes the guarded frames otherwise.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVideo } from '../../src/io/open-video.js';
import { readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { framesToVideo, type GuardrailLoaders, registerGuardrailLoaders, restoreGuardrailLoaders, videoToFrames } from '../../src/pipelines/guardrails.js';
import { type Box, fakeFaceBox, fakeLoaders, paintFace, writeGuardrailFolder } from '../pipelines/guardrail-fakes.js';
import { DV, tinyConfig, writeArCheckpoint } from '../pipelines/arvlm-fixtures.js';
import { SAMPLE, type WorldFolders, writeTransferFolder, writeWorldFolders } from '../pipelines/world-fixtures.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-cli-guard-'));
const G = writeGuardrailFolder(nodePath.join(tmp, 'Cosmos-1.0-Guardrail'));
let previous: GuardrailLoaders;
beforeAll(() => {
  previous = registerGuardrailLoaders(fakeLoaders().loaders);
});
afterAll(() => {
  restoreGuardrailLoaders(previous);
  rmSync(tmp, { recursive: true, force: true });
});

describe('guard --prompt', () => {
  it('a blocklisted prompt: exit 3, the blocklist verdict, Aegis not run', async () => {
    const r = await runCli('guard', '--guardrails', G, '--prompt', 'the blarg walks', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(3);
    expect(r.out).toBe('BLOCKLIST: UNSAFE: Prompt blocked by censorship: Censored Prompt: the **** walks');
    expect(r.errLines.at(-1)).toBe('blocked: BLOCKLIST: Prompt blocked by censorship: Censored Prompt: the **** walks');
  });

  it('a prompt Aegis refuses: exit 3 after the blocklist passed it', async () => {
    const r = await runCli('guard', '--guardrails', G, '--prompt', 'a hostile crowd', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(3);
    expect(r.out.split('\n')).toEqual(['BLOCKLIST: safe: Input is safe', 'AEGIS: UNSAFE: Prompt blocked by Aegis (fake: the word "hostile").']);
    expect(r.err).toContain('blocked: AEGIS: Prompt blocked by Aegis');
  });

  it('an allowed prompt: exit 0, both verdicts; --json', async () => {
    const r = await runCli('guard', '--guardrails', G, '--prompt', 'A robot arm picks up a red cube.', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.out.split('\n')).toEqual(['BLOCKLIST: safe: Input is safe', 'AEGIS: safe: Input is safe']);
    const j = await runCli('guard', '--guardrails', G, '--prompt', 'the blarg walks', '--backend', 'cpu', '--json');
    expect(j.rc).toBe(3);
    expect(JSON.parse(j.out)).toMatchObject({ command: 'guard', safe: false, verdicts: [{ stage: 'BLOCKLIST', safe: false }], out: null });
  });

  it('user errors: nothing to check, a folder without a stage', async () => {
    expect((await runCli('guard', '--guardrails', G)).err).toContain('error: --prompt: missing (give --prompt or --video)');
    const empty = nodePath.join(tmp, 'empty');
    mkdirSync(empty);
    const r = await runCli('guard', '--guardrails', empty, '--prompt', 'x', '--backend', 'cpu');
    expect(r.rc).toBe(2);
    expect(r.err).toContain(`error: ${nodePath.join(empty, 'blocklist')}: missing`);
    // the release folder found inside a parent that holds it
    expect((await runCli('guard', '--guardrails', tmp, '--prompt', 'a calm sea', '--backend', 'cpu')).rc).toBe(0);
  });
});

describe('guard --video', () => {
  const box: Box = [16, 12, 45, 43];
  let clip: string;
  let input: Uint8Array;
  let dims: [number, number, number];
  beforeAll(async () => {
    const v = await readVideo(SAMPLE);
    dims = [v.frames, v.height, v.width];
    input = paintFace(videoToFrames(v, 'round'), v.frames, v.height, v.width, box);
    clip = nodePath.join(tmp, 'face-clip');
    await writePngFrames(clip, framesToVideo(input, v.frames, v.height, v.width));
  });

  it('the sample clip with a face pattern: safe, the blur changes exactly the face box of each frame', async () => {
    const [T, H, W] = dims;
    expect(fakeFaceBox(input.subarray(0, H * W * 3), H, W)).toEqual(box);
    const out = nodePath.join(tmp, 'blurred');
    const r = await runCli('guard', '--guardrails', G, '--video', clip, '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.out.split('\n')).toEqual([
      `VIDEOCONTENTSAFETYFILTER: safe: ${T} frame(s) checked, all safe (frames_evaluated=${T} Safe=0.9700 Sexual_Content=0.0100 Violence=0.0100 Drugs=0 Child_Abuse=0 Hate_and_Harassment=0.0100 Self-Harm=0)`,
      `RETINAFACEFILTER: safe: ${T} face(s) blurred (faces=${T} frames_with_faces=${T})`,
      `-> ${out}`,
    ]);
    const blurred = videoToFrames(await readPngFrames(out), 'round');
    const inBox = (x: number, y: number) => x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3];
    let changedIn = 0;
    let changedOut = 0;
    for (let p = 0; p < T * H * W; p++) {
      const x = p % W;
      const y = Math.floor(p / W) % H;
      const same = [0, 1, 2].every((c) => blurred[3 * p + c] === input[3 * p + c]);
      if (!same && inBox(x, y)) changedIn++;
      if (!same && !inBox(x, y)) changedOut++;
    }
    expect(changedOut).toBe(0);
    expect(changedIn).toBe(T * 30 * 32);
  });

  it('a clip with a red frame is refused: exit 3, nothing written', async () => {
    const [T, H, W] = dims;
    const red = input.slice();
    for (let p = 2 * H * W; p < 3 * H * W; p++) red.set([250, 10, 10], 3 * p);
    const redClip = nodePath.join(tmp, 'red-clip');
    await writePngFrames(redClip, framesToVideo(red, T, H, W));
    const out = nodePath.join(tmp, 'red-out');
    const r = await runCli('guard', '--guardrails', G, '--video', redClip, '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(3);
    expect(r.err).toContain('blocked: VIDEOCONTENTSAFETYFILTER: unsafe frame 2: Violence');
    expect(existsSync(out)).toBe(false);
  });
});

describe('text2world --guardrails', () => {
  let W: WorldFolders;
  beforeAll(async () => {
    mkdirSync(nodePath.join(tmp, 'world'));
    W = await writeWorldFolders(nodePath.join(tmp, 'world'));
  });
  const common = ['--steps', '1', '--frames', '9', '--height', '32', '--width', '32', '--seed', '3', '--backend', 'cpu'];

  it('a blocked prompt: exit 3 before any model loads, nothing written', async () => {
    const out = nodePath.join(tmp, 'blocked.y4m');
    const r = await runCli('text2world', '--model', W.T2W, '--guardrails', G, '--prompt', 'A blarg picks up a red cube.', '--out', out, ...common);
    expect(r.rc, r.err).toBe(3);
    expect(r.errLines.at(-1)).toBe('blocked: BLOCKLIST: Prompt blocked by censorship: Censored Prompt: A **** picks up a red cube.');
    expect(r.err).not.toMatch(/prompt|denoise|decode/);
    expect(r.err).not.toContain('note: running without guardrails');
    expect(existsSync(out)).toBe(false);
  });

  it('an allowed prompt writes the guarded frames; without --guardrails the note, once', async () => {
    const box: Box = [0, 0, 7, 7];
    const previousFixed = registerGuardrailLoaders(fakeLoaders({ fixedBox: box }).loaders);
    const guarded = nodePath.join(tmp, 'guarded');
    const plain = nodePath.join(tmp, 'plain');
    try {
      const r = await runCli('text2world', '--model', W.T2W, '--guardrails', G, '--prompt', 'A robot arm picks up a red cube.', '--out', guarded, ...common);
      expect(r.rc, r.err).toBe(0);
      expect(r.err).toContain(`guardrails ${G}: BLOCKLIST, AEGIS, VIDEOCONTENTSAFETYFILTER, RETINAFACEFILTER`);
    } finally {
      restoreGuardrailLoaders(previousFixed);
    }
    const u = await runCli('text2world', '--model', W.T2W, '--prompt', 'A robot arm picks up a red cube.', '--out', plain, ...common);
    expect(u.rc, u.err).toBe(0);
    expect(u.errLines.filter((l) => l === 'note: running without guardrails (--guardrails <Cosmos-1.0-Guardrail folder> adds them)')).toHaveLength(1);
    const g = await readPngFrames(guarded);
    const p = await readPngFrames(plain);
    expect([g.frames, g.height, g.width]).toEqual([9, 32, 32]);
    const gb = videoToFrames(g, 'round');
    const pb = videoToFrames(p, 'round');
    for (let t = 0; t < 9; t++) {
      const frame = gb.subarray(t * 32 * 32 * 3, (t + 1) * 32 * 32 * 3);
      const first = frame.subarray(0, 3);
      for (let y = 0; y <= 7; y++) for (let x = 0; x <= 7; x++) expect([...frame.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)]).toEqual([...first]);
    }
    // outside the box the guarded clip is the plain one, quantized as upstream's decode (truncated: at most 1 below)
    let maxDiff = 0;
    for (let i = 0; i < gb.length; i++) {
      const x = Math.floor(i / 3) % 32;
      const y = Math.floor(i / 96) % 32;
      if (x <= 7 && y <= 7) continue;
      maxDiff = Math.max(maxDiff, pb[i] - gb[i]);
      expect(pb[i] - gb[i]).toBeGreaterThanOrEqual(0);
    }
    expect(maxDiff).toBeLessThanOrEqual(1);
  });

  it('with --guardrails: embeddings cannot be checked, latents alone neither (exit 2)', async () => {
    const r = await runCli('text2world', '--model', W.P25, '--guardrails', G, '--embeddings', W.EMB48, '--out', nodePath.join(tmp, 'e.png'), ...common);
    expect(r.rc).toBe(2);
    expect(r.err).toContain('error: --embeddings: the guardrails check the prompt text; with --guardrails give --prompt');
    const l = await runCli('text2world', '--model', W.T2W, '--guardrails', G, '--prompt', 'x y', '--latents-out', nodePath.join(tmp, 'l.safetensors'), ...common);
    expect(l.rc).toBe(2);
    expect(l.err).toContain('error: --guardrails: the video guardrails check the decoded clip; give --out');
  });
});

describe('transfer and ar-video2world --guardrails', () => {
  it('transfer: a blocked prompt exits 3 before any model loads, nothing written', async () => {
    const t = nodePath.join(tmp, 'transfer');
    mkdirSync(t);
    const spec = await writeTransferFolder(t);
    const out = nodePath.join(tmp, 'transfer-out.y4m');
    const r = await runCli('transfer', '--spec', spec, '--guardrails', G, '--prompt', 'zorp wibble in the rain', '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(3);
    expect(r.errLines.at(-1)).toBe('blocked: BLOCKLIST: Prompt blocked by censorship: Censored Prompt: **** in the rain');
    expect(r.err).not.toMatch(/denoise|condition/);
    expect(existsSync(out)).toBe(false);
  });

  it('ar-video2world: only the video stages; the written clip is the guarded one', async () => {
    const base = await writeArCheckpoint(nodePath.join(tmp, 'ar-base'), tinyConfig({ video_latent_shape: [2, 8, 8], max_seq_len: 128 }), 1);
    const clip5 = nodePath.join(tmp, 'clip5.y4m');
    await writeY4m(clip5, sliceFrames(await readY4m(SAMPLE), 0, 5));
    const previousFixed = registerGuardrailLoaders(fakeLoaders({ fixedBox: [0, 0, 9, 9] }).loaders);
    const out = nodePath.join(tmp, 'ar-out');
    try {
      const r = await runCli('ar-video2world', '--model', base, '--tokenizer', DV, '--input', clip5, '--out', out, '--backend', 'cpu', '--guardrails', G);
      expect(r.rc, r.err).toBe(0);
      expect(r.err).toContain(`guardrails ${G}: VIDEOCONTENTSAFETYFILTER, RETINAFACEFILTER`);
    } finally {
      restoreGuardrailLoaders(previousFixed);
    }
    const v = videoToFrames(await readPngFrames(out), 'round');
    const [T, H, W] = [5, 64, 64];
    for (let t = 0; t < T; t++) {
      const at = (x: number, y: number) => [...v.subarray(((t * H + y) * W + x) * 3, ((t * H + y) * W + x) * 3 + 3)];
      for (let y = 0; y <= 9; y++) for (let x = 0; x <= 9; x++) expect(at(x, y)).toEqual(at(0, 0));
    }
  }, 120_000);
});
