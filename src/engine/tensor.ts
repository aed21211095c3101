// Tensor: a shape and a dtype over backend storage. Always contiguous; reshape shares storage.
// Lifetime: tensors created inside `scope(fn)` are freed when fn returns, except those it
// returns or `keep()`s. Weights are created outside any scope and live until disposed.
import type { Backend, Storage } from './backend.js';
import type { DType, RawArray, ReadArray } from './dtype.js';
import { UserError } from './errors.js';

export class ShapeError extends UserError {
  override name = 'ShapeError';
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

type ScopeFrame = Set<Tensor>;
const scopes: ScopeFrame[] = [];

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly storage: Storage;
  private disposed = false;

  constructor(storage: Storage, shape: readonly number[]) {
    const n = numel(shape);
    if (n !== storage.length) {
      throw new ShapeError(`tensor shape ${shapeStr(shape)}: holds ${n} elements, the storage ${storage.length}`);
    }
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`shape ${shapeStr(shape)}: dimension ${d} is not a whole number >= 0`);
    }
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = storage.dtype;
    storage.refs++;
    if (scopes.length) scopes[scopes.length - 1].add(this);
  }

  get backend(): Backend {
    return this.storage.backend;
  }
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return this.storage.length;
  }
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Values widened to f32 (i32 tensors read as Int32Array). */
  async read(): Promise<ReadArray> {
    this.assertAlive();
    return this.backend.read(this);
  }
  async readRaw(): Promise<RawArray> {
    this.assertAlive();
    return this.backend.readRaw(this);
  }
  async toArray(): Promise<number[]> {
    return Array.from(await this.read());
  }

  /** A view with another shape over the same storage. */
  reshape(shape: readonly number[]): Tensor {
    this.assertAlive();
    const resolved = resolveShape(shape, this.size);
    return new Tensor(this.storage, resolved);
  }

  /** Exempt from the enclosing scope (the caller now owns it). */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i].delete(this)) break;
    if (--this.storage.refs === 0) this.backend.free(this.storage);
  }

  assertAlive(): void {
    if (this.disposed) throw new Error(`tensor ${shapeStr(this.shape)} ${this.dtype} used after dispose`);
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}, ${this.backend.name})`;
  }
}

/** Replace a single -1 by the size that makes the element count match. */
export function resolveShape(shape: readonly number[], n: number): number[] {
  const out = [...shape];
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const rest = numel(out.filter((_, i) => i !== neg));
    if (rest === 0 || n % rest !== 0) throw new ShapeError(`reshape to ${shapeStr(shape)}: does not fit ${n} elements`);
    out[neg] = n / rest;
  }
  if (numel(out) !== n) throw new ShapeError(`reshape to ${shapeStr(shape)}: does not fit ${n} elements`);
  return out;
}

function collect(v: unknown, into: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v == null) return;
  if (v instanceof Tensor) into.add(v);
  else if (Array.isArray(v)) for (const x of v) collect(x, into, depth + 1);
  else if (v instanceof Map) for (const x of v.values()) collect(x, into, depth + 1);
  else if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v as Record<string, unknown>)) collect(x, into, depth + 1);
  }
}

function enter(): ScopeFrame {
  const frame: ScopeFrame = new Set();
  scopes.push(frame);
  return frame;
}

/** Close a frame (an async one need not be the innermost): free what it created and did not return. */
function leave<T>(frame: ScopeFrame, result: T, failed: boolean): T {
  scopes.splice(scopes.lastIndexOf(frame), 1);
  const keep = new Set<Tensor>();
  if (!failed) collect(result, keep);
  for (const t of frame) {
    if (keep.has(t)) {
      if (scopes.length) scopes[scopes.length - 1].add(t);
    } else t.dispose();
  }
  return result;
}

/**
 * Run fn; free every tensor it created except those reachable from its result (tensors,
 * arrays, plain objects and Maps of them) and those `keep()`-ed. Returned tensors move to the
 * enclosing scope.
 */
export function scope<T>(fn: () => T): T {
  const frame = enter();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    leave(frame, undefined, true);
    throw e;
  }
  return leave(frame, result, false);
}

/** Async variant of scope: awaits fn before freeing. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const frame = enter();
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    leave(frame, undefined, true);
    throw e;
  }
  return leave(frame, result, false);
}
