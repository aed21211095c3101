// Tiny model folders for the ar-video2world and reason tests (test/pipelines, test/cli): random
// AR checkpoints on the tiny DV tokenizer's vocabulary, and a Qwen2.5-VL folder made of the vlm
// fixtures (the lm_forward weights, a tokenizer cut to the tiny vocabulary, the chat template).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { encodePng } from '../../src/io/png.js';
import { type TensorToWrite, writeSafetensors } from '../../src/io/safetensors.js';
import { parseArConfig } from '../../src/models/ar/config.js';
import { ArTransformer } from '../../src/models/ar/transformer.js';
import { sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';

const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
export const DV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-dv4x8x8');
export const SAMPLE = nodePath.join(WEIGHTS, 'samples', 'sample_0.y4m');
export const VLM_FIXTURES = nodePath.resolve(import.meta.dirname, '../fixtures/vlm');
const FIX = VLM_FIXTURES;

/** A fresh temporary folder and the function that removes it. */
export function tempFolder(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(nodePath.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An 84x56 gradient PNG (56x84 after the tiny processor's smart_resize: a 4x6 patch grid, 6 tokens). */
export function writeGradientPng(path: string): string {
  const w = 84;
  const h = 56;
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([(x * 3) & 255, (y * 4) & 255, (x * y) & 255], (y * w + x) * 3);
  writeFileSync(path, encodePng({ width: w, height: h, data: px }));
  return path;
}

/** A tiny AR config (upstream ModelConfig field names) on the DV tokenizer's 64000 codes. */
export function tinyConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    dim: 32, n_layers: 2, n_heads: 4, n_kv_heads: 2, head_dim: 8, ffn_hidden_size: 64, vocab_size: 64000, norm_eps: 1e-5,
    rope_theta: 500000, rope_dim: '3D', video_latent_shape: [3, 8, 8], max_seq_len: 192, pad_to_multiple_of: 64,
    use_qk_normalization: true, training_type: 'video_to_video', ...over,
  };
}

/** The text_to_video (Video2World) variant: <bov>, cross-attention to context_dim 16, abs pos emb. */
export function tinyV2wConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return tinyConfig({
    training_type: 'text_to_video', insert_cross_attn: true, insert_cross_attn_every_k_layers: 1, context_dim: 16,
    apply_abs_pos_emb: true, max_seq_len: 256, ...over,
  });
}

/** Deterministic uniform values in [-scale, scale). */
export function rand(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

/** Write config.json + model.safetensors with random weights for every parameter the config declares. */
export async function writeArCheckpoint(dir: string, json: Record<string, unknown>, seed = 1): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify(json, null, 2));
  const model = new ArTransformer(parseArConfig(json));
  const tensors: Record<string, TensorToWrite> = {};
  let k = seed;
  for (const p of model.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const isNorm = p.shape.length === 1;
    const data = isNorm ? Float32Array.from(rand(n, k++, 0.1), (x) => 1 + x) : rand(n, k++, p.key.startsWith('tok_embeddings') ? 1 : 1 / Math.sqrt(p.shape[1]));
    tensors[p.key] = { dtype: 'f32', shape: p.shape, raw: data };
  }
  await writeSafetensors(nodePath.join(dir, 'model.safetensors'), tensors);
  return dir;
}

/**
 * The bpe_tokenize fixture's tokenizer cut to the tiny model's 300 ids: the 256 byte symbols and
 * the first 24 merges (ids < 280), then the added tokens at the tiny config's ids (endoftext =
 * bos 280, im_end = eos 281, ..., vision_start 290, vision_end 291, image 292, video 293) and
 * non-special ones up to 299.
 */
export function tinyTokenizerJson(): Record<string, unknown> {
  const t = JSON.parse(readFileSync(nodePath.join(FIX, 'bpe_tokenize', 'tokenizer.json'), 'utf8'));
  const vocab: Record<string, number> = {};
  for (const [k, id] of Object.entries(t.model.vocab as Record<string, number>)) if (id < 280) vocab[k] = id;
  const merges = (t.model.merges as string[]).filter((m) => {
    const [a, b] = m.split(' ');
    return vocab[a + b] !== undefined;
  });
  const names = [
    '<|endoftext|>', '<|im_end|>', '<|im_start|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>', '<|box_end|>', '<|quad_start|>',
    '<|quad_end|>', '<|vision_pad|>', '<|vision_start|>', '<|vision_end|>', '<|image_pad|>', '<|video_pad|>',
    '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>',
  ];
  const added = names.map((content, i) => ({
    id: 280 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: i < 14,
  }));
  return { ...t, added_tokens: added, model: { ...t.model, vocab, merges } };
}

export function writeReasonFolder(dir: string, over: { tokenizer?: unknown; generation?: unknown; skip?: string[] } = {}): string {
  mkdirSync(dir, { recursive: true });
  const skip = new Set(over.skip ?? []);
  const put = (name: string, fn: () => void) => {
    if (!skip.has(name)) fn();
  };
  put('config.json', () => copyFileSync(nodePath.join(FIX, 'lm_forward', 'config.json'), nodePath.join(dir, 'config.json')));
  put('model.safetensors', () => copyFileSync(nodePath.join(FIX, 'lm_forward', 'model.safetensors'), nodePath.join(dir, 'model.safetensors')));
  put('tokenizer.json', () => writeFileSync(nodePath.join(dir, 'tokenizer.json'), JSON.stringify(over.tokenizer ?? tinyTokenizerJson())));
  put('chat_template.jinja', () => copyFileSync(nodePath.join(FIX, 'chat_template', 'chat_template.jinja'), nodePath.join(dir, 'chat_template.jinja')));
  put('preprocessor_config.json', () => writeFileSync(nodePath.join(dir, 'preprocessor_config.json'), JSON.stringify({
    image_processor_type: 'Qwen2VLImageProcessor', min_pixels: 56 * 56, max_pixels: 56 * 84, patch_size: 14, temporal_patch_size: 2, merge_size: 2,
    image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711], do_resize: true, resample: 3,
  })));
  if (over.generation) writeFileSync(nodePath.join(dir, 'generation_config.json'), JSON.stringify(over.generation));
  return dir;
}


/** In `dir`: the tiny reason folder, the gradient image and a 9-frame clip (64x64 at 8 fps). */
export async function writeReasonInputs(dir: string): Promise<{ folder: string; image: string; clip: string }> {
  const clip = nodePath.join(dir, 'clip9.y4m');
  await writeY4m(clip, sliceFrames(await readY4m(SAMPLE), 0, 9));
  return { folder: writeReasonFolder(nodePath.join(dir, 'tiny')), image: writeGradientPng(nodePath.join(dir, 'img.png')), clip };
}
