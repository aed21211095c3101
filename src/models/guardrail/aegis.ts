// The Aegis prompt guard (cosmos-predict1 auxiliary/guardrail/aegis/aegis.py): LlamaGuard-7b with
// NVIDIA's Aegis LoRA adapter, asked the moderation prompt of text/aegis.ts, answering within 100
// greedy tokens; the answer is decoded (special tokens skipped) and parsed as upstream does.
//
// The release's `aegis/` folder is a Hugging Face cache:
//   models--meta-llama--LlamaGuard-7b/snapshots/<rev>/   config.json, tokenizer.model, weights
//   models--nvidia--Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0/snapshots/<rev>/
//                                                        adapter_config.json, adapter_model.safetensors
// (the revision refs/main names, or the only one); a plain folder holding the base model with the
// adapter files beside it is taken as well.
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import { type FileSystem, fileSystem } from '../../io/files.js';
import { AEGIS_ERROR_MESSAGE, aegisModerationPrompt, parseAegisAnswer } from '../../text/aegis.js';
import { LlamaTokenizer } from '../../text/llama-tokenizer.js';
import type { LlamaForCausalLM } from './llama.js';
import { generateGreedy, loadLlama } from './llamaguard.js';
import { hfCacheFolderName, hfSnapshot } from '../../io/hf-cache.js';

export const AEGIS_BASE_REPO = 'meta-llama/LlamaGuard-7b';
export const AEGIS_ADAPTER_REPO = 'nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0';
/** upstream's generate(max_new_tokens=100) */
export const AEGIS_MAX_NEW_TOKENS = 100;

export interface AegisVerdict {
  safe: boolean;
  /** the block message ('' when safe) */
  message: string;
  /** the decoded answer of the model */
  answer: string;
  /** set when running the model failed: upstream then lets the prompt through, as here */
  error?: unknown;
}

export interface AegisGuard {
  check(prompt: string, o?: { signal?: AbortSignal }): Promise<AegisVerdict>;
  dispose(): void;
}

const join = (dir: string, name: string) => (dir.endsWith('/') ? dir + name : `${dir}/${name}`);

/** Base model and adapter folders of an Aegis folder (HF cache or plain). */
export async function aegisFolders(path: string, fs: FileSystem = fileSystem()): Promise<{ base: string; adapter: string }> {
  const base = await hfSnapshot(path, AEGIS_BASE_REPO, { fs });
  const adapter = await hfSnapshot(path, AEGIS_ADAPTER_REPO, { fs });
  if (base && adapter) return { base, adapter };
  if (base || adapter) throw new UserError(`${path}: holds ${hfCacheFolderName(base ? AEGIS_BASE_REPO : AEGIS_ADAPTER_REPO)} but not ${hfCacheFolderName(base ? AEGIS_ADAPTER_REPO : AEGIS_BASE_REPO)}`);
  if ((await fs.stat(join(path, 'adapter_config.json')))?.kind !== 'file') {
    throw new UserError(`${path}: neither a Hugging Face cache of ${AEGIS_BASE_REPO} + ${AEGIS_ADAPTER_REPO} nor a folder with the base model and adapter_config.json`);
  }
  return { base: path, adapter: path };
}

class LoadedAegis implements AegisGuard {
  constructor(private readonly model: LlamaForCausalLM, private readonly tokenizer: LlamaTokenizer) {}

  async check(prompt: string, o: { signal?: AbortSignal } = {}): Promise<AegisVerdict> {
    let answer: string;
    try {
      const ids = this.tokenizer.encode(aegisModerationPrompt(prompt));
      const pad = this.tokenizer.eosId >= 0 ? this.tokenizer.eosId : undefined;
      const out = await generateGreedy(this.model, { data: ids, shape: [1, ids.length] }, {
        maxNewTokens: AEGIS_MAX_NEW_TOKENS, padTokenId: pad, signal: o.signal,
      });
      answer = this.tokenizer.decode(out.tokens);
    } catch (error) {
      if (o.signal?.aborted) throw error;
      // upstream's is_safe catches every exception of the model call and answers SAFE
      return { safe: true, message: AEGIS_ERROR_MESSAGE, answer: '', error };
    }
    const v = parseAegisAnswer(answer);
    return { safe: v.safe, message: v.message, answer };
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Load the Aegis guard from the release's aegis folder (see the header). */
export async function loadAegis(path: string, backend: Backend, o: { fs?: FileSystem } = {}): Promise<AegisGuard> {
  const fs = o.fs ?? fileSystem();
  const { base, adapter } = await aegisFolders(path, fs);
  const tokPath = join(base, 'tokenizer.model');
  if ((await fs.stat(tokPath))?.kind !== 'file') throw new UserError(`${tokPath}: missing; the Llama tokenizer is read from tokenizer.model`);
  const tokenizer = await LlamaTokenizer.load(tokPath, fs);
  const model = await loadLlama(base, backend, { adapter, fs });
  return new LoadedAegis(model, tokenizer);
}
