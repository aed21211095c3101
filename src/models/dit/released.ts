// The released Cosmos DiT configurations (diffusers scripts/convert_cosmos_to_diffusers.py
// TRANSFORMER_CONFIGS; spec dit.md §8), as diffusers config.json objects, with the sampling
// defaults of the pipeline each one runs under.

const common = {
  _class_name: 'CosmosTransformer3DModel',
  out_channels: 16,
  attention_head_dim: 128,
  mlp_ratio: 4.0,
  text_embed_dim: 1024,
  adaln_lora_dim: 256,
  max_size: [128, 240, 240],
  patch_size: [1, 2, 2],
  concat_padding_mask: true,
};

const b2 = { num_attention_heads: 16, num_layers: 28 };
const b7 = { num_attention_heads: 32, num_layers: 28 };
const b14 = { num_attention_heads: 40, num_layers: 36 };
const cosmos1 = { extra_pos_embed_type: 'learnable' };
const predict2 = { extra_pos_embed_type: null };
const predict25 = {
  extra_pos_embed_type: null,
  use_crossattn_projection: true,
  crossattn_proj_in_channels: 100352,
  encoder_hidden_states_channels: 1024,
};

export type DiTFamily = 'cosmos1' | 'predict2' | 'predict2.5' | 'transfer2.5';

export interface ReleasedDiT {
  family: DiTFamily;
  /** diffusers config.json of the transformer */
  config: Record<string, unknown>;
  /** the sampler its pipeline uses */
  sampler: 'edm' | 'flow-euler' | 'unipc';
}

export const RELEASED_DITS: Readonly<Record<string, ReleasedDiT>> = {
  'Cosmos-1.0-Diffusion-7B-Text2World': { family: 'cosmos1', sampler: 'edm', config: { ...common, ...b7, ...cosmos1, in_channels: 16, rope_scale: [2, 1, 1] } },
  'Cosmos-1.0-Diffusion-7B-Video2World': { family: 'cosmos1', sampler: 'edm', config: { ...common, ...b7, ...cosmos1, in_channels: 17, rope_scale: [2, 1, 1] } },
  'Cosmos-1.0-Diffusion-14B-Text2World': { family: 'cosmos1', sampler: 'edm', config: { ...common, ...b14, ...cosmos1, in_channels: 16, rope_scale: [2, 2, 2] } },
  'Cosmos-1.0-Diffusion-14B-Video2World': { family: 'cosmos1', sampler: 'edm', config: { ...common, ...b14, ...cosmos1, in_channels: 17, rope_scale: [2, 2, 2] } },
  'Cosmos-Predict2-2B-Text2Image': { family: 'predict2', sampler: 'flow-euler', config: { ...common, ...b2, ...predict2, in_channels: 16, rope_scale: [1, 4, 4] } },
  'Cosmos-Predict2-14B-Text2Image': { family: 'predict2', sampler: 'flow-euler', config: { ...common, ...b14, ...predict2, in_channels: 16, rope_scale: [1, 4, 4] } },
  'Cosmos-Predict2-2B-Video2World': { family: 'predict2', sampler: 'flow-euler', config: { ...common, ...b2, ...predict2, in_channels: 17, rope_scale: [1, 3, 3] } },
  'Cosmos-Predict2-14B-Video2World': { family: 'predict2', sampler: 'flow-euler', config: { ...common, ...b14, ...predict2, in_channels: 17, rope_scale: [20 / 24, 2, 2] } },
  'Cosmos-Predict2.5-2B': { family: 'predict2.5', sampler: 'unipc', config: { ...common, ...b2, ...predict25, in_channels: 17, rope_scale: [1, 3, 3] } },
  'Cosmos-Predict2.5-14B': { family: 'predict2.5', sampler: 'unipc', config: { ...common, ...b14, ...predict25, in_channels: 17, rope_scale: [1, 3, 3] } },
  'Cosmos-Transfer2.5-2B (base)': {
    family: 'transfer2.5',
    sampler: 'unipc',
    config: {
      ...common, ...b2, ...predict25, in_channels: 17, rope_scale: [1, 3, 3],
      controlnet_block_every_n: 7, img_context_dim_in: 1152, img_context_dim_out: 2048, img_context_num_tokens: 256,
    },
  },
};
