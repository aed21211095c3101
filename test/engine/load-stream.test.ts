// Loading weights straight from a checkpoint into their storage (engine/weight-stream.ts through
// loadWeights): the same tensors, bit for bit, as reading each tensor and uploading it, on both
// backends, for every file dtype (the raw layouts streamed, the others converted), odd lengths,
// empty tensors and scalars, tensors read in pieces, reads in file order, and a failed read
// that frees what it had allocated.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { f32ToBf16, f32ToF16 } from '../../src/engine/dtype.js';
import { Module, type TensorSource, loadWeights } from '../../src/engine/module.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { type StreamItem, streamTensors } from '../../src/engine/weight-stream.js';
import { type Checkpoint, openCheckpoint, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { countingCpu, cpu, randomInts, randomValues, webgpu } from '../harness.js';

const dir = mkdtempSync(join(tmpdir(), 'load-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Spec = { dtype: 'F32' | 'BF16' | 'F16' | 'I32' | 'I64' | 'U8' | 'BOOL' | 'F64'; shape: number[] };

// odd element counts (a half tensor of odd length ends mid-word), primes, empty, scalar, and
// names whose sorted order is not their file order
const SPECS: Record<string, Spec> = {
  'z.first': { dtype: 'BF16', shape: [7, 13] },
  'a.second': { dtype: 'F32', shape: [5, 3] },
  'm.half': { dtype: 'F16', shape: [3] },
  'b.ids': { dtype: 'I32', shape: [4] },
  'c.long': { dtype: 'I64', shape: [6] },
  'd.bytes': { dtype: 'U8', shape: [5] },
  'e.mask': { dtype: 'BOOL', shape: [3] },
  'f.double': { dtype: 'F64', shape: [2, 2] },
  'g.empty': { dtype: 'BF16', shape: [0, 4] },
  'h.scalar': { dtype: 'F32', shape: [] },
  'i.big': { dtype: 'BF16', shape: [1031] },
  'j.single': { dtype: 'BF16', shape: [1] },
};

function values(name: string, s: Spec): ArrayBufferView {
  const n = s.shape.reduce((a, b) => a * b, 1);
  const v = randomValues(n, name, -3, 3);
  switch (s.dtype) {
    case 'F32': return v;
    case 'BF16': return Uint16Array.from(v, f32ToBf16);
    case 'F16': return Uint16Array.from(v, f32ToF16);
    case 'I32': return randomInts(n, name, -1000, 1000);
    case 'I64': return BigInt64Array.from(randomInts(n, name, -1000, 1000), (x) => BigInt(x));
    case 'U8': return Uint8Array.from(randomInts(n, name, 0, 256));
    case 'BOOL': return Uint8Array.from(randomInts(n, name, 0, 2));
    case 'F64': return Float64Array.from(v);
  }
}

/** Two shards (sorted names split across them) and an index, so reads go through openCheckpoint. */
async function checkpoint(): Promise<string> {
  const names = Object.keys(SPECS);
  const shards = [names.slice(0, 6), names.slice(6)];
  const weightMap: Record<string, string> = {};
  for (const [i, part] of shards.entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(join(dir, file), Object.fromEntries(part.map((n) => [n, { dtype: SPECS[n].dtype, shape: SPECS[n].shape, raw: values(n, SPECS[n]) }])));
    for (const n of part) weightMap[n] = file;
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return dir;
}

/** A module with one parameter per checkpoint tensor. */
class Flat extends Module {
  constructor(src: TensorSource) {
    super();
    for (const n of src.names) this.param(n, src.info(n).shape);
  }
}

/** Each parameter's dtype and raw elements. */
async function contents(m: Module): Promise<Record<string, [string, number[]]>> {
  const out: Record<string, [string, number[]]> = {};
  for (const p of m.parameters()) out[p.key] = [p.t.dtype, Array.from(await p.t.readRaw())];
  return out;
}

/** The checkpoint without readInto: every tensor read whole and uploaded (the reference path). */
function readOnly(ck: Checkpoint): TensorSource {
  return { names: ck.names, path: ck.path, info: (n) => ck.info(n), read: (n) => ck.read(n) };
}

describe('streamed loading', () => {
  for (const name of ['cpu', 'webgpu'] as const) {
    it(`gives the tensors reading and uploading each one gives, bit for bit (${name})`, async () => {
      const be: Backend = name === 'cpu' ? cpu : await webgpu();
      const ck = await openCheckpoint(await checkpoint());
      try {
        const want = new Flat(ck);
        await loadWeights(want, readOnly(ck), be);
        const got = new Flat(ck);
        const report = await loadWeights(got, ck, be);
        expect(report.loaded).toBe(Object.keys(SPECS).length);
        expect(await contents(got)).toEqual(await contents(want));
        // bf16 stays bf16; converted dtypes as the reader converts them
        const dtypes = Object.fromEntries([...got.parameters()].map((p) => [p.key, p.t.dtype]));
        expect(dtypes).toMatchObject({ 'z.first': 'bf16', 'm.half': 'f16', 'c.long': 'i32', 'f.double': 'f32', 'g.empty': 'bf16' });
        // castTo widens after the streamed read, as after an upload
        const cast = new Flat(ck);
        await loadWeights(cast, ck, be, { castTo: 'f32' });
        const castWant = new Flat(ck);
        await loadWeights(castWant, readOnly(ck), be, { castTo: 'f32' });
        expect(await contents(cast)).toEqual(await contents(castWant));
        for (const m of [want, got, cast, castWant]) m.dispose();
      } finally {
        await ck.close();
      }
    });
  }

  it('reads each file front to back, whatever order the module declares', async () => {
    const ck = await openCheckpoint(await checkpoint());
    const calls: string[] = [];
    const src: TensorSource = {
      names: ck.names, path: ck.path, info: (n) => ck.info(n), read: (n) => ck.read(n),
      readInto: (n, into, off) => {
        calls.push(n);
        return ck.readInto!(n, into, off);
      },
    };
    const m = new Flat(src);
    await loadWeights(m, src, cpu);
    const streamed = calls.filter((n, i) => calls.indexOf(n) === i);
    const byFile = [...streamed].sort((a, b) => {
      const x = ck.info(a);
      const y = ck.info(b);
      return x.file.localeCompare(y.file) || x.byteOffset - y.byteOffset;
    });
    expect(streamed).toEqual(byFile);
    // only the raw layouts stream (and empty tensors read nothing); the rest go through read()
    expect(new Set(streamed)).toEqual(new Set(['z.first', 'a.second', 'm.half', 'b.ids', 'h.scalar', 'i.big', 'j.single']));
    m.dispose();
    await ck.close();
  });

  for (const name of ['cpu', 'webgpu'] as const) {
    it(`fills a device tensor from pieces smaller than it, a host one in one read (${name})`, async () => {
      const be: Backend = name === 'cpu' ? cpu : await webgpu();
      const f = await openSafetensors(join(await checkpoint(), 'model-00002-of-00002.safetensors'));
      const got: Record<string, Tensor> = {};
      const items: StreamItem[] = ['i.big', 'g.empty', 'j.single', 'h.scalar'].map((n) => {
        const info = f.info(n);
        const length = info.shape.reduce((a, b) => a * b, 1);
        return { name: n, dtype: info.dtype === 'F32' ? 'f32' : 'bf16', shape: info.shape, length, bytes: info.byteLength, done: (t) => { got[n] = t; } };
      });
      const reads: number[] = [];
      // 12-byte slots: i.big (2062 bytes) comes in 172 pieces, the last one of 10 bytes
      await streamTensors(be, items, (n, into, off) => {
        reads.push(into.length);
        return f.readInto(n, into, off);
      }, { slotBytes: 12, aheadBytes: 24 });
      if (name === 'webgpu') {
        expect(reads.filter((r) => r === 12).length).toBe(171);
        expect(reads.filter((r) => r !== 12)).toEqual([10, 2, 4]);
      } else {
        // host storage: each tensor is read whole into the array it keeps (no slots)
        expect(reads).toEqual([2062, 2, 4]);
      }
      for (const it of items) expect(Array.from(await got[it.name].readRaw())).toEqual(Array.from((await f.read(it.name)).raw));
      for (const t of Object.values(got)) t.dispose();
      await f.close();
    });
  }

  it('a failed read rejects and frees the storages it had allocated', async () => {
    const ck = await openCheckpoint(await checkpoint());
    const { backend, liveBytes } = countingCpu();
    const src: TensorSource = {
      names: ck.names, path: ck.path, info: (n) => ck.info(n), read: (n) => ck.read(n),
      readInto: (n, into, off) => (n === 'i.big' ? Promise.reject(new Error('disk on fire')) : ck.readInto!(n, into, off)),
    };
    const m = new Flat(src);
    await expect(loadWeights(m, src, backend)).rejects.toThrow(/disk on fire/);
    m.dispose();
    expect(liveBytes()).toBe(0);
    await ck.close();
  });

  it('refuses reads outside a tensor', async () => {
    const f = await openSafetensors(join(await checkpoint(), 'model-00001-of-00002.safetensors'));
    await expect(f.readInto('z.first', new Uint8Array(4), 7 * 13 * 2 - 2)).rejects.toThrow(RangeError);
    await expect(f.readInto('z.first', new Uint8Array(1), -1)).rejects.toThrow(RangeError);
    const part = new Uint8Array(6);
    await f.readInto('z.first', part, 10);
    expect(Array.from(part)).toEqual(Array.from((await f.readBytes('z.first')).subarray(10, 16)));
    await f.close();
  });
});
