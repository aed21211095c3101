// The images and videos `reason` looks at, as the model's processor wants them: uint8 RGB images,
// and clips sampled at a requested rate (qwen-vl-utils' smart_nframes), only the sampled frames
// kept. From data (a FrameSource, a Video) or from files (PNG images; .y4m clips or folders of PNG
// frames), whose formats are sniffed so that a wrong kind of file is named, not misread.
import { type FileSystem, fileSystem, readBytes } from '../io/files.js';
import { openVideoSource } from '../io/open-video.js';
import type { InputLimits } from '../io/limits.js';
import { decodePng, probePng } from '../io/png.js';
import { type FrameSource, type Rational, type Video, fpsValue } from '../io/video.js';
import { PreprocessError } from '../models/vlm/config.js';
import { type ImageU8, type VideoU8, frameToU8, sampleVideoFrames } from '../models/vlm/preprocess.js';
import { isFrameSource, videoSource } from './frame-source.js';
import { ReasonInputError } from './reason-assets.js';

const SIGNATURES: [string, number[], number][] = [
  ['PNG', [0x89, 0x50, 0x4e, 0x47], 0],
  ['JPEG', [0xff, 0xd8, 0xff], 0],
  ['GIF', [0x47, 0x49, 0x46, 0x38], 0],
  ['BMP', [0x42, 0x4d], 0],
  ['TIFF', [0x49, 0x49, 0x2a, 0x00], 0],
  ['TIFF', [0x4d, 0x4d, 0x00, 0x2a], 0],
  ['Y4M', [0x59, 0x55, 0x56, 0x34, 0x4d, 0x50, 0x45, 0x47], 0],
  ['MP4/MOV/HEIF', [0x66, 0x74, 0x79, 0x70], 4],
];

/** The format a file's first bytes announce, or null. */
function sniffFormat(b: Uint8Array): string | null {
  const at = (sig: number[], o: number) => sig.every((x, i) => b[o + i] === x);
  if (at([0x52, 0x49, 0x46, 0x46], 0) && at([0x57, 0x45, 0x42, 0x50], 8)) return 'WebP';
  return SIGNATURES.find(([, sig, o]) => at(sig, o))?.[0] ?? null;
}

/** A PNG image as uint8 RGB; other formats are refused with what they are. Its IHDR is checked against `o.limits` before the file is read whole. */
export async function readImageFile(path: string, fs: FileSystem = fileSystem(), o: { limits?: InputLimits } = {}): Promise<ImageU8> {
  const st = await fs.stat(path);
  if (!st) throw new ReasonInputError(`image ${path}: cannot open (no such file)`);
  if (st.kind === 'directory') throw new ReasonInputError(`image ${path}: is a directory; expected a PNG file`);
  const f = await fs.open(path);
  const head = new Uint8Array(16);
  try {
    await f.read(0, head);
  } finally {
    await f.close();
  }
  if (sniffFormat(head) === 'PNG') await probePng(path, o, fs);
  const bytes = await readBytes(path, fs);
  const kind = sniffFormat(bytes);
  if (kind !== 'PNG') {
    const what = kind === 'Y4M' ? 'a Y4M video (pass it as a video)' : kind ? `a ${kind} file` : 'not a recognised image format';
    throw new ReasonInputError(`image ${path}: ${what}; only PNG images are supported (convert it, e.g. ffmpeg -i in.jpg out.png)`);
  }
  const img = decodePng(bytes, path, o);
  return { data: img.data, height: img.height, width: img.width };
}

/** A video after frame sampling: the kept frames and what it was sampled from. */
export interface SampledVideo {
  /** where it came from, for messages */
  name: string;
  video: VideoU8;
  totalFrames: number;
  sourceFps: number;
  /** the rate of the kept frames (nframes / total * source fps) */
  fps: number;
  indices: number[];
}

export interface SampleVideoOptions {
  /** temporal_patch_size: the fewest frames the sampling can take (default 2) */
  frameFactor?: number;
  /** the rate of a source that has none (default 24) */
  defaultSourceFps?: Rational;
  /** names the clip in messages */
  name?: string;
  /** what a clip file's headers may claim (readVideoFile; default DEFAULT_LIMITS): one frame at a time is held */
  limits?: InputLimits;
}

/**
 * Sample a clip at `fps` frames per second (qwen-vl-utils' smart_nframes). Frames become uint8
 * as they are read; with a known frame count only the sampled ones are kept.
 */
export async function sampleVideo(input: FrameSource | Video, fps: number, o: SampleVideoOptions = {}): Promise<SampledVideo> {
  const name = o.name ?? 'video';
  const frameFactor = o.frameFactor ?? 2;
  if (!(fps > 0)) throw new ReasonInputError(`fps: the video sampling rate must be > 0; got ${fps}`);
  const source = isFrameSource(input) ? input : videoSource(input);
  const sourceFps = fpsValue(source.fps ?? o.defaultSourceFps ?? { num: 24, den: 1 });
  const { width, height } = source;
  const plan = (total: number) => {
    if (total < frameFactor) {
      throw new ReasonInputError(`${name}: ${total} frame${total === 1 ? '' : 's'}; the frame sampling needs at least ${frameFactor} (temporal_patch_size) frames`);
    }
    try {
      return sampleVideoFrames(total, sourceFps, { fps, frameFactor });
    } catch (e) {
      if (e instanceof PreprocessError) throw new ReasonInputError(`${name}: ${total} frames at ${sourceFps} fps cannot be sampled at ${fps} fps (${e.message})`);
      throw e;
    }
  };
  let sampling = source.frameCount !== undefined ? plan(source.frameCount) : null;
  const wanted = sampling ? new Set(sampling.indices) : null;
  const kept: Uint8Array[] = [];
  let total = 0;
  for await (const f of source.frames()) {
    if (!wanted || wanted.has(total)) kept.push(frameToU8(f, height, width).data);
    total++;
  }
  let frames: Uint8Array[];
  if (sampling) {
    if (total !== source.frameCount) throw new ReasonInputError(`${name}: ${total} frames read, ${source.frameCount} expected`);
    frames = kept;
  } else {
    sampling = plan(total);
    frames = sampling.indices.map((t) => kept[t]);
  }
  const frameBytes = width * height * 3;
  const data = new Uint8Array(frames.length * frameBytes);
  frames.forEach((f, k) => {
    data.set(f, k * frameBytes);
  });
  return { name, video: { data, frames: frames.length, height, width }, totalFrames: total, sourceFps, fps: sampling.fps, indices: sampling.indices };
}

/**
 * A clip file (.y4m, or a folder of numbered PNG frames) sampled at `fps` (see sampleVideo);
 * a file of another kind is named.
 */
export async function readVideoFile(path: string, fps: number, o: Omit<SampleVideoOptions, 'name'> = {}, fs: FileSystem = fileSystem()): Promise<SampledVideo> {
  const st = await fs.stat(path);
  if (!st) throw new ReasonInputError(`video ${path}: cannot open (no such file or directory)`);
  if (st.kind === 'file') {
    const f = await fs.open(path);
    const head = new Uint8Array(16);
    try {
      await f.read(0, head);
    } finally {
      await f.close();
    }
    const k = sniffFormat(head);
    if (k !== 'Y4M') {
      const what = k === 'PNG' ? 'a single PNG image (pass it as an image)' : k ? `a ${k} file` : 'not a YUV4MPEG2 (.y4m) file';
      throw new ReasonInputError(`video ${path}: ${what}; videos are read from .y4m files or folders of numbered PNG frames (convert with e.g. ffmpeg -i in.mp4 -vf scale=out_color_matrix=bt601:out_range=tv -pix_fmt yuv420p out.y4m)`);
    }
  }
  const source = await openVideoSource(path, o.defaultSourceFps ?? { num: 24, den: 1 }, fs, { limits: o.limits });
  try {
    return await sampleVideo(source, fps, { ...o, name: `video ${path}` });
  } finally {
    await source.close();
  }
}
