// The diffusion decoder's chain (src/pipelines/ar-decoder*.ts) without the 7B: the windows over the
// token grid and their reflect padding, torch.linspace's blend weights, the pixel blend and its
// lengths (expectations worked out from upstream utils.py / inference.py by hand and by running
// the same logic in numpy), the latent de-normalisation, and the chain's order and memory with a
// small stand-in decoder (a module of plain weights and a sampler that returns known latents) on
// the cpu and plan backends, the real tiny CV tokenizer decoding on the plan backend.
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { Module, loadWeights } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { declaredSource } from '../../src/engine/plan/params.js';
import { planBackend } from '../../src/engine/select.js';
import type { Tensor } from '../../src/engine/tensor.js';
import type { CausalContinuousVideoTokenizer } from '../../src/models/tokenizer/video.js';
import {
  ChunkBlender, blendWeights, blendedLength, chunkIds, splitWithOverlap,
} from '../../src/pipelines/ar-decoder-chunks.js';
import {
  type DecoderGeometry, type DecoderRuntime, checkCvTokenizer, checkDecoder, decodeArTokensWith, loadCvTokenizer,
} from '../../src/pipelines/ar-decoder.js';
import { cpu } from '../harness.js';

const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const CV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-cv4x8x8');

// ------------------------------------------------------------------ windows

describe('splitWithOverlap (windows of 8 latent frames, overlap 2)', () => {
  const frames = (T: number) => splitWithOverlap(T).map((c) => [c.start, c.frames]);

  it('windows upstream makes: starts 0, 6, 12 while start < T - 2; a short last window reflected ([0..4] -> [0,1,2,3,4,3,2,1])', () => {
    expect(frames(5)).toEqual([[0, [0, 1, 2, 3, 4, 3, 2, 1]]]);
    expect(frames(8)).toEqual([[0, [0, 1, 2, 3, 4, 5, 6, 7]]]);
    expect(frames(14)).toEqual([[0, [0, 1, 2, 3, 4, 5, 6, 7]], [6, [6, 7, 8, 9, 10, 11, 12, 13]]]);
    expect(frames(17)).toEqual([[0, [0, 1, 2, 3, 4, 5, 6, 7]], [6, [6, 7, 8, 9, 10, 11, 12, 13]], [12, [12, 13, 14, 15, 16, 15, 14, 13]]]);
    expect(frames(20).map(([s]) => s)).toEqual([0, 6, 12]);
  });

  it('where torch cannot pad (3 or 4 frames left, or T <= 2 with no window at all) it keeps reflecting, as numpy does', () => {
    expect(frames(16)[2]).toEqual([12, [12, 13, 14, 15, 14, 13, 12, 13]]);
    expect(frames(9)).toEqual([[0, [0, 1, 2, 3, 4, 5, 6, 7]], [6, [6, 7, 8, 7, 6, 7, 8, 7]]]);
    expect(frames(3)).toEqual([[0, [0, 1, 2, 1, 0, 1, 2, 1]]]);
    expect(frames(2)).toEqual([[0, [0, 1, 0, 1, 0, 1, 0, 1]]]);
    expect(frames(1)).toEqual([[0, [0, 0, 0, 0, 0, 0, 0, 0]]]);
  });

  it('at most 99 windows (max_iter): 1000 frames would take 167', () => {
    const c = splitWithOverlap(1000);
    expect(c.length).toBe(99);
    expect(c[98].start).toBe(98 * 6);
  });

  it('chunkIds gathers each position\'s frame of the [T, h, w] grid', () => {
    const grid = [3, 2, 2] as const;
    const ids = Int32Array.from({ length: 12 }, (_, i) => 100 + i);
    const [c] = splitWithOverlap(3);
    const got = chunkIds(ids, grid, c);
    expect(got.length).toBe(8 * 4);
    expect(Array.from(got.subarray(0, 12))).toEqual(Array.from(ids));
    expect(Array.from(got.subarray(12, 16))).toEqual([104, 105, 106, 107]); // frame 1
    expect(Array.from(got.subarray(16, 20))).toEqual([100, 101, 102, 103]); // frame 0
  });
});

// ------------------------------------------------------------------ blend

/** chunk k, channel c, frame j, pixel p: k*0.3 + c*0.1 - j*0.05 + p*0.01 (3 channels, 1x2 pixels) */
function rampChunk(k: number, t: number): Float32Array {
  const a = new Float32Array(3 * t * 2);
  for (let c = 0; c < 3; c++) for (let j = 0; j < t; j++) for (let p = 0; p < 2; p++) a[(c * t + j) * 2 + p] = k * 0.3 + c * 0.1 - j * 0.05 + p * 0.01;
  return a;
}

// linear_blend_video_list of three rampChunk(k, 6), as numpy computes upstream's loop in float32
const BLEND_D2 = [
  0.0, 0.009999999776482582, -0.05000000074505806, -0.03999999910593033, -0.10000000149011612, -0.09000000357627869, -0.15000000596046448, -0.14000000059604645,
  -0.20000000298023224, -0.1899999976158142, 0.25, 0.25999999046325684, 0.20000000298023224, 0.20999999344348907, 0.15000000596046448, 0.1599999964237213,
  0.10000000149011612, 0.10999999940395355, 0.550000011920929, 0.5600000023841858, 0.5, 0.5099999904632568, 0.44999998807907104, 0.46000000834465027,
  0.4000000059604645, 0.4099999964237213, 0.3499999940395355, 0.36000001430511475, 0.10000000149011612, 0.10999999940395355, 0.05000000074505806,
  0.05999999865889549, 0.0, 0.009999999776482582, -0.05000000074505806, -0.03999999910593033, -0.10000000149011612, -0.09000000357627869, 0.3499999940395355,
  0.36000001430511475, 0.30000001192092896, 0.3100000023841858, 0.25, 0.25999999046325684, 0.20000000298023224, 0.20999999344348907, 0.6499999761581421,
  0.6600000262260437, 0.6000000238418579, 0.6100000143051147, 0.550000011920929, 0.5600000023841858, 0.5, 0.5099999904632568, 0.44999998807907104,
  0.46000000834465027, 0.20000000298023224, 0.20999999344348907, 0.15000000596046448, 0.1599999964237213, 0.10000000149011612, 0.10999999940395355,
  0.05000000074505806, 0.05999999865889549, 0.0, 0.009999999776482582, 0.44999998807907104, 0.46000000834465027, 0.4000000059604645, 0.4099999964237213,
  0.3499999940395355, 0.36000001430511475, 0.30000001192092896, 0.3100000023841858, 0.75, 0.7599999904632568, 0.699999988079071, 0.7099999785423279,
  0.6499999761581421, 0.6600000262260437, 0.6000000238418579, 0.6100000143051147, 0.550000011920929, 0.5600000023841858,
];
const BLEND_D3 = [
  0.0, 0.009999999776482582, -0.05000000074505806, -0.03999999910593033, -0.10000000149011612, -0.09000000357627869, -0.15000000596046448, -0.14000000059604645,
  0.02499999850988388, 0.034999996423721313, 0.20000000298023224, 0.20999999344348907, 0.15000000596046448, 0.1599999964237213, 0.32500001788139343,
  0.33500000834465027, 0.5, 0.5099999904632568, 0.44999998807907104, 0.46000000834465027, 0.4000000059604645, 0.4099999964237213, 0.3499999940395355,
  0.36000001430511475, 0.10000000149011612, 0.10999999940395355, 0.05000000074505806, 0.05999999865889549, 0.0, 0.009999999776482582, -0.05000000074505806,
  -0.03999999910593033, 0.125, 0.13500000536441803, 0.30000001192092896, 0.3100000023841858, 0.25, 0.25999999046325684, 0.42499998211860657, 0.4350000023841858,
  0.6000000238418579, 0.6100000143051147, 0.550000011920929, 0.5600000023841858, 0.5, 0.5099999904632568, 0.44999998807907104, 0.46000000834465027,
  0.20000000298023224, 0.20999999344348907, 0.15000000596046448, 0.1599999964237213, 0.10000000149011612, 0.10999999940395355, 0.05000000074505806,
  0.05999999865889549, 0.22499999403953552, 0.23499999940395355, 0.4000000059604645, 0.4099999964237213, 0.3499999940395355, 0.36000001430511475,
  0.5249999761581421, 0.5349999666213989, 0.699999988079071, 0.7099999785423279, 0.6499999761581421, 0.6600000262260437, 0.6000000238418579, 0.6100000143051147,
  0.550000011920929, 0.5600000023841858,
];

describe('linear_blend_video_list (pixel space, D shared frames)', () => {
  it('weights are torch.linspace(0, 1, D) in float32', () => {
    expect(Array.from(blendWeights(2))).toEqual([0, 1]);
    expect(Array.from(blendWeights(3))).toEqual([0, 0.5, 1]);
    expect(Array.from(blendWeights(5))).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(Array.from(blendWeights(7))).toEqual([0, 0.1666666716337204, 0.3333333432674408, 0.5, 0.6666666269302368, 0.8333333134651184, 1]);
    expect(Array.from(blendWeights(1))).toEqual([0]);
  });

  it('lengths: N*t - D*(N-1); the release: 57-frame chunks over 2 frames, and one chunk cut to the 33 frames of a 5-frame grid', () => {
    expect(blendedLength(1, 57, 2)).toBe(57);
    expect(blendedLength(2, 57, 2)).toBe(112);
    expect(blendedLength(3, 6, 3)).toBe(12);
    const b = new ChunkBlender(1, 57, 2, 33, 1, 1);
    b.add(Float32Array.from({ length: 3 * 57 }, (_, i) => i));
    const v = b.result();
    expect(v.frames).toBe(33);
    // channel 1 starts at chunk frame 0 of channel 1 (57 values in), cut after 33
    expect(Array.from(v.data.subarray(33, 36))).toEqual([57, 58, 59]);
  });

  for (const [D, want] of [[2, BLEND_D2], [3, BLEND_D3]] as const) {
    it(`three 6-frame chunks over D = ${D}: upstream's values exactly (D = 2: the later chunk takes over at once)`, () => {
      const b = new ChunkBlender(3, 6, D, 100, 1, 2);
      for (let k = 0; k < 3; k++) b.add(rampChunk(k, 6));
      const v = b.result();
      expect(v.frames).toBe(3 * 6 - D * 2);
      expect(Array.from(v.data)).toEqual(want.map((x) => Math.fround(x)));
    });
  }

  it('cut to T while blending: the kept frames equal the blended clip\'s first T', () => {
    const b = new ChunkBlender(3, 6, 3, 7, 1, 2);
    for (let k = 0; k < 3; k++) b.add(rampChunk(k, 6));
    const v = b.result();
    expect(v.frames).toBe(7);
    for (let c = 0; c < 3; c++) expect(Array.from(v.data.subarray(c * 14, c * 14 + 14))).toEqual(BLEND_D3.slice(c * 24, c * 24 + 14).map((x) => Math.fround(x)));
  });

  it('refuses a chunk of the wrong size, one too many, and a result before every chunk', () => {
    const b = new ChunkBlender(2, 6, 2, 10, 1, 2);
    expect(() => b.add(new Float32Array(5))).toThrow(/expected \[3, 6, 1, 2\]/);
    b.add(rampChunk(0, 6));
    expect(() => b.result()).toThrow(/1 of 2 chunks/);
    b.add(rampChunk(1, 6));
    expect(() => b.add(rampChunk(2, 6))).toThrow(/more than the 2/);
  });
});

// ------------------------------------------------------------------ the chain with a stand-in decoder

/** A decoder of plain weights (`bytes` of them) that the stand-in runtime "samples" with. */
class FakeDecoder extends Module {
  disposed = 0;
  constructor(readonly geometry: DecoderGeometry, elements: number) {
    super();
    this.param('weight', [elements]);
  }
  override dispose(): void {
    this.disposed++;
    super.dispose();
  }
}

interface Log {
  events: string[];
  sampleCalls: { ids: number[]; textShape: number[]; noiseShape: number[]; steps?: number; guidance?: number; fps?: number; latent: unknown }[];
}

/** A runtime whose sampler returns latent value (k + 1) * 0.25 for window k, calling onStep `steps` times. */
function fakeRuntime(log: Log, elements = 1000): DecoderRuntime<FakeDecoder> {
  let k = 0;
  return {
    async load(path, backend) {
      log.events.push(`load decoder ${path}`);
      const m = new FakeDecoder({ vocabSize: 64000, latentChannels: 16, textDim: 16, sigmaData: 0.5 }, elements);
      await loadWeights(m, declaredSource(m), backend);
      return m;
    },
    geometry: (m) => m.geometry,
    async sample(m, o) {
      log.events.push(`sample ${k}`);
      const ids = backendValues(o.ids);
      log.sampleCalls.push({ ids: await ids, textShape: [...o.text.shape], noiseShape: [...o.noise.shape], steps: o.steps, guidance: o.guidance, fps: o.fps, latent: o.latent });
      for (let i = 0; i < (o.steps ?? 15); i++) o.onStep?.(i, o.steps ?? 15);
      const value = (++k) * 0.25;
      expect(m.params.get('weight')!.loaded).toBe(true);
      return F.full(o.noise.backend, o.noise.shape, value);
    },
  };
}

async function backendValues(t: Tensor): Promise<number[]> {
  return t.backend.name === 'plan' ? [] : Array.from(await t.read());
}

/** A CV tokenizer stand-in on `backend` recording the latents it decodes; it decodes to frames of value (latent mean). */
function fakeCv(backend: Backend, log: Log, stats: { mean: Float32Array; std: Float32Array }, decoded: Tensor[]): CausalContinuousVideoTokenizer {
  return {
    kind: 'CV', latentChannels: 16, temporalCompression: 4, spatialCompression: 8, latentMeanStd: stats, backend,
    decode(z: Tensor): Tensor {
      log.events.push('cv decode');
      const [, , t, h, w] = z.shape;
      const frames = 1 + (t - 1) * 4;
      // a copy: the chain frees its de-normalised latent once decoded
      decoded.push(F.scale(z, 1));
      return F.full(backend, [1, 3, frames, h * 8, w * 8], 0.5 * decoded.length - 0.75);
    },
    dispose() {
      log.events.push('cv dispose');
    },
  } as unknown as CausalContinuousVideoTokenizer;
}

const DV = { vocabSize: 64000, temporalCompression: 4, spatialCompression: 8 };
const text = (rows: number, D = 16) => ({ data: Float32Array.from({ length: rows * D }, (_, i) => (i % 7) / 7), shape: [rows, D] as [number, number] });

describe('the chain: windows -> decoder -> de-normalised latents -> CV decode -> blend', () => {
  it('cpu: each window gets its ids (reflected), T5 text padded to 512 rows, noise [1, 16, 8, h, w], 15 steps, guidance 1.8, fps 24; latent / 0.5 * std + mean per channel and latent frame', async () => {
    const log: Log = { events: [], sampleCalls: [] };
    // 9 latent frames of 1x1 tokens: 2 windows; statistics over 16 channels x 10 latent frames (8 used)
    const mean = Float32Array.from({ length: 160 }, (_, i) => i / 100);
    const std = Float32Array.from({ length: 160 }, (_, i) => 1 + (i % 10) / 10);
    const decoded: Tensor[] = [];
    const ids = Int32Array.from({ length: 9 }, (_, i) => 10 * i);
    const events: string[] = [];
    const r = await decodeArTokensWith(fakeRuntime(log), {
      ids, grid: [9, 1, 1], dv: DV, text: text(5), decoder: 'dec-folder', cvTokenizer: fakeCv(cpu, log, { mean, std }, decoded), backend: cpu,
      onPhase: (p) => events.push(`phase ${p}`), onProgress: (e) => events.push(`${e.stage} ${e.done}/${e.total}`),
    });
    expect(log.sampleCalls.map((c) => c.ids)).toEqual([[0, 10, 20, 30, 40, 50, 60, 70], [60, 70, 80, 70, 60, 70, 80, 70]]);
    for (const c of log.sampleCalls) {
      expect(c).toMatchObject({ textShape: [1, 512, 16], noiseShape: [1, 16, 8, 1, 1], steps: 15, guidance: 1.8, fps: 24, latent: { channels: 16, frames: 8, height: 1, width: 1 } });
    }
    expect(r.latentShape).toEqual([1, 16, 8, 1, 1]);
    expect(r.chunks.length).toBe(2);
    // phases and progress in order: the decoder's 30 steps, then the CV decode of 2 chunks
    expect(events[0]).toBe('phase decoder');
    expect(events.filter((e) => e.startsWith('decoder')).at(-1)).toBe('decoder 30/30');
    expect(events.indexOf('phase cv-decode')).toBe(events.indexOf('decoder 30/30') + 1);
    expect(events.slice(-2)).toEqual(['cv-decode 1/2', 'cv-decode 2/2']);
    // the decoder was freed before the CV decoder ran
    expect(log.events).toEqual(['load decoder dec-folder', 'sample 0', 'sample 1', 'cv decode', 'cv decode']);
    // de-normalisation: window k's latent is (k + 1) * 0.25 everywhere -> * 2 * std[c, t] + mean[c, t]
    for (const [k, zt] of decoded.entries()) {
      const z = await zt.read();
      zt.dispose();
      expect(z.length).toBe(16 * 8);
      for (let c = 0; c < 16; c++) {
        for (let t = 0; t < 8; t++) expect(z[c * 8 + t]).toBeCloseTo(((k + 1) * 0.25 / 0.5) * std[c * 10 + t] + mean[c * 10 + t], 6);
      }
    }
    // blend: chunks of 29 frames (8 latent x 4 + 1) over 2 pixel frames, cut to 1 + 8*4 = 33 frames of 8x8
    expect([r.video.frames, r.video.height, r.video.width]).toEqual([33, 8, 8]);
    const frame = (t: number) => r.video.data[t * 64];
    expect(frame(0)).toBe(-0.25);
    expect(frame(27)).toBe(-0.25); // chunk 0 alone
    expect(frame(28)).toBe(0.25); // blended frame 1 of the overlap: weight 1 on chunk 1
    expect(frame(32)).toBe(0.25);
  });

  it('plan backend, the real tiny CV tokenizer: the decoder\'s weights are freed before the CV tokenizer loads; peak = the larger phase', async () => {
    const be = planBackend();
    const log: Log = { events: [], sampleCalls: [] };
    const elements = 16_000_000; // 64 MB of decoder weights, more than the tiny CV decode takes
    const liveAt: Record<string, number> = {};
    const peaks: Record<string, number> = {};
    let phase = '';
    const r = await decodeArTokensWith(fakeRuntime(log, elements), {
      ids: new Int32Array(3 * 8 * 8), grid: [3, 8, 8], dv: DV, text: text(7), decoder: 'dec', backend: be,
      cvTokenizer: async (b) => {
        liveAt.cvLoad = b.memory().liveBytes;
        const t = await loadCvTokenizer(CV, b);
        t.latentMeanStd = { mean: new Float32Array(16 * 8), std: new Float32Array(16 * 8).fill(1) };
        liveAt.cvLoaded = b.memory().liveBytes;
        return t;
      },
      onPhase: (p) => {
        if (phase) peaks[phase] = be.memory().peakBytes;
        be.resetPeakMemory();
        phase = p;
      },
    });
    peaks[phase] = be.memory().peakBytes;
    expect([r.video.frames, r.video.height, r.video.width]).toEqual([9, 64, 64]);
    const latentBytes = 16 * 8 * 8 * 8 * 4;
    // only the window's latent is live when the CV tokenizer loads
    expect(liveAt.cvLoad).toBe(latentBytes);
    expect(peaks.decoder).toBeGreaterThanOrEqual(elements * 4);
    expect(peaks['cv-decode']).toBeLessThan(elements * 4);
    expect(peaks['cv-decode']).toBeGreaterThan(liveAt.cvLoaded);
    // all freed but the wavelet's constant sign matrices (wavelet.ts caches them per backend for good)
    expect(be.memory().liveBytes).toBeLessThanOrEqual(256);
  }, 60_000);

  it('an aborted signal stops between windows; a failing sampler frees the decoder and what was sampled', async () => {
    const be = planBackend();
    const log: Log = { events: [], sampleCalls: [] };
    const ac = new AbortController();
    const rt = fakeRuntime(log);
    const sample = rt.sample;
    rt.sample = async (m, o) => {
      const z = await sample(m, o);
      ac.abort(new Error('stop here'));
      return z;
    };
    await expect(decodeArTokensWith(rt, {
      ids: new Int32Array(9), grid: [9, 1, 1], dv: DV, text: text(3), decoder: 'dec', backend: be, signal: ac.signal,
      cvTokenizer: fakeCv(be, log, { mean: new Float32Array(16), std: new Float32Array(16) }, []),
    })).rejects.toThrow('stop here');
    expect(log.events).toEqual(['load decoder dec', 'sample 0']);
    expect(be.memory().liveBytes).toBe(0);
  });
});

describe('checks: the decoder, the CV tokenizer, the DV tokenizer and the text against each other', () => {
  const run = { dv: DV, grid: [3, 8, 8] as const, textDim: 16 };
  const d: DecoderGeometry = { vocabSize: 64000, latentChannels: 16, textDim: 16, sigmaData: 0.5 };
  const cv = { latentChannels: 16, temporalCompression: 4, spatialCompression: 8, latentMeanStd: { mean: new Float32Array(128), std: new Float32Array(128) } };

  it('agreeing sizes pass; each disagreement is one UserError naming the folder and both sizes', () => {
    expect(() => checkDecoder(d, run, 'dec')).not.toThrow();
    expect(() => checkCvTokenizer(16, cv, run, 'cv')).not.toThrow();
    expect(() => checkDecoder({ ...d, vocabSize: 320 }, run, 'dec')).toThrow(/^dec: the decoder's token embedding has 320 rows .* codebook 64000 codes/);
    expect(() => checkDecoder({ ...d, textDim: 1024 }, run, 'dec')).toThrow(/^dec: .* 1024 channels .* the text given has 16/);
    expect(() => checkCvTokenizer(4, cv, run, 'cv')).toThrow(/^cv: the CV tokenizer has 16 latent channels, the decoder samples 4/);
    expect(() => checkCvTokenizer(16, { ...cv, temporalCompression: 8 }, run, 'cv')).toThrow(/^cv: the CV tokenizer compresses time 8x, the DV tokenizer 4x/);
    expect(() => checkCvTokenizer(16, { ...cv, spatialCompression: 128 }, run, 'cv')).toThrow(/^cv: the clip's 64x64 frames/);
    expect(() => checkCvTokenizer(16, { ...cv, latentMeanStd: null }, run, 'cv')).toThrow(/^cv: no mean_std\.pt/);
    expect(() => checkCvTokenizer(16, { ...cv, latentMeanStd: { mean: new Float32Array(64), std: new Float32Array(64) } }, run, 'cv')).toThrow(/holds 64 values; expected 16 latent channels x at least 8/);
  });
});
