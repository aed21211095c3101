// The self-attention KV cache of the autoregressive decoder: the shared per-layer buffers
// (models/decoder-layers.ts) holding keys after QK-norm and RoPE, as upstream's cache_k. Rows
// never written read as zeros and, exactly like upstream's cache, are attended by positions
// after them.
//
// Cross-attention keys/values depend only on the text context; they are computed on the first
// call that sees a context and reused while the same context tensor is passed.
import type { Backend } from '../../engine/backend.js';
import type { Tensor } from '../../engine/tensor.js';
import { type CacheShape, LayerKVBuffers, kvBufferBytes } from '../decoder-layers.js';
import { ArArgumentError, type ArConfig } from './config.js';

function cacheShape(cfg: ArConfig): CacheShape {
  return { layers: cfg.nLayers, kvHeads: cfg.nKvHeads, headDim: cfg.headDim };
}

export class KVCache extends LayerKVBuffers {
  /** cross-attention k/v per layer (null for layers without cross-attention), for `crossContext` */
  private cross: ({ k: Tensor; v: Tensor } | null)[] | null = null;
  private crossContext: Tensor | null = null;
  /** positions written so far by prefill/decode (the next decode position) */
  length = 0;

  /**
   * A cache for `batch` sequences of up to `capacity` positions (default: the model's
   * max_seq_len, as upstream allocates it).
   */
  static create(cfg: ArConfig, backend: Backend, batch: number, capacity = cfg.maxSeqLen): KVCache {
    if (!Number.isInteger(batch) || batch < 1) throw new ArArgumentError('batch', `must be a positive integer, got ${batch}`);
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > cfg.maxSeqLen) {
      throw new ArArgumentError('capacity', `must be an integer in [1, ${cfg.maxSeqLen}] (max_seq_len), got ${capacity}`);
    }
    return new KVCache(backend, cacheShape(cfg), batch, capacity);
  }

  /** Bytes the cache holds on the device (keys + values, float32). */
  static bytes(cfg: ArConfig, batch: number, capacity = cfg.maxSeqLen): number {
    return kvBufferBytes(cacheShape(cfg), batch, capacity);
  }

  /** Cached cross-attention k/v of `layer` for this context, or null. */
  crossKV(layer: number, context: Tensor): { k: Tensor; v: Tensor } | null {
    if (this.crossContext !== context || !this.cross) return null;
    return this.cross[layer] ?? null;
  }

  /** Remember the cross-attention k/v of `layer` for `context` (the cache owns them from now on). */
  setCrossKV(layer: number, context: Tensor, k: Tensor, v: Tensor): void {
    this.assertAlive();
    if (this.crossContext !== context) this.clearCross();
    this.crossContext = context;
    this.cross ??= new Array(this.keys.length).fill(null);
    this.cross[layer] = { k: k.keep(), v: v.keep() };
  }

  private clearCross(): void {
    for (const e of this.cross ?? []) {
      e?.k.dispose();
      e?.v.dispose();
    }
    this.cross = null;
    this.crossContext = null;
  }

  /**
   * Forget the sequence: the next prefill starts at 0. (The buffers are not cleared: as
   * upstream, stale rows past the current position are never attended.)
   */
  reset(): void {
    this.length = 0;
    this.clearCross();
  }

  override dispose(): void {
    if (this.isDisposed) return;
    this.clearCross();
    super.dispose();
  }
}
