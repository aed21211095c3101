// The Cosmos DiT: every vendored dit case through the conformance runner on both backends, the 3D
// RoPE tables' properties, the released configurations (built from their configs, parameters
// counted from the declared shapes, nothing allocated), the schedules, the noise generator, the
// conditioning helpers, sharded loading and the input checks.
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCases, } from '../../src/conform/runner.js';
import { capture, loadWeights, plannedBytes } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { DiTConfigError, DiTInputError, parseCosmosTransformerConfig } from '../../src/models/dit/config.js';
import { blend, conditionIndicator, conditionTensors, latentFrames } from '../../src/models/dit/conditioning.js';
import { GaussianNoise } from '../../src/models/dit/noise.js';
import { RELEASED_DITS } from '../../src/models/dit/released.js';
import { Rope3DCache, patchGrid, rope3dTables, ropeAxisDims, ropeFrequencies, ropeThetas } from '../../src/models/dit/rope3d.js';
import { COSMOS1_EDM_SCHEDULER, edmPreconditioning, edmSchedule, sampleEdm } from '../../src/models/dit/samplers/edm.js';
import { PREDICT2_FLOW_EULER, flowEulerSchedule, sampleFlowEuler } from '../../src/models/dit/samplers/flow-euler.js';
import { PREDICT25_UNIPC, UniPCMultistepScheduler, sampleFlowUniPC } from '../../src/models/dit/samplers/unipc.js';
import { nearestIndices } from '../../src/models/dit/embed.js';
import { type CosmosTransformer3DModel, CosmosTransformer3DFamily } from '../../src/models/dit/transformer.js';
import { loadModule } from '../../src/models/load.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));
const DIT_CASES = await findCases([join(FIXTURES, 'dit')]);
const CONTROLNET_CASES = await findCases([join(FIXTURES, 'controlnet')]);

describe('DiT conformance cases', () => {
  it('finds the vendored cases', () => {
    expect(DIT_CASES.length).toBeGreaterThanOrEqual(5);
  });
  for (const dir of DIT_CASES) {
    it(`${dir.split('/').pop()} passes on the CPU backend`, async () => expectCasePasses(dir, cpu));
  }
  for (const dir of DIT_CASES) {
    it(`${dir.split('/').pop()} passes on the WebGPU backend`, async () => expectCasePasses(dir, await webgpu()));
  }
});

// ------------------------------------------------------------------ 3D RoPE

const f32 = Math.fround;

/** rotate-half RoPE of one head vector with a table row */
function rotate(x: number[], cos: Float32Array, sin: Float32Array, row: number): number[] {
  const d = x.length;
  const h = d / 2;
  return x.map((v, i) => v * cos[row * d + i] + (i < h ? -x[i + h] : x[i - h]) * sin[row * d + i]);
}

describe('3D RoPE tables', () => {
  const tiny = { headDim: 32, maxSize: [16, 32, 32] as const, patchSize: [1, 2, 2] as const, ropeScale: [2, 1, 1] as const };

  it('splits the head dim and scales the bases as the fact sheet says', () => {
    expect(ropeAxisDims(128)).toEqual({ t: 44, h: 42, w: 42 });
    expect(ropeAxisDims(32)).toEqual({ t: 12, h: 10, w: 10 });
    const th = ropeThetas(128, [2, 1, 1]);
    expect(th.t).toBeCloseTo(10000 * 2 ** (44 / 42), 6);
    expect(th.h).toBe(10000);
    expect(ropeThetas(128, [1, 3, 3]).h).toBeCloseTo(10000 * 3 ** (42 / 40), 6);
    expect(() => ropeAxisDims(8)).toThrow(DiTConfigError);
    expect(ropeAxisDims(12)).toEqual({ t: 4, h: 4, w: 4 });
  });

  it('frequencies fall from 1 geometrically', () => {
    const f = ropeFrequencies(44, 20000);
    expect(f[0]).toBe(1);
    for (let j = 1; j < f.length; j++) expect(f[j]).toBeLessThan(f[j - 1]);
    expect(f[21]).toBeCloseTo(1 / 20000 ** (42 / 44), 9);
  });

  it('are unit rotations, repeated over the two halves, identity at the origin, in (t, h, w) token order', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }),
      fc.constantFrom(null, 16, 24, 30), fc.constantFrom(32, 64, 128),
      (T, H, W, fps, headDim) => {
        const s = { ...tiny, headDim };
        const t = rope3dTables(s, [T, H, W], fps);
        const d = headDim;
        const half = d / 2;
        const dims = ropeAxisDims(d);
        const fT = ropeFrequencies(dims.t, ropeThetas(d, s.ropeScale).t);
        const fH = ropeFrequencies(dims.h, ropeThetas(d, s.ropeScale).h);
        expect(t.tokens).toBe(T * H * W);
        let worstNorm = 0;
        let halvesDiffer = 0;
        for (let n = 0; n < t.tokens; n++) {
          for (let j = 0; j < half; j++) {
            const c = t.cos[n * d + j];
            const sn = t.sin[n * d + j];
            worstNorm = Math.max(worstNorm, Math.abs(c * c + sn * sn - 1));
            if (t.cos[n * d + half + j] !== c || t.sin[n * d + half + j] !== sn) halvesDiffer++;
          }
        }
        expect(worstNorm).toBeLessThan(1e-6);
        expect(halvesDiffer).toBe(0);
        expect(Array.from(t.cos.subarray(0, d)).every((v) => v === 1)).toBe(true);
        expect(Array.from(t.sin.subarray(0, d)).every((v) => v === 0)).toBe(true);
        // token (ti, hi, wi) = n = (ti H + hi) W + wi: its temporal angles use t / fps * 24, its
        // height angles hi
        const ti = T - 1;
        const hi = H - 1;
        const n = (ti * H + hi) * W;
        const pos = fps === null ? ti : f32(f32(ti / fps) * 24);
        expect(t.cos[n * d + 1]).toBeCloseTo(Math.cos(f32(pos * fT[1])), 6);
        expect(t.cos[n * d + dims.t / 2 + 1]).toBeCloseTo(Math.cos(f32(hi * fH[1])), 6);
      },
    ), { numRuns: 60, seed: 11 });
  });

  it('makes attention scores depend only on relative positions', () => {
    const t = rope3dTables(tiny, [3, 6, 6], null);
    const d = 32;
    const rng = new GaussianNoise(3);
    const q = Array.from({ length: d }, () => rng.next());
    const k = Array.from({ length: d }, () => rng.next());
    const tok = (a: number, b: number, c: number) => (a * 6 + b) * 6 + c;
    const score = (p: number, r: number) => {
      const qr = rotate(q, t.cos, t.sin, p);
      const kr = rotate(k, t.cos, t.sin, r);
      return qr.reduce((s, v, i) => s + v * kr[i], 0);
    };
    // the same offset (1, 2, -1) from two different anchors
    expect(score(tok(0, 1, 3), tok(1, 3, 2))).toBeCloseTo(score(tok(1, 3, 4), tok(2, 5, 3)), 4);
  });

  it('fps 24 equals no fps; other fps scale the temporal positions only', () => {
    const a = rope3dTables(tiny, [3, 2, 2], 24);
    const b = rope3dTables(tiny, [3, 2, 2], null);
    expect(Array.from(a.cos)).toEqual(Array.from(b.cos));
    const c = rope3dTables(tiny, [3, 2, 2], 12);
    const dims = ropeAxisDims(32);
    // frame 1 at fps 12 sits at position 2: same angles as frame 2 without fps
    const row = (tbl: typeof a, n: number) => Array.from(tbl.cos.subarray(n * 32, n * 32 + dims.t / 2));
    expect(row(c, 4)).toEqual(row(b, 8));
  });

  it('refuses grids beyond the tables', () => {
    expect(() => rope3dTables(tiny, [17, 2, 2], null)).toThrow(DiTInputError);
    expect(() => rope3dTables(tiny, [1, 2, 2], 0)).toThrow(DiTInputError);
    expect(patchGrid([3, 8, 10], [1, 2, 2])).toEqual([3, 4, 5]);
  });

  it('are cached per (grid, fps) and backend', () => {
    const cache = new Rope3DCache(tiny);
    const a = cache.tables(cpu, [2, 2, 2], 30);
    expect(cache.tables(cpu, [2, 2, 2], 30)).toBe(a);
    expect(cache.tables(cpu, [2, 2, 2], null)).not.toBe(a);
    expect(cache.size).toBe(2);
    cache.clear();
    expect(a.cos.isDisposed).toBe(true);
    expect(cache.size).toBe(0);
  });
});

// ------------------------------------------------------------------ released configurations

/** Parameters of a released config, counted independently of the module tree. */
function expectedParameters(c: Record<string, unknown>): number {
  const heads = c.num_attention_heads as number;
  const hd = c.attention_head_dim as number;
  const D = heads * hd;
  const L = c.adaln_lora_dim as number;
  const text = c.text_embed_dim as number;
  const layers = c.num_layers as number;
  const img = c.img_context_dim_in as number | undefined;
  const perBlock = 3 * (D * L + L * 3 * D) + (4 * D * D + 2 * hd) + (2 * D * D + 2 * text * D + 2 * hd) + 2 * D * 4 * D
    + (img ? 3 * D * D + 2 * hd : 0);
  let top = D * ((c.in_channels as number) + 1) * 4 + 4 * D * D + D + (D * L + L * 2 * D) + D * 4 * 16;
  if (c.extra_pos_embed_type === 'learnable') top += (128 + 120 + 120) * D;
  if (c.use_crossattn_projection) top += (c.crossattn_proj_in_channels as number) * 1024 + 1024;
  if (img) top += img * 2048 + 2048;
  return layers * perBlock + top;
}

describe('released DiT configurations', () => {
  it('build from their configs; parameter counts and bf16 memory from the declared shapes', () => {
    const rows: string[] = [];
    for (const [name, r] of Object.entries(RELEASED_DITS)) {
      const model = CosmosTransformer3DFamily.build(r.config);
      const n = model.parameterCount();
      expect(n, name).toBe(expectedParameters(r.config));
      // nothing was allocated
      for (const p of model.parameters()) expect(p.loaded).toBe(false);
      rows.push(`${name.padEnd(40)} ${(n / 1e9).toFixed(3)} B params  ${(2 * n / 2 ** 30).toFixed(2)} GiB bf16`);
    }
    console.log(`released DiT sizes:\n  ${rows.join('\n  ')}`);
    const size = (k: string) => CosmosTransformer3DFamily.build(RELEASED_DITS[k].config).parameterCount();
    expect(size('Cosmos-1.0-Diffusion-7B-Text2World')).toBe(7_236_192_256);
    expect(size('Cosmos-1.0-Diffusion-14B-Text2World')).toBe(14_267_149_312);
    expect(size('Cosmos-Predict2-2B-Video2World')).toBe(1_956_413_440);
    expect(size('Cosmos-Predict2.5-2B')).toBe(2_059_174_912);
    expect(size('Cosmos-Predict2.5-14B')).toBe(14_368_047_104);
  });

  it('parse the diffusers config fields and refuse bad ones', () => {
    const c = parseCosmosTransformerConfig(RELEASED_DITS['Cosmos-Predict2.5-2B'].config);
    expect(c.useCrossattnProjection).toBe(true);
    expect(c.extraPosEmbedType).toBeNull();
    expect(c.ropeScale).toEqual([1, 3, 3]);
    expect(parseCosmosTransformerConfig({}).numLayers).toBe(28);
    expect(() => parseCosmosTransformerConfig({ extra_pos_embed_type: 'sincos' })).toThrow(DiTConfigError);
    expect(() => parseCosmosTransformerConfig({ attention_head_dim: 8 })).toThrow(DiTConfigError);
    expect(() => parseCosmosTransformerConfig({ use_crossattn_projection: true, encoder_hidden_states_channels: 512 })).toThrow(DiTConfigError);
    expect(() => parseCosmosTransformerConfig({ patch_size: [1, 2] })).toThrow(DiTConfigError);
  });
});

// ------------------------------------------------------------------ loading, inputs

const C1 = join(FIXTURES, 'dit', 'cosmos1_forward');
const C2 = join(FIXTURES, 'dit', 'cosmos2_forward');

async function loadCase(dir: string): Promise<CosmosTransformer3DModel> {
  const model = CosmosTransformer3DFamily.build(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const src = await openSafetensors(join(dir, 'model.safetensors'));
  try {
    expect(plannedBytes(model, src)).toBeGreaterThan(0);
    await loadWeights(model, src, cpu);
  } finally {
    await src.close();
  }
  return model;
}

describe('CosmosTransformer3DModel loading and inputs', () => {
  it('keeps bf16 checkpoints in bf16 and plans their bytes before allocating', async () => {
    const model = CosmosTransformer3DFamily.build(JSON.parse(readFileSync(join(C2, 'config.json'), 'utf8')));
    const src = await openSafetensors(join(C2, 'model.safetensors'));
    const planned = plannedBytes(model, src);
    expect(planned).toBe(2 * model.parameterCount());
    const report = await loadWeights(model, src, cpu);
    await src.close();
    expect(report.bytes).toBe(planned);
    for (const p of model.parameters()) expect(p.t.dtype).toBe('bf16');
    model.dispose();
  });

  it('loads a sharded diffusers folder (index + shards) to the same output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dit-shards-'));
    try {
      const src = await openSafetensors(join(C1, 'model.safetensors'));
      const names = [...src.names];
      const shards = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
      const weightMap: Record<string, string> = {};
      for (let s = 0; s < 2; s++) {
        const file = `diffusion_pytorch_model-0000${s + 1}-of-00002.safetensors`;
        const tensors: Record<string, { dtype: 'F32'; shape: number[]; raw: Uint8Array }> = {};
        for (const n of shards[s]) {
          tensors[n] = { dtype: 'F32', shape: [...src.info(n).shape], raw: await src.readBytes(n) };
          weightMap[n] = file;
        }
        await writeSafetensors(join(dir, file), tensors);
      }
      await src.close();
      writeFileSync(join(dir, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
      writeFileSync(join(dir, 'config.json'), readFileSync(join(C1, 'config.json')));
      const { model, plannedBytes, report } = await loadModule(CosmosTransformer3DFamily, dir, cpu);
      expect(report.bytes).toBe(plannedBytes);
      expect(plannedBytes).toBe(4 * model.parameterCount());
      await expect(loadModule(CosmosTransformer3DFamily, dir, cpu, { maxBytes: 1000 })).rejects.toThrow(/GiB/);
      const reference = await loadCase(C1);
      const cs = await openSafetensors(join(C1, 'case.safetensors'));
      const get = async (n: string) => { const t = await cs.read(`input.${n}`); return F.fromRaw(cpu, t.raw, t.shape, t.dtype); };
      const inputs = {
        hiddenStates: await get('hidden_states'), timestep: await get('timestep'), encoderHiddenStates: await get('encoder_hidden_states'),
        paddingMask: await get('padding_mask'), fps: 30,
      };
      await cs.close();
      expect(await model.forward(inputs).toArray()).toEqual(await reference.forward(inputs).toArray());
      model.dispose();
      reference.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks its inputs with messages that say what is expected', async () => {
    const model = await loadCase(C2);
    const x = F.zeros(cpu, [1, 4, 2, 8, 8]);
    const text = F.zeros(cpu, [1, 3, 48]);
    const mask = F.zeros(cpu, [1, 1, 2, 8, 8]);
    const ts = F.zeros(cpu, [1, 1, 2, 1, 1]);
    expect(() => model.forward({ hiddenStates: x, timestep: ts, encoderHiddenStates: text })).toThrow(/expects a condition_mask/);
    expect(() => model.forward({ hiddenStates: x, timestep: F.zeros(cpu, [1, 1, 3, 1, 1]), encoderHiddenStates: text, conditionMask: mask })).toThrow(DiTInputError);
    expect(() => model.forward({ hiddenStates: x, timestep: ts, encoderHiddenStates: F.zeros(cpu, [1, 3, 32]), conditionMask: mask })).toThrow(/crossattn_proj_in_channels/);
    expect(() => model.forward({ hiddenStates: x, timestep: ts, encoderHiddenStates: text, conditionMask: mask, paddingMask: F.zeros(cpu, [2, 1, 8, 8]) })).toThrow(/padding_mask/);
    expect(() => model.forward({ hiddenStates: F.zeros(cpu, [1, 4, 2, 7, 8]), timestep: ts, encoderHiddenStates: text, conditionMask: mask })).toThrow(/multiples/);
    // a shared [1] timestep and a per-frame one with equal values agree; an absent padding mask is zeros
    const out5 = await model.forward({ hiddenStates: x, timestep: F.full(cpu, [1, 1, 2, 1, 1], 0.3), encoderHiddenStates: text, conditionMask: mask, paddingMask: F.zeros(cpu, [1, 1, 64, 64]) }).toArray();
    const out1 = await model.forward({ hiddenStates: x, timestep: F.full(cpu, [1], 0.3), encoderHiddenStates: text, conditionMask: mask }).toArray();
    out1.forEach((v, i) => { expect(v).toBeCloseTo(out5[i], 5); });
    // the MLP processed in token chunks gives the same result
    model.ffChunkTokens = 5;
    const chunked = await model.forward({ hiddenStates: x, timestep: F.full(cpu, [1], 0.3), encoderHiddenStates: text, conditionMask: mask }).toArray();
    chunked.forEach((v, i) => { expect(v).toBeCloseTo(out1[i], 6); });
    model.dispose();
  });

  it('resizes the padding mask with torch NEAREST indices', () => {
    expect(Array.from(nearestIndices(64, 8))).toEqual([0, 8, 16, 24, 32, 40, 48, 56]);
    expect(Array.from(nearestIndices(5, 3))).toEqual([0, 1, 3]);
    expect(Array.from(nearestIndices(4, 8))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });

  it('records taps at the diffusers module paths', async () => {
    const model = await loadCase(C1);
    const { taps } = await capture('all', () => model.forward({
      hiddenStates: F.zeros(cpu, [1, 4, 1, 4, 4]), timestep: F.zeros(cpu, [1]), encoderHiddenStates: F.zeros(cpu, [1, 2, 32]), fps: 24,
    }));
    const paths = new Set(taps.records.map((r) => r.path));
    for (const p of ['patch_embed', 'rope.cos', 'learnable_pos_embed', 'time_embed.temb', 'transformer_blocks.0.attn1', 'transformer_blocks.0.attn2',
      'transformer_blocks.0.ff', 'transformer_blocks.0.norm1', 'transformer_blocks.1', 'norm_out', 'proj_out']) {
      expect(paths.has(p), p).toBe(true);
    }
    taps.dispose();
    model.dispose();
  });
});

// The Transfer2.5 fixtures record the base transformer's prediction from given ControlNet
// residuals: that exercises the image-context cross-attention and the residual injection.
describe('the base DiT of Transfer2.5 (image context, ControlNet residuals)', () => {
  const dirs = CONTROLNET_CASES.filter((d) => JSON.parse(readFileSync(join(d, 'case.json'), 'utf8')).kind === 'controlnet.transfer');
  for (const dir of dirs) {
    it(`reproduces ${dir.split('/').pop()}'s predictions from its recorded residuals`, async () => {
      const cj = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
      const model = CosmosTransformer3DFamily.build(JSON.parse(readFileSync(join(dir, 'transformer_config.json'), 'utf8')));
      const w = await openSafetensors(join(dir, 'transformer.safetensors'));
      await loadWeights(model, w, cpu);
      await w.close();
      const cs = await openSafetensors(join(dir, 'case.safetensors'));
      const get = async (n: string) => { const t = await cs.read(n); return F.fromRaw(cpu, t.raw, t.shape, t.dtype); };
      const residualNames = cs.names.filter((n) => /^input\.residual\.\d+$/.test(n)).sort();
      const inputs = {
        hiddenStates: await get('input.latents'), timestep: await get('input.timestep'), encoderHiddenStates: await get('input.text_context'),
        imageContext: await get('input.img_context'), conditionMask: await get('input.condition_mask'), paddingMask: await get('input.padding_mask'),
        fps: cj.args?.fps ?? null,
      };
      const { atol, rtol } = cj.tolerance;
      const check = async (got: number[], name: string) => {
        const want = (await cs.read(`output.${name}`)).raw as Float32Array;
        got.forEach((g, i) => { expect(Math.abs(g - want[i]), `${name}[${i}]`).toBeLessThanOrEqual(atol + rtol * Math.abs(want[i])); });
      };
      const residuals = await Promise.all(residualNames.map(get));
      await check(await model.forward({ ...inputs, controlnetResiduals: residuals }).toArray(), 'prediction');
      if (cs.has('output.prediction_no_control')) await check(await model.forward(inputs).toArray(), 'prediction_no_control');
      await cs.close();
      model.dispose();
    });
  }
});

// ------------------------------------------------------------------ schedules and samplers

describe('sampling schedules', () => {
  it('EDM: Karras sigmas from sigma_max to sigma_min, final sigma repeated, timesteps 0.25 ln sigma', () => {
    const { sigmas, timesteps } = edmSchedule(COSMOS1_EDM_SCHEDULER, 36);
    expect(sigmas.length).toBe(37);
    expect(sigmas[0]).toBe(f32(80));
    expect(sigmas[35]).toBe(f32(0.002));
    expect(sigmas[36]).toBe(sigmas[35]);
    for (let i = 1; i < 36; i++) expect(sigmas[i]).toBeLessThan(sigmas[i - 1]);
    timesteps.forEach((t, i) => { expect(t).toBeCloseTo(0.25 * Math.log(sigmas[i]), 6); });
    const zero = edmSchedule({ ...COSMOS1_EDM_SCHEDULER, finalSigmasType: 'zero' }, 4);
    expect(zero.sigmas[4]).toBe(0);
    const p = edmPreconditioning(0.5, COSMOS1_EDM_SCHEDULER);
    expect(p.cIn).toBeCloseTo(1 / Math.sqrt(0.5), 6);
    expect(p.cSkip).toBeCloseTo(0.5, 6);
  });

  it('UniPC (Predict2.5): flow sigmas s/(1+s) of Karras sigmas 200 -> 0.01, final 0, integer timesteps', () => {
    const sched = new UniPCMultistepScheduler(PREDICT25_UNIPC);
    const { sigmas, timesteps } = sched.setTimesteps(36);
    expect(sigmas[0]).toBe(f32(200 / 201));
    expect(sigmas[35]).toBe(f32(0.01 / 1.01));
    expect(sigmas[36]).toBe(0);
    expect(timesteps[0]).toBe(995);
    expect(timesteps[35]).toBe(9);
    sched.dispose();
  });

  it('UniPC: the last step (order 1, sigma 0) lands on the x0 prediction', async () => {
    const sched = new UniPCMultistepScheduler({ ...PREDICT25_UNIPC, useKarrasSigmas: false });
    const { sigmas } = sched.setTimesteps(1);
    const x = F.fromArray(cpu, [1, 2, 3], [3]);
    const v = F.fromArray(cpu, [0.5, -1, 2], [3]);
    const out = await sched.step(v, x).toArray();
    out.forEach((o, i) => { expect(o).toBeCloseTo([1, 2, 3][i] - sigmas[0] * [0.5, -1, 2][i], 5); });
    sched.dispose();
  });

  it('Predict2 flow Euler: EDM-range Karras sigmas, last dt = 0', () => {
    const { sigmas, timesteps } = flowEulerSchedule(PREDICT2_FLOW_EULER, 35);
    expect(sigmas[0]).toBe(f32(80));
    expect(sigmas[35]).toBe(sigmas[34]);
    expect(timesteps[0]).toBe(f32(80000));
  });
});

describe('samplers drive the tiny models (CPU)', () => {
  it('run every loop with a step callback; video2world keeps the conditioning frames in x0', async () => {
    const m1 = await loadCase(C1);
    const m2 = await loadCase(C2);
    const noise = new GaussianNoise('dit-test');
    const steps: number[] = [];
    const onStep = (s: { step: number; steps: number }) => { steps.push(s.step); expect(s.steps).toBe(3); };
    const text1 = noise.tensor(cpu, [1, 4, 32]);
    const r1 = await sampleEdm(m1, { noise: noise.tensor(cpu, [1, 4, 2, 4, 4]), promptEmbeds: text1, negativePromptEmbeds: F.zeros(cpu, [1, 4, 32]), steps: 3, onStep });
    expect(steps).toEqual([0, 1, 2]);
    expect(r1.latents.shape).toEqual([1, 4, 2, 4, 4]);
    // no guidance: one pass per step, no negative prompt needed
    const r1b = await sampleEdm(m1, { noise: noise.tensor(cpu, [1, 4, 2, 4, 4]), promptEmbeds: text1, guidanceScale: 1, steps: 2 });
    expect((await r1b.latents.toArray()).every(Number.isFinite)).toBe(true);
    await expect(sampleEdm(m1, { noise: noise.tensor(cpu, [1, 4, 2, 4, 4]), promptEmbeds: text1, steps: 2 })).rejects.toThrow(/negative/);
    // a pipeline can stop a run between steps
    const ac = new AbortController();
    await expect(sampleEdm(m1, {
      noise: noise.tensor(cpu, [1, 4, 2, 4, 4]), promptEmbeds: text1, guidanceScale: 1, steps: 4, signal: ac.signal,
      onStep: () => ac.abort(new Error('stopped by the user')),
    })).rejects.toThrow(/stopped by the user/);

    const text2 = noise.tensor(cpu, [1, 3, 48]);
    const cond = noise.tensor(cpu, [1, 4, 3, 4, 4]);
    const r2 = await sampleFlowUniPC(m2, {
      noise: noise.tensor(cpu, [1, 4, 3, 4, 4]), promptEmbeds: text2, negativePromptEmbeds: F.zeros(cpu, [1, 3, 48]), steps: 3,
      conditioning: { latents: cond, numCondLatentFrames: 1 }, onStep,
    });
    expect(r2.latents.shape).toEqual([1, 4, 3, 4, 4]);
    expect(cond.isDisposed).toBe(false);

    const x0Frames: number[][] = [];
    const r3 = await sampleFlowEuler(m2, {
      noise: noise.tensor(cpu, [1, 4, 3, 4, 4]), promptEmbeds: text2, negativePromptEmbeds: F.zeros(cpu, [1, 3, 48]), steps: 3,
      conditioning: { latents: cond, numCondLatentFrames: 1 },
      onStep: async (s) => { x0Frames.push(await s.latents.toArray()); },
    });
    // with sigma_min at the end the last Euler step has dt = 0
    expect(await r3.latents.toArray()).toEqual(x0Frames[2]);
    expect(x0Frames[2]).toEqual(x0Frames[1]);
    for (const t of [r1.latents, r1b.latents, r2.latents, r3.latents]) t.dispose();
    m1.dispose();
    m2.dispose();
  });
});

describe('noise and conditioning helpers', () => {
  it('seeded Gaussian noise is deterministic with unit moments', () => {
    const a = new GaussianNoise(42).fill(20000);
    const b = new GaussianNoise(42).fill(20000);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(new GaussianNoise(43).fill(4))).not.toEqual(Array.from(a.subarray(0, 4)));
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('condition indicator, mask and blend', async () => {
    expect(latentFrames(93, 4)).toBe(24);
    expect(latentFrames(5, 4)).toBe(2);
    expect(latentFrames(1, 4)).toBe(1);
    expect(Array.from(conditionIndicator(2, 3, [1, 2]))).toEqual([1, 0, 0, 1, 1, 0]);
    expect(() => conditionIndicator(1, 3, 4)).toThrow(DiTInputError);
    const ct = conditionTensors(cpu, [1, 2, 3, 1, 2], 2);
    expect(ct.mask.shape).toEqual([1, 1, 3, 1, 2]);
    expect(await ct.mask.toArray()).toEqual([1, 1, 1, 1, 0, 0]);
    const a = F.full(cpu, [1, 1, 3, 1, 2], 5);
    const b = F.full(cpu, [1, 1, 3, 1, 2], -1);
    expect(await blend(ct.mask, a, b).toArray()).toEqual([5, 5, 5, 5, -1, -1]);
  });
});
