// What the decoder builds from its conditions before the patch embedding (spec ar_decoder.md §2):
// the token condition (embedded DV ids resized BILINEAR to the CV latent grid), the padding-mask
// channel (resized NEAREST), and the latent-time chunks of an AR token grid the decoder samples one
// at a time (§1 step 3).
import { UserError } from '../../engine/errors.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import { nearestIndices } from '../dit/embed.js';

export class ArDecoderInputError extends UserError {}

const f32 = Math.fround;

/**
 * torch's bilinear (align_corners=False) source rows of output rows 0..out-1, in float32 as its
 * CPU kernel computes them: src = max(scale (i + 0.5) - 0.5, 0), scale = in / out; the lower row,
 * the upper one (clamped to the last) and the upper row's weight.
 */
export function bilinearTaps(inSize: number, outSize: number): { lo: Int32Array; hi: Int32Array; w: Float32Array } {
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const w = new Float32Array(outSize);
  const scale = f32(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    const src = Math.max(f32(f32(scale * f32(i + 0.5)) - 0.5), 0);
    const i0 = Math.floor(src);
    lo[i] = i0;
    hi[i] = Math.min(i0 + 1, inSize - 1);
    w[i] = f32(src - i0);
  }
  return { lo, hi, w };
}

/** Linear interpolation along `axis` (the last two of x): (1 - w) x[lo] + w x[hi]. */
function lerpAxis(x: Tensor, axis: number, outSize: number): Tensor {
  const inSize = x.shape[axis];
  if (inSize === outSize) return x;
  const { lo, hi, w } = bilinearTaps(inSize, outSize);
  const be = x.backend;
  const shape = axis === x.rank - 1 ? [outSize] : [outSize, 1];
  const w1 = F.fromArray(be, w, shape);
  const w0 = F.fromArray(be, Float32Array.from(w, (v) => f32(1 - v)), shape);
  const a = F.indexSelect(x, axis, F.fromArray(be, lo, [outSize], 'i32'));
  const b = F.indexSelect(x, axis, F.fromArray(be, hi, [outSize], 'i32'));
  return F.add(F.mul(a, w0), F.mul(b, w1));
}

/**
 * torchvision resize(BILINEAR) of the last two axes to (outH, outW) when enlarging (the decoder's
 * case: the DV token grid is half the CV latent grid); antialiasing changes nothing there.
 * Shrinking is refused: torchvision antialiases it, which this does not do.
 */
export function resizeBilinearUp(x: Tensor, outH: number, outW: number, what: string): Tensor {
  const [h, w] = x.shape.slice(-2);
  if (outH < h || outW < w) {
    throw new ArDecoderInputError(`${what}: the token grid ${h}x${w} is larger than the latent grid ${outH}x${outW}; the decoder resizes tokens up only`);
  }
  return scope(() => lerpAxis(lerpAxis(x, x.rank - 2, outH), x.rank - 1, outW));
}

/**
 * The padding-mask channel [B, 1, T, H, W] from a pixel mask [B | 1, 1, Hp, Wp] (NEAREST to
 * (H, W), repeated over time; zeros without one).
 */
export function paddingMaskChannel(mask: Tensor | null | undefined, B: number, T: number, H: number, W: number, backend: Tensor['backend']): Tensor {
  return scope(() => {
    if (!mask) return F.zeros(backend, [B, 1, T, H, W]);
    if (mask.rank !== 4 || mask.shape[1] !== 1 || (mask.shape[0] !== B && mask.shape[0] !== 1)) {
      throw new ArDecoderInputError(`padding_mask: must be [${B}, 1, height, width] (or [1, 1, height, width]); got ${shapeStr(mask.shape)}`);
    }
    const [Bm, , Hp, Wp] = mask.shape;
    let m = mask;
    if (Hp !== H) m = F.indexSelect(m, 2, F.fromArray(backend, nearestIndices(Hp, H), [H], 'i32'));
    if (Wp !== W) m = F.indexSelect(m, 3, F.fromArray(backend, nearestIndices(Wp, W), [W], 'i32'));
    return F.expand(m.reshape([Bm, 1, 1, H, W]), [B, 1, T, H, W]);
  });
}

/**
 * Latent-time chunks of a token grid with T frames, as split_with_overlap cuts them: chunk k
 * starts at k (n - overlap), for starts below T - overlap, and one that runs past T is completed
 * by reflecting in time ([0..4] -> 0 1 2 3 4 3 2 1). Returns each chunk's source frame indices.
 */
export function tokenChunkFrames(T: number, n: number, overlap: number): number[][] {
  if (!(Number.isInteger(n) && n >= 1 && Number.isInteger(overlap) && overlap >= 0 && overlap < n)) {
    throw new ArDecoderInputError(`chunking: needs integers 0 <= overlap (${overlap}) < frames per chunk (${n})`);
  }
  if (!(Number.isInteger(T) && T > overlap)) {
    throw new ArDecoderInputError(`chunking: ${T} latent token frames make no chunk (more than the overlap ${overlap} are needed)`);
  }
  const chunks: number[][] = [];
  for (let start = 0; start < T - overlap; start += n - overlap) {
    const have = Math.min(n, T - start);
    // torch's reflect pad needs the padding shorter than what it reflects
    if (n - have >= have) {
      throw new ArDecoderInputError(`chunking: the chunk at frame ${start} has ${have} of ${n} frames; reflect padding needs more than half (${T} token frames)`);
    }
    chunks.push(Array.from({ length: n }, (_, i) => start + (i < have ? i : 2 * (have - 1) - i)));
  }
  return chunks;
}

/** The chunks of ids [B, 1, T, h, w] (any dtype): one [B, 1, n, h, w] tensor per chunk. */
export function splitTokenChunks(ids: Tensor, n: number, overlap: number): Tensor[] {
  if (ids.rank !== 5 || ids.shape[1] !== 1) throw new ArDecoderInputError(`token ids: must be [B, 1, T, h, w]; got ${shapeStr(ids.shape)}`);
  return tokenChunkFrames(ids.shape[2], n, overlap).map((frames) =>
    scope(() => F.indexSelect(ids, 2, F.fromArray(ids.backend, Int32Array.from(frames), [frames.length], 'i32'))),
  );
}
