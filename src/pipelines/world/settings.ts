// A run's settings: the caller's values over the pipeline's defaults, checked, and the output
// size checked against the VAE (1 + k*tc frames, H and W multiples of the compression times the
// patch) and the transformer (its max_size), giving the latent shape the sampler draws.
import type { CosmosTransformerConfig } from '../../models/dit/config.js';
import { PipelineInputError } from './errors.js';
import type { VaeGeometry, WorldDefaults } from './folder.js';

export interface WorldSettings {
  seed: number | string;
  steps: number;
  guidance: number;
  /** RoPE fps where the family uses it, and the clip's frame rate */
  fps: number;
  frames: number;
  height: number;
  width: number;
}

/** What the caller may set; the rest comes from the defaults. */
export type SettingsInput = Partial<WorldSettings>;

function checkInt(v: number, option: string, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new PipelineInputError(option, `must be an integer >= ${min}, got ${v}`);
}

export function resolveSettings(o: SettingsInput, d: WorldDefaults, fallback: { height?: number; width?: number } = {}): WorldSettings {
  const steps = o.steps ?? d.steps;
  checkInt(steps, 'steps', 1);
  const guidance = o.guidance ?? d.guidance;
  if (!Number.isFinite(guidance) || guidance < 0) throw new PipelineInputError('guidance', `must be a number >= 0, got ${guidance}`);
  const fps = o.fps ?? d.fps;
  if (!Number.isFinite(fps) || fps <= 0) throw new PipelineInputError('fps', `must be a positive number, got ${fps}`);
  return {
    seed: o.seed ?? 0,
    steps,
    guidance,
    fps,
    frames: o.frames ?? d.frames,
    height: o.height ?? fallback.height ?? d.height,
    width: o.width ?? fallback.width ?? d.width,
  };
}

/** The latent shape [1, C, T, h, w] of an output size, checked against the VAE and the transformer. */
export function planSizes(t: CosmosTransformerConfig, vae: VaeGeometry, frames: number, height: number, width: number): [number, number, number, number, number] {
  const tc = vae.temporalCompression;
  const sc = vae.spatialCompression;
  const [pt, ph, pw] = t.patchSize;
  checkInt(frames, 'frames', 1);
  checkInt(height, 'height', 1);
  checkInt(width, 'width', 1);
  if ((frames - 1) % tc !== 0) {
    const lo = frames - ((frames - 1) % tc);
    throw new PipelineInputError('frames', `must be 1 + k*${tc} (the VAE compresses time ${tc}x causally), got ${frames}; try ${lo} or ${lo + tc}`);
  }
  const T = (frames - 1) / tc + 1;
  if (T % pt !== 0) throw new PipelineInputError('frames', `${frames} frames give ${T} latent frames, not a multiple of the patch size ${pt}`);
  for (const [option, v, p] of [['height', height, ph], ['width', width, pw]] as const) {
    if (v % (sc * p) !== 0) throw new PipelineInputError(option, `must be a multiple of ${sc * p} (VAE ${sc}x, patch ${p}), got ${v}`);
  }
  const h = height / sc;
  const w = width / sc;
  const lim: [string, number, number, number][] = [['frames', T, t.maxSize[0], tc], ['height', h, t.maxSize[1], sc], ['width', w, t.maxSize[2], sc]];
  for (const [option, n, max, f] of lim) {
    if (n > max) {
      const maxPixels = option === 'frames' ? (max - 1) * f + 1 : max * f;
      throw new PipelineInputError(option, `${n} latent positions exceed the transformer's max_size ${max} (at most ${maxPixels} ${option === 'frames' ? 'frames' : 'pixels'})`);
    }
  }
  return [1, vae.latentChannels, T, h, w];
}

/** Tokens the transformer sees for a latent shape (the patched grid's size). */
export function tokenCount(t: Pick<CosmosTransformerConfig, 'patchSize'>, latentShape: readonly number[]): number {
  const [, , T, h, w] = latentShape;
  const [pt, ph, pw] = t.patchSize;
  return (T / pt) * (h / ph) * (w / pw);
}
