// Text2World: a diffusers-style Cosmos world-model folder run end to end.
//
//   model_index.json                       (optional: pipeline class, component classes)
//   transformer/ config.json + diffusion_pytorch_model*.safetensors (sharded with an index or not)
//   vae/         config.json + weights: AutoencoderKLCosmos (diffusers) or a Cosmos-Tokenizer CV folder
//   text_encoder/ config.json + weights (T5EncoderModel) and tokenizer/spiece.model
//                 (not needed with --embeddings; Predict2.5's text encoder is the Reason VLM, so
//                 its prompts always come as precomputed embeddings)
//   scheduler/   scheduler_config.json: EDMEulerScheduler (Cosmos-1.0), UniPCMultistepScheduler
//                (Predict2.5), FlowMatchEulerDiscreteScheduler (Predict2)
//
// prompt -> T5 (or embeddings file) -> seeded noise -> sampler (one report per step) ->
// latent denormalisation -> VAE decode -> video in [-1, 1]. Spec: dit.md §5-§6, tokenizer.md §9.
//
// This file also holds what video2world.ts shares: folder inspection, typed errors, size
// planning, prompt embeddings, the latent (de)normalisation and the sampler dispatch.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '../engine/backend.js';
import type { DType, RawArray } from '../engine/dtype.js';
import * as F from '../engine/ops.js';
import { type Tensor, scope } from '../engine/tensor.js';
import { openSafetensors } from '../io/safetensors.js';
import type { Video } from '../io/video.js';
import { type CosmosTransformerConfig, parseCosmosTransformerConfig } from '../models/dit/config.js';
import { GaussianNoise } from '../models/dit/noise.js';
import type { DenoiseStep } from '../models/dit/samplers/common.js';
import { type EdmSchedulerConfig, parseEdmSchedulerConfig, sampleEdm } from '../models/dit/samplers/edm.js';
import { type FlowEulerConfig, PREDICT2_FLOW_EULER, sampleFlowEuler } from '../models/dit/samplers/flow-euler.js';
import { type UniPCConfig, parseUniPCConfig, sampleFlowUniPC } from '../models/dit/samplers/unipc.js';
import { CosmosTransformer3DModel } from '../models/dit/transformer.js';
import { T5TextEncoder, parseT5Config } from '../models/t5/encoder.js';
import { AutoencoderKLCosmos } from '../models/tokenizer/diffusers.js';
import { buildTokenizer, loadTokenizer } from '../models/tokenizer/load.js';
import { CausalContinuousVideoTokenizer } from '../models/tokenizer/video.js';
import { UserError } from '../engine/errors.js';

// ------------------------------------------------------------------ errors

/** A bad option value (frame count, size, embeddings width, ...): names the argument. */
export class PipelineInputError extends UserError {
  override name = 'PipelineInputError';
  constructor(
    /** the option at fault, as the CLI spells it (e.g. '--frames') */
    readonly argument: string,
    message: string,
  ) {
    super(`${argument}: ${message}`);
  }
}

/** A model folder that lacks a subfolder / file, or whose parts do not fit together. */
export class PipelineFilesError extends UserError {
  override name = 'PipelineFilesError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

// ------------------------------------------------------------------ the folder

export type WorldFamily = 'cosmos1' | 'predict2' | 'predict2.5';
export type WorldSampler = 'edm' | 'unipc' | 'flow-euler';

/** Upstream pipeline defaults (diffusers __call__ signatures). */
export interface WorldDefaults {
  frames: number;
  height: number;
  width: number;
  steps: number;
  guidance: number;
  /** RoPE fps (Cosmos-1.0, Predict2 video2world) and the written video's frame rate */
  fps: number;
}

export const WORLD_DEFAULTS: Readonly<Record<WorldFamily, WorldDefaults>> = {
  cosmos1: { frames: 121, height: 704, width: 1280, steps: 36, guidance: 7, fps: 30 },
  predict2: { frames: 93, height: 704, width: 1280, steps: 35, guidance: 7, fps: 16 },
  'predict2.5': { frames: 93, height: 704, width: 1280, steps: 36, guidance: 7, fps: 16 },
};

export const FAMILY_NAMES: Readonly<Record<WorldFamily, string>> = {
  cosmos1: 'Cosmos-1.0 Diffusion (EDM)',
  predict2: 'Cosmos-Predict2 (flow matching, Euler)',
  'predict2.5': 'Cosmos-Predict2.5 (flow matching, UniPC)',
};

/** diffusers' default negative prompt of the Cosmos pipelines. */
export const DEFAULT_NEGATIVE_PROMPT =
  'The video captures a series of frames showing ugly scenes, static with no motion, motion blur, ' +
  'over-saturation, shaky footage, low resolution, grainy texture, pixelated images, poorly lit areas, ' +
  'underexposed and overexposed scenes, poor color balance, washed out colors, choppy sequences, ' +
  'jerky movements, low frame rate, artifacting, color banding, unnatural transitions, outdated special effects, ' +
  'fake elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and flickering. ' +
  'Overall, the video is of poor quality.';

export type SchedulerChoice =
  | { kind: 'edm'; config: EdmSchedulerConfig }
  | { kind: 'unipc'; config: UniPCConfig }
  | { kind: 'flow-euler'; config: FlowEulerConfig };

export interface VaeGeometry {
  latentChannels: number;
  temporalCompression: number;
  spatialCompression: number;
}

/** What a model folder holds, read from its configs (no weights loaded). */
export interface WorldModelInfo {
  dir: string;
  /** model_index.json `_class_name`, when there is one */
  pipelineClass: string | null;
  family: WorldFamily;
  scheduler: SchedulerChoice;
  transformerDir: string;
  transformer: CosmosTransformerConfig;
  vaeDir: string;
  vaeClass: string;
  /** null: the VAE can be run here; else why not */
  vaeUnsupported: string | null;
  vae: VaeGeometry | null;
  /** text_encoder/ when it holds a T5 encoder this project runs, else null */
  textEncoderDir: string | null;
  /** tokenizer/spiece.model (or text_encoder/spiece.model) */
  spiecePath: string | null;
  /** why prompts cannot be encoded here (null: they can) */
  textEncoderUnsupported: string | null;
  /** width of the text states the transformer reads (crossattn_proj_in_channels or text_embed_dim) */
  textWidth: number;
  defaults: WorldDefaults;
}

function readJson(path: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new PipelineFilesError(path, `${what} is not valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new PipelineFilesError(path, `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function requireDir(dir: string, what: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PipelineFilesError(dir, `missing: the ${what} subfolder is required`);
}

function requireFile(path: string, what: string): void {
  if (!existsSync(path) || !statSync(path).isFile()) throw new PipelineFilesError(path, `missing: ${what}`);
}

function hasWeights(dir: string): boolean {
  return readdirSync(dir).some((n) => n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json'));
}

function requireWeights(dir: string, what: string): void {
  if (!hasWeights(dir)) throw new PipelineFilesError(dir, `no ${what} weights: expected *.safetensors (or a *.safetensors.index.json with its shards)`);
}

const SCHEDULERS: Record<string, WorldFamily> = {
  EDMEulerScheduler: 'cosmos1',
  UniPCMultistepScheduler: 'predict2.5',
  FlowMatchEulerDiscreteScheduler: 'predict2',
};

function componentClass(index: Record<string, unknown> | null, name: string): string | null {
  const v = index?.[name];
  return Array.isArray(v) && typeof v[1] === 'string' ? v[1] : null;
}

/** Read a model folder's configs and check every part it needs is there. */
export function inspectWorldModel(dir: string): WorldModelInfo {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new PipelineFilesError(dir, 'is not a folder (expected a diffusers-style model folder)');
  const indexPath = join(dir, 'model_index.json');
  const index = existsSync(indexPath) ? readJson(indexPath, 'model_index.json') : null;
  const pipelineClass = typeof index?._class_name === 'string' ? index._class_name : null;

  // scheduler -> family
  const schedDir = join(dir, 'scheduler');
  requireDir(schedDir, 'scheduler/');
  const schedPath = join(schedDir, 'scheduler_config.json');
  requireFile(schedPath, 'scheduler/scheduler_config.json');
  const schedJson = readJson(schedPath, 'scheduler_config.json');
  const schedClass = typeof schedJson._class_name === 'string' ? schedJson._class_name : componentClass(index, 'scheduler');
  const family = schedClass ? SCHEDULERS[schedClass] : undefined;
  if (!family) {
    throw new PipelineFilesError(schedPath, `_class_name ${JSON.stringify(schedClass)} is not a scheduler of the Cosmos pipelines (${Object.keys(SCHEDULERS).join(', ')})`);
  }
  let scheduler: SchedulerChoice;
  if (family === 'cosmos1') scheduler = { kind: 'edm', config: parseEdmSchedulerConfig(schedJson) };
  else if (family === 'predict2.5') scheduler = { kind: 'unipc', config: parseUniPCConfig(schedJson) };
  // the Predict2 pipelines re-register sigma_max 80, sigma_min 0.002, sigma_data 1 on the scheduler
  else scheduler = { kind: 'flow-euler', config: PREDICT2_FLOW_EULER };

  // transformer
  const transformerDir = join(dir, 'transformer');
  requireDir(transformerDir, 'transformer/');
  requireFile(join(transformerDir, 'config.json'), 'transformer/config.json');
  requireWeights(transformerDir, 'transformer');
  const transformer = parseCosmosTransformerConfig(readJson(join(transformerDir, 'config.json'), 'transformer/config.json'));
  const textWidth = transformer.useCrossattnProjection ? transformer.crossattnProjInChannels : transformer.textEmbedDim;

  // vae
  const vaeDir = join(dir, 'vae');
  requireDir(vaeDir, 'vae/');
  const vaeCfgPath = join(vaeDir, 'config.json');
  requireFile(vaeCfgPath, 'vae/config.json');
  const vaeJson = readJson(vaeCfgPath, 'vae/config.json');
  const vaeClass = typeof vaeJson._class_name === 'string' ? vaeJson._class_name : `Cosmos-Tokenizer ${String(vaeJson.name ?? '?')}`;
  let vaeUnsupported: string | null = null;
  let vae: VaeGeometry | null = null;
  if (typeof vaeJson._class_name === 'string' && vaeJson._class_name !== 'AutoencoderKLCosmos') {
    vaeUnsupported = vaeJson._class_name === 'AutoencoderKLWan'
      ? 'AutoencoderKLWan (the Wan2.1 VAE of Predict2 / Predict2.5) is not implemented in cosmos-ts'
      : `${vaeJson._class_name} is not a VAE cosmos-ts implements (AutoencoderKLCosmos or a Cosmos-Tokenizer CV folder)`;
  } else {
    requireWeights(vaeDir, 'vae');
    const m = buildTokenizer(vaeJson);
    if (!(m instanceof CausalContinuousVideoTokenizer)) {
      vaeUnsupported = `a ${(m as { kind?: string }).kind ?? '?'} tokenizer; the world models need a continuous video tokenizer (CV / AutoencoderKLCosmos)`;
    } else {
      vae = { latentChannels: m.latentChannels, temporalCompression: m.temporalCompression, spatialCompression: m.spatialCompression };
      if (vae.latentChannels !== transformer.outChannels) {
        throw new PipelineFilesError(vaeDir, `the VAE has ${vae.latentChannels} latent channels but the transformer outputs ${transformer.outChannels}`);
      }
    }
    m.dispose();
  }

  // text encoder
  const teDir = join(dir, 'text_encoder');
  let textEncoderDir: string | null = null;
  let spiecePath: string | null = null;
  let textEncoderUnsupported: string | null = null;
  const teClass = componentClass(index, 'text_encoder');
  if (family === 'predict2.5' || (teClass !== null && teClass !== 'T5EncoderModel')) {
    textEncoderUnsupported = family === 'predict2.5'
      ? "Predict2.5's text encoder is the Cosmos-Reason VLM; its prompt embeddings must be given precomputed"
      : `text_encoder is ${teClass}, not a T5EncoderModel`;
  } else if (!existsSync(teDir)) {
    textEncoderUnsupported = `${teDir} is missing`;
  } else {
    const teCfg = join(teDir, 'config.json');
    if (!existsSync(teCfg)) textEncoderUnsupported = `${teCfg} is missing`;
    else if (!hasWeights(teDir)) textEncoderUnsupported = `${teDir} holds no *.safetensors weights`;
    else {
      const j = readJson(teCfg, 'text_encoder/config.json');
      if (j.model_type !== undefined && j.model_type !== 't5') textEncoderUnsupported = `text_encoder/config.json model_type is ${JSON.stringify(j.model_type)}, not t5`;
      else {
        const d = parseT5Config(j).dModel;
        if (d !== textWidth) throw new PipelineFilesError(teDir, `the T5 encoder's d_model is ${d} but the transformer reads text states of width ${textWidth}`);
        textEncoderDir = teDir;
      }
    }
    const sp = [join(dir, 'tokenizer', 'spiece.model'), join(teDir, 'spiece.model')].find((p) => existsSync(p));
    if (sp) spiecePath = sp;
    else if (!textEncoderUnsupported) textEncoderUnsupported = `${join(dir, 'tokenizer', 'spiece.model')} is missing (the T5 SentencePiece model)`;
  }

  return {
    dir, pipelineClass, family, scheduler, transformerDir, transformer, vaeDir, vaeClass, vaeUnsupported, vae,
    textEncoderDir: textEncoderUnsupported ? null : textEncoderDir, spiecePath, textEncoderUnsupported, textWidth,
    // Cosmos2TextToImagePipeline: one frame at 768 x 1360
    defaults: pipelineClass?.includes('TextToImage') ? { ...WORLD_DEFAULTS[family], frames: 1, height: 768, width: 1360 } : WORLD_DEFAULTS[family],
  };
}

/** One line describing the folder. */
export function describeWorldModel(info: WorldModelInfo): string {
  const t = info.transformer;
  const D = t.numAttentionHeads * t.attentionHeadDim;
  return `${FAMILY_NAMES[info.family]}${info.pipelineClass ? ` [${info.pipelineClass}]` : ''}: transformer ${t.numLayers} blocks, ` +
    `D ${D}, in ${t.inChannels} ch; VAE ${info.vaeClass}` +
    (info.vae ? ` (${info.vae.temporalCompression}x${info.vae.spatialCompression}x${info.vae.spatialCompression}, ${info.vae.latentChannels} ch)` : ' (not runnable here)');
}

// ------------------------------------------------------------------ options and sizes

export interface StepReport {
  /** 0-based */
  step: number;
  steps: number;
  sigma: number;
  /** seconds this step took (both guidance passes) */
  stepSeconds: number;
  elapsedSeconds: number;
}

export interface WorldOptions {
  prompt?: string;
  /** default: diffusers' DEFAULT_NEGATIVE_PROMPT */
  negativePrompt?: string;
  /** safetensors file with `prompt_embeds` [1, S, D] (and `negative_prompt_embeds` for guidance > 1) */
  embeddings?: string;
  /** default 0 */
  seed?: number | string;
  steps?: number;
  guidance?: number;
  frames?: number;
  height?: number;
  width?: number;
  fps?: number;
  /** T5 tokens per prompt (default 512) */
  maxSequenceLength?: number;
  /** decode the latents with the VAE (default true; false returns latents only) */
  decode?: boolean;
  onStep?: (s: StepReport) => void;
  /** a line of progress (loading, encoding, decoding) */
  onPhase?: (message: string) => void;
  signal?: AbortSignal;
}

export interface SizePlan {
  frames: number;
  height: number;
  width: number;
  /** [1, C, T, h, w] */
  latentShape: [number, number, number, number, number];
}

function checkInt(v: number, argument: string, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new PipelineInputError(argument, `must be an integer >= ${min}, got ${v}`);
}

/** Check the output size against the VAE and the transformer; the latent shape it implies. */
export function planSizes(info: WorldModelInfo, vae: VaeGeometry, frames: number, height: number, width: number): SizePlan {
  const t = info.transformer;
  const tc = vae.temporalCompression;
  const sc = vae.spatialCompression;
  const [pt, ph, pw] = t.patchSize;
  checkInt(frames, '--frames', 1);
  checkInt(height, '--height', 1);
  checkInt(width, '--width', 1);
  if ((frames - 1) % tc !== 0) {
    const lo = frames - ((frames - 1) % tc);
    throw new PipelineInputError('--frames', `must be 1 + k*${tc} (the VAE compresses time ${tc}x causally), got ${frames}; try ${lo} or ${lo + tc}`);
  }
  const T = (frames - 1) / tc + 1;
  if (T % pt !== 0) throw new PipelineInputError('--frames', `${frames} frames give ${T} latent frames, not a multiple of the patch size ${pt}`);
  for (const [arg, v, p] of [['--height', height, ph], ['--width', width, pw]] as const) {
    if (v % (sc * p) !== 0) throw new PipelineInputError(arg, `must be a multiple of ${sc * p} (VAE ${sc}x, patch ${p}), got ${v}`);
  }
  const h = height / sc;
  const w = width / sc;
  const lim: [string, number, number, number][] = [['--frames', T, t.maxSize[0], tc], ['--height', h, t.maxSize[1], sc], ['--width', w, t.maxSize[2], sc]];
  for (const [arg, n, max, f] of lim) {
    if (n > max) {
      const maxPixels = arg === '--frames' ? (max - 1) * f + 1 : max * f;
      throw new PipelineInputError(arg, `${n} latent positions exceed the transformer's max_size ${max} (at most ${maxPixels} ${arg === '--frames' ? 'frames' : 'pixels'})`);
    }
  }
  return { frames, height, width, latentShape: [1, vae.latentChannels, T, h, w] };
}

// ------------------------------------------------------------------ prompt embeddings

export interface PromptEmbeds {
  prompt: Tensor;
  negative: Tensor | null;
  /** where they came from, for messages */
  source: string;
}

function toBatch1(t: { dtype: DType; raw: RawArray; shape: readonly number[] }, name: string, width: number, backend: Backend, path: string): Tensor {
  const s = t.shape;
  const shape = s.length === 2 ? [1, s[0], s[1]] : [...s];
  if (shape.length !== 3 || shape[0] !== 1 || shape[1] < 1) {
    throw new PipelineInputError('--embeddings', `${path}: ${name} must be [1, S, ${width}] or [S, ${width}], got [${s.join(', ')}]`);
  }
  if (shape[2] !== width) {
    throw new PipelineInputError('--embeddings', `${path}: ${name} has width ${shape[2]} but the transformer reads text states of width ${width}`);
  }
  return F.fromRaw(backend, t.raw, shape, t.dtype);
}

/** `prompt_embeds` / `negative_prompt_embeds` from a safetensors file. */
export async function readEmbeddings(path: string, width: number, needNegative: boolean, backend: Backend): Promise<PromptEmbeds> {
  if (!existsSync(path)) throw new PipelineInputError('--embeddings', `${path} does not exist`);
  const f = await openSafetensors(path);
  try {
    if (!f.has('prompt_embeds')) {
      throw new PipelineInputError('--embeddings', `${path} holds no "prompt_embeds" tensor (it has: ${f.names.slice(0, 8).join(', ') || 'nothing'})`);
    }
    if (needNegative && !f.has('negative_prompt_embeds')) {
      throw new PipelineInputError('--embeddings', `${path} holds no "negative_prompt_embeds"; guidance > 1 needs them (or pass --guidance 1)`);
    }
    const prompt = toBatch1(await f.read('prompt_embeds'), 'prompt_embeds', width, backend, path);
    let negative: Tensor | null = null;
    if (needNegative) {
      try {
        negative = toBatch1(await f.read('negative_prompt_embeds'), 'negative_prompt_embeds', width, backend, path);
      } catch (e) {
        prompt.dispose();
        throw e;
      }
    }
    return { prompt, negative, source: path };
  } finally {
    await f.close();
  }
}

/** The prompt (and negative prompt) embeddings: from the embeddings file, or T5. */
export async function promptEmbeddings(info: WorldModelInfo, o: WorldOptions, guidance: number, backend: Backend): Promise<PromptEmbeds> {
  const needNegative = guidance > 1;
  if (o.embeddings !== undefined) return readEmbeddings(o.embeddings, info.textWidth, needNegative, backend);
  if (o.prompt === undefined) throw new PipelineInputError('--prompt', 'a prompt (or --embeddings with precomputed prompt embeddings) is required');
  if (info.textEncoderUnsupported || !info.textEncoderDir) {
    throw new PipelineInputError('--embeddings', `needed for this model: ${info.textEncoderUnsupported ?? 'no text encoder'}`);
  }
  o.onPhase?.(`text encoder ${info.textEncoderDir}`);
  const te = await T5TextEncoder.load(info.textEncoderDir, backend, info.spiecePath ?? undefined);
  try {
    const maxLength = o.maxSequenceLength ?? 512;
    const p = te.encodePrompts([o.prompt], { maxLength });
    const prompt = p.embeddings.keep();
    let negative: Tensor | null = null;
    if (needNegative) negative = te.encodePrompts([o.negativePrompt ?? DEFAULT_NEGATIVE_PROMPT], { maxLength }).embeddings.keep();
    o.onPhase?.(`prompt: ${p.lengths[0]} tokens${needNegative ? ' (+ negative prompt)' : ''}`);
    return { prompt, negative, source: 'T5' };
  } finally {
    te.dispose();
  }
}

// ------------------------------------------------------------------ VAE and latent normalisation

export interface LoadedVae {
  model: CausalContinuousVideoTokenizer;
  /** per-channel (per latent frame) statistics as flat channel-major lists, or null */
  mean: readonly number[] | null;
  std: readonly number[] | null;
}

export async function loadVae(info: WorldModelInfo, backend: Backend, forWhat: string): Promise<LoadedVae> {
  if (info.vaeUnsupported) throw new PipelineFilesError(info.vaeDir, `${info.vaeUnsupported}; ${forWhat}`);
  const m = await loadTokenizer(info.vaeDir, backend);
  if (!(m instanceof CausalContinuousVideoTokenizer)) {
    m.dispose();
    throw new PipelineFilesError(info.vaeDir, 'not a continuous video tokenizer');
  }
  const stats = m instanceof AutoencoderKLCosmos ? { mean: m.latentsMean, std: m.latentsStd } : { mean: null, std: null };
  return { model: m, ...stats };
}

/** sigma_data of the sampler's latent space: the normalised latent is (z - mean) * sd / std. */
export function latentSigmaData(info: WorldModelInfo): number {
  const s = info.scheduler;
  return s.kind === 'edm' ? s.config.sigmaData : s.kind === 'flow-euler' ? s.config.sigmaData : 1;
}

/** Mean and std as [1, C, t, 1, 1] (or [1, C, 1, 1, 1], broadcast) for t latent frames. */
function statTensors(vae: LoadedVae, C: number, t: number, backend: Backend): [Tensor, Tensor] | null {
  if (!vae.mean || !vae.std) return null;
  const chunk = vae.mean.length / C;
  if (chunk !== 1 && chunk < t) {
    throw new PipelineInputError('--frames', `the VAE's latents_mean/std cover ${chunk} latent frames, fewer than the ${t} asked for`);
  }
  const keep = chunk === 1 ? 1 : t;
  const pick = (v: readonly number[]) => {
    const out = new Float32Array(C * keep);
    for (let c = 0; c < C; c++) for (let i = 0; i < keep; i++) out[c * keep + i] = v[c * chunk + i];
    return F.fromArray(backend, out, [1, C, keep, 1, 1]);
  };
  return [pick(vae.mean), pick(vae.std)];
}

/** VAE latent -> the sampler's space: (z - mean) * sd / std, or z * sd without statistics. */
export function normalizeLatents(z: Tensor, vae: LoadedVae, sigmaData: number): Tensor {
  return scope(() => {
    const st = statTensors(vae, z.shape[1], z.shape[2], z.backend);
    if (!st) return F.scale(z, sigmaData);
    return F.div(F.scale(F.sub(z, st[0]), sigmaData), st[1]);
  });
}

/** The sampler's latents -> VAE latent: x * std / sd + mean, or x / sd. */
export function denormalizeLatents(x: Tensor, vae: LoadedVae, sigmaData: number): Tensor {
  return scope(() => {
    const st = statTensors(vae, x.shape[1], x.shape[2], x.backend);
    if (!st) return F.scale(x, 1 / sigmaData);
    return F.add(F.scale(F.mul(x, st[1]), 1 / sigmaData), st[0]);
  });
}

/** Decode sampler latents to a clip in [-1, 1] (clamped). */
export async function decodeLatents(latents: Tensor, vae: LoadedVae, sigmaData: number, fps: number): Promise<Video> {
  const z = denormalizeLatents(latents, vae, sigmaData);
  let out: Tensor;
  try {
    out = vae.model.decode(z);
  } finally {
    z.dispose();
  }
  const [, , T, H, W] = out.shape;
  const data = (await out.read()) as Float32Array;
  out.dispose();
  for (let i = 0; i < data.length; i++) data[i] = data[i] < -1 ? -1 : data[i] > 1 ? 1 : data[i];
  return { data, frames: T, height: H, width: W, fps: fpsRational(fps) };
}

export function fpsRational(fps: number): { num: number; den: number } {
  if (Number.isInteger(fps)) return { num: fps, den: 1 };
  return { num: Math.round(fps * 1000), den: 1000 };
}

// ------------------------------------------------------------------ the transformer and the loop

/** The transformer, with its MLP chunked to fit a WebGPU binding when the tokens need it. */
export async function loadTransformer(info: WorldModelInfo, backend: Backend, tokens: number): Promise<CosmosTransformer3DModel> {
  const { model } = await CosmosTransformer3DModel.fromPretrained(info.transformerDir, backend);
  const limits = (backend as { ctx?: { device?: { limits?: { maxStorageBufferBindingSize?: number } } } }).ctx?.device?.limits;
  const maxBinding = limits?.maxStorageBufferBindingSize;
  if (maxBinding) {
    const t = info.transformer;
    const inner = Math.trunc(t.numAttentionHeads * t.attentionHeadDim * t.mlpRatio);
    const rows = Math.floor(maxBinding / (4 * inner));
    if (tokens > rows) model.ffChunkTokens = Math.max(1, rows);
  }
  return model;
}

/** Conditioning latents for video2world, already in the sampler's space. */
export interface WorldConditioning {
  /** [1, C, T, h, w]: the conditioning clip (padded to the output length) encoded and normalised */
  latents: Tensor;
  numCondLatentFrames: number;
  /** EDM noise augmentation (default 0.001) */
  augmentSigma?: number;
}

export interface DenoiseSettings {
  seed: number | string;
  steps: number;
  guidance: number;
  fps: number;
}

/** Run the family's sampler from seeded noise; the final latents (sampler space) [1, C, T, h, w]. */
export async function denoise(
  info: WorldModelInfo, model: CosmosTransformer3DModel, plan: SizePlan, embeds: PromptEmbeds, s: DenoiseSettings,
  cond: WorldConditioning | null, o: Pick<WorldOptions, 'onStep' | 'signal'>,
): Promise<Tensor> {
  const backend = embeds.prompt.backend;
  const noise = new GaussianNoise(s.seed).tensor(backend, plan.latentShape);
  const t0 = performance.now();
  let last = t0;
  const onStep = async (d: DenoiseStep) => {
    await backend.sync();
    const now = performance.now();
    o.onStep?.({ step: d.step, steps: d.steps, sigma: d.sigma, stepSeconds: (now - last) / 1000, elapsedSeconds: (now - t0) / 1000 });
    last = now;
  };
  const common = {
    noise, promptEmbeds: embeds.prompt, negativePromptEmbeds: embeds.negative, steps: s.steps, guidanceScale: s.guidance,
    onStep, signal: o.signal,
  };
  try {
    const sch = info.scheduler;
    let r;
    if (sch.kind === 'edm') {
      r = await sampleEdm(model, {
        ...common, scheduler: sch.config, fps: s.fps,
        conditioning: cond ? {
          latents: cond.latents, numCondLatentFrames: cond.numCondLatentFrames, augmentSigma: cond.augmentSigma,
          // augmentation draws: a stream of their own, so the initial noise matches text2world's for a seed
          noise: new GaussianNoise(`${s.seed}/augment`).source(backend),
        } : null,
      });
    } else if (sch.kind === 'unipc') {
      r = await sampleFlowUniPC(model, {
        ...common, scheduler: sch.config, fps: null,
        conditioning: cond ? { latents: cond.latents, numCondLatentFrames: cond.numCondLatentFrames } : null,
      });
    } else {
      r = await sampleFlowEuler(model, {
        ...common, scheduler: sch.config, fps: cond ? s.fps : null,
        conditioning: cond ? { latents: cond.latents, numCondLatentFrames: cond.numCondLatentFrames } : null,
      });
    }
    return r.latents;
  } finally {
    noise.dispose();
  }
}

// ------------------------------------------------------------------ the pipeline

export interface WorldResult {
  /** the decoded clip (null when decode is false) */
  video: Video | null;
  /** final latents in the sampler's space, on the host */
  latents: { data: Float32Array; shape: number[] };
  family: WorldFamily;
  seed: number | string;
  steps: number;
  guidance: number;
  fps: number;
  plan: SizePlan;
  /** seconds per phase */
  timings: { text: number; vaeEncode: number; denoise: number; decode: number };
}

export interface ResolvedSettings extends DenoiseSettings {
  frames: number;
  height: number;
  width: number;
}

export function resolveSettings(info: WorldModelInfo, o: WorldOptions, fallback: { height?: number; width?: number } = {}): ResolvedSettings {
  const d = info.defaults;
  const steps = o.steps ?? d.steps;
  checkInt(steps, '--steps', 1);
  const guidance = o.guidance ?? d.guidance;
  if (!Number.isFinite(guidance) || guidance < 0) throw new PipelineInputError('--guidance', `must be a number >= 0, got ${guidance}`);
  const fps = o.fps ?? d.fps;
  if (!Number.isFinite(fps) || fps <= 0) throw new PipelineInputError('--fps', `must be a positive number, got ${fps}`);
  return {
    seed: o.seed ?? 0,
    steps,
    guidance,
    fps,
    frames: o.frames ?? d.frames,
    height: o.height ?? fallback.height ?? d.height,
    width: o.width ?? fallback.width ?? d.width,
  };
}

/**
 * The shared body of text2world and video2world: embeddings, (conditioning), transformer,
 * sampler, decode. `conditioning` runs after the prompt is encoded, with the VAE loaded.
 */
export async function runWorld(
  info: WorldModelInfo, backend: Backend, o: WorldOptions, st: ResolvedSettings,
  conditioning: ((vae: LoadedVae, plan: SizePlan) => Promise<WorldConditioning>) | null,
): Promise<WorldResult> {
  const decode = o.decode ?? true;
  if (!info.vae && (decode || conditioning)) {
    throw new PipelineFilesError(info.vaeDir, `${info.vaeUnsupported}; ${conditioning ? 'video2world needs it to encode the input' : 'pass --latents-out to keep the latents without decoding'}`);
  }
  // without a runnable VAE (latents only): the Wan2.1 VAE's 4x8x8 for Predict2 / 2.5, Cosmos' 8x8x8 for 1.0
  const vaeGeom: VaeGeometry = info.vae ?? { latentChannels: info.transformer.outChannels, temporalCompression: info.family === 'cosmos1' ? 8 : 4, spatialCompression: 8 };
  const plan = planSizes(info, vaeGeom, st.frames, st.height, st.width);
  const timings = { text: 0, vaeEncode: 0, denoise: 0, decode: 0 };

  let t = performance.now();
  const embeds = await promptEmbeddings(info, o, st.guidance, backend);
  timings.text = (performance.now() - t) / 1000;
  let vae: LoadedVae | null = null;
  let cond: WorldConditioning | null = null;
  let latents: Tensor | null = null;
  try {
    if (decode || conditioning) {
      o.onPhase?.(`vae ${info.vaeDir}`);
      vae = await loadVae(info, backend, 'it decodes the latents');
    }
    if (conditioning) {
      t = performance.now();
      cond = await conditioning(vae!, plan);
      await backend.sync();
      timings.vaeEncode = (performance.now() - t) / 1000;
    }
    o.onPhase?.(`transformer ${info.transformerDir}`);
    const [, , T, h, w] = plan.latentShape;
    const [pt, ph, pw] = info.transformer.patchSize;
    const model = await loadTransformer(info, backend, (T / pt) * (h / ph) * (w / pw));
    o.onPhase?.(`denoise: latent [${plan.latentShape.join(', ')}], ${st.steps} steps, guidance ${st.guidance}, seed ${st.seed}`);
    t = performance.now();
    try {
      latents = await denoise(info, model, plan, embeds, st, cond, o);
    } finally {
      model.dispose();
    }
    timings.denoise = (performance.now() - t) / 1000;
    const host = { data: (await latents.read()) as Float32Array, shape: [...latents.shape] };
    let video: Video | null = null;
    if (decode) {
      o.onPhase?.('decode');
      t = performance.now();
      video = await decodeLatents(latents, vae!, latentSigmaData(info), st.fps);
      timings.decode = (performance.now() - t) / 1000;
    }
    return { video, latents: host, family: info.family, seed: st.seed, steps: st.steps, guidance: st.guidance, fps: st.fps, plan, timings };
  } finally {
    latents?.dispose();
    cond?.latents.dispose();
    embeds.prompt.dispose();
    embeds.negative?.dispose();
    vae?.model.dispose();
  }
}

/** Text2World on a model folder. */
export async function text2world(modelDir: string, backend: Backend, o: WorldOptions = {}): Promise<WorldResult> {
  const info = inspectWorldModel(modelDir);
  return runWorld(info, backend, o, resolveSettings(info, o), null);
}
