// One entry point for the video containers the CLI accepts: a .y4m file, a folder of numbered
// PNG frames, or a single .png image (a one-frame clip). Output: a path ending in .y4m is a Y4M
// file, anything else a folder of PNG frames (created when missing).
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { decodePng, imageToFrame, openPngFrames, PngError, writePngFrame } from './png.js';
import { type FrameSource, getFrame, type Rational, stackFrames, type Video } from './video.js';
import { type Chroma, type ColorRange, createY4mWriter, openY4m, Y4mError } from './y4m.js';

export type VideoKind = 'y4m' | 'png-folder' | 'png';

/** What kind of input a path is (by what is on disk: a folder, a .png file, or else Y4M). */
export async function videoKindOf(path: string): Promise<VideoKind> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch {
    throw new Y4mError(path, 'cannot open: no such file or directory');
  }
  if (st.isDirectory()) return 'png-folder';
  if (/\.png$/i.test(path)) return 'png';
  return 'y4m';
}

/** Open a clip for streaming: [3, H, W] frames in [-1, 1]. `fps` is used where the container has none. */
export async function openVideoSource(path: string, fps?: Rational): Promise<FrameSource & { kind: VideoKind }> {
  const kind = await videoKindOf(path);
  if (kind === 'y4m') {
    const r = await openY4m(path);
    return Object.assign(r, { kind, fps: r.fps ?? fps });
  }
  if (kind === 'png-folder') return Object.assign(await openPngFrames(path, fps), { kind });
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(path);
  } catch (e) {
    throw new PngError(path, `cannot open: ${(e as Error).message}`);
  }
  const img = decodePng(bytes, path);
  const frame = imageToFrame(img);
  return {
    kind,
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

/** Read a whole clip into [3, T, H, W]. */
export async function readVideo(path: string, fps?: Rational): Promise<Video> {
  const src = await openVideoSource(path, fps);
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
  readonly kind: 'y4m' | 'png-folder';
  readonly path: string;
  writeFrame(frame: Float32Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

export function isY4mPath(path: string): boolean {
  return /\.y4m$/i.test(path);
}

/** A .y4m path gets a Y4M writer; anything else is a folder of PNG frames. */
export async function createVideoSink(path: string, o: VideoSinkOptions): Promise<VideoSink> {
  if (isY4mPath(path)) {
    const w = await createY4mWriter(path, { width: o.width, height: o.height, fps: o.fps, chroma: o.chroma ?? '444', range: o.range ?? 'full' });
    return { kind: 'y4m', path, writeFrame: (f) => w.writeFrame(f), close: () => w.close(), abort: () => w.abort() };
  }
  await fsp.mkdir(path, { recursive: true });
  let t = 0;
  return {
    kind: 'png-folder',
    path,
    async writeFrame(f) {
      await writePngFrame(path, t++, f, o.height, o.width);
    },
    close: async () => {},
    abort: async () => {},
  };
}

/** Write a whole clip (see createVideoSink for the container choice). */
export async function writeVideo(path: string, video: Video, o: Partial<VideoSinkOptions> = {}): Promise<void> {
  const sink = await createVideoSink(path, {
    width: video.width,
    height: video.height,
    fps: o.fps ?? video.fps ?? { num: 24, den: 1 },
    chroma: o.chroma,
    range: o.range,
  });
  try {
    for (let t = 0; t < video.frames; t++) await sink.writeFrame(getFrame(video, t));
    await sink.close();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

/** A short human description of a path for messages. */
export function describePath(path: string): string {
  return nodePath.relative(process.cwd(), path) || path;
}
