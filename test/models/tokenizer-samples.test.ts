// The tiny TRAINED tokenizers (weights/cosmos-tokenizer-tiny-{cv,dv}4x8x8) on the three sample
// clips of weights/samples, against the upstream PyTorch model's outputs in
// sample_<i>.safetensors and its metrics in expected.json, on the CPU backend and on WebGPU
// (required: fails, never skips, without an adapter).
//
// Tolerances:
// - latent_cv, codes_dv, rec_cv, rec_dv: |got - want| <= atol + rtol |want| with the tolerance of
//   the vendored tokenizer fixtures (test/fixtures/tokenizer/{cv,dv}_video/case.json: atol 2e-4,
//   rtol 2e-3), read from those files;
// - indices_dv: exactly equal (and as many distinct ids as expected.json's unique_tokens);
// - PSNR within 0.01 dB and SSIM within 1e-4 of PyTorch's. expected.json is rounded (PSNR to 4
//   decimals, SSIM to 5), so each metric is checked twice: against the same metric (src/metrics)
//   of PyTorch's own reconstruction within 0.01 dB / 1e-4, and against expected.json within
//   0.01 dB / 1e-4 plus half a unit in its last digit. PyTorch's reconstruction's metric must
//   itself round to the expected.json value (half a unit), which pins src/metrics to the
//   definition the numbers were made with.
// Each model is loaded once per backend and reused for the three clips; every clip goes through
// the roundtrip pipeline (one streaming chunk of 17 frames = the whole clip, as PyTorch encoded it;
// DV decoded from the token ids), unclamped so that it compares with PyTorch's raw output.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import {
  PSNR_TOL_DB, SSIM_TOL, type SampleTensors, type TinyModel, TINY_MODELS, distinctCount, expectedRounding, readExpected, readSample,
  sampleMetrics, samplesDir, tinyModelDir,
} from '../../src/conform/samples.js';
import { loadVideoTokenizer, roundtrip, type VideoModel } from '../../src/pipelines/tokenizer.js';
import { assertClose, cpu, type Tol, webgpu } from '../harness.js';

const WEIGHTS = fileURLToPath(new URL('../../weights', import.meta.url));
const SAMPLES_DIR = samplesDir(WEIGHTS);

const fixtureTol = (name: string): Tol =>
  (JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/tokenizer/${name}/case.json`, import.meta.url)), 'utf8')) as { tolerance: Tol }).tolerance;
const TOL: Record<TinyModel, Tol> = { cv: fixtureTol('cv_video'), dv: fixtureTol('dv_video') };

const EXPECTED = await readExpected(SAMPLES_DIR);
const ROUND = expectedRounding(EXPECTED);
const SAMPLES: SampleTensors[] = await Promise.all(EXPECTED.samples.map((s) => readSample(s, SAMPLES_DIR)));
/** The metrics of PyTorch's own reconstructions, by src/metrics. */
const PT_METRICS = SAMPLES.map((s) => ({ cv: sampleMetrics(s.rec_cv, s), dv: sampleMetrics(s.rec_dv, s) }));

// one clip through the CPU backend takes ~5 s to encode and ~10 s to decode on a 2-core machine
const ROUND_TRIP_TIMEOUT = 600_000;
const LOAD_TIMEOUT = 300_000;

describe('tokenizer samples: the vendored files', () => {
  it('the tolerances are the fixtures\' (atol 2e-4, rtol 2e-3)', () => {
    expect(TOL.cv).toEqual({ atol: 2e-4, rtol: 2e-3 });
    expect(TOL.dv).toEqual({ atol: 2e-4, rtol: 2e-3 });
  });

  it('three 17x64x64 clips; expected.json rounded to 4 (PSNR) and 5 (SSIM) decimals', () => {
    expect(SAMPLES.map((s) => s.name)).toEqual(['sample_0', 'sample_1', 'sample_2']);
    for (const s of SAMPLES) expect(s.shape).toEqual([1, 3, 17, 64, 64]);
    expect(ROUND.psnr).toBeCloseTo(5e-5, 12);
    expect(ROUND.ssim).toBeCloseTo(5e-6, 12);
  });

  for (let i = 0; i < SAMPLES.length; i++) {
    for (const m of TINY_MODELS) {
      it(`src/metrics on PyTorch's ${m} reconstruction of ${SAMPLES[i].name} rounds to expected.json`, () => {
        const want = EXPECTED.samples[i][m];
        const got = PT_METRICS[i][m];
        // 1e-9 relative slack for the binary representation of the printed decimal
        expect(Math.abs(got.psnr - want.psnr), `psnr ${got.psnr} vs ${want.psnr}`).toBeLessThanOrEqual(ROUND.psnr * (1 + 1e-9));
        expect(Math.abs(got.ssim - want.ssim), `ssim ${got.ssim} vs ${want.ssim}`).toBeLessThanOrEqual(ROUND.ssim * (1 + 1e-9));
        if (m === 'dv') expect(distinctCount(SAMPLES[i].indices_dv)).toBe(want.unique_tokens);
      });
    }
  }
});

function firstMismatch(got: Int32Array, want: Int32Array): string {
  let n = 0;
  let first = -1;
  for (let k = 0; k < want.length; k++) {
    if (got[k] !== want[k]) {
      n++;
      if (first < 0) first = k;
    }
  }
  return n ? `${n} of ${want.length} ids differ; first at ${first}: got ${got[first]}, want ${want[first]}` : '';
}

for (const backendName of ['cpu', 'webgpu'] as const) {
  describe(`tokenizer samples on ${backendName}`, () => {
    let backend: Backend;
    const models = new Map<TinyModel, VideoModel>();

    beforeAll(async () => {
      backend = backendName === 'cpu' ? cpu : await webgpu();
      for (const m of TINY_MODELS) models.set(m, await loadVideoTokenizer(tinyModelDir(WEIGHTS, m), backend));
    }, LOAD_TIMEOUT);

    afterAll(() => {
      for (const m of models.values()) m.dispose();
    });

    for (let i = 0; i < SAMPLES.length; i++) {
      const s = SAMPLES[i];
      for (const m of TINY_MODELS) {
        it(`${m}: ${s.name}`, async () => {
          const model = models.get(m)!;
          expect(model.kind).toBe(m.toUpperCase());
          const [, , frames, height, width] = s.shape;
          const rt = await roundtrip(model, { data: s.input, frames, height, width }, { clamp: false });
          const tokens = await rt.tokens.read();
          rt.tokens.dispose();
          const rec = rt.reconstruction.data;
          expect([rt.reconstruction.frames, rt.reconstruction.height, rt.reconstruction.width]).toEqual([frames, height, width]);
          const label = `${backendName} ${m} ${s.name}`;
          if (m === 'cv') {
            expect(tokens.latent!.shape).toEqual([1, 16, 5, 8, 8]);
            assertClose(tokens.latent!.data, s.latent_cv, TOL.cv, `${label} latent`);
            assertClose(rec, s.rec_cv, TOL.cv, `${label} reconstruction`);
          } else {
            const ids = tokens.indices!.data;
            expect(tokens.indices!.shape).toEqual([1, 5, 8, 8]);
            expect(ids.length, `${label} ids`).toBe(s.indices_dv.length);
            expect(firstMismatch(ids, s.indices_dv), `${label} ids`).toBe('');
            expect(distinctCount(ids)).toBe(EXPECTED.samples[i].dv.unique_tokens);
            assertClose(tokens.codes!.data, s.codes_dv, TOL.dv, `${label} codes`);
            assertClose(rec, s.rec_dv, TOL.dv, `${label} reconstruction`);
          }
          const q = sampleMetrics(rec, s);
          // the pipeline's own metrics are the same definition (src/metrics clamps first)
          expect(rt.quality).toEqual(q);
          const pt = PT_METRICS[i][m];
          const want = EXPECTED.samples[i][m];
          expect(Math.abs(q.psnr - pt.psnr), `${label} psnr ${q.psnr} vs PyTorch's reconstruction ${pt.psnr}`).toBeLessThanOrEqual(PSNR_TOL_DB);
          expect(Math.abs(q.ssim - pt.ssim), `${label} ssim ${q.ssim} vs PyTorch's reconstruction ${pt.ssim}`).toBeLessThanOrEqual(SSIM_TOL);
          expect(Math.abs(q.psnr - want.psnr), `${label} psnr ${q.psnr} vs expected.json ${want.psnr}`).toBeLessThanOrEqual(PSNR_TOL_DB + ROUND.psnr);
          expect(Math.abs(q.ssim - want.ssim), `${label} ssim ${q.ssim} vs expected.json ${want.ssim}`).toBeLessThanOrEqual(SSIM_TOL + ROUND.ssim);
        }, ROUND_TRIP_TIMEOUT);
      }
    }
  });
}
