// LlamaGuard-7b with the Aegis LoRA adapter as cosmos-predict1's Aegis runs it: the base model
// from its folder, the PEFT adapter (adapter_config.json + adapter_model.safetensors) on top,
// unmerged, and greedy generation with a KV cache as transformers' generate does it with
// do_sample off: the prompt is prefilled once, each step appends the argmax of the last
// position's float32 logits and feeds it back; a row stops at EOS (kept in the output), later
// steps give it the pad token; generation ends when every row stopped or after max_new_tokens.
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import { loadWeights } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type FileSystem, fileSystem, readJsonObject } from '../../io/files.js';
import { openCheckpoint } from '../../io/safetensors.js';
import { LayerKVBuffers } from '../decoder-layers.js';
import { type Config, openModule } from '../load.js';
import { type LoraConfig, isLoraKey, parseLoraConfig, peftKeyToModel } from '../lora.js';
import { type IdRows, LlamaFamily, type LlamaForCausalLM } from './llama.js';

export interface LoadLlamaOptions {
  /** the adapter: a folder with adapter_config.json + adapter_model.safetensors; null: none */
  adapter?: string | null;
  /** build from this config instead of the config.json beside the weights */
  config?: Config;
  fs?: FileSystem;
}

const join = (dir: string, name: string) => (dir.endsWith('/') ? dir + name : `${dir}/${name}`);

/** The adapter's config and weights file in `dir`. */
export async function readAdapter(dir: string, fs: FileSystem = fileSystem()): Promise<{ config: LoraConfig; weights: string }> {
  const cfgPath = join(dir, 'adapter_config.json');
  const config = parseLoraConfig(await readJsonObject(cfgPath, 'adapter_config.json', fs), cfgPath);
  for (const name of ['adapter_model.safetensors']) {
    const p = join(dir, name);
    if ((await fs.stat(p))?.kind === 'file') return { config, weights: p };
  }
  throw new UserError(`${dir}: no adapter_model.safetensors beside adapter_config.json`);
}

/**
 * LlamaForCausalLM from `base` (a folder with config.json + safetensors, sharded or not, or one
 * .safetensors file) and, with `adapter`, the LoRA parameters from the adapter folder. Every
 * parameter must be filled by exactly one of the two files.
 */
export async function loadLlama(base: string, backend: Backend, o: LoadLlamaOptions = {}): Promise<LlamaForCausalLM> {
  const fs = o.fs ?? fileSystem();
  const adapter = o.adapter ? await readAdapter(o.adapter, fs) : null;
  const opened = await openModule(LlamaFamily(adapter?.config ?? null), base, backend, { fs, config: o.config });
  const { model } = opened;
  try {
    await loadWeights(model, opened.source, backend, opened.loadOptions);
    if (adapter) {
      const src = await openCheckpoint(adapter.weights, fs, { config: false });
      try {
        await loadWeights(model, src, backend, { mapKey: peftKeyToModel, select: isLoraKey, maxTensorBytes: backend.limits.maxBufferBytes });
      } finally {
        await src.close();
      }
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    await opened.close();
  }
}

export interface GreedyOptions {
  maxNewTokens: number;
  /** ids that end a row (the config's eos_token_id by default) */
  eosTokenIds?: readonly number[];
  /** what finished rows are given (generate's pad_token_id); default the first EOS id */
  padTokenId?: number;
  /** [B, L]: 1 = token, 0 = padding; null / absent: all ones */
  attentionMask?: ArrayLike<number> | null;
  /** also return the float32 logits of every step */
  stepLogits?: boolean;
  signal?: AbortSignal;
}

export interface GreedyResult {
  /** the new tokens only, [B, steps] row-major */
  tokens: Int32Array;
  steps: number;
  /** [B, steps, V] with stepLogits */
  stepLogits: Float32Array | null;
}

/** Greedy generation with the KV cache (see the header). */
export async function generateGreedy(model: LlamaForCausalLM, input: IdRows, o: GreedyOptions): Promise<GreedyResult> {
  const [B, L] = input.shape;
  const V = model.config.vocabSize;
  const eos = o.eosTokenIds ?? model.config.eosTokenIds;
  const pad = o.padTokenId ?? eos[0] ?? 0;
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) throw new UserError(`max_new_tokens: must be a positive integer, got ${o.maxNewTokens}`);
  const userMask = o.attentionMask ?? null;
  const padded = userMask !== null && Array.prototype.some.call(userMask, (v: number) => v === 0);
  const capacity = L + o.maxNewTokens;
  let mask: number[] | null = null;
  if (padded) {
    // the mask grows by one column of ones per step
    mask = [];
    for (let b = 0; b < B; b++) for (let t = 0; t < capacity; t++) mask.push(t < L ? Number(userMask[b * L + t] !== 0) : 1);
  }
  const maskFor = (T: number): number[] | null => (mask ? Array.from({ length: B * T }, (_, i) => mask[Math.floor(i / T) * capacity + (i % T)]) : null);
  const cfg = model.config;
  const cache = new LayerKVBuffers(model.backend, { layers: cfg.numHiddenLayers, kvHeads: cfg.numKeyValueHeads, headDim: cfg.headDim }, B, capacity);
  const tokens: number[][] = Array.from({ length: B }, () => []);
  const logitsOut: Float32Array[] = [];
  const done = new Array<boolean>(B).fill(false);
  try {
    let feed: IdRows = input;
    let past = 0;
    for (let step = 0; step < o.maxNewTokens; step++) {
      o.signal?.throwIfAborted();
      const len = feed.shape[1];
      const logits = model.forward(feed, { cache, past, keyMask: maskFor(past + len), lastOnly: true });
      let next: Int32Array;
      try {
        if (o.stepLogits) logitsOut.push(Float32Array.from(await logits.read()));
        const am = F.argmax(logits, -1);
        try {
          next = Int32Array.from(await am.read());
        } finally {
          am.dispose();
        }
      } finally {
        logits.dispose();
      }
      for (let b = 0; b < B; b++) {
        const t = done[b] ? pad : next[b];
        next[b] = t;
        tokens[b].push(t);
        if (eos.includes(t)) done[b] = true;
      }
      past += len;
      if (done.every(Boolean)) break;
      feed = { data: next, shape: [B, 1] };
    }
  } finally {
    cache.dispose();
  }
  const steps = tokens[0].length;
  let stepLogits: Float32Array | null = null;
  if (o.stepLogits) {
    stepLogits = new Float32Array(B * steps * V);
    logitsOut.forEach((l, s) => {
      for (let b = 0; b < B; b++) stepLogits!.set(l.subarray(b * V, (b + 1) * V), (b * steps + s) * V);
    });
  }
  return { tokens: Int32Array.from(tokens.flat()), steps, stepLogits };
}
