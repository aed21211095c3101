// Conformance kinds of the guardrail's video content safety filter (spec guardrail.md):
//   guardrail.siglip_embed       uint8 frames -> SiglipImageProcessor -> SiglipModel.get_image_features
//                                -> L2 normalised (+ vision_model.* taps)
//   guardrail.video_safety       given normalised embeddings -> the classifier of safety_filter.pt,
//                                softmax, argmax, the per-video decision
//   guardrail.video_safety_e2e   both chained, from uint8 frames
// The frames go through the model in one batched call (the cases' taps come from one); the
// decision takes the classes of every frame in order, as the filter's frame-by-frame loop would.
import type { Backend } from '../../engine/backend.js';
import { capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { readJsonObjectIfPresent } from '../../io/files.js';
import { type SafetyClassifier, SafetyClassifierFamily, argmaxRows, decideVideo, loadSafetyClassifier } from '../../models/guardrail/safety-classifier.js';
import { parseSiglipProcessorConfig, preprocessFrames } from '../../models/guardrail/siglip-preprocess.js';
import { SiglipVisionFamily, l2Normalize } from '../../models/guardrail/siglip.js';
import type { Config } from '../../models/load.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, type OutputValue, registerKind, shaped } from '../registry.js';

/** input.frames: uint8 [T, H, W, 3] */
async function frames(c: FixtureCase): Promise<{ bytes: Uint8Array; T: number; H: number; W: number }> {
  const t = await c.input('frames');
  const [T, H, W, C] = t.shape;
  if (t.shape.length !== 4 || C !== 3 || c.storedDtype('input.', 'frames') !== 'U8') {
    throw new CaseFormatError(`${c.dir}: input frames must be uint8 [T, H, W, 3], got ${c.storedDtype('input.', 'frames')} [${t.shape.join(', ')}]`);
  }
  return { bytes: Uint8Array.from(t.raw), T, H, W };
}

/** The processor settings: config.json's `preprocessor_config`, else a preprocessor_config.json in the case. */
async function processorConfig(c: FixtureCase) {
  const inConfig = c.config?.preprocessor_config;
  if (inConfig && typeof inConfig === 'object' && !Array.isArray(inConfig)) return parseSiglipProcessorConfig(inConfig as Config, `${c.path('config.json')} preprocessor_config`);
  const file = c.path('preprocessor_config.json');
  const json = await readJsonObjectIfPresent(file, 'preprocessor_config.json', c.fs);
  if (!json) throw new CaseFormatError(`${c.dir}: no preprocessor_config in config.json and no preprocessor_config.json; the SiglipImageProcessor settings are needed`);
  return parseSiglipProcessorConfig(json, file);
}

/**
 * The classifier's weights: the file case.json's `files` names (as a key or a value) whose name
 * holds `safety_filter`, else safety_filter.safetensors.
 */
function classifierFile(c: FixtureCase): string {
  const names = Object.entries(c.files).flat().filter((f) => /safety_filter[^/\s]*\.(safetensors|pt|pth)$/.test(f));
  return names[0] ?? 'safety_filter.safetensors';
}

/** Frames -> pixel_values, image_embeds, image_embeds_normalized (the SigLIP half of the kinds). */
async function embedOutputs(c: FixtureCase, backend: Backend): Promise<Record<string, OutputValue> & { image_embeds_normalized: Tensor }> {
  const f = await frames(c);
  const pp = await processorConfig(c);
  const model = await c.module(SiglipVisionFamily, backend);
  try {
    const pixels = F.fromArray(backend, preprocessFrames(pp, f.bytes, f.T, f.H, f.W), [f.T, 3, pp.height, pp.width]);
    const features = model.imageFeatures(pixels);
    return { pixel_values: pixels, image_embeds: features, image_embeds_normalized: l2Normalize(features) };
  } finally {
    model.dispose();
  }
}

/** Embeddings [T, in] -> logits, probs, predicted_class, is_safe, frames_evaluated. */
async function classify(classifier: SafetyClassifier, embeddings: Tensor): Promise<Record<string, OutputValue>> {
  const logits = classifier.logits(embeddings);
  const probs = F.softmax(logits, -1);
  const [T, K] = probs.shape;
  const classes = argmaxRows(await probs.read(), K);
  const d = decideVideo(classes);
  return {
    logits, probs,
    predicted_class: shaped(Int32Array.from(classes), [T]),
    is_safe: shaped(Int32Array.of(d.safe ? 1 : 0), [1]),
    frames_evaluated: shaped(Int32Array.of(d.framesEvaluated), [1]),
  };
}

registerKind('guardrail.siglip_embed', async (c, backend): Promise<KindResult> => {
  const { result, taps } = await capture(c.tapNames, () => embedOutputs(c, backend));
  return { outputs: result, taps };
});

registerKind('guardrail.video_safety', async (c, backend): Promise<KindResult> => {
  const classifier = await c.module(SafetyClassifierFamily, backend);
  try {
    const embeddings = await c.inputTensor('embeddings', backend);
    const { result, taps } = await capture(c.tapNames, () => classify(classifier, embeddings));
    return { outputs: result, taps };
  } finally {
    classifier.dispose();
  }
});

registerKind('guardrail.video_safety_e2e', async (c, backend): Promise<KindResult> => {
  // sizes from config.json's safety_filter.ModelConfig, else from the classifier's own headers
  const cfg = c.config;
  const sized = cfg && (cfg.safety_filter || cfg.ModelConfig) ? cfg : undefined;
  const classifier = await loadSafetyClassifier(c.path(classifierFile(c)), backend, { fs: c.fs, config: sized });
  try {
    const { result, taps } = await capture(c.tapNames, async () => {
      const embeds = await embedOutputs(c, backend);
      return { ...embeds, ...(await classify(classifier, embeds.image_embeds_normalized)) };
    });
    return { outputs: result, taps };
  } finally {
    classifier.dispose();
  }
});
