// Rotary position embedding on the WebGPU backend against the CPU oracle: both layouts
// ('bhld', 'blhd'), both pairings ('half' = rotate_half, 'interleaved'), tables [L, R] or
// [1|B, L, R], partial rotation (dims >= R pass through), f32 / bf16 / f16 inputs and tables.
//
// Tolerance: atol 2e-6, rtol 1e-6. Each output is x * cos -/+ partner * sin: the oracle rounds
// the f64 result once to f32, the kernel rounds each f32 product (or fuses them), so outputs of
// magnitude <= 4 differ by at most a couple of f32 ulps; pass-through dims are exact.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RopeMode, RopeParams } from '../../src/engine/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import * as F from '../../src/engine/ops.js';
import { assertClose, awkwardDim, checkAgainstCpu, gpu, gpuRuns, randomValues } from '../harness.js';

const TOL = { atol: 2e-6, rtol: 1e-6 };

/** The primitive's parameters, except that tableB 0 means a table [L, R] (else [tableB, L, R]). */
interface Case extends RopeParams {
  dtype: DType;
  tableDtype: DType;
  seed: number;
}

async function check(c: Case): Promise<void> {
  const be = await gpu();
  const xShape = c.layout === 'bhld' ? [c.B, c.H, c.L, c.D] : [c.B, c.L, c.H, c.D];
  const tShape = c.tableB ? [c.tableB, c.L, c.R] : [c.L, c.R];
  const tn = (c.tableB || 1) * c.L * c.R;
  await checkAgainstCpu(be, `rope ${c.mode} ${c.layout} x[${xShape}] ${c.dtype} table[${tShape}] ${c.tableDtype}`, [
    { values: randomValues(xShape.reduce((a, b) => a * b, 1), `${c.seed}x`, -4, 4), shape: xShape, dtype: c.dtype },
    { values: randomValues(tn, `${c.seed}c`), shape: tShape, dtype: c.tableDtype },
    { values: randomValues(tn, `${c.seed}s`), shape: tShape, dtype: c.tableDtype },
  ], (x, cos, sin) => F.rope(x, cos, sin, { mode: c.mode, layout: c.layout }), TOL);
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    B: fc.integer({ min: 1, max: 3 }),
    H: awkwardDim(6),
    L: awkwardDim(40),
    D: fc.oneof(fc.constantFrom(2, 4, 64, 80, 128), awkwardDim(70)),
    rotFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    perBatch: fc.constantFrom(0, 1, 2),
    mode: fc.constantFrom<RopeMode>('half', 'interleaved'),
    layout: fc.constantFrom<'bhld' | 'blhd'>('bhld', 'blhd'),
    dtype: fc.constantFrom<DType>('f32', 'bf16', 'f16'),
    tableDtype: fc.constantFrom<DType>('f32', 'f32', 'bf16'),
    seed: fc.nat(),
  })
  .map((r) => ({
    B: r.B, H: r.H, L: r.L, D: r.D,
    // an even number of rotated dims, 0..D
    R: 2 * Math.floor((r.rotFrac * r.D) / 2),
    // 0: [L, R] table; 1: [1, L, R]; 2: one table per batch
    tableB: r.perBatch === 2 ? r.B : r.perBatch,
    mode: r.mode, layout: r.layout, dtype: r.dtype, tableDtype: r.tableDtype, seed: r.seed,
  }));

describe('webgpu rope', () => {
  it('matches the oracle on random shapes, layouts, modes, partial rotations and dtypes', async () => {
    await fc.assert(fc.asyncProperty(caseArb, async (c) => { await check(c); }), gpuRuns(30));
  });

  it('full rotation, no rotation, odd head dims, per-batch tables', async () => {
    const base = { B: 2, H: 3, L: 5, tableB: 2, dtype: 'f32' as DType, tableDtype: 'f32' as DType, seed: 1 };
    for (const mode of ['half', 'interleaved'] as const) {
      for (const layout of ['bhld', 'blhd'] as const) {
        await check({ ...base, D: 8, R: 8, mode, layout });
        await check({ ...base, D: 7, R: 4, mode, layout });
        await check({ ...base, D: 6, R: 0, mode, layout });
        await check({ ...base, D: 1, R: 0, mode, layout });
      }
    }
  });

  it('dims past R pass through unchanged; the rotation uses each pair as the formula says', async () => {
    const be = await gpu();
    // one head, one position, D = 6, R = 4: cos = 0, sin = 1 turns (x1, x2) into (-x2, x1)
    const x = F.fromArray(be, [1, 2, 3, 4, 5, 6], [1, 1, 1, 6]);
    const cos = F.fromArray(be, [0, 0, 0, 0], [1, 4]);
    const sin = F.fromArray(be, [1, 1, 1, 1], [1, 4]);
    expect(Array.from(await F.rope(x, cos, sin, { mode: 'half' }).read())).toEqual([-3, -4, 1, 2, 5, 6]);
    expect(Array.from(await F.rope(x, cos, sin, { mode: 'interleaved' }).read())).toEqual([-2, 1, -4, 3, 5, 6]);
  });

  it('more than 65535 workgroups (2D grid folding) and zero-size inputs', async () => {
    const be = await gpu();
    // 65537 * 256 elements: 65538 workgroups of 256 (cheap patterned values: the size is the point)
    const n = 65537 * 256;
    const xv = new Float32Array(n);
    for (let i = 0; i < n; i++) xv[i] = ((i * 37) % 101) / 25 - 2;
    await checkAgainstCpu(be, 'rope over 65538 workgroups', [
      { values: xv, shape: [1, 65537, 1, 256] },
      { values: randomValues(65537 * 2, 'c'), shape: [65537, 2] },
      { values: randomValues(65537 * 2, 's'), shape: [65537, 2] },
    ], (x, cos, sin) => F.rope(x, cos, sin, { mode: 'interleaved', layout: 'blhd' }), TOL);
    const e = F.rope(F.zeros(be, [2, 3, 0, 4]), F.zeros(be, [0, 4]), F.zeros(be, [0, 4]), { mode: 'half' });
    expect(e.shape).toEqual([2, 3, 0, 4]);
    assertClose(await e.read(), new Float32Array(0), TOL, 'zero-size');
  });
});
