// Transfer's depth control computed from the raw clip (spec depth.md "The inference path"): the
// whole clip at its own size through Video-Depth-Anything, normalised over the whole video, resized
// to the model resolution, then sliced per chunk like a ready-made control. On the tiny depth case
// network (test/fixtures/depth/forward_t5), the tiny transfer checkpoints and the sample clip.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TransferSpec, readTransferSpec } from '../../src/models/controlnet/spec.js';
import { depthControl, loadDepthModel } from '../../src/models/depth/index.js';
import { planTransfer } from '../../src/pipelines/plan/transfer.js';
import { transfer } from '../../src/pipelines/transfer.js';
import { framesToVideo, readFramesU8 } from '../../src/pipelines/world/control-input.js';
import { runCli } from '../cli/run-cli.js';
import { cpu } from '../harness.js';
import { SAMPLE, transferSpecJson, writeTransferFolder } from './world-fixtures.js';

const DEPTH_CASE = join(import.meta.dirname, '../fixtures/depth/forward_t5');
/** the case network as a user's folder holds it: config.json + model.safetensors */
let DEPTH_MODEL = '';
/** a small nominal input size: the tiny network at 28x28 (upstream runs 518) */
const INPUT_SIZE = 28;

let tmp: string;
let spec: TransferSpec;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cosmos-transfer-depth-'));
  await writeTransferFolder(tmp);
  const json = {
    ...transferSpecJson(), video_path: SAMPLE, resolution: '32x32',
    controls: { depth: { control_weight: 0.5, ckpt_path: 'controlnet_depth' }, edge: { control_weight: 0.3, ckpt_path: 'controlnet_edge' } },
  };
  writeFileSync(join(tmp, 'depth.json'), JSON.stringify(json));
  spec = await readTransferSpec(join(tmp, 'depth.json'));
  DEPTH_MODEL = join(tmp, 'depth-model');
  mkdirSync(DEPTH_MODEL);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(DEPTH_CASE, f), join(DEPTH_MODEL, f));
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('transfer with a depth control computed from the clip', () => {
  it('reads the spec: depth without input_control is computed, as edge is', () => {
    expect(spec.controls.map((c) => [c.name, c.inputControl])).toEqual([['depth', null], ['edge', null]]);
  });

  it('the map is the depth branch on the whole clip at its own size, resized to the model size; chunks slice it; each frame handed out once', async () => {
    const seen: { name: string; first: number; data: Float32Array; frames: number }[] = [];
    const phases: string[] = [];
    const windows: number[] = [];
    const r = await transfer({
      spec, backend: cpu, frames: 9, chunkFrames: 5, depthModel: DEPTH_MODEL, depthInputSize: INPUT_SIZE,
      onControlFrames: (name, v, first) => void seen.push({ name, first, data: v.data, frames: v.frames }),
      onPhase: (p) => phases.push(p), onProgress: (e) => e.stage === 'depth' && windows.push(e.done),
    });
    expect(r.controls).toEqual([{ name: 'depth', weight: 0.5, computed: 'video-depth-anything' }, { name: 'edge', weight: 0.3, computed: 'medium' }]);
    expect(r.chunks).toEqual([{ start: 0, end: 5 }, { start: 4, end: 9 }]);
    expect([r.video.frames, r.video.height, r.video.width]).toEqual([9, 32, 32]);
    expect(r.latents.data.every(Number.isFinite)).toBe(true);
    // the depth model runs (and goes) before the prompt phase loads anything
    expect(phases.indexOf('depth')).toBeGreaterThanOrEqual(0);
    expect(phases.indexOf('depth')).toBeLessThan(phases.indexOf('prompt'));
    expect(windows.at(-1)).toBeGreaterThanOrEqual(1);

    // the reference: every frame of the 64x64 clip (not only the 9 generated) through depthControl
    const whole = await readFramesU8(SAMPLE, { size: null, mode: 'area', backend: cpu, what: 'sample' });
    expect(whole.frames).toBeGreaterThan(9);
    const { model } = await loadDepthModel(DEPTH_MODEL, cpu);
    let want: Float32Array;
    try {
      want = framesToVideo(await depthControl(model, whole, { width: 32, height: 32, inputSize: INPUT_SIZE })).data;
    } finally {
      model.dispose();
    }
    const depth = seen.filter((s) => s.name === 'depth');
    expect(depth.map((s) => [s.first, s.frames])).toEqual([[0, 5], [5, 4]]);
    const T = whole.frames;
    const hw = 32 * 32;
    for (const s of depth) {
      for (let c = 0; c < 3; c++) {
        const got = s.data.subarray(c * s.frames * hw, (c + 1) * s.frames * hw);
        const ref = want.subarray((c * T + s.first) * hw, (c * T + s.first + s.frames) * hw);
        expect(got).toEqual(ref);
      }
    }
    // a real depth map: not flat, three equal channels
    const first = depth[0];
    expect(new Set(first.data.subarray(0, 5 * hw)).size).toBeGreaterThan(4);
    expect(first.data.subarray(0, 5 * hw)).toEqual(first.data.subarray(5 * hw, 10 * hw));
  }, 240_000);

  it('refuses a depth control without its model before anything runs', async () => {
    await expect(transfer({ spec, backend: cpu, frames: 5 })).rejects.toThrow(/^controls\.depth: computing the depth control from the clip needs the Video-Depth-Anything model .*--depth-model/);
  });

  it('plans the depth phase: the model loads and goes before the prompt', async () => {
    const p = await planTransfer({ spec, frames: 5, chunkFrames: 5, depthModel: DEPTH_MODEL, depthInputSize: INPUT_SIZE });
    expect(p.components.map((c) => c.name)).toContain('depth_model');
    expect(p.phases.map((x) => x.phase)).toContain('depth');
    expect(p.phases.findIndex((x) => x.phase === 'depth')).toBeLessThan(p.phases.findIndex((x) => x.phase === 'prompt'));
  }, 120_000);
});

describe('transfer --control depth (command line)', () => {
  it('computes depth with --depth-model and writes its PNG frames with --save-controls', async () => {
    const base = join(tmp, 'base.json');
    writeFileSync(base, JSON.stringify({ ...transferSpecJson(), controls: { depth: { control_weight: 0.5, ckpt_path: 'controlnet_depth' } } }));
    const maps = join(tmp, 'maps');
    const out = join(tmp, 'out.y4m');
    const r = await runCli('transfer', '--spec', base, '--input', SAMPLE, '--control', 'depth:0.7', '--depth-model', DEPTH_MODEL, '--depth-input-size', String(INPUT_SIZE),
      '--resolution', '32x32', '--frames', '5', '--chunk-frames', '5', '--save-controls', maps, '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.err).toContain('depth (0.7, computed)');
    expect(existsSync(out)).toBe(true);
    expect(readdirSync(join(maps, 'depth')).filter((n) => n.endsWith('.png'))).toHaveLength(5);
  }, 240_000);

  it('mistakes are one line: a preset for depth, --depth-model or --depth-input-size with no depth computed, no model anywhere', async () => {
    // both controls with their videos: only what --control names is computed
    const base = join(tmp, 'videos.json');
    writeFileSync(base, JSON.stringify(transferSpecJson()));
    const one = async (args: string[], pattern: RegExp, env: Record<string, string> = {}) => {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        const r = await runCli('transfer', '--spec', base, '--out', join(tmp, 'x.y4m'), '--backend', 'cpu', ...args);
        expect(r.rc, r.err).toBe(2);
        expect(r.errLines.filter((l) => l.startsWith('error:'))).toEqual([expect.stringMatching(pattern)]);
      } finally {
        process.env = saved;
      }
    };
    await one(['--input', SAMPLE, '--control', 'depth=high'], /^error: --control depth=high: depth takes no preset/);
    await one(['--input', SAMPLE, '--depth-model', DEPTH_MODEL, '--control', 'edge'], /^error: --depth-model: computes a depth control, and none is computed/);
    await one(['--input', SAMPLE, '--control', 'edge', '--depth-input-size', '28'], /^error: --depth-input-size: sizes the depth network, and no depth control is computed/);
    await one(['--input', SAMPLE, '--control', 'depth'], /^error: --depth-model: a depth control is computed from the clip and needs the Video-Depth-Anything weights .*no-cache/, { COSMOS_CACHE_DIR: join(tmp, 'no-cache') });
  }, 60_000);
});
