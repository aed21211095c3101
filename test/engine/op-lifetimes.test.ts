// Every op called outside any scope leaves nothing behind but its result: the views an op makes
// on the way (its output reshaped, an input lifted to a higher rank for broadcasting) are freed
// with it. Pipelines call ops between phases, outside scopes; a view left alive there kept its
// storage (a latent, a frame) for the rest of the process.
import { describe, expect, it } from 'vitest';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { countingCpu } from '../harness.js';

describe('ops outside a scope', () => {
  const { backend: be, liveBytes } = countingCpu();
  const t = (shape: number[], dtype: 'f32' | 'i32' = 'f32') => F.fromArray(be, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (i % 7) - 3), shape, dtype);
  // each case makes its arguments first (not counted), then runs the op
  const cases: [string, () => { args: Tensor[]; run: () => Tensor | Tensor[] }][] = [
    ['add (broadcast)', () => { const x = t([2, 3, 4]); const y = t([4]); return { args: [x, y], run: () => F.add(x, y) }; }],
    ['where', () => { const x = t([2, 3, 4]); const y = t([4]); return { args: [x, y], run: () => F.where(x, x, y) }; }],
    ['sum', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.sum(x, 1) }; }],
    ['argmax', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.argmax(x, -1) }; }],
    ['softmax', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.softmax(x, -1) }; }],
    ['cumsum', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.cumsum(x, -1) }; }],
    ['topk', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.topk(x, 2) }; }],
    ['expand', () => { const y = t([4]); return { args: [y], run: () => F.expand(y, [2, 3, 4]) }; }],
    ['embedding', () => { const w = t([5, 4]); const ids = F.fromArray(be, [0, 4, 2], [3], 'i32'); return { args: [w, ids], run: () => F.embedding(w, ids) }; }],
    ['matmul', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.matmul(x, x, { transB: true }) }; }],
    ['linear', () => { const x = t([2, 3, 4]); const w = t([6, 4]); return { args: [x, w], run: () => F.linear(x, w) }; }],
    ['conv', () => { const x = t([1, 2, 3, 4]); const w = t([3, 2, 1, 1]); return { args: [x, w], run: () => F.conv(x, w) }; }],
    ['layerNorm', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.layerNorm(x, null, null, 1e-5) }; }],
    ['rmsNorm', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.rmsNorm(x, null, 1e-5) }; }],
    ['groupNorm', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.groupNorm(x, 1, null, null, 1e-5) }; }],
    ['l2NormalizeChannels', () => { const x = t([2, 3, 4]); return { args: [x], run: () => F.l2NormalizeChannels(x, null, 1e-12) }; }],
    ['attention (mask of rank 2)', () => {
      const q = t([1, 2, 3, 4]);
      const m = F.zeros(be, [3, 3]);
      return { args: [q, m], run: () => F.attention(q, q, q, { mask: m }) };
    }],
  ];
  for (const [name, make] of cases) {
    it(name, () => {
      const { args, run } = make();
      const before = liveBytes();
      const out = run();
      for (const o of Array.isArray(out) ? out : [out]) o.dispose();
      expect(liveBytes()).toBe(before);
      for (const a of args) a.dispose();
    });
  }

  it('reshape views share their storage and free it with the last one', () => {
    const before = liveBytes();
    const x = t([2, 3, 4]);
    const v = F.reshape(x, [6, 4]);
    x.dispose();
    expect(liveBytes() - before).toBe(96);
    v.dispose();
    expect(liveBytes()).toBe(before);
  });
});
