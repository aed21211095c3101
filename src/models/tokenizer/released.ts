// The released Cosmos tokenizer configs (Cosmos-Tokenizer networks/configs.py with the
// spatial/temporal compression overrides of video_cli.py / image_cli.py; fact sheet §2), with
// the parameter counts of the real checkpoints.
import type { CosmosTokenizerConfig } from './config.js';

const common = {
  channels: 128,
  channels_mult: [2, 4, 4],
  num_res_blocks: 2,
  dropout: 0.0,
  in_channels: 3,
  out_channels: 3,
  resolution: 1024,
  attn_resolutions: [32],
  patch_size: 4,
  patch_method: 'haar',
};

const video = { ...common, z_factor: 1, num_groups: 1, legacy_mode: false, encoder: 'FACTORIZED', decoder: 'FACTORIZED' };
const cv = { ...video, name: 'CV', z_channels: 16, latent_channels: 16, formulation: 'AE' };
const dv = { ...video, name: 'DV', z_channels: 16, quantizer: 'FSQ', embedding_dim: 6, levels: [8, 8, 8, 5, 5, 5] };
const ci = { ...common, name: 'CI', z_channels: 16, z_factor: 1, latent_channels: 16, formulation: 'AE', encoder: 'Default', decoder: 'Default' };
const di = {
  ...common, name: 'DI', z_channels: 256, z_factor: 1, quantizer: 'FSQ', embedding_dim: 6, levels: [8, 8, 8, 5, 5, 5],
  num_quantizers: 4, encoder: 'Default', decoder: 'Default',
};

export interface ReleasedTokenizer {
  config: CosmosTokenizerConfig;
  /** parameters in the real checkpoint (buffers excluded); null when not recorded */
  parameters: number | null;
}

export const RELEASED_TOKENIZERS: Readonly<Record<string, ReleasedTokenizer>> = {
  CV8x8x8: { config: { ...cv, spatial_compression: 8, temporal_compression: 8 }, parameters: 105_653_696 },
  CV4x8x8: { config: { ...cv, spatial_compression: 8, temporal_compression: 4 }, parameters: 85_783_232 },
  CV8x16x16: { config: { ...cv, spatial_compression: 16, temporal_compression: 8 }, parameters: null },
  DV8x16x16: { config: { ...dv, spatial_compression: 16, temporal_compression: 8 }, parameters: 110_898_294 },
  DV4x8x8: { config: { ...dv, spatial_compression: 8, temporal_compression: 4 }, parameters: 104_669_558 },
  CI8x8: { config: { ...ci, spatial_compression: 8 }, parameters: 76_789_472 },
  CI16x16: { config: { ...ci, spatial_compression: 16 }, parameters: null },
  DI8x8: { config: { ...di, spatial_compression: 8 }, parameters: 79_004_342 },
  DI16x16: { config: { ...di, spatial_compression: 16 }, parameters: null },
};
