// `--plan` of text2world and video2world: the pipeline itself (world/run.ts) on the plan
// backend at the requested size, with the components it would load checked against their headers
// and measured. What the user leaves out is planned as a real run would need it: no prompt and no
// embeddings plans the folder's text encoder at its full 512 tokens; no clip plans the
// conditioning frames at the output size.
import type { FileSystem } from '../../io/files.js';
import { fileSystem } from '../../io/files.js';
import { type WorldFamily, type WorldModelInfo, inspectWorldModel } from '../world/folder.js';
import type { PromptEmbeddingArrays } from '../world/prompt.js';
import type { WorldSettings } from '../world/settings.js';
import { text2world } from '../text2world.js';
import { video2world } from '../video2world.js';
import { clipSize, embeddingsLike, zeroClip, zeroEmbeddings } from './inputs.js';
import { type PlanReport, type PlanTarget, cpuTarget, measurePlan } from './measure.js';

/** Text-encoder tokens per prompt (the world pipelines' max_sequence_length). */
const PROMPT_TOKENS = 512;

export interface WorldPlanOptions {
  /** a model folder or its inspection */
  model: string | WorldModelInfo;
  /** default: the CPU backend */
  target?: PlanTarget;
  fs?: FileSystem;
  prompt?: string;
  negativePrompt?: string;
  /** a prompt-embeddings file (only its header is read) or arrays */
  embeddings?: string | PromptEmbeddingArrays;
  /** run the VAE decode (default: when the folder's VAE runs here) */
  decode?: boolean;
  seed?: number | string;
  steps?: number;
  guidance?: number;
  frames?: number;
  height?: number;
  width?: number;
  fps?: number;
}

export interface Video2WorldPlanOptions extends WorldPlanOptions {
  /** the clip to continue: a path (only its header is read) */
  input?: string;
  condFrames?: number;
  augmentSigma?: number;
}

export interface WorldPlan extends PlanReport {
  family: WorldFamily;
  settings: WorldSettings;
  /** the latent the sampler draws, [1, C, T, h, w] */
  latentShape: number[];
}

/** The text side of a plan: the user's, or the encoder at full length, or zero states when the folder has none. */
async function planText(info: WorldModelInfo, o: WorldPlanOptions, fs: FileSystem, notes: string[]) {
  if (typeof o.embeddings === 'string') return { embeddings: await embeddingsLike(o.embeddings, fs) };
  if (o.embeddings || o.prompt !== undefined) return { embeddings: o.embeddings, prompt: o.prompt, negativePrompt: o.negativePrompt };
  if (info.textEncoderDir && !info.textEncoderUnsupported) {
    notes.push(`no prompt given: the text encoder is planned at its full ${PROMPT_TOKENS} tokens`);
    return { prompt: '' };
  }
  notes.push(`no text encoder runs here (${info.textEncoderUnsupported ?? 'none'}): prompts come as embeddings, planned as ${PROMPT_TOKENS} x ${info.textWidth} states`);
  return { embeddings: zeroEmbeddings(PROMPT_TOKENS, info.textWidth) };
}

function decodeOf(info: WorldModelInfo, o: WorldPlanOptions, notes: string[]): boolean {
  if (o.decode === false) return false;
  if (!info.vae) {
    notes.push(`the VAE does not run here (${info.vaeUnsupported}): latents only`);
    return false;
  }
  return true;
}

/** Plan text2world on a model folder. */
export async function planText2World(o: WorldPlanOptions): Promise<WorldPlan> {
  const fs = o.fs ?? fileSystem();
  const info = typeof o.model === 'string' ? await inspectWorldModel(o.model, fs) : o.model;
  const notes: string[] = [];
  const text = await planText(info, o, fs, notes);
  const decode = decodeOf(info, o, notes);
  const { report, result } = await measurePlan(o.target ?? cpuTarget(), async (be, meter) => {
    const r = await text2world({
      ...text, model: info, backend: be, fs, decode, seed: o.seed, steps: o.steps, guidance: o.guidance, frames: o.frames,
      height: o.height, width: o.width, fps: o.fps, onPhase: (p) => meter.phase(p),
    });
    return { ...r, notes };
  });
  return { ...report, family: result.family, settings: result.settings, latentShape: result.latents.shape };
}

/** Plan video2world on a model folder; the clip is zeros of the input's size (or the output's). */
export async function planVideo2World(o: Video2WorldPlanOptions): Promise<WorldPlan> {
  const fs = o.fs ?? fileSystem();
  const info = typeof o.model === 'string' ? await inspectWorldModel(o.model, fs) : o.model;
  const notes: string[] = [];
  const text = await planText(info, o, fs, notes);
  const decode = decodeOf(info, o, notes);
  const given = o.input === undefined ? null : await clipSize(o.input, fs);
  const tc = info.vae?.temporalCompression ?? 1;
  // as many frames as the conditioning takes (the pipeline keeps no more of a clip)
  const frames = Math.min(given?.frames ?? Number.POSITIVE_INFINITY, o.condFrames ?? 1 + tc);
  const height = o.height ?? given?.height ?? info.defaults.height;
  const width = o.width ?? given?.width ?? info.defaults.width;
  if (!given) notes.push(`no input clip given: ${frames} conditioning frames of ${width}x${height} planned`);
  const { report, result } = await measurePlan(o.target ?? cpuTarget(), async (be, meter) => {
    const r = await video2world({
      ...text, model: info, backend: be, fs, decode, seed: o.seed, steps: o.steps, guidance: o.guidance, frames: o.frames,
      height: o.height, width: o.width, fps: o.fps, input: zeroClip(frames, given?.height ?? height, given?.width ?? width, given?.fps ?? undefined),
      condFrames: o.condFrames, augmentSigma: o.augmentSigma, onPhase: (p) => meter.phase(p),
    });
    return { ...r, notes };
  });
  return { ...report, family: result.family, settings: result.settings, latentShape: result.latents.shape };
}
