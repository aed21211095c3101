// RetinaFaceFilter's host-side steps, reproduced to the bit (fact sheet guardrail.md "Face
// detection + blur" steps 1, 2, 4, 5, 6): preprocessing, the prior boxes, box decoding in float32,
// the score threshold, numpy's argsort order, py_cpu_nms with its +1 pixel convention, and the
// pixelation through OpenCV's fixed-point INTER_LINEAR and INTER_NEAREST resizes, written back
// into the frame box after box. Every float32 operation of upstream is one Math.fround here.
import { resizeU8Interleaved } from '../../engine/image.js';
import type { FaceFilterSettings, RetinaFaceConfig } from './retinaface-config.js';

const f32 = Math.fround;

/** cosmos preprocess_frames: BGR means subtracted after the RGB -> BGR swap. */
export const BGR_MEANS = [104, 117, 123] as const;

/** Frame `t` of [T, H, W, 3] RGB bytes as [3, H, W] float32: BGR order, minus BGR_MEANS (no scaling). */
export function preprocessFrame(frames: Uint8Array, t: number, H: number, W: number, out = new Float32Array(3 * H * W)): Float32Array {
  const plane = H * W;
  const base = t * plane * 3;
  for (let c = 0; c < 3; c++) {
    const src = 2 - c; // BGR channel c is RGB channel 2 - c
    const mean = BGR_MEANS[c];
    const o = c * plane;
    for (let i = 0; i < plane; i++) out[o + i] = frames[base + 3 * i + src] - mean;
  }
  return out;
}

/** ceil(H / step) x ceil(W / step) per level. */
export function featureMaps(cfg: Pick<RetinaFaceConfig, 'steps'>, H: number, W: number): [number, number][] {
  return cfg.steps.map((s) => [Math.ceil(H / s), Math.ceil(W / s)]);
}

/** Number of priors (anchors) for an H x W frame. */
export function priorCount(cfg: Pick<RetinaFaceConfig, 'steps' | 'minSizes'>, H: number, W: number): number {
  return featureMaps(cfg, H, W).reduce((n, [h, w], k) => n + h * w * cfg.minSizes[k].length, 0);
}

/**
 * PriorBox(cfg, (H, W)).forward(): [P, 4] (cx, cy, w, h) as fractions of the frame, in the order
 * level, row, column, min size; computed in float64 as Python does, stored as float32.
 */
export function priorBoxes(cfg: Pick<RetinaFaceConfig, 'steps' | 'minSizes' | 'clip'>, H: number, W: number): Float32Array {
  const out = new Float32Array(priorCount(cfg, H, W) * 4);
  let n = 0;
  featureMaps(cfg, H, W).forEach(([fh, fw], k) => {
    const step = cfg.steps[k];
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        for (const m of cfg.minSizes[k]) {
          out[n++] = ((j + 0.5) * step) / W;
          out[n++] = ((i + 0.5) * step) / H;
          out[n++] = m / W;
          out[n++] = m / H;
        }
      }
    }
  });
  if (cfg.clip) for (let i = 0; i < out.length; i++) out[i] = Math.min(Math.max(out[i], 0), 1);
  return out;
}

/**
 * decode_batch for one frame, float32 as torch computes it: centre = p_xy + (loc_xy * v0) * p_wh,
 * size = p_wh * exp(loc_wh * v1); then x1y1 = centre - size / 2 and, in place, x2y2 = size + x1y1
 * (not centre + size / 2). Returns [P, 4] (x1, y1, x2, y2) as fractions.
 */
export function decodeBoxes(loc: Float32Array, priors: Float32Array, variance: readonly [number, number]): Float32Array {
  const v0 = f32(variance[0]);
  const v1 = f32(variance[1]);
  const out = new Float32Array(loc.length);
  for (let p = 0; p < loc.length; p += 4) {
    for (let a = 0; a < 2; a++) {
      const pc = priors[p + a];
      const ps = priors[p + 2 + a];
      const centre = f32(pc + f32(f32(loc[p + a] * v0) * ps));
      const size = f32(ps * f32(Math.exp(f32(loc[p + 2 + a] * v1))));
      const lo = f32(centre - f32(size / 2));
      out[p + a] = lo;
      out[p + 2 + a] = f32(size + lo);
    }
  }
  return out;
}

/** boxes * [W, H, W, H] in float32. */
export function scaleBoxes(boxes: Float32Array, H: number, W: number): Float32Array {
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i++) out[i] = f32(boxes[i] * (i % 2 === 0 ? W : H));
  return out;
}

// ------------------------------------------------------------------ numpy's argsort

/** numpy's float order: NaN after everything. */
const less = (a: number, b: number) => a < b || (Number.isNaN(b) && !Number.isNaN(a));

const SMALL_QUICKSORT = 15;

/** numpy aheapsort_ on tosort[lo .. lo + n) (1-based heap over that window). */
function aheapsort(v: ArrayLike<number>, tosort: Int32Array, lo: number, count: number): void {
  const a = (k: number) => tosort[lo + k - 1];
  const set = (k: number, x: number) => {
    tosort[lo + k - 1] = x;
  };
  // move `tmp` down from slot i of a heap of n entries (both phases of the sort)
  const siftDown = (i: number, tmp: number, n: number) => {
    for (let j = i << 1; j <= n; ) {
      if (j < n && less(v[a(j)], v[a(j + 1)])) j += 1;
      if (less(v[tmp], v[a(j)])) {
        set(i, a(j));
        i = j;
        j += j;
      } else break;
    }
    set(i, tmp);
  };
  for (let l = count >> 1; l > 0; --l) siftDown(l, a(l), count);
  for (let n = count; n > 1; ) {
    const tmp = a(n);
    set(n, a(1));
    n -= 1;
    siftDown(1, tmp, n);
  }
}

/**
 * numpy's default argsort (kind 'quicksort': introsort with median-of-3 partitions, insertion sort
 * below 16 elements, heapsort past the depth limit), ascending. On exact ties its order is not the
 * index order, and upstream's `argsort()[::-1]` depends on it; this is the generic (non-SIMD) path.
 */
export function argsortNumpy(v: ArrayLike<number>): Int32Array {
  const num = v.length;
  const tosort = Int32Array.from({ length: num }, (_, i) => i);
  if (num < 2) return tosort;
  const swap = (i: number, j: number) => {
    const t = tosort[i];
    tosort[i] = tosort[j];
    tosort[j] = t;
  };
  let pl = 0;
  let pr = num - 1;
  const stack: number[] = [];
  const depths: number[] = [];
  // numpy's npy_get_msb(num) * 2; checked only when a part is taken up, as numpy does
  let cdepth = (31 - Math.clz32(num)) * 2;
  for (;;) {
    if (cdepth < 0) {
      aheapsort(v, tosort, pl, pr - pl + 1);
    } else {
      while (pr - pl > SMALL_QUICKSORT) {
        const pm = pl + ((pr - pl) >> 1);
        if (less(v[tosort[pm]], v[tosort[pl]])) swap(pm, pl);
        if (less(v[tosort[pr]], v[tosort[pm]])) swap(pr, pm);
        if (less(v[tosort[pm]], v[tosort[pl]])) swap(pm, pl);
        const vp = v[tosort[pm]];
        let pi = pl;
        let pj = pr - 1;
        swap(pm, pj);
        for (;;) {
          do ++pi; while (less(v[tosort[pi]], vp));
          do --pj; while (less(vp, v[tosort[pj]]));
          if (pi >= pj) break;
          swap(pi, pj);
        }
        swap(pi, pr - 1);
        // the larger part waits on the stack
        if (pi - pl < pr - pi) {
          stack.push(pi + 1, pr);
          pr = pi - 1;
        } else {
          stack.push(pl, pi - 1);
          pl = pi + 1;
        }
        depths.push(--cdepth);
      }
      for (let pi = pl + 1; pi <= pr; ++pi) {
        const vi = tosort[pi];
        const vp = v[vi];
        let pj = pi;
        while (pj > pl && less(vp, v[tosort[pj - 1]])) {
          tosort[pj] = tosort[pj - 1];
          pj--;
        }
        tosort[pj] = vi;
      }
    }
    if (!stack.length) break;
    pr = stack.pop()!;
    pl = stack.pop()!;
    cdepth = depths.pop()!;
  }
  return tosort;
}

/** `argsort()[::-1]`: descending, numpy's tie order reversed. */
export function argsortDescending(v: ArrayLike<number>): Int32Array {
  return argsortNumpy(v).reverse();
}

// ------------------------------------------------------------------ threshold, sort, NMS

/**
 * filter_detected_boxes up to the NMS input: rows with score > threshold (float32 compare), sorted
 * by score descending in numpy's order, the first top_k, as [n, 5] (x1, y1, x2, y2, score) float32.
 */
export function nmsCandidates(boxes: Float32Array, scores: ArrayLike<number>, threshold: number, topK: number): Float32Array {
  const thr = f32(threshold);
  const inds: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] > thr) inds.push(i);
  const picked = Float32Array.from(inds, (i) => scores[i]);
  const order = argsortDescending(picked).subarray(0, topK);
  const out = new Float32Array(order.length * 5);
  order.forEach((o, r) => {
    const i = inds[o];
    out.set(boxes.subarray(4 * i, 4 * i + 4), 5 * r);
    out[5 * r + 4] = picked[o];
  });
  return out;
}

/**
 * py_cpu_nms(dets, thresh): visits rows by score (numpy argsort()[::-1] again), keeps the first,
 * drops the rest whose IoU with it exceeds thresh; areas and overlaps count +1 pixel per side;
 * float32 throughout (the threshold too). Returns the kept row indices in visiting order.
 */
export function pyCpuNms(dets: Float32Array, thresh: number): number[] {
  const n = dets.length / 5;
  const t = f32(thresh);
  const x1 = (i: number) => dets[5 * i];
  const y1 = (i: number) => dets[5 * i + 1];
  const x2 = (i: number) => dets[5 * i + 2];
  const y2 = (i: number) => dets[5 * i + 3];
  const areas = Float32Array.from({ length: n }, (_, i) => f32(f32(f32(x2(i) - x1(i)) + 1) * f32(f32(y2(i) - y1(i)) + 1)));
  const scores = Float32Array.from({ length: n }, (_, i) => dets[5 * i + 4]);
  let order = Array.from(argsortDescending(scores));
  const keep: number[] = [];
  while (order.length > 0) {
    const i = order[0];
    keep.push(i);
    const rest: number[] = [];
    for (let r = 1; r < order.length; r++) {
      const j = order[r];
      const w = Math.max(0, f32(f32(Math.min(x2(i), x2(j)) - Math.max(x1(i), x1(j))) + 1));
      const h = Math.max(0, f32(f32(Math.min(y2(i), y2(j)) - Math.max(y1(i), y1(j))) + 1));
      const inter = f32(w * h);
      const ovr = f32(inter / f32(f32(areas[i] + areas[j]) - inter));
      if (ovr <= t) rest.push(j);
    }
    order = rest;
  }
  return keep;
}

export interface FrameDetections {
  /** [n, 5] rows handed to py_cpu_nms */
  nmsInput: Float32Array;
  /** kept rows of nmsInput, in order */
  keep: number[];
  /** [k, 5] nmsInput[keep][:keep_top_k] */
  detections: Float32Array;
}

/** filter_detected_boxes on one frame's decoded pixel boxes [P, 4] and face scores [P]. */
export function filterDetections(boxes: Float32Array, scores: ArrayLike<number>, s: FaceFilterSettings): FrameDetections {
  const nmsInput = nmsCandidates(boxes, scores, s.confidenceThreshold, s.topK);
  const keep = pyCpuNms(nmsInput, s.nmsThreshold);
  const kept = keep.slice(0, s.keepTopK);
  const detections = new Float32Array(kept.length * 5);
  kept.forEach((k, r) => {
    detections.set(nmsInput.subarray(5 * k, 5 * k + 5), 5 * r);
  });
  return { nmsInput, keep, detections };
}

// ------------------------------------------------------------------ OpenCV resizes (uint8)

/** cv2.resize(src, (dw, dh), interpolation=INTER_LINEAR) of a uint8 [sh, sw, cn] image (engine/image.ts). */
export function resizeLinearU8(src: Uint8Array, sw: number, sh: number, dw: number, dh: number, cn: number): Uint8Array {
  return resizeU8Interleaved(src, sw, sh, dw, dh, cn, 'linear');
}

/** cv2.resize(src, (dw, dh), interpolation=INTER_NEAREST) of a uint8 [sh, sw, cn] image (engine/image.ts). */
export function resizeNearestU8(src: Uint8Array, sw: number, sh: number, dw: number, dh: number, cn: number): Uint8Array {
  return resizeU8Interleaved(src, sw, sh, dw, dh, cn, 'nearest');
}

/** pixelate_face: down to blocks x blocks with INTER_LINEAR, back up with INTER_NEAREST. */
export function pixelate(roi: Uint8Array, w: number, h: number, blocks: number): Uint8Array {
  return resizeNearestU8(resizeLinearU8(roi, w, h, blocks, blocks, 3), blocks, blocks, w, h, 3);
}

/** Python's a[start:stop] bounds for 0 <= start, any stop, on an axis of n. */
function pySlice(start: number, stop: number, n: number): [number, number] {
  let e = stop < 0 ? Math.max(stop + n, 0) : Math.min(stop, n);
  const s = Math.min(start, n);
  if (e < s) e = s;
  return [s, e];
}

/**
 * blur_detected_faces on one frame (an [H, W, 3] view), in place, box after box: x1, y1, x2, y2 =
 * int(...) (toward zero); boxes narrower or lower than minSize skipped; the ROI is
 * frame[max(y1, 0):min(y2, H), max(x1, 0):min(x2, W)] with Python's slice rules (a negative stop
 * counts from the end); pixelated and written back, so a later box sees earlier pixelation.
 * Returns the number of regions pixelated. An empty ROI (a box off the frame), where upstream's
 * cv2.resize raises, is skipped.
 */
export function blurFrame(frame: Uint8Array, H: number, W: number, detections: Float32Array, s: FaceFilterSettings): number {
  let done = 0;
  for (let r = 0; r < detections.length / 5; r++) {
    const b = detections.subarray(5 * r, 5 * r + 4);
    if (!b.every(Number.isFinite)) continue;
    const [x1, y1, x2, y2] = Array.from(b, Math.trunc);
    if (x2 - x1 < s.minSize[0] || y2 - y1 < s.minSize[1]) continue;
    const [r0, r1] = pySlice(Math.max(y1, 0), Math.min(y2, H), H);
    const [c0, c1] = pySlice(Math.max(x1, 0), Math.min(x2, W), W);
    const h = r1 - r0;
    const w = c1 - c0;
    if (h <= 0 || w <= 0) continue;
    const roi = new Uint8Array(h * w * 3);
    for (let y = 0; y < h; y++) roi.set(frame.subarray(((r0 + y) * W + c0) * 3, ((r0 + y) * W + c1) * 3), y * w * 3);
    const px = pixelate(roi, w, h, s.pixelateBlocks);
    for (let y = 0; y < h; y++) frame.set(px.subarray(y * w * 3, (y + 1) * w * 3), ((r0 + y) * W + c0) * 3);
    done++;
  }
  return done;
}
