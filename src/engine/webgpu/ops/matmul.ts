// matmul on wgsl/matmul.wgsl: version choice per shape and adapter, dispatch sizing, and the
// texture copies the llvmpipe-oriented versions read their operands from.
//
// Why textures: on a CPU adapter (Mesa llvmpipe) every storage-buffer load runs a per-lane scalar
// loop (~25 cycles per lane and element, whatever the vector width), while a texel fetch is a real
// SIMD gather. Copying a and b into textures with copyBufferToTexture (a memcpy on llvmpipe) and
// fetching from there is ~13x cheaper per element; see the header of wgsl/matmul.wgsl.
import type { MatmulParams } from '../../backend.js';
import type { DType } from '../../dtype.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { type GpuStorage, Params, grid1d } from '../context.js';
import { type KernelFamily, prelude } from '../kernel.js';
import { loadWgsl } from '../wgsl-source.js';

export const MATMUL: KernelFamily = {
  file: 'matmul.wgsl',
  inputs: ['a', 'b', 'bias'],
  outputs: { out: 'f32' },
};

export type MatmulVersion =
  | 'auto'
  | 'v1_naive'
  | 'v2_shared'
  | 'v3_reg4'
  | 'v4_reg16'
  | 'v5_tex32x16'
  | 'v6_tex4x32'
  | 'gemv_split'
  | 'gemv_tex';

/**
 * Knobs for benchmarking and tests. `version` forces one kernel wherever it applies (a version
 * that cannot take the call, e.g. a texture version on unaligned or i32 operands, falls back to
 * the automatic choice). `software` overrides the adapter detection (undefined: detect).
 */
export const matmulConfig: { version: MatmulVersion; software: boolean | undefined } = {
  version: 'auto',
  software: undefined,
};

const WG = 64;
/** Texture copies: 4 elements per texel, TEX_W texels a row (the WGSL hard-codes 4096 = 1 << 12). */
const TEX_W = 4096;
/** Pooled operand textures kept for reuse, in bytes (beyond this they are destroyed after use). */
const TEX_POOL_BYTES = 256 * 2 ** 20;
/** Below this many multiply-adds the copies and the extra submit of the texture path do not pay. */
const TEX_MIN_WORK = 1 << 18;

interface Shape {
  a: Tensor;
  b: Tensor;
  p: MatmulParams;
}

/** Adapters that run shaders on the CPU (where storage loads are per-lane scalar loops). */
function isSoftware(be: WebGpuBackend): boolean {
  if (matmulConfig.software !== undefined) return matmulConfig.software;
  return /llvmpipe|softpipe|lavapipe|swiftshader|warp|software/i.test(be.ctx.description);
}

/** The contiguous dim of a / b is a multiple of 4, so 4-wide loads along it stay aligned. */
function aligned(p: MatmulParams): { va: boolean; vb: boolean } {
  return { va: (p.transA ? p.M : p.K) % 4 === 0, vb: (p.transB ? p.K : p.N) % 4 === 0 };
}

const TEX_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];

function texRows(t: Tensor): number {
  return Math.ceil(t.size / 4 / TEX_W);
}

/** Texture heights are rounded up to quarter-octave classes so the pool serves varying sizes. */
function rowClass(rows: number, maxRows: number): number {
  if (rows <= 8) return rows;
  const step = 2 ** Math.floor(Math.log2(rows)) / 4;
  return Math.min(maxRows, Math.ceil(rows / step) * step);
}

/** The texture versions need K % 4 == 0, N % 4 == 0, aligned contiguous dims, float operands, a fit. */
function texEligible(be: WebGpuBackend, { a, b, p }: Shape): boolean {
  const { va, vb } = aligned(p);
  const maxRows = be.ctx.device.limits.maxTextureDimension2D;
  return p.K % 4 === 0 && p.N % 4 === 0 && va && vb && TEX_DTYPES.includes(a.dtype) && TEX_DTYPES.includes(b.dtype) &&
    maxRows >= TEX_W && texRows(a) <= maxRows && texRows(b) <= maxRows;
}

function applies(be: WebGpuBackend, v: MatmulVersion, s: Shape): boolean {
  switch (v) {
    case 'v5_tex32x16':
    case 'v6_tex4x32':
    case 'gemv_tex':
      return texEligible(be, s);
    case 'v4_reg16':
      return s.p.N % 4 === 0; // 4-wide stores
    default:
      return true;
  }
}

/** The automatic choice, per adapter kind and shape. */
function autoVersion(be: WebGpuBackend, s: Shape): MatmulVersion {
  const { M, N, K } = s.p;
  const work = M * N * K * s.p.batch;
  if (K === 0 || work < 4096) return 'v1_naive';
  if (isSoftware(be)) {
    if (work >= TEX_MIN_WORK && texEligible(be, s)) {
      if (M === 1) return 'gemv_tex';
      if (M <= 16) return 'v6_tex4x32';
      return 'v5_tex32x16';
    }
    // storage-only fallback: biggest tile that the shape can fill
    return M >= 16 && N >= 16 && N % 4 === 0 ? 'v4_reg16' : 'v3_reg4';
  }
  // GPUs: coalesced split-K reduction for decode-shaped calls, shared-memory tiles otherwise
  if (M <= 4 && s.p.transB && !s.p.transA && K >= 256) return 'gemv_split';
  return M * N >= 64 * 64 ? 'v2_shared' : 'v3_reg4';
}

export function pickVersion(be: WebGpuBackend, a: Tensor, b: Tensor, p: MatmulParams): MatmulVersion {
  const s = { a, b, p };
  const v = matmulConfig.version;
  if (v !== 'auto' && applies(be, v, s) && p.K > 0) return v;
  return autoVersion(be, s);
}

export function matmul(be: WebGpuBackend, a: Tensor, b: Tensor, bias: Tensor | null, p: MatmulParams): Tensor {
  const out = be.empty('f32', [p.batch, p.M, p.N]);
  if (p.batch * p.M * p.N === 0) return out;
  const version = pickVersion(be, a, b, p);
  const { va, vb } = aligned(p);
  // only the specialisations an entry reads, so that pipelines are not compiled twice for nothing
  const layout = { TA: +p.transA, TB: +p.transB, HAS_BIAS: +(bias !== null) };
  const overrides: Record<string, number> = { ...layout, VA: +va, VB: +vb, KT: +(p.K % 4 !== 0), VO: +(p.N % 4 === 0) };
  const bStride = p.batchB === 1 ? 0 : p.K * p.N;
  const params = (tilesM: number, tilesN: number) =>
    new Params().u32(p.M, p.N, p.K, p.batch, tilesM, tilesN, bStride).f32(p.alpha);
  const tiles = (tm: number, tn: number) => [Math.ceil(p.M / tm), Math.ceil(p.N / tn)] as const;

  if (version === 'v5_tex32x16' || version === 'v6_tex4x32' || version === 'gemv_tex') {
    const [tm, tn] = version === 'v5_tex32x16' ? tiles(32, 16) : version === 'v6_tex4x32' ? tiles(4, 32) : [p.M, Math.ceil(p.N / 32)];
    const threads = p.batch * tm * tn;
    texDispatch(be, version === 'v5_tex32x16' ? 'mm_v5_tex32x16' : version === 'v6_tex4x32' ? 'mm_v6_tex4x32' : 'gemv_tex',
      a, b, bias, out, params(tm, tn), { ...layout, VA: +va, VO: 1, WG, AH: halfCode(a.dtype), BH: halfCode(b.dtype) },
      grid1d(Math.ceil(threads / WG)));
    return out;
  }

  // storage-buffer versions, through the shared dispatcher
  const vec4: string[] = [];
  if (va && a.dtype === 'f32' && a.size % 4 === 0 && a.size > 0) vec4.push('a');
  if (vb && b.dtype === 'f32' && b.size % 4 === 0 && b.size > 0) vec4.push('b');
  // an entry that statically reads bias must have it bound: without one, a stands in (never read)
  const inputs = { a, b, bias: bias ?? a };
  let entry: string;
  let tm: number;
  let tn: number;
  let workgroups: [number, number, number];
  switch (version) {
    case 'v1_naive':
      entry = 'mm_v1_naive';
      [tm, tn] = [p.M, p.N];
      workgroups = grid1d(Math.ceil((p.batch * p.M * p.N) / WG));
      break;
    case 'v2_shared':
      entry = 'mm_v2_shared';
      [tm, tn] = tiles(64, 64);
      workgroups = grid1d(p.batch * tm * tn);
      break;
    case 'gemv_split':
      entry = 'gemv_split';
      [tm, tn] = [p.M, Math.ceil(p.N / 4)];
      workgroups = grid1d(p.batch * tm * tn);
      break;
    case 'v4_reg16':
      entry = 'mm_v4_reg16';
      [tm, tn] = tiles(16, 16);
      workgroups = grid1d(Math.ceil((p.batch * tm * tn) / WG));
      break;
    default:
      entry = 'mm_v3_reg4';
      [tm, tn] = tiles(4, 4);
      workgroups = grid1d(Math.ceil((p.batch * tm * tn) / WG));
      break;
  }
  be.ctx.dispatch({
    family: MATMUL, entry, inputs, outputs: { out }, params: params(tm, tn),
    overrides: entry === 'mm_v1_naive' ? { ...layout, WG } : entry === 'mm_v2_shared' ? layout
      : entry === 'gemv_split' ? overrides : { ...overrides, WG },
    vec4, workgroups,
  });
  return out;
}

// ------------------------------------------------------------------ texture path

function halfCode(dtype: DType): number {
  return dtype === 'bf16' ? 1 : dtype === 'f16' ? 2 : 0;
}

interface TexState {
  pipelines: Map<string, GPUComputePipeline>;
  modules: Map<string, GPUShaderModule>;
  uniforms: Map<string, GPUBuffer>;
  /** free textures by `${format}:${rows}`; reuse is safe because every use is a queue-ordered submit */
  pool: Map<string, GPUTexture[]>;
  pooledBytes: number;
}

const texStates = new WeakMap<WebGpuBackend, TexState>();

function texState(be: WebGpuBackend): TexState {
  let s = texStates.get(be);
  if (!s) {
    s = { pipelines: new Map(), modules: new Map(), uniforms: new Map(), pool: new Map(), pooledBytes: 0 };
    texStates.set(be, s);
  }
  return s;
}

/** Give the pooled textures back to the driver. */
export function trimMatmulTextures(be: WebGpuBackend): void {
  const s = texStates.get(be);
  if (!s) return;
  be.ctx.flush();
  for (const list of s.pool.values()) for (const t of list) t.destroy();
  s.pool.clear();
  s.pooledBytes = 0;
}

function texPipeline(be: WebGpuBackend, entry: string, biasDtype: DType, overrides: Record<string, number>): GPUComputePipeline {
  const s = texState(be);
  const ovr = Object.entries(overrides).sort().map(([k, v]) => `${k}=${v}`).join(',');
  const key = `${entry}|${biasDtype}|${ovr}`;
  let pipe = s.pipelines.get(key);
  if (pipe) return pipe;
  let mod = s.modules.get(biasDtype);
  if (!mod) {
    const code = prelude(MATMUL, { dtypes: { bias: biasDtype }, outTypes: { out: 'f32' }, vec4: [], f16: be.ctx.hasF16 }) + loadWgsl(MATMUL.file);
    mod = be.ctx.device.createShaderModule({ code, label: `${MATMUL.file} (textures)` });
    s.modules.set(biasDtype, mod);
  }
  pipe = be.ctx.device.createComputePipeline({
    layout: 'auto',
    compute: { module: mod, entryPoint: entry, constants: overrides },
    label: `${MATMUL.file}:${entry}`,
  });
  s.pipelines.set(key, pipe);
  return pipe;
}

function texUniform(be: WebGpuBackend, params: Params): GPUBuffer {
  const s = texState(be);
  const bytes = new Uint8Array(params.bytes());
  let key = '';
  for (let i = 0; i < bytes.length; i++) key += String.fromCharCode(bytes[i]);
  let buf = s.uniforms.get(key);
  if (buf) {
    s.uniforms.delete(key);
    s.uniforms.set(key, buf);
    return buf;
  }
  buf = be.ctx.device.createBuffer({ size: bytes.byteLength, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
  new Uint8Array(buf.getMappedRange()).set(bytes);
  buf.unmap();
  s.uniforms.set(key, buf);
  if (s.uniforms.size > 1024) {
    // the oldest may still be bound by submitted work: Dawn defers the destruction until it is done
    const oldest = s.uniforms.keys().next().value!;
    s.uniforms.get(oldest)!.destroy();
    s.uniforms.delete(oldest);
  }
  return buf;
}

/** A texture holding t's raw bits (4 elements per texel), taken from the pool. */
function takeTexture(be: WebGpuBackend, t: Tensor): { tex: GPUTexture; key: string; bytes: number } {
  const s = texState(be);
  const format: GPUTextureFormat = t.dtype === 'f32' ? 'rgba32uint' : 'rg32uint';
  const rows = rowClass(texRows(t), be.ctx.device.limits.maxTextureDimension2D);
  const key = `${format}:${rows}`;
  const bytes = TEX_W * rows * (t.dtype === 'f32' ? 16 : 8);
  const pooled = s.pool.get(key)?.pop();
  if (pooled) {
    s.pooledBytes -= bytes;
    return { tex: pooled, key, bytes };
  }
  const tex = be.ctx.device.createTexture({
    size: [TEX_W, rows],
    format,
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    label: 'matmul operand',
  });
  return { tex, key, bytes };
}

/** Back to the pool (at most 2 per size, TEX_POOL_BYTES in all), else destroyed once its work is done. */
function releaseTexture(be: WebGpuBackend, t: { tex: GPUTexture; key: string; bytes: number }): void {
  const s = texState(be);
  let list = s.pool.get(t.key);
  if (!list) s.pool.set(t.key, (list = []));
  if (list.length < 2 && s.pooledBytes + t.bytes <= TEX_POOL_BYTES) {
    list.push(t.tex);
    s.pooledBytes += t.bytes;
  } else {
    t.tex.destroy();
  }
}

function copyToTexture(enc: GPUCommandEncoder, t: Tensor, tex: GPUTexture): void {
  const buffer = (t.storage as GpuStorage).buffer;
  const texelBytes = t.dtype === 'f32' ? 16 : 8;
  const texels = t.size / 4;
  const full = Math.floor(texels / TEX_W);
  const rem = texels - full * TEX_W;
  const bytesPerRow = TEX_W * texelBytes;
  if (full) enc.copyBufferToTexture({ buffer, bytesPerRow }, { texture: tex }, [TEX_W, full]);
  if (rem) enc.copyBufferToTexture({ buffer, offset: full * bytesPerRow, bytesPerRow }, { texture: tex, origin: [0, full] }, [rem, 1]);
}

/**
 * Copy a and b into textures and run `entry` on them. Recorded in a command buffer of its own,
 * submitted after everything the context has queued (so the copies see a and b written).
 */
function texDispatch(
  be: WebGpuBackend, entry: string, a: Tensor, b: Tensor, bias: Tensor | null, out: Tensor,
  params: Params, overrides: Record<string, number>, workgroups: [number, number, number],
): void {
  for (const t of [a, b, out, ...(bias ? [bias] : [])]) t.assertAlive();
  const ctx = be.ctx;
  const biasT = bias ?? a; // never read without HAS_BIAS; any read-only buffer satisfies the layout
  const pipe = texPipeline(be, entry, biasT.dtype, overrides);
  const ta = takeTexture(be, a);
  const tb = takeTexture(be, b);
  const storageEntry = (binding: number, t: Tensor): GPUBindGroupEntry => {
    const st = t.storage as GpuStorage;
    return { binding, resource: { buffer: st.buffer, size: Math.ceil(Math.max(4, st.byteLength) / 4) * 4 } };
  };
  const bindGroup = ctx.device.createBindGroup({
    layout: pipe.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: texUniform(be, params) } },
      storageEntry(3, biasT),
      storageEntry(4, out),
      { binding: 5, resource: ta.tex.createView() },
      { binding: 6, resource: tb.tex.createView() },
    ],
  });
  ctx.flush();
  const enc = ctx.device.createCommandEncoder();
  copyToTexture(enc, a, ta.tex);
  copyToTexture(enc, b, tb.tex);
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
  pass.end();
  ctx.device.queue.submit([enc.finish()]);
  ctx.dispatches++;
  releaseTexture(be, ta);
  releaseTexture(be, tb);
}
