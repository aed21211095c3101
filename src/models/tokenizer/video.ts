// The causal video tokenizers (Cosmos-Tokenizer networks/continuous_video.py and
// discrete_video.py): CausalContinuousVideoTokenizer (CV: latent = quant_conv(encoder(x)),
// formulation AE) and CausalDiscreteVideoTokenizer (DV: FSQ on quant_conv's output). Built
// from the config dict alone; parameters are declared with their shapes and filled by
// loadWeights (load.ts). Video is [B, C, T, H, W] in [-1, 1] with T = 1 + k * temporal_compression.
import { Module } from '../../engine/module.js';
import { scope, type Tensor } from '../../engine/tensor.js';
import {
  type CosmosTokenizerConfig, type VideoArch, checkFormulation, fsqLevels, positiveInt, videoArchFromConfig,
} from './config.js';
import { TokenizerInputError, gotShape } from './errors.js';
import { type HostIndices, FSQuantizer } from './fsq.js';
import { CausalConv3d, type CausalState, DecoderFactorized, EncoderFactorized } from './layers3d.js';
import { encodeStream } from './stream.js';

type Cfg = Record<string, unknown>;

/** Encoder, decoder and the 1x1x1 quant convs shared by CV and DV. */
export abstract class VideoTokenizerBase extends Module {
  readonly encoder: EncoderFactorized;
  readonly decoder: DecoderFactorized;
  readonly quant_conv: CausalConv3d;
  readonly post_quant_conv: CausalConv3d;

  constructor(readonly arch: VideoArch, readonly codeChannels: number) {
    super();
    this.encoder = this.add('encoder', new EncoderFactorized(arch));
    this.decoder = this.add('decoder', new DecoderFactorized(arch));
    this.quant_conv = this.add('quant_conv', new CausalConv3d(arch.zChannels, codeChannels, 1, { padding: 0 }));
    this.post_quant_conv = this.add('post_quant_conv', new CausalConv3d(codeChannels, arch.zChannels, 1, { padding: 0 }));
  }

  get temporalCompression(): number {
    return this.arch.temporalCompression;
  }
  get spatialCompression(): number {
    return this.arch.spatialCompression;
  }

  /** Latent (or code / index) grid of a video: [t, h, w] = [1 + (T-1)/tc, H/sc, W/sc]. */
  latentSize(videoShape: readonly number[]): [number, number, number] {
    const [, , T, H, W] = videoShape;
    return [1 + (T - 1) / this.temporalCompression, H / this.spatialCompression, W / this.spatialCompression];
  }

  /** Frames decoded from t latent frames: 1 + (t-1) * tc. */
  framesFor(latentFrames: number): number {
    return 1 + (latentFrames - 1) * this.temporalCompression;
  }

  /**
   * Check a video (or a stream chunk): rank 5, in_channels channels, H and W multiples of the
   * spatial compression, T = 1 + k*tc for a clip / first chunk, k*tc (k >= 1) for a later chunk.
   */
  checkVideo(x: Tensor, argument = 'video', continuation = false): void {
    const a = this.arch;
    const tc = a.temporalCompression;
    const sc = a.spatialCompression;
    const what = `[B, ${a.inChannels}, T, H, W] with ${continuation ? `T = k*${tc} (k >= 1)` : `T = 1 + k*${tc}`} and H, W multiples of ${sc}`;
    if (x.rank !== 5 || x.shape[0] < 1) throw new TokenizerInputError(argument, what, gotShape(x.shape));
    const [, C, T, H, W] = x.shape;
    if (C !== a.inChannels) throw new TokenizerInputError(argument, `${a.inChannels} channels (${what})`, gotShape(x.shape));
    const tOk = continuation ? T >= tc && T % tc === 0 : T >= 1 && (T - 1) % tc === 0;
    if (!tOk) {
      throw new TokenizerInputError(argument, `${continuation ? `a multiple of ${tc}` : `1 + k*${tc}`} frames (${what}); other frame counts are not causal-safe`, gotShape(x.shape));
    }
    if (H < sc || W < sc || H % sc || W % sc) throw new TokenizerInputError(argument, `H and W multiples of ${sc} (${what})`, gotShape(x.shape));
  }

  /** Check a latent / code tensor [B, channels, t, h, w]. */
  protected checkLatent(z: Tensor, argument: string): void {
    const c = this.codeChannels;
    if (z.rank !== 5 || z.shape[1] !== c || z.shape.some((d) => d < 1)) {
      throw new TokenizerInputError(argument, `[B, ${c}, t, h, w] (t, h, w >= 1)`, gotShape(z.shape));
    }
  }

  /** quant_conv(encoder(x)) with optional causal state (stream.ts). */
  encodeRaw(video: Tensor, st?: CausalState): Tensor {
    return scope(() => this.quant_conv.forward(this.encoder.forward(video, st)));
  }

  /** decoder(post_quant_conv(z)). */
  protected decodeRaw(z: Tensor): Tensor {
    return scope(() => this.decoder.forward(this.post_quant_conv.forward(z)));
  }

}

/** CV: continuous latents, `latent_channels` channels (formulation AE: the quant_conv output). */
export class CausalContinuousVideoTokenizer extends VideoTokenizerBase {
  readonly kind = 'CV' as const;
  readonly latentChannels: number;

  constructor(config: CosmosTokenizerConfig | Cfg);
  constructor(arch: VideoArch, latentChannels: number);
  constructor(configOrArch: CosmosTokenizerConfig | Cfg | VideoArch, latentChannels?: number) {
    const fromArch = latentChannels !== undefined;
    const cfg = configOrArch as Cfg;
    if (!fromArch) checkFormulation(cfg);
    const arch = fromArch ? (configOrArch as VideoArch) : videoArchFromConfig(cfg, 'CV');
    const lc = fromArch ? latentChannels : positiveInt(cfg, 'latent_channels');
    super(arch, lc);
    this.latentChannels = lc;
  }

  /** video [B, C, 1 + k*tc, H, W] -> latent [B, latent_channels, 1 + k, H/sc, W/sc]. */
  encode(video: Tensor): Tensor {
    this.checkVideo(video, 'video');
    return this.encodeRaw(video);
  }

  /** latent [B, latent_channels, t, h, w] -> video [B, C, 1 + (t-1)*tc, h*sc, w*sc]. */
  decode(latent: Tensor): Tensor {
    this.checkLatent(latent, 'latent');
    return this.decodeRaw(latent);
  }

  /** Chunked encoding (stream.ts): yields each chunk's latent frames. */
  encodeStream(chunks: AsyncIterable<Tensor> | Iterable<Tensor>): AsyncGenerator<Tensor, void, undefined> {
    return encodeStream<CausalContinuousVideoTokenizer>(this, chunks);
  }
}

/** DV: FSQ token ids over the quant_conv output (embedding_dim = number of levels). */
export class CausalDiscreteVideoTokenizer extends VideoTokenizerBase {
  readonly kind = 'DV' as const;
  readonly quantizer: FSQuantizer;

  constructor(config: CosmosTokenizerConfig | Cfg) {
    const cfg = config as Cfg;
    const levels = fsqLevels(cfg);
    super(videoArchFromConfig(cfg, 'DV'), levels.length);
    this.quantizer = new FSQuantizer(levels);
  }

  get vocabSize(): number {
    return this.quantizer.vocabSize;
  }

  /** Pre-quantisation values (quant_conv output) -> codes and i32 indices [B, t, h, w]. */
  quantize(z: Tensor): { indices: Tensor; codes: Tensor } {
    return this.quantizer.quantize(z);
  }

  /** video -> { indices [B, t, h, w] i32, codes [B, embedding_dim, t, h, w] }. */
  encode(video: Tensor): { indices: Tensor; codes: Tensor } {
    this.checkVideo(video, 'video');
    return scope(() => this.quantizer.quantize(this.encodeRaw(video)));
  }

  /** Chunked encoding (stream.ts): yields each chunk's { indices, codes }. */
  encodeStream(chunks: AsyncIterable<Tensor> | Iterable<Tensor>): AsyncGenerator<{ indices: Tensor; codes: Tensor }, void, undefined> {
    return encodeStream<CausalDiscreteVideoTokenizer>(this, chunks);
  }

  /** codes [B, embedding_dim, t, h, w] -> video. */
  decode(codes: Tensor): Tensor {
    this.checkLatent(codes, 'codes');
    return this.decodeRaw(codes);
  }

  /**
   * Token ids [B, t, h, w] -> video (upstream decode_code). Host ids are checked against
   * [0, vocab) before upload; device ids are used as given (see FSQuantizer.validateIndices).
   */
  decodeIndices(indices: Tensor | HostIndices): Tensor {
    const shape = indices.shape;
    if (shape.length !== 4 || shape.some((d) => d < 1)) throw new TokenizerInputError('indices', '[B, t, h, w] token ids', gotShape(shape));
    return scope(() => {
      const ids = 'data' in indices ? this.quantizer.uploadIndices(this.quant_conv.weight.backend, indices) : indices;
      if (ids.dtype !== 'i32') throw new TokenizerInputError('indices', 'an i32 tensor of token ids', `dtype ${ids.dtype}`);
      return this.decodeRaw(this.quantizer.indicesToCodes(ids));
    });
  }
}

export type VideoTokenizer = CausalContinuousVideoTokenizer | CausalDiscreteVideoTokenizer;
