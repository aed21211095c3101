// `cosmos-ts transfer`: a JSON spec (base checkpoint, tokenizer, controls with their videos, weights
// and ControlNet folders) + a prompt or prompt embeddings -> a generated clip that follows the
// controls (Cosmos Transfer2.5 with multi-control).
import { mkdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type VideoSink, createVideoSink } from '../io/open-video.js';
import { DEFAULT_FPS, getFrame } from '../io/video.js';
import { BLUR_PRESETS } from '../models/controlnet/blur-map.js';
import { EDGE_PRESETS } from '../models/controlnet/edge-map.js';
import { VIDEO_RES_SIZE_INFO, resolutionProblem } from '../models/controlnet/resolution.js';
import { notComputable, readTransferSpec, type TransferSpec } from '../models/controlnet/spec.js';
import type { ControlFramesCallback } from '../pipelines/world/control-source.js';
import { planTransfer } from '../pipelines/plan/transfer.js';
import { transfer } from '../pipelines/transfer.js';
import { PLAN_FLAG, planTarget, printPlan } from './plan.js';
import { checkPaths, type OutputToCheck, type PathToCheck } from './preflight.js';
import { probeControlInputs } from '../pipelines/world/controls.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';
import { printWarnings } from './warnings.js';
import { GUARDRAILS_FLAG, commandGuardrails } from './guardrail-flags.js';
import { BACKEND_FLAG, UsageError, commandBackend, commandProgress, defineCommand } from './command.js';
import { WORLD_FLAGS, checkGenerationFlags, seedOf, settingsMetadata, timingLine, writeOutputs } from './text2world.js';

const DEPTH_CACHE_HELP = '$COSMOS_CACHE_DIR/depth_models, else $HF_HOME/cosmos_depth_models, else ~/.cache/cosmos_transfer2/depth_models; video_depth_anything_vits/video_depth_anything_vits.pth there';

const SPEC_HELP = `The spec (JSON; relative paths are relative to it):
  {
    "model": "Cosmos-Transfer2.5-2B",            a diffusers folder: default transformer/, vae/, text_encoder/, tokenizer/
    "base_checkpoint": "transfer/transformer",   base DiT folder (config.json + safetensors)
    "tokenizer": "transfer/vae",                 VAE: AutoencoderKLWan, Cosmos-Tokenizer CV or AutoencoderKLCosmos
    "prompt": "...",                             encoded by "text_encoder" (Cosmos-Reason1 or T5), or
    "embeddings": "prompt.safetensors",          prompt_embeds (+ negative_prompt_embeds)
    "seed": 0, "num_steps": 35, "guidance": 3, "num_frames": 93, "fps": 16, "output": "out.y4m",
    "input_video_path": "in.y4m", "num_conditional_frames": 1,     optional conditioning frames
    "weight_over_cap": "error" | "normalize",    weights summing past 1 somewhere
    "video_path": "clip.y4m",                    a raw clip: edge / vis controls without input_control are computed from it
    "resolution": "720", "num_video_frames_per_chunk": 93, "chunk_overlap": 1,
    "preset_edge_threshold": "medium", "preset_blur_strength": "medium",
    "controls": {
      "depth": { "input_control": "depth.y4m", "control_weight": 0.4, "ckpt_path": "controlnet_depth" },
      "edge":  { "input_control": "edge.y4m", "control_weight": "edge_map.safetensors", "ckpt_path": "controlnet_edge" }
    }
  }
  control_weight: a number >= 0 (default 0.5) or a weight map: a .safetensors with one [H, W] / [T, H, W]
  tensor, or a grayscale PNG; it is resized to the latent token grid.

From a raw clip (--input, or "video_path"), as upstream Transfer2.5: the clip is resized to the model
resolution (INTER_AREA), ready-made control videos too (edge, depth: INTER_LINEAR; vis: INTER_AREA;
seg: INTER_NEAREST); edge (Canny) and vis (blur) are computed from it, bit-exact with OpenCV / torch,
depth by Video-Depth-Anything (--depth-model) over the whole clip at its own size;
the clip is generated in chunks of 93 frames, each after the first conditioned on the last frame of
the one before, a short chunk padded by reflection, and the output has the clip's length.
seg cannot be computed (it needs GroundingDINO + SAM2): give its video.`;

export const command = defineCommand({
  name: 'transfer',
  summary: 'generate a clip that follows control videos (Transfer2.5 ControlNets, multi-control spec)',
  description:
    'Generates a clip that follows one or more control videos (Cosmos Transfer2.5): every ControlNet sees the\n' +
    'noisy latent, its residuals are weighted (a scalar, or a weight map) and summed into the base transformer;\n' +
    `flow-matching UniPC sampling, then the VAE decode.\n\n${SPEC_HELP}`,
  flags: {
    spec: { type: 'string', required: true, path: 'input', placeholder: '<spec.json>', help: 'the spec file' },
    prompt: { type: 'string', placeholder: '"..."', help: 'the text prompt (encoded by the spec\'s text encoder: "text_encoder", or the one in "model")' },
    'negative-prompt': { type: 'string', placeholder: '"..."', help: "overrides the spec's" },
    embeddings: { type: 'string', path: 'input', placeholder: '<file>', conflicts: ['prompt'], help: 'safetensors with prompt_embeds [1, S, D] (+ negative_prompt_embeds for guidance > 1)' },
    'embeddings-out': WORLD_FLAGS['embeddings-out'],
    seed: { ...WORLD_FLAGS.seed, help: "noise seed (overrides the spec's)" },
    steps: { type: 'integer', min: 1, help: "denoising steps (overrides the spec's)" },
    guidance: { type: 'number', min: 0, help: "classifier-free guidance scale (overrides the spec's)" },
    frames: { type: 'integer', min: 1, help: 'pixel frames used from the control videos (overrides the spec\'s)' },
    'normalize-weights': { type: 'boolean', help: 'divide the weights by their sum where it passes 1 (instead of refusing)' },
    out: { type: 'string', path: 'output', placeholder: '<out.y4m | out.png | folder>', help: 'a .y4m file, a .png (one frame), or else a folder of PNG frames (default: the spec\'s "output")' },
    'latents-out': { type: 'string', path: 'output', placeholder: '<file>', help: 'also write the final latents (sampler space) to this .safetensors file' },
    backend: BACKEND_FLAG,
    json: WORLD_FLAGS.json,
    plan: { ...PLAN_FLAG, help: `${PLAN_FLAG.help}; control videos that are not there are planned at 93 frames of 704x1280` },
    input: { type: 'string', path: 'input', placeholder: '<clip>', help: "a raw clip (.y4m, PNG frames folder, .png) to transfer (over the spec's video_path)" },
    control: {
      type: 'string', multiple: true, placeholder: 'KIND[=PRESET][:WEIGHT]',
      help: `compute a control from the --input clip: edge (presets ${Object.keys(EDGE_PRESETS).join(', ')}), vis (${BLUR_PRESETS.join(', ')}) or depth (no preset; needs --depth-model); default preset medium; WEIGHT over the spec's control_weight; its ControlNet is the spec's controls.KIND.ckpt_path`,
    },
    'depth-model': {
      type: 'string', path: 'input', placeholder: '<video_depth_anything_vits.pth>',
      help: `the Video-Depth-Anything weights a computed depth control runs (a released .pth, or a folder); default: where upstream caches them (${DEPTH_CACHE_HELP})`,
    },
    'depth-input-size': { type: 'integer', min: 14, placeholder: 'N', help: "the depth network's nominal input size (default 518, upstream's; smaller is faster and coarser)" },
    resolution: { type: 'string', placeholder: '720 | 480 | WxH', problem: resolutionProblem, help: `the model resolution the --input clip is resized to (default 720: 1280x704 at 16:9; keys ${Object.keys(VIDEO_RES_SIZE_INFO).join(', ')})` },
    'chunk-frames': { type: 'integer', min: 1, help: 'frames per generated chunk (default 93 with --input; 1 + k * the VAE\'s temporal compression)' },
    'chunk-overlap': { type: 'integer', min: 0, help: 'frames each chunk takes from the one before (default 1)' },
    'save-controls': { type: 'string', path: 'output-dir', placeholder: '<dir>', help: 'write each computed control map as a folder of PNG frames <dir>/<KIND>/ (the exact uint8 maps the model reads)' },
    guardrails: GUARDRAILS_FLAG,
    ...LIMIT_FLAGS,
  },
  async run(f, _positionals, ctx) {
    // a plan needs none of the spec's inputs to exist (their sizes are read where they are)
    let spec = await readTransferSpec(f.spec, { checkFiles: !f.plan });
    spec = applyControlFlags(spec, f.control, f.input);
    const raw = f.input ?? spec.videoPath ?? undefined;
    if (raw === undefined && f.resolution !== undefined) throw new UsageError('--resolution: sizes the raw clip, and there is none: give --input (or the spec\'s video_path)');
    const computed = raw === undefined ? [] : spec.controls.filter((c) => c.inputControl === null);
    const depthModel = computed.some((c) => c.name === 'depth') ? (f['depth-model'] ?? (await cachedDepthModel(ctx))) : undefined;
    if (f['depth-input-size'] !== undefined && depthModel === undefined) throw new UsageError('--depth-input-size: sizes the depth network, and no depth control is computed in this run (give --input with --control depth)');
    if (f['depth-model'] !== undefined && depthModel === undefined) throw new UsageError('--depth-model: computes a depth control, and none is computed in this run (give --input with --control depth)');
    if (f['save-controls'] !== undefined && computed.length === 0) {
      throw new UsageError('--save-controls: no control is computed in this run (give --input with --control edge, vis or depth)');
    }
    const chunking = { input: f.input, resolution: f.resolution, chunkFrames: f['chunk-frames'], chunkOverlap: f['chunk-overlap'] };
    if (f.plan) {
      const p = await planTransfer({
        spec, target: await planTarget(f.backend, ctx), prompt: f.prompt, negativePrompt: f['negative-prompt'], embeddings: f.embeddings,
        seed: seedOf(f.seed), steps: f.steps, guidance: f.guidance, frames: f.frames, ...chunking, depthModel, depthInputSize: f['depth-input-size'],
      });
      const s = p.settings;
      const chunks = p.chunks.length > 1 ? ` in ${p.chunks.length} chunks` : '';
      const what = `${spec.controls.map((c) => c.name).join(' + ')}, ${s.frames} frames ${s.width}x${s.height}${chunks}, latent [${p.latentShape.join(', ')}], ${s.steps} steps`;
      printPlan(ctx, f.json, { command: 'transfer', spec: f.spec, controls: p.controls, ...s, chunks: p.chunks, latent_shape: p.latentShape }, what, p);
      return;
    }
    if (f['normalize-weights']) spec = { ...spec, weightOverCap: 'normalize' };
    const out = f.out ?? spec.output ?? undefined;
    // a flag overrides the spec: --prompt its "embeddings" too, --embeddings its "prompt"
    if (f.prompt === undefined && f.embeddings === undefined && spec.prompt != null && spec.embeddings != null) {
      throw new UsageError(`${f.spec}: "prompt" and "embeddings" contradict each other; give one (or --prompt / --embeddings)`);
    }
    checkGenerationFlags({
      ...f, prompt: f.prompt ?? (f.embeddings === undefined ? (spec.prompt ?? undefined) : undefined),
      embeddings: f.embeddings ?? (f.prompt === undefined ? (spec.embeddings ?? undefined) : undefined),
    }, out);
    const saveDir = f['save-controls'];
    // the map folders are checked where the folder is there already (else preflight checked it can be made)
    const folders = saveDir !== undefined && (await stat(saveDir).catch(() => null))?.isDirectory() ? computed.map((c) => join(saveDir, c.name)) : [];
    await checkPaths(transferPaths(spec, { ...f, depthModel }, out, folders));
    // the control videos', the clip's and the weight maps' headers before a backend or a model
    const limits = limitsOf(f);
    await probeControlInputs(spec.controls, {}, [raw, spec.inputVideo], undefined, limits, raw === undefined);
    const backend = await commandBackend(f.backend, ctx);
    ctx.err(`transfer ${f.spec}: ${spec.controls.map((c) => `${c.name} (${typeof c.weight === 'number' ? c.weight : 'map'}${raw !== undefined && c.inputControl === null ? ', computed' : ''})`).join(' + ')} on ${backend.name} (${backend.adapter})`);
    const guardrails = await commandGuardrails(f.guardrails, backend, ctx);
    const bars = commandProgress(ctx);
    const saved = saveDir === undefined ? null : controlSinks(saveDir);
    try {
      const r = await transfer({
        spec, backend, prompt: f.prompt, negativePrompt: f['negative-prompt'], embeddings: f.embeddings, seed: seedOf(f.seed), steps: f.steps,
        guidance: f.guidance, frames: f.frames, onProgress: bars.onProgress, signal: ctx.signal, returnEmbeddings: f['embeddings-out'] !== undefined,
        limits, guardrails, ...chunking, onControlFrames: saved?.onFrames, depthModel, depthInputSize: f['depth-input-size'],
        // a prompt from the spec is named as the spec's field
        onWarning: printWarnings(ctx, {
          ...(f.prompt === undefined ? { prompt: `${f.spec}: prompt` } : {}),
          ...(f['negative-prompt'] === undefined ? { negativePrompt: `${f.spec}: negative_prompt` } : {}),
        }),
      });
      bars.finish();
      const s = r.settings;
      await writeOutputs(r.video, r.latents, out, f['latents-out'], { ...settingsMetadata('transfer2.5', s), controls: JSON.stringify(r.controls) }, r.embeddings, f['embeddings-out']);
      const savedPaths = saved ? await saved.close() : [];
      if (f.json) {
        const timings = Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [`${k}_s`, v]));
        ctx.out(JSON.stringify({
          command: 'transfer', spec: f.spec, backend: backend.name, input: raw ?? null, controls: r.controls, chunks: r.chunks, max_weight_sum: r.maxWeightSum, ...s,
          latent_shape: r.latents.shape, out: out ?? null, latents_out: f['latents-out'] ?? null, embeddings_out: f['embeddings-out'] ?? null,
          saved_controls: savedPaths, ...timings,
        }));
        return;
      }
      const also = [
        f['latents-out'] !== undefined ? `latents -> ${f['latents-out']}` : '', f['embeddings-out'] !== undefined ? `embeddings -> ${f['embeddings-out']}` : '',
        ...savedPaths.map((p) => `control map -> ${p}`),
      ].filter(Boolean);
      const chunks = r.chunks.length > 1 ? ` in ${r.chunks.length} chunks` : '';
      ctx.out(`${r.video.frames} frames ${r.video.width}x${r.video.height} @ ${s.fps} fps${chunks}${out !== undefined ? ` -> ${out}` : ''}${also.length ? ` (${also.join(', ')})` : ''}`);
      ctx.out(timingLine(r.timings, s.steps));
    } catch (e) {
      await saved?.abort();
      throw e;
    } finally {
      bars.finish();
    }
  },
});

/**
 * The --control flags applied to the spec: each names a control computed from the clip (its
 * video dropped), its preset and weight; its ControlNet stays the spec's.
 */
export function applyControlFlags(spec: TransferSpec, flags: readonly string[], input: string | undefined): TransferSpec {
  if (flags.length === 0) return spec;
  if (input === undefined && spec.videoPath === null) throw new UsageError('--control: computes a control from a raw clip, and there is none: give --input (or the spec\'s video_path)');
  let out: TransferSpec = { ...spec, controls: [...spec.controls] };
  const seen = new Set<string>();
  for (const v of flags) {
    const m = /^([A-Za-z0-9_-]+)(?:=([A-Za-z_]+))?(?::(.+))?$/.exec(v.trim());
    if (!m) throw new UsageError(`--control ${v}: expected KIND[=PRESET][:WEIGHT], e.g. edge=high:0.5`);
    const [, name, preset, w] = m;
    const why = notComputable(name);
    if (why) throw new UsageError(`--control ${name}: ${why}`);
    if (seen.has(name)) throw new UsageError(`--control ${name}: given twice`);
    seen.add(name);
    if (name === 'depth' && preset !== undefined) throw new UsageError(`--control ${v}: depth takes no preset (the map is Video-Depth-Anything's, normalised over the clip); give depth or depth:WEIGHT`);
    const presets: readonly string[] = name === 'edge' ? Object.keys(EDGE_PRESETS) : BLUR_PRESETS;
    if (preset !== undefined && !presets.includes(preset)) throw new UsageError(`--control ${v}: unknown ${name} preset '${preset}' (expected one of ${presets.join(', ')})`);
    let weight: number | undefined;
    if (w !== undefined) {
      weight = Number(w);
      if (w.trim() === '' || !Number.isFinite(weight) || weight < 0) throw new UsageError(`--control ${v}: the weight must be a number >= 0, got '${w}'`);
    }
    const i = out.controls.findIndex((c) => c.name === name);
    if (i < 0) throw new UsageError(`--control ${name}: the spec has no "${name}" control to name its ControlNet: add controls.${name} with "ckpt_path"`);
    out.controls[i] = { ...out.controls[i], inputControl: null, ...(weight !== undefined ? { weight } : {}) };
    if (preset !== undefined) out = name === 'edge' ? { ...out, edgePreset: preset } : { ...out, blurPreset: preset };
  }
  return out;
}

/** Upstream's cache folders of the depth weights, in its order (cosmos_transfer2 model_utils: COSMOS_CACHE_DIR, HF_HOME, ~/.cache). */
function depthCacheDirs(): string[] {
  const env = process.env;
  const dirs: string[] = [];
  if (env.COSMOS_CACHE_DIR) dirs.push(join(env.COSMOS_CACHE_DIR, 'depth_models'));
  else if (env.HF_HOME) dirs.push(join(env.HF_HOME, 'cosmos_depth_models'));
  else dirs.push(join(homedir(), '.cache', 'cosmos_transfer2', 'depth_models'));
  return dirs.map((d) => join(d, 'video_depth_anything_vits', 'video_depth_anything_vits.pth'));
}

/** The depth weights where upstream keeps them, said on stderr; a UsageError naming --depth-model when absent. */
async function cachedDepthModel(ctx: { err(line: string): void }): Promise<string> {
  for (const p of depthCacheDirs()) {
    if ((await stat(p).catch(() => null))?.isFile()) {
      ctx.err(`note: the depth control runs ${p} (upstream's cache; --depth-model overrides it)`);
      return p;
    }
  }
  throw new UsageError(`--depth-model: a depth control is computed from the clip and needs the Video-Depth-Anything weights (video_depth_anything_vits.pth, depth-anything/Video-Depth-Anything-Small); none at ${depthCacheDirs().join(', ')}`);
}

/** PNG-frame folders <dir>/<name>/ filled as the computed maps come, committed at the end (aborted on failure). */
function controlSinks(dir: string): { onFrames: ControlFramesCallback; close(): Promise<string[]>; abort(): Promise<void> } {
  const sinks = new Map<string, VideoSink>();
  return {
    async onFrames(name, frames) {
      let sink = sinks.get(name);
      if (!sink) {
        await mkdir(dir, { recursive: true });
        sink = await createVideoSink(join(dir, name), { width: frames.width, height: frames.height, fps: frames.fps ?? DEFAULT_FPS });
        sinks.set(name, sink);
      }
      for (let t = 0; t < frames.frames; t++) await sink.writeFrame(getFrame(frames, t));
    },
    async close() {
      for (const s of sinks.values()) await s.close();
      return [...sinks.values()].map((s) => s.path);
    },
    async abort() {
      for (const s of sinks.values()) await s.abort().catch(() => {});
    },
  };
}

/** The spec's files as inputs, and the outputs (the spec's "output" where --out is not given), for checkPaths. */
function transferPaths(
  spec: TransferSpec,
  f: { spec: string; out?: string; 'latents-out'?: string; 'embeddings-out'?: string; embeddings?: string; prompt?: string; input?: string; 'depth-model'?: string; depthModel?: string },
  out: string | undefined, controlFolders: readonly string[],
): { inputs: PathToCheck[]; outputs: OutputToCheck[] } {
  const field = (name: string) => `${f.spec} ${JSON.stringify(name)}`;
  const inputs: PathToCheck[] = [];
  inputs.push({ path: spec.baseCheckpoint, what: field('base_checkpoint') }, { path: spec.tokenizer, what: field('tokenizer') });
  if (spec.textEncoder) inputs.push({ path: spec.textEncoder, what: field('text_encoder') });
  for (const c of spec.controls) {
    inputs.push({ path: c.checkpoint, what: field(`controls.${c.name}.ckpt_path`) });
    if (c.inputControl !== null) inputs.push({ path: c.inputControl, what: field(`controls.${c.name}.input_control`) });
    if (typeof c.weight !== 'number') inputs.push({ path: c.weight.path, what: field(`controls.${c.name}.control_weight`) });
  }
  if (spec.inputVideo) inputs.push({ path: spec.inputVideo, what: field('input_video_path') });
  if (f.input !== undefined) inputs.push({ path: f.input, what: '--input' });
  if (f.depthModel !== undefined) inputs.push({ path: f.depthModel, what: f['depth-model'] !== undefined ? '--depth-model' : 'the cached depth model' });
  else if (spec.videoPath) inputs.push({ path: spec.videoPath, what: field('video_path') });
  if (spec.embeddings && f.embeddings === undefined && f.prompt === undefined) inputs.push({ path: spec.embeddings, what: field('embeddings') });
  if (f.embeddings !== undefined) inputs.push({ path: f.embeddings, what: '--embeddings' });
  inputs.push({ path: f.spec, what: '--spec' });
  const outputs: OutputToCheck[] = [];
  if (out !== undefined) outputs.push({ path: out, what: f.out !== undefined ? '--out' : field('output'), kind: 'file-or-folder' });
  if (f['latents-out'] !== undefined) outputs.push({ path: f['latents-out'], what: '--latents-out', kind: 'file' });
  if (f['embeddings-out'] !== undefined) outputs.push({ path: f['embeddings-out'], what: '--embeddings-out', kind: 'file' });
  for (const p of controlFolders) outputs.push({ path: p, what: '--save-controls', kind: 'folder' });
  return { inputs, outputs };
}
