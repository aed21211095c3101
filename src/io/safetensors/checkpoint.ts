// Checkpoints: one .safetensors file, several files with disjoint tensor names, or a
// *.safetensors.index.json with its shards, read through one TensorReader; config.json beside
// them is parsed when present.
import { type FileSystem, fileSystem, readText } from '../files.js';
import { basename, dirname, isAbsolute, isInside, join } from '../path.js';
import { CheckpointError, FileAccessError, IndexMismatchError, TensorNotFoundError } from '../errors.js';
import type { LoadedTensor } from './dtypes.js';
import { accessError, openSafetensors, type SafetensorsFile, type TensorReader } from './file.js';
import { isPlainObject, type TensorInfo } from './header.js';

export interface Checkpoint extends TensorReader {
  /** What was opened, as given. */
  readonly path: string;
  /** The .safetensors files the tensors live in. */
  readonly files: readonly string[];
  readonly shards: readonly SafetensorsFile[];
  /** The index's "metadata" object, or a lone file's __metadata__; {} otherwise. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The parsed config.json beside the checkpoint, or null when there is none. */
  readonly config: unknown;
}

class CheckpointImpl implements Checkpoint {
  readonly names: readonly string[];
  readonly files: readonly string[];

  constructor(
    readonly path: string,
    readonly shards: readonly SafetensorsFile[],
    private readonly owner: Map<string, SafetensorsFile>,
    readonly metadata: Readonly<Record<string, unknown>>,
    readonly config: unknown,
  ) {
    this.files = shards.map((s) => s.path);
    this.names = shards.length === 1 ? shards[0].names : Object.freeze([...owner.keys()].sort());
  }

  private shardOf(name: string): SafetensorsFile {
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
  readInto(name: string, into: Uint8Array, byteOffset = 0): Promise<void> {
    return this.shardOf(name).readInto(name, into, byteOffset);
  }
  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
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
}

/**
 * Open a checkpoint: a .safetensors file, a *.safetensors.index.json, or a directory holding
 * either (the index wins; several .safetensors without an index are merged when their tensor
 * names are disjoint).
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
      throw new CheckpointError({ file: pathOrDir }, 'no .safetensors file or *.safetensors.index.json in this directory');
    }
    return openFiles(fs, pathOrDir, files, wantConfig);
  }
  if (pathOrDir.endsWith('.json')) return openIndexed(fs, pathOrDir, pathOrDir, wantConfig);
  return openFiles(fs, pathOrDir, [pathOrDir], wantConfig);
}

async function openFiles(fs: FileSystem, label: string, paths: readonly string[], wantConfig: boolean): Promise<Checkpoint> {
  const config = wantConfig ? await readConfig(fs, dirname(paths[0])) : null;
  const shards = await openAll(fs, paths);
  const owner = new Map<string, SafetensorsFile>();
  for (const s of shards) {
    for (const n of s.names) {
      const other = owner.get(n);
      if (other) {
        await Promise.all(shards.map((f) => f.close()));
        throw new CheckpointError(
          { file: label, tensor: n },
          `is in both ${other.path} and ${s.path}; ${paths.length} .safetensors files without an index (${listSome(paths.map((p) => basename(p)))}) must have distinct tensor names, or add a *.safetensors.index.json`,
        );
      }
      owner.set(n, s);
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
  const owner = new Map<string, SafetensorsFile>();
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
