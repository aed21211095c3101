// Checkpoints: one .safetensors file, several files with disjoint tensor names, a
// *.safetensors.index.json with its shards, or one PyTorch file (.pt / .pth / .jit, told by its
// magic bytes), read through one TensorReader; config.json beside them is parsed when present.
import { type FileSystem, fileSystem, readText } from '../files.js';
import { basename, dirname, isAbsolute, isInside, join } from '../path.js';
import { CheckpointError, FileAccessError, IndexMismatchError, TensorNotFoundError } from '../errors.js';
import { openTorchCheckpoint, type TorchCheckpoint, type TorchFormat, torchSubtree } from '../torch/checkpoint.js';
import { SNIFF_BYTES, torchFormatOf } from '../torch/sniff.js';
import type { LoadedTensor } from './dtypes.js';
import { accessError, openSafetensors, type SafetensorsFile, type TensorReader } from './file.js';
import { isPlainObject, type TensorInfo } from './header.js';

export interface Checkpoint extends TensorReader {
  /** What was opened, as given. */
  readonly path: string;
  /** The files the tensors live in. */
  readonly files: readonly string[];
  /** The .safetensors files (empty when the checkpoint is a PyTorch file). */
  readonly shards: readonly SafetensorsFile[];
  /** 'safetensors', or the kind of PyTorch file (torch.save zip, legacy stream, TorchScript). */
  readonly format: 'safetensors' | TorchFormat;
  /** The index's "metadata" object, or a lone file's __metadata__; {} otherwise. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The parsed config.json beside the checkpoint, or null when there is none. */
  readonly config: unknown;
}

/** One file of a checkpoint. */
type Part = TensorReader & { readonly path: string };

class CheckpointImpl implements Checkpoint {
  readonly names: readonly string[];
  readonly files: readonly string[];

  constructor(
    readonly path: string,
    readonly shards: readonly SafetensorsFile[],
    private readonly owner: Map<string, TensorReader>,
    readonly metadata: Readonly<Record<string, unknown>>,
    readonly config: unknown,
    readonly format: 'safetensors' | TorchFormat = 'safetensors',
    private readonly parts: readonly Part[] = shards,
  ) {
    this.files = parts.map((s) => s.path);
    this.names = parts.length === 1 ? parts[0].names : Object.freeze([...owner.keys()].sort());
    // reads straight into the caller's memory, where every file can
    if (parts.every((p) => p.readInto)) this.readInto = (name, into, byteOffset = 0) => this.shardOf(name).readInto!(name, into, byteOffset);
  }

  readonly readInto?: (name: string, into: Uint8Array, byteOffset?: number) => Promise<void>;

  private shardOf(name: string): TensorReader {
    const s = this.owner.get(name);
    if (!s) throw new TensorNotFoundError({ file: this.path, tensor: name }, `no such tensor in the checkpoint (it has ${this.owner.size})`);
    return s;
  }

  entries(): TensorInfo[] {
    return this.names.map((n) => this.shardOf(n).info(n));
  }
  has(name: string): boolean {
    return this.owner.has(name);
  }
  info(name: string): TensorInfo {
    return this.shardOf(name).info(name);
  }
  read(name: string): Promise<LoadedTensor> {
    return this.shardOf(name).read(name);
  }
  readBytes(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readBytes(name);
  }
  async close(): Promise<void> {
    await Promise.all(this.parts.map((s) => s.close()));
  }
}

async function readJson(fs: FileSystem, path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readText(path, fs);
  } catch (e) {
    throw accessError(path, e);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError({ file: path }, `${what} is not valid JSON (${(e as Error).message})`);
  }
}

async function readConfig(fs: FileSystem, dir: string): Promise<unknown> {
  const path = join(dir, 'config.json');
  return (await fs.stat(path))?.kind === 'file' ? readJson(fs, path, 'config.json') : null;
}

/** Open each path; if one fails, close the ones already open. */
async function openAll(fs: FileSystem, paths: readonly string[]): Promise<SafetensorsFile[]> {
  const opened: SafetensorsFile[] = [];
  try {
    for (const p of paths) opened.push(await openSafetensors(p, fs));
    return opened;
  } catch (e) {
    await Promise.all(opened.map((f) => f.close()));
    throw e;
  }
}

function listSome(items: readonly string[], max = 8): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown}, ... (${items.length} in all)` : shown;
}

export interface OpenCheckpointOptions {
  /** read the config.json beside the weights into `config` (default true; false when the caller has it) */
  config?: boolean;
  /**
   * For a PyTorch file: the first of these keys whose subtree holds tensors names the weights;
   * only they are read, without the `<key>.` prefix (as upstream loaders take ckpt["model"] of a
   * Cosmos AR model.pt). Default none: every tensor under its full dotted key.
   */
  weightsUnder?: readonly string[];
}

/** Extensions of PyTorch files: a file so named that is not one is reported as such. */
const TORCH_FILE = /\.(pt|pth|jit)$/i;
/** PyTorch files a directory without safetensors may hold its weights in. */
const TORCH_WEIGHTS = /\.(pt|pth)$/i;

/** 'torch' when the file's first bytes are a PyTorch zip or legacy stream, 'safetensors' when they look like one, else null. */
async function magicOf(fs: FileSystem, path: string): Promise<'torch' | 'safetensors' | null> {
  let f: Awaited<ReturnType<FileSystem['open']>>;
  try {
    f = await fs.open(path);
  } catch (e) {
    throw accessError(path, e);
  }
  try {
    const first = new Uint8Array(Math.min(SNIFF_BYTES, f.size));
    await f.read(0, first);
    const k = torchFormatOf(first);
    return k === 'zip' || k === 'legacy' ? 'torch' : k;
  } catch (e) {
    throw accessError(path, e);
  } finally {
    await f.close();
  }
}

/**
 * Open a checkpoint: a .safetensors file, a *.safetensors.index.json, a PyTorch file (.pt, .pth,
 * .jit: recognised by its first bytes, whatever its name), or a directory holding safetensors (the
 * index wins; several .safetensors without an index are merged when their tensor names are
 * disjoint) or, failing those, exactly one .pt / .pth file.
 */
export async function openCheckpoint(pathOrDir: string, fs: FileSystem = fileSystem(), options: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  const wantConfig = options.config ?? true;
  const st = await fs.stat(pathOrDir);
  if (!st) throw new FileAccessError({ file: pathOrDir }, 'cannot open: no such file or directory');
  if (st.kind === 'directory') {
    const names = await fs.list(pathOrDir);
    const indexes = names.filter((n) => n.endsWith('.safetensors.index.json'));
    if (indexes.length > 1) {
      throw new CheckpointError({ file: pathOrDir }, `several index files (${listSome(indexes)}); expected at most one *.safetensors.index.json`);
    }
    if (indexes.length === 1) return openIndexed(fs, join(pathOrDir, indexes[0]), pathOrDir, wantConfig);
    const files = names.filter((n) => n.endsWith('.safetensors')).map((n) => join(pathOrDir, n));
    if (files.length === 0) {
      const torch = names.filter((n) => TORCH_WEIGHTS.test(n));
      // the one weight file is told by its bytes, like a file given by name (a renamed safetensors still opens)
      if (torch.length === 1) return openCheckpoint(join(pathOrDir, torch[0]), fs, options);
      if (torch.length > 1) {
        throw new CheckpointError({ file: pathOrDir }, `no .safetensors file but several PyTorch files (${listSome(torch)}); expected one, or name the file`);
      }
      throw new CheckpointError({ file: pathOrDir }, 'no .safetensors file, *.safetensors.index.json or .pt / .pth file in this directory');
    }
    return openFiles(fs, pathOrDir, files, wantConfig);
  }
  if (pathOrDir.endsWith('.json')) return openIndexed(fs, pathOrDir, pathOrDir, wantConfig);
  const magic = st.kind === 'file' ? await magicOf(fs, pathOrDir) : null;
  if (magic === 'torch' || (magic === null && TORCH_FILE.test(pathOrDir))) return openTorch(fs, pathOrDir, wantConfig, options.weightsUnder);
  return openFiles(fs, pathOrDir, [pathOrDir], wantConfig);
}

async function openTorch(fs: FileSystem, path: string, wantConfig: boolean, weightsUnder: readonly string[] = []): Promise<Checkpoint> {
  let file: TorchCheckpoint = await openTorchCheckpoint(path, fs);
  try {
    const under = weightsUnder.find((k) => file.names.some((n) => n.startsWith(`${k}.`)));
    if (under !== undefined) file = torchSubtree(file, under);
    let config: unknown = null;
    if (wantConfig) {
      try {
        config = await readConfig(fs, dirname(path));
      } catch (e) {
        // A TorchScript archive carries its own architecture; the config.json beside released
        // ones (Cosmos-Tokenizer 0.1) is not even JSON, and must not stop the weights being read.
        if (file.format !== 'torchscript' || !(e instanceof CheckpointError)) throw e;
      }
    }
    return new CheckpointImpl(path, [], new Map(file.names.map((n) => [n, file])), {}, config, file.format, [file]);
  } catch (e) {
    await file.close();
    throw e;
  }
}

async function openFiles(fs: FileSystem, label: string, paths: readonly string[], wantConfig: boolean): Promise<Checkpoint> {
  const config = wantConfig ? await readConfig(fs, dirname(paths[0])) : null;
  const shards = await openAll(fs, paths);
  const owner = new Map<string, TensorReader>();
  const ownerPath = new Map<string, string>();
  for (const s of shards) {
    for (const n of s.names) {
      const other = ownerPath.get(n);
      if (other) {
        await Promise.all(shards.map((f) => f.close()));
        throw new CheckpointError(
          { file: label, tensor: n },
          `is in both ${other} and ${s.path}; ${paths.length} .safetensors files without an index (${listSome(paths.map((p) => basename(p)))}) must have distinct tensor names, or add a *.safetensors.index.json`,
        );
      }
      owner.set(n, s);
      ownerPath.set(n, s.path);
    }
  }
  const metadata = shards.length === 1 ? shards[0].metadata : {};
  return new CheckpointImpl(label, shards, owner, metadata, config);
}

async function openIndexed(fs: FileSystem, indexPath: string, label: string, wantConfig: boolean): Promise<Checkpoint> {
  const index = await readJson(fs, indexPath, 'index');
  const file = indexPath;
  if (!isPlainObject(index) || !isPlainObject(index.weight_map)) {
    throw new CheckpointError({ file }, 'index has no "weight_map" object; expected {"weight_map": {tensor: shard file}}');
  }
  const weightMap = index.weight_map;
  const metadata = index.metadata ?? {};
  if (!isPlainObject(metadata)) throw new CheckpointError({ file }, '"metadata" is not an object');

  const dir = dirname(indexPath);
  const shardNames: string[] = [];
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new CheckpointError({ file, tensor }, `weight_map value ${JSON.stringify(shard)} is not a shard file name`);
    }
    // Shards live beside the index; refuse paths that would read elsewhere.
    if (isAbsolute(shard) || !isInside(dir, join(dir, shard))) {
      throw new CheckpointError({ file, tensor }, `shard ${JSON.stringify(shard)} is outside the index's directory`);
    }
    if (!shardNames.includes(shard)) shardNames.push(shard);
  }
  shardNames.sort();
  const shardPaths = shardNames.map((s) => join(dir, s));
  const missing: string[] = [];
  for (let i = 0; i < shardPaths.length; i++) if ((await fs.stat(shardPaths[i]))?.kind !== 'file') missing.push(shardNames[i]);
  if (missing.length > 0) {
    throw new CheckpointError({ file }, `weight_map names ${missing.length} shard file(s) that do not exist: ${listSome(missing)}`);
  }

  const config = wantConfig ? await readConfig(fs, dir) : null;
  const shards = await openAll(fs, shardPaths);
  const byShardName = new Map(shardNames.map((s, i) => [s, shards[i]]));
  const owner = new Map<string, TensorReader>();
  const notInShard: string[] = [];
  for (const [tensor, shard] of Object.entries(weightMap) as [string, string][]) {
    const s = byShardName.get(shard)!;
    if (s.has(tensor)) owner.set(tensor, s);
    else notInShard.push(`${tensor} (mapped to ${shard})`);
  }
  const unmapped: string[] = [];
  for (const [shard, s] of byShardName) {
    for (const n of s.names) {
      if (owner.get(n) !== s) {
        const mapped = Object.hasOwn(weightMap, n) ? `mapped to ${weightMap[n] as string}` : 'not in weight_map';
        unmapped.push(`${n} (in ${shard}, ${mapped})`);
      }
    }
  }
  if (notInShard.length > 0 || unmapped.length > 0) {
    await Promise.all(shards.map((s) => s.close()));
    const parts: string[] = [];
    if (notInShard.length > 0) parts.push(`${notInShard.length} tensor(s) in weight_map missing from their shard: ${listSome(notInShard, 5)}`);
    if (unmapped.length > 0) parts.push(`${unmapped.length} shard tensor(s) not mapped to their shard: ${listSome(unmapped, 5)}`);
    throw new IndexMismatchError({ file }, `index and shards disagree; ${parts.join('; ')}`);
  }
  return new CheckpointImpl(label, shards, owner, metadata, config);
}
