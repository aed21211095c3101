// What the DiT and its ControlNet compute from the same inputs before their blocks, each with its
// own copies of the embedding modules (same names in both checkpoints): the padding-mask channel,
// the RoPE tables and learnable position embedding of the patch grid, the timestep rows (one per
// sample, or one per latent frame) and the projected text / image context.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { type Tensor, shapeStr } from '../../engine/tensor.js';
import type { CosmosRotaryPosEmbed } from './block.js';
import { type CosmosTransformerConfig, DiTInputError } from './config.js';
import type { BlockConditioning, CosmosEmbedding, CosmosLearnablePositionalEmbed, LinearGelu } from './layers.js';

/** The embedding modules both models hold. */
export interface InputEmbedders {
  readonly rope: CosmosRotaryPosEmbed;
  readonly learnable_pos_embed: CosmosLearnablePositionalEmbed | null;
  readonly time_embed: CosmosEmbedding;
  readonly crossattn_proj: LinearGelu | null;
  readonly img_context_proj: LinearGelu | null;
}

/** The inputs both models read besides their latents. */
export interface ConditioningInputs {
  /** [B] (or [1], shared) per sample, or [B, 1, T, 1, 1] per frame (needs patch t = 1) */
  timestep: Tensor;
  /** [B, S, text_embed_dim], or [B, S, crossattn_proj_in_channels] with the text projection */
  encoderHiddenStates: Tensor;
  /** Transfer2.5 image context [B, Si, img_context_dim_in]; null skips the image branch */
  imageContext?: Tensor | null;
  /** [1, 1, Hp, Wp] (1 = padded pixel), resized NEAREST to (H, W); absent: zeros */
  paddingMask?: Tensor | null;
  /** frames per second for the temporal RoPE positions (t / fps * 24); null/absent: t itself */
  fps?: number | null;
}

/** How a model reports bad inputs: its error class and its name in messages ('the model'). */
export interface InputErrors {
  Err: new (message: string) => Error;
  who: string;
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
    throw new DiTInputError(`padding_mask: must be [1, 1, height, width] (it is repeated over the batch); got ${shapeStr(mask.shape)}`);
  }
  const [, , Hp, Wp] = mask.shape;
  let m = mask;
  if (Hp !== H) m = F.indexSelect(m, 2, F.fromArray(mask.backend, nearestIndices(Hp, H), [H], 'i32'));
  if (Wp !== W) m = F.indexSelect(m, 3, F.fromArray(mask.backend, nearestIndices(Wp, W), [W], 'i32'));
  return m;
}

/** The padding-mask channel [B, 1, T, H, W] of a latent [B, ·, T, H, W] (zeros without a mask). */
export function paddingChannel(mask: Tensor | null | undefined, [B, , T, H, W]: readonly number[], backend: Backend): Tensor {
  const pm = mask ? resizePaddingMask(mask, H, W) : F.zeros(backend, [1, 1, H, W]);
  return F.expand(pm.reshape([1, 1, 1, H, W]), [B, 1, T, H, W]);
}

/** RoPE tables and the learnable position embedding (when configured) of a patch grid. */
export function positionEmbeddings(m: InputEmbedders, backend: Backend, grid: [number, number, number], batch: number, fps: number | null | undefined) {
  const rope = m.rope.forward(backend, grid, fps ?? null);
  const extraPosEmb = m.learnable_pos_embed ? m.learnable_pos_embed.forward(grid, batch) : null;
  return { rope, extraPosEmb };
}

type ContextConfig = Pick<CosmosTransformerConfig, 'patchSize' | 'crossattnProjInChannels' | 'textEmbedDim' | 'imgContextDimIn'>;

/**
 * The timestep embedding rows and the projected context for latents [B, ·, T, ·, ·] on a patch
 * grid: what the blocks read besides the tokens and the position embeddings.
 */
export function timestepAndContext(
  m: InputEmbedders, cfg: ContextConfig, inputs: ConditioningInputs, B: number, T: number, grid: readonly number[], errs: InputErrors,
): Omit<BlockConditioning, 'rope' | 'extraPosEmb'> {
  const { Err, who } = errs;
  const ts = inputs.timestep;
  let modBatch: number;
  let modFrames: number;
  if (ts.rank === 1) {
    if (ts.shape[0] !== B && ts.shape[0] !== 1) throw new Err(`timestep [${ts.shape[0]}] must have one value per sample (batch ${B}) or one in all`);
    modBatch = ts.shape[0];
    modFrames = 1;
  } else if (ts.rank === 5) {
    if (ts.shape.join() !== [B, 1, T, 1, 1].join()) throw new Err(`a per-frame timestep must be ${shapeStr([B, 1, T, 1, 1])}, got ${shapeStr(ts.shape)}`);
    if (cfg.patchSize[0] !== 1) throw new Err(`per-frame timesteps need patch_size t = 1 (got ${cfg.patchSize[0]})`);
    modBatch = B;
    modFrames = grid[0];
  } else {
    throw new Err(`timestep must be [B] or [B, 1, T, 1, 1], got ${shapeStr(ts.shape)}`);
  }
  const { temb, embeddedTimestep } = m.time_embed.forward(ts);
  const act = F.silu(embeddedTimestep);

  let text = inputs.encoderHiddenStates;
  if (text.rank !== 3 || text.shape[0] !== B) throw new Err(`encoder_hidden_states must be [${B}, S, dim], got ${shapeStr(text.shape)}`);
  const wantText = m.crossattn_proj ? cfg.crossattnProjInChannels : cfg.textEmbedDim;
  if (text.shape[2] !== wantText) {
    throw new Err(`encoder_hidden_states has ${text.shape[2]} features, ${who} expects ${wantText}${m.crossattn_proj ? ' (crossattn_proj_in_channels)' : ' (text_embed_dim)'}`);
  }
  if (m.crossattn_proj) text = m.crossattn_proj.forward(text);
  let image: Tensor | null = null;
  const ic = inputs.imageContext;
  if (ic && m.img_context_proj) {
    if (ic.rank !== 3 || ic.shape[0] !== B || ic.shape[2] !== cfg.imgContextDimIn) {
      throw new Err(`img_context must be [${B}, S, ${cfg.imgContextDimIn}], got ${shapeStr(ic.shape)}`);
    }
    image = m.img_context_proj.forward(ic);
  }
  return { text, image, act, temb, modBatch, modFrames };
}
