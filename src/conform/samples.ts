// The second check against PyTorch besides the fixture cases: the three sample clips of
// weights/samples round-tripped through the two tiny trained tokenizers
// (weights/cosmos-tokenizer-tiny-{cv,dv}4x8x8), against the upstream model's outputs
// (sample_<i>.safetensors) and metrics (expected.json). The targets: PSNR within 0.01 dB and
// SSIM within 1e-4 of PyTorch's, plus half a unit in the last digit expected.json was rounded
// to, and for DV every token id equal to PyTorch's.
import { type FileSystem, fileSystem, readJsonObject } from '../io/files.js';
import { join } from '../io/path.js';
import { openSafetensors } from '../io/safetensors.js';
import { psnr, ssim } from '../metrics/quality.js';

export type TinyModel = 'cv' | 'dv';
export const TINY_MODELS: readonly TinyModel[] = ['cv', 'dv'];

/** The tiny trained tokenizer's folder under the weights folder. */
export const tinyModelDir = (weights: string, m: TinyModel): string => join(weights, `cosmos-tokenizer-tiny-${m}4x8x8`);
/** The sample clips' folder under the weights folder. */
export const samplesDir = (weights: string): string => join(weights, 'samples');

/** PyTorch's metrics for one model on one sample (expected.json). */
export interface ExpectedMetrics {
  psnr: number;
  ssim: number;
  unique_tokens?: number;
}

export interface ExpectedSample {
  name: string;
  tensors: string;
  shape: number[];
  cv: ExpectedMetrics;
  dv: ExpectedMetrics;
}

export interface ExpectedJson {
  samples: ExpectedSample[];
}

export async function readExpected(dir: string, fs: FileSystem = fileSystem()): Promise<ExpectedJson> {
  return (await readJsonObject(join(dir, 'expected.json'), 'expected.json', fs)) as unknown as ExpectedJson;
}

/** A sample's tensors (sample_<i>.safetensors): the input and PyTorch's outputs. */
export interface SampleTensors {
  name: string;
  /** [1, 3, 17, 64, 64] in [-1, 1] */
  shape: number[];
  input: Float32Array;
  latent_cv: Float32Array;
  rec_cv: Float32Array;
  rec_dv: Float32Array;
  indices_dv: Int32Array;
  codes_dv: Float32Array;
}

export async function readSample(spec: ExpectedSample, dir: string, fs: FileSystem = fileSystem()): Promise<SampleTensors> {
  const f = await openSafetensors(join(dir, spec.tensors), fs);
  try {
    const get = async (name: string) => (await f.read(name)).raw;
    const input = await f.read('input');
    return {
      name: spec.name,
      shape: [...input.shape],
      input: input.raw as Float32Array,
      latent_cv: (await get('latent_cv')) as Float32Array,
      rec_cv: (await get('rec_cv')) as Float32Array,
      rec_dv: (await get('rec_dv')) as Float32Array,
      indices_dv: (await get('indices_dv')) as Int32Array,
      codes_dv: (await get('codes_dv')) as Float32Array,
    };
  } finally {
    await f.close();
  }
}

/** PSNR / SSIM (src/metrics, as expected.json defines them) of a reconstruction of a sample. */
export function sampleMetrics(rec: ArrayLike<number>, sample: SampleTensors): { psnr: number; ssim: number } {
  return { psnr: psnr(rec, sample.input), ssim: ssim(rec, sample.input, sample.shape) };
}

/** The agreement targets with PyTorch. */
export const PSNR_TOL_DB = 0.01;
export const SSIM_TOL = 1e-4;

/** Digits after the point of a number as JSON printed it (shortest round-trip form). */
function decimalsOf(x: number): number {
  const s = String(x);
  if (/e/i.test(s)) throw new RangeError(`expected.json value ${s} is not in fixed notation`);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/**
 * Half a unit in the last place expected.json's metrics were rounded to. Python's round()
 * drops trailing zeros (16.15 is 16.1500), so the precision of a metric is the most digits any
 * of its printed values has (4 for PSNR, 5 for SSIM in the vendored file).
 */
export function expectedRounding(exp: ExpectedJson): { psnr: number; ssim: number } {
  const all = exp.samples.flatMap((s) => [s.cv, s.dv]);
  const half = (d: number) => 0.5 * 10 ** -d;
  return {
    psnr: half(Math.max(...all.map((m) => decimalsOf(m.psnr)))),
    ssim: half(Math.max(...all.map((m) => decimalsOf(m.ssim)))),
  };
}

export function distinctCount(ids: Int32Array): number {
  return new Set(ids).size;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** One sample round trip judged against PyTorch. */
export interface SampleCheck {
  psnr: number;
  ssim: number;
  wantPsnr: number;
  wantSsim: number;
  /** DV: token ids equal to PyTorch's, of how many */
  idsMatch?: number;
  idsTotal?: number;
  /** the largest difference from PyTorch's raw reconstruction (rec_cv / rec_dv) */
  maxRecDiff: number;
  pass: boolean;
}

/**
 * Judge a raw (unclamped) reconstruction of `sample` by model `m` (and for DV its token ids)
 * against expected.json's metrics `want` and PyTorch's tensors.
 */
export function checkSample(
  m: TinyModel,
  sample: SampleTensors,
  want: ExpectedMetrics,
  round: { psnr: number; ssim: number },
  got: { rec: ArrayLike<number>; indices?: Int32Array },
): SampleCheck {
  const q = sampleMetrics(got.rec, sample);
  const c: SampleCheck = {
    psnr: q.psnr, ssim: q.ssim, wantPsnr: want.psnr, wantSsim: want.ssim,
    maxRecDiff: maxAbsDiff(got.rec, m === 'cv' ? sample.rec_cv : sample.rec_dv), pass: false,
  };
  let idsOk = true;
  if (m === 'dv') {
    const ids = got.indices ?? new Int32Array(0);
    let same = 0;
    for (let k = 0; k < ids.length; k++) if (ids[k] === sample.indices_dv[k]) same++;
    c.idsMatch = same;
    c.idsTotal = sample.indices_dv.length;
    idsOk = ids.length === c.idsTotal && same === c.idsTotal;
  }
  c.pass = Math.abs(c.psnr - c.wantPsnr) <= PSNR_TOL_DB + round.psnr && Math.abs(c.ssim - c.wantSsim) <= SSIM_TOL + round.ssim && idsOk;
  return c;
}
