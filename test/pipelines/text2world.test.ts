// text2world / video2world as library calls on the cpu backend (and one run on WebGPU), on tiny
// diffusers-style model folders (world-fixtures.ts): the clips they return (frame count, size,
// the conditioning frames), the per-step records and progress events, the typed errors naming the
// option at fault, cancellation, and that a model folder is inspected once per run.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors.js';
import * as F from '../../src/engine/ops.js';
import { type FileSystem, setFileSystem } from '../../src/io/files.js';
import { nodeFileSystem } from '../../src/io/node-files.js';
import { openPngFrames, readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { type Video, cropVideo, sliceFrames } from '../../src/io/video.js';
import { readY4m } from '../../src/io/y4m.js';
import { quality } from '../../src/metrics/quality.js';
import { loadTokenizer } from '../../src/models/tokenizer/load.js';
import type { CausalContinuousVideoTokenizer } from '../../src/models/tokenizer/video.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { text2world } from '../../src/pipelines/text2world.js';
import { video2world } from '../../src/pipelines/video2world.js';
import { conditioningClip, resizeClip } from '../../src/pipelines/world/condition.js';
import { PipelineFilesError, PipelineInputError } from '../../src/pipelines/world/errors.js';
import { inspectWorldModel } from '../../src/pipelines/world/folder.js';
import { loadWorldModel } from '../../src/pipelines/world/model.js';
import { planSizes } from '../../src/pipelines/world/settings.js';
import { CV, EDM, SAMPLE, type WorldFolders, writeWorldFolders } from './world-fixtures.js';
import { cpu, webgpu } from '../harness.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-world-'));
let W: WorldFolders;
beforeAll(async () => {
  W = await writeWorldFolders(tmp);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => setFileSystem(nodeFileSystem));

/** The default file system, counting the files opened (by path). */
function countOpens(): Map<string, number> {
  const opened = new Map<string, number>();
  const fs: FileSystem = {
    ...nodeFileSystem,
    name: 'counting',
    open: (p) => {
      opened.set(p, (opened.get(p) ?? 0) + 1);
      return nodeFileSystem.open(p);
    },
  };
  setFileSystem(fs);
  return opened;
}

function opensOf(opened: Map<string, number>, test: (p: string) => boolean): number {
  return [...opened].filter(([p]) => test(p)).reduce((a, [, n]) => a + n, 0);
}

/** decode(encode(clip)) with the tiny CV tokenizer, clamped (what the pipelines give back for conditioning frames). */
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

function spread(data: Float32Array): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of data) {
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  return hi - lo;
}

describe('text2world', () => {
  it('Cosmos-1.0 folder (T5 prompt, EDM, diffusers VAE): a 9-frame 32x32 clip, one record and one progress event per step', async () => {
    const events: ProgressEvent[] = [];
    const r = await text2world({
      model: W.T2W, backend: cpu, prompt: 'A robot arm picks up a red cube.', steps: 3, frames: 9, height: 32, width: 32, seed: 7,
      onProgress: (e) => events.push(e),
    });
    const v = r.video!;
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 32]);
    expect(v.fps).toEqual({ num: 30, den: 1 });
    expect(r.family).toBe('cosmos1');
    expect(r.settings).toMatchObject({ seed: 7, steps: 3, guidance: 7, fps: 30, frames: 9, height: 32, width: 32 });
    expect(r.latents.shape).toEqual([1, 8, 2, 4, 4]);
    expect(r.steps.map((s) => s.step)).toEqual([0, 1, 2]);
    expect(r.steps[0].sigma).toBeCloseTo(80, 4);
    expect(r.steps.every((s) => s.seconds >= 0)).toBe(true);
    // the stages in order: the prompt (and the negative prompt), one event per sampler step, the decode
    expect(events.map((e) => [e.stage, e.done, e.total])).toEqual([
      ['prompt', 0, 2], ['prompt', 1, 2], ['prompt', 2, 2],
      ['denoise', 1, 3], ['denoise', 2, 3], ['denoise', 3, 3],
      ['decode', 0, 1], ['decode', 1, 1],
    ]);
    expect(events.find((e) => e.stage === 'denoise')!.detail).toMatchObject({ sigma: r.steps[0].sigma });
    // the decoded clip is not flat: the VAE saw real latents
    expect(spread(v.data)).toBeGreaterThan(0.05);
  });

  it('is deterministic for a seed, and the seed matters; a loaded model gives the folder\'s results and stays loaded', async () => {
    const o = { prompt: 'a car in the rain', steps: 2, frames: 1, height: 16, width: 16, decode: false, maxSequenceLength: 16, backend: cpu };
    const a = await text2world({ ...o, model: W.T2W, seed: 3 });
    const b = await text2world({ ...o, model: W.T2W, seed: 3 });
    const c = await text2world({ ...o, model: W.T2W, seed: 4 });
    expect(a.latents.shape).toEqual([1, 8, 1, 2, 2]);
    expect(Array.from(b.latents.data)).toEqual(Array.from(a.latents.data));
    expect(Array.from(c.latents.data)).not.toEqual(Array.from(a.latents.data));
    expect(a.video).toBeNull();
    const loaded = await loadWorldModel(W.T2W, cpu);
    try {
      for (let i = 0; i < 2; i++) {
        const l = await text2world({ ...o, model: loaded, seed: 3 });
        expect(Array.from(l.latents.data)).toEqual(Array.from(a.latents.data));
      }
      expect(loaded.transformer.transformer_blocks[0].ff.proj_in.weight.loaded).toBe(true);
    } finally {
      loaded.dispose();
    }
  });

  it('Predict2.5 folder with embeddings (UniPC, guidance off); latents only without decoding: the VAE is never read', async () => {
    const r = await text2world({ model: W.P25, backend: cpu, embeddings: W.EMB48, steps: 2, guidance: 1, frames: 5, height: 16, width: 32 });
    expect([r.video!.frames, r.video!.height, r.video!.width]).toEqual([5, 16, 32]);
    expect(r.family).toBe('predict2.5');
    expect(r.latents.shape).toEqual([1, 16, 2, 2, 4]);
    expect(r.steps).toHaveLength(2);

    const opened = countOpens();
    const l = await text2world({ model: W.P25, backend: cpu, embeddings: W.EMB48, steps: 2, frames: 9, height: 16, width: 16, decode: false });
    expect(l.latents.shape).toEqual([1, 16, 3, 2, 2]);
    expect(l.video).toBeNull();
    expect(opensOf(opened, (p) => p.includes('/vae/') && p.endsWith('.safetensors'))).toBe(0);
    // each transformer shard twice: its header checked before the run, then loaded for the denoising
    expect(opensOf(opened, (p) => p.includes('/transformer/') && p.endsWith('.safetensors'))).toBe(4);
  });

  it('takes the embeddings as arrays too', async () => {
    const S = 6;
    const arr = (v: number) => ({ data: Float32Array.from({ length: S * 48 }, (_, i) => Math.sin(i * v)), shape: [1, S, 48] });
    const o = { model: W.P25, backend: cpu, steps: 1, frames: 1, height: 16, width: 16, decode: false };
    const r = await text2world({ ...o, embeddings: { prompt: arr(0.1), negative: arr(0.3) } });
    expect(r.latents.shape).toEqual([1, 16, 1, 2, 2]);
    await expect(text2world({ ...o, embeddings: { prompt: arr(0.1) } })).rejects.toThrow(/embeddings: no negative prompt embeddings; guidance > 1 needs them/);
  });
});

describe('one run', () => {
  it('inspects the model folder once, and not at all when given its inspection', async () => {
    const opened = countOpens();
    const o = { backend: cpu, prompt: 'x', steps: 1, frames: 1, height: 16, width: 16, maxSequenceLength: 8 };
    await text2world({ ...o, model: W.T2W });
    const once = (name: string) => opensOf(opened, (p) => p.endsWith(name));
    expect(once('model_index.json')).toBe(1);
    expect(once('scheduler_config.json')).toBe(1);
    // each config.json: the inspection, and the checkpoint reader's look beside the weights
    for (const part of ['transformer', 'vae', 'text_encoder']) expect(once(`${part}/config.json`), part).toBeLessThanOrEqual(2);
    const info = await inspectWorldModel(W.T2W);
    opened.clear();
    await text2world({ ...o, model: info });
    expect(once('model_index.json')).toBe(0);
    expect(once('scheduler_config.json')).toBe(0);
  });

  it('stops with CancelledError before loading any weights when its signal is already aborted', async () => {
    const opened = countOpens();
    const ac = new AbortController();
    ac.abort(new CancelledError('stopped before the start'));
    await expect(text2world({ model: W.T2W, backend: cpu, prompt: 'x', signal: ac.signal })).rejects.toThrow(CancelledError);
    await expect(video2world({ model: W.V2W, backend: cpu, prompt: 'x', input: SAMPLE, signal: ac.signal })).rejects.toThrow(CancelledError);
    expect(opensOf(opened, (p) => p.endsWith('.safetensors'))).toBe(0);
  });

  it('stops at the next step when aborted between steps', async () => {
    const ac = new AbortController();
    const steps: number[] = [];
    await expect(text2world({
      model: W.P25, backend: cpu, embeddings: W.EMB48, steps: 4, frames: 1, height: 16, width: 16, signal: ac.signal,
      onProgress: (e) => {
        if (e.stage !== 'denoise') return;
        steps.push(e.done);
        if (e.done === 2) ac.abort(new CancelledError('enough'));
      },
    })).rejects.toThrow(/enough/);
    expect(steps).toEqual([1, 2]);
  });
});

describe('both backends', () => {
  it('text2world on WebGPU matches the CPU run (Predict2.5 folder, decoded)', async () => {
    const o = { model: W.P25, embeddings: W.EMB48, steps: 2, frames: 5, height: 16, width: 32, seed: 11 };
    const a = await text2world({ ...o, backend: cpu });
    const b = await text2world({ ...o, backend: await webgpu() });
    expect(b.latents.shape).toEqual(a.latents.shape);
    let worst = 0;
    a.latents.data.forEach((x, i) => {
      worst = Math.max(worst, Math.abs(x - b.latents.data[i]));
    });
    expect(worst).toBeLessThan(2e-3);
    expect(quality(b.video!.data, a.video!.data, [3, 5, 16, 32]).psnr).toBeGreaterThan(50);
  });
});

describe('video2world', () => {
  it('Cosmos-1.0 folder (Cosmos-layout CV4x8x8 VAE): continues sample_0 from its last 5 frames, resized 64 -> 32', async () => {
    const r = await video2world({
      model: W.V2W, backend: cpu, input: SAMPLE, prompt: 'the scene goes on', steps: 2, frames: 9, height: 32, width: 32, condFrames: 5, fps: 24,
    });
    const v = r.video!;
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 32]);
    expect(v.fps).toEqual({ num: 24, den: 1 });
    expect(r.steps).toHaveLength(2);
    expect(r.condition).toEqual({ inputFrames: 17, inputHeight: 64, inputWidth: 64, condFrames: 5, latentFrames: 2 });
    // the 5 conditioning frames come back as the VAE's own reconstruction of the input's last 5
    // (the conditioning latents went through the normalisation both ways, and EDM ends at sigma_min)
    const input = await readY4m(SAMPLE);
    const want = resizeClip(sliceFrames(input, input.frames - 5, input.frames), 32, 32);
    expect(quality(sliceFrames(v, 0, 5).data, (await cvRoundtrip(want)).data, [3, 5, 32, 32]).psnr).toBeGreaterThan(45);
  });

  it('Predict2.5 folder with embeddings, the clip given in memory: size defaults to the input (rounded to 16), conditioning frames to 1 + tc', async () => {
    // a 7-frame 36x50 clip cut from the sample: the output size defaults to 32x48
    const clip = cropVideo(sliceFrames(await readY4m(SAMPLE), 0, 7), 7, 36, 50);
    const r = await video2world({ model: W.P25, backend: cpu, input: clip, embeddings: W.EMB48, steps: 2, frames: 9 });
    const v = r.video!;
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 48]);
    expect(r.family).toBe('predict2.5');
    expect(r.latents.shape).toEqual([1, 16, 3, 4, 6]);
    expect(r.condition).toMatchObject({ inputFrames: 7, inputHeight: 36, inputWidth: 50, condFrames: 5 });
    // conditioning frames: the VAE reconstruction of the input's last 5, up to the flow loop's
    // start (x0 = x - sigma_0 v with sigma_0 = 200/201, spec dit.md §6)
    const want = await cvRoundtrip(resizeClip(sliceFrames(clip, 2, 7), 32, 48));
    expect(quality(sliceFrames(v, 0, 5).data, want.data, [3, 5, 32, 48]).psnr).toBeGreaterThan(45);
  });
});

describe('Predict2 (flow Euler)', () => {
  it('video2world from one PNG image (a frame source): 9 frames, the first the VAE reconstruction of the image', async () => {
    const img = nodePath.join(tmp, 'one-frame');
    await writePngFrames(img, cropVideo(sliceFrames(await readY4m(SAMPLE), 8, 9), 1, 16, 32));
    const r = await video2world({ model: W.P2, backend: cpu, input: await openPngFrames(img), prompt: 'a ball rolls', steps: 3, frames: 9 });
    expect(r.family).toBe('predict2');
    expect(r.condition.condFrames).toBe(1);
    expect(r.steps).toHaveLength(3);
    const v = r.video!;
    expect([v.frames, v.height, v.width]).toEqual([9, 16, 32]);
    const want = await cvRoundtrip(await readPngFrames(img));
    expect(quality(sliceFrames(v, 0, 1).data, want.data, [3, 1, 16, 32]).psnr).toBeGreaterThan(45);
    expect(readdirSync(img)).toHaveLength(1);
  });
});

describe('errors', () => {
  it('name the option: frame counts and sizes the VAE / transformer cannot take', async () => {
    const run = (o: { frames: number; height: number; width: number; steps?: number }) => text2world({ model: W.T2W, backend: cpu, prompt: 'x', steps: 1, ...o });
    await expect(run({ frames: 10, height: 32, width: 32 })).rejects.toThrow(/^frames: must be 1 \+ k\*8 .*try 9 or 17/);
    await expect(run({ frames: 9, height: 24, width: 32 })).rejects.toThrow('height: must be a multiple of 16');
    await expect(run({ frames: 9, height: 32, width: 512 })).rejects.toThrow("width: 64 latent positions exceed the transformer's max_size 32");
    await expect(run({ frames: 9, height: 32, width: 32, steps: 0 })).rejects.toThrow(PipelineInputError);
    await expect(run({ frames: 9, height: 32, width: 32, steps: 0 })).rejects.toThrow('steps: must be an integer >= 1, got 0');
  });

  it('embeddings: wrong width, missing tensors, required for a folder without a text encoder', async () => {
    const o = { model: W.P25, backend: cpu, steps: 1, frames: 1, height: 16, width: 16 };
    await expect(text2world({ ...o, embeddings: W.EMB32 })).rejects.toThrow(/^embeddings: .*prompt_embeds has width 32 but the transformer reads text states of width 48/);
    await expect(text2world({ ...o, prompt: 'hello' })).rejects.toThrow(/^embeddings: needed for this model: .*predict25\/text_encoder is missing$/);
    await expect(text2world({ ...o })).rejects.toThrow(/^prompt: a prompt \(or precomputed embeddings\) is required/);
    const onlyPrompt = nodePath.join(tmp, 'only-prompt.safetensors');
    await writeSafetensors(onlyPrompt, { prompt_embeds: { dtype: 'f32', shape: [6, 48], raw: new Float32Array(6 * 48) } });
    await expect(text2world({ ...o, embeddings: onlyPrompt })).rejects.toThrow('holds no "negative_prompt_embeds"; guidance > 1 needs them');
    // guidance 1: the negative is not needed, and [S, D] embeddings are taken as batch 1
    const r = await text2world({ ...o, embeddings: onlyPrompt, guidance: 1 });
    expect(r.latents.shape).toEqual([1, 16, 1, 2, 2]);
  });

  it('missing subfolders and files, a text2world model given to video2world, too many conditioning frames', async () => {
    const empty = nodePath.join(tmp, 'empty-model');
    mkdirSync(empty);
    await expect(text2world({ model: empty, backend: cpu, prompt: 'x' })).rejects.toThrow('the scheduler/ subfolder is required');
    mkdirSync(nodePath.join(empty, 'scheduler'));
    writeFileSync(nodePath.join(empty, 'scheduler/scheduler_config.json'), JSON.stringify(EDM));
    await expect(inspectWorldModel(empty)).rejects.toThrow(/transformer\/ subfolder is required/);
    mkdirSync(nodePath.join(empty, 'transformer'));
    await expect(inspectWorldModel(empty)).rejects.toThrow(PipelineFilesError);
    await expect(inspectWorldModel(empty)).rejects.toThrow(/transformer\/config\.json/);

    await expect(video2world({ model: W.T2W, backend: cpu, input: SAMPLE, prompt: 'x' }))
      .rejects.toThrow(/^model: .*a text2world model; video2world needs the condition-mask channel \(in_channels 9\)/);
    await expect(video2world({ model: W.V2W, backend: cpu, input: SAMPLE, prompt: 'x', frames: 9, condFrames: 12 }))
      .rejects.toThrow('condFrames: 12 conditioning frames do not fit in the 9 output frames');
  });

  it('planSizes and the clip helpers', async () => {
    const info = await inspectWorldModel(W.V2W);
    expect(info.family).toBe('cosmos1');
    expect(info.vae).toEqual({ latentChannels: 16, temporalCompression: 4, spatialCompression: 8 });
    expect(planSizes(info.transformer, info.vae!, 9, 32, 48)).toEqual([1, 16, 3, 4, 6]);
    expect(() => planSizes(info.transformer, info.vae!, 8, 32, 48)).toThrow(PipelineInputError);
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
