// How the diffusion decoder walks a token grid longer than it was trained on, and how its pieces are
// joined again (cosmos-predict1 autoregressive/diffusion_decoder/utils.py and inference.py):
//
//   - split: windows of n latent frames (8: the decoder's 57 training frames) stepping by n - overlap
//     (overlap 2), started while start < T - overlap; a window past the end is completed by
//     reflecting in time ([0..4] -> [0,1,2,3,4,3,2,1]); at most 99 windows are decoded.
//   - blend: the decoded pixel chunks overlap by D PIXEL frames (the same number 2, not the 16
//     pixel frames two latent frames cover): chunk k's frame j lands at k*(t - D) + j, and in the D
//     frames two chunks share the earlier one fades out linearly (torch.linspace(0, 1, D)).
//
// Where upstream cannot run, this extends it, and says so: a grid of T <= overlap latent frames
// (upstream makes no window at all) gets the one window at 0; a last window of 3 or 4 frames
// (torch's reflect pad needs the pad shorter than the input) keeps reflecting back and forth, as
// numpy's 'reflect' does. Every case upstream runs gives upstream's windows.
import type { Video } from '../io/video.js';

/** Latent frames per decoder window: (dd_train_num_video_frames 57 - 1) / 8 + 1. */
export const DECODER_CHUNK_FRAMES = 8;
/** Latent frames two windows share, and pixel frames two decoded chunks are blended over. */
export const DECODER_OVERLAP = 2;
/** DiffusionDecoderSamplingConfig.max_iter */
export const DECODER_MAX_CHUNKS = 99;

/** One decoder window: the grid's latent frame behind each of its n positions. */
export interface TokenChunk {
  start: number;
  /** source latent frame of each position (start, start + 1, ..., then reflected) */
  frames: number[];
}

/** Index `i` of a sequence of `len` items extended by reflection about its ends (len 1: repeated). */
function reflectIndex(i: number, len: number): number {
  if (len === 1) return 0;
  const period = 2 * (len - 1);
  const m = i % period;
  return m < len ? m : period - m;
}

/** The decoder's windows over T latent frames (upstream split_with_overlap + max_iter). */
export function splitWithOverlap(T: number, n = DECODER_CHUNK_FRAMES, overlap = DECODER_OVERLAP, maxChunks = DECODER_MAX_CHUNKS): TokenChunk[] {
  if (!Number.isInteger(T) || T < 1) throw new Error(`splitWithOverlap: T must be a positive integer, got ${T}`);
  if (!Number.isInteger(n) || !Number.isInteger(overlap) || overlap < 0 || overlap >= n) {
    throw new Error(`splitWithOverlap: the overlap (${overlap}) must be less than the window (${n})`);
  }
  const step = n - overlap;
  const chunks: TokenChunk[] = [];
  for (let start = 0; start < Math.max(T - overlap, 1) && chunks.length < maxChunks; start += step) {
    const len = Math.min(n, T - start);
    chunks.push({ start, frames: Array.from({ length: n }, (_, j) => start + reflectIndex(j, len)) });
  }
  return chunks;
}

/** A window's token ids, [n, h, w] flattened, from the grid `ids` [T, h, w] (T-major). */
export function chunkIds(ids: Int32Array, grid: readonly [number, number, number], chunk: TokenChunk): Int32Array {
  const [T, h, w] = grid;
  const plane = h * w;
  if (ids.length !== T * plane) throw new Error(`chunkIds: ${ids.length} ids for a [${T}, ${h}, ${w}] grid`);
  const out = new Int32Array(chunk.frames.length * plane);
  for (const [j, t] of chunk.frames.entries()) out.set(ids.subarray(t * plane, (t + 1) * plane), j * plane);
  return out;
}

/** torch.linspace(0, 1, D) in float32 (the first half counted up from 0, the rest down from 1). */
export function blendWeights(D: number): Float32Array {
  const out = new Float32Array(D);
  if (D === 1) return out;
  const step = Math.fround(1 / (D - 1));
  const half = Math.floor(D / 2);
  for (let i = 0; i < D; i++) out[i] = i < half ? Math.fround(step * i) : Math.fround(1 - Math.fround(step * (D - 1 - i)));
  return out;
}

/** Frames of N blended chunks of t frames over D shared frames: N*t - D*(N-1) (one chunk: t). */
export function blendedLength(N: number, t: number, D: number): number {
  return N * t - D * (N - 1);
}

/**
 * linear_blend_video_list, then [:, :, :keep], filled chunk by chunk: each decoded chunk is added
 * as it comes and dropped, so only the kept frames are ever held. Chunks are [3, t, H, W] host
 * arrays in [-1, 1].
 */
export class ChunkBlender {
  private readonly data: Float32Array;
  private readonly weights: Float32Array;
  private added = 0;
  /** frames of the result: min(keep, the blended length of `chunks` chunks) */
  readonly frames: number;

  constructor(
    readonly chunks: number,
    readonly chunkFrames: number,
    readonly overlap: number,
    keep: number,
    readonly height: number,
    readonly width: number,
  ) {
    if (chunks > 1 && 2 * overlap > chunkFrames) {
      throw new Error(`ChunkBlender: chunks of ${chunkFrames} frames cannot share ${overlap} frames with each neighbour`);
    }
    this.frames = Math.min(keep, blendedLength(chunks, chunkFrames, overlap));
    this.data = new Float32Array(3 * this.frames * height * width);
    this.weights = blendWeights(overlap);
  }

  /** Add the next chunk ([3, chunkFrames, H, W]). */
  add(chunk: Float32Array): void {
    const { chunkFrames: t, overlap: D, height, width, frames } = this;
    const plane = height * width;
    if (this.added >= this.chunks) throw new Error(`ChunkBlender: more than the ${this.chunks} chunks announced`);
    if (chunk.length !== 3 * t * plane) throw new Error(`ChunkBlender: a chunk of ${chunk.length} values; expected [3, ${t}, ${height}, ${width}]`);
    const k = this.added++;
    const at = k * (t - D);
    for (let j = 0; j < t && at + j < frames; j++) {
      const blend = k > 0 && j < D;
      const w2 = blend ? this.weights[j] : 1;
      const w1 = Math.fround(1 - w2);
      for (let c = 0; c < 3; c++) {
        const src = chunk.subarray((c * t + j) * plane, (c * t + j + 1) * plane);
        const dst = (c * frames + at + j) * plane;
        if (!blend) {
          this.data.set(src, dst);
          continue;
        }
        // the earlier chunk's frame t - D + j is already in place (written when it was added)
        for (let i = 0; i < plane; i++) this.data[dst + i] = Math.fround(w1 * this.data[dst + i]) + Math.fround(w2 * src[i]);
      }
    }
  }

  /** The blended clip; every announced chunk must have been added. */
  result(): Video {
    if (this.added !== this.chunks) throw new Error(`ChunkBlender: ${this.added} of ${this.chunks} chunks added`);
    return { data: this.data, frames: this.frames, height: this.height, width: this.width };
  }
}
