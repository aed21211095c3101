// The Wan VAE (diffusers AutoencoderKLWan, spec wan_vae.md): every vendored case on both backends,
// then the behaviour the fact sheet states, one test per statement: streamed encode and decode
// equal the one-call forms, a batch is its clips, trailing frames are ignored, the device holds
// one piece at a time, convs split when a binding would be too large, zero weights give zeros,
// and configs / checkpoints / inputs that do not fit are refused naming the culprit.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findCases } from '../../src/conform/runner.js';
import type { Backend, BackendLimits } from '../../src/engine/backend.js';
import { CpuBackend } from '../../src/engine/cpu/backend.js';
import { CheckpointMismatchError, type TensorSource, loadWeights } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import {
  AutoencoderKLWan, AutoencoderKLWanFamily, WanInputError, denormalizeWanLatent, loadWanVae, normalizeWanLatent,
} from '../../src/models/wan/autoencoder.js';
import { WanConfigError, parseWanVaeConfig } from '../../src/models/wan/config.js';
import { assertClose, cpu, expectCasePasses, randomValues, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/wan_vae', import.meta.url));
const CASES = await findCases([FIXTURES]);
const caseDir = (name: string) => CASES.find((c) => c.endsWith(`/${name}`))!;
const readConfig = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;

/** The video_9f model (base_dim 6, z 16, Wan2.1 layout) with its random weights, on `backend`. */
const loadCase = (name: string, backend: Backend) =>
  loadWanVae(join(caseDir(name), 'model.safetensors'), backend, { config: readConfig(caseDir(name)) });

function video(backend: Backend, shape: number[], seed: number): Tensor {
  return F.fromArray(backend, randomValues(shape.reduce((a, b) => a * b, 1), seed), shape);
}

const exact = { atol: 0, rtol: 0 };

// ------------------------------------------------------------------ conformance

describe('wan_vae conformance', () => {
  it('finds the five public cases', () => {
    expect(CASES.map((c) => c.split('/').at(-1)).sort()).toEqual(['bf16_weights', 'image_1f', 'odd_latent_5f', 'video_9f', 'wan22_residual']);
  });
  for (const name of ['video_9f', 'image_1f', 'odd_latent_5f', 'bf16_weights', 'wan22_residual']) {
    it(`${name} passes on cpu`, async () => {
      await expectCasePasses(caseDir(name), cpu);
    });
    it(`${name} passes on webgpu`, async () => {
      await expectCasePasses(caseDir(name), await webgpu());
    });
  }
});

// ------------------------------------------------------------------ config and checkpoint

describe('config', () => {
  it('an empty config is the real Wan2.1 VAE: 194 tensors, 126,892,531 parameters, upstream names and shapes', () => {
    const m = AutoencoderKLWanFamily.build({});
    const params = [...m.parameters()];
    expect(params.length).toBe(194);
    expect(m.parameterCount()).toBe(126_892_531);
    const shape = (k: string) => params.find((p) => p.key === k)?.shape;
    expect(shape('encoder.conv_in.weight')).toEqual([96, 3, 3, 3, 3]);
    expect(shape('encoder.down_blocks.5.time_conv.weight')).toEqual([192, 192, 3, 1, 1]);
    expect(shape('encoder.down_blocks.8.resample.1.weight')).toEqual([384, 384, 3, 3]);
    expect(shape('encoder.mid_block.attentions.0.norm.gamma')).toEqual([384, 1, 1]);
    expect(shape('encoder.conv_out.weight')).toEqual([32, 384, 3, 3, 3]);
    expect(shape('decoder.up_blocks.0.upsamplers.0.time_conv.weight')).toEqual([768, 384, 3, 1, 1]);
    expect(shape('decoder.up_blocks.1.resnets.0.conv_shortcut.weight')).toEqual([384, 192, 1, 1, 1]);
    expect(shape('decoder.up_blocks.2.upsamplers.0.resample.1.weight')).toEqual([96, 192, 3, 3]);
    expect(shape('decoder.norm_out.gamma')).toEqual([96, 1, 1, 1]);
    expect(m.latentChannels).toBe(16);
    expect(m.temporalCompression).toBe(4);
    expect(m.spatialCompression).toBe(8);
    expect(m.config.latentsStd?.[15]).toBe(1.916);
  });

  it('the Wan2.2 layout: singular downsampler / upsampler, patch_size in the spatial factor', () => {
    const m = new AutoencoderKLWan(parseWanVaeConfig({
      base_dim: 160, decoder_base_dim: 256, z_dim: 48, is_residual: true, in_channels: 12, out_channels: 12, patch_size: 2,
      latents_mean: new Array(48).fill(0), latents_std: new Array(48).fill(1),
    }));
    const keys = new Set([...m.parameters()].map((p) => p.key));
    expect(keys.has('encoder.down_blocks.1.downsampler.time_conv.weight')).toBe(true);
    expect(keys.has('decoder.up_blocks.0.upsampler.resample.1.weight')).toBe(true);
    expect(keys.has('decoder.up_blocks.3.upsampler.resample.1.weight')).toBe(false);
    expect(m.spatialCompression).toBe(16);
    expect(m.videoChannels).toBe(3);
  });

  it('names the field of a bad config', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ z_dim: 0 }, 'z_dim'],
      [{ base_dim: 2.5 }, 'base_dim'],
      [{ dim_mult: [] }, 'dim_mult'],
      [{ temperal_downsample: [true, true] }, 'temperal_downsample'],
      [{ attn_scales: [1] }, 'attn_scales'],
      [{ latents_mean: [1, 2, 3] }, 'latents_mean'],
      [{ latents_std: 'x' }, 'latents_std'],
      [{ is_residual: 'yes' }, 'is_residual'],
      [{ patch_size: 2 }, 'in_channels'],
      [{ _class_name: 'AutoencoderKL' }, '_class_name'],
      [{ decoder_base_dim: 3, dim_mult: [1, 1], temperal_downsample: [true] }, 'dim_mult'],
    ];
    for (const [cfg, field] of bad) {
      let err: unknown;
      try {
        parseWanVaeConfig(cfg);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(cfg)).toBeInstanceOf(WanConfigError);
      expect((err as WanConfigError).field).toBe(field);
      expect((err as Error).message).toContain(field);
    }
  });

  it('no statistics: latent_stats null; z_dim other than 16 without them has none', () => {
    const m = AutoencoderKLWanFamily.build({ base_dim: 2, z_dim: 4, latents_mean: null, latents_std: null });
    expect(m.latentStats(cpu)).toBeNull();
    expect(parseWanVaeConfig({ z_dim: 4 }).latentsMean).toBeNull();
  });

  it('reports a missing and a mis-shaped key by name', async () => {
    const dir = caseDir('video_9f');
    const src = await openSafetensors(join(dir, 'model.safetensors'));
    try {
      const model = AutoencoderKLWanFamily.build(readConfig(dir));
      const dropped: TensorSource = { names: src.names.filter((n) => n !== 'decoder.up_blocks.1.upsamplers.0.time_conv.bias'), info: (n) => src.info(n), read: (n) => src.read(n), path: 'dropped' };
      const e1 = await loadWeights(model, dropped, cpu).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(CheckpointMismatchError);
      expect((e1 as CheckpointMismatchError).missing).toEqual(['decoder.up_blocks.1.upsamplers.0.time_conv.bias']);
      const wrong = AutoencoderKLWanFamily.build({ ...readConfig(dir), z_dim: 8, latents_mean: null, latents_std: null });
      const e2 = await loadWeights(wrong, src, cpu).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(CheckpointMismatchError);
      expect((e2 as CheckpointMismatchError).mismatched.some((m) => m.startsWith('quant_conv.weight'))).toBe(true);
      expect((e2 as Error).message).toContain('quant_conv.weight');
    } finally {
      await src.close();
    }
  });

  it('loads a released-style vae/ folder (config.json + diffusion_pytorch_model.safetensors), bf16 kept bf16', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wan-vae-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(readConfig(caseDir('bf16_weights'))));
      copyFileSync(join(caseDir('bf16_weights'), 'model.safetensors'), join(dir, 'diffusion_pytorch_model.safetensors'));
      const m = await loadWanVae(dir, cpu);
      expect(m.encoder.conv_in.weight.dtype).toBe('bf16');
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ streaming and frames

describe('encode / decode', () => {
  it('encodeFrames asks for frame 0, then groups of 4, and equals encode', async () => {
    const m = await loadCase('video_9f', cpu);
    const v = video(cpu, [1, 3, 13, 16, 16], 1);
    const a = m.encode(v);
    const asked: [number, number][] = [];
    const b = m.encodeFrames(13, (s, n) => {
      asked.push([s, n]);
      return F.slice(v, 2, s, s + n);
    });
    expect(asked).toEqual([[0, 1], [1, 4], [5, 4], [9, 4]]);
    expect(a.mean.shape).toEqual([1, 16, 4, 2, 2]);
    assertClose(await b.mean.read(), await a.mean.read(), exact, 'mean');
    assertClose(await b.logvar.read(), await a.logvar.read(), exact, 'logvar');
    const lv = await a.logvar.read();
    expect(lv.every((x) => x >= -30 && x <= 20)).toBe(true);
    a.dispose();
    b.dispose();
    m.dispose();
  });

  it('decodeFrames hands over 1 frame, then 4 per latent frame, and equals decode', async () => {
    const m = await loadCase('video_9f', cpu);
    const z = video(cpu, [1, 16, 3, 2, 3], 2);
    const whole = m.decode(z);
    expect(whole.shape).toEqual([1, 3, 9, 16, 24]);
    const got: { first: number; values: Float32Array; frames: number }[] = [];
    await m.decodeFrames(z, async (frames, first) => {
      got.push({ first, frames: frames.shape[2], values: (await frames.read()) as Float32Array });
    });
    expect(got.map((g) => [g.first, g.frames])).toEqual([[0, 1], [1, 4], [5, 4]]);
    const w = (await whole.read()) as Float32Array;
    for (const g of got) {
      const slice = await F.slice(whole, 2, g.first, g.first + g.frames).read();
      assertClose(g.values, slice, exact, `frames from ${g.first}`);
    }
    expect(w.every((x) => x >= -1 && x <= 1)).toBe(true);
    m.dispose();
  });

  it('decodeFrames stops at an abort between pieces', async () => {
    const m = await loadCase('video_9f', cpu);
    const ctl = new AbortController();
    const seen: number[] = [];
    const run = m.decodeFrames(video(cpu, [1, 16, 3, 1, 1], 3), (_f, first) => {
      seen.push(first);
      ctl.abort();
    }, { signal: ctl.signal });
    await expect(run).rejects.toThrow();
    expect(seen).toEqual([0]);
    m.dispose();
  });

  it('a batch of 2 equals each clip alone', async () => {
    const m = await loadCase('video_9f', cpu);
    const v0 = video(cpu, [1, 3, 5, 16, 8], 4);
    const v1 = video(cpu, [1, 3, 5, 16, 8], 5);
    const both = m.encode(F.concat([v0, v1], 0));
    const rec = m.decode(both.mean);
    for (const [i, v] of [v0, v1].entries()) {
      const one = m.encode(v);
      const tol = { atol: 1e-6, rtol: 1e-6 };
      assertClose(await F.slice(both.mean, 0, i, i + 1).read(), await one.mean.read(), tol, `mean ${i}`);
      assertClose(await F.slice(both.logvar, 0, i, i + 1).read(), await one.logvar.read(), tol, `logvar ${i}`);
      assertClose(await F.slice(rec, 0, i, i + 1).read(), await m.decode(one.mean).read(), tol, `reconstruction ${i}`);
    }
    m.dispose();
  });

  it('frames after the last complete group of 4 are ignored: T = 10 encodes as its first 9', async () => {
    const m = await loadCase('video_9f', cpu);
    const v = video(cpu, [1, 3, 10, 8, 8], 6);
    expect(m.latentFrames(10)).toBe(3);
    const a = m.encode(v);
    const b = m.encode(F.slice(v, 2, 0, 9));
    expect(a.mean.shape).toEqual([1, 16, 3, 1, 1]);
    assertClose(await a.mean.read(), await b.mean.read(), exact, 'mean');
    m.dispose();
  });

  it('an image (T = 1) round-trips to one frame; the Wan2.2 layout patchifies and unpatchifies', async () => {
    const m = await loadCase('wan22_residual', cpu);
    const p = m.encode(video(cpu, [1, 3, 1, 32, 16], 7));
    expect(p.mean.shape).toEqual([1, 8, 1, 2, 1]);
    expect(m.decode(p.mean).shape).toEqual([1, 3, 1, 32, 16]);
    m.dispose();
  });

  it('zero weights give zero latents and a zero video (the RMS norm of a zero vector is 0, not NaN)', () => {
    const m = AutoencoderKLWanFamily.build({ base_dim: 2, z_dim: 2, num_res_blocks: 1, latents_mean: null, latents_std: null });
    for (const p of m.parameters()) p.set(F.zeros(cpu, p.shape));
    return (async () => {
      const post = m.encode(video(cpu, [1, 3, 5, 8, 8], 8));
      expect([...(await post.mean.read())].every((x) => x === 0)).toBe(true);
      const rec = m.decode(post.mean);
      expect(rec.shape).toEqual([1, 3, 5, 8, 8]);
      expect([...(await rec.read())].every((x) => x === 0)).toBe(true);
      m.dispose();
    })();
  });

  it('refuses inputs that do not fit, naming the argument', async () => {
    const m = await loadCase('video_9f', cpu);
    expect(() => m.encode(video(cpu, [1, 4, 1, 8, 8], 9))).toThrow(WanInputError);
    expect(() => m.encode(video(cpu, [1, 3, 1, 12, 8], 9))).toThrow(/video/);
    expect(() => m.decode(video(cpu, [1, 8, 1, 2, 2], 9))).toThrow(/latent/);
    expect(() => m.encodeFrames(5, (s, n) => video(cpu, [1, 3, n, s === 0 ? 8 : 16, 8], 9))).toThrow(/frames\(1, 4\)/);
    m.dispose();
  });
});

// ------------------------------------------------------------------ memory

/** A CPU backend whose single-binding limit is tiny, so every conv and upsample of a piece splits. */
class SmallBindingCpu extends CpuBackend {
  override readonly limits: BackendLimits = { maxBufferBytes: 2 ** 32, maxBindingBytes: 16 * 1024 };
}

describe('memory', () => {
  it('splits convs and upsamples by frame when a binding would be too large, with the same result', async () => {
    const small = new SmallBindingCpu();
    const a = await loadCase('video_9f', cpu);
    const b = await loadCase('video_9f', small);
    const values = randomValues(3 * 9 * 16 * 16, 10);
    const pa = a.encode(F.fromArray(cpu, values, [1, 3, 9, 16, 16]));
    const pb = b.encode(F.fromArray(small, values, [1, 3, 9, 16, 16]));
    const tol = { atol: 1e-6, rtol: 1e-5 };
    assertClose(await pb.mean.read(), await pa.mean.read(), tol, 'mean');
    assertClose(await b.decode(pb.mean).read(), await a.decode(pa.mean).read(), tol, 'reconstruction');
    a.dispose();
    b.dispose();
  });

  it('the device holds one piece plus the caches: peak memory does not grow with the clip length', async () => {
    const peak = async (frames: number, latentFrames: number) => {
      const be = new CpuBackend();
      const m = await loadCase('video_9f', be);
      const values = randomValues(3 * frames * 32 * 32, 11);
      const plane = 32 * 32;
      const base = be.memory().liveBytes;
      be.resetPeakMemory();
      const post = m.encodeFrames(frames, (s, n) => {
        const piece = new Float32Array(3 * n * plane);
        for (let c = 0; c < 3; c++) piece.set(values.subarray((c * frames + s) * plane, (c * frames + s + n) * plane), c * n * plane);
        return F.fromArray(be, piece, [1, 3, n, 32, 32]);
      });
      const enc = be.memory().peakBytes - base;
      post.dispose();
      const z = F.fromArray(be, randomValues(16 * latentFrames * 16, 12), [1, 16, latentFrames, 4, 4]);
      be.resetPeakMemory();
      await m.decodeFrames(z, () => undefined);
      const dec = be.memory().peakBytes - base;
      m.dispose();
      return { enc, dec };
    };
    const short = await peak(5, 2);
    const long = await peak(21, 6);
    // Only latent-sized tensors grow with the clip (2 KiB per latent frame here, 4 more frames, a
    // few copies of them); one more full-resolution frame of conv_in alone would be 24 KiB, the
    // clip's 16 extra frames of it 384 KiB.
    expect(long.enc - short.enc).toBeLessThan(24 * 1024);
    expect(long.dec - short.dec).toBeLessThan(24 * 1024);
    expect(short.enc).toBeGreaterThan(0);
  });
});

describe('latent normalisation', () => {
  it('(z - mean) · (1/std) per channel, and back', async () => {
    const m = await loadCase('video_9f', cpu);
    const stats = m.latentStats(cpu)!;
    expect(stats.mean.shape).toEqual([1, 16, 1, 1, 1]);
    const z = video(cpu, [2, 16, 3, 2, 2], 13);
    const n = normalizeWanLatent(z, stats);
    const zv = await z.read();
    const nv = await n.read();
    const mean = m.config.latentsMean!;
    const std = m.config.latentsStd!;
    const want = zv.map((x, i) => (x - mean[Math.floor(i / 12) % 16]) * Math.fround(1 / std[Math.floor(i / 12) % 16]));
    assertClose(nv, want, { atol: 1e-6, rtol: 1e-6 }, 'normalized');
    assertClose(await denormalizeWanLatent(n, stats).read(), zv, { atol: 1e-6, rtol: 1e-6 }, 'round trip');
    expect(() => normalizeWanLatent(video(cpu, [1, 8, 1, 1, 1], 1), stats)).toThrow(WanInputError);
    m.dispose();
  });
});
