// The op table: one signature per op, in the normalised form every backend implements.
// Shape inference, argument checking and the mapping from user-facing ops (ops.ts) to these
// primitives happen once, in ops.ts, so backends only see already-validated, contiguous inputs.
//
// Conventions shared by every primitive:
// - every tensor is contiguous row-major; inputs may be any dtype and are read as f32
//   (f16/bf16 widened, i32 converted), except where a primitive says it wants i32 ids;
// - outputs are f32 unless stated (argmax/indices are i32, cast outputs its target dtype;
//   strided and gather keep i32 inputs i32, bit-exact, so ids survive slicing and permutes);
// - primitives never mutate their inputs, except `setSlice`, which writes into `dst`.
import type { DType, RawArray, ReadArray } from './dtype.js';
import type { TwoTapAxis } from './image.js';
import type { Tensor } from './tensor.js';
import type { TuningTable } from './tuning.js';

export type UnaryOp =
  | 'neg' | 'abs' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'recip' | 'square'
  | 'sin' | 'cos' | 'tanh' | 'sigmoid' | 'silu' | 'relu' | 'gelu' | 'gelu_tanh'
  | 'round' | 'floor' | 'ceil' | 'sign' | 'atanh'
  /** alpha * x + beta */
  | 'affine'
  /** min(max(x, alpha), beta) */
  | 'clamp'
  /** x ** alpha */
  | 'pow_scalar';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'pow';

export type ReduceOp = 'sum' | 'mean' | 'max' | 'min';

/** Per-output-dimension description of a strided gather (see `strided`). */
export interface StridedDim {
  /** output extent */
  size: number;
  /** input coordinate = floor(i / rep) * step + start */
  start: number;
  step: number;
  rep: number;
  /** extent of the input along the input dimension this output dim reads */
  inSize: number;
  /** stride (in elements) of that input dimension */
  inStride: number;
}

export type BorderMode = 'constant' | 'replicate' | 'reflect';

/**
 * What a border mode means: the input coordinate read for coordinate c of an axis of extent n,
 * or -1 for the constant border. PyTorch's 'reflect' mirrors about the edge element without
 * repeating it (-1 -> 1, n -> n-2); folding by the period 2(n-1) also covers pads longer than
 * the axis. Both backends resolve borders through this (the WGSL mirrors it per element).
 */
export function borderCoord(c: number, n: number, border: BorderMode): number {
  if (c >= 0 && c < n) return c;
  if (border === 'constant' || n === 0) return -1;
  if (border === 'replicate') return c < 0 ? 0 : n - 1;
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((c % period) + period) % period;
  return m < n ? m : period - m;
}

export interface StridedParams {
  dims: StridedDim[];
  /** what an out-of-range input coordinate reads */
  border: BorderMode;
  /** value for `constant` border */
  value: number;
}

export interface MatmulParams {
  /** a is [batch, K, M] instead of [batch, M, K] */
  transA: boolean;
  /** b is [batchB, N, K] instead of [batchB, K, N] */
  transB: boolean;
  M: number;
  N: number;
  K: number;
  /** batch count of a and of the output */
  batch: number;
  /** 1 (b shared by every batch) or `batch` */
  batchB: number;
  /** output scale applied before the bias */
  alpha: number;
}

export interface ConvParams {
  /** x is [N, Cin, D, H, W]; 1d/2d convs are lifted to 3d with unit dims by ops.ts */
  N: number;
  Cin: number;
  inSize: [number, number, number];
  Cout: number;
  kernel: [number, number, number];
  stride: [number, number, number];
  /** symmetric zero padding per spatial dim (asymmetric / replicate padding is a separate `pad`) */
  padding: [number, number, number];
  dilation: [number, number, number];
  groups: number;
  outSize: [number, number, number];
}

export interface AttentionParams {
  B: number;
  Hq: number;
  Hkv: number;
  Lq: number;
  /** capacity of k/v along the sequence axis */
  Lk: number;
  /** number of valid key positions (<= Lk): the rest of a KV cache is ignored */
  kvLen: number;
  D: number;
  Dv: number;
  scale: number;
  /** query i sees key j iff j <= i + (kvLen - Lq) */
  causal: boolean;
  /** additive mask [maskB, maskH, Lq, kvLen] with maskB in {1,B}, maskH in {1,Hq} */
  maskB: number;
  maskH: number;
}

export type RopeMode = 'half' | 'interleaved';

export interface RopeParams {
  /** x is [B, H, L, D] ('bhld') or [B, L, H, D] ('blhd') */
  layout: 'bhld' | 'blhd';
  B: number;
  H: number;
  L: number;
  D: number;
  /** rotated leading dims of D (even, <= D); the rest pass through */
  R: number;
  /** cos/sin are [tableB, L, R], tableB in {1, B} */
  tableB: number;
  mode: RopeMode;
}

export interface NormParams {
  kind: 'layer' | 'rms' | 'group' | 'l2_channels';
  /**
   * layer/rms: rows x D, normalised over D. group: [N, C, S] normalised per (n, group).
   * l2_channels: [N, C, S] divided by max(L2 norm over C, eps) at every (n, s), times weight[c]
   */
  rows: number;
  D: number;
  /** group norm only */
  N: number;
  C: number;
  S: number;
  groups: number;
  eps: number;
  /** l2_channels and group: SiLU of the result */
  silu?: boolean;
  /**
   * group only: x is [N, C, T, S / T] and each of the T frames is normalised by itself
   * (statistics per (n, group, frame)); 1 or absent: one frame
   */
  frames?: number;
  /**
   * layer only (adaLN): weight / bias hold M = size / D rows, row r of x takes row
   * floor(r / modRows) % M of them; absent or 0: one row
   */
  modRows?: number;
  /** with modRows: the weight enters as (1 + weight) */
  onePlus?: boolean;
}

/** Integer Canny thresholds, as OpenCV holds them. */
export interface CannyThresholds {
  /** gradient magnitudes at or below it are never edges */
  low: number;
  /** a kept pixel above it is strong (an edge by itself) */
  high: number;
}

/** OpenCV floors both thresholds and swaps them when given in the wrong order. */
export function cannyThresholds(tLower: number, tUpper: number): CannyThresholds {
  let low = Math.floor(tLower);
  let high = Math.floor(tUpper);
  if (low > high) [low, high] = [high, low];
  return { low, high };
}

export interface CannyParams extends CannyThresholds {
  /** x is [C, T, H, W]: T planar frames of C channels */
  C: number;
  T: number;
  H: number;
  W: number;
}

/** Storage owned by a backend; ref-counted by Tensor views (reshape shares it). */
/** The uint8 bilateral filter of OpenCV on RGB frames stored as planes (see image.ts). */
export interface BilateralParams {
  /** x is [3, T, H, W] with values 0..255 */
  T: number;
  H: number;
  W: number;
  /** support offsets and weight tables (bilateralTables) */
  dy: Int32Array;
  dx: Int32Array;
  space: Float32Array;
  color: Float32Array;
}

/** One separable resampling pass over the middle axis of [outer, inSize, inner] (see image.ts). */
export interface ResampleParams {
  outer: number;
  inSize: number;
  inner: number;
  outSize: number;
  /** output i reads size[i] inputs from start[i] with weights[i * stride + j] */
  start: Int32Array;
  size: Int32Array;
  weights: Float32Array;
  stride: number;
  /** clamp to [0, 255] and round half to even (the last pass of a uint8 resize) */
  toU8: boolean;
}

/** INTER_AREA shrinking of uint8 planes [count, sh, sw] (see image.ts AreaTables). */
export interface AreaParams {
  count: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  block: [number, number] | null;
  xFirst: Int32Array;
  xSrc: Int32Array;
  xAlpha: Float32Array;
  yFirst: Int32Array;
  ySrc: Int32Array;
  yAlpha: Float32Array;
  /** at most this many planes per kernel call (a backend also splits where a binding would overflow) */
  maxPlanes?: number;
}

/** The fixed-point two-tap resize of uint8 planes [count, sh, sw] (see image.ts TwoTapAxis). */
export interface TwoTapParams {
  count: number;
  sh: number;
  sw: number;
  x: TwoTapAxis;
  y: TwoTapAxis;
  /** as AreaParams.maxPlanes */
  maxPlanes?: number;
}

export interface Storage {
  readonly backend: Backend;
  readonly dtype: DType;
  readonly length: number;
  refs: number;
}

/** What one tensor may take on a backend. */
export interface BackendLimits {
  /** bytes one tensor's storage may hold */
  maxBufferBytes: number;
  /** bytes one kernel may bind of a tensor at once (a larger activation must be processed in parts) */
  maxBindingBytes: number;
}

/** The device's identity, features and limits as its adapter reports them (for reports and bench files). */
export interface DeviceInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** the API Dawn runs on (vulkan, metal, d3d12, opengl, ...) and WebGPU's feature level */
  api: string;
  featureLevel: string;
  /** every feature the adapter offers (the device requests shader-f16 and timestamp-query among them) */
  features: string[];
  /** the device's limits as granted */
  limits: Record<string, number>;
}

/** What Backend.timeKernels measured: body's result and the device nanoseconds of its kernels. */
export interface KernelTiming<T> {
  result: T;
  ns: number | null;
}

/** Device memory held by live tensors (pooled, free buffers not counted). */
export interface MemoryStats {
  liveBytes: number;
  /** the most liveBytes reached since the backend started or since resetPeakMemory() */
  peakBytes: number;
}

/** 'plan': shape-only, allocates every tensor but computes nothing (engine/plan/backend.ts) */
export type BackendName = 'cpu' | 'webgpu' | 'plan';

export interface Backend {
  readonly name: BackendName;
  /** human-readable description of the device the backend runs on */
  readonly adapter: string;
  readonly limits: BackendLimits;
  /** true when the work runs on the CPU: the oracle, or a software adapter (llvmpipe, SwiftShader) */
  readonly software: boolean;
  /** what else a user may want to know of the device (features, workgroup limits), for display */
  readonly details: Readonly<Record<string, string | number | boolean>>;
  /** a device backend's adapter identity, features and limits */
  readonly deviceInfo?: DeviceInfo;
  memory(): MemoryStats;
  resetPeakMemory(): void;

  // ---- memory ----
  upload(dtype: DType, raw: RawArray): Storage;
  /**
   * Storage holding `raw` itself, without upload's copy (the caller gives the array up). Offered
   * by backends whose storage is host memory; loading reads weights straight into such arrays.
   */
  adopt?(dtype: DType, raw: RawArray): Storage;
  /**
   * Write raw element bytes (little-endian) into `storage` from `byteOffset`; offset and length
   * are multiples of 4. Offered by device backends; loading fills fresh storages this way from a
   * few reused host buffers.
   */
  writeBytes?(storage: Storage, byteOffset: number, bytes: Uint8Array): void;
  alloc(dtype: DType, length: number): Storage;
  free(storage: Storage): void;
  /** read values widened to f32 (i32 stays i32); resolves after all queued work */
  read(t: Tensor): Promise<ReadArray>;
  /** read the raw stored elements (half types as 16-bit patterns) */
  readRaw(t: Tensor): Promise<RawArray>;
  /** submit queued work and wait for it (a no-op on the CPU) */
  sync(): Promise<void>;
  /**
   * Run `body` (which enqueues work) and measure the device time of the kernels it recorded with
   * timestamp queries: `ns` is the sum over its compute passes, in nanoseconds, once that work has
   * finished. `ns` is null where the device cannot measure (no 'timestamp-query'); backends
   * without a device (the CPU) do not offer it.
   */
  timeKernels?<T>(body: () => T): Promise<KernelTiming<T>>;
  /**
   * The per-adapter tuning table in use (src/engine/tuning.ts), null for the defaults; offered by
   * backends that have tunable kernels (WebGPU). setTuning refuses a table made on another adapter
   * with a UserError; null restores the defaults.
   */
  readonly tuning?: TuningTable | null;
  setTuning?(table: TuningTable | null): void;

  // ---- elementwise ----
  cast(x: Tensor, dtype: DType): Tensor;
  unary(op: UnaryOp, x: Tensor, alpha: number, beta: number): Tensor;
  /** numpy broadcasting; a and b already have out's rank (size-1 dims broadcast) */
  binary(op: BinaryOp, a: Tensor, b: Tensor, outShape: number[]): Tensor;
  /** out = cond != 0 ? a : b, broadcast like binary */
  where(cond: Tensor, a: Tensor, b: Tensor, outShape: number[]): Tensor;

  // ---- reductions over the middle axis of [outer, n, inner] ----
  reduce(op: ReduceOp, x: Tensor, outer: number, n: number, inner: number): Tensor;
  /** i32 [outer, inner]; ties go to the lowest index */
  argmax(x: Tensor, outer: number, n: number, inner: number): Tensor;
  softmax(x: Tensor, outer: number, n: number, inner: number): Tensor;
  cumsum(x: Tensor, outer: number, n: number, inner: number): Tensor;
  /**
   * Rows of [rows, n] sorted descending (stable: equal values keep index order), first k kept.
   * Returns [values f32 [rows, k], indices i32 [rows, k]].
   */
  topk(x: Tensor, rows: number, n: number, k: number): [Tensor, Tensor];

  /**
   * i32 [2]: how many elements of x are NaN and how many ±Inf, judged on the stored bits (i32
   * storage holds neither); counts saturate at 2^31 - 1.
   */
  countNonFinite(x: Tensor): Tensor;

  // ---- image processing ----
  /**
   * cv2.Canny (aperture 3, L1 gradient, no blur) on every frame of x [C, T, H, W], its values read
   * as uint8 pixels (truncated toward zero, saturated to 0..255) -> i32 [T, H, W] of 0 / 255.
   * Asynchronous: hysteresis runs to a fixed point, which a device backend detects by reading
   * back a flag.
   */
  canny(x: Tensor, p: CannyParams): Promise<Tensor>;

  // ---- data movement ----
  /** general strided gather: covers slice, permute, pad, expand, repeat-interleave, flip */
  strided(x: Tensor, p: StridedParams, outShape: number[]): Tensor;
  /** writes src into dst at `starts` (dst and src of equal rank); mutates dst */
  setSlice(dst: Tensor, src: Tensor, starts: number[]): void;
  /** rows of table [V, D] picked by i32 ids [n] -> [n, D]; ids outside [0, V) give zeros */
  gather(table: Tensor, ids: Tensor, V: number, D: number): Tensor;

  // ---- linear algebra ----
  /** out [batch, M, N] = alpha * op(a) @ op(b) + bias[N] */
  matmul(a: Tensor, b: Tensor, bias: Tensor | null, p: MatmulParams): Tensor;
  /** out [N, Cout, oD, oH, oW] */
  conv(x: Tensor, w: Tensor, bias: Tensor | null, p: ConvParams): Tensor;

  // ---- normalisation ----
  /** weight/bias per D (layer/rms) or per C (group) */
  norm(x: Tensor, weight: Tensor | null, bias: Tensor | null, p: NormParams): Tensor;

  // ---- attention ----
  /** q [B,Hq,Lq,D], k [B,Hkv,Lk,D], v [B,Hkv,Lk,Dv] -> [B,Hq,Lq,Dv] */
  attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, p: AttentionParams): Tensor;
  rope(x: Tensor, cos: Tensor, sin: Tensor, p: RopeParams): Tensor;
  // ---- image filters ----
  /** f32 [3, T, H, W] of uint8 results */
  bilateral(x: Tensor, p: BilateralParams): Tensor;
  /** f32 [outer, outSize, inner]: a fused multiply-add chain over each output's taps */
  resample(x: Tensor, p: ResampleParams): Tensor;
  /** f32 [count, dh, dw] of uint8 results */
  areaResize(x: Tensor, p: AreaParams): Tensor;
  /** f32 [count, dh, dw] of uint8 results, dh / dw the lengths of the y / x taps */
  twoTapResize(x: Tensor, p: TwoTapParams): Tensor;
}
