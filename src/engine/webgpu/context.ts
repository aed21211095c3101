// The GPU side of the engine: buffer pool, pipeline and uniform caches, and a command recorder
// that keeps one compute pass open across many dispatches and submits in batches. Nothing here
// reads back except `readBuffer`, which the backend calls only from Tensor.read().
import type { DType } from '../dtype.js';
import { bytesPerElement } from '../dtype.js';
import type { Backend, Storage } from '../backend.js';
import type { Tensor } from '../tensor.js';
import type { AcquiredDevice } from './device.js';
import { type KernelFamily, type OutType, bindingIndex, prelude } from './kernel.js';
import { TimestampRecorder } from './timestamps.js';

export class GpuStorage implements Storage {
  refs = 0;
  constructor(
    readonly backend: Backend,
    readonly dtype: DType,
    readonly length: number,
    readonly buffer: GPUBuffer,
    /** bytes actually holding data (buffer.size may be larger: pooled size class) */
    readonly byteLength: number,
  ) {}
}

/** Builder for a uniform block laid out as WGSL does (scalars 4-byte, vec4 16-byte aligned). */
export class Params {
  private words: number[] = [];
  private types: ('u' | 'i' | 'f')[] = [];
  u32(...vs: number[]): this {
    for (const v of vs) { this.words.push(v >>> 0); this.types.push('u'); }
    return this;
  }
  i32(...vs: number[]): this {
    for (const v of vs) { this.words.push(v | 0); this.types.push('i'); }
    return this;
  }
  f32(...vs: number[]): this {
    for (const v of vs) { this.words.push(v); this.types.push('f'); }
    return this;
  }
  /** pad to a 16-byte boundary (before a vec4 or an array of vec4) */
  align16(): this {
    while (this.words.length % 4) this.u32(0);
    return this;
  }
  /** an array<vec4<u32>, n> holding `vs` (zero-filled to 4n) */
  vec4u(vs: readonly number[], n: number): this {
    this.align16();
    for (let i = 0; i < 4 * n; i++) this.u32(vs[i] ?? 0);
    return this;
  }
  vec4i(vs: readonly number[], n: number): this {
    this.align16();
    for (let i = 0; i < 4 * n; i++) this.i32(vs[i] ?? 0);
    return this;
  }
  bytes(): ArrayBuffer {
    this.align16();
    const buf = new ArrayBuffer(Math.max(16, this.words.length * 4));
    const dv = new DataView(buf);
    this.words.forEach((w, i) => {
      const t = this.types[i];
      if (t === 'f') dv.setFloat32(i * 4, w, true);
      else if (t === 'i') dv.setInt32(i * 4, w, true);
      else dv.setUint32(i * 4, w, true);
    });
    return buf;
  }
}

export interface DispatchArgs {
  family: KernelFamily;
  entry: string;
  /** the inputs/outputs this entry point uses, by family name */
  inputs: Record<string, Tensor>;
  outputs: Record<string, Tensor>;
  params: Params;
  overrides?: Record<string, number>;
  /** f32 inputs to bind as array<vec4<f32>> (caller guarantees length % 4 == 0) */
  vec4?: readonly string[];
  /** inputs to declare as if they held another dtype (bf16: the raw 32-bit words of any storage) */
  bindAs?: Readonly<Record<string, DType>>;
  workgroups: readonly [number, number?, number?];
}

/**
 * Widest grid row before a dispatch folds into y (the WebGPU per-dimension limit). Every kernel
 * decodes a fold; tests lower this to exercise 2D grids on small problems.
 */
export const gridLimit = { x: 65535 };

/** Split a 1D workgroup count over x and y when it exceeds the per-dimension limit. */
export function grid1d(groups: number): [number, number, number] {
  if (groups <= gridLimit.x) return [Math.max(1, groups), 1, 1];
  const y = Math.ceil(groups / gridLimit.x);
  return [Math.ceil(groups / y), y, 1];
}

function sizeClass(bytes: number): number {
  // Quarter-octave classes bound the waste to 25% while letting buffers be reused across shapes.
  const b = Math.max(256, Math.ceil(bytes / 16) * 16);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

/** bind groups kept by the dispatch cache (each holds a few small objects in the implementation) */
const BIND_CACHE = 4096;

const OUT_TYPE: Record<DType, OutType> = { f32: 'f32', i32: 'i32', f16: 'u32', bf16: 'u32' };

export class GpuContext {
  readonly device: GPUDevice;
  readonly description: string;
  readonly hasF16: boolean;
  /** the device was given 'subgroups': kernels may take their subgroup variants (ops decide, see subgroupConfig) */
  readonly hasSubgroups: boolean;
  /** the device was given 'timestamp-query' (kernel timing) */
  readonly hasTimestamps: boolean;
  /** open while timeKernels measures: every pass begun gets timestamp writes */
  private timing: TimestampRecorder | null = null;
  private pool = new Map<number, GPUBuffer[]>();
  private pipelines = new Map<string, GPUComputePipeline>();
  private modules = new Map<string, GPUShaderModule>();
  private uniforms = new Map<string, GPUBuffer>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private readonly layouts = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
  private readonly bindGroups = new Map<string, { bg: GPUBindGroup; ids: number[] }>();
  /** textures to destroy once the recorded work that uses them is submitted */
  private readonly doomed: { destroy(): void }[] = [];
  /** buffer id -> the bindGroups keys that hold it */
  private readonly bindKeysOf = new Map<number, Set<string>>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  private error: string | null = null;
  /** bytes of live tensors / bytes parked in the pool */
  liveBytes = 0;
  pooledBytes = 0;
  peakLiveBytes = 0;
  dispatches = 0;
  /** bind groups created by dispatch (the rest came from its cache) */
  bindGroupsCreated = 0;
  /** dispatches between submits: enough to amortise the submit, few enough to keep the GPU fed */
  batchSize = 128;

  constructor(acq: AcquiredDevice) {
    this.device = acq.device;
    this.description = acq.description;
    this.hasF16 = acq.hasF16;
    this.hasSubgroups = acq.hasSubgroups;
    this.hasTimestamps = acq.hasTimestamps;
    this.device.addEventListener('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
      if (!this.error) this.error = msg;
    });
  }

  // ---------------------------------------------------------------- memory

  createBuffer(bytes: number): { buffer: GPUBuffer; fresh: boolean } {
    const cls = sizeClass(bytes);
    const free = this.pool.get(cls);
    this.liveBytes += cls;
    this.peakLiveBytes = Math.max(this.peakLiveBytes, this.liveBytes);
    if (free?.length) {
      this.pooledBytes -= cls;
      return { buffer: free.pop()!, fresh: false };
    }
    const buffer = this.device.createBuffer({
      size: cls,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return { buffer, fresh: true };
  }

  release(buffer: GPUBuffer): void {
    const cls = buffer.size;
    this.liveBytes -= cls;
    this.pooledBytes += cls;
    const list = this.pool.get(cls);
    if (list) list.push(buffer);
    else this.pool.set(cls, [buffer]);
  }

  /** Give pooled buffers back to the driver. */
  trim(): void {
    this.flush();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.bindGroups.clear();
    this.bindKeysOf.clear();
    this.pooledBytes = 0;
  }

  write(buffer: GPUBuffer, fresh: boolean, data: ArrayBufferView): void {
    // A pooled buffer may still be read by recorded-but-unsubmitted work; writeBuffer runs at
    // queue level ahead of that work, so submit it first.
    if (!fresh && this.pending) this.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const aligned = bytes.byteLength & 3 ? padTo4(bytes) : bytes;
    this.device.queue.writeBuffer(buffer, 0, aligned.buffer, aligned.byteOffset, aligned.byteLength);
  }

  /** Write word-aligned bytes at `offset` of a buffer that queued work may be reading (it is submitted first). */
  writeAt(buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
    if (this.pending) this.flush();
    this.device.queue.writeBuffer(buffer, offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // ---------------------------------------------------------------- pipelines

  /**
   * The pipeline of one entry point for these input dtypes / output types (one shader module per
   * family and binding types, one pipeline per entry and overrides). Public for the matmul texture
   * path, which binds textures besides the family's buffers.
   */
  pipeline(
    family: KernelFamily, entry: string, dtypes: Record<string, DType>, outTypes: Record<string, OutType>,
    vec4In: readonly string[] = [], overrides?: Record<string, number>,
  ): GPUComputePipeline {
    const vec4 = [...vec4In].sort();
    const dkey = family.inputs.map((n) => dtypes[n] ?? '-').join(',');
    const okey = Object.keys(family.outputs).map((n) => outTypes[n] ?? '-').join(',');
    const ovr = overrides ? Object.entries(overrides).sort().map(([k, v]) => `${k}=${v}`).join(',') : '';
    const modKey = `${family.name}|${dkey}|${okey}|${vec4.join(',')}`;
    const key = `${modKey}|${entry}|${ovr}`;
    let p = this.pipelines.get(key);
    if (p) return p;
    let mod = this.modules.get(modKey);
    if (!mod) {
      const code = prelude(family, { dtypes, outTypes, vec4, f16: this.hasF16 }) + family.code;
      mod = this.device.createShaderModule({ code, label: family.name });
      this.modules.set(modKey, mod);
    }
    p = this.device.createComputePipeline({
      layout: 'auto',
      compute: { module: mod, entryPoint: entry, constants: overrides },
      label: `${family.name}:${entry}`,
    });
    this.pipelines.set(key, p);
    return p;
  }

  /**
   * Bind group 0's layout of a pipeline, asked of the pipeline once: every getBindGroupLayout call
   * crosses into the implementation and returns a new wrapper (a measurable part of a dispatch's
   * recording cost in Dawn's Node binding).
   */
  layout(pipeline: GPUComputePipeline): GPUBindGroupLayout {
    let l = this.layouts.get(pipeline);
    if (!l) {
      l = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, l);
    }
    return l;
  }

  /**
   * A bind group of buffers for `pipeline`, cached by the identity of its layout and buffers (and
   * binding sizes). Creating one costs ~40-100 us in Dawn's Node binding, more than recording the
   * dispatch; repeated work (sampler steps, decode steps, chunks, bench repetitions) meets the same
   * buffers again because the pool hands them out in the same order. Entries go when a buffer they
   * hold is destroyed (trim, uniform eviction), and the least recently used past BIND_CACHE.
   */
  bindGroup(pipeline: GPUComputePipeline, entries: readonly BufferEntry[]): GPUBindGroup {
    const layout = this.layout(pipeline);
    const ids = entries.map((e) => this.objectId(e.resource.buffer));
    let key = `${this.objectId(layout)}`;
    entries.forEach((e, i) => {
      key += `|${e.binding}:${ids[i]}:${e.resource.size ?? -1}`;
    });
    const hit = this.bindGroups.get(key);
    if (hit) {
      this.bindGroups.delete(key);
      this.bindGroups.set(key, hit);
      return hit.bg;
    }
    const bg = this.device.createBindGroup({ layout, entries: entries as GPUBindGroupEntry[] });
    this.bindGroupsCreated++;
    this.bindGroups.set(key, { bg, ids });
    for (const id of ids) {
      const keys = this.bindKeysOf.get(id);
      if (keys) keys.add(key);
      else this.bindKeysOf.set(id, new Set([key]));
    }
    if (this.bindGroups.size > BIND_CACHE) this.dropBindGroup(this.bindGroups.keys().next().value!);
    return bg;
  }

  private dropBindGroup(key: string): void {
    const e = this.bindGroups.get(key);
    if (!e) return;
    this.bindGroups.delete(key);
    for (const id of e.ids) {
      const keys = this.bindKeysOf.get(id);
      keys?.delete(key);
      if (keys?.size === 0) this.bindKeysOf.delete(id);
    }
  }

  private objectId(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  /** Drop the cached bind groups holding `buffer` (before it is destroyed). */
  private forgetBindGroups(buffer: GPUBuffer): void {
    const id = this.ids.get(buffer);
    if (id === undefined) return;
    for (const k of [...(this.bindKeysOf.get(id) ?? [])]) this.dropBindGroup(k);
  }

  /** A uniform buffer holding `params` (cached by content: blocks are immutable once created). */
  uniform(params: Params): GPUBuffer {
    const bytes = new Uint8Array(params.bytes());
    let key = '';
    for (let i = 0; i < bytes.length; i++) key += String.fromCharCode(bytes[i]);
    let buf = this.uniforms.get(key);
    if (buf) {
      // refresh the LRU position
      this.uniforms.delete(key);
      this.uniforms.set(key, buf);
      return buf;
    }
    // Uniform blocks are immutable once created (contents fixed at creation), so a cached one can
    // be bound by any number of queued dispatches.
    buf = this.device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    this.uniforms.set(key, buf);
    if (this.uniforms.size > 8192) {
      const oldest = this.uniforms.keys().next().value!;
      const old = this.uniforms.get(oldest)!;
      this.uniforms.delete(oldest);
      // It may still be bound by recorded work: destroyed once that work is submitted (never a
      // flush here: GpuContext.encode callbacks ask for uniforms mid-recording).
      this.forgetBindGroups(old);
      this.destroyAfterSubmit(old);
    }
    return buf;
  }

  // ---------------------------------------------------------------- recording

  dispatch(args: DispatchArgs): void {
    const dtypes: Record<string, DType> = {};
    const outTypes: Record<string, OutType> = {};
    for (const [n, t] of Object.entries(args.inputs)) dtypes[n] = args.bindAs?.[n] ?? t.dtype;
    for (const [n, t] of Object.entries(args.outputs)) outTypes[n] = OUT_TYPE[t.dtype];
    const pipeline = this.pipeline(args.family, args.entry, dtypes, outTypes, args.vec4, args.overrides);
    const entries: BufferEntry[] = [{ binding: 0, resource: { buffer: this.uniform(args.params) } }];
    for (const [n, t] of [...Object.entries(args.inputs), ...Object.entries(args.outputs)]) {
      entries.push(bufferBinding(bindingIndex(args.family, n), t));
    }
    const bindGroup = this.bindGroup(pipeline, entries);
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.beginPass(this.encoder);
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = args.workgroups;
    this.pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    if (++this.pending >= this.batchSize) this.flush();
  }

  /**
   * Record a copy of `size` bytes (offsets and size multiples of 4) after the work recorded so
   * far: copies have no binding limit, so an op can move parts of a tensor larger than a binding.
   */
  copyBytes(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    if (++this.pending >= this.batchSize) this.flush();
  }

  /** A compute pass on `enc`, measured when timeKernels is open (every pass of the engine begins here). */
  beginPass(enc: GPUCommandEncoder): GPUComputePassEncoder {
    return enc.beginComputePass(this.timing ? { timestampWrites: this.timing.nextWrites() } : undefined);
  }

  /**
   * Run `body` (which records work) with every compute pass it opens measured; the sum of their
   * durations in nanoseconds once the work is done, or null without 'timestamp-query'. Work queued
   * before is submitted first, so it is not counted.
   */
  async timeKernels<T>(body: () => T): Promise<{ result: T; ns: number | null }> {
    if (!this.hasTimestamps) return { result: body(), ns: null };
    if (this.timing) throw new Error('timeKernels: a measurement is already open');
    this.flush();
    const rec = new TimestampRecorder(this.device);
    this.timing = rec;
    let result: T;
    try {
      result = body();
    } finally {
      this.flush();
      this.timing = null;
    }
    const ns = await rec.read();
    this.throwIfError();
    return { result, ns };
  }

  flush(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
    }
    this.pending = 0;
    // destroying waits for the submitted work that still uses them
    for (const o of this.doomed.splice(0)) o.destroy();
  }

  /**
   * Record work that needs the command encoder itself (copies into textures, passes of its own)
   * after everything recorded so far, in the same command buffer: the texture-fed kernels use it so
   * that each call costs no submit of its own (two per call before: ~0.5 ms on llvmpipe). What `fn`
   * binds must stay alive until the next flush: free textures through destroyAfterSubmit.
   */
  encode(fn: (enc: GPUCommandEncoder) => void): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    fn(this.encoder);
    if (++this.pending >= this.batchSize) this.flush();
  }

  /** Destroy `o` once the work recorded so far is submitted (at once when nothing is pending). */
  destroyAfterSubmit(o: { destroy(): void }): void {
    if (this.encoder) this.doomed.push(o);
    else o.destroy();
  }

  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfError();
  }

  throwIfError(): void {
    if (this.error) {
      const e = this.error;
      this.error = null;
      throw new Error(`WebGPU error: ${e}`);
    }
  }

  async readBuffer(buffer: GPUBuffer, byteLength: number): Promise<ArrayBuffer> {
    const size = roundUp4(Math.max(4, byteLength));
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.flush();
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    staging.destroy();
    this.throwIfError();
    return out;
  }

  elementBytes(dtype: DType, length: number): number {
    return bytesPerElement(dtype) * length;
  }
}

/** Bind group entry for a live tensor's storage (its bytes, rounded up to whole words). */
/** A bind group entry holding (part of) a buffer. */
export interface BufferEntry {
  binding: number;
  resource: { buffer: GPUBuffer; size?: number };
}

export function bufferBinding(binding: number, t: Tensor): BufferEntry {
  t.assertAlive();
  const s = t.storage as GpuStorage;
  return { binding, resource: { buffer: s.buffer, size: roundUp4(Math.max(4, s.byteLength)) } };
}

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(roundUp4(bytes.byteLength));
  out.set(bytes);
  return out;
}
