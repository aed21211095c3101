// The Video-Depth-Anything model settings from a config.json (the fixtures' layout: `encoder`,
// `features`, `out_channels`, `intermediate_layer_idx`, `backbone`, `motion_module`), or from an
// encoder name alone (the released checkpoints carry no config: vits / vitb / vitl as upstream's
// VideoDepthAnything builds them).
import { UserError } from '../../engine/errors.js';
import type { Config } from '../load.js';

export class DepthConfigError extends UserError {
  override name = 'DepthConfigError';
}

export interface DepthBackboneConfig {
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  patchSize: number;
  /** side of the stored square position grid (img_size / patch_size: 37) */
  posGrid: number;
  interpolateOffset: number;
  eps: number;
}

export interface DepthMotionConfig {
  numHeads: number;
  numAttentionBlocks: number;
  numTransformerBlocks: number;
  groups: number;
  groupNormEps: number;
  layerNormEps: number;
  /** rows of the sinusoid tables: the most frames one forward pass takes */
  maxLen: number;
}

export interface DepthModelConfig {
  encoder: string;
  backbone: DepthBackboneConfig;
  features: number;
  outChannels: [number, number, number, number];
  layerIdx: [number, number, number, number];
  headFeatures2: number;
  microBatch: number;
  motion: DepthMotionConfig;
}

/** The released checkpoints (upstream's MODEL_CONFIGS and DINOv2 sizes). */
export const DEPTH_ENCODERS: Record<string, { embedDim: number; depth: number; numHeads: number; features: number; outChannels: [number, number, number, number]; layerIdx: [number, number, number, number] }> = {
  vits: { embedDim: 384, depth: 12, numHeads: 6, features: 64, outChannels: [48, 96, 192, 384], layerIdx: [2, 5, 8, 11] },
  vitb: { embedDim: 768, depth: 12, numHeads: 12, features: 128, outChannels: [96, 192, 384, 768], layerIdx: [2, 5, 8, 11] },
  vitl: { embedDim: 1024, depth: 24, numHeads: 16, features: 256, outChannels: [256, 512, 1024, 1024], layerIdx: [4, 11, 17, 23] },
};

function sub(config: Config, key: string): Config {
  const v = config[key];
  if (v === undefined) return {};
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DepthConfigError(`config.json ${key}: expected an object, got ${JSON.stringify(v)}`);
  return v as Config;
}

export function parseDepthConfig(config: Config): DepthModelConfig {
  const encoder = config.encoder ?? 'vits';
  if (typeof encoder !== 'string' || !(encoder in DEPTH_ENCODERS)) {
    throw new DepthConfigError(`config.json encoder: ${JSON.stringify(encoder)} is not one of ${Object.keys(DEPTH_ENCODERS).join(', ')}`);
  }
  const real = DEPTH_ENCODERS[encoder];
  const bb = sub(config, 'backbone');
  const mm = sub(config, 'motion_module');
  const head = sub(config, 'head');
  const num = (obj: Config, where: string, key: string, def: number, int = true): number => {
    const v = obj[key] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || (int ? !Number.isInteger(v) || v < 1 : v < 0)) {
      throw new DepthConfigError(`config.json ${where}${key}: expected a ${int ? 'positive integer' : 'number >= 0'}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const ints4 = (key: string, def: [number, number, number, number], min: number): [number, number, number, number] => {
    const v = config[key] ?? def;
    if (!Array.isArray(v) || v.length !== 4 || v.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < min)) {
      throw new DepthConfigError(`config.json ${key}: expected 4 integers >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v as [number, number, number, number];
  };
  const backbone: DepthBackboneConfig = {
    embedDim: num(bb, 'backbone.', 'embed_dim', real.embedDim),
    depth: num(bb, 'backbone.', 'depth', real.depth),
    numHeads: num(bb, 'backbone.', 'num_heads', real.numHeads),
    mlpRatio: num(bb, 'backbone.', 'mlp_ratio', 4),
    patchSize: num(bb, 'backbone.', 'patch_size', 14),
    posGrid: num(bb, 'backbone.', 'pos_embed_grid', Math.floor(num(bb, 'backbone.', 'img_size', 518) / num(bb, 'backbone.', 'patch_size', 14))),
    interpolateOffset: num(bb, 'backbone.', 'interpolate_offset', 0.1, false),
    eps: num(bb, 'backbone.', 'layer_norm_eps', 1e-6, false),
  };
  if (backbone.embedDim % backbone.numHeads) throw new DepthConfigError(`config.json backbone.embed_dim ${backbone.embedDim}: not divisible by backbone.num_heads ${backbone.numHeads}`);
  if (bb.num_register_tokens !== undefined && bb.num_register_tokens !== 0) throw new DepthConfigError(`config.json backbone.num_register_tokens: only 0 is supported (DINOv2() builds none), got ${JSON.stringify(bb.num_register_tokens)}`);
  if (bb.ffn_layer !== undefined && bb.ffn_layer !== 'mlp') throw new DepthConfigError(`config.json backbone.ffn_layer: only "mlp" is supported, got ${JSON.stringify(bb.ffn_layer)}`);
  if (bb.interpolate_antialias === true) throw new DepthConfigError('config.json backbone.interpolate_antialias: only false is supported (DINOv2() sets it false)');
  if (config.use_clstoken === true) throw new DepthConfigError('config.json use_clstoken: only false is supported (the released models use no readout projection)');
  if (config.use_bn === true) throw new DepthConfigError('config.json use_bn: only false is supported');
  if (config.pe !== undefined && config.pe !== 'ape') throw new DepthConfigError(`config.json pe: only "ape" is supported, got ${JSON.stringify(config.pe)}`);
  const features = num(config, '', 'features', real.features);
  const outChannels = ints4('out_channels', real.outChannels, 1);
  const layerIdx = ints4('intermediate_layer_idx', real.layerIdx, 0);
  for (const i of layerIdx) if (i >= backbone.depth) throw new DepthConfigError(`config.json intermediate_layer_idx: block ${i} is past the backbone's ${backbone.depth} blocks`);
  const motion: DepthMotionConfig = {
    numHeads: num(mm, 'motion_module.', 'num_attention_heads', 8),
    numAttentionBlocks: num(mm, 'motion_module.', 'num_attention_blocks', 2),
    numTransformerBlocks: num(mm, 'motion_module.', 'num_transformer_block', 1),
    groups: num(mm, 'motion_module.', 'norm_num_groups', 32),
    groupNormEps: num(mm, 'motion_module.', 'group_norm_eps', 1e-6, false),
    layerNormEps: num(mm, 'motion_module.', 'layer_norm_eps', 1e-5, false),
    maxLen: num(mm, 'motion_module.', 'temporal_max_len', num(config, '', 'num_frames', 32)),
  };
  for (const c of [outChannels[2], outChannels[3], features]) {
    if (c % motion.numHeads || c % motion.groups) throw new DepthConfigError(`config.json: motion module channels ${c} not divisible by its ${motion.numHeads} heads and ${motion.groups} groups`);
  }
  return {
    encoder, backbone, features, outChannels, layerIdx, motion,
    headFeatures2: num(head, 'head.', 'head_features_2', 32),
    microBatch: num(head, 'head.', 'micro_batch_size', 4),
  };
}
