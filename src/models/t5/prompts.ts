// Cosmos' prompt encoding with the T5 encoder: SentencePiece ids (</s> appended, padded to a fixed
// length), the encoder with the padding mask, the padded positions zeroed. T5TextEncoder is the
// tokenizer and the model loaded together from a transformers-style folder, with its weights on
// the device (resident) or read block by block at each encode (streamed, streamed.ts).
//
// Each prompt runs through the encoder with its real tokens only. The padded positions cannot
// change them: every real query gives a padded key the score finfo.min, whose softmax weight is
// exactly 0, and the feed-forward and norms work per position; their own outputs are zeroed
// afterwards. So a 20-token prompt costs 20 positions of work, not 512 (the bias table of the
// real positions is the same corner of the full one).
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { scope, type Tensor } from '../../engine/tensor.js';
import { type FileSystem, fileSystem, readBytes } from '../../io/files.js';
import { join } from '../../io/path.js';
import { SentencePieceModelError } from '../../text/errors.js';
import { SentencePieceProcessor } from '../../text/sentencepiece.js';
import { T5Tokenizer, type T5Batch as TokenBatch } from '../../text/t5-tokenizer.js';
import { loadModule, openModule } from '../load.js';
import { type T5EncoderModel, T5EncoderFamily } from './encoder.js';
import { type T5WeightSource, encodeStreamed } from './streamed.js';

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
  /** tokens each prompt lost to truncation at maxLength (0 when it fit) */
  cut: number[];
}

function tokenize(tokenizer: T5Tokenizer, texts: readonly string[], opts: EncodePromptsOptions): TokenBatch {
  if (texts.length === 0) throw new RangeError('encodePrompts: no texts');
  return tokenizer.encodeBatch(texts, { maxLength: opts.maxLength ?? 512, padding: true, truncation: true });
}

/** Each row's real ids: the tokenizer pads on the right, so they are the row's first `lengths[b]`. */
function realIds(batch: TokenBatch): Int32Array[] {
  const [, L] = batch.shape;
  return batch.lengths.map((n, b) => batch.ids.subarray(b * L, b * L + n));
}

/** Per-row states [1, n_b, D] (null for an empty row) zero-padded to [B, L, D]. */
function padRows(rows: readonly (Tensor | null)[], L: number, D: number, backend: Backend): Tensor {
  return scope(() => {
    const padded = rows.map((h) => (h ? (h.shape[1] < L ? F.pad(h, [[0, 0], [0, L - h.shape[1]], [0, 0]]) : h) : F.zeros(backend, [1, L, D])));
    return padded.length === 1 ? padded[0] : F.concat(padded, 0);
  });
}

/**
 * Cosmos' prompt encoding: tokenize (</s> appended, right-padded with <pad> to maxLength,
 * truncated), run the encoder on each prompt's tokens, and give the padded positions zeros.
 */
export function encodePrompts(model: T5EncoderModel, tokenizer: T5Tokenizer, texts: readonly string[], opts: EncodePromptsOptions = {}): PromptEmbeddings {
  const batch = tokenize(tokenizer, texts, opts);
  const backend = model.shared.weight.t.backend;
  const embeddings = scope(() => {
    const rows = realIds(batch).map((ids) => (ids.length ? model.forward({ data: ids, shape: [1, ids.length] }) : null));
    return padRows(rows, batch.shape[1], model.config.dModel, backend);
  });
  return { embeddings, mask: batch.mask, ids: batch.ids, lengths: batch.lengths, cut: batch.cut };
}

export interface T5LoadOptions {
  /** a spiece.model elsewhere than the folder's */
  tokenizer?: string;
  /** the folder's config.json when the caller has read it */
  config?: Record<string, unknown>;
  fs?: FileSystem;
  /**
   * Keep no weights loaded: each encode reads the embedding and every block from the checkpoint
   * as the pass reaches it and frees it after (peak: one block), the checkpoint open until
   * dispose(). For encoding once and freeing (a pipeline's prompt phase: no more reads than a
   * load), or where the encoder does not fit the device. Default false: weights loaded once.
   */
  streamed?: boolean;
}

/** The T5 encoder with its SentencePiece tokenizer, as one prompt encoder. */
export class T5TextEncoder {
  /**
   * `weights`: where a streamed encoder reads its weights at each encode (its model then holds
   * none between encodes); `close` releases that source.
   */
  constructor(
    readonly model: T5EncoderModel,
    readonly tokenizer: T5Tokenizer,
    private readonly weights: (T5WeightSource & { backend: Backend; close(): Promise<void> }) | null = null,
  ) {}

  /**
   * A transformers-style folder: config.json, *.safetensors, spiece.model (or `tokenizer`, a
   * spiece.model elsewhere). Resident: the weights loaded now; streamed: checked against the
   * config now, read at each encode.
   */
  static async load(dir: string, backend: Backend, opts: T5LoadOptions = {}): Promise<T5TextEncoder> {
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
    const tokenizer = new T5Tokenizer(sp);
    if (!opts.streamed) {
      const { model } = await loadModule(T5EncoderFamily, dir, backend, { config: opts.config, fs });
      return new T5TextEncoder(model, tokenizer);
    }
    const opened = await openModule(T5EncoderFamily, dir, backend, { config: opts.config, fs });
    return new T5TextEncoder(opened.model, tokenizer, { source: opened.source, options: opened.loadOptions, backend, close: opened.close });
  }

  /** Whether the weights are read at each encode (see T5LoadOptions.streamed). */
  get streamed(): boolean {
    return this.weights !== null;
  }

  /** The prompts' states [B, maxLength, d_model], resident or streamed (one pass over the weights for all of them). */
  async encode(texts: readonly string[], opts: EncodePromptsOptions = {}): Promise<PromptEmbeddings> {
    if (!this.weights) return this.encodePrompts(texts, opts);
    const batch = tokenize(this.tokenizer, texts, opts);
    const ids = realIds(batch);
    const present = ids.filter((r) => r.length > 0);
    const states = await encodeStreamed(this.model, this.weights, this.weights.backend, present);
    let k = 0;
    const rows = ids.map((r) => (r.length ? states[k++] : null));
    let embeddings: Tensor | null = null;
    try {
      embeddings = padRows(rows, batch.shape[1], this.model.config.dModel, this.weights.backend);
      return { embeddings, mask: batch.mask, ids: batch.ids, lengths: batch.lengths, cut: batch.cut };
    } finally {
      // a lone prompt that fills maxLength is its own result
      for (const s of states) if (s !== embeddings) s.dispose();
    }
  }

  /** The resident encoder's states (synchronous); a streamed encoder encodes with encode(). */
  encodePrompts(texts: readonly string[], opts: EncodePromptsOptions = {}): PromptEmbeddings {
    if (this.weights) throw new Error('T5TextEncoder: a streamed encoder has no weights loaded between passes; use encode()');
    return encodePrompts(this.model, this.tokenizer, texts, opts);
  }

  dispose(): void {
    this.model.dispose();
    // the checkpoint's handles: nothing waits on their closing
    this.weights?.close().catch(() => {});
  }
}
