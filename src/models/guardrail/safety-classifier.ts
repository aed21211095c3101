// The guardrail's video content safety filter (cosmos-predict1 video_content_safety_filter):
// per frame, SigLIP image features over their L2 norm -> the classifier MLP of safety_filter.pt
// (its `model` entry: network.layers.{0,1,3,4,6}, BatchNorm1d in eval mode) -> softmax -> argmax
// over seven classes; the frames are checked in order and the first one whose class is not Safe
// makes the video unsafe and ends the check. Spec guardrail.md "Video content safety".
import type { Backend } from '../../engine/backend.js';
import { UserError, throwIfAborted } from '../../engine/errors.js';
import { Linear } from '../../engine/layers.js';
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { type FileSystem, fileSystem, readJsonObject } from '../../io/files.js';
import { join } from '../../io/path.js';
import { openCheckpoint } from '../../io/safetensors.js';
import { type Config, type ModuleFamily, loadModule } from '../load.js';
import { ModuleList } from '../tokenizer/containers.js';
import { type SiglipImageProcessorConfig, parseSiglipProcessorConfig, preprocessFrames } from './siglip-preprocess.js';
import { type SiglipVisionModel, loadSiglipVision } from './siglip.js';
import { hfCacheFolderName, hfCacheSnapshot } from '../../io/hf-cache.js';

/** The classes of the released classifier, by index (0 = Safe). */
export const SAFETY_CLASSES: readonly string[] = ['Safe', 'Sexual_Content', 'Violence', 'Drugs', 'Child_Abuse', 'Hate_and_Harassment', 'Self-Harm'];

/** The hidden widths of upstream's SafetyClassifier (fixed in its code, not in a config). */
const HIDDEN = [512, 256] as const;
/** nn.BatchNorm1d's default */
const BN_EPS = 1e-5;

export class SafetyClassifierConfigError extends UserError {
  override name = 'SafetyClassifierConfigError';
}

export interface SafetyClassifierConfig {
  inputSize: number;
  numClasses: number;
}

/**
 * `{input_size, num_classes}` as upstream's ModelConfig, found at the top of `config`, under
 * `ModelConfig`, or under `safety_filter.ModelConfig` (a fixture's config.json).
 */
export function parseSafetyClassifierConfig(config: Config): SafetyClassifierConfig {
  const obj = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Config) : null);
  const sf = obj(config.safety_filter);
  const mc = obj(sf?.ModelConfig) ?? obj(config.ModelConfig) ?? config;
  const where = mc === config ? '' : mc === obj(config.ModelConfig) ? 'ModelConfig.' : 'safety_filter.ModelConfig.';
  const int = (key: string, def?: number) => {
    const v = mc[key] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new SafetyClassifierConfigError(`config.json ${where}${key}: expected a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  return { inputSize: int('input_size'), numClasses: int('num_classes', SAFETY_CLASSES.length) };
}

/** nn.BatchNorm1d in eval mode: the running statistics, never the batch's. */
class BatchNorm1d extends Module {
  readonly weight: Param;
  readonly bias: Param;
  readonly running_mean: Param;
  readonly running_var: Param;
  constructor(n: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', [n]);
    this.bias = this.param('bias', [n]);
    this.running_mean = this.param('running_mean', [n]);
    this.running_var = this.param('running_var', [n]);
  }
  forward(x: Tensor): Tensor {
    // ATen's eval transform: alpha = weight / sqrt(var + eps), beta = bias - mean * alpha, x * alpha + beta
    return this.tap(scope(() => {
      const alpha = F.mul(F.recip(F.sqrt(F.affine(this.running_var.t, 1, this.eps))), this.weight.t);
      const beta = F.sub(this.bias.t, F.mul(this.running_mean.t, alpha));
      return F.add(F.mul(x, alpha), beta);
    }));
  }
}

class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return this.tap(F.relu(x));
  }
}

interface Layer extends Module {
  forward(x: Tensor): Tensor;
}

class SafetyNetwork extends Module {
  readonly layers: ModuleList<Layer>;
  constructor(c: SafetyClassifierConfig) {
    super();
    this.layers = this.add('layers', new ModuleList<Layer>());
    let width = c.inputSize;
    for (const h of HIDDEN) {
      this.layers.push(new Linear(width, h, true));
      this.layers.push(new BatchNorm1d(h, BN_EPS));
      this.layers.push(new ReLU());
      width = h;
    }
    this.layers.push(new Linear(width, c.numClasses, true));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => this.layers.items.reduce((h, layer) => layer.forward(h), x)));
  }
}

/** upstream's VideoSafetyModel: `network` maps L2-normalised image features [B, input_size] to logits [B, classes]. */
export class SafetyClassifier extends Module {
  readonly network: SafetyNetwork;
  constructor(readonly config: SafetyClassifierConfig) {
    super();
    this.network = this.add('network', new SafetyNetwork(config));
  }
  logits(embeddings: Tensor): Tensor {
    const [, d] = embeddings.shape;
    if (embeddings.rank !== 2 || d !== this.config.inputSize) {
      throw new SafetyClassifierConfigError(`embeddings: expected [frames, ${this.config.inputSize}], got [${embeddings.shape.join(', ')}]`);
    }
    return this.network.forward(embeddings);
  }
}

export const SafetyClassifierFamily: ModuleFamily<SafetyClassifier> = {
  name: 'VideoSafetyModel',
  build: (config) => new SafetyClassifier(parseSafetyClassifierConfig(config)),
  loadOptions: (_model, src) => {
    // safety_filter.pt keeps the state dict under `model`; the fixtures store it bare
    const underModel = src.names.some((n) => n.startsWith('model.network.'));
    return {
      mapKey: (k) => (underModel ? (k.startsWith('model.') ? k.slice('model.'.length) : null) : k),
      ignore: (k) => k.endsWith('.num_batches_tracked'),
    };
  },
};

/**
 * The classifier of a safety_filter.pt (or a safetensors file of its state dict). Without a
 * config, its sizes are read from the checkpoint's headers: the first Linear's input width and
 * the last one's classes.
 */
export async function loadSafetyClassifier(path: string, backend: Backend, o: { fs?: FileSystem; config?: Config } = {}): Promise<SafetyClassifier> {
  const fs = o.fs ?? fileSystem();
  let config = o.config;
  if (!config) {
    const ckpt = await openCheckpoint(path, fs, { config: false });
    try {
      const shape = (key: string) => {
        const name = [key, `model.${key}`].find((n) => ckpt.has(n));
        const s = name ? ckpt.info(name).shape : [];
        if (s.length !== 2) throw new SafetyClassifierConfigError(`${path}: no 2-D tensor ${key} (or model.${key}); expected the state dict of upstream's VideoSafetyModel`);
        return s;
      };
      const last = `network.layers.${3 * HIDDEN.length}.weight`;
      config = { input_size: shape('network.layers.0.weight')[1], num_classes: shape(last)[0] };
    } finally {
      await ckpt.close();
    }
  }
  return (await loadModule(SafetyClassifierFamily, path, backend, { config, fs })).model;
}

// ------------------------------------------------------------------ decision

/** torch.argmax of each row (the first of equal maxima), for rows of `k` values. */
export function argmaxRows(values: ArrayLike<number>, k: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * k < values.length; r++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (values[r * k + j] > values[r * k + best]) best = j;
    out.push(best);
  }
  return out;
}

export interface VideoDecision {
  safe: boolean;
  /** frames classified before deciding: up to and including the first unsafe one, else all */
  framesEvaluated: number;
  unsafeFrame: number | null;
}

/** The per-video rule on the frames' classes in order: the first class other than Safe (0) decides. */
export function decideVideo(classes: ArrayLike<number>): VideoDecision {
  for (let i = 0; i < classes.length; i++) {
    if (classes[i] !== 0) return { safe: false, framesEvaluated: i + 1, unsafeFrame: i };
  }
  return { safe: true, framesEvaluated: classes.length, unsafeFrame: null };
}

// ------------------------------------------------------------------ the filter

export interface VideoSafetyResult {
  safe: boolean;
  framesEvaluated: number;
  unsafeFrame: number | null;
  /** class name of the deciding frame: the unsafe one, else the last frame evaluated */
  predictedClass: string;
  /** softmax over the classes, per evaluated frame */
  probs: number[][];
}

export interface VideoSafetyFilter {
  /** Check frames [T, H, W, 3] RGB uint8 one by one, stopping at the first unsafe frame. */
  check(frames: Uint8Array, T: number, H: number, W: number, o?: { signal?: AbortSignal }): Promise<VideoSafetyResult>;
  dispose(): void;
}

export class VideoSafetyFolderError extends UserError {
  override name = 'VideoSafetyFolderError';
}

/** The Hugging Face cache folder of the model upstream loads (SiglipModel.from_pretrained(..., cache_dir)). */
const SIGLIP_CACHE_REPO = hfCacheFolderName('google/siglip-so400m-patch14-384');

/**
 * The folder holding the SigLIP config.json / weights / preprocessor_config.json: `path` itself,
 * or a snapshot of the Hugging Face cache inside it (refs/main's revision, else the only one).
 */
export async function findSiglipFolder(path: string, fs: FileSystem = fileSystem()): Promise<string> {
  const st = await fs.stat(path);
  if (st?.kind !== 'directory') throw new VideoSafetyFolderError(`${path}: ${st ? 'not a folder' : 'no such folder'}; expected the guardrail's video_content_safety_filter folder`);
  if ((await fs.stat(join(path, 'config.json')))?.kind === 'file') return path;
  const entries = await fs.list(path);
  const repos = entries.includes(SIGLIP_CACHE_REPO) ? [SIGLIP_CACHE_REPO] : entries.filter((e) => e.startsWith('models--') && e.toLowerCase().includes('siglip'));
  if (repos.length !== 1) {
    throw new VideoSafetyFolderError(
      `${path}: ${repos.length ? `several SigLIP cache folders (${repos.join(', ')})` : 'no SigLIP model'}; expected config.json, model.safetensors and preprocessor_config.json here, or the Hugging Face cache folder ${SIGLIP_CACHE_REPO}/snapshots/<revision>/ holding them`,
    );
  }
  try {
    return await hfCacheSnapshot(join(path, repos[0]), { needs: 'config.json', fs });
  } catch (e) {
    throw e instanceof UserError ? new VideoSafetyFolderError(`${e.message}; expected one revision folder with config.json, model.safetensors and preprocessor_config.json`) : e;
  }
}

/** SiglipProcessor + SiglipModel.get_image_features + L2 normalisation on given frames. */
export class SiglipFrameEncoder {
  constructor(
    readonly model: SiglipVisionModel,
    readonly processor: SiglipImageProcessorConfig,
    /** the processor's file, for messages */
    where = 'preprocessor_config.json',
  ) {
    const { imageSize } = model.config;
    if (processor.height !== imageSize || processor.width !== imageSize) {
      throw new VideoSafetyFolderError(`${where}: size ${processor.height}x${processor.width}; the vision model's image_size is ${imageSize}`);
    }
  }
  /** pixel_values [T, 3, S, S] of frames [T, H, W, 3] */
  pixels(backend: Backend, frames: Uint8Array, T: number, H: number, W: number): Tensor {
    const { height, width } = this.processor;
    return F.fromArray(backend, preprocessFrames(this.processor, frames, T, H, W), [T, 3, height, width]);
  }
}

/**
 * The video content safety filter of a guardrail release's `video_content_safety_filter` folder:
 * safety_filter.pt and the SigLIP model (a Hugging Face cache holding
 * models--google--siglip-so400m-patch14-384/snapshots/<rev>/, or a plain folder of its files).
 * Only the vision half of the SigLIP checkpoint is read.
 */
export async function loadVideoSafetyFilter(path: string, backend: Backend, o: { fs?: FileSystem } = {}): Promise<VideoSafetyFilter> {
  const fs = o.fs ?? fileSystem();
  const siglipDir = await findSiglipFolder(path, fs);
  const ppPath = join(siglipDir, 'preprocessor_config.json');
  if ((await fs.stat(ppPath))?.kind !== 'file') throw new VideoSafetyFolderError(`${ppPath}: missing; expected the SiglipImageProcessor config beside config.json`);
  const processor = parseSiglipProcessorConfig(await readJsonObject(ppPath, 'preprocessor_config.json', fs), ppPath);
  const ptPath = join(path, 'safety_filter.pt');
  if ((await fs.stat(ptPath))?.kind !== 'file') throw new VideoSafetyFolderError(`${ptPath}: missing; expected the classifier checkpoint (torch.save dict, state under "model")`);
  const classifier = await loadSafetyClassifier(ptPath, backend, { fs });
  let model: SiglipVisionModel | null = null;
  try {
    model = await loadSiglipVision(siglipDir, backend, { fs });
    if (model.config.hiddenSize !== classifier.config.inputSize) {
      throw new VideoSafetyFolderError(`${ptPath}: the classifier takes ${classifier.config.inputSize} features, the SigLIP model in ${siglipDir} gives ${model.config.hiddenSize}`);
    }
    return videoSafetyFilter(new SiglipFrameEncoder(model, processor, ppPath), classifier, backend);
  } catch (e) {
    model?.dispose();
    classifier.dispose();
    throw e;
  }
}

/** A filter over an encoder and a classifier already loaded (it owns and disposes both). */
export function videoSafetyFilter(encoder: SiglipFrameEncoder, classifier: SafetyClassifier, backend: Backend): VideoSafetyFilter {
  const K = classifier.config.numClasses;
  const className = (c: number) => SAFETY_CLASSES[c] ?? `class ${c}`;
  return {
    async check(frames, T, H, W, opts = {}) {
      const frameBytes = H * W * 3;
      if (frames.length !== T * frameBytes) throw new UserError(`frames: ${frames.length} bytes for ${T} x ${H} x ${W} x 3 RGB`);
      if (T < 1) throw new UserError('frames: no frame to check; expected at least one');
      const probs: number[][] = [];
      const classes: number[] = [];
      // frame by frame, as upstream: a video is decided by its first unsafe frame, the rest never encoded
      for (let t = 0; t < T; t++) {
        throwIfAborted(opts.signal);
        const p = scope(() => {
          const pixels = encoder.pixels(backend, frames.subarray(t * frameBytes, (t + 1) * frameBytes), 1, H, W);
          return F.softmax(classifier.logits(encoder.model.encodeImage(pixels)), -1);
        });
        let row: number[];
        try {
          row = Array.from(await p.read());
        } finally {
          p.dispose();
        }
        probs.push(row);
        classes.push(argmaxRows(row, K)[0]);
        if (classes[t] !== 0) break;
      }
      const d = decideVideo(classes);
      return { ...d, predictedClass: className(classes[d.framesEvaluated - 1]), probs };
    },
    dispose() {
      encoder.model.dispose();
      classifier.dispose();
    },
  };
}
