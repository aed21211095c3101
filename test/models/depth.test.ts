// The depth control's model (spec depth.md): every vendored depth case on both backends, the
// size rule and the alignment against hand values, the public depthControl on the control case's
// clip (planar layout, progress, cancel), and loading: a released-style .pth state dict (an
// OrderedDict of tensors under their module paths), the encoder read off a config-less file's
// shapes, and errors naming a missing or extra key and a bad config field (UserErrors: the CLI
// prints them on one line).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/engine/errors.js';
import { type TensorSource, loadWeights } from '../../src/engine/module.js';
import { declaredSource } from '../../src/engine/plan/params.js';
import { planBackend } from '../../src/engine/select.js';
import { type TorchTensor, writeTorchCheckpoint } from '../../src/io/torch.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import {
  DepthFamily, configFromCheckpoint, depthControl, depthNetSize, effectiveInputSize, loadDepthModel, scaleAndShift,
} from '../../src/models/depth/index.js';
import { loadModule } from '../../src/models/load.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/depth', import.meta.url));
const CASES = ['preprocess_40x56', 'forward_t5', 'control_t46'];
const caseDir = (name: string) => join(FIXTURES, name);
const readConfig = (name: string) => JSON.parse(readFileSync(join(caseDir(name), 'config.json'), 'utf8')) as Record<string, unknown>;

const tmp = mkdtempSync(join(tmpdir(), 'cosmos-depth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('depth conformance', () => {
  for (const name of CASES) {
    it(`${name} passes on cpu`, async () => {
      await expectCasePasses(caseDir(name), cpu);
    }, 600_000);
    it(`${name} passes on webgpu`, async () => {
      await expectCasePasses(caseDir(name), await webgpu());
    }, 600_000);
  }
});

describe('size rule and alignment', () => {
  it('gives the spec examples at 518', () => {
    expect(effectiveInputSize(704, 1280, 518)).toBe(504);
    expect(effectiveInputSize(720, 1280, 518)).toBe(518);
    const net = (H: number, W: number) => depthNetSize(H, W, effectiveInputSize(H, W, 518));
    expect(net(704, 1280)).toEqual([504, 910]);
    expect(net(720, 1280)).toEqual([518, 924]);
    expect(net(1080, 1920)).toEqual([518, 924]);
    expect(net(480, 640)).toEqual([518, 686]);
    expect(net(960, 960)).toEqual([518, 518]);
    expect(net(1280, 704)).toEqual([910, 504]);
    // 7.5 patches round to 8 (half to even), as the control case's 70 -> 70 x 112
    expect(depthNetSize(32, 48, 70)).toEqual([70, 112]);
  });

  it('recovers an exact scale and shift, and falls back to (1, 0) on a flat prediction', () => {
    const p = [Float32Array.from([0.5, 1, 2, 3]), Float32Array.from([4, 0.25, 7, 1])];
    const g = p.map((a) => a.map((v) => 2 * v - 0.5));
    const [s, t] = scaleAndShift(p, g);
    expect(s).toBeCloseTo(2, 6);
    expect(t).toBeCloseTo(-0.5, 6);
    expect(scaleAndShift([new Float32Array(6).fill(3)], [Float32Array.from([1, 2, 3, 4, 5, 6])])).toEqual([1, 0]);
  });
});

describe('depthControl (the public API)', () => {
  async function clip(): Promise<{ frames: { data: Uint8Array; frames: number; height: number; width: number }; control: Uint8Array; shape: readonly number[] }> {
    const cs = await openSafetensors(join(caseDir('control_t46'), 'case.safetensors'));
    const video = await cs.read('input.video');
    const want = await cs.read('output.control');
    await cs.close();
    const [T, H, W] = video.shape;
    const plane = T * H * W;
    const data = new Uint8Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) data[c * plane + p] = Number(video.raw[p * 3 + c]);
    return { frames: { data, frames: T, height: H, width: W }, control: Uint8Array.from(want.raw as ArrayLike<number>), shape: want.shape };
  }

  it('turns a planar clip into the planar uint8 control within one level, reporting each window', async () => {
    const { frames, control, shape } = await clip();
    const args = JSON.parse(readFileSync(join(caseDir('control_t46'), 'case.json'), 'utf8')).args as Record<string, number>;
    const { model } = await loadDepthModel(join(caseDir('control_t46'), 'model.safetensors'), cpu);
    try {
      const progress: [number, number][] = [];
      const out = await depthControl(model, frames, {
        width: args.target_width, height: args.target_height, inputSize: args.input_size, onProgress: (d, n) => progress.push([d, n]),
      });
      expect([3, out.frames, out.height, out.width]).toEqual([...shape]);
      expect(progress).toEqual([[1, 3], [2, 3], [3, 3]]);
      let worst = 0;
      for (let i = 0; i < control.length; i++) worst = Math.max(worst, Math.abs(out.data[i] - control[i]));
      expect(worst).toBeLessThanOrEqual(1);
      const plane = out.frames * out.height * out.width;
      expect(out.data.subarray(plane, 2 * plane)).toEqual(out.data.subarray(0, plane));
    } finally {
      model.dispose();
    }
  }, 600_000);

  it('stops on an aborted signal and refuses a clip whose bytes do not fit its shape', async () => {
    const { frames } = await clip();
    const { model } = await loadDepthModel(join(caseDir('control_t46'), 'model.safetensors'), cpu);
    try {
      const ac = new AbortController();
      ac.abort();
      await expect(depthControl(model, frames, { width: 48, height: 36, inputSize: 70, signal: ac.signal })).rejects.toThrow(/abort/i);
      await expect(depthControl(model, { ...frames, frames: frames.frames + 1 }, { width: 48, height: 36 })).rejects.toThrow(/bytes for a \[3, 47, 32, 48\] clip/);
    } finally {
      model.dispose();
    }
  });
});

describe('device memory (planned, the released vits shapes)', () => {
  it('holds one window at a time: a 1280x704 clip of two windows peaks under 2 GiB, parameters included', async () => {
    const be = planBackend();
    const model = DepthFamily.build({ encoder: 'vits' });
    await loadWeights(model, declaredSource(model, 'f32'), be, { maxTensorBytes: be.limits.maxBufferBytes });
    const T = 30;
    const frames = { data: new Uint8Array(3 * T * 704 * 1280), frames: T, height: 704, width: 1280 };
    const out = await depthControl(model, frames, { width: 1280, height: 704 });
    expect([out.frames, out.height, out.width]).toEqual([T, 704, 1280]);
    // measured 1.75 GiB: the 910x504 network window's head, one frame of its finest fusions at a time
    expect(be.memory().peakBytes).toBeLessThan(2 * 2 ** 30);
    model.dispose();
    expect(be.memory().liveBytes).toBe(0);
  }, 60_000);
});

describe('loading', () => {
  /** The forward case's weights as a torch.save'd OrderedDict, as the releases are. */
  async function writePth(file: string, o: { drop?: string; extra?: boolean } = {}): Promise<void> {
    const st = await openSafetensors(join(caseDir('forward_t5'), 'model.safetensors'));
    const state = new Map<string, TorchTensor>();
    for (const name of st.names) {
      if (name === o.drop) continue;
      const t = await st.read(name);
      const f32 = t.raw as Float32Array;
      state.set(name, { dtype: 'F32', shape: t.shape, bytes: new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength) });
    }
    await st.close();
    if (o.extra) state.set('head.stray.weight', { dtype: 'F32', shape: [2], bytes: new Uint8Array(8) });
    await writeTorchCheckpoint(file, state);
  }

  it('loads a .pth state dict beside its config and runs the forward case from it', async () => {
    const dir = join(tmp, 'pth');
    mkdirSync(dir, { recursive: true });
    await writePth(join(dir, 'video_depth_anything_vits.pth'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(readConfig('forward_t5')));
    const { model } = await loadDepthModel(dir, cpu);
    try {
      const cs = await openSafetensors(join(caseDir('forward_t5'), 'case.safetensors'));
      const x = await cs.read('input.x');
      const want = await cs.read('output.depth');
      await cs.close();
      const { fromRaw } = await import('../../src/engine/ops.js');
      const got = await model.forward(fromRaw(cpu, x.raw, x.shape, x.dtype)).read();
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - Number(want.raw[i])));
      expect(worst).toBeLessThan(2e-4);
    } finally {
      model.dispose();
    }
  });

  it('names a missing or an extra key, and a file that is no released encoder, in one line', async () => {
    const config = readConfig('forward_t5');
    const missing = join(tmp, 'missing.pth');
    await writePth(missing, { drop: 'head.motion_modules.2.temporal_transformer.proj_in.bias' });
    const extra = join(tmp, 'extra.pth');
    await writePth(extra, { extra: true });
    for (const [file, what] of [[missing, /missing keys.*head\.motion_modules\.2\.temporal_transformer\.proj_in\.bias/], [extra, /unexpected keys.*head\.stray\.weight/]] as const) {
      const err = await loadModule(DepthFamily, file, cpu, { config }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      // the CLI prints a UserError on one line (its list lines joined)
      expect((err as Error).message.replace(/\s*\n\s*/g, ' ')).toMatch(what);
    }
    // no config beside it: the tiny widths are none of the released encoders
    const lone = join(tmp, 'lone.pth');
    await writePth(lone);
    const err = await loadDepthModel(lone, cpu).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/lone\.pth: pretrained\.pos_embed width 16 with 12 blocks is none of the released encoders/);
  });

  it('refuses a bad config field in one line', async () => {
    for (const [patch, what] of [
      [{ encoder: 'vitx' }, /^config\.json encoder: "vitx" is not one of vits, vitb, vitl$/],
      [{ features: 0 }, /^config\.json features: expected a positive integer, got 0$/],
      [{ intermediate_layer_idx: [2, 5, 8, 12] }, /^config\.json intermediate_layer_idx: block 12 is past the backbone's 12 blocks$/],
      [{ backbone: { ...(readConfig('forward_t5').backbone as object), num_heads: 3 } }, /^config\.json backbone\.embed_dim 16: not divisible by backbone\.num_heads 3$/],
    ] as const) {
      const err = await loadModule(DepthFamily, caseDir('forward_t5'), cpu, { config: { ...readConfig('forward_t5'), ...patch } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(what);
    }
  });

  it('reads the released encoder off a config-less state dict', () => {
    const source = (E: number, depth: number): TensorSource => {
      const names = ['pretrained.pos_embed', ...Array.from({ length: depth }, (_, i) => `pretrained.blocks.${i}.norm1.weight`)];
      return {
        names,
        info: (n: string) => ({ dtype: 'F32', shape: n === 'pretrained.pos_embed' ? [1, 1370, E] : [E] }),
        read: () => Promise.reject(new Error('no reads')),
      };
    };
    expect(configFromCheckpoint(source(384, 12), 'a.pth')).toEqual({ encoder: 'vits' });
    expect(configFromCheckpoint(source(768, 12), 'b.pth')).toEqual({ encoder: 'vitb' });
    expect(configFromCheckpoint(source(1024, 24), 'c.pth')).toEqual({ encoder: 'vitl' });
    expect(() => configFromCheckpoint(source(384, 24), 'd.pth')).toThrow(UserError);
  });
});
