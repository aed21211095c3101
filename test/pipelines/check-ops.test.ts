// checkOps, the library behind `cosmos-ts check-ops`: the comparison (tolerance, NaN / infinity,
// exact integers), typed results with progress events, a kernel that disagrees or throws as a
// failed result (not an exception), unknown op names, and cancellation between cases. Runs on
// the CPU backend against a second CPU instance as the oracle (cheap; the WebGPU side is
// test/ops/registry.test.ts).
import { describe, expect, it } from 'vitest';
import { OP_CASES, makeCase } from '../../src/conform/op-cases/index.js';
import { CpuBackend } from '../../src/engine/cpu/backend.js';
import { CancelledError } from '../../src/engine/errors.js';
import * as F from '../../src/engine/ops.js';
import { UnknownOpError, checkOps, compareValues } from '../../src/pipelines/check-ops.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { cpu } from '../harness.js';

describe('compareValues', () => {
  const tol = { atol: 1e-3, rtol: 1e-2 };

  it('passes within atol + rtol |want| and reports the largest errors', () => {
    const c = compareValues([1.0005, 100.5, 0], [1, 100, 0], tol);
    expect(c.pass).toBe(true);
    expect(c.max_abs).toBeCloseTo(0.5, 6);
    expect(c.max_rel).toBeCloseTo(0.005, 6);
    expect(c.worst).toBe(-1);
  });

  it('names the element furthest out of tolerance', () => {
    const c = compareValues([1, 2.1, 3.5], [1, 2, 3], tol);
    expect(c.pass).toBe(false);
    expect(c.worst).toBe(2);
  });

  it('matches NaN with NaN and an infinity with the same infinity only', () => {
    expect(compareValues([NaN, Infinity, -Infinity], [NaN, Infinity, -Infinity], tol).pass).toBe(true);
    const nan = compareValues([1, NaN], [1, 2], tol);
    expect([nan.pass, nan.worst, nan.max_abs]).toEqual([false, 1, Infinity]);
    expect(compareValues([Infinity], [-Infinity], tol).pass).toBe(false);
    expect(compareValues([1e30], [Infinity], tol).pass).toBe(false);
  });

  it('compares integer outputs exactly whatever the tolerance', () => {
    expect(compareValues(Int32Array.from([5]), Int32Array.from([6]), { atol: 10, rtol: 1 }, true).pass).toBe(false);
    expect(compareValues(Int32Array.from([5]), Int32Array.from([6]), { atol: 10, rtol: 1 }).pass).toBe(true);
  });

  it('fails outputs of different lengths', () => {
    expect(compareValues([1, 2], [1], tol).pass).toBe(false);
  });
});

describe('checkOps', () => {
  const oracle = new CpuBackend();

  it('returns one typed result per case, in order, each also sent as a progress event', async () => {
    const events: ProgressEvent[] = [];
    const seen: string[] = [];
    const r = await checkOps({ backends: [cpu], oracle, ops: ['softmax', 'conv3d'], onProgress: (e) => events.push(e), onResult: (x) => seen.push(x.case) });
    const want = OP_CASES.filter((c) => c.op === 'softmax' || c.op === 'conv3d').map((c) => c.name);
    expect(r.results.map((x) => x.case)).toEqual(want);
    expect(seen).toEqual(want);
    expect([r.passed, r.failed]).toEqual([want.length, 0]);
    for (const x of r.results) {
      expect(x).toMatchObject({ backend: 'cpu', pass: true, error: null, worst: null, gpu_seconds: null });
      expect(x.seconds).toBeGreaterThanOrEqual(0);
      expect(x.max_abs).toBe(0); // the same code on the same inputs
    }
    expect(events[0]).toMatchObject({ stage: 'check-ops', done: 0, total: want.length, unit: 'cases' });
    expect(events.at(-1)).toMatchObject({ done: want.length, total: want.length });
    expect(events.at(-1)!.detail!.result).toBe(r.results.at(-1));
  });

  it('reports a kernel that disagrees with the oracle as a failed result naming the element', async () => {
    // an "op" that is off by 1e-3 everywhere except on the oracle
    const wrong = makeCase({
      op: 'drift', family: 'test', shape: '9', dtype: 'f32', tol: { atol: 1e-4, rtol: 0 },
      inputs: [{ shape: [9] }],
      fn: (x) => F.affine(x, 1, x.backend === oracle ? 0 : 1e-3),
    });
    const exact = makeCase({
      op: 'same', family: 'test', shape: '9', dtype: 'f32', tol: { atol: 0, rtol: 0 }, inputs: [{ shape: [9] }], fn: (x) => F.neg(x),
    });
    const r = await checkOps({ backends: [cpu], oracle, cases: [wrong, exact] });
    expect([r.passed, r.failed]).toEqual([1, 1]);
    const bad = r.results[0];
    expect(bad.pass).toBe(false);
    expect(bad.error).toBeNull();
    expect(bad.max_abs).toBeCloseTo(1e-3, 6);
    expect(bad.worst).not.toBeNull();
    expect(bad.worst!.output).toBe(0);
    expect(bad.worst!.got - bad.worst!.want).toBeCloseTo(1e-3, 6);
  });

  it('reports a case that throws, or whose outputs differ in shape, as failed with the error', async () => {
    const throws = makeCase({
      op: 'boom', family: 'test', shape: '3', dtype: 'f32', tol: { atol: 0, rtol: 0 }, inputs: [{ shape: [3] }],
      fn: (x) => {
        if (x.backend !== oracle) throw new RangeError('kernel exploded');
        return F.neg(x);
      },
    });
    const reshaped = makeCase({
      op: 'shape', family: 'test', shape: '6', dtype: 'f32', tol: { atol: 0, rtol: 0 }, inputs: [{ shape: [6] }],
      fn: (x) => (x.backend === oracle ? F.neg(x) : F.neg(x).reshape([2, 3])),
    });
    const r = await checkOps({ backends: [cpu], oracle, cases: [throws, reshaped] });
    expect(r.failed).toBe(2);
    expect(r.results[0].error).toBe('RangeError: kernel exploded');
    expect(r.results[1].error).toMatch(/^Mismatch: output 0 is f32 \[2,3\], the oracle's f32 \[6\]/);
  });

  it('refuses unknown op names before running anything, naming the known ones', async () => {
    let ran = false;
    const err = await checkOps({ backends: [cpu], oracle, ops: ['softmax', 'no-such-op'], onProgress: () => { ran = true; } }).catch((e) => e);
    expect(err).toBeInstanceOf(UnknownOpError);
    expect(err.message).toMatch(/"no-such-op": no such op; known ops: .*matmul/);
    expect(ran).toBe(false);
  });

  it('stops between cases when the signal aborts', async () => {
    const ac = new AbortController();
    const err = await checkOps({
      backends: [cpu], oracle, ops: ['unary'], signal: ac.signal,
      onResult: (x) => { if (x.op === 'exp') ac.abort(); },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(CancelledError);
  });

  it('draws the same inputs for the same seed (an oracle run twice agrees bit for bit)', async () => {
    const r = await checkOps({ backends: [oracle], oracle: cpu, ops: ['attention'], seed: 7, timeReps: 0 });
    expect(r.results.every((x) => x.pass && x.max_abs === 0)).toBe(true);
  });
});
