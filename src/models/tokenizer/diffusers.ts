// diffusers `AutoencoderKLCosmos` (autoencoder_kl_cosmos.py): the CV tokenizer under diffusers'
// config and key names (fact sheet §9-§11). It is built as the same module tree as
// CausalContinuousVideoTokenizer (numerically identical); the diffusers checkpoint keys are
// mapped onto that tree when loading, and recorded module outputs can be renamed to diffusers'
// module paths (`encoder.patch_embed`, `encoder.mid_block`, ...). Also the latent
// normalisation of the Cosmos pipelines (diffusers `latents_mean/std`, cosmos-predict1
// `mean_std.pt`).
import type { Backend } from '../../engine/backend.js';
import { TapRecorder } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { type VideoArch, checkVideoArch, intList, positiveInt } from './config.js';
import { TokenizerConfigError, TokenizerInputError, gotShape } from './errors.js';
import { CausalContinuousVideoTokenizer } from './video.js';

type Cfg = Record<string, unknown>;

export const DIFFUSERS_CLASS_NAME = 'AutoencoderKLCosmos';

/** The diffusers config fields (with diffusers' defaults = CV8x8x8). */
export interface AutoencoderKLCosmosConfig {
  _class_name?: string;
  in_channels?: number;
  out_channels?: number;
  latent_channels?: number;
  encoder_block_out_channels?: number[];
  decode_block_out_channels?: number[];
  attention_resolutions?: number[];
  resolution?: number;
  num_layers?: number;
  patch_size?: number;
  patch_type?: string;
  scaling_factor?: number;
  spatial_compression_ratio?: number;
  temporal_compression_ratio?: number;
  latents_mean?: number[] | null;
  latents_std?: number[] | null;
  [extra: string]: unknown;
}

/**
 * §10 mapping: encoder_block_out_channels = [channels, channels*mult...]; the decoder's mid
 * width is decode_block_out_channels[-1] and level i has width decode_block_out_channels[i];
 * num_layers = num_res_blocks; z_channels = latent_channels.
 */
export function diffusersArch(cfg: Cfg): { arch: VideoArch; latentChannels: number } {
  const enc = intList(cfg, 'encoder_block_out_channels', [128, 256, 512, 512]);
  const dec = intList(cfg, 'decode_block_out_channels', [256, 512, 512, 512]);
  if (enc.length < 2) throw new TokenizerConfigError('encoder_block_out_channels', `needs conv_in width plus at least one level, got ${JSON.stringify(enc)}`);
  if (dec.length !== enc.length) {
    throw new TokenizerConfigError('decode_block_out_channels', `must have as many entries as encoder_block_out_channels (${enc.length}), got ${JSON.stringify(dec)}`);
  }
  const patchType = cfg.patch_type ?? 'haar';
  if (typeof patchType !== 'string') throw new TokenizerConfigError('patch_type', `expected a string, got ${JSON.stringify(patchType)}`);
  const latentChannels = positiveInt(cfg, 'latent_channels', 16);
  const arch: VideoArch = {
    inChannels: positiveInt(cfg, 'in_channels', 3),
    outChannels: positiveInt(cfg, 'out_channels', 3),
    patchSize: positiveInt(cfg, 'patch_size', 4),
    patchMethod: patchType,
    spatialCompression: positiveInt(cfg, 'spatial_compression_ratio', 8),
    temporalCompression: positiveInt(cfg, 'temporal_compression_ratio', 8),
    numResBlocks: positiveInt(cfg, 'num_layers', 2),
    attnResolutions: intList(cfg, 'attention_resolutions', [32], true),
    resolution: positiveInt(cfg, 'resolution', 1024),
    zChannels: latentChannels,
    legacyMode: false,
    encoder: { convIn: enc[0], widths: enc.slice(1) },
    decoder: { mid: dec[dec.length - 1], widths: dec.slice(0, -1) },
  };
  checkVideoArch(arch);
  return { arch, latentChannels };
}

/**
 * Cosmos-Tokenizer key or module path -> diffusers name (§11 renaming rules). `levels` is the
 * number of decoder levels (decoder.up.{i} -> decoder.up_blocks.{levels-1-i}).
 */
export function cosmosToDiffusersName(name: string, levels: number): string {
  const seg = '(?=\\.|$)';
  const rules: [RegExp, string | ((...m: string[]) => string)][] = [
    [/^encoder\.patcher3d(?=\.|$)/, 'encoder.patch_embed'],
    [/^decoder\.unpatcher3d(?=\.|$)/, 'decoder.unpatch_embed'],
    [new RegExp(`^encoder\\.down\\.(\\d+)${seg}`), 'encoder.down_blocks.$1'],
    [new RegExp(`^decoder\\.up\\.(\\d+)${seg}`), (_m, i) => `decoder.up_blocks.${levels - 1 - Number(i)}`],
    [new RegExp(`\\.block\\.(\\d+)${seg}`), '.resnets.$1'],
    [new RegExp(`\\.attn\\.(\\d+)\\.0${seg}`), '.attentions.$1'],
    [new RegExp(`\\.attn\\.(\\d+)\\.1${seg}`), '.temp_attentions.$1'],
    [new RegExp(`\\.downsample${seg}`), '.downsamplers.0'],
    [new RegExp(`\\.upsample${seg}`), '.upsamplers.0'],
    [new RegExp(`\\.mid\\.block_1${seg}`), '.mid_block.resnets.0'],
    [new RegExp(`\\.mid\\.attn_1\\.0${seg}`), '.mid_block.attentions.0'],
    [new RegExp(`\\.mid\\.attn_1\\.1${seg}`), '.mid_block.temp_attentions.0'],
    [new RegExp(`\\.mid\\.block_2${seg}`), '.mid_block.resnets.1'],
    [/\.mid$/, '.mid_block'],
    [new RegExp(`\\.(q|k|v)\\.conv3d${seg}`), '.to_$1'],
    [new RegExp(`\\.proj_out\\.conv3d${seg}`), '.to_out.0'],
    [new RegExp(`\\.0\\.conv3d${seg}`), '.conv_s'],
    [new RegExp(`\\.1\\.conv3d${seg}`), '.conv_t'],
    [new RegExp(`\\.nin_shortcut\\.conv3d${seg}`), '.conv_shortcut'],
    [new RegExp(`\\.conv3d${seg}`), ''],
  ];
  let s = name;
  for (const [re, to] of rules) s = typeof to === 'string' ? s.replace(re, to) : s.replace(re, to as (...m: string[]) => string);
  return s;
}

/** AutoencoderKLCosmos: the CV tokenizer built from a diffusers config. */
export class AutoencoderKLCosmos extends CausalContinuousVideoTokenizer {
  readonly diffusersConfig: Cfg;
  /** config.latents_mean / latents_std (null when absent, as in the 0.1 models) */
  readonly latentsMean: readonly number[] | null;
  readonly latentsStd: readonly number[] | null;

  constructor(config: AutoencoderKLCosmosConfig | Cfg) {
    const cfg = config as Cfg;
    if (cfg._class_name !== undefined && cfg._class_name !== DIFFUSERS_CLASS_NAME) {
      throw new TokenizerConfigError('_class_name', `expected ${DIFFUSERS_CLASS_NAME}, got ${JSON.stringify(cfg._class_name)}`);
    }
    const { arch, latentChannels } = diffusersArch(cfg);
    super(arch, latentChannels);
    this.diffusersConfig = cfg;
    const stats = (f: string): number[] | null => {
      const v = cfg[f];
      if (v === undefined || v === null) return null;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'number') || v.length % latentChannels) {
        throw new TokenizerConfigError(f, `expected null or a list of numbers whose length is a multiple of latent_channels ${latentChannels}`);
      }
      return v as number[];
    };
    this.latentsMean = stats('latents_mean');
    this.latentsStd = stats('latents_std');
  }

  /** Diffusers name of one of this tree's parameter keys or module paths. */
  diffusersName(name: string): string {
    return cosmosToDiffusersName(name, this.arch.decoder.widths.length);
  }

  /** checkpoint (diffusers) key -> this tree's key, for loadWeights' mapKey. */
  keyMapper(): (key: string) => string {
    const m = new Map<string, string>();
    for (const p of this.parameters()) m.set(this.diffusersName(p.key), p.key);
    return (key) => m.get(key) ?? `<no Cosmos counterpart>${key}`;
  }

  /** The recorded module outputs under diffusers' module paths (a new recorder; the old one is left as is). */
  renameTaps(rec: TapRecorder): TapRecorder {
    const out = new TapRecorder('all');
    for (const r of rec.records) out.record(this.diffusersName(r.path), r.tensor);
    return out;
  }

  /** The pipeline statistics as tensors, or null when the config has none. */
  latentStats(backend: Backend): LatentStats | null {
    if (!this.latentsMean || !this.latentsStd) return null;
    return latentStats(backend, this.latentsMean, this.latentsStd, this.latentChannels);
  }
}

// ------------------------------------------------------------------ latent normalisation

/** Per-channel, per-latent-frame statistics viewed as [1, C, T_chunk, 1, 1]. */
export interface LatentStats {
  mean: Tensor;
  std: Tensor;
}

/**
 * Statistics from flat channel-major lists (C x T_chunk values each): diffusers
 * `latents_mean/std` or cosmos-predict1's `mean_std.pt` halves.
 */
export function latentStats(backend: Backend, mean: ArrayLike<number>, std: ArrayLike<number>, channels: number): LatentStats {
  if (mean.length !== std.length || mean.length === 0 || mean.length % channels) {
    throw new TokenizerInputError('mean/std', `two equal-length lists whose length is a multiple of ${channels} channels`, `${mean.length} and ${std.length} values`);
  }
  const shape = [1, channels, mean.length / channels, 1, 1];
  return { mean: F.fromArray(backend, mean, shape), std: F.fromArray(backend, std, shape) };
}

function statsFor(z: Tensor, s: LatentStats): [Tensor, Tensor] {
  const [, C, t] = z.shape;
  const [, sc, st] = s.mean.shape;
  // statistics of one latent frame apply to every frame (as [:, :, :t] broadcasts upstream)
  if (z.rank !== 5 || C !== sc || (t > st && st !== 1)) {
    throw new TokenizerInputError('latent', `[B, ${sc}, t, h, w] with t <= ${st} (frames the statistics cover)`, gotShape(z.shape));
  }
  return st === 1 ? [s.mean, s.std] : [F.slice(s.mean, 2, 0, t), F.slice(s.std, 2, 0, t)];
}

/** Pipeline rule: (z - mean[:, :, :t]) * sigma_data / std[:, :, :t]; without statistics z * sigma_data. */
export function normalizeLatent(z: Tensor, stats: LatentStats | null, sigmaData = 0.5): Tensor {
  if (!stats) return F.scale(z, sigmaData);
  return scope(() => {
    const [m, s] = statsFor(z, stats);
    return F.div(F.scale(F.sub(z, m), sigmaData), s);
  });
}

/** Inverse: z = normalised * std / sigma_data + mean; without statistics normalised / sigma_data. */
export function denormalizeLatent(zn: Tensor, stats: LatentStats | null, sigmaData = 0.5): Tensor {
  if (!stats) return F.scale(zn, 1 / sigmaData);
  return scope(() => {
    const [m, s] = statsFor(zn, stats);
    return F.add(F.scale(F.mul(zn, s), 1 / sigmaData), m);
  });
}
