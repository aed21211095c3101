// The tokenizer workflows called as a user would: load the tiny trained tokenizers, round-trip
// a sample clip on the CPU backend and on WebGPU (PSNR / SSIM and DV token ids against
// weights/samples, as tokenizer-samples.test.ts checks them), with the latents never read back
// to the host between encode and decode; tokenize -> tokens file -> detokenize gives the same
// clip; progress events arrive in order; an abort stops the work with CancelledError and frees
// what it allocated; image tokenizers are refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  PSNR_TOL_DB, SSIM_TOL, type SampleTensors, type TinyModel, TINY_MODELS, expectedRounding, readExpected, readSample, samplesDir,
  tinyModelDir,
} from '../../src/conform/samples.js';
import type { Backend } from '../../src/engine/backend.js';
import { CancelledError, UserError } from '../../src/engine/errors.js';
import { selectBackend } from '../../src/engine/select.js';
import { Tensor } from '../../src/engine/tensor.js';
import { type Video, cropVideo, sliceFrames } from '../../src/io/video.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { detokenize, loadVideoTokenizer, roundtrip, tokenize, type VideoModel } from '../../src/pipelines/tokenizer.js';
import { readTokens, writeTokens } from '../../src/pipelines/tokens-file.js';

const WEIGHTS = fileURLToPath(new URL('../../weights', import.meta.url));
const SAMPLES_DIR = samplesDir(WEIGHTS);
const EXPECTED = await readExpected(SAMPLES_DIR);
const ROUND = expectedRounding(EXPECTED);
const SAMPLE: SampleTensors = await readSample(EXPECTED.samples[0], SAMPLES_DIR);
const [, , T, H, W] = SAMPLE.shape;
const CLIP: Video = { data: SAMPLE.input, frames: T, height: H, width: W, fps: { num: 8, den: 1 } };
/** A small odd-sized piece of the clip: 6 frames of 12x20 (padded to 9x16x24 by the pipeline). */
const SMALL: Video = cropVideo(sliceFrames(CLIP, 0, 6), 6, 12, 20);

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-tokpipe-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The tensors read back to the host (dtype and shape) while `fn` runs (a backend's read may use its readRaw). */
async function readsDuring<T>(backend: Backend, fn: () => Promise<T>): Promise<{ result: T; reads: string[] }> {
  const spies = [vi.spyOn(backend, 'read'), vi.spyOn(backend, 'readRaw')];
  try {
    const result = await fn();
    const tensors = new Set(spies.flatMap((s) => s.mock.calls.map(([t]) => t)));
    const reads = [...tensors].map((t) => `${t.dtype} [${t.shape.join(', ')}]`);
    return { result, reads };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

for (const backendName of ['cpu', 'webgpu'] as const) {
  describe(`tokenizer pipelines on ${backendName}`, () => {
    let backend: Backend;
    const models = new Map<TinyModel, VideoModel>();

    beforeAll(async () => {
      backend = await selectBackend({ backend: backendName });
      for (const m of TINY_MODELS) models.set(m, await loadVideoTokenizer(tinyModelDir(WEIGHTS, m), backend));
    }, 300_000);

    afterAll(() => {
      for (const m of models.values()) m.dispose();
    });

    for (const m of TINY_MODELS) {
      it(`roundtrip ${m}: ${SAMPLE.name} within PyTorch's metrics, decoded from device tokens, tokens file gives the same clip`, async () => {
        const model = models.get(m)!;
        const { result: rt, reads } = await readsDuring(backend, () => roundtrip(model, CLIP));
        try {
          // the only read-back is the reconstruction: the tokens stayed on the device (besides it,
          // the NaN / Inf counts of the encoder's and the decoder's outputs: 8 bytes each)
          expect(reads.filter((r) => r !== 'i32 [2]')).toEqual([`f32 [1, 3, ${T}, ${H}, ${W}]`]);
          expect(reads.filter((r) => r === 'i32 [2]').length).toBeGreaterThanOrEqual(2);
          const onDevice = m === 'cv' ? [rt.tokens.tensors.latent] : [rt.tokens.tensors.indices, rt.tokens.tensors.codes];
          for (const t of onDevice) {
            expect(t).toBeInstanceOf(Tensor);
            expect(t!.backend).toBe(backend);
          }
          expect(rt.tokens.shape).toEqual(m === 'cv' ? [1, 16, 5, 8, 8] : [1, 5, 8, 8]);
          expect([rt.reconstruction.frames, rt.reconstruction.height, rt.reconstruction.width]).toEqual([T, H, W]);
          expect(rt.reconstruction.data.every((v) => v >= -1 && v <= 1)).toBe(true);

          const want = EXPECTED.samples[0][m];
          expect(Math.abs(rt.quality.psnr - want.psnr), `psnr ${rt.quality.psnr} vs ${want.psnr}`).toBeLessThanOrEqual(PSNR_TOL_DB + ROUND.psnr);
          expect(Math.abs(rt.quality.ssim - want.ssim), `ssim ${rt.quality.ssim} vs ${want.ssim}`).toBeLessThanOrEqual(SSIM_TOL + ROUND.ssim);
          const host = await rt.tokens.read();
          expect([host.kind, host.frames, host.paddedFrames, host.fps]).toEqual([m.toUpperCase(), T, T, CLIP.fps]);
          if (m === 'dv') expect(Array.from(host.indices!.data)).toEqual(Array.from(SAMPLE.indices_dv));

          // the same tokens through a file and back, decoded from the host
          const file = nodePath.join(tmp, `${backendName}-${m}.safetensors`);
          await writeTokens(file, rt.tokens, { model: tinyModelDir(WEIGHTS, m), input: 'sample_0' });
          const read = await readTokens(file);
          expect([read.model, read.tokens.kind, read.tokens.frames, read.tokens.fps]).toEqual([tinyModelDir(WEIGHTS, m), m.toUpperCase(), T, CLIP.fps]);
          const again = await detokenize(model, read.tokens);
          expect(again.fps).toEqual(CLIP.fps);
          expect(Array.from(again.data)).toEqual(Array.from(rt.reconstruction.data));
        } finally {
          rt.tokens.dispose();
        }
      }, 600_000);
    }

    it('tokenize / detokenize a clip of any size: padded, recorded, cropped back; progress in order', async () => {
      const model = models.get('dv')!;
      const events: ProgressEvent[] = [];
      const onProgress = (e: ProgressEvent) => events.push(e);
      const tokens = await tokenize(model, SMALL, { chunkFrames: 4, onProgress });
      try {
        expect([tokens.frames, tokens.height, tokens.width]).toEqual([6, 12, 20]);
        expect([tokens.paddedFrames, tokens.paddedHeight, tokens.paddedWidth]).toEqual([9, 16, 24]);
        expect(tokens.shape).toEqual([1, 3, 2, 3]);
        const video = await detokenize(model, tokens, { onProgress });
        expect([video.frames, video.height, video.width]).toEqual([6, 12, 20]);
        // chunks of 1 + 4 and 4 (the second padded from 1 frame): one event per chunk, then decode
        expect(events.map((e) => [e.stage, e.done, e.total, e.unit])).toEqual([
          ['encode', 5, 6, 'frames'], ['encode', 6, 6, 'frames'], ['decode', 0, 6, 'frames'], ['decode', 6, 6, 'frames'],
        ]);
        // the same clip from host tokens
        const fromHost = await detokenize(model, await tokens.read());
        expect(Array.from(fromHost.data)).toEqual(Array.from(video.data));
      } finally {
        tokens.dispose();
      }
    }, 600_000);

    it('an abort stops each workflow with CancelledError and frees what it allocated', async () => {
      const model = models.get('cv')!;
      const aborted = AbortSignal.abort(new CancelledError('stop'));
      await expect(tokenize(model, SMALL, { signal: aborted })).rejects.toBeInstanceOf(CancelledError);
      await expect(roundtrip(model, SMALL, { signal: aborted })).rejects.toBeInstanceOf(CancelledError);
      const warm = await tokenize(model, SMALL, { chunkFrames: 4 });
      await expect(detokenize(model, warm, { signal: aborted })).rejects.toBeInstanceOf(CancelledError);
      warm.dispose();
      await backend.sync();
      const before = backend.memory().liveBytes;
      // cancelled after the first of two chunks: nothing it allocated survives
      const ac = new AbortController();
      const events: number[] = [];
      const run = roundtrip(model, SMALL, {
        chunkFrames: 4,
        signal: ac.signal,
        onProgress: (e) => {
          events.push(e.done);
          ac.abort(new CancelledError('stop'));
        },
      });
      await expect(run).rejects.toBeInstanceOf(CancelledError);
      expect(events).toEqual([5]);
      await backend.sync();
      expect(backend.memory().liveBytes).toBe(before);
    }, 600_000);
  });
}

describe('tokenizer pipeline errors', () => {
  it('refuses an image tokenizer with a UserError naming the folder, before loading it', async () => {
    const ci = fileURLToPath(new URL('../fixtures/tokenizer/ci_image', import.meta.url));
    const backend = await selectBackend({ backend: 'cpu' });
    const before = backend.memory().liveBytes;
    const e = await loadVideoTokenizer(ci, backend).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toBe(`${ci}: a CI (image) tokenizer; these workflows take the causal video tokenizers (CV, DV)`);
    expect(backend.memory().liveBytes).toBe(before);
  });

  it('refuses tokens of the wrong kind and chunk sizes that break the causal framing', async () => {
    const backend = await selectBackend({ backend: 'cpu' });
    const cv = await loadVideoTokenizer(tinyModelDir(WEIGHTS, 'cv'), backend);
    try {
      await expect(detokenize(cv, { indices: { data: new Int32Array(4), shape: [1, 1, 2, 2] } })).rejects.toThrow(/^tokens: hold no `latent`, and the model is a continuous \(CV\) tokenizer/);
      await expect(tokenize(cv, SMALL, { chunkFrames: 6 })).rejects.toThrow('chunkFrames: must be a positive multiple of the temporal compression 4; got 6');
    } finally {
      cv.dispose();
    }
  });
});
