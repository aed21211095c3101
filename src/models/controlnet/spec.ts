// A Transfer run described in one JSON file, in the spirit of cosmos-transfer1's --controlnet_specs:
// run arguments at the top level, one object per control (its name is the key).
//
//   {
//     "model": "Cosmos-Transfer2.5-2B",                 // a diffusers folder: the defaults below
//     "base_checkpoint": "Cosmos-Transfer2.5-2B/transformer",
//     "tokenizer": "Cosmos-Transfer2.5-2B/vae",
//     "embeddings": "prompt.safetensors",          // or "prompt": "...", needing a text encoder
//     "seed": 1, "num_steps": 35, "guidance": 3,
//     "controls": {
//       "depth": { "input_control": "depth.y4m", "control_weight": 0.4, "ckpt_path": "controlnet_depth" },
//       "edge":  { "input_control": "edge.y4m", "control_weight": "edge_weight.safetensors", "ckpt_path": "controlnet_edge" }
//     }
//   }
//
// As in Transfer 1, controls may also sit at the top level ("edge": {...}). Relative paths are
// relative to the spec file. Every problem is a ControlSpecError naming the field
// (e.g. `controls.edge.control_weight`).
//
// With a raw clip (`video_path`, upstream's name), an `edge` or `vis` control without
// `input_control` is computed from the clip (presets `preset_edge_threshold` /
// `preset_blur_strength`, as upstream's spec); `depth` and `seg` need models cosmos-ts does not run,
// so their videos must be given.
import { UserError } from '../../engine/errors.js';
import { type FileSystem, fileSystem, readText } from '../../io/files.js';
import { dirname, isAbsolute, join } from '../../io/path.js';
import { BLUR_PRESETS } from './blur-map.js';
import { EDGE_PRESETS } from './edge-map.js';
import { resolutionProblem } from './resolution.js';

export class ControlSpecError extends UserError {
  constructor(
    /** the field at fault, as a JSON path (`controls.edge.ckpt_path`), or '<file>' */
    readonly field: string,
    message: string,
  ) {
    super(field.startsWith('<') ? message : `${field}: ${message}`);
  }
}

export interface ControlSpec {
  /** the key naming the control (e.g. "depth", "edge") */
  name: string;
  /** the control video (.y4m, PNG frames folder or PNG), resolved; null: computed from the raw clip (edge, vis) */
  inputControl: string | null;
  /** a scalar weight, or a weight-map file (.safetensors with one [H, W] / [T, H, W] tensor, or a grayscale PNG) */
  weight: number | { path: string };
  /** the ControlNet folder (config.json + diffusion_pytorch_model*.safetensors), resolved */
  checkpoint: string;
}

export interface TransferSpec {
  /** the spec file, when read from one */
  file: string | null;
  /** base DiT folder (diffusers transformer/: config.json + weights) */
  baseCheckpoint: string;
  /** the VAE / tokenizer folder (AutoencoderKLWan, a Cosmos-Tokenizer CV folder or a diffusers AutoencoderKLCosmos) */
  tokenizer: string;
  /** the diffusers folder named by "model", whose parts are the defaults of the paths here */
  model: string | null;
  /** the prompt encoder's tokenizer folder (tokenizer.json + chat template) of a Reason1 text encoder */
  promptTokenizer: string | null;
  prompt: string | null;
  negativePrompt: string | null;
  /** safetensors with prompt_embeds (and negative_prompt_embeds for guidance > 1) */
  embeddings: string | null;
  /** the text encoder folder for `prompt`: Transfer2.5's Cosmos-Reason1 (Qwen2.5-VL) or a T5 */
  textEncoder: string | null;
  seed: number;
  numSteps: number;
  guidance: number;
  /** optional video whose first latent frame(s) condition the generation */
  inputVideo: string | null;
  /** latent frames taken from inputVideo (default 1 with an input video, else 0) */
  numConditionalFrames: number;
  /** pixel frames used from the control videos (default: all, trimmed to 1 + k * temporal compression) */
  numFrames: number | null;
  /** output frame rate (default: the control video's) */
  fps: number | null;
  /** output: a .y4m file, else a folder of PNG frames (the CLI may override) */
  output: string | null;
  /** weights summing past 1 somewhere: refuse (default) or normalise as upstream */
  weightOverCap: 'error' | 'normalize';
  /** the raw clip the computed controls come from (upstream's `video_path`) */
  videoPath: string | null;
  /** the model resolution of a raw clip: an upstream key ("720", "480", ...) or "WxH"; null: 720 */
  resolution: string | null;
  /** frames per generated chunk (upstream's num_video_frames_per_chunk); null: 93 with a raw clip, else the whole clip in one */
  chunkFrames: number | null;
  /** pixel frames each chunk after the first takes from the one before (upstream generate_img2world's num_conditional_frames) */
  chunkOverlap: number | null;
  /** the edge preset of a computed edge control (upstream's preset_edge_threshold) */
  edgePreset: string | null;
  /** the blur strength of a computed vis control (upstream's preset_blur_strength) */
  blurPreset: string | null;
  controls: ControlSpec[];
}

/** The controls computed from a raw clip, and those that need a model cosmos-ts does not run. */
export const COMPUTED_CONTROLS = ['edge', 'vis', 'depth'] as const;
export type ComputedControlName = (typeof COMPUTED_CONTROLS)[number];
/** The controls upstream computes with a model, and that model. */
export const MODEL_CONTROLS: Readonly<Record<string, string>> = {
  depth: 'Video-Depth-Anything',
  seg: 'GroundingDINO + SAM2',
};

export function isComputedControl(name: string): name is ComputedControlName {
  return (COMPUTED_CONTROLS as readonly string[]).includes(name);
}

/** Why a control cannot be computed from the raw clip; null for edge, vis and depth. */
export function notComputable(name: string): string | null {
  if (isComputedControl(name)) return null;
  const model = Object.hasOwn(MODEL_CONTROLS, name) ? MODEL_CONTROLS[name] : null;
  if (model) return `computing the ${name} control from the clip needs ${model}, which cosmos-ts does not run; give the ${name} control video (controls.${name}.input_control)`;
  return `only ${COMPUTED_CONTROLS.join(', ')} are computed from the clip; give the "${name}" control video (controls.${name}.input_control)`;
}

/** cosmos-transfer1's default control_weight when a control gives none. */
export const DEFAULT_CONTROL_WEIGHT = 0.5;

const RUN_FIELDS = [
  'model', 'base_checkpoint', 'tokenizer', 'prompt', 'negative_prompt', 'embeddings', 'text_encoder', 'seed', 'num_steps',
  'guidance', 'input_video_path', 'num_conditional_frames', 'num_frames', 'fps', 'output', 'weight_over_cap', 'controls',
  'video_path', 'resolution', 'num_video_frames_per_chunk', 'chunk_overlap', 'preset_edge_threshold', 'preset_blur_strength',
] as const;
const CONTROL_FIELDS = ['input_control', 'control_weight', 'ckpt_path'] as const;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export interface ParseSpecOptions {
  /** check that every path exists (files / folders as expected); default true */
  checkFiles?: boolean;
  fs?: FileSystem;
}

/**
 * Validate a parsed spec. `baseDir` resolves relative paths (the spec file's folder).
 * Throws ControlSpecError naming the first field at fault.
 */
export async function parseTransferSpec(json: unknown, baseDir: string, opts: ParseSpecOptions = {}): Promise<TransferSpec> {
  if (!isObj(json)) throw new ControlSpecError('<root>', `spec: must be a JSON object; got ${Array.isArray(json) ? 'an array' : JSON.stringify(json)}`);
  const checkFiles = opts.checkFiles ?? true;
  const fs = opts.fs ?? fileSystem();
  const path = async (field: string, v: unknown, kind: 'file' | 'dir' | 'any'): Promise<string> => {
    if (typeof v !== 'string' || v.trim() === '') throw new ControlSpecError(field, `must be a non-empty path string, got ${JSON.stringify(v)}`);
    const p = resolvePath(v, baseDir);
    if (checkFiles) {
      const st = await fs.stat(p);
      if (!st) throw new ControlSpecError(field, `${p} does not exist`);
      if (kind === 'dir' && st.kind !== 'directory') throw new ControlSpecError(field, `${p} must be a folder (config.json + safetensors)`);
      if (kind === 'file' && st.kind !== 'file') throw new ControlSpecError(field, `${p} must be a file`);
    }
    return p;
  };
  const optPath = async (field: string, kind: 'file' | 'dir' | 'any') => (json[field] === undefined || json[field] === null ? null : path(field, json[field], kind));
  const optStr = (field: string): string | null => {
    const v = json[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw new ControlSpecError(field, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const int = (field: string, def: number | null, min: number): number | null => {
    const v = json[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ControlSpecError(field, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (field: string, def: number | null, ok: (x: number) => boolean, what: string): number | null => {
    const v = json[field];
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new ControlSpecError(field, `must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };

  // controls: the "controls" object and/or object-valued top-level keys (Transfer 1 style)
  const controlObjs: [string, string, unknown][] = [];
  if (json.controls !== undefined) {
    if (!isObj(json.controls)) throw new ControlSpecError('controls', `must be an object mapping control names to {input_control, control_weight, ckpt_path}, got ${JSON.stringify(json.controls)}`);
    for (const [k, v] of Object.entries(json.controls)) controlObjs.push([k, `controls.${k}`, v]);
  }
  for (const [k, v] of Object.entries(json)) {
    if ((RUN_FIELDS as readonly string[]).includes(k)) continue;
    if (isObj(v)) {
      if (controlObjs.some(([n]) => n === k)) throw new ControlSpecError(k, `control "${k}" is given twice (at the top level and under "controls")`);
      controlObjs.push([k, k, v]);
      continue;
    }
    throw new ControlSpecError(k, `unknown field (run fields: ${RUN_FIELDS.join(', ')}; a control is an object {${CONTROL_FIELDS.join(', ')}})`);
  }
  if (controlObjs.length === 0) throw new ControlSpecError('controls', 'no control given: add at least one {"input_control", "control_weight", "ckpt_path"} object');

  const controls: ControlSpec[] = [];
  for (const [name, field, v] of controlObjs) {
    if (name.trim() === '') throw new ControlSpecError(field, 'a control needs a non-empty name');
    if (!isObj(v)) throw new ControlSpecError(field, `must be an object {${CONTROL_FIELDS.join(', ')}}, got ${JSON.stringify(v)}`);
    for (const k of Object.keys(v)) {
      if (!(CONTROL_FIELDS as readonly string[]).includes(k)) throw new ControlSpecError(`${field}.${k}`, `unknown control field (expected ${CONTROL_FIELDS.join(', ')})`);
    }
    if (v.input_control === undefined || v.input_control === null) {
      // edge and vis come from the raw clip (video_path or the CLI's --input), checked when the run starts
      const why = notComputable(name);
      if (why) throw new ControlSpecError(`${field}.input_control`, `missing: ${why}`);
    }
    if (v.ckpt_path === undefined) throw new ControlSpecError(`${field}.ckpt_path`, 'missing: the ControlNet checkpoint folder is required');
    const w = v.control_weight;
    let weight: ControlSpec['weight'];
    if (w === undefined || w === null || (typeof w === 'string' && (w === '' || w.toLowerCase() === 'none'))) {
      weight = w === undefined ? DEFAULT_CONTROL_WEIGHT : 1;
    } else if (typeof w === 'number') {
      if (!Number.isFinite(w) || w < 0) throw new ControlSpecError(`${field}.control_weight`, `must be a number >= 0 or a weight-map path, got ${w}`);
      weight = w;
    } else if (typeof w === 'string') {
      const asNum = Number(w);
      if (w.trim() !== '' && Number.isFinite(asNum) && /^[\s\d.eE+-]+$/.test(w)) {
        if (asNum < 0) throw new ControlSpecError(`${field}.control_weight`, `must be >= 0, got ${w}`);
        weight = asNum;
      } else {
        const p = await path(`${field}.control_weight`, w, 'file');
        if (!/\.(safetensors|png)$/i.test(p)) throw new ControlSpecError(`${field}.control_weight`, `a weight map must be a .safetensors ([H, W] or [T, H, W]) or a grayscale .png, got ${w}`);
        weight = { path: p };
      }
    } else {
      throw new ControlSpecError(`${field}.control_weight`, `must be a number >= 0 or a weight-map path, got ${JSON.stringify(w)}`);
    }
    controls.push({
      name,
      inputControl: v.input_control === undefined || v.input_control === null ? null : await path(`${field}.input_control`, v.input_control, 'any'),
      weight,
      checkpoint: await path(`${field}.ckpt_path`, v.ckpt_path, 'dir'),
    });
  }

  const model = await optPath('model', 'dir');
  // the parts of a diffusers folder stand in for the paths the spec leaves out
  const part = async (name: string) => {
    if (!model) return undefined;
    const rel = join(json.model as string, name);
    return !checkFiles || (await fs.stat(resolvePath(rel, baseDir))) ? rel : undefined;
  };
  const baseField = json.base_checkpoint ?? (await part('transformer'));
  const tokenizerField = json.tokenizer ?? (await part('vae'));
  if (baseField === undefined) throw new ControlSpecError('base_checkpoint', 'missing: the base transformer folder is required (or "model", a diffusers folder with transformer/)');
  if (tokenizerField === undefined) throw new ControlSpecError('tokenizer', 'missing: the VAE / tokenizer folder is required (or "model", a diffusers folder with vae/)');
  const textEncoderField = json.text_encoder ?? (await part('text_encoder'));
  const promptTokenizer = await part('tokenizer');
  const prompt = optStr('prompt');
  const embeddings = await optPath('embeddings', 'file');
  const overCap = json.weight_over_cap ?? 'error';
  if (overCap !== 'error' && overCap !== 'normalize') throw new ControlSpecError('weight_over_cap', `must be "error" or "normalize", got ${JSON.stringify(overCap)}`);
  const inputVideo = await optPath('input_video_path', 'any');
  const ncf = int('num_conditional_frames', inputVideo ? 1 : 0, 0)!;
  if (ncf > 0 && !inputVideo) throw new ControlSpecError('num_conditional_frames', `${ncf} conditioning frames need input_video_path`);
  const resolution = optStr('resolution');
  if (resolution !== null) {
    const why = resolutionProblem(resolution);
    if (why) throw new ControlSpecError('resolution', why);
  }
  const preset = (field: string, ok: readonly string[]) => {
    const v = optStr(field);
    if (v !== null && !ok.includes(v)) throw new ControlSpecError(field, `unknown preset ${JSON.stringify(v)} (expected one of ${ok.join(', ')})`);
    return v;
  };
  return {
    file: null,
    baseCheckpoint: await path('base_checkpoint', baseField, 'dir'),
    tokenizer: await path('tokenizer', tokenizerField, 'any'),
    model,
    promptTokenizer: promptTokenizer === undefined ? null : resolvePath(promptTokenizer, baseDir),
    prompt,
    negativePrompt: optStr('negative_prompt'),
    embeddings,
    textEncoder: textEncoderField === undefined || textEncoderField === null ? null : await path('text_encoder', textEncoderField, 'dir'),
    seed: int('seed', 0, 0)!,
    numSteps: int('num_steps', 35, 1)!,
    guidance: num('guidance', 3, (x) => x >= 0, 'a number >= 0')!,
    inputVideo,
    numConditionalFrames: ncf,
    numFrames: int('num_frames', null, 1),
    fps: num('fps', null, (x) => x > 0, 'a positive number'),
    output: outputPath(json.output, baseDir),
    weightOverCap: overCap,
    videoPath: await optPath('video_path', 'any'),
    resolution,
    chunkFrames: int('num_video_frames_per_chunk', null, 1),
    chunkOverlap: int('chunk_overlap', null, 0),
    edgePreset: preset('preset_edge_threshold', Object.keys(EDGE_PRESETS)),
    blurPreset: preset('preset_blur_strength', BLUR_PRESETS),
    controls,
  };
}

function outputPath(v: unknown, baseDir: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim() === '') throw new ControlSpecError('output', `must be a non-empty path string, got ${JSON.stringify(v)}`);
  return resolvePath(v, baseDir);
}

function resolvePath(p: string, baseDir: string): string {
  return isAbsolute(p) ? p : join(baseDir, p);
}

/** Read and validate a spec file (relative paths resolved against its folder). */
export async function readTransferSpec(file: string, opts: ParseSpecOptions = {}): Promise<TransferSpec> {
  const fs = opts.fs ?? fileSystem();
  if (!(await fs.stat(file))) throw new ControlSpecError('<file>', `${file}: does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(await readText(file, fs));
  } catch (e) {
    throw new ControlSpecError('<file>', `${file}: not valid JSON (${(e as Error).message})`);
  }
  const abs = fs.resolve(file);
  return { ...(await parseTransferSpec(json, dirname(abs), { ...opts, fs })), file: abs };
}
