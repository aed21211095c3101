// The Cosmos-1.0-Guardrail release as a skeleton (../shared/releases has no guardrail layout; the
// spec guardrail.md "Released checkpoints" gives it): the sub-folders, file names and configs as a
// download lays them out, every safetensors file with its tensor names, shapes and dtypes and its
// data a sparse hole (reads as zeros, takes no disk), safety_filter.pt a real torch.save archive of
// zeros (it is small). What is not real is listed in STANDINS.txt of the folder.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import * as nodePath from 'node:path';
import { type TorchValue, writeTorchCheckpoint } from '../../src/io/torch.js';

type Dtype = 'F32' | 'BF16' | 'I64';
type Entry = [name: string, dtype: Dtype, shape: number[]];
const BYTES: Record<Dtype, number> = { F32: 4, BF16: 2, I64: 8 };

/** A safetensors file whose data region is a sparse hole. */
function writeSparseSafetensors(path: string, entries: readonly Entry[]): number {
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
function hubCache(dir: string, repo: string): string {
  const rev = '0'.repeat(40);
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
  llamaGuard(hubCache(aegis, 'meta-llama/LlamaGuard-7b'));
  aegisAdapter(hubCache(aegis, 'nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0'), ['q_proj', 'k_proj', 'v_proj', 'o_proj']);

  const video = nodePath.join(dir, 'video_content_safety_filter');
  siglip(hubCache(video, 'google/siglip-so400m-patch14-384'));
  await safetyFilter(nodePath.join(video, 'safety_filter.pt'));

  const faces = nodePath.join(dir, 'face_blur_filter');
  mkdirSync(faces, { recursive: true });
  const fd = openSync(nodePath.join(faces, 'Resnet50_Final.pth'), 'w');
  ftruncateSync(fd, 105 * 2 ** 20);
  closeSync(fd);

  writeFileSync(nodePath.join(dir, 'STANDINS.txt'), [
    'face_blur_filter/Resnet50_Final.pth: a zero-filled sparse placeholder of about the real size (~105 MB); its real bytes (a torch.save archive) are not reproduced',
    'blocklist/*: stand-in keywords, one file per folder; nltk_data/ is empty',
    'aegis/: snapshot revisions are zeros; the LlamaGuard shard split (2 files) and the adapter target_modules (q/k/v/o_proj) are stand-ins; no tokenizer files',
    'video_content_safety_filter/: snapshot revision zeros; no tokenizer files; safety_filter.pt is a real torch.save archive of zeros',
    '',
  ].join('\n'));
  return dir;
}
