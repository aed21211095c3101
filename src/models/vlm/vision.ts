// The Qwen2.5-VL vision tower (transformers Qwen2_5_VisionTransformerPretrainedModel, v4.49),
// parameters under `visual.*` as in the released checkpoints. Spec vlm.md "Vision tower".
//
// Forward, for pixel_values [N, Cin*tp*p*p] (one row per patch pair, processor layout) and the
// grid (t, h, w) of each image / video, all in one call:
//   1. patch_embed: Conv3d with kernel = stride = (tp, p, p), no bias == one linear map;
//   2. 2D RoPE angles per patch (row, col inside its frame), computed on the host;
//   3. window_index: 2x2 merge groups (4 consecutive rows) permuted into window order (windows
//      of `window_size / merge / patch` merged tokens per side, per frame, row-major), with
//      cu_window_seqlens; hidden states and angles move into window order;
//   4. blocks: x += proj(attn(RMSNorm(x))), x += MLP(RMSNorm(x)); block-diagonal attention inside
//      each window, or inside each frame for the blocks in fullatt_block_indexes;
//   5. merger: RMSNorm, groups of 4 rows -> Linear -> GELU (erf) -> Linear; then the inverse
//      window permutation returns the merged tokens to their original order.
//
// Block-diagonal attention runs as batched attention calls, never as an N x N mask: segments of
// equal length that follow each other (the frames of a video, or all windows of a frame whose
// merged grid divides evenly) form one batch [count, H, len, d] sliced straight out of the
// sequence; when the windows come in many different runs (partial windows at frame edges), all
// segments are gathered into one padded batch [nseg, H, Lmax, d] with a key-padding mask and
// scattered back afterwards.
import type { Backend } from '../../engine/backend.js';
import { Linear, RMSNorm } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { GatedMLP } from '../decoder-layers.js';
import { type Activation, type VisionConfig, VlmInputError, windowMergedSide } from './config.js';
import type { Grid } from './rope-index.js';

/** The activation a config names, as an op. */
export function activate(act: Activation, x: Tensor): Tensor {
  switch (act) {
    case 'silu': return F.silu(x);
    case 'gelu': return F.gelu(x);
    case 'gelu_tanh': return F.geluTanh(x);
    case 'relu': return F.relu(x);
    case 'quick_gelu': return F.mul(x, F.sigmoid(F.scale(x, 1.702)));
  }
}


// ------------------------------------------------------------------ host-side index maths

function checkGrids(grids: readonly Grid[], m: number): void {
  grids.forEach(([t, h, w], i) => {
    if (![t, h, w].every((v) => Number.isInteger(v) && v >= 1)) throw new VlmInputError(`grid_thw: row ${i} (${t}, ${h}, ${w}) must be positive integers`);
    if (h % m || w % m) throw new VlmInputError(`grid_thw: row ${i} (${t}, ${h}, ${w}): h and w must be multiples of spatial_merge_size ${m}`);
  });
}

/** Patches (rows of pixel_values) of all items: sum of t*h*w. */
export function patchCount(grids: readonly Grid[]): number {
  return grids.reduce((s, [t, h, w]) => s + t * h * w, 0);
}

/** 1 / 10000^(arange(0, dim, 2) / dim) in float32, dim = head_dim / 2 (VisionRotaryEmbedding). */
export function visionInvFreq(headDim: number): Float32Array {
  const dim = headDim / 2;
  const n = Math.ceil(dim / 2);
  const f = Math.fround;
  return Float32Array.from({ length: n }, (_, k) => f(1 / f(10000 ** f(f(2 * k) / dim))));
}

/**
 * rot_pos_emb: per patch (original order) its (row, col) angles [row * inv_freq, col * inv_freq]
 * -> [N, head_dim / 2], rows in processor order (t, h/m, w/m, m, m).
 */
export function visionRotaryAngles(grids: readonly Grid[], cfg: Pick<VisionConfig, 'hiddenSize' | 'numHeads' | 'spatialMergeSize'>): Float32Array {
  const m = cfg.spatialMergeSize;
  checkGrids(grids, m);
  const inv = visionInvFreq(cfg.hiddenSize / cfg.numHeads);
  const q = inv.length;
  const out = new Float32Array(patchCount(grids) * 2 * q);
  let p = 0;
  for (const [t, h, w] of grids) {
    for (let it = 0; it < t; it++) {
      for (let hb = 0; hb < h / m; hb++) {
        for (let wb = 0; wb < w / m; wb++) {
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < m; j++) {
              const row = hb * m + i;
              const col = wb * m + j;
              const o = p * 2 * q;
              for (let k = 0; k < q; k++) {
                out[o + k] = Math.fround(row * inv[k]);
                out[o + q + k] = Math.fround(col * inv[k]);
              }
              p++;
            }
          }
        }
      }
    }
  }
  return out;
}

export interface WindowIndex {
  /** permutation of merged tokens (groups of m² patches) into window order */
  windowIndex: Int32Array;
  /** cumulative patch counts per window, starting at 0, consecutive repeats removed */
  cuWindowSeqlens: number[];
}

/** get_window_index: windows per frame, row-major over windows, row-major inside a window. */
export function windowIndex(grids: readonly Grid[], cfg: Pick<VisionConfig, 'windowSize' | 'spatialMergeSize' | 'patchSize'>): WindowIndex {
  const m = cfg.spatialMergeSize;
  checkGrids(grids, m);
  const win = windowMergedSide(cfg);
  const unit = m * m;
  const index: number[] = [];
  const cu: number[] = [0];
  let offset = 0;
  for (const [t, h, w] of grids) {
    const gh = h / m;
    const gw = w / m;
    // padded by win - (n % win): a whole empty window when n divides evenly, as upstream
    const nwh = (gh + win - (gh % win)) / win;
    const nww = (gw + win - (gw % win)) / win;
    for (let it = 0; it < t; it++) {
      for (let wh = 0; wh < nwh; wh++) {
        for (let ww = 0; ww < nww; ww++) {
          let count = 0;
          for (let i = 0; i < win; i++) {
            const r = wh * win + i;
            if (r >= gh) break;
            for (let j = 0; j < win; j++) {
              const c = ww * win + j;
              if (c >= gw) break;
              index.push(offset + (it * gh + r) * gw + c);
              count++;
            }
          }
          const next = cu[cu.length - 1] + count * unit;
          if (next !== cu[cu.length - 1]) cu.push(next); // unique_consecutive
        }
      }
    }
    offset += t * gh * gw;
  }
  return { windowIndex: Int32Array.from(index), cuWindowSeqlens: cu };
}

/** The inverse permutation (torch.argsort of a permutation). */
export function inversePermutation(perm: ArrayLike<number>): Int32Array {
  const inv = new Int32Array(perm.length).fill(-1);
  for (let i = 0; i < perm.length; i++) {
    const p = perm[i];
    if (!(p >= 0 && p < perm.length) || inv[p] !== -1) throw new Error(`inversePermutation: not a permutation (entry ${i} = ${p})`);
    inv[p] = i;
  }
  return inv;
}

/** cu_seqlens of the full-attention blocks: cumulative h*w per frame, starting at 0. */
export function frameCuSeqlens(grids: readonly Grid[]): number[] {
  const cu = [0];
  for (const [t, h, w] of grids) for (let i = 0; i < t; i++) cu.push(cu[cu.length - 1] + h * w);
  return cu;
}

// ------------------------------------------------------------------ block-diagonal attention plan

/** Keys of a padded segment slot past its length get this (what upstream's eager mask adds). */
const FLOAT32_MIN = -3.4028234663852886e38;

/** Knobs of the block-diagonal attention plan (for tests and benchmarks, not for model code). */
export const segmentTuning = {
  /** with at most this many runs of equal-length segments, attend run by run */
  maxRuns: 8,
  /** segments longer than this never go through the padded gather (its mask is nseg x Lmax²) */
  paddedMaxLen: 256,
};

interface SegmentGroup {
  /** batch and length of the attention call */
  B: number;
  len: number;
  /** runs: first row of the run in the sequence */
  start: number;
  cos: Tensor;
  sin: Tensor;
}

/**
 * How one block-diagonal attention pattern (cu_seqlens over the window-ordered sequence) is
 * executed, with the rotary tables already cut to each attention call. Built once per forward
 * for the window pattern and once for the frame pattern, shared by all blocks using it.
 */
class SegmentPlan {
  private constructor(
    readonly mode: 'runs' | 'padded',
    readonly groups: SegmentGroup[],
    /** padded: row of the sequence read by each padded slot [nseg * Lmax] */
    readonly gather: Tensor | null,
    /** padded: padded slot of each sequence row [N] */
    readonly scatter: Tensor | null,
    /** padded: [nseg, 1, Lmax, Lmax] key-padding mask, null when every segment is full */
    readonly mask: Tensor | null,
  ) {}

  /** cos/sin: host tables [N, d] in window order. */
  static build(backend: Backend, cu: readonly number[], cos: Float32Array, sin: Float32Array, d: number): SegmentPlan {
    const lens: number[] = [];
    for (let i = 1; i < cu.length; i++) lens.push(cu[i] - cu[i - 1]);
    const N = cu[cu.length - 1];
    const runs: { start: number; count: number; len: number }[] = [];
    let row = 0;
    for (const len of lens) {
      const last = runs[runs.length - 1];
      if (last && last.len === len) last.count++;
      else runs.push({ start: row, count: 1, len });
      row += len;
    }
    const Lmax = Math.max(...lens);
    const table = (src: Float32Array, rows: ArrayLike<number>, B: number, len: number) => {
      const out = new Float32Array(rows.length * d);
      for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i] * d, rows[i] * d + d), i * d);
      return F.fromArray(backend, out, [B, len, d]);
    };
    if (runs.length <= segmentTuning.maxRuns || Lmax > segmentTuning.paddedMaxLen) {
      const groups = runs.map(({ start, count, len }) => {
        const rows = Int32Array.from({ length: count * len }, (_, i) => start + i);
        return { B: count, len, start, cos: table(cos, rows, count, len), sin: table(sin, rows, count, len) };
      });
      return new SegmentPlan('runs', groups, null, null, null);
    }
    const nseg = lens.length;
    const gather = new Int32Array(nseg * Lmax);
    const scatter = new Int32Array(N);
    const full = lens.every((l) => l === Lmax);
    const mask = full ? null : new Float32Array(nseg * Lmax * Lmax);
    for (let s = 0; s < nseg; s++) {
      for (let j = 0; j < Lmax; j++) {
        // slots past the segment read its first row (any valid row; their keys are masked)
        gather[s * Lmax + j] = cu[s] + (j < lens[s] ? j : 0);
        if (j < lens[s]) scatter[cu[s] + j] = s * Lmax + j;
      }
      if (mask) {
        for (let i = 0; i < Lmax; i++) mask.fill(FLOAT32_MIN, (s * Lmax + i) * Lmax + lens[s], (s * Lmax + i + 1) * Lmax);
      }
    }
    const group = { B: nseg, len: Lmax, start: 0, cos: table(cos, gather, nseg, Lmax), sin: table(sin, gather, nseg, Lmax) };
    return new SegmentPlan(
      'padded', [group],
      F.fromArray(backend, gather, [gather.length], 'i32'),
      F.fromArray(backend, scatter, [N], 'i32'),
      mask ? F.fromArray(backend, mask, [nseg, 1, Lmax, Lmax]) : null,
    );
  }

  /**
   * softmax(q k^T / sqrt(d)) v inside each segment, with RoPE on q and k. qkv [N, 3C] in
   * window order (columns (3, H, d) as upstream's qkv linear) -> [N, C].
   */
  attend(qkv: Tensor, H: number, d: number): Tensor {
    const N = qkv.shape[0];
    const C = H * d;
    const one = (x: Tensor, g: SegmentGroup, mask: Tensor | null): Tensor => {
      // [B*len, 3C] -> [3, B, H, len, d]
      const t = F.permute(x.reshape([g.B, g.len, 3, H, d]), [2, 0, 3, 1, 4]);
      const part = (i: number) => F.slice(t, 0, i, i + 1).reshape([g.B, H, g.len, d]);
      const q = F.rope(part(0), g.cos, g.sin, { mode: 'half' });
      const k = F.rope(part(1), g.cos, g.sin, { mode: 'half' });
      const o = F.attention(q, k, part(2), { mask });
      return F.permute(o, [0, 2, 1, 3]).reshape([g.B * g.len, C]);
    };
    if (this.mode === 'padded') {
      const g = this.groups[0];
      const padded = one(F.indexSelect(qkv, 0, this.gather!), g, this.mask);
      return F.indexSelect(padded, 0, this.scatter!);
    }
    if (this.groups.length === 1) return one(qkv, this.groups[0], null);
    const out = F.zeros(qkv.backend, [N, C]);
    for (const g of this.groups) {
      F.setSlice(out, one(F.slice(qkv, 0, g.start, g.start + g.B * g.len), g, null), [g.start, 0]);
    }
    return out;
  }

  dispose(): void {
    for (const g of this.groups) {
      g.cos.dispose();
      g.sin.dispose();
    }
    this.gather?.dispose();
    this.scatter?.dispose();
    this.mask?.dispose();
  }
}

// ------------------------------------------------------------------ modules

/** The Conv3d of the patch embedding: only its weight (C, Cin, tp, p, p); no bias. */
class Conv3dWeight extends Module {
  readonly weight: Param;
  constructor(shape: readonly number[]) {
    super();
    this.weight = this.param('weight', shape);
  }
}

/** Conv3d with kernel = stride = (tp, p, p) over one patch pair per row == a linear map. */
class PatchEmbed extends Module {
  readonly proj: Conv3dWeight;
  readonly inFeatures: number;
  constructor(private readonly cfg: VisionConfig) {
    super();
    const { hiddenSize: C, inChannels: ci, temporalPatchSize: tp, patchSize: p } = cfg;
    this.inFeatures = ci * tp * p * p;
    this.proj = this.add('proj', new Conv3dWeight([C, ci, tp, p, p]));
  }
  forward(pixels: Tensor): Tensor {
    const w = this.proj.weight.t.reshape([this.cfg.hiddenSize, this.inFeatures]);
    return this.tap(F.linear(pixels, w));
  }
}

class VisionAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(private readonly cfg: VisionConfig) {
    super();
    const C = cfg.hiddenSize;
    this.qkv = this.add('qkv', new Linear(C, 3 * C, true));
    this.proj = this.add('proj', new Linear(C, C, true));
  }
  forward(x: Tensor, plan: SegmentPlan): Tensor {
    const H = this.cfg.numHeads;
    const d = this.cfg.hiddenSize / H;
    return this.tap(this.proj.forward(plan.attend(this.qkv.forward(x), H, d)));
  }
}

class VisionBlock extends Module {
  readonly norm1: RMSNorm;
  readonly norm2: RMSNorm;
  readonly attn: VisionAttention;
  readonly mlp: GatedMLP;
  constructor(cfg: VisionConfig) {
    super();
    this.norm1 = this.add('norm1', new RMSNorm(cfg.hiddenSize, 1e-6));
    this.norm2 = this.add('norm2', new RMSNorm(cfg.hiddenSize, 1e-6));
    this.attn = this.add('attn', new VisionAttention(cfg));
    this.mlp = this.add('mlp', new GatedMLP(cfg.hiddenSize, cfg.intermediateSize, { bias: true, act: (x) => activate(cfg.hiddenAct, x) }));
  }
  forward(x: Tensor, plan: SegmentPlan): Tensor {
    const h = F.add(x, this.attn.forward(this.norm1.forward(x), plan));
    return this.tap(F.add(h, this.mlp.forward(this.norm2.forward(h))));
  }
}

class GeluMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(inner: number, out: number) {
    super();
    this.fc1 = this.add('0', new Linear(inner, inner, true));
    this.fc2 = this.add('2', new Linear(inner, out, true));
  }
  forward(x: Tensor): Tensor {
    return this.tap(this.fc2.forward(F.gelu(this.fc1.forward(x))));
  }
}

class PatchMerger extends Module {
  readonly ln_q: RMSNorm;
  readonly mlp: GeluMLP;
  private readonly inner: number;
  constructor(cfg: VisionConfig) {
    super();
    this.inner = cfg.hiddenSize * cfg.spatialMergeSize ** 2;
    this.ln_q = this.add('ln_q', new RMSNorm(cfg.hiddenSize, 1e-6));
    this.mlp = this.add('mlp', new GeluMLP(this.inner, cfg.outHiddenSize));
  }
  forward(x: Tensor): Tensor {
    const n = this.ln_q.forward(x);
    return this.tap(this.mlp.forward(n.reshape([-1, this.inner])));
  }
}

export class VisionTransformer extends Module {
  readonly patch_embed: PatchEmbed;
  readonly blocks: VisionBlock[];
  readonly merger: PatchMerger;

  constructor(readonly config: VisionConfig) {
    super();
    this.patch_embed = this.add('patch_embed', new PatchEmbed(config));
    this.blocks = Array.from({ length: config.depth }, (_, i) => this.add(`blocks.${i}`, new VisionBlock(config)));
    this.merger = this.add('merger', new PatchMerger(config));
  }

  /** Merged tokens an input of these grids yields: sum(t*h*w) / merge². */
  static tokenCount(grids: readonly Grid[], cfg: Pick<VisionConfig, 'spatialMergeSize'>): number {
    return patchCount(grids) / cfg.spatialMergeSize ** 2;
  }

  /**
   * pixel_values [N, Cin*tp*p*p] (processor layout, items concatenated in grid order) and one
   * (t, h, w) per item -> merged embeddings [N / merge², out_hidden_size] in original order.
   */
  forward(pixelValues: Tensor, grids: readonly Grid[]): Tensor {
    const cfg = this.config;
    const m = cfg.spatialMergeSize;
    const unit = m * m;
    const N = patchCount(grids);
    if (grids.length === 0) throw new VlmInputError('vision tower: no grid_thw rows');
    if (pixelValues.rank !== 2 || pixelValues.shape[0] !== N || pixelValues.shape[1] !== this.patch_embed.inFeatures) {
      throw new VlmInputError(
        `vision tower: pixel_values ${JSON.stringify(pixelValues.shape)} does not fit the grids (${N} patches of ${this.patch_embed.inFeatures} values expected)`,
      );
    }
    const be = pixelValues.backend;
    const H = cfg.numHeads;
    const d = cfg.hiddenSize / H;

    const x0 = this.patch_embed.forward(pixelValues);
    const angles = visionRotaryAngles(grids, cfg); // [N, d/2]
    const { windowIndex: wi, cuWindowSeqlens } = windowIndex(grids, cfg);
    const cu = frameCuSeqlens(grids);
    scope(() => {
      this.tap(F.fromArray(be, angles, [N, d / 2]), 'rot_pos_emb');
      this.tap(F.fromArray(be, wi, [wi.length], 'i32'), 'window_index');
      this.tap(F.fromArray(be, cuWindowSeqlens, [cuWindowSeqlens.length], 'i32'), 'cu_window_seqlens');
      this.tap(F.fromArray(be, cu, [cu.length], 'i32'), 'cu_seqlens');
    });

    // patch-level window order: merge group wi[g] moves to slot g with its m² rows
    const perm = new Int32Array(N);
    for (let g = 0; g < wi.length; g++) for (let u = 0; u < unit; u++) perm[g * unit + u] = wi[g] * unit + u;
    const half = d / 2;
    const cos = new Float32Array(N * d);
    const sin = new Float32Array(N * d);
    for (let p = 0; p < N; p++) {
      const src = perm[p] * half;
      for (let k = 0; k < half; k++) {
        const a = angles[src + k];
        const c = Math.cos(a);
        const s = Math.sin(a);
        cos[p * d + k] = c;
        cos[p * d + half + k] = c;
        sin[p * d + k] = s;
        sin[p * d + half + k] = s;
      }
    }
    const windowPlan = SegmentPlan.build(be, cuWindowSeqlens, cos, sin, d);
    const framePlan = SegmentPlan.build(be, cu, cos, sin, d);
    const full = new Set(cfg.fullattBlockIndexes);
    try {
      let x = scope(() => F.indexSelect(x0, 0, F.fromArray(be, perm, [N], 'i32')));
      x0.dispose();
      this.blocks.forEach((blk, i) => {
        const prev = x;
        x = scope(() => blk.forward(prev, full.has(i) ? framePlan : windowPlan));
        prev.dispose();
      });
      const merged = this.merger.forward(x);
      x.dispose();
      const out = scope(() => F.indexSelect(merged, 0, F.fromArray(be, inversePermutation(wi), [wi.length], 'i32')));
      merged.dispose();
      return out;
    } finally {
      windowPlan.dispose();
      framePlan.dispose();
    }
  }
}
