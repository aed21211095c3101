// One way to build a module from a checkpoint folder and fill it, for every model family: the
// family says how to build the tree from config.json and how its checkpoint keys map; the rest
// (finding the files, planning the bytes, refusing what cannot fit before anything is allocated,
// reporting every missing / unexpected / mis-shaped key at once) is written here once.
import type { Backend } from '../engine/backend.js';
import { UserError } from '../engine/errors.js';
import { type LoadOptions, type LoadReport, type Module, type TensorSource, checkWeights, loadWeights, plannedBytes } from '../engine/module.js';
import type { FileSystem } from '../io/files.js';
import { type Checkpoint, openCheckpoint } from '../io/safetensors.js';

export type Config = Record<string, unknown>;

/** How one model family is built and loaded. */
export interface ModuleFamily<M extends Module> {
  /** the upstream class name, for messages (e.g. 'CosmosTransformer3DModel') */
  readonly name: string;
  /** The module tree a config implies (parameters declared, nothing allocated). */
  build(config: Config): M;
  /** Key mapping and ignored buffers of this family's checkpoints. */
  loadOptions?(model: M, src: TensorSource): LoadOptions;
}

export interface LoadModuleOptions {
  /** refuse, before allocating, parameters that would take more device bytes than this */
  maxBytes?: number;
  /** build from this config instead of the config.json beside the weights */
  config?: Config;
  /** store floating weights in this dtype instead of the checkpoint's */
  castTo?: LoadOptions['castTo'];
  fs?: FileSystem;
}

export interface LoadedModule<M extends Module> {
  model: M;
  config: Config;
  report: LoadReport;
  /** device bytes of the parameters, as planned before loading */
  plannedBytes: number;
}

export class ModelFolderError extends UserError {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

const GiB = 2 ** 30;

/** A module built from a folder and checked against its checkpoint, its weights not loaded yet. */
export interface OpenedModule<M extends Module> {
  model: M;
  config: Config;
  /** the checkpoint, open until close() */
  source: Checkpoint;
  /** what loadWeights takes for this family and backend (e.g. with `part` to load one block) */
  loadOptions: LoadOptions;
  /** device bytes of all the parameters */
  plannedBytes: number;
  close(): Promise<void>;
}

/**
 * Build `family`'s module from a folder (config.json + *.safetensors, sharded with an index or
 * not), a .safetensors file or an index, and check every parameter against the checkpoint's
 * headers, reading no tensor data: for loading the weights in parts (loadWeights with `part`).
 * The caller closes it (the model is the caller's to dispose).
 */
export async function openModule<M extends Module>(
  family: ModuleFamily<M>,
  path: string,
  backend: Backend,
  opts: LoadModuleOptions = {},
): Promise<OpenedModule<M>> {
  const ckpt = await openCheckpoint(path, opts.fs, { config: opts.config === undefined });
  try {
    const config = opts.config ?? (ckpt.config as Config | null);
    if (!config || typeof config !== 'object' || Array.isArray(config)) {
      throw new ModelFolderError(path, `no config.json beside the checkpoint (expected the ${family.name} config)`);
    }
    const model = family.build(config);
    const loadOptions: LoadOptions = {
      ...family.loadOptions?.(model, ckpt), ...(opts.castTo ? { castTo: opts.castTo } : {}), maxTensorBytes: backend.limits.maxBufferBytes,
    };
    const bytes = plannedBytes(model, ckpt, loadOptions);
    if (opts.maxBytes !== undefined && bytes > opts.maxBytes) {
      throw new ModelFolderError(path, `${family.name} needs ${(bytes / GiB).toFixed(2)} GiB of parameters, more than the ${(opts.maxBytes / GiB).toFixed(2)} GiB allowed`);
    }
    checkWeights(model, ckpt, loadOptions);
    return { model, config, source: ckpt, loadOptions, plannedBytes: bytes, close: () => ckpt.close() };
  } catch (e) {
    await ckpt.close();
    throw e;
  }
}

/**
 * Build `family`'s module from a folder (config.json + *.safetensors, sharded with an index or
 * not), a .safetensors file or an index, and load its weights on `backend`.
 */
export async function loadModule<M extends Module>(
  family: ModuleFamily<M>,
  path: string,
  backend: Backend,
  opts: LoadModuleOptions = {},
): Promise<LoadedModule<M>> {
  const opened = await openModule(family, path, backend, opts);
  const { model, config, source, loadOptions } = opened;
  try {
    const report = await loadWeights(model, source, backend, loadOptions);
    return { model, config, report, plannedBytes: opened.plannedBytes };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await opened.close();
  }
}
