// Depth-control benchmark (spec/depth.md): frames/s of Transfer2.5's depth control from a raw clip
// (depthControl: preprocessing, the Video-Depth-Anything windows, alignment, the whole-clip
// normalisation and the uint8 resize to the model resolution) on every backend benchBackends gives,
// with random weights of the released encoder's shapes (vits by default). The default clip is 22
// frames of 1280x704 (one 32-frame network window at 910x504, the 16:9 720p control size); a
// planned run (shape-only backend) first reports the device peak of the same call.
// Writes bench/results/depth-latest.json.
//
//   node --import tsx bench/depth.ts                          22 frames of 1280x704, vits
//   node --import tsx bench/depth.ts --quick                  22 frames of 112x64 at input size 70 (a smoke run)
//   node --import tsx bench/depth.ts --frames 44 --encoder vitl --backend webgpu
//   node --import tsx bench/depth.ts --plan-only              the planned device peak alone
import type { Backend } from '../src/engine/backend.js';
import { loadWeights } from '../src/engine/module.js';
import { planBackend } from '../src/engine/select.js';
import { DepthFamily, type VideoDepthAnything, depthControl, depthNetSize, effectiveInputSize, parseDepthConfig } from '../src/models/depth/index.js';
import { type BenchRow, benchArgs, benchBackends, randomInts, runBench, timeBestAsync, writeResult } from './harness.js';
import { randomWeights } from './models.js';

const args = benchArgs('depth-latest.json', {
  frames: { type: 'string' }, height: { type: 'string' }, width: { type: 'string' }, encoder: { type: 'string' }, 'input-size': { type: 'string' },
  'plan-only': { type: 'boolean' },
});
const { quick } = args;
const num = (v: unknown, d: number) => (typeof v === 'string' ? Number.parseInt(v, 10) : d);
const T = num(args.extra.frames, 22);
const H = num(args.extra.height, quick ? 64 : 704);
const W = num(args.extra.width, quick ? 112 : 1280);
const INPUT_SIZE = num(args.extra['input-size'], quick ? 70 : 518);
const ENCODER = typeof args.extra.encoder === 'string' ? args.extra.encoder : 'vits';
// the control's size: 16:9 720p (1280x704) for the default clip, the clip's own size otherwise
const [CW, CH] = [W, H];
const REPS = 1;

const config = parseDepthConfig({ encoder: ENCODER });
const [NH, NW] = depthNetSize(H, W, effectiveInputSize(H, W, INPUT_SIZE));
const windows = Math.ceil(T / 22);
const tokens = 1 + Math.floor(NH / 14) * Math.floor(NW / 14);
const { embedDim: E, depth: L } = config.backbone;
const FORMULA = 'flops = windows*32*L*(24*E^2*N + 4*N^2*E): the ViT blocks only (qkv, proj, MLP x4, attention), N = 1 + ph*pw tokens; the DPT head, motion modules, resizes and alignment not counted';
const FLOPS = windows * 32 * L * (24 * E * E * tokens + 4 * tokens * tokens * E);

interface Row extends BenchRow {
  frames: number;
  frames_per_s: number | null;
  peak_bytes?: number;
  error?: string;
}

function clip(): { data: Uint8Array; frames: number; height: number; width: number } {
  const data = Uint8Array.from(randomInts(3 * T * H * W, 'depth-clip', 0, 256));
  return { data, frames: T, height: H, width: W };
}

async function build(be: Backend): Promise<VideoDepthAnything> {
  const model = DepthFamily.build({ encoder: ENCODER });
  await loadWeights(model, randomWeights(model, 'f32', (n) => n.endsWith('pos_embed') || n.endsWith('.pe') || n.endsWith('cls_token')), be, {
    maxTensorBytes: be.limits.maxBufferBytes,
  });
  return model;
}

async function main(): Promise<void> {
  const frames = clip();
  const shape = `3x${T}x${H}x${W}`;
  const rows: Row[] = [];
  console.log(`# depth control, ${ENCODER}, clip ${shape} -> network ${NW}x${NH} (${windows} window${windows > 1 ? 's' : ''}), control ${CW}x${CH}${quick ? ' (--quick)' : ''}`);

  const plan = planBackend({ adapter: 'plan' });
  const planned = await build(plan);
  await depthControl(planned, frames, { width: CW, height: CH, inputSize: INPUT_SIZE });
  const params = [...planned.parameters()].reduce((a, p) => a + p.t.size * 4, 0);
  planned.dispose();
  const peak = plan.memory().peakBytes;
  console.log(`planned device peak ${(peak / 2 ** 30).toFixed(2)} GiB (parameters ${(params / 2 ** 20).toFixed(0)} MiB)`);

  for (const be of args.extra['plan-only'] ? [] : await benchBackends(args.backend)) {
    const base = { name: 'depth control', backend: be.name, adapter: be.adapter, shape, formula: FORMULA, frames: T };
    const model = await build(be);
    try {
      const s = await timeBestAsync(async () => {
        await depthControl(model, frames, { width: CW, height: CH, inputSize: INPUT_SIZE });
      }, REPS);
      rows.push({ ...base, seconds: s, frames_per_s: T / s, gflops: FLOPS / s / 1e9, peak_bytes: peak });
      console.log(`${be.name.padEnd(7)} ${s.toFixed(2)} s  ${(T / s).toFixed(3)} frames/s  ${(FLOPS / s / 1e9).toFixed(2)} GFLOP/s  (${be.adapter})`);
    } catch (e) {
      const error = ((e as Error).message ?? String(e)).split('\n')[0].slice(0, 240);
      rows.push({ ...base, seconds: null, frames_per_s: null, error });
      console.log(`${be.name.padEnd(7)} error: ${error}`);
    } finally {
      model.dispose();
    }
  }
  writeResult(args.out, {
    bench: 'depth', date: new Date().toISOString(), quick, encoder: ENCODER, input_size: INPUT_SIZE,
    clip: { frames: T, height: H, width: W }, network: { height: NH, width: NW, windows }, control: { width: CW, height: CH },
    planned_peak_bytes: peak, rows,
  });
}

runBench(main);
