// Where a transfer run's control videos come from, chunk by chunk: ready-made control videos as
// given (the spec's input_control files), or upstream's raw-clip path, where the clip and any
// ready-made control are resized to the model resolution, edge / vis are computed per chunk and
// depth once for the whole clip (Video-Depth-Anything normalises over the whole video, at the
// clip's own size, before the resize).
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import type { FileSystem } from '../../io/files.js';
import type { InputLimits } from '../../io/limits.js';
import { probeVideo } from '../../io/open-video.js';
import type { Rational, Video } from '../../io/video.js';
import { DEFAULT_EDGE_PRESET } from '../../models/controlnet/edge-map.js';
import { type VideoDepthAnything, depthControl, loadDepthModel } from '../../models/depth/index.js';
import { DEFAULT_RESOLUTION, modelSize } from '../../models/controlnet/resolution.js';
import { type ControlSpec, type TransferSpec, isComputedControl, notComputable } from '../../models/controlnet/spec.js';
import type { ClipInput } from './condition.js';
import { type ComputedControl, type FramesU8, controlMap, controlResizeMode, framesToVideo, pickFrames, readFramesU8, resizeFramesU8, sliceFramesU8 } from './control-input.js';
import { readControlClips } from './controls.js';
import { PipelineInputError } from './errors.js';

/** Upstream's blur strength default (preset_blur_strength). */
export const DEFAULT_BLUR_PRESET = 'medium';

/** A computed control's map frames as they are made: frames [first, first + frames.frames) of the clip. */
export type ControlFramesCallback = (name: string, frames: Video, first: number) => void | Promise<void>;

export interface ControlSource {
  /** 'clip': computed from / resized to a raw clip; 'videos': the control videos as given */
  kind: 'clip' | 'videos';
  /** frames the source has */
  frames: number;
  height: number;
  width: number;
  fps: Rational | undefined;
  /** the computed controls (name and preset) */
  computed: ComputedControl[];
  /**
   * Every control's video for one chunk: clip frames [start, end) in the order `order` (indices
   * relative to start; a padded chunk repeats some), in [-1, 1]. Computed maps of the frames from
   * `newFrom` on go to `onFrames` first.
   */
  chunk(start: number, end: number, order: readonly number[], newFrom: number, onFrames?: ControlFramesCallback): Promise<Video[]>;
}

/** A clip's frames at `indices` (relative to `start`). */
export function pickVideoFrames(v: Video, start: number, indices: readonly number[]): Video {
  const hw = v.height * v.width;
  const T = indices.length;
  const data = new Float32Array(3 * T * hw);
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < T; t++) {
      const src = (c * v.frames + start + indices[t]) * hw;
      data.set(v.data.subarray(src, src + hw), (c * T + t) * hw);
    }
  }
  return { data, frames: T, height: v.height, width: v.width, ...(v.fps ? { fps: v.fps } : {}) };
}

/** The ready-made control videos (every control has one), read whole as before. */
export async function videoControlSource(
  controls: readonly ControlSpec[], given: Readonly<Record<string, ClipInput>>, fs: FileSystem, limits?: InputLimits,
): Promise<ControlSource> {
  for (const c of controls) {
    if (c.inputControl === null && given[c.name] === undefined) {
      throw new UserError(`controls.${c.name}.input_control: none given, and no raw clip to compute the ${c.name} control from (the spec's video_path, or --input)`);
    }
  }
  const clips = await readControlClips(controls, given, fs, limits);
  const first = clips[0];
  return {
    kind: 'videos',
    frames: first.frames,
    height: first.height,
    width: first.width,
    fps: first.fps,
    computed: [],
    chunk: async (start, _end, order) => clips.map((v) => pickVideoFrames(v, start, order)),
  };
}

/** The depth model: a released .pth state dict, a folder, or the model loaded (then the caller keeps it). */
export type DepthModelSource = string | VideoDepthAnything;

/** What a depth control computed without a model says. */
export function missingDepthModel(): string {
  return 'controls.depth: computing the depth control from the clip needs the Video-Depth-Anything model (video_depth_anything_vits.pth, depth-anything/Video-Depth-Anything-Small): give it with --depth-model (depthModel)';
}

/** The depth preset reported for a computed depth control: the model that makes it. */
export const DEPTH_PRESET = 'video-depth-anything';

export interface ClipSourceOptions {
  spec: TransferSpec;
  /** the raw clip */
  input: ClipInput;
  /** ready-made control clips by name, over the spec's input_control */
  given: Readonly<Record<string, ClipInput>>;
  /** frames to read at most */
  maxFrames?: number;
  resolution?: string;
  backend: Backend;
  fs: FileSystem;
  limits?: InputLimits;
  /** the depth model, when a depth control is computed */
  depthModel?: DepthModelSource;
  /** the depth network's nominal input size (default 518, upstream's) */
  depthInputSize?: number;
  /** depth network windows done, of all */
  onDepthProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** told 'depth' before the depth model loads (a plan measures its phase) */
  onPhase?: (phase: string) => void;
}

/** The computed controls of a spec (those without a video) with their presets. */
export function computedControls(spec: TransferSpec, given: Readonly<Record<string, ClipInput>> = {}): ComputedControl[] {
  const out: ComputedControl[] = [];
  for (const c of spec.controls) {
    if (c.inputControl !== null || given[c.name] !== undefined) continue;
    const why = notComputable(c.name);
    if (why || !isComputedControl(c.name)) throw new UserError(`controls.${c.name}.input_control: missing: ${why}`);
    const preset = c.name === 'edge' ? (spec.edgePreset ?? DEFAULT_EDGE_PRESET) : c.name === 'vis' ? (spec.blurPreset ?? DEFAULT_BLUR_PRESET) : DEPTH_PRESET;
    out.push({ name: c.name, preset });
  }
  return out;
}

/**
 * Upstream's raw-clip path: the clip read and resized to the model resolution (INTER_AREA), each
 * ready-made control resized to the same size with its kind's interpolation, the rest computed.
 */
export async function clipControlSource(o: ClipSourceOptions): Promise<ControlSource> {
  const { spec, backend, fs, limits } = o;
  const computed = computedControls(spec, o.given);
  const what = typeof o.input === 'string' ? o.input : 'input';
  const resolution = o.resolution ?? spec.resolution ?? DEFAULT_RESOLUTION;
  // the size comes from the clip's aspect ratio: its header, or the clip itself
  const head = typeof o.input === 'string' ? await probeVideo(o.input, { limits }, fs) : o.input;
  let size: [number, number];
  try {
    size = modelSize(resolution, head.width, head.height);
  } catch (e) {
    throw new PipelineInputError('resolution', (e as Error).message);
  }
  // with depth the clip is read once at its own size (the depth branch needs all of it), else resized as it streams
  const needDepth = computed.some((c) => c.name === 'depth');
  if (needDepth && o.depthModel === undefined) throw new UserError(missingDepthModel());
  let whole: FramesU8 | null = needDepth ? await readFramesU8(o.input, { size: null, mode: 'area', backend, fs, limits, what }) : null;
  const raw = whole
    ? await resizeFramesU8(sliceFramesU8(whole, 0, Math.min(whole.frames, o.maxFrames ?? whole.frames)), size, 'area', backend)
    : await readFramesU8(o.input, { size, mode: 'area', backend, maxFrames: o.maxFrames, fs, limits, what });
  const ready = new Map<string, FramesU8>();
  for (const c of spec.controls) {
    const src = o.given[c.name] ?? c.inputControl;
    if (src === null) continue;
    const v = await readFramesU8(src, { size, mode: controlResizeMode(c.name), backend, maxFrames: raw.frames, fs, limits, what: typeof src === 'string' ? src : `control ${c.name}` });
    if (v.frames < raw.frames) {
      throw new PipelineInputError(`control ${c.name}`, `the control video has ${v.frames} frames, the clip ${raw.frames}; it must cover every frame generated`);
    }
    ready.set(c.name, v);
  }
  // depth: the whole clip at its own size through the network, then resized to the model's
  if (whole) {
    ready.set('depth', await clipDepth(o, whole, size));
    whole = null;
  }
  const madeWhole = new Set<string>(computed.filter((c) => c.name === 'depth').map((c) => c.name));
  return {
    kind: 'clip',
    frames: raw.frames,
    height: raw.height,
    width: raw.width,
    fps: raw.fps,
    computed,
    async chunk(start, end, order, newFrom, onFrames) {
      const real = sliceFramesU8(raw, start, end);
      const out: Video[] = [];
      for (const c of spec.controls) {
        const made = ready.get(c.name);
        if (made) {
          if (madeWhole.has(c.name) && onFrames && newFrom < end) await onFrames(c.name, framesToVideo(sliceFramesU8(made, newFrom, end)), newFrom);
          out.push(framesToVideo(pickFrames(made, order.map((i) => start + i))));
          continue;
        }
        const cc = computed.find((x) => x.name === c.name)!;
        const map = await controlMap(cc, real, backend);
        if (onFrames && newFrom < end) await onFrames(c.name, framesToVideo(sliceFramesU8(map, newFrom - start, end - start)), newFrom);
        out.push(framesToVideo(pickFrames(map, order)));
      }
      return out;
    },
  };
}

/**
 * The depth control of the raw clip, as upstream's depth branch: every frame of the clip at its
 * own size (`whole`: not cut to the frames generated, the normalisation is over the whole video),
 * the network run window by window, the uint8 control at the model size `size` ([W, H]). A model
 * given as a path is loaded here and freed before this returns, so it never meets the generator.
 */
async function clipDepth(o: ClipSourceOptions, whole: FramesU8, size: [number, number]): Promise<FramesU8> {
  if (o.depthModel === undefined) throw new UserError(missingDepthModel());
  o.onPhase?.('depth');
  const model = typeof o.depthModel === 'string' ? (await loadDepthModel(o.depthModel, o.backend, o.fs)).model : o.depthModel;
  try {
    const control = await depthControl(model, whole, { width: size[0], height: size[1], inputSize: o.depthInputSize, signal: o.signal, onProgress: o.onDepthProgress });
    return { ...control, ...(whole.fps ? { fps: whole.fps } : {}) };
  } finally {
    if (model !== o.depthModel) model.dispose();
  }
}
