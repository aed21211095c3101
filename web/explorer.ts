// The explorer's model side: a vendored tokenizer (or one from a dropped folder) run on a clip,
// shown as input / reconstruction / difference with PSNR and SSIM; and the tap of any module path
// of that run as per-channel heat maps with its statistics.
import {
  type Backend, type FileSystem, type Tokenizer, type Video, type Tokens, capture, loadRelease, openVideoSource, roundtrip, statsOf, tokenize,
} from '../src/browser.js';
import { frameCanvas, heatCanvas, idCanvas } from './canvas.js';
import { $, el, fmtNum } from './dom.js';

interface Loaded {
  key: string;
  model: Tokenizer;
  dispose(): void;
}

let loaded: Loaded | null = null;

/** The tokenizer at `path` (cached: the explorer runs it again for each tap). */
export async function tokenizerAt(path: string, fs: FileSystem, backend: Backend): Promise<Tokenizer> {
  const key = `${path}|${backend.name}`;
  if (loaded?.key === key) return loaded.model;
  loaded?.dispose();
  loaded = null;
  const release = await loadRelease(path, { expect: 'tokenizer', backend, fs });
  loaded = { key, model: release.model, dispose: () => release.dispose() };
  return release.model;
}

/** Every module path of a model, for the tap picker. */
export function modulePaths(model: Tokenizer): string[] {
  const out: string[] = [];
  for (const m of (model as unknown as { modules(): Iterable<{ path: string }> }).modules()) if (m.path) out.push(m.path);
  return out;
}

export interface Clip {
  path: string;
  fs: FileSystem;
}

/** The clip as the CLI's roundtrip reads it: a streamed frame source, chunk by chunk through the encoder. */
export async function run(model: Tokenizer, clip: Clip) {
  const source = await openVideoSource(clip.path, undefined, clip.fs, { whole: true });
  try {
    return await roundtrip(model, source);
  } finally {
    await source.close();
  }
}

type HostTokens = Awaited<ReturnType<Tokens['read']>>;

/**
 * What a tap or an attention map needs run: the encode alone for a module before the latent
 * (half the work), the whole round trip for the decoder side.
 */
export async function runFor(path: string, model: Tokenizer, clip: Clip): Promise<{ tokens: { dispose(): void } }> {
  if (/^(decoder|post_quant_conv)(\.|$)/.test(path)) return run(model, clip);
  const source = await openVideoSource(clip.path, undefined, clip.fs, { whole: true });
  try {
    return { tokens: await tokenize(model, source) };
  } finally {
    await source.close();
  }
}

let shown: { input: Video; rec: Video; tokens: HostTokens } | null = null;

/** The latent frame a video frame is encoded into (causal: frame 0 alone, then groups of the temporal factor). */
function latentFrame(t: number, frames: number, latentFrames: number): number {
  return Math.min(latentFrames - 1, Math.ceil((t * (latentFrames - 1)) / Math.max(1, frames - 1)));
}

/** The tokens of the latent frame under video frame t: CV latent channels as heat maps, DV token ids as colours. */
function drawTokens(t: number): void {
  if (!shown) return;
  const { tokens, input } = shown;
  const figs: HTMLElement[] = [];
  let caption: string;
  if (tokens.latent) {
    const [, c, lt, h, w] = tokens.latent.shape;
    const lf = latentFrame(t, input.frames, lt);
    let scale = 0;
    for (const v of tokens.latent.data) scale = Math.max(scale, Math.abs(v));
    for (let ch = 0; ch < c; ch++) {
      const cv = heatCanvas(tokens.latent.data, (ch * lt + lf) * h * w, h, w, scale);
      figs.push(el('figure', {}, cv, el('figcaption', {}, `c${ch}`)));
    }
    caption = `CV latent [${tokens.latent.shape.join(', ')}], latent frame ${lf} (colour: +-${fmtNum(scale)})`;
  } else if (tokens.indices) {
    const [, lt, h, w] = tokens.indices.shape;
    const lf = latentFrame(t, input.frames, lt);
    figs.push(el('figure', {}, idCanvas(tokens.indices.data, lf * h * w, h, w), el('figcaption', {}, `token ids, latent frame ${lf}`)));
    caption = `DV token ids [${tokens.indices.shape.join(', ')}], ${new Set(tokens.indices.data).size} distinct`;
  } else return;
  $('rt-tokens-caption').textContent = caption;
  $('rt-tokens').replaceChildren(...figs);
}

function drawRoundtrip(t: number): void {
  if (!shown) return;
  const { input, rec } = shown;
  const diff = new Float32Array(input.data.length);
  // |rec - input| on the same [-1, 1] scale as the frames (0 is black)
  for (let i = 0; i < diff.length; i++) diff[i] = Math.min(1, Math.abs(rec.data[i] - input.data[i])) * 2 - 1;
  const fig = (c: HTMLCanvasElement, caption: string) => el('figure', {}, c, el('figcaption', {}, caption));
  $('rt-figs').replaceChildren(
    fig(frameCanvas(input.data, input.frames, input.height, input.width, t), `input, frame ${t}`),
    fig(frameCanvas(rec.data, rec.frames, rec.height, rec.width, t), 'reconstruction'),
    fig(frameCanvas(diff, input.frames, input.height, input.width, t), '|difference|'),
  );
}

export async function showRoundtrip(modelPath: string, clip: Clip, fs: FileSystem, backend: Backend): Promise<number> {
  const model = await tokenizerAt(modelPath, fs, backend);
  const r = await run(model, clip);
  let tokens: HostTokens;
  try {
    tokens = await r.tokens.read();
  } finally {
    r.tokens.dispose();
  }
  shown = { input: r.input, rec: r.reconstruction, tokens };
  const slider = $<HTMLInputElement>('rt-frame');
  slider.max = String(r.input.frames - 1);
  slider.value = '0';
  slider.oninput = () => {
    drawRoundtrip(Number(slider.value));
    drawTokens(Number(slider.value));
  };
  const host = $('roundtrip');
  host.replaceChildren(
    el('p', { class: 'stats', id: 'rt-metrics' },
      `${clip.path} through ${modelPath} on ${backend.adapter}: PSNR ${r.quality.psnr.toFixed(2)} dB, SSIM ${r.quality.ssim.toFixed(4)} ` +
        `(encode ${r.seconds.encode.toFixed(2)} s, decode ${r.seconds.decode.toFixed(2)} s)`),
    el('div', { class: 'figs', id: 'rt-figs' }),
    el('p', { class: 'stats', id: 'rt-tokens-caption' }),
    el('div', { class: 'grid', id: 'rt-tokens' }),
  );
  host.dataset.psnr = String(r.quality.psnr);
  host.dataset.ssim = String(r.quality.ssim);
  drawRoundtrip(0);
  drawTokens(0);
  return r.quality.psnr;
}

/** One recorded tensor of the tap, on the host. */
interface HostTap {
  shape: readonly number[];
  values: Float32Array;
}

let tapShown: { path: string; parts: HostTap[]; scale: number } | null = null;

/** Planes of a tap: a 5D [B, C, T, H, W] output gives C planes per frame; 4D [B, C, H, W] C planes; else one plane. */
function framesOf(parts: HostTap[]): { part: number; t: number }[] {
  const out: { part: number; t: number }[] = [];
  parts.forEach((p, i) => {
    const frames = p.shape.length === 5 ? p.shape[2] : 1;
    for (let t = 0; t < frames; t++) out.push({ part: i, t });
  });
  return out;
}

const MAX_CHANNELS = 64;

function drawTap(frame: number): void {
  if (!tapShown) return;
  const at = framesOf(tapShown.parts)[frame];
  const p = tapShown.parts[at.part];
  const s = p.shape;
  const figs: HTMLElement[] = [];
  if (s.length === 5 || s.length === 4) {
    const [c, t, h, w] = s.length === 5 ? [s[1], s[2], s[3], s[4]] : [s[1], 1, s[2], s[3]];
    for (let ch = 0; ch < Math.min(c, MAX_CHANNELS); ch++) {
      const canvas = heatCanvas(p.values, (ch * t + at.t) * h * w, h, w, tapShown.scale);
      figs.push(el('figure', {}, canvas, el('figcaption', {}, `c${ch}`)));
    }
  } else {
    // tokens x features (or anything else): one plane of its last two axes
    const w = s.at(-1) ?? 1;
    const h = Math.max(1, Math.floor(p.values.length / w));
    const canvas = heatCanvas(p.values, 0, h, w, tapShown.scale);
    canvas.style.width = `${Math.min(800, w * 4)}px`;
    figs.push(el('figure', {}, canvas, el('figcaption', {}, `[${s.join(', ')}]`)));
  }
  $('tap-grid').replaceChildren(...figs);
  $('tap-where').textContent = `${tapShown.path}: record ${at.part + 1} of ${tapShown.parts.length}, frame ${at.t}` +
    (s.length >= 4 && s[1] > MAX_CHANNELS ? ` (first ${MAX_CHANNELS} of ${s[1]} channels)` : '');
}

/** Run the clip through the model with `path`'s output recorded; show its planes and statistics. */
export async function showTap(modelPath: string, path: string, clip: Clip, fs: FileSystem, backend: Backend): Promise<void> {
  const model = await tokenizerAt(modelPath, fs, backend);
  const { result, taps } = await capture([path], () => runFor(path, model, clip));
  let parts: HostTap[];
  try {
    result.tokens.dispose();
    const recs = taps.all(path);
    if (!recs.length) throw new Error(`${path}: this module records no tap (pick a block, a layer or the encoder / decoder output)`);
    parts = [];
    for (const t of recs) parts.push({ shape: [...t.shape], values: Float32Array.from(await t.read()) });
  } finally {
    taps.dispose();
  }
  const all = new Float32Array(parts.reduce((n, p) => n + p.values.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p.values, o);
    o += p.values.length;
  }
  const st = statsOf(all);
  tapShown = { path, parts, scale: Math.max(Math.abs(st.min), Math.abs(st.max)) };
  const host = $('tap');
  host.replaceChildren(
    el('p', { class: 'stats', id: 'tap-stats' },
      `${path} [${parts.map((p) => p.shape.join(', ')).join(' | ')}]: min ${fmtNum(st.min)} max ${fmtNum(st.max)} mean ${fmtNum(st.mean)} ` +
        `std ${fmtNum(st.std)} NaN ${st.nan} inf ${st.inf} (colour: +-${fmtNum(tapShown.scale)}, NaN green)`),
    el('p', { class: 'stats', id: 'tap-where' }),
    el('div', { class: 'grid', id: 'tap-grid' }),
  );
  Object.assign(host.dataset, { path, min: String(st.min), max: String(st.max), mean: String(st.mean), std: String(st.std), nan: String(st.nan) });
  const slider = $<HTMLInputElement>('tap-frame');
  slider.max = String(framesOf(parts).length - 1);
  slider.value = '0';
  slider.oninput = () => drawTap(Number(slider.value));
  drawTap(0);
}
