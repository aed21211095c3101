// The prompt phase of the world pipelines: the text states the transformer cross-attends to, for
// the prompt and (with guidance > 1) the negative prompt. They come precomputed (a safetensors
// file with `prompt_embeds` / `negative_prompt_embeds`, or the arrays themselves) or from a T5
// encoder (Cosmos-1.0, Predict2; Predict2.5 and Transfer2.5 encode with the Reason VLM, so their
// prompts always come precomputed).
import type { Backend } from '../../engine/backend.js';
import type { DType, RawArray } from '../../engine/dtype.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { type FileSystem, fileSystem } from '../../io/files.js';
import { openSafetensors } from '../../io/safetensors.js';
import type { Config } from '../../models/load.js';
import { T5TextEncoder } from '../../models/t5/prompts.js';
import { type RunOptions, stage } from '../progress.js';
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
  /** T5 tokens per prompt (default 512) */
  maxSequenceLength?: number;
}

export interface PromptEmbeds {
  prompt: Tensor;
  negative: Tensor | null;
  /** where they came from, for messages: 'T5', a file, or 'arrays' */
  source: string;
}

/** Where prompts are encoded: a loaded encoder (left loaded), a T5 folder, or nowhere (and why). */
export type TextEncoderSource =
  | { loaded: T5TextEncoder }
  | { dir: string; tokenizer?: string; config?: Config }
  | { unsupported: string };

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
  report(0, { source: 'T5' });
  const te = 'loaded' in encoder ? encoder.loaded : await T5TextEncoder.load(encoder.dir, backend, { tokenizer: encoder.tokenizer, config: encoder.config, fs });
  let prompt: Tensor | null = null;
  let negative: Tensor | null = null;
  try {
    if (te.model.config.dModel !== width) {
      throw new PipelineInputError('text_encoder', `the T5 encoder gives states of width ${te.model.config.dModel}, the transformer reads ${width}`);
    }
    const maxLength = o.maxSequenceLength ?? 512;
    const p = te.encodePrompts([o.prompt], { maxLength });
    prompt = p.embeddings.keep();
    report(1, { source: 'T5', tokens: p.lengths[0] });
    if (needNegative) {
      negative = te.encodePrompts([o.negativePrompt ?? DEFAULT_NEGATIVE_PROMPT], { maxLength }).embeddings.keep();
      report(2, { source: 'T5' });
    }
    return { prompt, negative, source: 'T5' };
  } catch (e) {
    prompt?.dispose();
    negative?.dispose();
    throw e;
  } finally {
    if (!('loaded' in encoder)) te.dispose();
  }
}
