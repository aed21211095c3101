// Attention maps of a tokenizer's spatial attention block (single head over the H*W positions of
// each frame). The fused attention kernel never materialises the probabilities, so the page
// recomputes them on the host from the block's input (the tap of the module before it) and the
// block's own weights: group norm (one group), q / k 1x1 projections, softmax(q k^T / sqrt(C)).
// The same host pass also rebuilds the block's output (v, proj_out, the residual) and compares it
// with the block's recorded tap, so a map shown is one the model really computed.
import { type Tokenizer, capture } from '../src/browser.js';
import { heatCanvas } from './canvas.js';
import { $, el, fmtErr, fmtNum } from './dom.js';

const EPS = 1e-6;

interface ModuleLike {
  path: string;
  children: Map<string, ModuleLike>;
  modules(): Iterable<ModuleLike>;
  parameters(): Iterable<{ key: string; t: { read(): Promise<ArrayLike<number>> } }>;
}

/** Where a spatial attention block's input is recorded: the res block before it. */
export function attentionInputPath(path: string): string | null {
  const mid = /^(.*)\.attn_1\.0$/.exec(path);
  if (mid) return `${mid[1]}.block_1`;
  const level = /^(.*)\.attn\.(\d+)\.0$/.exec(path);
  if (level) return `${level[1]}.block.${level[2]}`;
  return null;
}

/** The spatial attention blocks of a model (single-head, q / k / v / proj_out). */
export function attentionPaths(model: Tokenizer): string[] {
  const out: string[] = [];
  for (const m of (model as unknown as ModuleLike).modules()) {
    if (attentionInputPath(m.path) && ['q', 'k', 'v', 'proj_out', 'norm'].every((c) => m.children.has(c))) out.push(m.path);
  }
  return out;
}

type Weights = Record<'normW' | 'normB' | 'qW' | 'qB' | 'kW' | 'kB' | 'vW' | 'vB' | 'pW' | 'pB', Float32Array>;

async function weightsOf(model: Tokenizer, path: string): Promise<Weights> {
  const mod = [...(model as unknown as ModuleLike).modules()].find((m) => m.path === path);
  if (!mod) throw new Error(`${path}: no such module`);
  const got: Partial<Weights> = {};
  const names: [RegExp, keyof Weights][] = [
    [/\.norm\.(?:norm\.)?weight$/, 'normW'], [/\.norm\.(?:norm\.)?bias$/, 'normB'],
    [/\.q\.(?:conv3d\.)?weight$/, 'qW'], [/\.q\.(?:conv3d\.)?bias$/, 'qB'], [/\.k\.(?:conv3d\.)?weight$/, 'kW'], [/\.k\.(?:conv3d\.)?bias$/, 'kB'],
    [/\.v\.(?:conv3d\.)?weight$/, 'vW'], [/\.v\.(?:conv3d\.)?bias$/, 'vB'], [/\.proj_out\.(?:conv3d\.)?weight$/, 'pW'], [/\.proj_out\.(?:conv3d\.)?bias$/, 'pB'],
  ];
  for (const p of mod.parameters()) {
    const hit = names.find(([re]) => re.test(p.key));
    if (hit) got[hit[1]] = Float32Array.from(await p.t.read());
  }
  for (const [, k] of names) if (!got[k]) throw new Error(`${path}: no ${k} parameter; not a single-head attention block`);
  return got as Weights;
}

interface Frame {
  /** [HW, HW] probabilities, query-major */
  probs: Float32Array;
  /** max |rebuilt output - recorded output| over the frame */
  maxAbs: number;
}

/** One frame (t) of a [1, C, T, H, W] input: the map, and the rebuilt output checked against `out`. */
function frameAttention(w: Weights, x: Float32Array, out: Float32Array, C: number, T: number, HW: number, t: number): Frame {
  const at = (c: number, p: number) => (c * T + t) * HW + p;
  let mean = 0;
  for (let c = 0; c < C; c++) for (let p = 0; p < HW; p++) mean += x[at(c, p)];
  mean /= C * HW;
  let vr = 0;
  for (let c = 0; c < C; c++) for (let p = 0; p < HW; p++) vr += (x[at(c, p)] - mean) ** 2;
  const inv = 1 / Math.sqrt(vr / (C * HW) + EPS);
  const h = new Float32Array(HW * C); // position-major
  for (let c = 0; c < C; c++) for (let p = 0; p < HW; p++) h[p * C + c] = (x[at(c, p)] - mean) * inv * w.normW[c] + w.normB[c];
  const project = (W: Float32Array, B: Float32Array) => {
    const y = new Float32Array(HW * C);
    for (let p = 0; p < HW; p++) {
      for (let o = 0; o < C; o++) {
        let s = B[o];
        for (let c = 0; c < C; c++) s += W[o * C + c] * h[p * C + c];
        y[p * C + o] = s;
      }
    }
    return y;
  };
  const q = project(w.qW, w.qB);
  const k = project(w.kW, w.kB);
  const v = project(w.vW, w.vB);
  const scale = C ** -0.5;
  const probs = new Float32Array(HW * HW);
  for (let i = 0; i < HW; i++) {
    let mx = -Infinity;
    for (let j = 0; j < HW; j++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += q[i * C + c] * k[j * C + c];
      probs[i * HW + j] = s * scale;
      mx = Math.max(mx, s * scale);
    }
    let sum = 0;
    for (let j = 0; j < HW; j++) sum += probs[i * HW + j] = Math.exp(probs[i * HW + j] - mx);
    for (let j = 0; j < HW; j++) probs[i * HW + j] /= sum;
  }
  let maxAbs = 0;
  const o = new Float32Array(C);
  for (let i = 0; i < HW; i++) {
    o.fill(0);
    for (let j = 0; j < HW; j++) for (let c = 0; c < C; c++) o[c] += probs[i * HW + j] * v[j * C + c];
    for (let c2 = 0; c2 < C; c2++) {
      let y = w.pB[c2];
      for (let c = 0; c < C; c++) y += w.pW[c2 * C + c] * o[c];
      maxAbs = Math.max(maxAbs, Math.abs(x[at(c2, i)] + y - out[at(c2, i)]));
    }
  }
  return { probs, maxAbs };
}

let shown: { path: string; frames: Frame[]; hw: [number, number] } | null = null;

function draw(f: number): void {
  if (!shown) return;
  const fr = shown.frames[f];
  const [H, W] = shown.hw;
  const HW = H * W;
  let mx = 0;
  for (const p of fr.probs) mx = Math.max(mx, p);
  const full = heatCanvas(fr.probs, 0, HW, HW, mx);
  full.style.width = `${Math.min(384, HW * 4)}px`;
  // where the centre position looks, as an H x W image
  const centre = Math.floor(H / 2) * W + Math.floor(W / 2);
  const row = heatCanvas(fr.probs, centre * HW, H, W, mx);
  row.style.width = `${W * 16}px`;
  $('attn-figs').replaceChildren(
    el('figure', {}, full, el('figcaption', {}, `frame ${f}: ${HW} queries x ${HW} keys (max ${fmtNum(mx)})`)),
    el('figure', {}, row, el('figcaption', {}, `query at the centre (${Math.floor(H / 2)}, ${Math.floor(W / 2)})`)),
  );
  $('attn-check').textContent = `host rebuild of ${shown.path}'s output against its tap, frame ${f}: max_abs ${fmtErr(fr.maxAbs)}`;
}

export async function showAttention(model: Tokenizer, path: string, run: () => Promise<{ tokens: { dispose(): void } }>): Promise<void> {
  const input = attentionInputPath(path);
  if (!input) throw new Error(`${path}: not a spatial attention block (pick one of the list)`);
  const w = await weightsOf(model, path);
  const { result, taps } = await capture([input, path], run);
  const frames: Frame[] = [];
  let hw: [number, number] = [0, 0];
  try {
    result.tokens.dispose();
    const ins = taps.all(input);
    const outs = taps.all(path);
    if (!ins.length || ins.length !== outs.length) throw new Error(`${path}: its input (${input}) and output were recorded ${ins.length} and ${outs.length} times`);
    for (let r = 0; r < ins.length; r++) {
      const s = ins[r].shape;
      if (s.length !== 5 || outs[r].shape.join() !== s.join()) throw new Error(`${path}: input [${s}] / output [${outs[r].shape}]; expected [B, C, T, H, W] twice`);
      const [, C, T, H, W] = s;
      hw = [H, W];
      const x = Float32Array.from(await ins[r].read());
      const y = Float32Array.from(await outs[r].read());
      for (let t = 0; t < T; t++) frames.push(frameAttention(w, x, y, C, T, H * W, t));
    }
  } finally {
    taps.dispose();
  }
  shown = { path, frames, hw };
  const worst = Math.max(...frames.map((f) => f.maxAbs));
  const host = $('attn');
  host.replaceChildren(el('p', { class: 'stats', id: 'attn-check' }), el('div', { class: 'figs', id: 'attn-figs' }));
  Object.assign(host.dataset, { path, frames: String(frames.length), maxabs: String(worst), hw: hw.join('x') });
  const slider = $<HTMLInputElement>('attn-frame');
  slider.max = String(frames.length - 1);
  slider.value = '0';
  slider.oninput = () => draw(Number(slider.value));
  draw(0);
}
