// Cosmos tokenizers: conformance of every vendored tokenizer case (CPU and WebGPU), the Haar
// patchers, FSQ, input/config/checkpoint errors, the released configs, streaming encode.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type CpuBackend, cpu } from '../../src/engine/cpu/backend.js';
import { CheckpointMismatchError, type Module, type TensorSource } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { type Tensor, numel, scope } from '../../src/engine/tensor.js';
import { findCases, runCase } from '../../src/conform/runner.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import { AutoencoderKLCosmos, cosmosToDiffusersName, denormalizeLatent, latentStats, normalizeLatent } from '../../src/models/tokenizer/diffusers.js';
import { TokenizerConfigError, TokenizerInputError } from '../../src/models/tokenizer/errors.js';
import { FSQuantizer } from '../../src/models/tokenizer/fsq.js';
import { ContinuousImageTokenizer, DiscreteImageTokenizer } from '../../src/models/tokenizer/image.js';
import { buildTokenizer, loadTokenizer, loadTokenizerWeights } from '../../src/models/tokenizer/load.js';
import { RELEASED_TOKENIZERS } from '../../src/models/tokenizer/released.js';
import { VideoEncoderStream } from '../../src/models/tokenizer/stream.js';
import { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from '../../src/models/tokenizer/video.js';
import { Patcher, Patcher3D, UnPatcher, UnPatcher3D } from '../../src/models/tokenizer/wavelet.js';
import { countingCpu, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/tokenizer', import.meta.url));
const CASES = await findCases([FIXTURES]);
const caseDir = (name: string) => CASES.find((c) => c.endsWith(`/${name}`))!;
const readConfig = (dir: string) => JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')) as Record<string, unknown>;

/** Deterministic values in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Random weights: norm scales near 1, convs scaled by 1/sqrt(fan-in). */
function randomize(model: Module, backend: CpuBackend | typeof cpu, seed: number): void {
  let k = seed;
  for (const p of model.parameters()) {
    const n = numel(p.shape);
    const r = rand(n, k++);
    const isNorm = /norm/.test(p.key) && p.shape.length === 1;
    const fanIn = p.shape.length > 1 ? numel(p.shape.slice(1)) : 1;
    const v = r.map((x) => (isNorm ? (p.name === 'weight' ? 1 + 0.2 * x : 0.2 * x) : p.shape.length === 1 ? 0.1 * x : (1.7 * x) / Math.sqrt(fanIn)));
    p.set(F.fromArray(backend, v, p.shape));
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// ------------------------------------------------------------------ conformance

describe('tokenizer conformance (vendored fixtures)', () => {
  it('finds the tokenizer cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(6);
  });

  for (const dir of CASES) {
    const name = dir.split('/').pop()!;
    it(`cpu: ${name}`, async () => {
      const r = await runCase(dir, cpu);
      expect(r.error).toBeNull();
      for (const [k, o] of Object.entries(r.outputs)) expect(o.pass, `output ${k}: ${JSON.stringify(o)}`).toBe(true);
      for (const [k, o] of Object.entries(r.taps)) expect(o.pass, `tap ${k}: ${JSON.stringify(o)}`).toBe(true);
      expect(r.pass).toBe(true);
    });
  }

  for (const dir of CASES) {
    const name = dir.split('/').pop()!;
    it(`webgpu: ${name}`, async () => {
      const r = await runCase(dir, await webgpu());
      expect(r.error).toBeNull();
      for (const [k, o] of Object.entries(r.outputs)) expect(o.pass, `output ${k}: ${JSON.stringify(o)}`).toBe(true);
      for (const [k, o] of Object.entries(r.taps)) expect(o.pass, `tap ${k}: ${JSON.stringify(o)}`).toBe(true);
      expect(r.pass).toBe(true);
    }, 900_000); // the first run compiles every kernel; on a software adapter with a cold shader cache that takes minutes
  }
});

// ------------------------------------------------------------------ wavelets

describe('Haar patchers', () => {
  it('3D: LLL band is the block mean, the first frame is repeated, unpatch inverts', async () => {
    const shape = [1, 2, 9, 8, 8];
    const x = F.fromArray(cpu, rand(numel(shape), 1), shape);
    const p = new Patcher3D(4);
    const y = p.forward(x);
    expect(y.shape).toEqual([1, 2 * 64, 3, 2, 2]);
    const xv = await x.read();
    const yv = await y.read();
    // band 0 of both levels, channel c: mean of the 4x4x4 block (frames [x0 x0 x0 x0], then 4 each)
    const frames = [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]];
    for (let c = 0; c < 2; c++) {
      for (let t = 0; t < 3; t++) {
        let s = 0;
        for (const f of frames[t]) for (let h = 0; h < 4; h++) for (let w = 0; w < 4; w++) s += xv[((c * 9 + f) * 8 + h) * 8 + w];
        expect(yv[(c * 3 + t) * 4]).toBeCloseTo(s / 64, 5);
      }
    }
    // a high band: channel index band2*(8C) + band1*C + c with band1 = HHH (7), band2 = 0
    const c = 1;
    const ch = 7 * 2 + c;
    let s = 0;
    for (let t2 = 0; t2 < 4; t2++) {
      const f = frames[1][t2];
      for (let h = 0; h < 4; h++) {
        for (let w = 0; w < 4; w++) {
          const sign = (f % 2 === 1 ? 1 : -1) * (h % 2 ? -1 : 1) * (w % 2 ? -1 : 1);
          s += sign * xv[((c * 9 + f) * 8 + h) * 8 + w];
        }
      }
    }
    // frames 1..4 sit at patched positions 4..7: t parity = (f - 1 + 4) % 2 -> odd frames are even positions
    expect(yv[(ch * 3 + 1) * 4]).toBeCloseTo(s / 64, 5);
    const back = new UnPatcher3D(4).forward(y);
    expect(back.shape).toEqual(shape);
    expect(maxAbsDiff(await back.read(), xv)).toBeLessThan(1e-5);
  });

  it('2D: band order LL, LH, HL, HH with the first letter the width filter; unpatch inverts', async () => {
    const shape = [2, 3, 8, 12];
    const x = F.fromArray(cpu, rand(numel(shape), 2), shape);
    const y = new Patcher(2).forward(x);
    expect(y.shape).toEqual([2, 12, 4, 6]);
    const xv = await x.read();
    const yv = await y.read();
    const at = (b: number, c: number, h: number, w: number) => xv[((b * 3 + c) * 8 + h) * 12 + w];
    const b = 1;
    const c = 2;
    const [i, j] = [1, 3];
    const [a, bb, cc, d] = [at(b, c, 2 * i, 2 * j), at(b, c, 2 * i, 2 * j + 1), at(b, c, 2 * i + 1, 2 * j), at(b, c, 2 * i + 1, 2 * j + 1)];
    const band = (k: number) => yv[((b * 12 + k * 3 + c) * 4 + i) * 6 + j];
    expect(band(0)).toBeCloseTo((a + bb + cc + d) / 4, 6);
    expect(band(1)).toBeCloseTo((a + bb - cc - d) / 4, 6); // W low, H high
    expect(band(2)).toBeCloseTo((a - bb + cc - d) / 4, 6); // W high, H low
    expect(band(3)).toBeCloseTo((a - bb - cc + d) / 4, 6);
    const y4 = new Patcher(4).forward(x);
    const back = new UnPatcher(4).forward(y4);
    expect(maxAbsDiff(await back.read(), xv)).toBeLessThan(1e-5);
  });
});

// ------------------------------------------------------------------ FSQ

describe('FSQ', () => {
  it('indices -> codes -> quantise round-trips over the whole vocabulary', async () => {
    const levels = [8, 8, 8, 5, 5, 5];
    const q = new FSQuantizer(levels);
    expect(q.vocabSize).toBe(64000);
    const n = q.vocabSize;
    const ids = Int32Array.from({ length: n }, (_, i) => i);
    const idT = F.fromArray(cpu, ids, [1, n, 1], 'i32');
    const codes = q.indicesToCodes(idT);
    expect(codes.shape).toEqual([1, 6, n, 1]);
    const cv = await codes.read();
    // host reference: digit_j = (i // basis_j) % L_j, code = (digit - L//2) / (L//2)
    const z = new Float32Array(6 * n);
    const want = new Float32Array(6 * n);
    for (let j = 0; j < 6; j++) {
      const L = levels[j];
      const hw = Math.floor(L / 2);
      const basis = levels.slice(0, j).reduce((a, b) => a * b, 1);
      for (let i = 0; i < n; i++) {
        const code = (Math.floor(i / basis) % L - hw) / hw;
        want[j * n + i] = code;
        // a pre-quantisation value landing exactly on that level
        const half = ((L - 1) * 1.001) / 2;
        const off = L % 2 === 0 ? 0.5 : 0;
        z[j * n + i] = Math.atanh((code * hw + off) / half) - Math.atanh(off / half);
      }
    }
    expect(maxAbsDiff(cv, want)).toBe(0);
    // every code vector is distinct and every level value occurs
    expect(new Set(Array.from({ length: n }, (_, i) => [0, 1, 2, 3, 4, 5].map((j) => cv[j * n + i]).join())).size).toBe(n);
    const r = q.quantize(F.fromArray(cpu, z, [1, 6, n, 1]));
    expect(r.indices.dtype).toBe('i32');
    expect(r.indices.shape).toEqual([1, n, 1]);
    expect(Array.from(await r.indices.read())).toEqual(Array.from(ids));
    expect(maxAbsDiff(await r.codes.read(), cv)).toBe(0);
  });

  it('rounds half to even like torch.round', async () => {
    const q = new FSQuantizer([5]);
    // bounded values 0.5 and 1.5 exactly (L = 5: offset 0, half_l = 2.002)
    const z = [0.5, 1.5, -0.5].map((b) => Math.atanh(b / 2.002));
    const { codes } = q.quantize(F.fromArray(cpu, z, [1, 1, 3]));
    const c = Array.from(await codes.read());
    // tanh(atanh(b)) may be off by an ulp; accept only the two neighbours of a tie
    expect([0, 0.5]).toContain(c[0]);
    expect([0.5, 1]).toContain(c[1]);
  });
});

// ------------------------------------------------------------------ released configs

describe('released configs', () => {
  const expected: Record<string, [number, typeof CausalContinuousVideoTokenizer | typeof CausalDiscreteVideoTokenizer | typeof ContinuousImageTokenizer | typeof DiscreteImageTokenizer]> = {
    CV8x8x8: [105_653_696, CausalContinuousVideoTokenizer],
    CV4x8x8: [85_783_232, CausalContinuousVideoTokenizer],
    DV8x16x16: [110_898_294, CausalDiscreteVideoTokenizer],
    DV4x8x8: [104_669_558, CausalDiscreteVideoTokenizer],
    CI8x8: [76_789_472, ContinuousImageTokenizer],
    DI8x8: [79_004_342, DiscreteImageTokenizer],
  };
  for (const [name, [count, cls]] of Object.entries(expected)) {
    it(`${name} builds from its config with ${count.toLocaleString('en')} parameters, nothing allocated`, () => {
      const m = buildTokenizer(RELEASED_TOKENIZERS[name].config as Record<string, unknown>);
      expect(m).toBeInstanceOf(cls);
      expect(m.parameterCount()).toBe(count);
      expect(RELEASED_TOKENIZERS[name].parameters).toBe(count);
      for (const p of m.parameters()) expect(p.loaded).toBe(false);
    });
  }

  it('CV4x8x8 decoder uses channels_mult [2, 4]; unused resampler convs are not declared', () => {
    const cv4 = buildTokenizer(RELEASED_TOKENIZERS.CV4x8x8.config as Record<string, unknown>) as CausalContinuousVideoTokenizer;
    expect(cv4.decoder.up.length).toBe(2);
    expect(cv4.encoder.down.length).toBe(3);
    const keys = new Set([...cv4.parameters()].map((p) => p.key));
    expect(keys.has('decoder.up.1.upsample.conv2.conv3d.weight')).toBe(true);
    expect(keys.has('decoder.up.1.upsample.conv1.conv3d.weight')).toBe(false);
    expect(keys.has('encoder.down.0.downsample.conv2.conv3d.weight')).toBe(false);
    expect([...keys].some((k) => k.startsWith('encoder.down.1.downsample'))).toBe(false);
  });

  it('the default diffusers config is CV8x8x8 under diffusers names', () => {
    const d = new AutoencoderKLCosmos({ _class_name: 'AutoencoderKLCosmos' });
    expect(d.parameterCount()).toBe(105_653_696);
    const names = [...d.parameters()].map((p) => d.diffusersName(p.key));
    expect(names).toContain('encoder.down_blocks.0.resnets.0.conv1.conv_s.weight');
    expect(names).toContain('decoder.up_blocks.1.upsamplers.0.conv1.weight');
    expect(names).toContain('encoder.mid_block.temp_attentions.0.to_out.0.weight');
    expect(names).toContain('post_quant_conv.weight');
    expect(cosmosToDiffusersName('decoder.up.0.block.2.nin_shortcut.conv3d.bias', 3)).toBe('decoder.up_blocks.2.resnets.2.conv_shortcut.bias');
  });

  it('latent normalisation: (z - mean) * sigma / std over the leading frames, and its inverse', async () => {
    const mean = [0.1, 0.2, 0.3, 0.4, -0.1, -0.2, -0.3, -0.4]; // 2 channels x 4 frames, channel-major
    const std = [1, 2, 4, 8, 0.5, 0.25, 1, 2];
    const stats = latentStats(cpu, mean, std, 2);
    const zv = rand(2 * 3, 4);
    const z = F.fromArray(cpu, zv, [1, 2, 3, 1, 1]);
    const n = await normalizeLatent(z, stats, 0.5).read();
    for (let c = 0; c < 2; c++) for (let t = 0; t < 3; t++) expect(n[c * 3 + t]).toBeCloseTo(((zv[c * 3 + t] - mean[c * 4 + t]) * 0.5) / std[c * 4 + t], 6);
    const back = await denormalizeLatent(normalizeLatent(z, stats, 0.5), stats, 0.5).read();
    expect(maxAbsDiff(back, zv)).toBeLessThan(1e-6);
    expect(() => normalizeLatent(F.zeros(cpu, [1, 2, 5, 1, 1]), stats)).toThrow(/t <= 4/);
  });
});

// ------------------------------------------------------------------ errors

describe('errors', () => {
  it('rejects bad video/latent/index arguments with a typed error naming the argument', async () => {
    const m = await loadTokenizer(caseDir('cv_video'), cpu);
    expect(m).toBeInstanceOf(CausalContinuousVideoTokenizer);
    const cv = m as CausalContinuousVideoTokenizer;
    const bad = (shape: number[]) => () => cv.encode(F.zeros(cpu, shape));
    expect(bad([1, 3, 8, 32, 32])).toThrow(TokenizerInputError);
    expect(bad([1, 3, 8, 32, 32])).toThrow(/video: expected .*1 \+ k\*8/);
    expect(bad([1, 3, 9, 20, 32])).toThrow(/multiples of 8/);
    expect(bad([1, 4, 9, 32, 32])).toThrow(/3 channels/);
    expect(bad([3, 9, 32, 32])).toThrow(TokenizerInputError);
    expect(() => cv.decode(F.zeros(cpu, [1, 7, 2, 4, 4]))).toThrow(/latent: expected \[B, 8, t, h, w\]/);
    try {
      cv.encode(F.zeros(cpu, [1, 3, 10, 32, 32]));
    } catch (e) {
      expect((e as TokenizerInputError).argument).toBe('video');
    }
    cv.dispose();

    const dv = (await loadTokenizer(caseDir('dv_video'), cpu)) as CausalDiscreteVideoTokenizer;
    expect(dv.vocabSize).toBe(64000);
    const ids = (v: number) => ({ data: [0, 1, v, 3], shape: [1, 1, 2, 2] });
    expect(() => dv.decodeIndices(ids(64000))).toThrow(/indices: expected token ids in \[0, 64000\), got 64000/);
    expect(() => dv.decodeIndices(ids(-1))).toThrow(TokenizerInputError);
    expect(() => dv.decodeIndices(ids(2.5))).toThrow(TokenizerInputError);
    expect(() => dv.decodeIndices({ data: [1, 2], shape: [1, 2, 2] })).toThrow(/indices/);
    expect(() => dv.decodeIndices(F.zeros(cpu, [1, 1, 1, 1]))).toThrow(/i32/);
    await expect(dv.quantizer.validateIndices(F.fromArray(cpu, [5, 70000], [1, 2], 'i32'))).rejects.toThrow(/70000/);
    const y = dv.decodeIndices(ids(63999));
    expect(y.shape).toEqual([1, 3, 1, 32, 32]);
    dv.dispose();

    const di = (await loadTokenizer(caseDir('di_image'), cpu)) as DiscreteImageTokenizer;
    expect(() => di.encode(F.zeros(cpu, [1, 3, 30, 32]))).toThrow(/image: expected H and W multiples of 8/);
    expect(() => di.decodeIndices({ data: [64000], shape: [1, 1, 1] })).toThrow(TokenizerInputError);
    di.dispose();
  });

  it('rejects configs it cannot build with a typed error naming the field', () => {
    const base = readConfig(caseDir('cv_video'));
    expect(() => buildTokenizer({ ...base, formulation: 'VAE' })).toThrow(TokenizerConfigError);
    expect(() => buildTokenizer({ ...base, spatial_compression: 64 })).toThrow(/spatial_compression/);
    expect(() => buildTokenizer({ ...base, temporal_compression: 6 })).toThrow(/temporal_compression: must be a power of two/);
    expect(() => buildTokenizer({ ...base, channels: 0 })).toThrow(/channels/);
    expect(() => buildTokenizer({ ...base, encoder: 'BASE' })).toThrow(/FACTORIZED/);
    expect(() => buildTokenizer({ ...base, patch_method: 'rearrange' })).toThrow(/haar/);
    expect(() => buildTokenizer({ ...readConfig(caseDir('ci_image')), channels: 16 })).toThrow(/multiple of 32/);
    expect(() => buildTokenizer({ ...readConfig(caseDir('dv_video')), embedding_dim: 4 })).toThrow(/embedding_dim/);
    expect(() => buildTokenizer({ _class_name: 'UNet2DModel' })).toThrow(TokenizerConfigError);
  });

  it('reports config/weights mismatches (missing, unexpected, shape) from loadWeights', async () => {
    const dir = caseDir('cv_video');
    const src = await openSafetensors(`${dir}/model.safetensors`);
    try {
      const wrong = buildTokenizer({ ...readConfig(dir), z_channels: 16 });
      const err = await loadTokenizerWeights(wrong, src, cpu).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CheckpointMismatchError);
      expect((err as CheckpointMismatchError).mismatched.some((m) => m.startsWith('encoder.conv_out.0.conv3d.weight'))).toBe(true);

      const dropped: TensorSource = {
        names: src.names.filter((n) => n !== 'decoder.mid.attn_1.1.q.conv3d.bias'),
        info: (n) => src.info(n),
        read: (n) => src.read(n),
        path: 'filtered',
      };
      const model = buildTokenizer(readConfig(dir));
      const err2 = await loadTokenizerWeights(model, dropped, cpu).catch((e: unknown) => e);
      expect(err2).toBeInstanceOf(CheckpointMismatchError);
      expect((err2 as CheckpointMismatchError).missing).toEqual(['decoder.mid.attn_1.1.q.conv3d.bias']);

      // a DV checkpoint for a CV config: unexpected + missing keys
      const dvSrc = await openSafetensors(`${caseDir('dv_video')}/model.safetensors`);
      const err3 = await loadTokenizerWeights(buildTokenizer(readConfig(dir)), dvSrc, cpu).catch((e: unknown) => e);
      await dvSrc.close();
      expect(err3).toBeInstanceOf(CheckpointMismatchError);
      expect((err3 as CheckpointMismatchError).unexpected.length + (err3 as CheckpointMismatchError).missing.length).toBeGreaterThan(0);

      // the present checkpoint loads, buffers ignored, bf16 kept bf16 (ci_image)
      const report = await loadTokenizerWeights(model, src, cpu);
      expect(report.ignored).toContain('encoder.patcher3d.wavelets');
      model.dispose();
    } finally {
      await src.close();
    }
    const vae = await loadTokenizer(caseDir('diffusers_vae'), cpu);
    expect(vae).toBeInstanceOf(AutoencoderKLCosmos);
    vae.dispose();
    const ci = await loadTokenizer(caseDir('ci_image'), cpu);
    expect([...ci.parameters()].every((p) => p.t.dtype === 'bf16')).toBe(true);
    ci.dispose();
  });
});

// ------------------------------------------------------------------ streaming


const tinyVideo = {
  channels: 4, channels_mult: [2, 4, 4], num_res_blocks: 1, dropout: 0, in_channels: 3, out_channels: 3,
  // nominal resolutions 8, 4, 2 per encoder level: attention at levels 0 and 1, i.e. before and
  // after the temporal downsample, plus the mid block
  resolution: 32, attn_resolutions: [8, 4], patch_size: 4, patch_method: 'haar', z_channels: 4, z_factor: 1,
  num_groups: 1, legacy_mode: false, encoder: 'FACTORIZED', decoder: 'FACTORIZED',
};

async function collect<T>(g: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of g) out.push(x);
  return out;
}

describe('streaming encode', () => {
  const video = (T: number, H: number, seed: number) => F.fromArray(cpu, rand(3 * T * H * H, seed), [1, 3, T, H, H]);
  const splitFrames = (x: Tensor, sizes: number[]) => {
    let o = 0;
    return sizes.map((s) => {
      const c = F.slice(x, 2, o, o + s);
      o += s;
      return c;
    });
  };

  it('CV: chunked latents equal the whole-video latents', async () => {
    const cv = new CausalContinuousVideoTokenizer({ ...tinyVideo, name: 'CV', latent_channels: 4, formulation: 'AE', spatial_compression: 8, temporal_compression: 8 });
    randomize(cv, cpu, 11);
    const x = video(33, 16, 5);
    const whole = cv.encode(x);
    expect(whole.shape).toEqual([1, 4, 5, 2, 2]);
    const want = await whole.read();
    for (const sizes of [[9, 8, 16], [1, 8, 8, 16], [17, 16], [33]]) {
      const parts = await collect(cv.encodeStream(splitFrames(x, sizes)));
      expect(parts.map((p) => p.shape[2])).toEqual(sizes.map((s, i) => (i === 0 ? 1 + (s - 1) / 8 : s / 8)));
      const got = await F.concat(parts, 2).read();
      expect(maxAbsDiff(got, want), `chunks ${sizes}`).toBeLessThan(1e-6);
    }
    // the first chunk alone is the prefix encoding (§12)
    const prefix = await cv.encode(F.slice(x, 2, 0, 9)).read();
    expect(maxAbsDiff(prefix, await F.slice(whole, 2, 0, 2).read())).toBe(0);
  });

  it('DV: chunked token ids equal the whole-video ids exactly', async () => {
    const dv = new CausalDiscreteVideoTokenizer({
      ...tinyVideo, name: 'DV', quantizer: 'FSQ', embedding_dim: 3, levels: [8, 5, 5], spatial_compression: 16, temporal_compression: 8,
    });
    randomize(dv, cpu, 23);
    const x = video(25, 32, 9);
    const whole = dv.encode(x);
    expect(whole.indices.shape).toEqual([1, 4, 2, 2]);
    const parts = await collect(dv.encodeStream(splitFrames(x, [9, 8, 8])));
    const ids = F.concat(parts.map((p) => p.indices), 1);
    expect(Array.from(await ids.read())).toEqual(Array.from(await whole.indices.read()));
    const codes = F.concat(parts.map((p) => p.codes), 2);
    expect(maxAbsDiff(await codes.read(), await whole.codes.read())).toBe(0);
  });

  it('keeps a bounded state: fixed context, attention caches growing per latent frame, no leaks', async () => {
    const { backend, liveBytes } = countingCpu();
    const cfg = { ...tinyVideo, name: 'CV', latent_channels: 4, formulation: 'AE', spatial_compression: 8, temporal_compression: 8 };
    const cv = new CausalContinuousVideoTokenizer(cfg);
    randomize(cv, backend, 3);
    const weights = liveBytes();
    const stream = new VideoEncoderStream(cv);
    const rows: { live: number; context: number; attention: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const T = i === 0 ? 9 : 8;
      scope(() => {
        const chunk = F.fromArray(backend, rand(3 * T * 16 * 16, 100 + i), [1, 3, T, 16, 16]);
        stream.pushRaw(chunk).dispose();
      });
      rows.push({ live: liveBytes() - weights, ...stream.stateBytes() });
    }
    // every byte alive besides the weights is stream state or a constant cached on the first chunk
    const overhead = rows.map((r) => r.live - r.context - r.attention);
    expect(new Set(overhead.slice(1)).size).toBe(1);
    expect(overhead[0]).toBe(overhead[1]);
    expect(overhead[1]).toBeLessThan(4096);
    // the conv / downsample context does not grow
    expect(new Set(rows.map((r) => r.context)).size).toBe(1);
    // attention K/V grow by the same amount for every 8-frame chunk
    const growth = rows.slice(1).map((r, i) => r.attention - rows[i].attention);
    expect(growth[0]).toBeGreaterThan(0);
    expect(new Set(growth).size).toBe(1);
    expect(stream.latentFrames).toBe(7);
    stream.dispose();
    cv.dispose();
    expect(liveBytes()).toBe(overhead[0]);
  });

  it('rejects chunks that break the causal framing', async () => {
    const cv = new CausalContinuousVideoTokenizer({ ...tinyVideo, name: 'CV', latent_channels: 4, formulation: 'AE', spatial_compression: 8, temporal_compression: 8 });
    randomize(cv, cpu, 1);
    const s = new VideoEncoderStream(cv);
    expect(() => s.pushRaw(video(8, 16, 1))).toThrow(/chunks\[0\]: expected 1 \+ k\*8 frames/);
    s.pushRaw(video(9, 16, 1));
    expect(() => s.pushRaw(video(9, 16, 2))).toThrow(/chunks\[1\]: expected a multiple of 8 frames/);
    expect(() => s.pushRaw(video(8, 24, 2))).toThrow(/chunks\[1\]: expected the first chunk's/);
    expect(s.pushRaw(video(8, 16, 3)).shape).toEqual([1, 4, 1, 2, 2]);
    s.dispose();
  });
});
