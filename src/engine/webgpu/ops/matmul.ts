// matmul on kernels/matmul.wgsl.ts: version choice per shape and adapter, dispatch sizing, and the
// texture copies the llvmpipe-oriented versions read their operands from.
//
// Why textures: on a CPU adapter (Mesa llvmpipe) every storage-buffer load runs a per-lane scalar
// loop (~25 cycles per lane and element, whatever the vector width), while a texel fetch is a real
// SIMD gather. Copying a and b into textures with copyBufferToTexture (a memcpy on llvmpipe) and
// fetching from there is ~13x cheaper per element; see the header of kernels/matmul.wgsl.ts.
import type { MatmulParams } from '../../backend.js';
import type { DType } from '../../dtype.js';
import { FLAT_VERSIONS, type MatmulChoice, matmulClass } from '../../tuning.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { type GpuStorage, Params, bufferBinding, grid1d } from '../context.js';
import { bindingIndex } from '../kernel.js';
import { MATMUL_SG } from '../kernels/matmul-sg.wgsl.js';
import { MATMUL, SHARED_BLOCKS, TEX_W, TILES, V2_T, WG } from '../kernels/matmul.wgsl.js';
import { useSubgroups } from './subgroups.js';

export type MatmulVersion =
  | 'auto'
  | 'v1_naive'
  | 'v2_shared'
  | 'v3_reg4'
  | 'v4_reg16'
  | 'v5_tex32x16'
  | 'v6_tex4x32'
  | 'v7_shared8x8'
  | 'gemv_split'
  | 'gemv_tex'
  | 'gemv_tex8';

/**
 * Knobs for benchmarking and tests. `version` forces one kernel wherever it applies (a version
 * that cannot take the call, e.g. a texture version on unaligned or i32 operands, falls back to
 * the automatic choice). `software` overrides the adapter detection (undefined: detect).
 */
export const matmulConfig: { version: MatmulVersion; wg: number | undefined; software: boolean | undefined; texRows: number | undefined } = {
  version: 'auto',
  /** invocations per workgroup of a forced v1 / v3 / v4 (undefined: 64) */
  wg: undefined,
  software: undefined,
  /** texture height limit (undefined: the device's); tests lower it to exercise the chunked path */
  texRows: undefined,
};

export function maxTexRows(be: WebGpuBackend): number {
  return Math.min(matmulConfig.texRows ?? Infinity, be.ctx.device.limits.maxTextureDimension2D);
}

/** Pooled operand textures kept for reuse, in bytes (least recently used ones go first). */
const TEX_POOL_BYTES = 512 * 2 ** 20;
/** Below this many multiply-adds the copies and the extra submit of the texture path do not pay. */
const TEX_MIN_WORK = 1 << 18;

interface Shape {
  a: Tensor;
  b: Tensor;
  p: MatmulParams;
}

/** Adapters that run shaders on the CPU (where storage loads are per-lane scalar loops). */
export function isSoftware(be: WebGpuBackend): boolean {
  if (matmulConfig.software !== undefined) return matmulConfig.software;
  return /llvmpipe|softpipe|lavapipe|swiftshader|warp|software/i.test(be.ctx.description);
}

/**
 * Mesa's software rasterisers (llvmpipe and kin), where the texture-fed conv / norm / attention
 * entries were written and measured. Chromium's SwiftShader adapter lost its device on them in the
 * page test (the GPU process went away mid-run), so it keeps the storage-buffer kernels until that
 * is understood; the texture-fed matmul runs on both.
 */
export function isMesaSoftware(be: WebGpuBackend): boolean {
  return /llvmpipe|softpipe|lavapipe/i.test(be.ctx.description);
}

/** The contiguous dim of a / b is a multiple of 4, so 4-wide loads along it stay aligned. */
function aligned(p: MatmulParams): { va: boolean; vb: boolean } {
  return { va: (p.transA ? p.M : p.K) % 4 === 0, vb: (p.transB ? p.K : p.N) % 4 === 0 };
}

const TEX_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];

function texRows(t: Tensor, perTexel = 4): number {
  return Math.ceil(t.size / perTexel / TEX_W);
}

/** Texture heights are rounded up to quarter-octave classes so the pool serves varying sizes. */
function rowClass(rows: number, maxRows: number): number {
  if (rows <= 8) return rows;
  const step = 2 ** Math.floor(Math.log2(rows)) / 4;
  return Math.min(maxRows, Math.ceil(rows / step) * step);
}

/** a is split by rows across textures when it does not fit one: rows of a are contiguous, b is shared. */
const aChunkable = (p: MatmulParams) => !p.transA && p.batchB === 1;
/** b is split by columns (its rows when stored [N, K]) when it does not fit one texture. */
const bChunkable = (p: MatmulParams) => p.transB && p.batchB === 1;

/**
 * The texture versions need K % 4 == 0, N % 4 == 0, aligned contiguous dims and float operands;
 * an operand bigger than one texture must be one that can be split into chunks.
 */
function texEligible(be: WebGpuBackend, { a, b, p }: Shape, bPerTexel = 4): boolean {
  const { va, vb } = aligned(p);
  const maxRows = maxTexRows(be);
  return p.K % 4 === 0 && p.N % 4 === 0 && va && vb && TEX_DTYPES.includes(a.dtype) && TEX_DTYPES.includes(b.dtype) &&
    be.ctx.device.limits.maxTextureDimension2D >= TEX_W && p.K * 32 <= maxRows * TEX_W * 4 &&
    (texRows(a) <= maxRows || aChunkable(p)) && (texRows(b, bPerTexel) <= maxRows || bChunkable(p));
}

/** gemv tex8: half weights stored [N, K] with K % 8 == 0, fetched 8 per texel. */
function tex8Eligible(be: WebGpuBackend, s: Shape): boolean {
  return s.p.transB && s.p.K % 8 === 0 && (s.b.dtype === 'bf16' || s.b.dtype === 'f16') && texEligible(be, s, 8);
}

function applies(be: WebGpuBackend, v: MatmulVersion, s: Shape): boolean {
  switch (v) {
    case 'gemv_tex8':
      return tex8Eligible(be, s);
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

/** A version and the workgroup size of the entries that take one as an override. */
interface Pick {
  version: MatmulVersion;
  wg: number;
}

/**
 * The automatic choice, per adapter kind and shape. On a hardware adapter the shape's class picks
 * from the backend's tuning table (src/engine/tuning.ts; its defaults are the choices made before
 * tables existed); a tuned entry the shape cannot take falls back to the class default.
 */
function autoPick(be: WebGpuBackend, s: Shape): Pick {
  const { M, N, K } = s.p;
  const work = M * N * K * s.p.batch;
  if (K === 0 || work < 4096) return { version: 'v1_naive', wg: WG };
  if (isSoftware(be)) {
    let version: MatmulVersion;
    if (work >= TEX_MIN_WORK && texEligible(be, s)) {
      version = M === 1 ? (tex8Eligible(be, s) ? 'gemv_tex8' : 'gemv_tex') : M <= 16 ? 'v6_tex4x32' : 'v5_tex32x16';
    } else {
      // storage-only fallback: biggest tile that the shape can fill
      version = M >= 16 && N >= 16 && N % 4 === 0 ? 'v4_reg16' : 'v3_reg4';
    }
    return { version, wg: WG };
  }
  const cls = matmulClass(s.p);
  const tuned = be.matmulTuning[cls];
  const c: MatmulChoice = applies(be, tuned.version, s) ? tuned : be.defaultMatmulTuning[cls];
  return { version: c.version, wg: FLAT_VERSIONS.includes(c.version) ? (c.wg ?? WG) : WG };
}

export function pickMatmul(be: WebGpuBackend, a: Tensor, b: Tensor, p: MatmulParams): Pick {
  const s = { a, b, p };
  const v = matmulConfig.version;
  if (v !== 'auto' && applies(be, v, s) && p.K > 0) return { version: v, wg: matmulConfig.wg ?? WG };
  return autoPick(be, s);
}

export function pickVersion(be: WebGpuBackend, a: Tensor, b: Tensor, p: MatmulParams): MatmulVersion {
  return pickMatmul(be, a, b, p).version;
}

export function matmul(be: WebGpuBackend, a: Tensor, b: Tensor, bias: Tensor | null, p: MatmulParams): Tensor {
  const out = be.empty('f32', [p.batch, p.M, p.N]);
  if (p.batch * p.M * p.N === 0) return out;
  const { version, wg } = pickMatmul(be, a, b, p);
  const { va, vb } = aligned(p);
  // only the specialisations an entry reads, so that pipelines are not compiled twice for nothing
  const layout = { TA: +p.transA, TB: +p.transB, HAS_BIAS: +(bias !== null) };
  const overrides: Record<string, number> = { ...layout, VA: +va, VB: +vb, KT: +(p.K % 4 !== 0), VO: +(p.N % 4 === 0) };
  const bStride = p.batchB === 1 ? 0 : p.K * p.N;
  const params = (tilesM: number, tilesN: number) =>
    new Params().u32(p.M, p.N, p.K, p.batch, tilesM, tilesN, bStride).f32(p.alpha).u32(p.N, 0, 0);
  const tiles = ([tm, tn]: readonly [number, number]) => [Math.ceil(p.M / tm), Math.ceil(p.N / tn)] as const;

  if (version === 'v5_tex32x16' || version === 'v6_tex4x32' || version === 'gemv_tex' || version === 'gemv_tex8') {
    texMatmul(be, version, a, b, bias, out, p, { ...layout, VA: +va, VO: 1, WG, AH: halfCode(a.dtype), BH: halfCode(b.dtype) });
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
      workgroups = grid1d(Math.ceil((p.batch * p.M * p.N) / wg));
      break;
    case 'v2_shared':
      entry = 'mm_v2_shared';
      [tm, tn] = tiles([V2_T, V2_T]);
      workgroups = grid1d(p.batch * tm * tn);
      break;
    case 'v7_shared8x8':
      entry = 'mm_v7_shared8x8';
      [tm, tn] = tiles([64 * SHARED_BLOCKS.mm_v7_shared8x8[0], 64 * SHARED_BLOCKS.mm_v7_shared8x8[1]]);
      workgroups = grid1d(p.batch * tm * tn);
      break;
    case 'gemv_split':
      entry = useSubgroups(be) ? 'gemv_split_sg' : 'gemv_split';
      [tm, tn] = [p.M, Math.ceil(p.N / 4)];
      workgroups = grid1d(p.batch * tm * tn);
      break;
    case 'v4_reg16':
      entry = 'mm_v4_reg16';
      [tm, tn] = tiles(TILES.mm_v4_reg16);
      workgroups = grid1d(Math.ceil((p.batch * tm * tn) / wg));
      break;
    default:
      entry = 'mm_v3_reg4';
      [tm, tn] = tiles(TILES.mm_v3_reg4);
      workgroups = grid1d(Math.ceil((p.batch * tm * tn) / wg));
      break;
  }
  be.ctx.dispatch({
    family: entry === 'gemv_split_sg' ? MATMUL_SG : MATMUL, entry, inputs, outputs: { out }, params: params(tm, tn),
    overrides: entry === 'mm_v1_naive' ? { ...layout, WG: wg } : entry === 'mm_v2_shared' || entry === 'mm_v7_shared8x8' ? layout
      : entry.startsWith('gemv_split') ? overrides : { ...overrides, WG: wg },
    vec4, workgroups,
  });
  return out;
}

// ------------------------------------------------------------------ texture path

function halfCode(dtype: DType): number {
  return dtype === 'bf16' ? 1 : dtype === 'f16' ? 2 : 0;
}

interface TexState {
  /** free textures by `${format}:${rows}`; reuse is safe because every use is a queue-ordered submit */
  pool: Map<string, GPUTexture[]>;
  /** the pooled textures, least recently released first */
  lru: Map<GPUTexture, { key: string; bytes: number }>;
  pooledBytes: number;
}

const texStates = new WeakMap<WebGpuBackend, TexState>();

function texState(be: WebGpuBackend): TexState {
  let s = texStates.get(be);
  if (!s) {
    s = { pool: new Map(), lru: new Map(), pooledBytes: 0 };
    texStates.set(be, s);
  }
  return s;
}

/**
 * A texture for `elems` elements of t's raw bits, `perTexel` elements per texel (4: rgba32uint for
 * f32, rg32uint for halves; 8: rgba32uint for halves), taken from the pool.
 */
export function takeTexture(be: WebGpuBackend, t: Tensor, perTexel: number, elems: number): { tex: GPUTexture; key: string; bytes: number } {
  const s = texState(be);
  const texelBytes = (t.dtype === 'f32' ? 4 : 2) * perTexel;
  const format: GPUTextureFormat = texelBytes === 16 ? 'rgba32uint' : 'rg32uint';
  const rows = rowClass(Math.max(1, Math.ceil(elems / perTexel / TEX_W)), maxTexRows(be));
  const key = `${format}:${rows}`;
  const bytes = TEX_W * rows * texelBytes;
  const pooled = s.pool.get(key)?.pop();
  if (pooled) {
    s.pooledBytes -= bytes;
    s.lru.delete(pooled);
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

/**
 * Back to the pool (at most 2 per size), evicting the least recently used beyond TEX_POOL_BYTES.
 * A texture that recorded work still reads is destroyed once that work is submitted.
 */
export function releaseTexture(be: WebGpuBackend, t: { tex: GPUTexture; key: string; bytes: number }): void {
  const s = texState(be);
  let list = s.pool.get(t.key);
  if (!list) {
    list = [];
    s.pool.set(t.key, list);
  }
  if (list.length >= 2 || t.bytes > TEX_POOL_BYTES) {
    be.ctx.destroyAfterSubmit(t.tex);
    return;
  }
  list.push(t.tex);
  s.lru.set(t.tex, { key: t.key, bytes: t.bytes });
  s.pooledBytes += t.bytes;
  for (const [tex, info] of s.lru) {
    if (s.pooledBytes <= TEX_POOL_BYTES) break;
    s.lru.delete(tex);
    const l = s.pool.get(info.key)!;
    l.splice(l.indexOf(tex), 1);
    s.pooledBytes -= info.bytes;
    be.ctx.destroyAfterSubmit(tex);
  }
}

/** Elements [first, first + count) of t (both multiples of perTexel) into tex, from texel 0. */
export function copyToTexture(enc: GPUCommandEncoder, t: Tensor, tex: GPUTexture, perTexel: number, first: number, count: number): void {
  const buffer = (t.storage as GpuStorage).buffer;
  const elemBytes = t.dtype === 'f32' ? 4 : 2;
  const texelBytes = elemBytes * perTexel;
  const texels = count / perTexel;
  const full = Math.floor(texels / TEX_W);
  const rem = texels - full * TEX_W;
  const bytesPerRow = TEX_W * texelBytes;
  const offset = first * elemBytes;
  if (full) enc.copyBufferToTexture({ buffer, offset, bytesPerRow }, { texture: tex }, [TEX_W, full]);
  if (rem) enc.copyBufferToTexture({ buffer, offset: offset + full * bytesPerRow, bytesPerRow }, { texture: tex, origin: [0, full] }, [rem, 1]);
}

const TEX_ENTRY = {
  v5_tex32x16: 'mm_v5_tex32x16', v6_tex4x32: 'mm_v6_tex4x32', gemv_tex: 'gemv_tex', gemv_tex8: 'gemv_tex8',
} as const;

/**
 * Copy a and b into textures and run a texture entry on them, recorded in a command buffer of its
 * own and submitted after everything the context has queued (so the copies see a and b written).
 * An operand too big for one texture is split: rows of a (batch folded in when b is shared),
 * columns of b (when stored [N, K]); each chunk pair runs as a sub-problem writing its block of out.
 */
function texMatmul(
  be: WebGpuBackend, version: MatmulVersion, a: Tensor, b: Tensor, bias: Tensor | null, out: Tensor,
  p: MatmulParams, overrides: Record<string, number>,
): void {
  for (const t of [a, b, out, ...(bias ? [bias] : [])]) t.assertAlive();
  const ctx = be.ctx;
  const bPer = version === 'gemv_tex8' ? 8 : 4;
  const cap = maxTexRows(be) * TEX_W; // texels per texture
  const entry = TEX_ENTRY[version as keyof typeof TEX_ENTRY];
  const [tileM, tileN] = TILES[entry];
  // rows of a / columns of b per chunk (the whole operand when it fits one texture)
  const fold = aChunkable(p) && texRows(a) > cap / TEX_W;
  const rows = fold ? p.batch * p.M : p.M;
  const batch = fold ? 1 : p.batch;
  const rChunk = fold ? Math.max(32, Math.floor((cap * 4) / p.K / 32) * 32) : rows;
  const cChunk = texRows(b, bPer) > cap / TEX_W ? Math.max(32, Math.floor((cap * bPer) / p.K / 32) * 32) : p.N;
  const bStride = p.batchB === 1 ? 0 : p.K * p.N;

  const biasT = bias ?? a; // never read without HAS_BIAS; any read-only buffer satisfies the layout
  const pipe = ctx.pipeline(MATMUL, entry, { bias: biasT.dtype }, { out: 'f32' }, [], overrides);
  const ta = takeTexture(be, a, 4, fold ? Math.min(rChunk, rows) * p.K : a.size);
  const tb = takeTexture(be, b, bPer, cChunk < p.N ? cChunk * p.K : b.size);
  const aView = ta.tex.createView();
  const bView = tb.tex.createView();
  ctx.encode((enc) => {
    for (let c0 = 0; c0 < p.N; c0 += cChunk) {
      const C = Math.min(cChunk, p.N - c0);
      copyToTexture(enc, b, tb.tex, bPer, cChunk < p.N ? c0 * p.K : 0, cChunk < p.N ? C * p.K : b.size);
      for (let r0 = 0; r0 < rows; r0 += rChunk) {
        const R = Math.min(rChunk, rows - r0);
        copyToTexture(enc, a, ta.tex, 4, fold ? r0 * p.K : 0, fold ? R * p.K : a.size);
        const tm = tileM === 1 ? R : Math.ceil(R / tileM);
        const tn = Math.ceil(C / tileN);
        const params = new Params().u32(R, C, p.K, batch, tm, tn, bStride).f32(p.alpha).u32(p.N, r0 * p.N + c0, c0);
        const bindGroup = ctx.device.createBindGroup({
          layout: ctx.layout(pipe),
          entries: [
            { binding: 0, resource: { buffer: ctx.uniform(params) } },
            bufferBinding(bindingIndex(MATMUL, 'bias'), biasT),
            bufferBinding(bindingIndex(MATMUL, 'out'), out),
            { binding: 5, resource: aView },
            { binding: 6, resource: bView },
          ],
        });
        const pass = ctx.beginPass(enc);
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bindGroup);
        const [x, y, z] = grid1d(Math.ceil((batch * tm * tn) / WG));
        pass.dispatchWorkgroups(x, y, z);
        pass.end();
        ctx.dispatches++;
      }
    }
  });
  releaseTexture(be, ta);
  releaseTexture(be, tb);
}
