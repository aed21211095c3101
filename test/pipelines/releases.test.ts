// Reading the real release folders, text2world and video2world (prompt from --embeddings, the Wan2.1
// VAE encoding the conditioning, denoise, its decode) on skeleton copies of the real releases (test/releases/skeletons.py: the real folder layouts,
// configs, tensor names, shapes, dtypes and shards; every weight a sparse zero hole). Zero weights
// give a flat video, so these tests check what a user who downloads a release would otherwise find
// broken: every part loads under its real names, every phase runs, the output has the frame count
// and size upstream gives, and every value is finite. 16x16 pixels, 2 steps and guidance only
// where a case is about it keep it affordable on the CPU oracle; the 2B transformers stay bf16
// (4 GB each).
// transfer: releases-transfer.test.ts (a file of its own, to run alongside).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readVideo, writeVideo } from '../../src/io/open-video.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { text2world } from '../../src/pipelines/text2world.js';
import { video2world } from '../../src/pipelines/video2world.js';
import { describeWorldModel, inspectWorldModel } from '../../src/pipelines/world/folder.js';
import { cpu } from '../harness.js';
import { embeddingsFile, finite, stages, useReleases } from './release-runs.js';
import { gradientClip } from './world-fixtures.js';

const { release, scratch } = useReleases();
const embeddings = (width: number) => embeddingsFile(scratch(), width);

describe('the real release folders are read as they are downloaded', () => {
  it('Predict2, Predict2.5 and Transfer2.5 folders: the Wan2.1 VAE and each text encoder are recognised', async () => {
    const t2i = await inspectWorldModel(release('Cosmos-Predict2-2B-Text2Image'));
    expect(t2i).toMatchObject({ family: 'predict2', vaeKind: 'wan', vaeClass: 'AutoencoderKLWan', vaeUnsupported: null, textEncoderKind: 't5' });
    expect(t2i.vae).toEqual({ latentChannels: 16, temporalCompression: 4, spatialCompression: 8 });
    expect(t2i.defaults).toMatchObject({ frames: 1, height: 768, width: 1360 });
    const p25 = await inspectWorldModel(release('Cosmos-Predict2.5-2B@diffusers-base-post-trained'));
    expect(p25).toMatchObject({ family: 'predict2.5', vaeKind: 'wan', textEncoderKind: 'reason', textWidth: 100352, textEncoderUnsupported: null });
    expect(p25.tokenizerDir).toBe(join(release('Cosmos-Predict2.5-2B@diffusers-base-post-trained'), 'tokenizer'));
    expect(describeWorldModel(p25)).toMatch(/VAE AutoencoderKLWan \(4x8x8, 16 ch\); text encoder Cosmos-Reason1/);
    const tr = await inspectWorldModel(release('Cosmos-Transfer2.5-2B@diffusers-general'));
    expect(tr).toMatchObject({ vaeKind: 'wan', textEncoderKind: 'reason' });
  });
});

describe('each release makes a video from --embeddings (zero weights: shapes, phases, finite values)', () => {
  it('text2world on Cosmos-Predict2-2B-Text2Image: one 16x16 frame, with guidance (the negative prompt\'s pass)', async () => {
    const events: ProgressEvent[] = [];
    const r = await text2world({
      model: release('Cosmos-Predict2-2B-Text2Image'), backend: cpu, embeddings: await embeddings(1024), steps: 2, height: 16, width: 16,
      onProgress: (e) => events.push(e),
    });
    expect(r.settings.guidance).toBe(7);
    expect(r.latents.shape).toEqual([1, 16, 1, 2, 2]);
    expect([r.video!.frames, r.video!.height, r.video!.width]).toEqual([1, 16, 16]);
    expect(finite(r.video!.data) && finite(r.latents.data)).toBe(true);
    expect(stages(events)).toEqual({ prompt: 2, denoise: 2, decode: 1 });
    const png = join(scratch(), 't2i.png');
    await writeVideo(png, r.video!);
    expect(await readVideo(png)).toMatchObject({ frames: 1, height: 16, width: 16 });
  }, 600_000);

  it('text2world on Cosmos-Predict2.5-2B: 5 frames (2 latent frames) of 16x16', async () => {
    const events: ProgressEvent[] = [];
    const r = await text2world({
      model: release('Cosmos-Predict2.5-2B@diffusers-base-post-trained'), backend: cpu, embeddings: await embeddings(100352), steps: 2, frames: 5,
      height: 16, width: 16, guidance: 1, onProgress: (e) => events.push(e),
    });
    expect(r.latents.shape).toEqual([1, 16, 2, 2, 2]);
    expect([r.video!.frames, r.video!.height, r.video!.width]).toEqual([5, 16, 16]);
    expect(finite(r.video!.data)).toBe(true);
    expect(stages(events)).toEqual({ prompt: 1, denoise: 2, decode: 5 });
  }, 600_000);

  it('video2world on Cosmos-Predict2-2B-Video2World: an image continued to 5 frames', async () => {
    const events: ProgressEvent[] = [];
    const r = await video2world({
      model: release('Cosmos-Predict2-2B-Video2World'), backend: cpu, embeddings: await embeddings(1024), steps: 2, frames: 5, height: 16, width: 16,
      guidance: 1, input: gradientClip(1, 16, 16, 0), onProgress: (e) => events.push(e),
    });
    expect(r.condition).toMatchObject({ condFrames: 1, latentFrames: 1 });
    expect(r.latents.shape).toEqual([1, 16, 2, 2, 2]);
    expect([r.video!.frames, r.video!.height, r.video!.width]).toEqual([5, 16, 16]);
    expect(finite(r.video!.data)).toBe(true);
    expect(stages(events)).toEqual({ prompt: 1, condition: 1, denoise: 2, decode: 5 });
  }, 600_000);
});
