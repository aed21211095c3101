// The prompt phase of the world pipelines: the text states the transformer cross-attends to, for
// the prompt and (with guidance > 1) the negative prompt. They come precomputed (a safetensors
// file with `prompt_embeds` / `negative_prompt_embeds`, or the arrays themselves) or from the
// folder's text encoder: T5 (Cosmos-1.0, Predict2) or Cosmos-Reason1 (Predict2.5, Transfer2.5:
// every layer's standardised hidden state, models/vlm/prompt-embeds.ts). The encoder is loaded
// for this phase only and freed before the transformer comes, so the peak is the larger of the
// two, not their sum.
import type { Backend } from '../../engine/backend.js';
import type { DType, RawArray } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { type FileSystem, fileSystem } from '../../io/files.js';
import { openSafetensors, writeSafetensors } from '../../io/safetensors.js';
import type { Config } from '../../models/load.js';
import { T5TextEncoder } from '../../models/t5/prompts.js';
import { ReasonPromptEncoder } from '../../models/vlm/prompt-embeds.js';
import { type RunOptions, stage } from '../progress.js';
import { checkFinite, requireFiniteRaw } from '../finite.js';
import { PipelineInputError } from './errors.js';

/** diffusers' default negative prompt of the Cosmos pipelines. */
export const DEFAULT_NEGATIVE_PROMPT =
  'The video captures a series of frames showing ugly scenes, static with no motion, motion blur, ' +
  'over-saturation, shaky footage, low resolution, grainy texture, pixelated images, poorly lit areas, ' +
  'underexposed and overexposed scenes, poor color balance, washed out colors, choppy sequences, ' +
  'jerky movements, low frame rate, artifacting, color banding, unnatural transitions, outdated special effects, ' +
  'fake elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and flickering. ' +
  'Overall, the video is of poor quality.';

/** A host array and its shape (row-major). */
export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/** Precomputed text states: [1, S, D] or [S, D] each. */
export interface PromptEmbeddingArrays {
  prompt: HostTensor;
  /** needed for guidance > 1 */
  negative?: HostTensor | null;
}

export interface PromptOptions {
  prompt?: string;
  /** default: DEFAULT_NEGATIVE_PROMPT */
  negativePrompt?: string;
  /** precomputed text states instead of the text encoder: a safetensors path or the arrays */
  embeddings?: string | PromptEmbeddingArrays;
  /** text-encoder tokens per prompt (default 512, as upstream for T5 and Reason1) */
  maxSequenceLength?: number;
  /**
   * Encode the prompts on this backend instead of the run's (e.g. T5 on WebGPU for a run on the
   * CPU); the states are then copied to the run's backend.
   */
  textBackend?: Backend;
}

export interface PromptEmbeds {
  prompt: Tensor;
  negative: Tensor | null;
  /** where they came from, for messages: 'T5', 'Reason1', a file, or 'arrays' */
  source: string;
}

/** The states read back to the host (e.g. for writing with writeEmbeddings). */
export async function embeddingArrays(e: PromptEmbeds): Promise<PromptEmbeddingArrays> {
  const host = async (t: Tensor): Promise<HostTensor> => ({ data: Float32Array.from(await t.read()), shape: [...t.shape] });
  return { prompt: await host(e.prompt), negative: e.negative ? await host(e.negative) : null };
}

/** Save text states as `prompt_embeds` (+ `negative_prompt_embeds`), the file `embeddings` reads. */
export async function writeEmbeddings(path: string, e: PromptEmbeddingArrays, metadata: Record<string, string> = {}, fs?: FileSystem): Promise<void> {
  const t = (h: HostTensor) => ({ dtype: 'f32' as const, shape: h.shape, raw: h.data });
  await writeSafetensors(path, { prompt_embeds: t(e.prompt), ...(e.negative ? { negative_prompt_embeds: t(e.negative) } : {}) }, { format: 'cosmos-ts.prompt-embeds.v1', ...metadata }, fs);
}

/** Where prompts are encoded: a loaded encoder (left loaded), a T5 or Reason1 folder, or nowhere (and why). */
export type TextEncoderSource =
  | { loaded: T5TextEncoder | ReasonPromptEncoder }
  | { dir: string; tokenizer?: string; config?: Config }
  | { reason: string; tokenizerDir?: string; config?: Config }
  | { unsupported: string };

/** What encodePrompt needs of a loaded encoder: prompts -> [1, S, width] states each. */
interface LoadedEncoder {
  name: string;
  width: number;
  /** each text's states, in order; `done(i, tokens, cut)` when text i is encoded (`cut`: its tokens past maxLength, dropped) */
  encodeAll(texts: string[], maxLength: number, done: (i: number, tokens: number, cut: number) => void): Promise<Tensor[]>;
  dispose(): void;
}

function asEncoder(e: T5TextEncoder | ReasonPromptEncoder): LoadedEncoder {
  if (e instanceof ReasonPromptEncoder) {
    return {
      name: 'Reason1', width: e.width, dispose: () => e.dispose(),
      async encodeAll(texts, maxLength, done) {
        const out: Tensor[] = [];
        try {
          for (const [i, text] of texts.entries()) {
            const r = e.encode([text], { maxLength });
            out.push(r.embeddings);
            // the tokenizer's lengths are before truncation
            done(i, r.lengths[0], Math.max(0, r.lengths[0] - maxLength));
          }
          return out;
        } catch (err) {
          for (const t of out) t.dispose();
          throw err;
        }
      },
    };
  }
  return {
    name: 'T5', width: e.model.config.dModel, dispose: () => e.dispose(),
    // one pass for all the texts: a streamed encoder reads its weights once
    async encodeAll(texts, maxLength, done) {
      const r = await e.encode(texts, { maxLength });
      try {
        const rows = texts.map((_, i) => (texts.length === 1 ? r.embeddings.keep() : F.slice(r.embeddings, 0, i, i + 1)));
        for (let i = 0; i < rows.length; i++) done(i, r.lengths[i] + r.cut[i], r.cut[i]);
        return rows;
      } finally {
        if (texts.length > 1) r.embeddings.dispose();
      }
    },
  };
}

async function openEncoder(encoder: Exclude<TextEncoderSource, { unsupported: string }>, backend: Backend, fs: FileSystem): Promise<{ enc: LoadedEncoder; owned: boolean }> {
  if ('loaded' in encoder) return { enc: asEncoder(encoder.loaded), owned: false };
  if ('reason' in encoder) {
    const e = await ReasonPromptEncoder.load(encoder.reason, backend, { tokenizerDir: encoder.tokenizerDir, config: encoder.config, fs });
    return { enc: asEncoder(e), owned: true };
  }
  // encoded once and freed: streamed, so the peak is one block of the encoder, not all of it
  const t5 = await T5TextEncoder.load(encoder.dir, backend, { tokenizer: encoder.tokenizer, config: encoder.config, fs, streamed: true });
  return { enc: asEncoder(t5), owned: true };
}

type Stored = { dtype: DType; raw: RawArray; shape: readonly number[] };

function toBatch1(t: Stored, name: string, width: number, backend: Backend, from: string): Tensor {
  const s = t.shape;
  const shape = s.length === 2 ? [1, s[0], s[1]] : [...s];
  if (shape.length !== 3 || shape[0] !== 1 || shape[1] < 1) {
    throw new PipelineInputError('embeddings', `${from}: ${name} must be [1, S, ${width}] or [S, ${width}], got [${s.join(', ')}]`);
  }
  if (shape[2] !== width) {
    throw new PipelineInputError('embeddings', `${from}: ${name} has width ${shape[2]} but the transformer reads text states of width ${width}`);
  }
  requireFiniteRaw(t.dtype, t.raw, from === 'arrays' ? 'embeddings' : from, `tensor ${name}`);
  return F.fromRaw(backend, t.raw, shape, t.dtype);
}

/** `prompt_embeds` / `negative_prompt_embeds` from a safetensors file or from arrays, as batch-1 tensors. */
export async function readEmbeddings(from: string | PromptEmbeddingArrays, width: number, needNegative: boolean, backend: Backend, fs: FileSystem = fileSystem()): Promise<PromptEmbeds> {
  if (typeof from !== 'string') {
    if (needNegative && !from.negative) throw new PipelineInputError('embeddings', 'no negative prompt embeddings; guidance > 1 needs them (or set guidance 1)');
    const arr = (h: HostTensor): Stored => ({ dtype: 'f32', raw: h.data, shape: h.shape });
    const negative = needNegative ? toBatch1(arr(from.negative!), 'negative', width, backend, 'arrays') : null;
    try {
      return { prompt: toBatch1(arr(from.prompt), 'prompt', width, backend, 'arrays'), negative, source: 'arrays' };
    } catch (e) {
      negative?.dispose();
      throw e;
    }
  }
  const path = from;
  if (!(await fs.stat(path))) throw new PipelineInputError('embeddings', `${path} does not exist`);
  const f = await openSafetensors(path, fs);
  try {
    if (!f.has('prompt_embeds')) {
      throw new PipelineInputError('embeddings', `${path} holds no "prompt_embeds" tensor (it has: ${f.names.slice(0, 8).join(', ') || 'nothing'})`);
    }
    if (needNegative && !f.has('negative_prompt_embeds')) {
      throw new PipelineInputError('embeddings', `${path} holds no "negative_prompt_embeds"; guidance > 1 needs them (or set guidance 1)`);
    }
    const prompt = toBatch1(await f.read('prompt_embeds'), 'prompt_embeds', width, backend, path);
    let negative: Tensor | null = null;
    if (needNegative) {
      try {
        negative = toBatch1(await f.read('negative_prompt_embeds'), 'negative_prompt_embeds', width, backend, path);
      } catch (e) {
        prompt.dispose();
        throw e;
      }
    }
    return { prompt, negative, source: path };
  } finally {
    await f.close();
  }
}

/**
 * The prompt phase: the text states of the prompt and, with guidance > 1, of the negative prompt,
 * of width `width`. Reports stage 'prompt' (unit 'prompts').
 */
export async function encodePrompt(
  o: PromptOptions, width: number, guidance: number, encoder: TextEncoderSource, backend: Backend, fs: FileSystem, run: RunOptions,
): Promise<PromptEmbeds> {
  const needNegative = guidance > 1;
  const report = stage(run, 'prompt', 'prompts', needNegative ? 2 : 1);
  if (o.embeddings !== undefined) {
    const e = await readEmbeddings(o.embeddings, width, needNegative, backend, fs);
    report(needNegative ? 2 : 1, { source: e.source });
    return e;
  }
  if (o.prompt === undefined) throw new PipelineInputError('prompt', 'a prompt (or precomputed embeddings) is required');
  if ('unsupported' in encoder) throw new PipelineInputError('embeddings', `needed for this model: ${encoder.unsupported}`);
  // said before the load, which takes a while for a 7B or 11B encoder
  const reason = 'reason' in encoder || ('loaded' in encoder && encoder.loaded instanceof ReasonPromptEncoder);
  report(0, { source: reason ? 'Reason1' : 'T5' });
  const textBackend = 'loaded' in encoder ? backend : (o.textBackend ?? backend);
  const { enc, owned } = await openEncoder(encoder, textBackend, fs);
  let states: Tensor[] = [];
  try {
    if (enc.width !== width) {
      throw new PipelineInputError('text_encoder', `the ${enc.name} encoder gives states of width ${enc.width}, the transformer reads ${width}`);
    }
    const maxLength = o.maxSequenceLength ?? 512;
    const texts = needNegative ? [o.prompt, o.negativePrompt ?? DEFAULT_NEGATIVE_PROMPT] : [o.prompt];
    states = await enc.encodeAll(texts, maxLength, (i, tokens, cut) => {
      // upstream cuts a long prompt to the window silently; here the user is told how much was lost
      if (cut > 0) {
        run.onWarning?.({
          option: i === 0 ? 'prompt' : 'negativePrompt',
          message: `${tokens} tokens, the ${enc.name} encoder reads ${maxLength}: ${cut} tokens cut (shorten it to keep them)`,
        });
      }
      report(i + 1, i === 0 ? { source: enc.name, tokens } : { source: enc.name });
    });
    if (textBackend !== backend) {
      const encoded = states;
      states = [];
      try {
        for (const t of encoded) states.push(F.fromArray(backend, await t.read(), t.shape));
      } finally {
        for (const t of encoded) t.dispose();
      }
    }
    for (const [i, t] of states.entries()) await checkFinite(t, { component: `text encoder (${enc.name})`, step: i ? 'negative prompt' : 'prompt' });
    const [prompt, negative = null] = states;
    return { prompt, negative, source: enc.name };
  } catch (e) {
    for (const t of states) t.dispose();
    throw e;
  } finally {
    if (owned) enc.dispose();
  }
}
