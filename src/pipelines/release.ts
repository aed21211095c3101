// loadRelease: a released model folder, as downloaded, to a loaded model ready for its pipeline.
// The folder says what it is (release-kind.ts); each kind loads through its family's loader,
// so a release loads exactly as the conformance cases and the pipelines load it.
import type { Backend } from '../engine/backend.js';
import { selectBackend } from '../engine/select.js';
import { type FileSystem, fileSystem } from '../io/files.js';
import { type ArTransformer, ArTransformerFamily } from '../models/ar/transformer.js';
import { type CosmosControlNetModel, CosmosControlNetFamily } from '../models/controlnet/controlnet.js';
import { type CosmosTransformer3DModel, CosmosTransformer3DFamily } from '../models/dit/transformer.js';
import type { Module } from '../engine/module.js';
import { type ModuleFamily, loadModule } from '../models/load.js';
import { type T5EncoderModel, T5EncoderFamily } from '../models/t5/encoder.js';
import { type Tokenizer, loadTokenizer } from '../models/tokenizer/load.js';
import { type ReleaseFolder, ReleaseFormatError, type ReleaseKind, identifyRelease } from './release-kind.js';
import { type ReasonModel, loadReasonModel } from './reason.js';
import { type LoadedWorldModel, loadWorldModel } from './world/model.js';

interface ReleaseBase<K extends ReleaseKind> {
  kind: K;
  path: string;
  /** config.json (model_index.json for a world pipeline) as read */
  config: Record<string, unknown>;
  backend: Backend;
  /** free every weight on the device */
  dispose(): void;
}

/** A Cosmos Tokenizer (Cosmos-Tokenizer or diffusers AutoencoderKLCosmos layout). */
export interface TokenizerRelease extends ReleaseBase<'tokenizer'> { model: Tokenizer }
/** A diffusers world-model pipeline folder (transformer, VAE, scheduler, text encoder). */
export interface WorldRelease extends ReleaseBase<'world'> { model: LoadedWorldModel }
export interface TransformerRelease extends ReleaseBase<'transformer'> { model: CosmosTransformer3DModel }
export interface ControlNetRelease extends ReleaseBase<'controlnet'> { model: CosmosControlNetModel }
export interface T5Release extends ReleaseBase<'t5'> { model: T5EncoderModel }
/** Cosmos-Reason1 / Qwen2.5-VL: the model with its tokenizer, chat template and processor. */
export interface VlmRelease extends ReleaseBase<'vlm'> { model: ReasonModel }
export interface ArRelease extends ReleaseBase<'ar'> { model: ArTransformer }

export type Release = TokenizerRelease | WorldRelease | TransformerRelease | ControlNetRelease | T5Release | VlmRelease | ArRelease;

type ReleaseOf<K extends ReleaseKind> = Extract<Release, { kind: K }>;

export interface LoadReleaseOptions<K extends ReleaseKind = ReleaseKind> {
  /** default: selectBackend() (WebGPU when an adapter can be had, else the CPU) */
  backend?: Backend;
  fs?: FileSystem;
  /** refuse, before loading weights, a folder of another kind */
  expect?: K;
  /** the release, for a folder whose contents and name do not say it (e.g. Cosmos-1.0-Tokenizer-CV8x8x8) */
  release?: string;
}

/**
 * Load a released model folder as downloaded: a Cosmos Tokenizer, a diffusers world-model
 * pipeline (Cosmos-1.0 Diffusion, Predict2, Predict2.5, Transfer2.5), a ControlNet, a T5 encoder,
 * Cosmos-Reason1, or an autoregressive model (model.pt as released, or converted to safetensors).
 */
export async function loadRelease<K extends ReleaseKind = ReleaseKind>(path: string, opts: LoadReleaseOptions<K> = {}): Promise<ReleaseOf<K>> {
  const fs = opts.fs ?? fileSystem();
  const folder = await identifyRelease(path, fs, { release: opts.release });
  if (opts.expect && folder.kind !== opts.expect) {
    throw new ReleaseFormatError(path, `is a ${folder.kind} release; expected a ${opts.expect} release`);
  }
  const backend = opts.backend ?? (await selectBackend());
  return (await loadKind(folder, backend, fs)) as ReleaseOf<K>;
}

/** How each kind loads; every model here has dispose(). */
const LOADERS: { [K in ReleaseKind]: (f: ReleaseFolder, backend: Backend, fs: FileSystem) => Promise<ReleaseOf<K>['model']> } = {
  tokenizer: (f, backend, fs) => loadTokenizer(f.path, backend, { config: f.config, fs, release: f.format === 'cosmos-tokenizer' ? f.release : undefined }),
  world: (f, backend, fs) => loadWorldModel(f.path, backend, { fs }),
  transformer: (f, backend, fs) => folderModel(f, CosmosTransformer3DFamily, backend, fs),
  controlnet: (f, backend, fs) => folderModel(f, CosmosControlNetFamily, backend, fs),
  t5: (f, backend, fs) => folderModel(f, T5EncoderFamily, backend, fs),
  ar: (f, backend, fs) => folderModel(f, ArTransformerFamily, backend, fs),
  vlm: (f, backend, fs) => loadReasonModel(f.path, backend, { fs }),
};

async function loadKind(folder: ReleaseFolder, backend: Backend, fs: FileSystem): Promise<Release> {
  const model = await (LOADERS[folder.kind] as (f: ReleaseFolder, b: Backend, fs: FileSystem) => Promise<Release['model']>)(folder, backend, fs);
  const owner = 'dispose' in model ? model : model.model;
  return { kind: folder.kind, path: folder.path, config: folder.config, backend, model, dispose: () => owner.dispose() } as Release;
}

/** A model family whose weights the folder holds (safetensors, or a PyTorch model.pt), built from the folder's config. */
async function folderModel<M extends Module>(folder: ReleaseFolder, family: ModuleFamily<M>, backend: Backend, fs: FileSystem): Promise<M> {
  return (await loadModule(family, folder.path, backend, { config: folder.config, fs })).model;
}
