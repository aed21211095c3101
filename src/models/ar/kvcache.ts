// The self-attention KV cache of the autoregressive decoder, on the device: per layer one
// [B, n_kv_heads, capacity, head_dim] float32 buffer for keys (stored after QK-norm and RoPE,
// as upstream's cache_k) and one for values, allocated once (zeros) for the whole context.
// A forward call at positions start..start+L-1 writes its keys/values into rows start.. with
// setSlice and attends to rows [0, start+L) with a causal offset (attention kvLen), so decoding
// a token costs no reallocation and no copy of the past. Rows never written read as zeros and,
// exactly like upstream's cache, are attended by positions after them.
//
// Cross-attention keys/values depend only on the text context; they are computed on the first
// call that sees a context and reused while the same context tensor is passed.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { ArArgumentError, type ArConfig } from './config.js';

export class KVCache {
  readonly keys: Tensor[];
  readonly values: Tensor[];
  /** cross-attention k/v per layer (null for layers without cross-attention), for `crossContext` */
  private cross: ({ k: Tensor; v: Tensor } | null)[] | null = null;
  private crossContext: Tensor | null = null;
  private disposed = false;
  /** positions written so far by prefill/decode (the next decode position) */
  length = 0;

  private constructor(
    readonly backend: Backend,
    readonly batch: number,
    readonly capacity: number,
    readonly nKvHeads: number,
    readonly headDim: number,
    nLayers: number,
  ) {
    const shape = [batch, nKvHeads, capacity, headDim];
    this.keys = Array.from({ length: nLayers }, () => F.zeros(backend, shape).keep());
    this.values = Array.from({ length: nLayers }, () => F.zeros(backend, shape).keep());
  }

  /**
   * A cache for `batch` sequences of up to `capacity` positions (default: the model's
   * max_seq_len, as upstream allocates it).
   */
  static create(cfg: ArConfig, backend: Backend, batch: number, capacity = cfg.maxSeqLen): KVCache {
    if (!Number.isInteger(batch) || batch < 1) throw new ArArgumentError('batch', `must be a positive integer, got ${batch}`);
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > cfg.maxSeqLen) {
      throw new ArArgumentError('capacity', `must be an integer in [1, ${cfg.maxSeqLen}] (max_seq_len), got ${capacity}`);
    }
    return new KVCache(backend, batch, capacity, cfg.nKvHeads, cfg.headDim, cfg.nLayers);
  }

  /** Bytes the cache holds on the device (keys + values, float32). */
  static bytes(cfg: ArConfig, batch: number, capacity = cfg.maxSeqLen): number {
    return 2 * cfg.nLayers * batch * cfg.nKvHeads * capacity * cfg.headDim * 4;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  assertAlive(): void {
    if (this.disposed) throw new Error('KVCache used after dispose');
  }

  /** Write k/v [B, Hkv, L, D] of `layer` at rows start.. (in place). */
  write(layer: number, k: Tensor, v: Tensor, start: number): void {
    this.assertAlive();
    F.setSlice(this.keys[layer], k, [0, 0, start, 0]);
    F.setSlice(this.values[layer], v, [0, 0, start, 0]);
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

  dispose(): void {
    if (this.disposed) return;
    this.clearCross();
    for (const t of [...this.keys, ...this.values]) t.dispose();
    this.disposed = true;
  }
}
