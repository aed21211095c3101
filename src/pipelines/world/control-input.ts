// Transfer from a raw clip (spec control_maps.md "Where they sit in Transfer2.5 inference"): the
// clip decoded to uint8 RGB and resized to the model resolution (cv2.resize INTER_AREA; a
// ready-made control video with its kind's interpolation), cut into chunks of `chunkFrames` that
// overlap by `overlap` frames, a short chunk padded by reflection in time, and the edge and vis
// controls computed from each chunk's frames. Both maps are per frame, so a chunk's padded map is
// the padded map of its real frames: every frame is mapped once per chunk it is in, padding never.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import { type InputLimits, InputLimitError, formatBytes, resolveLimits } from '../../io/limits.js';
import { openVideoSource } from '../../io/open-video.js';
import type { FrameSource, Rational, Video } from '../../io/video.js';
import { blurMap, blurPreset, type BlurPreset, engineStages } from '../../models/controlnet/blur-map.js';
import { edgeThresholds } from '../../models/controlnet/edge-map.js';
import { type FrameResizeMode as ResizeMode, resizeFrames } from '../../models/controlnet/resize-frames.js';
import type { ComputedControlName } from '../../models/controlnet/spec.js';
import type { ClipInput } from './condition.js';
import { PipelineInputError } from './errors.js';

/** uint8 RGB planes [3, frames, height, width], as upstream's C x T x H x W uint8 clips. */
export interface FramesU8 {
  data: Uint8Array;
  frames: number;
  height: number;
  width: number;
  fps?: Rational;
}

/** Upstream's Transfer2.5 chunk length. */
export const DEFAULT_CHUNK_FRAMES = 93;
/** Upstream generate_img2world's num_conditional_frames: frames a chunk takes from the one before. */
export const DEFAULT_CHUNK_OVERLAP = 1;

/** The interpolation upstream resizes a ready-made control video of each kind with (read_and_process_control_input). */
export function controlResizeMode(name: string): ResizeMode {
  if (name === 'vis') return 'area';
  if (name === 'seg') return 'nearest';
  return 'linear';
}

// ------------------------------------------------------------------ uint8 frames

/** A [3, H, W] frame in [-1, 1] as the uint8 bytes it was read from (every reader maps b to b / 127.5 - 1). */
function toBytes(frame: Float32Array, out: Uint8Array, at: number, stride: number, hw: number): void {
  for (let c = 0; c < 3; c++) {
    const o = at + c * stride;
    for (let p = 0; p < hw; p++) {
      const v = (frame[c * hw + p] + 1) * 127.5;
      out[o + p] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v); // NaN -> 0
    }
  }
}

/** The clip as the model reads it: b / 127.5 - 1. */
export function framesToVideo(f: FramesU8): Video {
  const data = new Float32Array(f.data.length);
  for (let i = 0; i < data.length; i++) data[i] = f.data[i] / 127.5 - 1;
  return { data, frames: f.frames, height: f.height, width: f.width, ...(f.fps ? { fps: f.fps } : {}) };
}

/** Frames [start, end) of a clip. */
export function sliceFramesU8(f: FramesU8, start: number, end: number): FramesU8 {
  return pickFrames(f, Array.from({ length: end - start }, (_, i) => start + i));
}

/** The clip's frames at `indices`, in that order. */
export function pickFrames(f: FramesU8, indices: readonly number[]): FramesU8 {
  const hw = f.height * f.width;
  const T = indices.length;
  const data = new Uint8Array(3 * T * hw);
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < T; t++) data.set(f.data.subarray((c * f.frames + indices[t]) * hw, (c * f.frames + indices[t] + 1) * hw), (c * T + t) * hw);
  }
  return { data, frames: T, height: f.height, width: f.width, ...(f.fps ? { fps: f.fps } : {}) };
}

/** Frames per resize call: bounded so one call's f32 input and output stay well inside a binding. */
function framesPerResize(backend: Backend, h: number, w: number, oh: number, ow: number): number {
  const budget = Math.min(backend.limits.maxBindingBytes, 256 * 2 ** 20);
  return Math.max(1, Math.floor(budget / (3 * 4 * Math.max(h * w, oh * ow))));
}

async function* framesOf(input: Video | FrameSource): AsyncGenerator<Float32Array> {
  if ('data' in input) {
    const hw = input.height * input.width;
    for (let t = 0; t < input.frames; t++) {
      const f = new Float32Array(3 * hw);
      for (let c = 0; c < 3; c++) f.set(input.data.subarray((c * input.frames + t) * hw, (c * input.frames + t + 1) * hw), c * hw);
      yield f;
    }
    return;
  }
  yield* input.frames();
}

export interface ReadFramesOptions {
  /** [W, H] to resize every frame to (null: as read) */
  size: readonly [number, number] | null;
  mode: ResizeMode;
  backend: Backend;
  /** frames to read at most (from the first) */
  maxFrames?: number;
  fs?: FileSystem;
  limits?: InputLimits;
  /** the option or field the clip came from, for errors */
  what: string;
}

/**
 * A clip (path, frame source or video) read frame by frame into uint8 RGB planes, each group of
 * frames resized on the backend as upstream's cv2.resize does: only the resized clip is held, so a
 * 4K source costs its model-resolution size. The held bytes count against limits.maxBytes.
 */
export async function readFramesU8(input: ClipInput, o: ReadFramesOptions): Promise<FramesU8> {
  const limits = resolveLimits(o.limits);
  const src = typeof input === 'string' ? await openVideoSource(input, undefined, o.fs, { limits }) : input;
  try {
    const [W, H] = o.size ?? [src.width, src.height];
    const count = Math.min(o.maxFrames ?? Number.POSITIVE_INFINITY, 'data' in src ? src.frames : (src.frameCount ?? limits.maxFrames));
    const held = 3 * W * H * count;
    if (held > limits.maxBytes) {
      throw new InputLimitError(`${o.what}: ${count} frames of ${W}x${H} (W x H) hold ${formatBytes(held)} as uint8, over the limit of ${formatBytes(limits.maxBytes)}; raise it with --max-input-bytes (limits.maxBytes) to read it`);
    }
    const group = framesPerResize(o.backend, src.height, src.width, H, W);
    const hwIn = src.height * src.width;
    const parts: Uint8Array[] = [];
    let pending: Float32Array[] = [];
    let frames = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const g = pending.length;
      const planes = new Uint8Array(3 * g * hwIn);
      for (let t = 0; t < g; t++) toBytes(pending[t], planes, t * hwIn, g * hwIn, hwIn);
      pending = [];
      parts.push(W === src.width && H === src.height ? planes : await resizePlanes(o.backend, planes, g, src.height, src.width, H, W, o.mode));
    };
    for await (const f of framesOf(src)) {
      if (frames >= count) break;
      pending.push(f);
      frames++;
      if (pending.length === group) await flush();
    }
    await flush();
    if (frames === 0) throw new PipelineInputError(o.what, 'the clip has no frames');
    // the groups are [3, g, H, W] each: interleave them into one [3, T, H, W]
    const hw = W * H;
    const data = new Uint8Array(3 * frames * hw);
    let t0 = 0;
    for (const p of parts) {
      const g = p.length / (3 * hw);
      for (let c = 0; c < 3; c++) data.set(p.subarray(c * g * hw, (c + 1) * g * hw), (c * frames + t0) * hw);
      t0 += g;
    }
    return { data, frames, height: H, width: W, ...(src.fps ? { fps: src.fps } : {}) };
  } finally {
    if (typeof input === 'string') await (src as FrameSource).close();
  }
}

/** Frames held in memory resized as readFramesU8 resizes them while reading (each frame alone, so grouping does not matter). */
export async function resizeFramesU8(f: FramesU8, size: readonly [number, number], mode: ResizeMode, backend: Backend): Promise<FramesU8> {
  const [W, H] = size;
  if (W === f.width && H === f.height) return f;
  const group = framesPerResize(backend, f.height, f.width, H, W);
  const hwIn = f.height * f.width;
  const hw = W * H;
  const data = new Uint8Array(3 * f.frames * hw);
  for (let t0 = 0; t0 < f.frames; t0 += group) {
    const g = Math.min(group, f.frames - t0);
    const planes = new Uint8Array(3 * g * hwIn);
    for (let c = 0; c < 3; c++) planes.set(f.data.subarray((c * f.frames + t0) * hwIn, (c * f.frames + t0 + g) * hwIn), c * g * hwIn);
    const out = await resizePlanes(backend, planes, g, f.height, f.width, H, W, mode);
    for (let c = 0; c < 3; c++) data.set(out.subarray(c * g * hw, (c + 1) * g * hw), (c * f.frames + t0) * hw);
  }
  return { data, frames: f.frames, height: H, width: W, ...(f.fps ? { fps: f.fps } : {}) };
}

async function resizePlanes(backend: Backend, planes: Uint8Array, g: number, h: number, w: number, oh: number, ow: number, mode: ResizeMode): Promise<Uint8Array> {
  const out = scope(() => resizeFrames(F.fromArray(backend, Float32Array.from(planes), [3, g, h, w]), ow, oh, mode));
  try {
    return Uint8Array.from(await out.read());
  } finally {
    out.dispose();
  }
}

// ------------------------------------------------------------------ chunks

export interface ChunkPlan {
  /** frames of the output (and of the clip read) */
  total: number;
  chunkFrames: number;
  overlap: number;
  /** each chunk's real frames [start, end); a chunk shorter than chunkFrames is padded by reflection */
  chunks: { start: number; end: number }[];
}

/** Upstream's chunk layout (_get_num_chunks): chunk k starts at k * (chunkFrames - overlap). */
export function planChunks(total: number, chunkFrames: number, overlap: number): ChunkPlan {
  if (!Number.isInteger(total) || total < 1) throw new PipelineInputError('frames', `must be an integer >= 1, got ${total}`);
  if (!Number.isInteger(chunkFrames) || chunkFrames < 1) throw new PipelineInputError('chunkFrames', `must be an integer >= 1, got ${chunkFrames}`);
  if (!Number.isInteger(overlap) || overlap < 0 || (overlap >= chunkFrames && total > chunkFrames)) {
    throw new PipelineInputError('chunkOverlap', `must be an integer in [0, ${chunkFrames - 1}] (below the chunk's ${chunkFrames} frames), got ${overlap}`);
  }
  let n = 1;
  if (chunkFrames > 1 && total > chunkFrames) n = 1 + Math.ceil((total - chunkFrames) / (chunkFrames - overlap));
  const chunks = [];
  for (let k = 0; k < n; k++) {
    const start = k * (chunkFrames - overlap);
    chunks.push({ start, end: Math.min(start + chunkFrames, total) });
  }
  return { total, chunkFrames, overlap, chunks };
}

/**
 * The frame order of a clip of n frames padded to `length` (upstream _pad_input_frames, "reflect"):
 * while short, append the clip so far read from its last frame backwards, at most its length - 1
 * frames a round (so the last frame shows twice: a b c -> a b c c b); a 1-frame clip repeats.
 */
export function reflectOrder(n: number, length: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  if (n >= length) return order;
  if (n === 1) return Array.from({ length }, () => 0);
  while (order.length < length) {
    const add = Math.min(order.length - 1, length - order.length);
    const reversed = [...order].reverse();
    order.push(...reversed.slice(0, add));
  }
  return order;
}

// ------------------------------------------------------------------ the maps

export interface ComputedControl {
  name: ComputedControlName;
  /** edge: a Canny preset; vis: a blur strength */
  preset: string;
}

/** Frames per map call: a group's f32 planes stay inside a binding (the maps are per frame). */
function framesPerMap(backend: Backend, h: number, w: number): number {
  const budget = Math.min(backend.limits.maxBindingBytes, 128 * 2 ** 20);
  return Math.max(1, Math.floor(budget / (3 * 4 * h * w)));
}

async function edgeFrames(f: FramesU8, lo: number, hi: number, backend: Backend): Promise<Uint8Array> {
  const hw = f.height * f.width;
  const out = new Uint8Array(3 * f.frames * hw);
  const step = framesPerMap(backend, f.height, f.width);
  for (let t0 = 0; t0 < f.frames; t0 += step) {
    const g = Math.min(step, f.frames - t0);
    const part = sliceFramesU8(f, t0, t0 + g);
    let edges: Tensor | undefined;
    const x = F.fromArray(backend, Float32Array.from(part.data), [3, g, f.height, f.width]);
    try {
      edges = await F.canny(x, lo, hi);
      const e = await edges.read();
      // one binary map per frame, the same on the three channels (AddControlInputEdge)
      for (let c = 0; c < 3; c++) {
        for (let t = 0; t < g; t++) {
          const o = (c * f.frames + t0 + t) * hw;
          for (let p = 0; p < hw; p++) out[o + p] = e[t * hw + p];
        }
      }
    } finally {
      x.dispose();
      edges?.dispose();
    }
  }
  return out;
}

async function visFrames(f: FramesU8, preset: string, backend: Backend): Promise<Uint8Array> {
  const settings = blurPreset('transfer2.5', preset as BlurPreset);
  const hw = f.height * f.width;
  const out = new Uint8Array(3 * f.frames * hw);
  const step = framesPerMap(backend, f.height, f.width);
  const stages = engineStages(backend);
  for (let t0 = 0; t0 < f.frames; t0 += step) {
    const g = Math.min(step, f.frames - t0);
    const part = sliceFramesU8(f, t0, t0 + g);
    const m = await blurMap(part.data, [3, g, f.height, f.width], settings, undefined, stages);
    for (let c = 0; c < 3; c++) out.set(m.subarray(c * g * hw, (c + 1) * g * hw), (c * f.frames + t0) * hw);
  }
  return out;
}

/** A computed control's uint8 map of every frame of `f` (spec control_maps.md "Edge", "Blur"). */
export async function controlMap(c: ComputedControl, f: FramesU8, backend: Backend): Promise<FramesU8> {
  let data: Uint8Array;
  if (c.name === 'depth') throw new Error('the depth control is made for the whole clip (clipDepth), not per chunk');
  if (c.name === 'edge') {
    const [lo, hi] = edgeThresholds(c.preset, `edge preset`);
    data = await edgeFrames(f, lo, hi, backend);
  } else {
    data = await visFrames(f, c.preset, backend);
  }
  return { data, frames: f.frames, height: f.height, width: f.width, ...(f.fps ? { fps: f.fps } : {}) };
}
