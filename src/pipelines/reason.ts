// The Cosmos-Reason1 (Qwen2.5-VL) reasoning pipeline: a question about images or videos,
// answered with streamed text. The steps, as transformers + qwen-vl-utils run them:
//
//   1. inputs: uint8 RGB images; videos sampled at a requested rate (reason-inputs.ts);
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
// so the tokens/s figures mean the same on the cpu and webgpu backends. Progress: a 'vision' and
// a 'prefill' event, then one 'generate' event per token (its id in the detail); an abort stops
// the answer at the next token.
import seedrandom from 'seedrandom';
import type { Backend } from '../engine/backend.js';
import { throwIfAborted } from '../engine/errors.js';
import * as F from '../engine/ops.js';
import { selectBackend } from '../engine/select.js';
import { type Tensor, scope } from '../engine/tensor.js';
import type { FileSystem } from '../io/files.js';
import { loadModule } from '../models/load.js';
import { PreprocessError, SmartResizeError } from '../models/vlm/config.js';
import { type SamplingOptions, VlmKVCache, argmaxRow, processLogits, sampleToken } from '../models/vlm/generate.js';
import { checkFinite, checkFiniteValues } from './finite.js';
import { type ForwardInputs, type Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLFamily } from '../models/vlm/language.js';
import { type ImageU8, type PixelBatch, type PreprocessOptions, secondPerGridT } from '../models/vlm/preprocess.js';
import type { Grid } from '../models/vlm/rope-index.js';
import type { ChatContentItem, ChatMessage } from '../text/chat.js';
import { type RunOptions, stage } from './progress.js';
import { REASON_DEFAULTS, type ReasonAssets, ReasonInputError, loadReasonAssets } from './reason-assets.js';
import type { SampledVideo } from './reason-inputs.js';
import { TextStreamer } from './text-streamer.js';

/** A loaded model with the files of its folder. */
export interface ReasonModel {
  model: Qwen2_5_VLForConditionalGeneration;
  assets: ReasonAssets;
}

/**
 * The weights of a model folder on `backend` (checkpoint dtypes kept; tensors larger than the
 * backend takes are refused before anything is uploaded), with its assets (read here unless
 * already read).
 */
export async function loadReasonModel(folder: string | ReasonAssets, backend: Backend, o: { fs?: FileSystem } = {}): Promise<ReasonModel> {
  const assets = typeof folder === 'string' ? await loadReasonAssets(folder, o.fs) : folder;
  const { model } = await loadModule(Qwen2_5_VLFamily(), assets.dir, backend, { config: assets.configJson, fs: o.fs });
  return { model, assets };
}

export interface ReasonSampling {
  /** default 4096 */
  maxNewTokens?: number;
  /** 0: greedy (default 0.6) */
  temperature?: number;
  /** default 0.95 */
  topP?: number;
  /** 0: all (default) */
  topK?: number;
  /** 1: none (default 1.05) */
  repetitionPenalty?: number;
  /** seed of the sampling draws (default 0) */
  seed?: number | string;
}

export interface ReasonOptions extends RunOptions, ReasonSampling {
  /** a loaded model (loadReasonModel), or a model folder loaded for this call and freed after */
  model: ReasonModel | string;
  /** where a folder is loaded (default: selectBackend()) */
  backend?: Backend;
  fs?: FileSystem;
  prompt: string;
  /** a system message (default: the template's "You are a helpful assistant.") */
  system?: string;
  images?: readonly ImageU8[];
  /** clips sampled at their rate (sampleVideo / readVideoFile) */
  videos?: readonly SampledVideo[];
  /** override the processor's pixel limits */
  minPixels?: number;
  maxPixels?: number;
  /** replaces the folder's stop tokens */
  stopTokenIds?: readonly number[];
  /** the answer's text as it is produced */
  onText?: (text: string) => void;
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

/** The size an image or frame is processed at, or an error naming it when it is too small / too thin. */
export function processedSize(assets: ReasonAssets, what: string, height: number, width: number, o: PreprocessOptions = {}): [number, number] {
  try {
    return assets.imageProcessor.targetSize(height, width, o);
  } catch (e) {
    if (e instanceof SmartResizeError) throw new ReasonInputError(`${what}: ${width}x${height} cannot be processed (${e.message})`);
    throw e;
  }
}

function wrapSizeError<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SmartResizeError || e instanceof PreprocessError) throw new ReasonInputError(`${what}: ${e.message}`);
    throw e;
  }
}

interface Settings {
  maxNew: number;
  sampling: SamplingOptions;
  rng: () => number;
  /** the logits are read to the host (sampling or a penalty); else argmax on the device */
  hostLogits: boolean;
}

function settings(o: ReasonSampling): Settings {
  const maxNew = o.maxNewTokens ?? REASON_DEFAULTS.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new ReasonInputError(`maxNewTokens: must be a positive integer; got ${maxNew}`);
  const temperature = o.temperature ?? REASON_DEFAULTS.temperature;
  if (!(temperature >= 0)) throw new ReasonInputError(`temperature: must be >= 0; got ${temperature}`);
  const topP = o.topP ?? REASON_DEFAULTS.topP;
  if (!(topP > 0 && topP <= 1)) throw new ReasonInputError(`topP: must be in (0, 1]; got ${topP}`);
  const penalty = o.repetitionPenalty ?? REASON_DEFAULTS.repetitionPenalty;
  if (!(penalty > 0)) throw new ReasonInputError(`repetitionPenalty: must be > 0; got ${penalty}`);
  const doSample = temperature > 0;
  return {
    maxNew,
    sampling: { doSample, temperature: doSample ? temperature : 1, topP, topK: o.topK ?? 0, repetitionPenalty: penalty },
    rng: seedrandom(String(o.seed ?? 0)),
    hostLogits: doSample || penalty !== 1,
  };
}

/**
 * Answer `prompt` about the images / videos: preprocess, prompt, vision tower, prefill, then
 * decode token by token with the text streamed to onText.
 */
export async function reason(o: ReasonOptions): Promise<ReasonResult> {
  throwIfAborted(o.signal);
  if (typeof o.model !== 'string') return answer(o.model, o);
  const loaded = await loadReasonModel(o.model, o.backend ?? (await selectBackend()), { fs: o.fs });
  try {
    return await answer(loaded, o);
  } finally {
    loaded.model.dispose();
  }
}

async function answer({ model, assets }: ReasonModel, o: ReasonOptions): Promise<ReasonResult> {
  const be = model.backend;
  const cfg = model.config;
  const s = settings(o);
  const stop = new Set(o.stopTokenIds ?? assets.stopTokenIds);
  const images = o.images ?? [];
  const videos = o.videos ?? [];
  const pre: PreprocessOptions = { minPixels: o.minPixels, maxPixels: o.maxPixels };

  // ---- 1-3: pixels, prompt, ids
  const t0 = performance.now();
  const ip = assets.imageProcessor;
  const imageBatch: PixelBatch | null = images.length ? wrapSizeError('image', () => ip.preprocessImages(images, pre)) : null;
  const videoBatch: PixelBatch | null = videos.length ? wrapSizeError('video', () => ip.preprocessVideos(videos.map((v) => v.video), pre)) : null;
  const secondPerGridTs = videos.map((v) => secondPerGridT(ip.config.temporalPatchSize, v.fps));
  const promptText = buildPrompt(assets, o.prompt, { images: images.length, videos: videos.length }, o.system);
  const enc = assets.text.encode([promptText], { imageGridThw: imageBatch?.gridThw, videoGridThw: videoBatch?.gridThw });
  const L = enc.length;
  const ids = { data: enc.inputIds, shape: [1, L] as const };
  const imageGridThw = (imageBatch?.gridThw ?? []) as Grid[];
  const videoGridThw = (videoBatch?.gridThw ?? []) as Grid[];
  const visionPatches = (imageBatch?.shape[0] ?? 0) + (videoBatch?.shape[0] ?? 0);
  const visionTokens = visionPatches / cfg.vision.spatialMergeSize ** 2;
  const t1 = performance.now();

  const cache = new VlmKVCache(be, cfg.text, 1, L + s.maxNew);
  const held: Tensor[] = [];
  const tokens: number[] = [];
  const streamer = new TextStreamer(assets.tokenizer, { skipSpecialTokens: true });
  let text = '';
  const emit = (piece: string) => {
    if (!piece) return;
    text += piece;
    o.onText?.(piece);
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
    stage(o, 'vision', 'passes', 1)(1, { tokens: visionTokens });
    for (const t of held.splice(0, held.length - 1)) t.dispose(); // pixels no longer needed
    const ropeDelta = rope.ropeDeltas[0];
    const seen: number[] = Array.from(enc.inputIds);

    const pick = async (logits: Tensor): Promise<number> => {
      const where = { component: 'language model', step: `token ${tokens.length + 1}`, tensor: 'logits' };
      try {
        if (s.hostLogits) {
          const row = Float32Array.from((await logits.read()) as Float32Array);
          checkFiniteValues(row, where);
          processLogits(row, seen, s.sampling);
          return s.sampling.doSample ? sampleToken(row, s.rng()) : argmaxRow(row);
        }
        await checkFinite(logits, where);
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
    stage(o, 'prefill', 'passes', 1)(1, { tokens: L });

    // ---- 5: decode
    const report = stage(o, 'generate', 'tokens', s.maxNew);
    for (let step = 0; ; step++) {
      tokens.push(next);
      seen.push(next);
      emit(streamer.push(next));
      report(tokens.length, { id: next });
      if (stop.has(next)) {
        finishReason = 'stop';
        break;
      }
      if (tokens.length >= s.maxNew) break;
      // the plan backend measures: one decoded step stands for every later one (the cache was
      // sized for all of them at prefill), and its zero logits would never reach a stop token
      if (be.name === 'plan' && step >= 1) break;
      const n = L + step;
      const pos = [n + ropeDelta, n + ropeDelta, n + ropeDelta];
      const tok = next;
      const logits = scope(() => {
        const e = model.embedTokens({ data: [tok], shape: [1, 1] });
        return model.decode(e, pos, null, { cache, past: n });
      });
      next = await pick(logits);
    }
    emit(streamer.flush());
  } finally {
    for (const t of held) t.dispose();
    cache.dispose();
  }
  const t5 = performance.now();
  const sec = (a: number, b: number) => (b - a) / 1000;
  const seconds = { preprocess: sec(t0, t1), vision: sec(t2, t3), prefill: sec(t3, t4), decode: sec(t4, t5) };
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
    visionTokensPerSecond: visionTokens ? visionTokens / seconds.vision : Number.NaN,
    prefillTokensPerSecond: L / seconds.prefill,
    decodeTokensPerSecond: tokens.length > 1 ? (tokens.length - 1) / seconds.decode : Number.NaN,
  };
}
