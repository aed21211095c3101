// `--plan` of the commands that load their models up front (they are small next to their
// activations and caches, and every phase needs them): ar-video2world (the DV tokenizer and the AR
// model; with the diffusion decoder, the decoder and the CV tokenizer load in their own phases
// after the AR model is freed), reason (Qwen2.5-VL), tokenize / roundtrip (a video tokenizer). Each loads its models on
// the plan backend through the ordinary loaders (headers checked, nothing read), then runs the
// pipeline on zeros of the requested size. Generation stops after its first decoded step there
// (the pipelines do so on the plan backend): the caches are sized for the whole run up front.
import type { Backend } from '../../engine/backend.js';
import type { DType } from '../../engine/dtype.js';
import { UserError } from '../../engine/errors.js';
import { loadWeights } from '../../engine/module.js';
import { declaredSource } from '../../engine/plan/params.js';
import { planBackend } from '../../engine/select.js';
import { ArDecoderFamily, type DiffusionDecoderDiT } from '../../models/ar-decoder/model.js';
import type { Config } from '../../models/load.js';
import { type FileSystem, fileSystem } from '../../io/files.js';
import type { ImageU8 } from '../../models/vlm/preprocess.js';
import { type ArVideo2WorldPlan, EMBEDDING_TENSOR_NAMES, arVideo2World, defaultContextFrames, loadArModel, loadArTokenizer } from '../ar-video2world.js';
import { type HostText, auxVarsPath, decoderGeometry, loadArDecoder } from '../ar-decoder.js';
import type { ComponentBytes } from '../components.js';
import { loadReasonModel, reason } from '../reason.js';
import type { SampledVideo } from '../reason-inputs.js';
import { detokenize, loadVideoTokenizer, tokenize } from '../tokenizer.js';
import { zeroClip, zeroFrames } from './inputs.js';
import { type PlanReport, type PlanTarget, cpuTarget, measurePlan } from './measure.js';
import { openSafetensors } from '../../io/safetensors.js';

/** Load on `be`, measuring the bytes the loaded model holds there. */
async function loaded<M>(be: Backend, name: string, path: string, load: () => Promise<M>, into: ComponentBytes[]): Promise<M> {
  const before = be.memory().liveBytes;
  const m = await load();
  into.push({ name, path, bytes: be.memory().liveBytes - before });
  return m;
}

// ------------------------------------------------------------------ ar-video2world

export interface ArPlanOptions {
  model: string;
  tokenizer: string;
  target?: PlanTarget;
  fs?: FileSystem;
  /** context frames (default: the pipeline's) */
  contextFrames?: number;
  /** T5 embeddings file for the cross-attention models (only its header is read) */
  embeddings?: string;
  temperature?: number;
  topP?: number | null;
  /**
   * The diffusion decoder: its folder (or model.pt), or a config (DiffusionDecoderGeneralDIT
   * kwargs, e.g. the release's, whose folder holds a model.pt) planned with declared weights of
   * `dtype` (default bf16, the release's): every parameter the config implies, zeros.
   */
  decoder?: string | { config: Config; dtype?: DType };
  /** the CV tokenizer folder that decodes the decoder's latents (with `decoder`) */
  cvTokenizer?: string;
  decoderSteps?: number;
  decoderGuidance?: number;
}

export interface ArPlan extends PlanReport {
  plan: ArVideo2WorldPlan;
}

/** How a planned decoder loads: its folder through the ordinary loader, or a config with declared weights. */
function decoderLoader(d: NonNullable<ArPlanOptions['decoder']>, fs: FileSystem, components: ComponentBytes[]): (be: Backend) => Promise<DiffusionDecoderDiT> {
  return async (be) => {
    const before = be.memory().liveBytes;
    let m: DiffusionDecoderDiT;
    if (typeof d === 'string') m = await loadArDecoder(d, be, fs);
    else {
      m = ArDecoderFamily.build(d.config);
      await loadWeights(m, declaredSource(m, d.dtype ?? 'bf16'), be);
    }
    components.push({ name: 'decoder', path: typeof d === 'string' ? d : `<config, declared ${d.dtype ?? 'bf16'} weights>`, bytes: be.memory().liveBytes - before });
    return m;
  };
}

/** The decoder's T5 width, from a throwaway shape-only build. */
async function decoderTextDim(d: NonNullable<ArPlanOptions['decoder']>, fs: FileSystem): Promise<number> {
  const be = planBackend();
  const m = await decoderLoader(d, fs, [])(be);
  try {
    return decoderGeometry(m).textDim;
  } finally {
    m.dispose();
  }
}

/** Rows of T5 text states the cross-attention models read (the pipeline's default padding). */
const AR_TEXT_ROWS = 512;

export async function planArVideo2World(o: ArPlanOptions): Promise<ArPlan> {
  const fs = o.fs ?? fileSystem();
  const notes: string[] = [];
  let rows = AR_TEXT_ROWS;
  let embeddingsWidth = 0;
  if (o.embeddings !== undefined) {
    // the tensor the pipeline would read (readEmbeddings), its rows from the header alone
    const f = await openSafetensors(o.embeddings, fs);
    try {
      const names = f.names;
      const name = names.length === 1 ? names[0] : EMBEDDING_TENSOR_NAMES.find((n) => names.includes(n));
      if (!name) throw new UserError(`embeddings: ${o.embeddings} holds ${names.length} tensors; expected one, or one named ${EMBEDDING_TENSOR_NAMES.join(' / ')}`);
      rows = Math.max(AR_TEXT_ROWS, f.info(name).shape.at(-2) ?? 0);
      embeddingsWidth = f.info(name).shape.at(-1) ?? 0;
    } finally {
      await f.close();
    }
  }
  if ((o.decoder === undefined) !== (o.cvTokenizer === undefined)) {
    throw new UserError(o.decoder === undefined ? 'cv-tokenizer: needs --decoder too' : 'decoder: needs --cv-tokenizer too');
  }
  // the decoder's text: the embeddings, else aux_vars.pt beside a decoder folder, else zeros of its width
  let decoderContext: HostText | undefined;
  if (o.decoder !== undefined && o.embeddings === undefined) {
    const aux = typeof o.decoder === 'string' ? await auxVarsPath(o.decoder, fs) : null;
    if (!aux || (await fs.stat(aux))?.kind !== 'file') {
      const D = await decoderTextDim(o.decoder, fs);
      decoderContext = { data: new Float32Array(AR_TEXT_ROWS * D), shape: [AR_TEXT_ROWS, D] };
      notes.push(`the decoder's generic-prompt context (aux_vars.pt) planned as ${AR_TEXT_ROWS} x ${D} T5 states`);
    }
  }
  const { report, result } = await measurePlan(o.target ?? cpuTarget(), async (be, meter) => {
    const components: ComponentBytes[] = [];
    meter.phase('load');
    const tokenizer = await loaded(be, 'tokenizer', o.tokenizer, () => loadArTokenizer(o.tokenizer, be, fs), components);
    try {
      const model = await loaded(be, 'model', o.model, () => loadArModel(o.model, be, fs), components);
      meter.pending();
      try {
        const [, H, W] = model.config.videoLatentShape;
        const sc = tokenizer.spatialCompression;
        const frames = o.contextFrames ?? defaultContextFrames(model.config, tokenizer.temporalCompression, Number.POSITIVE_INFINITY);
        const D = model.config.contextDim;
        const cross = model.isCrossAttention;
        // a base model's embeddings go to the decoder alone: their width is the file's
        const embeddings = cross || o.embeddings !== undefined ? { data: new Float32Array(rows * (cross ? D : embeddingsWidth)), shape: [rows, cross ? D : embeddingsWidth] as [number, number] } : null;
        if (cross && o.embeddings === undefined) notes.push(`no embeddings given: ${rows} x ${D} T5 states planned`);
        const r = await arVideo2World({
          model, tokenizer, backend: be, input: zeroClip(frames, H * sc, W * sc), contextFrames: o.contextFrames, embeddings,
          temperature: o.temperature, topP: o.topP, onProgress: meter.onProgress, fs,
          ...(o.decoder !== undefined
            ? {
                decoder: decoderLoader(o.decoder, fs, components), cvTokenizer: o.cvTokenizer, decoderContext, handOver: true,
                decoderSteps: o.decoderSteps, decoderGuidance: o.decoderGuidance, onPhase: (p: string) => meter.phase(p),
              }
            : {}),
        });
        return { plan: r.plan, components: [...components, ...r.components], notes };
      } finally {
        model.dispose();
      }
    } finally {
      tokenizer.dispose();
    }
  });
  return { ...report, plan: result.plan };
}

// ------------------------------------------------------------------ reason

export interface ReasonPlanOptions {
  model: string;
  target?: PlanTarget;
  fs?: FileSystem;
  /** default: an empty question */
  prompt?: string;
  system?: string;
  images?: readonly ImageU8[];
  videos?: readonly SampledVideo[];
  maxNewTokens?: number;
  minPixels?: number;
  maxPixels?: number;
}

export interface ReasonPlan extends PlanReport {
  promptTokens: number;
  visionTokens: number;
}

export async function planReason(o: ReasonPlanOptions): Promise<ReasonPlan> {
  const fs = o.fs ?? fileSystem();
  const { report, result } = await measurePlan(o.target ?? cpuTarget(), async (be, meter) => {
    const components: ComponentBytes[] = [];
    meter.phase('load');
    const m = await loaded(be, 'model', o.model, () => loadReasonModel(o.model, be, { fs }), components);
    meter.pending();
    try {
      const r = await reason({
        model: m, prompt: o.prompt ?? '', system: o.system, images: o.images, videos: o.videos, maxNewTokens: o.maxNewTokens,
        minPixels: o.minPixels, maxPixels: o.maxPixels, onProgress: meter.onProgress,
      });
      const notes = o.images?.length || o.videos?.length ? [] : ['no image or video given: a text-only question planned'];
      return { components, notes, promptTokens: r.promptTokens, visionTokens: r.visionTokens };
    } finally {
      m.model.dispose();
    }
  });
  return { ...report, promptTokens: result.promptTokens, visionTokens: result.visionTokens };
}

// ------------------------------------------------------------------ tokenize / roundtrip

export interface TokenizerPlanOptions {
  model: string;
  target?: PlanTarget;
  fs?: FileSystem;
  frames: number;
  height: number;
  width: number;
  /** frames per streaming chunk (default: the pipeline's) */
  chunk?: number;
  /** decode the tokens too (roundtrip) */
  decode?: boolean;
  /** the release of a TorchScript tokenizer folder whose name does not say it */
  release?: string;
}

export interface TokenizerPlan extends PlanReport {
  kind: 'CV' | 'DV';
  /** the tokens' shape: the latent (CV) or the token ids (DV) */
  tokenShape: number[];
}

export async function planTokenizer(o: TokenizerPlanOptions): Promise<TokenizerPlan> {
  const fs = o.fs ?? fileSystem();
  const { report, result } = await measurePlan(o.target ?? cpuTarget(), async (be, meter) => {
    const components: ComponentBytes[] = [];
    meter.phase('load');
    const model = await loaded(be, 'tokenizer', o.model, () => loadVideoTokenizer(o.model, be, { fs, release: o.release, part: o.decode ? 'both' : 'encoder' }), components);
    meter.pending();
    try {
      const tokens = await tokenize(model, zeroFrames(o.frames, o.height, o.width), { chunkFrames: o.chunk, onProgress: meter.onProgress });
      try {
        if (o.decode) await detokenize(model, tokens, { onProgress: meter.onProgress });
        return { components, kind: tokens.kind, tokenShape: [...tokens.shape] };
      } finally {
        tokens.dispose();
      }
    } finally {
      model.dispose();
    }
  });
  return { ...report, kind: result.kind, tokenShape: result.tokenShape };
}
