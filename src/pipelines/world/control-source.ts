// Where a transfer run's control videos come from, chunk by chunk: ready-made control videos as
// given (the spec's input_control files), or upstream's raw-clip path, where the clip and any
// ready-made control are resized to the model resolution and edge / vis are computed per chunk.
import type { Backend } from '../../engine/backend.js';
import { UserError } from '../../engine/errors.js';
import type { FileSystem } from '../../io/files.js';
import type { InputLimits } from '../../io/limits.js';
import { probeVideo } from '../../io/open-video.js';
import type { Rational, Video } from '../../io/video.js';
import { DEFAULT_EDGE_PRESET } from '../../models/controlnet/edge-map.js';
import { DEFAULT_RESOLUTION, modelSize } from '../../models/controlnet/resolution.js';
import { type ControlSpec, type TransferSpec, isComputedControl, notComputable } from '../../models/controlnet/spec.js';
import type { ClipInput } from './condition.js';
import { type ComputedControl, type FramesU8, controlMap, controlResizeMode, framesToVideo, pickFrames, readFramesU8, sliceFramesU8 } from './control-input.js';
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
}

/** The computed controls of a spec (those without a video) with their presets. */
export function computedControls(spec: TransferSpec, given: Readonly<Record<string, ClipInput>> = {}): ComputedControl[] {
  const out: ComputedControl[] = [];
  for (const c of spec.controls) {
    if (c.inputControl !== null || given[c.name] !== undefined) continue;
    const why = notComputable(c.name);
    if (why || !isComputedControl(c.name)) throw new UserError(`controls.${c.name}.input_control: missing: ${why}`);
    out.push({ name: c.name, preset: c.name === 'edge' ? (spec.edgePreset ?? DEFAULT_EDGE_PRESET) : (spec.blurPreset ?? DEFAULT_BLUR_PRESET) });
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
  const raw = await readFramesU8(o.input, { size, mode: 'area', backend, maxFrames: o.maxFrames, fs, limits, what });
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
