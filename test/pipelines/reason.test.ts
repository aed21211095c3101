// The reason pipeline on the cpu backend: a tiny random-weight Qwen2.5-VL folder (the lm_forward
// fixture's config.json + model.safetensors, a byte-level tokenizer cut from the bpe_tokenize
// fixture with its added tokens renumbered to the tiny config's special ids, the fixture chat
// template, a preprocessor_config.json with small pixel limits), run on a PNG image and on frames
// of sample_0.y4m (alone and together); the decode loop against generate(), an answer of
// placeholder tokens (a head rigged to pick them), the streamed text against the tokenizer's
// decode, progress and cancellation, stop tokens, the weight-size refusal, and the typed errors.
import { readFileSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { CancelledError } from '../../src/engine/errors.js';
import * as F from '../../src/engine/ops.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { type TensorToWrite, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { generate } from '../../src/models/vlm/generate.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { ReasonInputError, loadReasonAssets } from '../../src/pipelines/reason-assets.js';
import { readImageFile, readVideoFile, sampleVideo } from '../../src/pipelines/reason-inputs.js';
import { type ReasonModel, buildPrompt, loadReasonModel, processedSize, reason } from '../../src/pipelines/reason.js';
import { TextStreamer } from '../../src/pipelines/text-streamer.js';
import { SAMPLE, VLM_FIXTURES, tempFolder, writeReasonFolder, writeReasonInputs } from './arvlm-fixtures.js';
import { cpu } from '../harness.js';

const { dir: tmp, remove } = tempFolder('cosmos-reason-');
afterAll(remove);

let folder: string;
let image: string;
let clip: string;
let loaded: ReasonModel;
beforeAll(async () => {
  ({ folder, image, clip } = await writeReasonInputs(tmp));
  loaded = await loadReasonModel(folder, cpu);
}, 60_000);
afterAll(() => loaded?.model.dispose());

describe('reason', () => {
  it('the tiny folder: special ids match the config, stop tokens are eos + <|im_end|> + <|endoftext|>', () => {
    const { assets } = loaded;
    expect(assets.tokenizer.tokenToId('<|image_pad|>')).toBe(292);
    expect(assets.stopTokenIds.sort()).toEqual([280, 281]);
    expect(assets.notes).toEqual([]);
  });

  it('greedy decoding equals generate() on the same image prompt; the text streams through onText and is the decode of the tokens', async () => {
    const { model, assets } = loaded;
    const img = await readImageFile(image);
    const pieces: string[] = [];
    const r = await reason({
      model: loaded, prompt: 'What is in the picture?', images: [img], maxNewTokens: 8, temperature: 0, repetitionPenalty: 1, onText: (s) => void pieces.push(s),
    });
    expect(r.imageGridThw).toEqual([[1, 4, 6]]);
    expect(r.visionTokens).toBe(6);
    expect(r.promptText).toContain('<|vision_start|><|image_pad|><|vision_end|>What is in the picture?<|im_end|>\n<|im_start|>assistant\n');
    // reference: generate() over the same inputs
    const ip = assets.imageProcessor.preprocessImages([img]);
    const enc = assets.text.encode([r.promptText], { imageGridThw: ip.gridThw });
    expect(enc.length).toBe(r.promptTokens);
    const pixels = F.fromArray(cpu, ip.pixelValues, ip.shape);
    const ref = await generate(model, { inputIds: { data: enc.inputIds, shape: [1, enc.length] }, pixelValues: pixels, imageGridThw: ip.gridThw }, {
      maxNewTokens: 8, stopTokenIds: assets.stopTokenIds,
    });
    pixels.dispose();
    expect(r.tokens).toEqual(ref.generated[0]);
    expect(r.finishReason).toBe(ref.finishReason[0]);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(r.text);
    expect(r.text).toBe(assets.tokenizer.decode(r.tokens, { skipSpecialTokens: true }));
    expect(r.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(r.seconds.vision).toBeGreaterThanOrEqual(0);
  });

  it('progress: vision, prefill, then one generate event per token in order with its id', async () => {
    const events: ProgressEvent[] = [];
    const r = await reason({ model: loaded, prompt: 'Hi', images: [await readImageFile(image)], maxNewTokens: 5, temperature: 0, onProgress: (e) => events.push(e) });
    expect(events.slice(0, 2).map((e) => e.stage)).toEqual(['vision', 'prefill']);
    expect(events[0].detail).toEqual({ tokens: 6 });
    const gen = events.slice(2);
    expect(gen.every((e) => e.stage === 'generate' && e.unit === 'tokens' && e.total === 5)).toBe(true);
    expect(gen.map((e) => e.done)).toEqual(r.tokens.map((_, i) => i + 1));
    expect(gen.map((e) => e.detail?.id)).toEqual(r.tokens);
  });

  it('an aborted signal stops the answer with CancelledError at the next token', async () => {
    const controller = new AbortController();
    const events: ProgressEvent[] = [];
    const texts: string[] = [];
    await expect(reason({
      model: loaded, prompt: 'Hi', maxNewTokens: 20, temperature: 1, seed: 2, stopTokenIds: [], signal: controller.signal, onText: (s) => void texts.push(s),
      onProgress: (e) => {
        events.push(e);
        if (e.stage === 'generate' && e.done === 2) controller.abort(new CancelledError('enough'));
      },
    })).rejects.toThrow(CancelledError);
    expect(events.filter((e) => e.stage === 'generate').map((e) => e.done)).toEqual([1, 2]);
    // and an abort before the call runs nothing
    await expect(reason({ model: loaded, prompt: 'Hi', signal: AbortSignal.abort(new CancelledError('before')) })).rejects.toThrow('before');
  });

  it('loads a folder given by name for the call (the same answer as the loaded model)', async () => {
    const img = await readImageFile(image);
    const a = await reason({ model: folder, backend: cpu, prompt: 'Hi', images: [img], maxNewTokens: 4, temperature: 0 });
    const b = await reason({ model: loaded, prompt: 'Hi', images: [img], maxNewTokens: 4, temperature: 0 });
    expect(a.tokens).toEqual(b.tokens);
  });

  it('video: frames sampled at the requested fps, second_per_grid_t = 2 / fps, grid (t/2, h, w)', async () => {
    const sv = await readVideoFile(clip, 4);
    expect(sv.totalFrames).toBe(9);
    expect(sv.sourceFps).toBe(8);
    expect(sv.indices).toEqual([0, 3, 5, 8]);
    expect(sv.fps).toBeCloseTo((4 / 9) * 8, 10);
    // the same sampling from a clip in memory
    const fromData = await sampleVideo(sliceFrames(await readY4m(clip), 0, 9), 4);
    expect(fromData.indices).toEqual(sv.indices);
    expect(fromData.video.data).toEqual(sv.video.data);
    const r = await reason({ model: loaded, prompt: 'Describe.', videos: [sv], maxNewTokens: 3, temperature: 0 });
    expect(r.videoGridThw).toEqual([[2, 4, 4]]);
    expect(r.secondPerGridTs[0]).toBeCloseTo(2 / sv.fps, 10);
    expect(r.visionTokens).toBe(8);
    expect(r.tokens.length).toBeLessThanOrEqual(3);
  });

  it('an image and a video in one prompt: greedy decoding equals generate() on the processor outputs (second_per_grid_ts included)', async () => {
    const { model, assets } = loaded;
    const img = await readImageFile(image);
    const sv = await readVideoFile(clip, 4);
    const r = await reason({ model: loaded, prompt: 'Compare.', images: [img], videos: [sv], maxNewTokens: 12, temperature: 0, repetitionPenalty: 1, stopTokenIds: [] });
    expect(r.tokens).toHaveLength(12);
    expect(r.imageGridThw).toEqual([[1, 4, 6]]);
    expect(r.videoGridThw).toEqual([[2, 4, 4]]);
    expect(r.visionTokens).toBe(6 + 8);
    const ip = assets.imageProcessor;
    const images = ip.preprocessImages([img]);
    const videos = ip.preprocessVideos([sv.video]);
    const enc = assets.text.encode([r.promptText], { imageGridThw: images.gridThw, videoGridThw: videos.gridThw });
    expect(enc.length).toBe(r.promptTokens);
    const pv = F.fromArray(cpu, images.pixelValues, images.shape);
    const pvv = F.fromArray(cpu, videos.pixelValues, videos.shape);
    const inputs = { inputIds: { data: enc.inputIds, shape: [1, enc.length] }, pixelValues: pv, imageGridThw: images.gridThw, pixelValuesVideos: pvv, videoGridThw: videos.gridThw };
    const ref = await generate(model, { ...inputs, secondPerGridTs: [2 / sv.fps] }, { maxNewTokens: 12, stopTokenIds: [] });
    // upstream's default of 1.0 s per step when second_per_grid_ts is left out
    const noSeconds = await generate(model, inputs, { maxNewTokens: 1, stopTokenIds: [], returnStepLogits: true });
    const withSeconds = await generate(model, { ...inputs, secondPerGridTs: [2 / sv.fps] }, { maxNewTokens: 1, stopTokenIds: [], returnStepLogits: true });
    pv.dispose();
    pvv.dispose();
    expect(r.tokens).toEqual(ref.generated[0]);
    expect(Array.from(noSeconds.stepLogits!)).not.toEqual(Array.from(withSeconds.stepLogits!));
  });

  it('an answer made of <|image_pad|> / <|video_pad|> tokens goes on (they are plain tokens after the prefill, as upstream)', async () => {
    // lm_head rows 292 / 293 = -/+ 1000 x channel 0: every step picks one of the two placeholders
    const dir = writeReasonFolder(nodePath.join(tmp, 'placeholders'));
    const f = await openSafetensors(nodePath.join(dir, 'model.safetensors'));
    const tensors: Record<string, TensorToWrite> = {};
    for (const n of f.names) {
      const t = await f.read(n);
      tensors[n] = { dtype: t.dtype, shape: t.shape, raw: t.raw };
    }
    await f.close();
    const head = tensors['lm_head.weight'];
    const [V, D] = head.shape;
    const w = Float32Array.from(head.raw as Float32Array);
    w.fill(0, 292 * D, 294 * D);
    w[292 * D] = -1000;
    w[293 * D] = 1000;
    expect(V).toBe(300);
    await writeSafetensors(nodePath.join(dir, 'model.safetensors'), { ...tensors, 'lm_head.weight': { ...head, raw: w } });
    const m = await loadReasonModel(dir, cpu);
    try {
      const sv = await readVideoFile(clip, 4);
      const r = await reason({ model: m, prompt: 'Describe.', videos: [sv], maxNewTokens: 5, temperature: 0, repetitionPenalty: 1, stopTokenIds: [] });
      expect(r.tokens).toHaveLength(5);
      expect(r.tokens.every((t) => t === 292 || t === 293)).toBe(true);
      expect(r.text).toBe(''); // special tokens are not printed
    } finally {
      m.model.dispose();
    }
  });

  it('sampling is reproducible from the seed', async () => {
    const img = await readImageFile(image);
    const a = await reason({ model: loaded, prompt: 'Hi', images: [img], maxNewTokens: 6, seed: 7, temperature: 1.2, topP: 0.9 });
    const b = await reason({ model: loaded, prompt: 'Hi', images: [img], maxNewTokens: 6, seed: 7, temperature: 1.2, topP: 0.9 });
    expect(a.tokens).toEqual(b.tokens);
  });

  it('stops at a stop token (the stop token is not printed)', async () => {
    const img = await readImageFile(image);
    const first = (await reason({ model: loaded, prompt: 'Hi', images: [img], maxNewTokens: 1, temperature: 0 })).tokens[0];
    const r = await reason({ model: loaded, prompt: 'Hi', images: [img], maxNewTokens: 5, temperature: 0, stopTokenIds: [first] });
    expect(r.tokens).toEqual([first]);
    expect(r.finishReason).toBe('stop');
  });

  it('bad sampling settings are named', async () => {
    await expect(reason({ model: loaded, prompt: 'x', topP: 0 })).rejects.toThrow(new ReasonInputError('topP: must be in (0, 1]; got 0'));
    await expect(reason({ model: loaded, prompt: 'x', maxNewTokens: 0 })).rejects.toThrow(ReasonInputError);
  });
});

describe('weights the backend cannot hold', () => {
  it('are refused before loading, naming them', async () => {
    const tiny = Object.create(cpu, { limits: { value: { maxBufferBytes: 40_000, maxBindingBytes: 40_000 } } }) as Backend;
    await expect(loadReasonModel(loaded.assets, tiny)).rejects.toThrow(/too large for the backend: .*model\.embed_tokens\.weight: 0 MiB, more than the 0 MiB/);
  });
});

describe('inputs and folders', () => {
  it('missing folders and files, unsupported images, short videos, tiny images, a foreign tokenizer', async () => {
    await expect(loadReasonAssets(nodePath.join(tmp, 'nope'))).rejects.toThrow(/^model folder .*nope: no such directory$/);
    const partial = writeReasonFolder(nodePath.join(tmp, 'partial'), { skip: ['tokenizer.json', 'chat_template.jinja', 'model.safetensors'] });
    await expect(loadReasonAssets(partial)).rejects.toThrow(/partial: the model folder lacks the weights .*, tokenizer\.json, a chat template/);

    const jpeg = nodePath.join(tmp, 'photo.png');
    writeFileSync(jpeg, Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1]));
    await expect(readImageFile(jpeg)).rejects.toThrow(/^image .*photo\.png: a JPEG file; only PNG images are supported/);
    await expect(readImageFile(nodePath.join(tmp, 'absent.png'))).rejects.toThrow(/^image .*absent\.png: cannot open \(no such file\)/);

    const oneFrame = nodePath.join(tmp, 'clip1.y4m');
    await writeY4m(oneFrame, sliceFrames(await readY4m(SAMPLE), 0, 1));
    await expect(readVideoFile(oneFrame, 4)).rejects.toThrow(/^video .*clip1\.y4m: 1 frame; the frame sampling needs at least 2/);
    await expect(readVideoFile(image, 4)).rejects.toThrow(/a single PNG image \(pass it as an image\)/);

    expect(() => processedSize(loaded.assets, 'image small.png', 20, 20)).toThrow(/^image small\.png: 20x20 cannot be processed .*must be larger than factor:28/);
    const small = { data: new Uint8Array(20 * 20 * 3), height: 20, width: 20 };
    await expect(reason({ model: loaded, prompt: 'x', images: [small] })).rejects.toThrow(ReasonInputError);

    const foreign = writeReasonFolder(nodePath.join(tmp, 'foreign'), {
      tokenizer: JSON.parse(readFileSync(nodePath.join(VLM_FIXTURES, 'bpe_tokenize', 'tokenizer.json'), 'utf8')),
    });
    await expect(loadReasonAssets(foreign)).rejects.toThrow(/<\|vision_start\|> is id 1465 but config\.json expects 290; the tokenizer does not belong to this model/);
  });
});

describe('TextStreamer', () => {
  it('holds back split UTF-8 characters until complete; the pieces join to decode()', () => {
    const tok = loaded.assets.tokenizer;
    const text = 'héllo 漢字 😀 ok';
    const ids = tok.encode(text);
    // the tiny vocabulary has no multi-byte merges: every non-ASCII character spans several tokens
    expect(ids.length).toBeGreaterThan(12);
    const s = new TextStreamer(tok);
    const pieces = ids.map((id) => s.push(id));
    pieces.push(s.flush());
    expect(pieces.join('')).toBe(text);
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
    // the emoji's first three bytes print nothing, the fourth prints the whole character
    const emoji = tok.encode('😀');
    const e = new TextStreamer(tok);
    expect(emoji.map((id) => e.push(id))).toEqual(['', '', '', '😀']);
    // special tokens are left out, non-special added tokens kept; invalid bytes become U+FFFD as in decode()
    const mixed = [281, ...tok.encode('a<tool_call>b'), 200, 65];
    const m = new TextStreamer(tok);
    expect(mixed.map((id) => m.push(id)).join('') + m.flush()).toBe(tok.decode(mixed, { skipSpecialTokens: true }));
  });
});

describe('prompt', () => {
  it('vision items come before the text; a system message replaces the default one', () => {
    const p = buildPrompt(loaded.assets, 'Q?', { images: 1, videos: 1 }, 'Be brief.');
    expect(p).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|video_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n');
  });
});
