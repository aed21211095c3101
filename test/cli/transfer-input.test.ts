// `transfer --input clip --control KIND[=PRESET][:WEIGHT]` in-process on the cpu backend and the
// tiny folders of test/pipelines/world-fixtures.ts: the clip is transferred in chunks, the computed
// maps are written where --save-controls says as PNG frames a person can open (the exact uint8 maps
// the model read), and every misuse is one line with status 2 before anything is computed.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVideo } from '../../src/io/open-video.js';
import { readPngFrames } from '../../src/io/png-frames.js';
import { controlMap, framesToVideo, readFramesU8 } from '../../src/pipelines/world/control-input.js';
import { cpu } from '../harness.js';
import { SAMPLE, transferSpecJson, writeTransferFolder } from '../pipelines/world-fixtures.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-cli-transfer-input-'));
let spec: string;
beforeAll(async () => {
  const t = nodePath.join(tmp, 'transfer');
  mkdirSync(t);
  await writeTransferFolder(t);
  // the ControlNets of edge and vis (both random; the spec gives no videos: they come from --input)
  spec = nodePath.join(t, 'edge-vis.json');
  const base = transferSpecJson();
  writeFileSync(spec, JSON.stringify({
    ...base, num_steps: 1, guidance: 1,
    controls: { edge: { ckpt_path: 'controlnet_edge', control_weight: 0.5 }, vis: { ckpt_path: 'controlnet_depth', control_weight: 0.4 } },
  }));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const small = ['--resolution', '32x32', '--chunk-frames', '5', '--backend', 'cpu'];

describe('transfer --input', () => {
  it('transfers the clip in chunks and saves the maps it computed as PNG frames', async () => {
    const out = nodePath.join(tmp, 'out.y4m');
    const maps = nodePath.join(tmp, 'maps');
    const r = await runCli('transfer', '--spec', spec, '--input', SAMPLE, '--control', 'edge=high:0.6', '--control', 'vis=low', '--frames', '9',
      '--save-controls', maps, '--out', out, '--json', ...small);
    expect(r.rc, r.err).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.input).toBe(SAMPLE);
    expect(s.controls).toEqual([{ name: 'edge', weight: 0.6, computed: 'high' }, { name: 'vis', weight: 0.4, computed: 'low' }]);
    expect(s.chunks).toEqual([{ start: 0, end: 5 }, { start: 4, end: 9 }]);
    expect(s.saved_controls).toEqual([nodePath.join(maps, 'edge'), nodePath.join(maps, 'vis')]);
    const v = await readVideo(out);
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 32]);
    expect(r.err).toContain('edge (0.6, computed) + vis (0.4, computed)');
    // the saved maps are the uint8 maps of the resized clip, bit for bit
    const resized = await readFramesU8(SAMPLE, { size: [32, 32], mode: 'area', backend: cpu, maxFrames: 9, what: 'sample' });
    for (const [name, preset] of [['edge', 'high'], ['vis', 'low']] as const) {
      expect(readdirSync(nodePath.join(maps, name)).sort()).toHaveLength(9);
      const saved = await readPngFrames(nodePath.join(maps, name));
      const want = framesToVideo(await controlMap({ name, preset }, resized, cpu));
      expect([...saved.data].map((x) => Math.round((x + 1) * 127.5)), name).toEqual([...want.data].map((x) => Math.round((x + 1) * 127.5)));
    }
  });

  it('plans a run from a clip', async () => {
    const r = await runCli('transfer', '--spec', spec, '--input', SAMPLE, '--control', 'edge', '--control', 'vis', '--plan', '--json', ...small);
    expect(r.rc, r.err).toBe(0);
    const p = JSON.parse(r.out);
    expect([p.frames, p.height, p.width]).toEqual([17, 32, 32]);
    // 17 frames in chunks of 5 overlapping by 1: four chunks' latents
    expect(p.chunks).toEqual([{ start: 0, end: 5 }, { start: 4, end: 9 }, { start: 8, end: 13 }, { start: 12, end: 17 }]);
    expect(p.latent_shape).toEqual([4, 16, 2, 4, 4]);
    expect(p.controls).toEqual([{ name: 'edge', weight: 0.5, computed: 'medium' }, { name: 'vis', weight: 0.4, computed: 'medium' }]);
  });

  it('refuses misuse with one line and status 2, before running', async () => {
    const cases: [string[], RegExp][] = [
      [['--input', SAMPLE, '--control', 'depth'], /^error: --control depth: the spec has no "depth" control to name its ControlNet/],
      [['--input', SAMPLE, '--control', 'seg=x'], /^error: --control seg: computing the seg control from the clip needs GroundingDINO \+ SAM2/],
      [['--control', 'edge'], /^error: --control: computes a control from a raw clip, and there is none: give --input/],
      [['--input', SAMPLE, '--control', 'edge=loud'], /^error: --control edge=loud: unknown edge preset 'loud' \(expected one of none, very_low, low, medium, high, very_high\)$/],
      [['--input', SAMPLE, '--control', 'vis:-1'], /^error: --control vis:-1: the weight must be a number >= 0/],
      [['--input', SAMPLE, '--control', 'edge', '--control', 'edge=low'], /^error: --control edge: given twice$/],
      [['--input', SAMPLE, '--control', 'canny'], /^error: --control canny: only edge, vis, depth are computed from the clip/],
      [['--input', SAMPLE, '--resolution', '700'], /^error: --resolution: unknown resolution "700"/],
      [['--resolution', '720'], /^error: --resolution: sizes the raw clip, and there is none/],
      [['--input', nodePath.join(tmp, 'missing.y4m'), '--control', 'edge'], /^error: --input .*missing\.y4m: /],
      [['--input', SAMPLE, '--control', 'edge', '--chunk-frames', '6'], /^error: chunkFrames: must be 1 \+ k\*4 .*got 6; try 5 or 9$/],
    ];
    for (const [args, msg] of cases) {
      const r = await runCli('transfer', '--spec', spec, '--out', nodePath.join(tmp, 'never.y4m'), ...args, '--backend', 'cpu');
      expect(r.rc, `${args.join(' ')}: ${r.err}`).toBe(2);
      // (a check of the pipeline's, such as the chunk length against the VAE, comes after the run's header line)
      const errors = r.errLines.filter((l) => l.startsWith('error:'));
      expect(errors, args.join(' ')).toHaveLength(1);
      expect(errors[0], args.join(' ')).toMatch(msg);
      expect(r.errLines.at(-1)).toBe(errors[0]);
    }
    expect(existsSync(nodePath.join(tmp, 'never.y4m'))).toBe(false);
    // a spec without the control named has no ControlNet for it
    const edgeOnly = nodePath.join(nodePath.dirname(spec), 'edge-only.json');
    writeFileSync(edgeOnly, JSON.stringify({ ...transferSpecJson(), controls: { edge: { ckpt_path: 'controlnet_edge' } } }));
    const noVis = await runCli('transfer', '--spec', edgeOnly, '--input', SAMPLE, '--control', 'vis', '--backend', 'cpu');
    expect(noVis.errLines).toEqual(['error: --control vis: the spec has no "vis" control to name its ControlNet: add controls.vis with "ckpt_path"']);
    // maps are saved only when some are computed
    const none = await runCli('transfer', '--spec', edgeOnly, '--save-controls', nodePath.join(tmp, 'm2'), '--backend', 'cpu');
    expect(none.errLines).toEqual(['error: --save-controls: no control is computed in this run (give --input with --control edge, vis or depth)']);
  });
});
