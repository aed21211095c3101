// The peak device memory of the world pipelines on the real releases at their default sizes
// (93 frames of 704 x 1280), in a minute: each pipeline runs its real code path on the plan
// backend (src/engine/plan/: every tensor allocated, nothing computed, no weight bytes read), so
// the peak printed is what the CPU backend would hold for the same calls (WebGPU's, less its
// buffer-pool slack). Release folders: skeleton copies (test/releases/skeletons.py) or the real
// downloads; only their headers are read.
//
//   npx tsx bench/world-memory.ts [--releases DIR] [--frames 93 --height 704 --width 1280] [--json]
//
// Formula of every row: bytes of live tensors (parameters, activations, caches), maximum over
// the run; the segments split the run where a phase (prompt, condition, denoise, decode) starts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { PlanBackend } from '../src/engine/plan/backend.js';
import { planBackend } from '../src/engine/select.js';
import { setFileSystem } from '../src/io/files.js';
import { nodeFileSystem } from '../src/io/node-files.js';
import type { Video } from '../src/io/video.js';
import { parseTransferSpec } from '../src/models/controlnet/spec.js';
import type { ProgressEvent } from '../src/pipelines/progress.js';
import { text2world } from '../src/pipelines/text2world.js';
import { transfer } from '../src/pipelines/transfer.js';
import { video2world } from '../src/pipelines/video2world.js';
import { inspectWorldModel } from '../src/pipelines/world/folder.js';
import { runBench, writeResult } from './harness.js';

setFileSystem(nodeFileSystem);

const GiB = 2 ** 30;

interface Segment {
  /** the phase that started the segment ('load' before the first) */
  phase: string;
  peak_bytes: number;
}

interface MemoryRow {
  name: string;
  backend: 'plan';
  formula: string;
  frames: number;
  height: number;
  width: number;
  peak_bytes: number;
  segments: Segment[];
  seconds: number;
}

/** Peak bytes per segment of a run, a segment starting where a new phase reports first. */
function phaseMeter(be: PlanBackend) {
  const segments: Segment[] = [];
  let phase = 'load';
  return {
    onProgress(e: ProgressEvent) {
      if (e.stage === phase) return;
      segments.push({ phase, peak_bytes: be.memory().peakBytes });
      be.resetPeakMemory();
      phase = e.stage;
    },
    finish(): Segment[] {
      segments.push({ phase, peak_bytes: be.memory().peakBytes });
      return segments;
    },
  };
}

/** A flat grey clip of `frames` frames (host memory only; the plan backend never reads it). */
function greyClip(frames: number, height: number, width: number): Video {
  return { data: new Float32Array(3 * frames * height * width), frames, height, width, fps: { num: 16, den: 1 } };
}

async function measure(name: string, size: { frames: number; height: number; width: number }, run: (be: PlanBackend, onProgress: (e: ProgressEvent) => void) => Promise<unknown>): Promise<MemoryRow> {
  const be = planBackend();
  const meter = phaseMeter(be);
  const t0 = performance.now();
  await run(be, (e) => meter.onProgress(e));
  const segments = meter.finish();
  return {
    name, backend: 'plan', formula: 'max over the run of the bytes of live tensors', ...size,
    peak_bytes: Math.max(...segments.map((s) => s.peak_bytes)), segments, seconds: (performance.now() - t0) / 1000,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      releases: { type: 'string' }, frames: { type: 'string', default: '93' }, height: { type: 'string', default: '704' },
      width: { type: 'string', default: '1280' }, steps: { type: 'string', default: '2' }, json: { type: 'boolean' }, help: { type: 'boolean' },
      out: { type: 'string', default: 'bench/results/world-memory.json' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npx tsx bench/world-memory.ts [--releases DIR] [--frames N --height N --width N] [--steps N] [--json] [--out FILE]\n');
    return;
  }
  const size = { frames: Number(values.frames), height: Number(values.height), width: Number(values.width) };
  const steps = Number(values.steps);
  let rel = values.releases;
  let built: string | null = null;
  if (!rel) {
    built = mkdtempSync(join(tmpdir(), 'cosmos-releases-'));
    execFileSync('python3', [resolve('test/releases/skeletons.py'), 'build', built], { env: { ...process.env, FIXTURES: resolve('test/fixtures') } });
    rel = built;
  }
  const r = (n: string) => join(rel!, n);
  try {
    const rows: MemoryRow[] = [];
    const zeros = (width: number) => ({ prompt: { data: new Float32Array(512 * width), shape: [1, 512, width] }, negative: { data: new Float32Array(512 * width), shape: [1, 512, width] } });
    rows.push(await measure('Predict2-2B text2image (embeddings given)', { frames: 1, height: 768, width: 1360 }, (be, onProgress) => text2world({
      model: r('Cosmos-Predict2-2B-Text2Image'), backend: be, embeddings: zeros(1024), steps, onProgress,
    })));
    rows.push(await measure('Predict2-2B video2world (embeddings given)', size, (be, onProgress) => video2world({
      model: r('Cosmos-Predict2-2B-Video2World'), backend: be, embeddings: zeros(1024), steps, ...size, input: greyClip(5, size.height, size.width), onProgress,
    })));
    const p25 = r('Cosmos-Predict2.5-2B@diffusers-base-post-trained');
    rows.push(await measure('Predict2.5-2B text2world from a prompt (Reason1-7B encoder)', size, (be, onProgress) => text2world({
      model: p25, backend: be, prompt: 'A robot arm picks up a red cube.', steps, ...size, onProgress,
    })));
    const p25Width = (await inspectWorldModel(p25)).textWidth;
    rows.push(await measure('Predict2.5-2B video2world (embeddings given)', size, (be, onProgress) => video2world({
      model: p25, backend: be, embeddings: zeros(p25Width), steps, ...size, input: greyClip(5, size.height, size.width), onProgress,
    })));
    const edge = join(rel, 'edge-control.png');
    rows.push(await measure('Transfer2.5-2B + edge ControlNet (embeddings given)', size, async (be, onProgress) => {
      const spec = await parseTransferSpec({
        model: r('Cosmos-Transfer2.5-2B@diffusers-general'), num_steps: steps,
        controls: { edge: { input_control: edge, control_weight: 1, ckpt_path: r('Cosmos-Transfer2.5-2B@diffusers-controlnet-general-edge') } },
      }, rel!, { checkFiles: false });
      return transfer({ spec, backend: be, embeddings: zeros(100352), controlVideos: { edge: greyClip(size.frames, size.height, size.width) }, onProgress });
    }));
    for (const row of rows) {
      const segs = row.segments.map((s) => `${s.phase} ${(s.peak_bytes / GiB).toFixed(2)}`).join(', ');
      if (!values.json) process.stdout.write(`${row.name}: peak ${(row.peak_bytes / GiB).toFixed(2)} GiB at ${row.frames}x${row.height}x${row.width} (${segs}) [${row.seconds.toFixed(1)} s]\n`);
      else process.stdout.write(`${JSON.stringify(row)}\n`);
    }
    writeResult(values.out!, { bench: 'world-memory', rows });
  } finally {
    if (built) rmSync(built, { recursive: true, force: true });
  }
}

runBench(main);
