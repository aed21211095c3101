// The AR diffusion decoder network: cosmos-predict1's DiffusionDecoderGeneralDIT, i.e. the
// Cosmos-1.0 DiT (the blocks, RoPE, timestep embedding, adaLN-LoRA and final layer of
// src/models/dit) fed 16 + 32 + 1 channels: the noisy CV latent, the DV token condition and the
// padding mask. Spec ar_decoder.md §2-3.
//
//   cond  = bilinear(token_embedder(ids) -> (B T) Dt h w, to (H, W))                [B, Dt, T, H, W]
//   x     = cat(x, cond, nearest(padding_mask))                                      [B, C+Dt+1, T, H, W]
//   tokens = x_embedder(x); rope = pos_embedder(T', H', W', fps)
//   emb = sinusoid(t); lora = t_embedder.1(emb); adaLN input = silu(affline_norm(emb))
//   blocks (FA with RoPE, CA to the T5 rows, MLP), final_layer, unpatchify           [B, C, T, H, W]
//
// The module tree keeps upstream's names where it has its own modules (x_embedder, token_embedder,
// t_embedder, affline_norm, blocks.block{i}, final_layer) and the dit modules' names below them;
// arDecoderCheckpointKey maps the released `net.*` keys onto it. Taps are recorded at upstream's
// module paths (blocks in [B, N, D]; the conformance kind lays them out THWBD).
import { Embedding, Linear, RMSNorm } from '../../engine/layers.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import type { LoadOptions } from '../../engine/module.js';
import { CosmosRotaryPosEmbed, CosmosTransformerBlock } from '../dit/block.js';
import { type BlockConditioning, CosmosAdaLayerNorm, CosmosPatchEmbed, CosmosTimestepEmbedding, timestepFrequencies } from '../dit/layers.js';
import { patchGrid } from '../dit/rope3d.js';
import type { Config, ModuleFamily } from '../load.js';
import {
  type ArDecoderConfig, RELEASED_AR_DECODER_CONFIG_JSON, blockConfig, parseArDecoderConfig, patchEmbedInChannels, patchSize,
} from './config.js';
import { ArDecoderInputError, paddingMaskChannel, resizeBilinearUp } from './conditioning.js';

/** The sinusoidal features (`t_embedder.0`, Timesteps) and the adaLN-LoRA base (`t_embedder.1`). */
export class DecoderTimestepEmbedder extends Module {
  readonly mlp: CosmosTimestepEmbedding;
  private readonly freqs: Float32Array;
  constructor(readonly dim: number) {
    super();
    this.mlp = this.add(1, new CosmosTimestepEmbedding(dim, dim));
    this.freqs = timestepFrequencies(dim);
  }
  /** timesteps [R] -> emb [R, D] (cos first), adaln_lora [R, 3D] */
  forward(t: Tensor): { emb: Tensor; adalnLora: Tensor } {
    const R = t.size;
    const ang = F.mul(t.reshape([R, 1]), F.fromArray(t.backend, this.freqs, [1, this.freqs.length]));
    const emb = this.tap(F.concat([F.cos(ang), F.sin(ang)], 1), 'emb');
    return { emb, adalnLora: this.tap(this.mlp.forward(emb), 'adaln_lora') };
  }
}

/** FinalLayer: adaLN (shift, scale from adaLN_modulation + lora[:2D]) then Linear(D, p p pt C). */
export class DecoderFinalLayer extends Module {
  readonly norm: CosmosAdaLayerNorm;
  readonly linear: Linear;
  constructor(dim: number, loraDim: number, outFeatures: number) {
    super();
    this.norm = this.add('norm', new CosmosAdaLayerNorm(dim, loraDim));
    this.linear = this.add('linear', new Linear(dim, outFeatures));
  }
  /** [B, N, D] -> [B, N, p p pt C], recorded as upstream's [B T', H' W', ·] */
  forward(x: Tensor, cond: BlockConditioning, grid: readonly [number, number, number]): Tensor {
    const [B, N] = x.shape;
    const h = this.linear.forward(this.norm.forward(x, cond));
    return this.tap(h, undefined, [B * grid[0], N / grid[0], h.shape[2]]);
  }
}

export interface DecoderForwardOptions {
  /** frames per second of the RoPE temporal positions (t / fps * 24); 24 in the pipeline */
  fps: number;
  /** [B | 1, 1, Hpx, Wpx] pixel padding mask (1 = padded); absent: zeros */
  paddingMask?: Tensor | null;
}

export class DiffusionDecoderDiT extends Module {
  readonly x_embedder: CosmosPatchEmbed;
  readonly token_embedder: Embedding;
  readonly pos_embedder: CosmosRotaryPosEmbed;
  readonly t_embedder: DecoderTimestepEmbedder;
  readonly affline_norm: RMSNorm;
  readonly blocks: CosmosTransformerBlock[];
  readonly final_layer: DecoderFinalLayer;
  /** Run each block's MLP this many tokens at a time (null: all at once); see CosmosTransformer3DModel. */
  ffChunkTokens: number | null = null;

  constructor(readonly config: ArDecoderConfig) {
    super();
    const c = config;
    const D = c.modelChannels;
    const dit = blockConfig(c);
    const [pt, ph, pw] = patchSize(c);
    this.x_embedder = this.add('x_embedder', new CosmosPatchEmbed(patchEmbedInChannels(c), D, patchSize(c)));
    this.token_embedder = this.add('token_embedder', new Embedding(c.vocabSize, c.tokenDim));
    this.pos_embedder = this.add('pos_embedder', new CosmosRotaryPosEmbed(dit));
    this.t_embedder = this.add('t_embedder', new DecoderTimestepEmbedder(D));
    this.affline_norm = this.add('affline_norm', new RMSNorm(D, 1e-6));
    // NVIDIA's attention normalises q and k with TransformerEngine's RMSNorm at eps 1e-6
    this.blocks = Array.from({ length: c.numBlocks }, (_, i) => this.add(`blocks.block${i}`, new CosmosTransformerBlock(dit, { qkNormEps: 1e-6 })));
    this.final_layer = this.add('final_layer', new DecoderFinalLayer(D, c.adalnLoraDim, pt * ph * pw * c.outChannels));
  }

  override dispose(): void {
    this.pos_embedder.cache.clear();
    super.dispose();
  }

  /**
   * The token condition [B, token_dim, T, H, W] of ids [B, 1, T, h, w] (i32) for a latent of
   * spatial size (H, W): embedded, then resized BILINEAR per frame.
   */
  tokenCondition(ids: Tensor, H: number, W: number): Tensor {
    if (ids.rank !== 5 || ids.shape[1] !== 1) throw new ArDecoderInputError(`latent_condition: must be [B, 1, T, h, w] token ids; got ${shapeStr(ids.shape)}`);
    if (ids.dtype !== 'i32') throw new ArDecoderInputError(`latent_condition: must hold integer token ids (i32), got ${ids.dtype}`);
    const [B, , T, h, w] = ids.shape;
    return scope(() => {
      const e = this.token_embedder.forward(ids).reshape([B, T, h, w, this.config.tokenDim]);
      return resizeBilinearUp(F.permute(e, [0, 4, 1, 2, 3]), H, W, 'latent_condition');
    });
  }

  /** What enters the patch embedding: cat([x, token condition, padding mask]) on channels, [B, C + Dt (+ 1), T, H, W]. */
  inputChannels(x: Tensor, latentCondition: Tensor, paddingMask?: Tensor | null): Tensor {
    const [B, , T, H, W] = x.shape;
    return scope(() => {
      const parts = [x, this.tokenCondition(latentCondition, H, W)];
      if (this.config.concatPaddingMask) parts.push(paddingMaskChannel(paddingMask, B, T, H, W, x.backend));
      return F.concat(parts, 1);
    });
  }

  /**
   * The raw network output [B, out_channels, T, H, W] (EDM F: the scheduler preconditions it).
   * x [B, C, T, H, W] f32; timestep one value for all ([1] or a number) or one per sample;
   * crossattn [B, M, crossattn_emb_channels]; latentCondition [B, 1, T, H/2, W/2] i32 DV ids.
   */
  forward(x: Tensor, timestep: Tensor | number, crossattn: Tensor, latentCondition: Tensor, o: DecoderForwardOptions): Tensor {
    const c = this.config;
    if (x.rank !== 5 || x.shape[1] !== c.inChannels) throw new ArDecoderInputError(`x: must be [B, ${c.inChannels}, T, H, W]; got ${shapeStr(x.shape)}`);
    const [B, , T, H, W] = x.shape;
    const [pt, ph, pw] = patchSize(c);
    if (T % pt || H % ph || W % pw) throw new ArDecoderInputError(`x ${shapeStr(x.shape)}: T, H, W must be multiples of the patch size (${pt}, ${ph}, ${pw})`);
    if (latentCondition.rank !== 5 || latentCondition.shape[0] !== B || latentCondition.shape[2] !== T) {
      throw new ArDecoderInputError(`latent_condition: must be [${B}, 1, ${T}, h, w] (the latent's batch and frames); got ${shapeStr(latentCondition.shape)}`);
    }
    if (crossattn.rank !== 3 || crossattn.shape[0] !== B || crossattn.shape[2] !== c.crossattnEmbChannels) {
      throw new ArDecoderInputError(`crossattn_emb: must be [${B}, M, ${c.crossattnEmbChannels}]; got ${shapeStr(crossattn.shape)}`);
    }
    const backend = x.backend;
    return scope(() => {
      const ts = typeof timestep === 'number' ? F.full(backend, [1], timestep) : timestep.reshape([timestep.size]);
      if (ts.size !== 1 && ts.size !== B) throw new ArDecoderInputError(`timesteps: one value for the batch or one per sample (${B}); got ${shapeStr(ts.shape)}`);

      // 1. the 49 input channels: latent, token condition, padding mask
      const xin = this.tap(this.inputChannels(x, latentCondition, o.paddingMask), 'x_embedder.input');

      // 2. patches and RoPE, 3. timestep embedding
      const grid = patchGrid([T, H, W], patchSize(c));
      const N = grid[0] * grid[1] * grid[2];
      const tokens = this.x_embedder.forward(xin).reshape([B, N, c.modelChannels]);
      const rope = this.pos_embedder.forward(backend, grid, o.fps);
      const { emb, adalnLora } = this.t_embedder.forward(ts);
      const cond: BlockConditioning = {
        text: crossattn, image: null, act: F.silu(this.affline_norm.forward(emb)), temb: adalnLora, modBatch: ts.size, modFrames: 1, rope, extraPosEmb: null,
      };

      // 4. blocks: each in its own scope, the previous activation freed as soon as it is consumed
      let h = tokens;
      for (const block of this.blocks) {
        const prev = h;
        h = scope(() => block.forward(prev, cond, { ffChunkTokens: this.ffChunkTokens }));
        if (prev !== tokens) prev.dispose();
      }

      // 5. final layer and unpatchify: features ordered (p1, p2, pt, C)
      const out = this.final_layer.forward(h, cond, grid);
      const [Tp, Hp, Wp] = grid;
      return F.permute(out.reshape([B, Tp, Hp, Wp, ph, pw, pt, c.outChannels]), [0, 7, 1, 6, 2, 4, 3, 5]).reshape([B, c.outChannels, T, H, W]);
    });
  }
}

const BLOCK_KEY = /^blocks\.block(\d+)\.blocks\.([012])\.(.+)$/;
const SUB_LAYER: Record<string, string> = { 0: 'attn1', 1: 'attn2' };

/**
 * A released checkpoint key -> this module tree's key; null drops it. The `net.` prefix (upstream
 * loads {net, conditioner, logvar}) is stripped; upstream's Sequential indices and sub-block
 * names map onto the dit modules' names. Keys matching no rule keep their name, so an unknown one
 * is reported as unexpected.
 */
export function arDecoderCheckpointKey(key: string): string | null {
  const k = key.startsWith('net.') ? key.slice(4) : key;
  if (k === 'x_embedder.proj.1.weight') return 'x_embedder.proj.weight';
  if (k.startsWith('final_layer.adaLN_modulation.')) return k.replace('final_layer.adaLN_modulation.1.', 'final_layer.norm.linear_1.').replace('final_layer.adaLN_modulation.2.', 'final_layer.norm.linear_2.');
  const m = BLOCK_KEY.exec(k);
  if (!m) return k;
  const [, i, j, rest] = m;
  const p = `blocks.block${i}`;
  const ada = /^adaLN_modulation\.([12])\.(.+)$/.exec(rest);
  if (ada) return `${p}.norm${Number(j) + 1}.linear_${ada[1]}.${ada[2]}`;
  if (j === '2') {
    const mlp = /^block\.layer([12])\.(.+)$/.exec(rest);
    return mlp ? `${p}.ff.${mlp[1] === '1' ? 'net.0.proj' : 'net.2'}.${mlp[2]}` : k;
  }
  const attn = /^block\.attn\.(to_q|to_k|to_v|to_out)\.([01])\.(.+)$/.exec(rest);
  if (!attn) return k;
  const [, proj, idx, tail] = attn;
  const a = `${p}.${SUB_LAYER[j]}`;
  if (proj === 'to_out') return idx === '0' ? `${a}.to_out.0.${tail}` : k;
  if (idx === '0') return `${a}.${proj}.${tail}`;
  // index 1 is the per-head q / k RMSNorm (v has an Identity there: no key)
  return proj === 'to_v' ? k : `${a}.norm_${proj === 'to_q' ? 'q' : 'k'}.${tail}`;
}

/**
 * Entries of a released checkpoint that hold no inference weights: `logvar.*` (the training-time
 * loss weighting network), TransformerEngine `*._extra_state` (FP8 metadata, no tensor data this
 * network reads) and the RoPE position buffer `pos_embedder.seq` (an arange, recomputed here).
 */
export function isIgnoredArDecoderKey(key: string): boolean {
  return key.startsWith('logvar.') || key.endsWith('._extra_state') || /^(net\.)?pos_embedder\.seq$/.test(key);
}

/**
 * loadModule builds the decoder from a case's config.json (DiffusionDecoderGeneralDIT kwargs +
 * sigma_data) or, for the release folder (model.pt + aux_vars.pt, no config.json), from the
 * released config; the release's `model.pt` is the weights file of such a folder.
 */
export const ArDecoderFamily: ModuleFamily<DiffusionDecoderDiT> = {
  name: 'DiffusionDecoderGeneralDIT',
  build: (config: Config) => new DiffusionDecoderDiT(parseArDecoderConfig(config)),
  loadOptions: (): LoadOptions => ({ mapKey: arDecoderCheckpointKey, ignore: isIgnoredArDecoderKey }),
  defaultConfig: RELEASED_AR_DECODER_CONFIG_JSON,
  weightsFile: 'model.pt',
};

