// The Cosmos diffusion transformer: diffusers' CosmosTransformer3DModel (Cosmos-1.0 Diffusion,
// Predict2, Predict2.5, and the base network of Transfer2.5), in forward order. Spec: dit.md §2.
//
//   x = cat(hidden_states, condition_mask?, resize_nearest(padding_mask)?)   [B, C', T, H, W]
//   cos, sin = rope(T/pt, H/ph, W/pw, fps)                                   [N, head_dim]
//   pe = learnable_pos_embed(grid)  (Cosmos-1.0)                             [B, N, D]
//   tokens = patch_embed(x)  (Linear over (c, pt, ph, pw) features)          [B, T', H', W', D]
//   temb, emb = time_embed(timestep)   one row per sample or per frame       [R, 3D], [R, D]
//   text = GELU(crossattn_proj(text))  (Predict2.5)
//   for each block: x += pe; x += g1 * attn1(adaLN1(x))  (QK RMSNorm, RoPE)
//                            x += g2 * attn2(adaLN2(x), text)
//                            x += g3 * ff(adaLN3(x)); x += controlnet residual?
//   out = unpatchify(proj_out(adaLN_final(x)))   channels ordered (ph, pw, pt, C)
//
// The adaLN modulations are computed per timestep row and broadcast over the tokens of their
// sample (or frame, for per-frame timesteps [B,1,T,1,1]) instead of being expanded to every token.
// Parameters keep diffusers' key names; bf16 checkpoints stay bf16 on the device (every op
// reads them widened and computes in float32). Taps are recorded at diffusers' module paths.
import { join } from 'node:path';
import type { Backend } from '../../engine/backend.js';
import { type LoadOptions, type LoadReport, Module, type Param, type TensorSource, loadWeights, plannedBytes } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, numel, scope, shapeStr } from '../../engine/tensor.js';
import { openCheckpoint } from '../../io/safetensors.js';
import {
  type CosmosTransformerConfig, DiTConfigError, DiTInputError, hiddenSize, maxGrid, parseCosmosTransformerConfig,
  patchEmbedInChannels,
} from './config.js';
import { Rope3DCache, patchGrid } from './rope3d.js';
import { Linear, RMSNorm } from '../../engine/layers.js';
export { Linear, RMSNorm };

// ------------------------------------------------------------------ leaf modules

/** nn.Sequential(Linear(+bias), GELU): crossattn_proj / img_context_proj. */
export class LinearGelu extends Module {
  readonly proj: Linear;
  constructor(inF: number, outF: number) {
    super();
    this.proj = this.add(0, new Linear(inF, outF, true));
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.gelu(this.proj.forward(x)));
  }
}

// ------------------------------------------------------------------ embeddings

/** CosmosPatchEmbed: [B,C,T,H,W] -> [B, T', H', W', D] (Linear over (c, it, ih, iw), no bias). */
export class CosmosPatchEmbed extends Module {
  readonly proj: Linear;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly patchSize: readonly [number, number, number]) {
    super();
    const [pt, ph, pw] = patchSize;
    this.proj = this.add('proj', new Linear(inChannels * pt * ph * pw, outChannels, false));
  }
  forward(x: Tensor): Tensor {
    const [B, C, T, H, W] = x.shape;
    const [pt, ph, pw] = this.patchSize;
    const patches = F.permute(x.reshape([B, C, T / pt, pt, H / ph, ph, W / pw, pw]), [0, 2, 4, 6, 1, 3, 5, 7])
      .reshape([B, T / pt, H / ph, W / pw, C * pt * ph * pw]);
    return this.tap(this.proj.forward(patches));
  }
}

/**
 * Sinusoidal timestep features of width `dim` (diffusers Timesteps with flip_sin_to_cos=True,
 * shift 0): [cos(t f), sin(t f)], f_i = exp(-ln(10000) i / (dim/2)), evaluated in float32 as
 * get_timestep_embedding does.
 */
export function timestepFrequencies(dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  const f32 = Math.fround;
  const out = new Float32Array(half);
  const c = f32(-Math.log(10000));
  for (let i = 0; i < half; i++) out[i] = f32(Math.exp(f32(f32(c * i) / half)));
  return out;
}

/** CosmosTimestepEmbedding: linear_2(silu(linear_1(x))), D -> D -> 3D, no biases. */
export class CosmosTimestepEmbedding extends Module {
  readonly linear_1: Linear;
  readonly linear_2: Linear;
  constructor(inF: number, outF: number) {
    super();
    this.linear_1 = this.add('linear_1', new Linear(inF, outF));
    this.linear_2 = this.add('linear_2', new Linear(outF, 3 * outF));
  }
  forward(x: Tensor): Tensor {
    return this.tap(this.linear_2.forward(F.silu(this.linear_1.forward(x))));
  }
}

/** CosmosEmbedding (time_embed): rows of timesteps [R] -> temb [R, 3D], embedded_timestep [R, D]. */
export class CosmosEmbedding extends Module {
  readonly t_embedder: CosmosTimestepEmbedding;
  readonly norm: RMSNorm;
  private freqs: Float32Array;
  constructor(readonly dim: number) {
    super();
    this.t_embedder = this.add('t_embedder', new CosmosTimestepEmbedding(dim, dim));
    this.norm = this.add('norm', new RMSNorm(dim, 1e-6));
    this.freqs = timestepFrequencies(dim);
  }
  forward(timesteps: Tensor): { temb: Tensor; embeddedTimestep: Tensor } {
    const R = timesteps.size;
    const f = F.fromArray(timesteps.backend, this.freqs, [1, this.freqs.length]);
    const ang = F.mul(timesteps.reshape([R, 1]), f);
    const proj = F.concat([F.cos(ang), F.sin(ang)], 1);
    const temb = this.tap(this.t_embedder.forward(proj), 'temb');
    const embeddedTimestep = this.tap(this.norm.forward(proj), 'embedded_timestep');
    return { temb, embeddedTimestep };
  }
}

/**
 * CosmosLearnablePositionalEmbed (Cosmos-1.0): e[t,h,w] = pos_t[t] + pos_h[h] + pos_w[w],
 * normalised per token to e / (eps + |e|_2 sqrt(1/D)). Returns [1, N, D].
 */
export class CosmosLearnablePositionalEmbed extends Module {
  readonly pos_emb_t: Param;
  readonly pos_emb_h: Param;
  readonly pos_emb_w: Param;
  constructor(readonly dim: number, readonly grid: readonly [number, number, number], readonly eps = 1e-6) {
    super();
    this.pos_emb_t = this.param('pos_emb_t', [grid[0], dim]);
    this.pos_emb_h = this.param('pos_emb_h', [grid[1], dim]);
    this.pos_emb_w = this.param('pos_emb_w', [grid[2], dim]);
  }
  forward(grid: readonly [number, number, number], batch: number): Tensor {
    const [T, H, W] = grid;
    grid.forEach((g, i) => {
      if (g > this.grid[i]) {
        throw new DiTInputError(`learnable_pos_embed: ${'THW'[i]} has ${g} patches, the table holds ${this.grid[i]} (max_size // patch_size)`);
      }
    });
    const D = this.dim;
    const et = F.slice(this.pos_emb_t.t, 0, 0, T).reshape([T, 1, 1, D]);
    const eh = F.slice(this.pos_emb_h.t, 0, 0, H).reshape([1, H, 1, D]);
    const ew = F.slice(this.pos_emb_w.t, 0, 0, W).reshape([1, 1, W, D]);
    const e = F.add(F.add(et, eh), ew).reshape([1, T * H * W, D]);
    const norm = F.affine(F.sqrt(F.sum(F.square(e), -1, true)), Math.sqrt(1 / D), this.eps);
    const pe = F.div(e, norm);
    // upstream repeats the table over the batch; the [1, N, D] table broadcasts the same way
    return this.tap(batch === 1 ? pe : F.expand(pe, [batch, T * H * W, D]));
  }
}

// ------------------------------------------------------------------ adaLN

/**
 * Per-row modulation of the timestep embedding: linear_2(linear_1(silu(emb))) + temb[..., :kD],
 * reshaped to [Bm, Tm, 1, kD] so it broadcasts over the tokens of its sample / frame.
 */
function modulation(l1: Linear, l2: Linear, cond: BlockConditioning, k: number): Tensor {
  const D = l1.inFeatures;
  const m = l2.forward(l1.forward(cond.act));
  const base = k * D === cond.temb.shape[1] ? cond.temb : F.slice(cond.temb, 1, 0, k * D);
  return F.add(m, base).reshape([cond.modBatch, cond.modFrames, 1, k * D]);
}

/** LayerNorm (no affine, eps 1e-6) of x [B, N, D] modulated by (shift, scale) [Bm, Tm, 1, D]. */
function modulate(x: Tensor, shift: Tensor, scale: Tensor, modFrames: number): Tensor {
  const [B, N, D] = x.shape;
  const x4 = F.layerNorm(x, null, null, 1e-6).reshape([B, modFrames, N / modFrames, D]);
  return F.add(F.mul(x4, F.affine(scale, 1, 1)), shift).reshape([B, N, D]);
}

/** CosmosAdaLayerNormZero: (LN(x)(1 + scale) + shift, gate). */
export class CosmosAdaLayerNormZero extends Module {
  readonly linear_1: Linear;
  readonly linear_2: Linear;
  constructor(dim: number, loraDim: number) {
    super();
    this.linear_1 = this.add('linear_1', new Linear(dim, loraDim));
    this.linear_2 = this.add('linear_2', new Linear(loraDim, 3 * dim));
  }
  forward(x: Tensor, cond: BlockConditioning): { h: Tensor; gate: Tensor } {
    const [shift, scale, gate] = F.chunk(modulation(this.linear_1, this.linear_2, cond, 3), 3, -1);
    return { h: this.tap(modulate(x, shift, scale, cond.modFrames)), gate };
  }
}

/** CosmosAdaLayerNorm (final layer): LN(x)(1 + scale) + shift with temb[..., :2D]. */
export class CosmosAdaLayerNorm extends Module {
  readonly linear_1: Linear;
  readonly linear_2: Linear;
  constructor(dim: number, loraDim: number) {
    super();
    this.linear_1 = this.add('linear_1', new Linear(dim, loraDim));
    this.linear_2 = this.add('linear_2', new Linear(loraDim, 2 * dim));
  }
  forward(x: Tensor, cond: BlockConditioning): Tensor {
    const [shift, scale] = F.chunk(modulation(this.linear_1, this.linear_2, cond, 2), 2, -1);
    return this.tap(modulate(x, shift, scale, cond.modFrames));
  }
}

/** x + gate * y with gate [Bm, Tm, 1, D] broadcast over the tokens of each frame. */
function gatedAdd(x: Tensor, gate: Tensor, y: Tensor, modFrames: number): Tensor {
  const [B, N, D] = x.shape;
  const g = F.mul(y.reshape([B, modFrames, N / modFrames, D]), gate).reshape([B, N, D]);
  return F.add(x, g);
}

// ------------------------------------------------------------------ attention

/**
 * diffusers Attention with CosmosAttnProcessor2_0 (self: RoPE on q, k) or, with an image context,
 * CosmosAttention / CosmosAttnProcessor2_5 (text attention + separate image attention, summed
 * before to_out). q, k get a per-head RMSNorm (eps 1e-5; image branch 1e-6).
 */
export class CosmosAttention extends Module {
  readonly to_q: Linear;
  readonly to_k: Linear;
  readonly to_v: Linear;
  readonly to_out: Linear;
  readonly norm_q: RMSNorm;
  readonly norm_k: RMSNorm;
  readonly q_img: Linear | null = null;
  readonly k_img: Linear | null = null;
  readonly v_img: Linear | null = null;
  readonly q_img_norm: RMSNorm | null = null;
  readonly k_img_norm: RMSNorm | null = null;

  constructor(readonly heads: number, readonly headDim: number, kvDim: number, imgContext = false) {
    super();
    const D = heads * headDim;
    this.to_q = this.add('to_q', new Linear(D, D));
    this.to_k = this.add('to_k', new Linear(kvDim, D));
    this.to_v = this.add('to_v', new Linear(kvDim, D));
    this.norm_q = this.add('norm_q', new RMSNorm(headDim, 1e-5));
    this.norm_k = this.add('norm_k', new RMSNorm(headDim, 1e-5));
    this.to_out = this.add('to_out.0', new Linear(D, D));
    if (imgContext) {
      this.q_img = this.add('q_img', new Linear(D, D));
      this.k_img = this.add('k_img', new Linear(D, D));
      this.v_img = this.add('v_img', new Linear(D, D));
      this.q_img_norm = this.add('q_img_norm', new RMSNorm(headDim, 1e-6));
      this.k_img_norm = this.add('k_img_norm', new RMSNorm(headDim, 1e-6));
    }
  }

  /** softmax(q kᵀ / √d) v over heads; q from x [B, L, D], k/v from ctx [B, S, ·]. */
  private attend(x: Tensor, ctx: Tensor, q: Linear, k: Linear, v: Linear, nq: RMSNorm, nk: RMSNorm, rope: RopeTables | null): Tensor {
    const [B, L] = x.shape;
    const S = ctx.shape[1];
    const H = this.heads;
    const d = this.headDim;
    if (ctx.shape[0] !== B) throw new DiTInputError(`${this.path}: context batch ${ctx.shape[0]} differs from the hidden-state batch ${B}`);
    let qh = nq.forward(q.forward(x).reshape([B, L, H, d]));
    let kh = nk.forward(k.forward(ctx).reshape([B, S, H, d]));
    if (rope) {
      qh = F.rope(qh, rope.cos, rope.sin, { mode: 'half', layout: 'blhd' });
      kh = F.rope(kh, rope.cos, rope.sin, { mode: 'half', layout: 'blhd' });
    }
    const vh = v.forward(ctx).reshape([B, S, H, d]);
    const toHeads = (t: Tensor) => F.permute(t, [0, 2, 1, 3]);
    const o = F.attention(toHeads(qh), toHeads(kh), toHeads(vh));
    return F.permute(o, [0, 2, 1, 3]).reshape([B, L, H * d]);
  }

  /**
   * Self-attention when `context` is null (with the RoPE tables), cross-attention to `context`
   * otherwise (no RoPE); `image` adds the image-context branch.
   */
  forward(x: Tensor, context: Tensor | null, rope: RopeTables | null, image: Tensor | null = null): Tensor {
    let o = this.attend(x, context ?? x, this.to_q, this.to_k, this.to_v, this.norm_q, this.norm_k, context ? null : rope);
    if (image && this.q_img) {
      const oi = this.attend(x, image, this.q_img, this.k_img!, this.v_img!, this.q_img_norm!, this.k_img_norm!, null);
      o = F.add(o, oi);
    }
    return this.tap(this.to_out.forward(o));
  }
}

/** FeedForward(activation "gelu", no biases): net.0.proj -> exact GELU -> net.2. */
export class FeedForward extends Module {
  readonly proj_in: Linear;
  readonly proj_out: Linear;
  constructor(dim: number, inner: number) {
    super();
    this.proj_in = this.add('net.0.proj', new Linear(dim, inner));
    this.proj_out = this.add('net.2', new Linear(inner, dim));
  }
  /**
   * `chunkTokens` bounds the [tokens, inner] intermediate: the rows are processed that many at a
   * time (same result; for full-resolution videos whose MLP activation would not fit one buffer).
   */
  forward(x: Tensor, chunkTokens: number | null = null): Tensor {
    const D = x.shape[x.rank - 1];
    const rows = x.size / D;
    const mlp = (t: Tensor) => this.proj_out.forward(F.gelu(this.proj_in.forward(t)));
    if (!chunkTokens || rows <= chunkTokens) return this.tap(mlp(x));
    const flat = x.reshape([rows, D]);
    const parts: Tensor[] = [];
    for (let r = 0; r < rows; r += chunkTokens) {
      parts.push(scope(() => mlp(F.slice(flat, 0, r, Math.min(rows, r + chunkTokens)))));
    }
    const out = F.concat(parts, 0).reshape(x.shape);
    for (const t of parts) t.dispose();
    return this.tap(out);
  }
}

// ------------------------------------------------------------------ block

export interface RopeTables {
  cos: Tensor;
  sin: Tensor;
}

/** What every block reads besides the hidden state. */
export interface BlockConditioning {
  /** projected text states [B, S, text_embed_dim] */
  text: Tensor;
  /** projected image context [B, Si, D] (Transfer2.5), or null */
  image: Tensor | null;
  /** silu(embedded_timestep) [R, D] */
  act: Tensor;
  /** t_embedder output [R, 3D] */
  temb: Tensor;
  /** R = modBatch * modFrames: rows per sample (1 or B) times rows per sample (1 or T') */
  modBatch: number;
  modFrames: number;
  rope: RopeTables;
  /** learnable absolute position embedding [1|B, N, D], added at the start of every block */
  extraPosEmb: Tensor | null;
}

export interface BlockOptions {
  /** process the MLP this many tokens at a time (null: all at once) */
  ffChunkTokens?: number | null;
  /** block 0 of a ControlNet: x = before_proj(x) + latents */
  latents?: Tensor | null;
  /** ControlNet residual added after the MLP */
  controlnetResidual?: Tensor | null;
}

export class CosmosTransformerBlock extends Module {
  readonly norm1: CosmosAdaLayerNormZero;
  readonly attn1: CosmosAttention;
  readonly norm2: CosmosAdaLayerNormZero;
  readonly attn2: CosmosAttention;
  readonly norm3: CosmosAdaLayerNormZero;
  readonly ff: FeedForward;
  readonly before_proj: Linear | null;
  readonly after_proj: Linear | null;

  constructor(cfg: CosmosTransformerConfig, opts: { beforeProj?: boolean; afterProj?: boolean } = {}) {
    super();
    const D = hiddenSize(cfg);
    const H = cfg.numAttentionHeads;
    const d = cfg.attentionHeadDim;
    this.norm1 = this.add('norm1', new CosmosAdaLayerNormZero(D, cfg.adalnLoraDim));
    this.attn1 = this.add('attn1', new CosmosAttention(H, d, D));
    this.norm2 = this.add('norm2', new CosmosAdaLayerNormZero(D, cfg.adalnLoraDim));
    this.attn2 = this.add('attn2', new CosmosAttention(H, d, cfg.textEmbedDim, cfg.imgContextDimIn !== null));
    this.norm3 = this.add('norm3', new CosmosAdaLayerNormZero(D, cfg.adalnLoraDim));
    this.ff = this.add('ff', new FeedForward(D, Math.trunc(D * cfg.mlpRatio)));
    this.before_proj = opts.beforeProj ? this.add('before_proj', new Linear(D, D, true)) : null;
    this.after_proj = opts.afterProj ? this.add('after_proj', new Linear(D, D, true)) : null;
  }

  /** x [B, N, D] -> [B, N, D] (a ControlNet applies `after_proj` to the result itself). */
  forward(x0: Tensor, cond: BlockConditioning, opts: BlockOptions = {}): Tensor {
    let x = x0;
    if (this.before_proj) {
      if (!opts.latents) throw new DiTInputError(`${this.path}: before_proj needs the base latents`);
      x = F.add(this.before_proj.forward(x), opts.latents);
    }
    if (cond.extraPosEmb) x = F.add(x, cond.extraPosEmb);
    const Tm = cond.modFrames;
    const n1 = this.norm1.forward(x, cond);
    x = gatedAdd(x, n1.gate, this.attn1.forward(n1.h, null, cond.rope), Tm);
    const n2 = this.norm2.forward(x, cond);
    x = gatedAdd(x, n2.gate, this.attn2.forward(n2.h, cond.text, null, cond.image), Tm);
    const n3 = this.norm3.forward(x, cond);
    x = gatedAdd(x, n3.gate, this.ff.forward(n3.h, opts.ffChunkTokens ?? null), Tm);
    if (opts.controlnetResidual) x = F.add(x, opts.controlnetResidual);
    return this.tap(x);
  }
}

/** The RoPE module (no parameters): records `rope.cos` / `rope.sin` taps. */
export class CosmosRotaryPosEmbed extends Module {
  readonly cache: Rope3DCache;
  constructor(cfg: CosmosTransformerConfig) {
    super();
    this.cache = new Rope3DCache({ headDim: cfg.attentionHeadDim, maxSize: cfg.maxSize, patchSize: cfg.patchSize, ropeScale: cfg.ropeScale });
  }
  forward(backend: Backend, grid: readonly [number, number, number], fps: number | null): RopeTables {
    const t = this.cache.tables(backend, grid, fps);
    return { cos: this.tap(t.cos, 'cos'), sin: this.tap(t.sin, 'sin') };
  }
}

// ------------------------------------------------------------------ inputs

export interface CosmosForwardInputs {
  /** [B, C, T, H, W] latent (C = in_channels, less one when a condition mask is passed) */
  hiddenStates: Tensor;
  /** [B] (or [1], shared) per sample, or [B, 1, T, 1, 1] per frame (needs patch t = 1) */
  timestep: Tensor;
  /** [B, S, text_embed_dim], or [B, S, crossattn_proj_in_channels] with the text projection */
  encoderHiddenStates: Tensor;
  /** Transfer2.5 image context [B, Si, img_context_dim_in]; null skips the image branch */
  imageContext?: Tensor | null;
  /** [B, 1, T, H, W], concatenated after the latent channels */
  conditionMask?: Tensor | null;
  /** [1, 1, Hp, Wp] (1 = padded pixel), resized NEAREST to (H, W); absent: zeros */
  paddingMask?: Tensor | null;
  /** frames per second for the temporal RoPE positions (t / fps * 24); null/absent: t itself */
  fps?: number | null;
  /** ControlNet residuals: entry k is added after block k * controlnet_block_every_n */
  controlnetResiduals?: readonly Tensor[] | null;
}

/** Source row of output row i for torch's NEAREST resize (float32 scale in / out). */
export function nearestIndices(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  const f32 = Math.fround;
  const scale = f32(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    idx[i] = inSize === outSize ? i : Math.min(Math.floor(f32(i * scale)), inSize - 1);
  }
  return idx;
}

/** The padding mask [1, 1, Hp, Wp] resized NEAREST to [1, 1, H, W]. */
export function resizePaddingMask(mask: Tensor, H: number, W: number): Tensor {
  if (mask.rank !== 4 || mask.shape[0] !== 1 || mask.shape[1] !== 1) {
    throw new DiTInputError(`padding_mask must be [1, 1, height, width] (it is repeated over the batch), got ${shapeStr(mask.shape)}`);
  }
  const [, , Hp, Wp] = mask.shape;
  let m = mask;
  if (Hp !== H) m = F.indexSelect(m, 2, F.fromArray(mask.backend, nearestIndices(Hp, H), [H], 'i32'));
  if (Wp !== W) m = F.indexSelect(m, 3, F.fromArray(mask.backend, nearestIndices(Wp, W), [W], 'i32'));
  return m;
}

// ------------------------------------------------------------------ the model

export interface EmbeddedInputs {
  /** [B, N, D] patch tokens */
  tokens: Tensor;
  cond: BlockConditioning;
  /** patched grid (T', H', W') */
  grid: [number, number, number];
  /** latent (T, H, W) */
  latentThw: [number, number, number];
  batch: number;
}

export class CosmosTransformer3DModel extends Module {
  readonly patch_embed: CosmosPatchEmbed;
  readonly rope: CosmosRotaryPosEmbed;
  readonly learnable_pos_embed: CosmosLearnablePositionalEmbed | null;
  readonly time_embed: CosmosEmbedding;
  readonly transformer_blocks: CosmosTransformerBlock[];
  readonly norm_out: CosmosAdaLayerNorm;
  readonly proj_out: Linear;
  readonly crossattn_proj: LinearGelu | null;
  readonly img_context_proj: LinearGelu | null;
  readonly hiddenSize: number;
  /**
   * Run each block's MLP this many tokens at a time (null: all at once). The MLP activation is
   * tokens x 4D floats: at full resolution (e.g. 84480 tokens x 8192 for the 2B models) that is
   * larger than one GPU buffer binding may be, so a pipeline sets this from the device's limits.
   */
  ffChunkTokens: number | null = null;

  constructor(readonly config: CosmosTransformerConfig) {
    super();
    const cfg = config;
    const D = hiddenSize(cfg);
    this.hiddenSize = D;
    const [pt, ph, pw] = cfg.patchSize;
    this.patch_embed = this.add('patch_embed', new CosmosPatchEmbed(patchEmbedInChannels(cfg), D, cfg.patchSize));
    this.rope = this.add('rope', new CosmosRotaryPosEmbed(cfg));
    this.learnable_pos_embed = cfg.extraPosEmbedType === 'learnable'
      ? this.add('learnable_pos_embed', new CosmosLearnablePositionalEmbed(D, maxGrid(cfg)))
      : null;
    this.time_embed = this.add('time_embed', new CosmosEmbedding(D));
    this.transformer_blocks = Array.from({ length: cfg.numLayers }, (_, i) => this.add(`transformer_blocks.${i}`, new CosmosTransformerBlock(cfg)));
    this.norm_out = this.add('norm_out', new CosmosAdaLayerNorm(D, cfg.adalnLoraDim));
    this.proj_out = this.add('proj_out', new Linear(D, pt * ph * pw * cfg.outChannels));
    this.crossattn_proj = cfg.useCrossattnProjection
      ? this.add('crossattn_proj', new LinearGelu(cfg.crossattnProjInChannels, cfg.encoderHiddenStatesChannels))
      : null;
    this.img_context_proj = cfg.imgContextDimIn !== null
      ? this.add('img_context_proj', new LinearGelu(cfg.imgContextDimIn, cfg.imgContextDimOut))
      : null;
  }

  static fromConfigJson(json: Record<string, unknown>): CosmosTransformer3DModel {
    return new CosmosTransformer3DModel(parseCosmosTransformerConfig(json));
  }


  /** Device bytes the checkpoint's parameters will take (their stored dtypes kept), before loading. */
  plannedBytes(src: TensorSource, opts: LoadOptions = {}): number {
    return plannedBytes(this, src, opts);
  }

  /** Fill the parameters from a diffusers-layout checkpoint (all keys and shapes checked first). */
  async load(src: TensorSource, backend: Backend, opts: LoadOptions = {}): Promise<LoadReport> {
    this.rope.cache.clear();
    return loadWeights(this, src, backend, opts);
  }

  /**
   * A diffusers `transformer/` folder (config.json + diffusion_pytorch_model*.safetensors, sharded
   * with an index or not). `maxBytes` refuses, before allocating, a checkpoint that would not fit.
   */
  static async fromPretrained(dir: string, backend: Backend, opts: { maxBytes?: number; load?: LoadOptions } = {}): Promise<{ model: CosmosTransformer3DModel; plannedBytes: number; report: LoadReport }> {
    const ckpt = await openCheckpoint(dir);
    try {
      const cfgJson = ckpt.config;
      if (!cfgJson || typeof cfgJson !== 'object') throw new DiTConfigError(`${join(dir, 'config.json')}: missing beside the checkpoint`);
      const model = CosmosTransformer3DModel.fromConfigJson(cfgJson as Record<string, unknown>);
      const bytes = model.plannedBytes(ckpt, opts.load);
      if (opts.maxBytes !== undefined && bytes > opts.maxBytes) {
        throw new DiTConfigError(`${dir}: the transformer needs ${(bytes / 2 ** 30).toFixed(2)} GiB of parameters, more than the ${(opts.maxBytes / 2 ** 30).toFixed(2)} GiB allowed`);
      }
      const report = await model.load(ckpt, backend, opts.load);
      return { model, plannedBytes: bytes, report };
    } finally {
      await ckpt.close();
    }
  }

  override dispose(): void {
    this.rope.cache.clear();
    super.dispose();
  }

  /**
   * Everything before the blocks: channel concat, RoPE, learnable position embedding, patch
   * embedding, timestep embedding, text / image projections.
   */
  embed(inputs: CosmosForwardInputs): EmbeddedInputs {
    const cfg = this.config;
    const x0 = inputs.hiddenStates;
    if (x0.rank !== 5) throw new DiTInputError(`hidden_states must be [B, C, T, H, W], got ${shapeStr(x0.shape)}`);
    const [B, , T, H, W] = x0.shape;
    const [pt, ph, pw] = cfg.patchSize;
    if (T % pt || H % ph || W % pw) {
      throw new DiTInputError(`hidden_states ${shapeStr(x0.shape)}: T, H, W must be multiples of patch_size ${JSON.stringify(cfg.patchSize)}`);
    }
    const backend = x0.backend;

    // 1. input channels: latent, condition mask, resized padding mask
    const parts = [x0];
    if (inputs.conditionMask) {
      const m = inputs.conditionMask;
      if (m.shape.join() !== [B, 1, T, H, W].join()) throw new DiTInputError(`condition_mask must be ${shapeStr([B, 1, T, H, W])}, got ${shapeStr(m.shape)}`);
      parts.push(m);
    }
    if (cfg.concatPaddingMask) {
      const pm = inputs.paddingMask ? resizePaddingMask(inputs.paddingMask, H, W) : F.zeros(backend, [1, 1, H, W]);
      parts.push(F.expand(pm.reshape([1, 1, 1, H, W]), [B, 1, T, H, W]));
    }
    const x = parts.length === 1 ? x0 : F.concat(parts, 1);
    const cin = patchEmbedInChannels(cfg);
    if (x.shape[1] !== cin) {
      throw new DiTInputError(
        `the patch embedding takes ${cin} channels (in_channels ${cfg.inChannels}${cfg.concatPaddingMask ? ' + padding mask' : ''}), ` +
        `got ${x0.shape[1]} latent channels${inputs.conditionMask ? ' + condition mask' : ''}${cfg.concatPaddingMask ? ' + padding mask' : ''} = ${x.shape[1]}` +
        (!inputs.conditionMask && x.shape[1] + 1 === cin ? ' (this model expects a condition_mask)' : ''),
      );
    }

    // 2. positional embeddings
    const grid = patchGrid([T, H, W], cfg.patchSize);
    const rope = this.rope.forward(backend, grid, inputs.fps ?? null);
    const extraPosEmb = this.learnable_pos_embed ? this.learnable_pos_embed.forward(grid, B) : null;

    // 3. patchify
    const N = grid[0] * grid[1] * grid[2];
    const tokens = this.patch_embed.forward(x).reshape([B, N, this.hiddenSize]);

    // 4. timestep embedding: one row per sample, or per frame
    const ts = inputs.timestep;
    let modBatch: number;
    let modFrames: number;
    if (ts.rank === 1) {
      if (ts.shape[0] !== B && ts.shape[0] !== 1) throw new DiTInputError(`timestep [${ts.shape[0]}] must have one value per sample (batch ${B}) or one in all`);
      modBatch = ts.shape[0];
      modFrames = 1;
    } else if (ts.rank === 5) {
      if (ts.shape.join() !== [B, 1, T, 1, 1].join()) throw new DiTInputError(`a per-frame timestep must be ${shapeStr([B, 1, T, 1, 1])}, got ${shapeStr(ts.shape)}`);
      if (pt !== 1) throw new DiTInputError(`per-frame timesteps need patch_size t = 1 (got ${pt})`);
      modBatch = B;
      modFrames = grid[0];
    } else {
      throw new DiTInputError(`timestep must be [B] or [B, 1, T, 1, 1], got ${shapeStr(ts.shape)}`);
    }
    const { temb, embeddedTimestep } = this.time_embed.forward(ts);
    const act = F.silu(embeddedTimestep);

    // 5. context projections
    let text = inputs.encoderHiddenStates;
    if (text.rank !== 3 || text.shape[0] !== B) throw new DiTInputError(`encoder_hidden_states must be [${B}, S, dim], got ${shapeStr(text.shape)}`);
    const wantText = this.crossattn_proj ? cfg.crossattnProjInChannels : cfg.textEmbedDim;
    if (text.shape[2] !== wantText) {
      throw new DiTInputError(`encoder_hidden_states has ${text.shape[2]} features, the model expects ${wantText}${this.crossattn_proj ? ' (crossattn_proj_in_channels)' : ' (text_embed_dim)'}`);
    }
    if (this.crossattn_proj) text = this.crossattn_proj.forward(text);
    let image: Tensor | null = null;
    if (inputs.imageContext && this.img_context_proj) image = this.img_context_proj.forward(inputs.imageContext);

    return {
      tokens,
      cond: { text, image, act, temb, modBatch, modFrames, rope, extraPosEmb },
      grid,
      latentThw: [T, H, W],
      batch: B,
    };
  }

  /** Final adaLN, projection and unpatchify: [B, N, D] -> [B, C_out, T, H, W]. */
  head(x: Tensor, e: EmbeddedInputs): Tensor {
    const [pt, ph, pw] = this.config.patchSize;
    const C = this.config.outChannels;
    const [Tp, Hp, Wp] = e.grid;
    const [T, H, W] = e.latentThw;
    const h = this.proj_out.forward(this.norm_out.forward(x, e.cond));
    return F.permute(h.reshape([e.batch, Tp, Hp, Wp, ph, pw, pt, C]), [0, 7, 1, 6, 2, 4, 3, 5]).reshape([e.batch, C, T, H, W]);
  }

  /** The raw network output [B, out_channels, T, H, W] (EDM F for 1.0, velocity for 2.5). */
  forward(inputs: CosmosForwardInputs): Tensor {
    const residuals = inputs.controlnetResiduals ?? null;
    const every = this.config.controlnetBlockEveryN;
    if (residuals && !every) throw new DiTInputError('controlnet residuals given, but the config has no controlnet_block_every_n');
    return scope(() => {
      const e = this.embed(inputs);
      let x = e.tokens;
      this.transformer_blocks.forEach((block, i) => {
        let residual: Tensor | null = null;
        if (residuals && i % every! === 0) {
          const k = i / every!;
          if (k >= residuals.length) throw new DiTInputError(`block ${i} takes controlnet residual ${k}, but only ${residuals.length} were given`);
          residual = residuals[k];
        }
        const prev = x;
        x = scope(() => block.forward(prev, e.cond, { controlnetResidual: residual, ffChunkTokens: this.ffChunkTokens }));
        if (prev !== e.tokens) prev.dispose();
      });
      return this.head(x, e);
    });
  }
}
