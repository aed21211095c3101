// Conformance kinds of the Qwen2.5-VL model (Cosmos-Reason1), fixtures README / spec vlm.md:
//   vlm.vision_encoder  visual(pixel_values, grid_thw) -> image_embeds (+ visual.* taps)
//   vlm.rope_index      get_rope_index(...) -> position_ids, rope_deltas (exact)
//   vlm.lm_forward      the full forward (use_cache=False) -> logits (+ taps)
//   vlm.generate        greedy generation with the KV cache -> sequences (exact), step_logits
// The model kinds take every input the Qwen2.5-VL processor emits: input_ids, attention_mask,
// pixel_values + image_grid_thw, pixel_values_videos + video_grid_thw + second_per_grid_ts
// (images and videos in one prompt, in any order of their placeholders).
// Everything comes from the case folder: config.json, model.safetensors (or the weights file
// case.json names), case.safetensors inputs and case.json args.
import type { Backend } from '../../engine/backend.js';
import { widen } from '../../engine/dtype.js';
import { capture } from '../../engine/module.js';
import type { Tensor } from '../../engine/tensor.js';
import { parseVlmConfig, ropeIndexConfig } from '../../models/vlm/config.js';
import { generate } from '../../models/vlm/generate.js';
import { secondPerGridT } from '../../models/vlm/preprocess.js';
import { type ForwardInputs, type ModelParts, type Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLFamily } from '../../models/vlm/language.js';
import { type Grid, getRopeIndex } from '../../models/vlm/rope-index.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, registerKind, shaped } from '../registry.js';

async function ints(c: FixtureCase, name: string): Promise<{ data: Int32Array; shape: number[] }> {
  const t = await c.input(name);
  if (t.dtype !== 'i32') throw new CaseFormatError(`${c.dir}: input ${name} must be an integer tensor, got ${t.dtype}`);
  return { data: t.raw as Int32Array, shape: t.shape };
}

async function optionalInts(c: FixtureCase, name: string) {
  return c.hasInput(name) ? ints(c, name) : null;
}

async function grids(c: FixtureCase, name: string): Promise<Grid[] | null> {
  const t = await optionalInts(c, name);
  if (!t) return null;
  if (t.shape.length !== 2 || t.shape[1] !== 3) throw new CaseFormatError(`${c.dir}: ${name} must be [n, 3], got ${JSON.stringify(t.shape)}`);
  return Array.from({ length: t.shape[0] }, (_, i) => [t.data[3 * i], t.data[3 * i + 1], t.data[3 * i + 2]] as const);
}

async function floats(c: FixtureCase, name: string): Promise<Float32Array | null> {
  if (!c.hasInput(name)) return null;
  const t = await c.input(name);
  return t.dtype === 'i32' ? Float32Array.from(t.raw) : widen(t.dtype, t.raw);
}

async function tensorInput(c: FixtureCase, backend: Backend, name: string): Promise<Tensor | null> {
  return c.hasInput(name) ? c.inputTensor(name, backend) : null;
}

/**
 * second_per_grid_ts of the case's videos: the processor's input tensor; else args.second_per_grid_ts
 * (a number or one per video); else args.fps (a number or one per video) as the processor turns it
 * into temporal_patch_size / fps; else null (upstream's 1.0 per video).
 */
async function secondPerGridTs(c: FixtureCase, videos: readonly Grid[] | null, temporalPatchSize: number): Promise<Float32Array | null> {
  const given = await floats(c, 'second_per_grid_ts');
  if (given || !videos) return given;
  const perVideo = (key: string): number[] | null => {
    const v = c.args[key];
    if (v === undefined || v === null) return null;
    const list = Array.isArray(v) ? v : new Array(videos.length).fill(v);
    if (list.length !== videos.length || !list.every((x) => typeof x === 'number' && x > 0)) {
      throw new CaseFormatError(`${c.dir}: args.${key} must be a positive number or one per video (${videos.length}), got ${JSON.stringify(v)}`);
    }
    return list as number[];
  };
  const s = perVideo('second_per_grid_ts');
  if (s) return Float32Array.from(s);
  const fps = perVideo('fps');
  return fps ? Float32Array.from(fps, (f) => secondPerGridT(temporalPatchSize, f)) : null;
}

/** The model inputs the processor emits: ids and mask, image pixels + grids, video pixels + grids + second_per_grid_ts. */
async function forwardInputs(c: FixtureCase, backend: Backend, model: Qwen2_5_VLForConditionalGeneration): Promise<ForwardInputs> {
  const ids = await ints(c, 'input_ids');
  const mask = await optionalInts(c, 'attention_mask');
  const videoGridThw = await grids(c, 'video_grid_thw');
  return {
    inputIds: ids,
    attentionMask: mask,
    pixelValues: await tensorInput(c, backend, 'pixel_values'),
    imageGridThw: await grids(c, 'image_grid_thw'),
    pixelValuesVideos: await tensorInput(c, backend, 'pixel_values_videos'),
    videoGridThw,
    secondPerGridTs: await secondPerGridTs(c, videoGridThw, model.config.vision.temporalPatchSize),
  };
}

function intArg(c: FixtureCase, key: string, fallback: number): number {
  const v = c.args[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new CaseFormatError(`${c.dir}: args.${key} must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Register a kind that runs on the case's model (or `parts` of it), freed after. */
function vlmKind(kind: string, parts: ModelParts, run: (model: Qwen2_5_VLForConditionalGeneration, c: FixtureCase, backend: Backend) => Promise<KindResult>): void {
  registerKind(kind, async (c, backend) => {
    const model = await c.module(Qwen2_5_VLFamily(parts), backend);
    try {
      return await run(model, c, backend);
    } finally {
      model.dispose();
    }
  });
}

// ------------------------------------------------------------------ vlm.vision_encoder

vlmKind('vlm.vision_encoder', { language: false }, async (model, c, backend) => {
  const pixels = await tensorInput(c, backend, 'pixel_values');
  const g = await grids(c, 'grid_thw');
  if (!pixels || !g) throw new CaseFormatError(`${c.dir}: vlm.vision_encoder needs inputs pixel_values and grid_thw`);
  const { result, taps } = await capture(c.tapNames, () => model.encodeVisual(pixels, g));
  return { outputs: { image_embeds: result }, taps };
});

// ------------------------------------------------------------------ vlm.rope_index

registerKind('vlm.rope_index', async (c) => {
  // args name the settings; config.json (when present) fills what they leave out
  const parsed = c.config ? parseVlmConfig(c.config) : null;
  const base = parsed ? ropeIndexConfig(parsed) : null;
  const arg = (k: string, v: number | undefined) => {
    if (v === undefined && c.args[k] === undefined) throw new CaseFormatError(`${c.dir}: vlm.rope_index needs args.${k} (or a config.json)`);
    return intArg(c, k, v ?? NaN);
  };
  const tps = c.args.tokens_per_second ?? base?.tokensPerSecond;
  if (typeof tps !== 'number') throw new CaseFormatError(`${c.dir}: vlm.rope_index needs args.tokens_per_second (or a config.json)`);
  const cfg = {
    imageTokenId: arg('image_token_id', base?.imageTokenId),
    videoTokenId: arg('video_token_id', base?.videoTokenId),
    visionStartTokenId: arg('vision_start_token_id', base?.visionStartTokenId),
    spatialMergeSize: arg('spatial_merge_size', base?.spatialMergeSize),
    tokensPerSecond: tps,
  };
  const ids = await ints(c, 'input_ids');
  const mask = await optionalInts(c, 'attention_mask');
  const [B, L] = ids.shape;
  const videoGridThw = await grids(c, 'video_grid_thw');
  const r = getRopeIndex(cfg, {
    inputIds: ids.data, batch: B, length: L, attentionMask: mask?.data ?? null,
    imageGridThw: await grids(c, 'image_grid_thw'), videoGridThw,
    secondPerGridTs: await secondPerGridTs(c, videoGridThw, parsed?.vision.temporalPatchSize ?? 2),
  });
  return { outputs: { position_ids: shaped(r.positionIds, [3, B, L]), rope_deltas: shaped(r.ropeDeltas, [B, 1]) } };
});

// ------------------------------------------------------------------ vlm.lm_forward

vlmKind('vlm.lm_forward', {}, async (model, c, backend) => {
  const inputs = await forwardInputs(c, backend, model);
  const { result, taps } = await capture(c.tapNames, () => model.forward(inputs));
  return { outputs: { logits: result.logits }, taps };
});

// ------------------------------------------------------------------ vlm.generate

vlmKind('vlm.generate', {}, async (model, c, backend) => {
  if (c.args.do_sample === true) throw new CaseFormatError(`${c.dir}: sampled vlm.generate cases are not supported (no reference random draws)`);
  const inputs = await forwardInputs(c, backend, model);
  const maxNewTokens = intArg(c, 'max_new_tokens', NaN);
  // upstream case: no EOS stop unless the case names one
  const eos = c.args.eos_token_id;
  const stopTokenIds = eos === undefined || eos === null ? [] : (Array.isArray(eos) ? eos : [eos]) as number[];
  const { result, taps } = await capture(c.tapNames, () =>
    generate(model, inputs, { maxNewTokens, stopTokenIds, returnStepLogits: true, padTokenId: typeof c.args.pad_token_id === 'number' ? c.args.pad_token_id : undefined }));
  const B = inputs.inputIds.shape[0];
  const V = result.stepLogits!.length / (B * result.steps);
  return {
    outputs: { sequences: shaped(result.sequences, [B, result.sequences.length / B]), step_logits: shaped(result.stepLogits!, [B, result.steps, V]) },
    taps,
  };
});
