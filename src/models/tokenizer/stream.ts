// Chunked (streaming) encoding of long videos with the causal video tokenizers.
//
// The first chunk has 1 + k*tc frames (tc = temporal compression) and is encoded exactly as a
// clip of its own; every later chunk has k*tc frames (k >= 1, may vary) and continues the
// causal context, so the latents (CV) or token ids (DV) of all chunks, concatenated, equal
// those of encoding the whole video at once (fact sheet §12; up to float rounding, which is
// identical op for op here because every op sees the same values).
//
// What each causal op keeps between chunks (the only cross-frame operations in the encoder):
// - Patcher3D: repeats frame 0 patch_size times on the first chunk only. A later chunk's
//   k*tc frames are whole wavelet blocks (tc is a multiple of the patch size), so no state.
// - CausalConv3d with kt > 1, time stride 1 (the temporal half of every factorised conv): the
//   last kt - 1 frames of its (padded) input, which replace the first-frame replicate padding.
// - CausalHybridDownsample3d, temporal: output j reads input frames 2j-2 .. 2j, so it keeps the
//   last input frame; a later chunk sees [kept, new...] (an odd count) and pairs from there.
// - CausalTemporalAttnBlock: the keys and values of every earlier frame at that layer (the
//   queries of the chunk attend causally to all of them). This is the only state that grows:
//   per attention layer 2 * C * h * w values per frame at that layer's frame rate. With the
//   released configs only the mid blocks have attention, i.e. at the latent frame rate.
// - Per-frame GroupNorm, spatial attention, spatial convs, 1x1x1 convs, FSQ: per frame, no state.
// Everything else a chunk allocates is freed before push() returns; the state is bounded by a
// constant (the conv/downsample context frames) plus the attention caches, which grow with the
// number of latent frames encoded so far.
import type { Module } from '../../engine/module.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { bytesPerElement } from '../../engine/dtype.js';
import { TokenizerInputError, gotShape } from './errors.js';
import type { CausalState } from './coder.js';
import type { CausalDiscreteVideoTokenizer, VideoTokenizer } from './video.js';

/** The per-module tensors a stream carries from one chunk to the next. */
export class StreamState implements CausalState {
  first = true;
  private readonly slots = new Map<Module, Map<string, Tensor>>();

  get(owner: Module, slot: string): Tensor | undefined {
    return this.slots.get(owner)?.get(slot);
  }

  set(owner: Module, slot: string, t: Tensor): void {
    let m = this.slots.get(owner);
    if (!m) {
      m = new Map();
      this.slots.set(owner, m);
    }
    const old = m.get(slot);
    m.set(slot, t.keep());
    if (old && old !== t) old.dispose();
  }

  /** Bytes held, split into the fixed conv/downsample context and the growing attention caches. */
  bytes(): { context: number; attention: number } {
    let context = 0;
    let attention = 0;
    for (const m of this.slots.values()) {
      for (const [slot, t] of m) {
        const b = t.size * bytesPerElement(t.dtype);
        if (slot === 'k' || slot === 'v') attention += b;
        else context += b;
      }
    }
    return { context, attention };
  }

  dispose(): void {
    for (const m of this.slots.values()) for (const t of m.values()) t.dispose();
    this.slots.clear();
  }
}

/** Push-style chunked encoder; `encodeStream` wraps it as an async generator. */
export class VideoEncoderStream {
  private readonly state = new StreamState();
  private geometry: readonly number[] | null = null;
  private chunkCount = 0;
  private frames = 0;
  private broken: Error | null = null;

  constructor(readonly model: VideoTokenizer) {}

  /** Chunks pushed so far. */
  get chunks(): number {
    return this.chunkCount;
  }
  /** Input frames encoded so far. */
  get framesSeen(): number {
    return this.frames;
  }
  /** Latent frames produced so far: 1 + (frames - 1) / tc. */
  get latentFrames(): number {
    return this.frames ? 1 + (this.frames - 1) / this.model.temporalCompression : 0;
  }

  stateBytes(): { context: number; attention: number } {
    return this.state.bytes();
  }

  /**
   * Encode the next chunk: the quant_conv output for its latent frames
   * ([B, C, 1 + k, h, w] for the first chunk of 1 + k*tc frames, [B, C, k, h, w] later).
   */
  pushRaw(chunk: Tensor): Tensor {
    if (this.broken) throw new Error(`encoder stream unusable after an earlier failure: ${this.broken.message}`);
    const arg = `chunks[${this.chunkCount}]`;
    const later = this.chunkCount > 0;
    this.model.checkInput(chunk, arg, later);
    if (this.geometry) {
      const [B, C, , H, W] = chunk.shape;
      const [b0, c0, , h0, w0] = this.geometry;
      if (B !== b0 || C !== c0 || H !== h0 || W !== w0) {
        throw new TokenizerInputError(arg, `the first chunk's batch, channels and size [${b0}, ${c0}, T, ${h0}, ${w0}]`, gotShape(chunk.shape));
      }
    }
    let z: Tensor;
    try {
      z = scope(() => this.model.encodeRaw(chunk, this.state));
    } catch (e) {
      this.broken = e as Error;
      throw e;
    }
    this.state.first = false;
    this.geometry ??= chunk.shape;
    this.chunkCount++;
    this.frames += chunk.shape[2];
    return z;
  }

  dispose(): void {
    this.state.dispose();
  }
}

export type StreamOutput<M> = M extends CausalDiscreteVideoTokenizer ? { indices: Tensor; codes: Tensor } : Tensor;

/**
 * Encode a long video chunk by chunk. Yields, per chunk, the latent frames (CV) or
 * { indices, codes } (DV) of that chunk; the caller owns (and should dispose) what is yielded.
 */
export async function* encodeStream<M extends VideoTokenizer>(
  model: M,
  chunks: AsyncIterable<Tensor> | Iterable<Tensor>,
): AsyncGenerator<StreamOutput<M>, void, undefined> {
  const m: VideoTokenizer = model;
  const stream = new VideoEncoderStream(m);
  try {
    for await (const chunk of chunks) {
      const out = scope(() => {
        const z = stream.pushRaw(chunk);
        return m.kind === 'DV' ? m.quantize(z) : z;
      });
      yield out as StreamOutput<M>;
    }
  } finally {
    stream.dispose();
  }
}
