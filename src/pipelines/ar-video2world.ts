// The autoregressive Video2World pipeline (upstream cosmos-predict1 autoregressive
// inference/world_generation_pipeline.py + utils/inference.py), on the DV video tokenizer and the
// AR video decoder:
//
//   1. context: the LAST `contextFrames` frames of the clip (upstream `video[-num_input_frames:]`),
//      1 + k*tc of them, encoded by the DV tokenizer to ids [1, k+1, h, w]. Upstream pads the clip
//      to the model's full length by repeating the last frame, tokenizes it whole and keeps the
//      first k+1 latent frames; the tokenizer is causal, so encoding the context alone gives the
//      same ids.
//   2. ids -> AR vocabulary: id + tokenizer_offset (0 for the released models), flattened T-major
//      (t*h*w + y*w + x); text_to_video models (5B / 13B Video2World) put <bov> = vocab_size first.
//   3. generate (upstream generate, echo dropped): the remaining latent frames of the model's grid
//      video_latent_shape = [T, H, W], i.e. (T - (k+1)) * H * W tokens, one at a time through the
//      KV cache, sampled with temperature / top-p (released defaults 1.0 / 0.8, seed 0).
//      Video2World models cross-attend to T5 embeddings [Lc, 1024], zero-padded to 512 rows as
//      the T5 encoder's output is, with the mask all True (as upstream replaces it).
//   4. AR ids -> tokenizer ids (minus the offset), the whole grid (context + generated) decoded
//      into 1 + (T-1)*tc frames clamped to [-1, 1]. As upstream, the first frames are the
//      tokenizer's reconstruction of the context, not the input pixels. Two decodes:
//      - with a diffusion decoder and a CV tokenizer (upstream's default): the 7B decoder samples
//        CV8x8x8 latents from the ids, window by window, and the CV tokenizer decodes them
//        (ar-decoder.ts): the sharp video the releases show. The AR model and the DV tokenizer are
//        freed first (given as folders, or handed over), so the 7B never sits beside them.
//      - without (upstream's disable_diffusion_decoder): the DV tokenizer decodes the ids: blurrier.
//
// Every argument is checked before anything runs, with typed errors that name the argument:
// FrameCountError (frame counts the tokenizer cannot take), ContextLengthError (contexts that
// fill the model's grid / window), GridMismatchError (spatial sizes), VocabularyMismatchError,
// TokenIdError (ids outside the vocabulary), MissingContextError (Video2World without embeddings).
// Progress: 'encode', one 'generate' event per token, then 'decode' (DV), or 'decoder' per sampler
// step and 'cv-decode' per window (the diffusion decoder); an abort stops at the next token / step.
import type { Backend } from '../engine/backend.js';
import { UserError, throwIfAborted } from '../engine/errors.js';
import { widen } from '../engine/dtype.js';
import * as F from '../engine/ops.js';
import { selectBackend } from '../engine/select.js';
import type { Tensor } from '../engine/tensor.js';
import type { FileSystem } from '../io/files.js';
import { openSafetensors } from '../io/safetensors.js';
import { type FrameSource, type Video, sliceFrames, stackFrames } from '../io/video.js';
import {
  type ArConfig, ArArgumentError, ContextLengthError, MissingContextError, TokenIdError,
} from '../models/ar/config.js';
import { generate } from '../models/ar/generate.js';
import { resolveSampling } from '../models/ar/sampling.js';
import { type ArTransformer, ArTransformerFamily } from '../models/ar/transformer.js';
import { loadModule } from '../models/load.js';
import type { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from '../models/tokenizer/video.js';
import type { DiffusionDecoderDiT } from '../models/ar-decoder/model.js';
import { type HostText, type Source, checkDecoderFolders, cvGeometry, decodeArTokens, readDecoderContext } from './ar-decoder.js';
import { type TokenChunk, splitWithOverlap } from './ar-decoder-chunks.js';
import type { ComponentBytes, PhaseHooks } from './components.js';
import { checkStepCounts, requireFiniteRaw } from './finite.js';
import { type Guardrails, guardOutput } from './guardrails.js';
import { isFrameSource, lastFrames, videoSource } from './frame-source.js';
import { type RunOptions, stage } from './progress.js';
import { detokenize, loadVideoTokenizer, tokenize } from './tokenizer.js';

// ------------------------------------------------------------------ errors

/** A frame count the causal tokenizer cannot take (not 1 + k*tc), or more frames than the clip has. */
export class FrameCountError extends ArArgumentError {}

/** The clip's latent grid (H/sc x W/sc) is not the AR model's token grid (video_latent_shape H x W). */
export class GridMismatchError extends ArArgumentError {}

/** The tokenizer's codebook and the AR model's video vocabulary differ. */
export class VocabularyMismatchError extends ArArgumentError {}

// ------------------------------------------------------------------ inputs

/** Names under which an embeddings file may hold the T5 output (a file with one tensor needs none). */
export const EMBEDDING_TENSOR_NAMES = ['context', 'embeddings', 't5_embeddings', 'prompt_embedding', 'encoder_hidden_states'] as const;

export interface HostEmbeddings {
  data: Float32Array;
  /** [Lc, context_dim] */
  shape: [number, number];
}

/**
 * Text embeddings for the cross-attention models from a .safetensors file: its only tensor, or
 * one named as in EMBEDDING_TENSOR_NAMES; [Lc, D] or [1, Lc, D], any float dtype.
 */
export async function readEmbeddings(path: string, argument = 'embeddings', fs?: FileSystem): Promise<HostEmbeddings> {
  const f = await openSafetensors(path, fs);
  try {
    const names = f.names;
    const name: string | undefined = names.length === 1 ? names[0] : EMBEDDING_TENSOR_NAMES.find((n) => names.includes(n));
    if (!name) {
      throw new ArArgumentError(argument, `${path} holds ${names.length} tensors (${names.slice(0, 8).join(', ')}); expected one, or one named ${EMBEDDING_TENSOR_NAMES.join(' / ')}`);
    }
    const t = await f.read(name);
    const shape = t.shape;
    if (!((shape.length === 2) || (shape.length === 3 && shape[0] === 1)) || shape.some((d) => d < 1)) {
      throw new ArArgumentError(argument, `${path}: tensor ${name} must be [Lc, context_dim] or [1, Lc, context_dim], got [${shape.join(', ')}]`);
    }
    if (t.dtype === 'i32') throw new ArArgumentError(argument, `${path}: tensor ${name} holds integers; expected float embeddings`);
    const [Lc, D] = shape.slice(-2);
    requireFiniteRaw(t.dtype, t.raw, path, `tensor ${name}`);
    return { data: widen(t.dtype, t.raw), shape: [Lc, D] };
  } finally {
    await f.close();
  }
}

// ------------------------------------------------------------------ vocabulary mapping

/** Offset of the video ids in the AR vocabulary (tokenizer_offset: 0 for the released models). */
export const VIDEO_TOKEN_OFFSET = 0;

/**
 * Tokenizer ids (T-major [t, h, w] flattened) -> the AR prompt: id + offset, with <bov> =
 * vocab_size first for text_to_video. Ids outside the video vocabulary are refused.
 */
export function toArPrompt(ids: ArrayLike<number>, cfg: ArConfig, argument = 'context tokens'): Int32Array {
  const bov = cfg.trainingType === 'text_to_video' ? 1 : 0;
  const out = new Int32Array(ids.length + bov);
  if (bov) out[0] = cfg.vocabSize; // <bov>
  for (let i = 0; i < ids.length; i++) {
    const v = Number(ids[i]);
    if (!Number.isInteger(v) || v < 0 || v >= cfg.vocabSize) {
      throw new TokenIdError(argument, `token id ${ids[i]} at ${i} is outside the video vocabulary [0, ${cfg.vocabSize})`);
    }
    out[i + bov] = v + VIDEO_TOKEN_OFFSET;
  }
  return out;
}

/** Generated AR ids -> tokenizer ids (minus the offset), checked against the tokenizer's codebook. */
export function fromArTokens(ids: ArrayLike<number>, tokenizerVocab: number, argument = 'generated tokens'): Int32Array {
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const v = Number(ids[i]) - VIDEO_TOKEN_OFFSET;
    if (!Number.isInteger(v) || v < 0 || v >= tokenizerVocab) {
      throw new TokenIdError(argument, `token id ${ids[i]} at ${i} is outside the tokenizer's codebook [0, ${tokenizerVocab})`);
    }
    out[i] = v;
  }
  return out;
}

// ------------------------------------------------------------------ planning

/** What the caller chooses of a run (checked by planArVideo2World before anything runs). */
export interface ArVideo2WorldSettings {
  /**
   * Context frames, taken from the end of the clip: 1 + k*tc (upstream num_input_frames, 1 or 9
   * for the released models). Default: 1 + tc (two latent frames, upstream's 9) when the clip has
   * them and the grid leaves room, else 1 (the last frame).
   */
  contextFrames?: number;
  /** latent frames to generate (default: the rest of the model's grid, as upstream) */
  latentFrames?: number;
  /** default 1.0 (0 = greedy) */
  temperature?: number;
  /** default 0.8 (upstream base.py); null = plain multinomial */
  topP?: number | null;
  /** default 0 */
  seed?: number;
  /** T5 embeddings [Lc, context_dim] for the cross-attention (Video2World) models */
  embeddings?: HostEmbeddings | null;
  /** zero rows the embeddings are padded to (T5's fixed 512 tokens); default 512 */
  embeddingRows?: number;
  /** the diffusion decoder's sampler steps (default 15) */
  decoderSteps?: number;
  /** the diffusion decoder's guidance (default 1.8) */
  decoderGuidance?: number;
  /** seed of the diffusion decoder's noise (default: `seed`) */
  decoderSeed?: number;
}

/** Which decode makes the video: the DV tokenizer's, or the diffusion decoder's into the CV tokenizer. */
export type ArDecode = 'dv' | 'diffusion-decoder';

export interface ArVideo2WorldPlan {
  tc: number;
  sc: number;
  /** [T, H, W] of the AR model's token grid */
  grid: [number, number, number];
  contextFrames: number;
  contextLatentFrames: number;
  latentFrames: number;
  /** prompt length (context tokens + <bov>) */
  promptTokens: number;
  generateTokens: number;
  /** frames of the decoded output */
  outputFrames: number;
  decode: ArDecode;
  /** the diffusion decoder's windows over the grid's latent frames (empty for the DV decode) */
  decoderChunks: TokenChunk[];
}

/** The default context length for a clip of `clipFrames` frames (see ArVideo2WorldOptions). */
export function defaultContextFrames(cfg: ArConfig, tc: number, clipFrames: number): number {
  const T = cfg.videoLatentShape[0];
  return T >= 3 && clipFrames >= 1 + tc ? 1 + tc : 1;
}

/**
 * Check the model, the tokenizer, the clip and the options against each other; nothing runs.
 * `clip` is [frames, height, width].
 */
export function planArVideo2World(
  model: ArTransformer,
  tokenizer: CausalDiscreteVideoTokenizer,
  clip: [number, number, number],
  opts: ArVideo2WorldSettings & { decoder?: unknown } = {},
): ArVideo2WorldPlan {
  const cfg = model.config;
  const tc = tokenizer.temporalCompression;
  const sc = tokenizer.spatialCompression;
  const [T, H, W] = cfg.videoLatentShape;
  const [frames, height, width] = clip;

  if (tokenizer.vocabSize !== cfg.vocabSize) {
    throw new VocabularyMismatchError(
      'tokenizer',
      `its codebook has ${tokenizer.vocabSize} codes (FSQ levels [${tokenizer.quantizer.levels.join(', ')}]) but the AR model's video vocabulary is vocab_size ${cfg.vocabSize}`,
    );
  }
  if (cfg.outputRows > tokenizer.vocabSize) {
    throw new VocabularyMismatchError('model', `the output head has ${cfg.outputRows} rows, more than the tokenizer's ${tokenizer.vocabSize} codes: it could sample ids the tokenizer cannot decode`);
  }
  if (height % sc || width % sc || height / sc !== H || width / sc !== W) {
    const g = `${height / sc}x${width / sc}`;
    throw new GridMismatchError(
      'input',
      `the clip is ${width}x${height} (WxH); the tokenizer (${sc}x spatial) makes ${Number.isInteger(height / sc) && Number.isInteger(width / sc) ? `a ${g}` : 'no whole'} latent grid of it, ` +
        `but the AR model's token grid is ${H}x${W} (video_latent_shape [${T}, ${H}, ${W}]): give a ${W * sc}x${H * sc} clip`,
    );
  }
  if (frames < 1) throw new FrameCountError('input', 'the clip has no frames');

  const ctx = opts.contextFrames ?? defaultContextFrames(cfg, tc, frames);
  if (!Number.isInteger(ctx) || ctx < 1 || (ctx - 1) % tc !== 0) {
    throw new FrameCountError('frames', `the tokenizer (${tc}x temporal, causal) takes 1 + k*${tc} context frames (1, ${1 + tc}, ${1 + 2 * tc}, ...), got ${ctx}`);
  }
  if (ctx > frames) throw new FrameCountError('frames', `${ctx} context frames asked for, the clip has ${frames}`);
  const ctxLatent = 1 + (ctx - 1) / tc;
  if (ctxLatent >= T) {
    throw new ContextLengthError(
      'frames',
      `${ctx} context frames are ${ctxLatent} latent frames, which fill the model's grid of ${T} latent frames (video_latent_shape [${T}, ${H}, ${W}]): ` +
        `at most ${1 + (T - 2) * tc} context frames leave one to generate`,
    );
  }
  const latentFrames = opts.latentFrames ?? T - ctxLatent;
  if (!Number.isInteger(latentFrames) || latentFrames < 1) throw new ArArgumentError('latent frames', `must be a positive integer, got ${latentFrames}`);
  if (ctxLatent + latentFrames > T) {
    throw new ContextLengthError('latent frames', `${ctxLatent} context + ${latentFrames} generated latent frames exceed the model's grid of ${T}`);
  }
  const bov = cfg.trainingType === 'text_to_video' ? 1 : 0;
  const promptTokens = bov + ctxLatent * H * W;
  const generateTokens = latentFrames * H * W;
  if (promptTokens + generateTokens > model.window) {
    throw new ContextLengthError('frames', `${promptTokens} prompt + ${generateTokens} generated tokens exceed the model's window of ${model.window} positions`);
  }

  resolveSampling({ temperature: opts.temperature ?? 1, topP: opts.topP === undefined ? 0.8 : opts.topP });
  if (model.isCrossAttention) {
    if (!opts.embeddings) {
      throw new MissingContextError(
        'embeddings',
        `this model (${cfg.trainingType}, cross-attention every ${cfg.insertCrossAttnEveryKLayers === 1 ? '' : `${cfg.insertCrossAttnEveryKLayers}th `}layer) needs T5 text embeddings: ` +
          `give embeddings [Lc, ${cfg.contextDim}] (on the command line: --embeddings file.safetensors)`,
      );
    }
    const [, D] = opts.embeddings.shape;
    if (D !== cfg.contextDim) throw new ArArgumentError('embeddings', `have ${D} channels, the model's cross-attention takes context_dim ${cfg.contextDim}`);
  } else if (opts.embeddings && !opts.decoder) {
    throw new ArArgumentError('embeddings', 'this model has no cross-attention layers (insert_cross_attn is false); it takes no text embeddings (with a diffusion decoder they condition the decoder alone)');
  }
  const withDecoder = opts.decoder !== undefined && opts.decoder !== null;
  if (withDecoder) {
    const steps = opts.decoderSteps ?? 15;
    if (!Number.isInteger(steps) || steps < 1) throw new ArArgumentError('decoder steps', `must be a positive integer, got ${steps}`);
    if (opts.decoderGuidance !== undefined && !Number.isFinite(opts.decoderGuidance)) throw new ArArgumentError('decoder guidance', `must be a finite number, got ${opts.decoderGuidance}`);
  }
  const latentTotal = ctxLatent + latentFrames;
  return {
    tc, sc, grid: [T, H, W], contextFrames: ctx, contextLatentFrames: ctxLatent, latentFrames, promptTokens, generateTokens,
    outputFrames: 1 + (latentTotal - 1) * tc,
    decode: withDecoder ? 'diffusion-decoder' : 'dv',
    decoderChunks: withDecoder ? splitWithOverlap(latentTotal) : [],
  };
}

// ------------------------------------------------------------------ running

export interface ArVideo2WorldOptions extends ArVideo2WorldSettings, RunOptions, PhaseHooks {
  /** the AR model, or its folder (config.json + *.safetensors), loaded for this run and freed after */
  model: ArTransformer | string;
  /** the discrete video tokenizer (DV), or its folder, loaded for this run and freed after */
  tokenizer: CausalDiscreteVideoTokenizer | string;
  /** the clip to continue; only its last contextFrames frames are kept (a source is read to its end) */
  input: Video | FrameSource;
  /** where folders are loaded (default: the backend of a model or tokenizer given loaded, else selectBackend()) */
  backend?: Backend;
  fs?: FileSystem;
  /** the decoded clip is checked (and its faces blurred) before it is returned (openGuardrails; the AR models take no prompt) */
  guardrails?: Guardrails;
  /**
   * The diffusion decoder (Cosmos-1.0-Diffusion-7B-Decoder-DV8x16x16ToCV8x8x8): its folder or
   * model.pt, loaded after generation and freed before the CV decode; or a loader, or the model
   * loaded (then the caller keeps it, and it sits beside the AR model). Needs `cvTokenizer`.
   */
  decoder?: Source<DiffusionDecoderDiT>;
  /** the continuous video tokenizer (Cosmos-1.0-Tokenizer-CV8x8x8, with its mean_std.pt) that decodes the decoder's latents */
  cvTokenizer?: Source<CausalContinuousVideoTokenizer>;
  /** the decoder's T5 text when there are no `embeddings` (default: aux_vars.pt beside the decoder: the generic prompt) */
  decoderContext?: HostText;
  /**
   * The model and tokenizer given loaded become the run's: each is freed as soon as it is done
   * with (the AR model once the tokens exist), as folders are. Default false (the caller keeps them).
   */
  handOver?: boolean;
}

export interface ArVideo2WorldResult {
  plan: ArVideo2WorldPlan;
  /** the decoded clip (context reconstruction + generated frames), [-1, 1] */
  video: Video;
  /** tokenizer ids of the whole grid, [t, H, W] T-major (context first) */
  tokens: Int32Array;
  /** the context's tokenizer ids (a prefix of `tokens`) */
  contextTokens: Int32Array;
  /** decode = the DV decode, or the diffusion decoder's sampling plus the CV decode (`decoder` splits them) */
  seconds: { encode: number; generate: number; decode: number };
  /** generated tokens / generate seconds (prefill included) */
  tokensPerSecond: number;
  /** which decode made the video */
  decode: ArDecode;
  /** the diffusion decoder's run, when it made the video */
  decoder?: { chunks: TokenChunk[]; steps: number; guidance: number; latentShape: number[]; seconds: { sample: number; decode: number } };
  /** the decoder and CV tokenizer folders, checked before the run, and the bytes each takes */
  components: ComponentBytes[];
}

/** The discrete video tokenizer (DV) of a folder on `backend`; a continuous one is refused. */
export async function loadArTokenizer(path: string, backend: Backend, fs?: FileSystem): Promise<CausalDiscreteVideoTokenizer> {
  const t = await loadVideoTokenizer(path, backend, { fs });
  if (t.kind !== 'DV') {
    t.dispose();
    throw new UserError(`tokenizer ${path}: a ${t.kind} (continuous) tokenizer; the AR models take the discrete video tokenizer (DV)`);
  }
  return t;
}

/** An autoregressive model folder on `backend`. */
export async function loadArModel(path: string, backend: Backend, fs?: FileSystem): Promise<ArTransformer> {
  return (await loadModule(ArTransformerFamily, path, backend, { fs })).model;
}

/** Continue a clip: encode its last frames, generate the rest of the model's grid, decode it all. */
export async function arVideo2World(o: ArVideo2WorldOptions): Promise<ArVideo2WorldResult> {
  throwIfAborted(o.signal);
  if ((o.decoder === undefined) !== (o.cvTokenizer === undefined)) {
    throw o.decoder === undefined
      ? new ArArgumentError('cv tokenizer', 'decodes the diffusion decoder\'s latents; it needs the decoder too (--decoder)')
      : new ArArgumentError('decoder', 'samples CV8x8x8 latents; it needs the CV tokenizer that decodes them too (--cv-tokenizer)');
  }
  const owned = new Set<{ dispose(): void }>();
  try {
    // folders load where the caller says, else beside a model given loaded, else on selectBackend()'s choice
    const given = typeof o.model !== 'string' ? o.model.backend : typeof o.tokenizer !== 'string' ? o.tokenizer.backend : null;
    const backend = o.backend ?? given ?? (await selectBackend());
    let tokenizer: CausalDiscreteVideoTokenizer;
    if (typeof o.tokenizer === 'string') {
      tokenizer = await loadArTokenizer(o.tokenizer, backend, o.fs);
      owned.add(tokenizer);
    } else {
      tokenizer = o.tokenizer;
      if (o.handOver) owned.add(tokenizer);
    }
    let model: ArTransformer;
    if (typeof o.model === 'string') {
      model = await loadArModel(o.model, backend, o.fs);
      owned.add(model);
    } else {
      model = o.model;
      if (o.handOver) owned.add(model);
    }
    const free = (m: { dispose(): void }) => {
      if (owned.delete(m)) m.dispose();
    };
    return await run(model, tokenizer, backend, free, o);
  } finally {
    for (const m of owned) m.dispose();
  }
}

/** The clip's last frames (as many as the context can use) and its frame count. */
async function contextClip(input: Video | FrameSource, keep: number): Promise<{ clip: Video; total: number }> {
  const source = isFrameSource(input) ? input : videoSource(input);
  const { frames, total } = await lastFrames(source, keep);
  if (total === 0) throw new FrameCountError('input', 'the clip has no frames');
  return { clip: stackFrames(frames, source.height, source.width, source.fps), total };
}

/** The decoder's T5 text: the prompt's embeddings, else the one given, else aux_vars.pt beside the decoder. */
async function decoderText(o: ArVideo2WorldOptions): Promise<HostText> {
  if (o.embeddings) return o.embeddings;
  if (o.decoderContext) return o.decoderContext;
  if (typeof o.decoder === 'string') return readDecoderContext(o.decoder, o.fs);
  throw new ArArgumentError('decoder', 'given loaded: its T5 text cannot be found beside it (aux_vars.pt); give embeddings or decoderContext');
}

async function run(
  model: ArTransformer, tokenizer: CausalDiscreteVideoTokenizer, backend: Backend, free: (m: { dispose(): void }) => void, o: ArVideo2WorldOptions,
): Promise<ArVideo2WorldResult> {
  const cfg = model.config;
  const tc = tokenizer.temporalCompression;
  const { clip, total } = await contextClip(o.input, o.contextFrames ?? defaultContextFrames(cfg, tc, Number.POSITIVE_INFINITY));
  const plan = planArVideo2World(model, tokenizer, [total, clip.height, clip.width], o);
  const [, H, W] = plan.grid;
  const dv = { vocabSize: tokenizer.vocabSize, temporalCompression: tc, spatialCompression: tokenizer.spatialCompression };
  const gridAll = [plan.contextLatentFrames + plan.latentFrames, H, W] as const;

  // ---- the decoder's text and folders, checked before a token is generated
  let text: HostText | null = null;
  let components: ComponentBytes[] = [];
  if (plan.decode === 'diffusion-decoder') {
    text = await decoderText(o);
    const folder = <M>(s: Source<M> | undefined): string | null => (typeof s === 'string' ? s : null);
    components = await checkDecoderFolders(folder(o.decoder), folder(o.cvTokenizer), backend, { dv, grid: gridAll, textDim: text.shape[1] }, o.fs, {
      cv: typeof o.cvTokenizer === 'object' ? cvGeometry(o.cvTokenizer) : undefined,
    });
  }

  // ---- 1. encode the context frames: one chunk, exactly as the clip of its own
  const t0 = performance.now();
  const ctx = plan.contextFrames;
  const context = sliceFrames(clip, clip.frames - ctx, clip.frames);
  const encoded = await tokenize(tokenizer, context, { chunkFrames: Math.max(tc, ctx - 1), signal: o.signal });
  const contextTokens = (await encoded.read()).indices!.data;
  encoded.dispose();
  stage(o, 'encode', 'frames', ctx)(ctx);
  const t1 = performance.now();

  // ---- 2. prompt, 3. generate
  const prompt = toArPrompt(contextTokens, cfg);
  let embeddings: Tensor | null = null;
  // a base model's embeddings (with a decoder) condition the decoder alone
  if (o.embeddings && model.isCrossAttention) {
    const [Lc, D] = o.embeddings.shape;
    const rows = Math.max(Lc, o.embeddingRows ?? 512);
    const padded = new Float32Array(rows * D);
    padded.set(o.embeddings.data.subarray(0, Lc * D));
    embeddings = F.fromArray(model.backend, padded, [1, rows, D]);
  }
  const report = stage(o, 'generate', 'tokens', plan.generateTokens);
  let generated: Int32Array;
  // NaN / Inf counts of every step's logits, kept on the device and read once after generation
  const nonFinite = F.zeros(model.backend, [plan.generateTokens, 2], 'i32');
  let logitsSize = 0;
  try {
    const r = await generate(model, { data: prompt, shape: [1, prompt.length] }, {
      maxGenLen: plan.generateTokens,
      temperature: o.temperature ?? 1,
      topP: o.topP === undefined ? 0.8 : o.topP,
      seed: o.seed ?? 0,
      context: embeddings,
      // The plan backend reads zeros, so every sampled id is 0: stopping there ends generation after
      // the first decoded step, whose memory every later step repeats (the KV cache and the output
      // are sized for the whole grid before the first step).
      ...(model.backend.name === 'plan' ? { stopTokens: [0] } : {}),
      onStep: (done) => report(done),
      onLogits: (logits, k) => {
        logitsSize = logits.size;
        F.setSlice(nonFinite, F.countNonFinite(logits).reshape([1, 2]), [k, 0]);
      },
    });
    await checkStepCounts(nonFinite, logitsSize, { component: 'ar transformer', tensor: 'logits' });
    if (r.generated !== plan.generateTokens) {
      // upstream repeats the last token to fill the grid when generation stops early
      generated = new Int32Array(plan.generateTokens).fill(r.ids[r.generated - 1]);
      generated.set(r.ids.subarray(0, r.generated));
    } else generated = r.ids;
  } finally {
    embeddings?.dispose();
    nonFinite.dispose();
  }
  const t2 = performance.now();

  // ---- 4. back to tokenizer ids, decode the whole grid
  const t = plan.contextLatentFrames + plan.latentFrames;
  const tokens = new Int32Array(t * H * W);
  tokens.set(contextTokens);
  tokens.set(fromArTokens(generated, tokenizer.vocabSize), contextTokens.length);
  let decoded: Video;
  let decoder: ArVideo2WorldResult['decoder'];
  if (plan.decode === 'diffusion-decoder') {
    // the AR model and the DV tokenizer are done with: the 7B decoder never sits beside them
    free(model);
    free(tokenizer);
    const steps = o.decoderSteps ?? 15;
    const guidance = o.decoderGuidance ?? 1.8;
    const r = await decodeArTokens({
      ids: tokens, grid: gridAll, dv, text: text!, decoder: o.decoder!, cvTokenizer: o.cvTokenizer!, backend, fs: o.fs,
      steps, guidance, seed: o.decoderSeed ?? o.seed ?? 0, fps: clip.fps, onPhase: o.onPhase, onProgress: o.onProgress, signal: o.signal,
    });
    decoded = r.video;
    decoder = { chunks: r.chunks, steps, guidance, latentShape: r.latentShape, seconds: r.seconds };
  } else {
    decoded = await detokenize(tokenizer, { indices: { data: tokens, shape: [1, t, H, W] } }, { signal: o.signal });
  }
  if (clip.fps) decoded.fps = clip.fps;
  const video = await guardOutput(o.guardrails, decoded, o);
  if (plan.decode === 'dv') stage(o, 'decode', 'frames', video.frames)(video.frames);
  const t3 = performance.now();
  return {
    plan,
    video,
    tokens,
    contextTokens,
    seconds: { encode: (t1 - t0) / 1000, generate: (t2 - t1) / 1000, decode: (t3 - t2) / 1000 },
    tokensPerSecond: plan.generateTokens / ((t2 - t1) / 1000),
    decode: plan.decode,
    ...(decoder ? { decoder } : {}),
    components,
  };
}
