// The image tokenizers (Cosmos-Tokenizer networks/continuous_image.py, discrete_image.py):
// ContinuousImageTokenizer (CI) and DiscreteImageTokenizer (DI, FSQ). Image [B, C, H, W] in
// [-1, 1] with H, W multiples of spatial_compression. quant_conv / post_quant_conv are 1x1
// nn.Conv2d.
import { Module } from '../../engine/module.js';
import { scope, type Tensor } from '../../engine/tensor.js';
import { type CosmosTokenizerConfig, type ImageArch, checkFormulation, fsqLevels, imageArchFromConfig, positiveInt } from './config.js';
import { TokenizerInputError, gotShape } from './errors.js';
import { type HostIndices, FSQuantizer } from './fsq.js';
import { Conv2d, Decoder2d, Encoder2d } from './layers2d.js';

type Cfg = Record<string, unknown>;

export abstract class ImageTokenizerBase extends Module {
  readonly encoder: Encoder2d;
  readonly decoder: Decoder2d;
  readonly quant_conv: Conv2d;
  readonly post_quant_conv: Conv2d;

  constructor(readonly arch: ImageArch, readonly codeChannels: number) {
    super();
    this.encoder = this.add('encoder', new Encoder2d(arch));
    this.decoder = this.add('decoder', new Decoder2d(arch));
    this.quant_conv = this.add('quant_conv', new Conv2d(arch.zChannels, codeChannels, 1));
    this.post_quant_conv = this.add('post_quant_conv', new Conv2d(codeChannels, arch.zChannels, 1));
  }

  get spatialCompression(): number {
    return this.arch.spatialCompression;
  }

  checkImage(x: Tensor, argument = 'image'): void {
    const a = this.arch;
    const sc = a.spatialCompression;
    const what = `[B, ${a.inChannels}, H, W] with H, W multiples of ${sc}`;
    if (x.rank !== 4 || x.shape[0] < 1) throw new TokenizerInputError(argument, what, gotShape(x.shape));
    const [, C, H, W] = x.shape;
    if (C !== a.inChannels) throw new TokenizerInputError(argument, `${a.inChannels} channels (${what})`, gotShape(x.shape));
    if (H < sc || W < sc || H % sc || W % sc) throw new TokenizerInputError(argument, `H and W multiples of ${sc} (${what})`, gotShape(x.shape));
  }

  protected checkLatent(z: Tensor, argument: string): void {
    const c = this.codeChannels;
    if (z.rank !== 4 || z.shape[1] !== c || z.shape.some((d) => d < 1)) {
      throw new TokenizerInputError(argument, `[B, ${c}, h, w]`, gotShape(z.shape));
    }
  }

  encodeRaw(image: Tensor): Tensor {
    return scope(() => this.quant_conv.forward(this.encoder.forward(image)));
  }

  protected decodeRaw(z: Tensor): Tensor {
    return scope(() => this.decoder.forward(this.post_quant_conv.forward(z)));
  }

}

export class ContinuousImageTokenizer extends ImageTokenizerBase {
  readonly kind = 'CI' as const;
  readonly latentChannels: number;
  constructor(config: CosmosTokenizerConfig | Cfg) {
    const cfg = config as Cfg;
    checkFormulation(cfg);
    const lc = positiveInt(cfg, 'latent_channels');
    super(imageArchFromConfig(cfg), lc);
    this.latentChannels = lc;
  }

  /** image [B, C, H, W] -> latent [B, latent_channels, H/sc, W/sc]. */
  encode(image: Tensor): Tensor {
    this.checkImage(image);
    return this.encodeRaw(image);
  }

  decode(latent: Tensor): Tensor {
    this.checkLatent(latent, 'latent');
    return this.decodeRaw(latent);
  }
}

export class DiscreteImageTokenizer extends ImageTokenizerBase {
  readonly kind = 'DI' as const;
  readonly quantizer: FSQuantizer;
  constructor(config: CosmosTokenizerConfig | Cfg) {
    const cfg = config as Cfg;
    const levels = fsqLevels(cfg);
    super(imageArchFromConfig(cfg), levels.length);
    this.quantizer = new FSQuantizer(levels);
  }

  get vocabSize(): number {
    return this.quantizer.vocabSize;
  }

  quantize(z: Tensor): { indices: Tensor; codes: Tensor } {
    return this.quantizer.quantize(z);
  }

  /** image -> { indices [B, h, w] i32, codes [B, embedding_dim, h, w] }. */
  encode(image: Tensor): { indices: Tensor; codes: Tensor } {
    this.checkImage(image);
    return scope(() => this.quantizer.quantize(this.encodeRaw(image)));
  }

  decode(codes: Tensor): Tensor {
    this.checkLatent(codes, 'codes');
    return this.decodeRaw(codes);
  }

  /** Token ids [B, h, w] -> image. Host ids are checked against [0, vocab) before upload. */
  decodeIndices(indices: Tensor | HostIndices): Tensor {
    const shape = indices.shape;
    if (shape.length !== 3 || shape.some((d) => d < 1)) throw new TokenizerInputError('indices', '[B, h, w] token ids', gotShape(shape));
    return scope(() => {
      const ids = 'data' in indices ? this.quantizer.uploadIndices(this.quant_conv.weight.backend, indices) : indices;
      if (ids.dtype !== 'i32') throw new TokenizerInputError('indices', 'an i32 tensor of token ids', `dtype ${ids.dtype}`);
      return this.decodeRaw(this.quantizer.indicesToCodes(ids));
    });
  }
}

export type ImageTokenizer = ContinuousImageTokenizer | DiscreteImageTokenizer;
