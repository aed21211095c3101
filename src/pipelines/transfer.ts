// Transfer: control videos (depth, edge, seg, ...) + a prompt -> a generated clip that follows them.
// Cosmos Transfer2.5's denoising (diffusers Cosmos2_5_TransferPipeline, spec controlnet.md) with
// several ControlNets combined as multi-control (models/controlnet/multi.ts):
//
//   spec.json -> each control video -> VAE encode -> (z - mean) / std = control latent
//             -> each ControlNet, its weight (scalar, or a weight map resized to the token grid)
//   seeded noise -> flow-matching UniPC loop; each denoiser pass (cond and uncond) runs every
//   ControlNet on the current latent with that pass's text, sums the weighted residuals and runs
//   the base with them -> latent denormalisation -> VAE decode -> video in [-1, 1]
//
// Optional conditioning frames come from `input_video_path` (the first latent frames are kept
// clean, as video2world). The text comes as precomputed embeddings (Transfer2.5's text encoder is
// the Cosmos-Reason VLM), or from a T5 `text_encoder` folder the spec names.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Backend } from '../engine/backend.js';
import * as F from '../engine/ops.js';
import { type Tensor, scope } from '../engine/tensor.js';
import { readVideo } from '../io/open-video.js';
import { readPng } from '../io/png.js';
import { openSafetensors } from '../io/safetensors.js';
import { cropVideo, fpsValue, padVideo, type Video } from '../io/video.js';
import { CosmosControlNetModel } from '../models/controlnet/controlnet.js';
import { type ControlBranch, ControlShapeError, ControlWeightError, MultiControlNet, resizeWeightMap } from '../models/controlnet/multi.js';
import type { TransferSpec } from '../models/controlnet/spec.js';
import { GaussianNoise } from '../models/dit/noise.js';
import type { DenoiseStep } from '../models/dit/samplers/common.js';
import { PREDICT25_UNIPC, type UniPCConfig, parseUniPCConfig, sampleFlowUniPC } from '../models/dit/samplers/unipc.js';
import { CosmosTransformer3DModel } from '../models/dit/transformer.js';
import { T5TextEncoder } from '../models/t5/encoder.js';
import { AutoencoderKLCosmos } from '../models/tokenizer/diffusers.js';
import { loadTokenizer } from '../models/tokenizer/load.js';
import { CausalContinuousVideoTokenizer } from '../models/tokenizer/video.js';
import {
  DEFAULT_NEGATIVE_PROMPT, type LoadedVae, PipelineFilesError, PipelineInputError, type PromptEmbeds, decodeLatents, fpsRational,
  normalizeLatents, readEmbeddings,
} from './text2world.js';

export interface TransferStepReport {
  step: number;
  steps: number;
  sigma: number;
  stepSeconds: number;
  elapsedSeconds: number;
}

/** Overrides of the spec's run fields (the CLI flags), and progress hooks. */
export interface TransferOptions {
  prompt?: string;
  negativePrompt?: string;
  embeddings?: string;
  seed?: number | string;
  steps?: number;
  guidance?: number;
  numFrames?: number;
  /** called once before the first denoising step */
  onDenoiseStart?: (steps: number) => void;
  /** called after every denoising step */
  onStep?: (s: TransferStepReport) => void;
  /** one line per phase (loading, encoding, ...) */
  onPhase?: (message: string) => void;
  signal?: AbortSignal;
}

export interface TransferResult {
  video: Video;
  /** the final latents (sampler space) */
  latents: { shape: number[]; data: Float32Array };
  seed: number | string;
  steps: number;
  guidance: number;
  fps: number;
  controls: { name: string; weight: number | string }[];
  /** the summed weights' maximum (before any normalisation) */
  maxWeightSum: number;
  timings: { load: number; text: number; vaeEncode: number; denoise: number; decode: number };
}

const now = () => performance.now() / 1000;

/** The scheduler: a diffusers folder's scheduler/scheduler_config.json beside the base, else Predict2.5's UniPC. */
function schedulerFor(baseDir: string): UniPCConfig {
  for (const p of [join(dirname(baseDir), 'scheduler', 'scheduler_config.json'), join(baseDir, 'scheduler_config.json')]) {
    if (existsSync(p)) {
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
      } catch (e) {
        throw new PipelineFilesError(p, `not valid JSON (${(e as Error).message})`);
      }
      if (json._class_name === undefined || json._class_name === 'UniPCMultistepScheduler') return parseUniPCConfig(json);
    }
  }
  return PREDICT25_UNIPC;
}

/** MLP rows per pass so one [rows, inner] activation fits a WebGPU binding (null: no limit). */
function ffChunk(backend: Backend, inner: number, tokens: number): number | null {
  const limits = (backend as { ctx?: { device?: { limits?: { maxStorageBufferBindingSize?: number } } } }).ctx?.device?.limits;
  const max = limits?.maxStorageBufferBindingSize;
  if (!max) return null;
  const rows = Math.floor(max / (4 * inner));
  return tokens > rows ? Math.max(1, rows) : null;
}

async function loadVaeFrom(dir: string, backend: Backend): Promise<LoadedVae> {
  const m = await loadTokenizer(dir, backend);
  if (!(m instanceof CausalContinuousVideoTokenizer)) {
    m.dispose();
    throw new PipelineFilesError(dir, 'the tokenizer must be a continuous video tokenizer (Cosmos-Tokenizer CV or a diffusers AutoencoderKLCosmos)');
  }
  const stats = m instanceof AutoencoderKLCosmos ? { mean: m.latentsMean, std: m.latentsStd } : { mean: null, std: null };
  return { model: m, ...stats };
}

/** A video [3, T, H, W] as a [1, 3, T, H, W] tensor. */
function videoTensor(v: Video, backend: Backend): Tensor {
  return F.fromArray(backend, v.data, [1, 3, v.frames, v.height, v.width]);
}

/** A weight-map file's values: one tensor [H, W] / [T, H, W] in a .safetensors, or a grayscale PNG (0..255 -> 0..1). */
async function readWeightMap(path: string, control: string): Promise<{ values: Float32Array; shape: number[] }> {
  if (/\.png$/i.test(path)) {
    const img = await readPng(path);
    const n = img.width * img.height;
    const values = new Float32Array(n);
    for (let p = 0; p < n; p++) values[p] = (img.data[3 * p] + img.data[3 * p + 1] + img.data[3 * p + 2]) / (3 * 255);
    return { values, shape: [img.height, img.width] };
  }
  const f = await openSafetensors(path);
  try {
    const name = f.has('weight') ? 'weight' : f.names.length === 1 ? f.names[0] : null;
    if (!name) throw new ControlWeightError(control, `${path} must hold one tensor (or one named "weight"), it has ${f.names.length}: ${f.names.slice(0, 6).join(', ')}`);
    const t = await f.read(name);
    let shape = [...t.shape];
    while (shape.length > 3 && shape[0] === 1) shape = shape.slice(1);
    if (shape.length !== 2 && shape.length !== 3) throw new ControlWeightError(control, `weight map ${path} must be [H, W] or [T, H, W], got [${t.shape.join(', ')}]`);
    const values = t.raw instanceof Float32Array ? t.raw : Float32Array.from(t.raw as ArrayLike<number>);
    return { values, shape };
  } finally {
    await f.close();
  }
}

async function promptEmbeds(spec: TransferSpec, o: TransferOptions, width: number, guidance: number, backend: Backend): Promise<PromptEmbeds> {
  const needNegative = guidance > 1;
  const embeddings = o.embeddings ?? (o.prompt === undefined ? spec.embeddings : null) ?? undefined;
  if (embeddings) return readEmbeddings(embeddings, width, needNegative, backend);
  const prompt = o.prompt ?? spec.prompt;
  if (prompt === null || prompt === undefined) throw new PipelineInputError('--prompt', 'a prompt (or --embeddings / the spec\'s "embeddings") is required');
  if (!spec.textEncoder) {
    throw new PipelineInputError('--embeddings', 'Transfer2.5\'s text encoder is the Cosmos-Reason VLM: pass precomputed prompt embeddings (or name a T5 "text_encoder" folder in the spec)');
  }
  o.onPhase?.(`text encoder ${spec.textEncoder}`);
  const te = await T5TextEncoder.load(spec.textEncoder, backend);
  try {
    const p = te.encodePrompts([prompt]);
    const pe = p.embeddings.keep();
    const negative = needNegative ? te.encodePrompts([o.negativePrompt ?? spec.negativePrompt ?? DEFAULT_NEGATIVE_PROMPT]).embeddings.keep() : null;
    if (pe.shape[2] !== width) {
      pe.dispose();
      negative?.dispose();
      throw new PipelineInputError('text_encoder', `the T5 encoder gives width ${pe.shape[2]}, the base transformer reads ${width}`);
    }
    return { prompt: pe, negative, source: 'T5' };
  } finally {
    te.dispose();
  }
}

/**
 * Run a Transfer spec: load the base, the VAE and every ControlNet, encode the control videos,
 * denoise with the weighted controls, decode.
 */
export async function transfer(spec: TransferSpec, backend: Backend, o: TransferOptions = {}): Promise<TransferResult> {
  const seed = o.seed ?? spec.seed;
  const steps = o.steps ?? spec.numSteps;
  const guidance = o.guidance ?? spec.guidance;
  const timings = { load: 0, text: 0, vaeEncode: 0, denoise: 0, decode: 0 };
  const owned: { dispose(): void }[] = [];
  const tensors: Tensor[] = [];
  try {
    // 1. the control videos: same size and frame count
    let t0 = now();
    const videos: Video[] = [];
    for (const c of spec.controls) {
      o.onPhase?.(`control "${c.name}": ${c.inputControl}`);
      const v = await readVideo(c.inputControl);
      if (videos.length) {
        const f = videos[0];
        if (v.frames !== f.frames || v.height !== f.height || v.width !== f.width) {
          throw new ControlShapeError(c.name, `control video ${c.inputControl} is ${v.frames} frames of ${v.width}x${v.height}, ` +
            `"${spec.controls[0].name}"'s is ${f.frames} frames of ${f.width}x${f.height}; every control video must have the same size and frame count`);
        }
      }
      videos.push(v);
    }

    // 2. the VAE and the base
    o.onPhase?.(`tokenizer ${spec.tokenizer}`);
    const vae = await loadVaeFrom(spec.tokenizer, backend);
    owned.push(vae.model);
    o.onPhase?.(`base transformer ${spec.baseCheckpoint}`);
    const { model: base } = await CosmosTransformer3DModel.fromPretrained(spec.baseCheckpoint, backend);
    owned.push(base);
    const bc = base.config;
    if (!bc.controlnetBlockEveryN) throw new PipelineFilesError(spec.baseCheckpoint, 'the base transformer has no controlnet_block_every_n: it is not a Transfer base');
    if (bc.outChannels !== vae.model.latentChannels) {
      throw new PipelineFilesError(spec.baseCheckpoint, `the transformer outputs ${bc.outChannels} latent channels, the tokenizer's latent has ${vae.model.latentChannels}`);
    }

    // 3. sizes: frames 1 + k * tc, H and W multiples of the VAE compression times the patch
    const tc = vae.model.temporalCompression;
    const sc = vae.model.spatialCompression;
    const first = videos[0];
    const frames = o.numFrames ?? spec.numFrames ?? 1 + Math.floor((first.frames - 1) / tc) * tc;
    if (frames > first.frames) throw new PipelineInputError('num_frames', `${frames} frames asked for, the control videos have ${first.frames}`);
    if ((frames - 1) % tc) throw new PipelineInputError('num_frames', `${frames} frames: must be 1 + k * ${tc} (the tokenizer's temporal compression)`);
    const [pt, ph, pw] = bc.patchSize;
    if (first.height % (sc * ph) || first.width % (sc * pw)) {
      throw new PipelineInputError('input_control', `control videos of ${first.width}x${first.height}: width and height must be multiples of ${sc * pw} x ${sc * ph} (VAE ${sc} x patch)`);
    }
    const latentShape = [1, bc.outChannels, 1 + (frames - 1) / tc, first.height / sc, first.width / sc];
    if (latentShape[2] % pt) throw new PipelineInputError('num_frames', `${latentShape[2]} latent frames are not a multiple of the patch's ${pt}`);
    const grid: [number, number, number] = [latentShape[2] / pt, latentShape[3] / ph, latentShape[4] / pw];
    const tokens = grid[0] * grid[1] * grid[2];
    const inner = Math.trunc(bc.numAttentionHeads * bc.attentionHeadDim * bc.mlpRatio);
    base.ffChunkTokens = ffChunk(backend, inner, tokens);

    // 4. the ControlNets
    const models: CosmosControlNetModel[] = [];
    const need = Math.ceil(bc.numLayers / bc.controlnetBlockEveryN);
    for (const c of spec.controls) {
      o.onPhase?.(`ControlNet "${c.name}": ${c.checkpoint}`);
      const { model } = await CosmosControlNetModel.fromPretrained(c.checkpoint, backend);
      owned.push(model);
      if (model.numResiduals < need) {
        throw new PipelineFilesError(c.checkpoint, `control "${c.name}": ${model.numResiduals} control blocks, the base (${bc.numLayers} blocks, one residual every ${bc.controlnetBlockEveryN}) needs ${need}`);
      }
      if (model.config.patchSize.join() !== bc.patchSize.join()) {
        throw new PipelineFilesError(c.checkpoint, `control "${c.name}": patch_size ${JSON.stringify(model.config.patchSize)} differs from the base's ${JSON.stringify(bc.patchSize)}`);
      }
      model.ffChunkTokens = ffChunk(backend, Math.trunc(model.hiddenSize * model.config.mlpRatio), tokens);
      models.push(model);
    }
    timings.load = now() - t0;

    // 5. encode the control videos (and the conditioning video)
    t0 = now();
    const branches: ControlBranch[] = [];
    for (let i = 0; i < spec.controls.length; i++) {
      const c = spec.controls[i];
      o.onPhase?.(`encode control "${c.name}" (${frames} frames)`);
      const z = scope(() => normalizeLatents(vae.model.encode(videoTensor(cropVideo(videos[i], frames, first.height, first.width), backend)), vae, 1)).keep();
      tensors.push(z);
      let weight: ControlBranch['weight'];
      if (typeof c.weight === 'number') weight = c.weight;
      else {
        const m = await readWeightMap(c.weight.path, c.name);
        // [T, H, W] maps over pixel frames keep their first `frames`; latent-frame maps stay as they are
        if (m.shape.length === 3 && m.shape[0] > grid[0] && m.shape[0] >= frames) {
          const plane = m.shape[1] * m.shape[2];
          m.values = m.values.slice(0, frames * plane);
          m.shape = [frames, m.shape[1], m.shape[2]];
        }
        try {
          weight = resizeWeightMap(m.values, m.shape, grid);
        } catch (e) {
          if (e instanceof ControlWeightError) throw new ControlWeightError(c.name, `${c.weight.path}: ${e.message}`);
          throw e;
        }
      }
      branches.push({ name: c.name, model: models[i], latents: z, weight });
    }
    let conditioning: { latents: Tensor; numCondLatentFrames: number } | null = null;
    if (spec.inputVideo && spec.numConditionalFrames > 0) {
      o.onPhase?.(`encode input video ${spec.inputVideo}`);
      const v = await readVideo(spec.inputVideo);
      if (v.height !== first.height || v.width !== first.width) {
        throw new PipelineInputError('input_video_path', `${v.width}x${v.height} differs from the control videos' ${first.width}x${first.height}`);
      }
      const nc = spec.numConditionalFrames;
      if (nc > latentShape[2]) throw new PipelineInputError('num_conditional_frames', `${nc} latent frames, the output has ${latentShape[2]}`);
      const needFrames = 1 + (nc - 1) * tc;
      if (v.frames < needFrames) throw new PipelineInputError('input_video_path', `${v.frames} frames, ${nc} conditioning latent frames need ${needFrames}`);
      // the conditioning clip, padded with its last frame to the output length (only the first nc latent frames are read)
      const clip = cropVideo(v, Math.min(v.frames, frames), v.height, v.width);
      const full = padVideo(clip, frames, v.height, v.width);
      const z = scope(() => normalizeLatents(vae.model.encode(videoTensor(full, backend)), vae, 1)).keep();
      tensors.push(z);
      conditioning = { latents: z, numCondLatentFrames: nc };
    }
    timings.vaeEncode = now() - t0;

    const multi = await MultiControlNet.create(branches, { overCap: spec.weightOverCap });
    owned.push(multi);

    // 6. text
    t0 = now();
    const width = bc.useCrossattnProjection ? bc.crossattnProjInChannels : bc.textEmbedDim;
    const embeds = await promptEmbeds(spec, o, width, guidance, backend);
    tensors.push(embeds.prompt, ...(embeds.negative ? [embeds.negative] : []));
    timings.text = now() - t0;

    // 7. denoise
    o.onPhase?.(`denoise: ${steps} steps, guidance ${guidance}, latent [${latentShape.join(', ')}], controls ${spec.controls.map((c) => c.name).join(' + ')}`);
    t0 = now();
    const noise = new GaussianNoise(seed).tensor(backend, latentShape).keep();
    tensors.push(noise);
    const paddingMask = F.zeros(backend, [1, 1, first.height, first.width]).keep();
    tensors.push(paddingMask);
    let last = t0;
    const onStep = async (d: DenoiseStep) => {
      await backend.sync();
      const t = now();
      o.onStep?.({ step: d.step, steps: d.steps, sigma: d.sigma, stepSeconds: t - last, elapsedSeconds: t - t0 });
      last = t;
    };
    o.onDenoiseStart?.(steps);
    const result = await sampleFlowUniPC(multi.denoiser(base), {
      noise, promptEmbeds: embeds.prompt, negativePromptEmbeds: embeds.negative, guidanceScale: guidance, steps,
      scheduler: schedulerFor(spec.baseCheckpoint), conditioning, paddingMask, onStep, signal: o.signal,
    });
    const latents = result.latents;
    tensors.push(latents);
    timings.denoise = now() - t0;

    // 8. decode
    t0 = now();
    o.onPhase?.('decode');
    const fps = spec.fps ?? (first.fps ? fpsValue(first.fps) : 24);
    const video = await decodeLatents(latents, vae, 1, fps);
    video.fps = fpsRational(fps);
    timings.decode = now() - t0;
    return {
      video,
      latents: { shape: [...latents.shape], data: Float32Array.from(await latents.read()) },
      seed, steps, guidance, fps,
      controls: spec.controls.map((c) => ({ name: c.name, weight: typeof c.weight === 'number' ? c.weight : c.weight.path })),
      maxWeightSum: multi.maxWeightSum,
      timings,
    };
  } finally {
    for (const t of tensors) t.dispose();
    for (const m of owned.reverse()) m.dispose();
  }
}
