// The reason pipeline and command on the cpu backend: a tiny random-weight Qwen2.5-VL folder (the
// lm_forward fixture's config.json + model.safetensors, a byte-level tokenizer cut from the
// bpe_tokenize fixture with its added tokens renumbered to the tiny config's special ids, the
// fixture chat template, a preprocessor_config.json with small pixel limits), run end to end on a
// PNG image and on frames of sample_0.y4m; the decode loop against generate(), the streamed text
// against the tokenizer's decode, stop tokens, and the typed errors.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { cpu } from '../../src/engine/cpu/backend.js';
import * as F from '../../src/engine/ops.js';
import { ByteLevelBpeTokenizer } from '../../src/text/bpe.js';
import { encodePng } from '../../src/io/png.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { generate } from '../../src/models/vlm/generate.js';
import type { Qwen2_5_VLForConditionalGeneration } from '../../src/models/vlm/language.js';
import {
  buildPrompt, checkDeviceLimits, loadReasonAssets, loadReasonModel, readImageFile, readVideoFile, reason, ReasonInputError, type ReasonAssets, TextStreamer,
} from '../../src/pipelines/reason.js';

const FIX = nodePath.resolve(import.meta.dirname, '../fixtures/vlm');
const SAMPLE = nodePath.resolve(import.meta.dirname, '../../weights/samples/sample_0.y4m');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-reason-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/**
 * The bpe_tokenize fixture's tokenizer cut to the tiny model's 300 ids: the 256 byte symbols and
 * the first 24 merges (ids < 280), then the added tokens at the tiny config's ids (endoftext =
 * bos 280, im_end = eos 281, ..., vision_start 290, vision_end 291, image 292, video 293) and
 * non-special ones up to 299.
 */
function tinyTokenizerJson(): Record<string, unknown> {
  const t = JSON.parse(readFileSync(nodePath.join(FIX, 'bpe_tokenize', 'tokenizer.json'), 'utf8'));
  const vocab: Record<string, number> = {};
  for (const [k, id] of Object.entries(t.model.vocab as Record<string, number>)) if (id < 280) vocab[k] = id;
  const merges = (t.model.merges as string[]).filter((m) => {
    const [a, b] = m.split(' ');
    return vocab[a + b] !== undefined;
  });
  const names = [
    '<|endoftext|>', '<|im_end|>', '<|im_start|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>', '<|box_end|>', '<|quad_start|>',
    '<|quad_end|>', '<|vision_pad|>', '<|vision_start|>', '<|vision_end|>', '<|image_pad|>', '<|video_pad|>',
    '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>',
  ];
  const added = names.map((content, i) => ({
    id: 280 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: i < 14,
  }));
  return { ...t, added_tokens: added, model: { ...t.model, vocab, merges } };
}

function writeFolder(dir: string, over: { tokenizer?: unknown; generation?: unknown; skip?: string[] } = {}): string {
  mkdirSync(dir, { recursive: true });
  const skip = new Set(over.skip ?? []);
  const put = (name: string, fn: () => void) => {
    if (!skip.has(name)) fn();
  };
  put('config.json', () => copyFileSync(nodePath.join(FIX, 'lm_forward', 'config.json'), nodePath.join(dir, 'config.json')));
  put('model.safetensors', () => copyFileSync(nodePath.join(FIX, 'lm_forward', 'model.safetensors'), nodePath.join(dir, 'model.safetensors')));
  put('tokenizer.json', () => writeFileSync(nodePath.join(dir, 'tokenizer.json'), JSON.stringify(over.tokenizer ?? tinyTokenizerJson())));
  put('chat_template.jinja', () => copyFileSync(nodePath.join(FIX, 'chat_template', 'chat_template.jinja'), nodePath.join(dir, 'chat_template.jinja')));
  put('preprocessor_config.json', () => writeFileSync(nodePath.join(dir, 'preprocessor_config.json'), JSON.stringify({
    image_processor_type: 'Qwen2VLImageProcessor', min_pixels: 56 * 56, max_pixels: 56 * 84, patch_size: 14, temporal_patch_size: 2, merge_size: 2,
    image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711], do_resize: true, resample: 3,
  })));
  if (over.generation) writeFileSync(nodePath.join(dir, 'generation_config.json'), JSON.stringify(over.generation));
  return dir;
}

/** Run the CLI in-process, capturing stdout (each write kept) and stderr. */
async function run(...argv: string[]): Promise<{ rc: number; out: string; writes: string[]; err: string }> {
  const writes: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void writes.push(a.join(' ') + '\n'));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (writes.push(String(s)), true));
  const ew = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  try {
    const rc = await main(argv);
    return { rc, out: writes.join(''), writes, err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
    out.mockRestore();
    ew.mockRestore();
  }
}

let folder: string;
let image: string;
let clip: string;
let oneFrame: string;
let assets: ReasonAssets;
let model: Qwen2_5_VLForConditionalGeneration;
beforeAll(async () => {
  folder = writeFolder(nodePath.join(tmp, 'tiny'));
  // an 84x56 gradient image (56x84 after smart_resize: a 4x6 patch grid, 6 tokens)
  const w = 84;
  const h = 56;
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([(x * 3) & 255, (y * 4) & 255, (x * y) & 255], (y * w + x) * 3);
  image = nodePath.join(tmp, 'img.png');
  writeFileSync(image, encodePng({ width: w, height: h, data: px }));
  const sample = await readY4m(SAMPLE); // 64x64, 8 fps
  clip = nodePath.join(tmp, 'clip9.y4m');
  await writeY4m(clip, sliceFrames(sample, 0, 9));
  oneFrame = nodePath.join(tmp, 'clip1.y4m');
  await writeY4m(oneFrame, sliceFrames(sample, 0, 1));
  assets = await loadReasonAssets(folder);
  model = await loadReasonModel(assets, cpu);
}, 60_000);
afterAll(() => model?.dispose());

describe('reason pipeline', () => {
  it('the tiny folder: special ids match the config, stop tokens are eos + <|im_end|> + <|endoftext|>', () => {
    expect(assets.tokenizer.tokenToId('<|image_pad|>')).toBe(292);
    expect(assets.stopTokenIds.sort()).toEqual([280, 281]);
    expect(assets.notes).toEqual([]);
  });

  it('greedy decoding equals generate() on the same image prompt; the streamed text is the decode of the tokens', async () => {
    const img = await readImageFile(image);
    const pieces: string[] = [];
    const r = await reason(model, assets, { prompt: 'What is in the picture?', images: [img], maxNewTokens: 8, temperature: 0, repetitionPenalty: 1, onText: (s) => void pieces.push(s) });
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
    expect(pieces.join('')).toBe(r.text);
    expect(r.text).toBe(assets.tokenizer.decode(r.tokens, { skipSpecialTokens: true }));
    expect(r.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(r.seconds.vision).toBeGreaterThanOrEqual(0);
  });

  it('video: frames sampled at the requested fps, second_per_grid_t = 2 / fps, grid (t/2, h, w)', async () => {
    const sv = await readVideoFile(clip, 4);
    expect(sv.totalFrames).toBe(9);
    expect(sv.sourceFps).toBe(8);
    expect(sv.indices).toEqual([0, 3, 5, 8]);
    expect(sv.fps).toBeCloseTo((4 / 9) * 8, 10);
    const r = await reason(model, assets, { prompt: 'Describe.', videos: [sv], maxNewTokens: 3, temperature: 0 });
    expect(r.videoGridThw).toEqual([[2, 4, 4]]);
    expect(r.secondPerGridTs[0]).toBeCloseTo(2 / sv.fps, 10);
    expect(r.visionTokens).toBe(8);
    expect(r.tokens.length).toBeLessThanOrEqual(3);
  });

  it('sampling is reproducible from the seed', async () => {
    const img = await readImageFile(image);
    const a = await reason(model, assets, { prompt: 'Hi', images: [img], maxNewTokens: 6, seed: 7, temperature: 1.2, topP: 0.9 });
    const b = await reason(model, assets, { prompt: 'Hi', images: [img], maxNewTokens: 6, seed: 7, temperature: 1.2, topP: 0.9 });
    expect(a.tokens).toEqual(b.tokens);
  });

  it('stops at a stop token (the stop token is not printed)', async () => {
    const img = await readImageFile(image);
    const first = (await reason(model, assets, { prompt: 'Hi', images: [img], maxNewTokens: 1, temperature: 0 })).tokens[0];
    const r = await reason(model, assets, { prompt: 'Hi', images: [img], maxNewTokens: 5, temperature: 0, stopTokenIds: [first] });
    expect(r.tokens).toEqual([first]);
    expect(r.finishReason).toBe('stop');
  });
});

describe('device limits', () => {
  it('weights larger than the adapter allows per buffer are refused before loading, naming them', async () => {
    const fake = { name: 'webgpu', adapter: 'tiny adapter', ctx: { device: { limits: { maxStorageBufferBindingSize: 40_000, maxBufferSize: 1 << 30 } } } };
    await expect(checkDeviceLimits(folder, fake as unknown as typeof cpu)).rejects.toThrow(
      /tiny adapter\) takes buffers of at most 0 MiB; these weights are larger: .*model\.embed_tokens\.weight \[300, 64\] F32 = 0 MiB/,
    );
    await expect(checkDeviceLimits(folder, cpu)).resolves.toBeUndefined();
  });
});

describe('TextStreamer', () => {
  it('holds back split UTF-8 characters until complete; the pieces join to decode()', () => {
    const tok = assets.tokenizer;
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

describe('reason command', () => {
  it('image: streams the answer to stdout, prints vision / prefill / decode speeds', async () => {
    const r = await run('reason', '--model', folder, '--image', image, '--prompt', 'What is in the picture?', '--max-new-tokens', '8', '--temperature', '0',
      '--repetition-penalty', '1', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    const ref = await reason(model, assets, {
      prompt: 'What is in the picture?', images: [await readImageFile(image)], maxNewTokens: 8, temperature: 0, repetitionPenalty: 1,
    });
    expect(r.out).toBe(ref.text + '\n');
    // streamed: one write per token that completed text, then the final newline
    expect(r.writes.length).toBeGreaterThan(1);
    expect(r.err).toMatch(/image .*img\.png: 84x56 -> 84x56/);
    expect(r.err).toMatch(/vision: 24 patches \(grid 1x4x6\) -> 6 tokens in [\d.]+ s \([\d.]+ tokens\/s\)/);
    expect(r.err).toMatch(new RegExp(`prefill: ${ref.promptTokens} tokens in [\\d.]+ s \\([\\d.]+ tokens/s\\)`));
    expect(r.err).toMatch(/decode: \d+ tokens \((stopped at a stop token|max new tokens reached)\) in [\d.]+ s \(([\d.]+|n\/a) tokens\/s\)/);
  });

  it('video: frames sampled at --fps and resized by the processor (64x64 -> 56x56)', async () => {
    const r = await run('reason', '--model', folder, '--video', clip, '--fps', '4', '--prompt', 'What happens?', '--max-new-tokens', '4', '--backend', 'cpu', '--seed', '1');
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/video .*clip9\.y4m: 9 frames 64x64 at 8 fps -> 4 frames at 3\.556 fps, 56x56/);
    expect(r.err).toMatch(/vision: 32 patches \(grid 2x4x4\) -> 8 tokens/);
    expect(r.err).toMatch(/prefill: \d+ tokens in .*tokens\/s/);
    expect(r.err).toMatch(/decode: \d+ tokens .*tokens\/s/);
  });

  it('stops on an eos id from generation_config.json', async () => {
    const first = (await reason(model, assets, { prompt: 'Hi', images: [await readImageFile(image)], maxNewTokens: 1, temperature: 0, repetitionPenalty: 1 })).tokens[0];
    const dir = writeFolder(nodePath.join(tmp, 'tiny-eos'), { generation: { eos_token_id: [281, first] } });
    const r = await run('reason', '--model', dir, '--image', image, '--prompt', 'Hi', '--max-new-tokens', '6', '--temperature', '0', '--repetition-penalty', '1', '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toMatch(/decode: 1 tokens \(stopped at a stop token\)/);
  });

  it('errors: missing files, unsupported images, short videos, tiny images, a foreign tokenizer, bad options', async () => {
    const e1 = await run('reason', '--model', nodePath.join(tmp, 'nope'), '--prompt', 'x', '--backend', 'cpu');
    expect(e1.rc).toBe(1);
    expect(e1.err).toMatch(/ReasonInputError: --model .*nope: no such directory/);

    const partial = writeFolder(nodePath.join(tmp, 'partial'), { skip: ['tokenizer.json', 'chat_template.jinja', 'model.safetensors'] });
    const e2 = await run('reason', '--model', partial, '--prompt', 'x', '--backend', 'cpu');
    expect(e2.rc).toBe(1);
    expect(e2.err).toMatch(/is missing the weights .*, tokenizer\.json, a chat template/);

    const jpeg = nodePath.join(tmp, 'photo.png');
    writeFileSync(jpeg, Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1]));
    const e3 = await run('reason', '--model', folder, '--image', jpeg, '--prompt', 'x', '--backend', 'cpu');
    expect(e3.rc).toBe(1);
    expect(e3.err).toMatch(/--image .*photo\.png: a JPEG file; only PNG images are supported/);

    const e4 = await run('reason', '--model', folder, '--video', oneFrame, '--prompt', 'x', '--backend', 'cpu');
    expect(e4.rc).toBe(1);
    expect(e4.err).toMatch(/--video .*clip1\.y4m: 1 frame; the frame sampling needs at least 2/);

    const e5 = await run('reason', '--model', folder, '--video', image, '--prompt', 'x', '--backend', 'cpu');
    expect(e5.rc).toBe(1);
    expect(e5.err).toMatch(/a single PNG image \(pass it with --image\)/);

    const small = nodePath.join(tmp, 'small.png');
    writeFileSync(small, encodePng({ width: 20, height: 20, data: new Uint8Array(20 * 20 * 3) }));
    const e6 = await run('reason', '--model', folder, '--image', small, '--prompt', 'x', '--backend', 'cpu');
    expect(e6.rc).toBe(1);
    expect(e6.err).toMatch(/small\.png: 20x20 cannot be processed .*must be larger than factor:28/);

    const foreign = writeFolder(nodePath.join(tmp, 'foreign'), { tokenizer: JSON.parse(readFileSync(nodePath.join(FIX, 'bpe_tokenize', 'tokenizer.json'), 'utf8')) });
    const e7 = await run('reason', '--model', foreign, '--image', image, '--prompt', 'x', '--backend', 'cpu');
    expect(e7.rc).toBe(1);
    expect(e7.err).toMatch(/<\|vision_start\|> is id 1465 but config\.json expects 290; the tokenizer does not belong to this model/);

    const e8 = await run('reason', '--model', folder, '--image', image, '--backend', 'cpu');
    expect(e8.rc).toBe(2);
    expect(e8.err).toMatch(/missing --prompt/);

    const e9 = await run('reason', '--model', folder, '--image', image, '--prompt', 'x', '--fps', '4', '--backend', 'cpu');
    expect(e9.rc).toBe(1);
    expect(e9.err).toMatch(/--fps is the video sampling rate/);

    const e10 = await run('reason', '--model', folder, '--image', image, '--prompt', 'x', '--top-p', '0', '--backend', 'cpu');
    expect(e10.rc).toBe(1);
    expect(e10.err).toMatch(/--top-p must be a number in \(0, 1\]/);

    const e11 = await run('reason', '--model', folder, '--image', nodePath.join(tmp, 'absent.png'), '--prompt', 'x', '--backend', 'cpu');
    expect(e11.rc).toBe(1);
    expect(e11.err).toMatch(/--image .*absent\.png: cannot open \(no such file\)/);
  });

  it('--help prints the usage', async () => {
    const r = await run('reason', '--help');
    expect(r.rc).toBe(0);
    expect(r.out).toMatch(/usage: cosmos-ts reason --model/);
  });
});

describe('prompt', () => {
  it('vision items come before the text; a system message replaces the default one', () => {
    const p = buildPrompt(assets, 'Q?', { images: 1, videos: 1 }, 'Be brief.');
    expect(p).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|video_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n');
    expect(() => { throw new ReasonInputError('x'); }).toThrow(ReasonInputError);
  });
});
