// Conformance kinds of the cosmos-predict1 autoregressive video decoder (fixtures README; spec
// ar.md §6):
//   ar.forward    Transformer.forward(tokens, input_pos, [context, context_mask]) -> logits (+ taps)
//   ar.kv_cache   prefill of the first args.prompt_len tokens, then one token per step through
//                 the KV cache -> prefill_logits, step_logits; and a fresh full forward -> full_logits
//   ar.generate   AutoRegressiveModel.generate(prompt_tokens, args) with the fed Exp(1) draws
//                 (input.exponential_q) -> generated_ids (exact), step_logits
// Everything comes from the case folder: config.json, model.safetensors (or the weights file
// case.json names), case.safetensors inputs, case.json args.
import type { Backend } from '../../engine/backend.js';
import { capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { type CrossInputs, decodeStep, generate } from '../../models/ar/generate.js';
import { type ArTransformer, ArTransformerFamily } from '../../models/ar/transformer.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, registerKind, shaped } from '../registry.js';

/** Host ids of an input ([B, L] int tensor). */
async function ids(c: FixtureCase, name: string): Promise<{ data: Int32Array; shape: number[] }> {
  const t = await c.input(name);
  if (t.dtype !== 'i32') throw new CaseFormatError(`${c.dir}: input.${name} must hold integer ids, got ${t.dtype}`);
  return { data: t.raw as Int32Array, shape: t.shape };
}

async function optionalInput(c: FixtureCase, backend: Backend, name: string): Promise<Tensor | null> {
  return c.hasInput(name) ? c.inputTensor(name, backend) : null;
}

/** The cross-attention inputs of a Video2World case (absent: null). */
async function crossInputs(c: FixtureCase, backend: Backend): Promise<CrossInputs> {
  return { context: await optionalInput(c, backend, 'context'), contextMask: await optionalInput(c, backend, 'context_mask') };
}

function intArg(c: FixtureCase, key: string, fallback?: number): number {
  const v = c.args[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new CaseFormatError(`${c.dir}: args.${key} must be an integer, got ${JSON.stringify(v)}`);
  return v;
}

function optionalNumArg(c: FixtureCase, key: string): number | null {
  const v = c.args[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CaseFormatError(`${c.dir}: args.${key} must be a number or null, got ${JSON.stringify(v)}`);
  return v;
}

/** Register a kind that runs on the case's model (built from its config.json, freed after). */
function arKind(kind: string, run: (model: ArTransformer, c: FixtureCase, backend: Backend) => Promise<KindResult>): void {
  registerKind(kind, async (c, backend) => {
    const model = await c.module(ArTransformerFamily, backend);
    try {
      return await run(model, c, backend);
    } finally {
      model.dispose();
    }
  });
}

// ------------------------------------------------------------------ ar.forward

arKind('ar.forward', async (model, c, backend) => {
  const tokens = await ids(c, 'tokens');
  const inputPos = c.hasInput('input_pos') ? (await ids(c, 'input_pos')).data : undefined;
  const cross = await crossInputs(c, backend);
  const { result, taps } = await capture(c.tapNames, () => model.forward(tokens, { inputPos, ...cross }));
  return { outputs: { logits: result }, taps };
});

// ------------------------------------------------------------------ ar.kv_cache

arKind('ar.kv_cache', async (model, c, backend) => {
  const tokens = await ids(c, 'tokens');
  const [B, N] = tokens.shape;
  const P = intArg(c, 'prompt_len', c.json.outputs?.prefill_logits?.shape?.[1]);
  const steps = intArg(c, 'num_steps', N - P);
  if (P < 1 || P + steps > N) throw new CaseFormatError(`${c.dir}: prompt_len ${P} + num_steps ${steps} do not fit ${N} tokens`);
  const cross = await crossInputs(c, backend);
  const row = (from: number, to: number) => {
    const data = new Int32Array(B * (to - from));
    for (let b = 0; b < B; b++) data.set(tokens.data.subarray(b * N + from, b * N + to), b * (to - from));
    return { data, shape: [B, to - from] };
  };
  const cache = model.createCache(B);
  try {
    const prefillLogits = model.forward(row(0, P), { start: 0, cache, ...cross });
    cache.length = P;
    const V = prefillLogits.shape[2];
    const stepLogits = F.zeros(backend, [steps, B, V]);
    for (let i = 0; i < steps; i++) {
      const logits = decodeStep(model, cache, row(P + i, P + i + 1), cross);
      F.setSlice(stepLogits, logits.reshape([1, B, V]), [i, 0, 0]);
      logits.dispose();
    }
    const fullLogits = model.forward(row(0, N), cross);
    return { outputs: { prefill_logits: prefillLogits, step_logits: stepLogits, full_logits: fullLogits } };
  } finally {
    cache.dispose();
  }
});

// ------------------------------------------------------------------ ar.generate

arKind('ar.generate', async (model, c, backend) => {
  const prompt = await ids(c, 'prompt_tokens');
  const cross = await crossInputs(c, backend);
  const draws = await optionalInput(c, backend, 'exponential_q');
  const temperature = optionalNumArg(c, 'temperature') ?? 1.0;
  const res = await generate(model, prompt, {
    maxGenLen: intArg(c, 'max_gen_len'),
    temperature,
    topP: optionalNumArg(c, 'top_p'),
    topK: optionalNumArg(c, 'top_k'),
    ...cross,
    draws,
    echo: c.args.echo === true,
    numGenSeq: intArg(c, 'num_gen_seq', 1),
    ...(Array.isArray(c.args.stop_tokens) ? { stopTokens: c.args.stop_tokens as number[] } : {}),
    returnLogits: true,
  });
  return { outputs: { generated_ids: shaped(res.ids, res.shape), step_logits: res.stepLogits! } };
});
