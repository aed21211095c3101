// The SigLIP vision tower with its attention-pooling head (transformers SiglipModel's vision half,
// `get_image_features`), parameters under `vision_model.*` as the SiglipModel checkpoint names
// them. Spec guardrail.md "SigLIP image encoder". The guardrail's video content filter embeds
// every frame with it (google/siglip-so400m-patch14-384).
//
// Forward, for pixel_values [B, C, S, S]:
//   1. embeddings: Conv2d(C, D, kernel = stride = patch) -> N = (S/p)² tokens row-major, + the
//      learned position table (no class token);
//   2. encoder layers (pre-LN): x += out_proj(attn(LN1 x)), x += fc2(act(fc1(LN2 x)));
//   3. post_layernorm;
//   4. head: a learned probe is the one query of nn.MultiheadAttention over the tokens (packed
//      in_proj q/k/v), then h += mlp(layernorm(h)); the output is that single token [B, D].
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import { LayerNorm, Linear } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import { type Config, type ModuleFamily, loadModule } from '../load.js';
import type { Activation } from '../vlm/config.js';
import { ModuleList } from '../tokenizer/containers.js';
import { activate } from '../vlm/vision.js';

export class SiglipConfigError extends UserError {
  override name = 'SiglipConfigError';
}

export interface SiglipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numChannels: number;
  imageSize: number;
  patchSize: number;
  eps: number;
  act: Activation;
}

// transformers' ACT2FN names of the activations the engine has
const ACTIVATIONS: Record<string, Activation> = {
  gelu_pytorch_tanh: 'gelu_tanh', gelu_new: 'gelu_tanh', gelu_fast: 'gelu_tanh', gelu: 'gelu',
  quick_gelu: 'quick_gelu', relu: 'relu', silu: 'silu', swish: 'silu',
};

/**
 * The vision config of a SiglipModel config.json (its `vision_config`) or of a SiglipVisionModel
 * one; absent fields take SiglipVisionConfig's defaults, as transformers fills them.
 */
export function parseSiglipVisionConfig(config: Config): SiglipVisionConfig {
  const nested = config.vision_config;
  const v = (nested && typeof nested === 'object' && !Array.isArray(nested) ? nested : config) as Config;
  const where = v === config ? '' : 'vision_config.';
  const int = (key: string, def: number) => {
    const x = v[key] ?? def;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new SiglipConfigError(`config.json ${where}${key}: expected a positive integer, got ${JSON.stringify(x)}`);
    return x;
  };
  const c: SiglipVisionConfig = {
    hiddenSize: int('hidden_size', 768),
    intermediateSize: int('intermediate_size', 3072),
    numLayers: int('num_hidden_layers', 12),
    numHeads: int('num_attention_heads', 12),
    numChannels: int('num_channels', 3),
    imageSize: int('image_size', 224),
    patchSize: int('patch_size', 16),
    eps: 1e-6,
    act: 'gelu_tanh',
  };
  const eps = v.layer_norm_eps ?? 1e-6;
  if (typeof eps !== 'number' || !(eps > 0)) throw new SiglipConfigError(`config.json ${where}layer_norm_eps: expected a positive number, got ${JSON.stringify(eps)}`);
  c.eps = eps;
  const act = v.hidden_act ?? 'gelu_pytorch_tanh';
  if (typeof act !== 'string' || !(act in ACTIVATIONS)) {
    throw new SiglipConfigError(`config.json ${where}hidden_act: ${JSON.stringify(act)} is not supported; expected one of ${Object.keys(ACTIVATIONS).join(', ')}`);
  }
  c.act = ACTIVATIONS[act];
  if (c.hiddenSize % c.numHeads) throw new SiglipConfigError(`config.json ${where}hidden_size ${c.hiddenSize}: not divisible by num_attention_heads ${c.numHeads}`);
  if (c.patchSize > c.imageSize) throw new SiglipConfigError(`config.json ${where}patch_size ${c.patchSize}: larger than image_size ${c.imageSize}`);
  // get_image_features returns the head's output; without the head there is nothing to return
  if (v.vision_use_head === false) throw new SiglipConfigError(`config.json ${where}vision_use_head: false; the image features need the attention-pooling head`);
  return c;
}

/** Patches per side: the valid conv's output size. */
export const patchesPerSide = (c: SiglipVisionConfig) => Math.floor(c.imageSize / c.patchSize);

/** [B, L, H*d] -> [B, H, L, d] */
function heads(x: Tensor, H: number): Tensor {
  const [B, L, D] = x.shape;
  return F.permute(x.reshape([B, L, H, D / H]), [0, 2, 1, 3]);
}

/** [B, H, L, d] -> [B, L, H*d] */
function merge(x: Tensor): Tensor {
  const [B, H, L, d] = x.shape;
  return F.permute(x, [0, 2, 1, 3]).reshape([B, L, H * d]);
}

class SiglipMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly act: Activation;
  constructor(c: SiglipVisionConfig) {
    super();
    this.act = c.act;
    this.fc1 = this.add('fc1', new Linear(c.hiddenSize, c.intermediateSize, true));
    this.fc2 = this.add('fc2', new Linear(c.intermediateSize, c.hiddenSize, true));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => this.fc2.forward(activate(this.act, this.fc1.forward(x)))));
  }
}

class SiglipAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  constructor(readonly c: SiglipVisionConfig) {
    super();
    const D = c.hiddenSize;
    this.q_proj = this.add('q_proj', new Linear(D, D, true));
    this.k_proj = this.add('k_proj', new Linear(D, D, true));
    this.v_proj = this.add('v_proj', new Linear(D, D, true));
    this.out_proj = this.add('out_proj', new Linear(D, D, true));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      const H = this.c.numHeads;
      const q = heads(this.q_proj.forward(x), H);
      const k = heads(this.k_proj.forward(x), H);
      const v = heads(this.v_proj.forward(x), H);
      return this.out_proj.forward(merge(F.attention(q, k, v)));
    }));
  }
}

class SiglipEncoderLayer extends Module {
  readonly layer_norm1: LayerNorm;
  readonly self_attn: SiglipAttention;
  readonly layer_norm2: LayerNorm;
  readonly mlp: SiglipMLP;
  constructor(c: SiglipVisionConfig) {
    super();
    this.layer_norm1 = this.add('layer_norm1', new LayerNorm(c.hiddenSize, c.eps));
    this.self_attn = this.add('self_attn', new SiglipAttention(c));
    this.layer_norm2 = this.add('layer_norm2', new LayerNorm(c.hiddenSize, c.eps));
    this.mlp = this.add('mlp', new SiglipMLP(c));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      const h = F.add(x, this.self_attn.forward(this.layer_norm1.forward(x)));
      return F.add(h, this.mlp.forward(this.layer_norm2.forward(h)));
    }));
  }
}

class SiglipEncoder extends Module {
  readonly layers: ModuleList<SiglipEncoderLayer>;
  constructor(c: SiglipVisionConfig) {
    super();
    this.layers = this.add('layers', new ModuleList<SiglipEncoderLayer>());
    for (let i = 0; i < c.numLayers; i++) this.layers.push(new SiglipEncoderLayer(c));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const layer of this.layers.items) {
      const next = layer.forward(h);
      if (h !== x) h.dispose();
      h = next;
    }
    return this.tap(h);
  }
}

class Conv2d extends Module {
  readonly weight: Param;
  readonly bias: Param;
  constructor(cin: number, cout: number, readonly kernel: number) {
    super();
    this.weight = this.param('weight', [cout, cin, kernel, kernel]);
    this.bias = this.param('bias', [cout]);
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.conv(x, this.weight.t, this.bias.t, { stride: this.kernel }));
  }
}

class PositionEmbedding extends Module {
  readonly weight: Param;
  constructor(n: number, d: number) {
    super();
    this.weight = this.param('weight', [n, d]);
  }
}

class SiglipVisionEmbeddings extends Module {
  readonly patch_embedding: Conv2d;
  readonly position_embedding: PositionEmbedding;
  constructor(readonly c: SiglipVisionConfig) {
    super();
    const g = patchesPerSide(c);
    this.patch_embedding = this.add('patch_embedding', new Conv2d(c.numChannels, c.hiddenSize, c.patchSize));
    this.position_embedding = this.add('position_embedding', new PositionEmbedding(g * g, c.hiddenSize));
  }
  /** pixel_values [B, C, S, S] -> [B, N, D] */
  forward(pixels: Tensor): Tensor {
    const { imageSize: S, numChannels: C, hiddenSize: D } = this.c;
    const [B, c, h, w] = pixels.shape;
    // no interpolate_pos_encoding: the position table fits image_size only
    if (pixels.rank !== 4 || c !== C || h !== S || w !== S) {
      throw new SiglipConfigError(`pixel_values: expected [batch, ${C}, ${S}, ${S}] (image_size ${S}), got [${pixels.shape.join(', ')}]`);
    }
    return this.tap(scope(() => {
      const p = this.patch_embedding.forward(pixels);
      const N = p.shape[2] * p.shape[3];
      const tokens = F.permute(p.reshape([B, D, N]), [0, 2, 1]);
      return F.add(tokens, this.position_embedding.weight.t);
    }));
  }
}

/** torch.nn.MultiheadAttention's parameters: packed in_proj (rows q, k, v) and out_proj. */
class MultiheadAttention extends Module {
  readonly in_proj_weight: Param;
  readonly in_proj_bias: Param;
  readonly out_proj: Linear;
  constructor(readonly D: number, readonly H: number) {
    super();
    this.in_proj_weight = this.param('in_proj_weight', [3 * D, D]);
    this.in_proj_bias = this.param('in_proj_bias', [3 * D]);
    this.out_proj = this.add('out_proj', new Linear(D, D, true));
  }
  /** query [B, Lq, D] over key = value = x [B, L, D] -> [B, Lq, D] */
  forward(query: Tensor, x: Tensor): Tensor {
    return this.tap(scope(() => {
      const { D, H } = this;
      const w = this.in_proj_weight.t;
      const b = this.in_proj_bias.t;
      const part = (i: number, t: Tensor) => heads(F.linear(t, F.slice(w, 0, i * D, (i + 1) * D), F.slice(b, 0, i * D, (i + 1) * D)), H);
      return this.out_proj.forward(merge(F.attention(part(0, query), part(1, x), part(2, x))));
    }));
  }
}

class SiglipAttentionPoolingHead extends Module {
  readonly probe: Param;
  readonly attention: MultiheadAttention;
  readonly layernorm: LayerNorm;
  readonly mlp: SiglipMLP;
  constructor(readonly c: SiglipVisionConfig) {
    super();
    this.probe = this.param('probe', [1, 1, c.hiddenSize]);
    this.attention = this.add('attention', new MultiheadAttention(c.hiddenSize, c.numHeads));
    this.layernorm = this.add('layernorm', new LayerNorm(c.hiddenSize, c.eps));
    this.mlp = this.add('mlp', new SiglipMLP(c));
  }
  /** last_hidden_state [B, N, D] -> pooled [B, D] */
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      const [B, , D] = x.shape;
      const query = F.expand(this.probe.t, [B, 1, D]);
      const h = this.attention.forward(query, x);
      const out = F.add(h, this.mlp.forward(this.layernorm.forward(h)));
      return out.reshape([B, D]);
    }));
  }
}

class SiglipVisionTransformer extends Module {
  readonly embeddings: SiglipVisionEmbeddings;
  readonly encoder: SiglipEncoder;
  readonly post_layernorm: LayerNorm;
  readonly head: SiglipAttentionPoolingHead;
  constructor(c: SiglipVisionConfig) {
    super();
    this.embeddings = this.add('embeddings', new SiglipVisionEmbeddings(c));
    this.encoder = this.add('encoder', new SiglipEncoder(c));
    this.post_layernorm = this.add('post_layernorm', new LayerNorm(c.hiddenSize, c.eps));
    this.head = this.add('head', new SiglipAttentionPoolingHead(c));
  }
  forward(pixels: Tensor): { lastHiddenState: Tensor; pooled: Tensor } {
    return scope(() => {
      const lastHiddenState = this.post_layernorm.forward(this.encoder.forward(this.embeddings.forward(pixels)));
      return { lastHiddenState, pooled: this.head.forward(lastHiddenState) };
    });
  }
}

/** SiglipModel's vision half: `vision_model.*`. */
export class SiglipVisionModel extends Module {
  readonly vision_model: SiglipVisionTransformer;
  constructor(readonly config: SiglipVisionConfig) {
    super();
    this.vision_model = this.add('vision_model', new SiglipVisionTransformer(config));
  }

  /** get_image_features: pixel_values [B, C, S, S] -> the pooled output [B, D]. */
  imageFeatures(pixels: Tensor): Tensor {
    return scope(() => this.vision_model.forward(pixels).pooled);
  }

  /** encode_image of the guardrail: the features over their L2 norm [B, D]. */
  encodeImage(pixels: Tensor): Tensor {
    return scope(() => l2Normalize(this.imageFeatures(pixels)));
  }
}

/** x / ‖x‖₂ over the last axis (torch's x / x.norm(dim=-1, keepdim=True): no epsilon). */
export function l2Normalize(x: Tensor): Tensor {
  return scope(() => F.div(x, F.sqrt(F.sum(F.square(x), x.rank - 1, true))));
}

/** Keys of a SiglipModel checkpoint this module does not hold: the text tower, logit_scale / logit_bias. */
const isVisionKey = (key: string) => key.startsWith('vision_model.');

export const SiglipVisionFamily: ModuleFamily<SiglipVisionModel> = {
  name: 'SiglipModel (vision)',
  build: (config) => new SiglipVisionModel(parseSiglipVisionConfig(config)),
  // the text half of a full SiglipModel checkpoint is never read
  loadOptions: () => ({ ignore: (key) => !isVisionKey(key) }),
};

/** The vision tower from a SiglipModel folder (config.json + safetensors), its text half skipped. */
export async function loadSiglipVision(path: string, backend: Backend, o: { fs?: FileSystem; config?: Config } = {}): Promise<SiglipVisionModel> {
  return (await loadModule(SiglipVisionFamily, path, backend, { fs: o.fs, config: o.config })).model;
}
