// Building a tokenizer from its config and loading its weights, for both checkpoint layouts:
// - Cosmos-Tokenizer: config.json = the constructor kwargs (`name` CV / DV / CI / DI), keys as
//   the released JIT files (`encoder.down.0.block.0.conv1.0.conv3d.weight`, ...);
// - diffusers: config.json with `_class_name: AutoencoderKLCosmos`, keys renamed (diffusers.ts).
// CosmosTokenizerFamily says how; loadModule (models/load.ts) does the loading. Buffers with no
// learned state (wavelet filters, FSQ tables) are ignored; every other difference between the
// checkpoint and the tree the config implies is reported at once by CheckpointMismatchError.
// Weights keep their stored dtype (bf16 stays bf16).
import type { Backend } from '../../engine/backend.js';
import type { LoadReport, TensorSource } from '../../engine/module.js';
import { loadWeights } from '../../engine/module.js';
import { type FileSystem, fileSystem } from '../../io/files.js';
import { dirname, join } from '../../io/path.js';
import { type Config, type LoadModuleOptions, type ModuleFamily, loadModule } from '../load.js';
import { type TokenizerKind, tokenizerKindOf } from './config.js';
import { AutoencoderKLCosmos, DIFFUSERS_CLASS_NAME } from './diffusers.js';
import { TokenizerConfigError } from './errors.js';
import { ContinuousImageTokenizer, DiscreteImageTokenizer } from './image.js';
import { type TokenizerPart, isJitTokenizerFolder, loadTokenizerRelease, readMeanStd, resolveTokenizerRelease } from './release-folder.js';
import { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from './video.js';

export type Tokenizer =
  | CausalContinuousVideoTokenizer
  | CausalDiscreteVideoTokenizer
  | ContinuousImageTokenizer
  | DiscreteImageTokenizer
  | AutoencoderKLCosmos;

export type TokenizerLayout = 'cosmos' | 'diffusers';

export function tokenizerLayout(config: Config): TokenizerLayout {
  return config._class_name === DIFFUSERS_CLASS_NAME ? 'diffusers' : 'cosmos';
}

/** The model a config describes (parameters declared, nothing allocated). */
export function buildTokenizer(config: Config): Tokenizer {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new TokenizerConfigError('<root>', 'config.json: expected a JSON object');
  }
  if (tokenizerLayout(config) === 'diffusers') return new AutoencoderKLCosmos(config);
  if (typeof config._class_name === 'string') {
    throw new TokenizerConfigError('_class_name', `${config._class_name} is not a tokenizer this project implements (expected ${DIFFUSERS_CLASS_NAME} or Cosmos-Tokenizer kwargs)`);
  }
  const kind: TokenizerKind = tokenizerKindOf(config);
  switch (kind) {
    case 'CV': return new CausalContinuousVideoTokenizer(config);
    case 'DV': return new CausalDiscreteVideoTokenizer(config);
    case 'CI': return new ContinuousImageTokenizer(config);
    case 'DI': return new DiscreteImageTokenizer(config);
  }
}

/** Checkpoint entries that carry no learned state. */
export function isIgnorableBuffer(key: string): boolean {
  return /(^|\.)(patcher3d|unpatcher3d|patcher|unpatcher|patch_embed|unpatch_embed)\.(wavelets|_arange|patch_size_buffer)$/.test(key) ||
    /(^|\.)quantizer\.(_levels|_basis|implicit_codebook)$/.test(key);
}

/** The Cosmos tokenizers (either layout) as a family for loadModule. */
export const CosmosTokenizerFamily: ModuleFamily<Tokenizer> = {
  name: 'Cosmos tokenizer',
  build: buildTokenizer,
  loadOptions: (model) => ({ ignore: isIgnorableBuffer, ...(model instanceof AutoencoderKLCosmos ? { mapKey: model.keyMapper() } : {}) }),
};

/** Fill a built tokenizer from a tensor source in either layout. */
export async function loadTokenizerWeights(model: Tokenizer, src: TensorSource, backend: Backend): Promise<LoadReport> {
  return loadWeights(model, src, backend, CosmosTokenizerFamily.loadOptions!(model, src));
}

const WEIGHT_FILES = ['model.safetensors', 'diffusion_pytorch_model.safetensors', 'autoencoder.safetensors'];

/**
 * The weights to load for a tokenizer folder or file: a folder's model.safetensors /
 * diffusion_pytorch_model.safetensors / autoencoder.safetensors, else the folder itself (shards
 * with an index); a diffusers pipeline folder's vae/. config.json must sit beside them.
 */
export async function resolveTokenizerFiles(pathOrDir: string, fs: FileSystem = fileSystem()): Promise<{ configPath: string; weights: string }> {
  const st = await fs.stat(pathOrDir);
  if (!st) throw new TokenizerConfigError('<path>', `${pathOrDir}: does not exist`);
  const has = async (p: string) => (await fs.stat(p))?.kind === 'file';
  if (st.kind === 'directory') {
    if (!(await has(join(pathOrDir, 'config.json'))) && (await has(join(pathOrDir, 'vae', 'config.json')))) {
      return resolveTokenizerFiles(join(pathOrDir, 'vae'), fs);
    }
    const configPath = join(pathOrDir, 'config.json');
    if (!(await has(configPath))) throw new TokenizerConfigError('<path>', `${pathOrDir}: has no config.json`);
    for (const f of WEIGHT_FILES) if (await has(join(pathOrDir, f))) return { configPath, weights: join(pathOrDir, f) };
    return { configPath, weights: pathOrDir };
  }
  const configPath = join(dirname(pathOrDir), 'config.json');
  if (!(await has(configPath))) throw new TokenizerConfigError('<path>', `${pathOrDir}: no config.json beside it`);
  return { configPath, weights: pathOrDir };
}

export interface LoadTokenizerOptions extends Pick<LoadModuleOptions, 'config' | 'maxBytes' | 'checkFinite'> {
  fs?: FileSystem;
  /** load only the encoder or the decoder (a TorchScript release's encoder.jit / decoder.jit alone); default both */
  part?: TokenizerPart;
  /** the release (name or code, e.g. Cosmos-1.0-Tokenizer-CV8x8x8) of a TorchScript folder whose path does not name it */
  release?: string;
}

/**
 * Read config.json and the weights (a folder with model.safetensors /
 * diffusion_pytorch_model.safetensors / shards, or a .safetensors file; or a Cosmos Tokenizer
 * release of TorchScript files), detect the layout, build and load the model on `backend`.
 */
export async function loadTokenizer(pathOrDir: string, backend: Backend, opts: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  return loadTokenizerAs(CosmosTokenizerFamily, pathOrDir, backend, opts);
}

/** loadTokenizer with another family (e.g. one that refuses image tokenizers at build). */
export async function loadTokenizerAs<M extends Tokenizer>(family: ModuleFamily<M>, pathOrDir: string, backend: Backend, opts: LoadTokenizerOptions = {}): Promise<M> {
  const fs = opts.fs ?? fileSystem();
  let model: M;
  let meanStd: string | null;
  if (await isJitTokenizerFolder(pathOrDir, fs)) {
    const rel = await resolveTokenizerRelease(pathOrDir, { part: opts.part, release: opts.release, fs });
    model = await loadTokenizerRelease(rel, family, backend, { fs });
    meanStd = rel.meanStd;
  } else {
    const { weights } = await resolveTokenizerFiles(pathOrDir, fs);
    model = (await loadModule(family, weights, backend, { config: opts.config, maxBytes: opts.maxBytes, checkFinite: opts.checkFinite, fs })).model;
    const beside = join((await fs.stat(weights))?.kind === 'directory' ? weights : dirname(weights), 'mean_std.pt');
    meanStd = (await fs.stat(beside))?.kind === 'file' ? beside : null;
  }
  if (meanStd && model instanceof CausalContinuousVideoTokenizer) {
    try {
      model.latentMeanStd = await readMeanStd(meanStd, fs);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}
