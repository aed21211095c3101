// The Cosmos-Reason1 (Qwen2.5-VL) reasoning pipeline: a question about an image or a video,
// answered with streamed text. The steps, as transformers + qwen-vl-utils run them:
//
//   1. inputs: PNG images (uint8 RGB); videos (.y4m or a folder of PNG frames) sampled at
//      `fps` frames per second with qwen-vl-utils' smart_nframes (frame count a multiple of
//      temporal_patch_size, at least 4 where the clip has them), only the sampled frames kept;
//   2. Qwen2VLImageProcessor (preprocessor_config.json): smart_resize, Pillow bicubic resize,
//      rescale / normalise, patches; second_per_grid_t = temporal_patch_size / sampled fps;
//   3. the checkpoint's chat template with one `<|image_pad|>` / `<|video_pad|>` per item
//      (vision first, then the prompt text, as Qwen2.5-VL's examples), the generation prompt
//      appended; each pad expanded to t*h*w/merge^2 copies; byte-level BPE (tokenizer.json);
//   4. the vision tower on all patches, scattered into the prompt embeddings; get_rope_index;
//      one prefill over the prompt into a KV cache holding prompt + max_new_tokens rows;
//   5. decode one token per step (position n + rope_delta on the three M-RoPE axes), sampled
//      as transformers orders its processors (repetition penalty, temperature, top-k, top-p;
//      temperature 0 = greedy), until a stop token (config / generation_config eos, <|im_end|>,
//      <|endoftext|>) or max_new_tokens; every token's text is streamed as soon as its bytes
//      complete a UTF-8 sequence (TextStreamer), special tokens left out.
//
// Timings are kept per stage (vision tower, prefill, decode) with a device sync at each edge,
// so the tokens/s figures mean the same on the cpu and webgpu backends.
import { existsSync, promises as fsp, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import type { Backend } from '../engine/backend.js';
import * as F from '../engine/ops.js';
import { type Tensor, scope } from '../engine/tensor.js';
import { ByteLevelBpeTokenizer, UNICODE_TO_BYTE } from '../text/bpe.js';
import { openVideoSource } from '../io/open-video.js';
import { decodePng } from '../io/png.js';
import { openCheckpoint } from '../io/safetensors.js';
import { fpsValue, type Rational } from '../io/video.js';
import { type ChatContentItem, type ChatMessage, loadChatTemplate, padIdOf, QwenVLTextProcessor } from '../text/chat.js';
import { processLogits, sampleToken, VlmKVCache } from '../models/vlm/generate.js';
import { type ForwardInputs, parseVlmConfig, Qwen2_5_VLForConditionalGeneration, type VlmConfig } from '../models/vlm/language.js';
import {
  frameToU8, type ImageU8, type PixelBatch, PreprocessError, type PreprocessOptions, Qwen2VLImageProcessor, sampleVideoFrames,
  secondPerGridT, SmartResizeError, type VideoU8,
} from '../models/vlm/preprocess.js';
import type { Grid } from '../models/vlm/rope-index.js';
import { UserError } from '../engine/errors.js';

/** A problem with the user's files or arguments (reported as one line by the CLI). */
export class ReasonInputError extends UserError {
  override name = 'ReasonInputError';
}

// ------------------------------------------------------------------ the model folder

/** Defaults of the Cosmos-Reason1 recipe (vLLM SamplingParams in the model card; video fps 4). */
export const REASON_DEFAULTS = Object.freeze({
  temperature: 0.6,
  topP: 0.95,
  repetitionPenalty: 1.05,
  maxNewTokens: 4096,
  fps: 4,
});

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ReasonInputError(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ReasonInputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

function hasTemplate(dir: string): boolean {
  if (existsSync(join(dir, 'chat_template.jinja')) || existsSync(join(dir, 'chat_template.json'))) return true;
  const tc = join(dir, 'tokenizer_config.json');
  if (!existsSync(tc)) return false;
  try {
    return JSON.parse(readFileSync(tc, 'utf8')).chat_template !== undefined;
  } catch {
    return false;
  }
}

/**
 * Check that a model folder has what `reason` reads; one error naming everything missing.
 * preprocessor_config.json is optional (the processor's defaults are used without it).
 */
export function checkReasonFolder(dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new ReasonInputError(`--model ${dir}: no such directory`);
  }
  if (!st.isDirectory()) throw new ReasonInputError(`--model ${dir}: not a directory (expected a model folder)`);
  const names = new Set(readdirSafe(dir));
  const missing: string[] = [];
  if (!names.has('config.json')) missing.push('config.json');
  if (![...names].some((n) => n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json'))) {
    missing.push('the weights (*.safetensors, or shards with a *.safetensors.index.json)');
  }
  if (!names.has('tokenizer.json')) missing.push('tokenizer.json');
  if (!hasTemplate(dir)) missing.push('a chat template (chat_template.jinja, chat_template.json or tokenizer_config.json "chat_template")');
  if (missing.length) throw new ReasonInputError(`--model ${dir} is missing ${missing.join(', ')}`);
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    throw new ReasonInputError(`--model ${dir}: cannot list (${(e as Error).message})`);
  }
}

/** Everything of a model folder except the weights. */
export interface ReasonAssets {
  dir: string;
  configJson: Record<string, unknown>;
  config: VlmConfig;
  tokenizer: ByteLevelBpeTokenizer;
  text: QwenVLTextProcessor;
  imageProcessor: Qwen2VLImageProcessor;
  /** token ids that end the answer */
  stopTokenIds: number[];
  /** remarks for the user (defaults taken, ...) */
  notes: string[];
}

/**
 * Read config.json, tokenizer.json, the chat template, preprocessor_config.json and
 * generation_config.json, and check that the tokenizer's special tokens are the ids the config
 * gives (a tokenizer from another checkpoint is a clear error, not garbage).
 */
export async function loadReasonAssets(dir: string): Promise<ReasonAssets> {
  checkReasonFolder(dir);
  const notes: string[] = [];
  const configJson = readJson(join(dir, 'config.json'));
  const config = parseVlmConfig(configJson);
  const tokenizer = await ByteLevelBpeTokenizer.load(join(dir, 'tokenizer.json'));
  const tcPath = join(dir, 'tokenizer_config.json');
  const tokenizerConfig = existsSync(tcPath) ? readJson(tcPath) : null;
  const imageProcessorPath = join(dir, 'preprocessor_config.json');
  let imageProcessor: Qwen2VLImageProcessor;
  if (existsSync(imageProcessorPath)) {
    const pj = readJson(imageProcessorPath);
    const cls = pj.image_processor_type;
    if (typeof cls === 'string' && !/Qwen2(_5)?VL/i.test(cls)) {
      throw new ReasonInputError(`${imageProcessorPath}: image_processor_type ${JSON.stringify(cls)} is not a Qwen2-VL image processor`);
    }
    imageProcessor = Qwen2VLImageProcessor.fromJson(pj);
  } else {
    imageProcessor = new Qwen2VLImageProcessor();
    notes.push('no preprocessor_config.json: using the Qwen2VLImageProcessor defaults');
  }
  const ip = imageProcessor.config;
  const v = config.vision;
  if (ip.patchSize !== v.patchSize || ip.temporalPatchSize !== v.temporalPatchSize || ip.mergeSize !== v.spatialMergeSize) {
    throw new ReasonInputError(
      `${dir}: preprocessor_config.json (patch ${ip.patchSize}, temporal ${ip.temporalPatchSize}, merge ${ip.mergeSize}) does not match ` +
        `config.json vision_config (patch ${v.patchSize}, temporal ${v.temporalPatchSize}, merge ${v.spatialMergeSize})`,
    );
  }
  // the special tokens the prompt uses must be the ids the model was built with
  const expect: [string, number][] = [
    ['<|vision_start|>', config.visionStartTokenId],
    ['<|vision_end|>', config.visionEndTokenId],
    ['<|image_pad|>', config.imageTokenId],
    ['<|video_pad|>', config.videoTokenId],
  ];
  for (const [tok, id] of expect) {
    const got = tokenizer.tokenToId(tok);
    if (got !== id) {
      throw new ReasonInputError(
        `${join(dir, 'tokenizer.json')}: ${tok} is ${got === undefined ? 'not in the tokenizer' : `id ${got}`} but config.json expects ${id}; the tokenizer does not belong to this model`,
      );
    }
  }
  for (const tok of ['<|im_start|>', '<|im_end|>']) {
    const id = tokenizer.tokenToId(tok);
    if (id === undefined) throw new ReasonInputError(`${join(dir, 'tokenizer.json')}: ${tok} (chat format) is not in the tokenizer`);
    if (id >= config.text.vocabSize) throw new ReasonInputError(`${join(dir, 'tokenizer.json')}: ${tok} is id ${id}, outside the model's vocabulary (${config.text.vocabSize})`);
  }
  let padId: number;
  try {
    padId = padIdOf(tokenizer, tokenizerConfig);
  } catch {
    padId = config.padTokenId ?? tokenizer.tokenToId('<|im_end|>')!;
  }
  const text = new QwenVLTextProcessor(tokenizer, await loadChatTemplate(dir), padId, ip.mergeSize);

  const stop = new Set<number>(config.eosTokenIds);
  const gcPath = join(dir, 'generation_config.json');
  if (existsSync(gcPath)) {
    const eos = readJson(gcPath).eos_token_id;
    for (const e of Array.isArray(eos) ? eos : eos === undefined || eos === null ? [] : [eos]) {
      if (typeof e === 'number' && Number.isInteger(e)) stop.add(e);
    }
  }
  for (const tok of ['<|im_end|>', '<|endoftext|>']) {
    const id = tokenizer.tokenToId(tok);
    if (id !== undefined) stop.add(id);
  }
  return { dir, configJson, config, tokenizer, text, imageProcessor, stopTokenIds: [...stop], notes };
}

/** min(maxStorageBufferBindingSize, maxBufferSize) of a WebGPU backend; Infinity elsewhere. */
export function deviceBufferLimit(backend: Backend): number {
  const lim = (backend as unknown as { ctx?: { device?: { limits?: { maxStorageBufferBindingSize: number; maxBufferSize: number } } } }).ctx?.device?.limits;
  return lim ? Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize) : Infinity;
}

/**
 * Refuse, before anything is uploaded, weights that are larger than one buffer of the adapter
 * may be (each tensor keeps its checkpoint dtype on the device).
 */
export async function checkDeviceLimits(dir: string, backend: Backend): Promise<void> {
  const max = deviceBufferLimit(backend);
  if (!Number.isFinite(max)) return;
  const ckpt = await openCheckpoint(dir);
  const big: string[] = [];
  try {
    for (const e of ckpt.entries()) {
      if (e.byteLength > max) big.push(`${e.name} [${e.shape.join(', ')}] ${e.dtype} = ${(e.byteLength / 2 ** 20).toFixed(0)} MiB`);
    }
  } finally {
    await ckpt.close();
  }
  if (big.length) {
    throw new ReasonInputError(
      `the WebGPU adapter (${backend.adapter}) takes buffers of at most ${(max / 2 ** 20).toFixed(0)} MiB; these weights are larger: ` +
        `${big.slice(0, 4).join('; ')}${big.length > 4 ? `; and ${big.length - 4} more` : ''} (use --backend cpu, or an adapter with larger limits)`,
    );
  }
}

/** The weights of the folder on `backend` (dtype kept); sizes the adapter refuses are a clear error first. */
export async function loadReasonModel(assets: ReasonAssets, backend: Backend): Promise<Qwen2_5_VLForConditionalGeneration> {
  await checkDeviceLimits(assets.dir, backend);
  return Qwen2_5_VLForConditionalGeneration.fromPretrained(assets.dir, backend);
}

// ------------------------------------------------------------------ inputs

function sniffFormat(b: Uint8Array): string | null {
  const at = (sig: number[], o = 0) => sig.every((x, i) => b[o + i] === x);
  if (at([0x89, 0x50, 0x4e, 0x47])) return 'PNG';
  if (at([0xff, 0xd8, 0xff])) return 'JPEG';
  if (at([0x47, 0x49, 0x46, 0x38])) return 'GIF';
  if (at([0x52, 0x49, 0x46, 0x46]) && at([0x57, 0x45, 0x42, 0x50], 8)) return 'WebP';
  if (at([0x42, 0x4d])) return 'BMP';
  if (at([0x49, 0x49, 0x2a, 0x00]) || at([0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  if (at([0x59, 0x55, 0x56, 0x34, 0x4d, 0x50, 0x45, 0x47])) return 'Y4M';
  if (b.length >= 12 && at([0x66, 0x74, 0x79, 0x70], 4)) return 'MP4/MOV/HEIF';
  return null;
}

/** A PNG image as uint8 RGB; other formats are refused with what they are. */
export async function readImageFile(path: string): Promise<ImageU8> {
  let bytes: Uint8Array;
  try {
    const st = await fsp.stat(path);
    if (st.isDirectory()) throw new ReasonInputError(`--image ${path}: is a directory; expected a PNG file`);
    bytes = await fsp.readFile(path);
  } catch (e) {
    if (e instanceof ReasonInputError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw new ReasonInputError(`--image ${path}: cannot open (${err.code === 'ENOENT' ? 'no such file' : err.message})`);
  }
  const kind = sniffFormat(bytes);
  if (kind !== 'PNG') {
    const what = kind === 'Y4M' ? 'a Y4M video (pass it with --video)' : kind ? `a ${kind} file` : 'not a recognised image format';
    throw new ReasonInputError(`--image ${path}: ${what}; only PNG images are supported (convert it, e.g. ffmpeg -i in.jpg out.png)`);
  }
  const img = decodePng(bytes, path);
  return { data: img.data, height: img.height, width: img.width };
}

/** A video after frame sampling: the kept frames and what it was sampled from. */
export interface SampledVideo {
  path: string;
  video: VideoU8;
  totalFrames: number;
  sourceFps: number;
  /** the rate of the kept frames (nframes / total * source fps) */
  fps: number;
  indices: number[];
}

/**
 * Read a clip (.y4m or a folder of PNG frames) keeping only the frames sampled at `fps`
 * (qwen-vl-utils' smart_nframes; at least `frameFactor` frames needed). Frames are converted to
 * uint8 as they are read; with a known frame count only the sampled ones are kept.
 */
export async function readVideoFile(path: string, fps: number, frameFactor = 2, defaultSourceFps: Rational = { num: 24, den: 1 }): Promise<SampledVideo> {
  if (!(fps > 0)) throw new ReasonInputError(`--fps must be positive, got ${fps}`);
  const kind = (() => {
    try {
      return statSync(path).isDirectory() ? 'dir' : 'file';
    } catch {
      throw new ReasonInputError(`--video ${path}: cannot open (no such file or directory)`);
    }
  })();
  if (kind === 'file') {
    const head = new Uint8Array(16);
    const fh = await fsp.open(path, 'r');
    try {
      await fh.read(head, 0, 16, 0);
    } finally {
      await fh.close();
    }
    const k = sniffFormat(head);
    if (k !== 'Y4M') {
      const what = k === 'PNG' ? 'a single PNG image (pass it with --image)' : k ? `a ${k} file` : 'not a YUV4MPEG2 (.y4m) file';
      throw new ReasonInputError(`--video ${path}: ${what}; videos are read from .y4m files or folders of numbered PNG frames (convert with e.g. ffmpeg -i in.mp4 -pix_fmt yuv444p out.y4m)`);
    }
  }
  const source = await openVideoSource(path, defaultSourceFps);
  const sourceFps = fpsValue(source.fps ?? defaultSourceFps);
  const { width, height } = source;
  const frameBytes = width * height * 3;
  const plan = (total: number) => {
    if (total < frameFactor) {
      throw new ReasonInputError(
        `--video ${path}: ${total} frame${total === 1 ? '' : 's'}; the frame sampling needs at least ${frameFactor} (temporal_patch_size) frames`,
      );
    }
    try {
      return sampleVideoFrames(total, sourceFps, { fps, frameFactor });
    } catch (e) {
      if (e instanceof PreprocessError) throw new ReasonInputError(`--video ${path}: ${total} frames at ${sourceFps} fps cannot be sampled at ${fps} fps (${e.message})`);
      throw e;
    }
  };
  let sampling = source.frameCount !== undefined ? plan(source.frameCount) : null;
  const wanted = sampling ? new Map(sampling.indices.map((t, k) => [t, k])) : null;
  const kept: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const f of source.frames()) {
      if (!wanted || wanted.has(total)) kept.push(frameToU8(f, height, width).data);
      total++;
    }
  } finally {
    await source.close();
  }
  let frames: Uint8Array[];
  if (sampling) {
    if (total !== source.frameCount) throw new ReasonInputError(`--video ${path}: ${total} frames read, ${source.frameCount} expected`);
    frames = kept;
  } else {
    sampling = plan(total);
    frames = sampling.indices.map((t) => kept[t]);
  }
  const data = new Uint8Array(frames.length * frameBytes);
  frames.forEach((f, k) => data.set(f, k * frameBytes));
  return {
    path, video: { data, frames: frames.length, height, width }, totalFrames: total, sourceFps, fps: sampling.fps, indices: sampling.indices,
  };
}

// ------------------------------------------------------------------ streaming text

/**
 * Incremental detokenizer: the text of each new token as soon as its bytes complete UTF-8
 * characters (a character split over several byte-level tokens appears once all of it is
 * there). The concatenation of everything push() and flush() return equals
 * tokenizer.decode(ids, {skipSpecialTokens}).
 */
export class TextStreamer {
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  private readonly encoder = new TextEncoder();
  private readonly skipSpecial: boolean;

  constructor(private readonly tokenizer: ByteLevelBpeTokenizer, options: { skipSpecialTokens?: boolean } = {}) {
    this.skipSpecial = options.skipSpecialTokens ?? true;
  }

  /** The bytes of one token as the byte-level decoder produces them. */
  tokenBytes(id: number): Uint8Array {
    const added = this.tokenizer.addedToken(id);
    if (added && added.special && this.skipSpecial) return new Uint8Array(0);
    const tok = added ? added.content : this.tokenizer.idToToken(id);
    if (tok === undefined) return new Uint8Array(0);
    const out: number[] = [];
    for (const ch of tok) {
      const b = UNICODE_TO_BYTE.get(ch);
      if (b === undefined) return this.encoder.encode(tok);
      out.push(b);
    }
    return Uint8Array.from(out);
  }

  push(id: number): string {
    return this.decoder.decode(this.tokenBytes(id), { stream: true });
  }

  /** Whatever is left (an incomplete sequence at the end becomes U+FFFD). */
  flush(): string {
    return this.decoder.decode();
  }
}

// ------------------------------------------------------------------ the run

export interface ReasonOptions {
  prompt: string;
  /** a system message (default: the template's "You are a helpful assistant.") */
  system?: string;
  images?: readonly ImageU8[];
  videos?: readonly SampledVideo[];
  maxNewTokens?: number;
  /** 0: greedy */
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number | string;
  /** override the processor's pixel limits */
  minPixels?: number;
  maxPixels?: number;
  /** replaces the folder's stop tokens */
  stopTokenIds?: readonly number[];
  /** streamed text as it is produced */
  onText?: (text: string) => void | Promise<void>;
  /** each generated token id */
  onToken?: (id: number, step: number) => void | Promise<void>;
}

export interface ReasonResult {
  text: string;
  /** generated ids, the stop token included */
  tokens: number[];
  finishReason: 'stop' | 'length';
  promptText: string;
  promptTokens: number;
  /** vision tokens in the prompt (after the merger) and patches fed to the tower */
  visionTokens: number;
  visionPatches: number;
  imageGridThw: Grid[];
  videoGridThw: Grid[];
  secondPerGridTs: number[];
  seconds: { preprocess: number; vision: number; prefill: number; decode: number };
  /** vision tokens / vision seconds */
  visionTokensPerSecond: number;
  /** prompt tokens / prefill seconds (language model over the prompt, first token included) */
  prefillTokensPerSecond: number;
  /** tokens after the first / decode seconds (NaN when only one token was generated) */
  decodeTokensPerSecond: number;
}

/** The chat prompt: vision items first, then the prompt text, with the generation prompt. */
export function buildPrompt(assets: ReasonAssets, prompt: string, counts: { images: number; videos: number }, system?: string): string {
  const content: ChatContentItem[] = [
    ...Array.from({ length: counts.images }, () => ({ type: 'image', image: '' })),
    ...Array.from({ length: counts.videos }, () => ({ type: 'video', video: '' })),
    { type: 'text', text: prompt },
  ];
  const messages: ChatMessage[] = [];
  if (system !== undefined) messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content });
  return assets.text.applyChatTemplate(messages, { addGenerationPrompt: true });
}

function wrapSizeError<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SmartResizeError || e instanceof PreprocessError) throw new ReasonInputError(`${what}: ${e.message}`);
    throw e;
  }
}

function argmaxRow(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/**
 * Answer `prompt` about the images / videos: preprocess, prompt, vision tower, prefill, then
 * decode token by token with the text streamed to onText.
 */
export async function reason(model: Qwen2_5_VLForConditionalGeneration, assets: ReasonAssets, o: ReasonOptions): Promise<ReasonResult> {
  const be = model.backend;
  const cfg = model.config;
  const maxNew = o.maxNewTokens ?? REASON_DEFAULTS.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new ReasonInputError(`max new tokens must be a positive integer, got ${maxNew}`);
  const temperature = o.temperature ?? REASON_DEFAULTS.temperature;
  if (!(temperature >= 0)) throw new ReasonInputError(`temperature must be >= 0, got ${temperature}`);
  const topP = o.topP ?? REASON_DEFAULTS.topP;
  if (!(topP > 0 && topP <= 1)) throw new ReasonInputError(`top-p must be in (0, 1], got ${topP}`);
  const penalty = o.repetitionPenalty ?? REASON_DEFAULTS.repetitionPenalty;
  if (!(penalty > 0)) throw new ReasonInputError(`repetition penalty must be > 0, got ${penalty}`);
  const doSample = temperature > 0;
  const sampling = { doSample, temperature: doSample ? temperature : 1, topP, topK: o.topK ?? 0, repetitionPenalty: penalty };
  const rng = seedrandom(String(o.seed ?? 0));
  const stop = new Set(o.stopTokenIds ?? assets.stopTokenIds);
  const images = o.images ?? [];
  const videos = o.videos ?? [];
  const pre: PreprocessOptions = { minPixels: o.minPixels, maxPixels: o.maxPixels };

  // ---- 1-3: pixels, prompt, ids
  const t0 = performance.now();
  const ip = assets.imageProcessor;
  const imageBatch: PixelBatch | null = images.length
    ? wrapSizeError('image', () => ip.preprocessImages(images, pre))
    : null;
  const videoBatch: PixelBatch | null = videos.length
    ? wrapSizeError('video', () => ip.preprocessVideos(videos.map((v) => v.video), pre))
    : null;
  const secondPerGridTs = videos.map((v) => secondPerGridT(ip.config.temporalPatchSize, v.fps));
  const promptText = buildPrompt(assets, o.prompt, { images: images.length, videos: videos.length }, o.system);
  const enc = assets.text.encode([promptText], { imageGridThw: imageBatch?.gridThw, videoGridThw: videoBatch?.gridThw });
  const L = enc.length;
  const ids = { data: enc.inputIds, shape: [1, L] as const };
  const imageGridThw = (imageBatch?.gridThw ?? []) as Grid[];
  const videoGridThw = (videoBatch?.gridThw ?? []) as Grid[];
  const m2 = cfg.vision.spatialMergeSize ** 2;
  const visionPatches = (imageBatch?.shape[0] ?? 0) + (videoBatch?.shape[0] ?? 0);
  const visionTokens = visionPatches / m2;
  const t1 = performance.now();

  const cache = new VlmKVCache(be, cfg.text, 1, L + maxNew);
  const held: Tensor[] = [];
  const tokens: number[] = [];
  const streamer = new TextStreamer(assets.tokenizer, { skipSpecialTokens: true });
  let text = '';
  const emit = async (s: string) => {
    if (!s) return;
    text += s;
    if (o.onText) await o.onText(s);
  };
  let finishReason: 'stop' | 'length' = 'length';
  let t2 = t1;
  let t3 = t1;
  let t4 = t1;
  try {
    // ---- 4: vision tower + embeddings, rope index, prefill
    const visual: ForwardInputs = {
      inputIds: ids,
      pixelValues: imageBatch ? F.fromArray(be, imageBatch.pixelValues, imageBatch.shape).keep() : null,
      imageGridThw,
      pixelValuesVideos: videoBatch ? F.fromArray(be, videoBatch.pixelValues, videoBatch.shape).keep() : null,
      videoGridThw,
      secondPerGridTs: videos.length ? Float32Array.from(secondPerGridTs) : null,
    };
    if (visual.pixelValues) held.push(visual.pixelValues);
    if (visual.pixelValuesVideos) held.push(visual.pixelValuesVideos);
    const rope = model.ropeIndex(ids, null, visual);
    await be.sync();
    t2 = performance.now();
    const embeds = model.embedInputs(ids, visual);
    held.push(embeds);
    await be.sync();
    t3 = performance.now();
    for (const t of held.splice(0, held.length - 1)) t.dispose(); // pixels no longer needed
    const ropeDelta = rope.ropeDeltas[0];
    const seen: number[] = Array.from(enc.inputIds);
    const hostLogits = doSample || penalty !== 1;

    const pick = async (logits: Tensor): Promise<number> => {
      try {
        if (hostLogits) {
          const row = Float32Array.from((await logits.read()) as Float32Array);
          processLogits(row, seen, sampling);
          return doSample ? sampleToken(row, rng()) : argmaxRow(row);
        }
        const id = scope(() => F.argmax(logits, -1));
        try {
          return (await id.read())[0];
        } finally {
          id.dispose();
        }
      } finally {
        logits.dispose();
      }
    };

    let next = await pick(model.decode(embeds, rope.positionIds, null, { cache, past: 0, lastOnly: true }));
    held.pop()!.dispose();
    t4 = performance.now();

    // ---- 5: decode
    for (let step = 0; ; step++) {
      tokens.push(next);
      seen.push(next);
      if (o.onToken) await o.onToken(next, step);
      await emit(streamer.push(next));
      if (stop.has(next)) {
        finishReason = 'stop';
        break;
      }
      if (tokens.length >= maxNew) break;
      const n = L + step;
      const pos = [n + ropeDelta, n + ropeDelta, n + ropeDelta];
      const tok = next;
      const logits = scope(() => {
        const e = model.embedInputs({ data: [tok], shape: [1, 1] });
        return model.decode(e, pos, null, { cache, past: n });
      });
      next = await pick(logits);
    }
    await emit(streamer.flush());
  } finally {
    for (const t of held) t.dispose();
    cache.dispose();
  }
  const t5 = performance.now();
  const s = (a: number, b: number) => (b - a) / 1000;
  const seconds = { preprocess: s(t0, t1), vision: s(t2, t3), prefill: s(t3, t4), decode: s(t4, t5) };
  return {
    text,
    tokens,
    finishReason,
    promptText,
    promptTokens: L,
    visionTokens,
    visionPatches,
    imageGridThw,
    videoGridThw,
    secondPerGridTs,
    seconds,
    visionTokensPerSecond: visionTokens ? visionTokens / seconds.vision : NaN,
    prefillTokensPerSecond: L / seconds.prefill,
    decodeTokensPerSecond: tokens.length > 1 ? (tokens.length - 1) / seconds.decode : NaN,
  };
}
