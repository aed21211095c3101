// What the four Cosmos tokenizers (CV, DV, CI, DI) share: encoder, quant_conv, post_quant_conv
// and decoder (keys `encoder.*`, `quant_conv.*`, ...), the input and latent checks, and for the
// discrete ones the FSQ quantiser on the quant_conv output. The subclasses (video.ts, image.ts)
// only name their kind and the types of what encode / decode take and return.
import type { Backend } from '../../engine/backend.js';
import { Module } from '../../engine/module.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { type Blocks, type CausalState, type ConvBlock, Decoder, Encoder } from './coder.js';
import type { ImageArch, TokenizerKind, VideoArch } from './config.js';
import { TokenizerInputError, gotShape } from './errors.js';
import { FSQuantizer, type HostIndices } from './fsq.js';

export abstract class CosmosAutoencoder<A extends ImageArch = ImageArch> extends Module {
  abstract readonly kind: TokenizerKind;
  readonly encoder: Encoder<A>;
  readonly decoder: Decoder<A>;
  readonly quant_conv: ConvBlock;
  readonly post_quant_conv: ConvBlock;

  constructor(
    readonly arch: A,
    /** latent channels (continuous) or FSQ embedding size (discrete) */
    readonly codeChannels: number,
    blocks: Blocks<A>,
  ) {
    super();
    this.encoder = this.add('encoder', new Encoder(arch, blocks));
    this.decoder = this.add('decoder', new Decoder(arch, blocks));
    this.quant_conv = this.add('quant_conv', blocks.pointwise(arch.zChannels, codeChannels));
    this.post_quant_conv = this.add('post_quant_conv', blocks.pointwise(codeChannels, arch.zChannels));
  }

  get spatialCompression(): number {
    return this.arch.spatialCompression;
  }

  /** Whether the encoder (encoder + quant_conv) or the decoder (post_quant_conv + decoder) has its weights. */
  hasHalf(half: 'encoder' | 'decoder'): boolean {
    const conv = half === 'encoder' ? this.quant_conv : this.post_quant_conv;
    for (const p of conv.parameters()) if (!p.loaded && !p.optional) return false;
    return true;
  }

  /** A user error when `half` was not loaded (a release's encoder.jit or decoder.jit alone), before any compute. */
  requireHalf(half: 'encoder' | 'decoder'): void {
    if (!this.hasHalf(half)) {
      throw new TokenizerInputError('tokenizer', `a tokenizer with its ${half} loaded`, `one loaded without it (from ${half === 'encoder' ? 'decoder.jit' : 'encoder.jit'} alone?)`);
    }
  }

  /** The backend holding the weights: the encoder's or the decoder's (a release may load only one half). */
  get backend(): Backend {
    for (const half of [this.quant_conv, this.post_quant_conv]) {
      for (const p of half.parameters()) if (p.loaded) return p.t.backend;
    }
    throw new Error('neither half of the tokenizer has weights loaded');
  }

  /** The time axis of a video tokenizer; null for an image tokenizer. */
  protected get temporal(): number | null {
    return 'temporalCompression' in this.arch ? (this.arch as unknown as VideoArch).temporalCompression : null;
  }

  /**
   * Check an input: [B, C, H, W] (image) or [B, C, T, H, W] (video) with in_channels channels,
   * H and W multiples of the spatial compression, and for a video T = 1 + k*tc for a clip / first
   * chunk, k*tc (k >= 1) for a later chunk (`continuation`).
   */
  checkInput(x: Tensor, argument: string, continuation = false): void {
    const a = this.arch;
    const tc = this.temporal;
    const sc = a.spatialCompression;
    const what =
      tc === null
        ? `[B, ${a.inChannels}, H, W] with H, W multiples of ${sc}`
        : `[B, ${a.inChannels}, T, H, W] with ${continuation ? `T = k*${tc} (k >= 1)` : `T = 1 + k*${tc}`} and H, W multiples of ${sc}`;
    const rank = tc === null ? 4 : 5;
    if (x.rank !== rank || x.shape[0] < 1) throw new TokenizerInputError(argument, what, gotShape(x.shape));
    const C = x.shape[1];
    const [H, W] = x.shape.slice(-2);
    if (C !== a.inChannels) throw new TokenizerInputError(argument, `${a.inChannels} channels (${what})`, gotShape(x.shape));
    if (tc !== null) {
      const T = x.shape[2];
      const tOk = continuation ? T >= tc && T % tc === 0 : T >= 1 && (T - 1) % tc === 0;
      if (!tOk) {
        throw new TokenizerInputError(argument, `${continuation ? `a multiple of ${tc}` : `1 + k*${tc}`} frames (${what}); other frame counts are not causal-safe`, gotShape(x.shape));
      }
    }
    if (H < sc || W < sc || H % sc || W % sc) throw new TokenizerInputError(argument, `H and W multiples of ${sc} (${what})`, gotShape(x.shape));
  }

  /** Check a latent / code tensor [B, channels, (t,) h, w]. */
  protected checkLatent(z: Tensor, argument: string): void {
    const c = this.codeChannels;
    const axes = this.temporal === null ? 'h, w' : 't, h, w';
    if (z.rank !== (this.temporal === null ? 4 : 5) || z.shape[1] !== c || z.shape.some((d) => d < 1)) {
      throw new TokenizerInputError(argument, `[B, ${c}, ${axes}] (${axes} >= 1)`, gotShape(z.shape));
    }
  }

  /** quant_conv(encoder(x)), with the causal state of a stream for a video (stream.ts). */
  encodeRaw(x: Tensor, st?: CausalState): Tensor {
    return scope(() => this.quant_conv.forward(this.encoder.forward(x, st)));
  }

  /** decoder(post_quant_conv(z)). */
  protected decodeRaw(z: Tensor): Tensor {
    return scope(() => this.decoder.forward(this.post_quant_conv.forward(z)));
  }

  /** Continuous encode: the checked input through encodeRaw. */
  protected encodeLatent(x: Tensor, argument: string): Tensor {
    this.checkInput(x, argument);
    return this.encodeRaw(x);
  }

  /** Decode checked latents or codes. */
  protected decodeLatent(z: Tensor, argument: string): Tensor {
    this.checkLatent(z, argument);
    return this.decodeRaw(z);
  }
}

/** The discrete tokenizers: FSQ token ids over the quant_conv output (embedding_dim = number of levels). */
export abstract class DiscreteAutoencoder<A extends ImageArch = ImageArch> extends CosmosAutoencoder<A> {
  readonly quantizer: FSQuantizer;

  constructor(arch: A, levels: readonly number[], blocks: Blocks<A>) {
    super(arch, levels.length, blocks);
    this.quantizer = new FSQuantizer(levels);
  }

  get vocabSize(): number {
    return this.quantizer.vocabSize;
  }

  /** Pre-quantisation values (quant_conv output) -> codes and i32 indices [B, (t,) h, w]. */
  quantize(z: Tensor): { indices: Tensor; codes: Tensor } {
    return this.quantizer.quantize(z);
  }

  /** input -> { indices [B, (t,) h, w] i32, codes [B, embedding_dim, (t,) h, w] }. */
  protected encodeTokens(x: Tensor, argument: string): { indices: Tensor; codes: Tensor } {
    this.checkInput(x, argument);
    return scope(() => this.quantizer.quantize(this.encodeRaw(x)));
  }

  /**
   * Token ids [B, (t,) h, w] -> output (upstream decode_code). Host ids are checked against
   * [0, vocab) before upload; device ids are used as given (see FSQuantizer.validateIndices).
   */
  decodeIndices(indices: Tensor | HostIndices): Tensor {
    const shape = indices.shape;
    const video = this.temporal !== null;
    if (shape.length !== (video ? 4 : 3) || shape.some((d) => d < 1)) {
      throw new TokenizerInputError('indices', `${video ? '[B, t, h, w]' : '[B, h, w]'} token ids`, gotShape(shape));
    }
    return scope(() => {
      const ids = 'data' in indices ? this.quantizer.uploadIndices(this.backend, indices) : indices;
      if (ids.dtype !== 'i32') throw new TokenizerInputError('indices', 'an i32 tensor of token ids', `dtype ${ids.dtype}`);
      return this.decodeRaw(this.quantizer.indicesToCodes(ids));
    });
  }
}
