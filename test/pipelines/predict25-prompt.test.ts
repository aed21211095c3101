// The Predict2.5 --prompt path end to end, on a reduced Predict2.5 folder (world-fixtures.ts
// writePredict25PromptFolder: the Cosmos-Reason1 prompt encoder with fewer layers and the same
// names, a Wan2.1 VAE, a random Predict2.5 transformer). The text states the pipeline feeds the
// transformer are judged by upstream's own outputs (the `batch_negative` prompt_embeds case).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors } from '../../src/io/safetensors.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { text2world } from '../../src/pipelines/text2world.js';
import { video2world } from '../../src/pipelines/video2world.js';
import { inspectWorldModel } from '../../src/pipelines/world/folder.js';
import { writeEmbeddings } from '../../src/pipelines/world/prompt.js';
import { assertClose, countingCpu } from '../harness.js';
import { FIXTURES, gradientClip, writePredict25PromptFolder } from './world-fixtures.js';

const CASE = join(FIXTURES, 'prompt_embeds/batch_negative');
const caseArgs = JSON.parse(readFileSync(join(CASE, 'case.json'), 'utf8')).args as { prompts: string[]; max_sequence_length: number };

let tmp: string;
let folder: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cosmos-p25-prompt-'));
  folder = await writePredict25PromptFolder(join(tmp, 'predict25'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('Predict2.5 from a prompt: Reason1 encoder -> transformer -> Wan2.1 VAE', () => {
  it('the folder is recognised with its Reason1 encoder of width layers x hidden', async () => {
    const info = await inspectWorldModel(folder);
    expect(info).toMatchObject({ family: 'predict2.5', textEncoderKind: 'reason', textWidth: 144, vaeKind: 'wan', tokenizerDir: join(folder, 'tokenizer') });
  });

  it("encodes the prompt and the default negative prompt as upstream's _get_prompt_embeds does, frees the encoder, and makes a video", async () => {
    const { backend, liveBytes } = countingCpu();
    const live: Record<string, number> = {};
    const onProgress = (e: ProgressEvent) => {
      live[e.stage] ??= liveBytes();
    };
    const opts = { model: folder, backend, steps: 2, frames: 5, height: 16, width: 32, maxSequenceLength: caseArgs.max_sequence_length, returnEmbeddings: true };
    const r = await text2world({ ...opts, prompt: caseArgs.prompts[0], onProgress });
    const want = await openSafetensors(join(CASE, 'case.safetensors'));
    const row0 = async (name: string) => {
      const t = await want.read(name);
      const n = t.shape[1] * t.shape[2];
      return (t.raw as Float32Array).subarray(0, n);
    };
    expect(r.embeddings!.prompt.shape).toEqual([1, 80, 144]);
    assertClose(r.embeddings!.prompt.data, await row0('output.prompt_embeds'), { atol: 1e-4, rtol: 1e-3 }, 'prompt_embeds');
    assertClose(r.embeddings!.negative!.data, await row0('output.negative_prompt_embeds'), { atol: 1e-4, rtol: 1e-3 }, 'negative_prompt_embeds');
    await want.close();
    expect([r.video!.frames, r.video!.height, r.video!.width]).toEqual([5, 16, 32]);
    expect(r.video!.data.every(Number.isFinite)).toBe(true);

    // the same run from the saved embeddings skips the encoder: same latents, and the same bytes
    // live while denoising (the encoder was gone before the transformer came)
    const file = join(tmp, 'embeds.safetensors');
    await writeEmbeddings(file, r.embeddings!);
    const liveE: Record<string, number> = {};
    const again = await text2world({ ...opts, embeddings: file, onProgress: (e) => { liveE[e.stage] ??= liveBytes(); } });
    expect(again.latents.data).toEqual(r.latents.data);
    expect(live.denoise).toBe(liveE.denoise);
    // and a run leaves nothing behind on the device
    expect(liveBytes()).toBe(0);
  }, 300_000);

  it('video2world from an image and from a clip: 1 or 5 conditioning frames, the posterior mode (deterministic), nothing left behind', async () => {
    const { backend, liveBytes } = countingCpu();
    const embeddings = { prompt: { data: new Float32Array(6 * 144).fill(0.1), shape: [1, 6, 144] } };
    const o = { model: folder, backend, embeddings, steps: 1, guidance: 1, frames: 9, height: 16, width: 32 };
    const image = await video2world({ ...o, input: gradientClip(1, 16, 32, 0) });
    expect(image.condition).toMatchObject({ condFrames: 1, latentFrames: 1 });
    const clip = await video2world({ ...o, input: gradientClip(7, 16, 32, 0) });
    expect(clip.condition).toMatchObject({ condFrames: 5, latentFrames: 2 });
    for (const r of [image, clip]) {
      expect([r.video!.frames, r.video!.height, r.video!.width]).toEqual([9, 16, 32]);
      expect(r.video!.data.every(Number.isFinite)).toBe(true);
    }
    // the mode is deterministic: the same seed gives the same video
    expect((await video2world({ ...o, input: gradientClip(7, 16, 32, 0) })).latents.data).toEqual(clip.latents.data);
    await expect(video2world({ ...o, input: gradientClip(7, 16, 32, 0), condFrames: 3 })).rejects.toThrow(/condFrames: Predict2\.5 conditions on 1 or 2 latent frames: 1 or 5 input frames, got 3/);
    expect(liveBytes()).toBe(0);
  }, 300_000);
});
