// Transfer: control videos (depth, edge, seg, ...) + a prompt -> a generated clip that follows them.
// Cosmos Transfer2.5's denoising (diffusers Cosmos2_5_TransferPipeline, spec controlnet.md) with
// several ControlNets combined as multi-control (models/controlnet/multi.ts):
//
//   each control video -> VAE encode -> (z - mean) / std = control latent
//                      -> its ControlNet, its weight (scalar, or a weight map resized to the token grid)
//   seeded noise -> flow-matching UniPC loop; each denoiser pass (cond and uncond) runs every
//   ControlNet on the current latent with that pass's text, sums the weighted residuals and runs
//   the base with them -> latent denormalisation -> VAE decode -> video in [-1, 1]
//
// Optional conditioning frames come from the spec's `input_video_path` (the first latent frames
// are kept clean, as video2world). The text comes precomputed, or from the spec's `text_encoder`
// (Transfer2.5's Cosmos-Reason1, or a T5). As upstream, the Wan posterior of every control and
// conditioning clip is SAMPLED, from a stream of its own (`<seed>/posterior`). The phases are world/'s.
import type { Backend } from '../engine/backend.js';
import { UserError, throwIfAborted } from '../engine/errors.js';
import * as F from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { selectBackend } from '../engine/select.js';
import { type FileSystem, fileSystem, readJsonObject, readJsonObjectIfPresent } from '../io/files.js';
import { dirname, join } from '../io/path.js';
import { type Video, cropVideo, fpsValue, sliceFrames } from '../io/video.js';
import { type CosmosControlNetModel, CosmosControlNetFamily } from '../models/controlnet/controlnet.js';
import { MultiControlNet } from '../models/controlnet/multi.js';
import type { ControlSpec, TransferSpec } from '../models/controlnet/spec.js';
import { type CosmosTransformerConfig, parseCosmosTransformerConfig } from '../models/dit/config.js';
import { PREDICT25_UNIPC, type UniPCConfig, parseUniPCConfig } from '../models/dit/samplers/unipc.js';
import { GaussianNoise } from '../models/dit/noise.js';
import { type Config, loadModule } from '../models/load.js';
import { T5TextEncoder } from '../models/t5/prompts.js';
import { ReasonPromptEncoder } from '../models/vlm/prompt-embeds.js';
import { type ComponentBytes, type PhaseHooks, checkComponent } from './components.js';
import { type RunOptions, stage } from './progress.js';
import { type ClipInput, readClip } from './world/condition.js';
import { checkFinite } from './finite.js';
import { type Guardrails, guardOutput, guardPrompt } from './guardrails.js';
import { encodeControls, probeControlInputs } from './world/controls.js';
import { DEFAULT_CHUNK_FRAMES, DEFAULT_CHUNK_OVERLAP, framesToVideo, planChunks, readFramesU8, reflectOrder } from './world/control-input.js';
import { type ControlFramesCallback, type ControlSource, type DepthModelSource, clipControlSource, computedControls, missingDepthModel, videoControlSource } from './world/control-source.js';
import { loadDepthModel } from '../models/depth/index.js';
import type { InputLimits } from '../io/limits.js';
import { PipelineFilesError, PipelineInputError } from './world/errors.js';
import type { VaeGeometry } from './world/folder.js';
import { type HostTensor, type PromptEmbeddingArrays, type PromptOptions, type TextEncoderSource, embeddingArrays, encodePrompt } from './world/prompt.js';
import { type StepRecord, type WorldConditioning, loadTransformer, mlpChunkTokens, sampleLatents } from './world/sample.js';
import { type WorldSettings, planSizes, resolveSettings, tokenCount } from './world/settings.js';
import { type LoadedVae, type Posterior, decodeLatents, encodeClip, loadVae } from './world/vae.js';

/** The spec, and what overrides its run fields. */
export interface TransferOptions extends RunOptions, PhaseHooks, PromptOptions {
  spec: TransferSpec;
  /** default: selectBackend()'s choice */
  backend?: Backend;
  fs?: FileSystem;
  seed?: number | string;
  steps?: number;
  guidance?: number;
  /** pixel frames used from the control videos */
  frames?: number;
  /** control clips by control name, instead of reading the spec's input_control paths */
  controlVideos?: Readonly<Record<string, ClipInput>>;
  /** the conditioning clip, instead of reading the spec's input_video_path */
  inputVideo?: ClipInput;
  /** also return the prompt's text states (returned as `embeddings`) */
  returnEmbeddings?: boolean;
  /** what the control videos', the conditioning clip's and the weight maps' headers may claim (default DEFAULT_LIMITS) */
  limits?: InputLimits;
  /** the prompt is checked before any model loads, the decoded clip before it is returned (openGuardrails) */
  guardrails?: Guardrails;
  /** the raw clip (upstream's video_path), over the spec's: the run's size, length and computed controls come from it */
  input?: ClipInput;
  /** the model resolution of the raw clip, over the spec's: "720" (default), "480", ... or "WxH" */
  resolution?: string;
  /** frames per chunk, over the spec's (default: 93 with a raw clip, else one chunk of all frames) */
  chunkFrames?: number;
  /** frames each chunk after the first takes from the one before, over the spec's (default 1 with chunks) */
  chunkOverlap?: number;
  /** every computed control map frame, once, in order (e.g. to save them) */
  onControlFrames?: ControlFramesCallback;
  /**
   * The Video-Depth-Anything model that computes a depth control from the raw clip: a released
   * `.pth` state dict (or a folder, or a .safetensors); loaded, run over the whole clip and freed
   * before any other model loads. Or the model loaded (the caller keeps it).
   */
  depthModel?: DepthModelSource;
  /** the depth network's nominal input size (upstream's 518; smaller runs faster, coarser) */
  depthInputSize?: number;
}

export interface TransferResult {
  video: Video;
  /** the final latents (sampler space); several chunks' are stacked on the batch axis */
  latents: HostTensor;
  /** the text states the transformer read, when asked for (returnEmbeddings) */
  embeddings: PromptEmbeddingArrays | null;
  steps: StepRecord[];
  settings: WorldSettings;
  /** every control's weight, and the preset of those computed from the raw clip */
  controls: { name: string; weight: number | string; computed?: string }[];
  /** the clip frames [start, end) of each chunk generated */
  chunks: { start: number; end: number }[];
  /** the summed weights' maximum (before any normalisation) */
  maxWeightSum: number;
  /** seconds per phase (controls: reading, resizing and computing the control videos) */
  timings: { prompt: number; load: number; condition: number; denoise: number; decode: number; controls: number };
  /** the components the run loaded, with their bytes on the device */
  components: ComponentBytes[];
}

/** The scheduler: a diffusers folder's scheduler/scheduler_config.json beside the base, else Predict2.5's UniPC. */
async function schedulerFor(baseDir: string, fs: FileSystem): Promise<UniPCConfig> {
  for (const p of [join(dirname(baseDir), 'scheduler', 'scheduler_config.json'), join(baseDir, 'scheduler_config.json')]) {
    const json = await readJsonObjectIfPresent(p, 'scheduler_config.json', fs);
    if (json && (json._class_name === undefined || json._class_name === 'UniPCMultistepScheduler')) return parseUniPCConfig(json);
  }
  return PREDICT25_UNIPC;
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/** The components a spec loads and what the run needs to know of them before loading any. */
interface CheckedSpec {
  components: ComponentBytes[];
  geometry: VaeGeometry;
}

/**
 * Every component of the spec checked against its headers (and the ControlNets against the
 * base), before anything runs: the text encoder when a prompt is to be encoded, the VAE, the
 * base and every ControlNet. Nothing is read but headers.
 */
async function checkSpec(spec: TransferSpec, bc: CosmosTransformerConfig, baseJson: Config, encoder: TextEncoderSource | null, backend: Backend, fs: FileSystem): Promise<CheckedSpec> {
  const components: ComponentBytes[] = [];
  if (encoder && !('unsupported' in encoder) && !('loaded' in encoder)) {
    components.push(await checkComponent('text_encoder', spec.textEncoder!, backend, (be) => loadEncoder(encoder, be, fs)));
  }
  const seen: { geometry?: VaeGeometry } = {};
  components.push(await checkComponent('vae', spec.tokenizer, backend, async (be) => {
    const vae = await loadVae(spec.tokenizer, be, undefined, fs);
    seen.geometry = { latentChannels: vae.latentChannels, temporalCompression: vae.temporalCompression, spatialCompression: vae.spatialCompression };
    return vae;
  }));
  const g = seen.geometry!;
  if (bc.outChannels !== g.latentChannels) {
    throw new PipelineFilesError(spec.baseCheckpoint, `the transformer outputs ${bc.outChannels} latent channels, the tokenizer's latent has ${g.latentChannels}`);
  }
  components.push(await checkComponent('transformer', spec.baseCheckpoint, backend, (be) => loadTransformer(spec.baseCheckpoint, be, 0, { config: baseJson, fs })));
  for (const c of spec.controls) {
    components.push(await checkComponent(`controlnet:${c.name}`, c.checkpoint, backend, async (be) => checkControlNet(c, bc, (await loadModule(CosmosControlNetFamily, c.checkpoint, be, { fs })).model)));
  }
  return { components, geometry: g };
}

/**
 * Run a Transfer spec: check every component's headers, encode the prompt, then per chunk encode
 * the control videos with the VAE (then freed), denoise with the base and the weighted ControlNets
 * (then freed), load the VAE again and decode. No two phases' weights are on the device together.
 *
 * With a raw clip (`input`, or the spec's video_path) the run is upstream's: the clip resized to
 * the model resolution, chunks of `chunkFrames` (93) overlapping by `chunkOverlap` (1) frames, a
 * short chunk padded by reflection, edge / vis controls computed per chunk, each chunk after the
 * first conditioned on the end of the one before; the output is trimmed to the clip's length.
 * Without one, the control videos are used as given, in one chunk unless `chunkFrames` is set.
 */
export async function transfer(o: TransferOptions): Promise<TransferResult> {
  throwIfAborted(o.signal);
  const { spec } = o;
  const fs = o.fs ?? fileSystem();
  const backend = o.backend ?? (await selectBackend());
  const timings = { prompt: 0, load: 0, condition: 0, denoise: 0, decode: 0, controls: 0 };
  const owned: { dispose(): void }[] = [];
  const tensors: Tensor[] = [];
  const free = (m: { dispose(): void }) => {
    m.dispose();
    owned.splice(owned.indexOf(m), 1);
  };
  const given = o.controlVideos ?? {};
  const raw = o.input ?? spec.videoPath ?? undefined;
  try {
    // every input's header first (limits included), before any is read whole or any model loads
    // (with a raw clip, depth and seg without a video are refused here, and clips are streamed, not held whole)
    const computing = raw !== undefined ? computedControls(spec, given) : [];
    const depthComputed = computing.some((c) => c.name === 'depth');
    if (depthComputed && o.depthModel === undefined) throw new UserError(missingDepthModel());
    await probeControlInputs(spec.controls, given, [raw, o.inputVideo ?? spec.inputVideo], fs, o.limits, raw === undefined);
    const baseJson = await readJsonObject(join(spec.baseCheckpoint, 'config.json'), 'config.json', fs);
    const bc = parseCosmosTransformerConfig(baseJson);
    if (!bc.controlnetBlockEveryN) throw new PipelineFilesError(spec.baseCheckpoint, 'the base transformer has no controlnet_block_every_n: it is not a Transfer base');
    const width = bc.useCrossattnProjection ? bc.crossattnProjInChannels : bc.textEmbedDim;
    const guidance = o.guidance ?? spec.guidance;
    const embeddings = o.embeddings ?? (o.prompt === undefined ? spec.embeddings : null) ?? undefined;
    const text = { prompt: o.prompt ?? spec.prompt ?? undefined, negativePrompt: o.negativePrompt ?? spec.negativePrompt ?? undefined, embeddings, maxSequenceLength: o.maxSequenceLength };
    const encoder: TextEncoderSource = spec.textEncoder
      ? await textEncoderSource(spec.textEncoder, spec.promptTokenizer, fs)
      : { unsupported: 'no text encoder: name one in the spec ("text_encoder", or "model" with a text_encoder/ folder), or pass precomputed prompt embeddings' };
    const encodes = embeddings === undefined && text.prompt !== undefined;
    const { components, geometry } = await checkSpec(spec, bc, baseJson, encodes ? encoder : null, backend, fs);
    if (depthComputed && typeof o.depthModel === 'string') {
      const path = o.depthModel;
      components.unshift(await checkComponent('depth_model', path, backend, async (be) => (await loadDepthModel(path, be, fs)).model));
    }
    await guardPrompt(o.guardrails, text.prompt, o);

    // the chunk length the VAE can take, before any clip is read
    const tc = geometry.temporalCompression;
    const chunkFrames = o.chunkFrames ?? spec.chunkFrames ?? (raw !== undefined ? DEFAULT_CHUNK_FRAMES : undefined);
    if (chunkFrames !== undefined && (!Number.isInteger(chunkFrames) || chunkFrames < 1 || (chunkFrames - 1) % tc !== 0)) {
      const lo = Math.max(1, chunkFrames - ((chunkFrames - 1) % tc));
      throw new PipelineInputError('chunkFrames', `must be 1 + k*${tc} (the VAE compresses time ${tc}x causally), got ${chunkFrames}; try ${lo} or ${lo + tc}`);
    }

    // the controls' source, then the sizes
    let t0 = performance.now();
    const wanted = o.frames ?? spec.numFrames ?? undefined;
    const source = raw === undefined
      ? await videoControlSource(spec.controls, given, fs, o.limits)
      : await clipControlSource({
        spec, input: raw, given, maxFrames: wanted, resolution: o.resolution, backend, fs, limits: o.limits, depthModel: o.depthModel, depthInputSize: o.depthInputSize, signal: o.signal,
        onDepthProgress: depthComputed ? (done, total) => stage(o, 'depth', 'windows', total)(done) : undefined,
        onPhase: o.onPhase,
      });
    timings.controls += seconds(t0);
    const fps = spec.fps ?? (source.fps ? fpsValue(source.fps) : 24);
    // one chunk of the whole clip (trimmed to 1 + k*tc) where no chunk length is set
    const defaultFrames = chunkFrames === undefined ? 1 + Math.floor((source.frames - 1) / tc) * tc : source.frames;
    const st = resolveSettings(
      { seed: o.seed ?? spec.seed, steps: o.steps, guidance: o.guidance, frames: wanted },
      { frames: defaultFrames, height: source.height, width: source.width, steps: spec.numSteps, guidance: spec.guidance, fps },
    );
    if (st.frames > source.frames) throw new PipelineInputError('frames', `${st.frames} frames asked for, the ${source.kind === 'clip' ? 'clip has' : 'control videos have'} ${source.frames}`);
    const plan = planChunks(st.frames, chunkFrames ?? st.frames, o.chunkOverlap ?? spec.chunkOverlap ?? (chunkFrames === undefined ? 0 : DEFAULT_CHUNK_OVERLAP));
    const window = plan.chunkFrames;
    const latentShape = planSizes(bc, geometry, window, st.height, st.width);
    const [pt, ph, pw] = bc.patchSize;
    const grid: [number, number, number] = [latentShape[2] / pt, latentShape[3] / ph, latentShape[4] / pw];
    const tokens = tokenCount(bc, latentShape);

    // the prompt first: its encoder is gone before the models come
    o.onPhase?.('prompt');
    t0 = performance.now();
    const embeds = await encodePrompt(text, width, guidance, encoder, backend, fs, o);
    tensors.push(embeds.prompt, ...(embeds.negative ? [embeds.negative] : []));
    const embeddingsOut = o.returnEmbeddings ? await embeddingArrays(embeds) : null;
    timings.prompt = seconds(t0);

    const chunkReport = plan.chunks.length > 1 ? stage(o, 'chunk', 'chunks', plan.chunks.length) : null;
    const input = o.inputVideo ?? spec.inputVideo;
    // the output, filled chunk by chunk (never a list of pieces and their concatenation: twice the memory)
    let whole: Video | null = null;
    const latentsOut: HostTensor[] = [];
    const steps: StepRecord[] = [];
    let maxWeightSum = 0;
    let vae: LoadedVae | null = null;
    let tail: Video | null = null;
    const paddingMask = F.zeros(backend, [1, 1, source.height, source.width]);
    tensors.push(paddingMask);
    for (let k = 0; k < plan.chunks.length; k++) {
      const { start, end } = plan.chunks[k];
      chunkReport?.(k, { start, end });
      // chunk 0 keeps the run's seed (a one-chunk run is the same as before chunks); later ones a stream each
      const seed = k === 0 ? st.seed : `${st.seed}/chunk${k}`;

      // the control latents (and the conditioning clip's), with the VAE loaded for them alone
      o.onPhase?.('condition');
      t0 = performance.now();
      const clips = await source.chunk(start, end, reflectOrder(end - start, window), k === 0 ? start : start + plan.overlap, o.onControlFrames);
      timings.controls += seconds(t0);
      t0 = performance.now();
      if (!vae) {
        vae = await loadVae(spec.tokenizer, backend, undefined, fs);
        owned.push(vae);
      }
      timings.load += seconds(t0);
      t0 = performance.now();
      const conditioned = k === 0 ? input !== undefined && input !== null && spec.numConditionalFrames > 0 : plan.overlap > 0;
      const report = stage(o, 'condition', 'clips', spec.controls.length + (conditioned ? 1 : 0));
      report(0);
      const posterior: Posterior = { kind: 'sample', noise: new GaussianNoise(`${seed}/posterior`).source(backend) };
      const encoded = await encodeControls(spec.controls, clips, vae, grid, window, report, fs, posterior, o.limits);
      tensors.push(...encoded.map((b) => b.latents));
      let conditioning: WorldConditioning | null = null;
      if (conditioned && k === 0) {
        // with a raw clip the conditioning clip is resized to the model resolution like it
        const clip = source.kind === 'clip'
          ? framesToVideo(await readFramesU8(input!, { size: [source.width, source.height], mode: 'area', backend, fs, limits: o.limits, what: 'input_video_path' }))
          : input!;
        conditioning = await conditionOn(clip, spec.numConditionalFrames, source, latentShape[2], window, vae, fs, posterior, o.limits);
      } else if (conditioned) {
        // upstream's next chunk starts from the last frames of this one, as uint8 (truncated)
        conditioning = await conditionOn(quantize(tail!), 1 + Math.floor((plan.overlap - 1) / tc), source, latentShape[2], window, vae, fs, posterior, o.limits);
      }
      if (conditioning) {
        tensors.push(conditioning.latents);
        await checkFinite(conditioning.latents, { component: 'vae encoder', tensor: 'conditioning latents' });
        report(encoded.length + 1);
      }
      await backend.sync();
      timings.condition += seconds(t0);
      free(vae);
      vae = null;

      // the base and the ControlNets, for the denoising alone
      o.onPhase?.('denoise');
      t0 = performance.now();
      const base = await loadTransformer(spec.baseCheckpoint, backend, tokens, { config: baseJson, fs });
      owned.push(base);
      const models = await loadControlNets(spec, backend, fs, tokens, owned);
      timings.load += seconds(t0);
      const multi = await MultiControlNet.create(encoded.map((b, i) => ({ ...b, model: models[i] })), { overCap: spec.weightOverCap });
      owned.push(multi);
      t0 = performance.now();
      const scheduler = { kind: 'unipc' as const, config: await schedulerFor(spec.baseCheckpoint, fs) };
      const sampled = await sampleLatents(multi.denoiser(base), scheduler, latentShape, embeds, { ...st, seed }, conditioning, { ...o, paddingMask });
      tensors.push(sampled.latents);
      steps.push(...sampled.steps);
      timings.denoise += seconds(t0);
      maxWeightSum = Math.max(maxWeightSum, multi.maxWeightSum);
      free(multi);
      for (const m of models) free(m);
      free(base);
      for (const b of encoded) disposeFrom(tensors, b.latents);
      if (conditioning) disposeFrom(tensors, conditioning.latents);

      o.onPhase?.('decode');
      t0 = performance.now();
      vae = await loadVae(spec.tokenizer, backend, undefined, fs);
      owned.push(vae);
      timings.load += seconds(t0);
      t0 = performance.now();
      const video = await decodeLatents(sampled.latents, vae, 1, fps, o);
      latentsOut.push({ shape: [...sampled.latents.shape], data: Float32Array.from(await sampled.latents.read()) });
      disposeFrom(tensors, sampled.latents);
      timings.decode += seconds(t0);
      // the next chunk keeps the VAE for its encode; the last frees it
      if (k === plan.chunks.length - 1) {
        free(vae);
        vae = null;
      }
      tail = plan.overlap > 0 ? sliceFrames(video, window - plan.overlap, window) : null;
      whole = placeFrames(whole, video, k === 0 ? 0 : plan.overlap, k === 0 ? start : start + plan.overlap, st.frames);
    }
    chunkReport?.(plan.chunks.length);
    const video = await guardOutput(o.guardrails, whole!, o);
    return {
      video,
      latents: latentsOut.length === 1 ? latentsOut[0] : stackLatents(latentsOut),
      steps,
      embeddings: embeddingsOut,
      settings: st,
      chunks: plan.chunks.map(({ start, end }) => ({ start, end })),
      controls: spec.controls.map((c) => ({ name: c.name, weight: typeof c.weight === 'number' ? c.weight : c.weight.path, ...computedOf(source, c.name) })),
      maxWeightSum,
      timings,
      components,
    };
  } finally {
    for (const t of tensors) t.dispose();
    for (const m of owned.reverse()) m.dispose();
  }
}

/** How a control's video was had: computed (with its preset) or given. */
function computedOf(source: ControlSource, name: string): { computed?: string } {
  const c = source.computed.find((x) => x.name === name);
  return c ? { computed: c.preset } : {};
}

/**
 * Frames of a decoded chunk from `from` on, written at frame `at` of the output of `total` frames
 * (allocated on the first call; a single chunk of exactly the output's length is taken as is).
 */
function placeFrames(out: Video | null, chunk: Video, from: number, at: number, total: number): Video {
  if (!out && from === 0 && at === 0 && chunk.frames === total) return chunk;
  const hw = chunk.height * chunk.width;
  const o: Video = out ?? { data: new Float32Array(3 * total * hw), frames: total, height: chunk.height, width: chunk.width, ...(chunk.fps ? { fps: chunk.fps } : {}) };
  const n = Math.min(chunk.frames - from, total - at);
  for (let c = 0; c < 3; c++) o.data.set(chunk.data.subarray((c * chunk.frames + from) * hw, (c * chunk.frames + from + n) * hw), (c * total + at) * hw);
  return o;
}

/** Dispose a tensor now and forget it in the list the run frees at the end. */
function disposeFrom(list: Tensor[], t: Tensor): void {
  const i = list.indexOf(t);
  if (i >= 0) list.splice(i, 1);
  t.dispose();
}

/** Chunks' latents stacked on the batch axis: [chunks, C, T, h, w]. */
function stackLatents(parts: HostTensor[]): HostTensor {
  const n = parts[0].data.length;
  const data = new Float32Array(n * parts.length);
  for (let i = 0; i < parts.length; i++) data.set(parts[i].data, i * n);
  return { shape: [parts.length, ...parts[0].shape.slice(1)], data };
}

/** A decoded clip as upstream hands it to the next chunk: (x * 127.5 + 127.5) clamped and truncated to uint8, read back as b / 127.5 - 1. */
function quantize(v: Video): Video {
  const data = new Float32Array(v.data.length);
  for (let i = 0; i < data.length; i++) {
    const b = Math.trunc(Math.min(255, Math.max(0, v.data[i] * 127.5 + 127.5)));
    data[i] = b / 127.5 - 1;
  }
  return { ...v, data };
}

/** A ControlNet checked against the base: enough residuals, the same patch size (returned as given). */
function checkControlNet(c: ControlSpec, bc: CosmosTransformerConfig, model: CosmosControlNetModel): CosmosControlNetModel {
  const need = Math.ceil(bc.numLayers / bc.controlnetBlockEveryN!);
  if (model.numResiduals < need) {
    model.dispose();
    throw new PipelineFilesError(c.checkpoint, `control "${c.name}": ${model.numResiduals} control blocks, the base (${bc.numLayers} blocks, one residual every ${bc.controlnetBlockEveryN}) needs ${need}`);
  }
  if (model.config.patchSize.join() !== bc.patchSize.join()) {
    model.dispose();
    throw new PipelineFilesError(c.checkpoint, `control "${c.name}": patch_size ${JSON.stringify(model.config.patchSize)} differs from the base's ${JSON.stringify(bc.patchSize)}`);
  }
  return model;
}

/** Every control's ControlNet (checked against the base by checkSpec), its MLP chunked for `tokens`. */
async function loadControlNets(
  spec: TransferSpec, backend: Backend, fs: FileSystem, tokens: number, owned: { dispose(): void }[],
): Promise<CosmosControlNetModel[]> {
  const models: CosmosControlNetModel[] = [];
  for (const c of spec.controls) {
    const { model } = await loadModule(CosmosControlNetFamily, c.checkpoint, backend, { fs });
    owned.push(model);
    model.ffChunkTokens = mlpChunkTokens(backend, model.config, model.hiddenSize, tokens);
    models.push(model);
  }
  return models;
}

/** A text encoder source loaded on `backend` (what the prompt phase does with it). */
function loadEncoder(src: Exclude<TextEncoderSource, { unsupported: string } | { loaded: unknown }>, backend: Backend, fs: FileSystem): Promise<{ dispose(): void }> {
  if ('reason' in src) return ReasonPromptEncoder.load(src.reason, backend, { tokenizerDir: src.tokenizerDir, config: src.config, fs });
  return T5TextEncoder.load(src.dir, backend, { tokenizer: src.tokenizer, config: src.config, fs });
}

/** The conditioning clip, padded with its last frame to the output length (only its first `nc` latent frames are read), encoded. */
async function conditionOn(
  input: ClipInput, nc: number, size: { height: number; width: number }, latentFrames: number, frames: number, vae: LoadedVae, fs: FileSystem, posterior: Posterior, limits?: InputLimits,
): Promise<WorldConditioning> {
  const v = await readClip(input, undefined, fs, limits);
  if (v.height !== size.height || v.width !== size.width) {
    throw new PipelineInputError('input_video_path', `${v.width}x${v.height} differs from the control videos' ${size.width}x${size.height}`);
  }
  if (nc > latentFrames) throw new PipelineInputError('num_conditional_frames', `${nc} latent frames, the output has ${latentFrames}`);
  const needFrames = 1 + (nc - 1) * vae.temporalCompression;
  if (v.frames < needFrames) throw new PipelineInputError('input_video_path', `${v.frames} frames, ${nc} conditioning latent frames need ${needFrames}`);
  const clip = cropVideo(v, Math.min(v.frames, frames), v.height, v.width);
  return { latents: encodeClip(vae, { clip, frames, padWith: 'last' }, 1, posterior), numCondLatentFrames: nc };
}

/** A spec's text_encoder folder: a Qwen2.5-VL config means Cosmos-Reason1 (tokenizer from `tokenizerDir`, a sibling tokenizer/, or the folder), else T5. */
async function textEncoderSource(dir: string, tokenizerDir: string | null, fs: FileSystem): Promise<TextEncoderSource> {
  const json = await readJsonObjectIfPresent(join(dir, 'config.json'), 'text_encoder config.json', fs);
  if (json?.model_type !== 'qwen2_5_vl') return { dir };
  if (tokenizerDir) return { reason: dir, tokenizerDir };
  const sibling = join(dirname(dir), 'tokenizer');
  return { reason: dir, tokenizerDir: (await fs.stat(join(sibling, 'tokenizer.json'))) ? sibling : dir };
}
