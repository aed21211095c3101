// The WebGPU backend: storage on the GPU, every primitive a WGSL kernel (kernels/*.wgsl.ts). Each
// kernel family's dispatch sizing lives in ops/<family>.ts next to nothing else.
import type {
  AreaParams, AttentionParams, Backend, BackendLimits, DeviceInfo, KernelTiming, BilateralParams, BinaryOp, CannyParams, ConvParams, MatmulParams, NormParams, ReduceOp, ResampleParams, RopeParams, TwoTapParams,
  MemoryStats, StridedParams, UnaryOp,
} from '../backend.js';
import { type DType, type RawArray, type ReadArray, bytesPerElement, widen } from '../dtype.js';
import { Tensor, numel } from '../tensor.js';
import { GpuContext, GpuStorage } from './context.js';
import { DEFAULT_MATMUL_TUNING, type MatmulTuning, type TuningTable, checkTuningAdapter, parseTuning } from '../tuning.js';
import type { WebGpuOptions } from '../select.js';
import { type AcquiredDevice, acquireDevice } from './device.js';
import * as elementwise from './ops/elementwise.js';
import * as movement from './ops/movement.js';
import * as reduction from './ops/reduce.js';
import * as linalg from './ops/matmul.js';
import * as convolution from './ops/conv.js';
import * as normalization from './ops/norm.js';
import * as attn from './ops/attention.js';
import * as finite from './ops/finite.js';
import { canny } from './ops/canny.js';
import * as image from './ops/image.js';

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu' as const;
  readonly ctx: GpuContext;
  readonly limits: BackendLimits;
  readonly software: boolean;
  readonly details: Readonly<Record<string, string | number | boolean>>;
  readonly deviceInfo: DeviceInfo;
  /** the matmul's storage-path choices per shape class (ops/matmul.ts); the defaults until setTuning */
  matmulTuning: Readonly<MatmulTuning> = DEFAULT_MATMUL_TUNING;
  readonly defaultMatmulTuning: Readonly<MatmulTuning> = DEFAULT_MATMUL_TUNING;
  private tuningTable: TuningTable | null = null;

  constructor(acq: AcquiredDevice) {
    this.ctx = new GpuContext(acq);
    this.deviceInfo = acq.info;
    const l = acq.device.limits;
    this.limits = { maxBufferBytes: l.maxBufferSize, maxBindingBytes: Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize) };
    this.software = acq.software;
    this.details = {
      'feature level': acq.featureLevel,
      'shader-f16': acq.hasF16,
      subgroups: acq.hasSubgroups,
      'timestamp queries': acq.hasTimestamps,
      'max storage binding (MiB)': Math.round(l.maxStorageBufferBindingSize / 2 ** 20),
      'max buffer (MiB)': Math.round(l.maxBufferSize / 2 ** 20),
      'workgroup memory (bytes)': l.maxComputeWorkgroupStorageSize,
      'invocations per workgroup': l.maxComputeInvocationsPerWorkgroup,
    };
  }

  memory(): MemoryStats {
    return { liveBytes: this.ctx.liveBytes, peakBytes: this.ctx.peakLiveBytes };
  }

  resetPeakMemory(): void {
    this.ctx.peakLiveBytes = this.ctx.liveBytes;
  }

  get adapter(): string {
    return this.ctx.description;
  }

  get tuning(): TuningTable | null {
    return this.tuningTable;
  }

  /**
   * Use a tuning table (src/engine/tuning.ts, made by autotune) from now on; null restores the
   * defaults. A malformed table, or one made on another adapter, is refused with a UserError (nothing
   * changes). `tuning` is the checked copy.
   */
  setTuning(table: TuningTable | null): void {
    // checked as a file would be: a table built by hand gets the same one-line refusals
    const t = table && parseTuning(table, 'tuning');
    if (t) checkTuningAdapter(t, this.adapter);
    this.tuningTable = t;
    this.matmulTuning = t ? Object.freeze({ ...t.matmul }) : DEFAULT_MATMUL_TUNING;
  }

  // ---------------------------------------------------------------- memory

  alloc(dtype: DType, length: number): GpuStorage {
    const bytes = bytesPerElement(dtype) * length;
    const { buffer } = this.ctx.createBuffer(bytes);
    return new GpuStorage(this, dtype, length, buffer, bytes);
  }

  /** A fresh output tensor (contents undefined until a kernel writes it). */
  empty(dtype: DType, shape: readonly number[]): Tensor {
    return new Tensor(this.alloc(dtype, numel(shape)), shape);
  }

  upload(dtype: DType, raw: RawArray): GpuStorage {
    const bytes = bytesPerElement(dtype) * raw.length;
    const { buffer, fresh } = this.ctx.createBuffer(bytes);
    if (bytes) this.ctx.write(buffer, fresh, raw);
    return new GpuStorage(this, dtype, raw.length, buffer, bytes);
  }

  writeBytes(storage: GpuStorage, byteOffset: number, bytes: Uint8Array): void {
    if (byteOffset % 4 || bytes.byteLength % 4 || byteOffset + bytes.byteLength > storage.buffer.size) {
      throw new RangeError(`webgpu.writeBytes: ${bytes.byteLength} bytes at ${byteOffset} into a buffer of ${storage.buffer.size} (offset and length must be multiples of 4)`);
    }
    this.ctx.writeAt(storage.buffer, byteOffset, bytes);
  }

  free(storage: GpuStorage): void {
    this.ctx.release(storage.buffer);
  }

  async readRaw(t: Tensor): Promise<RawArray> {
    const s = t.storage as GpuStorage;
    if (s.length === 0) return t.dtype === 'f32' ? new Float32Array(0) : t.dtype === 'i32' ? new Int32Array(0) : new Uint16Array(0);
    const buf = await this.ctx.readBuffer(s.buffer, s.byteLength);
    if (t.dtype === 'f32') return new Float32Array(buf);
    if (t.dtype === 'i32') return new Int32Array(buf);
    return new Uint16Array(buf);
  }

  async read(t: Tensor): Promise<ReadArray> {
    const raw = await this.readRaw(t);
    return t.dtype === 'i32' ? (raw as Int32Array) : widen(t.dtype, raw);
  }

  sync(): Promise<void> {
    return this.ctx.sync();
  }

  timeKernels<T>(body: () => T): Promise<KernelTiming<T>> {
    return this.ctx.timeKernels(body);
  }

  // ---------------------------------------------------------------- ops

  cast(x: Tensor, dtype: DType): Tensor {
    return elementwise.cast(this, x, dtype);
  }
  unary(op: UnaryOp, x: Tensor, alpha: number, beta: number): Tensor {
    return elementwise.unary(this, op, x, alpha, beta);
  }
  binary(op: BinaryOp, a: Tensor, b: Tensor, outShape: number[]): Tensor {
    return elementwise.binary(this, op, a, b, outShape);
  }
  where(cond: Tensor, a: Tensor, b: Tensor, outShape: number[]): Tensor {
    return elementwise.where(this, cond, a, b, outShape);
  }
  reduce(op: ReduceOp, x: Tensor, outer: number, n: number, inner: number): Tensor {
    return reduction.reduce(this, op, x, outer, n, inner);
  }
  argmax(x: Tensor, outer: number, n: number, inner: number): Tensor {
    return reduction.argmax(this, x, outer, n, inner);
  }
  softmax(x: Tensor, outer: number, n: number, inner: number): Tensor {
    return reduction.softmax(this, x, outer, n, inner);
  }
  cumsum(x: Tensor, outer: number, n: number, inner: number): Tensor {
    return reduction.cumsum(this, x, outer, n, inner);
  }
  topk(x: Tensor, rows: number, n: number, k: number): [Tensor, Tensor] {
    return reduction.topk(this, x, rows, n, k);
  }
  countNonFinite(x: Tensor): Tensor {
    return finite.countNonFinite(this, x);
  }
  canny(x: Tensor, p: CannyParams): Promise<Tensor> {
    return canny(this, x, p);
  }
  strided(x: Tensor, p: StridedParams, outShape: number[]): Tensor {
    return movement.strided(this, x, p, outShape);
  }
  setSlice(dst: Tensor, src: Tensor, starts: number[]): void {
    movement.setSlice(this, dst, src, starts);
  }
  gather(table: Tensor, ids: Tensor, V: number, D: number): Tensor {
    return movement.gather(this, table, ids, V, D);
  }
  matmul(a: Tensor, b: Tensor, bias: Tensor | null, p: MatmulParams): Tensor {
    return linalg.matmul(this, a, b, bias, p);
  }
  conv(x: Tensor, w: Tensor, bias: Tensor | null, p: ConvParams): Tensor {
    return convolution.conv(this, x, w, bias, p);
  }
  norm(x: Tensor, weight: Tensor | null, bias: Tensor | null, p: NormParams): Tensor {
    return normalization.norm(this, x, weight, bias, p);
  }
  attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, p: AttentionParams): Tensor {
    return attn.attention(this, q, k, v, mask, p);
  }
  rope(x: Tensor, cos: Tensor, sin: Tensor, p: RopeParams): Tensor {
    return attn.rope(this, x, cos, sin, p);
  }

  bilateral(x: Tensor, p: BilateralParams): Tensor {
    return image.bilateral(this, x, p);
  }
  resample(x: Tensor, p: ResampleParams): Tensor {
    return image.resample(this, x, p);
  }
  areaResize(x: Tensor, p: AreaParams): Tensor {
    return image.areaResize(this, x, p);
  }
  twoTapResize(x: Tensor, p: TwoTapParams): Tensor {
    return image.twoTapResize(this, x, p);
  }


}

const shared = new Map<string, Promise<WebGpuBackend>>();

/**
 * The process-wide WebGPU backend for these options (acquired once per distinct options; every
 * caller without options shares one). Rejects with NoAdapterError when none can be had.
 */
export function webgpu(options: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const key = JSON.stringify([options.api ?? '', options.icd ?? '', options.dawnToggles?.enable ?? [], options.dawnToggles?.disable ?? []]);
  let be = shared.get(key);
  if (!be) {
    be = acquireDevice(options).then((acq) => new WebGpuBackend(acq));
    be.catch(() => shared.delete(key));
    shared.set(key, be);
  }
  return be;
}
