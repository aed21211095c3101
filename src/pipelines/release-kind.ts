// What a release folder is, from its files and configs alone (nothing loaded): the first step of
// loadRelease. Folders are recognised the way their authors wrote them: a diffusers pipeline by
// model_index.json or its component subfolders, a diffusers / transformers model by its
// config's _class_name / architectures, a Cosmos Tokenizer by its constructor kwargs, an
// autoregressive model by its ModelConfig fields.
import { UserError } from '../engine/errors.js';
import { type FileSystem, fileSystem, readJsonObject } from '../io/files.js';
import { basename, join } from '../io/path.js';

export type ReleaseKind = 'world' | 'tokenizer' | 'transformer' | 'controlnet' | 't5' | 'vlm' | 'ar';

export interface ReleaseFolder {
  kind: ReleaseKind;
  /** the folder (or file) as given */
  path: string;
  /** config.json (or model_index.json for a world pipeline), parsed */
  config: Record<string, unknown>;
  /** the files in the folder */
  files: readonly string[];
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

/** Recognise a release folder (or a model file inside one) without loading any weights. */
export async function identifyRelease(path: string, fs: FileSystem = fileSystem()): Promise<ReleaseFolder> {
  const st = await fs.stat(path);
  if (!st) throw new ReleaseFormatError(path, 'no such file or directory');
  if (st.kind !== 'directory') {
    throw new ReleaseFormatError(path, 'expected a release folder (the folder as downloaded, holding config.json or model_index.json)');
  }
  const files = await fs.list(path);
  const has = (f: string) => files.includes(f);
  if (has('model_index.json')) {
    return { kind: 'world', path, config: await readJsonObject(join(path, 'model_index.json'), 'model_index.json', fs), files };
  }
  if (WORLD_PARTS.every(has)) return { kind: 'world', path, config: {}, files };
  if (files.some((f) => f.endsWith('.jit')) && !files.some((f) => f.endsWith('.safetensors'))) {
    throw new ReleaseFormatError(path, 'a Cosmos Tokenizer release of TorchScript .jit files only; cosmos-ts reads its weights once converted to model.safetensors beside a config.json (reading .jit directly is not implemented yet)');
  }
  if (has('config.json')) {
    const config = await readJsonObject(join(path, 'config.json'), 'config.json', fs);
    const kind = kindOfConfig(config);
    if (kind) return { kind, path, config, files };
    throw new ReleaseFormatError(
      path,
      `config.json describes no model cosmos-ts knows (expected a _class_name of ${Object.keys(CLASS_KINDS).join(' / ')}, ` +
        `architectures ${Object.keys(ARCHITECTURE_KINDS).join(' / ')}, Cosmos Tokenizer kwargs or an autoregressive ModelConfig)`,
    );
  }
  throw new ReleaseFormatError(path, `no config.json or model_index.json in ${basename(path) || path}; expected a release folder as downloaded`);
}
