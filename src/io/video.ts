// The in-memory video layout shared by the Y4M and PNG readers/writers, the metrics and the
// tokenizer commands: RGB float frames in [-1, 1], channel-first [3, T, H, W] (the tokenizer's
// B x 3 x T x H x W without B). A single frame is [3, H, W].

/** A frame rate as a fraction (e.g. 30000/1001). */
export interface Rational {
  num: number;
  den: number;
}

/** A clip: `data` is RGB in [-1, 1], laid out [3, frames, height, width]. */
export interface Video {
  data: Float32Array;
  frames: number;
  height: number;
  width: number;
  /** Frames per second, when the source records it. */
  fps?: Rational;
}

/** The frame rate used when neither the source nor the caller gives one. */
export const DEFAULT_FPS: Rational = Object.freeze({ num: 24, den: 1 });

export function fpsValue(r: Rational): number {
  return r.num / r.den;
}

/** Parse "30", "29.97", "30000/1001" or "30000:1001" into a fraction; undefined when malformed. */
export function parseFps(s: string): Rational | undefined {
  const m = /^\s*(\d+)\s*[/:]\s*(\d+)\s*$/.exec(s);
  if (m) {
    const num = Number(m[1]);
    const den = Number(m[2]);
    return num > 0 && den > 0 ? { num, den } : undefined;
  }
  const x = Number(s);
  if (!Number.isFinite(x) || x <= 0 || s.trim() === '') return undefined;
  if (Number.isInteger(x)) return { num: x, den: 1 };
  // 29.97 -> 30000/1001 style values are common; otherwise keep three decimals.
  for (const base of [24, 25, 30, 48, 50, 60, 120]) {
    if (Math.abs(x - (base * 1000) / 1001) < 0.005) return { num: base * 1000, den: 1001 };
  }
  return { num: Math.round(x * 1000), den: 1000 };
}

/** Check that `data` holds 3 x frames x height x width values. */
export function checkVideo(v: Video, what = 'video'): void {
  for (const [k, n] of [['frames', v.frames], ['height', v.height], ['width', v.width]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what}: ${k} is ${n}; expected a non-negative integer`);
  }
  const need = 3 * v.frames * v.height * v.width;
  if (v.data.length !== need) {
    throw new RangeError(
      `${what}: data has ${v.data.length} values but [3, ${v.frames}, ${v.height}, ${v.width}] needs ${need}`,
    );
  }
}

/** Copy frame t of a [3, T, H, W] clip into a new [3, H, W] array. */
export function getFrame(v: Video, t: number): Float32Array {
  const hw = v.height * v.width;
  const out = new Float32Array(3 * hw);
  for (let c = 0; c < 3; c++) {
    const at = (c * v.frames + t) * hw;
    out.set(v.data.subarray(at, at + hw), c * hw);
  }
  return out;
}

/** Write a [3, H, W] frame into frame t of a [3, T, H, W] clip. */
export function setFrame(v: Video, t: number, frame: Float32Array): void {
  const hw = v.height * v.width;
  for (let c = 0; c < 3; c++) v.data.set(frame.subarray(c * hw, (c + 1) * hw), (c * v.frames + t) * hw);
}

/** Stack [3, H, W] frames into one [3, T, H, W] clip. */
export function stackFrames(frames: readonly Float32Array[], height: number, width: number, fps?: Rational): Video {
  const v: Video = { data: new Float32Array(3 * frames.length * height * width), frames: frames.length, height, width };
  if (fps) v.fps = fps;
  frames.forEach((f, t) => {
    if (f.length !== 3 * height * width) {
      throw new RangeError(`stackFrames: frame ${t} has ${f.length} values; expected 3 x ${height} x ${width}`);
    }
    setFrame(v, t, f);
  });
  return v;
}

/** Frames [start, end) of a clip as a new clip. */
export function sliceFrames(v: Video, start: number, end: number): Video {
  const s = Math.max(0, Math.min(start, v.frames));
  const e = Math.max(s, Math.min(end, v.frames));
  const n = e - s;
  const hw = v.height * v.width;
  const out: Video = { data: new Float32Array(3 * n * hw), frames: n, height: v.height, width: v.width };
  if (v.fps) out.fps = v.fps;
  for (let c = 0; c < 3; c++) {
    out.data.set(v.data.subarray((c * v.frames + s) * hw, (c * v.frames + e) * hw), c * n * hw);
  }
  return out;
}

/** Concatenate clips of the same size along time. */
export function concatFrames(parts: readonly Video[]): Video {
  if (parts.length === 0) throw new RangeError('concatFrames: no clips');
  const { height, width } = parts[0];
  for (const p of parts) {
    if (p.height !== height || p.width !== width) {
      throw new RangeError(`concatFrames: clip of ${p.height}x${p.width} does not match ${height}x${width}`);
    }
  }
  const frames = parts.reduce((a, p) => a + p.frames, 0);
  const hw = height * width;
  const out: Video = { data: new Float32Array(3 * frames * hw), frames, height, width };
  if (parts[0].fps) out.fps = parts[0].fps;
  for (let c = 0; c < 3; c++) {
    let t = 0;
    for (const p of parts) {
      out.data.set(p.data.subarray(c * p.frames * hw, (c + 1) * p.frames * hw), (c * frames + t) * hw);
      t += p.frames;
    }
  }
  return out;
}

/** A source of frames that is read one frame at a time (bounded memory). */
export interface FrameSource {
  readonly width: number;
  readonly height: number;
  readonly fps: Rational | undefined;
  /** The number of frames when known in advance (exact for files whose frame headers carry no parameters). */
  readonly frameCount: number | undefined;
  /** [3, H, W] frames in [-1, 1], in order. Iterate once. */
  frames(): AsyncIterableIterator<Float32Array>;
  close(): Promise<void>;
}

/**
 * Pad a clip at the end of each axis by repeating its last frame / row / column (edge
 * replication) up to `frames` x `height` x `width` (each >= the clip's own).
 */
export function padVideo(v: Video, frames: number, height: number, width: number): Video {
  if (frames < v.frames || height < v.height || width < v.width) {
    throw new RangeError(`padVideo: cannot pad ${v.frames}x${v.height}x${v.width} to the smaller ${frames}x${height}x${width}`);
  }
  if (v.frames === 0 || v.height === 0 || v.width === 0) throw new RangeError('padVideo: empty clip');
  if (frames === v.frames && height === v.height && width === v.width) return v;
  const out: Video = { data: new Float32Array(3 * frames * height * width), frames, height, width };
  if (v.fps) out.fps = v.fps;
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < frames; t++) {
      const st = Math.min(t, v.frames - 1);
      for (let y = 0; y < height; y++) {
        const sy = Math.min(y, v.height - 1);
        const src = ((c * v.frames + st) * v.height + sy) * v.width;
        const dst = ((c * frames + t) * height + y) * width;
        out.data.set(v.data.subarray(src, src + v.width), dst);
        const edge = v.data[src + v.width - 1];
        if (width > v.width) out.data.fill(edge, dst + v.width, dst + width);
      }
    }
  }
  return out;
}

/** The top-left frames x height x width of a clip (each <= the clip's own). */
export function cropVideo(v: Video, frames: number, height: number, width: number): Video {
  if (frames > v.frames || height > v.height || width > v.width) {
    throw new RangeError(`cropVideo: cannot crop ${v.frames}x${v.height}x${v.width} to the larger ${frames}x${height}x${width}`);
  }
  if (frames === v.frames && height === v.height && width === v.width) return v;
  const out: Video = { data: new Float32Array(3 * frames * height * width), frames, height, width };
  if (v.fps) out.fps = v.fps;
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < frames; t++) {
      for (let y = 0; y < height; y++) {
        const src = ((c * v.frames + t) * v.height + y) * v.width;
        out.data.set(v.data.subarray(src, src + width), ((c * frames + t) * height + y) * width);
      }
    }
  }
  return out;
}

/** The smallest valid size >= the clip's for a causal tokenizer: T = 1 + k*tc, H and W multiples of sc. */
export function tokenizerSize(frames: number, height: number, width: number, tc: number, sc: number): [number, number, number] {
  const up = (n: number, m: number) => Math.max(m, Math.ceil(n / m) * m);
  return [1 + Math.ceil(Math.max(0, frames - 1) / tc) * tc, up(height, sc), up(width, sc)];
}
