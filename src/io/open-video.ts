// One entry point for the video containers the library accepts: a .y4m file, a folder of numbered
// PNG frames, or a single .png image (a one-frame clip). Output: a path ending in .y4m is a Y4M
// file, one ending in .png a single image (one-frame clips only), anything else a folder of PNG
// frames, written as a whole (see PNG_FRAME_FOLDER).
import { FileError, type FileSystem, fileSystem, inOutputFolder } from './files.js';
import { readPng, writePng } from './png.js';
import { frameToImage, imageToFrame, openPngFrames, PNG_FRAME_FOLDER, writePngFrame } from './png-frames.js';
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

/** Open a clip for streaming: [3, H, W] frames in [-1, 1]. `fps` is used where the container has none. */
export async function openVideoSource(path: string, fps?: Rational, fs: FileSystem = fileSystem()): Promise<FrameSource & { kind: VideoKind }> {
  const kind = await videoKindOf(path, fs);
  if (kind === 'y4m') {
    const r = await openY4m(path, {}, fs);
    return Object.assign(r, { kind, fps: r.fps ?? fps });
  }
  if (kind === 'png-folder') return Object.assign(await openPngFrames(path, fps, fs), { kind });
  const img = await readPng(path, fs);
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
export async function readVideo(path: string, fps?: Rational, fs: FileSystem = fileSystem()): Promise<Video> {
  const src = await openVideoSource(path, fps, fs);
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
