// The chain after the autoregressive models (cosmos-predict1 autoregressive/diffusion_decoder/
// inference.py diffusion_decoder_process_tokens): DV8x16x16 token ids -> the 7B diffusion decoder,
// window by window (ar-decoder-chunks.ts) -> CV8x8x8 latents, de-normalised with the CV
// tokenizer's mean_std.pt -> the CV8x8x8 decoder, chunk by chunk, clamped -> the pixel-space blend
// -> the first T frames. Upstream decodes the DV video only to learn T, H and W; here they come
// from the grid and the DV tokenizer's compression, so the DV decoder does not run at all.
//
// Memory: one large model at a time. The decoder is loaded when its phase starts and freed once
// every window is sampled (the windows' latents are small and stay on the device); only then is
// the CV tokenizer loaded. The caller frees the AR model before calling this.
import type { Backend } from '../engine/backend.js';
import { UserError, throwIfAborted } from '../engine/errors.js';
import type { Module } from '../engine/module.js';
import * as F from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { type FileSystem, fileSystem } from '../io/files.js';
import { dirname, join } from '../io/path.js';
import { openCheckpoint } from '../io/safetensors.js';
import type { Rational, Video } from '../io/video.js';
import { widen } from '../engine/dtype.js';
import { ArDecoderFamily, type DiffusionDecoderDiT } from '../models/ar-decoder/model.js';
import { sampleDecoderChunk } from '../models/ar-decoder/sample.js';
import { GaussianNoise } from '../models/dit/noise.js';
import { loadModule } from '../models/load.js';
import { denormalizeLatent, latentStats } from '../models/tokenizer/diffusers.js';
import type { CausalContinuousVideoTokenizer } from '../models/tokenizer/video.js';
import { planBackend } from '../engine/select.js';
import { ChunkBlender, DECODER_CHUNK_FRAMES, DECODER_OVERLAP, type TokenChunk, chunkIds, splitWithOverlap } from './ar-decoder-chunks.js';
import type { ComponentBytes, PhaseHooks } from './components.js';
import { checkFinite, requireFiniteRaw } from './finite.js';
import { type RunOptions, stage } from './progress.js';
import { loadVideoTokenizer } from './tokenizer.js';

// ------------------------------------------------------------------ defaults (DiffusionDecoderSamplingConfig)

export const DECODER_STEPS = 15;
export const DECODER_GUIDANCE = 1.8;
/** the fps the decoder is conditioned on (DiffusionDecoderSamplingConfig.fps), whatever the clip's */
export const DECODER_FPS = 24;
/** T5 rows the decoder's text is padded to (the T5 encoder's fixed 512 tokens) */
export const DECODER_TEXT_ROWS = 512;

// ------------------------------------------------------------------ the decoder as the chain sees it

/** What the chain reads of a decoder: the sizes it must agree with the tokenizers and the text on. */
export interface DecoderGeometry {
  /** token embedding rows (the DV codebook it was trained on) */
  vocabSize: number;
  /** latent channels it samples (the CV tokenizer's) */
  latentChannels: number;
  /** T5 width of its cross-attention */
  textDim: number;
  /** the latent scaling of its sampler (0.5) */
  sigmaData: number;
}

/** The decoder's sizes from its config (the one place that knows ArDecoderConfig's fields). */
export function decoderGeometry(m: DiffusionDecoderDiT): DecoderGeometry {
  const c = m.config;
  return { vocabSize: c.vocabSize, latentChannels: c.inChannels, textDim: c.crossattnEmbChannels, sigmaData: c.sigmaData };
}

/** A decoder folder (config.json + model.safetensors, or the release's model.pt) or a model.pt file, loaded on `backend`. */
export async function loadArDecoder(path: string, backend: Backend, fs?: FileSystem): Promise<DiffusionDecoderDiT> {
  return (await loadModule(ArDecoderFamily, path, backend, { fs })).model;
}

/** The continuous video tokenizer (CV) of a folder, its decoder only where the release splits them; a DV is refused. */
export async function loadCvTokenizer(path: string, backend: Backend, fs?: FileSystem): Promise<CausalContinuousVideoTokenizer> {
  const t = await loadVideoTokenizer(path, backend, { fs, part: 'decoder' });
  if (t.kind !== 'CV') {
    t.dispose();
    throw new UserError(`cv-tokenizer ${path}: a ${t.kind} (discrete) tokenizer; the diffusion decoder's latents are decoded by the continuous video tokenizer (CV8x8x8)`);
  }
  return t;
}

// ------------------------------------------------------------------ text

export interface HostText {
  data: Float32Array;
  /** [Lc, D] */
  shape: [number, number];
}

/** aux_vars.pt beside a decoder checkpoint (a folder: inside it). */
export async function auxVarsPath(decoder: string, fs: FileSystem = fileSystem()): Promise<string> {
  const st = await fs.stat(decoder);
  return join(st?.kind === 'directory' ? decoder : dirname(decoder), 'aux_vars.pt');
}

/**
 * The generic-prompt T5 context ("high quality, 4k, high definition, smooth video") the release
 * ships in aux_vars.pt for the AR models that take no prompt: its `context` entry, [1, M, D] or
 * [M, D]. A missing file is a UserError naming it and what to give instead.
 */
export async function readDecoderContext(decoder: string, fs: FileSystem = fileSystem()): Promise<HostText> {
  const path = await auxVarsPath(decoder, fs);
  if ((await fs.stat(path))?.kind !== 'file') {
    throw new UserError(
      `${path}: not found; the diffusion decoder conditions on the T5 context of a generic prompt stored there when the AR model takes no prompt ` +
        '(give the T5 embeddings of a prompt instead: --embeddings <t5.safetensors>)',
    );
  }
  const ck = await openCheckpoint(path, fs, { config: false });
  try {
    if (!ck.has('context')) throw new UserError(`${path}: holds no "context" tensor (found ${ck.names.slice(0, 6).join(', ')})`);
    const t = await ck.read('context');
    const s = t.shape;
    if (!(s.length === 2 || (s.length === 3 && s[0] === 1)) || s.some((d) => d < 1) || t.dtype === 'i32') {
      throw new UserError(`${path}: tensor context must be float [1, M, D] or [M, D], got ${t.dtype} [${s.join(', ')}]`);
    }
    requireFiniteRaw(t.dtype, t.raw, path, 'tensor context');
    const [M, D] = s.slice(-2);
    return { data: Float32Array.from(widen(t.dtype, t.raw)), shape: [M, D] };
  } finally {
    await ck.close();
  }
}

/** [1, max(Lc, rows), D] on `backend`, zero rows after the text (as T5's padded output). */
function textTensor(backend: Backend, text: HostText, rows: number): Tensor {
  const [Lc, D] = text.shape;
  const M = Math.max(Lc, rows);
  const padded = new Float32Array(M * D);
  padded.set(text.data.subarray(0, Lc * D));
  return F.fromArray(backend, padded, [1, M, D]);
}

// ------------------------------------------------------------------ checks

/** The sizes of the run the chain decodes, for the checks below. */
export interface DecoderRunSizes {
  /** the DV tokenizer's codebook, temporal and spatial compression */
  dv: { vocabSize: number; temporalCompression: number; spatialCompression: number };
  /** the DV grid [T, h, w] */
  grid: readonly [number, number, number];
  /** the T5 width of the text the decoder gets */
  textDim: number;
}

/** The CV tokenizer as the chain sees it. */
export interface CvGeometry {
  latentChannels: number;
  temporalCompression: number;
  spatialCompression: number;
  latentMeanStd: { mean: Float32Array; std: Float32Array } | null;
}

/** The decoder against the DV tokenizer and the text (`where` names the decoder in messages). */
export function checkDecoder(d: DecoderGeometry, run: DecoderRunSizes, where: string): void {
  if (d.vocabSize !== run.dv.vocabSize) {
    throw new UserError(`${where}: the decoder's token embedding has ${d.vocabSize} rows (token vocab), the DV tokenizer's codebook ${run.dv.vocabSize} codes; it decodes another tokenizer's tokens`);
  }
  if (d.textDim !== run.textDim) {
    throw new UserError(`${where}: the decoder cross-attends to T5 states of ${d.textDim} channels (crossattn_emb_channels); the text given has ${run.textDim}`);
  }
}

/** The CV tokenizer against the decoder and the DV tokenizer (`where` names the CV tokenizer in messages). */
export function checkCvTokenizer(latentChannels: number, cv: CvGeometry, run: DecoderRunSizes, where: string, n = DECODER_CHUNK_FRAMES): void {
  const { dv, grid } = run;
  if (latentChannels !== cv.latentChannels) {
    throw new UserError(`${where}: the CV tokenizer has ${cv.latentChannels} latent channels, the decoder samples ${latentChannels} (in_channels)`);
  }
  if (cv.temporalCompression !== dv.temporalCompression) {
    throw new UserError(
      `${where}: the CV tokenizer compresses time ${cv.temporalCompression}x, the DV tokenizer ${dv.temporalCompression}x; the decoder's latent frames are the DV token frames, so they must agree`,
    );
  }
  const H = grid[1] * dv.spatialCompression;
  const W = grid[2] * dv.spatialCompression;
  if (H % cv.spatialCompression || W % cv.spatialCompression) {
    throw new UserError(`${where}: the clip's ${W}x${H} frames are not a whole number of the CV tokenizer's ${cv.spatialCompression}x${cv.spatialCompression} latent cells`);
  }
  const ms = cv.latentMeanStd;
  if (!ms) {
    throw new UserError(`${where}: no mean_std.pt (the CV8x8x8 release's latent mean / std): the decoder's latents are normalised by them and cannot be decoded without`);
  }
  const per = ms.mean.length / cv.latentChannels;
  if (!Number.isInteger(per) || (per !== 1 && per < n)) {
    throw new UserError(`${where}: mean_std.pt holds ${ms.mean.length} values; expected ${cv.latentChannels} latent channels x at least ${n} latent frames (or one value per channel)`);
  }
}

/** The geometry of a CV tokenizer. */
export function cvGeometry(t: CausalContinuousVideoTokenizer): CvGeometry {
  return { latentChannels: t.latentChannels, temporalCompression: t.temporalCompression, spatialCompression: t.spatialCompression, latentMeanStd: t.latentMeanStd };
}

/**
 * Load a decoder folder and a CV tokenizer folder on a plan backend with `like`'s limits (their
 * headers checked, nothing read) and check them against the run: every mistake in them is found
 * before the AR model generates a token. Returns the bytes each takes.
 */
export async function checkDecoderFolders(
  decoder: string | null, cv: string | null, like: Backend, run: DecoderRunSizes, fs?: FileSystem,
  given: { decoder?: DecoderGeometry; cv?: CvGeometry } = {},
): Promise<ComponentBytes[]> {
  const out: ComponentBytes[] = [];
  const be = () => planBackend({ limits: like.limits, adapter: `${like.name} limits` });
  let d = given.decoder;
  let c = given.cv;
  if (decoder !== null) {
    const b = be();
    const m = await loadArDecoder(decoder, b, fs);
    d = decoderGeometry(m);
    out.push({ name: 'decoder', path: decoder, bytes: b.memory().liveBytes });
    m.dispose();
  }
  if (cv !== null) {
    const b = be();
    const m = await loadCvTokenizer(cv, b, fs);
    c = cvGeometry(m);
    out.push({ name: 'cv_tokenizer', path: cv, bytes: b.memory().liveBytes });
    m.dispose();
  }
  if (d && decoder !== null) checkDecoder(d, run, decoder);
  if (d && c) checkCvTokenizer(d.latentChannels, c, run, cv ?? 'cv tokenizer');
  return out;
}

// ------------------------------------------------------------------ the chain

export interface ArDecoderSettings {
  /** sampler steps (default 15) */
  steps?: number;
  /** classifier-free guidance (default 1.8) */
  guidance?: number;
  /** seed of the windows' noise; window k draws from the stream `<seed>/decoder/<k>` (default 0) */
  seed?: number | string;
}

/** A component given loaded (the caller keeps it), as a folder, or as a loader (the chain owns what it returns). */
export type Source<M> = M | string | ((backend: Backend) => Promise<M>);

export interface DecodeArTokensOptions extends ArDecoderSettings, RunOptions, PhaseHooks {
  /** DV token ids of the whole grid, T-major */
  ids: Int32Array;
  /** [T, h, w] */
  grid: readonly [number, number, number];
  /** the DV tokenizer's codebook and compression (the clip is 1 + (T-1)*tc frames of h*sc x w*sc) */
  dv: DecoderRunSizes['dv'];
  /** the decoder's T5 text: the prompt's for Video2World, aux_vars.pt's generic prompt for the base models */
  text: HostText;
  decoder: Source<DiffusionDecoderDiT>;
  cvTokenizer: Source<CausalContinuousVideoTokenizer>;
  backend: Backend;
  fs?: FileSystem;
  /** the CV tokenizer's spatial compression when it is given as a folder or loader (default 8, CV8x8x8's) */
  cvSpatialCompression?: number;
  /** the output clip's frame rate (the decoder itself is always conditioned on 24 fps, as upstream) */
  fps?: Rational;
}

export interface DecodeArTokensResult {
  /** [-1, 1], the DV clip's 1 + (T-1)*tc frames */
  video: Video;
  chunks: TokenChunk[];
  /** one window's latent, [1, C, n, H/8, W/8] */
  latentShape: number[];
  seconds: { sample: number; decode: number };
}

/** How the chain samples a window and reads a decoder's sizes (the model package's, or a test's stand-in). */
export interface DecoderRuntime<M extends Module> {
  load(path: string, backend: Backend, fs?: FileSystem): Promise<M>;
  geometry(m: M): DecoderGeometry;
  sample: (m: M, o: Parameters<typeof sampleDecoderChunk>[1]) => Promise<Tensor>;
}

export const DECODER_RUNTIME: DecoderRuntime<DiffusionDecoderDiT> = { load: loadArDecoder, geometry: decoderGeometry, sample: sampleDecoderChunk };

async function acquire<M extends { dispose(): void }>(src: Source<M>, backend: Backend, load: (p: string) => Promise<M>): Promise<{ m: M; owned: boolean }> {
  if (typeof src === 'string') return { m: await load(src), owned: true };
  if (typeof src === 'function') return { m: await (src as (b: Backend) => Promise<M>)(backend), owned: true };
  return { m: src, owned: false };
}

/** The diffusion decoder's chain on DV token ids: the clip upstream's AR pipelines write. */
export async function decodeArTokens(o: DecodeArTokensOptions): Promise<DecodeArTokensResult> {
  return decodeArTokensWith(DECODER_RUNTIME, o);
}

/** decodeArTokens with another runtime (tests stand a small decoder in for the 7B). */
export async function decodeArTokensWith<M extends Module>(
  rt: DecoderRuntime<M>, o: Omit<DecodeArTokensOptions, 'decoder'> & { decoder: Source<M> },
): Promise<DecodeArTokensResult> {
  throwIfAborted(o.signal);
  const { backend, grid, dv } = o;
  const [T, h, w] = grid;
  const n = DECODER_CHUNK_FRAMES;
  const steps = o.steps ?? DECODER_STEPS;
  const guidance = o.guidance ?? DECODER_GUIDANCE;
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`decoder steps: must be a positive integer, got ${steps}`);
  if (!Number.isFinite(guidance)) throw new UserError(`decoder guidance: must be a finite number, got ${guidance}`);
  const frames = 1 + (T - 1) * dv.temporalCompression;
  const H = h * dv.spatialCompression;
  const W = w * dv.spatialCompression;
  const chunks = splitWithOverlap(T);
  const run: DecoderRunSizes = { dv, grid, textDim: o.text.shape[1] };
  const where = (s: unknown, name: string) => (typeof s === 'string' ? s : name);

  // ---- the decoder: every window sampled, then freed
  const t0 = performance.now();
  o.onPhase?.('decoder');
  const dec = await acquire(o.decoder, backend, (p) => rt.load(p, backend, o.fs));
  const latents: Tensor[] = [];
  let latentShape: number[];
  let sigmaData: number;
  try {
    const d = rt.geometry(dec.m);
    sigmaData = d.sigmaData;
    checkDecoder(d, run, where(o.decoder, 'decoder'));
    // the CV latent grid: upstream's state shape [16, 8, H // 8, W // 8] (8: CV8x8x8's compression)
    const cvSc = typeof o.cvTokenizer === 'object' ? o.cvTokenizer.spatialCompression : (o.cvSpatialCompression ?? 8);
    latentShape = [1, d.latentChannels, n, Math.floor(H / cvSc), Math.floor(W / cvSc)];
    const latent = { channels: d.latentChannels, frames: n, height: latentShape[3], width: latentShape[4] };
    const report = stage(o, 'decoder', 'steps', chunks.length * steps);
    const text = textTensor(backend, o.text, DECODER_TEXT_ROWS);
    let done = 0;
    try {
      for (const [k, chunk] of chunks.entries()) {
        throwIfAborted(o.signal);
        const ids = F.fromArray(backend, chunkIds(o.ids, grid, chunk), [1, 1, n, h, w], 'i32');
        const noise = new GaussianNoise(`${o.seed ?? 0}/decoder/${k}`).tensor(backend, latentShape);
        try {
          const z = await rt.sample(dec.m, {
            ids, text, latent, noise, steps, guidance, fps: DECODER_FPS, signal: o.signal,
            onStep: () => report(++done, { chunk: k }),
          });
          latents.push(z);
          await checkFinite(z, { component: 'ar diffusion decoder', step: k });
        } finally {
          ids.dispose();
          noise.dispose();
        }
      }
    } finally {
      text.dispose();
    }
  } catch (e) {
    for (const z of latents) z.dispose();
    throw e;
  } finally {
    if (dec.owned) dec.m.dispose();
  }
  const t1 = performance.now();

  // ---- the CV decoder: window latents -> pixels, blended as they come
  try {
    o.onPhase?.('cv-decode');
    const cv = await acquire(o.cvTokenizer, backend, (p) => loadCvTokenizer(p, backend, o.fs));
    try {
      const g = cvGeometry(cv.m);
      const cvWhere = where(o.cvTokenizer, 'cv tokenizer');
      checkCvTokenizer(latentShape[1], g, run, cvWhere, n);
      if (g.spatialCompression * latentShape[3] !== H || g.spatialCompression * latentShape[4] !== W) {
        throw new UserError(`${cvWhere}: a ${g.spatialCompression}x spatial CV tokenizer; the windows were sampled for ${H / latentShape[3]}x (cvSpatialCompression)`);
      }
      const ms = g.latentMeanStd!;
      const stats = latentStats(backend, ms.mean, ms.std, g.latentChannels);
      const pixelFrames = 1 + (n - 1) * g.temporalCompression;
      const blender = new ChunkBlender(chunks.length, pixelFrames, DECODER_OVERLAP, frames, H, W);
      const report = stage(o, 'cv-decode', 'chunks', chunks.length);
      try {
        for (const [k, z] of latents.entries()) {
          throwIfAborted(o.signal);
          const zd = denormalizeLatent(z, stats, sigmaData);
          let px: Tensor;
          try {
            px = cv.m.decode(zd);
          } finally {
            zd.dispose();
          }
          try {
            await checkFinite(px, { component: 'cv tokenizer decoder', step: k });
            if (backend.name === 'plan') blender.add(new Float32Array(px.size));
            else {
              const data = (await px.read()) as Float32Array;
              for (let i = 0; i < data.length; i++) data[i] = Math.min(Math.max(data[i], -1), 1);
              blender.add(data);
            }
          } finally {
            px.dispose();
          }
          report(k + 1);
        }
      } finally {
        stats.mean.dispose();
        stats.std.dispose();
      }
      const video = blender.result();
      if (o.fps) video.fps = o.fps;
      return { video, chunks, latentShape, seconds: { sample: (t1 - t0) / 1000, decode: (performance.now() - t1) / 1000 } };
    } finally {
      if (cv.owned) cv.m.dispose();
    }
  } finally {
    for (const z of latents) z.dispose();
  }
}
