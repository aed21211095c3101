// The causal video tokenizers (Cosmos-Tokenizer networks/continuous_video.py and
// discrete_video.py): CausalContinuousVideoTokenizer (CV: latent = quant_conv(encoder(x)),
// formulation AE) and CausalDiscreteVideoTokenizer (DV: FSQ on quant_conv's output). Built
// from the config dict alone; parameters are declared with their shapes and filled by
// loadWeights (load.ts). Video is [B, C, T, H, W] in [-1, 1] with T = 1 + k * temporal_compression.
import type { Tensor } from '../../engine/tensor.js';
import { CosmosAutoencoder, DiscreteAutoencoder } from './autoencoder.js';
import { type CosmosTokenizerConfig, type VideoArch, checkFormulation, fsqLevels, positiveInt, videoArchFromConfig } from './config.js';
import { VIDEO_BLOCKS } from './layers3d.js';
import { encodeStream } from './stream.js';

type Cfg = Record<string, unknown>;

/** CV: continuous latents, `latent_channels` channels (formulation AE: the quant_conv output). */
export class CausalContinuousVideoTokenizer extends CosmosAutoencoder<VideoArch> {
  readonly kind = 'CV' as const;
  readonly latentChannels: number;
  /**
   * A release's mean_std.pt (Cosmos-1.0-Tokenizer-CV8x8x8): the latent statistics cosmos-predict1
   * normalises with when this tokenizer is a world model's VAE (the tokenizer itself never applies them).
   */
  latentMeanStd: { mean: Float32Array; std: Float32Array } | null = null;

  constructor(config: CosmosTokenizerConfig | Cfg);
  constructor(arch: VideoArch, latentChannels: number);
  constructor(configOrArch: CosmosTokenizerConfig | Cfg | VideoArch, latentChannels?: number) {
    const fromArch = latentChannels !== undefined;
    const cfg = configOrArch as Cfg;
    if (!fromArch) checkFormulation(cfg);
    const arch = fromArch ? (configOrArch as VideoArch) : videoArchFromConfig(cfg, 'CV');
    const lc = fromArch ? latentChannels : positiveInt(cfg, 'latent_channels');
    super(arch, lc, VIDEO_BLOCKS);
    this.latentChannels = lc;
  }

  get temporalCompression(): number {
    return this.arch.temporalCompression;
  }

  /** video [B, C, 1 + k*tc, H, W] -> latent [B, latent_channels, 1 + k, H/sc, W/sc]. */
  encode(video: Tensor): Tensor {
    return this.encodeLatent(video, 'video');
  }

  /** latent [B, latent_channels, t, h, w] -> video [B, C, 1 + (t-1)*tc, h*sc, w*sc]. */
  decode(latent: Tensor): Tensor {
    return this.decodeLatent(latent, 'latent');
  }

  /** Chunked encoding (stream.ts): yields each chunk's latent frames. */
  encodeStream(chunks: AsyncIterable<Tensor> | Iterable<Tensor>): AsyncGenerator<Tensor, void, undefined> {
    return encodeStream(this, chunks);
  }
}

/** DV: FSQ token ids over the quant_conv output (embedding_dim = number of levels). */
export class CausalDiscreteVideoTokenizer extends DiscreteAutoencoder<VideoArch> {
  readonly kind = 'DV' as const;

  constructor(config: CosmosTokenizerConfig | Cfg) {
    const cfg = config as Cfg;
    const levels = fsqLevels(cfg);
    super(videoArchFromConfig(cfg, 'DV'), levels, VIDEO_BLOCKS);
  }

  get temporalCompression(): number {
    return this.arch.temporalCompression;
  }

  /** video -> { indices [B, t, h, w] i32, codes [B, embedding_dim, t, h, w] }. */
  encode(video: Tensor): { indices: Tensor; codes: Tensor } {
    return this.encodeTokens(video, 'video');
  }

  /** Chunked encoding (stream.ts): yields each chunk's { indices, codes }. */
  encodeStream(chunks: AsyncIterable<Tensor> | Iterable<Tensor>): AsyncGenerator<{ indices: Tensor; codes: Tensor }, void, undefined> {
    return encodeStream(this, chunks);
  }

  /** codes [B, embedding_dim, t, h, w] -> video. */
  decode(codes: Tensor): Tensor {
    return this.decodeLatent(codes, 'codes');
  }
}

export type VideoTokenizer = CausalContinuousVideoTokenizer | CausalDiscreteVideoTokenizer;
