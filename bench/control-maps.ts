// Control-map benchmark (spec/control_maps.md): frames/s, on every backend benchBackends gives, of
// what Transfer computes from a raw clip at its 720p 16:9 resolution:
//   - the edge map (Canny per RGB frame, the 3-channel 0 / 255 map), medium preset by default;
//   - the blur map, Transfer2.5 medium (INTER_AREA down 2, bilateral d 30, INTER_LINEAR back,
//     antialiased bicubic down 10 and back): the whole `blurMap`, its stages on the engine
//     (engineStages) on WebGPU and on the host oracle (hostStages) on the CPU backend;
//   - the INTER_AREA resize of a 1920x1080 clip to the model's 1280x704 (F.resizeU8).
// The content is blocky with noise, so edges, weak texture and hysteresis chains all occur.
// Writes bench/results/control-maps-latest.json.
//
//   node --import tsx bench/control-maps.ts                  4 frames of 1280x704 (resize from 1920x1080)
//   node --import tsx bench/control-maps.ts --quick          2 frames of 64x96 (from 98x144; a smoke run)
//   node --import tsx bench/control-maps.ts --frames 8 --height 704 --width 960 --edge-preset low
import type { Backend } from '../src/engine/backend.js';
import * as F from '../src/engine/ops.js';
import type { Tensor } from '../src/engine/tensor.js';
import { blurMap, blurPreset, engineStages, hostStages } from '../src/models/controlnet/blur-map.js';
import { edgeMap, edgeThresholds } from '../src/models/controlnet/edge-map.js';
import { resizeFrames } from '../src/models/controlnet/resize-frames.js';
import { type BenchRow, benchArgs, benchBackends, randomInts, runBench, timeBestAsync, writeResult } from './harness.js';

const args = benchArgs('control-maps-latest.json', {
  frames: { type: 'string' }, height: { type: 'string' }, width: { type: 'string' }, 'edge-preset': { type: 'string' },
});
const { quick } = args;
const num = (v: unknown, d: number) => (typeof v === 'string' ? Number.parseInt(v, 10) : d);
const T = num(args.extra.frames, quick ? 2 : 4);
const H = num(args.extra.height, quick ? 64 : 704);
const W = num(args.extra.width, quick ? 96 : 1280);
// the resize source: a 1920x1080 clip for a 1280x704 map, in proportion otherwise
const SH = Math.round((H * 1080) / 704);
const SW = Math.round((W * 1920) / 1280);
const EDGE_PRESET = typeof args.extra['edge-preset'] === 'string' ? args.extra['edge-preset'] : 'medium';
const REPS = quick ? 1 : 2;

const FORMULA = {
  edge: 'bytes = 4*(3*T*H*W) read + 4*(3*T*H*W) written (i32 pixels in, i32 map out)',
  blur: 'bytes = 3*T*H*W read + 3*T*H*W written (uint8 clip in, uint8 map out; the stages in between not counted)',
  resize: 'bytes = 4*(3*T*SH*SW) read + 4*(3*T*H*W) written (f32 planes of uint8 values, SH x SW -> H x W)',
};

interface Row extends BenchRow {
  frames: number;
  frames_per_s: number | null;
  stages?: string;
  edge_fraction?: number;
  error?: string;
}

/** 32-pixel blocks of random levels, shifted per channel, plus noise of +-6 levels: [3, T, h, w]. */
function clip(h: number, w: number): Int32Array {
  const n = 3 * T * h * w;
  const noise = randomInts(n, 'edge-noise', -6, 7);
  const levels = randomInts(4096, 'edge-levels', 0, 256);
  const v = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = i % w;
    const y = Math.floor(i / w) % h;
    const c = Math.floor(i / (T * h * w));
    v[i] = Math.min(255, Math.max(0, levels[((y >> 5) * 40 + (x >> 5) + c * 7) % 4096] + noise[i]));
  }
  return v;
}

/** What a row says before it is timed. */
interface RowBase {
  name: string;
  backend: string;
  adapter: string;
  shape: string;
  formula: string;
  frames: number;
  stages?: string;
}

/** Time one row; a failure becomes a row with its error. */
async function row(rows: Row[], base: RowBase, bytes: number, body: () => Promise<Partial<Row> | undefined>): Promise<void> {
  const label = `${base.backend.padEnd(7)} ${base.name.padEnd(10)} ${base.shape.padEnd(18)}`;
  try {
    let extra: Partial<Row> | undefined;
    const s = await timeBestAsync(async () => { extra = await body(); }, REPS);
    rows.push({ ...base, ...extra, seconds: s, frames_per_s: T / s, gbps: bytes / s / 1e9 });
    console.log(`${label} ${s.toFixed(3)} s  ${(T / s).toFixed(2)} frames/s  ${(bytes / s / 1e9).toPrecision(3)} GB/s  (${base.adapter})`);
  } catch (e) {
    const error = ((e as Error).message ?? String(e)).split('\n')[0].slice(0, 240);
    rows.push({ ...base, seconds: null, frames_per_s: null, error });
    console.log(`${label} error: ${error}`);
  }
}

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  const [lo, hi] = edgeThresholds(EDGE_PRESET, '--edge-preset');
  const blur = blurPreset('transfer2.5', 'medium');
  const shape = `3x${T}x${H}x${W}`;
  const values = clip(H, W);
  const bytesU8 = Uint8Array.from(values);
  const source = clip(SH, SW);
  const rows: Row[] = [];
  console.log(`# control maps, clip ${shape}, resize from ${SW}x${SH}${quick ? ' (--quick)' : ''}, best of ${REPS}`);
  for (const be of backends as Backend[]) {
    const common = { backend: be.name, adapter: be.adapter, frames: T };

    let x: Tensor | null = F.fromArray(be, values, [3, T, H, W], 'i32');
    const video = x;
    await row(rows, { ...common, name: 'edge map', shape, formula: FORMULA.edge }, 4 * 6 * T * H * W, async () => {
      const m = await edgeMap(video, lo, hi);
      const r = await m.read();
      m.dispose();
      let edges = 0;
      for (let i = 0; i < T * H * W; i++) if (r[i] !== 0) edges++;
      return { edge_fraction: edges / (T * H * W) };
    });
    x.dispose();

    const stages = be.name === 'cpu' ? 'hostStages' : 'engineStages';
    await row(rows, { ...common, name: 'blur map', shape, formula: FORMULA.blur, stages }, 2 * 3 * T * H * W, async () => {
      await blurMap(bytesU8, [3, T, H, W], blur, undefined, be.name === 'cpu' ? hostStages : engineStages(be));
      return undefined;
    });

    x = F.fromArray(be, source, [3, T, SH, SW]);
    const big = x;
    await row(rows, { ...common, name: 'area resize', shape: `3x${T}x${SH}x${SW}->${H}x${W}`, formula: FORMULA.resize }, 4 * 3 * T * (SH * SW + H * W), async () => {
      const y = resizeFrames(big, W, H, 'area');
      await be.sync();
      y.dispose();
      return undefined;
    });
    x.dispose();
  }
  writeResult(args.out, {
    bench: 'control-maps', date: new Date().toISOString(), quick, edge_preset: EDGE_PRESET, blur: 'transfer2.5 medium',
    clip: { frames: T, height: H, width: W }, resize_from: { height: SH, width: SW }, rows,
  });
}

runBench(main);
