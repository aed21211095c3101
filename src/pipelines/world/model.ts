// A world model as the pipelines take it: a folder path (inspected, and loaded part by part while
// the run needs each part), its inspection (WorldModelInfo: the folder is not read again), or a
// model loaded once with loadWorldModel and reused across runs (the pipelines leave it loaded).
import type { Backend } from '../../engine/backend.js';
import { selectBackend } from '../../engine/select.js';
import { type FileSystem, fileSystem } from '../../io/files.js';
import type { CosmosTransformer3DModel } from '../../models/dit/transformer.js';
import { T5TextEncoder } from '../../models/t5/prompts.js';
import { ReasonPromptEncoder } from '../../models/vlm/prompt-embeds.js';
import { PipelineInputError } from './errors.js';
import { type WorldModelInfo, inspectWorldModel } from './folder.js';
import { loadTransformer } from './sample.js';
import { type LoadedVae, loadVae } from './vae.js';

/** Every part of a world model on one backend. */
export interface LoadedWorldModel {
  readonly info: WorldModelInfo;
  readonly backend: Backend;
  readonly transformer: CosmosTransformer3DModel;
  /** null when the folder's VAE cannot run here (the pipelines then return latents only) */
  readonly vae: LoadedVae | null;
  /** null without a text encoder (prompts then come as embeddings) or when not asked for */
  readonly textEncoder: T5TextEncoder | ReasonPromptEncoder | null;
  dispose(): void;
}

export type WorldModelInput = string | WorldModelInfo | LoadedWorldModel;

export interface LoadWorldModelOptions {
  fs?: FileSystem;
  /** load the text encoder too (default: when the folder has one; it then stays loaded beside the transformer) */
  textEncoder?: boolean;
}

/** Load every part of a world model folder (or of its inspection) on `backend`. */
export async function loadWorldModel(model: string | WorldModelInfo, backend: Backend, opts: LoadWorldModelOptions = {}): Promise<LoadedWorldModel> {
  const fs = opts.fs ?? fileSystem();
  const info = typeof model === 'string' ? await inspectWorldModel(model, fs) : model;
  const parts: { dispose(): void }[] = [];
  try {
    const transformer = await loadTransformer(info.transformerDir, backend, 0, { config: info.configs.transformer, fs });
    parts.push(transformer);
    const vae = info.vae ? await loadVae(info.vaeDir, backend, info.configs.vae, fs) : null;
    if (vae) parts.push(vae);
    const wantText = (opts.textEncoder ?? true) && info.textEncoderDir !== null;
    const textEncoder = wantText ? await loadTextEncoder(info, backend, fs) : null;
    if (textEncoder) parts.push(textEncoder);
    return {
      info, backend, transformer, vae, textEncoder,
      dispose() {
        for (const p of parts.reverse()) p.dispose();
      },
    };
  } catch (e) {
    for (const p of parts.reverse()) p.dispose();
    throw e;
  }
}

/** The folder's text encoder (T5 or the Cosmos-Reason1 prompt encoder) on `backend`; the folder must have one (textEncoderDir). */
export async function loadTextEncoder(info: WorldModelInfo, backend: Backend, fs: FileSystem = fileSystem()): Promise<T5TextEncoder | ReasonPromptEncoder> {
  if (!info.textEncoderDir) throw new PipelineInputError('model', `no text encoder to load: ${info.textEncoderUnsupported ?? 'none'}`);
  const config = info.configs.textEncoder ?? undefined;
  return info.textEncoderKind === 'reason'
    ? ReasonPromptEncoder.load(info.textEncoderDir, backend, { tokenizerDir: info.tokenizerDir ?? undefined, config, fs })
    : T5TextEncoder.load(info.textEncoderDir, backend, { tokenizer: info.spiecePath ?? undefined, config, fs });
}

/** The model's inspection, its loaded parts (when given loaded), the backend and the file system of a run. */
export async function openWorldModel(o: { model: WorldModelInput; backend?: Backend; fs?: FileSystem }) {
  const fs = o.fs ?? fileSystem();
  let info: WorldModelInfo;
  let loaded: LoadedWorldModel | null = null;
  if (typeof o.model === 'string') info = await inspectWorldModel(o.model, fs);
  else if ('info' in o.model) {
    loaded = o.model;
    info = loaded.info;
  } else info = o.model;
  const backend = o.backend ?? loaded?.backend ?? (await selectBackend());
  if (loaded && backend !== loaded.backend) {
    throw new PipelineInputError('backend', `the model is loaded on ${loaded.backend.name}; run it there (or pass the folder)`);
  }
  return { info, loaded, backend, fs };
}
