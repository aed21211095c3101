// The Cosmos-1.0-Guardrail release as a skeleton (../shared/releases has no guardrail layout; the
// spec guardrail.md "Released checkpoints" gives it): the sub-folders, file names and configs as a
// download lays them out, every safetensors file with its tensor names, shapes and dtypes and its
// data a sparse hole (reads as zeros, takes no disk), safety_filter.pt a real torch.save archive of
// zeros (it is small), Resnet50_Final.pth a real torch.save archive whose tensor records are holes.
// What is not real is listed in STANDINS.txt of the folder.
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import * as nodePath from 'node:path';
import { type TorchTensor, type TorchValue, torchZipChunks, writeTorchCheckpoint } from '../../src/io/torch.js';
import { type Piece, sentencePieceModel } from '../models/sentencepiece-writer.js';

type Dtype = 'F32' | 'BF16' | 'I64';
export type Entry = [name: string, dtype: Dtype, shape: number[]];
const BYTES: Record<Dtype, number> = { F32: 4, BF16: 2, I64: 8 };

/** A safetensors file whose data region is a sparse hole. */
export function writeSparseSafetensors(path: string, entries: readonly Entry[]): number {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const [name, dtype, shape] of entries) {
    const n = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [at, at + n] };
    at += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8 + json.length);
  head.writeBigUInt64LE(BigInt(json.length), 0);
  head.write(json, 8, 'ascii');
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    ftruncateSync(fd, head.length + at);
  } finally {
    closeSync(fd);
  }
  return at;
}

function writeJson(path: string, v: unknown): void {
  writeFileSync(path, `${JSON.stringify(v, null, 2)}\n`);
}

/** A Hugging Face cache entry (models--org--name/snapshots/<rev>/ with refs/main), returning the snapshot folder. */
export function hubCache(dir: string, repo: string, rev = '0'.repeat(40)): string {
  const base = nodePath.join(dir, `models--${repo.replace('/', '--')}`);
  mkdirSync(nodePath.join(base, 'refs'), { recursive: true });
  writeFileSync(nodePath.join(base, 'refs', 'main'), rev);
  const snap = nodePath.join(base, 'snapshots', rev);
  mkdirSync(snap, { recursive: true });
  return snap;
}

function encoderLayers(prefix: string, layers: number, d: number, inner: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}.encoder.layers.${i}`;
    for (const n of ['layer_norm1', 'layer_norm2']) out.push([`${p}.${n}.weight`, 'F32', [d]], [`${p}.${n}.bias`, 'F32', [d]]);
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) out.push([`${p}.self_attn.${n}.weight`, 'F32', [d, d]], [`${p}.self_attn.${n}.bias`, 'F32', [d]]);
    out.push([`${p}.mlp.fc1.weight`, 'F32', [inner, d]], [`${p}.mlp.fc1.bias`, 'F32', [inner]], [`${p}.mlp.fc2.weight`, 'F32', [d, inner]], [`${p}.mlp.fc2.bias`, 'F32', [d]]);
  }
  return out;
}

/** google/siglip-so400m-patch14-384 (SiglipModel: both towers, as the file has them). */
function siglip(snap: string): void {
  const d = 1152;
  const inner = 4304;
  const v: Entry[] = [
    ['vision_model.embeddings.patch_embedding.weight', 'F32', [d, 3, 14, 14]], ['vision_model.embeddings.patch_embedding.bias', 'F32', [d]],
    ['vision_model.embeddings.position_embedding.weight', 'F32', [729, d]], ...encoderLayers('vision_model', 27, d, inner),
    ['vision_model.post_layernorm.weight', 'F32', [d]], ['vision_model.post_layernorm.bias', 'F32', [d]],
    ['vision_model.head.probe', 'F32', [1, 1, d]], ['vision_model.head.attention.in_proj_weight', 'F32', [3 * d, d]],
    ['vision_model.head.attention.in_proj_bias', 'F32', [3 * d]], ['vision_model.head.attention.out_proj.weight', 'F32', [d, d]],
    ['vision_model.head.attention.out_proj.bias', 'F32', [d]], ['vision_model.head.layernorm.weight', 'F32', [d]], ['vision_model.head.layernorm.bias', 'F32', [d]],
    ['vision_model.head.mlp.fc1.weight', 'F32', [inner, d]], ['vision_model.head.mlp.fc1.bias', 'F32', [inner]],
    ['vision_model.head.mlp.fc2.weight', 'F32', [d, inner]], ['vision_model.head.mlp.fc2.bias', 'F32', [d]],
  ];
  const t: Entry[] = [
    ['text_model.embeddings.token_embedding.weight', 'F32', [32000, d]], ['text_model.embeddings.position_embedding.weight', 'F32', [64, d]],
    ...encoderLayers('text_model', 27, d, inner), ['text_model.final_layer_norm.weight', 'F32', [d]], ['text_model.final_layer_norm.bias', 'F32', [d]],
    ['text_model.head.weight', 'F32', [d, d]], ['text_model.head.bias', 'F32', [d]],
  ];
  writeSparseSafetensors(nodePath.join(snap, 'model.safetensors'), [['logit_bias', 'F32', [1]], ['logit_scale', 'F32', [1]], ...t, ...v]);
  const tower = { hidden_size: d, intermediate_size: inner, num_hidden_layers: 27, num_attention_heads: 16, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6 };
  writeJson(nodePath.join(snap, 'config.json'), {
    architectures: ['SiglipModel'], model_type: 'siglip', initializer_factor: 1.0, torch_dtype: 'float32',
    text_config: { ...tower, model_type: 'siglip_text_model', vocab_size: 32000, max_position_embeddings: 64 },
    vision_config: { ...tower, model_type: 'siglip_vision_model', image_size: 384, patch_size: 14, num_channels: 3 },
  });
  writeJson(nodePath.join(snap, 'preprocessor_config.json'), {
    do_normalize: true, do_rescale: true, do_resize: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5],
    image_processor_type: 'SiglipImageProcessor', processor_class: 'SiglipProcessor', resample: 3, rescale_factor: 1 / 255, size: { height: 384, width: 384 },
  });
}

/** meta-llama/LlamaGuard-7b (Llama-2-7B architecture, bf16) in two shards with an index. */
function llamaGuard(snap: string): void {
  const d = 4096;
  const inner = 11008;
  const layer = (i: number): Entry[] => {
    const p = `model.layers.${i}`;
    return [
      ...['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((n): Entry => [`${p}.self_attn.${n}.weight`, 'BF16', [d, d]]),
      [`${p}.mlp.gate_proj.weight`, 'BF16', [inner, d]], [`${p}.mlp.up_proj.weight`, 'BF16', [inner, d]], [`${p}.mlp.down_proj.weight`, 'BF16', [d, inner]],
      [`${p}.input_layernorm.weight`, 'BF16', [d]], [`${p}.post_attention_layernorm.weight`, 'BF16', [d]],
    ];
  };
  const shards: Entry[][] = [
    [['model.embed_tokens.weight', 'BF16', [32000, d]], ...Array.from({ length: 16 }, (_, i) => layer(i)).flat()],
    [...Array.from({ length: 16 }, (_, i) => layer(16 + i)).flat(), ['model.norm.weight', 'BF16', [d]], ['lm_head.weight', 'BF16', [32000, d]]],
  ];
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((entries, k) => {
    const file = `model-0000${k + 1}-of-00002.safetensors`;
    total += writeSparseSafetensors(nodePath.join(snap, file), entries);
    for (const [n] of entries) weightMap[n] = file;
  });
  writeJson(nodePath.join(snap, 'model.safetensors.index.json'), { metadata: { total_size: total }, weight_map: weightMap });
  writeJson(nodePath.join(snap, 'config.json'), {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: d, intermediate_size: inner, num_hidden_layers: 32, num_attention_heads: 32,
    num_key_value_heads: 32, vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000.0, max_position_embeddings: 2048, hidden_act: 'silu',
    tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'bfloat16',
  });
  writeJson(nodePath.join(snap, 'generation_config.json'), { bos_token_id: 1, eos_token_id: 2 });
}

/** nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0: a PEFT LoRA adapter (r 16, alpha 32). */
function aegisAdapter(snap: string, targets: readonly string[]): void {
  const entries: Entry[] = [];
  for (let i = 0; i < 32; i++) {
    for (const n of targets) {
      const p = `base_model.model.model.layers.${i}.self_attn.${n}`;
      entries.push([`${p}.lora_A.weight`, 'BF16', [16, 4096]], [`${p}.lora_B.weight`, 'BF16', [4096, 16]]);
    }
  }
  writeSparseSafetensors(nodePath.join(snap, 'adapter_model.safetensors'), entries);
  writeJson(nodePath.join(snap, 'adapter_config.json'), {
    base_model_name_or_path: 'meta-llama/LlamaGuard-7b', peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 16, lora_alpha: 32, lora_dropout: 0.0,
    target_modules: targets, bias: 'none', fan_in_fan_out: false, inference_mode: true, use_rslora: false,
  });
}

/** safety_filter.pt: {"model": the classifier's state dict}, zeros (BatchNorm variances ones). */
async function safetyFilter(path: string): Promise<void> {
  const f32 = (shape: number[], fill = 0) => {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(fill);
    return { dtype: 'F32' as const, shape, bytes: new Uint8Array(a.buffer) };
  };
  const model = new Map<string, TorchValue>();
  const linear = (i: number, out: number, inp: number) => {
    model.set(`network.layers.${i}.weight`, f32([out, inp]));
    model.set(`network.layers.${i}.bias`, f32([out]));
  };
  const norm = (i: number, n: number) => {
    model.set(`network.layers.${i}.weight`, f32([n], 1));
    model.set(`network.layers.${i}.bias`, f32([n]));
    model.set(`network.layers.${i}.running_mean`, f32([n]));
    model.set(`network.layers.${i}.running_var`, f32([n], 1));
    model.set(`network.layers.${i}.num_batches_tracked`, { dtype: 'I64', shape: [], bytes: new Uint8Array(8) });
  };
  linear(0, 512, 1152);
  norm(1, 512);
  linear(3, 256, 512);
  norm(4, 256);
  linear(6, 7, 256);
  await writeTorchCheckpoint(path, { model });
}

/**
 * A torch.save archive whose tensor data records are sparse holes: every chunk the writer passes
 * through as a tensor's own (zero) bytes is seeked over instead of written.
 */
function writeSparseTorch(path: string, root: TorchValue, zeroData: ReadonlySet<Uint8Array>): void {
  const fd = openSync(path, 'w');
  try {
    let at = 0;
    for (const chunk of torchZipChunks(root, { folder: nodePath.basename(path).replace(/\.[^.]*$/, '') })) {
      if (!zeroData.has(chunk)) writeSync(fd, chunk, 0, chunk.length, at);
      at += chunk.length;
    }
    ftruncateSync(fd, at);
  } finally {
    closeSync(fd);
  }
}

/**
 * biubug6's RetinaFace-ResNet50 state dict as Resnet50_Final.pth holds it (saved from
 * DataParallel: every key under `module.`), written from the upstream structure (spec guardrail.md
 * "Face detection", data/config.py cfg_re50: in_channel 256, out_channel 256), not from this
 * library's module: torchvision resnet50 minus fc under `body.` (Bottleneck blocks 3/4/6/3,
 * downsample in each first block), FPN output1-3 (1x1) / merge1-2 (3x3) conv + BN, SSH per level
 * (conv3X3, conv5X5_1, conv5X5_2, conv7X7_2, and upstream's lowercase conv7x7_3), then the
 * ClassHead / BboxHead / LandmarkHead 1x1 convs with bias. BatchNorms carry num_batches_tracked.
 */
export function retinaFaceResnet50Keys(): [name: string, shape: number[]][] {
  const out: [string, number[]][] = [];
  const bn = (p: string, c: number) => {
    for (const n of ['weight', 'bias', 'running_mean', 'running_var']) out.push([`${p}.${n}`, [c]]);
    out.push([`${p}.num_batches_tracked`, []]);
  };
  const conv = (p: string, o: number, i: number, k: number) => out.push([`${p}.weight`, [o, i, k, k]]);
  conv('body.conv1', 64, 3, 7);
  bn('body.bn1', 64);
  let inplanes = 64;
  [[64, 3], [128, 4], [256, 6], [512, 3]].forEach(([planes, blocks], l) => {
    for (let b = 0; b < blocks; b++) {
      const p = `body.layer${l + 1}.${b}`;
      conv(`${p}.conv1`, planes, inplanes, 1);
      bn(`${p}.bn1`, planes);
      conv(`${p}.conv2`, planes, planes, 3);
      bn(`${p}.bn2`, planes);
      conv(`${p}.conv3`, planes * 4, planes, 1);
      bn(`${p}.bn3`, planes * 4);
      if (b === 0) {
        conv(`${p}.downsample.0`, planes * 4, inplanes, 1);
        bn(`${p}.downsample.1`, planes * 4);
      }
      inplanes = planes * 4;
    }
  });
  const C = 256;
  [512, 1024, 2048].forEach((inC, i) => {
    conv(`fpn.output${i + 1}.0`, C, inC, 1);
    bn(`fpn.output${i + 1}.1`, C);
  });
  for (const m of ['merge1', 'merge2']) {
    conv(`fpn.${m}.0`, C, C, 3);
    bn(`fpn.${m}.1`, C);
  }
  for (const s of ['ssh1', 'ssh2', 'ssh3']) {
    for (const [n, o, i] of [['conv3X3', C / 2, C], ['conv5X5_1', C / 4, C], ['conv5X5_2', C / 4, C / 4], ['conv7X7_2', C / 4, C / 4], ['conv7x7_3', C / 4, C / 4]] as const) {
      conv(`${s}.${n}.0`, o, i, 3);
      bn(`${s}.${n}.1`, o);
    }
  }
  for (const [head, k] of [['ClassHead', 2], ['BboxHead', 4], ['LandmarkHead', 10]] as const) {
    for (let i = 0; i < 3; i++) {
      out.push([`${head}.${i}.conv1x1.weight`, [2 * k, C, 1, 1]], [`${head}.${i}.conv1x1.bias`, [2 * k]]);
    }
  }
  return out.map(([n, shape]) => [`module.${n}`, shape]);
}

/** Resnet50_Final.pth: a real torch.save archive (float32, num_batches_tracked int64), data as holes. */
function retinaFaceWeights(path: string): void {
  const keys = retinaFaceResnet50Keys();
  const largest = Math.max(...keys.map(([, s]) => s.reduce((a, b) => a * b, 1) * 4));
  const zeros = new ArrayBuffer(Math.max(largest, 8));
  const data = new Set<Uint8Array>();
  const state = new Map<string, TorchValue>();
  for (const [name, shape] of keys) {
    const isCount = name.endsWith('.num_batches_tracked');
    const bytes = new Uint8Array(zeros, 0, isCount ? 8 : shape.reduce((a, b) => a * b, 1) * 4);
    data.add(bytes);
    state.set(name, { dtype: isCount ? 'I64' : 'F32', shape, bytes } satisfies TorchTensor);
  }
  writeSparseTorch(path, state, data);
}

/**
 * A stand-in tokenizer.model of Llama-2's size (32000 pieces: <unk>, <s>, </s>, the 256 byte
 * pieces, then made-up word pieces); the real one is not reproduced.
 */
function llamaTokenizerModel(): Uint8Array {
  const pieces: Piece[] = [['<unk>', 0, 2], ['<s>', 0, 3], ['</s>', 0, 3]];
  for (let i = 0; i < 256; i++) pieces.push([`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`, 0, 6]);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  pieces.push(['\u2581', -1, 1], ...[...letters].map((c): Piece => [c, -2, 1]), ...[...letters].map((c): Piece => [`\u2581${c}`, -1.5, 1]));
  for (let i = 0; pieces.length < 32000; i++) pieces.push([`\u2581${letters[i % 26]}${letters[Math.floor(i / 26) % 26]}${Math.floor(i / 676)}`, -3 - i / 32000, 1]);
  return sentencePieceModel(pieces);
}

/** Stand-in keywords (the real lists are not reproduced). */
const STANDIN_WORDS = { custom: ['skeletonblockedword', 'skeleton blocked phrase'], whitelist: ['skeletonallowedword'], exact_match: ['skeletonexactword'] };

/** Lay the release out under `dir` (created); returns `dir`. */
export async function writeGuardrailSkeleton(dir: string): Promise<string> {
  const b = nodePath.join(dir, 'blocklist');
  for (const [sub, words] of Object.entries(STANDIN_WORDS)) {
    mkdirSync(nodePath.join(b, sub), { recursive: true });
    writeFileSync(nodePath.join(b, sub, `${sub}.txt`), `${words.join('\n')}\n`);
  }
  mkdirSync(nodePath.join(b, 'nltk_data', 'tokenizers', 'punkt_tab'), { recursive: true });
  mkdirSync(nodePath.join(b, 'nltk_data', 'corpora'), { recursive: true });

  const aegis = nodePath.join(dir, 'aegis');
  const llama = hubCache(aegis, 'meta-llama/LlamaGuard-7b');
  llamaGuard(llama);
  writeFileSync(nodePath.join(llama, 'tokenizer.model'), llamaTokenizerModel());
  aegisAdapter(hubCache(aegis, 'nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0'), ['q_proj', 'k_proj', 'v_proj', 'o_proj']);

  const video = nodePath.join(dir, 'video_content_safety_filter');
  siglip(hubCache(video, 'google/siglip-so400m-patch14-384'));
  await safetyFilter(nodePath.join(video, 'safety_filter.pt'));

  const faces = nodePath.join(dir, 'face_blur_filter');
  mkdirSync(faces, { recursive: true });
  retinaFaceWeights(nodePath.join(faces, 'Resnet50_Final.pth'));

  writeFileSync(nodePath.join(dir, 'STANDINS.txt'), [
    'face_blur_filter/Resnet50_Final.pth: a real torch.save archive with the upstream key names and shapes, its tensor data sparse zero holes; the archive folder name and record order are those of this library\'s writer',
    'blocklist/*: stand-in keywords, one file per folder; nltk_data/ is empty',
    'aegis/: snapshot revisions are zeros; the LlamaGuard shard split (2 files) and the adapter target_modules (q/k/v/o_proj) are stand-ins; tokenizer.model is a made-up 32000-piece BPE model (no other tokenizer files)',
    'video_content_safety_filter/: snapshot revision zeros; no tokenizer files; safety_filter.pt is a real torch.save archive of zeros',
    '',
  ].join('\n'));
  return dir;
}
