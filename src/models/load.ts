// One way to build a module from a checkpoint folder and fill it, for every model family: the
// family says how to build the tree from config.json and how its checkpoint keys map; the rest
// (finding the files, planning the bytes, refusing what cannot fit before anything is allocated,
// reporting every missing / unexpected / mis-shaped key at once) is written here once.
import type { Backend } from '../engine/backend.js';
import { UserError } from '../engine/errors.js';
import { NonFiniteError, nonFiniteCounts } from '../engine/finite.js';
import { type LoadOptions, type LoadReport, type Module, type TensorSource, checkWeights, loadWeights, plannedBytes } from '../engine/module.js';
import * as F from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { type FileSystem, fileSystem } from '../io/files.js';
import { join } from '../io/path.js';
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
  /** The config of a release folder / file that ships none (no config.json beside the weights). */
  readonly defaultConfig?: Config;
  /** The weights file of a folder that holds other PyTorch files beside it (e.g. 'model.pt' beside 'aux_vars.pt'). */
  readonly weightsFile?: string;
}

export interface LoadModuleOptions {
  /** refuse, before allocating, parameters that would take more device bytes than this */
  maxBytes?: number;
  /** build from this config instead of the config.json beside the weights */
  config?: Config;
  /** store floating weights in this dtype instead of the checkpoint's */
  castTo?: LoadOptions['castTo'];
  /**
   * After loading, count NaN / Inf over every parameter on the device (one pass, one 8-byte read)
   * and refuse the model naming the file and tensor that hold them. Off by default: the pass reads
   * every weight once more, which measured 90 % of a page-cached load on the CPU backend and 3x on
   * llvmpipe; the pipelines' output checks catch a NaN weight anyway, naming the component.
   */
  checkFinite?: boolean;
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

/** The family's named weights file when `path` is a folder holding it, else `path`. */
async function weightsPath(family: ModuleFamily<Module>, path: string, fs: FileSystem = fileSystem()): Promise<string> {
  if (!family.weightsFile || (await fs.stat(path))?.kind !== 'directory') return path;
  const file = join(path, family.weightsFile);
  return (await fs.stat(file))?.kind === 'file' ? file : path;
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
  const ckpt = await openCheckpoint(await weightsPath(family, path, opts.fs), opts.fs, { config: opts.config === undefined });
  try {
    const config = opts.config ?? (ckpt.config as Config | null) ?? family.defaultConfig ?? null;
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
    if (opts.checkFinite) await checkFiniteWeights(model, source, path, loadOptions);
    return { model, config, report, plannedBytes: opened.plannedBytes };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await opened.close();
  }
}

/**
 * Refuse loaded weights holding NaN or Inf: the count of every parameter is summed on the device
 * and read once; only when it is not zero are the counts read one by one to name the tensor (the
 * first in checkpoint order, with how many others hold any).
 */
export async function checkFiniteWeights(model: Module, source: TensorSource, path: string, loadOptions: LoadOptions = {}): Promise<void> {
  const entries = checkWeights(model, source, loadOptions).entries.filter(({ p }) => p.loaded);
  if (!entries.length || entries[0].p.t.backend.name === 'plan') return;
  let total: Tensor | null = null;
  try {
    for (const { p } of entries) {
      const c = F.countNonFinite(p.t);
      if (!total) total = c;
      else {
        const next: Tensor = F.add(total, c);
        total.dispose();
        c.dispose();
        total = next;
      }
    }
    const sum = await total!.read();
    if (sum[0] === 0 && sum[1] === 0) return;
  } finally {
    total?.dispose();
  }
  const bad: { ck: string; nan: number; inf: number; size: number }[] = [];
  for (const { p, ck } of entries) {
    const c = F.countNonFinite(p.t);
    const [nan, inf] = await c.read();
    c.dispose();
    if (nan || inf) bad.push({ ck, nan, inf, size: p.t.size });
  }
  if (!bad.length) return;
  const first = bad[0];
  const file = source.info(first.ck).file ?? path;
  const others = bad.length > 1 ? ` (and ${bad.length - 1} more tensor${bad.length > 2 ? 's' : ''})` : '';
  throw new NonFiniteError(
    `${file}: tensor ${first.ck} ${nonFiniteCounts(first.nan, first.inf, first.size)}${others}; expected finite weights`,
    first.nan, first.inf, first.size,
  );
}
