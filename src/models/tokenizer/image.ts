// The image tokenizers (Cosmos-Tokenizer networks/continuous_image.py, discrete_image.py):
// ContinuousImageTokenizer (CI) and DiscreteImageTokenizer (DI, FSQ). Image [B, C, H, W] in
// [-1, 1] with H, W multiples of spatial_compression. quant_conv / post_quant_conv are 1x1
// nn.Conv2d.
import type { Tensor } from '../../engine/tensor.js';
import { CosmosAutoencoder, DiscreteAutoencoder } from './autoencoder.js';
import { type CosmosTokenizerConfig, type ImageArch, checkFormulation, fsqLevels, imageArchFromConfig, positiveInt } from './config.js';
import { IMAGE_BLOCKS } from './layers2d.js';

type Cfg = Record<string, unknown>;

export class ContinuousImageTokenizer extends CosmosAutoencoder<ImageArch> {
  readonly kind = 'CI' as const;
  readonly latentChannels: number;
  constructor(config: CosmosTokenizerConfig | Cfg) {
    const cfg = config as Cfg;
    checkFormulation(cfg);
    const lc = positiveInt(cfg, 'latent_channels');
    super(imageArchFromConfig(cfg), lc, IMAGE_BLOCKS);
    this.latentChannels = lc;
  }

  /** image [B, C, H, W] -> latent [B, latent_channels, H/sc, W/sc]. */
  encode(image: Tensor): Tensor {
    return this.encodeLatent(image, 'image');
  }

  decode(latent: Tensor): Tensor {
    return this.decodeLatent(latent, 'latent');
  }
}

export class DiscreteImageTokenizer extends DiscreteAutoencoder<ImageArch> {
  readonly kind = 'DI' as const;
  constructor(config: CosmosTokenizerConfig | Cfg) {
    const cfg = config as Cfg;
    const levels = fsqLevels(cfg);
    super(imageArchFromConfig(cfg), levels, IMAGE_BLOCKS);
  }

  /** image -> { indices [B, h, w] i32, codes [B, embedding_dim, h, w] }. */
  encode(image: Tensor): { indices: Tensor; codes: Tensor } {
    return this.encodeTokens(image, 'image');
  }

  decode(codes: Tensor): Tensor {
    return this.decodeLatent(codes, 'codes');
  }
}

export type ImageTokenizer = ContinuousImageTokenizer | DiscreteImageTokenizer;
