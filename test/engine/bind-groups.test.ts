// The dispatch path's bind-group cache (src/engine/webgpu/context.ts bindGroup): repeated work on
// the same buffers reuses its bind groups; a pooled buffer handed to another tensor still binds the
// right data; after trim() (the pool's buffers destroyed) nothing stale is bound.
import { describe, expect, it } from 'vitest';
import * as F from '../../src/engine/ops.js';
import { gpu } from '../harness.js';

const values = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => i * k - 3);

describe('bind-group cache', () => {
  it('creates one bind group for an op repeated on the same buffers', async () => {
    const be = await gpu();
    const a = F.fromArray(be, values(37, 0.5), [37]);
    const b = F.fromArray(be, values(37, -0.25), [37]);
    F.add(a, b).dispose(); // the output buffer now sits in the pool, handed out again below
    await be.sync();
    const before = be.ctx.bindGroupsCreated;
    for (let i = 0; i < 5; i++) F.add(a, b).dispose();
    await be.sync();
    expect(be.ctx.bindGroupsCreated - before).toBe(0);
    a.dispose();
    b.dispose();
  });

  it('binds what each tensor holds when pooled buffers change hands', async () => {
    const be = await gpu();
    for (let round = 0; round < 3; round++) {
      const a = F.fromArray(be, values(64, round + 1), [64]);
      const b = F.fromArray(be, values(64, 2 - round), [64]);
      const y = F.mul(a, b);
      const got = (await y.read()) as Float32Array;
      const want = values(64, round + 1).map((v, i) => Math.fround(v * values(64, 2 - round)[i]));
      expect(Array.from(got)).toEqual(Array.from(want));
      for (const t of [a, b, y]) t.dispose();
    }
  });

  it('binds nothing stale after trim() destroyed the pooled buffers', async () => {
    const be = await gpu();
    const run = async (k: number) => {
      const a = F.fromArray(be, values(100, k), [100]);
      const y = F.scale(a, 2);
      const got = Array.from((await y.read()) as Float32Array);
      a.dispose();
      y.dispose();
      return got;
    };
    const first = await run(1);
    be.ctx.trim();
    const before = be.ctx.bindGroupsCreated;
    expect(await run(1)).toEqual(first);
    expect(be.ctx.bindGroupsCreated - before).toBeGreaterThan(0);
    expect(await run(3)).toEqual(Array.from(values(100, 3).map((v) => v * 2)));
  });
});
