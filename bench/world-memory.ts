// The peak memory of every Cosmos release at its default size, in about a minute: each release's
// `--plan` (src/pipelines/plan/: the pipeline's own code path on the plan backend, every tensor
// allocated where a real run allocates it, nothing computed, no weight bytes read), for the CPU
// backend and for WebGPU with a typical discrete GPU's limits (4 GiB buffers, 2 GiB bindings: the
// MLPs split to fit them). Release folders: the skeletons (test/releases/skeletons.py) or the real
// downloads; only their headers are read. The 14B releases have no skeleton: their folders are
// made here from the 2B / 7B skeleton of the same pipeline with the transformer replaced by the
// released 14B config (src/models/dit/released.ts) and a header listing every parameter it
// declares, in bf16 (what `declaredSource(module, 'bf16')` holds), its data a sparse hole.
//
//   npx tsx bench/world-memory.ts [--releases DIR] [--only NAME] [--steps N] [--json] [--out FILE]
//
// Formula of every row: the most bytes of live tensors (parameters, activations, caches) at any
// moment of the run; `phases` split the run where a phase starts (a phase includes its loads).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setFileSystem } from '../src/io/files.js';
import { nodeFileSystem } from '../src/io/node-files.js';
import { torchTuple, writeTorchCheckpoint } from '../src/io/torch.js';
import { RELEASED_AR_DECODER_CONFIG_JSON } from '../src/models/ar-decoder/config.js';
import { parseTransferSpec } from '../src/models/controlnet/spec.js';
import { RELEASED_DITS } from '../src/models/dit/released.js';
import { type PlanReport, type PlanTarget, cpuTarget, fmtBytes, webgpuTarget } from '../src/pipelines/plan/measure.js';
import { planArVideo2World, planReason, planTokenizer } from '../src/pipelines/plan/models.js';
import { planTransfer } from '../src/pipelines/plan/transfer.js';
import { planText2World, planVideo2World } from '../src/pipelines/plan/world.js';
import { type Entry, writeSparseSafetensors } from '../test/releases/guardrail-skeleton.js';
import { declaredRelease } from '../test/releases/header-edit.js';
import { DepthFamily } from '../src/models/depth/index.js';
import { runBench, writeResult } from './harness.js';

setFileSystem(nodeFileSystem);

interface MemoryRow {
  release: string;
  command: string;
  backend: 'cpu' | 'webgpu';
  limits: string;
  size: string;
  formula: string;
  planned_bytes: Record<string, number>;
  peak_bytes: number;
  phases: Record<string, number>;
  largest_tensor_bytes: number;
  tensors_over_binding: number;
  from: 'skeleton' | 'declared config';
  seconds: number;
}

/** An AR folder of a converted skeleton with the grid and training type its release fills in. */
function arRelease(rel: string, name: string, trainingType: string): string {
  const dest = join(rel, `${name}-planned`);
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest);
  const config = JSON.parse(readFileSync(join(rel, name, 'config.json'), 'utf8'));
  writeFileSync(join(dest, 'config.json'), JSON.stringify({ ...config, video_latent_shape: [5, 40, 64], training_type: trainingType }));
  symlinkSync(join(rel, name, 'model.safetensors'), join(dest, 'model.safetensors'));
  return dest;
}

/**
 * The converted CV8x8x8 skeleton with a mean_std.pt (the JIT release's is a placeholder there):
 * 16 channels x 8 latent frames of zeros, a few hundred bytes that the plan does read.
 */
async function cvWithStats(rel: string): Promise<string> {
  const dest = join(rel, 'Cosmos-1.0-Tokenizer-CV8x8x8-converted-with-mean-std');
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest);
  for (const f of ['config.json', 'model.safetensors']) symlinkSync(join(rel, 'Cosmos-1.0-Tokenizer-CV8x8x8-converted', f), join(dest, f));
  const t = () => ({ dtype: 'F32' as const, shape: [16 * 8], bytes: new Uint8Array(16 * 8 * 4) });
  await writeTorchCheckpoint(join(dest, 'mean_std.pt'), torchTuple(t(), t()));
  return dest;
}

/** video_depth_anything_vits as a sparse safetensors of every parameter the vits config declares (f32, as the .pth). */
function depthSmall(rel: string): string {
  const path = join(rel, 'video_depth_anything_vits.safetensors');
  const m = DepthFamily.build({ encoder: 'vits' });
  writeSparseSafetensors(path, [...m.parameters()].map((p): Entry => [p.key, 'F32', [...p.shape]]));
  m.dispose();
  return path;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      releases: { type: 'string' }, only: { type: 'string' }, steps: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' },
      out: { type: 'string', default: 'bench/results/world-memory.json' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npx tsx bench/world-memory.ts [--releases DIR] [--only NAME] [--steps N] [--json] [--out FILE]\n');
    return;
  }
  const steps = values.steps === undefined ? undefined : Number(values.steps);
  let rel = values.releases;
  let built: string | null = null;
  if (!rel) {
    built = mkdtempSync(join(tmpdir(), 'cosmos-releases-'));
    execFileSync('python3', [resolve('test/releases/skeletons.py'), 'build', built], { env: { ...process.env, FIXTURES: resolve('test/fixtures') } });
    rel = built;
  }
  const r = (n: string) => join(rel!, n);
  const d14 = (name: string, base: string) => declaredRelease(r(base), r(`${name}-declared`), RELEASED_DITS[name].config);

  type Case = { release: string; command: string; from: MemoryRow['from']; plan: (t: PlanTarget) => Promise<PlanReport & { settings?: { frames: number; height: number; width: number } }>; size?: string };
  const world = (release: string, command: 'text2world' | 'video2world', model: () => string, from: MemoryRow['from'] = 'skeleton'): Case => ({
    release, command, from, plan: (target) => (command === 'text2world' ? planText2World : planVideo2World)({ model: model(), target, steps }),
  });
  const cases: Case[] = [
    world('Cosmos-Predict2-2B-Text2Image', 'text2world', () => r('Cosmos-Predict2-2B-Text2Image')),
    world('Cosmos-Predict2-2B-Video2World', 'video2world', () => r('Cosmos-Predict2-2B-Video2World')),
    world('Cosmos-1.0-Diffusion-7B-Text2World', 'text2world', () => r('Cosmos-1.0-Diffusion-7B-Text2World')),
    world('Cosmos-Predict2.5-2B', 'text2world', () => r('Cosmos-Predict2.5-2B@diffusers-base-post-trained')),
    world('Cosmos-Predict2.5-2B', 'video2world', () => r('Cosmos-Predict2.5-2B@diffusers-base-post-trained')),
    {
      release: 'Cosmos-Transfer2.5-2B + edge', command: 'transfer', from: 'skeleton',
      plan: async (target) => planTransfer({
        target, steps,
        spec: await parseTransferSpec({
          model: r('Cosmos-Transfer2.5-2B@diffusers-general'),
          controls: { edge: { input_control: 'edge.y4m', control_weight: 1, ckpt_path: r('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge') } },
        }, rel!, { checkFiles: false }),
      }),
    },
    {
      // the Transfer2.5 depth ControlNet revision has no skeleton: the edge one stands in (same architecture)
      release: 'Cosmos-Transfer2.5-2B + depth computed (Video-Depth-Anything-Small)', command: 'transfer --input --control depth', from: 'declared config',
      size: '93 x 1280x704 clip (the network at 910x504)',
      plan: async (target) => planTransfer({
        target, steps, input: join(rel!, 'no-such-clip.y4m'), depthModel: depthSmall(rel!),
        spec: await parseTransferSpec({
          model: r('Cosmos-Transfer2.5-2B@diffusers-general'),
          controls: { depth: { control_weight: 1, ckpt_path: r('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge') } },
        }, rel!, { checkFiles: false }),
      }),
    },
    world('Cosmos-1.0-Diffusion-14B-Text2World', 'text2world', () => d14('Cosmos-1.0-Diffusion-14B-Text2World', 'Cosmos-1.0-Diffusion-7B-Text2World'), 'declared config'),
    world('Cosmos-1.0-Diffusion-14B-Video2World', 'video2world', () => d14('Cosmos-1.0-Diffusion-14B-Video2World', 'Cosmos-1.0-Diffusion-7B-Text2World'), 'declared config'),
    world('Cosmos-Predict2-14B-Text2Image', 'text2world', () => d14('Cosmos-Predict2-14B-Text2Image', 'Cosmos-Predict2-2B-Text2Image'), 'declared config'),
    world('Cosmos-Predict2-14B-Video2World', 'video2world', () => d14('Cosmos-Predict2-14B-Video2World', 'Cosmos-Predict2-2B-Video2World'), 'declared config'),
    { release: 'Cosmos-Reason1-7B', command: 'reason', from: 'skeleton', size: 'text prompt, 4096 new tokens', plan: (target) => planReason({ model: r('Cosmos-Reason1-7B'), target }) },
    {
      release: 'Cosmos-1.0-Autoregressive-4B', command: 'ar-video2world', from: 'skeleton', size: '9 context frames, grid 5x40x64',
      plan: (target) => planArVideo2World({ target, model: arRelease(rel!, 'Cosmos-1.0-Autoregressive-4B-converted', 'video_to_video'), tokenizer: r('Cosmos-1.0-Tokenizer-DV8x16x16-converted') }),
    },
    {
      release: 'Cosmos-1.0-Autoregressive-5B-Video2World', command: 'ar-video2world', from: 'skeleton', size: '9 context frames, grid 5x40x64',
      plan: (target) => planArVideo2World({ target, model: arRelease(rel!, 'Cosmos-1.0-Autoregressive-5B-Video2World-converted', 'text_to_video'), tokenizer: r('Cosmos-1.0-Tokenizer-DV8x16x16-converted') }),
    },
    {
      release: 'Cosmos-1.0-Autoregressive-4B + Diffusion-7B-Decoder + Tokenizer-CV8x8x8', command: 'ar-video2world --decoder', from: 'declared config',
      size: '9 context frames, grid 5x40x64, 1 decoder window',
      plan: async (target) => planArVideo2World({
        target, model: arRelease(rel!, 'Cosmos-1.0-Autoregressive-4B-converted', 'video_to_video'), tokenizer: r('Cosmos-1.0-Tokenizer-DV8x16x16-converted'),
        decoder: { config: RELEASED_AR_DECODER_CONFIG_JSON, dtype: 'bf16' }, cvTokenizer: await cvWithStats(rel!),
      }),
    },
    ...['Cosmos-1.0-Tokenizer-CV8x8x8', 'Cosmos-1.0-Tokenizer-DV8x16x16'].map((name): Case => ({
      release: name, command: 'roundtrip', from: 'skeleton', size: '121x704x1280',
      plan: (target) => planTokenizer({ target, model: r(`${name}-converted`), frames: 121, height: 704, width: 1280, decode: true }),
    })),
  ];

  try {
    const rows: MemoryRow[] = [];
    for (const c of cases) {
      if (values.only && !c.release.includes(values.only)) continue;
      for (const target of [cpuTarget(), webgpuTarget()]) {
        const p = await c.plan(target);
        const s = p.settings;
        const row: MemoryRow = {
          release: c.release, command: c.command, backend: target.device, limits: target.limitsFrom,
          size: c.size ?? (s ? `${s.frames}x${s.height}x${s.width}` : '?'), formula: 'max over the run of the bytes of live tensors',
          planned_bytes: Object.fromEntries(p.components.map((x) => [x.name, x.bytes])), peak_bytes: p.peakBytes,
          phases: Object.fromEntries(p.phases.map((x) => [x.phase, x.peakBytes])), largest_tensor_bytes: p.largestTensorBytes,
          tensors_over_binding: p.overBinding.count, from: c.from, seconds: p.seconds,
        };
        rows.push(row);
        if (values.json) process.stdout.write(`${JSON.stringify(row)}\n`);
        else {
          const parts = Object.entries(row.planned_bytes).map(([k, v]) => `${k} ${fmtBytes(v)}`).join(', ');
          const phases = Object.entries(row.phases).map(([k, v]) => `${k} ${fmtBytes(v)}`).join(', ');
          process.stdout.write(`${row.release} ${row.command} ${row.size} [${row.backend}]: peak ${fmtBytes(row.peak_bytes)} (${phases}); ${parts} [${row.seconds.toFixed(1)} s]\n`);
        }
      }
    }
    process.stdout.write(`max RSS of this process: ${(process.resourceUsage().maxRSS / 2 ** 10).toFixed(0)} MiB\n`);
    writeResult(values.out!, { bench: 'world-memory', rows });
  } finally {
    if (built) rmSync(built, { recursive: true, force: true });
  }
}

runBench(main);
