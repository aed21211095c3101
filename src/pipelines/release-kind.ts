// What a release folder is, from its files and configs alone (nothing loaded): the first step of
// loadRelease. Folders are recognised the way their authors wrote them: a diffusers pipeline by
// model_index.json or its component subfolders, a diffusers / transformers model by its
// config's _class_name / architectures, a Cosmos Tokenizer by its constructor kwargs, an
// autoregressive model by its ModelConfig fields.
import { UserError } from '../engine/errors.js';
import { type FileSystem, fileSystem, readJsonObject } from '../io/files.js';
import { basename, join } from '../io/path.js';
import { completeArConfig, RELEASED_AR_MODELS, type ReleasedArModel, releasedArModelOf } from '../models/ar/config.js';
import { isJitTokenizerFolder, tokenizerReleaseConfig } from '../models/tokenizer/release-folder.js';
import { findRelease, RELEASE_CATALOG, type ReleaseFormat } from './release-catalog.js';

export type ReleaseKind = 'world' | 'tokenizer' | 'transformer' | 'controlnet' | 't5' | 'vlm' | 'ar';

export interface ReleaseFolder {
  kind: ReleaseKind;
  /** the folder (or file) as given */
  path: string;
  /**
   * The model's config: config.json, model_index.json for a world pipeline, the published
   * architecture for a TorchScript tokenizer, config.json completed from the release for an AR model.
   */
  config: Record<string, unknown>;
  /** the files in the folder */
  files: readonly string[];
  /** how the weights and configs are stored */
  format: ReleaseFormat;
  /**
   * What the folder is: a diffusers pipeline's model_index.json _class_name, a transformers
   * folder's architectures[0], a diffusers model's _class_name, or a name such as
   * "Cosmos-Tokenizer CV8x8x8" / "Cosmos-1.0-Autoregressive-4B".
   */
  release: string;
}

export interface IdentifyOptions {
  /** the release name, for a folder whose contents and path do not say it (--release) */
  release?: string;
}

export class ReleaseFormatError extends UserError {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

const CLASS_KINDS: Readonly<Record<string, ReleaseKind>> = {
  AutoencoderKLCosmos: 'tokenizer',
  CosmosTransformer3DModel: 'transformer',
  CosmosControlNetModel: 'controlnet',
};

const ARCHITECTURE_KINDS: Readonly<Record<string, ReleaseKind>> = {
  Qwen2_5_VLForConditionalGeneration: 'vlm',
  T5EncoderModel: 't5',
  T5ForConditionalGeneration: 't5',
};

const TOKENIZER_NAMES = new Set(['CV', 'DV', 'CI', 'DI']);
const WORLD_PARTS = ['transformer', 'vae', 'scheduler'];

function kindOfConfig(config: Record<string, unknown>): ReleaseKind | null {
  const cls = config._class_name;
  if (typeof cls === 'string' && Object.hasOwn(CLASS_KINDS, cls)) return CLASS_KINDS[cls];
  const archs = Array.isArray(config.architectures) ? config.architectures : [];
  for (const a of archs) if (typeof a === 'string' && Object.hasOwn(ARCHITECTURE_KINDS, a)) return ARCHITECTURE_KINDS[a];
  if (typeof config.name === 'string' && TOKENIZER_NAMES.has(config.name) && 'z_channels' in config) return 'tokenizer';
  if (typeof config.n_layers === 'number' && typeof config.dim === 'number' && typeof config.vocab_size === 'number') return 'ar';
  return null;
}

/** The AR release --release names (a hub name or a Cosmos-Predict1 name), or undefined. */
function arRelease(name: string | undefined): ReleasedArModel | undefined {
  if (name === undefined) return undefined;
  const entry = findRelease(name);
  if (entry?.ar) return entry.ar;
  return RELEASED_AR_MODELS.find((m) => m.toLowerCase() === name.toLowerCase());
}

function describe(kind: ReleaseKind, config: Record<string, unknown>): { format: ReleaseFormat; release: string } {
  const cls = typeof config._class_name === 'string' ? config._class_name : null;
  const arch = Array.isArray(config.architectures) && typeof config.architectures[0] === 'string' ? config.architectures[0] : null;
  if (cls) return { format: 'diffusers', release: cls };
  if (arch) return { format: 'transformers', release: arch };
  if (kind === 'tokenizer') {
    const [name, tc, sc] = [config.name, config.temporal_compression, config.spatial_compression];
    const code = name === 'CV' || name === 'DV' ? `${String(name)}${String(tc)}x${String(sc)}x${String(sc)}` : `${String(name)}${String(sc)}x${String(sc)}`;
    return { format: 'cosmos-tokenizer', release: `Cosmos-Tokenizer ${code}` };
  }
  return { format: 'cosmos-ar', release: 'Cosmos autoregressive model' };
}

/** Recognise a release folder (or a model file inside one) without loading any weights. */
export async function identifyRelease(path: string, fs: FileSystem = fileSystem(), opts: IdentifyOptions = {}): Promise<ReleaseFolder> {
  const st = await fs.stat(path);
  if (!st) throw new ReleaseFormatError(path, 'no such file or directory');
  if (st.kind !== 'directory') {
    throw new ReleaseFormatError(path, 'expected a release folder (the folder as downloaded, holding config.json or model_index.json)');
  }
  const files = await fs.list(path);
  const has = (f: string) => files.includes(f);
  if (has('model_index.json')) {
    const config = await readJsonObject(join(path, 'model_index.json'), 'model_index.json', fs);
    const cls = typeof config._class_name === 'string' ? config._class_name : 'diffusers pipeline';
    return { kind: 'world', path, config, files, format: 'diffusers', release: cls };
  }
  if (WORLD_PARTS.every(has)) return { kind: 'world', path, config: {}, files, format: 'diffusers', release: 'diffusers pipeline' };
  if (await isJitTokenizerFolder(path, fs)) {
    // its config.json, when there is one, is a placeholder (not even JSON in the 0.1 repos)
    const rel = await tokenizerReleaseConfig(path, { release: opts.release, fs });
    return { kind: 'tokenizer', path, config: rel.config, files, format: 'cosmos-tokenizer', release: `Cosmos-Tokenizer ${rel.code}` };
  }
  if (has('config.json')) {
    const config = await readJsonObject(join(path, 'config.json'), 'config.json', fs);
    const kind = kindOfConfig(config);
    if (kind === 'ar') {
      const release = arRelease(opts.release);
      if (opts.release !== undefined && !release) {
        throw new ReleaseFormatError(path, `--release ${JSON.stringify(opts.release)} is not an autoregressive release (${RELEASED_AR_MODELS.join(', ')})`);
      }
      const name = release ?? releasedArModelOf(config);
      const completed = completeArConfig(config, release);
      const hub = name ? RELEASE_CATALOG.find((e) => e.ar === name)?.name : undefined;
      return { kind, path, config: completed, files, format: 'cosmos-ar', release: hub ?? 'Cosmos autoregressive model' };
    }
    if (kind) return { kind, path, config, files, ...describe(kind, config) };
    throw new ReleaseFormatError(
      path,
      `config.json describes no model cosmos-ts knows (expected a _class_name of ${Object.keys(CLASS_KINDS).join(' / ')}, ` +
        `architectures ${Object.keys(ARCHITECTURE_KINDS).join(' / ')}, Cosmos Tokenizer kwargs or an autoregressive ModelConfig)`,
    );
  }
  throw new ReleaseFormatError(path, `no config.json or model_index.json in ${basename(path) || path}; expected a release folder as downloaded`);
}
