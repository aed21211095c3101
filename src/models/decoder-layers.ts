// What the token decoders (the autoregressive video model, models/ar, the Qwen2.5-VL language
// model, models/vlm, and LlamaGuard, models/guardrail) build alike: the gated feed-forward under
// each checkpoint's names, the self-attention KV buffers preallocated for a whole context, and the
// pre-norm decoder layer of transformers' Llama family (Qwen2 and Llama share it, names included).
import type { Backend } from '../engine/backend.js';
import { Linear, RMSNorm } from '../engine/layers.js';
import { Module } from '../engine/module.js';
import * as F from '../engine/ops.js';
import { type Tensor, scope } from '../engine/tensor.js';

/**
 * Builds the Linear at a module path (relative to the layer); a model with an adapter returns a
 * wrapped Linear for the paths it targets.
 */
export type LinearFactory = (path: string, inFeatures: number, outFeatures: number, bias: boolean) => Linear;

export const plainLinear: LinearFactory = (_path, inFeatures, outFeatures, bias) => new Linear(inFeatures, outFeatures, bias);

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

  constructor(dim: number, hidden: number, o: { names?: GatedMLPNames; bias?: boolean; act?: (x: Tensor) => Tensor; linear?: LinearFactory } = {}) {
    super();
    const names = o.names ?? HF_MLP_NAMES;
    const bias = o.bias ?? false;
    const linear = o.linear ?? plainLinear;
    this.gate = this.add(names.gate, linear(names.gate, dim, hidden, bias));
    this.up = this.add(names.up, linear(names.up, dim, hidden, bias));
    this.down = this.add(names.down, linear(names.down, hidden, dim, bias));
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

// ------------------------------------------------------------------ the Llama-family layer

/** Sizes of one transformers Llama-family decoder layer. */
export interface DecoderLayerShape {
  hiddenSize: number;
  intermediateSize: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  /** q/k/v projections with bias (Qwen2; Llama attention_bias) */
  qkvBias: boolean;
  /** o_proj with bias (Llama attention_bias; never in Qwen2) */
  oBias?: boolean;
  /** gate/up/down with bias (Llama mlp_bias) */
  mlpBias?: boolean;
  act: (x: Tensor) => Tensor;
  /** default: plain Linear everywhere */
  linear?: LinearFactory;
}

/** What every decoder layer of one forward call shares. */
export interface DecoderContext {
  /** [B|1, L, head_dim] rotary tables ('half' pairing) */
  cos: Tensor;
  sin: Tensor;
  /** additive [B, 1, L, kvLen]; null: plain causal */
  mask: Tensor | null;
  /** KV cache to write rows past..past+L-1 into and attend over (null: attend to this call only) */
  cache: LayerKVBuffers | null;
  past: number;
}

/** self_attn: q/k/v/o_proj, GQA, RoPE on q and k, scale 1/sqrt(head_dim). */
export class DecoderSelfAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  constructor(private readonly cfg: DecoderLayerShape, private readonly layer: number) {
    super();
    const { hiddenSize: D, numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: hd, qkvBias } = cfg;
    const linear = cfg.linear ?? plainLinear;
    this.q_proj = this.add('q_proj', linear('q_proj', D, H * hd, qkvBias));
    this.k_proj = this.add('k_proj', linear('k_proj', D, Hkv * hd, qkvBias));
    this.v_proj = this.add('v_proj', linear('v_proj', D, Hkv * hd, qkvBias));
    this.o_proj = this.add('o_proj', linear('o_proj', H * hd, D, cfg.oBias ?? false));
  }
  forward(x: Tensor, ctx: DecoderContext): Tensor {
    const { numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: hd } = this.cfg;
    const [B, L] = x.shape;
    const heads = (t: Tensor, n: number) => F.permute(t.reshape([B, L, n, hd]), [0, 2, 1, 3]);
    const q = F.rope(heads(this.q_proj.forward(x), H), ctx.cos, ctx.sin, { mode: 'half' });
    let k = F.rope(heads(this.k_proj.forward(x), Hkv), ctx.cos, ctx.sin, { mode: 'half' });
    let v = heads(this.v_proj.forward(x), Hkv);
    let kvLen = L;
    if (ctx.cache) {
      ctx.cache.write(this.layer, k, v, ctx.past);
      k = ctx.cache.keys[this.layer];
      v = ctx.cache.values[this.layer];
      kvLen = ctx.past + L;
    }
    const o = F.attention(q, k, v, { causal: ctx.mask === null, mask: ctx.mask, kvLen });
    return this.tap(this.o_proj.forward(F.permute(o, [0, 2, 1, 3]).reshape([B, L, H * hd])));
  }
}

/** h += self_attn(input_layernorm(h)); h += mlp(post_attention_layernorm(h)). */
export class DecoderLayer extends Module {
  readonly self_attn: DecoderSelfAttention;
  readonly mlp: GatedMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  constructor(cfg: DecoderLayerShape, layer: number) {
    super();
    const linear = cfg.linear ?? plainLinear;
    this.self_attn = this.add('self_attn', new DecoderSelfAttention({ ...cfg, linear: (path, i, o, b) => linear(`self_attn.${path}`, i, o, b) }, layer));
    this.mlp = this.add('mlp', new GatedMLP(cfg.hiddenSize, cfg.intermediateSize, {
      act: cfg.act, bias: cfg.mlpBias ?? false, linear: (path, i, o, b) => linear(`mlp.${path}`, i, o, b),
    }));
    this.input_layernorm = this.add('input_layernorm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
    this.post_attention_layernorm = this.add('post_attention_layernorm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
  }
  forward(h: Tensor, ctx: DecoderContext): Tensor {
    const a = F.add(h, this.self_attn.forward(this.input_layernorm.forward(h), ctx));
    return this.tap(F.add(a, this.mlp.forward(this.post_attention_layernorm.forward(a))));
  }
}

/** Run `layers` in turn on [B, L, D], freeing each intermediate state (not the input). */
export function runDecoderLayers(layers: readonly DecoderLayer[], embeds: Tensor, ctx: DecoderContext): Tensor {
  let h = embeds;
  for (const layer of layers) {
    const prev = h;
    h = scope(() => layer.forward(prev, ctx));
    if (prev !== embeds) prev.dispose();
  }
  return h;
}
