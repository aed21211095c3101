// What the two token decoders (the autoregressive video model, models/ar, and the Qwen2.5-VL
// language model, models/vlm) build alike: the gated feed-forward under each checkpoint's names,
// and the self-attention KV buffers preallocated for a whole context.
import type { Backend } from '../engine/backend.js';
import { Linear } from '../engine/layers.js';
import { Module } from '../engine/module.js';
import * as F from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';

/** Checkpoint names of the three projections (Llama-style w1 / w3 / w2, or HF gate / up / down). */
export interface GatedMLPNames {
  gate: string;
  up: string;
  down: string;
}

const HF_MLP_NAMES: GatedMLPNames = { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };

/** down(act(gate(x)) * up(x)). */
export class GatedMLP extends Module {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(dim: number, hidden: number, o: { names?: GatedMLPNames; bias?: boolean; act?: (x: Tensor) => Tensor } = {}) {
    super();
    const names = o.names ?? HF_MLP_NAMES;
    const bias = o.bias ?? false;
    this.gate = this.add(names.gate, new Linear(dim, hidden, bias));
    this.up = this.add(names.up, new Linear(dim, hidden, bias));
    this.down = this.add(names.down, new Linear(hidden, dim, bias));
    this.act = o.act ?? F.silu;
  }

  forward(x: Tensor): Tensor {
    return this.tap(this.down.forward(F.mul(this.act(this.gate.forward(x)), this.up.forward(x))));
  }
}

/** The shape of one decoder's self-attention cache. */
export interface CacheShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

/** Bytes the buffers below hold on the device. */
export function kvBufferBytes(shape: CacheShape, batch: number, capacity: number): number {
  return 2 * shape.layers * batch * shape.kvHeads * capacity * shape.headDim * 4;
}

/**
 * Per layer one [batch, kvHeads, capacity, headDim] float32 buffer of keys and one of values,
 * allocated once (zeros): a call at positions p..p+L-1 writes rows p.. in place and attends to
 * rows [0, p+L), so decoding a token neither reallocates nor copies the past.
 */
export class LayerKVBuffers {
  readonly keys: Tensor[];
  readonly values: Tensor[];
  private disposed = false;

  constructor(
    readonly backend: Backend,
    shape: CacheShape,
    readonly batch: number,
    readonly capacity: number,
  ) {
    const dims = [batch, shape.kvHeads, capacity, shape.headDim];
    this.keys = Array.from({ length: shape.layers }, () => F.zeros(backend, dims).keep());
    this.values = Array.from({ length: shape.layers }, () => F.zeros(backend, dims).keep());
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  assertAlive(): void {
    if (this.disposed) throw new Error('KV cache used after dispose');
  }

  /** Write k/v [B, Hkv, L, D] of `layer` at rows start.. (in place). */
  write(layer: number, k: Tensor, v: Tensor, start: number): void {
    this.assertAlive();
    F.setSlice(this.keys[layer], k, [0, 0, start, 0]);
    F.setSlice(this.values[layer], v, [0, 0, start, 0]);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of [...this.keys, ...this.values]) t.dispose();
  }
}
