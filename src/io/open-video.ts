// One entry point for the video containers the library accepts: a .y4m file, a folder of numbered
// PNG frames, or a single .png image (a one-frame clip). Output: a path ending in .y4m is a Y4M
// file, one ending in .png a single image (one-frame clips only), anything else a folder of PNG
// frames, written as a whole (see PNG_FRAME_FOLDER).
import { FileError, type FileSystem, fileSystem, inOutputFolder } from './files.js';
import { checkFrameCount, checkFrameLimits, type InputLimits } from './limits.js';
import { probePng, readPng, writePng } from './png.js';
import { frameToImage, imageToFrame, listPngFrames, openPngFrames, PNG_FRAME_FOLDER, writePngFrame } from './png-frames.js';
import { DEFAULT_FPS, type FrameSource, getFrame, type Rational, stackFrames, type Video } from './video.js';
import { createY4mWriter, openY4m, Y4mError } from './y4m.js';
import type { Chroma, ColorRange } from './yuv.js';

export type VideoKind = 'y4m' | 'png-folder' | 'png';

/** What kind of input a path is (by what is there: a folder, a .png file, or else Y4M). */
export async function videoKindOf(path: string, fs: FileSystem = fileSystem()): Promise<VideoKind> {
  const st = await fs.stat(path);
  if (!st) throw new Y4mError(path, 'cannot open: no such file or directory');
  if (st.kind === 'directory') return 'png-folder';
  return /\.png$/i.test(path) ? 'png' : 'y4m';
}

export interface VideoReadOptions {
  /** what the headers may claim (default DEFAULT_LIMITS, limits.ts) */
  limits?: InputLimits;
  /**
   * The caller holds every frame at once (readVideo, roundtrip): the whole clip's float32 bytes
   * count against limits.maxBytes, not one frame's.
   */
  whole?: boolean;
}

/** What a clip's headers say, checked (limits included), without decoding a frame. */
export interface VideoHeader {
  kind: VideoKind;
  width: number;
  height: number;
  /** exact, or the most the file leaves room for (a Y4M whose FRAME lines carry parameters) */
  frames: number;
  /** the container's rate; undefined when it records none (PNG, a Y4M without F) */
  fps: Rational | undefined;
}

/**
 * Open a clip's header (a Y4M header, the first PNG's IHDR and the frame count of a folder, a PNG's
 * IHDR) and check it against the limits, reading no picture data: what a command does with its
 * inputs before it loads any model.
 */
export async function probeVideo(path: string, o: VideoReadOptions = {}, fs: FileSystem = fileSystem()): Promise<VideoHeader> {
  const kind = await videoKindOf(path, fs);
  let h: VideoHeader;
  if (kind === 'y4m') {
    const r = await openY4m(path, { limits: o.limits }, fs);
    await r.close();
    h = { kind, width: r.width, height: r.height, frames: r.frameCount ?? r.mostFrames, fps: r.fps };
  } else if (kind === 'png-folder') {
    const files = await listPngFrames(path, fs);
    const info = await probePng(files[0], { limits: o.limits }, fs);
    h = { kind, width: info.width, height: info.height, frames: files.length, fps: undefined };
  } else {
    const info = await probePng(path, { limits: o.limits }, fs);
    h = { kind, width: info.width, height: info.height, frames: 1, fps: undefined };
  }
  if (o.whole) checkFrameLimits(path, h.width, h.height, h.frames, o.limits);
  else {
    checkFrameLimits(path, h.width, h.height, undefined, o.limits);
    checkFrameCount(path, h.frames, o.limits);
  }
  return h;
}

/**
 * Open a clip for streaming: [3, H, W] frames in [-1, 1]. `fps` is used where the container has
 * none (PNG, a Y4M without an F tag: `fpsAssumed` is then true). The headers are checked against
 * `o.limits` before any frame is read.
 */
export async function openVideoSource(
  path: string, fps?: Rational, fs: FileSystem = fileSystem(), o: VideoReadOptions = {},
): Promise<FrameSource & { kind: VideoKind; fpsAssumed: boolean }> {
  const kind = await videoKindOf(path, fs);
  if (kind === 'y4m') {
    const r = await openY4m(path, { limits: o.limits }, fs);
    try {
      if (o.whole) checkFrameLimits(path, r.width, r.height, r.frameCount ?? r.mostFrames, o.limits);
    } catch (e) {
      await r.close();
      throw e;
    }
    return Object.assign(r, { kind, fps: r.fps ?? fps, fpsAssumed: r.fps === undefined });
  }
  if (kind === 'png-folder') {
    if (o.whole) await probeVideo(path, o, fs);
    return Object.assign(await openPngFrames(path, fps, fs, { limits: o.limits }), { kind, fpsAssumed: true });
  }
  const img = await readPng(path, fs, { limits: o.limits });
  const frame = imageToFrame(img);
  return {
    kind,
    fpsAssumed: true,
    width: img.width,
    height: img.height,
    fps,
    frameCount: 1,
    async *frames() {
      yield frame;
    },
    close: async () => {},
  };
}

/** Read a whole clip into [3, T, H, W] (the whole clip counts against limits.maxBytes). */
export async function readVideo(path: string, fps?: Rational, fs: FileSystem = fileSystem(), o: Omit<VideoReadOptions, 'whole'> = {}): Promise<Video> {
  const src = await openVideoSource(path, fps, fs, { ...o, whole: true });
  const frames: Float32Array[] = [];
  try {
    for await (const f of src.frames()) frames.push(f);
  } finally {
    await src.close();
  }
  return stackFrames(frames, src.height, src.width, src.fps);
}

export interface VideoSinkOptions {
  width: number;
  height: number;
  fps: Rational;
  /** Y4M only (default 444). */
  chroma?: Chroma;
  /** Y4M only (default full). */
  range?: ColorRange;
}

/** A streaming destination for [3, H, W] frames. */
export interface VideoSink {
  readonly kind: 'y4m' | 'png-folder' | 'png';
  readonly path: string;
  writeFrame(frame: Float32Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

export function isY4mPath(path: string): boolean {
  return /\.y4m$/i.test(path);
}

/**
 * A .y4m path gets a Y4M writer; a .png path one PNG file (for a single frame: an image); anything
 * else is a folder of PNG frames. Every file is written atomically.
 */
export async function createVideoSink(path: string, o: VideoSinkOptions, fs: FileSystem = fileSystem()): Promise<VideoSink> {
  if (/\.png$/i.test(path)) {
    let written = false;
    return {
      kind: 'png',
      path,
      async writeFrame(f) {
        if (written) throw new FileError(path, 'a .png output holds one frame; this clip has more (write a .y4m or a folder of PNG frames)');
        written = true;
        await writePng(path, frameToImage(f, o.height, o.width), {}, fs);
      },
      close: async () => {},
      abort: async () => {},
    };
  }
  if (isY4mPath(path)) {
    const w = await createY4mWriter(path, { width: o.width, height: o.height, fps: o.fps, chroma: o.chroma ?? '444', range: o.range ?? 'full' }, fs);
    return { kind: 'y4m', path, writeFrame: (f) => w.writeFrame(f), close: () => w.close(), abort: () => w.abort() };
  }
  // frames go to a temporary folder that replaces `path` on close; abort removes it
  const folder = await fs.createFolder(path, PNG_FRAME_FOLDER);
  let t = 0;
  return {
    kind: 'png-folder',
    path,
    async writeFrame(f) {
      try {
        await writePngFrame(folder.path, t++, f, o.height, o.width, {}, fs);
      } catch (e) {
        throw inOutputFolder(e, folder);
      }
    },
    close: () => folder.commit(),
    abort: () => folder.abort(),
  };
}

/** Write a whole clip (see createVideoSink for the container choice). */
export async function writeVideo(path: string, video: Video, o: Partial<VideoSinkOptions> = {}, fs: FileSystem = fileSystem()): Promise<void> {
  if (/\.png$/i.test(path) && video.frames !== 1) {
    throw new FileError(path, `a .png output holds one frame; this clip has ${video.frames} (write a .y4m or a folder of PNG frames)`);
  }
  const sink = await createVideoSink(
    path,
    { width: video.width, height: video.height, fps: o.fps ?? video.fps ?? DEFAULT_FPS, chroma: o.chroma, range: o.range },
    fs,
  );
  try {
    for (let t = 0; t < video.frames; t++) await sink.writeFrame(getFrame(video, t));
    await sink.close();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}
