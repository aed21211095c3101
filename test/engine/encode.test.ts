// Work recorded on the context's encoder without a submit of its own (GpuContext.encode: the
// texture-fed matmul, conv, norm and attention entries): many such calls back to back in one
// command buffer, reusing pooled textures, give the oracle's results; a texture handed
// to destroyAfterSubmit outlives the recorded work that uses it.
import { describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { assertClose, cpu, gpu, randomValues } from '../harness.js';

describe('GpuContext.encode', () => {
  it('destroyAfterSubmit waits for the next flush when work is recorded, else destroys at once', async () => {
    const be = await gpu();
    await be.sync();
    const destroyed: string[] = [];
    be.ctx.destroyAfterSubmit({ destroy: () => destroyed.push('idle') });
    expect(destroyed).toEqual(['idle']);
    const x = F.fromArray(be, randomValues(64, 1), [64]);
    const y = F.exp(x); // recorded, not submitted
    be.ctx.destroyAfterSubmit({ destroy: () => destroyed.push('pending') });
    expect(destroyed).toEqual(['idle']);
    be.ctx.flush();
    expect(destroyed).toEqual(['idle', 'pending']);
    for (const t of [x, y]) t.dispose();
  });

  it('texture-fed calls chained in one command buffer, pooled textures handed out again, match the oracle', async () => {
    const be = await gpu();
    await be.sync();
    const make = (b: Backend, shape: number[], seed: number) => F.fromArray(b, randomValues(shape.reduce((p, q) => p * q, 1), seed), shape);
    // the same chain on both backends; the pools hand the same textures to later calls while the
    // earlier ones are still only recorded
    const chain = (b: Backend): Tensor[] => {
      const outs: Tensor[] = [];
      for (let i = 0; i < 4; i++) {
        const C = 8 + 4 * (i % 2);
        const x = make(b, [1, C, 3, 8, 12], 10 + i);
        const w = make(b, [C, C, 1, 3, 3], 20 + i);
        const y = F.conv(x, w, null, { padding: [0, 1, 1] });
        const n = F.groupNorm(y, 4, null, null, 1e-6);
        const a = make(b, [80 + 16 * i, 96], 30 + i);
        const m = F.matmul(a, make(b, [96, 64], 40 + i));
        const q = make(b, [1, 2, 16, 16], 50 + i);
        const at = F.attention(q, make(b, [1, 2, 20, 16], 60 + i), make(b, [1, 2, 20, 16], 70 + i));
        outs.push(n, m, at);
      }
      return outs;
    };
    const want = chain(cpu);
    const ctx = be.ctx;
    const encode = ctx.encode.bind(ctx);
    let encoded = 0;
    ctx.encode = (fn) => {
      encoded++;
      encode(fn);
    };
    let got: Tensor[];
    try {
      got = chain(be); // nothing read until every call is recorded
    } finally {
      ctx.encode = encode;
    }
    // every conv, norm, matmul and attention call took a texture-fed entry
    expect(encoded).toBe(16);
    for (let k = 0; k < want.length; k++) assertClose(await got[k].read(), await want[k].read(), { atol: 2e-5, rtol: 2e-5 }, `output ${k}`);
  });
});
