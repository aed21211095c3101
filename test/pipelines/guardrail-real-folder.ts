// A tiny Cosmos-1.0-Guardrail folder with the REAL stages, laid out as the release is (spec
// guardrail.md "Released checkpoints"), made from the vendored conformance cases:
//   face_blur_filter/             face_blur_mnet's config.json + its weights as a torch.save
//                                 Resnet50_Final.pth, every key under `module.` as the release has it
//   video_content_safety_filter/  siglip_video_safety's SigLIP as a Hugging Face cache + its
//                                 classifier as safety_filter.pt ({"model": state dict})
//   aegis/                        llamaguard_lora's base + adapter as the two Hugging Face caches,
//                                 with a 96-piece tokenizer.model (the case's vocabulary size)
//   blocklist/                    our own word lists (BLOCKED_WORD, EXACT_PHRASE)
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { type TorchTensor, type TorchValue, writeTorchCheckpoint } from '../../src/io/torch.js';
import { aegisModerationPrompt } from '../../src/text/aegis.js';
import { type Piece, sentencePieceModel } from '../models/sentencepiece-writer.js';
import { hubCache } from '../releases/guardrail-skeleton.js';

export const GUARDRAIL_FIXTURES = nodePath.resolve(import.meta.dirname, '../fixtures/guardrail');
const FACE = nodePath.join(GUARDRAIL_FIXTURES, 'face_blur_mnet');
const SIGLIP = nodePath.join(GUARDRAIL_FIXTURES, 'siglip_video_safety');
const LLAMA = nodePath.join(GUARDRAIL_FIXTURES, 'llamaguard_lora');

export const BLOCKED_WORD = 'grobnitz';
export const EXACT_PHRASE = 'velvet hammer';
export const WHITELISTED_WORD = 'grobnitzer';

/** Every tensor of a safetensors file with its raw bytes, in file order. */
export function safetensorsTensors(path: string): Map<string, TorchTensor> {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: TorchTensor['dtype']; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, TorchTensor>();
  const entries = Object.entries(header).filter(([k]) => k !== '__metadata__').sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0]);
  for (const [name, e] of entries) {
    out.set(name, { dtype: e.dtype, shape: e.shape, bytes: new Uint8Array(b.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1])) });
  }
  return out;
}

/**
 * A BPE tokenizer.model of exactly `size` pieces (<unk>, <s>, </s>, then merges learnt on the Aegis
 * template as BPE training does: the most frequent adjacent pair first). A character no piece
 * covers is <unk>. Without merges the ~8000-character template would be as many tokens.
 */
export function aegisTokenizerModel(size: number): Uint8Array {
  const pieces: Piece[] = [['<unk>', 0, 2], ['<s>', 0, 3], ['</s>', 0, 3]];
  const seen = new Set<string>();
  let sym = [...`\u2581${aegisModerationPrompt('').replaceAll(' ', '\u2581')}`];
  while (pieces.length < size) {
    const count = new Map<string, number>();
    for (let i = 0; i + 1 < sym.length; i++) {
      const p = sym[i] + sym[i + 1];
      if (!seen.has(p)) count.set(p, (count.get(p) ?? 0) + 1);
    }
    let best = '';
    let most = 0;
    for (const [p, c] of count) if (c > most) [best, most] = [p, c];
    if (!best) break;
    seen.add(best);
    pieces.push([best, -pieces.length, 1]);
    const next: string[] = [];
    for (let i = 0; i < sym.length; i++) {
      if (i + 1 < sym.length && sym[i] + sym[i + 1] === best) next.push(sym[i] + sym[++i]);
      else next.push(sym[i]);
    }
    sym = next;
  }
  return sentencePieceModel(pieces);
}

/** Lay the folder out under `dir` (created); returns `dir`. */
export async function writeRealGuardrailFolder(dir: string): Promise<string> {
  const words = { custom: [BLOCKED_WORD], whitelist: [WHITELISTED_WORD], exact_match: [EXACT_PHRASE] };
  for (const [sub, list] of Object.entries(words)) {
    mkdirSync(nodePath.join(dir, 'blocklist', sub), { recursive: true });
    writeFileSync(nodePath.join(dir, 'blocklist', sub, `${sub}.txt`), `${list.join('\n')}\n`);
  }

  const faces = nodePath.join(dir, 'face_blur_filter');
  mkdirSync(faces, { recursive: true });
  copyFileSync(nodePath.join(FACE, 'config.json'), nodePath.join(faces, 'config.json'));
  const state = new Map<string, TorchValue>();
  for (const [k, t] of safetensorsTensors(nodePath.join(FACE, 'model.safetensors'))) state.set(`module.${k}`, t);
  await writeTorchCheckpoint(nodePath.join(faces, 'Resnet50_Final.pth'), state);

  const video = nodePath.join(dir, 'video_content_safety_filter');
  const snap = hubCache(video, 'google/siglip-so400m-patch14-384', '9fdffc58afc957d1a03a25b10dba0329ab15c2a3');
  const { preprocessor_config: pp, ...config } = JSON.parse(readFileSync(nodePath.join(SIGLIP, 'config.json'), 'utf8'));
  writeFileSync(nodePath.join(snap, 'config.json'), JSON.stringify(config));
  writeFileSync(nodePath.join(snap, 'preprocessor_config.json'), JSON.stringify(pp));
  copyFileSync(nodePath.join(SIGLIP, 'model.safetensors'), nodePath.join(snap, 'model.safetensors'));
  await writeTorchCheckpoint(nodePath.join(video, 'safety_filter.pt'), { model: safetensorsTensors(nodePath.join(SIGLIP, 'safety_filter.safetensors')) });

  const aegis = nodePath.join(dir, 'aegis');
  const base = hubCache(aegis, 'meta-llama/LlamaGuard-7b', 'dfcfa3409b9994a4722d44e05f82e81ea73c5106');
  const llamaConfig = JSON.parse(readFileSync(nodePath.join(LLAMA, 'config.json'), 'utf8')) as { vocab_size: number };
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(nodePath.join(LLAMA, f), nodePath.join(base, f));
  writeFileSync(nodePath.join(base, 'tokenizer.model'), aegisTokenizerModel(llamaConfig.vocab_size));
  const adapter = hubCache(aegis, 'nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0', '2f5ab7ec0f5c4da4b6f38ac1e5b4ad52c5cc3c2b');
  for (const f of ['adapter_config.json', 'adapter_model.safetensors']) copyFileSync(nodePath.join(LLAMA, f), nodePath.join(adapter, f));
  return dir;
}
