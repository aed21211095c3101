// The modules a Cosmos DiT block is made of, under diffusers' names: the patch and timestep
// embeddings, Cosmos-1.0's learnable position embedding, the adaLN modulations, the QK-normed
// attention (with Transfer2.5's image-context branch) and the MLP. Spec: dit.md §2.
import { Linear, RMSNorm } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { DiTInputError } from './config.js';

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
    // scoped: the table lives for the whole forward, its token-sized intermediates need not
    const pe = scope(() => {
      const et = F.slice(this.pos_emb_t.t, 0, 0, T).reshape([T, 1, 1, D]);
      const eh = F.slice(this.pos_emb_h.t, 0, 0, H).reshape([1, H, 1, D]);
      const ew = F.slice(this.pos_emb_w.t, 0, 0, W).reshape([1, 1, W, D]);
      const e = F.add(F.add(et, eh), ew).reshape([1, T * H * W, D]);
      const norm = F.affine(F.sqrt(F.sum(F.square(e), -1, true)), Math.sqrt(1 / D), this.eps);
      return F.div(e, norm);
    });
    // upstream repeats the table over the batch; the [1, N, D] table broadcasts the same way
    return this.tap(batch === 1 ? pe : F.expand(pe, [batch, T * H * W, D]));
  }
}

// ------------------------------------------------------------------ adaLN

/**
 * The adaLN modulations: linear_2(linear_1(silu(emb))) + temb[..., :kD] per timestep row, cut into
 * k chunks of D (shift, scale[, gate]) of shape [Bm, Tm, 1, D] that broadcast over the tokens of
 * their sample / frame; the normalised input is LN(x) (no affine, eps 1e-6) * (1 + scale) + shift.
 */
abstract class AdaLayerNormBase extends Module {
  readonly linear_1: Linear;
  readonly linear_2: Linear;
  constructor(dim: number, loraDim: number, private readonly k: number) {
    super();
    this.linear_1 = this.add('linear_1', new Linear(dim, loraDim));
    this.linear_2 = this.add('linear_2', new Linear(loraDim, k * dim));
  }

  protected modulation(cond: BlockConditioning): Tensor[] {
    const k = this.k;
    const D = this.linear_1.inFeatures;
    const m = this.linear_2.forward(this.linear_1.forward(cond.act));
    const base = k * D === cond.temb.shape[1] ? cond.temb : F.slice(cond.temb, 1, 0, k * D);
    return F.chunk(F.add(m, base).reshape([cond.modBatch, cond.modFrames, 1, k * D]), k, -1);
  }

  /** LN(x) (1 + scale) + shift in one pass; scale / shift [modBatch, modFrames, 1, D]. */
  protected modulate(x: Tensor, shift: Tensor, scale: Tensor, _modFrames: number): Tensor {
    return this.tap(F.layerNormModulate(x, scale, shift, 1e-6));
  }
}

/** CosmosAdaLayerNormZero: (LN(x)(1 + scale) + shift, gate). */
export class CosmosAdaLayerNormZero extends AdaLayerNormBase {
  constructor(dim: number, loraDim: number) {
    super(dim, loraDim, 3);
  }
  forward(x: Tensor, cond: BlockConditioning): { h: Tensor; gate: Tensor } {
    const [shift, scale, gate] = this.modulation(cond);
    return { h: this.modulate(x, shift, scale, cond.modFrames), gate };
  }
}

/** CosmosAdaLayerNorm (final layer): LN(x)(1 + scale) + shift with temb[..., :2D]. */
export class CosmosAdaLayerNorm extends AdaLayerNormBase {
  constructor(dim: number, loraDim: number) {
    super(dim, loraDim, 2);
  }
  forward(x: Tensor, cond: BlockConditioning): Tensor {
    const [shift, scale] = this.modulation(cond);
    return this.modulate(x, shift, scale, cond.modFrames);
  }
}

/** x + gate * y with gate [Bm, Tm, 1, D] broadcast over the tokens of each frame. */
export function gatedAdd(x: Tensor, gate: Tensor, y: Tensor, modFrames: number): Tensor {
  const [B, N, D] = x.shape;
  const g = F.mul(y.reshape([B, modFrames, N / modFrames, D]), gate).reshape([B, N, D]);
  return F.add(x, g);
}

// ------------------------------------------------------------------ attention

/**
 * diffusers Attention with CosmosAttnProcessor2_0 (self: RoPE on q, k) or, with an image context,
 * CosmosAttention / CosmosAttnProcessor2_5 (text attention + separate image attention, summed
 * before to_out). q, k get a per-head RMSNorm (eps 1e-5 as diffusers; NVIDIA's own networks,
 * e.g. the AR diffusion decoder, use 1e-6; image branch 1e-6).
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

  constructor(readonly heads: number, readonly headDim: number, kvDim: number, imgContext = false, qkNormEps = 1e-5) {
    super();
    const D = heads * headDim;
    this.to_q = this.add('to_q', new Linear(D, D));
    this.to_k = this.add('to_k', new Linear(kvDim, D));
    this.to_v = this.add('to_v', new Linear(kvDim, D));
    this.norm_q = this.add('norm_q', new RMSNorm(headDim, qkNormEps));
    this.norm_k = this.add('norm_k', new RMSNorm(headDim, qkNormEps));
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
    // q, k, v each made in a scope of its own: only the [B, H, L, d] heads outlive their projection,
    // norm and RoPE (at full resolution every one of those is token-sized)
    const heads = (t: () => Tensor) => scope(() => F.permute(t(), [0, 2, 1, 3]));
    const withRope = (t: Tensor) => (rope ? F.rope(t, rope.cos, rope.sin, { mode: 'half', layout: 'blhd' }) : t);
    const qh = heads(() => withRope(nq.forward(q.forward(x).reshape([B, L, H, d]))));
    const kh = heads(() => withRope(nk.forward(k.forward(ctx).reshape([B, S, H, d]))));
    const vh = heads(() => v.forward(ctx).reshape([B, S, H, d]));
    const o = scope(() => F.permute(F.attention(qh, kh, vh), [0, 2, 1, 3]).reshape([B, L, H * d]));
    qh.dispose();
    kh.dispose();
    vh.dispose();
    return o;
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
