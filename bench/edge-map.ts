// Edge control map benchmark (spec/control_maps.md "Edge"): frames/s of the edge map (Canny per
// RGB frame, the 3-channel 0 / 255 map) at Transfer2.5's 720p 16:9 resolution, on every backend
// benchBackends gives. The content is blocky with noise, so edges, weak texture and hysteresis
// chains all occur (about 6 % of the pixels end as edges at the medium preset).
// Writes bench/results/edge-map-latest.json.
//
//   node --import tsx bench/edge-map.ts                  4 frames of 1280x704, medium preset
//   node --import tsx bench/edge-map.ts --quick          2 frames of 64x96 (a smoke run)
//   node --import tsx bench/edge-map.ts --frames 8 --height 704 --width 960
import type { Backend } from '../src/engine/backend.js';
import * as F from '../src/engine/ops.js';
import type { Tensor } from '../src/engine/tensor.js';
import { edgeMap, edgeThresholds } from '../src/models/controlnet/edge-map.js';
import { type BenchRow, benchArgs, benchBackends, randomInts, runBench, timeBestAsync, writeResult } from './harness.js';

const args = benchArgs('edge-map-latest.json', { frames: { type: 'string' }, height: { type: 'string' }, width: { type: 'string' }, preset: { type: 'string' } });
const { quick } = args;
const num = (v: unknown, d: number) => (typeof v === 'string' ? Number.parseInt(v, 10) : d);
const T = num(args.extra.frames, quick ? 2 : 4);
const H = num(args.extra.height, quick ? 64 : 704);
const W = num(args.extra.width, quick ? 96 : 1280);
const PRESET = typeof args.extra.preset === 'string' ? args.extra.preset : 'medium';
const REPS = quick ? 1 : 2;
const FORMULA = 'bytes = 4*(3*T*H*W) read + 4*(3*T*H*W) written (i32 pixels in, i32 map out)';

interface Row extends BenchRow {
  frames: number;
  frames_per_s: number | null;
  edge_fraction?: number;
  error?: string;
}

/** 32-pixel blocks of random levels, shifted per channel, plus noise of +-6 levels. */
function clip(): Int32Array {
  const n = 3 * T * H * W;
  const noise = randomInts(n, 'edge-noise', -6, 7);
  const levels = randomInts(4096, 'edge-levels', 0, 256);
  const v = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const x = i % W;
    const y = Math.floor(i / W) % H;
    const c = Math.floor(i / (T * H * W));
    v[i] = levels[((y >> 5) * 40 + (x >> 5) + c * 7) % 4096] + noise[i];
  }
  return v;
}

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  const [lo, hi] = edgeThresholds(PRESET, '--preset');
  const shape = `3x${T}x${H}x${W}`;
  const values = clip();
  const rows: Row[] = [];
  console.log(`# edge map (${PRESET}: ${lo}, ${hi}), clip ${shape}${quick ? ' (--quick)' : ''}, best of ${REPS}`);
  for (const be of backends as Backend[]) {
    const base = { name: 'edge map', backend: be.name, adapter: be.adapter, shape, formula: FORMULA, frames: T };
    let x: Tensor | null = null;
    try {
      x = F.fromArray(be, values, [3, T, H, W], 'i32');
      const video = x;
      let edges = 0;
      const s = await timeBestAsync(async () => {
        const m = await edgeMap(video, lo, hi);
        const r = await m.read();
        edges = 0;
        for (let i = 0; i < T * H * W; i++) if (r[i] !== 0) edges++;
        m.dispose();
      }, REPS);
      const row: Row = { ...base, seconds: s, frames_per_s: T / s, gbps: (4 * 6 * T * H * W) / s / 1e9, edge_fraction: edges / (T * H * W) };
      rows.push(row);
      console.log(`${be.name.padEnd(7)} ${shape}  ${s.toFixed(3)} s  ${(T / s).toFixed(2)} frames/s  edges ${(row.edge_fraction! * 100).toFixed(1)} %  (${be.adapter})`);
    } catch (e) {
      const error = ((e as Error).message ?? String(e)).split('\n')[0].slice(0, 240);
      rows.push({ ...base, seconds: null, frames_per_s: null, error });
      console.log(`${be.name.padEnd(7)} ${shape}  error: ${error}`);
    } finally {
      x?.dispose();
    }
  }
  writeResult(args.out, { bench: 'edge-map', date: new Date().toISOString(), quick, preset: PRESET, clip: { frames: T, height: H, width: W }, rows });
}

runBench(main);
