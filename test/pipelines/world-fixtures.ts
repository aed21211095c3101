// Tiny world-model folders and a Transfer spec for the pipeline and CLI tests, built in a temp
// folder: random-weight DiTs (Cosmos-1.0 text2world / video2world, Predict2, Predict2.5), a tiny
// random T5 with the t5 fixture's SentencePiece model, two VAEs (the diffusers_vae fixture in the
// AutoencoderKLCosmos layout, with latents_mean/std, and the trained tiny CV4x8x8 tokenizer in its
// own Cosmos-Tokenizer layout), random ControlNets with control clips and a weight map.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import seedrandom from 'seedrandom';
import type { Module } from '../../src/engine/module.js';
import { writeVideo } from '../../src/io/open-video.js';
import { type TensorToWrite, writeSafetensors } from '../../src/io/safetensors.js';
import type { Video } from '../../src/io/video.js';
import { CosmosControlNetFamily } from '../../src/models/controlnet/controlnet.js';
import { CosmosTransformer3DFamily } from '../../src/models/dit/transformer.js';
import { T5EncoderFamily } from '../../src/models/t5/encoder.js';

export const ROOT = nodePath.resolve(import.meta.dirname, '../..');
export const FIXTURES = nodePath.join(ROOT, 'test/fixtures');
export const CV = nodePath.join(ROOT, 'weights/cosmos-tokenizer-tiny-cv4x8x8');
export const SAMPLE = nodePath.join(ROOT, 'weights/samples/sample_0.y4m');

/** Random values for every declared parameter (norm weights near 1, others ~ U(-1, 1)/sqrt(fan-in)). */
function randomWeights(m: Module, seed: string): Record<string, TensorToWrite> {
  const rng = seedrandom(seed);
  const out: Record<string, TensorToWrite> = {};
  for (const p of m.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const raw = new Float32Array(n);
    const isNorm = /norm/.test(p.key) && p.key.endsWith('weight') && p.shape.length === 1;
    const a = p.shape.length >= 2 ? 1 / Math.sqrt(p.shape[p.shape.length - 1]) : 0.05;
    for (let i = 0; i < n; i++) raw[i] = isNorm ? 1 + 0.1 * (rng() - 0.5) : a * (2 * rng() - 1) * 1.7;
    out[p.key] = { dtype: 'f32', shape: p.shape, raw };
  }
  return out;
}

function writeJson(path: string, v: unknown): void {
  writeFileSync(path, JSON.stringify(v, null, 2));
}

const DIT_COMMON = {
  _class_name: 'CosmosTransformer3DModel', adaln_lora_dim: 16, attention_head_dim: 32, num_attention_heads: 2, num_layers: 2, mlp_ratio: 4.0,
  max_size: [16, 32, 32], patch_size: [1, 2, 2], concat_padding_mask: true, text_embed_dim: 32,
};

/** transformer/ in two shards with an index, as the released folders are. */
export async function writeTransformer(dir: string, config: Record<string, unknown>, seed: string): Promise<void> {
  const t = nodePath.join(dir, 'transformer');
  mkdirSync(t, { recursive: true });
  writeJson(nodePath.join(t, 'config.json'), config);
  const w = randomWeights(CosmosTransformer3DFamily.build(config), seed);
  const names = Object.keys(w).sort();
  const shards = [names.slice(0, names.length >> 1), names.slice(names.length >> 1)];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < 2; i++) {
    const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(nodePath.join(t, file), Object.fromEntries(shards[i].map((n) => [n, w[n]])));
    for (const n of shards[i]) weightMap[n] = file;
  }
  writeJson(nodePath.join(t, 'diffusion_pytorch_model.safetensors.index.json'), { metadata: {}, weight_map: weightMap });
}

const T5_CONFIG = {
  architectures: ['T5EncoderModel'], model_type: 't5', d_model: 32, d_kv: 8, num_heads: 4, d_ff: 64, num_layers: 2,
  feed_forward_proj: 'gated-gelu', vocab_size: 704, relative_attention_num_buckets: 32, relative_attention_max_distance: 128,
  layer_norm_epsilon: 1e-6, eos_token_id: 1, pad_token_id: 0,
};

async function writeT5(dir: string): Promise<void> {
  const te = nodePath.join(dir, 'text_encoder');
  mkdirSync(te, { recursive: true });
  writeJson(nodePath.join(te, 'config.json'), T5_CONFIG);
  await writeSafetensors(nodePath.join(te, 'model.safetensors'), randomWeights(T5EncoderFamily.build(T5_CONFIG), 't5'));
  mkdirSync(nodePath.join(dir, 'tokenizer'), { recursive: true });
  copyFileSync(nodePath.join(FIXTURES, 't5/sentencepiece/spiece.model'), nodePath.join(dir, 'tokenizer/spiece.model'));
}

function writeVae(dir: string, kind: 'diffusers' | 'cosmos'): void {
  const v = nodePath.join(dir, 'vae');
  mkdirSync(v, { recursive: true });
  if (kind === 'diffusers') {
    const src = nodePath.join(FIXTURES, 'tokenizer/diffusers_vae');
    copyFileSync(nodePath.join(src, 'config.json'), nodePath.join(v, 'config.json'));
    copyFileSync(nodePath.join(src, 'model.safetensors'), nodePath.join(v, 'diffusion_pytorch_model.safetensors'));
  } else {
    copyFileSync(nodePath.join(CV, 'config.json'), nodePath.join(v, 'config.json'));
    copyFileSync(nodePath.join(CV, 'model.safetensors'), nodePath.join(v, 'model.safetensors'));
  }
}

export const EDM = {
  _class_name: 'EDMEulerScheduler', final_sigmas_type: 'sigma_min', num_train_timesteps: 1000, prediction_type: 'epsilon',
  rho: 7.0, sigma_data: 0.5, sigma_max: 80, sigma_min: 0.002, sigma_schedule: 'karras',
};
export const UNIPC = {
  _class_name: 'UniPCMultistepScheduler', beta_end: 0.02, beta_schedule: 'linear', beta_start: 0.0001, final_sigmas_type: 'zero',
  flow_shift: 1.0, lower_order_final: true, num_train_timesteps: 1000, predict_x0: true, prediction_type: 'flow_prediction',
  sigma_max: 200.0, sigma_min: 0.01, solver_order: 2, solver_type: 'bh2', use_flow_sigmas: true, use_karras_sigmas: true,
};

export function writeScheduler(dir: string, cfg: Record<string, unknown>): void {
  mkdirSync(nodePath.join(dir, 'scheduler'), { recursive: true });
  writeJson(nodePath.join(dir, 'scheduler/scheduler_config.json'), cfg);
}

export interface WorldFolders {
  /** Cosmos-1.0 text2world: diffusers VAE (8 latent channels, 8x8x8, latents_mean/std), T5, EDM */
  T2W: string;
  /** Cosmos-1.0 video2world: the trained CV4x8x8 in the Cosmos-Tokenizer layout (16 channels), T5, EDM */
  V2W: string;
  /** Predict2.5: text projection 48 -> 32, UniPC, the CV4x8x8 VAE, no text encoder (embeddings only) */
  P25: string;
  /** Predict2 video2world: no learnable pos-emb, FlowMatchEulerDiscreteScheduler, T5, the CV4x8x8 VAE */
  P2: string;
  /** prompt_embeds / negative_prompt_embeds [1, 6, 48] and [1, 6, 32] */
  EMB48: string;
  EMB32: string;
}

export async function writeWorldFolders(tmp: string): Promise<WorldFolders> {
  const f: WorldFolders = {
    T2W: nodePath.join(tmp, 'cosmos1-t2w'), V2W: nodePath.join(tmp, 'cosmos1-v2w'), P25: nodePath.join(tmp, 'predict25'),
    P2: nodePath.join(tmp, 'predict2'), EMB48: nodePath.join(tmp, 'emb48.safetensors'), EMB32: nodePath.join(tmp, 'emb32.safetensors'),
  };
  mkdirSync(f.T2W);
  writeJson(nodePath.join(f.T2W, 'model_index.json'), {
    _class_name: 'CosmosTextToWorldPipeline', scheduler: ['diffusers', 'EDMEulerScheduler'], text_encoder: ['transformers', 'T5EncoderModel'],
    tokenizer: ['transformers', 'T5TokenizerFast'], transformer: ['diffusers', 'CosmosTransformer3DModel'], vae: ['diffusers', 'AutoencoderKLCosmos'],
  });
  await writeTransformer(f.T2W, { ...DIT_COMMON, in_channels: 8, out_channels: 8, extra_pos_embed_type: 'learnable', rope_scale: [2, 1, 1] }, 'dit-t2w');
  writeVae(f.T2W, 'diffusers');
  await writeT5(f.T2W);
  writeScheduler(f.T2W, EDM);

  mkdirSync(f.V2W);
  writeJson(nodePath.join(f.V2W, 'model_index.json'), { _class_name: 'CosmosVideoToWorldPipeline' });
  await writeTransformer(f.V2W, { ...DIT_COMMON, in_channels: 17, out_channels: 16, extra_pos_embed_type: 'learnable', rope_scale: [2, 1, 1] }, 'dit-v2w');
  writeVae(f.V2W, 'cosmos');
  await writeT5(f.V2W);
  writeScheduler(f.V2W, EDM);

  mkdirSync(f.P25);
  writeJson(nodePath.join(f.P25, 'model_index.json'), {
    _class_name: 'Cosmos2_5_PredictBasePipeline', text_encoder: ['transformers', 'Qwen2_5_VLForConditionalGeneration'],
  });
  await writeTransformer(f.P25, {
    ...DIT_COMMON, in_channels: 17, out_channels: 16, extra_pos_embed_type: null, rope_scale: [1, 3, 3],
    use_crossattn_projection: true, crossattn_proj_in_channels: 48, encoder_hidden_states_channels: 32,
  }, 'dit-p25');
  writeVae(f.P25, 'cosmos');
  writeScheduler(f.P25, UNIPC);

  mkdirSync(f.P2);
  writeJson(nodePath.join(f.P2, 'model_index.json'), { _class_name: 'Cosmos2VideoToWorldPipeline' });
  await writeTransformer(f.P2, { ...DIT_COMMON, in_channels: 17, out_channels: 16, extra_pos_embed_type: null, rope_scale: [1, 3, 3] }, 'dit-p2');
  writeVae(f.P2, 'cosmos');
  await writeT5(f.P2);
  writeScheduler(f.P2, { _class_name: 'FlowMatchEulerDiscreteScheduler', num_train_timesteps: 1000, shift: 1.0, use_karras_sigmas: true });

  const rng = seedrandom('emb');
  const emb = (S: number, D: number) => ({ dtype: 'f32' as const, shape: [1, S, D], raw: Float32Array.from({ length: S * D }, () => 2 * rng() - 1) });
  await writeSafetensors(f.EMB48, { prompt_embeds: emb(6, 48), negative_prompt_embeds: emb(6, 48) });
  await writeSafetensors(f.EMB32, { prompt_embeds: emb(6, 32), negative_prompt_embeds: emb(6, 32) });
  return f;
}

// ------------------------------------------------------------------ transfer

const BASE_CONFIG = {
  _class_name: 'CosmosTransformer3DModel', in_channels: 17, out_channels: 16, num_attention_heads: 2, attention_head_dim: 16, num_layers: 4,
  mlp_ratio: 2.0, text_embed_dim: 32, adaln_lora_dim: 4, max_size: [8, 32, 32], patch_size: [1, 2, 2], rope_scale: [1.0, 3.0, 3.0],
  concat_padding_mask: true, extra_pos_embed_type: null, use_crossattn_projection: true, crossattn_proj_in_channels: 48,
  encoder_hidden_states_channels: 32, controlnet_block_every_n: 2, img_context_dim_in: 24, img_context_dim_out: 32, img_context_num_tokens: 4,
};
const CONTROLNET_CONFIG = {
  _class_name: 'CosmosControlNetModel', n_controlnet_blocks: 2, in_channels: 34, latent_channels: 18, model_channels: 32, num_attention_heads: 2,
  attention_head_dim: 16, mlp_ratio: 2.0, text_embed_dim: 32, adaln_lora_dim: 4, patch_size: [1, 2, 2], max_size: [8, 32, 32],
  rope_scale: [1.0, 3.0, 3.0], extra_pos_embed_type: null, img_context_dim_in: 24, img_context_dim_out: 32, use_crossattn_projection: true,
  crossattn_proj_in_channels: 48, encoder_hidden_states_channels: 32,
};

/** config.json + diffusion_pytorch_model.safetensors with seeded random parameters (norm weights near 1). */
async function writeRandomModel(dir: string, config: object, model: Module, seed: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify(config));
  const rng = seedrandom(seed);
  const tensors: Record<string, TensorToWrite> = {};
  for (const p of model.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const isNorm = /norm[^.]*\.weight$/.test(p.key) && p.shape.length === 1;
    const fanIn = p.shape.length === 2 ? p.shape[1] : 1;
    const scale = 1 / Math.sqrt(fanIn);
    tensors[p.key] = { dtype: 'f32', shape: p.shape, raw: Float32Array.from({ length: n }, () => (isNorm ? 1 : 0) + (rng() * 2 - 1) * (isNorm ? 0.1 : scale)) };
  }
  await writeSafetensors(nodePath.join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
}

/** A [3, T, H, W] clip of moving gradients in [-1, 1]. */
export function gradientClip(frames: number, h: number, w: number, phase: number): Video {
  const data = new Float32Array(3 * frames * h * w);
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < frames; t++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) data[((c * frames + t) * h + y) * w + x] = Math.sin((x + 2 * t + phase) / 5 + c) * Math.cos((y - t) / 7);
      }
    }
  }
  return { data, frames, height: h, width: w, fps: { num: 8, den: 1 } };
}

/** The base, two ControlNets (depth: scalar 0.4, edge: a weight map), 5-frame 32x32 control clips, prompt embeddings; the spec's path. */
export async function writeTransferFolder(tmp: string): Promise<string> {
  const j = (n: string) => nodePath.join(tmp, n);
  await writeRandomModel(j('transformer'), BASE_CONFIG, CosmosTransformer3DFamily.build(BASE_CONFIG), 'base');
  await writeRandomModel(j('controlnet_depth'), CONTROLNET_CONFIG, CosmosControlNetFamily.build(CONTROLNET_CONFIG), 'depth');
  await writeRandomModel(j('controlnet_edge'), CONTROLNET_CONFIG, CosmosControlNetFamily.build(CONTROLNET_CONFIG), 'edge');
  await writeVideo(j('depth.y4m'), gradientClip(5, 32, 32, 0));
  await writeVideo(j('edge.y4m'), gradientClip(5, 32, 32, 3));
  await writeVideo(j('edge_short.y4m'), gradientClip(1, 32, 32, 3));
  // the edge weight: 0 on the left half, 0.5 on the right (pixel resolution; resized to the token grid)
  const map = Float32Array.from({ length: 32 * 32 }, (_, i) => (i % 32 < 16 ? 0 : 0.5));
  await writeSafetensors(j('edge_weight.safetensors'), { weight: { dtype: 'f32', shape: [32, 32], raw: map } });
  const rng = seedrandom('text');
  const emb = () => Float32Array.from({ length: 5 * 48 }, () => rng() * 2 - 1);
  await writeSafetensors(j('prompt.safetensors'), {
    prompt_embeds: { dtype: 'f32', shape: [1, 5, 48], raw: emb() }, negative_prompt_embeds: { dtype: 'f32', shape: [1, 5, 48], raw: emb() },
  });
  writeFileSync(j('spec.json'), JSON.stringify(transferSpecJson()));
  return j('spec.json');
}

/** The spec of writeTransferFolder (relative paths), for variants. */
export function transferSpecJson(): Record<string, unknown> & { controls: Record<string, Record<string, unknown>> } {
  return {
    base_checkpoint: 'transformer', tokenizer: CV, embeddings: 'prompt.safetensors', seed: 7, num_steps: 2, guidance: 2,
    controls: {
      depth: { input_control: 'depth.y4m', control_weight: 0.4, ckpt_path: 'controlnet_depth' },
      edge: { input_control: 'edge.y4m', control_weight: 'edge_weight.safetensors', ckpt_path: 'controlnet_edge' },
    },
  };
}

// ------------------------------------------------------------------ Predict2.5 from a prompt

/**
 * A reduced Predict2.5 folder: the Cosmos-Reason1 prompt encoder with fewer layers and the same
 * names (the `batch_negative` prompt_embeds case's Qwen2.5-VL text model, 3 layers x 48, and its
 * tokenizer files under tokenizer/), a Wan2.1 VAE (the `video_9f` wan_vae case), a random
 * Predict2.5 transformer whose crossattn_proj reads 3 x 48 = 144 channels, UniPC.
 */
export async function writePredict25PromptFolder(folder: string): Promise<string> {
  const prompt = nodePath.join(FIXTURES, 'prompt_embeds/batch_negative');
  const vae = nodePath.join(FIXTURES, 'wan_vae/video_9f');
  const sub = (n: string) => {
    mkdirSync(nodePath.join(folder, n), { recursive: true });
    return nodePath.join(folder, n);
  };
  writeJson(nodePath.join(sub('.'), 'model_index.json'), {
    _class_name: 'Cosmos2_5_PredictBasePipeline', text_encoder: ['transformers', 'Qwen2_5_VLForConditionalGeneration'],
    tokenizer: ['transformers', 'Qwen2TokenizerFast'], transformer: ['diffusers', 'CosmosTransformer3DModel'], vae: ['diffusers', 'AutoencoderKLWan'],
  });
  copyFileSync(nodePath.join(prompt, 'config.json'), nodePath.join(sub('text_encoder'), 'config.json'));
  copyFileSync(nodePath.join(prompt, 'model.safetensors'), nodePath.join(folder, 'text_encoder/model.safetensors'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(nodePath.join(prompt, f), nodePath.join(sub('tokenizer'), f));
  copyFileSync(nodePath.join(vae, 'config.json'), nodePath.join(sub('vae'), 'config.json'));
  copyFileSync(nodePath.join(vae, 'model.safetensors'), nodePath.join(folder, 'vae/diffusion_pytorch_model.safetensors'));
  writeScheduler(folder, UNIPC);
  await writeTransformer(folder, {
    ...DIT_COMMON, in_channels: 17, out_channels: 16, extra_pos_embed_type: null, rope_scale: [1, 3, 3],
    use_crossattn_projection: true, crossattn_proj_in_channels: 144, encoder_hidden_states_channels: 32,
  }, 'dit-p25-prompt');
  return folder;
}
