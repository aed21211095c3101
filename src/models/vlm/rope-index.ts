// get_rope_index of Qwen2.5-VL (transformers Qwen2_5_VLForConditionalGeneration.get_rope_index,
// v4.49): the 3D M-RoPE position ids (temporal, height, width) of a batch of token sequences
// that mix text with images and videos, and the per-row rope delta the decoder adds to later
// positions. Pure host integer arithmetic; spec vlm.md "Language model".
//
// Per batch row, only the tokens with attention_mask == 1 take part (padding anywhere):
//   - the visual items of a row are the vision_start tokens immediately followed by an image or
//     a video token; items are taken in order of appearance, images consuming image_grid_thw rows
//     and videos video_grid_thw rows (counters run across the whole batch, as upstream);
//   - text before an item gets consecutive positions from (max so far + 1) on all three axes;
//   - an item with grid (t, h, w) becomes an LLM grid (t, h/m, w/m) of t*h*w/m² tokens with
//     t_idx = long(i_t * second_per_grid_t * tokens_per_second) (computed in float32: images use
//     0, videos their second_per_grid_ts entry or 1.0), h_idx = row, w_idx = col, each offset by
//     (text_len + st_idx);
//   - trailing text continues from max + 1;
//   - padded slots keep the fill value 1; rope_delta = max(position) + 1 - L (L = padded length).
// Without any grid: positions = cumsum(mask) - 1 (padded: 1), delta = max + 1 - L (with no mask:
// arange and delta 0).
//
// Edge case kept on purpose (spec): second_per_grid_t multiplies as a float (0.5 s * 2 tok/s ->
// step 1); transformers from mid-2025 casts it to an integer first (0.5 -> 0).
import { UserError } from '../../engine/errors.js';

export interface RopeIndexConfig {
  imageTokenId: number;
  videoTokenId: number;
  visionStartTokenId: number;
  spatialMergeSize: number;
  tokensPerSecond: number;
}

export type Grid = readonly [number, number, number];

export interface RopeIndexInput {
  /** [B, L] row-major */
  inputIds: ArrayLike<number>;
  batch: number;
  length: number;
  /** [B, L], 1 = token, 0 = padding; null = all ones */
  attentionMask?: ArrayLike<number> | null;
  /** (t, h, w) in patches per image, in order of appearance over the batch */
  imageGridThw?: readonly Grid[] | null;
  videoGridThw?: readonly Grid[] | null;
  /** seconds per temporal grid step, per video (float32 upstream); null = 1.0 each */
  secondPerGridTs?: ArrayLike<number> | null;
}

export interface RopeIndex {
  /** [3, B, L] row-major (axis t, h, w) */
  positionIds: Int32Array;
  /** [B] */
  ropeDeltas: Int32Array;
}

export class RopeIndexError extends UserError {}

const f32 = Math.fround;

/** long(i * s * tps) as torch computes it for a float32 s (float32 products, truncation). */
export function temporalIndex(i: number, secondPerGridT: number, tokensPerSecond: number): number {
  return Math.trunc(f32(f32(i * f32(secondPerGridT)) * tokensPerSecond));
}

export function getRopeIndex(cfg: RopeIndexConfig, input: RopeIndexInput): RopeIndex {
  const { inputIds, batch: B, length: L } = input;
  if (inputIds.length !== B * L) throw new RopeIndexError(`input_ids: has ${inputIds.length} values, expected ${B}x${L}`);
  const mask = input.attentionMask ?? null;
  if (mask && mask.length !== B * L) throw new RopeIndexError(`attention_mask: has ${mask.length} values, expected ${B}x${L}`);
  const images = input.imageGridThw ?? null;
  const videos = input.videoGridThw ?? null;
  const pos = new Int32Array(3 * B * L);
  const deltas = new Int32Array(B);
  const at = (axis: number, b: number, l: number) => (axis * B + b) * L + l;

  if (!images && !videos) {
    for (let b = 0; b < B; b++) {
      let mx = -Infinity;
      let c = 0;
      for (let l = 0; l < L; l++) {
        let p: number;
        if (mask) {
          c += mask[b * L + l];
          p = mask[b * L + l] === 0 ? 1 : c - 1;
        } else p = l;
        for (let a = 0; a < 3; a++) pos[at(a, b, l)] = p;
        mx = Math.max(mx, p);
      }
      deltas[b] = mask ? mx + 1 - L : 0;
    }
    return { positionIds: pos, ropeDeltas: deltas };
  }

  pos.fill(1);
  const m = cfg.spatialMergeSize;
  let imageIndex = 0;
  let videoIndex = 0;
  for (let b = 0; b < B; b++) {
    // the row's unpadded tokens and where they sit in the padded row
    const slots: number[] = [];
    const tokens: number[] = [];
    for (let l = 0; l < L; l++) {
      if (!mask || mask[b * L + l] === 1) {
        slots.push(l);
        tokens.push(inputIds[b * L + l]);
      }
    }
    let imageNums = 0;
    let videoNums = 0;
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] !== cfg.visionStartTokenId) continue;
      if (i + 1 >= tokens.length) throw new RopeIndexError(`input_ids row ${b}: vision_start token ${cfg.visionStartTokenId} is the last token (nothing follows it)`);
      if (tokens[i + 1] === cfg.imageTokenId) imageNums++;
      else if (tokens[i + 1] === cfg.videoTokenId) videoNums++;
    }
    // per axis, the row's positions in unpadded order
    const out: [number[], number[], number[]] = [[], [], []];
    let mx = -1; // max of everything appended so far (== max of the last chunk, as upstream)
    const pushText = (n: number) => {
      const st = mx + 1;
      for (let i = 0; i < n; i++) for (let a = 0; a < 3; a++) out[a].push(st + i);
      if (n > 0) mx = st + n - 1;
    };
    let st = 0;
    let remainImages = imageNums;
    let remainVideos = videoNums;
    const hasImage = tokens.includes(cfg.imageTokenId);
    const hasVideo = tokens.includes(cfg.videoTokenId);
    const find = (id: number, from: number) => {
      const k = tokens.indexOf(id, from);
      if (k < 0) throw new RopeIndexError(`input_ids row ${b}: no token ${id} after position ${from} (fewer placeholder tokens than vision_start markers)`);
      return k;
    };
    for (let item = 0; item < imageNums + videoNums; item++) {
      const edImage = hasImage && remainImages > 0 ? find(cfg.imageTokenId, st) : tokens.length + 1;
      const edVideo = hasVideo && remainVideos > 0 ? find(cfg.videoTokenId, st) : tokens.length + 1;
      let grid: Grid;
      let secondPerGridT: number;
      let ed: number;
      if (edImage < edVideo) {
        if (!images || imageIndex >= images.length) throw new RopeIndexError(`input_ids row ${b}: image ${imageIndex + 1} has no image_grid_thw row (${images?.length ?? 0} given)`);
        grid = images[imageIndex++];
        secondPerGridT = 0;
        remainImages--;
        ed = edImage;
      } else {
        if (!videos || videoIndex >= videos.length) throw new RopeIndexError(`input_ids row ${b}: video ${videoIndex + 1} has no video_grid_thw row (${videos?.length ?? 0} given)`);
        const s = input.secondPerGridTs;
        if (s && videoIndex >= s.length) throw new RopeIndexError(`second_per_grid_ts: has ${s.length} entries, video ${videoIndex + 1} needs one`);
        secondPerGridT = s ? s[videoIndex] : 1.0;
        grid = videos[videoIndex++];
        remainVideos--;
        ed = edVideo;
      }
      const [t, h, w] = grid;
      if (h % m || w % m) throw new RopeIndexError(`grid_thw: (${t}, ${h}, ${w}) is not divisible by spatial_merge_size ${m}`);
      const gt = t;
      const gh = h / m;
      const gw = w / m;
      const textLen = ed - st;
      pushText(textLen);
      const base = mx + 1; // = text_len + st_idx
      let itemMax = -Infinity;
      for (let it = 0; it < gt; it++) {
        const tIdx = temporalIndex(it, secondPerGridT, cfg.tokensPerSecond);
        for (let ih = 0; ih < gh; ih++) {
          for (let iw = 0; iw < gw; iw++) {
            out[0].push(base + tIdx);
            out[1].push(base + ih);
            out[2].push(base + iw);
            itemMax = Math.max(itemMax, base + tIdx, base + ih, base + iw);
          }
        }
      }
      if (gt * gh * gw > 0) mx = itemMax;
      st = ed + gt * gh * gw;
    }
    if (st < tokens.length) pushText(tokens.length - st);
    if (out[0].length !== tokens.length) {
      throw new RopeIndexError(`input_ids row ${b}: the visual grids cover ${out[0].length} positions but the row has ${tokens.length} tokens (placeholder counts do not match the grids)`);
    }
    let rowMax = -Infinity;
    for (let a = 0; a < 3; a++) {
      out[a].forEach((p, i) => {
        pos[at(a, b, slots[i])] = p;
        rowMax = Math.max(rowMax, p);
      });
    }
    // upstream: llm_positions.max() + 1 - len(row); an all-padding row would fail there
    if (tokens.length === 0) throw new RopeIndexError(`attention_mask row ${b}: has no unpadded token`);
    deltas[b] = rowMax + 1 - L;
  }
  return { positionIds: pos, ropeDeltas: deltas };
}
