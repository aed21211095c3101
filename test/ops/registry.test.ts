// Every case of the op registry (src/conform/op-cases) on the WebGPU backend against the CPU
// oracle, through the same checkOps that `cosmos-ts check-ops` runs: one test per case, so a
// failure names the op, shape and dtype. The registry holds the tolerances, each argued at the top
// of its file (and of the matching fast-check test beside this one); this file adds none. Also:
// the registry's shape (unique names, every op of the table present, deterministic inputs).
import { beforeAll, describe, expect, it } from 'vitest';
import { OP_CASES, inputValues, opNames, selectOpCases } from '../../src/conform/op-cases/index.js';
import type { Backend } from '../../src/engine/backend.js';
import { checkOps } from '../../src/pipelines/check-ops.js';
import { cpu, webgpu } from '../harness.js';

let be: Backend;
beforeAll(async () => {
  be = await webgpu(); // no adapter -> the suite fails, never skips
}, 60_000);

describe('the op registry', () => {
  it('names every case uniquely and gives it a finite tolerance and a builder', () => {
    const names = OP_CASES.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of OP_CASES) {
      expect(Number.isFinite(c.tol.atol) && c.tol.atol >= 0 && Number.isFinite(c.tol.rtol) && c.tol.rtol >= 0, c.name).toBe(true);
      if (c.flops !== undefined || c.bytes !== undefined) expect(c.formula, c.name).toBeTruthy();
    }
  });

  it('covers every op of the op table', () => {
    const want = [
      'matmul', 'linear', 'attention', 'rope', 'conv1d', 'conv2d', 'conv3d', 'layerNorm', 'rmsNorm', 'groupNorm', 'l2NormalizeChannels',
      'softmax', 'sum', 'mean', 'max', 'min', 'argmax', 'cumsum', 'topk', 'countNonFinite', 'cast', 'where',
      'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'recip', 'square', 'sin', 'cos', 'tanh', 'atanh', 'sigmoid', 'silu', 'relu', 'gelu',
      'geluTanh', 'round', 'floor', 'ceil', 'sign', 'affine', 'clamp', 'powScalar', 'add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'pow',
      'permute', 'slice', 'flip', 'pad', 'expand', 'repeatInterleave', 'upsampleNearest', 'concat', 'setSlice', 'embedding', 'indexSelect',
      'resizeBicubicAA', 'resizeAreaU8', 'resizeU8', 'bilateralFilter', 'canny',
    ];
    const ops = new Set(OP_CASES.map((c) => c.op));
    expect(want.filter((o) => !ops.has(o))).toEqual([]);
    // the factorised tokenizer convs and the Wan VAE's 3x3x3, bf16 weights, the three attention kinds
    const shapes = OP_CASES.map((c) => `${c.op} ${c.shape} ${c.dtype}`).join('\n');
    for (const re of [/conv3d .*k1x3x3/, /conv3d .*k3x1x1/, /conv3d .*k3x3x3/, /linear .*w bf16/, /attention .*prefill/, /attention .*causal/, /attention .*decode/]) {
      expect(shapes).toMatch(re);
    }
  });

  it('selects by op or family and reports unknown names', () => {
    expect(selectOpCases(['conv3d']).cases.every((c) => c.op === 'conv3d')).toBe(true);
    expect(selectOpCases(['norm']).cases.map((c) => c.op)).toContain('groupNorm');
    expect(selectOpCases(['matmul', 'nope', 'x']).unknown).toEqual(['nope', 'x']);
    expect(opNames()).toContain('softmax');
  });

  it('makes the same inputs from the same seed, other inputs from another', () => {
    const spec = { shape: [5, 7] };
    expect(Array.from(inputValues(spec, 3, 0))).toEqual(Array.from(inputValues(spec, 3, 0)));
    expect(Array.from(inputValues(spec, 3, 0))).not.toEqual(Array.from(inputValues(spec, 4, 0)));
    expect(Array.from(inputValues(spec, 3, 0))).not.toEqual(Array.from(inputValues(spec, 3, 1)));
  });
});

describe('every registry case on webgpu against the cpu oracle', () => {
  it.each(OP_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { results } = await checkOps({ backends: [be], oracle: cpu, cases: [c], timeReps: 0 });
    expect(results).toHaveLength(1);
    const r = results[0];
    expect(r.error, c.name).toBeNull();
    expect(r.pass, `${c.name}: max_abs ${r.max_abs} max_rel ${r.max_rel} worst ${JSON.stringify(r.worst)}`).toBe(true);
  });
});
