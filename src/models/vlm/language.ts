// The Qwen2.5-VL model (transformers Qwen2_5_VLForConditionalGeneration, v4.49): the vision
// tower (`visual.*`, vision.ts), the language model (`model.*`) and `lm_head.weight`, built from
// a transformers config.json alone. Spec vlm.md "Language model".
//
// Forward: embed_tokens(input_ids); the image (then video) placeholder rows are replaced, in
// order, by the visual embeddings of all images (then all videos); M-RoPE position ids come
// from get_rope_index (rope-index.ts) and become per-position cos/sin tables on the host (axis
// per channel from mrope_section); each decoder layer does
//   h += o_proj(attn(RMSNorm(h)))   q/k/v with bias, GQA, scale 1/sqrt(head_dim)
//   h += down(silu(gate(x)) * up(x)), x = RMSNorm(h)
// with a causal mask, plus finfo(float32).min at padded keys (and, as this transformers version
// does for any sequence longer than config.sliding_window, at keys further back than that);
// then the final RMSNorm and lm_head.
//
// Weights keep their checkpoint dtype (bf16 checkpoints stay bf16; kernels widen to f32).
import type { Backend } from '../../engine/backend.js';
import { Embedding, RMSNorm } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope } from '../../engine/tensor.js';
import { type DecoderContext, DecoderLayer, type DecoderLayerShape, type LayerKVBuffers, runDecoderLayers } from '../decoder-layers.js';

export type { DecoderContext };
import type { ModuleFamily } from '../load.js';
import { type TextConfig, type VlmConfig, VlmInputError, parseVlmConfig, ropeIndexConfig } from './config.js';
import { type Grid, type RopeIndex, getRopeIndex } from './rope-index.js';
import { VisionTransformer, activate } from './vision.js';

// ------------------------------------------------------------------ M-RoPE and masks (host)

/** 1 / theta^(arange(0, hd, 2) / hd) in float32 (the default rope init). */
export function textInvFreq(cfg: Pick<TextConfig, 'headDim' | 'ropeTheta'>): Float32Array {
  const f = Math.fround;
  const hd = cfg.headDim;
  return Float32Array.from({ length: hd / 2 }, (_, k) => f(1 / f(cfg.ropeTheta ** f(f(2 * k) / hd))));
}

/**
 * cos/sin tables [B, L, head_dim] for M-RoPE position ids [3, B, L]: channel c rotates by
 * pos[axis(c)] * inv_freq[c mod hd/2] (float32 product), axis from the doubled mrope_section.
 */
export function mropeTables(positionIds: ArrayLike<number>, B: number, L: number, cfg: Pick<TextConfig, 'headDim' | 'ropeTheta' | 'mropeSection'>): { cos: Float32Array; sin: Float32Array } {
  const hd = cfg.headDim;
  if (positionIds.length !== 3 * B * L) throw new ShapeError(`mropeTables: ${positionIds.length} position ids for [3, ${B}, ${L}]`);
  const inv = textInvFreq(cfg);
  const axis = new Int32Array(hd);
  const sections = [...cfg.mropeSection, ...cfg.mropeSection];
  let c = 0;
  sections.forEach((s, i) => {
    for (let k = 0; k < s; k++) axis[c++] = i % 3;
  });
  const cos = new Float32Array(B * L * hd);
  const sin = new Float32Array(B * L * hd);
  for (let b = 0; b < B; b++) {
    for (let l = 0; l < L; l++) {
      const o = (b * L + l) * hd;
      for (let ch = 0; ch < hd; ch++) {
        const p = positionIds[(axis[ch] * B + b) * L + l];
        const a = Math.fround(p * inv[ch % (hd / 2)]);
        cos[o + ch] = Math.cos(a);
        sin[o + ch] = Math.sin(a);
      }
    }
  }
  return { cos, sin };
}

/** torch.finfo(torch.float32).min: what upstream's eager mask holds at excluded keys. */
export const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * The additive attention mask upstream builds (_prepare_4d_causal_attention_mask_with_cache_position)
 * for L queries at positions past..past+L-1 over T = keyMask row length keys: FLOAT32_MIN where
 * the key is in the future, padded (keyMask 0) or, with a sliding window, at or before
 * position - window; 0 elsewhere. Returns null when that is exactly the causal pattern (no padded
 * key and no key out of the window), so the causal attention path can run instead.
 */
export function attentionMask(keyMask: ArrayLike<number> | null, B: number, L: number, T: number, past: number, slidingWindow: number | null): Float32Array | null {
  if (keyMask && keyMask.length !== B * T) throw new ShapeError(`attentionMask: ${keyMask.length} mask values for [${B}, ${T}]`);
  const padded = keyMask !== null && Array.prototype.some.call(keyMask, (v: number) => v === 0);
  const windowed = slidingWindow !== null && past + L - 1 - slidingWindow >= 0;
  if (!padded && !windowed) return null;
  const out = new Float32Array(B * L * T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < L; i++) {
      const pos = past + i;
      const o = (b * L + i) * T;
      for (let j = 0; j < T; j++) {
        const masked = j > pos || (keyMask !== null && keyMask[b * T + j] === 0) || (slidingWindow !== null && j <= pos - slidingWindow);
        out[o + j] = masked ? FLOAT32_MIN : 0;
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ modules

/** lm_head (no bias); its weight is optional when tie_word_embeddings (embed_tokens serves then). */
class LmHead extends Module {
  readonly weight: Param;
  constructor(cfg: TextConfig) {
    super();
    this.weight = this.param('weight', [cfg.vocabSize, cfg.hiddenSize], { optional: cfg.tieWordEmbeddings });
  }
}

/** The decoder layer of Qwen2: q/k/v with bias. */
function layerShape(cfg: TextConfig): DecoderLayerShape {
  return {
    hiddenSize: cfg.hiddenSize, intermediateSize: cfg.intermediateSize, numAttentionHeads: cfg.numAttentionHeads,
    numKeyValueHeads: cfg.numKeyValueHeads, headDim: cfg.headDim, rmsNormEps: cfg.rmsNormEps, qkvBias: true,
    act: (x) => activate(cfg.hiddenAct, x),
  };
}

/** The text decoder (`model.*`). */
export class Qwen2_5_VLModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: DecoderLayer[];
  readonly norm: RMSNorm;
  constructor(readonly config: TextConfig) {
    super();
    this.embed_tokens = this.add('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize));
    this.layers = Array.from({ length: config.numHiddenLayers }, (_, i) => this.add(`layers.${i}`, new DecoderLayer(layerShape(config), i)));
    this.norm = this.add('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
  }
  /** inputs_embeds [B, L, D] -> hidden states before the final norm [B, L, D]. */
  layersForward(embeds: Tensor, ctx: DecoderContext): Tensor {
    return runDecoderLayers(this.layers, embeds, ctx);
  }
}

// ------------------------------------------------------------------ the model

/** Host ids / masks: flat row-major data with its [B, L] shape. */
export interface IdBatch {
  data: ArrayLike<number>;
  shape: readonly [number, number] | readonly number[];
}

export interface VisualInputs {
  /** image patches [N, Cin*tp*p*p] (processor layout) and one (t, h, w) per image */
  pixelValues?: Tensor | null;
  imageGridThw?: readonly Grid[] | null;
  pixelValuesVideos?: Tensor | null;
  videoGridThw?: readonly Grid[] | null;
  /** temporal_patch_size / fps per video (float32); null: 1.0 each */
  secondPerGridTs?: ArrayLike<number> | null;
}

export interface ForwardInputs extends VisualInputs {
  inputIds: IdBatch;
  /** 1 = token, 0 = padding; null: all ones */
  attentionMask?: IdBatch | null;
}

export interface PrefillResult {
  /** [B, L, V], or [B, 1, V] (last position) with lastOnly */
  logits: Tensor;
  rope: RopeIndex;
}

export interface ModelParts {
  /** declare the vision tower (visual.*); default true */
  vision?: boolean;
  /** declare the language model (model.*, lm_head.*); default true */
  language?: boolean;
}

function batchShape(x: IdBatch, what: string): [number, number] {
  if (x.shape.length !== 2) throw new VlmInputError(`${what}: must be [batch, length]; got shape ${JSON.stringify(x.shape)}`);
  const [B, L] = x.shape;
  if (x.data.length !== B * L) throw new VlmInputError(`${what}: holds ${x.data.length} values for shape [${B}, ${L}]`);
  return [B, L];
}

interface VisualKind {
  what: 'image' | 'video';
  tokenId: number;
  pixelsName: string;
  gridName: string;
}

function gridText(grids: readonly Grid[]): string {
  return `[${grids.map((g) => `[${g.join(', ')}]`).join(', ')}]`;
}

/** Qwen2_5_VLForConditionalGeneration: `visual`, `model`, `lm_head`. */
export class Qwen2_5_VLForConditionalGeneration extends Module {
  readonly visual: VisionTransformer | null;
  readonly model: Qwen2_5_VLModel | null;
  readonly lm_head: LmHead | null;

  constructor(readonly config: VlmConfig, parts: ModelParts = {}) {
    super();
    this.visual = parts.vision === false ? null : this.add('visual', new VisionTransformer(config.vision));
    if (parts.language === false) {
      this.model = null;
      this.lm_head = null;
    } else {
      this.model = this.add('model', new Qwen2_5_VLModel(config.text));
      this.lm_head = this.add('lm_head', new LmHead(config.text));
    }
  }

  /**
   * Checkpoint key -> model key: released checkpoints use visual.* / model.* / lm_head.*; newer
   * transformers save model.visual.* / model.language_model.*. Keys of undeclared parts drop.
   */
  mapKey(k: string): string | null {
    let key = k;
    if (key.startsWith('model.visual.')) key = key.slice('model.'.length);
    else if (key.startsWith('model.language_model.')) key = `model.${key.slice('model.language_model.'.length)}`;
    if (key.startsWith('visual.') && !this.visual) return null;
    if ((key.startsWith('model.') || key.startsWith('lm_head.')) && !this.model) return null;
    return key;
  }

  private get lm(): Qwen2_5_VLModel {
    if (!this.model) throw new Error('this model was built without its language part');
    return this.model;
  }

  private get vision(): VisionTransformer {
    if (!this.visual) throw new Error('this model was built without its vision tower');
    return this.visual;
  }

  get backend(): Backend {
    return (this.model ? this.model.embed_tokens.weight.t : this.vision.merger.ln_q.weight.t).backend;
  }

  /** The vision tower on pixel patches of several images (or videos) at once. */
  encodeVisual(pixelValues: Tensor, grids: readonly Grid[]): Tensor {
    return this.vision.forward(pixelValues, grids);
  }

  /** get_rope_index for this config. */
  ropeIndex(inputIds: IdBatch, attentionMask: IdBatch | null, v: VisualInputs): RopeIndex {
    const [B, L] = batchShape(inputIds, 'input_ids');
    if (attentionMask) {
      const [mb, ml] = batchShape(attentionMask, 'attention_mask');
      if (mb !== B || ml !== L) throw new VlmInputError(`attention_mask: [${mb}, ${ml}] does not match input_ids [${B}, ${L}]`);
    }
    return getRopeIndex(ropeIndexConfig(this.config), {
      inputIds: inputIds.data, batch: B, length: L, attentionMask: attentionMask?.data ?? null,
      imageGridThw: v.imageGridThw ?? null, videoGridThw: v.videoGridThw ?? null, secondPerGridTs: v.secondPerGridTs ?? null,
    });
  }

  /**
   * embed_tokens(input_ids) [B, L, D] and nothing else: what a decode step feeds. Upstream drops
   * the pixel inputs after the prefill, so a generated <|image_pad|> / <|video_pad|> is embedded
   * as the token it is, never matched against pixels.
   */
  embedTokens(inputIds: IdBatch): Tensor {
    const [B, L] = batchShape(inputIds, 'input_ids');
    const ids = this.checkedIds(inputIds);
    const D = this.config.text.hiddenSize;
    return scope(() => this.lm.embed_tokens.forward(F.fromArray(this.backend, ids, [B, L], 'i32')).reshape([B, L, D]));
  }

  private checkedIds(inputIds: IdBatch): Int32Array {
    const V = this.config.text.vocabSize;
    const ids = Int32Array.from(inputIds.data);
    for (const id of ids) {
      if (!(id >= 0 && id < V)) throw new VlmInputError(`input_ids: token ${id} is outside the vocabulary [0, ${V})`);
    }
    return ids;
  }

  /**
   * The prefill's inputs_embeds [B, L, D]: embed_tokens(input_ids) with the image placeholder
   * rows (in row-major order) replaced by the visual embeddings of all images, then the video
   * rows by those of all videos (one vision call each, as upstream). Images and videos may
   * interleave in any order: each kind fills its own placeholders in order. Tapped as
   * `inputs_embeds`.
   */
  embedInputs(inputIds: IdBatch, v: VisualInputs = {}): Tensor {
    const [B, L] = batchShape(inputIds, 'input_ids');
    const be = this.backend;
    const { imageTokenId, videoTokenId, text } = this.config;
    const ids = this.checkedIds(inputIds);
    return scope(() => {
      const embeds = this.lm.embed_tokens.forward(F.fromArray(be, ids, [B, L], 'i32')).reshape([B * L, text.hiddenSize]);
      const tables: Tensor[] = [embeds];
      const index = Int32Array.from({ length: B * L }, (_, i) => i);
      let next = B * L;
      const place = (kind: VisualKind, pixels: Tensor | null | undefined, grids: readonly Grid[] | null | undefined) => {
        const { what, tokenId, pixelsName, gridName } = kind;
        const slots: number[] = [];
        ids.forEach((id, i) => { if (id === tokenId) slots.push(i); });
        if (!pixels) {
          if (slots.length) throw new VlmInputError(`${pixelsName}: missing, while input_ids hold ${slots.length} ${what} tokens (${tokenId})`);
          return;
        }
        if (!grids || grids.length === 0) throw new VlmInputError(`${gridName}: missing (${pixelsName} were given)`);
        this.checkPixels(pixels, grids, pixelsName, gridName);
        const feats = this.encodeVisual(pixels, grids);
        if (feats.shape[0] !== slots.length) {
          throw new VlmInputError(`${gridName}: ${what} features and ${what} tokens do not match; input_ids hold ${slots.length} ${what} tokens (${tokenId}), ${gridName} ${gridText(grids)} gives ${feats.shape[0]} features`);
        }
        slots.forEach((s, k) => { index[s] = next + k; });
        next += feats.shape[0];
        tables.push(feats);
      };
      place({ what: 'image', tokenId: imageTokenId, pixelsName: 'pixel_values', gridName: 'image_grid_thw' }, v.pixelValues, v.imageGridThw);
      place({ what: 'video', tokenId: videoTokenId, pixelsName: 'pixel_values_videos', gridName: 'video_grid_thw' }, v.pixelValuesVideos, v.videoGridThw);
      const out = tables.length === 1
        ? embeds
        : F.indexSelect(F.concat(tables, 0), 0, F.fromArray(be, index, [B * L], 'i32'));
      return this.tap(out.reshape([B, L, text.hiddenSize]), 'inputs_embeds');
    });
  }

  /** pixel rows against their grids, named as the processor names them. */
  private checkPixels(pixels: Tensor, grids: readonly Grid[], pixelsName: string, gridName: string): void {
    const vc = this.config.vision;
    const width = vc.inChannels * vc.temporalPatchSize * vc.patchSize * vc.patchSize;
    grids.forEach((g, i) => {
      if (g.length !== 3 || !g.every((x) => Number.isInteger(x) && x >= 1)) throw new VlmInputError(`${gridName}: row ${i} (${g.join(', ')}) must be three positive integers`);
    });
    const rows = grids.reduce((s, [t, h, w]) => s + t * h * w, 0);
    if (pixels.rank !== 2 || pixels.shape[0] !== rows || pixels.shape[1] !== width) {
      throw new VlmInputError(`${pixelsName}: ${JSON.stringify(pixels.shape)} does not fit ${gridName} ${gridText(grids)}; expected [${rows}, ${width}] (t*h*w patches of ${vc.inChannels}x${vc.temporalPatchSize}x${vc.patchSize}x${vc.patchSize})`);
    }
  }

  /** Device M-RoPE tables [B, L, hd] for position ids [3, B, L]. */
  ropeTables(positionIds: ArrayLike<number>, B: number, L: number): { cos: Tensor; sin: Tensor } {
    const { cos, sin } = mropeTables(positionIds, B, L, this.config.text);
    const hd = this.config.text.headDim;
    return { cos: F.fromArray(this.backend, cos, [B, L, hd]), sin: F.fromArray(this.backend, sin, [B, L, hd]) };
  }

  /**
   * The decoder on inputs_embeds [B, L, D] at M-RoPE positions [3, B, L]: logits [B, L, V], or
   * only the last position's [B, 1, V] with lastOnly. keyMask [B, past + L] (1 = token,
   * 0 = padding, null: all ones) covers every key, the cached ones included; with a cache the
   * new keys/values go to rows past..past+L-1.
   */
  decode(embeds: Tensor, positionIds: ArrayLike<number>, keyMask: ArrayLike<number> | null, opts: { cache?: LayerKVBuffers | null; past?: number; lastOnly?: boolean } = {}): Tensor {
    const lm = this.lm;
    const [B, L, D] = embeds.shape;
    if (D !== this.config.text.hiddenSize) throw new ShapeError(`decode: embeddings ${JSON.stringify(embeds.shape)} do not have hidden_size ${this.config.text.hiddenSize}`);
    const past = opts.past ?? 0;
    const cache = opts.cache ?? null;
    if (!cache && past !== 0) throw new VlmInputError('decode: past > 0 needs a KV cache');
    if (cache && past + L > cache.capacity) throw new VlmInputError(`decode: ${past + L} positions exceed the KV cache capacity ${cache.capacity}`);
    const T = past + L;
    return scope(() => {
      const { cos, sin } = this.ropeTables(positionIds, B, L);
      const m = attentionMask(keyMask, B, L, T, past, this.config.text.slidingWindow);
      const mask = m ? F.fromArray(this.backend, m, [B, 1, L, T]) : null;
      const h = lm.layersForward(embeds, { cos, sin, mask, cache, past });
      const last = opts.lastOnly && L > 1 ? F.slice(h, 1, L - 1, L) : h;
      const normed = lm.norm.forward(last);
      return this.tap(F.linear(normed, this.lm_head!.weight.maybe ?? lm.embed_tokens.weight.t), 'logits');
    });
  }

  /**
   * The full forward (use_cache=False): logits [B, L, V] (or the last position's with lastOnly),
   * with position ids from get_rope_index. Taps: inputs_embeds, position_ids, rope_deltas,
   * model.layers.{i}, model.norm, and every visual.* path.
   */
  forward(inputs: ForwardInputs, opts: { lastOnly?: boolean; cache?: LayerKVBuffers | null } = {}): PrefillResult {
    const [B, L] = batchShape(inputs.inputIds, 'input_ids');
    const mask = inputs.attentionMask ?? null;
    const rope = this.ropeIndex(inputs.inputIds, mask, inputs);
    scope(() => {
      this.tap(F.fromArray(this.backend, rope.positionIds, [3, B, L], 'i32'), 'position_ids');
      this.tap(F.fromArray(this.backend, rope.ropeDeltas, [B, 1], 'i32'), 'rope_deltas');
    });
    const embeds = this.embedInputs(inputs.inputIds, inputs);
    try {
      const logits = this.decode(embeds, rope.positionIds, mask?.data ?? null, { cache: opts.cache ?? null, past: 0, lastOnly: opts.lastOnly });
      return { logits, rope };
    } finally {
      embeds.dispose();
    }
  }
}

/**
 * How loadModule builds the model (or only `parts` of it) from its transformers config.json and
 * maps the checkpoint keys (see mapKey). Weights keep their checkpoint dtype.
 */
export function Qwen2_5_VLFamily(parts: ModelParts = {}): ModuleFamily<Qwen2_5_VLForConditionalGeneration> {
  return {
    name: 'Qwen2_5_VLForConditionalGeneration',
    build: (config) => new Qwen2_5_VLForConditionalGeneration(parseVlmConfig(config), parts),
    loadOptions: (model) => ({ mapKey: (k) => model.mapKey(k) }),
  };
}
