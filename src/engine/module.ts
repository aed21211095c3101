// Models are trees of modules named by their checkpoint key paths. A module declares its
// parameters with the shapes its config implies; loading fills them from a checkpoint and
// reports every missing, unexpected and mis-shaped key at once. Any module's output can be
// captured by path during a forward pass (`capture`), which is how conformance compares
// intermediate values with PyTorch's forward hooks and how a researcher taps a model.
import { shapeOnlySource } from './plan/params.js';
import type { Backend } from './backend.js';
import type { DType, RawArray } from './dtype.js';
import { bytesPerElement } from './dtype.js';
import { fromRaw } from './ops.js';
import { type Tensor, numel, shapeStr } from './tensor.js';
import { type StreamItem, canStream, streamTensors } from './weight-stream.js';
import { UserError } from './errors.js';

export class Param {
  private value: Tensor | null = null;
  constructor(
    readonly owner: Module,
    readonly name: string,
    readonly shape: readonly number[],
    /** absent from some checkpoints (e.g. unused resampler convs): loading leaves it null */
    readonly optional: boolean,
  ) {}

  get key(): string {
    return this.owner.path ? `${this.owner.path}.${this.name}` : this.name;
  }
  get loaded(): boolean {
    return this.value !== null;
  }
  /** The parameter tensor; throws with its key if it was never loaded. */
  get t(): Tensor {
    if (!this.value) throw new Error(`parameter ${this.key} ${shapeStr(this.shape)} is not loaded`);
    return this.value;
  }
  /** The tensor, or null for an optional parameter the checkpoint did not have. */
  get maybe(): Tensor | null {
    return this.value;
  }
  set(t: Tensor): void {
    if (t.shape.join() !== this.shape.join()) {
      throw new Error(`parameter ${this.key}: shape ${shapeStr(t.shape)} does not match the config's ${shapeStr(this.shape)}`);
    }
    this.value?.dispose();
    // the parameter owns t from now on
    this.value = t.keep();
  }
  dispose(): void {
    this.value?.dispose();
    this.value = null;
  }
}

// ------------------------------------------------------------------ taps

/** Recorded module outputs, in the order the forward pass produced them. */
export class TapRecorder {
  readonly records: { path: string; tensor: Tensor }[] = [];
  constructor(private readonly wanted: ReadonlySet<string> | 'all' | ((path: string) => boolean)) {}

  wants(path: string): boolean {
    const w = this.wanted;
    return w === 'all' || (typeof w === 'function' ? w(path) : w.has(path));
  }
  record(path: string, t: Tensor, shape: readonly number[] = t.shape): void {
    // The recorder owns a view of the tensor, so scopes that free intermediates leave it alive.
    this.records.push({ path, tensor: t.reshape(shape).keep() });
  }
  /** Every recorded output of `path` (a module called several times records each call). */
  all(path: string): Tensor[] {
    return this.records.filter((r) => r.path === path).map((r) => r.tensor);
  }
  get(path: string): Tensor | undefined {
    const a = this.all(path);
    return a[a.length - 1];
  }
  dispose(): void {
    for (const r of this.records) r.tensor.dispose();
    this.records.length = 0;
  }
}

let activeTaps: TapRecorder | null = null;

/** Which module outputs to record: named paths, 'all', or a test of the path. */
export type TapSelection = Iterable<string> | 'all' | ((path: string) => boolean);

/** Run fn with a recorder capturing the outputs of the selected module paths. */
export async function capture<T>(paths: TapSelection, fn: () => Promise<T> | T): Promise<{ result: T; taps: TapRecorder }> {
  const rec = new TapRecorder(paths === 'all' ? 'all' : typeof paths === 'function' ? paths : new Set(paths));
  const prev = activeTaps;
  activeTaps = rec;
  try {
    const result = await fn();
    return { result, taps: rec };
  } finally {
    activeTaps = prev;
  }
}

// ------------------------------------------------------------------ modules

export class Module {
  private parent: Module | null = null;
  private localName = '';
  readonly children = new Map<string, Module>();
  readonly params = new Map<string, Param>();

  /** The module's key path in the checkpoint ('' for the root). */
  get path(): string {
    if (!this.parent) return this.localName;
    const p = this.parent.path;
    return p ? `${p}.${this.localName}` : this.localName;
  }

  /** Register a child module under `name` (its key path segment). */
  protected add<M extends Module>(name: string | number, m: M): M {
    const n = String(name);
    if (this.children.has(n)) throw new Error(`module ${this.path || '<root>'}: child ${n} declared twice`);
    m.parent = this;
    m.localName = n;
    this.children.set(n, m);
    return m;
  }

  /** Declare a parameter (filled by loadWeights). */
  protected param(name: string, shape: readonly number[], opts: { optional?: boolean } = {}): Param {
    if (this.params.has(name)) throw new Error(`module ${this.path}: parameter ${name} declared twice`);
    const p = new Param(this, name, shape, opts.optional ?? false);
    this.params.set(name, p);
    return p;
  }

  /**
   * Record this module's output for an active capture, then return it unchanged. `shape`
   * records it in upstream's layout where that holds broadcast dimensions this code does not
   * keep (the same elements in the same order: a view).
   */
  protected tap<T extends Tensor>(t: T, suffix?: string, shape?: readonly number[]): T {
    if (activeTaps) {
      const path = suffix ? (this.path ? `${this.path}.${suffix}` : suffix) : this.path;
      if (activeTaps.wants(path)) activeTaps.record(path, t, shape);
    }
    return t;
  }

  /**
   * Whether an active capture records this module's output (or `suffix` below it): for outputs
   * recorded in a layout that costs a copy, or assembled from parts, only when someone asks.
   */
  protected wantsTap(suffix?: string): boolean {
    if (!activeTaps) return false;
    return activeTaps.wants(suffix ? (this.path ? `${this.path}.${suffix}` : suffix) : this.path);
  }

  *modules(): Generator<Module> {
    yield this;
    for (const c of this.children.values()) yield* c.modules();
  }

  *parameters(): Generator<Param> {
    for (const m of this.modules()) yield* m.params.values();
  }

  /** Elements of every declared parameter (from the shapes the config implies; nothing allocated). */
  parameterCount(): number {
    let n = 0;
    for (const p of this.parameters()) n += numel(p.shape);
    return n;
  }

  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

// ------------------------------------------------------------------ loading

/** What loading needs from a checkpoint (the safetensors reader provides it). */
export interface TensorSource {
  readonly names: readonly string[];
  /** checkpoint-side description of a tensor; `file` and `byteOffset`, when known, order the reads */
  info(name: string): { dtype: string; shape: readonly number[]; file?: string; byteOffset?: number };
  read(name: string): Promise<{ dtype: DType; raw: RawArray; shape: readonly number[] }>;
  /**
   * Fill `into` with the stored bytes of `name` (little-endian, file dtype) from `byteOffset` into
   * its data. Optional: with it, tensors stored in an engine dtype's layout are read straight into
   * the memory that becomes them (see weight-stream.ts) instead of through read().
   */
  readInto?(name: string, into: Uint8Array, byteOffset?: number): Promise<void>;
  /** where the tensors come from, for messages */
  readonly path?: string;
}

export class CheckpointMismatchError extends UserError {
  override name = 'CheckpointMismatchError';
  constructor(
    readonly source: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: string[],
  ) {
    const list = (what: string, xs: string[]) =>
      xs.length ? `\n  ${what} (${xs.length}): ${xs.slice(0, 12).join(', ')}${xs.length > 12 ? ', ...' : ''}` : '';
    super(
      `checkpoint ${source} does not fit the model built from its config:` +
        list('missing keys', missing) + list('unexpected keys', unexpected) + list('shape mismatches', mismatched),
    );
  }
}

export interface LoadOptions {
  /** checkpoint key -> model key (layout conversion, prefix stripping); null drops the key */
  mapKey?: (key: string) => string | null;
  /** checkpoint keys that carry no learned state (buffers) and are ignored */
  ignore?: (key: string) => boolean;
  /** store floating weights in this dtype instead of the checkpoint's (e.g. 'f32') */
  castTo?: DType;
  /** refuse (before uploading anything) a parameter of more bytes than one device buffer holds */
  maxTensorBytes?: number;
  /**
   * Load only the parameters this accepts (model keys); the others are neither required nor
   * filled (e.g. a tokenizer's encoder from a release's encoder-only file).
   */
  select?: (modelKey: string) => boolean;
  /** host bytes of reads in flight and scratch while loading (default 512 MiB) */
  readAheadBytes?: number;
  /**
   * Fill only the parameters of this module of the tree (e.g. one block, for a forward pass that
   * loads each block when it comes and frees it after); the whole tree is still checked against
   * the checkpoint.
   */
  part?: Module;
}

export interface LoadReport {
  loaded: number;
  bytes: number;
  /** optional parameters the checkpoint did not hold */
  absentOptional: string[];
  ignored: string[];
}

/** Bytes the model's parameters will take on the device, from checkpoint dtypes (before allocating). */
export function plannedBytes(root: Module, src: TensorSource, opts: LoadOptions = {}): number {
  const byModelKey = mapSource(src, opts);
  let total = 0;
  for (const p of root.parameters()) {
    const ck = byModelKey.get(p.key);
    if (!ck || (opts.select && !opts.select(p.key))) continue;
    const dt = opts.castTo ?? engineDtype(src.info(ck).dtype);
    total += numel(p.shape) * bytesPerElement(dt);
  }
  return total;
}

function engineDtype(fileDtype: string): DType {
  switch (fileDtype) {
    case 'BF16': return 'bf16';
    case 'F16': return 'f16';
    case 'I32': case 'I64': case 'U8': case 'BOOL': return 'i32';
    default: return 'f32';
  }
}

/** File dtypes whose stored bytes are an engine dtype's raw layout, on a little-endian host. */
const RAW_LAYOUT: Readonly<Record<string, DType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32' };
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function mapSource(src: TensorSource, opts: LoadOptions): Map<string, string> {
  const m = new Map<string, string>();
  for (const name of src.names) {
    if (opts.ignore?.(name)) continue;
    const key = opts.mapKey ? opts.mapKey(name) : name;
    if (key !== null) m.set(key, name);
  }
  return m;
}

/** What checkWeights found: the parameters to fill and from which checkpoint keys. */
export interface WeightPlan {
  readonly entries: readonly { p: Param; ck: string }[];
  readonly absentOptional: string[];
  readonly ignored: string[];
}

/**
 * Match every parameter of `root` with a tensor of `src` (headers only, nothing read). Collects
 * all problems (missing, unexpected, shape) and throws one CheckpointMismatchError listing them.
 */
export function checkWeights(root: Module, src: TensorSource, opts: LoadOptions = {}): WeightPlan {
  const byModelKey = mapSource(src, opts);
  const ignored = src.names.filter((n) => opts.ignore?.(n) || (opts.mapKey && opts.mapKey(n) === null));
  const missing: string[] = [];
  const mismatched: string[] = [];
  const absentOptional: string[] = [];
  const tooLarge: string[] = [];
  const used = new Set<string>();
  const entries: { p: Param; ck: string }[] = [];
  for (const p of root.parameters()) {
    if (opts.select && !opts.select(p.key)) continue;
    const ck = byModelKey.get(p.key);
    if (!ck) {
      if (p.optional) absentOptional.push(p.key);
      else missing.push(p.key);
      continue;
    }
    used.add(p.key);
    const shape = src.info(ck).shape;
    if (shape.join() !== p.shape.join()) {
      // A scalar stored as [] or [1] is the same thing.
      if (!(numel(shape) === 1 && numel(p.shape) === 1)) {
        mismatched.push(`${ck}: checkpoint ${shapeStr(shape)}, config implies ${shapeStr(p.shape)}`);
        continue;
      }
    }
    const bytes = numel(p.shape) * bytesPerElement(opts.castTo ?? engineDtype(src.info(ck).dtype));
    if (opts.maxTensorBytes !== undefined && bytes > opts.maxTensorBytes) {
      tooLarge.push(`${ck}: ${(bytes / 2 ** 20).toFixed(0)} MiB, more than the ${(opts.maxTensorBytes / 2 ** 20).toFixed(0)} MiB one buffer of this backend holds`);
    }
    entries.push({ p, ck });
  }
  const unexpected = [...byModelKey.keys()].filter((k) => !used.has(k)).map((k) => byModelKey.get(k)!);
  if (missing.length || unexpected.length || mismatched.length) {
    throw new CheckpointMismatchError(src.path ?? '<tensors>', missing, unexpected, mismatched);
  }
  if (tooLarge.length) {
    throw new UserError(`checkpoint ${src.path ?? '<tensors>'}: ${tooLarge.length} tensor(s) too large for the backend: ${tooLarge.slice(0, 4).join('; ')}${tooLarge.length > 4 ? '; ...' : ''}`);
  }
  return { entries, absentOptional, ignored };
}

/**
 * Fill every parameter of `root` (or of `opts.part`) from `src`. Collects all problems (missing,
 * unexpected, shape) and throws one CheckpointMismatchError listing them, before any tensor is
 * uploaded.
 */
export async function loadWeights(root: Module, src: TensorSource, backend: Backend, opts: LoadOptions = {}): Promise<LoadReport> {
  const { entries, absentOptional, ignored } = checkWeights(root, src, opts);
  const mine = opts.part ? new Set(opts.part.parameters()) : null;
  const plan = mine ? entries.filter(({ p }) => mine.has(p)) : entries;
  let bytes = 0;
  const take = (p: Param, loaded: Tensor) => {
    let t = loaded;
    if (opts.castTo && t.dtype !== opts.castTo && t.dtype !== 'i32') {
      t = t.backend.cast(loaded, opts.castTo);
      loaded.dispose();
    }
    bytes += numel(p.shape) * bytesPerElement(t.dtype);
    p.set(t);
  };
  // the plan backend keeps no values: a plan never reads a checkpoint's bytes
  const plain = backend.name === 'plan';
  const direct: StreamItem[] = [];
  const order = new Map<StreamItem, { file: string; at: number; i: number }>();
  for (const { p, ck } of plan) {
    const info = src.info(ck);
    const dtype = RAW_LAYOUT[info.dtype];
    if (plain || !src.readInto || !dtype || !HOST_LE || !canStream(backend)) {
      const { dtype: d, raw } = plain ? await shapeOnlySource(src).read(ck) : await src.read(ck);
      take(p, fromRaw(backend, raw, p.shape, d));
      continue;
    }
    const length = numel(p.shape);
    const item: StreamItem = { name: ck, dtype, shape: p.shape, length, bytes: length * bytesPerElement(dtype), done: (t) => take(p, t) };
    order.set(item, { file: info.file ?? '', at: info.byteOffset ?? 0, i: direct.length });
    direct.push(item);
  }
  if (direct.length) {
    // front to back through each file: sequential reads, whatever order the module declares
    direct.sort((a, b) => {
      const x = order.get(a)!;
      const y = order.get(b)!;
      return x.file < y.file ? -1 : x.file > y.file ? 1 : x.at - y.at || x.i - y.i;
    });
    const readInto = src.readInto!.bind(src);
    await streamTensors(backend, direct, (name, into, off) => readInto(name, into, off), { aheadBytes: opts.readAheadBytes });
  }
  return { loaded: plan.length, bytes, absentOptional, ignored };
}
