// countNonFinite on the WebGPU backend against the CPU oracle and against the count planted by
// construction: raw bit patterns of every float storage (quiet, signalling and negative NaNs, ±Inf)
// placed anywhere, the last element included, over filler that holds the finite edge cases a
// sloppy exponent test gets wrong (subnormals, ±0, the largest finite values). Exact: a count.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DType, RawArray } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import { Tensor } from '../../src/engine/tensor.js';
import type { WebGpuBackend } from '../../src/engine/webgpu/backend.js';
import { MAX_GROUPS, MIN_WORDS_PER_INVOCATION, WG } from '../../src/engine/webgpu/kernels/finite.wgsl.js';
import { awkwardDim, cpu, gpu, gpuRuns, randomInts } from '../harness.js';

let be: WebGpuBackend;
beforeAll(async () => {
  be = await gpu(); // no adapter -> the suite fails, never skips
}, 60_000);

type FloatDType = 'f32' | 'bf16' | 'f16';

/** Bit patterns per storage: NaNs (quiet, signalling, negative), infinities, and finite edge cases. */
const BITS: Record<FloatDType, { nan: number[]; inf: number[]; edge: number[]; exp: number }> = {
  f32: {
    nan: [0x7fc00000, 0x7f800001, 0xffffffff, 0xff800001, 0x7fffffff],
    inf: [0x7f800000, 0xff800000],
    edge: [0x00000001, 0x007fffff, 0x7f7fffff, 0xff7fffff, 0x80000000, 0x00800000, 0],
    exp: 0x7f800000,
  },
  bf16: {
    nan: [0x7fc0, 0x7f81, 0xffff, 0xff81, 0x7fff],
    inf: [0x7f80, 0xff80],
    edge: [0x0001, 0x007f, 0x7f7f, 0xff7f, 0x8000, 0x0080, 0],
    exp: 0x7f80,
  },
  f16: {
    nan: [0x7e00, 0x7c01, 0xffff, 0xfc01, 0x7fff],
    inf: [0x7c00, 0xfc00],
    edge: [0x0001, 0x03ff, 0x7bff, 0xfbff, 0x8000, 0x0400, 0],
    exp: 0x7c00,
  },
};

type Kind = 'nan' | 'inf';
interface Planted {
  raw: RawArray;
  nan: number;
  inf: number;
}

/** n elements of finite filler with the given specials written over it (a later one at the same index wins). */
function build(dtype: FloatDType, n: number, seed: number, specials: readonly [number, Kind, number][]): Planted {
  const b = BITS[dtype];
  const words = randomInts(n, seed, 0, 0x7fffffff);
  const edgePick = randomInts(n, seed + 1, 0, 8 * b.edge.length);
  const bits = new Uint32Array(n);
  const width = dtype === 'f32' ? 0xffffffff : 0xffff;
  for (let i = 0; i < n; i++) {
    let v = ((words[i] * 2 + (edgePick[i] & 1)) & width) >>> 0;
    // an all-ones exponent would make the filler special: clear its lowest exponent bit
    if ((v & b.exp) === b.exp) v = (v & ~(b.exp & -b.exp)) >>> 0;
    if (edgePick[i] < b.edge.length) v = b.edge[edgePick[i]];
    bits[i] = v;
  }
  const kindAt = new Map<number, Kind>();
  for (const [at, kind, which] of specials) {
    const i = Math.min(at, n - 1);
    bits[i] = kind === 'nan' ? b.nan[which % b.nan.length] : b.inf[which % b.inf.length];
    kindAt.set(i, kind);
  }
  let nan = 0;
  let inf = 0;
  for (const k of kindAt.values()) if (k === 'nan') nan++; else inf++;
  const raw = dtype === 'f32' ? new Float32Array(bits.buffer) : Uint16Array.from(bits);
  return { raw, nan, inf };
}

async function counts(backend: typeof cpu | WebGpuBackend, raw: RawArray, dtype: DType, shape: readonly number[]): Promise<number[]> {
  const x = F.fromRaw(backend, raw, shape, dtype);
  const c = F.countNonFinite(x);
  expect(c.dtype).toBe('i32');
  expect(c.shape).toEqual([2]);
  const out = Array.from(await c.read());
  x.dispose();
  c.dispose();
  return out;
}

const specialArb = fc.array(fc.tuple(fc.nat(), fc.constantFrom<Kind>('nan', 'inf'), fc.nat(8)), { maxLength: 6 });

describe('countNonFinite', () => {
  it('matches the planted count on both backends (awkward shapes, every float storage)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(awkwardDim(40), { minLength: 1, maxLength: 3 }),
        fc.constantFrom<FloatDType>('f32', 'bf16', 'f16'),
        specialArb,
        fc.boolean(),
        fc.nat(1000),
        async (shape, dtype, specials, lastToo, seed) => {
          const n = shape.reduce((p, d) => p * d, 1);
          const all = lastToo ? [...specials, [n - 1, 'nan', seed] as [number, Kind, number]] : specials;
          const p = build(dtype, n, seed, all.map(([at, k, w]) => [at % n, k, w]));
          const want = [p.nan, p.inf];
          expect(await counts(cpu, p.raw, dtype, shape), `cpu ${dtype} ${shape}`).toEqual(want);
          expect(await counts(be, p.raw, dtype, shape), `webgpu ${dtype} ${shape}`).toEqual(want);
        },
      ),
      gpuRuns(40),
    );
  }, 120_000);

  it('counts only the last element, alone, in every storage and at sizes around the workgroup', async () => {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      for (const n of [1, 2, 3, WG - 1, WG, WG + 1, 2 * WG + 1, 509, 4099]) {
        for (const kind of ['nan', 'inf'] as const) {
          const p = build(dtype, n, n, [[n - 1, kind, n]]);
          const want = kind === 'nan' ? [1, 0] : [0, 1];
          expect(await counts(cpu, p.raw, dtype, [n]), `cpu ${dtype} n=${n} ${kind}`).toEqual(want);
          expect(await counts(be, p.raw, dtype, [n]), `webgpu ${dtype} n=${n} ${kind}`).toEqual(want);
        }
      }
    }
  }, 120_000);

  it('holds the finite edge cases finite: subnormals, ±0, the largest finite values', async () => {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      const edge = BITS[dtype].edge;
      const n = 97 * edge.length;
      const bits = Array.from({ length: n }, (_, i) => edge[i % edge.length]);
      const raw = dtype === 'f32' ? new Float32Array(Uint32Array.from(bits).buffer) : Uint16Array.from(bits);
      expect(await counts(cpu, raw, dtype, [n])).toEqual([0, 0]);
      expect(await counts(be, raw, dtype, [n])).toEqual([0, 0]);
    }
  });

  it('strides over tensors of many workgroups, up to past the most workgroups (partials then a final sum)', async () => {
    // words one workgroup takes before another is added; past MAX_GROUPS of them every invocation loops further
    const group = WG * MIN_WORDS_PER_INVOCATION;
    const cases = [['f32', MAX_GROUPS * group + 17], ['bf16', 2 * (3 * group) + 3], ['f16', 2 * (5 * group) + 1]] as const;
    for (const [dtype, n] of cases) {
      const cap = dtype === 'f32' ? group : 2 * group; // elements per workgroup's share
      const specials: [number, Kind, number][] = [[0, 'nan', 0], [cap, 'inf', 1], [cap + 1, 'nan', 2], [2 * cap - 1, 'inf', 0], [n - 1, 'nan', 3]];
      const p = build(dtype, n, 7, specials);
      expect(await counts(cpu, p.raw, dtype, [n]), `cpu ${dtype} n=${n}`).toEqual([3, 2]);
      expect(await counts(be, p.raw, dtype, [n]), `webgpu ${dtype} n=${n}`).toEqual([3, 2]);
    }
  }, 120_000);

  it('never counts the padding half of the last word of an odd-length half tensor', async () => {
    for (const dtype of ['bf16', 'f16'] as const) {
      const n = 2 * WG + 1;
      const words = new Uint16Array(n + 1);
      words[n] = BITS[dtype].nan[0]; // the padding half: a NaN left by whatever used the buffer before
      const storage = be.alloc(dtype, n);
      be.writeBytes(storage, 0, new Uint8Array(words.buffer));
      const x = new Tensor(storage, [n]);
      const c = F.countNonFinite(x);
      expect(Array.from(await c.read()), dtype).toEqual([0, 0]);
      x.dispose();
      c.dispose();
    }
  });

  it('gives zeros for i32 (bit patterns of NaN and Inf are ordinary integers there) and empty tensors', async () => {
    const raw = Int32Array.from([0x7f800000, 0x7fc00000, -1, 0, 5]);
    expect(await counts(cpu, raw, 'i32', [5])).toEqual([0, 0]);
    expect(await counts(be, raw, 'i32', [5])).toEqual([0, 0]);
    expect(await counts(cpu, new Float32Array(0), 'f32', [0])).toEqual([0, 0]);
    expect(await counts(be, new Float32Array(0), 'f32', [0])).toEqual([0, 0]);
  });

  it('reads values written by a kernel, not only uploads (a NaN made on the device)', async () => {
    for (const backend of [cpu, be] as const) {
      const x = F.fromArray(backend, [0, 1, -1, 2, 0], [5]);
      // 0/0 NaN, ±1/0 ±Inf, 2/0 +Inf, 0/0 NaN
      const y = F.div(x, F.fromArray(backend, [0, 0, 0, 0, 0], [5]));
      expect(Array.from(await F.countNonFinite(y).read()), backend.name).toEqual([2, 3]);
    }
  });
});
