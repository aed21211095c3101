// The text2world / video2world / transfer commands in-process on the cpu backend, on the tiny
// folders of test/pipelines/world-fixtures.ts: what they write (the clip, the latents file with its
// metadata), what they print (the summary, the JSON), the progress bars on stderr, and the exit
// statuses of the error contract (user errors 2).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it, } from 'vitest';
import { readVideo } from '../../src/io/open-video.js';
import { readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { cropVideo, sliceFrames } from '../../src/io/video.js';
import { readY4m } from '../../src/io/y4m.js';
import { SAMPLE, type WorldFolders, transferSpecJson, writePredict25PromptFolder, writeTransferFolder, writeWorldFolders } from '../pipelines/world-fixtures.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-cli-world-'));
let W: WorldFolders;
let spec: string;
beforeAll(async () => {
  W = await writeWorldFolders(tmp);
  const t = nodePath.join(tmp, 'transfer');
  mkdirSync(t);
  spec = await writeTransferFolder(t);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Run the CLI in-process: its stdout and stderr lines, and what the progress bars drew. */
const run = runCli;

describe('text2world', () => {
  it('writes a Y4M clip and says what it wrote; one bar line per stage when not on a terminal', async () => {
    const out = nodePath.join(tmp, 't2w.y4m');
    const r = await run('text2world', '--model', W.T2W, '--prompt', 'A robot arm picks up a red cube.', '--steps', '3', '--frames', '9',
      '--height', '32', '--width', '32', '--seed', '7', '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 32]);
    expect(v.header.fps).toEqual({ num: 30, den: 1 });
    expect(r.err).toContain('Cosmos-1.0 Diffusion (EDM)');
    expect(r.err).toMatch(/denoise 3\/3 steps 100%/);
    expect(r.out).toContain(`9 frames 32x32 @ 30 fps -> ${out}`);
    expect(r.out).toMatch(/time prompt [\d.]+ s, denoise [\d.]+ s \([\d.]+ s\/step\), decode [\d.]+ s/);
  });

  it('Predict2.5 with --embeddings: PNG frames and a JSON summary; latents only without --out', async () => {
    const dir = nodePath.join(tmp, 'p25-frames');
    const r = await run('text2world', '--model', W.P25, '--embeddings', W.EMB48, '--steps', '2', '--guidance', '1', '--frames', '5',
      '--height', '16', '--width', '32', '--out', dir, '--backend', 'cpu', '--json');
    expect(r.rc, r.err).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.png'))).toHaveLength(5);
    const v = await readPngFrames(dir);
    expect([v.frames, v.height, v.width]).toEqual([5, 16, 32]);
    expect(JSON.parse(r.out)).toMatchObject({ command: 'text2world', family: 'predict2.5', steps: 2, guidance: 1, frames: 5, latent_shape: [1, 16, 2, 2, 4] });

    const lat = nodePath.join(tmp, 'p25-latents.safetensors');
    const r2 = await run('text2world', '--model', W.P25, '--embeddings', W.EMB48, '--steps', '2', '--frames', '9', '--height', '16',
      '--width', '16', '--latents-out', lat, '--backend', 'cpu');
    expect(r2.rc, r2.err).toBe(0);
    expect(r2.out).toContain(`latent [1, 16, 3, 2, 2] (latents -> ${lat})`);
    const f = await openSafetensors(lat);
    try {
      expect((await f.read('latents')).shape).toEqual([1, 16, 3, 2, 2]);
      expect(f.metadata).toMatchObject({ format: 'cosmos-ts.latents.v1', family: 'predict2.5', frames: '9' });
    } finally {
      await f.close();
    }
    expect(r2.err).not.toMatch(/^decode /m);
  });

  it('Predict2.5 from --prompt (its Reason1 encoder) saves --embeddings-out; a run from them gives the same video', async () => {
    const folder = await writePredict25PromptFolder(nodePath.join(tmp, 'p25-prompt'));
    const emb = nodePath.join(tmp, 'p25-embeds.safetensors');
    const a = nodePath.join(tmp, 'p25-a.png');
    const common = ['--steps', '1', '--frames', '1', '--height', '16', '--width', '16', '--backend', 'cpu'];
    const r = await run('text2world', '--model', folder, '--prompt', 'A robot arm picks up a red cube.', '--embeddings-out', emb, '--out', a, ...common);
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toContain('text encoder Cosmos-Reason1');
    expect(r.out).toContain(`1 frames 16x16 @ 16 fps -> ${a} (embeddings -> ${emb})`);
    const f = await openSafetensors(emb);
    try {
      expect((await f.read('prompt_embeds')).shape).toEqual([1, 512, 144]);
      expect((await f.read('negative_prompt_embeds')).shape).toEqual([1, 512, 144]);
    } finally {
      await f.close();
    }
    const b = nodePath.join(tmp, 'p25-b.png');
    const r2 = await run('text2world', '--model', folder, '--embeddings', emb, '--out', b, ...common);
    expect(r2.rc, r2.err).toBe(0);
    expect((await readVideo(b)).data).toEqual((await readVideo(a)).data);
    const r3 = await run('text2world', '--model', folder, '--embeddings', emb, '--embeddings-out', nodePath.join(tmp, 'p25-embeds-2.safetensors'), '--out', b, ...common);
    expect(r3.rc).toBe(2);
    expect(r3.errLines).toEqual(['error: --embeddings-out: cannot be given with --embeddings (they contradict each other; give one)']);
  });

  it('user errors exit with status 2 and write nothing', async () => {
    const never = nodePath.join(tmp, 'never.y4m');
    const base = ['text2world', '--model', W.T2W, '--prompt', 'x', '--steps', '1', '--out', never, '--backend', 'cpu'];
    let r = await run(...base, '--frames', '10', '--height', '32', '--width', '32');
    expect(r.rc).toBe(2);
    expect(r.err).toMatch(/error: frames: must be 1 \+ k\*8 .*try 9 or 17/);
    r = await run(...base, '--frames', '9', '--height', '32', '--width', '32', '--steps', '0');
    expect(r.rc).toBe(2);
    expect(r.errLines).toEqual(['error: --steps: must be an integer >= 1; got "0"']);
    r = await run('text2world', '--model', W.P25, '--prompt', 'hello', '--frames', '1', '--height', '16', '--width', '16', '--out', never, '--backend', 'cpu');
    expect(r.rc).toBe(2);
    expect(r.err).toMatch(/error: embeddings: needed for this model/);
    r = await run('text2world', '--model', W.T2W, '--prompt', 'x');
    expect(r.rc).toBe(2);
    expect(r.errLines).toEqual(['error: --out: missing (give --out, or --latents-out: something to write)']);
    r = await run('text2world', '--model', nodePath.join(tmp, 'nowhere'), '--prompt', 'x', '--out', never);
    expect(r.rc).toBe(2);
    expect(r.err).toMatch(/--model .*nowhere: no such file or folder/);
    r = await run('text2world', '--model', W.EMB48, '--prompt', 'x', '--out', never);
    expect(r.rc).toBe(2);
    expect(r.err).toContain('is not a folder');
    expect(existsSync(never)).toBe(false);
  });

  it('--help lists the shared generation flags', async () => {
    for (const name of ['text2world', 'video2world']) {
      const r = await run(name, '--help');
      expect(r.rc).toBe(0);
      for (const flag of ['--model <folder>', '--embeddings <file>', '--latents-out <file>', '--backend']) expect(r.out, name).toContain(flag);
    }
    expect((await run('video2world', '--help')).out).toContain('--cond-frames');
  });
});

describe('video2world', () => {
  it('continues a PNG clip (--input-fps), its size from the input, and says what it conditioned on', async () => {
    const frames = nodePath.join(tmp, 'in-frames');
    await writePngFrames(frames, cropVideo(sliceFrames(await readY4m(SAMPLE), 0, 7), 7, 36, 50));
    const out = nodePath.join(tmp, 'v2w-p25.y4m');
    const r = await run('video2world', '--model', W.P25, '--input', frames, '--input-fps', '12', '--embeddings', W.EMB48, '--steps', '2',
      '--frames', '9', '--out', out, '--backend', 'cpu', '--json');
    expect(r.rc, r.err).toBe(0);
    const v = await readY4m(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 48]);
    expect(r.err).toContain('7 frames 50x36; conditioning on the last 5, resized to 48x32');
    expect(JSON.parse(r.out)).toMatchObject({ command: 'video2world', family: 'predict2.5', latent_shape: [1, 16, 3, 4, 6] });
    const bad = await run('video2world', '--model', W.P25, '--input', frames, '--input-fps', 'fast', '--embeddings', W.EMB48, '--out', out);
    expect(bad.rc).toBe(2);
    expect(bad.errLines.at(-1)).toBe('error: --input-fps: must be a positive number or n/d; got "fast"');
  });
});

describe('transfer', () => {
  it('runs the spec and writes the clip, the latents and a JSON summary', async () => {
    const out = nodePath.join(tmp, 'transfer.y4m');
    const latentsOut = nodePath.join(tmp, 'transfer-latents.safetensors');
    const r = await run('transfer', '--spec', spec, '--out', out, '--latents-out', latentsOut, '--backend', 'cpu', '--json');
    expect(r.rc, r.err).toBe(0);
    const summary = JSON.parse(r.out);
    expect(summary.controls.map((c: { name: string }) => c.name)).toEqual(['depth', 'edge']);
    expect(summary.max_weight_sum).toBeCloseTo(0.9, 6);
    expect(summary.latent_shape).toEqual([1, 16, 2, 4, 4]);
    const v = await readVideo(out);
    expect([v.frames, v.height, v.width]).toEqual([5, 32, 32]);
    const lat = await openSafetensors(latentsOut);
    const z = await lat.read('latents');
    expect(lat.metadata).toMatchObject({ family: 'transfer2.5', steps: '2' });
    await lat.close();
    expect([...(z.raw as Float32Array)].every(Number.isFinite)).toBe(true);
  });

  it('reports mismatched controls, weights past the cap and a bad spec with status 2; --normalize-weights runs', async () => {
    const base = transferSpecJson();
    const write = (json: object) => {
      const p = nodePath.join(nodePath.dirname(spec), `spec-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(p, JSON.stringify(json));
      return p;
    };
    const latents = ['--latents-out', nodePath.join(tmp, 'l.safetensors'), '--backend', 'cpu'];
    const controls = (edge: Record<string, unknown>) => ({
      ...base, num_steps: 1, guidance: 1,
      controls: { depth: { ...base.controls.depth, control_weight: 0.7 }, edge: { ...base.controls.edge, ...edge } },
    });
    const short = await run('transfer', '--spec', write(controls({ input_control: 'edge_short.y4m', control_weight: 0.2 })), ...latents);
    expect(short.rc).toBe(2);
    expect(short.err).toMatch(/control "edge": control video .*edge_short\.y4m is 1 frames .* same size and frame count/);
    const over = write(controls({ control_weight: 0.6 }));
    const capped = await run('transfer', '--spec', over, ...latents);
    expect(capped.rc).toBe(2);
    expect(capped.err).toMatch(/sum to 1\.3 .*depth 0\.7 \+ edge 0\.6.*past the cap 1/);
    expect((await run('transfer', '--spec', over, '--normalize-weights', ...latents)).rc).toBe(0);
    const badSpec = await run('transfer', '--spec', write({ ...base, num_steps: 0 }), ...latents);
    expect(badSpec.rc).toBe(2);
    expect(badSpec.err).toMatch(/num_steps: must be an integer >= 1/);
    const both = await run('transfer', '--spec', over, '--prompt', 'x', '--embeddings', W.EMB48, ...latents);
    expect(both.rc).toBe(2);
    expect(both.errLines).toEqual(['error: --embeddings: cannot be given with --prompt (they contradict each other; give one)']);
  });
});
