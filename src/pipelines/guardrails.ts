// The guardrails around every generation (spec guardrail.md "Order in the pipelines"), opened from
// a released Cosmos-1.0-Guardrail folder:
//   text:  Blocklist, then Aegis (LlamaGuard-7b + NVIDIA's LoRA); the first unsafe verdict stops
//          and the prompt is refused before the generator loads;
//   video: the video content safety filter (SigLIP + MLP) on every frame of the decoded clip (an
//          unsafe frame refuses the clip: nothing is written), then RetinaFace face blur on the
//          frames that are written.
// The model stages are built by loaders found in a registry (GuardrailLoaders), so this file knows
// their signatures, not their code. A stage's model is loaded when its check runs and freed after
// it (as upstream's offloading does: Aegis is 7 B parameters and never sits beside the generator),
// unless the guardrails are opened with keepLoaded.
import type { Backend } from '../engine/backend.js';
import { UserError, throwIfAborted } from '../engine/errors.js';
import { type FileSystem, fileSystem } from '../io/files.js';
import { join } from '../io/path.js';
import type { Video } from '../io/video.js';
import { type Blocklist, type BlocklistOptions, loadBlocklist } from '../models/guardrail/blocklist.js';
import { loadAegis } from '../models/guardrail/aegis.js';
import { loadFaceBlurFilter } from '../models/guardrail/retinaface.js';
import { loadVideoSafetyFilter } from '../models/guardrail/safety-classifier.js';

// ------------------------------------------------------------------ stage contracts

export interface Verdict {
  safe: boolean;
  /** the stage as upstream's GuardrailRunner names it: BLOCKLIST, AEGIS, VIDEOCONTENTSAFETYFILTER, RETINAFACEFILTER */
  stage: string;
  message: string;
  /** what the stage measured (class probabilities, detections) */
  scores?: Record<string, number>;
}

export interface CheckOptions {
  signal?: AbortSignal;
}

export interface TextGuard {
  name: string;
  check(prompt: string, o?: CheckOptions): Promise<Verdict>;
  dispose?(): void;
}

export interface VideoGuard {
  name: string;
  /** frames: [T, H, W, 3] RGB uint8 */
  check(frames: Uint8Array, T: number, H: number, W: number, o?: CheckOptions): Promise<Verdict>;
  dispose?(): void;
}

export interface FaceGuard {
  name: string;
  /** frames: [T, H, W, 3] RGB uint8; returns the blurred frames (a new array or `frames` itself) */
  blur(frames: Uint8Array, T: number, H: number, W: number, o?: CheckOptions): Promise<{ frames: Uint8Array; verdict: Verdict }>;
  dispose?(): void;
}

// ------------------------------------------------------------------ the loaders' contracts

interface Disposable {
  dispose(): void;
}

export interface FaceBlurFilter extends Disposable {
  blur(frames: Uint8Array, T: number, H: number, W: number, o?: CheckOptions): Promise<{ frames: Uint8Array; detections: number[] }>;
}

export interface VideoSafetyFilter extends Disposable {
  check(frames: Uint8Array, T: number, H: number, W: number, o?: CheckOptions): Promise<{
    safe: boolean; framesEvaluated: number; unsafeFrame: number | null; predictedClass: string; probs: number[][];
  }>;
}

export interface AegisGuard extends Disposable {
  /** `error`: the model failed and the prompt was passed as safe, as upstream does (said in the verdict, never silent) */
  check(prompt: string, o?: CheckOptions): Promise<{ safe: boolean; message: string; answer: string; error?: unknown }>;
}

type Loader<T> = (path: string, backend: Backend, o: { fs?: FileSystem }) => Promise<T>;

/** How the model stages are built, each from its sub-folder of the release. */
export interface GuardrailLoaders {
  aegis?: Loader<AegisGuard>;
  videoSafety?: Loader<VideoSafetyFilter>;
  faceBlur?: Loader<FaceBlurFilter>;
}

// the stages built into this library; registerGuardrailLoaders swaps any of them (tests, other models)
let registry: GuardrailLoaders = { aegis: loadAegis, videoSafety: loadVideoSafetyFilter, faceBlur: loadFaceBlurFilter };

/** Set the loaders openGuardrails uses by default (merged into the current ones); returns the previous set. */
export function registerGuardrailLoaders(l: GuardrailLoaders): GuardrailLoaders {
  const previous = registry;
  registry = { ...registry, ...l };
  return previous;
}

/** Put back a set returned by registerGuardrailLoaders. */
export function restoreGuardrailLoaders(l: GuardrailLoaders): void {
  registry = { ...l };
}

// ------------------------------------------------------------------ errors

/** A prompt or a clip a guardrail refused: exit status 3 on the command line. */
export class GuardrailBlockedError extends UserError {
  readonly stage: string;
  /** the stage's own message (the error's message is upstream's "<STAGE>: <message>") */
  readonly reason: string;
  constructor(readonly verdict: Verdict) {
    super(`${verdict.stage}: ${verdict.message}`);
    this.stage = verdict.stage;
    this.reason = verdict.message;
  }
}

/** A guardrail folder without a stage's sub-folder, or a stage with no loader. */
export class GuardrailFolderError extends UserError {}

/** A run the guardrails cannot check (precomputed embeddings instead of a prompt; no decoded clip). */
export class GuardrailInputError extends UserError {}

// ------------------------------------------------------------------ the folder

/** The sub-folders of a Cosmos-1.0-Guardrail release. */
export const GUARDRAIL_DIRS = { blocklist: 'blocklist', aegis: 'aegis', videoSafety: 'video_content_safety_filter', faceBlur: 'face_blur_filter' } as const;

export interface GuardrailPaths {
  root: string;
  blocklist?: string;
  aegis?: string;
  videoSafety?: string;
  faceBlur?: string;
}

export interface OpenGuardrailsOptions {
  fs?: FileSystem;
  /** the prompt stages (Blocklist, Aegis); default true */
  text?: boolean;
  /** the clip stages (safety filter, face blur); default true */
  video?: boolean;
  /** default: the registered ones (registerGuardrailLoaders) */
  loaders?: GuardrailLoaders;
  /** keep each stage's model loaded between checks until dispose() (default: load per check, free after) */
  keepLoaded?: boolean;
  /** blocklist thresholds and censor mark (predict1's by default) */
  blocklist?: Omit<BlocklistOptions, 'fs'>;
}

async function isDir(path: string, fs: FileSystem): Promise<boolean> {
  return (await fs.stat(path))?.kind === 'directory';
}

/**
 * The folder holding the stages: `folder` itself, or its guardrail/ (a checkpoint folder, where
 * cosmos-predict1 looks), or its Cosmos-1.0-Guardrail/.
 */
async function guardrailRoot(folder: string, fs: FileSystem): Promise<string> {
  const known = Object.values(GUARDRAIL_DIRS);
  for (const root of [folder, join(folder, 'guardrail'), join(folder, 'Cosmos-1.0-Guardrail')]) {
    if (!(await isDir(root, fs))) continue;
    for (const d of known) if (await isDir(join(root, d), fs)) return root;
  }
  return folder;
}

/** Open a Cosmos-1.0-Guardrail folder on `backend`: the sub-folders the asked stages need are checked now, the blocklist read. */
export async function openGuardrails(folder: string, backend: Backend, o: OpenGuardrailsOptions = {}): Promise<Guardrails> {
  const fs = o.fs ?? fileSystem();
  if (!(await isDir(folder, fs))) throw new GuardrailFolderError(`${folder}: not a folder (give the Cosmos-1.0-Guardrail folder: blocklist/, aegis/, video_content_safety_filter/, face_blur_filter/)`);
  const root = await guardrailRoot(folder, fs);
  const loaders = o.loaders ?? registry;
  const paths: GuardrailPaths = { root };
  const need = async (key: keyof typeof GUARDRAIL_DIRS, loader: keyof GuardrailLoaders | null) => {
    const path = join(root, GUARDRAIL_DIRS[key]);
    if (!(await isDir(path, fs))) throw new GuardrailFolderError(`${path}: missing (the ${GUARDRAIL_DIRS[key]}/ stage of the guardrail folder ${folder})`);
    if (loader && !loaders[loader]) throw new GuardrailFolderError(`${path}: no loader for this stage is registered in this build (registerGuardrailLoaders)`);
    paths[key] = path;
  };
  if (o.text ?? true) {
    await need('blocklist', null);
    await need('aegis', 'aegis');
  }
  if (o.video ?? true) {
    await need('videoSafety', 'videoSafety');
    await need('faceBlur', 'faceBlur');
  }
  const blocklist = paths.blocklist ? await loadBlocklist(paths.blocklist, { ...o.blocklist, fs }) : null;
  return new Guardrails(paths, backend, { ...loaders }, blocklist, fs, o.keepLoaded ?? false);
}

// ------------------------------------------------------------------ running the stages

export interface PromptReport {
  safe: boolean;
  /** every stage that ran, in order (the first unsafe one is the last) */
  verdicts: Verdict[];
}

export interface VideoReport {
  safe: boolean;
  verdicts: Verdict[];
  /** the clip as written: its faces blurred (null when blocked) */
  video: Video | null;
  /** the same frames, [T, H, W, 3] RGB uint8 (null when blocked) */
  frames: Uint8Array | null;
}

export interface VideoCheckOptions extends CheckOptions {
  /**
   * how [-1, 1] becomes bytes: 'truncate' as upstream's decode does ((x + 1) / 2 * 255 cut to an
   * integer, in float32; default), 'round' as the clip writers do (a clip read from a file gets
   * its own bytes back)
   */
  quantize?: 'truncate' | 'round';
}

/** A loaded model stage, loaded on first use; freed after each use unless kept. */
class Lazy<T extends Disposable> {
  private value: T | null = null;
  constructor(private readonly load: () => Promise<T>, private readonly keep: boolean) {}
  async use<R>(fn: (v: T) => Promise<R>): Promise<R> {
    this.value ??= await this.load();
    try {
      return await fn(this.value);
    } finally {
      if (!this.keep) this.dispose();
    }
  }
  dispose(): void {
    this.value?.dispose();
    this.value = null;
  }
}

const CLASS_ORDER = ['Safe', 'Sexual_Content', 'Violence', 'Drugs', 'Child_Abuse', 'Hate_and_Harassment', 'Self-Harm'];

export class Guardrails {
  readonly textGuards: TextGuard[] = [];
  readonly videoGuard: VideoGuard | null = null;
  readonly faceGuard: FaceGuard | null = null;
  private readonly lazies: Lazy<Disposable>[] = [];

  constructor(
    readonly paths: GuardrailPaths, readonly backend: Backend, loaders: GuardrailLoaders, blocklist: Blocklist | null, fs: FileSystem, keepLoaded: boolean,
  ) {
    const lazy = <T extends Disposable>(path: string, load: Loader<T>): Lazy<T> => {
      const l = new Lazy(() => load(path, backend, { fs }), keepLoaded);
      this.lazies.push(l);
      return l;
    };
    if (blocklist) {
      this.textGuards.push({ name: blocklist.name, check: async (p) => ({ stage: blocklist.name, ...blocklist.check(p) }) });
    }
    if (paths.aegis && loaders.aegis) {
      const aegis = lazy(paths.aegis, loaders.aegis);
      this.textGuards.push({
        name: 'AEGIS',
        check: (p, o) => aegis.use(async (m) => {
          const r = await m.check(p, o);
          if (r.error !== undefined) {
            return { stage: 'AEGIS', safe: r.safe, message: `Input passed unchecked: the model failed (${r.error instanceof Error ? r.error.message : String(r.error)}); upstream treats a failure as safe` };
          }
          return { stage: 'AEGIS', safe: r.safe, message: r.safe ? 'Input is safe' : r.message };
        }),
      });
    }
    if (paths.videoSafety && loaders.videoSafety) {
      const filter = lazy(paths.videoSafety, loaders.videoSafety);
      this.videoGuard = {
        name: 'VIDEOCONTENTSAFETYFILTER',
        check: (frames, T, H, W, o) => filter.use(async (m) => {
          const r = await m.check(frames, T, H, W, o);
          const scores: Record<string, number> = { frames_evaluated: r.framesEvaluated };
          // the highest probability each class reached over the frames checked
          for (const p of r.probs) {
            p.forEach((v, c) => {
              const k = CLASS_ORDER[c] ?? `class_${c}`;
              scores[k] = Math.max(scores[k] ?? 0, v);
            });
          }
          const message = r.safe ? `${r.framesEvaluated} frame(s) checked, all safe` : `unsafe frame ${r.unsafeFrame}: ${r.predictedClass}`;
          return { stage: 'VIDEOCONTENTSAFETYFILTER', safe: r.safe, message, scores };
        }),
      };
    }
    if (paths.faceBlur && loaders.faceBlur) {
      const faces = lazy(paths.faceBlur, loaders.faceBlur);
      this.faceGuard = {
        name: 'RETINAFACEFILTER',
        blur: (frames, T, H, W, o) => faces.use(async (m) => {
          const r = await m.blur(frames, T, H, W, o);
          const total = r.detections.reduce((a, b) => a + b, 0);
          const scores = { faces: total, frames_with_faces: r.detections.filter((d) => d > 0).length };
          return { frames: r.frames, verdict: { stage: 'RETINAFACEFILTER', safe: true, message: `${total} face(s) blurred`, scores } };
        }),
      };
    }
  }

  get hasText(): boolean {
    return this.textGuards.length > 0;
  }

  get hasVideo(): boolean {
    return this.videoGuard !== null || this.faceGuard !== null;
  }

  /** Every text stage in order; the first unsafe verdict stops them. */
  async checkPrompt(prompt: string, o: CheckOptions = {}): Promise<PromptReport> {
    const verdicts: Verdict[] = [];
    for (const g of this.textGuards) {
      throwIfAborted(o.signal);
      const v = await g.check(prompt, o);
      verdicts.push(v);
      if (!v.safe) return { safe: false, verdicts };
    }
    return { safe: true, verdicts };
  }

  /** checkPrompt, throwing GuardrailBlockedError when a stage refuses the prompt. */
  async assertPrompt(prompt: string, o: CheckOptions = {}): Promise<Verdict[]> {
    const r = await this.checkPrompt(prompt, o);
    if (!r.safe) throw new GuardrailBlockedError(r.verdicts[r.verdicts.length - 1]);
    return r.verdicts;
  }

  /** The safety filter on every frame, then (when safe) the face blur. */
  async checkVideo(video: Video, o: VideoCheckOptions = {}): Promise<VideoReport> {
    const { frames: T, height: H, width: W } = video;
    let frames = videoToFrames(video, o.quantize ?? 'truncate');
    const verdicts: Verdict[] = [];
    if (this.videoGuard) {
      throwIfAborted(o.signal);
      const v = await this.videoGuard.check(frames, T, H, W, o);
      verdicts.push(v);
      if (!v.safe) return { safe: false, verdicts, video: null, frames: null };
    }
    if (this.faceGuard) {
      throwIfAborted(o.signal);
      const r = await this.faceGuard.blur(frames, T, H, W, o);
      frames = r.frames;
      verdicts.push(r.verdict);
    }
    return { safe: true, verdicts, video: framesToVideo(frames, T, H, W, video.fps), frames };
  }

  /** checkVideo, throwing GuardrailBlockedError for an unsafe clip; returns the clip to write. */
  async guardVideo(video: Video, o: VideoCheckOptions = {}): Promise<Video> {
    const r = await this.checkVideo(video, o);
    if (!r.safe || !r.video) throw new GuardrailBlockedError(r.verdicts[r.verdicts.length - 1]);
    return r.video;
  }

  dispose(): void {
    for (const l of this.lazies) l.dispose();
  }
}

// ------------------------------------------------------------------ what the pipelines call

/**
 * The text guard of a generating pipeline: the prompt checked (a blocked one throws), or a refusal
 * when there is no prompt text to check (precomputed embeddings).
 */
export async function guardPrompt(g: Guardrails | undefined, prompt: string | null | undefined, o: CheckOptions = {}): Promise<void> {
  if (!g?.hasText) return;
  if (prompt === undefined || prompt === null) {
    throw new GuardrailInputError('embeddings: the text guardrails check the prompt text; with guardrails give the prompt, not precomputed embeddings');
  }
  await g.assertPrompt(prompt, o);
}

/** The video guard of a generating pipeline: the clip to write (faces blurred), or GuardrailBlockedError. */
export async function guardOutput(g: Guardrails | undefined, video: Video, o: CheckOptions = {}): Promise<Video> {
  return g?.hasVideo ? g.guardVideo(video, o) : video;
}

// ------------------------------------------------------------------ pixels

/**
 * [3, T, H, W] in [-1, 1] -> [T, H, W, 3] bytes. 'truncate' is upstream's decode:
 * uint8(clamp(1 + x, 0, 2) / 2 * 255) in float32; 'round' the writers' round((x + 1) / 2 * 255).
 */
export function videoToFrames(v: Video, quantize: 'truncate' | 'round' = 'truncate'): Uint8Array {
  const { frames: T, height: H, width: W } = v;
  const hw = H * W;
  const out = new Uint8Array(T * hw * 3);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < T; t++) {
      const src = (c * T + t) * hw;
      const dst = t * hw * 3 + c;
      for (let p = 0; p < hw; p++) {
        const x = v.data[src + p];
        let b: number;
        if (quantize === 'round') b = x <= -1 ? 0 : x >= 1 ? 255 : Math.round(((x + 1) / 2) * 255);
        else {
          const y = f(1 + x);
          b = Math.trunc(f(f(Math.min(Math.max(y, 0), 2) / 2) * 255)); // NaN -> 0 below
        }
        out[dst + p * 3] = b || 0;
      }
    }
  }
  return out;
}

/** [T, H, W, 3] bytes -> [3, T, H, W] in [-1, 1] (b / 127.5 - 1: the clip writers give the bytes back). */
export function framesToVideo(frames: Uint8Array, T: number, H: number, W: number, fps?: Video['fps']): Video {
  const hw = H * W;
  const data = new Float32Array(3 * T * hw);
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < T; t++) {
      const dst = (c * T + t) * hw;
      const src = t * hw * 3 + c;
      for (let p = 0; p < hw; p++) data[dst + p] = frames[src + p * 3] / 127.5 - 1;
    }
  }
  const v: Video = { data, frames: T, height: H, width: W };
  if (fps) v.fps = fps;
  return v;
}
