// attention and rope on kernels/attention-tex.wgsl.ts, kernels/attention.wgsl.ts and kernels/rope.wgsl.ts.
//
// attention on software adapters (llvmpipe), where storage and workgroup-memory loads are
// per-lane scalar loops: q, k, v are copied into pooled textures (the matmul's pool; a KV cache
// with spare capacity only its kvLen keys per head) and attn_tex runs on them:
//   attn_tex_r16 / r16w / r8 / r4  16 / 16 / 8 / 4 query rows (GQA heads packed as rows) x all
//                Dv <= 32 / 64 / 64 / 128 columns per invocation, keys in tiles of 8, online
//                softmax in 4x4 blocks;
//   attn_tex_d1  one row per invocation, vectorised over keys (decode with <= 2 rows per kv head);
//   keys split over invocations (flash-decoding) until ~128 run, merged by attn_combine.
// It needs D % 4 == 0, Dv % 4 == 0, Dv <= 128 and f32 / bf16 / f16 operands that fit a texture;
// anything else (and every call on a GPU) takes the kernels below.
//
// attention elsewhere: flash-attention kernels (online softmax over key tiles staged through workgroup
// memory; nothing of size Lq x Lk is ever in memory, so the key length is not limited).
//   attn_flash   prefill: a 64-invocation workgroup owns BQ query rows x up to TC * 16 output
//                columns of one (b, h); TC from Dv (4 for Dv <= 64: BQ 64; 8 for <= 128: BQ 32;
//                else 16: BQ 16, wider Dv split over workgroups). Each invocation holds 4 rows.
//                Too few workgroups for the adapter (short Lq, long kvLen): split-K.
//   attn_decode  Lq <= decodeMaxLq: up to 4 query rows sharing one kv head per workgroup (GQA
//                heads read K/V once), keys split over workgroups (<= 512 keys each), the 256
//                invocations of a workgroup cooperating on each split.
//   attn_combine merges split-K partials (running max, running sum, unnormalised output).
// rope: one invocation per output element.
import type { AttentionParams, RopeParams } from '../../backend.js';
import { ShapeError, type Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { type GpuStorage, Params, bufferBinding, grid1d } from '../context.js';
import { bindingIndex } from '../kernel.js';
import { ATTENTION_TEX, D1_BK, TEX_TILES, TEX_W, type TexEntry } from '../kernels/attention-tex.wgsl.js';
import { ATTENTION, CWG, DWG, KP, MAXR, MPC, RB, RMAX, SMAX } from '../kernels/attention.wgsl.js';
import { copyToTexture, isMesaSoftware, isSoftware, maxTexRows, releaseTexture, takeTexture } from './matmul.js';
import { ROPE, WG as ROPE_WG } from '../kernels/rope.wgsl.js';

/** Knobs for benchmarks and tests (not for model code). */
export const attentionTuning = {
  /** queries per (b, h) up to which the decode kernel is used */
  decodeMaxLq: 4,
  /** split the keys until about this many workgroups are in flight */
  targetWorkgroups: 128,
  /** fewest keys per split (flash / decode) */
  minSplitFlash: 256,
  minSplitDecode: 64,
  /** force a number of key splits (0: automatic); for tests of the combine path */
  forceSplits: 0,
  /**
   * force a path: 'tex' | 'flash' | 'decode' | '' (automatic: tex on software adapters where it
   * applies); for tests of every kernel on one shape ('tex' falls back where it does not apply)
   */
  forcePath: '' as '' | 'tex' | 'flash' | 'decode',
  /** attn_tex: split the keys until about this many invocations run, no split under minSplitTex keys */
  texTargetInvocations: 128,
  /** allow attn_tex at all (false: the storage-buffer kernels everywhere, the previous version) */
  tex: true,
  minSplitTex: 64,
  /** attn_tex: rows per kv head up to which the one-row entry attn_tex_d1 runs (0: never) */
  texOneRowMax: 2,
  /** query rows per attn_flash workgroup (0: from Dv; else a multiple of 4); tests use 4 for cheap huge grids */
  flashRows: 0,
  /** invocations per attn_decode workgroup (0: 256; a power of two >= 8); tests use 8 for cheap huge grids */
  decodeThreads: 0,
};

const WG_LIMIT = 256;
const WORKGROUP_BYTES = 16384;

const cdiv = (a: number, b: number) => Math.ceil(a / b);

interface FlashConfig {
  /** query rows per workgroup (a multiple of RB) */
  BQ: number;
  /** threads per row group */
  TC: number;
  /** keys per tile */
  BK: number;
  /** head-dim chunk */
  DC: number;
}

/**
 * Tile shapes for attn_flash from Dv: TC threads share a row group's TC * 16 output columns.
 * All three are 64 invocations with 4 rows x 4 keys (scores) and 4 rows x 4 columns (P.V) per
 * thread per step, under 16 KiB of workgroup memory.
 */
function flashConfig(Dv: number): FlashConfig {
  let cfg: FlashConfig;
  if (Dv <= 64) cfg = { BQ: 64, TC: 4, BK: 16, DC: 32 };
  else if (Dv <= 128) cfg = { BQ: 32, TC: 8, BK: 32, DC: 32 };
  else cfg = { BQ: 16, TC: 16, BK: 32, DC: 32 };
  if (attentionTuning.flashRows) cfg.BQ = attentionTuning.flashRows;
  return cfg;
}

function flashOverrides(c: FlashConfig): Record<string, number> {
  const WG = (c.BQ / RB) * c.TC;
  const QS_LEN = c.BQ * (c.DC + 1);
  const KV_LEN = c.BK * Math.max(c.DC + 1, c.TC * MPC);
  const PS_LEN = c.BQ * (c.BK + 1);
  const RED_LEN = RB * WG;
  const bytes = 4 * (QS_LEN + KV_LEN + PS_LEN + RED_LEN);
  if (c.BQ % RB || WG > WG_LIMIT || bytes > WORKGROUP_BYTES || c.BK % c.TC || c.BK / c.TC > SMAX) {
    throw new Error(`attention: bad flash config ${JSON.stringify(c)} (${bytes} bytes)`);
  }
  return { WG, BQ: c.BQ, TC: c.TC, BK: c.BK, DC: c.DC, QS_LEN, KV_LEN, PS_LEN, RED_LEN };
}

function header(p: AttentionParams, hasMask: boolean, nsplit: number, chunk: number, nqt: number, ndv: number, nrc: number, total: number, cw = 0): Params {
  return new Params()
    .u32(p.B, p.Hq, p.Hkv, p.Lq, p.Lk, p.kvLen, p.D, p.Dv)
    .f32(p.scale)
    .u32(p.causal ? 1 : 0, p.maskB, p.maskH, p.Hq / p.Hkv, hasMask ? 1 : 0, nsplit, chunk, nqt, ndv, nrc, total, cw);
}

/** Key splits: enough workgroups in flight, no split shorter than minKeys nor longer than maxKeys. */
function splitKeys(kvLen: number, base: number, minKeys: number, maxKeys: number, align: number): { nsplit: number; chunk: number } {
  let ns = attentionTuning.forceSplits || Math.min(cdiv(attentionTuning.targetWorkgroups, Math.max(1, base)), cdiv(kvLen, minKeys));
  ns = Math.max(1, ns, cdiv(kvLen, maxKeys));
  let chunk = cdiv(cdiv(kvLen, ns), align) * align;
  if (chunk > maxKeys) chunk = Math.floor(maxKeys / align) * align;
  return { nsplit: cdiv(kvLen, chunk), chunk };
}

export function attention(be: WebGpuBackend, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, p: AttentionParams): Tensor {
  const { B, Hq, Hkv, Lq, kvLen, Dv } = p;
  const out = be.empty('f32', [B, Hq, Lq, Dv]);
  const rows = B * Hq * Lq;
  if (rows * Dv === 0) return out;
  if (Hq % Hkv) throw new ShapeError(`webgpu attention: ${Hq} query heads not a multiple of ${Hkv}`);
  // Without a mask the entry point still binds one: a 1-element f32 stand-in (binding q instead
  // would make every q dtype a separate shader module to compile).
  const maskT = mask ?? be.empty('f32', [1]);
  const inputs = { q, k, v, mask: maskT };
  if (texApplies(be, q, k, v, p)) {
    texAttention(be, q, k, v, mask, p, out);
    return out;
  }
  const useDecode = attentionTuning.forcePath === 'decode' || (attentionTuning.forcePath !== 'flash' && Lq <= attentionTuning.decodeMaxLq);

  let nsplit: number;
  let chunk: number;
  let entry: string;
  let overrides: Record<string, number>;
  let params: () => Params;
  let groups: number;
  if (useDecode) {
    const nrc = cdiv((Hq / Hkv) * Lq, RMAX);
    const base = nrc * B * Hkv;
    const dwg = attentionTuning.decodeThreads || DWG;
    const chs = 2 * dwg; // longest split: its scores stay in workgroup memory
    ({ nsplit, chunk } = splitKeys(kvLen, base, attentionTuning.minSplitDecode, chs, dwg / KP));
    groups = base * nsplit;
    entry = 'attn_decode';
    const cw = Math.min(dwg, Dv <= 32 ? 32 : Dv <= 64 ? 64 : 128);
    overrides = { DWG: dwg, KP, CHS: chs };
    params = () => header(p, !!mask, nsplit, chunk, 0, 0, nrc, groups, cw);
  } else {
    const cfg = flashConfig(Dv);
    overrides = flashOverrides(cfg);
    const nqt = cdiv(Lq, cfg.BQ);
    const ndv = cdiv(Dv, cfg.TC * MAXR);
    const base = nqt * ndv * B * Hq;
    ({ nsplit, chunk } = splitKeys(kvLen, base, attentionTuning.minSplitFlash, Number.MAX_SAFE_INTEGER, cfg.BK));
    groups = base * nsplit;
    entry = 'attn_flash';
    params = () => header(p, !!mask, nsplit, chunk, nqt, ndv, 0, groups);
  }

  // Without splits po / pml are never touched, but the entry point binds them: one element each.
  const po = be.empty('f32', [nsplit === 1 ? 1 : rows * nsplit * Dv]);
  const pml = be.empty('f32', [nsplit === 1 ? 1 : rows * nsplit * 2]);
  be.ctx.dispatch({
    family: ATTENTION, entry, inputs, outputs: { out, po, pml }, params: params(), overrides,
    workgroups: grid1d(groups),
  });
  if (!mask) maskT.dispose();
  if (nsplit === 1) {
    po.dispose();
    pml.dispose();
    return out;
  }
  const total = rows * Dv;
  be.ctx.dispatch({
    family: ATTENTION, entry: 'attn_combine', inputs: {}, outputs: { out, po, pml },
    params: header(p, !!mask, nsplit, chunk, 0, 0, 0, total), overrides: { CWG },
    workgroups: grid1d(cdiv(total, CWG)),
  });
  po.dispose();
  pml.dispose();
  return out;
}

// ------------------------------------------------------------------ texture path (software adapters)

const TEX_DTYPES = ['f32', 'bf16', 'f16'];
/** invocations per attn_tex workgroup */
const TEX_WG = 16;

/** attn_tex takes the call: a software adapter (or forced), 4-aligned head dims, Dv <= 128, operands that fit a texture. */
function texApplies(be: WebGpuBackend, q: Tensor, k: Tensor, v: Tensor, p: AttentionParams): boolean {
  const f = attentionTuning.forcePath;
  if (!attentionTuning.tex || f === 'flash' || f === 'decode' || (f !== 'tex' && !(isSoftware(be) && isMesaSoftware(be)))) return false;
  const maxRows = maxTexRows(be);
  return p.D % 4 === 0 && p.Dv % 4 === 0 && p.Dv >= 4 && p.Dv <= 128 && be.ctx.device.limits.maxTextureDimension2D >= TEX_W &&
    [q, k, v].every((t) => TEX_DTYPES.includes(t.dtype) && Math.ceil(t.size / 4 / TEX_W) <= maxRows);
}

/**
 * The narrowest column tile that holds Dv, and of those the most rows that the rows per kv head
 * fill (decode shapes take the small tiles; else the last, fewest-row one that fits Dv).
 */
function texEntry(Dv: number, rows: number): TexEntry {
  const fits = (['attn_tex_r16', 'attn_tex_r16w', 'attn_tex_r8', 'attn_tex_r4'] as const).filter((e) => 4 * TEX_TILES[e][2] >= Dv);
  return fits.find((e) => 4 * TEX_TILES[e][0] <= rows) ?? fits[fits.length - 1];
}

/**
 * Elements [src, src + count) of t into tex from element dst on (all multiples of 4, 4 per texel):
 * the head of a texture row, whole rows, then the tail.
 */
function copySpan(enc: GPUCommandEncoder, t: Tensor, tex: GPUTexture, src: number, dst: number, count: number): void {
  const buffer = (t.storage as GpuStorage).buffer;
  const texelBytes = 4 * (t.dtype === 'f32' ? 4 : 2);
  let s = src / 4;
  let d = dst / 4;
  let n = count / 4;
  while (n > 0) {
    const x = d % TEX_W;
    const y = Math.floor(d / TEX_W);
    const full = x === 0 ? Math.floor(n / TEX_W) : 0;
    const [w, h] = full ? [TEX_W, full] : [Math.min(n, TEX_W - x), 1];
    enc.copyBufferToTexture({ buffer, offset: s * texelBytes, bytesPerRow: TEX_W * texelBytes }, { texture: tex, origin: [x, y] }, [w, h]);
    s += w * h;
    d += w * h;
    n -= w * h;
  }
}

const halfCode = (t: Tensor) => (t.dtype === 'bf16' ? 1 : t.dtype === 'f16' ? 2 : 0);

/**
 * q, k, v copied into (pooled) textures, then attn_tex, then attn_combine when the keys are split.
 * The copies and the kernel are one command buffer submitted after everything queued so far.
 */
function texAttention(be: WebGpuBackend, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, p: AttentionParams, out: Tensor): void {
  const ctx = be.ctx;
  const rowsPerHead = (p.Hq / p.Hkv) * p.Lq;
  // one row per kv head (or two): a 4-row tile would mostly recompute copies of it
  const entry = rowsPerHead <= attentionTuning.texOneRowMax ? 'attn_tex_d1' : texEntry(p.Dv, rowsPerHead);
  const [BM, BK] = entry === 'attn_tex_d1' ? [0.25, D1_BK] : TEX_TILES[entry];
  const nrb = cdiv(rowsPerHead, 4 * BM);
  const base = p.B * p.Hkv * nrb;
  let ns = attentionTuning.forceSplits ||
    Math.min(cdiv(attentionTuning.texTargetInvocations, base), cdiv(p.kvLen, attentionTuning.minSplitTex));
  ns = Math.max(1, ns);
  const align = 4 * BK;
  const chunk = cdiv(cdiv(p.kvLen, ns), align) * align;
  const nsplit = cdiv(p.kvLen, chunk);
  const total = base * nsplit;
  const rows = p.B * p.Hq * p.Lq;
  const maskT = mask ?? be.empty('f32', [1]);
  const po = be.empty('f32', [nsplit === 1 ? 4 : rows * nsplit * p.Dv]);
  const pml = be.empty('f32', [nsplit === 1 ? 1 : rows * nsplit * 2]);
  for (const t of [q, k, v, maskT, out, po, pml]) t.assertAlive();

  // A KV cache with spare capacity (kvLen < Lk): only each head's first kvLen keys are copied,
  // packed, so a decode step copies what it reads rather than the whole cache.
  const pack = p.kvLen < p.Lk;
  const pipe = ctx.pipeline(ATTENTION_TEX, entry, { mask: maskT.dtype }, { out: 'f32', po: 'f32', pml: 'f32' }, [], {
    WG: TEX_WG, HAS_MASK: +!!mask, QH: halfCode(q), KH: halfCode(k), VH: halfCode(v),
  });
  const params = new Params()
    .u32(p.B, p.Hq, p.Hkv, p.Lq, pack ? p.kvLen : p.Lk, p.kvLen, p.D, p.Dv)
    .f32(p.scale)
    .u32(p.maskB, p.maskH, p.Hq / p.Hkv, rowsPerHead, nrb, nsplit, chunk, total, p.causal ? 1 : 0);
  const heads = p.B * p.Hkv;
  const texs = [q, k, v].map((t, i) => ({ t, tex: takeTexture(be, t, 4, i && pack ? heads * p.kvLen * (i === 1 ? p.D : p.Dv) : t.size) }));
  ctx.encode((enc) => {
    copyToTexture(enc, q, texs[0].tex.tex, 4, 0, q.size);
    for (const [i, dim] of [[1, p.D], [2, p.Dv]]) {
      const { t, tex } = texs[i];
      if (!pack) copyToTexture(enc, t, tex.tex, 4, 0, t.size);
      else for (let h = 0; h < heads; h++) copySpan(enc, t, tex.tex, h * p.Lk * dim, h * p.kvLen * dim, p.kvLen * dim);
    }
    const bindGroup = ctx.device.createBindGroup({
      layout: ctx.layout(pipe),
      entries: [
        { binding: 0, resource: { buffer: ctx.uniform(params) } },
        bufferBinding(bindingIndex(ATTENTION_TEX, 'mask'), maskT),
        bufferBinding(bindingIndex(ATTENTION_TEX, 'out'), out),
        bufferBinding(bindingIndex(ATTENTION_TEX, 'po'), po),
        bufferBinding(bindingIndex(ATTENTION_TEX, 'pml'), pml),
        ...texs.map(({ tex }, i) => ({ binding: 5 + i, resource: tex.tex.createView() })),
      ],
    });
    const pass = ctx.beginPass(enc);
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bindGroup);
    const [x, y, z] = grid1d(cdiv(total, TEX_WG));
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
  });
  ctx.dispatches++;
  for (const { tex } of texs) releaseTexture(be, tex);
  if (!mask) maskT.dispose();
  if (nsplit > 1) {
    const n = rows * p.Dv;
    be.ctx.dispatch({
      family: ATTENTION, entry: 'attn_combine', inputs: {}, outputs: { out, po, pml },
      params: header(p, !!mask, nsplit, chunk, 0, 0, 0, n), overrides: { CWG },
      workgroups: grid1d(cdiv(n, CWG)),
    });
  }
  po.dispose();
  pml.dispose();
}

export function rope(be: WebGpuBackend, x: Tensor, cos: Tensor, sin: Tensor, p: RopeParams): Tensor {
  const out = be.empty('f32', x.shape);
  const n = x.size;
  if (n === 0) return out;
  be.ctx.dispatch({
    family: ROPE, entry: 'rope_main', inputs: { x, cos, sin }, outputs: { out },
    params: new Params().u32(n, p.B, p.H, p.L, p.D, p.R, p.tableB, 0),
    overrides: { WG: ROPE_WG, MODE: p.mode === 'half' ? 0 : 1, LAYOUT: p.layout === 'bhld' ? 0 : 1 },
    workgroups: grid1d(cdiv(n, ROPE_WG)),
  });
  return out;
}
