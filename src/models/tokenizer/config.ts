// Tokenizer configs: the Cosmos-Tokenizer constructor kwargs (the `config.json` of a CV / DV /
// CI / DI checkpoint) checked and turned into the explicit layer widths the networks are built
// from (fact sheet §2). The diffusers layout has its own parser in diffusers.ts that produces
// the same VideoArch.
import { TokenizerConfigError } from './errors.js';

export type TokenizerKind = 'CV' | 'DV' | 'CI' | 'DI';

/** Cosmos-Tokenizer constructor kwargs, as in the released configs / config.json. */
export interface CosmosTokenizerConfig {
  name?: string;
  channels: number;
  channels_mult: number[];
  num_res_blocks: number;
  attn_resolutions: number[];
  resolution: number;
  patch_size?: number;
  patch_method?: string;
  in_channels?: number;
  out_channels?: number;
  z_channels: number;
  z_factor?: number;
  /** CV / CI */
  latent_channels?: number;
  formulation?: string;
  /** DV / DI */
  embedding_dim?: number;
  levels?: number[];
  quantizer?: string;
  num_quantizers?: number;
  spatial_compression: number;
  /** CV / DV */
  temporal_compression?: number;
  num_groups?: number;
  legacy_mode?: boolean;
  encoder?: string;
  decoder?: string;
  dropout?: number;
  [extra: string]: unknown;
}

/** Everything the factorized video encoder/decoder need, with explicit widths. */
export interface VideoArch {
  inChannels: number;
  outChannels: number;
  patchSize: number;
  patchMethod: string;
  spatialCompression: number;
  temporalCompression: number;
  numResBlocks: number;
  attnResolutions: number[];
  resolution: number;
  /** encoder output channels (before quant_conv) = decoder input channels (after post_quant_conv) */
  zChannels: number;
  legacyMode: boolean;
  /** conv_in width and the width of each level (mid = last level) */
  encoder: { convIn: number; widths: number[] };
  /** conv_in / mid width and the width of each level, indexed by level (0 = full resolution) */
  decoder: { mid: number; widths: number[] };
}

/** The 2D image encoder/decoder (Encoder / Decoder of layers2d.py). */
export interface ImageArch {
  inChannels: number;
  outChannels: number;
  patchSize: number;
  patchMethod: string;
  spatialCompression: number;
  numResBlocks: number;
  attnResolutions: number[];
  resolution: number;
  zChannels: number;
  encoder: { convIn: number; widths: number[] };
  decoder: { mid: number; widths: number[] };
}

type Cfg = Record<string, unknown>;

export function positiveInt(cfg: Cfg, field: string, def?: number): number {
  const v = cfg[field] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new TokenizerConfigError(field, `expected a positive integer, got ${JSON.stringify(cfg[field])}`);
  }
  return v;
}

export function intList(cfg: Cfg, field: string, def?: number[], allowEmpty = false): number[] {
  const v = cfg[field] ?? def;
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0) || v.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 1)) {
    throw new TokenizerConfigError(field, `expected a ${allowEmpty ? '' : 'non-empty '}list of positive integers, got ${JSON.stringify(cfg[field])}`);
  }
  return [...(v as number[])];
}

function stringField(cfg: Cfg, field: string, def: string): string {
  const v = cfg[field] ?? def;
  if (typeof v !== 'string') throw new TokenizerConfigError(field, `expected a string, got ${JSON.stringify(v)}`);
  return v;
}

export function log2Exact(v: number, field: string): number {
  const l = Math.log2(v);
  if (!Number.isInteger(l)) throw new TokenizerConfigError(field, `must be a power of two, got ${v}`);
  return l;
}

/** Number of 2x resampling stages beyond the patcher (n_sd / n_td of the fact sheet). */
export function resamplingStages(compression: number, patchSize: number, field: string, levels: number): number {
  const n = log2Exact(compression, field) - log2Exact(patchSize, 'patch_size');
  if (n < 0) throw new TokenizerConfigError(field, `${compression} is smaller than patch_size ${patchSize}`);
  if (n > levels - 1) {
    throw new TokenizerConfigError(field, `${compression} needs ${n} resampling stages after the patcher, but ${levels} levels have only ${levels - 1}`);
  }
  return n;
}

/** CV / DV / CI / DI from config.json: the `name` field, else inferred from the fields present. */
export function tokenizerKindOf(cfg: Cfg): TokenizerKind {
  const name = cfg.name;
  if (name === 'CV' || name === 'DV' || name === 'CI' || name === 'DI') return name;
  if (typeof cfg._class_name === 'string') {
    throw new TokenizerConfigError('_class_name', `${cfg._class_name} is a diffusers config; use the diffusers loader (loadTokenizer detects it)`);
  }
  const discrete = cfg.levels !== undefined || cfg.embedding_dim !== undefined || cfg.quantizer !== undefined;
  const video = cfg.temporal_compression !== undefined || cfg.encoder === 'FACTORIZED' || cfg.num_groups !== undefined;
  if (name !== undefined && typeof name === 'string' && !/^(Causal|Continuous|Discrete)/.test(name)) {
    throw new TokenizerConfigError('name', `expected one of CV, DV, CI, DI, got ${JSON.stringify(name)}`);
  }
  return discrete ? (video ? 'DV' : 'DI') : video ? 'CV' : 'CI';
}

function checkCommon(cfg: Cfg, video: boolean): void {
  const zf = cfg.z_factor ?? 1;
  if (zf !== 1) throw new TokenizerConfigError('z_factor', `only 1 is supported (formulation AE), got ${JSON.stringify(zf)}`);
  if (video) {
    for (const f of ['encoder', 'decoder']) {
      const v = cfg[f] ?? 'FACTORIZED';
      if (v !== 'FACTORIZED') {
        throw new TokenizerConfigError(f, `only "FACTORIZED" is implemented (every released video tokenizer uses it), got ${JSON.stringify(v)}`);
      }
    }
    const g = cfg.num_groups ?? 1;
    if (g !== 1) throw new TokenizerConfigError('num_groups', `only 1 (per-frame causal GroupNorm, as released) is implemented, got ${JSON.stringify(g)}`);
  } else {
    for (const f of ['encoder', 'decoder']) {
      const v = cfg[f] ?? 'Default';
      if (v !== 'Default') throw new TokenizerConfigError(f, `only "Default" is implemented for image tokenizers, got ${JSON.stringify(v)}`);
    }
  }
}

export function checkFormulation(cfg: Cfg): void {
  const f = cfg.formulation ?? 'AE';
  if (f !== 'AE') throw new TokenizerConfigError('formulation', `only "AE" is implemented (every released continuous tokenizer), got ${JSON.stringify(f)}`);
}

export function fsqLevels(cfg: Cfg): number[] {
  const q = cfg.quantizer ?? 'FSQ';
  if (q !== 'FSQ') throw new TokenizerConfigError('quantizer', `only "FSQ" is implemented (every released discrete tokenizer), got ${JSON.stringify(q)}`);
  const levels = intList(cfg, 'levels');
  if (levels.some((l) => l < 2)) throw new TokenizerConfigError('levels', `every FSQ level must be >= 2, got ${JSON.stringify(levels)}`);
  const dim = positiveInt(cfg, 'embedding_dim', levels.length);
  if (dim !== levels.length) {
    throw new TokenizerConfigError('embedding_dim', `FSQ without projections needs embedding_dim = len(levels) = ${levels.length}, got ${dim}`);
  }
  return levels;
}

/** VideoArch of a CV / DV config (incl. the CV temporal_compression == 4 decoder quirk). */
export function videoArchFromConfig(cfg: Cfg, kind: 'CV' | 'DV'): VideoArch {
  checkCommon(cfg, true);
  const channels = positiveInt(cfg, 'channels');
  const mult = intList(cfg, 'channels_mult');
  const tc = positiveInt(cfg, 'temporal_compression', 4);
  // Cosmos-Tokenizer's CausalContinuousVideoTokenizer builds its DECODER with channels_mult
  // [2, 4] whenever temporal_compression == 4 (continuous_video.py); DV does not.
  const decMult = kind === 'CV' && tc === 4 ? [2, 4] : mult;
  const arch: VideoArch = {
    inChannels: positiveInt(cfg, 'in_channels', 3),
    outChannels: positiveInt(cfg, 'out_channels', 3),
    patchSize: positiveInt(cfg, 'patch_size', 1),
    patchMethod: stringField(cfg, 'patch_method', 'haar'),
    spatialCompression: positiveInt(cfg, 'spatial_compression', 16),
    temporalCompression: tc,
    numResBlocks: positiveInt(cfg, 'num_res_blocks'),
    attnResolutions: intList(cfg, 'attn_resolutions', [], true),
    resolution: positiveInt(cfg, 'resolution'),
    zChannels: positiveInt(cfg, 'z_channels'),
    legacyMode: cfg.legacy_mode === true,
    encoder: { convIn: channels, widths: mult.map((m) => channels * m) },
    decoder: { mid: channels * decMult[decMult.length - 1], widths: decMult.map((m) => channels * m) },
  };
  checkVideoArch(arch);
  return arch;
}

export function checkVideoArch(a: VideoArch): void {
  log2Exact(a.patchSize, 'patch_size');
  resamplingStages(a.spatialCompression, a.patchSize, 'spatial_compression', a.encoder.widths.length);
  resamplingStages(a.temporalCompression, a.patchSize, 'temporal_compression', a.encoder.widths.length);
  resamplingStages(a.spatialCompression, a.patchSize, 'spatial_compression', a.decoder.widths.length);
  resamplingStages(a.temporalCompression, a.patchSize, 'temporal_compression', a.decoder.widths.length);
}

export function imageArchFromConfig(cfg: Cfg): ImageArch {
  checkCommon(cfg, false);
  const channels = positiveInt(cfg, 'channels');
  const mult = intList(cfg, 'channels_mult');
  const arch: ImageArch = {
    inChannels: positiveInt(cfg, 'in_channels', 3),
    outChannels: positiveInt(cfg, 'out_channels', 3),
    patchSize: positiveInt(cfg, 'patch_size', 1),
    patchMethod: stringField(cfg, 'patch_method', 'haar'),
    spatialCompression: positiveInt(cfg, 'spatial_compression', 16),
    numResBlocks: positiveInt(cfg, 'num_res_blocks'),
    attnResolutions: intList(cfg, 'attn_resolutions', [], true),
    resolution: positiveInt(cfg, 'resolution'),
    zChannels: positiveInt(cfg, 'z_channels'),
    encoder: { convIn: channels, widths: mult.map((m) => channels * m) },
    decoder: { mid: channels * mult[mult.length - 1], widths: mult.map((m) => channels * m) },
  };
  // the 2D encoder may have as many downsamples as levels (layers2d.py asserts <=)
  const n = log2Exact(arch.spatialCompression, 'spatial_compression') - log2Exact(arch.patchSize, 'patch_size');
  if (n < 0 || n > mult.length) {
    throw new TokenizerConfigError('spatial_compression', `${arch.spatialCompression} needs ${n} downsampling stages after patch_size ${arch.patchSize}; ${mult.length} levels allow 0..${mult.length}`);
  }
  for (const w of [arch.encoder.convIn, ...arch.encoder.widths]) {
    if (w % 32) throw new TokenizerConfigError('channels', `image tokenizers use GroupNorm(32 groups): every width must be a multiple of 32, got ${w}`);
  }
  return arch;
}
