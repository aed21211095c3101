// `cosmos-ts transfer`: a JSON spec (base checkpoint, tokenizer, controls with their videos, weights
// and ControlNet folders) + a prompt or prompt embeddings -> a generated clip that follows the
// controls (Cosmos Transfer2.5 with multi-control).
import { writeVideo } from '../io/open-video.js';
import { createProgress } from './progress.js';
import { writeSafetensors } from '../io/safetensors.js';
import { ControlNetConfigError, ControlNetInputError } from '../models/controlnet/controlnet.js';
import { MultiControlError } from '../models/controlnet/multi.js';
import { ControlSpecError, readTransferSpec } from '../models/controlnet/spec.js';
import { DiTConfigError, DiTInputError } from '../models/dit/config.js';
import { transfer } from '../pipelines/transfer.js';
import { PipelineFilesError, PipelineInputError } from '../pipelines/text2world.js';
import { isUserError, parseCommandArgs, selectBackend, UsageError } from './tokenizer-common.js';

export const TRANSFER_USAGE = `usage: cosmos-ts transfer --spec <spec.json> [--prompt "..." | --embeddings <file>] [--out <out.y4m | folder>]
                         [--negative-prompt "..."] [--seed N] [--steps N] [--guidance G] [--frames N]
                         [--normalize-weights] [--latents-out <file>] [--backend cpu|webgpu] [--json]

Generates a clip that follows one or more control videos (Cosmos Transfer2.5): every ControlNet
sees the noisy latent, its residuals are weighted (a scalar, or a weight map) and summed into the
base transformer; flow-matching UniPC sampling with one progress line per step, then the VAE decode.

The spec (JSON; relative paths are relative to it):
  {
    "base_checkpoint": "transfer/transformer",   base DiT folder (config.json + safetensors)
    "tokenizer": "transfer/vae",                 VAE: Cosmos-Tokenizer CV folder or diffusers AutoencoderKLCosmos
    "embeddings": "prompt.safetensors",          prompt_embeds (+ negative_prompt_embeds), or "prompt" with "text_encoder" (T5)
    "seed": 0, "num_steps": 35, "guidance": 3, "num_frames": 93, "fps": 16, "output": "out.y4m",
    "input_video_path": "in.y4m", "num_conditional_frames": 1,     optional conditioning frames
    "weight_over_cap": "error" | "normalize",    weights summing past 1 somewhere
    "controls": {
      "depth": { "input_control": "depth.y4m", "control_weight": 0.4, "ckpt_path": "controlnet_depth" },
      "edge":  { "input_control": "edge.y4m", "control_weight": "edge_map.safetensors", "ckpt_path": "controlnet_edge" }
    }
  }
  control_weight: a number >= 0 (default 0.5) or a weight map: a .safetensors with one [H, W] / [T, H, W]
  tensor, or a grayscale PNG; it is resized to the latent token grid.

  --spec          the spec file
  --prompt        the text prompt (needs a T5 "text_encoder" in the spec; Transfer2.5 uses embeddings)
  --embeddings    safetensors with prompt_embeds [1, S, D] (+ negative_prompt_embeds for guidance > 1)
  --negative-prompt, --seed, --steps, --guidance, --frames   override the spec's values
  --normalize-weights   divide the weights by their sum where it passes 1 (instead of refusing)
  --out           a .y4m file, or else a folder of PNG frames (default: the spec's "output")
  --latents-out   also write the final latents (sampler space) to this .safetensors file
  --backend       cpu or webgpu (default webgpu; falls back to cpu when there is no adapter)
  --json          print a JSON summary on stdout`;

function intArg(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** Errors about the user's files or arguments: one line, exit status 1. */
export function isTransferUserError(e: unknown): e is Error {
  return isUserError(e) || e instanceof ControlSpecError || e instanceof MultiControlError || e instanceof ControlNetConfigError ||
    e instanceof ControlNetInputError || e instanceof PipelineInputError || e instanceof PipelineFilesError || e instanceof DiTInputError ||
    e instanceof DiTConfigError;
}

export async function transferCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(TRANSFER_USAGE);
    return 0;
  }
  const v = parseCommandArgs(args, {
    spec: { type: 'string' },
    prompt: { type: 'string' },
    'negative-prompt': { type: 'string' },
    embeddings: { type: 'string' },
    seed: { type: 'string' },
    steps: { type: 'string' },
    guidance: { type: 'string' },
    frames: { type: 'string' },
    'normalize-weights': { type: 'boolean' },
    out: { type: 'string' },
    'latents-out': { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean' },
  }, TRANSFER_USAGE);
  if (!v) return 2;
  if (v.spec === undefined) {
    console.error('error: missing --spec');
    console.error(TRANSFER_USAGE);
    return 2;
  }
  try {
    if (v.prompt !== undefined && v.embeddings !== undefined) throw new UsageError('give --prompt or --embeddings, not both');
    const guidance = v.guidance === undefined ? undefined : Number(v.guidance);
    if (guidance !== undefined && (!Number.isFinite(guidance) || guidance < 0 || v.guidance!.trim() === '')) {
      throw new UsageError(`--guidance must be a number >= 0, got ${JSON.stringify(v.guidance)}`);
    }
    const seed = v.seed === undefined ? undefined : /^-?\d+$/.test(v.seed) ? Number(v.seed) : v.seed;
    const steps = intArg(v.steps, 'steps', 1);
    const numFrames = intArg(v.frames, 'frames', 1);
    let spec = readTransferSpec(v.spec);
    if (v['normalize-weights']) spec = { ...spec, weightOverCap: 'normalize' };
    const out = v.out ?? spec.output ?? undefined;
    if (out === undefined && v['latents-out'] === undefined) throw new UsageError('no output: pass --out (or set "output" in the spec) or --latents-out');

    const backend = await selectBackend(v.backend);
    console.error(`transfer ${v.spec}: ${spec.controls.map((c) => `${c.name} (${typeof c.weight === 'number' ? c.weight : 'map'})`).join(' + ')} on ${backend.name} (${backend.adapter})`);
    let bar: ReturnType<typeof createProgress> | null = null;
    const r = await transfer(spec, backend, {
      prompt: v.prompt, negativePrompt: v['negative-prompt'], embeddings: v.embeddings, seed, steps, guidance, numFrames,
      onPhase: (m) => console.error(m),
      onDenoiseStart: (n) => { bar = createProgress({ total: n, label: 'denoise', unit: 'steps' }); },
      onStep: (s) => {
        bar?.update(s.step + 1);
        if (s.step + 1 === s.steps) bar?.done();
      },
    });
    if (out !== undefined) await writeVideo(out, r.video, { fps: r.video.fps });
    if (v['latents-out'] !== undefined) {
      await writeSafetensors(v['latents-out'], { latents: { dtype: 'f32', shape: r.latents.shape, raw: r.latents.data } }, {
        format: 'cosmos-ts.latents.v1', family: 'transfer2.5', seed: String(r.seed), steps: String(r.steps), guidance: String(r.guidance),
        controls: JSON.stringify(r.controls),
      });
    }
    const t = r.timings;
    if (v.json) {
      console.log(JSON.stringify({
        command: 'transfer', spec: v.spec, backend: backend.name, controls: r.controls, max_weight_sum: r.maxWeightSum, seed: r.seed,
        steps: r.steps, guidance: r.guidance, frames: r.video.frames, height: r.video.height, width: r.video.width, fps: r.fps,
        latent_shape: r.latents.shape, out: out ?? null, latents_out: v['latents-out'] ?? null,
        load_s: t.load, text_s: t.text, vae_encode_s: t.vaeEncode, denoise_s: t.denoise, decode_s: t.decode,
      }));
    } else {
      console.log(`${r.video.frames} frames ${r.video.width}x${r.video.height} @ ${r.fps} fps${out !== undefined ? ` -> ${out}` : ''}${v['latents-out'] !== undefined ? ` (latents -> ${v['latents-out']})` : ''}`);
      console.log(`time load ${t.load.toFixed(1)} s, vae encode ${t.vaeEncode.toFixed(1)} s, denoise ${t.denoise.toFixed(1)} s (${(t.denoise / r.steps).toFixed(2)} s/step), decode ${t.decode.toFixed(1)} s`);
    }
    return 0;
  } catch (e) {
    if (isTransferUserError(e)) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
