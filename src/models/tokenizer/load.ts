// Building a tokenizer from its config and loading its weights, for both checkpoint layouts:
// - Cosmos-Tokenizer: config.json = the constructor kwargs (`name` CV / DV / CI / DI), keys as
//   the released JIT files (`encoder.down.0.block.0.conv1.0.conv3d.weight`, ...);
// - diffusers: config.json with `_class_name: AutoencoderKLCosmos`, keys renamed (diffusers.ts).
// Buffers with no learned state (wavelet filters, FSQ tables) are ignored; every other
// difference between the checkpoint and the tree the config implies is reported at once by
// CheckpointMismatchError. Weights keep their stored dtype (bf16 stays bf16).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Backend } from '../../engine/backend.js';
import { type LoadReport, type TensorSource, loadWeights } from '../../engine/module.js';
import { type Checkpoint, openCheckpoint } from '../../io/safetensors.js';
import { type TokenizerKind, tokenizerKindOf } from './config.js';
import { TokenizerConfigError } from './errors.js';
import { AutoencoderKLCosmos, DIFFUSERS_CLASS_NAME } from './diffusers.js';
import { ContinuousImageTokenizer, DiscreteImageTokenizer } from './image.js';
import { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from './video.js';

export type Tokenizer =
  | CausalContinuousVideoTokenizer
  | CausalDiscreteVideoTokenizer
  | ContinuousImageTokenizer
  | DiscreteImageTokenizer
  | AutoencoderKLCosmos;

export type TokenizerLayout = 'cosmos' | 'diffusers';

type Cfg = Record<string, unknown>;

export function tokenizerLayout(config: Cfg): TokenizerLayout {
  return config._class_name === DIFFUSERS_CLASS_NAME ? 'diffusers' : 'cosmos';
}

/** The model a config describes (parameters declared, nothing allocated). */
export function buildTokenizer(config: Cfg): Tokenizer {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new TokenizerConfigError('<root>', 'expected a JSON object');
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

/** Fill a built tokenizer from a tensor source in either layout. */
export async function loadTokenizerWeights(model: Tokenizer, src: TensorSource, backend: Backend): Promise<LoadReport> {
  return loadWeights(model, src, backend, {
    ignore: isIgnorableBuffer,
    ...(model instanceof AutoencoderKLCosmos ? { mapKey: model.keyMapper() } : {}),
  });
}

const WEIGHT_FILES = ['model.safetensors', 'diffusion_pytorch_model.safetensors', 'autoencoder.safetensors'];

/** config.json and the weights path for a checkpoint folder or file. */
export function resolveTokenizerFiles(pathOrDir: string): { configPath: string; weights: string } {
  if (!existsSync(pathOrDir)) throw new TokenizerConfigError('<path>', `${pathOrDir} does not exist`);
  if (statSync(pathOrDir).isDirectory()) {
    // a diffusers pipeline folder keeps the VAE under vae/
    if (!existsSync(join(pathOrDir, 'config.json')) && existsSync(join(pathOrDir, 'vae', 'config.json'))) {
      return resolveTokenizerFiles(join(pathOrDir, 'vae'));
    }
    const configPath = join(pathOrDir, 'config.json');
    if (!existsSync(configPath)) throw new TokenizerConfigError('<path>', `${pathOrDir} has no config.json`);
    const file = WEIGHT_FILES.map((f) => join(pathOrDir, f)).find((f) => existsSync(f));
    if (file) return { configPath, weights: file };
    if (existsSync(join(pathOrDir, 'autoencoder.jit'))) {
      throw new TokenizerConfigError('<path>', `${pathOrDir} holds a TorchScript autoencoder.jit; convert its state_dict to model.safetensors first`);
    }
    return { configPath, weights: pathOrDir }; // sharded / index: openCheckpoint finds it
  }
  const configPath = join(dirname(pathOrDir), 'config.json');
  if (!existsSync(configPath)) throw new TokenizerConfigError('<path>', `no config.json beside ${pathOrDir}`);
  return { configPath, weights: pathOrDir };
}

export interface LoadTokenizerOptions {
  /** use this config instead of the config.json beside the weights */
  config?: Cfg;
}

/**
 * Read config.json and the weights (a folder with model.safetensors /
 * diffusion_pytorch_model.safetensors / shards, or a .safetensors file), detect the layout,
 * build and load the model on `backend`.
 */
export async function loadTokenizer(pathOrDir: string, backend: Backend, opts: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  const { configPath, weights } = resolveTokenizerFiles(pathOrDir);
  let config = opts.config;
  if (!config) {
    try {
      config = JSON.parse(readFileSync(configPath, 'utf8')) as Cfg;
    } catch (e) {
      throw new TokenizerConfigError('<file>', `${configPath} is not valid JSON (${(e as Error).message})`);
    }
  }
  const model = buildTokenizer(config);
  const ck: Checkpoint = await openCheckpoint(weights);
  try {
    await loadTokenizerWeights(model, ck, backend);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await ck.close();
  }
  return model;
}
