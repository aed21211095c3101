// Conformance kind vlm.prompt_embeds (fixtures README, spec prompt_embeds.md): the Cosmos-Predict2.5
// / Transfer2.5 prompt encoder from args.prompts through the case's tokenizer files (the ones
// case.json lists, else the usual names in the case folder) to input_ids (exact) and
// prompt_embeds; with args.negative_prompts_used, when the case expects negative outputs, the same
// for the negative prompts. args.max_sequence_length sets the length (default 512),
// args.num_videos_per_prompt repeats each prompt's embeddings (copies adjacent). Taps come from
// the positive pass. A case without args.prompts runs the encoder half on input.input_ids.
import { capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { isFile } from '../../io/files.js';
import { dirname } from '../../io/path.js';
import { COSMOS_PROMPT_MAX_LENGTH, type PromptTokenizerFiles, ReasonPromptTokenizer, type ReasonTextModel, ReasonTextFamily } from '../../models/vlm/prompt-embeds.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type OutputValue, registerKind, shaped } from '../registry.js';

/** The listed file whose name ends with one of `suffixes` (in that order of preference). */
function listed(c: FixtureCase, ...suffixes: string[]): string | undefined {
  const names = [...Object.keys(c.files), ...Object.values(c.files)];
  for (const s of suffixes) {
    const hit = names.find((f) => f.endsWith(s));
    if (hit) return hit;
  }
  return undefined;
}

/** The tokenizer's folder (where its tokenizer.json is) and the files case.json lists. */
async function tokenizerFiles(c: FixtureCase): Promise<{ dir: string; files: PromptTokenizerFiles }> {
  const files: PromptTokenizerFiles = {};
  const tok = listed(c, 'tokenizer.json');
  if (tok) files.tokenizer = c.path(tok);
  const cfg = listed(c, 'tokenizer_config.json');
  if (cfg && (await isFile(c.path(cfg), c.fs))) files.tokenizerConfig = c.path(cfg);
  const tpl = listed(c, '.jinja', 'chat_template.json');
  if (tpl) files.chatTemplate = c.path(tpl);
  return { dir: files.tokenizer ? dirname(files.tokenizer) : c.dir, files };
}

function stringList(c: FixtureCase, key: string): string[] | null {
  const v = c.args[key];
  if (v === undefined || v === null) return null;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) {
    throw new CaseFormatError(`${c.dir}: args.${key} must be a string or a list of strings, got ${JSON.stringify(v)}`);
  }
  return list as string[];
}

function positiveInt(c: FixtureCase, key: string, dflt: number): number {
  const v = c.args[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new CaseFormatError(`${c.dir}: args.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function expects(c: FixtureCase, name: string): boolean {
  return c.outputNames.includes(name) || Object.hasOwn(c.json.outputs ?? {}, name);
}

/** embeddings of ids [B, L], each row repeated n times (copies adjacent) */
function embedRepeated(model: ReasonTextModel, ids: Int32Array, B: number, L: number, n: number): Tensor {
  const e = model.embed(ids, B, L);
  if (n === 1) return e;
  try {
    return F.repeatInterleave(e, n, 0);
  } finally {
    e.dispose();
  }
}

registerKind('vlm.prompt_embeds', async (c, backend) => {
  const maxLength = positiveInt(c, 'max_sequence_length', COSMOS_PROMPT_MAX_LENGTH);
  const copies = positiveInt(c, 'num_videos_per_prompt', 1);
  const prompts = stringList(c, 'prompts');
  const wantNegative = expects(c, 'negative_prompt_embeds') || expects(c, 'negative_input_ids');
  const negatives = wantNegative ? stringList(c, 'negative_prompts_used') : null;
  if (wantNegative && !negatives) throw new CaseFormatError(`${c.dir}: the case expects negative outputs but gives no args.negative_prompts_used`);
  if (!prompts && !c.hasInput('input_ids')) throw new CaseFormatError(`${c.dir}: vlm.prompt_embeds needs args.prompts (or input.input_ids)`);

  let tokenizer: ReasonPromptTokenizer | null = null;
  if (prompts || negatives) {
    const { dir, files } = await tokenizerFiles(c);
    tokenizer = await ReasonPromptTokenizer.load(dir, { fs: c.fs, files });
  }
  let ids: Int32Array;
  let B: number;
  let L: number;
  if (prompts) {
    const t = tokenizer!.tokenize(prompts, maxLength);
    ({ ids, batch: B, length: L } = t);
  } else {
    const t = await c.input('input_ids');
    if (t.dtype !== 'i32' || t.shape.length !== 2) throw new CaseFormatError(`${c.dir}: input.input_ids must be integer [batch, length], got ${t.dtype} ${JSON.stringify(t.shape)}`);
    ids = Int32Array.from(t.raw);
    [B, L] = t.shape;
  }

  const model = await c.module(ReasonTextFamily, backend);
  try {
    const { result, taps } = await capture(c.tapNames, () => embedRepeated(model, ids, B, L, copies));
    const outputs: Record<string, OutputValue> = { input_ids: shaped(ids, [B, L]), prompt_embeds: result };
    if (negatives) {
      if (prompts && negatives.length !== prompts.length) {
        throw new CaseFormatError(`${c.dir}: ${negatives.length} negative prompts for ${prompts.length} prompts`);
      }
      const n = tokenizer!.tokenize(negatives, maxLength);
      outputs.negative_input_ids = shaped(n.ids, [n.batch, n.length]);
      outputs.negative_prompt_embeds = embedRepeated(model, n.ids, n.batch, n.length, copies);
    }
    return { outputs, taps };
  } finally {
    model.dispose();
  }
});
