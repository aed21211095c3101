// The tokenizer workflows: encode a clip to tokens chunk by chunk (tokenize), decode tokens to a
// clip (detokenize), and the tokens file format the CLI writes.
//
// Frame counts and sizes: the causal video tokenizers need T = 1 + k*tc frames and H, W
// multiples of sc. Other clips are padded at the end by repeating the last frame / row /
// column; the tokens record the original size and decoding crops back to it.
import type { Backend } from '../engine/backend.js';
import { UserError } from '../engine/errors.js';
import * as F from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { type FrameSource, padVideo, type Rational, stackFrames, type Video, cropVideo } from '../io/video.js';
import { loadTokenizer } from '../models/tokenizer/load.js';
import { encodeStream } from '../models/tokenizer/stream.js';
import type { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from '../models/tokenizer/video.js';
import { type RunOptions, stage } from './progress.js';

export type VideoModel = CausalContinuousVideoTokenizer | CausalDiscreteVideoTokenizer;

/** Load a causal video tokenizer (CV or DV); image tokenizers are refused with a clear error. */
export async function loadVideoTokenizer(modelDir: string, backend: Backend): Promise<VideoModel> {
  const model = await loadTokenizer(modelDir, backend);
  const kind = (model as { kind?: string }).kind;
  if (kind !== 'CV' && kind !== 'DV') {
    (model as { dispose?: () => void }).dispose?.();
    throw new UserError(`${modelDir}: a ${kind ?? 'non-video'} tokenizer; these commands take the causal video tokenizers (CV, DV)`);
  }
  return model as VideoModel;
}

// ---------------------------------------------------------------------------------------------
// encoding

/** What encoding a clip produces, on the host: CV latent or DV indices + codes, all [1, ...]. */
export interface EncodedTokens {
  kind: 'CV' | 'DV';
  /** CV: [1, C, t, h, w]. */
  latent?: { data: Float32Array; shape: number[] };
  /** DV: [1, t, h, w] token ids. */
  indices?: { data: Int32Array; shape: number[] };
  /** DV: [1, D, t, h, w] FSQ codes. */
  codes?: { data: Float32Array; shape: number[] };
  /** The clip as given. */
  frames: number;
  height: number;
  width: number;
  /** The size the tokenizer saw (after padding). */
  paddedFrames: number;
  paddedHeight: number;
  paddedWidth: number;
}

/**
 * Concatenate host arrays shaped [1, channels, t_i, perFrame...] along time ([1, t_i, h, w]
 * token ids: channels 1).
 */
export function concatTime<A extends Float32Array | Int32Array>(parts: { data: A; t: number }[], channels: number, perFrame: number, make: (n: number) => A): { data: A; t: number } {
  const t = parts.reduce((a, p) => a + p.t, 0);
  const out = make(channels * t * perFrame);
  for (let c = 0; c < channels; c++) {
    let at = 0;
    for (const p of parts) {
      out.set(p.data.subarray(c * p.t * perFrame, (c + 1) * p.t * perFrame), (c * t + at) * perFrame);
      at += p.t;
    }
  }
  return { data: out, t };
}

export interface EncodeOptions extends RunOptions {
  /** Frames per chunk after the first (a multiple of tc; the first chunk has 1 + chunk frames). */
  chunkFrames?: number;
  /** Called with each input frame as it is read (e.g. to keep the clip for metrics). */
  onFrame?: (frame: Float32Array) => void;
}

/**
 * Encode a clip chunk by chunk with the tokenizer's streaming encoder (first chunk 1 + N frames,
 * then N; the last chunk padded by repeating the last frame), reading frames from `source` as
 * they are needed.
 */
export async function encodeSource(model: VideoModel, source: FrameSource, opts: EncodeOptions = {}): Promise<EncodedTokens> {
  const backend = model.quant_conv.weight.backend;
  const tc = model.temporalCompression;
  const sc = model.spatialCompression;
  const chunkFrames = opts.chunkFrames ?? 4 * tc;
  if (!Number.isInteger(chunkFrames) || chunkFrames < tc || chunkFrames % tc !== 0) {
    throw new UserError(`--chunk must be a positive multiple of the temporal compression ${tc}, got ${chunkFrames}`);
  }
  const { width, height } = source;
  const ph = Math.max(sc, Math.ceil(height / sc) * sc);
  const pw = Math.max(sc, Math.ceil(width / sc) * sc);
  let framesRead = 0;
  let paddedFrames = 0;
  const chunksExpected = source.frameCount === undefined ? undefined : source.frameCount <= 1 ? 1 : 1 + Math.ceil(Math.max(0, source.frameCount - 1 - chunkFrames) / chunkFrames);
  const report = chunksExpected === undefined || chunksExpected > 1 ? stage(opts, 'encode', 'frames', source.frameCount) : () => {};

  // Chunks as tensors [1, 3, n, ph, pw], produced lazily from the frame iterator.
  async function* chunks(): AsyncGenerator<Tensor> {
    const it = source.frames();
    let first = true;
    let done = false;
    while (!done) {
      const want = first ? 1 + chunkFrames : chunkFrames;
      const frames: Float32Array[] = [];
      while (frames.length < want) {
        const r = await it.next();
        if (r.done) {
          done = true;
          break;
        }
        framesRead++;
        opts.onFrame?.(r.value);
        frames.push(r.value);
      }
      if (frames.length === 0) {
        if (first) throw new UserError('the input has no frames');
        break;
      }
      // A short (last) chunk: pad to 1 + k*tc (first) or k*tc (later) by repeating the last frame.
      const n = first ? 1 + Math.ceil((frames.length - 1) / tc) * tc : Math.ceil(frames.length / tc) * tc;
      const clip = padVideo(stackFrames(frames, height, width), n, ph, pw);
      paddedFrames += n;
      first = false;
      const x = F.fromArray(backend, clip.data, [1, 3, n, ph, pw]);
      try {
        yield x; // resumed once the stream has encoded it
      } finally {
        x.dispose();
      }
      report(framesRead);
    }
  }

  const latentParts: { data: Float32Array; t: number }[] = [];
  const indexParts: { data: Int32Array; t: number }[] = [];
  const codeParts: { data: Float32Array; t: number }[] = [];
  let channels = 0;
  let grid: [number, number] = [0, 0];
  for await (const out of encodeStream(model as CausalContinuousVideoTokenizer, chunks())) {
    if (model.kind === 'DV') {
      const { indices, codes } = out as unknown as { indices: Tensor; codes: Tensor };
      const [, t, h, w] = indices.shape;
      grid = [h, w];
      channels = codes.shape[1];
      indexParts.push({ data: (await indices.read()) as Int32Array, t });
      codeParts.push({ data: (await codes.read()) as Float32Array, t });
      indices.dispose();
      codes.dispose();
    } else {
      const z = out as Tensor;
      const [, c, t, h, w] = z.shape;
      grid = [h, w];
      channels = c;
      latentParts.push({ data: (await z.read()) as Float32Array, t });
      z.dispose();
    }
  }
  const hw = grid[0] * grid[1];
  const base = { frames: framesRead, height, width, paddedFrames, paddedHeight: ph, paddedWidth: pw };
  if (model.kind === 'DV') {
    const idx = concatTime(indexParts, 1, hw, (n) => new Int32Array(n));
    const codes = concatTime(codeParts, channels, hw, (n) => new Float32Array(n));
    return {
      kind: 'DV',
      indices: { data: idx.data, shape: [1, idx.t, ...grid] },
      codes: { data: codes.data, shape: [1, channels, codes.t, ...grid] },
      ...base,
    };
  }
  const lat = concatTime(latentParts, channels, hw, (n) => new Float32Array(n));
  return { kind: 'CV', latent: { data: lat.data, shape: [1, channels, lat.t, ...grid] }, ...base };
}

// ---------------------------------------------------------------------------------------------
// decoding

/** Decode tokens (CV latent, DV indices, or DV codes) and crop to `size` ([T, H, W]). */
export async function decodeTokens(
  model: VideoModel,
  tokens: Pick<EncodedTokens, 'latent' | 'indices' | 'codes'>,
  size?: [number, number, number],
): Promise<Video> {
  const backend = model.quant_conv.weight.backend;
  let out: Tensor;
  if (model.kind === 'DV') {
    if (tokens.indices) out = model.decodeIndices({ data: tokens.indices.data, shape: tokens.indices.shape });
    else if (tokens.codes) out = model.decode(F.fromArray(backend, tokens.codes.data, tokens.codes.shape));
    else throw new UserError('this is a discrete (DV) tokenizer but the tokens hold no `indices` or `codes` (continuous `latent` tokens need a CV model)');
  } else {
    if (!tokens.latent) throw new UserError('this is a continuous (CV) tokenizer but the tokens hold no `latent` (discrete `indices` tokens need a DV model)');
    const z = F.fromArray(backend, tokens.latent.data, tokens.latent.shape);
    out = model.decode(z);
    z.dispose();
  }
  const [, , T, H, W] = out.shape;
  const data = (await out.read()) as Float32Array;
  out.dispose();
  let v: Video = { data, frames: T, height: H, width: W };
  if (size) {
    const [t, h, w] = size;
    if (t > T || h > H || w > W) {
      throw new UserError(`the tokens decode to ${T}x${H}x${W} frames, fewer than the recorded ${t}x${h}x${w}; wrong model for these tokens?`);
    }
    v = cropVideo(v, t, h, w);
  }
  return v;
}

/** Clamp a decoded clip to [-1, 1] in place (what is written and measured). */
export function clampVideo(v: Video): Video {
  const d = v.data;
  for (let i = 0; i < d.length; i++) d[i] = d[i] < -1 ? -1 : d[i] > 1 ? 1 : d[i];
  return v;
}

// ---------------------------------------------------------------------------------------------
// tokens files

export const TOKENS_FORMAT = 'cosmos-ts.tokens.v1';

export function tokensMetadata(t: EncodedTokens, extra: { model: string; input: string; fps?: Rational }): Record<string, string> {
  const m: Record<string, string> = {
    format: TOKENS_FORMAT,
    model: extra.model,
    kind: t.kind,
    input: extra.input,
    frames: String(t.frames),
    height: String(t.height),
    width: String(t.width),
    padded_frames: String(t.paddedFrames),
    padded_height: String(t.paddedHeight),
    padded_width: String(t.paddedWidth),
  };
  if (extra.fps) m.fps = `${extra.fps.num}/${extra.fps.den}`;
  return m;
}
