// `cosmos-ts text2world`: a prompt (or precomputed prompt embeddings) -> a generated clip, with a
// diffusers-style Cosmos model folder. Also what `video2world` shares: the option table, the
// per-step progress line, writing the clip / latents and the error reporting.
import { writeVideo } from '../io/open-video.js';
import { formatDuration } from './progress.js';
import { writeSafetensors } from '../io/safetensors.js';
import { SentencePieceModelError } from '../text/errors.js';
import { DiTConfigError, DiTInputError } from '../models/dit/config.js';
import { T5ConfigError } from '../models/t5/encoder.js';
import {
  PipelineFilesError, PipelineInputError, type StepReport, type WorldOptions, type WorldResult, describeWorldModel, inspectWorldModel, text2world,
} from '../pipelines/text2world.js';
import { isUserError, parseCommandArgs, selectBackend, UsageError } from './tokenizer-common.js';

export const WORLD_OPTIONS_HELP = `  --model        diffusers-style model folder (transformer/, vae/, scheduler/, text_encoder/ + tokenizer/)
  --prompt       the text prompt (encoded with the folder's T5 encoder)
  --negative-prompt  default: the Cosmos pipelines' negative prompt
  --embeddings   safetensors file with prompt_embeds [1, S, D] (+ negative_prompt_embeds for guidance > 1)
                 instead of the text encoder; required for Predict2.5 (its text encoder is the Reason VLM)
  --seed         noise seed (default 0)
  --steps        denoising steps (default: the pipeline's, 36 / Predict2 35)
  --guidance     classifier-free guidance scale (default 7; <= 1 turns the negative pass off)
  --frames       output frames, 1 + k * the VAE's temporal compression (default 121 / Predict2.x 93)
  --height, --width  output size, multiples of 16 (default 704 x 1280)
  --fps          frame rate: RoPE fps of Cosmos-1.0 / Predict2 and the written clip's (default 30 / 16)
  --out          a .y4m file, or else a folder of PNG frames
  --latents-out  also write the final latents (sampler space) to this .safetensors file; with no --out,
                 the VAE is not run (e.g. for folders whose VAE cosmos-ts does not implement)
  --backend      cpu or webgpu (default webgpu; falls back to cpu when there is no adapter)
  --json         print a JSON summary on stdout`;

export const TEXT2WORLD_USAGE = `usage: cosmos-ts text2world --model <folder> (--prompt "..." | --embeddings <file>) --out <out.y4m | folder>
                           [--negative-prompt "..."] [--seed N] [--steps N] [--guidance G] [--frames N]
                           [--height H] [--width W] [--fps F] [--latents-out <file>] [--backend cpu|webgpu] [--json]

Generates a clip from a text prompt: T5 prompt embeddings, seeded Gaussian noise, the model's
sampler (Cosmos-1.0 EDM, Predict2 flow Euler, Predict2.5 flow UniPC; one progress line per step),
then the VAE decode.
${WORLD_OPTIONS_HELP}`;

export const WORLD_ARG_OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  'negative-prompt': { type: 'string' },
  embeddings: { type: 'string' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  guidance: { type: 'string' },
  frames: { type: 'string' },
  height: { type: 'string' },
  width: { type: 'string' },
  fps: { type: 'string' },
  out: { type: 'string' },
  'latents-out': { type: 'string' },
  backend: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type WorldArgValues = { [K in keyof typeof WORLD_ARG_OPTIONS]?: (typeof WORLD_ARG_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

function intArg(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function numArg(v: string | undefined, flag: string, min: number, strict = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || (strict && n === min)) {
    throw new UsageError(`--${flag} must be a number ${strict ? '>' : '>='} ${min}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** The pipeline options from the parsed flags (values checked; sizes are checked by the pipeline). */
export function worldOptions(v: WorldArgValues): WorldOptions {
  const seedText = v.seed;
  const seed = seedText === undefined ? undefined : /^-?\d+$/.test(seedText) ? Number(seedText) : seedText;
  return {
    prompt: v.prompt,
    negativePrompt: v['negative-prompt'],
    embeddings: v.embeddings,
    seed,
    steps: intArg(v.steps, 'steps', 1),
    guidance: numArg(v.guidance, 'guidance', 0),
    frames: intArg(v.frames, 'frames', 1),
    height: intArg(v.height, 'height', 1),
    width: intArg(v.width, 'width', 1),
    fps: numArg(v.fps, 'fps', 0, true),
    decode: v.out !== undefined,
  };
}

/** One line per denoising step on stderr (redrawn in place on a TTY). */
export function stepReporter(label = 'denoise', stream: NodeJS.WriteStream = process.stderr): (s: StepReport) => void {
  const tty = stream.isTTY === true;
  return (s) => {
    const done = s.step + 1;
    const per = s.elapsedSeconds / done;
    const tail = done < s.steps ? `ETA ${formatDuration(per * (s.steps - done))}` : `total ${formatDuration(s.elapsedSeconds)}`;
    const line = `${label} step ${done}/${s.steps}  sigma ${fmtSigma(s.sigma)}  ${s.stepSeconds.toFixed(2)} s/step  ${tail}`;
    stream.write(tty ? `\r${line}${done === s.steps ? '\n' : ''}` : `${line}\n`);
  };
}

function fmtSigma(s: number): string {
  return s >= 100 ? s.toFixed(1) : s >= 0.01 ? s.toFixed(4) : s.toExponential(3);
}

/** Errors about the user's files or arguments: one line, exit status 1. */
export function isWorldUserError(e: unknown): e is Error {
  return isUserError(e) || e instanceof PipelineInputError || e instanceof PipelineFilesError || e instanceof DiTInputError ||
    e instanceof DiTConfigError || e instanceof T5ConfigError || e instanceof SentencePieceModelError;
}

/** Write the clip and/or the latents, and print the summary. */
export async function writeWorldResult(r: WorldResult, v: WorldArgValues, extra: Record<string, unknown>): Promise<void> {
  if (v.out !== undefined && r.video) await writeVideo(v.out, r.video, { fps: r.video.fps });
  if (v['latents-out'] !== undefined) {
    await writeSafetensors(v['latents-out'], { latents: { dtype: 'f32', shape: r.latents.shape, raw: r.latents.data } }, {
      format: 'cosmos-ts.latents.v1', family: r.family, seed: String(r.seed), steps: String(r.steps), guidance: String(r.guidance),
      frames: String(r.plan.frames), height: String(r.plan.height), width: String(r.plan.width), fps: String(r.fps),
    });
  }
  const t = r.timings;
  if (v.json) {
    console.log(JSON.stringify({
      ...extra, family: r.family, seed: r.seed, steps: r.steps, guidance: r.guidance, frames: r.plan.frames, height: r.plan.height,
      width: r.plan.width, fps: r.fps, latent_shape: r.latents.shape, out: v.out ?? null, latents_out: v['latents-out'] ?? null,
      text_s: t.text, vae_encode_s: t.vaeEncode, denoise_s: t.denoise, decode_s: t.decode,
    }));
    return;
  }
  const what = r.video ? `${r.video.frames} frames ${r.video.width}x${r.video.height} @ ${r.fps} fps -> ${v.out}` : `latent [${r.latents.shape.join(', ')}]`;
  console.log(`${what}${v['latents-out'] !== undefined ? ` (latents -> ${v['latents-out']})` : ''}`);
  console.log(`time text ${t.text.toFixed(1)} s, ${t.vaeEncode ? `vae encode ${t.vaeEncode.toFixed(1)} s, ` : ''}denoise ${t.denoise.toFixed(1)} s (${(t.denoise / r.steps).toFixed(2)} s/step), decode ${t.decode.toFixed(1)} s`);
}

/** Parse, check the required flags; undefined after printing the problem (exit 2). */
export function parseWorldArgs(args: string[], extra: Record<string, { type: 'string' | 'boolean' }>, usage: string, required: string[]): (WorldArgValues & Record<string, string | boolean | undefined>) | undefined {
  const v = parseCommandArgs(args, { ...WORLD_ARG_OPTIONS, ...extra } as typeof WORLD_ARG_OPTIONS, usage) as (WorldArgValues & Record<string, string | boolean | undefined>) | undefined;
  if (!v) return undefined;
  const missing = required.filter((k) => v[k] === undefined);
  if (v.out === undefined && v['latents-out'] === undefined) missing.push('out');
  if (v.prompt === undefined && v.embeddings === undefined) missing.push('prompt (or --embeddings)');
  if (missing.length) {
    console.error(`error: missing ${missing.map((k) => `--${k}`).join(', ')}`);
    console.error(usage);
    return undefined;
  }
  return v;
}

export async function text2worldCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(TEXT2WORLD_USAGE);
    return 0;
  }
  const v = parseWorldArgs(args, {}, TEXT2WORLD_USAGE, ['model']);
  if (!v) return 2;
  try {
    const o = worldOptions(v);
    const info = inspectWorldModel(v.model!);
    const backend = await selectBackend(v.backend);
    console.error(`model ${v.model}: ${describeWorldModel(info)} on ${backend.name} (${backend.adapter})`);
    const r = await text2world(v.model!, backend, { ...o, onStep: stepReporter(), onPhase: (m) => console.error(m) });
    await writeWorldResult(r, v, { command: 'text2world', model: v.model, backend: backend.name });
    return 0;
  } catch (e) {
    if (isWorldUserError(e)) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
