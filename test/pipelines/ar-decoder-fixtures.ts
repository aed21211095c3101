// A decoder and a CV tokenizer folder that fit the tiny AR / DV models (used by ar-decoder-run.test.ts
// and the README's timing): the ar_decoder case's network widened to the tiny DV tokenizer's 64000
// codes and the tiny CV tokenizer's 16 latent channels, random weights under the released net.*
// names as model.pt, aux_vars.pt beside it as the release ships it; the tiny CV tokenizer with a
// mean_std.pt.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import seedrandom from 'seedrandom';
import { openCheckpoint } from '../../src/io/safetensors.js';
import { torchTuple, writeTorchCheckpoint } from '../../src/io/torch.js';
import { ArDecoderFamily, arDecoderCheckpointKey, isIgnoredArDecoderKey } from '../../src/models/ar-decoder/model.js';

const FIXTURES = nodePath.resolve(import.meta.dirname, '../fixtures');
export const DECODER_CASE = nodePath.join(FIXTURES, 'ar_decoder/forward');
const CV_TINY = nodePath.resolve(import.meta.dirname, '../../weights/cosmos-tokenizer-tiny-cv4x8x8');
/** the T5 width of the widened decoder */
export const TEXT_DIM = 32;

const f32 = (a: Float32Array) => ({ dtype: 'F32' as const, shape: [a.length], bytes: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });

/**
 * The case's decoder config on the tiny tokenizers' sizes, its weights random under the case
 * checkpoint's (released) names with the shapes this config gives them.
 */
export async function writeDecoder(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const config = {
    ...JSON.parse(readFileSync(nodePath.join(DECODER_CASE, 'config.json'), 'utf8')),
    diffusion_decoder_token_condition_voc_size: 64000, in_channels: 16, out_channels: 16, crossattn_emb_channels: TEXT_DIM,
  };
  const shapes = new Map([...ArDecoderFamily.build(config).parameters()].map((p) => [p.key, p.shape]));
  const src = await openCheckpoint(nodePath.join(DECODER_CASE, 'model.safetensors'));
  const rng = seedrandom('ar-decoder-run');
  const state = new Map<string, { dtype: 'F32'; shape: number[]; bytes: Uint8Array }>();
  try {
    for (const name of src.names) {
      if (isIgnoredArDecoderKey(name)) continue;
      const shape = shapes.get(arDecoderCheckpointKey(name) ?? '');
      if (!shape) throw new Error(`${name}: no parameter of the widened decoder`);
      const n = shape.reduce((a, b) => a * b, 1);
      const norm = shape.length === 1 && /norm|k\.1|q\.1/.test(name) && name.endsWith('weight');
      const a = shape.length >= 2 ? 1 / Math.sqrt(shape[shape.length - 1]) : 0.05;
      const data = Float32Array.from({ length: n }, () => (norm ? 1 + 0.1 * (rng() - 0.5) : a * (2 * rng() - 1) * 1.7));
      state.set(name, { dtype: 'F32', shape: [...shape], bytes: new Uint8Array(data.buffer) });
    }
  } finally {
    await src.close();
  }
  if (state.size !== shapes.size) throw new Error(`the widened decoder has ${shapes.size} parameters, ${state.size} written`);
  // the release's layout: model.pt (torch.save of the net.* state dict) and aux_vars.pt (the generic prompt's T5 context)
  await writeTorchCheckpoint(nodePath.join(dir, 'model.pt'), state);
  const context = Float32Array.from({ length: 512 * TEXT_DIM }, (_, i) => (i < 9 * TEXT_DIM ? Math.sin(i) : 0));
  await writeTorchCheckpoint(nodePath.join(dir, 'aux_vars.pt'), {
    context: { dtype: 'F32', shape: [1, 512, TEXT_DIM], bytes: new Uint8Array(context.buffer) },
    context_mask: { dtype: 'F32', shape: [1, 512], bytes: new Uint8Array(Float32Array.from({ length: 512 }, (_, i) => (i < 9 ? 1 : 0)).buffer) },
  });
  // the widened config: a folder with model.pt and config.json (the release has none: the 7B's is built in)
  writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** The tiny CV tokenizer with a mean_std.pt (16 channels x 8 latent frames, as the release's tuple). */
export async function writeCv(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(nodePath.join(CV_TINY, f), nodePath.join(dir, f));
  const mean = Float32Array.from({ length: 16 * 8 }, (_, i) => 0.05 * Math.sin(i));
  const std = Float32Array.from({ length: 16 * 8 }, (_, i) => 0.8 + 0.2 * Math.cos(i));
  await writeTorchCheckpoint(nodePath.join(dir, 'mean_std.pt'), torchTuple(f32(mean), f32(std)));
  return dir;
}

