// Cosmos' prompt encoding with the T5 encoder: SentencePiece ids (</s> appended, padded to a fixed
// length), the encoder with the padding mask, the padded positions zeroed. T5TextEncoder is the
// tokenizer and the model loaded together from a transformers-style folder.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { scope, type Tensor } from '../../engine/tensor.js';
import { type FileSystem, fileSystem, readBytes } from '../../io/files.js';
import { join } from '../../io/path.js';
import { SentencePieceModelError } from '../../text/errors.js';
import { SentencePieceProcessor } from '../../text/sentencepiece.js';
import { T5Tokenizer } from '../../text/t5-tokenizer.js';
import { loadModule } from '../load.js';
import { type T5EncoderModel, T5EncoderFamily } from './encoder.js';

export interface EncodePromptsOptions {
  /** tokens per prompt after padding/truncation (Cosmos: 512) */
  maxLength?: number;
}

export interface PromptEmbeddings {
  /** [B, maxLength, d_model]; rows at positions >= lengths[b] are zero */
  embeddings: Tensor;
  /** [B, maxLength] 1 = token, 0 = padding */
  mask: Int32Array;
  ids: Int32Array;
  /** real tokens per prompt, </s> included */
  lengths: number[];
}

/**
 * Cosmos' prompt encoding: tokenize (</s> appended, right-padded with <pad> to maxLength,
 * truncated), run the encoder with the padding mask, then zero the embeddings of the padded
 * positions.
 */
export function encodePrompts(model: T5EncoderModel, tokenizer: T5Tokenizer, texts: readonly string[], opts: EncodePromptsOptions = {}): PromptEmbeddings {
  const maxLength = opts.maxLength ?? 512;
  if (texts.length === 0) throw new RangeError('encodePrompts: no texts');
  const batch = tokenizer.encodeBatch(texts, { maxLength, padding: true, truncation: true });
  const [B, L] = batch.shape;
  const embeddings = scope(() => {
    const h = model.forward({ data: batch.ids, shape: [B, L] }, { data: batch.mask, shape: [B, L] });
    const keep = F.fromArray(h.backend, Float32Array.from(batch.mask), [B, L, 1]);
    return F.where(keep, h, F.zeros(h.backend, [1]));
  });
  return { embeddings, mask: batch.mask, ids: batch.ids, lengths: batch.lengths };
}

/** The T5 encoder with its SentencePiece tokenizer, as one prompt encoder. */
export class T5TextEncoder {
  constructor(readonly model: T5EncoderModel, readonly tokenizer: T5Tokenizer) {}

  /**
   * A transformers-style folder: config.json, *.safetensors, spiece.model (or `tokenizer`, a
   * spiece.model elsewhere); `config`: the folder's config.json when the caller has read it.
   */
  static async load(dir: string, backend: Backend, opts: { tokenizer?: string; config?: Record<string, unknown>; fs?: FileSystem } = {}): Promise<T5TextEncoder> {
    const fs = opts.fs ?? fileSystem();
    const spPath = opts.tokenizer ?? join(dir, 'spiece.model');
    const bytes = await readBytes(spPath, fs);
    let sp: SentencePieceProcessor;
    try {
      sp = SentencePieceProcessor.fromBytes(bytes);
    } catch (e) {
      if (e instanceof SentencePieceModelError) e.message = `${spPath}: ${e.message}`;
      throw e;
    }
    const { model } = await loadModule(T5EncoderFamily, dir, backend, { config: opts.config, fs });
    return new T5TextEncoder(model, new T5Tokenizer(sp));
  }

  encodePrompts(texts: readonly string[], opts: EncodePromptsOptions = {}): PromptEmbeddings {
    return encodePrompts(this.model, this.tokenizer, texts, opts);
  }

  dispose(): void {
    this.model.dispose();
  }
}
