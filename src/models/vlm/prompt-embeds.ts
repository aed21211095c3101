// The Cosmos-Predict2.5 / Transfer2.5 prompt encoder (spec prompt_embeds.md): Cosmos-Reason1's
// language model (Qwen2.5-VL text decoder) run on the chat-templated prompt ids with no attention
// mask (pads are ordinary tokens under the causal mask, positions 0..L-1 on all three M-RoPE axes),
// and every hidden state but the embeddings standardised per token and concatenated on channels:
//   hidden state i (1 <= i < N) = output of decoder layer i-1, hidden state N = the final RMSNorm
//   of the last layer's output; s_i = (h_i - mean) / (unbiased std + 1e-8) over channels;
//   result [B, L, N * hidden], channel block k holding s_{k+1}.
// Only `model.*` is declared, so the vision tower and lm_head are never read from the checkpoint.
// Each layer's output is standardised into its block of the result as soon as it exists, so at
// most two layers' raw states live at once.
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import { type ModuleFamily, loadModule } from '../load.js';
import { type VlmConfig, VlmInputError, parseVlmConfig } from './config.js';
import { type DecoderContext, Qwen2_5_VLModel, attentionMask, mropeTables } from './language.js';
import { COSMOS_PROMPT_MAX_LENGTH, type PromptIds, ReasonPromptTokenizer } from './prompt-tokenizer.js';

export {
  COSMOS_PROMPT_MAX_LENGTH, COSMOS_PROMPT_SYSTEM, type PromptIds, type PromptTokenizerFiles, ReasonPromptTokenizer,
} from './prompt-tokenizer.js';

/** Added to the std before dividing (upstream's epsilon). */
export const STANDARDIZE_EPS = 1e-8;

/**
 * (h - mean) / (std + 1e-8) over the last axis, std unbiased (divided by channels - 1, torch's
 * default). A constant row gives zeros, not NaN.
 */
export function standardizeTokens(h: Tensor): Tensor {
  const D = h.shape[h.rank - 1];
  if (!(D >= 2)) throw new ShapeError(`standardizeTokens: the unbiased std needs at least 2 channels, got ${JSON.stringify(h.shape)}`);
  return scope(() => {
    const c = F.sub(h, F.mean(h, -1, true));
    const std = F.sqrt(F.scale(F.sum(F.square(c), -1, true), 1 / (D - 1)));
    return F.div(c, F.affine(std, 1, STANDARDIZE_EPS));
  });
}

/** Qwen2.5-VL's language model alone (`model.*`), as the prompt encoder runs it. */
export class ReasonTextModel extends Module {
  readonly model: Qwen2_5_VLModel;

  constructor(readonly config: VlmConfig) {
    super();
    this.model = this.add('model', new Qwen2_5_VLModel(config.text));
  }

  /**
   * Released checkpoints: model.* (kept), visual.* and lm_head.* (dropped); newer transformers
   * save model.language_model.* (renamed) and model.visual.* (dropped).
   */
  mapKey(k: string): string | null {
    if (k.startsWith('model.language_model.')) return `model.${k.slice('model.language_model.'.length)}`;
    if (k.startsWith('model.visual.') || k.startsWith('visual.') || k.startsWith('lm_head.')) return null;
    return k;
  }

  get backend(): Backend {
    return this.model.embed_tokens.weight.t.backend;
  }

  /** channels of the concatenated states: hidden layers x hidden size */
  get width(): number {
    return this.config.text.numHiddenLayers * this.config.text.hiddenSize;
  }

  /**
   * transformers' hidden states 1..N for ids [B, L] (positions 0..L-1, no padding mask), handed
   * to `each(index, h)` one at a time as [B, L, hidden]; `h` is freed when `each` returns. Taps:
   * `hidden_states.<i>` (0 = the embeddings), `model.layers.<i>`.
   */
  hiddenStates(ids: Int32Array, B: number, L: number, each: (index: number, h: Tensor) => void): void {
    const text = this.config.text;
    if (ids.length !== B * L) throw new VlmInputError(`input_ids: hold ${ids.length} values for [${B}, ${L}]`);
    for (const id of ids) {
      if (!(id >= 0 && id < text.vocabSize)) throw new VlmInputError(`input_ids: token ${id} is outside the vocabulary [0, ${text.vocabSize})`);
    }
    const be = this.backend;
    const positions = Int32Array.from({ length: 3 * B * L }, (_, i) => i % L);
    const tables = mropeTables(positions, B, L, text);
    const m = attentionMask(null, B, L, L, 0, text.slidingWindow);
    const ctx: DecoderContext = {
      cos: F.fromArray(be, tables.cos, [B, L, text.headDim]).keep(),
      sin: F.fromArray(be, tables.sin, [B, L, text.headDim]).keep(),
      mask: m ? F.fromArray(be, m, [B, 1, L, L]).keep() : null,
      cache: null,
      past: 0,
    };
    let h: Tensor | null = null;
    try {
      h = scope(() => this.tap(this.model.embed_tokens.forward(F.fromArray(be, ids, [B, L], 'i32')), 'hidden_states.0')).keep();
      const layers = this.model.layers;
      for (let i = 0; i < layers.length; i++) {
        const prev: Tensor = h;
        h = scope(() => layers[i].forward(prev, ctx)).keep();
        prev.dispose();
        if (i < layers.length - 1) each(i + 1, this.tap(h, `hidden_states.${i + 1}`));
      }
      const last: Tensor = h;
      h = scope(() => this.model.norm.forward(last)).keep();
      last.dispose();
      each(layers.length, this.tap(h, `hidden_states.${layers.length}`));
    } finally {
      h?.dispose();
      ctx.cos.dispose();
      ctx.sin.dispose();
      ctx.mask?.dispose();
    }
  }

  /** ids [B, L] -> standardised, concatenated hidden states [B, L, width] (f32). */
  embed(ids: Int32Array, B: number, L: number): Tensor {
    const D = this.config.text.hiddenSize;
    const bytes = B * L * this.width * 4;
    if (bytes > this.backend.limits.maxBindingBytes) {
      // each layer's block is written into the one result buffer, which a kernel binds whole
      throw new UserError(`prompt embeddings: [${B}, ${L}, ${this.width}] take ${bytes} bytes, more than the ${this.backend.limits.maxBindingBytes} bytes one binding of the ${this.backend.name} backend holds: encode fewer prompts at once or use a shorter max length`);
    }
    const out = F.zeros(this.backend, [B, L, this.width]);
    try {
      this.hiddenStates(ids, B, L, (i, h) => {
        scope(() => F.setSlice(out, standardizeTokens(h), [0, 0, (i - 1) * D]));
      });
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  }
}

/** How loadModule builds the text model from a Qwen2.5-VL config.json and maps its keys. */
export const ReasonTextFamily: ModuleFamily<ReasonTextModel> = {
  name: 'Qwen2_5_VLModel (Cosmos-Reason1 text encoder)',
  build: (config) => new ReasonTextModel(parseVlmConfig(config)),
  loadOptions: (model) => ({ mapKey: (k) => model.mapKey(k) }),
};

export interface ReasonPromptEncoderOptions {
  /** tokenizer folder: tokenizer.json, tokenizer_config.json, and chat_template.jinja or chat_template.json (or the template inside tokenizer_config.json) */
  tokenizerDir?: string;
  /** text_encoder config.json override */
  config?: Record<string, unknown>;
  fs?: FileSystem;
  /** refuse, before allocating, text weights of more bytes than this */
  maxBytes?: number;
}

export interface EncodedPrompts {
  /** [B, maxLength, width] */
  embeddings: Tensor;
  /** [B, maxLength] row-major */
  ids: Int32Array;
  /** tokens per rendered prompt before truncation / padding */
  lengths: number[];
}

/** The prompt encoder of Cosmos-Predict2.5 / Transfer2.5: ReasonPromptTokenizer + ReasonTextModel. */
export class ReasonPromptEncoder {
  /** hidden layers x hidden size (100352 for Reason1-7B) */
  readonly width: number;

  constructor(readonly model: ReasonTextModel, readonly tokenizer: ReasonPromptTokenizer) {
    this.width = model.width;
  }

  /**
   * A text_encoder folder (config.json + safetensors, sharded or not) with its tokenizer in
   * `tokenizerDir` (default: the same folder). The tokenizer is read first, so a folder without
   * one fails before any weight is read.
   */
  static async load(textEncoderDir: string, backend: Backend, opts: ReasonPromptEncoderOptions = {}): Promise<ReasonPromptEncoder> {
    const tokenizer = await ReasonPromptTokenizer.load(opts.tokenizerDir ?? textEncoderDir, { fs: opts.fs });
    const { model } = await loadModule(ReasonTextFamily, textEncoderDir, backend, { config: opts.config, fs: opts.fs, maxBytes: opts.maxBytes });
    return new ReasonPromptEncoder(model, tokenizer);
  }

  /** Chat-templated [system, user] prompts -> ids [B, maxLength] (see ReasonPromptTokenizer.tokenize). */
  tokenize(prompts: readonly string[], maxLength: number = COSMOS_PROMPT_MAX_LENGTH): PromptIds {
    return this.tokenizer.tokenize(prompts, maxLength);
  }

  /** ids [B, L] -> [B, L, width] standardised hidden states (no attention mask, positions 0..L-1). */
  embedIds(ids: Int32Array, batch: number, length: number): Tensor {
    return this.model.embed(ids, batch, length);
  }

  /** tokenize + embedIds */
  encode(prompts: readonly string[], opts: { maxLength?: number } = {}): EncodedPrompts {
    const t = this.tokenize(prompts, opts.maxLength ?? COSMOS_PROMPT_MAX_LENGTH);
    return { embeddings: this.embedIds(t.ids, t.batch, t.length), ids: t.ids, lengths: t.lengths };
  }

  dispose(): void {
    this.model.dispose();
  }
}
