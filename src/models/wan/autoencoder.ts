// diffusers AutoencoderKLWan (fact sheet wan_vae.md): the Wan2.1 video VAE of Cosmos-Predict2,
// Predict2.5 and Transfer2.5 (and the Wan2.2 layout), its posterior, its streamed encode / decode
// and the Cosmos2 latent normalisation.
//
// Encode runs the encoder on frame 0 alone, then on groups of 4 frames; decode runs the decoder on
// one latent frame at a time (1 output frame for the first, 4 for each later one). Between pieces
// only the PieceCache lives on (2 frames of each 3-frame conv's input, one frame per temporal
// downsampler), so the device never holds the clip at full resolution and width, only one piece
// of it.
import type { Backend } from '../../engine/backend.js';
import { UserError, throwIfAborted } from '../../engine/errors.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import { type ModuleFamily, loadModule } from '../load.js';
import { WanDecoder3d, WanEncoder3d } from './coder.js';
import { WAN_CLASS_NAME, type WanVaeConfig, parseWanVaeConfig } from './config.js';
import { PieceCache, WanCausalConv3d, patchify, unpatchify } from './layers.js';

/** Frames per encoder piece after the first (upstream's fixed chunk). */
export const ENCODE_PIECE = 4;

export class WanInputError extends UserError {
  override name = 'WanInputError';
  constructor(argument: string, expected: string, got: string) {
    super(`AutoencoderKLWan ${argument}: expected ${expected}, got ${got}`);
  }
}

export interface WanPosterior {
  /** [B, z, t, h, w] */
  mean: Tensor;
  /** [B, z, t, h, w], clamped to [-30, 20] */
  logvar: Tensor;
  dispose(): void;
}

/** mean + exp(logvar / 2) · noise (DiagonalGaussianDistribution.sample with a given draw). */
export function samplePosterior(p: WanPosterior, noise: Tensor): Tensor {
  if (noise.shape.join() !== p.mean.shape.join()) throw new WanInputError('noise', `shape ${shapeStr(p.mean.shape)} (the latent's)`, shapeStr(noise.shape));
  return scope(() => F.add(p.mean, F.mul(F.exp(F.scale(p.logvar, 0.5)), noise)));
}

export interface WanLatentStats {
  mean: Tensor;
  std: Tensor;
}

export class AutoencoderKLWan extends Module {
  readonly encoder: WanEncoder3d;
  readonly quant_conv: WanCausalConv3d;
  readonly post_quant_conv: WanCausalConv3d;
  readonly decoder: WanDecoder3d;
  readonly latentChannels: number;
  readonly temporalCompression: number;
  readonly spatialCompression: number;
  /** channels of the pixel video (in_channels / patch_size²) */
  readonly videoChannels: number;

  constructor(readonly config: WanVaeConfig) {
    super();
    const z = config.zDim;
    this.latentChannels = z;
    this.temporalCompression = 2 ** config.temperalDownsample.filter(Boolean).length;
    this.spatialCompression = 2 ** config.temperalDownsample.length * (config.patchSize ?? 1);
    this.videoChannels = config.inChannels / (config.patchSize ?? 1) ** 2;
    this.encoder = this.add('encoder', new WanEncoder3d(config));
    this.quant_conv = this.add('quant_conv', new WanCausalConv3d(2 * z, 2 * z, [1, 1, 1], [0, 0, 0]));
    this.post_quant_conv = this.add('post_quant_conv', new WanCausalConv3d(z, z, [1, 1, 1], [0, 0, 0]));
    this.decoder = this.add('decoder', new WanDecoder3d(config));
  }

  /** Frames the encoder uses of a clip of `total`: 1 + 4·floor((total - 1) / 4). */
  usedFrames(total: number): number {
    return 1 + ENCODE_PIECE * Math.floor((total - 1) / ENCODE_PIECE);
  }

  /** Latent frames of a clip of `total` frames. */
  latentFrames(total: number): number {
    return 1 + (this.usedFrames(total) - 1) / this.temporalCompression;
  }

  private checkVideo(shape: readonly number[], what: string): void {
    const s = this.spatialCompression;
    if (shape.length !== 5 || shape[1] !== this.videoChannels || shape[2] < 1 || shape[3] % s || shape[4] % s || shape[3] < s || shape[4] < s) {
      throw new WanInputError(what, `[B, ${this.videoChannels}, T >= 1, H, W] with H and W positive multiples of ${s}`, shapeStr(shape));
    }
  }

  /** video [B, C, T, H, W] in [-1, 1] -> posterior; frames after the last complete group of 4 are ignored. */
  encode(video: Tensor): WanPosterior {
    this.checkVideo(video.shape, 'video');
    return this.encodeFrames(video.shape[2], (start, count) => F.slice(video, 2, start, start + count));
  }

  /**
   * The same from a frame source: frames(start, count) -> [B, C, count, H, W]. What the source
   * creates for a piece is freed once the piece is encoded.
   */
  encodeFrames(totalFrames: number, frames: (start: number, count: number) => Tensor): WanPosterior {
    if (!Number.isInteger(totalFrames) || totalFrames < 1) throw new WanInputError('totalFrames', 'a positive integer', String(totalFrames));
    const used = this.usedFrames(totalFrames);
    const cache = new PieceCache();
    const outs: Tensor[] = [];
    let geometry: readonly number[] | null = null;
    try {
      for (let start = 0; start < used; start += start === 0 ? 1 : ENCODE_PIECE) {
        const count = start === 0 ? 1 : ENCODE_PIECE;
        outs.push(scope(() => {
          const x = frames(start, count);
          const what = `frames(${start}, ${count})`;
          if (geometry) {
            const want = [geometry[0], geometry[1], count, geometry[3], geometry[4]];
            if (x.shape.join() !== want.join()) throw new WanInputError(what, `shape ${shapeStr(want)}`, shapeStr(x.shape));
          } else {
            this.checkVideo(x.shape, what);
            if (x.shape[2] !== count) throw new WanInputError(what, `${count} frame(s)`, shapeStr(x.shape));
            geometry = x.shape;
          }
          const p = this.config.patchSize;
          const xin = p ? patchify(x, p) : x;
          return this.encoder.forward(xin, cache);
        }));
        cache.first = false;
      }
    } catch (e) {
      for (const o of outs) o.dispose();
      throw e;
    } finally {
      cache.dispose();
    }
    return scope(() => {
      const h = outs.length === 1 ? outs[0] : F.concat(outs, 2);
      const q = this.quant_conv.forward(h, null);
      for (const o of outs) o.dispose();
      const z = this.latentChannels;
      const mean = F.slice(q, 1, 0, z);
      const logvar = F.clamp(F.slice(q, 1, z, 2 * z), -30, 20);
      return { mean, logvar, dispose: () => { mean.dispose(); logvar.dispose(); } };
    });
  }

  private checkLatent(z: Tensor): void {
    const [, c, t, h, w] = z.shape;
    if (z.rank !== 5 || c !== this.latentChannels || t < 1 || h < 1 || w < 1) {
      throw new WanInputError('latent', `[B, ${this.latentChannels}, t >= 1, h, w]`, shapeStr(z.shape));
    }
  }

  /** Decoded pieces, each clamped to [-1, 1]: latent frame 0 gives 1 frame, each later one temporalCompression. */
  private *pieces(z: Tensor): Generator<{ frames: Tensor; first: number }> {
    this.checkLatent(z);
    const x = this.post_quant_conv.forward(z, null);
    const cache = new PieceCache();
    try {
      let first = 0;
      for (let i = 0; i < z.shape[2]; i++) {
        const frames = scope(() => {
          const out = this.decoder.forward(F.slice(x, 2, i, i + 1), cache);
          const p = this.config.patchSize;
          return F.clamp(p ? unpatchify(out, p) : out, -1, 1);
        });
        cache.first = false;
        yield { frames, first };
        first += frames.shape[2];
      }
    } finally {
      cache.dispose();
      x.dispose();
    }
  }

  /** z [B, z, t, h, w] -> video [B, out, 1 + tc·(t - 1), H, W] clamped to [-1, 1]. */
  decode(z: Tensor): Tensor {
    const parts: Tensor[] = [];
    try {
      for (const { frames } of this.pieces(z)) parts.push(frames);
      return parts.length === 1 ? parts[0] : F.concat(parts, 2);
    } finally {
      if (parts.length > 1) for (const p of parts) p.dispose();
    }
  }

  /** Streamed decode: each decoded group of frames (clamped) goes to `sink` as soon as it exists, then is freed. */
  async decodeFrames(
    z: Tensor,
    sink: (frames: Tensor, firstFrame: number) => void | Promise<void>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    throwIfAborted(opts.signal);
    for (const { frames, first } of this.pieces(z)) {
      try {
        await sink(frames, first);
      } finally {
        frames.dispose();
      }
      throwIfAborted(opts.signal);
    }
  }

  /** config latents_mean / latents_std as [1, z, 1, 1, 1] (null when the config has none). */
  latentStats(backend: Backend): WanLatentStats | null {
    const { latentsMean, latentsStd, zDim } = this.config;
    if (!latentsMean || !latentsStd) return null;
    const shape = [1, zDim, 1, 1, 1];
    return { mean: F.fromArray(backend, latentsMean, shape), std: F.fromArray(backend, latentsStd, shape) };
  }
}

function checkStats(x: Tensor, s: WanLatentStats, what: string): void {
  const C = s.mean.size;
  if (x.rank !== 5 || x.shape[1] !== C || s.std.size !== C) {
    throw new WanInputError(what, `[B, ${C}, t, h, w] (one statistic per latent channel)`, shapeStr(x.shape));
  }
}

/** Predict2.5's normalisation (x - mean) · (1 / std), per latent channel. */
export function normalizeWanLatent(z: Tensor, stats: WanLatentStats): Tensor {
  checkStats(z, stats, 'latent');
  return scope(() => F.mul(F.sub(z, stats.mean), F.recip(stats.std)));
}

/** The inverse: x / (1 / std) + mean. */
export function denormalizeWanLatent(x: Tensor, stats: WanLatentStats): Tensor {
  checkStats(x, stats, 'normalized latent');
  return scope(() => F.add(F.div(x, F.recip(stats.std)), stats.mean));
}

export const AutoencoderKLWanFamily: ModuleFamily<AutoencoderKLWan> = {
  name: WAN_CLASS_NAME,
  build: (config) => new AutoencoderKLWan(parseWanVaeConfig(config)),
};

/** A vae/ folder (config.json + diffusion_pytorch_model.safetensors) -> loaded model. */
export async function loadWanVae(
  dir: string,
  backend: Backend,
  opts: { config?: Record<string, unknown>; fs?: FileSystem; maxBytes?: number } = {},
): Promise<AutoencoderKLWan> {
  return (await loadModule(AutoencoderKLWanFamily, dir, backend, opts)).model;
}
