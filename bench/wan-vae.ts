// Wan2.1 VAE benchmark: encode and decode frames/s of the real architecture (AutoencoderKLWan
// defaults: base_dim 96, z_dim 16, 126.9M parameters) with random weights, on every backend
// benchBackends gives. One row per (backend, direction) with its FLOP count; the rate is over
// the convolutions and attention matmuls (norms, activations and copies are not counted).
// Writes bench/results/wan-vae-latest.json.
//
//   npm run bench:wan                      17 frames of 480x640 (slow on a software adapter)
//   npm run bench:wan -- --quick           5 frames of 16x16 (a smoke run), one timed call per row
//   npm run bench:wan -- --backend webgpu  only the WebGPU rows
//   npm run bench:wan -- --frames 9 --height 256 --width 256   another shape
import type { Backend } from '../src/engine/backend.js';
import * as F from '../src/engine/ops.js';
import { type Tensor, numel } from '../src/engine/tensor.js';
import { type AutoencoderKLWan, AutoencoderKLWanFamily } from '../src/models/wan/autoencoder.js';
import { type WanVaeConfig, decoderWidths, encoderWidths } from '../src/models/wan/config.js';
import { type BenchRow, benchArgs, benchBackends, randomValues, runBench, timeBest, writeResult } from './harness.js';

const args = benchArgs('wan-vae-latest.json', { frames: { type: 'string' }, height: { type: 'string' }, width: { type: 'string' } });
const { quick } = args;
const num = (v: unknown, d: number) => (typeof v === 'string' ? Number.parseInt(v, 10) : d);
const T = num(args.extra.frames, quick ? 5 : 17);
const H = num(args.extra.height, quick ? 16 : 480);
const W = num(args.extra.width, quick ? 16 : 640);
const REPS = quick ? 1 : 2;


const FORMULA =
  '2*Cin*Cout*k*outputs summed over every conv (3x3x3 causal, 1x1x1, the 3x3 resample convs, the (3,1,1) time convs) + per mid-block frame 2*3C^2*L + 4*L^2*C + 2*C^2*L (qkv, QK^T and PV, proj; L = h*w)';

interface Row extends BenchRow {
  direction: 'encode' | 'decode';
  frames: number;
  frames_per_s: number | null;
  flops: number;
  /** the most device memory live during the call (weights included), bytes */
  peak_bytes: number;
  error?: string;
}

// ------------------------------------------------------------------ FLOP counts (Wan2.1 layout)

const conv = (cin: number, cout: number, k: number, outputs: number) => 2 * cin * cout * k * outputs;
const resnet = (cin: number, cout: number, n: number) => conv(cin, cout, 27, n) + conv(cout, cout, 27, n) + (cin !== cout ? conv(cin, cout, 1, n) : 0);
const attention = (C: number, frames: number, L: number) => frames * (2 * C * 3 * C * L + 4 * L * L * C + 2 * C * C * L);
const mid = (C: number, t: number, L: number) => 2 * resnet(C, C, t * L) + attention(C, t, L);

/** Encoder + quant_conv on a clip of t frames of h x w. */
function encodeFlops(c: WanVaeConfig, frames: number, height: number, width: number): number {
  const e = encoderWidths(c);
  const levels = c.dimMult.length;
  let [t, h, w] = [frames, height, width];
  let f = conv(c.inChannels, e[0], 27, t * h * w);
  for (let i = 0; i < levels; i++) {
    for (let r = 0; r < c.numResBlocks; r++) f += resnet(r ? e[i + 1] : e[i], e[i + 1], t * h * w);
    if (i === levels - 1) break;
    h /= 2;
    w /= 2;
    f += conv(e[i + 1], e[i + 1], 9, t * h * w);
    if (c.temperalDownsample[i]) {
      const t2 = 1 + (t - 1) / 2;
      f += conv(e[i + 1], e[i + 1], 3, (t2 - 1) * h * w);
      t = t2;
    }
  }
  const C = e[levels];
  return f + mid(C, t, h * w) + conv(C, 2 * c.zDim, 27, t * h * w) + conv(2 * c.zDim, 2 * c.zDim, 1, t * h * w);
}

/** post_quant_conv + decoder on a latent of t frames of h x w. */
function decodeFlops(c: WanVaeConfig, frames: number, height: number, width: number): number {
  const d = decoderWidths(c);
  const levels = c.dimMult.length;
  const up = [...c.temperalDownsample].reverse();
  let [t, h, w] = [frames, height, width];
  let f = conv(c.zDim, c.zDim, 1, t * h * w) + conv(c.zDim, d[0], 27, t * h * w) + mid(d[0], t, h * w);
  for (let i = 0; i < levels; i++) {
    const cin = i > 0 ? d[i] / 2 : d[i];
    for (let r = 0; r <= c.numResBlocks; r++) f += resnet(r ? d[i + 1] : cin, d[i + 1], t * h * w);
    if (i === levels - 1) break;
    if (up[i]) {
      f += conv(d[i + 1], 2 * d[i + 1], 3, (t - 1) * h * w);
      t = 2 * t - 1;
    }
    h *= 2;
    w *= 2;
    f += conv(d[i + 1], d[i + 1] / 2, 9, t * h * w);
  }
  return f + conv(d[levels], c.outChannels, 27, t * h * w);
}

// ------------------------------------------------------------------ run

/** Random weights: RMS gammas near 1, biases small, conv weights scaled by 1/sqrt(fan-in). */
function randomize(model: AutoencoderKLWan, be: Backend): void {
  let k = 1;
  for (const p of model.parameters()) {
    const n = numel(p.shape);
    const r = randomValues(n, `wan-${k++}`);
    const fanIn = p.shape.length > 1 ? numel(p.shape.slice(1)) : 1;
    for (let i = 0; i < n; i++) r[i] = p.name === 'gamma' ? 1 + 0.1 * r[i] : p.shape.length === 1 ? 0.05 * r[i] : (1.5 * r[i]) / Math.sqrt(fanIn);
    p.set(F.fromArray(be, r, p.shape));
  }
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  const rows: Row[] = [];
  const shape = `${T}x${H}x${W}`;
  console.log(`# Wan2.1 VAE (real config, random weights), clip ${shape}${quick ? ' (--quick)' : ''}, best of ${REPS}`);
  for (const be of backends) {
    console.log(`# ${be.name}: ${be.adapter}; largest binding ${MiB(be.limits.maxBindingBytes)}${be.software ? ' (software)' : ''}`);
    const model = AutoencoderKLWanFamily.build({});
    const c = model.config;
    const [lt, lh, lw] = [model.latentFrames(T), H / model.spatialCompression, W / model.spatialCompression];
    const flops = { encode: encodeFlops(c, T, H, W), decode: decodeFlops(c, lt, lh, lw) };
    let x: Tensor | null = null;
    let z: Tensor | null = null;
    try {
      randomize(model, be);
      x = F.fromArray(be, randomValues(3 * T * H * W, 'wan-clip'), [1, 3, T, H, W]);
      z = F.fromArray(be, randomValues(c.zDim * lt * lh * lw, 'wan-latent'), [1, c.zDim, lt, lh, lw]);
      const bodies = {
        encode: () => {
          const p = model.encode(x!);
          return [p.mean, p.logvar];
        },
        decode: () => model.decode(z!),
      };
      for (const direction of ['encode', 'decode'] as const) {
        const base = { name: `wan2.1-vae ${direction}`, backend: be.name, adapter: be.adapter, shape, formula: FORMULA, direction, frames: T, flops: flops[direction] };
        try {
          be.resetPeakMemory();
          // the CPU oracle compiles nothing, so it gets no warm-up call
          const s = await timeBest(be, bodies[direction], REPS, { warmup: be.name !== 'cpu' });
          const row: Row = { ...base, seconds: s, frames_per_s: T / s, gflops: flops[direction] / s / 1e9, peak_bytes: be.memory().peakBytes };
          rows.push(row);
          console.log(`${be.name.padEnd(7)} ${direction.padEnd(7)} ${shape}  ${s.toFixed(2)} s  ${(T / s).toFixed(3)} frames/s  ${row.gflops!.toFixed(1)} GFLOP/s (${(flops[direction] / 1e9).toFixed(1)} GFLOP)  peak ${MiB(row.peak_bytes)}`);
        } catch (e) {
          const error = ((e as Error).message ?? String(e)).split('\n')[0].slice(0, 240);
          rows.push({ ...base, seconds: null, frames_per_s: null, peak_bytes: be.memory().peakBytes, error });
          console.log(`${be.name.padEnd(7)} ${direction.padEnd(7)} ${shape}  error: ${error}`);
        }
      }
    } finally {
      x?.dispose();
      z?.dispose();
      model.dispose();
    }
  }
  writeResult(args.out, {
    bench: 'wan-vae',
    date: new Date().toISOString(),
    quick,
    clip: { frames: T, height: H, width: W },
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    limits: Object.fromEntries(backends.map((b) => [b.name, b.limits])),
    rows,
  });
}

runBench(main);
