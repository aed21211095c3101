// The body text2world and video2world share, phase by phase: prompt -> (condition) -> sample ->
// decode. Before any of it, every component the run will load is checked against its checkpoint
// headers (components.ts: nothing read but headers), so a bad VAE fails before the first step.
// Then each part is loaded when its phase comes and freed when it is done, unless the caller
// passed the model loaded: the text encoder (prompt), the VAE (video2world's conditioning frames,
// then freed), the transformer (denoising), the VAE again (decode). No two large parts are ever on
// the device together, so the peak is the largest phase's, not the sum of the weights.
import type { Backend } from '../../engine/backend.js';
import type { Tensor } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import type { Video } from '../../io/video.js';
import type { RunOptions } from '../progress.js';
import { type ComponentBytes, type PhaseHooks, checkComponent } from '../components.js';
import { checkFinite } from '../finite.js';
import { type Guardrails, guardOutput, guardPrompt } from '../guardrails.js';
import { PipelineFilesError, PipelineInputError } from './errors.js';
import type { VaeGeometry, WorldFamily, WorldModelInfo } from './folder.js';
import { type LoadedWorldModel, type WorldModelInput, loadTextEncoder } from './model.js';
import { type HostTensor, type PromptEmbeddingArrays, type PromptOptions, type TextEncoderSource, encodePrompt, embeddingArrays } from './prompt.js';
import { type StepRecord, type WorldConditioning, loadTransformer, mlpChunkTokens, sampleLatents } from './sample.js';
import { type SettingsInput, type WorldSettings, planSizes, tokenCount } from './settings.js';
import { type LoadedVae, decodeLatents, latentSigmaData, loadVae } from './vae.js';

export interface WorldOptions extends RunOptions, PhaseHooks, PromptOptions, SettingsInput {
  /** a model folder, its inspection (inspectWorldModel), or a loaded model (loadWorldModel) */
  model: WorldModelInput;
  /** default: the loaded model's, else selectBackend()'s choice */
  backend?: Backend;
  fs?: FileSystem;
  /** decode the latents with the VAE (default true; false returns latents only, the VAE never loaded) */
  decode?: boolean;
  /** also return the prompt's text states (e.g. to save them and skip the text encoder next time) */
  returnEmbeddings?: boolean;
  /** the prompt is checked before any model loads, the decoded clip before it is returned (openGuardrails) */
  guardrails?: Guardrails;
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
  /** the components the run loaded, with their bytes on the device (empty for a model passed loaded) */
  components: ComponentBytes[];
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

/** Whether the run encodes a prompt with the folder's text encoder, loading it (not given loaded, no embeddings). */
function loadsTextEncoder(m: OpenedModel, o: WorldOptions): boolean {
  return o.embeddings === undefined && o.prompt !== undefined && !m.loaded?.textEncoder && m.info.textEncoderDir !== null && !m.info.textEncoderUnsupported;
}

/** Every component the run will load, checked against its headers before anything runs; their bytes. */
export async function checkWorldComponents(m: OpenedModel, o: WorldOptions, needVae: boolean): Promise<ComponentBytes[]> {
  const { info, loaded, backend, fs } = m;
  const out: ComponentBytes[] = [];
  if (loadsTextEncoder(m, o)) out.push(await checkComponent('text_encoder', info.textEncoderDir!, backend, (be) => loadTextEncoder(info, be, fs)));
  if (!loaded) {
    const config = info.configs.transformer;
    out.push(await checkComponent('transformer', info.transformerDir, backend, (be) => loadTransformer(info.transformerDir, be, 0, { config, fs })));
    if (needVae) out.push(await checkComponent('vae', info.vaeDir, backend, (be) => loadVae(info.vaeDir, be, info.configs.vae, fs)));
  }
  return out;
}

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
  if (o.guardrails?.hasVideo && !decode) throw new PipelineInputError('decode', 'the video guardrails check the decoded clip; latents alone cannot be checked');
  const components = await checkWorldComponents(m, o, decode || condition !== null);
  await guardPrompt(o.guardrails, o.prompt, o);
  const timings = { prompt: 0, condition: 0, denoise: 0, decode: 0 };
  const transient: Tensor[] = [];
  // the VAE of the run: the loaded model's, or one loaded for a phase and freed after it
  let vae: LoadedVae | null = null;
  const openVae = async () => (vae ??= loaded?.vae ?? (await loadVae(info.vaeDir, backend, info.configs.vae, fs)));
  const closeVae = () => {
    if (vae && vae !== loaded?.vae) vae.dispose();
    vae = null;
  };
  try {
    o.onPhase?.('prompt');
    let t0 = performance.now();
    const embeds = await encodePrompt(o, info.textWidth, st.guidance, textEncoderOf(m), backend, fs, o);
    transient.push(embeds.prompt, ...(embeds.negative ? [embeds.negative] : []));
    const embeddings = o.returnEmbeddings ? await embeddingArrays(embeds) : null;
    timings.prompt = seconds(t0);

    let cond: WorldConditioning | null = null;
    if (condition) {
      o.onPhase?.('condition');
      const v = await openVae();
      t0 = performance.now();
      cond = condition(v);
      transient.push(cond.latents);
      await checkFinite(cond.latents, { component: 'vae encoder', tensor: 'conditioning latents' });
      await backend.sync();
      timings.condition = seconds(t0);
      closeVae();
    }

    o.onPhase?.('denoise');
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
      o.onPhase?.('decode');
      const v = await openVae();
      t0 = performance.now();
      video = await guardOutput(o.guardrails, await decodeLatents(sampled.latents, v, sigmaData, st.fps, o), o);
      timings.decode = seconds(t0);
    }
    return { video, latents, steps: sampled.steps, embeddings, family: info.family, settings: st, timings, components };
  } finally {
    for (const t of transient) t.dispose();
    closeVae();
  }
}
