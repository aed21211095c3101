// `cosmos-ts demo` (= `npm start`), the main job:
//   (a) the conformance suite over the vendored fixtures on every available backend (the
//       `conform` command itself, so the table is the one `conform --all` prints);
//   (b) the three sample clips of weights/samples round-tripped through the two tiny trained
//       tokenizers (weights/cosmos-tokenizer-tiny-{cv,dv}4x8x8) on every available backend,
//       PSNR / SSIM beside PyTorch's (weights/samples/expected.json) and DV token-id agreement;
//   (c) the reconstructions as Y4M (out/samples/<sample>_<model>_<backend>.y4m) and one contact
//       sheet per sample (input, CV and DV rows, every 4th frame) as PNG.
// Exit status 1 if any conformance case fails (or is not implemented) or any sample misses its
// target: PSNR within 0.01 dB and SSIM within 1e-4 of PyTorch's (plus half a unit in the last
// digit expected.json was rounded to) and, for DV, every token id equal to PyTorch's.
//
// The sample helpers below are shared with test/models/tokenizer-samples.test.ts.
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../engine/backend.js';
import * as F from '../engine/ops.js';
import { contactSheet } from '../io/contact-sheet.js';
import { encodePng } from '../io/png.js';
import { openSafetensors } from '../io/safetensors.js';
import type { Video } from '../io/video.js';
import { writeY4m } from '../io/y4m.js';
import { psnr, ssim } from '../metrics/quality.js';
import { conformCommand } from './conform.js';
import { loadVideoTokenizer, parseCommandArgs, type VideoModel } from './tokenizer-common.js';

// ------------------------------------------------------------------ the vendored samples

export const WEIGHTS_DIR = fileURLToPath(new URL('../../weights', import.meta.url));
export const SAMPLES_DIR = join(WEIGHTS_DIR, 'samples');
export type TinyModel = 'cv' | 'dv';
export const TINY_MODELS: readonly TinyModel[] = ['cv', 'dv'];
export const tinyModelDir = (m: TinyModel): string => join(WEIGHTS_DIR, `cosmos-tokenizer-tiny-${m}4x8x8`);

/** PyTorch's metrics for one model on one sample (expected.json). */
export interface ExpectedMetrics {
  psnr: number;
  ssim: number;
  unique_tokens?: number;
}

export interface ExpectedSample {
  name: string;
  tensors: string;
  shape: number[];
  cv: ExpectedMetrics;
  dv: ExpectedMetrics;
}

export interface ExpectedJson {
  samples: ExpectedSample[];
}

export function readExpected(dir = SAMPLES_DIR): ExpectedJson {
  return JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as ExpectedJson;
}

/** A sample's tensors (sample_<i>.safetensors): the input and PyTorch's outputs. */
export interface SampleTensors {
  name: string;
  /** [1, 3, 17, 64, 64] in [-1, 1] */
  shape: number[];
  input: Float32Array;
  latent_cv: Float32Array;
  rec_cv: Float32Array;
  rec_dv: Float32Array;
  indices_dv: Int32Array;
  codes_dv: Float32Array;
}

export async function readSample(spec: ExpectedSample, dir = SAMPLES_DIR): Promise<SampleTensors> {
  const f = await openSafetensors(join(dir, spec.tensors));
  try {
    const get = async (name: string) => (await f.read(name)).raw;
    const input = await f.read('input');
    return {
      name: spec.name,
      shape: input.shape,
      input: input.raw as Float32Array,
      latent_cv: (await get('latent_cv')) as Float32Array,
      rec_cv: (await get('rec_cv')) as Float32Array,
      rec_dv: (await get('rec_dv')) as Float32Array,
      indices_dv: (await get('indices_dv')) as Int32Array,
      codes_dv: (await get('codes_dv')) as Float32Array,
    };
  } finally {
    await f.close();
  }
}

/** What one round trip produced (host arrays) and how long it took. */
export interface RoundTrip {
  /** decode(encode(input)), raw (unclamped), [1, 3, T, H, W] */
  rec: Float32Array;
  /** CV: the latent [1, 16, t, h, w] */
  latent?: Float32Array;
  /** DV: token ids [1, t, h, w] and FSQ codes [1, 6, t, h, w] */
  indices?: Int32Array;
  codes?: Float32Array;
  encodeSeconds: number;
  decodeSeconds: number;
}

/**
 * Round-trip a clip the way expected.json's PyTorch numbers were made: CV decode(encode(x)),
 * DV decode_code(encode(x).indices), whole clip at once (no streaming).
 */
export async function roundTrip(model: VideoModel, input: Float32Array, shape: readonly number[]): Promise<RoundTrip> {
  const backend: Backend = model.quant_conv.weight.backend;
  const x = F.fromArray(backend, input, shape);
  try {
    const t0 = performance.now();
    if (model.kind === 'CV') {
      const z = model.encode(x);
      try {
        const latent = (await z.read()) as Float32Array;
        const t1 = performance.now();
        const r = model.decode(z);
        const rec = (await r.read()) as Float32Array;
        r.dispose();
        return { rec, latent, encodeSeconds: (t1 - t0) / 1000, decodeSeconds: (performance.now() - t1) / 1000 };
      } finally {
        z.dispose();
      }
    }
    const { indices, codes } = model.encode(x);
    try {
      const ids = (await indices.read()) as Int32Array;
      const c = (await codes.read()) as Float32Array;
      const t1 = performance.now();
      const r = model.decodeIndices(indices);
      const rec = (await r.read()) as Float32Array;
      r.dispose();
      return { rec, indices: ids, codes: c, encodeSeconds: (t1 - t0) / 1000, decodeSeconds: (performance.now() - t1) / 1000 };
    } finally {
      indices.dispose();
      codes.dispose();
    }
  } finally {
    x.dispose();
  }
}

/** PSNR / SSIM (src/metrics, as expected.json defines them) of a reconstruction of a sample. */
export function sampleMetrics(rec: Float32Array, sample: SampleTensors): { psnr: number; ssim: number } {
  return { psnr: psnr(rec, sample.input), ssim: ssim(rec, sample.input, sample.shape) };
}

/** The agreement targets with PyTorch. */
export const PSNR_TOL_DB = 0.01;
export const SSIM_TOL = 1e-4;

/** Digits after the point of a number as JSON printed it (shortest round-trip form). */
function decimalsOf(x: number): number {
  const s = String(x);
  if (/e/i.test(s)) throw new RangeError(`expected.json value ${s} is not in fixed notation`);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/**
 * Half a unit in the last place expected.json's metrics were rounded to. Python's round()
 * drops trailing zeros (16.15 is 16.1500), so the precision of a metric is the most digits any
 * of its printed values has (4 for PSNR, 5 for SSIM in the vendored file).
 */
export function expectedRounding(exp: ExpectedJson): { psnr: number; ssim: number } {
  const all = exp.samples.flatMap((s) => [s.cv, s.dv]);
  const half = (d: number) => 0.5 * 10 ** -d;
  return {
    psnr: half(Math.max(...all.map((m) => decimalsOf(m.psnr)))),
    ssim: half(Math.max(...all.map((m) => decimalsOf(m.ssim)))),
  };
}

export function distinctCount(ids: Int32Array): number {
  return new Set(ids).size;
}

// ------------------------------------------------------------------ the command

const HELP = `usage: cosmos-ts demo [--backend cpu|webgpu|all] [--out <dir>] [--no-conform]

The main job (npm start):
  1. the conformance suite over every vendored fixture case, on every available backend;
  2. the three sample clips (weights/samples) round-tripped through the two tiny trained
     tokenizers (weights/cosmos-tokenizer-tiny-cv4x8x8, -dv4x8x8) on every available backend:
     PSNR / SSIM beside PyTorch's (expected.json), and DV token ids against PyTorch's;
  3. the reconstructions as <out>/samples/<sample>_<model>_<backend>.y4m and one contact
     sheet per sample (<out>/samples/<sample>_sheet.png: input, CV, DV rows, every 4th frame).
Exit status 1 if a conformance case fails or is not implemented, or a sample misses its
target (PSNR within ${PSNR_TOL_DB} dB and SSIM within ${SSIM_TOL} of PyTorch's plus half a unit in the
last printed digit; DV: every token id equal).
  --backend     cpu, webgpu or all (default: all, i.e. cpu and webgpu when an adapter is found)
  --out         output folder (default out)
  --no-conform  skip step 1`;

const SHEET_FRAME_STEP = 4;
const SHEET_SCALE = 2;
/** expected.json: the sample clips are 8 fps. */
const SAMPLE_FPS = { num: 8, den: 1 };

interface Row {
  sample: string;
  model: TinyModel;
  backend: string;
  psnr: number;
  ssim: number;
  wantPsnr: number;
  wantSsim: number;
  idsMatch?: number;
  idsTotal?: number;
  maxRecDiff: number;
  seconds: number;
  pass: boolean;
}

function signed(x: number, digits: number): string {
  return (x >= 0 ? '+' : '') + x.toExponential(digits);
}

const COLS = [
  ['sample', 9], ['model', 5], ['backend', 7], ['PSNR dB', 8], ['PyTorch', 8], ['diff', 9], ['SSIM', 8], ['PyTorch', 8], ['diff', 9],
  ['DV ids', 8], ['max|rec-pt|', 11], ['time', 6], ['', 4],
] as const;

function tableLine(cells: string[]): string {
  return cells.map((c, i) => (i < 3 ? c.padEnd(COLS[i][1]) : c.padStart(COLS[i][1]))).join('  ').trimEnd();
}

function rowLine(r: Row): string {
  return tableLine([
    r.sample, r.model.toUpperCase(), r.backend,
    r.psnr.toFixed(4), r.wantPsnr.toFixed(4), signed(r.psnr - r.wantPsnr, 1),
    r.ssim.toFixed(5), r.wantSsim.toFixed(5), signed(r.ssim - r.wantSsim, 1),
    r.idsTotal === undefined ? '-' : `${r.idsMatch}/${r.idsTotal}`,
    r.maxRecDiff.toExponential(1), `${r.seconds.toFixed(1)}s`, r.pass ? 'ok' : 'MISS',
  ]);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

function clampedVideo(rec: Float32Array, shape: readonly number[]): Video {
  const [, , frames, height, width] = shape;
  const data = new Float32Array(rec.length);
  for (let i = 0; i < rec.length; i++) data[i] = rec[i] < -1 ? -1 : rec[i] > 1 ? 1 : rec[i];
  return { data, frames, height, width, fps: SAMPLE_FPS };
}

/** Nearest-neighbour upscaling by an integer factor (the 64x64 clips are small on a sheet). */
function upscale(v: Video, k: number): Video {
  const H = v.height * k;
  const W = v.width * k;
  const data = new Float32Array(3 * v.frames * H * W);
  for (let p = 0; p < 3 * v.frames; p++) {
    for (let y = 0; y < H; y++) {
      const src = (p * v.height + Math.floor(y / k)) * v.width;
      const dst = (p * H + y) * W;
      for (let x = 0; x < W; x++) data[dst + x] = v.data[src + Math.floor(x / k)];
    }
  }
  return { data, frames: v.frames, height: H, width: W, fps: v.fps };
}

/** The backends to run: cpu always, webgpu when an adapter can be had (or a note why not). */
async function availableBackends(choice: string): Promise<Backend[]> {
  const out: Backend[] = [];
  if (choice === 'cpu' || choice === 'all') out.push((await import('../engine/cpu/backend.js')).cpu);
  if (choice === 'webgpu' || choice === 'all') {
    try {
      out.push(await (await import('../engine/webgpu/backend.js')).webgpu());
    } catch (e) {
      if (choice === 'webgpu') throw e;
      console.log(`note: no WebGPU adapter (${((e as Error).message ?? String(e)).split('\n')[0]}); cpu backend only`);
    }
  }
  return out;
}

export async function demoCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const v = parseCommandArgs(args, { backend: { type: 'string' }, out: { type: 'string' }, 'no-conform': { type: 'boolean' } }, HELP);
  if (!v) return 2;
  const choice = v.backend ?? 'all';
  if (!['cpu', 'webgpu', 'all'].includes(choice)) {
    console.error(`error: --backend must be cpu, webgpu or all, got ${JSON.stringify(choice)}`);
    return 2;
  }
  const outDir = v.out ?? 'out';
  const tStart = performance.now();
  const backends = await availableBackends(choice);
  const names = backends.map((b) => b.name);

  // (a) conformance
  let conformStatus = 0;
  let conformSeconds = 0;
  if (!v['no-conform']) {
    console.log(`== 1. conformance: every vendored fixture case on ${names.join(' and ')}\n`);
    const t0 = performance.now();
    conformStatus = await conformCommand(['--all', '--backend', names.length > 1 ? 'all' : names[0]]);
    conformSeconds = (performance.now() - t0) / 1000;
    console.log(`(conformance ${conformSeconds.toFixed(1)} s)\n`);
  }

  // (b) the sample clips through the tiny trained tokenizers
  const expected = readExpected();
  const round = expectedRounding(expected);
  const samples = await Promise.all(expected.samples.map((s) => readSample(s)));
  console.log(`== 2. sample clips (weights/samples, ${samples.length} x ${samples[0].shape.slice(2).join('x')}) through the tiny trained tokenizers`);
  console.log('   PyTorch = expected.json (the upstream model, same weights, rounded); target: |diff| <= ' +
    `${PSNR_TOL_DB} dB + ${round.psnr.toExponential(0)} (PSNR), ${SSIM_TOL.toExponential(0)} + ${round.ssim.toExponential(0)} (SSIM), ` +
    'the second term being half a unit in expected.json\'s last digit; DV: every token id equal');
  console.log('   max|rec-pt| = largest difference from PyTorch\'s raw reconstruction (rec_cv / rec_dv)\n');
  for (const be of backends) console.log(`   ${be.name}: ${be.adapter}`);
  console.log('');
  console.log(tableLine(COLS.map((c) => c[0])));
  const rows: Row[] = [];
  const recs = new Map<string, Float32Array>(); // `${sample}/${model}/${backend}`
  const t1 = performance.now();
  for (const be of backends) {
    for (const m of TINY_MODELS) {
      const model = await loadVideoTokenizer(tinyModelDir(m), be);
      try {
        for (let i = 0; i < samples.length; i++) {
          const s = samples[i];
          const want = expected.samples[i][m];
          const rt = await roundTrip(model, s.input, s.shape);
          const q = sampleMetrics(rt.rec, s);
          const row: Row = {
            sample: s.name, model: m, backend: be.name, psnr: q.psnr, ssim: q.ssim, wantPsnr: want.psnr, wantSsim: want.ssim,
            maxRecDiff: maxAbsDiff(rt.rec, m === 'cv' ? s.rec_cv : s.rec_dv), seconds: rt.encodeSeconds + rt.decodeSeconds, pass: false,
          };
          if (m === 'dv') {
            const ids = rt.indices!;
            let same = 0;
            for (let k = 0; k < ids.length; k++) if (ids[k] === s.indices_dv[k]) same++;
            row.idsMatch = same;
            row.idsTotal = s.indices_dv.length;
          }
          row.pass = Math.abs(row.psnr - row.wantPsnr) <= PSNR_TOL_DB + round.psnr && Math.abs(row.ssim - row.wantSsim) <= SSIM_TOL + round.ssim &&
            (row.idsTotal === undefined || (rt.indices!.length === row.idsTotal && row.idsMatch === row.idsTotal));
          rows.push(row);
          recs.set(`${s.name}/${m}/${be.name}`, rt.rec);
          console.log(rowLine(row));
        }
      } finally {
        model.dispose();
      }
    }
  }
  const samplesSeconds = (performance.now() - t1) / 1000;
  const missed = rows.filter((r) => !r.pass).length;
  console.log(`\nsample summary: ${rows.length - missed} of ${rows.length} round trips within target (${samplesSeconds.toFixed(1)} s)\n`);

  // (c) reconstructions and contact sheets
  const dir = join(outDir, 'samples');
  mkdirSync(dir, { recursive: true });
  const shown = (p: string) => {
    const r = relative(process.cwd(), resolve(p));
    return r.startsWith('..') ? resolve(p) : r;
  };
  console.log(`== 3. files (${dir})`);
  for (const s of samples) {
    const written: string[] = [];
    for (const be of backends) {
      for (const m of TINY_MODELS) {
        const path = join(dir, `${s.name}_${m}_${be.name}.y4m`);
        await writeY4m(path, clampedVideo(recs.get(`${s.name}/${m}/${be.name}`)!, s.shape), { fps: SAMPLE_FPS });
        written.push(path);
      }
    }
    // the sheet shows the last backend's reconstructions (webgpu when there is one)
    const be = backends[backends.length - 1].name;
    const sheet = contactSheet(
      [clampedVideo(s.input, s.shape), ...TINY_MODELS.map((m) => clampedVideo(recs.get(`${s.name}/${m}/${be}`)!, s.shape))].map((c) => upscale(c, SHEET_SCALE)),
      SHEET_FRAME_STEP,
      ['input', ...TINY_MODELS.map((m) => m)],
    );
    const sheetPath = join(dir, `${s.name}_sheet.png`);
    await writeFile(sheetPath, encodePng(sheet));
    console.log(`${s.name}: ${written.map(shown).join(' ')}`);
    console.log(`${''.padEnd(s.name.length)}  ${shown(sheetPath)} (input / cv / dv on ${be}, frames 0, ${SHEET_FRAME_STEP}, ${2 * SHEET_FRAME_STEP}, ..., ${SHEET_SCALE}x)`);
  }

  const total = (performance.now() - tStart) / 1000;
  console.log(
    `\ndemo: conformance ${v['no-conform'] ? 'skipped' : conformStatus === 0 ? 'all pass' : 'NOT all pass'}` +
      `${v['no-conform'] ? '' : ` (${conformSeconds.toFixed(0)} s)`}; ` +
      `samples ${missed ? `${missed} MISS` : 'all within target'} (${samplesSeconds.toFixed(0)} s); total ${total.toFixed(0)} s`,
  );
  return conformStatus !== 0 || missed ? 1 : 0;
}
