// transformers LlamaForCausalLM (LlamaGuard-7b is a Llama-2-7B), optionally with a PEFT LoRA
// adapter applied unmerged to the Linears its target_modules name. Spec guardrail.md "Aegis LLM".
//
//   h = embed_tokens[ids]; per layer (decoder-layers.ts DecoderLayer, no biases):
//     h += o_proj(attn(RMSNorm(h)))   causal, RoPE 'half' at positions cumsum(mask) - 1
//     h += down(silu(gate(x)) * up(x)), x = RMSNorm(h)
//   logits = lm_head(norm(h))
// Names are the HF Llama keys (model.embed_tokens, model.layers.{i}.self_attn.{q,k,v,o}_proj,
// mlp.{gate,up,down}_proj, input_layernorm, post_attention_layernorm, model.norm, lm_head); the
// adapter adds <Linear path>.lora_A / lora_B. Weights keep their checkpoint dtype.
import { UserError } from '../../engine/errors.js';
import { Embedding, Linear, RMSNorm } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope } from '../../engine/tensor.js';
import { type DecoderContext, DecoderLayer, type LayerKVBuffers, type LinearFactory, plainLinear, runDecoderLayers } from '../decoder-layers.js';
import type { Config, ModuleFamily } from '../load.js';
import { type LoraConfig, LoraLinear, LoraSwitch, isLoraKey, isLoraTarget } from '../lora.js';
import { attentionMask, textInvFreq } from '../vlm/language.js';

export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  /** every id that ends generation */
  eosTokenIds: number[];
  bosTokenId: number | null;
}

export class LlamaConfigError extends UserError {}

/** A transformers LlamaConfig (config.json) with its defaults. */
export function parseLlamaConfig(c: Config, file = 'config.json'): LlamaConfig {
  const num = (k: string, fallback?: number): number => {
    const v = c[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new LlamaConfigError(`${file}: ${k} must be a number, got ${JSON.stringify(c[k])}`);
    return v;
  };
  const int = (k: string, fallback?: number): number => {
    const v = num(k, fallback);
    if (!Number.isInteger(v) || v < 1) throw new LlamaConfigError(`${file}: ${k} must be a positive integer, got ${v}`);
    return v;
  };
  if (c.model_type !== undefined && c.model_type !== 'llama') throw new LlamaConfigError(`${file}: model_type is ${JSON.stringify(c.model_type)}; expected "llama"`);
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw new LlamaConfigError(`${file}: hidden_act ${JSON.stringify(act)} is not supported (Llama uses "silu")`);
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) throw new LlamaConfigError(`${file}: rope_scaling ${JSON.stringify(c.rope_scaling)} is not supported (only the default rope)`);
  if ((c.pretraining_tp ?? 1) !== 1) throw new LlamaConfigError(`${file}: pretraining_tp must be 1, got ${JSON.stringify(c.pretraining_tp)}`);
  const hiddenSize = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  if (heads % kvHeads) throw new LlamaConfigError(`${file}: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const headDim = c.head_dim === undefined || c.head_dim === null ? hiddenSize / heads : int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2) throw new LlamaConfigError(`${file}: head_dim ${headDim} must be an even integer`);
  const eos = c.eos_token_id ?? 2;
  const eosTokenIds = (Array.isArray(eos) ? eos : [eos]) as unknown[];
  if (!eosTokenIds.every((e) => typeof e === 'number' && Number.isInteger(e))) throw new LlamaConfigError(`${file}: eos_token_id must be an integer or a list of them, got ${JSON.stringify(eos)}`);
  const bos = c.bos_token_id;
  return {
    hiddenSize, intermediateSize: int('intermediate_size'), numHiddenLayers: int('num_hidden_layers'),
    numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim,
    rmsNormEps: num('rms_norm_eps', 1e-6), ropeTheta: num('rope_theta', 10000), vocabSize: int('vocab_size'),
    tieWordEmbeddings: c.tie_word_embeddings === true, attentionBias: c.attention_bias === true, mlpBias: c.mlp_bias === true,
    eosTokenIds: eosTokenIds as number[], bosTokenId: typeof bos === 'number' ? bos : null,
  };
}

/** Host ids / masks: flat row-major data with its [B, L] shape. */
export interface IdRows {
  data: ArrayLike<number>;
  shape: readonly number[];
}

export interface LlamaForwardOptions {
  /** [B, past + L]: 1 = token, 0 = padding; null: all ones */
  keyMask?: ArrayLike<number> | null;
  /** position of each new token [B, L]; default from keyMask (cumsum - 1, 1 at padding), else past.. */
  positions?: ArrayLike<number> | null;
  cache?: LayerKVBuffers | null;
  past?: number;
  /** only the last position's logits [B, 1, V] */
  lastOnly?: boolean;
}

/** HF's position ids: cumsum(mask) - 1, and 1 where the mask is 0. */
export function positionsFromMask(mask: ArrayLike<number>, B: number, T: number): Int32Array {
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = 0; t < T; t++) {
      n += mask[b * T + t] ? 1 : 0;
      out[b * T + t] = mask[b * T + t] ? n - 1 : 1;
    }
  }
  return out;
}

class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: DecoderLayer[];
  readonly norm: RMSNorm;
  constructor(cfg: LlamaConfig, linear: LinearFactory) {
    super();
    this.embed_tokens = this.add('embed_tokens', new Embedding(cfg.vocabSize, cfg.hiddenSize));
    this.layers = Array.from({ length: cfg.numHiddenLayers }, (_, i) => this.add(`layers.${i}`, new DecoderLayer({
      hiddenSize: cfg.hiddenSize, intermediateSize: cfg.intermediateSize, numAttentionHeads: cfg.numAttentionHeads,
      numKeyValueHeads: cfg.numKeyValueHeads, headDim: cfg.headDim, rmsNormEps: cfg.rmsNormEps,
      qkvBias: cfg.attentionBias, oBias: cfg.attentionBias, mlpBias: cfg.mlpBias, act: F.silu,
      linear: (path, a, b, bias) => linear(`model.layers.${i}.${path}`, a, b, bias),
    }, i)));
    this.norm = this.add('norm', new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps));
  }
}

/** lm_head weight, optional when tied to embed_tokens. */
class TiedHead extends Module {
  readonly weight: Param;
  constructor(cfg: LlamaConfig) {
    super();
    this.weight = this.param('weight', [cfg.vocabSize, cfg.hiddenSize], { optional: true });
  }
}

/** LlamaForCausalLM (+ LoRA when `lora` is given). */
export class LlamaForCausalLM extends Module {
  readonly model: LlamaModel;
  readonly lm_head: Linear | TiedHead;
  /** null without an adapter */
  readonly adapter: LoraSwitch | null;
  /** wrapped module paths */
  readonly loraTargets: string[] = [];

  constructor(readonly config: LlamaConfig, readonly lora: LoraConfig | null = null) {
    super();
    const sw = lora ? new LoraSwitch() : null;
    this.adapter = sw;
    const linear: LinearFactory = (path, a, b, bias) => {
      if (!lora || !sw || !isLoraTarget(lora, path)) return plainLinear(path, a, b, bias);
      this.loraTargets.push(path);
      return new LoraLinear(a, b, bias, lora, sw);
    };
    this.model = this.add('model', new LlamaModel(config, linear));
    if (lora && ['model.embed_tokens', 'model.norm'].some((p) => isLoraTarget(lora, p))) {
      throw new UserError('adapter_config.json: target_modules names an embedding or norm; only Linear layers are supported');
    }
    this.lm_head = this.add('lm_head', config.tieWordEmbeddings ? new TiedHead(config) : linear('lm_head', config.hiddenSize, config.vocabSize, false));
    if (lora && this.loraTargets.length === 0) throw new UserError(`adapter_config.json: target_modules ${JSON.stringify(lora.targetModules)} names no Linear of this model`);
  }

  get backend() {
    return this.model.embed_tokens.weight.t.backend;
  }

  /** Run `fn` with the adapter off (the base model), restoring it after. */
  async withoutAdapter<T>(fn: () => Promise<T> | T): Promise<T> {
    if (!this.adapter) return fn();
    const was = this.adapter.enabled;
    this.adapter.enabled = false;
    try {
      return await fn();
    } finally {
      this.adapter.enabled = was;
    }
  }

  private ids(x: IdRows): { ids: Int32Array; B: number; L: number } {
    if (x.shape.length !== 2) throw new UserError(`input_ids: must be [batch, length]; got shape ${JSON.stringify(x.shape)}`);
    const [B, L] = x.shape;
    if (x.data.length !== B * L || L < 1) throw new UserError(`input_ids: ${x.data.length} values for shape [${B}, ${L}]`);
    const V = this.config.vocabSize;
    const ids = Int32Array.from(x.data);
    for (const id of ids) if (!(id >= 0 && id < V)) throw new UserError(`input_ids: token ${id} is outside the vocabulary [0, ${V})`);
    return { ids, B, L };
  }

  /** Rotary tables [B, L, head_dim] for integer positions [B, L] (float32 angles as HF). */
  private ropeTables(pos: ArrayLike<number>, B: number, L: number): { cos: Tensor; sin: Tensor } {
    const hd = this.config.headDim;
    const inv = textInvFreq(this.config);
    const cos = new Float32Array(B * L * hd);
    const sin = new Float32Array(B * L * hd);
    for (let i = 0; i < B * L; i++) {
      for (let c = 0; c < hd; c++) {
        const a = Math.fround(pos[i] * inv[c % (hd / 2)]);
        cos[i * hd + c] = Math.cos(a);
        sin[i * hd + c] = Math.sin(a);
      }
    }
    return { cos: F.fromArray(this.backend, cos, [B, L, hd]), sin: F.fromArray(this.backend, sin, [B, L, hd]) };
  }

  /** Logits [B, L, V] (or [B, 1, V] with lastOnly) for ids [B, L] placed after `past` cached tokens. */
  forward(input: IdRows, o: LlamaForwardOptions = {}): Tensor {
    const { ids, B, L } = this.ids(input);
    const past = o.past ?? 0;
    const cache = o.cache ?? null;
    if (!cache && past !== 0) throw new Error('forward: past > 0 needs a KV cache');
    if (cache && past + L > cache.capacity) throw new ShapeError(`forward: ${past + L} positions exceed the KV cache capacity ${cache.capacity}`);
    const T = past + L;
    const keyMask = o.keyMask ?? null;
    if (keyMask && keyMask.length !== B * T) throw new UserError(`attention_mask: ${keyMask.length} values for [${B}, ${T}]`);
    let pos = o.positions ?? null;
    if (!pos) {
      const all = keyMask ? positionsFromMask(keyMask, B, T) : null;
      pos = Int32Array.from({ length: B * L }, (_, i) => (all ? all[Math.floor(i / L) * T + past + (i % L)] : past + (i % L)));
    }
    const positions = pos;
    return scope(() => {
      const h0 = this.model.embed_tokens.forward(F.fromArray(this.backend, ids, [B, L], 'i32')).reshape([B, L, this.config.hiddenSize]);
      const { cos, sin } = this.ropeTables(positions, B, L);
      const m = attentionMask(keyMask, B, L, T, past, null);
      const ctx: DecoderContext = { cos, sin, mask: m ? F.fromArray(this.backend, m, [B, 1, L, T]) : null, cache, past };
      const h = runDecoderLayers(this.model.layers, h0, ctx);
      const last = o.lastOnly && L > 1 ? F.slice(h, 1, L - 1, L) : h;
      const normed = this.model.norm.forward(last);
      const head = this.lm_head;
      return head instanceof Linear ? head.forward(normed) : F.linear(normed, head.weight.maybe ?? this.model.embed_tokens.weight.t);
    });
  }
}

/** Keys of a base checkpoint, or of an adapter file (mapped with peftKeyToModel): which parameters each fills. */
export const baseParams = (modelKey: string): boolean => !isLoraKey(modelKey);

/**
 * How loadModule builds LlamaForCausalLM from config.json; with `lora`, the model has the adapter's
 * parameters too, and only the base ones are filled from the base checkpoint (the adapter file
 * fills the others, see loadLlama in llamaguard.ts).
 */
export function LlamaFamily(lora: LoraConfig | null = null): ModuleFamily<LlamaForCausalLM> {
  return {
    name: 'LlamaForCausalLM',
    build: (config) => new LlamaForCausalLM(parseLlamaConfig(config), lora),
    loadOptions: () => ({ select: baseParams, mapKey: (k) => (k.startsWith('base_model.model.') ? null : k) }),
  };
}
