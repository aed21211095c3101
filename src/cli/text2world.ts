// `cosmos-ts text2world`: a prompt (or precomputed prompt embeddings) -> a generated clip, with a
// diffusers-style Cosmos model folder. Also what `video2world` and `transfer` share: the flags of
// a generation, writing the clip and the latents, and the summary.
import { writeVideo } from '../io/open-video.js';
import { writeSafetensors } from '../io/safetensors.js';
import type { Video } from '../io/video.js';
import { planText2World, planVideo2World, type Video2WorldPlanOptions, type WorldPlan } from '../pipelines/plan/world.js';
import { text2world } from '../pipelines/text2world.js';
import { type WorldModelInfo, describeWorldModel, inspectWorldModel } from '../pipelines/world/folder.js';
import { type HostTensor, type PromptEmbeddingArrays, writeEmbeddings } from '../pipelines/world/prompt.js';
import type { WorldOptions, WorldResult } from '../pipelines/world/run.js';
import type { WorldSettings } from '../pipelines/world/settings.js';
import { BACKEND_FLAG, commandBackend, type CommandContext, type Flags, UsageError, defineCommand, commandProgress } from './command.js';
import { PLAN_FLAG, planTarget, printPlan } from './plan.js';
import { printWarnings } from './warnings.js';
import { GUARDRAILS_FLAG, commandGuardrails } from './guardrail-flags.js';

/** The flags of a generation from a model folder (text2world and video2world). */
export const WORLD_FLAGS = {
  model: { type: 'string', required: true, path: 'input', placeholder: '<folder>', help: 'diffusers-style model folder (transformer/, vae/, scheduler/, text_encoder/ + tokenizer/)' },
  prompt: { type: 'string', placeholder: '"..."', help: "the text prompt, encoded with the folder's text encoder (T5; Cosmos-Reason1 for Predict2.5)" },
  'negative-prompt': { type: 'string', placeholder: '"..."', help: "default: the Cosmos pipelines' negative prompt" },
  embeddings: {
    type: 'string', path: 'input', placeholder: '<file>', conflicts: ['prompt'],
    help: 'safetensors with prompt_embeds [1, S, D] (+ negative_prompt_embeds for guidance > 1) instead of the text encoder (e.g. saved by --embeddings-out)',
  },
  'embeddings-out': {
    type: 'string', path: 'output', placeholder: '<file>', conflicts: ['embeddings'],
    help: "also save the prompt's text states to this .safetensors file; a later run passes it as --embeddings and skips the text encoder",
  },
  seed: { type: 'integer', min: 0, placeholder: 'N', help: 'noise seed, a whole number >= 0 (default 0)' },
  steps: { type: 'integer', min: 1, help: "denoising steps (default: the pipeline's, 36 / Predict2 35)" },
  guidance: { type: 'number', min: 0, help: 'classifier-free guidance scale (default 7; <= 1 turns the negative pass off)' },
  frames: { type: 'integer', min: 1, help: "output frames, 1 + k * the VAE's temporal compression (default 121 / Predict2.x 93)" },
  height: { type: 'integer', min: 1, help: 'output height, a multiple of 16 (default 704)' },
  width: { type: 'integer', min: 1, help: 'output width, a multiple of 16 (default 1280)' },
  fps: { type: 'number', min: 0, above: true, help: "frame rate: RoPE fps of Cosmos-1.0 / Predict2 and the written clip's (default 30 / 16)" },
  out: { type: 'string', path: 'output', placeholder: '<out.y4m | out.png | folder>', help: 'a .y4m file, a .png (one-frame outputs), or else a folder of PNG frames' },
  'latents-out': {
    type: 'string', path: 'output', placeholder: '<file>',
    help: 'also write the final latents (sampler space) to this .safetensors file; with no --out the VAE is not run (e.g. for folders whose VAE cosmos-ts does not implement)',
  },
  backend: BACKEND_FLAG,
  json: { type: 'boolean', help: 'print a JSON summary on stdout' },
  plan: PLAN_FLAG,
  guardrails: GUARDRAILS_FLAG,
} as const;

type GenerationFlags = Pick<Flags<typeof WORLD_FLAGS>, 'prompt' | 'negative-prompt' | 'embeddings' | 'embeddings-out' | 'seed' | 'out' | 'latents-out' | 'guardrails'>;

/** The --seed of a generation (an integer flag: the pipelines also take text, the CLI does not). */
export function seedOf(s: number | undefined): number | undefined {
  return s;
}

/** The checks every generation command makes on its flags: something to write, something to say. */
export function checkGenerationFlags(f: GenerationFlags, out: string | undefined): void {
  if (f.prompt === undefined && f.embeddings === undefined) throw new UsageError('--prompt: missing (give --prompt, or --embeddings)');
  if (out === undefined && f['latents-out'] === undefined) throw new UsageError('--out: missing (give --out, or --latents-out: something to write)');
  if (f.prompt !== undefined && f.embeddings !== undefined) throw new UsageError('--embeddings: cannot be given with --prompt (they contradict each other; give one)');
  if (f['embeddings-out'] !== undefined && f.prompt === undefined) throw new UsageError('--embeddings-out: saves what --prompt encodes; give --prompt');
  if (f.guardrails !== undefined && f.embeddings !== undefined) throw new UsageError('--embeddings: the guardrails check the prompt text; with --guardrails give --prompt');
  if (f.guardrails !== undefined && out === undefined) throw new UsageError('--guardrails: the video guardrails check the decoded clip; give --out (latents alone cannot be checked)');
}

/** The pipeline options the shared flags give. */
export function worldOptions(f: Flags<typeof WORLD_FLAGS>, model: WorldModelInfo, ctx: CommandContext): Omit<WorldOptions, 'onProgress'> {
  return {
    model, prompt: f.prompt, negativePrompt: f['negative-prompt'], embeddings: f.embeddings, seed: seedOf(f.seed), steps: f.steps,
    guidance: f.guidance, frames: f.frames, height: f.height, width: f.width, fps: f.fps, decode: f.out !== undefined, signal: ctx.signal,
    returnEmbeddings: f['embeddings-out'] !== undefined, onWarning: printWarnings(ctx),
  };
}

/**
 * --plan of a world command: the folder checked and its run measured on the plan backend at the
 * requested size (prompt, input and outputs optional; no --out with --latents-out plans no decode).
 */
export async function planWorldCommand(
  command: 'text2world' | 'video2world', f: Flags<typeof WORLD_FLAGS>, ctx: CommandContext, v2w: Pick<Video2WorldPlanOptions, 'input' | 'condFrames' | 'augmentSigma'> = {},
): Promise<void> {
  const target = await planTarget(f.backend, ctx);
  const o = {
    model: f.model, target, prompt: f.prompt, negativePrompt: f['negative-prompt'], embeddings: f.embeddings, seed: seedOf(f.seed), steps: f.steps,
    guidance: f.guidance, frames: f.frames, height: f.height, width: f.width, fps: f.fps, decode: f.out !== undefined || f['latents-out'] === undefined,
  };
  const p: WorldPlan = command === 'text2world' ? await planText2World(o) : await planVideo2World({ ...o, ...v2w });
  const s = p.settings;
  const what = `${s.frames} frame(s) ${s.width}x${s.height}, latent [${p.latentShape.join(', ')}], ${s.steps} steps, guidance ${s.guidance}`;
  printPlan(ctx, f.json, { command, model: f.model, family: p.family, ...s, latent_shape: p.latentShape }, what, p);
}

/** The backend, the inspected folder and the guardrails of a world command, said on stderr. */
export async function openForCommand(f: Flags<typeof WORLD_FLAGS>, ctx: CommandContext) {
  checkGenerationFlags(f, f.out);
  const info = await inspectWorldModel(f.model);
  const backend = await commandBackend(f.backend, ctx);
  ctx.err(`model ${f.model}: ${describeWorldModel(info)} on ${backend.name} (${backend.adapter})`);
  const guardrails = await commandGuardrails(f.guardrails, backend, ctx);
  return { info, backend, guardrails };
}

/** Write the clip, the latents and / or the prompt's text states (with the run's settings as metadata). */
export async function writeOutputs(
  video: Video | null, latents: HostTensor, out: string | undefined, latentsOut: string | undefined, metadata: Record<string, string>,
  embeddings: PromptEmbeddingArrays | null = null, embeddingsOut?: string,
): Promise<void> {
  if (embeddingsOut !== undefined && embeddings) await writeEmbeddings(embeddingsOut, embeddings, { family: metadata.family ?? '' });
  if (out !== undefined && video) await writeVideo(out, video, { fps: video.fps });
  if (latentsOut !== undefined) {
    await writeSafetensors(latentsOut, { latents: { dtype: 'f32', shape: latents.shape, raw: latents.data } }, { format: 'cosmos-ts.latents.v1', ...metadata });
  }
}

/** The settings as latents-file metadata. */
export function settingsMetadata(family: string, s: WorldSettings): Record<string, string> {
  return {
    family, seed: String(s.seed), steps: String(s.steps), guidance: String(s.guidance), frames: String(s.frames), height: String(s.height),
    width: String(s.width), fps: String(s.fps),
  };
}

/** Seconds per phase, one line. */
export function timingLine(t: Readonly<Record<string, number>>, steps: number): string {
  const parts = Object.entries(t).filter(([k, v]) => v > 0 || k === 'denoise').map(([k, v]) => `${k} ${v.toFixed(1)} s${k === 'denoise' ? ` (${(v / steps).toFixed(2)} s/step)` : ''}`);
  return `time ${parts.join(', ')}`;
}

/** Write a world run's outputs and print its summary. */
export async function finishWorld(r: WorldResult, f: Flags<typeof WORLD_FLAGS>, ctx: CommandContext, extra: Record<string, unknown>): Promise<void> {
  await writeOutputs(r.video, r.latents, f.out, f['latents-out'], settingsMetadata(r.family, r.settings), r.embeddings, f['embeddings-out']);
  const s = r.settings;
  if (f.json) {
    const timings = Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [`${k}_s`, v]));
    ctx.out(JSON.stringify({
      ...extra, family: r.family, ...s, latent_shape: r.latents.shape, out: f.out ?? null, latents_out: f['latents-out'] ?? null,
      embeddings_out: f['embeddings-out'] ?? null, ...timings,
    }));
    return;
  }
  const what = r.video ? `${r.video.frames} frames ${r.video.width}x${r.video.height} @ ${s.fps} fps -> ${f.out}` : `latent [${r.latents.shape.join(', ')}]`;
  const also = [f['latents-out'] !== undefined ? `latents -> ${f['latents-out']}` : '', f['embeddings-out'] !== undefined ? `embeddings -> ${f['embeddings-out']}` : ''].filter(Boolean);
  ctx.out(`${what}${also.length ? ` (${also.join(', ')})` : ''}`);
  ctx.out(timingLine(r.timings, s.steps));
}

export const command = defineCommand({
  name: 'text2world',
  summary: 'generate a clip from a prompt with a Cosmos world model folder',
  description:
    'Generates a clip from a text prompt: the folder\'s text encoder (T5, or Cosmos-Reason1 for Predict2.5) or precomputed\n' +
    'embeddings, seeded Gaussian noise, the model\'s sampler (Cosmos-1.0 EDM, Predict2 flow Euler, Predict2.5 flow UniPC),\n' +
    'then the VAE decode (Cosmos tokenizer, or the Wan2.1 VAE for Predict2 / 2.5).',
  flags: WORLD_FLAGS,
  check(f) {
    if (!f.plan) checkGenerationFlags(f, f.out);
  },
  async run(f, _positionals, ctx) {
    if (f.plan) return planWorldCommand('text2world', f, ctx);
    const { info, backend, guardrails } = await openForCommand(f, ctx);
    const bars = commandProgress(ctx);
    try {
      const r = await text2world({ ...worldOptions(f, info, ctx), backend, guardrails, onProgress: bars.onProgress });
      bars.finish();
      await finishWorld(r, f, ctx, { command: 'text2world', model: f.model, backend: backend.name });
    } finally {
      bars.finish();
    }
  },
});
