// `cosmos-ts demo` (= `npm start`), the main job:
//   (a) the conformance suite over the vendored fixtures on every available backend (the table
//       `conform --all` prints);
//   (b) the three sample clips of weights/samples round-tripped through the two tiny trained
//       tokenizers (weights/cosmos-tokenizer-tiny-{cv,dv}4x8x8) on every available backend,
//       PSNR / SSIM beside PyTorch's (weights/samples/expected.json) and DV token-id agreement
//       (src/conform/samples.ts judges them);
//   (c) the reconstructions as Y4M (out/samples/<sample>_<model>_<backend>.y4m) and one contact
//       sheet per sample (input, CV and DV rows, every 4th frame) as PNG.
// Exit status 1 if any conformance case fails (or is not implemented) or any sample misses its
// target.
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../engine/backend.js';
import { cpuBackend, webgpuBackend, webgpuOptionsFromEnv } from '../engine/select.js';
import { fileSystem } from '../io/files.js';
import { join } from '../io/path.js';
import { contactSheet } from '../io/contact-sheet.js';
import { writePng } from '../io/png.js';
import type { Video } from '../io/video.js';
import { writeY4m } from '../io/y4m.js';
import { loadVideoTokenizer, roundtrip } from '../pipelines/tokenizer.js';
import {
  PSNR_TOL_DB, SSIM_TOL, type SampleCheck, type TinyModel, TINY_MODELS, checkSample, expectedRounding, readExpected, readSample, samplesDir,
  tinyModelDir,
} from '../conform/samples.js';
import { type CommandContext, defineCommand } from './command.js';
import { printConformance, VENDORED_FIXTURES } from './conform.js';

const WEIGHTS_DIR = fileURLToPath(new URL('../../weights', import.meta.url));
const SHEET_FRAME_STEP = 4;
const SHEET_SCALE = 2;
/** expected.json: the sample clips are 8 fps. */
const SAMPLE_FPS = { num: 8, den: 1 };

interface Row extends SampleCheck {
  sample: string;
  model: TinyModel;
  backend: string;
  seconds: number;
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

/** A [1, 3, T, H, W] array as a clip, clamped to [-1, 1] (copied). */
function clampedVideo(rec: Float32Array, shape: readonly number[]): Video {
  const [, , frames, height, width] = shape;
  const data = new Float32Array(rec.length);
  for (let i = 0; i < rec.length; i++) data[i] = Math.min(Math.max(rec[i], -1), 1);
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

/**
 * The backends to run: cpu always, webgpu when an adapter can be had. A WebGPU half that could
 * not run is said at once (`webgpu: skipped (<why>)`) and again in the summary, with its reason.
 */
async function availableBackends(choice: string, ctx: CommandContext): Promise<{ backends: Backend[]; skipped: string | null }> {
  const backends: Backend[] = [];
  let skipped: string | null = null;
  if (choice === 'cpu' || choice === 'all') backends.push(await cpuBackend());
  if (choice === 'webgpu' || choice === 'all') {
    try {
      backends.push(await webgpuBackend(webgpuOptionsFromEnv(process.env)));
    } catch (e) {
      if (choice === 'webgpu') throw e;
      const why = ((e as Error).message ?? String(e)).split('\n')[0];
      skipped = why.length > 200 ? `${why.slice(0, 197)}...` : why;
      ctx.out(`webgpu: skipped (${skipped}); running on cpu only`);
    }
  }
  return { backends, skipped };
}

/** Where the demo ran, for its summary: every backend that ran, and the one skipped. */
export function ranOn(names: readonly string[], skipped: string | null): string {
  return skipped === null ? `on ${names.join(' and ')}` : `on ${names.join(' and ')} only; webgpu SKIPPED (${skipped})`;
}

export const command = defineCommand({
  name: 'demo',
  summary: 'the main job (npm start): conformance, the sample clips through the tiny tokenizers, Y4M + PNG',
  description: `The main job (npm start):
  1. the conformance suite over every vendored fixture case, on every available backend;
  2. the three sample clips (weights/samples) round-tripped through the two tiny trained
     tokenizers (weights/cosmos-tokenizer-tiny-cv4x8x8, -dv4x8x8) on every available backend:
     PSNR / SSIM beside PyTorch's (expected.json), and DV token ids against PyTorch's;
  3. the reconstructions as <out>/samples/<sample>_<model>_<backend>.y4m and one contact
     sheet per sample (<out>/samples/<sample>_sheet.png: input, CV, DV rows, every 4th frame).
Exit status 1 if a conformance case fails or is not implemented, or a sample misses its
target (PSNR within ${PSNR_TOL_DB} dB and SSIM within ${SSIM_TOL} of PyTorch's plus half a unit in the
last printed digit; DV: every token id equal).`,
  flags: {
    backend: { type: 'string', choices: ['cpu', 'webgpu', 'all'], default: 'all', help: 'all: cpu, and webgpu when an adapter is found' },
    out: { type: 'string', default: 'out', path: 'output-dir', placeholder: '<dir>', help: 'output folder' },
    'no-conform': { type: 'boolean', help: 'skip step 1' },
    'no-samples': { type: 'boolean', help: 'skip steps 2 and 3' },
  },
  async run(f, _positionals, ctx) {
    const tStart = performance.now();
    const { backends, skipped: webgpuSkipped } = await availableBackends(f.backend, ctx);
    const names = backends.map((b) => b.name);

    // (a) conformance
    let conformFailed = 0;
    let conformSeconds = 0;
    if (!f['no-conform']) {
      ctx.out(`== 1. conformance: every vendored fixture case on ${names.join(' and ')}\n`);
      const t0 = performance.now();
      conformFailed = await printConformance([VENDORED_FIXTURES], backends, ctx, { skipped: webgpuSkipped === null ? undefined : 'webgpu' });
      conformSeconds = (performance.now() - t0) / 1000;
      ctx.out(`(conformance ${conformSeconds.toFixed(1)} s)\n`);
    }

    const tSamples = performance.now();
    const { missed, rows } = f['no-samples'] ? { missed: 0, rows: 0 } : await samplesAndFiles(backends, f.out, ctx);
    const samplesSeconds = (performance.now() - tSamples) / 1000;

    const total = (performance.now() - tStart) / 1000;
    const noConform = f['no-conform'];
    const conformText = noConform ? 'conformance not run' : `conformance ${conformFailed === 0 ? 'all pass' : 'NOT all pass'} (${conformSeconds.toFixed(0)} s)`;
    const samplesText = f['no-samples'] ? 'samples not run' : `samples ${missed ? `${missed} of ${rows} MISS` : 'all within target'} (${samplesSeconds.toFixed(0)} s)`;
    ctx.out(`\ndemo ${ranOn(names, webgpuSkipped)}: ${conformText}; ${samplesText}; total ${total.toFixed(0)} s`);
    return conformFailed !== 0 || missed ? 1 : 0;
  },
});

/** Steps 2 and 3: the sample clips through the tiny trained tokenizers, then their files. */
async function samplesAndFiles(backends: readonly Backend[], outFolder: string, ctx: CommandContext): Promise<{ missed: number; rows: number }> {
  // (b) the sample clips through the tiny trained tokenizers
  const dir = samplesDir(WEIGHTS_DIR);
  const expected = await readExpected(dir);
  const round = expectedRounding(expected);
  const samples = await Promise.all(expected.samples.map((s) => readSample(s, dir)));
  ctx.out(`== 2. sample clips (weights/samples, ${samples.length} x ${samples[0].shape.slice(2).join('x')}) through the tiny trained tokenizers`);
  ctx.out(
    `   PyTorch = expected.json (the upstream model, same weights, rounded); target: |diff| <= ${PSNR_TOL_DB} dB + ${round.psnr.toExponential(0)} (PSNR), ` +
      `${SSIM_TOL.toExponential(0)} + ${round.ssim.toExponential(0)} (SSIM), the second term being half a unit in expected.json's last digit; DV: every token id equal`,
  );
  ctx.out("   max|rec-pt| = largest difference from PyTorch's raw reconstruction (rec_cv / rec_dv)\n");
  for (const be of backends) ctx.out(`   ${be.name}: ${be.adapter}`);
  ctx.out('');
  ctx.out(tableLine(COLS.map((c) => c[0])));
  const rows: Row[] = [];
  const recs = new Map<string, Float32Array>(); // `${sample}/${model}/${backend}`
  const t1 = performance.now();
  for (const be of backends) {
    for (const m of TINY_MODELS) {
      const model = await loadVideoTokenizer(tinyModelDir(WEIGHTS_DIR, m), be);
      try {
        for (let i = 0; i < samples.length; i++) {
          const s = samples[i];
          const [, , frames, height, width] = s.shape;
          const rt = await roundtrip(model, { data: s.input, frames, height, width, fps: SAMPLE_FPS }, { clamp: false, signal: ctx.signal });
          const indices = m === 'dv' ? (await rt.tokens.read()).indices?.data : undefined;
          rt.tokens.dispose();
          const rec = rt.reconstruction.data;
          const row: Row = {
            sample: s.name, model: m, backend: be.name, seconds: rt.seconds.encode + rt.seconds.decode,
            ...checkSample(m, s, expected.samples[i][m], round, { rec, indices }),
          };
          rows.push(row);
          recs.set(`${s.name}/${m}/${be.name}`, rec);
          ctx.out(rowLine(row));
        }
      } finally {
        model.dispose();
      }
    }
  }
  const samplesSeconds = (performance.now() - t1) / 1000;
  const missed = rows.filter((r) => !r.pass).length;
  ctx.out(`\nsample summary: ${rows.length - missed} of ${rows.length} round trips within target (${samplesSeconds.toFixed(1)} s)\n`);

  // (c) reconstructions and contact sheets
  const outDir = join(outFolder, 'samples');
  await fileSystem().mkdir(outDir);
  const shown = (p: string) => {
    const r = relative(process.cwd(), resolve(p));
    return r.startsWith('..') ? resolve(p) : r;
  };
  ctx.out(`== 3. files (${outDir})`);
  for (const s of samples) {
    const written: string[] = [];
    for (const be of backends) {
      for (const m of TINY_MODELS) {
        const path = join(outDir, `${s.name}_${m}_${be.name}.y4m`);
        await writeY4m(path, clampedVideo(recs.get(`${s.name}/${m}/${be.name}`)!, s.shape), { fps: SAMPLE_FPS });
        written.push(path);
      }
    }
    // the sheet shows the last backend's reconstructions (webgpu when there is one)
    const be = backends[backends.length - 1].name;
    const sheet = contactSheet(
      [clampedVideo(s.input, s.shape), ...TINY_MODELS.map((m) => clampedVideo(recs.get(`${s.name}/${m}/${be}`)!, s.shape))].map((c) => upscale(c, SHEET_SCALE)),
      SHEET_FRAME_STEP,
      ['input', ...TINY_MODELS],
    );
    const sheetPath = join(outDir, `${s.name}_sheet.png`);
    await writePng(sheetPath, sheet);
    ctx.out(`${s.name}: ${written.map(shown).join(' ')}`);
    ctx.out(`${''.padEnd(s.name.length)}  ${shown(sheetPath)} (input / cv / dv on ${be}, frames 0, ${SHEET_FRAME_STEP}, ${2 * SHEET_FRAME_STEP}, ..., ${SHEET_SCALE}x)`);
  }

  return { missed, rows: rows.length };
}
