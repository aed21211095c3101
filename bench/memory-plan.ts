// The peak device memory of a model's workflow at real sizes, in seconds: the model runs its
// real code path on the plan backend (src/engine/plan/), which allocates every tensor and
// computes nothing, so the peak printed is the one the CPU backend would reach for the same
// calls (and WebGPU's, less its buffer-pool slack). Weights are never read: parameters come from
// the checkpoint's header (names, shapes, dtypes: a release skeleton is enough) or, with
// --config, from the shapes the config declares.
//
//   npx tsx bench/memory-plan.ts --help
//   npx tsx bench/memory-plan.ts tokenizer --weights REL/Cosmos-1.0-Tokenizer-CV8x8x8-converted \
//     --frames 121 --height 704 --width 1280
//
// Adding a model: one entry in MODELS below: its ModuleFamily (how config.json builds the tree
// and how its checkpoint keys map), where the weights of a release folder are, and its ops, each
// a function that makes its inputs with `input(be, shape)` (never a host array of the input's
// size) and runs the model, returning what it produced (freed after the measurement).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Backend, BackendLimits } from '../src/engine/backend.js';
import type { DType } from '../src/engine/dtype.js';
import { type Module, loadWeights } from '../src/engine/module.js';
import type { PlanBackend } from '../src/engine/plan/backend.js';
import { declaredSource, shapeOnlySource } from '../src/engine/plan/params.js';
import { planBackend } from '../src/engine/select.js';
import { Tensor, numel, scopeAsync } from '../src/engine/tensor.js';
import { setFileSystem } from '../src/io/files.js';
import { nodeFileSystem } from '../src/io/node-files.js';
import { openCheckpoint } from '../src/io/safetensors.js';
import type { FrameSource } from '../src/io/video.js';
import type { Config, ModuleFamily } from '../src/models/load.js';
import { CosmosTokenizerFamily, type Tokenizer, resolveTokenizerFiles } from '../src/models/tokenizer/load.js';
import { type AutoencoderKLWan, AutoencoderKLWanFamily } from '../src/models/wan/autoencoder.js';
import { tokenize, videoTokenizer } from '../src/pipelines/tokenizer.js';

setFileSystem(nodeFileSystem);

/** The sizes an op runs at (flags --batch --frames --height --width --chunk). */
export interface PlanShape {
  batch: number;
  frames: number;
  height: number;
  width: number;
  /** frames per chunk of a streaming op (0: the op's default) */
  chunk: number;
}

export interface PlanOp<M extends Module> {
  /** one line for --help */
  what: string;
  run(model: M, be: Backend, s: PlanShape): Promise<unknown> | unknown;
}

export interface PlanModel<M extends Module> {
  family: ModuleFamily<M>;
  /** the weights (file or folder, config.json beside) of a path a user gives; default: the path */
  weights?(path: string): Promise<string>;
  ops: Record<string, PlanOp<M>>;
}

const isDirectory = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** An input of `shape` on `be`, with no host array behind it (its values are never read). */
export function input(be: Backend, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return new Tensor(be.alloc(dtype, numel(shape)), shape);
}

/** `frames` zero frames of height x width, one host frame at a time (what a video reader yields). */
function zeroFrames(frames: number, height: number, width: number): FrameSource {
  return {
    width, height, fps: undefined, frameCount: frames,
    async *frames() {
      for (let i = 0; i < frames; i++) yield new Float32Array(3 * height * width);
    },
    close: async () => {},
  };
}

// ------------------------------------------------------------------ the models

const tokenizer: PlanModel<Tokenizer> = {
  family: CosmosTokenizerFamily,
  weights: async (path) => (await resolveTokenizerFiles(path)).weights,
  ops: {
    encode: {
      what: 'the whole clip (an image for CI / DI) encoded at once',
      run: (m, be, s) => {
        const video = m.kind === 'CV' || m.kind === 'DV';
        return m.encode(input(be, video ? [s.batch, 3, s.frames, s.height, s.width] : [s.batch, 3, s.height, s.width]));
      },
    },
    decode: {
      what: 'the latent of such a clip decoded at once',
      run: (m, be, s) => {
        const sc = m.spatialCompression;
        const hw = [Math.ceil(s.height / sc), Math.ceil(s.width / sc)];
        if (m.kind === 'CV' || m.kind === 'DV') {
          const t = 1 + Math.ceil((s.frames - 1) / m.temporalCompression);
          return m.decode(input(be, [s.batch, m.codeChannels, t, ...hw]));
        }
        return m.decode(input(be, [s.batch, m.codeChannels, ...hw]));
      },
    },
    tokenize: {
      what: 'the tokenize pipeline: chunked streaming encode of --frames frames (--chunk, default 4 x tc)',
      run: (m, _be, s) => tokenize(videoTokenizer(m), zeroFrames(s.frames, s.height, s.width), s.chunk ? { chunkFrames: s.chunk } : {}),
    },
  },
};

const wanVae: PlanModel<AutoencoderKLWan> = {
  family: AutoencoderKLWanFamily,
  // a release folder (its vae/), a vae/ folder, or a file
  weights: async (path) => (isDirectory(join(path, 'vae')) ? join(path, 'vae') : path),
  ops: {
    encode: {
      what: 'the clip encoded as the pipelines do: piece by piece (frame 0, then groups of 4), one piece on the device at a time',
      run: (m, be, s) => m.encodeFrames(s.frames, (_start, count) => input(be, [s.batch, 3, count, s.height, s.width])),
    },
    decode: {
      what: "the clip's latent decoded one latent frame at a time, each group of frames handed on and freed",
      run: async (m, be, s) => {
        const sc = m.spatialCompression;
        const z = input(be, [s.batch, m.latentChannels, m.latentFrames(s.frames), Math.ceil(s.height / sc), Math.ceil(s.width / sc)]);
        await m.decodeFrames(z, () => {});
        return z;
      },
    },
  },
};

// biome-ignore lint/suspicious/noExplicitAny: each entry has its own module type
export const MODELS: Record<string, PlanModel<any>> = { tokenizer, wanVae };

// ------------------------------------------------------------------ planning

/** Build `family`'s module on a plan backend with its parameters allocated, reading no weights. */
export async function planModule<M extends Module>(
  family: ModuleFamily<M>, be: Backend, from: { weights: string } | { config: Config; dtype: DType },
): Promise<M> {
  if ('config' in from) {
    const model = family.build(from.config);
    await loadWeights(model, declaredSource(model, from.dtype), be, { maxTensorBytes: be.limits.maxBufferBytes });
    return model;
  }
  const ckpt = await openCheckpoint(from.weights);
  try {
    if (!ckpt.config || typeof ckpt.config !== 'object') throw new Error(`${from.weights}: no config.json beside the weights`);
    const model = family.build(ckpt.config as Config);
    await loadWeights(model, shapeOnlySource(ckpt), be, { ...family.loadOptions?.(model, ckpt), maxTensorBytes: be.limits.maxBufferBytes });
    return model;
  } finally {
    await ckpt.close();
  }
}

export interface PlanRow {
  model: string;
  op: string;
  shape: PlanShape;
  /** bytes of the parameters */
  parameter_bytes: number;
  /** the most bytes live during the op, parameters included */
  peak_bytes: number;
  /** bytes still live after the op's outputs are freed, less the parameters (constants models cache) */
  retained_bytes: number;
  largest_tensor_bytes: number;
  seconds: number;
}

/** Free what an op returned: tensors, arrays and plain objects of them, or anything with dispose() (Tokens). */
export function freeAll(v: unknown): void {
  if (v instanceof Tensor) v.dispose();
  else if (Array.isArray(v)) for (const x of v) freeAll(x);
  else if (v && typeof v === 'object') {
    const d = (v as { dispose?: unknown }).dispose;
    if (typeof d === 'function') d.call(v);
    else for (const x of Object.values(v)) freeAll(x);
  }
}

/** One op of one model on a fresh plan backend. */
export async function planOp(
  name: string, opName: string, from: { weights: string } | { config: Config; dtype: DType }, shape: PlanShape, limits: Partial<BackendLimits> = {},
): Promise<PlanRow> {
  const entry = MODELS[name];
  if (!entry) throw new Error(`unknown model ${name}; one of ${Object.keys(MODELS).join(', ')}`);
  const op = entry.ops[opName];
  if (!op) throw new Error(`${name} has no op ${opName}; one of ${Object.keys(entry.ops).join(', ')}`);
  const be: PlanBackend = planBackend({ limits, adapter: Object.keys(limits).length ? 'the emulated device' : 'the cpu backend' });
  const t0 = performance.now();
  const weights = 'weights' in from && entry.weights ? { weights: await entry.weights(from.weights) } : from;
  const model = await planModule(entry.family, be, weights);
  const parameterBytes = be.memory().liveBytes;
  be.resetPeakMemory();
  try {
    await scopeAsync(async () => freeAll(await op.run(model, be, shape)));
    return {
      model: name, op: opName, shape, parameter_bytes: parameterBytes, peak_bytes: be.memory().peakBytes,
      retained_bytes: be.memory().liveBytes - parameterBytes, largest_tensor_bytes: be.largestTensorBytes(), seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}

// ------------------------------------------------------------------ command line

const HELP = `usage: npx tsx bench/memory-plan.ts MODEL (--weights PATH | --config FILE) [flags]

Peak device memory of MODEL's ops at the given size, from the plan backend (every tensor
allocated, nothing computed; the peak equals the CPU backend's for the same calls). No weight
data is read: --weights takes a checkpoint's header (a release skeleton will do).

models and ops:
${Object.entries(MODELS).map(([m, e]) => Object.entries(e.ops).map(([o, op]) => `  ${m} ${o.padEnd(9)} ${op.what}`).join('\n')).join('\n')}

  --weights PATH     a model folder or .safetensors with config.json beside (a release folder for tokenizer)
  --config FILE      config.json alone: every declared parameter, stored as --dtype
  --dtype f32|bf16|f16  parameter dtype with --config (default f32)
  --op NAME          one op (default: all of the model's)
  --batch N --frames N --height N --width N   the size (default 1 x 121 x 704 x 1280)
  --chunk N          frames per chunk of a streaming op (default: the op's)
  --max-buffer-mib N --max-binding-mib N      emulate a device's limits (default: the CPU backend's)
  --json             one JSON row per op instead of text
`;

const GiB = 2 ** 30;
const fmt = (b: number) => (b >= GiB ? `${(b / GiB).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' }, weights: { type: 'string' }, config: { type: 'string' }, dtype: { type: 'string', default: 'f32' },
      op: { type: 'string' }, batch: { type: 'string', default: '1' }, frames: { type: 'string', default: '121' },
      height: { type: 'string', default: '704' }, width: { type: 'string', default: '1280' }, chunk: { type: 'string', default: '0' },
      'max-buffer-mib': { type: 'string' }, 'max-binding-mib': { type: 'string' }, json: { type: 'boolean' },
    },
  });
  if (values.help || positionals.length !== 1 || !(values.weights || values.config)) {
    console.log(HELP);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const name = positionals[0];
  const int = (k: keyof typeof values) => {
    const v = Number(values[k]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${k} must be a whole number, got ${values[k]}`);
    return v;
  };
  const shape: PlanShape = { batch: int('batch'), frames: int('frames'), height: int('height'), width: int('width'), chunk: int('chunk') };
  const limits: Partial<BackendLimits> = {};
  if (values['max-buffer-mib']) limits.maxBufferBytes = int('max-buffer-mib') * 2 ** 20;
  if (values['max-binding-mib']) limits.maxBindingBytes = int('max-binding-mib') * 2 ** 20;
  if (!['f32', 'bf16', 'f16'].includes(values.dtype as string)) throw new Error(`--dtype must be f32, bf16 or f16, got ${values.dtype}`);
  const from = values.weights
    ? { weights: values.weights }
    : { config: JSON.parse(readFileSync(values.config as string, 'utf8')) as Config, dtype: values.dtype as DType };
  const ops = values.op ? [values.op] : Object.keys(MODELS[name]?.ops ?? { '?': 0 });
  for (const op of ops) {
    const r = await planOp(name, op, from, shape, limits);
    if (values.json) console.log(JSON.stringify(r));
    else {
      const size = `${shape.batch}x${shape.frames}x${shape.height}x${shape.width}`;
      console.log(
        `${name} ${op} ${size}: peak ${fmt(r.peak_bytes)} (parameters ${fmt(r.parameter_bytes)}, ` +
          `activations ${fmt(r.peak_bytes - r.parameter_bytes)}); largest tensor ${fmt(r.largest_tensor_bytes)}; planned in ${r.seconds.toFixed(1)} s`,
      );
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(`error: ${(e as Error).message}`);
    process.exitCode = 1;
  });
}
