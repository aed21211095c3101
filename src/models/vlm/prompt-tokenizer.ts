// The text half of the Cosmos-Predict2.5 / Transfer2.5 prompt encoder (spec prompt_embeds.md,
// steps 1-3): each prompt becomes the conversation [system, user] with content given as one text
// part, rendered with the tokenizer's chat template (no generation prompt, no vision ids), encoded
// without special tokens (the template already holds them as added tokens), truncated and padded
// to exactly maxLength, as transformers' apply_chat_template(tokenize=True, truncation=True,
// padding='max_length') does.
//
// The sides come from the tokenizer files as transformers reads them: tokenizer_config.json
// `padding_side` / `truncation_side`, else the direction tokenizer.json's own `padding` /
// `truncation` block names, else right.
import { UserError } from '../../engine/errors.js';
import { type FileSystem, fileSystem, isFile, readJsonObject, readText } from '../../io/files.js';
import { join } from '../../io/path.js';
import { ByteLevelBpeTokenizer } from '../../text/bpe.js';
import { type ChatMessage, ChatTemplate, chatTemplateOf, loadChatTemplate, padIdOf } from '../../text/chat.js';
import { BpeTokenizerError, ChatTemplateError } from '../../text/errors.js';

/** The system prompt upstream puts before every prompt. */
export const COSMOS_PROMPT_SYSTEM = 'You are a helpful assistant who will provide prompts to an image generator.';

/** Upstream's default max_sequence_length. */
export const COSMOS_PROMPT_MAX_LENGTH = 512;

export type Side = 'left' | 'right';

/** Where the tokenizer's files are (paths used as given); absent entries take the folder's usual names. */
export interface PromptTokenizerFiles {
  /** tokenizer.json */
  tokenizer?: string;
  /** tokenizer_config.json (optional: without it the sides are right and the pad token Qwen2's default) */
  tokenizerConfig?: string;
  /** chat_template.jinja, or a chat_template.json / tokenizer_config.json holding `chat_template` */
  chatTemplate?: string;
}

export interface PromptIds {
  /** [batch, length] row-major */
  ids: Int32Array;
  batch: number;
  length: number;
  /** tokens of each rendered prompt before truncation / padding */
  lengths: number[];
}

export interface PromptTokenizerSettings {
  padId: number;
  paddingSide: Side;
  truncationSide: Side;
  /** template variables besides messages (the special tokens, as transformers passes them) */
  variables: Record<string, unknown>;
}

function sideOf(v: unknown, where: string): Side | undefined {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === 'string' ? v.toLowerCase() : v;
  if (s === 'left' || s === 'right') return s;
  throw new UserError(`${where}: must be "left" or "right"; got ${JSON.stringify(v)}`);
}

/** tokenizer.json `padding.direction` / `truncation.direction` ("Left" / "Right"). */
function jsonDirection(json: Record<string, unknown>, block: 'padding' | 'truncation', path: string): Side | undefined {
  const b = json[block];
  if (!b || typeof b !== 'object') return undefined;
  return sideOf((b as Record<string, unknown>).direction, `${path}: ${block}.direction`);
}

/** A special token of tokenizer_config.json: a string or an AddedToken object {content}. */
function tokenText(v: unknown): string | null | undefined {
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** transformers passes the special tokens map to the template (unset ones are absent). */
function specialTokenVariables(config: Record<string, unknown> | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!config) return out;
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
    const t = tokenText(config[k]);
    if (typeof t === 'string') out[k] = t;
  }
  const extra = config.additional_special_tokens;
  if (Array.isArray(extra)) out.additional_special_tokens = extra.map(tokenText).filter((t) => typeof t === 'string');
  return out;
}

async function templateSource(path: string, fs: FileSystem): Promise<string> {
  if (path.endsWith('.jinja')) return readText(path, fs);
  const t = chatTemplateOf(await readJsonObject(path, 'chat template file', fs));
  if (t === undefined) throw new ChatTemplateError(`${path}: no "chat_template" in this file`);
  return t;
}

/** Chat template + byte-level BPE + the tokenizer's sides and pad token, for the Cosmos prompt. */
export class ReasonPromptTokenizer {
  readonly template: ChatTemplate;

  constructor(
    readonly bpe: ByteLevelBpeTokenizer,
    template: string | ChatTemplate,
    readonly settings: PromptTokenizerSettings,
  ) {
    this.template = typeof template === 'string' ? new ChatTemplate(template) : template;
  }

  /**
   * A tokenizer folder (tokenizer.json, tokenizer_config.json, and chat_template.jinja or
   * chat_template.json or the template inside tokenizer_config.json); `files` names any of them
   * elsewhere (paths used as given).
   */
  static async load(dir: string, opts: { fs?: FileSystem; files?: PromptTokenizerFiles } = {}): Promise<ReasonPromptTokenizer> {
    const fs = opts.fs ?? fileSystem();
    const files = opts.files ?? {};
    const at = (p: string | undefined, dflt: string) => p ?? join(dir, dflt);
    const tokPath = at(files.tokenizer, 'tokenizer.json');
    if (!(await isFile(tokPath, fs))) throw new BpeTokenizerError(`${tokPath}: no such file (the prompt encoder needs the Qwen2 tokenizer.json)`);
    let tokJson: Record<string, unknown>;
    try {
      tokJson = JSON.parse(await readText(tokPath, fs)) as Record<string, unknown>;
    } catch (e) {
      throw new BpeTokenizerError(`${tokPath}: not valid JSON (${(e as Error).message})`);
    }
    const bpe = ByteLevelBpeTokenizer.fromJson(tokJson, tokPath);

    const cfgPath = at(files.tokenizerConfig, 'tokenizer_config.json');
    const config = (await isFile(cfgPath, fs)) ? await readJsonObject(cfgPath, 'tokenizer_config.json', fs) : null;
    if (files.tokenizerConfig !== undefined && !config) throw new UserError(`${cfgPath}: no such file (tokenizer_config.json)`);

    let template: string;
    if (files.chatTemplate !== undefined) {
      const p = files.chatTemplate;
      if (!(await isFile(p, fs))) throw new ChatTemplateError(`${p}: no such file (the chat template)`);
      template = await templateSource(p, fs);
    } else {
      template = await loadChatTemplate(dir, 'default', fs);
    }

    const paddingSide = sideOf(config?.padding_side, `${cfgPath}: padding_side`) ?? jsonDirection(tokJson, 'padding', tokPath) ?? 'right';
    const truncationSide = sideOf(config?.truncation_side, `${cfgPath}: truncation_side`) ?? jsonDirection(tokJson, 'truncation', tokPath) ?? 'right';
    return new ReasonPromptTokenizer(bpe, template, {
      padId: padIdOf(bpe, config), paddingSide, truncationSide, variables: specialTokenVariables(config),
    });
  }

  /** The conversation upstream builds around one prompt. */
  static conversation(prompt: string, system = COSMOS_PROMPT_SYSTEM): ChatMessage[] {
    return [
      { role: 'system', content: [{ type: 'text', text: system }] },
      { role: 'user', content: [{ type: 'text', text: prompt }] },
    ];
  }

  /** The chat-templated text of one prompt, before tokenization. */
  render(prompt: string): string {
    return this.template.render(ReasonPromptTokenizer.conversation(prompt), {
      addGenerationPrompt: false, addVisionId: false, variables: this.settings.variables,
    });
  }

  /** The rendered prompt's ids, untruncated. */
  encodeOne(prompt: string): number[] {
    return this.bpe.encode(this.render(prompt), { addSpecialTokens: false });
  }

  /** Prompts -> ids [B, maxLength], truncated and padded on the configured sides. */
  tokenize(prompts: readonly string[], maxLength = COSMOS_PROMPT_MAX_LENGTH): PromptIds {
    if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`tokenize: maxLength must be a positive integer, got ${maxLength}`);
    if (prompts.length === 0) throw new RangeError('tokenize: no prompts');
    const { padId, paddingSide, truncationSide } = this.settings;
    const B = prompts.length;
    const ids = new Int32Array(B * maxLength).fill(padId);
    const lengths: number[] = [];
    prompts.forEach((p, b) => {
      if (typeof p !== 'string') throw new TypeError(`tokenize: prompt ${b} is not a string`);
      const row = this.encodeOne(p);
      lengths.push(row.length);
      const kept = row.length <= maxLength ? row : truncationSide === 'right' ? row.slice(0, maxLength) : row.slice(row.length - maxLength);
      ids.set(kept, b * maxLength + (paddingSide === 'left' ? maxLength - kept.length : 0));
    });
    return { ids, batch: B, length: maxLength, lengths };
  }
}
