// Float frames as PNG images, and clips as folders of numbered PNG frames. A [3, H, W] frame in
// [-1, 1] maps to bytes by round((v + 1) / 2 * 255) after clamping, and bytes back by
// v = b / 127.5 - 1 (the Y4M module's convention).
import { asFileError, type CreateFolderOptions, type FileSystem, fileSystem, inOutputFolder } from './files.js';
import { basename, join } from './path.js';
import { checkFrameCount, checkFrameLimits } from './limits.js';
import { PngError, type PngReadOptions, probePng, type RgbImage, readPng, writePng } from './png.js';
import { checkVideo, type FrameSource, getFrame, type Rational, setFrame, type Video } from './video.js';

// ---------------------------------------------------------------------------------------------
// float frames <-> images

/** A [3, H, W] frame in [-1, 1] (or frame t of a [3, T, H, W] clip) as an 8-bit RGB image. */
export function frameToImage(frame: Float32Array, height: number, width: number, base = 0, channelStride = height * width): RgbImage {
  const hw = height * width;
  const data = new Uint8Array(3 * hw);
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) {
      const v = frame[base + c * channelStride + p];
      data[3 * p + c] = v <= -1 ? 0 : v >= 1 ? 255 : Math.round(((v + 1) / 2) * 255); // NaN -> 0
    }
  }
  return { width, height, data };
}

/** An 8-bit RGB image as a [3, H, W] frame in [-1, 1]. */
export function imageToFrame(img: RgbImage): Float32Array {
  const hw = img.width * img.height;
  const out = new Float32Array(3 * hw);
  for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) out[c * hw + p] = img.data[3 * p + c] / 127.5 - 1;
  return out;
}

// ---------------------------------------------------------------------------------------------
// folders of numbered frames

const NUMBERED = /(\d+)\.png$/i;

/** Whether a file name is a numbered PNG frame (what listPngFrames reads). */
export function isPngFrameName(name: string): boolean {
  return NUMBERED.test(name);
}

/**
 * A folder of PNG frames is written as a whole; a folder already at its path is replaced only when
 * it holds nothing but numbered PNG frames (a previous output), never a folder with other files.
 */
export const PNG_FRAME_FOLDER: CreateFolderOptions = { replaceable: isPngFrameName, replaceableWhat: 'numbered PNG frames' };

/** The numbered .png files of a folder (the last run of digits before ".png"), in numeric order. */
export async function listPngFrames(dir: string, fs: FileSystem = fileSystem()): Promise<string[]> {
  const st = await fs.stat(dir);
  if (st?.kind !== 'directory') throw new PngError(dir, `cannot list: ${st ? 'not a directory' : 'no such directory'}`);
  let names: string[];
  try {
    names = await fs.list(dir);
  } catch (e) {
    throw asFileError(e, PngError);
  }
  const numbered = names
    .map((n) => ({ n, m: NUMBERED.exec(n) }))
    .filter((e): e is { n: string; m: RegExpExecArray } => e.m !== null)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]) || (a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
  if (numbered.length === 0) throw new PngError(dir, 'no numbered PNG frames (e.g. frame_000000.png) in this folder');
  return numbered.map((e) => join(dir, e.n));
}

/**
 * Stream a folder of numbered PNG frames (all the same size). The first frame's IHDR and the frame
 * count are checked against the limits (one frame held at a time) before any frame is decoded.
 */
export async function openPngFrames(
  dir: string, fps?: Rational, fs: FileSystem = fileSystem(), options: PngReadOptions = {},
): Promise<FrameSource & { files: string[] }> {
  const files = await listPngFrames(dir, fs);
  await probePng(files[0], options, fs);
  checkFrameCount(dir, files.length, options.limits);
  const first = await readPng(files[0], fs, options);
  const { width, height } = first;
  let started = false;
  async function* frames(): AsyncGenerator<Float32Array> {
    if (started) throw new PngError(dir, 'frames can be iterated only once');
    started = true;
    for (let i = 0; i < files.length; i++) {
      const img = i === 0 ? first : await readPng(files[i], fs, options);
      if (img.width !== width || img.height !== height) {
        throw new PngError(files[i], `is ${img.width}x${img.height}; the first frame (${basename(files[0])}) is ${width}x${height}`);
      }
      yield imageToFrame(img);
    }
  }
  return { files, width, height, fps, frameCount: files.length, frames, close: async () => {} };
}

/** Read a folder of numbered PNG frames as one [3, T, H, W] clip (every frame counts against limits.maxBytes). */
export async function readPngFrames(dir: string, fps?: Rational, fs: FileSystem = fileSystem(), options: PngReadOptions = {}): Promise<Video> {
  const files = await listPngFrames(dir, fs);
  const head = await probePng(files[0], options, fs);
  checkFrameLimits(dir, head.width, head.height, files.length, options.limits);
  const src = await openPngFrames(dir, fps, fs, options);
  const v: Video = { data: new Float32Array(3 * src.frameCount! * src.height * src.width), frames: src.frameCount!, height: src.height, width: src.width };
  if (fps) v.fps = fps;
  let t = 0;
  for await (const f of src.frames()) setFrame(v, t++, f);
  return v;
}

export interface PngFramesOptions {
  /** File name prefix (default "frame_"). */
  prefix?: string;
  /** Zero-padded digits (default 6). */
  digits?: number;
  /** Number of the first frame (default 0). */
  start?: number;
}

export function pngFrameName(index: number, o: PngFramesOptions = {}): string {
  return `${o.prefix ?? 'frame_'}${String(index).padStart(o.digits ?? 6, '0')}.png`;
}

/** Write one [3, H, W] frame as `<dir>/<prefix><index>.png`; returns the path. */
export async function writePngFrame(
  dir: string,
  index: number,
  frame: Float32Array,
  height: number,
  width: number,
  o: PngFramesOptions = {},
  fs: FileSystem = fileSystem(),
): Promise<string> {
  const path = join(dir, pngFrameName((o.start ?? 0) + index, o));
  await writePng(path, frameToImage(frame, height, width), {}, fs);
  return path;
}

/**
 * Write every frame of a clip as the folder `dir`, as a whole: the frames go to a temporary
 * folder that replaces `dir` once all are written (see PNG_FRAME_FOLDER), so a failure leaves
 * nothing, or the previous folder as it was. Returns the paths.
 */
export async function writePngFrames(dir: string, video: Video, o: PngFramesOptions = {}, fs: FileSystem = fileSystem()): Promise<string[]> {
  checkVideo(video, 'writePngFrames');
  const folder = await fs.createFolder(dir, PNG_FRAME_FOLDER);
  const paths: string[] = [];
  try {
    for (let t = 0; t < video.frames; t++) {
      await writePngFrame(folder.path, t, getFrame(video, t), video.height, video.width, o, fs);
      paths.push(join(dir, pngFrameName((o.start ?? 0) + t, o)));
    }
    await folder.commit();
  } catch (e) {
    await folder.abort();
    throw inOutputFolder(e, folder);
  }
  return paths;
}
