// The tokenizer workflows: encode a clip to tokens chunk by chunk (tokenize), decode tokens to a
// clip (detokenize), both with quality metrics (roundtrip), and the tokens file.
//
// Tokens stay on the device (a Tokens object) until a caller reads them, so a round trip decodes
// the encoder's output where it is, and the host sees only the reconstruction.
//
// Frame counts and sizes: the causal video tokenizers need T = 1 + k*tc frames and H, W
// multiples of sc. Other clips are padded at the end by repeating the last frame / row /
// column; the tokens record the original size and decoding crops back to it.
import type { Backend } from '../engine/backend.js';
import { UserError, throwIfAborted } from '../engine/errors.js';
import * as F from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import { type FrameSource, type Rational, type Video, cropVideo, padVideo, stackFrames } from '../io/video.js';
import { type Quality, checkMetricFrameSize, quality } from '../metrics/quality.js';
import type { ModuleFamily } from '../models/load.js';
import { CosmosTokenizerFamily, type LoadTokenizerOptions, type Tokenizer, buildTokenizer, loadTokenizerAs } from '../models/tokenizer/load.js';
import type { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from '../models/tokenizer/video.js';
import { checkFinite } from './finite.js';
import { isFrameSource, videoSource } from './frame-source.js';
import { type RunOptions, stage } from './progress.js';

export type VideoModel = CausalContinuousVideoTokenizer | CausalDiscreteVideoTokenizer;

/** A tokenizer the video workflows can run (CV or DV); an image tokenizer is a UserError (naming `where`). */
export function videoTokenizer(model: Tokenizer, where?: string): VideoModel {
  if (model.kind === 'CV' || model.kind === 'DV') return model as VideoModel;
  throw new UserError(`${where ? `${where}: ` : 'model: '}a ${model.kind} (image) tokenizer; these workflows take the causal video tokenizers (CV, DV)`);
}

/**
 * Load a causal video tokenizer (CV or DV, either checkpoint layout, or a TorchScript release)
 * from a folder or a .safetensors file; an image tokenizer is refused before any weight is read.
 * `part` loads only the encoder (tokenize) or the decoder (detokenize).
 */
export async function loadVideoTokenizer(path: string, backend: Backend, opts: Pick<LoadTokenizerOptions, 'fs' | 'part' | 'release'> = {}): Promise<VideoModel> {
  const family: ModuleFamily<VideoModel> = {
    name: 'Cosmos video tokenizer',
    build: (config) => videoTokenizer(buildTokenizer(config), path),
    loadOptions: (model, src) => CosmosTokenizerFamily.loadOptions!(model, src),
  };
  return loadTokenizerAs(family, path, backend, opts);
}

// ---------------------------------------------------------------------------------------------
// tokens

/** The clip a set of tokens stands for: as given, and as the tokenizer saw it (padded). */
export interface TokenGeometry {
  frames: number;
  height: number;
  width: number;
  paddedFrames: number;
  paddedHeight: number;
  paddedWidth: number;
  /** the clip's frame rate, when its source recorded one */
  fps?: Rational;
}

export interface HostArray<A extends Float32Array | Int32Array> {
  data: A;
  shape: number[];
}

/** Token arrays on the host: CV `latent`, or DV `indices` and `codes`. */
export interface TokenArrays {
  /** CV: [1, C, t, h, w] */
  latent?: HostArray<Float32Array>;
  /** DV: [1, t, h, w] token ids */
  indices?: HostArray<Int32Array>;
  /** DV: [1, D, t, h, w] FSQ codes */
  codes?: HostArray<Float32Array>;
}

/** Tokens read to the host (Tokens.read(), readTokens). */
export interface HostTokens extends TokenArrays, TokenGeometry {
  kind: 'CV' | 'DV';
}

/** A clip's tokens on the device: read() copies them to the host, dispose() frees them. */
export class Tokens implements TokenGeometry {
  readonly frames: number;
  readonly height: number;
  readonly width: number;
  readonly paddedFrames: number;
  readonly paddedHeight: number;
  readonly paddedWidth: number;
  readonly fps?: Rational;

  constructor(
    readonly kind: 'CV' | 'DV',
    /** CV: latent [1, C, t, h, w]; DV: indices [1, t, h, w] (i32) and codes [1, D, t, h, w] */
    readonly tensors: { latent?: Tensor; indices?: Tensor; codes?: Tensor },
    geometry: TokenGeometry,
  ) {
    this.frames = geometry.frames;
    this.height = geometry.height;
    this.width = geometry.width;
    this.paddedFrames = geometry.paddedFrames;
    this.paddedHeight = geometry.paddedHeight;
    this.paddedWidth = geometry.paddedWidth;
    if (geometry.fps) this.fps = geometry.fps;
  }

  /** The shape of the tokens proper: the latent (CV) or the token ids (DV). */
  get shape(): readonly number[] {
    return (this.kind === 'DV' ? this.tensors.indices! : this.tensors.latent!).shape;
  }

  async read(): Promise<HostTokens> {
    const host = async <A extends Float32Array | Int32Array>(t: Tensor | undefined) =>
      t ? { data: (await t.read()) as A, shape: [...t.shape] } : undefined;
    const out: HostTokens = { kind: this.kind, ...geometryOf(this) };
    const latent = await host<Float32Array>(this.tensors.latent);
    const indices = await host<Int32Array>(this.tensors.indices);
    const codes = await host<Float32Array>(this.tensors.codes);
    if (latent) out.latent = latent;
    if (indices) out.indices = indices;
    if (codes) out.codes = codes;
    return out;
  }

  dispose(): void {
    for (const t of Object.values(this.tensors)) t?.dispose();
  }
}

function geometryOf(g: TokenGeometry): TokenGeometry {
  const out: TokenGeometry = {
    frames: g.frames, height: g.height, width: g.width, paddedFrames: g.paddedFrames, paddedHeight: g.paddedHeight, paddedWidth: g.paddedWidth,
  };
  if (g.fps) out.fps = g.fps;
  return out;
}

// ---------------------------------------------------------------------------------------------
// tokenize

export interface TokenizeOptions extends RunOptions {
  /** Frames per chunk after the first (a multiple of tc; the first chunk has 1 + chunk frames). Default 4 tc. */
  chunkFrames?: number;
  /** Called with each input frame as it is read (e.g. to keep the clip for metrics). */
  onFrame?: (frame: Float32Array) => void;
}

/** Concatenate device parts along `axis` (one part is returned as is). */
function joinParts(parts: Tensor[], axis: number): Tensor {
  if (parts.length === 1) return parts[0];
  const t = F.concat(parts, axis).keep();
  for (const p of parts) p.dispose();
  return t;
}

/**
 * Encode a clip chunk by chunk with the tokenizer's streaming encoder (first chunk 1 + N frames,
 * then N; the last chunk padded by repeating the last frame), reading frames from `source` as
 * they are needed. Progress: stage 'encode' in frames, after every chunk. The tokens stay on the
 * model's backend.
 */
export async function tokenize(tokenizer: Tokenizer, source: FrameSource | Video, opts: TokenizeOptions = {}): Promise<Tokens> {
  throwIfAborted(opts.signal);
  const model = videoTokenizer(tokenizer);
  model.requireHalf('encoder');
  const src = isFrameSource(source) ? source : videoSource(source);
  const backend = model.backend;
  const tc = model.temporalCompression;
  const sc = model.spatialCompression;
  const chunkFrames = opts.chunkFrames ?? 4 * tc;
  if (!Number.isInteger(chunkFrames) || chunkFrames < tc || chunkFrames % tc !== 0) {
    throw new UserError(`chunkFrames: must be a positive multiple of the temporal compression ${tc}; got ${chunkFrames}`);
  }
  const { width, height } = src;
  const ph = Math.max(sc, Math.ceil(height / sc) * sc);
  const pw = Math.max(sc, Math.ceil(width / sc) * sc);
  let framesRead = 0;
  let paddedFrames = 0;
  const report = stage(opts, 'encode', 'frames', src.frameCount);

  // Chunks as tensors [1, 3, n, ph, pw], produced lazily from the frame iterator.
  async function* chunks(): AsyncGenerator<Tensor> {
    const it = src.frames();
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
        if (first) throw new UserError('input: has no frames');
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
    }
  }

  const parts: { latent: Tensor[]; indices: Tensor[]; codes: Tensor[] } = { latent: [], indices: [], codes: [] };
  const all = () => [...parts.latent, ...parts.indices, ...parts.codes];
  const stream: AsyncIterable<Tensor | { indices: Tensor; codes: Tensor }> = model.kind === 'DV' ? model.encodeStream(chunks()) : model.encodeStream(chunks());
  try {
    for await (const out of stream) {
      if (out instanceof Tensor) parts.latent.push(out.keep());
      else {
        parts.indices.push(out.indices.keep());
        parts.codes.push(out.codes.keep());
      }
      await checkFinite(out instanceof Tensor ? out : out.codes, { component: 'tokenizer encoder', step: `chunk ${parts.latent.length + parts.codes.length}` });
      report(framesRead);
    }
    const geometry: TokenGeometry = { frames: framesRead, height, width, paddedFrames, paddedHeight: ph, paddedWidth: pw, ...(src.fps ? { fps: src.fps } : {}) };
    if (model.kind === 'DV') return new Tokens('DV', { indices: joinParts(parts.indices, 1), codes: joinParts(parts.codes, 2) }, geometry);
    return new Tokens('CV', { latent: joinParts(parts.latent, 2) }, geometry);
  } catch (e) {
    for (const t of all()) t.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// detokenize

export interface DetokenizeOptions extends RunOptions {
  /** Crop to this many frames, rows and columns (default: the size the tokens record, if any). */
  size?: [number, number, number];
  /** Clamp the clip to [-1, 1] (default true: what is written and shown). */
  clamp?: boolean;
}

/** What detokenize accepts: device tokens, or token arrays with the size they record (if any). */
export type DecodableTokens = Tokens | (TokenArrays & Partial<TokenGeometry>);

/** Clamp a decoded clip to [-1, 1] in place. */
function clampInPlace(d: Float32Array): void {
  for (let i = 0; i < d.length; i++) d[i] = Math.min(Math.max(d[i], -1), 1);
}

/** The decoder's output [1, 3, T, H, W] for device or host tokens (DV: from the ids when present). */
function decodeOnDevice(model: VideoModel, tokens: DecodableTokens): Tensor {
  model.requireHalf('decoder');
  const backend = model.backend;
  const dev = tokens instanceof Tokens ? tokens.tensors : null;
  const host = tokens instanceof Tokens ? null : tokens;
  if (model.kind === 'DV') {
    if (dev?.indices) return model.decodeIndices(dev.indices);
    if (host?.indices) return model.decodeIndices({ data: host.indices.data, shape: host.indices.shape });
    if (dev?.codes) return model.decode(dev.codes);
    if (host?.codes) {
      const c = F.fromArray(backend, host.codes.data, host.codes.shape);
      try {
        return model.decode(c);
      } finally {
        c.dispose();
      }
    }
    throw new UserError('tokens: hold no `indices` or `codes`, and the model is a discrete (DV) tokenizer (continuous `latent` tokens need a CV model)');
  }
  if (dev?.latent) return model.decode(dev.latent);
  if (!host?.latent) throw new UserError('tokens: hold no `latent`, and the model is a continuous (CV) tokenizer (discrete `indices` tokens need a DV model)');
  const z = F.fromArray(backend, host.latent.data, host.latent.shape);
  try {
    return model.decode(z);
  } finally {
    z.dispose();
  }
}

/**
 * Decode tokens (CV latent, DV indices or codes; on the device or the host) to a clip, cropped to
 * the recorded size. Progress: stage 'decode' in frames (before and after the decoder).
 */
export async function detokenize(tokenizer: Tokenizer, tokens: DecodableTokens, opts: DetokenizeOptions = {}): Promise<Video> {
  const model = videoTokenizer(tokenizer);
  throwIfAborted(opts.signal);
  const report = stage(opts, 'decode', 'frames', opts.size?.[0] ?? tokens.frames);
  report(0);
  const out = decodeOnDevice(model, tokens);
  const [, , T, H, W] = out.shape;
  // the plan backend holds no values: the clip is not copied to the host (zeros of its size)
  const shapeOnly = out.backend.name === 'plan';
  let data: Float32Array;
  try {
    await checkFinite(out, { component: 'tokenizer decoder' });
    data = shapeOnly ? new Float32Array(3 * T * H * W) : ((await out.read()) as Float32Array);
  } finally {
    out.dispose();
  }
  if ((opts.clamp ?? true) && !shapeOnly) clampInPlace(data);
  let v: Video = { data, frames: T, height: H, width: W };
  if (tokens.fps) v.fps = tokens.fps;
  const { frames, height, width } = tokens;
  const size = opts.size ?? (frames && height && width ? ([frames, height, width] as [number, number, number]) : undefined);
  if (size) {
    const [t, h, w] = size;
    if (t > T || h > H || w > W) {
      throw new UserError(`tokens: decode to ${T}x${H}x${W} frames, fewer than the recorded ${t}x${h}x${w}; wrong model for these tokens?`);
    }
    v = cropVideo(v, t, h, w);
  }
  report(v.frames);
  return v;
}

// ---------------------------------------------------------------------------------------------
// roundtrip

export interface RoundtripOptions extends TokenizeOptions {
  /** Clamp the reconstruction to [-1, 1] (default true). The metrics clamp either way. */
  clamp?: boolean;
}

export interface RoundtripResult {
  /** the clip as read */
  input: Video;
  /** decode(encode(input)), cropped to the input's size */
  reconstruction: Video;
  /** the encoder's output, still on the device: read() or dispose() it */
  tokens: Tokens;
  /** PSNR / SSIM of the reconstruction against the input (src/metrics) */
  quality: Quality;
  seconds: { encode: number; decode: number };
}

/**
 * Encode a clip (streaming, as tokenize) and decode the tokens where they are (DV through the
 * token ids), then measure the reconstruction against the input. Progress: 'encode', 'decode'.
 */
export async function roundtrip(tokenizer: Tokenizer, source: FrameSource | Video, opts: RoundtripOptions = {}): Promise<RoundtripResult> {
  const model = videoTokenizer(tokenizer);
  // the metrics need an SSIM window's worth of frame: refused before the encode, not after it
  const where = (source as { path?: unknown }).path;
  checkMetricFrameSize(typeof where === 'string' ? where : 'input', source.width, source.height);
  const frames: Float32Array[] = [];
  const keep = isFrameSource(source);
  const t0 = performance.now();
  const tokens = await tokenize(model, source, {
    ...opts,
    onFrame: (f) => {
      if (keep) frames.push(f);
      opts.onFrame?.(f);
    },
  });
  try {
    await model.backend.sync();
    const t1 = performance.now();
    const input = isFrameSource(source) ? stackFrames(frames, source.height, source.width, source.fps) : source;
    frames.length = 0;
    const reconstruction = await detokenize(model, tokens, { ...opts, size: [input.frames, input.height, input.width] });
    const t2 = performance.now();
    const q = quality(reconstruction.data, input.data, [3, input.frames, input.height, input.width]);
    return { input, reconstruction, tokens, quality: q, seconds: { encode: (t1 - t0) / 1000, decode: (t2 - t1) / 1000 } };
  } catch (e) {
    tokens.dispose();
    throw e;
  }
}
