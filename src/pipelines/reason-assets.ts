// What a Cosmos-Reason1 (Qwen2.5-VL) model folder holds besides the weights, read through the
// FileSystem and checked against each other before anything is uploaded: config.json, the
// byte-level tokenizer (tokenizer.json), the chat template, the image processor
// (preprocessor_config.json, optional) and the stop tokens (config, generation_config.json).
import { UserError } from '../engine/errors.js';
import { type FileSystem, fileSystem, readJsonObject, readJsonObjectIfPresent, readText } from '../io/files.js';
import { join } from '../io/path.js';
import { type VlmConfig, parseVlmConfig } from '../models/vlm/config.js';
import { Qwen2VLImageProcessor } from '../models/vlm/preprocess.js';
import { ByteLevelBpeTokenizer } from '../text/bpe.js';
import { QwenVLTextProcessor, loadChatTemplate, padIdOf } from '../text/chat.js';
import { ChatTemplateError } from '../text/errors.js';

/** A problem with the files or inputs given to `reason` (one line naming the file). */
export class ReasonInputError extends UserError {}

/** Defaults of the Cosmos-Reason1 recipe (vLLM SamplingParams in the model card; video fps 4). */
export const REASON_DEFAULTS = Object.freeze({
  temperature: 0.6,
  topP: 0.95,
  repetitionPenalty: 1.05,
  maxNewTokens: 4096,
  fps: 4,
});

/** Everything of a model folder except the weights. */
export interface ReasonAssets {
  dir: string;
  configJson: Record<string, unknown>;
  config: VlmConfig;
  tokenizer: ByteLevelBpeTokenizer;
  text: QwenVLTextProcessor;
  imageProcessor: Qwen2VLImageProcessor;
  /** token ids that end the answer */
  stopTokenIds: number[];
  /** remarks for the user (defaults taken, ...) */
  notes: string[];
}

/**
 * Check that a model folder has what `reason` reads; one error naming everything missing.
 * preprocessor_config.json is optional (the processor's defaults are used without it).
 * Returns its chat template.
 */
async function checkReasonFolder(dir: string, fs: FileSystem): Promise<string | null> {
  const st = await fs.stat(dir);
  if (!st) throw new ReasonInputError(`model folder ${dir}: no such directory`);
  if (st.kind !== 'directory') throw new ReasonInputError(`model folder ${dir}: not a directory (expected a model folder)`);
  const names = await fs.list(dir);
  const missing: string[] = [];
  if (!names.includes('config.json')) missing.push('config.json');
  if (!names.some((n) => n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json'))) {
    missing.push('the weights (*.safetensors, or shards with a *.safetensors.index.json)');
  }
  if (!names.includes('tokenizer.json')) missing.push('tokenizer.json');
  const template = await loadChatTemplate(dir, 'default', fs).catch((e: unknown) => {
    if (e instanceof ChatTemplateError) return null;
    throw e;
  });
  if (template === null) missing.push('a chat template (chat_template.jinja, chat_template.json or tokenizer_config.json "chat_template")');
  if (missing.length) throw new ReasonInputError(`${dir}: the model folder lacks ${missing.join(', ')}`);
  return template;
}

async function readImageProcessor(dir: string, fs: FileSystem, notes: string[]): Promise<Qwen2VLImageProcessor> {
  const path = join(dir, 'preprocessor_config.json');
  const pj = await readJsonObjectIfPresent(path, 'preprocessor_config.json', fs);
  if (!pj) {
    notes.push('no preprocessor_config.json: using the Qwen2VLImageProcessor defaults');
    return new Qwen2VLImageProcessor();
  }
  const cls = pj.image_processor_type;
  if (typeof cls === 'string' && !/Qwen2(_5)?VL/i.test(cls)) {
    throw new ReasonInputError(`${path}: image_processor_type ${JSON.stringify(cls)} is not a Qwen2-VL image processor`);
  }
  return Qwen2VLImageProcessor.fromJson(pj);
}

/** The special tokens the prompt uses must be the ids the model was built with. */
function checkSpecialTokens(tokenizer: ByteLevelBpeTokenizer, config: VlmConfig, tokenizerPath: string): void {
  const expect: [string, number][] = [
    ['<|vision_start|>', config.visionStartTokenId],
    ['<|vision_end|>', config.visionEndTokenId],
    ['<|image_pad|>', config.imageTokenId],
    ['<|video_pad|>', config.videoTokenId],
  ];
  for (const [tok, id] of expect) {
    const got = tokenizer.tokenToId(tok);
    if (got !== id) {
      throw new ReasonInputError(
        `${tokenizerPath}: ${tok} is ${got === undefined ? 'not in the tokenizer' : `id ${got}`} but config.json expects ${id}; the tokenizer does not belong to this model`,
      );
    }
  }
  for (const tok of ['<|im_start|>', '<|im_end|>']) {
    const id = tokenizer.tokenToId(tok);
    if (id === undefined) throw new ReasonInputError(`${tokenizerPath}: ${tok} (chat format) is not in the tokenizer`);
    if (id >= config.text.vocabSize) throw new ReasonInputError(`${tokenizerPath}: ${tok} is id ${id}, outside the model's vocabulary (${config.text.vocabSize})`);
  }
}

/**
 * Read config.json, tokenizer.json, the chat template, preprocessor_config.json and
 * generation_config.json, and check that the tokenizer's special tokens are the ids the config
 * gives (a tokenizer from another checkpoint is a clear error, not garbage).
 */
export async function loadReasonAssets(dir: string, fs: FileSystem = fileSystem()): Promise<ReasonAssets> {
  const template = await checkReasonFolder(dir, fs);
  const notes: string[] = [];
  const configJson = await readJsonObject(join(dir, 'config.json'), 'config.json', fs);
  const config = parseVlmConfig(configJson);
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizer = ByteLevelBpeTokenizer.fromString(await readText(tokenizerPath, fs), tokenizerPath);
  const tokenizerConfig = await readJsonObjectIfPresent(join(dir, 'tokenizer_config.json'), 'tokenizer_config.json', fs);
  const imageProcessor = await readImageProcessor(dir, fs, notes);
  const ip = imageProcessor.config;
  const v = config.vision;
  if (ip.patchSize !== v.patchSize || ip.temporalPatchSize !== v.temporalPatchSize || ip.mergeSize !== v.spatialMergeSize) {
    throw new ReasonInputError(
      `${dir}: preprocessor_config.json (patch ${ip.patchSize}, temporal ${ip.temporalPatchSize}, merge ${ip.mergeSize}) does not match ` +
        `config.json vision_config (patch ${v.patchSize}, temporal ${v.temporalPatchSize}, merge ${v.spatialMergeSize})`,
    );
  }
  checkSpecialTokens(tokenizer, config, tokenizerPath);
  let padId: number;
  try {
    padId = padIdOf(tokenizer, tokenizerConfig);
  } catch {
    padId = config.padTokenId ?? tokenizer.tokenToId('<|im_end|>')!;
  }
  const text = new QwenVLTextProcessor(tokenizer, template!, padId, ip.mergeSize);

  const stop = new Set<number>(config.eosTokenIds);
  const eos = (await readJsonObjectIfPresent(join(dir, 'generation_config.json'), 'generation_config.json', fs))?.eos_token_id;
  for (const e of Array.isArray(eos) ? eos : eos === undefined || eos === null ? [] : [eos]) {
    if (typeof e === 'number' && Number.isInteger(e)) stop.add(e);
  }
  for (const tok of ['<|im_end|>', '<|endoftext|>']) {
    const id = tokenizer.tokenToId(tok);
    if (id !== undefined) stop.add(id);
  }
  return { dir, configJson, config, tokenizer, text, imageProcessor, stopTokenIds: [...stop], notes };
}
