// The diffusers config of AutoencoderKLWan (fact sheet wan_vae.md §2, §10): the constructor's
// defaults are the real Wan2.1 VAE, so an empty config builds it. Every field the networks are
// built from is checked here, so a bad config fails with the field's name before anything is
// allocated.
import { UserError } from '../../engine/errors.js';

export const WAN_CLASS_NAME = 'AutoencoderKLWan';

/** Wan2.1's per-channel latent statistics (also the constructor's defaults). */
export const WAN21_LATENTS_MEAN: readonly number[] = [
  -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497,
  0.2503, -0.2921,
];
export const WAN21_LATENTS_STD: readonly number[] = [
  2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251,
  1.916,
];

export interface WanVaeConfig {
  baseDim: number;
  decoderBaseDim: number;
  zDim: number;
  dimMult: number[];
  numResBlocks: number;
  temperalDownsample: boolean[];
  isResidual: boolean;
  /** planes into the encoder's conv_in (already patchified: 12 for Wan2.2) */
  inChannels: number;
  /** planes out of the decoder's conv_out (before unpatchify) */
  outChannels: number;
  patchSize: number | null;
  latentsMean: number[] | null;
  latentsStd: number[] | null;
}

export class WanConfigError extends UserError {
  override name = 'WanConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`AutoencoderKLWan config ${field}: ${message}`);
  }
}

type Cfg = Record<string, unknown>;

const show = (v: unknown) => JSON.stringify(v);

function posInt(cfg: Cfg, field: string, def: number): number {
  const v = cfg[field] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new WanConfigError(field, `expected a positive integer, got ${show(v)}`);
  return v;
}

function bool(cfg: Cfg, field: string, def: boolean): boolean {
  const v = cfg[field] ?? def;
  if (typeof v !== 'boolean') throw new WanConfigError(field, `expected true or false, got ${show(v)}`);
  return v;
}

function stats(cfg: Cfg, field: string, def: readonly number[], zDim: number): number[] | null {
  const v = field in cfg ? cfg[field] : def.length === zDim ? [...def] : null;
  if (v === null) return null;
  if (!Array.isArray(v) || v.length !== zDim || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new WanConfigError(field, `expected null or ${zDim} numbers (one per latent channel, z_dim ${zDim}), got ${show(v)}`);
  }
  return v as number[];
}

/** diffusers config.json of AutoencoderKLWan -> the fields the networks are built from. */
export function parseWanVaeConfig(json: Record<string, unknown>): WanVaeConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new WanConfigError('<root>', `expected a JSON object, got ${show(json)}`);
  const cfg = json;
  if (cfg._class_name !== undefined && cfg._class_name !== WAN_CLASS_NAME) {
    throw new WanConfigError('_class_name', `expected ${WAN_CLASS_NAME}, got ${show(cfg._class_name)}`);
  }
  const baseDim = posInt(cfg, 'base_dim', 96);
  const decoderBaseDim = cfg.decoder_base_dim === null || cfg.decoder_base_dim === undefined ? baseDim : posInt(cfg, 'decoder_base_dim', baseDim);
  const zDim = posInt(cfg, 'z_dim', 16);
  const dm = cfg.dim_mult ?? [1, 2, 4, 4];
  if (!Array.isArray(dm) || dm.length < 1 || dm.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 1)) {
    throw new WanConfigError('dim_mult', `expected a non-empty list of positive integers, got ${show(dm)}`);
  }
  const dimMult = dm as number[];
  const numResBlocks = posInt(cfg, 'num_res_blocks', 2);
  const attn = cfg.attn_scales ?? [];
  if (!Array.isArray(attn) || attn.length) {
    // upstream's encoder cannot run attention inside its levels (the blocks get cache arguments they do not take)
    throw new WanConfigError('attn_scales', `must be [] (attention only in the mid blocks), got ${show(attn)}`);
  }
  const td = cfg.temperal_downsample ?? [false, true, true];
  if (!Array.isArray(td) || td.some((x) => typeof x !== 'boolean') || td.length !== dimMult.length - 1) {
    throw new WanConfigError('temperal_downsample', `expected ${dimMult.length - 1} booleans (one per down-sampling, len(dim_mult) - 1), got ${show(td)}`);
  }
  const dropout = cfg.dropout ?? 0;
  if (typeof dropout !== 'number') throw new WanConfigError('dropout', `expected a number, got ${show(dropout)}`);
  const isResidual = bool(cfg, 'is_residual', false);
  const inChannels = posInt(cfg, 'in_channels', 3);
  const outChannels = posInt(cfg, 'out_channels', 3);
  const patchSize = cfg.patch_size === null || cfg.patch_size === undefined ? null : posInt(cfg, 'patch_size', 1);
  const p2 = (patchSize ?? 1) ** 2;
  if (inChannels % p2) throw new WanConfigError('in_channels', `${inChannels} planes cannot be a patchified video (patch_size ${patchSize}: a multiple of ${p2})`);
  if (outChannels % p2) throw new WanConfigError('out_channels', `${outChannels} planes cannot be unpatchified (patch_size ${patchSize}: a multiple of ${p2})`);
  for (const f of ['scale_factor_temporal', 'scale_factor_spatial']) {
    const v = cfg[f];
    if (v !== undefined && v !== null && typeof v !== 'number') throw new WanConfigError(f, `expected a number, got ${show(v)}`);
  }
  const config: WanVaeConfig = {
    baseDim, decoderBaseDim, zDim, dimMult, numResBlocks,
    temperalDownsample: td as boolean[],
    isResidual, inChannels, outChannels, patchSize,
    latentsMean: stats(cfg, 'latents_mean', WAN21_LATENTS_MEAN, zDim),
    latentsStd: stats(cfg, 'latents_std', WAN21_LATENTS_STD, zDim),
  };
  checkWidths(config);
  return config;
}

/** Encoder widths b·[1, dm...]. */
export const encoderWidths = (c: WanVaeConfig) => [c.baseDim, ...c.dimMult.map((m) => c.baseDim * m)];
/** Decoder widths d·[dm[-1], dm reversed...]. */
export const decoderWidths = (c: WanVaeConfig) => {
  const r = [...c.dimMult].reverse();
  return [r[0], ...r].map((m) => c.decoderBaseDim * m);
};

/** The channel arithmetic the resamplers and the Wan2.2 shortcuts need. */
function checkWidths(c: WanVaeConfig): void {
  const levels = c.dimMult.length;
  const e = encoderWidths(c);
  const d = decoderWidths(c);
  for (let i = 0; i < levels - 1; i++) {
    if (!c.isResidual && d[i + 1] % 2) {
      throw new WanConfigError('dim_mult', `decoder width ${d[i + 1]} of up block ${i} is halved by its upsampler and must be even`);
    }
    if (c.isResidual) {
      const fd = (c.temperalDownsample[i] ? 2 : 1) * 4;
      if ((e[i] * fd) % e[i + 1]) throw new WanConfigError('dim_mult', `encoder level ${i}: ${e[i]} x ${fd} shortcut planes do not split into ${e[i + 1]} groups`);
      const fu = (c.temperalDownsample[levels - 2 - i] ? 2 : 1) * 4;
      if ((d[i + 1] * fu) % d[i]) throw new WanConfigError('dim_mult', `decoder level ${i}: ${d[i + 1]} x ${fu} shortcut planes are not a multiple of ${d[i]}`);
    }
  }
  if (c.isResidual && e[levels - 1] % e[levels]) {
    throw new WanConfigError('dim_mult', `encoder level ${levels - 1}: ${e[levels - 1]} planes do not split into ${e[levels]} groups`);
  }
}
