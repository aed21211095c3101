// `--plan` of transfer: the spec's pipeline (transfer.ts) on the plan backend. The control videos
// and the conditioning clip are zeros of their files' size (header only), or of the Transfer2.5
// default size where the files are not there; the prompt as in the world plans.
import { type FileSystem, fileSystem } from '../../io/files.js';
import type { TransferSpec } from '../../models/controlnet/spec.js';
import { parseCosmosTransformerConfig } from '../../models/dit/config.js';
import { readJsonObject } from '../../io/files.js';
import { join } from '../../io/path.js';
import { transfer } from '../transfer.js';
import type { WorldSettings } from '../world/settings.js';
import type { PromptEmbeddingArrays } from '../world/prompt.js';
import { clipSize, embeddingsLike, zeroClip, zeroEmbeddings, zeroFrames } from './inputs.js';
import { type PlanReport, type PlanTarget, cpuTarget, measurePlan } from './measure.js';

/** Transfer2.5's size where no control video says: 93 frames of 704 x 1280. */
const DEFAULT_CLIP = { frames: 93, height: 704, width: 1280 };

export interface TransferPlanOptions {
  spec: TransferSpec;
  target?: PlanTarget;
  fs?: FileSystem;
  prompt?: string;
  negativePrompt?: string;
  /** a prompt-embeddings file (header only) or arrays; default: the spec's */
  embeddings?: string | PromptEmbeddingArrays;
  seed?: number | string;
  steps?: number;
  guidance?: number;
  frames?: number;
  /** the raw clip (path; header only), over the spec's video_path */
  input?: string;
  resolution?: string;
  chunkFrames?: number;
  chunkOverlap?: number;
  /** the depth model a computed depth control runs (headers read; run on zeros like the rest) */
  depthModel?: string;
  depthInputSize?: number;
}

export interface TransferPlan extends PlanReport {
  settings: WorldSettings;
  controls: { name: string; weight: number | string; computed?: string }[];
  /** the final latents' shape: [chunks, C, T, h, w] */
  latentShape: number[];
  /** the clip frames [start, end) of each chunk */
  chunks: { start: number; end: number }[];
}

export async function planTransfer(o: TransferPlanOptions): Promise<TransferPlan> {
  const fs = o.fs ?? fileSystem();
  const { spec } = o;
  const notes: string[] = [];
  // the size of the raw clip, else of the first control video that is there, else the default
  const raw = o.input ?? spec.videoPath;
  let size: { frames: number; height: number; width: number } | null = null;
  for (const p of raw ? [raw] : spec.controls.map((c) => c.inputControl)) {
    if (size || p === null || !(await fs.stat(p))) continue;
    const s = await clipSize(p, fs);
    size = { frames: s.frames ?? spec.numFrames ?? DEFAULT_CLIP.frames, height: s.height, width: s.width };
  }
  if (!size) {
    size = { ...DEFAULT_CLIP, frames: o.frames ?? spec.numFrames ?? DEFAULT_CLIP.frames };
    notes.push(`no ${raw ? 'input clip' : 'control video'} found: ${size.frames} frames of ${size.width}x${size.height} planned`);
  }
  const clip = zeroClip(size.frames, size.height, size.width);
  // a raw clip and the ready-made controls beside it are streamed (as the run does: a 4K clip is
  // never held whole); with one, only the ready-made controls have videos, the rest are computed
  const stream = () => zeroFrames(size.frames, size.height, size.width);
  const controlVideos = Object.fromEntries(spec.controls.filter((c) => !raw || c.inputControl !== null).map((c) => [c.name, raw ? stream() : clip]));

  const given = o.embeddings ?? (o.prompt === undefined ? spec.embeddings : null) ?? undefined;
  let text: { prompt?: string; negativePrompt?: string; embeddings?: PromptEmbeddingArrays };
  if (typeof given === 'string') text = { embeddings: await embeddingsLike(given, fs) };
  else if (given) text = { embeddings: given };
  else if (o.prompt !== undefined || spec.prompt !== null) text = { prompt: o.prompt ?? spec.prompt ?? '', negativePrompt: o.negativePrompt };
  else if (spec.textEncoder) {
    notes.push('no prompt given: the text encoder is planned at its full 512 tokens');
    text = { prompt: '' };
  } else {
    const bc = parseCosmosTransformerConfig(await readJsonObject(join(spec.baseCheckpoint, 'config.json'), 'config.json', fs));
    const width = bc.useCrossattnProjection ? bc.crossattnProjInChannels : bc.textEmbedDim;
    notes.push(`the spec names no text encoder: prompts come as embeddings, planned as 512 x ${width} states`);
    text = { embeddings: zeroEmbeddings(512, width) };
  }

  const { report, result } = await measurePlan(o.target ?? cpuTarget(), async (be, meter) => {
    const r = await transfer({
      spec, backend: be, fs, ...text, seed: o.seed, steps: o.steps, guidance: o.guidance, frames: o.frames, controlVideos,
      inputVideo: spec.inputVideo ? clip : undefined, onPhase: (p) => meter.phase(p),
      ...(raw ? { input: stream() } : {}), resolution: o.resolution, chunkFrames: o.chunkFrames, chunkOverlap: o.chunkOverlap,
      depthModel: o.depthModel, depthInputSize: o.depthInputSize,
    });
    return { ...r, notes };
  });
  return { ...report, settings: result.settings, controls: result.controls, latentShape: result.latents.shape, chunks: result.chunks };
}
