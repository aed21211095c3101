// The guardrail folder and the order of its stages, with the FAKE model stages of
// guardrail-fakes.ts (rule-based stand-ins, passed as loaders): which sub-folders are required
// for which stages, what path each loader gets (also on the Cosmos-1.0-Guardrail release
// skeleton), the text stages in order with the first refusal stopping them, the video stages
// (the safety filter refuses, the face blur changes exactly the face box), models loaded per
// check and freed, and the bytes the stages see.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/io/safetensors.js';
import type { Video } from '../../src/io/video.js';
import {
  GuardrailBlockedError, GuardrailFolderError, framesToVideo, openGuardrails, registerGuardrailLoaders, restoreGuardrailLoaders, videoToFrames,
} from '../../src/pipelines/guardrails.js';
import { cpu } from '../harness.js';
import { writeGuardrailSkeleton } from '../releases/guardrail-skeleton.js';
import { type Box, faceFrames, fakeFaceBox, fakeLoaders, writeGuardrailFolder } from './guardrail-fakes.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-guardrails-'));
let G: string;
beforeAll(() => {
  G = writeGuardrailFolder(nodePath.join(tmp, 'Cosmos-1.0-Guardrail'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('openGuardrails', () => {
  it('gives each loader its sub-folder, loads a model per check and frees it after', async () => {
    const { loaders, calls } = fakeLoaders();
    const g = await openGuardrails(G, cpu, { loaders });
    expect(g.paths).toEqual({
      root: G, blocklist: nodePath.join(G, 'blocklist'), aegis: nodePath.join(G, 'aegis'),
      videoSafety: nodePath.join(G, 'video_content_safety_filter'), faceBlur: nodePath.join(G, 'face_blur_filter'),
    });
    expect(calls.loads).toEqual([]);
    await g.checkPrompt('A robot arm picks up a red cube.');
    await g.checkVideo(framesToVideo(new Uint8Array(2 * 4 * 4 * 3), 2, 4, 4));
    expect(calls.loads).toEqual([
      { stage: 'aegis', path: nodePath.join(G, 'aegis') }, { stage: 'videoSafety', path: nodePath.join(G, 'video_content_safety_filter') },
      { stage: 'faceBlur', path: nodePath.join(G, 'face_blur_filter') },
    ]);
    expect(calls.disposed).toEqual(['aegis', 'videoSafety', 'faceBlur']);
  });

  it('keepLoaded keeps each model until dispose()', async () => {
    const { loaders, calls } = fakeLoaders();
    const g = await openGuardrails(G, cpu, { loaders, keepLoaded: true });
    await g.checkPrompt('one');
    await g.checkPrompt('two');
    expect(calls.loads.map((l) => l.stage)).toEqual(['aegis']);
    expect(calls.disposed).toEqual([]);
    g.dispose();
    expect(calls.disposed).toEqual(['aegis']);
  });

  it("finds the stages in a checkpoint folder's guardrail/ (where cosmos-predict1 looks)", async () => {
    const ckpt = nodePath.join(tmp, 'checkpoints');
    writeGuardrailFolder(ckpt, 'guardrail');
    const g = await openGuardrails(ckpt, cpu, { loaders: fakeLoaders().loaders });
    expect(g.paths.root).toBe(nodePath.join(ckpt, 'guardrail'));
  });

  it('a missing sub-folder is named, only when its stage is asked for; a stage with no loader is refused', async () => {
    const half = nodePath.join(tmp, 'half');
    mkdirSync(nodePath.join(half, 'face_blur_filter'), { recursive: true });
    mkdirSync(nodePath.join(half, 'video_content_safety_filter'));
    const { loaders } = fakeLoaders();
    await expect(openGuardrails(half, cpu, { loaders })).rejects.toThrow(new GuardrailFolderError(`${nodePath.join(half, 'blocklist')}: missing (the blocklist/ stage of the guardrail folder ${half})`));
    const video = await openGuardrails(half, cpu, { loaders, text: false });
    expect(video.hasText).toBe(false);
    expect(video.hasVideo).toBe(true);
    await expect(openGuardrails(half, cpu, { loaders: { ...loaders, faceBlur: undefined }, text: false })).rejects.toThrow(/face_blur_filter: no loader for this stage/);
    await expect(openGuardrails(nodePath.join(tmp, 'none'), cpu, { loaders })).rejects.toThrow(/none: not a folder/);
  });

  it('the registry supplies the loaders when none are passed', async () => {
    const { loaders, calls } = fakeLoaders();
    const previous = registerGuardrailLoaders(loaders);
    try {
      const g = await openGuardrails(G, cpu);
      await g.checkPrompt('fine words');
      expect(calls.loads.map((l) => l.stage)).toEqual(['aegis']);
    } finally {
      restoreGuardrailLoaders(previous);
    }
  });

  it('every stage path of the Cosmos-1.0-Guardrail release skeleton', async () => {
    const dir = await writeGuardrailSkeleton(nodePath.join(tmp, 'skeleton'));
    const { loaders, calls } = fakeLoaders();
    const g = await openGuardrails(dir, cpu, { loaders });
    expect(g.paths.blocklist).toBe(nodePath.join(dir, 'blocklist'));
    await g.checkPrompt('A robot arm picks up a red cube.');
    await g.checkVideo(framesToVideo(new Uint8Array(3 * 8 * 8), 1, 8, 8));
    expect(calls.loads).toEqual([
      { stage: 'aegis', path: nodePath.join(dir, 'aegis') }, { stage: 'videoSafety', path: nodePath.join(dir, 'video_content_safety_filter') },
      { stage: 'faceBlur', path: nodePath.join(dir, 'face_blur_filter') },
    ]);
    // the files the stages read: headers with the spec's names, shapes and dtypes
    const snap = (repo: string) => nodePath.join(repo, 'snapshots', '0'.repeat(40));
    const siglip = await openCheckpoint(snap(nodePath.join(dir, 'video_content_safety_filter', 'models--google--siglip-so400m-patch14-384')));
    const lg = await openCheckpoint(snap(nodePath.join(dir, 'aegis', 'models--meta-llama--LlamaGuard-7b')));
    const filter = await openCheckpoint(nodePath.join(dir, 'video_content_safety_filter', 'safety_filter.pt'));
    try {
      expect(siglip.info('vision_model.head.attention.in_proj_weight')).toMatchObject({ dtype: 'F32', shape: [3456, 1152] });
      expect(siglip.info('vision_model.embeddings.position_embedding.weight').shape).toEqual([729, 1152]);
      expect(lg.info('model.layers.31.mlp.down_proj.weight')).toMatchObject({ dtype: 'BF16', shape: [4096, 11008] });
      expect(lg.names).toHaveLength(2 + 1 + 32 * 9);
      expect(filter.names.filter((n) => n.endsWith('.weight')).map((n) => [n, filter.info(n).shape])).toEqual([
        ['model.network.layers.0.weight', [512, 1152]], ['model.network.layers.1.weight', [512]], ['model.network.layers.3.weight', [256, 512]],
        ['model.network.layers.4.weight', [256]], ['model.network.layers.6.weight', [7, 256]],
      ]);
    } finally {
      await Promise.all([siglip.close(), lg.close(), filter.close()]);
    }
  });
});

describe('the text stages', () => {
  it('blocklist first: its refusal stops before Aegis is loaded', async () => {
    const { loaders, calls } = fakeLoaders();
    const g = await openGuardrails(G, cpu, { loaders });
    const r = await g.checkPrompt('the blarg is hostile');
    expect(r).toEqual({ safe: false, verdicts: [{ stage: 'BLOCKLIST', safe: false, message: 'Prompt blocked by censorship: Censored Prompt: the **** is hostile' }] });
    expect(calls.loads).toEqual([]);
    expect((await g.checkPrompt('')).verdicts[0]).toMatchObject({ stage: 'BLOCKLIST', message: 'Input is empty' });
  });

  it('Aegis second; assertPrompt throws the refusal as upstream words it', async () => {
    const g = await openGuardrails(G, cpu, { loaders: fakeLoaders().loaders });
    const r = await g.checkPrompt('a hostile scene');
    expect(r.safe).toBe(false);
    expect(r.verdicts.map((v) => [v.stage, v.safe])).toEqual([['BLOCKLIST', true], ['AEGIS', false]]);
    const e = await g.assertPrompt('a hostile scene').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GuardrailBlockedError);
    expect((e as GuardrailBlockedError).stage).toBe('AEGIS');
    expect((e as GuardrailBlockedError).message).toBe('AEGIS: Prompt blocked by Aegis (fake: the word "hostile").');
    expect((await g.checkPrompt('a calm scene')).verdicts.map((v) => v.safe)).toEqual([true, true]);
  });

  it('an Aegis model that fails lets the prompt through, as upstream does, and the verdict says so', async () => {
    const { loaders } = fakeLoaders();
    const failing = { ...loaders, aegis: async () => ({ check: async () => ({ safe: true, message: '', answer: '', error: new Error('out of memory') }), dispose: () => {} }) };
    const g = await openGuardrails(G, cpu, { loaders: failing });
    const r = await g.checkPrompt('a calm scene');
    expect(r.safe).toBe(true);
    expect(r.verdicts[1]).toEqual({ stage: 'AEGIS', safe: true, message: 'Input passed unchecked: the model failed (out of memory); upstream treats a failure as safe' });
  });
});

describe('the video stages', () => {
  const T = 3;
  const H = 48;
  const W = 64;
  const box: Box = [10, 8, 39, 37];

  it('the face blur changes exactly the face box of every frame', async () => {
    const g = await openGuardrails(G, cpu, { loaders: fakeLoaders().loaders, text: false });
    const input = faceFrames(T, H, W, box);
    const r = await g.checkVideo(framesToVideo(input, T, H, W), { quantize: 'round' });
    expect(r.safe).toBe(true);
    expect(r.verdicts.map((v) => [v.stage, v.safe])).toEqual([['VIDEOCONTENTSAFETYFILTER', true], ['RETINAFACEFILTER', true]]);
    expect(r.verdicts[1].scores).toEqual({ faces: T, frames_with_faces: T });
    const out = r.frames!;
    const inBox = (x: number, y: number) => x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3];
    let changedIn = 0;
    let changedOut = 0;
    for (let t = 0; t < T; t++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const p = ((t * H + y) * W + x) * 3;
          const same = out[p] === input[p] && out[p + 1] === input[p + 1] && out[p + 2] === input[p + 2];
          if (!same && inBox(x, y)) changedIn++;
          if (!same && !inBox(x, y)) changedOut++;
        }
      }
    }
    expect([changedIn, changedOut]).toEqual([T * 30 * 30, 0]);
    expect(fakeFaceBox(out.subarray(0, H * W * 3), H, W)).toBeNull();
    // the returned clip is the same bytes again
    expect(videoToFrames(r.video!, 'round')).toEqual(out);
  });

  it('an unsafe frame refuses the clip: no blur runs, guardVideo throws', async () => {
    const { loaders, calls } = fakeLoaders();
    const g = await openGuardrails(G, cpu, { loaders, text: false });
    const frames = new Uint8Array(4 * 8 * 8 * 3).fill(90);
    for (let p = 2 * 64; p < 4 * 64; p++) frames.set([250, 10, 10], p * 3);
    const v: Video = framesToVideo(frames, 4, 8, 8);
    const r = await g.checkVideo(v);
    expect(r.safe).toBe(false);
    expect(r.video).toBeNull();
    expect(r.verdicts).toEqual([{
      stage: 'VIDEOCONTENTSAFETYFILTER', safe: false, message: 'unsafe frame 2: Violence',
      scores: { frames_evaluated: 3, Safe: 0.97, Sexual_Content: 0.01, Violence: 0.95, Drugs: 0, Child_Abuse: 0, Hate_and_Harassment: 0.01, 'Self-Harm': 0 },
    }]);
    expect(calls.loads.map((l) => l.stage)).toEqual(['videoSafety']);
    await expect(g.guardVideo(v)).rejects.toThrow('VIDEOCONTENTSAFETYFILTER: unsafe frame 2: Violence');
  });

  it("bytes: upstream's decode truncates (1 + x) / 2 * 255 in float32; 'round' gives a file's bytes back", () => {
    const v: Video = { data: new Float32Array([-1, -0.5, 0, 0.999, 1, 1.5, -2, Number.NaN, 3 / 127.5 - 1]), frames: 3, height: 1, width: 1 };
    // [3, T=3, 1, 1]: channel 0 = (-1, -0.5, 0), channel 1 = (0.999, 1, 1.5), channel 2 = (-2, NaN, 3/127.5 - 1)
    expect([...videoToFrames(v)]).toEqual([0, 254, 0, 63, 255, 0, 127, 255, 2]);
    expect([...videoToFrames(v, 'round')]).toEqual([0, 255, 0, 64, 255, 0, 128, 255, 3]);
    const bytes = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);
    expect(videoToFrames(framesToVideo(bytes, 1, 16, 16), 'round')).toEqual(bytes);
  });
});
