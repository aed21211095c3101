// Kernel timing with timestamp queries (src/engine/webgpu/timestamps.ts, Backend.timeKernels).
// The software adapter here has no 'timestamp-query', so the measuring path is tested against a
// fake device that records what the recorder asks for and hands back chosen timestamps: the pairs
// given to passes, query sets filled and a new one started, the resolve and copy of exactly the
// pairs written, and the arithmetic of the durations. On the real adapter the fallback is tested:
// null time, the work done all the same.
import { describe, expect, it } from 'vitest';
import * as F from '../../src/engine/ops.js';
import { PAIRS_PER_SET, TimestampRecorder, type TimestampDevice, passNanoseconds } from '../../src/engine/webgpu/timestamps.js';
import { gpu } from '../harness.js';

describe('passNanoseconds', () => {
  it('sums end - begin over the pairs', () => {
    expect(passNanoseconds(BigUint64Array.from([100n, 350n, 1000n, 1001n]), 2)).toBe(251);
  });

  it('counts a pass whose end is not after its begin as 0, and ignores timestamps past the pairs asked for', () => {
    expect(passNanoseconds(BigUint64Array.from([500n, 400n, 10n, 10n, 7n, 9n, 1n, 1000n]), 3)).toBe(2);
  });

  it('keeps nanoseconds exact beyond 2^53 (device clocks count from boot)', () => {
    const base = 2n ** 60n;
    expect(passNanoseconds(BigUint64Array.from([base, base + 123456789n]), 1)).toBe(123456789);
  });

  it('refuses fewer timestamps than pairs', () => {
    expect(() => passNanoseconds(new BigUint64Array(3), 2)).toThrow(RangeError);
  });
});

/** A device that hands out query sets and, when resolved, the timestamps of `clock(set, query)`. */
function fakeDevice(clock: (set: number, query: number) => bigint) {
  const log: string[] = [];
  const sets: { id: number; count: number; destroyed: boolean }[] = [];
  interface FakeBuffer { size: number; data: BigUint64Array; destroyed: boolean }
  const device = {
    createQuerySet: (d: { type: string; count: number }) => {
      const s = { id: sets.length, count: d.count, destroyed: false, destroy() { this.destroyed = true; } };
      sets.push(s);
      log.push(`querySet ${d.type} ${d.count}`);
      return s;
    },
    createBuffer: (d: { size: number }) => ({
      size: d.size, data: new BigUint64Array(d.size / 8), destroyed: false,
      destroy() { this.destroyed = true; },
      mapAsync: async () => undefined,
      getMappedRange() { return this.data.buffer; },
      unmap: () => undefined,
    }),
    createCommandEncoder: () => {
      const ops: (() => void)[] = [];
      return {
        resolveQuerySet: (q: { id: number }, first: number, count: number, dst: FakeBuffer, off: number) => {
          log.push(`resolve set ${q.id} [${first}, ${first + count})`);
          ops.push(() => { for (let i = 0; i < count; i++) dst.data[off / 8 + i] = clock(q.id, first + i); });
        },
        copyBufferToBuffer: (src: FakeBuffer, so: number, dst: FakeBuffer, dO: number, size: number) => {
          ops.push(() => dst.data.set(src.data.subarray(so / 8, (so + size) / 8), dO / 8));
        },
        finish: () => ops,
      };
    },
    queue: { submit: (cmds: (() => void)[][]) => { for (const c of cmds) for (const op of c) op(); } },
  };
  return { device: device as unknown as TimestampDevice, log, sets };
}

describe('TimestampRecorder', () => {
  // the recorder runs where WebGPU's globals exist; give the fake run the flag values it names
  const g = globalThis as Record<string, unknown>;
  g.GPUBufferUsage ??= { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, QUERY_RESOLVE: 512 };
  g.GPUMapMode ??= { READ: 1 };

  it('gives each pass the next (begin, end) pair and sums their durations', async () => {
    // pass i of set s lasts 10 * (i + 1) + s ns
    const { device, log } = fakeDevice((s, q) => 10n ** 12n + BigInt(1000 * Math.floor(q / 2) + (q % 2 ? 10 * (Math.floor(q / 2) + 1) + s : 0)));
    const rec = new TimestampRecorder(device, 4);
    const writes = Array.from({ length: 3 }, () => rec.nextWrites());
    expect(writes.map((w) => [w.beginningOfPassWriteIndex, w.endOfPassWriteIndex])).toEqual([[0, 1], [2, 3], [4, 5]]);
    expect(rec.passes).toBe(3);
    expect(await rec.read()).toBe(10 + 20 + 30);
    expect(log).toEqual(['querySet timestamp 8', 'resolve set 0 [0, 6)']);
  });

  it('starts a new query set when one is full and resolves only the pairs written', async () => {
    const { device, log, sets } = fakeDevice((s, q) => (q % 2 ? BigInt(100 * (s + 1)) : 0n));
    const rec = new TimestampRecorder(device, 2);
    const w = Array.from({ length: 5 }, () => rec.nextWrites());
    expect(w.map((x) => [sets.indexOf(x.querySet as unknown as (typeof sets)[number]), x.beginningOfPassWriteIndex])).toEqual([[0, 0], [0, 2], [1, 0], [1, 2], [2, 0]]);
    expect(rec.passes).toBe(5);
    // set 0: 2 passes of 100, set 1: 2 of 200, set 2: 1 of 300
    expect(await rec.read()).toBe(2 * 100 + 2 * 200 + 300);
    expect(log.filter((l) => l.startsWith('resolve'))).toEqual(['resolve set 0 [0, 4)', 'resolve set 1 [0, 4)', 'resolve set 2 [0, 2)']);
    expect(sets.every((s) => s.destroyed)).toBe(true);
    expect(rec.passes).toBe(0);
  });

  it('measures nothing as 0 without creating a query set', async () => {
    const { device, log } = fakeDevice(() => 0n);
    expect(await new TimestampRecorder(device).read()).toBe(0);
    expect(log).toEqual([]);
  });

  it('fits WebGPU\'s largest query set (4096 queries)', () => {
    expect(2 * PAIRS_PER_SET).toBeLessThanOrEqual(4096);
  });
});

describe('Backend.timeKernels on this adapter', () => {
  it('returns the body\'s result and null where the adapter has no timestamp queries, or a time where it has', async () => {
    const be = await gpu();
    const x = F.fromArray(be, [1, 2, 3, 4], [2, 2]);
    const { result, ns } = await be.timeKernels(() => F.matmul(x, x));
    expect(Array.from(await result.read())).toEqual([7, 10, 15, 22]);
    if (be.details['timestamp queries']) {
      expect(ns).not.toBeNull();
      expect(ns!).toBeGreaterThanOrEqual(0);
    } else {
      expect(ns).toBeNull();
    }
    // a measurement never leaves the context measuring: later passes run as before
    const y = F.add(x, x);
    expect(Array.from(await y.read())).toEqual([2, 4, 6, 8]);
    for (const t of [x, result, y]) t.dispose();
  });
});
