// The Cosmos Transfer ControlNet: every vendored controlnet case through the conformance runner on
// both backends, the ControlNet's own checks (bf16 kept, scale lists, input errors), multi-control
// (weights, maps, shapes, the weight cap) and the JSON spec file's validation.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCases, } from '../../src/conform/runner.js';
import type { Backend } from '../../src/engine/backend.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import {
  ControlNetConfigError, ControlNetInputError, CosmosControlNetFamily, CosmosControlNetModel, expandConditioningScale, parseControlNetConfig,
} from '../../src/models/controlnet/controlnet.js';
import {
  CONTROL_WEIGHT_CAP, ControlShapeError, ControlWeightError, MultiControlError, MultiControlNet, resizeWeightMap,
} from '../../src/models/controlnet/multi.js';
import { ControlSpecError, DEFAULT_CONTROL_WEIGHT, parseTransferSpec, readTransferSpec } from '../../src/models/controlnet/spec.js';
import { CosmosTransformer3DFamily } from '../../src/models/dit/transformer.js';
import { loadModule } from '../../src/models/load.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));
const CASES = await findCases([join(FIXTURES, 'controlnet')]);
const kindOf = (d: string) => JSON.parse(readFileSync(join(d, 'case.json'), 'utf8')).kind as string;

describe('ControlNet conformance cases', () => {
  it('finds the vendored cases of all three kinds', () => {
    expect(new Set(CASES.map(kindOf))).toEqual(new Set(['controlnet.forward', 'controlnet.transfer', 'controlnet.multi_control']));
  });
  for (const dir of CASES) {
    it(`${dir.split('/').pop()} passes on the CPU backend`, async () => expectCasePasses(dir, cpu));
  }
  for (const dir of CASES) {
    it(`${dir.split('/').pop()} passes on the WebGPU backend`, async () => expectCasePasses(dir, await webgpu()));
  }
});

// ------------------------------------------------------------------ helpers on a case's files

interface CaseData {
  dir: string;
  json: { args: Record<string, unknown>; tolerance: { atol: number; rtol: number } };
  get(name: string): Promise<Tensor>;
  has(name: string): boolean;
  close(): Promise<void>;
}

async function openCase(dir: string, backend: Backend = cpu): Promise<CaseData> {
  const cs = await openSafetensors(join(dir, 'case.safetensors'));
  return {
    dir,
    json: JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')),
    async get(n) { const t = await cs.read(n); return F.fromRaw(backend, t.raw, t.shape, t.dtype); },
    has: (n) => cs.has(n),
    close: () => cs.close(),
  };
}

async function loadControlNet(dir: string, file = 'model.safetensors', backend: Backend = cpu): Promise<CosmosControlNetModel> {
  return (await loadModule(CosmosControlNetFamily, join(dir, file), backend, { config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) })).model;
}

async function sharedInputs(c: CaseData) {
  return {
    latents: await c.get('input.latents'), timestep: await c.get('input.timestep'), encoderHiddenStates: await c.get('input.text_context'),
    imageContext: await c.get('input.img_context'), conditionMask: await c.get('input.condition_mask'), paddingMask: await c.get('input.padding_mask'),
  };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: { atol: number; rtol: number }, label: string) {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Math.abs(got[i] - want[i]), `${label}[${i}] got ${got[i]} want ${want[i]}`).toBeLessThanOrEqual(tol.atol + tol.rtol * Math.abs(want[i]));
  }
}

const byKind = (k: string) => {
  const d = CASES.find((x) => kindOf(x) === k);
  if (!d) throw new Error(`no ${k} case`);
  return d;
};

// ------------------------------------------------------------------ the ControlNet

describe('CosmosControlNetModel', () => {
  it('reproduces the residuals the transfer case feeds the base (ControlNet -> base chain)', async () => {
    const dir = byKind('controlnet.transfer');
    const c = await openCase(dir);
    const m = await loadControlNet(dir);
    const res = m.forward({ ...(await sharedInputs(c)), controlsLatents: await c.get('input.controls_latents'), conditioningScale: c.json.args.conditioning_scale as number });
    expect(res.length).toBe(m.numResiduals);
    for (let k = 0; k < res.length; k++) {
      expectClose(await res[k].read(), await (await c.get(`input.residual.${k}`)).read(), c.json.tolerance, `residual.${k}`);
    }
    m.dispose();
    await c.close();
  });

  it('keeps a bf16 checkpoint in bf16', async () => {
    const dir = byKind('controlnet.forward');
    const m = await loadControlNet(dir);
    const st = await openSafetensors(join(dir, 'model.safetensors'));
    expect(st.info('control_blocks.0.after_proj.weight').dtype).toBe('BF16');
    await st.close();
    expect(m.control_blocks[0].after_proj!.weight.t.dtype).toBe('bf16');
    expect(m.patch_embed.proj.weight.t.dtype).toBe('bf16');
    m.dispose();
  });

  it('expands conditioning scales as diffusers does and applies one per block', async () => {
    expect(expandConditioningScale(0.5, 3)).toEqual([0.5, 0.5, 0.5]);
    expect(expandConditioningScale([1, 2], 5)).toEqual([1, 2, 1, 2, 1]);
    expect(expandConditioningScale([1, 2, 3, 4], 2)).toEqual([1, 2]);
    expect(() => expandConditioningScale([], 2)).toThrow(ControlNetInputError);
    const dir = byKind('controlnet.transfer');
    const c = await openCase(dir);
    const m = await loadControlNet(dir);
    const base = { ...(await sharedInputs(c)), controlsLatents: await c.get('input.controls_latents') };
    const one = m.forward({ ...base, conditioningScale: 1 });
    const list = m.forward({ ...base, conditioningScale: [0.25, -2] });
    const scales = [0.25, -2];
    for (let k = 0; k < one.length; k++) {
      const want = (await one[k].read()).map((v) => v * scales[k]);
      expectClose(await list[k].read(), want, { atol: 1e-6, rtol: 1e-6 }, `scaled residual ${k}`);
    }
    m.dispose();
    await c.close();
  });

  it('builds from config.json alone and refuses bad configs and inputs with clear messages', async () => {
    const dir = byKind('controlnet.forward');
    const cfgJson = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const cfg = parseControlNetConfig(cfgJson);
    expect(cfg.nControlnetBlocks).toBe(cfgJson.n_controlnet_blocks);
    const m = new CosmosControlNetModel(cfg);
    const keys = [...m.parameters()].map((p) => p.key);
    expect(keys).toContain('control_blocks.0.before_proj.weight');
    expect(keys).not.toContain('control_blocks.1.before_proj.weight');
    expect(keys).toContain(`control_blocks.${cfg.nControlnetBlocks - 1}.after_proj.bias`);
    expect(keys).toContain('patch_embed_base.proj.weight');
    expect(keys.some((k) => k.startsWith('norm_out') || k.startsWith('proj_out'))).toBe(false);
    expect(() => parseControlNetConfig({ ...cfgJson, model_channels: cfgJson.model_channels + 1 })).toThrow(/model_channels .* must equal/);
    expect(() => parseControlNetConfig({ ...cfgJson, _class_name: 'CosmosTransformer3DModel' })).toThrow(ControlNetConfigError);
    expect(() => parseControlNetConfig({ ...cfgJson, attention_head_dim: 6, num_attention_heads: 2, model_channels: 12 })).toThrow(ControlNetConfigError);

    const loaded = await loadControlNet(dir);
    const c = await openCase(dir);
    const s = await sharedInputs(c);
    const ctrl = await c.get('input.controls_latents');
    const [B, , T, H, W] = ctrl.shape;
    const tooMany = F.zeros(cpu, [B, loaded.controlChannels + 1, T, H, W]);
    expect(() => loaded.forward({ ...s, controlsLatents: tooMany })).toThrow(/at most/);
    expect(() => loaded.forward({ ...s, controlsLatents: F.zeros(cpu, [B, 4, T, H + 2, W]) })).toThrow(ControlNetInputError);
    expect(() => loaded.forward({ ...s, conditionMask: null, controlsLatents: ctrl })).toThrow(/expects a condition_mask/);
    // fewer control channels are zero-padded: the explicit padding gives the same residuals
    const padded = F.concat([ctrl, F.zeros(cpu, [B, loaded.controlChannels - ctrl.shape[1], T, H, W])], 1);
    const a = loaded.forward({ ...s, controlsLatents: ctrl });
    const b = loaded.forward({ ...s, controlsLatents: padded });
    expect(await b[0].toArray()).toEqual(await a[0].toArray());
    loaded.dispose();
    await c.close();
  });
});

// ------------------------------------------------------------------ multi-control

describe('MultiControlNet', () => {
  const dir = byKind('controlnet.multi_control');
  let c: CaseData;
  let m0: CosmosControlNetModel;
  let m1: CosmosControlNetModel;
  let l0: Tensor;
  let l1: Tensor;
  let shared: Awaited<ReturnType<typeof sharedInputs>>;
  let grid: [number, number, number];

  beforeAll(async () => {
    c = await openCase(dir);
    m0 = await loadControlNet(dir, 'model.safetensors');
    m1 = await loadControlNet(dir, 'controlnet_1.safetensors');
    l0 = (await c.get('input.controls_latents')).keep();
    l1 = (await c.get('input.controls_latents_1')).keep();
    shared = await sharedInputs(c);
    const [, , T, H, W] = l0.shape;
    const [pt, ph, pw] = m0.config.patchSize;
    grid = [T / pt, H / ph, W / pw];
  });
  afterAll(async () => {
    m0.dispose();
    m1.dispose();
    await c.close();
  });

  it('a map filled with w gives the residuals of the scalar weight w; the sum is per block', async () => {
    const N = grid[0] * grid[1] * grid[2];
    const scalar = await MultiControlNet.create([{ name: 'depth', model: m0, latents: l0, weight: 0.3 }]);
    const map = await MultiControlNet.create([{ name: 'depth', model: m0, latents: l0, weight: { values: new Float32Array(N).fill(0.3), shape: [1, 1, ...grid] } }]);
    const a = scalar.residuals(shared);
    const b = map.residuals(shared);
    for (let k = 0; k < a.length; k++) expectClose(await b[k].read(), await a[k].read(), { atol: 1e-6, rtol: 1e-5 }, `residual ${k}`);
    const both = await MultiControlNet.create([{ name: 'depth', model: m0, latents: l0, weight: 0.3 }, { name: 'edge', model: m1, latents: l1, weight: 0.7 }]);
    expect(both.names).toEqual(['depth', 'edge']);
    const r1 = m1.forward({ ...shared, controlsLatents: l1, conditioningScale: 0.7 });
    const sum = both.residuals(shared);
    for (let k = 0; k < sum.length; k++) {
      const want = Array.from(await a[k].read());
      const r1k = await r1[k].read();
      expectClose(await sum[k].read(), want.map((v, i) => v + r1k[i]), { atol: 1e-6, rtol: 1e-5 }, `sum ${k}`);
    }
    for (const x of [scalar, map, both]) x.dispose();
  });

  it('refuses weight maps of the wrong shape, naming the control', async () => {
    const wrong = [[1, 1, grid[0], grid[1], grid[2] + 1], [1, 2, ...grid], [...grid], [2, 1, ...grid], [1, 1, grid[0], grid[1] * 2, grid[2] * 2]];
    for (const shape of wrong) {
      const n = shape.reduce((a, b) => a * b, 1);
      const err = await MultiControlNet.create([
        { name: 'depth', model: m0, latents: l0, weight: 0.2 },
        { name: 'edge', model: m1, latents: l1, weight: { values: new Float32Array(n).fill(0.1), shape } },
      ]).catch((e) => e);
      expect(err, JSON.stringify(shape)).toBeInstanceOf(ControlWeightError);
      expect(err.control).toBe('edge');
      expect(err.message).toMatch(/control "edge": weight map .* must be/);
    }
    // a tensor map is checked the same way
    const t = F.zeros(cpu, [1, 1, grid[0] + 1, grid[1], grid[2]]);
    await expect(MultiControlNet.create([{ name: 'seg', model: m1, latents: l1, weight: t }])).rejects.toThrow(/control "seg": weight map/);
    await expect(MultiControlNet.create([{ name: 'seg', model: m1, latents: l1, weight: -0.1 }])).rejects.toThrow(ControlWeightError);
  });

  it('refuses control latents whose size or frame count differs, naming the control', async () => {
    const [B, C, T, H, W] = l0.shape;
    const fewerFrames = F.zeros(cpu, [B, C, T - 1, H, W]);
    const smaller = F.zeros(cpu, [B, C, T, H - 2, W]);
    for (const bad of [fewerFrames, smaller]) {
      const err = await MultiControlNet.create([{ name: 'depth', model: m0, latents: l0 }, { name: 'edge', model: m1, latents: bad }]).catch((e) => e);
      expect(err).toBeInstanceOf(ControlShapeError);
      expect(err.control).toBe('edge');
      expect(err.message).toMatch(bad === fewerFrames ? /latent frames/ : /size and frame count/);
    }
    const err = await MultiControlNet.create([{ name: 'depth', model: m0, latents: l0 }, { name: 'depth', model: m1, latents: l1 }]).catch((e) => e);
    expect(err).toBeInstanceOf(MultiControlError);
    // the base latent must match too, at every denoiser call
    const multi = await MultiControlNet.create([{ name: 'depth', model: m0, latents: l0, weight: 0.5 }]);
    expect(() => multi.residuals({ ...shared, latents: F.zeros(cpu, [B, 16, T - 1, H, W]) })).toThrow(ControlShapeError);
    multi.dispose();
  });

  it(`caps the summed weights at ${CONTROL_WEIGHT_CAP}: refused by default, normalised on request`, async () => {
    const err = await MultiControlNet.create([
      { name: 'depth', model: m0, latents: l0, weight: 0.6 }, { name: 'edge', model: m1, latents: l1, weight: 0.5 },
    ]).catch((e) => e);
    expect(err).toBeInstanceOf(ControlWeightError);
    expect(err.message).toMatch(/sum to 1\.1 .*depth 0\.6 \+ edge 0\.5.*past the cap 1/);
    // exactly 1 (with float slack) is allowed
    const ok = await MultiControlNet.create([
      { name: 'a', model: m0, latents: l0, weight: 0.1 }, { name: 'b', model: m1, latents: l1, weight: 0.2 }, { name: 'c', model: m1, latents: l1, weight: 0.7 },
    ]);
    expect(ok.maxWeightSum).toBeCloseTo(1, 12);
    ok.dispose();
    // a map passing the cap at one token only: the error says where and names the controls
    const N = grid[0] * grid[1] * grid[2];
    const values = new Float32Array(N).fill(0.2);
    values[N - 1] = 0.9;
    const mapErr = await MultiControlNet.create([
      { name: 'depth', model: m0, latents: l0, weight: 0.4 }, { name: 'edge', model: m1, latents: l1, weight: { values, shape: [1, 1, ...grid] } },
    ]).catch((e) => e);
    expect(mapErr).toBeInstanceOf(ControlWeightError);
    expect(mapErr.message).toMatch(new RegExp(`sum to 1\\.3 at token \\(t ${grid[0] - 1}, h ${grid[1] - 1}, w ${grid[2] - 1}\\)`));
    // normalise: w / max(sum, 1) per location -> scalars 0.6, 0.5 become 0.6/1.1, 0.5/1.1
    const norm = await MultiControlNet.create([
      { name: 'depth', model: m0, latents: l0, weight: 0.6 }, { name: 'edge', model: m1, latents: l1, weight: 0.5 },
    ], { overCap: 'normalize' });
    const want = await MultiControlNet.create([
      { name: 'depth', model: m0, latents: l0, weight: 0.6 / 1.1 }, { name: 'edge', model: m1, latents: l1, weight: 0.5 / 1.1 },
    ]);
    const a = norm.residuals(shared);
    const b = want.residuals(shared);
    for (let k = 0; k < a.length; k++) expectClose(await a[k].read(), await b[k].read(), { atol: 1e-6, rtol: 1e-5 }, `normalised ${k}`);
    norm.dispose();
    want.dispose();
  });

  it('drives the base as a sampler denoiser (image context zeros when none is given)', async () => {
    const config = JSON.parse(readFileSync(join(dir, 'transformer_config.json'), 'utf8'));
    const { model: base } = await loadModule(CosmosTransformer3DFamily, join(dir, 'transformer.safetensors'), cpu, { config });
    const multi = await MultiControlNet.create([{ name: 'depth', model: m0, latents: l0, weight: 0.4 }]);
    const den = multi.denoiser(base);
    expect(den.config).toBe(base.config);
    const inputs = { hiddenStates: shared.latents, timestep: shared.timestep, encoderHiddenStates: shared.encoderHiddenStates, conditionMask: shared.conditionMask, paddingMask: shared.paddingMask };
    const got = await den.forward(inputs).read();
    const zerosImg = F.zeros(cpu, [1, base.config.imgContextNumTokens, base.config.imgContextDimIn!]);
    const r = m0.forward({ ...shared, imageContext: zerosImg, controlsLatents: l0, conditioningScale: 0.4 });
    const want = await base.forward({ ...inputs, imageContext: zerosImg, controlnetResiduals: r }).read();
    expectClose(got, want, { atol: 1e-6, rtol: 1e-5 }, 'denoiser');
    multi.dispose();
    base.dispose();
  });
});

describe('weight maps from files', () => {
  it('resize to the token grid: constants stay, same size is the identity, the first frame is kept apart', () => {
    const c = resizeWeightMap(new Float32Array(6 * 10).fill(0.25), [6, 10], [3, 2, 4]);
    expect(c.shape).toEqual([1, 1, 3, 2, 4]);
    expect([...c.values].every((v) => Math.abs(v - 0.25) < 1e-7)).toBe(true);
    const id = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i / 24);
    expect([...resizeWeightMap(id, [2, 3, 4], [2, 3, 4]).values]).toEqual([...id]);
    // 9 pixel frames -> 3 latent frames: frame 0 alone, frames 1..8 -> 2
    const frames = Float32Array.from({ length: 9 * 2 * 2 }, (_, i) => (Math.floor(i / 4) === 0 ? 1 : 0));
    const r = resizeWeightMap(frames, [9, 2, 2], [3, 1, 1]);
    expect([...r.values]).toEqual([1, 0, 0]);
    // 2x downsampling averages pairs (align_corners = False); negatives clamp to 0
    expect([...resizeWeightMap([0, 1, -4, -4], [1, 4], [1, 1, 2]).values]).toEqual([0.5, 0]);
    expect(() => resizeWeightMap([1, 2, 3], [2, 2], [1, 1, 1])).toThrow(ControlWeightError);
  });
});

// ------------------------------------------------------------------ the spec file

describe('Transfer spec files', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'cosmos-spec-'));
    for (const d of ['base', 'vae', 'cn_depth', 'cn_edge']) mkdirSync(join(tmp, d));
    for (const f of ['depth.y4m', 'edge.y4m', 'edge_w.safetensors', 'prompt.safetensors', 'notes.txt']) writeFileSync(join(tmp, f), '');
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  const good = () => ({
    base_checkpoint: 'base', tokenizer: 'vae', embeddings: 'prompt.safetensors', seed: 3, num_steps: 4, guidance: 2,
    controls: {
      depth: { input_control: 'depth.y4m', control_weight: 0.4, ckpt_path: 'cn_depth' },
      edge: { input_control: 'edge.y4m', control_weight: 'edge_w.safetensors', ckpt_path: 'cn_edge' },
    },
  });

  it('reads a valid spec, resolving paths against its folder', async () => {
    const file = join(tmp, 'spec.json');
    writeFileSync(file, JSON.stringify(good()));
    const s = await readTransferSpec(file);
    expect(s.file).toBe(file);
    expect(s.baseCheckpoint).toBe(join(tmp, 'base'));
    expect(s.controls.map((c) => c.name)).toEqual(['depth', 'edge']);
    expect(s.controls[0].weight).toBe(0.4);
    expect(s.controls[1].weight).toEqual({ path: join(tmp, 'edge_w.safetensors') });
    expect(s.controls[1].checkpoint).toBe(join(tmp, 'cn_edge'));
    expect([s.seed, s.numSteps, s.guidance, s.weightOverCap, s.numConditionalFrames]).toEqual([3, 4, 2, 'error', 0]);
    // Transfer 1 style: controls at the top level, weight default 0.5, numeric strings
    const t1 = await parseTransferSpec({
      base_checkpoint: 'base', tokenizer: 'vae', prompt: 'a robot',
      vis: { input_control: 'depth.y4m', ckpt_path: 'cn_depth' }, edge: { input_control: 'edge.y4m', control_weight: '0.25', ckpt_path: 'cn_edge' },
    }, tmp);
    expect(t1.controls.map((c) => [c.name, c.weight])).toEqual([['vis', DEFAULT_CONTROL_WEIGHT], ['edge', 0.25]]);
    expect(t1.prompt).toBe('a robot');
  });

  it('names the field at fault', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...good(), base_checkpoint: undefined }, 'base_checkpoint', /missing/],
      [{ ...good(), tokenizer: 7 }, 'tokenizer', /path string/],
      [{ ...good(), seeds: 1 }, 'seeds', /unknown field/],
      [{ ...good(), num_steps: 0 }, 'num_steps', /integer >= 1/],
      [{ ...good(), guidance: -1 }, 'guidance', />= 0/],
      [{ ...good(), weight_over_cap: 'clip' }, 'weight_over_cap', /"error" or "normalize"/],
      [{ ...good(), controls: {} }, 'controls', /no control/],
      [{ ...good(), controls: [] }, 'controls', /must be an object/],
      [{ ...good(), num_conditional_frames: 1 }, 'num_conditional_frames', /input_video_path/],
      [{ ...good(), controls: { edge: { input_control: 'edge.y4m', control_weight: 0.3 } } }, 'controls.edge.ckpt_path', /missing/],
      // edge, vis and depth may leave it out (computed from the raw clip); seg needs models cosmos-ts does not run
      [{ ...good(), controls: { seg: { control_weight: 0.3, ckpt_path: 'cn_edge' } } }, 'controls.seg.input_control', /needs GroundingDINO \+ SAM2/],
      [{ ...good(), controls: { hdmap: { control_weight: 0.3, ckpt_path: 'cn_edge' } } }, 'controls.hdmap.input_control', /only edge, vis, depth are computed/],
      [{ ...good(), resolution: '721' }, 'resolution', /unknown resolution "721"/],
      [{ ...good(), preset_edge_threshold: 'loud' }, 'preset_edge_threshold', /unknown preset "loud"/],
      [{ ...good(), num_video_frames_per_chunk: 0 }, 'num_video_frames_per_chunk', /integer >= 1/],
      [{ ...good(), controls: { edge: { input_control: 'edge.y4m', control_weight: -0.3, ckpt_path: 'cn_edge' } } }, 'controls.edge.control_weight', />= 0/],
      [{ ...good(), controls: { edge: { input_control: 'edge.y4m', control_weight: 'notes.txt', ckpt_path: 'cn_edge' } } }, 'controls.edge.control_weight', /\.safetensors/],
      [{ ...good(), controls: { edge: { input_control: 'edge.y4m', control_weight: 'gone.safetensors', ckpt_path: 'cn_edge' } } }, 'controls.edge.control_weight', /does not exist/],
      [{ ...good(), controls: { edge: { input_control: 'missing.y4m', ckpt_path: 'cn_edge' } } }, 'controls.edge.input_control', /does not exist/],
      [{ ...good(), controls: { edge: { input_control: 'edge.y4m', ckpt_path: 'edge.y4m' } } }, 'controls.edge.ckpt_path', /must be a folder/],
      [{ ...good(), controls: { edge: { input_control: 'edge.y4m', ckpt_path: 'cn_edge', weight: 1 } } }, 'controls.edge.weight', /unknown control field/],
      [{ ...good(), controls: { edge: 3 } }, 'controls.edge', /must be an object/],
      [{ ...good(), edge: { input_control: 'edge.y4m', ckpt_path: 'cn_edge' } }, 'edge', /given twice/],
    ];
    for (const [json, field, msg] of cases) {
      let err: unknown = null;
      try {
        await parseTransferSpec(JSON.parse(JSON.stringify(json)), tmp);
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(ControlSpecError);
      expect((err as ControlSpecError).field, (err as Error).message).toBe(field);
      expect((err as Error).message).toMatch(msg);
    }
    await expect(parseTransferSpec([], tmp)).rejects.toThrow(ControlSpecError);
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '{ not json');
    await expect(readTransferSpec(bad)).rejects.toThrow(/not valid JSON/);
    // paths are not checked when asked not to
    expect((await parseTransferSpec({ ...good(), base_checkpoint: 'nowhere' }, tmp, { checkFiles: false })).baseCheckpoint).toBe(join(tmp, 'nowhere'));
  });
});
