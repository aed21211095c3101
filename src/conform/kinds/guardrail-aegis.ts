// Conformance kinds of the Aegis prompt guard (spec guardrail.md "Aegis", "Aegis LLM"):
//   guardrail.aegis_text   the moderation prompt for args.prompts (exact strings) and the verdict
//                          + message upstream derives from each given answer (exact)
//   guardrail.llamaguard   LlamaForCausalLM + the PEFT LoRA adapter (unmerged): teacher-forced
//                          logits, the same with the adapter off (base_logits), greedy generation
//                          with the KV cache (generated_ids exact, step_logits), taps of the
//                          adapted forward
// The model comes from the case folder: config.json, model.safetensors and, when present,
// adapter_config.json + adapter_model.safetensors.
import type { Backend } from '../../engine/backend.js';
import { capture } from '../../engine/module.js';
import { generateGreedy, loadLlama } from '../../models/guardrail/llamaguard.js';
import { aegisModerationPrompt, parseAegisAnswer } from '../../text/aegis.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { compareStrings } from '../compare.js';
import { registerKind, shaped } from '../registry.js';

interface ParsedCase {
  is_safe: boolean;
  message: string;
  moderation_output: string;
}

/** One line per verdict, so that the comparison names the first one that differs. */
const verdictLine = (v: { is_safe: boolean; message: string; moderation_output: string }) =>
  JSON.stringify([v.moderation_output, v.is_safe, v.message]);

registerKind('guardrail.aegis_text', async (c) => {
  const prompts = c.args.prompts;
  if (!Array.isArray(prompts) || !prompts.every((p) => typeof p === 'string')) {
    throw new CaseFormatError(`${c.dir}: args.prompts must be a list of strings`);
  }
  const outputs = c.json.outputs ?? {};
  const compared: Record<string, ReturnType<typeof compareStrings>> = {};
  if ('rendered' in outputs) {
    compared.rendered = compareStrings(prompts.map(aegisModerationPrompt), (outputs.rendered.value ?? []) as string[]);
  }
  if ('parsed' in outputs) {
    const want = (outputs.parsed.value ?? []) as ParsedCase[];
    if (!Array.isArray(want) || !want.every((w) => typeof w?.moderation_output === 'string')) {
      throw new CaseFormatError(`${c.dir}: outputs.parsed.value must be a list of {moderation_output, is_safe, message}`);
    }
    const got = want.map((w) => {
      const r = parseAegisAnswer(w.moderation_output);
      return verdictLine({ moderation_output: w.moderation_output, is_safe: r.safe, message: r.message });
    });
    compared.parsed = compareStrings(got, want.map(verdictLine));
  }
  return { outputs: {}, compared };
});

function intArg(c: FixtureCase, key: string, fallback: number): number {
  const v = c.args[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new CaseFormatError(`${c.dir}: args.${key} must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

async function ints(c: FixtureCase, name: string): Promise<{ data: Int32Array; shape: number[] }> {
  const t = await c.input(name);
  if (t.dtype !== 'i32') throw new CaseFormatError(`${c.dir}: input ${name} must be an integer tensor, got ${t.dtype}`);
  return { data: t.raw as Int32Array, shape: t.shape };
}

registerKind('guardrail.llamaguard', async (c: FixtureCase, backend: Backend) => {
  if (!c.config) throw new CaseFormatError(`${c.dir}: guardrail.llamaguard needs the LlamaForCausalLM config.json`);
  const hasAdapter = (await c.fs.stat(c.path('adapter_config.json')))?.kind === 'file';
  const model = await loadLlama(c.path('model.safetensors'), backend, { adapter: hasAdapter ? c.dir : null, config: c.config, fs: c.fs });
  try {
    const ids = await ints(c, 'input_ids');
    const mask = c.hasInput('attention_mask') ? (await ints(c, 'attention_mask')).data : null;
    const [B, L] = ids.shape;
    const V = model.config.vocabSize;
    const eos = c.args.eos_token_id === undefined ? model.config.eosTokenIds : [intArg(c, 'eos_token_id', 0)];
    const { result: logits, taps } = await capture(c.tapNames, () => model.forward(ids, { keyMask: mask }));
    const base = await model.withoutAdapter(() => model.forward(ids, { keyMask: mask }));
    const gen = await generateGreedy(model, ids, {
      maxNewTokens: intArg(c, 'max_new_tokens', 100), eosTokenIds: eos, padTokenId: intArg(c, 'pad_token_id', eos[0]),
      attentionMask: mask, stepLogits: true,
    });
    return {
      outputs: {
        logits: logits.reshape([B, L, V]),
        base_logits: base.reshape([B, L, V]),
        generated_ids: shaped(gen.tokens, [B, gen.steps]),
        step_logits: shaped(gen.stepLogits!, [B, gen.steps, V]),
      },
      taps,
    };
  } finally {
    model.dispose();
  }
});
