// The CPU backend: plain TypeScript loops over typed arrays, float32 storage and float64
// accumulation. It is the reference every WebGPU kernel is tested against, so it favours
// obviously-correct code over speed. The op implementations live in the sibling files and work
// on value arrays; this file owns storage and turns tensors into arrays and back.
import type {
  AreaParams, AttentionParams, Backend, BackendLimits, BilateralParams, BinaryOp, CannyParams, ConvParams, MatmulParams, NormParams, ReduceOp, ResampleParams, RopeParams, TwoTapParams,
  MemoryStats, Storage, StridedParams, UnaryOp,
} from '../backend.js';
import { type DType, type RawArray, type ReadArray, narrow, rawArrayFor, widen } from '../dtype.js';
import { Tensor } from '../tensor.js';
import { attention, rope } from './attention.js';
import { binary, unary, where } from './elementwise.js';
import { conv, matmul, matmulBf16B } from './linalg.js';
import { cannyVideo } from './canny.js';
import { countNonFinite } from './finite.js';
import { areaPlanes, bilateralPlanes, resampleAxis, twoTapPlanes } from '../image.js';
import { gather, setSlice, strided } from './movement.js';
import { norm } from './norm.js';
import { argmax, cumsum, reduce, softmax, topk } from './reduce.js';

function rawMatches(dtype: DType, raw: RawArray): boolean {
  if (dtype === 'f32') return raw instanceof Float32Array;
  if (dtype === 'i32') return raw instanceof Int32Array;
  return raw instanceof Uint16Array;
}

export class CpuStorage implements Storage {
  readonly length: number;
  refs = 0;
  private raw: RawArray | null;

  constructor(readonly backend: CpuBackend, readonly dtype: DType, raw: RawArray) {
    this.raw = raw;
    this.length = raw.length;
    backend.track(raw.byteLength);
  }

  get data(): RawArray {
    if (!this.raw) throw new Error(`cpu: ${this.dtype} storage of ${this.length} elements used after free`);
    return this.raw;
  }

  release(): void {
    if (this.raw) this.backend.track(-this.raw.byteLength);
    this.raw = null;
  }
}

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly adapter = 'cpu (TypeScript reference)';
  /** typed arrays are the only limit: 2^32 - 1 elements in V8 */
  readonly limits: BackendLimits = { maxBufferBytes: 4 * (2 ** 32 - 1), maxBindingBytes: 4 * (2 ** 32 - 1) };
  readonly software = true;
  readonly details = { accumulation: 'float64', storage: 'float32 (bf16 / f16 kept as 16-bit patterns)' };
  private liveBytes = 0;
  private peakBytes = 0;

  memory(): MemoryStats {
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes };
  }

  resetPeakMemory(): void {
    this.peakBytes = this.liveBytes;
  }

  /** @internal storage bookkeeping */
  track(bytes: number): void {
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
  }

  private storageOf(t: Tensor): CpuStorage {
    const s = t.storage;
    if (!(s instanceof CpuStorage) || s.backend !== this) {
      throw new Error(`cpu: ${t.toString()} does not live on this backend`);
    }
    return s;
  }

  /** Values as f32; for f32 tensors this is the storage itself, which ops must not write. */
  private values(t: Tensor): Float32Array {
    return widen(t.dtype, this.storageOf(t).data);
  }

  private valuesOrNull(t: Tensor | null): Float32Array | null {
    return t ? this.values(t) : null;
  }

  private wrap(dtype: DType, raw: RawArray, shape: readonly number[]): Tensor {
    return new Tensor(new CpuStorage(this, dtype, raw), shape);
  }

  // ---- memory ----

  upload(dtype: DType, raw: RawArray): Storage {
    if (!rawMatches(dtype, raw)) throw new TypeError(`cpu.upload: a ${raw.constructor.name} cannot hold ${dtype} elements`);
    // copied, so that later writes to the caller's array cannot reach the tensor (as on a GPU)
    return new CpuStorage(this, dtype, raw.slice());
  }

  adopt(dtype: DType, raw: RawArray): Storage {
    if (!rawMatches(dtype, raw)) throw new TypeError(`cpu.adopt: a ${raw.constructor.name} cannot hold ${dtype} elements`);
    return new CpuStorage(this, dtype, raw);
  }

  alloc(dtype: DType, length: number): Storage {
    return new CpuStorage(this, dtype, rawArrayFor(dtype, length));
  }

  free(storage: Storage): void {
    if (storage instanceof CpuStorage) storage.release();
  }

  async read(t: Tensor): Promise<ReadArray> {
    const raw = this.storageOf(t).data;
    if (t.dtype === 'i32') return (raw as Int32Array).slice();
    // widen returns the storage itself for f32, so copy that case
    return t.dtype === 'f32' ? (raw as Float32Array).slice() : widen(t.dtype, raw);
  }

  async readRaw(t: Tensor): Promise<RawArray> {
    return this.storageOf(t).data.slice();
  }

  async sync(): Promise<void> {}

  // ---- elementwise ----

  cast(x: Tensor, dtype: DType): Tensor {
    const raw = this.storageOf(x).data;
    if (dtype === x.dtype) return this.wrap(dtype, raw.slice(), x.shape);
    // i32 -> i32 is handled above, so the i32 target only ever truncates floats toward zero
    return this.wrap(dtype, narrow(dtype, widen(x.dtype, raw)), x.shape);
  }

  unary(op: UnaryOp, x: Tensor, alpha: number, beta: number): Tensor {
    return this.wrap('f32', unary(op, this.values(x), alpha, beta), x.shape);
  }

  binary(op: BinaryOp, a: Tensor, b: Tensor, outShape: number[]): Tensor {
    const out = binary(op, this.values(a), a.shape, this.values(b), b.shape, outShape);
    return this.wrap('f32', out, outShape);
  }

  where(cond: Tensor, a: Tensor, b: Tensor, outShape: number[]): Tensor {
    const out = where(this.values(cond), cond.shape, this.values(a), a.shape, this.values(b), b.shape, outShape);
    return this.wrap('f32', out, outShape);
  }

  // ---- reductions ----

  reduce(op: ReduceOp, x: Tensor, outer: number, n: number, inner: number): Tensor {
    return this.wrap('f32', reduce(op, this.values(x), outer, n, inner), [outer, inner]);
  }

  argmax(x: Tensor, outer: number, n: number, inner: number): Tensor {
    return this.wrap('i32', argmax(this.values(x), outer, n, inner), [outer, inner]);
  }

  softmax(x: Tensor, outer: number, n: number, inner: number): Tensor {
    return this.wrap('f32', softmax(this.values(x), outer, n, inner), [outer, n, inner]);
  }

  cumsum(x: Tensor, outer: number, n: number, inner: number): Tensor {
    return this.wrap('f32', cumsum(this.values(x), outer, n, inner), [outer, n, inner]);
  }

  topk(x: Tensor, rows: number, n: number, k: number): [Tensor, Tensor] {
    const [values, indices] = topk(this.values(x), rows, n, k);
    return [this.wrap('f32', values, [rows, k]), this.wrap('i32', indices, [rows, k])];
  }

  countNonFinite(x: Tensor): Tensor {
    return this.wrap('i32', countNonFinite(x.dtype, this.storageOf(x).data), [2]);
  }

  // ---- image processing ----

  async canny(x: Tensor, p: CannyParams): Promise<Tensor> {
    return this.wrap('i32', cannyVideo(this.values(x), p.C, p.T, p.H, p.W, p.low, p.high), [p.T, p.H, p.W]);
  }

  // ---- data movement ----

  strided(x: Tensor, p: StridedParams, outShape: number[]): Tensor {
    if (x.dtype === 'i32') return this.wrap('i32', strided(this.storageOf(x).data as Int32Array, p, outShape), outShape);
    return this.wrap('f32', strided(this.values(x), p, outShape), outShape);
  }

  setSlice(dst: Tensor, src: Tensor, starts: number[]): void {
    const dstStorage = this.storageOf(dst);
    if (dst.dtype !== 'f32' && dst.dtype !== 'i32') throw new Error(`cpu.setSlice: dst must be f32 or i32, got ${dst.dtype}`);
    // i32 -> i32 copies the integers as they are (ids above 2^24 survive); anything else reads as f32
    let values: Float32Array | Int32Array = src.dtype === 'i32' && dst.dtype === 'i32' ? (this.storageOf(src).data as Int32Array) : this.values(src);
    // writing a tensor into (a view of) its own storage must read the values before any write
    if (this.storageOf(src) === dstStorage) values = values.slice();
    setSlice(dstStorage.data as Float32Array | Int32Array, dst.shape, values, src.shape, starts);
  }

  gather(table: Tensor, ids: Tensor, V: number, D: number): Tensor {
    const idValues = ids.dtype === 'i32' ? (this.storageOf(ids).data as Int32Array) : this.values(ids).map(Math.trunc);
    if (table.dtype === 'i32') return this.wrap('i32', gather(this.storageOf(table).data as Int32Array, idValues, V, D), [idValues.length, D]);
    return this.wrap('f32', gather(this.values(table), idValues, V, D), [idValues.length, D]);
  }

  // ---- linear algebra ----

  matmul(a: Tensor, b: Tensor, bias: Tensor | null, p: MatmulParams): Tensor {
    const out = b.dtype === 'bf16' && p.transB && !p.transA
      ? matmulBf16B(this.values(a), this.storageOf(b).data as Uint16Array, this.valuesOrNull(bias), p)
      : matmul(this.values(a), this.values(b), this.valuesOrNull(bias), p);
    return this.wrap('f32', out, [p.batch, p.M, p.N]);
  }

  conv(x: Tensor, w: Tensor, bias: Tensor | null, p: ConvParams): Tensor {
    const out = conv(this.values(x), this.values(w), this.valuesOrNull(bias), p);
    return this.wrap('f32', out, [p.N, p.Cout, ...p.outSize]);
  }

  // ---- normalisation ----

  norm(x: Tensor, weight: Tensor | null, bias: Tensor | null, p: NormParams): Tensor {
    const out = norm(this.values(x), this.valuesOrNull(weight), this.valuesOrNull(bias), p);
    return this.wrap('f32', out, x.shape);
  }

  // ---- attention ----

  attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, p: AttentionParams): Tensor {
    const out = attention(this.values(q), this.values(k), this.values(v), this.valuesOrNull(mask), p);
    return this.wrap('f32', out, [p.B, p.Hq, p.Lq, p.Dv]);
  }

  rope(x: Tensor, cos: Tensor, sin: Tensor, p: RopeParams): Tensor {
    return this.wrap('f32', rope(this.values(x), this.values(cos), this.values(sin), p), x.shape);
  }

  bilateral(x: Tensor, p: BilateralParams): Tensor {
    return this.wrap('f32', bilateralPlanes(this.values(x), p.T, p.H, p.W, { radius: 0, ...p }), x.shape);
  }
  resample(x: Tensor, p: ResampleParams): Tensor {
    return this.wrap('f32', resampleAxis(this.values(x), p.outer, p.inSize, p.inner, p, p.toU8), [p.outer, p.outSize, p.inner]);
  }
  areaResize(x: Tensor, p: AreaParams): Tensor {
    return this.wrap('f32', areaPlanes(this.values(x), p.count, p.sh, p.sw, { dh: p.dh, dw: p.dw, block: p.block, x: { first: p.xFirst, src: p.xSrc, alpha: p.xAlpha }, y: { first: p.yFirst, src: p.ySrc, alpha: p.yAlpha } }), [p.count, p.dh, p.dw]);
  }
  twoTapResize(x: Tensor, p: TwoTapParams): Tensor {
    return this.wrap('f32', twoTapPlanes(this.values(x), p.count, p.sh, p.sw, p.x, p.y), [p.count, p.y.i0.length, p.x.i0.length]);
  }


}

export const cpu = new CpuBackend();
