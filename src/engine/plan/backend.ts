// The plan backend: runs a model's real code path with every tensor allocated but nothing
// computed, so the device memory a workflow needs at real sizes is known in seconds. A storage
// is only its dtype and length; every primitive returns storage of exactly the dtype and length
// the CPU backend returns for the same call, and counts its bytes at the same moments (output
// creation, free), so peakBytes here equals peakBytes on the CPU for the same sequence of ops.
//
// What it cannot do: values. Reads resolve to zeros, so a model whose control flow depends on a
// value read back mid-run (a sampler reading a scalar, a generator stopping at an end token)
// takes the path that zeros imply, not the real one.
import type {
  AreaParams, AttentionParams, Backend, BackendLimits, BilateralParams, BinaryOp, CannyParams, ConvParams, MatmulParams, MemoryStats, NormParams, ReduceOp,
  ResampleParams, RopeParams, Storage, StridedParams, TwoTapParams, UnaryOp,
} from '../backend.js';
import { type DType, type RawArray, type ReadArray, bytesPerElement, rawArrayFor } from '../dtype.js';
import { UserError } from '../errors.js';
import { Tensor, numel } from '../tensor.js';

/**
 * Reads above this many bytes are refused: the values are zeros anyway, and a plan run must not
 * allocate on the host what it only means to measure.
 */
export const PLAN_READ_LIMIT_BYTES = 256 * 2 ** 20;

/** The CPU backend's limits (typed arrays of up to 2^32 - 1 elements), the default. */
const CPU_LIMITS: BackendLimits = { maxBufferBytes: 4 * (2 ** 32 - 1), maxBindingBytes: 4 * (2 ** 32 - 1) };

export interface PlanBackendOptions {
  /** emulate a device's limits (e.g. a GPU's maxBindingBytes), so models split work as they would there */
  limits?: Partial<BackendLimits>;
  /** the device the plan stands for, for display */
  adapter?: string;
}

/** What a plan refuses: a tensor one buffer of the emulated device cannot hold, or a read over PLAN_READ_LIMIT_BYTES. */
export class PlanLimitError extends UserError {}

const GiB = 2 ** 30;
const sizeStr = (bytes: number) =>
  bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${bytes} bytes`;

function rawMatches(dtype: DType, raw: RawArray): boolean {
  if (dtype === 'f32') return raw instanceof Float32Array;
  if (dtype === 'i32') return raw instanceof Int32Array;
  return raw instanceof Uint16Array;
}

export class PlanStorage implements Storage {
  refs = 0;
  private live = true;

  constructor(readonly backend: PlanBackend, readonly dtype: DType, readonly length: number) {
    backend.track(this.bytes);
  }

  get bytes(): number {
    return this.length * bytesPerElement(this.dtype);
  }

  get isLive(): boolean {
    return this.live;
  }

  release(): void {
    if (this.live) this.backend.track(-this.bytes);
    this.live = false;
  }
}

export class PlanBackend implements Backend {
  readonly name = 'plan' as const;
  readonly adapter: string;
  readonly limits: BackendLimits;
  readonly software = true;
  readonly details: Readonly<Record<string, string | number | boolean>>;
  private liveBytes = 0;
  private peakBytes = 0;
  private largestBytes = 0;
  private overBindingCount = 0;

  constructor(opts: PlanBackendOptions = {}) {
    const given = Object.entries(opts.limits ?? {}).filter(([, v]) => v !== undefined);
    this.limits = { ...CPU_LIMITS, ...Object.fromEntries(given) };
    this.adapter = opts.adapter ?? 'plan (shape-only, cpu limits)';
    this.details = { values: 'none: shapes and bytes only, reads give zeros', 'read limit (MiB)': PLAN_READ_LIMIT_BYTES / 2 ** 20 };
  }

  memory(): MemoryStats {
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes };
  }

  resetPeakMemory(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Bytes of the largest storage created so far (to compare with a device's binding limit). */
  largestTensorBytes(): number {
    return this.largestBytes;
  }

  /**
   * Storages created so far that are larger than one buffer binding of the emulated device (a
   * kernel cannot bind such a tensor whole; on WebGPU it is a problem unless an op splits it).
   */
  overBinding(): { count: number; largestBytes: number } {
    return { count: this.overBindingCount, largestBytes: this.overBindingCount ? this.largestBytes : 0 };
  }

  /** @internal storage bookkeeping */
  track(bytes: number): void {
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    if (bytes > this.largestBytes) this.largestBytes = bytes;
    if (bytes > this.limits.maxBindingBytes) this.overBindingCount++;
  }

  private storage(dtype: DType, length: number): PlanStorage {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`plan: invalid storage length ${length}`);
    const bytes = length * bytesPerElement(dtype);
    if (bytes > this.limits.maxBufferBytes) {
      throw new PlanLimitError(`plan: a ${dtype} tensor of ${length} elements (${sizeStr(bytes)}) is more than the ${sizeStr(this.limits.maxBufferBytes)} one buffer of ${this.adapter} holds`);
    }
    return new PlanStorage(this, dtype, length);
  }

  private out(dtype: DType, shape: readonly number[]): Tensor {
    return new Tensor(this.storage(dtype, numel(shape)), shape);
  }

  /** The same checks the CPU makes on every input: it lives, and on this backend. */
  private check(...ts: (Tensor | null)[]): void {
    for (const t of ts) {
      if (!t) continue;
      const s = t.storage;
      if (!(s instanceof PlanStorage) || s.backend !== this) throw new Error(`plan: ${t.toString()} does not live on this backend`);
      if (!s.isLive) throw new Error(`plan: ${t.dtype} storage of ${s.length} elements used after free`);
    }
  }

  // ---- memory ----

  upload(dtype: DType, raw: RawArray): Storage {
    if (!rawMatches(dtype, raw)) throw new TypeError(`plan.upload: a ${raw.constructor.name} cannot hold ${dtype} elements`);
    return this.storage(dtype, raw.length);
  }

  alloc(dtype: DType, length: number): Storage {
    return this.storage(dtype, length);
  }

  free(storage: Storage): void {
    if (storage instanceof PlanStorage && storage.backend === this) storage.release();
  }

  private zeros(t: Tensor, dtype: DType): RawArray {
    this.check(t);
    const bytes = t.size * bytesPerElement(dtype);
    if (bytes > PLAN_READ_LIMIT_BYTES) {
      throw new PlanLimitError(`plan: reading back ${t.toString()} (${sizeStr(bytes)}) is refused: the plan backend holds no values, and reads above ${sizeStr(PLAN_READ_LIMIT_BYTES)} would allocate what it only measures`);
    }
    return rawArrayFor(dtype, t.size);
  }

  /** Zeros of the right type and length: the plan backend holds no values. */
  async read(t: Tensor): Promise<ReadArray> {
    return this.zeros(t, t.dtype === 'i32' ? 'i32' : 'f32') as ReadArray;
  }

  /** Zeros of the right type and length: the plan backend holds no values. */
  async readRaw(t: Tensor): Promise<RawArray> {
    return this.zeros(t, t.dtype);
  }

  async sync(): Promise<void> {}

  // ---- elementwise ----

  cast(x: Tensor, dtype: DType): Tensor {
    this.check(x);
    return this.out(dtype, x.shape);
  }

  unary(_op: UnaryOp, x: Tensor, _alpha: number, _beta: number): Tensor {
    this.check(x);
    return this.out('f32', x.shape);
  }

  binary(_op: BinaryOp, a: Tensor, b: Tensor, outShape: number[]): Tensor {
    this.check(a, b);
    return this.out('f32', outShape);
  }

  where(cond: Tensor, a: Tensor, b: Tensor, outShape: number[]): Tensor {
    this.check(cond, a, b);
    return this.out('f32', outShape);
  }

  // ---- reductions ----

  reduce(_op: ReduceOp, x: Tensor, outer: number, _n: number, inner: number): Tensor {
    this.check(x);
    return this.out('f32', [outer, inner]);
  }

  argmax(x: Tensor, outer: number, _n: number, inner: number): Tensor {
    this.check(x);
    return this.out('i32', [outer, inner]);
  }

  softmax(x: Tensor, outer: number, n: number, inner: number): Tensor {
    this.check(x);
    return this.out('f32', [outer, n, inner]);
  }

  cumsum(x: Tensor, outer: number, n: number, inner: number): Tensor {
    this.check(x);
    return this.out('f32', [outer, n, inner]);
  }

  topk(x: Tensor, rows: number, _n: number, k: number): [Tensor, Tensor] {
    this.check(x);
    return [this.out('f32', [rows, k]), this.out('i32', [rows, k])];
  }

  countNonFinite(x: Tensor): Tensor {
    this.check(x);
    return this.out('i32', [2]);
  }

  // ---- image processing ----

  async canny(x: Tensor, p: CannyParams): Promise<Tensor> {
    this.check(x);
    return this.out('i32', [p.T, p.H, p.W]);
  }

  // ---- data movement ----

  strided(x: Tensor, _p: StridedParams, outShape: number[]): Tensor {
    this.check(x);
    return this.out(x.dtype === 'i32' ? 'i32' : 'f32', outShape);
  }

  setSlice(dst: Tensor, src: Tensor, _starts: number[]): void {
    this.check(dst, src);
    if (dst.dtype !== 'f32' && dst.dtype !== 'i32') throw new Error(`plan.setSlice: dst must be f32 or i32, got ${dst.dtype}`);
  }

  gather(table: Tensor, ids: Tensor, _V: number, D: number): Tensor {
    this.check(table, ids);
    return this.out(table.dtype === 'i32' ? 'i32' : 'f32', [ids.size, D]);
  }

  // ---- linear algebra ----

  matmul(a: Tensor, b: Tensor, bias: Tensor | null, p: MatmulParams): Tensor {
    this.check(a, b, bias);
    return this.out('f32', [p.batch, p.M, p.N]);
  }

  conv(x: Tensor, w: Tensor, bias: Tensor | null, p: ConvParams): Tensor {
    this.check(x, w, bias);
    return this.out('f32', [p.N, p.Cout, ...p.outSize]);
  }

  // ---- normalisation ----

  norm(x: Tensor, weight: Tensor | null, bias: Tensor | null, _p: NormParams): Tensor {
    this.check(x, weight, bias);
    return this.out('f32', x.shape);
  }

  // ---- attention ----

  attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, p: AttentionParams): Tensor {
    this.check(q, k, v, mask);
    return this.out('f32', [p.B, p.Hq, p.Lq, p.Dv]);
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, _p: RopeParams): Tensor {
    this.check(x, cos, sin);
    return this.out('f32', x.shape);
  }

  bilateral(x: Tensor, _p: BilateralParams): Tensor {
    this.check(x);
    return this.out('f32', x.shape);
  }
  resample(x: Tensor, p: ResampleParams): Tensor {
    this.check(x);
    return this.out('f32', [p.outer, p.outSize, p.inner]);
  }
  areaResize(x: Tensor, p: AreaParams): Tensor {
    this.check(x);
    return this.out('f32', [p.count, p.dh, p.dw]);
  }
  twoTapResize(x: Tensor, p: TwoTapParams): Tensor {
    this.check(x);
    return this.out('f32', [p.count, p.y.i0.length, p.x.i0.length]);
  }


}
