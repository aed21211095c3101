// The body text2world and video2world share, phase by phase: prompt -> (condition) -> sample ->
// decode. Each part of the model is loaded when its phase comes (and freed when it is done) unless
// the caller passed it loaded; the T5 encoder goes before the transformer comes.
import type { Backend } from '../../engine/backend.js';
import type { Tensor } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import type { Video } from '../../io/video.js';
import type { RunOptions } from '../progress.js';
import { PipelineFilesError } from './errors.js';
import type { VaeGeometry, WorldFamily, WorldModelInfo } from './folder.js';
import type { LoadedWorldModel, WorldModelInput } from './model.js';
import { type HostTensor, type PromptEmbeddingArrays, type PromptOptions, type TextEncoderSource, encodePrompt, embeddingArrays } from './prompt.js';
import { type StepRecord, type WorldConditioning, loadTransformer, mlpChunkTokens, sampleLatents } from './sample.js';
import { type SettingsInput, type WorldSettings, planSizes, tokenCount } from './settings.js';
import { type LoadedVae, decodeLatents, latentSigmaData, loadVae } from './vae.js';

export interface WorldOptions extends RunOptions, PromptOptions, SettingsInput {
  /** a model folder, its inspection (inspectWorldModel), or a loaded model (loadWorldModel) */
  model: WorldModelInput;
  /** default: the loaded model's, else selectBackend()'s choice */
  backend?: Backend;
  fs?: FileSystem;
  /** decode the latents with the VAE (default true; false returns latents only, the VAE never loaded) */
  decode?: boolean;
  /** also return the prompt's text states (e.g. to save them and skip the text encoder next time) */
  returnEmbeddings?: boolean;
}

export interface WorldResult {
  /** the decoded clip in [-1, 1] (null when not decoded) */
  video: Video | null;
  /** final latents [1, C, T, h, w] in the sampler's space */
  latents: HostTensor;
  /** one record per denoising step */
  steps: StepRecord[];
  /** the text states the transformer read, when asked for (returnEmbeddings) */
  embeddings: PromptEmbeddingArrays | null;
  family: WorldFamily;
  settings: WorldSettings;
  /** seconds per phase */
  timings: { prompt: number; condition: number; denoise: number; decode: number };
}

/** What a run has opened: the model's inspection, its loaded parts if any, where it runs. */
export interface OpenedModel {
  info: WorldModelInfo;
  loaded: LoadedWorldModel | null;
  backend: Backend;
  fs: FileSystem;
}

function textEncoderOf(m: OpenedModel): TextEncoderSource {
  const { info, loaded } = m;
  if (loaded?.textEncoder) return { loaded: loaded.textEncoder };
  if (info.textEncoderUnsupported || !info.textEncoderDir) return { unsupported: info.textEncoderUnsupported ?? 'no text encoder' };
  const config = info.configs.textEncoder ?? undefined;
  if (info.textEncoderKind === 'reason') return { reason: info.textEncoderDir, tokenizerDir: info.tokenizerDir ?? undefined, config };
  return { dir: info.textEncoderDir, tokenizer: info.spiecePath ?? undefined, config };
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;

/**
 * Prompt, conditioning (`condition`, with the VAE loaded), sampling and decoding on an opened
 * model with resolved settings.
 */
export async function runWorld(
  m: OpenedModel, o: WorldOptions, st: WorldSettings, condition: ((vae: LoadedVae) => WorldConditioning) | null,
): Promise<WorldResult> {
  const { info, loaded, backend, fs } = m;
  const decode = o.decode ?? true;
  if (!info.vae && (decode || condition)) {
    throw new PipelineFilesError(info.vaeDir, `${info.vaeUnsupported}; ${condition ? 'video2world needs it to encode the input' : 'decoding needs it (decode: false returns the latents alone)'}`);
  }
  // without a runnable VAE (latents only): the Wan2.1 VAE's 4x8x8 for Predict2 / 2.5, Cosmos' 8x8x8 for 1.0
  const geometry: VaeGeometry = info.vae ?? { latentChannels: info.transformer.outChannels, temporalCompression: info.family === 'cosmos1' ? 8 : 4, spatialCompression: 8 };
  const latentShape = planSizes(info.transformer, geometry, st.frames, st.height, st.width);
  const sigmaData = latentSigmaData(info.scheduler);
  const timings = { prompt: 0, condition: 0, denoise: 0, decode: 0 };
  const owned: { dispose(): void }[] = [];
  const transient: Tensor[] = [];
  try {
    let t0 = performance.now();
    const embeds = await encodePrompt(o, info.textWidth, st.guidance, textEncoderOf(m), backend, fs, o);
    transient.push(embeds.prompt, ...(embeds.negative ? [embeds.negative] : []));
    const embeddings = o.returnEmbeddings ? await embeddingArrays(embeds) : null;
    timings.prompt = seconds(t0);

    let vae: LoadedVae | null = null;
    if (decode || condition) {
      vae = loaded?.vae ?? (await loadVae(info.vaeDir, backend, info.configs.vae, fs));
      if (vae !== loaded?.vae) owned.push(vae);
    }
    let cond: WorldConditioning | null = null;
    if (condition) {
      t0 = performance.now();
      cond = condition(vae!);
      transient.push(cond.latents);
      await backend.sync();
      timings.condition = seconds(t0);
    }

    const tokens = tokenCount(info.transformer, latentShape);
    const transformer = loaded?.transformer ?? (await loadTransformer(info.transformerDir, backend, tokens, { config: info.configs.transformer, fs }));
    transformer.ffChunkTokens = mlpChunkTokens(backend, transformer.config, transformer.hiddenSize, tokens);
    t0 = performance.now();
    let sampled: Awaited<ReturnType<typeof sampleLatents>>;
    try {
      sampled = await sampleLatents(transformer, info.scheduler, latentShape, embeds, st, cond, o);
    } finally {
      if (!loaded) transformer.dispose();
    }
    transient.push(sampled.latents);
    timings.denoise = seconds(t0);

    const latents = { data: (await sampled.latents.read()) as Float32Array, shape: [...sampled.latents.shape] };
    let video: Video | null = null;
    if (decode) {
      t0 = performance.now();
      video = await decodeLatents(sampled.latents, vae!, sigmaData, st.fps, o);
      timings.decode = seconds(t0);
    }
    return { video, latents, steps: sampled.steps, embeddings, family: info.family, settings: st, timings };
  } finally {
    for (const t of transient) t.dispose();
    for (const p of owned) p.dispose();
  }
}
