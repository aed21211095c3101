// The text side of the Qwen2.5-VL (Cosmos-Reason1) processor:
//
// * chat-template rendering with @huggingface/jinja, as transformers' `apply_chat_template(...,
//   tokenize=False)` does: the template from the checkpoint (chat_template.jinja, chat_template.json
//   or tokenizer_config.json's `chat_template`), Jinja with trim_blocks and lstrip_blocks (the
//   library's default, like transformers' environment), rendered with messages, tools=None,
//   documents=None, add_generation_prompt and any extra variables (add_vision_id, special tokens).
//   Messages are in the HF format: content is a string or a list of items {type: "text", text},
//   {type: "image", image}, {type: "image_url", image_url}, {type: "video", video} (the template
//   also recognises items by their keys alone).
// * the processor's expansion of every `<|image_pad|>` / `<|video_pad|>` into
//   grid_t * grid_h * grid_w / merge_size^2 copies, grids taken in order over the whole batch
//   (Qwen2_5_VLProcessor.__call__);
// * encoding with the byte-level BPE tokenizer and padding a batch.
import { Template } from '@huggingface/jinja';
import { type FileSystem, fileSystem, readJsonObjectIfPresent, readText } from '../io/files.js';
import { join } from '../io/path.js';
import type { ByteLevelBpeTokenizer } from './bpe.js';
import { ChatTemplateError } from './errors.js';

export interface ChatContentItem {
  type?: string;
  text?: string;
  image?: unknown;
  image_url?: unknown;
  video?: unknown;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content: string | ChatContentItem[];
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** append the assistant header (`<|im_start|>assistant\n`) */
  addGenerationPrompt?: boolean;
  /** prefix images / videos with `Picture k: ` / `Video k: ` (Qwen2-VL template variable) */
  addVisionId?: boolean;
  tools?: unknown[] | null;
  documents?: unknown[] | null;
  /** further template variables (e.g. bos_token, eos_token, as transformers passes the special tokens map) */
  variables?: Record<string, unknown>;
}

/** A compiled chat template. */
export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`chat template: does not parse (${(e as Error).message})`);
    }
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const context: Record<string, unknown> = {
      ...(options.variables ?? {}),
      messages,
      tools: options.tools ?? null,
      documents: options.documents ?? null,
      add_generation_prompt: options.addGenerationPrompt ?? false,
    };
    if (options.addVisionId !== undefined) context.add_vision_id = options.addVisionId;
    try {
      return this.template.render(context);
    } catch (e) {
      throw new ChatTemplateError(`chat template: failed to render (${(e as Error).message})`);
    }
  }
}

/**
 * The chat template of a checkpoint or tokenizer folder: `chat_template.jinja`, else
 * `chat_template.json` {"chat_template": ...}, else tokenizer_config.json's `chat_template`
 * (see chatTemplateOf).
 */
export async function loadChatTemplate(dir: string, name = 'default', fs: FileSystem = fileSystem()): Promise<string> {
  const jinja = join(dir, 'chat_template.jinja');
  if ((await fs.stat(jinja))?.kind === 'file') return readText(jinja, fs);
  for (const file of ['chat_template.json', 'tokenizer_config.json']) {
    const config = await readJsonObjectIfPresent(join(dir, file), file, fs);
    const t = config ? chatTemplateOf(config, name) : undefined;
    if (t !== undefined) return t;
  }
  throw new ChatTemplateError(`${dir}: no chat template (chat_template.jinja, chat_template.json or tokenizer_config.json chat_template)`);
}

/**
 * The `chat_template` of a parsed chat_template.json or tokenizer_config.json: a string, or a list
 * of {name, template} from which `name` (default "default") is taken; undefined when it has none.
 */
export function chatTemplateOf(config: Record<string, unknown>, name = 'default'): string | undefined {
  const v = config.chat_template;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const hit = v.find((x) => x && (x as { name?: string }).name === name) as { template?: string } | undefined;
    return typeof hit?.template === 'string' ? hit.template : undefined;
  }
  return undefined;
}

// ------------------------------------------------------------------ pad expansion

export interface ExpandOptions {
  /** one (t, h, w) row per image, in order over the whole batch */
  imageGridThw?: readonly (readonly number[])[];
  videoGridThw?: readonly (readonly number[])[];
  /** the image processor's merge_size (2 for Qwen2-VL / Qwen2.5-VL) */
  mergeSize: number;
  imageToken?: string;
  videoToken?: string;
}

export const IMAGE_PAD_TOKEN = '<|image_pad|>';
export const VIDEO_PAD_TOKEN = '<|video_pad|>';

/**
 * Replace the k-th image pad (over all texts, in order) by grid_t*grid_h*grid_w / mergeSize^2
 * copies of itself, and likewise the video pads. Unlike the first transformers releases (which
 * silently ignore surplus grids), a count mismatch between pads and grids is an error.
 */
export function expandVisionPads(texts: readonly string[], options: ExpandOptions): string[] {
  let out = [...texts];
  const m2 = options.mergeSize * options.mergeSize;
  const kinds: [string, readonly (readonly number[])[] | undefined, string][] = [
    [options.imageToken ?? IMAGE_PAD_TOKEN, options.imageGridThw, 'image'],
    [options.videoToken ?? VIDEO_PAD_TOKEN, options.videoGridThw, 'video'],
  ];
  for (const [token, grids, what] of kinds) {
    if (!grids) continue;
    let index = 0;
    out = out.map((text) => {
      const parts = text.split(token);
      let s = parts[0];
      for (let k = 1; k < parts.length; k++) {
        const g = grids[index++];
        if (!g) throw new ChatTemplateError(`${what} grids: more ${token} tokens in the text than grids (${grids.length})`);
        const n = g.reduce((a, b) => a * b, 1);
        if (n % m2 !== 0) throw new ChatTemplateError(`${what} grid ${JSON.stringify(g)}: not divisible by merge_size^2 = ${m2}`);
        s += token.repeat(n / m2) + parts[k];
      }
      return s;
    });
    if (index !== grids.length) {
      throw new ChatTemplateError(`${what} grids: ${grids.length} grids but ${index} ${token} tokens in the text`);
    }
  }
  return out;
}

// ------------------------------------------------------------------ batch encoding

export interface EncodedBatch {
  /** [batch, length] row-major */
  inputIds: Int32Array;
  attentionMask: Int32Array;
  batch: number;
  length: number;
  lengths: number[];
}

/** Pad rows of ids to the longest with `padId` (right or left), with the attention mask. */
export function padBatch(rows: readonly (readonly number[])[], padId: number, side: 'right' | 'left' = 'right'): EncodedBatch {
  const length = rows.reduce((m, r) => Math.max(m, r.length), 0);
  const inputIds = new Int32Array(rows.length * length).fill(padId);
  const attentionMask = new Int32Array(rows.length * length);
  rows.forEach((r, i) => {
    const at = i * length + (side === 'left' ? length - r.length : 0);
    inputIds.set(r, at);
    attentionMask.fill(1, at, at + r.length);
  });
  return { inputIds, attentionMask, batch: rows.length, length, lengths: rows.map((r) => r.length) };
}

export interface ProcessorTextOptions {
  imageGridThw?: readonly (readonly number[])[];
  videoGridThw?: readonly (readonly number[])[];
  padSide?: 'right' | 'left';
}

/**
 * Chat template + tokenizer + pad expansion: the text half of Qwen2_5_VLProcessor.
 * `padId` is the tokenizer's pad token id (tokenizer_config.json pad_token).
 */
export class QwenVLTextProcessor {
  readonly template: ChatTemplate;

  constructor(
    readonly tokenizer: ByteLevelBpeTokenizer,
    template: string | ChatTemplate,
    readonly padId: number,
    readonly mergeSize = 2,
  ) {
    this.template = typeof template === 'string' ? new ChatTemplate(template) : template;
  }

  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    return this.template.render(messages, options);
  }

  /** Expand the pads for the given grids, encode, and pad the batch. */
  encode(texts: readonly string[], options: ProcessorTextOptions = {}): EncodedBatch {
    const expanded = expandVisionPads(texts, {
      imageGridThw: options.imageGridThw, videoGridThw: options.videoGridThw, mergeSize: this.mergeSize,
    });
    return padBatch(expanded.map((t) => this.tokenizer.encode(t)), this.padId, options.padSide ?? 'right');
  }
}

/**
 * The pad id of a tokenizer: tokenizer_config.json `pad_token` when given, else tokenizer.json's
 * own `padding`, else the default of transformers' Qwen2TokenizerFast (`<|endoftext|>`), looked up
 * in the tokenizer.
 */
export function padIdOf(tokenizer: ByteLevelBpeTokenizer, tokenizerConfig?: Record<string, unknown> | null): number {
  const raw = tokenizerConfig?.pad_token;
  const named = typeof raw === 'string' ? raw
    : raw && typeof (raw as { content?: unknown }).content === 'string' ? (raw as { content: string }).content : undefined;
  if (named === undefined && tokenizer.padding) return tokenizer.padding.padId;
  const name = named ?? '<|endoftext|>';
  const id = tokenizer.tokenToId(name);
  if (id === undefined) throw new ChatTemplateError(`pad token ${JSON.stringify(name)}: not in the tokenizer`);
  return id;
}
