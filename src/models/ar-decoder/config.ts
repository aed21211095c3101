// The configuration of the AR diffusion decoder (spec ar_decoder.md §3): the constructor kwargs of
// cosmos-predict1's DiffusionDecoderGeneralDIT (as the cases' config.json holds them) plus
// sigma_data, parsed and checked, and the released 7B's values. Only what the released network
// uses is supported; any other setting of a switch is refused naming the field.
import { UserError } from '../../engine/errors.js';
import { type CosmosTransformerConfig, type Triple, configFields } from '../dit/config.js';

export class ArDecoderConfigError extends UserError {}

export interface ArDecoderConfig {
  maxImgH: number;
  maxImgW: number;
  maxFrames: number;
  /** latent channels (16 for CV8x8x8) */
  inChannels: number;
  outChannels: number;
  patchSpatial: number;
  patchTemporal: number;
  /** D */
  modelChannels: number;
  numBlocks: number;
  numHeads: number;
  mlpRatio: number;
  /** width of the T5 embeddings */
  crossattnEmbChannels: number;
  concatPaddingMask: boolean;
  adalnLoraDim: number;
  /** NTK extrapolation ratios */
  ropeTExtrapolationRatio: number;
  ropeHExtrapolationRatio: number;
  ropeWExtrapolationRatio: number;
  /** EDM sigma_data (the latents are scaled by it) */
  sigmaData: number;
  /** DV8x16x16 codebook size (64000) */
  vocabSize: number;
  /** width of the token embedding (32) */
  tokenDim: number;
}

/** DiffusionDecoderGeneralDIT kwargs of Cosmos-1.0-Diffusion-7B-Decoder-DV8x16x16ToCV8x8x8 (FADITV2Config + the experiment overrides). */
export const RELEASED_AR_DECODER_CONFIG_JSON: Readonly<Record<string, unknown>> = Object.freeze({
  _class_name: 'DiffusionDecoderGeneralDIT',
  max_img_h: 240,
  max_img_w: 240,
  max_frames: 128,
  in_channels: 16,
  out_channels: 16,
  patch_spatial: 2,
  patch_temporal: 1,
  model_channels: 4096,
  block_config: 'FA-CA-MLP',
  num_blocks: 28,
  num_heads: 32,
  mlp_ratio: 4.0,
  block_x_format: 'THWBD',
  crossattn_emb_channels: 1024,
  use_cross_attn_mask: false,
  concat_padding_mask: true,
  pos_emb_cls: 'rope3d',
  pos_emb_learnable: false,
  pos_emb_interpolation: 'crop',
  affline_emb_norm: true,
  use_adaln_lora: true,
  adaln_lora_dim: 256,
  rope_h_extrapolation_ratio: 1.5,
  rope_w_extrapolation_ratio: 1.5,
  rope_t_extrapolation_ratio: 1,
  extra_per_block_abs_pos_emb: false,
  is_diffusion_decoder: true,
  diffusion_decoder_condition_on_sigma: false,
  diffusion_decoder_condition_on_token: true,
  diffusion_decoder_token_condition_voc_size: 64000,
  diffusion_decoder_token_condition_dim: 32,
  sigma_data: 0.5,
});

/**
 * Parse a DiffusionDecoderGeneralDIT config.json (kwargs + sigma_data). Omitted fields take the
 * released 7B's values; `file` names the source in messages.
 */
export function parseArDecoderConfig(json: Record<string, unknown>, file = 'config.json'): ArDecoderConfig {
  if (json._class_name !== undefined && json._class_name !== 'DiffusionDecoderGeneralDIT') {
    throw new ArDecoderConfigError(`${file}: _class_name is ${JSON.stringify(json._class_name)}, expected "DiffusionDecoderGeneralDIT"`);
  }
  const R = RELEASED_AR_DECODER_CONFIG_JSON as Record<string, never>;
  const f = configFields(json, file, ArDecoderConfigError);
  const posInt = (k: string) => f.posInt(k, R[k]);
  const posNum = (k: string) => f.posNum(k, R[k]);
  // switches with one supported value: anything else is a network this code does not build
  const only = (k: string, v: unknown, why: string) => {
    const got = json[k] ?? R[k];
    if (got !== v) throw new ArDecoderConfigError(`${file}: ${k} must be ${JSON.stringify(v)} (${why}), got ${JSON.stringify(got)}`);
  };
  only('block_config', 'FA-CA-MLP', 'the only block layout of the released decoder');
  only('pos_emb_cls', 'rope3d', 'the decoder uses 3D RoPE');
  only('extra_per_block_abs_pos_emb', false, 'the decoder has no learnable position embedding');
  only('use_adaln_lora', true, 'the adaLN-LoRA form is the one implemented');
  only('affline_emb_norm', true, 'the adaLN embedding is the RMS-normalised timestep features');
  only('use_cross_attn_mask', false, 'the decoder attends to every T5 row');
  only('diffusion_decoder_condition_on_token', true, 'the decoder is conditioned on the DV tokens');
  only('diffusion_decoder_condition_on_sigma', false, 'the released decoder has no sigma channel');
  f.oneOf('block_x_format', 'THWBD', ['THWBD', 'BTHWD'] as const);
  const cfg: ArDecoderConfig = {
    maxImgH: posInt('max_img_h'),
    maxImgW: posInt('max_img_w'),
    maxFrames: posInt('max_frames'),
    inChannels: posInt('in_channels'),
    outChannels: posInt('out_channels'),
    patchSpatial: posInt('patch_spatial'),
    patchTemporal: posInt('patch_temporal'),
    modelChannels: posInt('model_channels'),
    numBlocks: posInt('num_blocks'),
    numHeads: posInt('num_heads'),
    mlpRatio: posNum('mlp_ratio'),
    crossattnEmbChannels: posInt('crossattn_emb_channels'),
    concatPaddingMask: f.bool('concat_padding_mask', true),
    adalnLoraDim: posInt('adaln_lora_dim'),
    ropeTExtrapolationRatio: posNum('rope_t_extrapolation_ratio'),
    ropeHExtrapolationRatio: posNum('rope_h_extrapolation_ratio'),
    ropeWExtrapolationRatio: posNum('rope_w_extrapolation_ratio'),
    sigmaData: posNum('sigma_data'),
    vocabSize: posInt('diffusion_decoder_token_condition_voc_size'),
    tokenDim: posInt('diffusion_decoder_token_condition_dim'),
  };
  if (cfg.modelChannels % cfg.numHeads) {
    throw new ArDecoderConfigError(`${file}: model_channels ${cfg.modelChannels} must be a multiple of num_heads ${cfg.numHeads}`);
  }
  const d = cfg.modelChannels / cfg.numHeads;
  const dh = Math.floor(d / 6) * 2;
  if (d % 2 || dh <= 2 || d - 2 * dh <= 2) {
    throw new ArDecoderConfigError(`${file}: model_channels / num_heads = head dim ${d} is too small (or odd) for the 3D RoPE split (t ${d - 2 * dh}, h ${dh}, w ${dh}; each must exceed 2)`);
  }
  if (cfg.maxImgH < cfg.patchSpatial || cfg.maxImgW < cfg.patchSpatial || cfg.maxFrames < cfg.patchTemporal) {
    throw new ArDecoderConfigError(`${file}: max_img_h / max_img_w / max_frames must be at least the patch size`);
  }
  return Object.freeze(cfg);
}

/** The released 7B decoder's configuration. */
export const RELEASED_AR_DECODER_CONFIG: ArDecoderConfig = parseArDecoderConfig({ ...RELEASED_AR_DECODER_CONFIG_JSON }, 'the released decoder config');

export function headDim(c: ArDecoderConfig): number {
  return c.modelChannels / c.numHeads;
}

/** Features entering the patch embedding's Linear: (latent + token condition + padding mask) channels x patch volume. */
export function patchEmbedInChannels(c: ArDecoderConfig): number {
  return c.inChannels + c.tokenDim + (c.concatPaddingMask ? 1 : 0);
}

export function patchSize(c: ArDecoderConfig): Triple {
  return [c.patchTemporal, c.patchSpatial, c.patchSpatial];
}

/** RoPE table bounds: positions run over arange(max(max_frames // pt, max_img_h // p, max_img_w // p)). */
export function maxSize(c: ArDecoderConfig): Triple {
  return [c.maxFrames, c.maxImgH, c.maxImgW];
}

/**
 * The dit blocks' view of this network (the same FA-CA-MLP block as Cosmos-1.0's DiT), for the
 * shared block and RoPE modules.
 */
export function blockConfig(c: ArDecoderConfig): CosmosTransformerConfig {
  return {
    inChannels: patchEmbedInChannels(c),
    outChannels: c.outChannels,
    numAttentionHeads: c.numHeads,
    attentionHeadDim: headDim(c),
    numLayers: c.numBlocks,
    mlpRatio: c.mlpRatio,
    textEmbedDim: c.crossattnEmbChannels,
    adalnLoraDim: c.adalnLoraDim,
    maxSize: maxSize(c),
    patchSize: patchSize(c),
    ropeScale: [c.ropeTExtrapolationRatio, c.ropeHExtrapolationRatio, c.ropeWExtrapolationRatio],
    concatPaddingMask: false,
    extraPosEmbedType: null,
    useCrossattnProjection: false,
    crossattnProjInChannels: c.crossattnEmbChannels,
    encoderHiddenStatesChannels: c.crossattnEmbChannels,
    controlnetBlockEveryN: null,
    imgContextDimIn: null,
    imgContextNumTokens: 0,
    imgContextDimOut: c.modelChannels,
  };
}
