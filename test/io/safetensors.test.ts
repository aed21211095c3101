import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { DType, RawArray } from '../../src/engine/dtype.js';
import {
  CheckpointError,
  GapError,
  IndexMismatchError,
  OffsetsPastEndError,
  OverlapError,
  SafetensorsError,
  UnsupportedDtypeError,
  ValueRangeError,
  WriteError,
} from '../../src/io/errors.js';
import {
  encodeSafetensors,
  openCheckpoint,
  openSafetensors,
  openSafetensorsBuffer,
  writeSafetensors,
  type LoadedTensor,
  type SafetensorsFile,
  type TensorToWrite,
} from '../../src/io/safetensors.js';

const FIXTURES = nodePath.resolve(import.meta.dirname, '../fixtures');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-st-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let tmpCount = 0;
const tmpPath = (name: string) => nodePath.join(tmp, `${tmpCount++}-${name}`);

// ---------------------------------------------------------------------------------------------
// An independent decoder (Buffer + DataView), the oracle for everything the reader returns.

interface OracleEntry {
  dtype: string;
  shape: number[];
  start: number; // absolute
  end: number;
}

function oracleHeader(buf: Buffer): Map<string, OracleEntry> {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const out = new Map<string, OracleEntry>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets } = e as { dtype: string; shape: number[]; data_offsets: [number, number] };
    out.set(name, { dtype, shape, start: 8 + n + data_offsets[0], end: 8 + n + data_offsets[1] });
  }
  return out;
}

/** Assert that a tensor read back holds exactly what the file's bytes say, decoded independently. */
function expectMatchesBytes(buf: Buffer, e: OracleEntry, t: LoadedTensor, label: string): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + e.start, e.end - e.start);
  const n = e.shape.reduce((a, b) => a * b, 1);
  expect(t.shape, label).toEqual(e.shape);
  expect(t.raw.length, label).toBe(n);
  const want: Record<string, [DType, (i: number) => number, (raw: RawArray) => ArrayLike<number>]> = {
    F32: ['f32', (i) => dv.getUint32(4 * i, true), (r) => new Uint32Array(r.buffer, r.byteOffset, r.length)],
    F16: ['f16', (i) => dv.getUint16(2 * i, true), (r) => r],
    BF16: ['bf16', (i) => dv.getUint16(2 * i, true), (r) => r],
    I32: ['i32', (i) => dv.getInt32(4 * i, true), (r) => r],
    I64: ['i32', (i) => Number(dv.getBigInt64(8 * i, true)), (r) => r],
    U8: ['i32', (i) => dv.getUint8(i), (r) => r],
    BOOL: ['i32', (i) => (dv.getUint8(i) ? 1 : 0), (r) => r],
    F64: ['f32', (i) => Math.fround(dv.getFloat64(8 * i, true)), (r) => r],
  };
  const [dtype, get, view] = want[e.dtype];
  expect(t.dtype, label).toBe(dtype);
  if (['F32', 'F16', 'BF16', 'I32'].includes(e.dtype)) {
    // Stored unchanged: the bytes themselves must match (fast path for the large fixtures).
    const same = Buffer.from(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength).equals(buf.subarray(e.start, e.end));
    if (same) return;
  }
  const got = view(t.raw);
  for (let i = 0; i < n; i++) {
    const w = get(i);
    if (!Object.is(got[i], w) && !(Number.isNaN(w) && Number.isNaN(got[i]))) {
      throw new Error(`${label}: element ${i} is ${got[i]}, expected ${w}`);
    }
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(nodePath.join(dir, d.name)) : d.name.endsWith('.safetensors') ? [nodePath.join(dir, d.name)] : [],
  );
}

// ---------------------------------------------------------------------------------------------

describe('vendored fixtures', () => {
  const files = walk(FIXTURES).sort();

  it('finds the fixtures (some bf16)', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it('every file opens and every tensor reads back with its stored bits', async () => {
    const seen = new Set<string>();
    for (const path of files) {
      const buf = readFileSync(path);
      const oracle = oracleHeader(buf);
      const f = await openSafetensors(path);
      try {
        expect([...f.names].sort()).toEqual([...oracle.keys()].sort());
        for (const [name, e] of oracle) {
          const info = f.info(name);
          expect(info).toMatchObject({ name, dtype: e.dtype, shape: e.shape, byteOffset: e.start, byteLength: e.end - e.start, file: path });
          expectMatchesBytes(buf, e, await f.read(name), `${path}:${name}`);
          seen.add(e.dtype);
        }
      } finally {
        await f.close();
      }
    }
    expect(seen).toContain('BF16');
  });

  it('readBytes returns the exact stored bytes', async () => {
    const path = files.find((p) => p.includes('bf16'))!;
    const buf = readFileSync(path);
    const f = await openSafetensors(path);
    for (const [name, e] of oracleHeader(buf)) expect(Buffer.from(await f.readBytes(name)).equals(buf.subarray(e.start, e.end)), name).toBe(true);
    await f.close();
  });
});

// ---------------------------------------------------------------------------------------------

function randomBits(dtype: DType, n: number, seed: number): RawArray {
  let s = seed >>> 0 || 1;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  if (dtype === 'f32') return new Float32Array(Uint32Array.from({ length: n }, next).buffer);
  if (dtype === 'i32') return Int32Array.from({ length: n }, next);
  return Uint16Array.from({ length: n }, () => next() >>> 16);
}

async function readAll(f: SafetensorsFile): Promise<Map<string, LoadedTensor>> {
  const out = new Map<string, LoadedTensor>();
  for (const n of f.names) out.set(n, await f.read(n));
  return out;
}

const bitsOf = (r: RawArray) => Array.from(r instanceof Float32Array ? new Uint32Array(r.buffer, r.byteOffset, r.length) : r);

describe('writer/reader round trip', () => {
  it('all engine dtypes, special values and exact bits, through a file', async () => {
    const f32 = new Float32Array([0, -0, Infinity, -Infinity, NaN, 1.5, -3.25e-39, 3.4e38]);
    new Uint32Array(f32.buffer)[4] = 0x7fc12345; // a NaN payload must survive
    const tensors: Record<string, TensorToWrite> = {
      'a.f32': { dtype: 'f32', shape: [2, 4], raw: f32 },
      'b.f16': { dtype: 'f16', shape: [3], raw: new Uint16Array([0x3c00, 0x7e01, 0x8000]) },
      'c.bf16': { dtype: 'bf16', shape: [1, 3], raw: new Uint16Array([0x3f80, 0xffc1, 0x0001]) },
      'd.i32': { dtype: 'i32', shape: [4], raw: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -1]) },
      scalar: { dtype: 'f32', shape: [], raw: new Float32Array([7]) },
      empty: { dtype: 'bf16', shape: [3, 0, 2], raw: new Uint16Array(0) },
    };
    const path = tmpPath('engine.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt' });
    const f = await openSafetensors(path);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.names]).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const got = await f.read(name);
      expect(got.dtype).toBe(t.dtype);
      expect(got.shape).toEqual(t.shape);
      expect(bitsOf(got.raw)).toEqual(bitsOf(t.raw as RawArray));
    }
    await f.close();
    expect(Buffer.from(readFileSync(path))).toEqual(Buffer.from(encodeSafetensors(tensors, { format: 'pt' })));
  });

  it('file dtypes: I64/U8/BOOL/F64 load as engine dtypes; I64 out of int32 range is an error', async () => {
    const bytes = encodeSafetensors({
      ids: { dtype: 'I64', shape: [3], raw: new Int32Array([-5, 2 ** 31 - 1, -(2 ** 31)]) },
      big: { dtype: 'I64', shape: [2], raw: new BigInt64Array([1n, 2n ** 31n]) },
      u8: { dtype: 'U8', shape: [2], raw: new Uint8Array([0, 255]) },
      mask: { dtype: 'BOOL', shape: [3], raw: new Int32Array([1, 0, 1]) },
      f64: { dtype: 'F64', shape: [2], raw: new Float64Array([0.1, -2]) },
      f8: { dtype: 'F8_E4M3', shape: [2], raw: new Uint8Array([1, 2]) },
      odd: { dtype: 'BOOL', shape: [4], raw: new Uint8Array([0, 1, 2, 255]) },
    });
    expect(Array.from((await (await openSafetensorsBuffer(bytes)).read('odd')).raw)).toEqual([0, 1, 1, 1]);
    const f = await openSafetensorsBuffer(bytes, 'mem');
    expect(Array.from((await f.read('ids')).raw)).toEqual([-5, 2 ** 31 - 1, -(2 ** 31)]);
    expect(Array.from((await f.read('u8')).raw)).toEqual([0, 255]);
    expect((await f.read('mask')).dtype).toBe('i32');
    expect(Array.from((await f.read('f64')).raw)).toEqual([Math.fround(0.1), -2]);
    expect(f.info('f8').dtype).toBe('F8_E4M3');
    await expect(f.read('big')).rejects.toThrow(ValueRangeError);
    await expect(f.read('big')).rejects.toThrow(/mem: tensor "big".*2147483648/);
    await expect(f.read('f8')).rejects.toThrow(UnsupportedDtypeError);
    await expect(f.read('f8')).rejects.toThrow(/mem: tensor "f8": dtype F8_E4M3/);
  });

  it('header is sorted, space-padded to 8 bytes, and deterministic', () => {
    const t = (n: number): TensorToWrite => ({ dtype: 'f32', shape: [n], raw: new Float32Array(n) });
    const a = encodeSafetensors(new Map([['z', t(1)], ['a', t(2)]]));
    const b = encodeSafetensors(new Map([['a', t(2)], ['z', t(1)]]));
    expect(a).toEqual(b);
    const n = Number(Buffer.from(a).readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = Buffer.from(a.subarray(8, 8 + n)).toString();
    expect(text).toMatch(/^\{"a":\{"dtype":"F32","shape":\[2\],"data_offsets":\[0,8\]\},"z":.*\} *$/);
  });

  it('writer rejects bad input with WriteError', () => {
    expect(() => encodeSafetensors({ x: { dtype: 'f32', shape: [3], raw: new Float32Array(2) } })).toThrow(WriteError);
    expect(() => encodeSafetensors({ x: { dtype: 'f32', shape: [1], raw: new Int32Array(1) } })).toThrow(WriteError);
    expect(() => encodeSafetensors({ __metadata__: { dtype: 'f32', shape: [], raw: new Float32Array(1) } })).toThrow(WriteError);
    expect(() => encodeSafetensors({ x: { dtype: 'U8', shape: [1], raw: new Int32Array([256]) } })).toThrow(WriteError);
  });

  const dtypeArb = fc.constantFrom<DType>('f32', 'f16', 'bf16', 'i32');
  const tensorArb = fc.record({
    name: fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => s !== '__metadata__'),
    dtype: dtypeArb,
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }),
    seed: fc.nat(),
  });
  const setArb = fc.uniqueArray(tensorArb, { selector: (t) => t.name, maxLength: 6 });

  it('property: random tensor sets round trip exactly', async () => {
    await fc.assert(
      fc.asyncProperty(setArb, fc.option(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 })), async (set, meta) => {
        const map = new Map(
          set.map((t) => {
            const n = t.shape.reduce((a, b) => a * b, 1);
            return [t.name, { dtype: t.dtype, shape: t.shape, raw: randomBits(t.dtype, n, t.seed) }] as const;
          }),
        );
        const bytes = encodeSafetensors(map, meta ?? undefined);
        const f = await openSafetensorsBuffer(bytes);
        expect([...f.names].sort()).toEqual([...map.keys()].sort());
        expect(f.metadata).toEqual(meta ?? {});
        for (const [name, t] of await readAll(f)) {
          const w = map.get(name)!;
          expect(t.dtype).toBe(w.dtype);
          expect(t.shape).toEqual(w.shape);
          expect(bitsOf(t.raw)).toEqual(bitsOf(w.raw));
        }
      }),
      { numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('malformed files', () => {
  const base = encodeSafetensors(
    {
      'w.a': { dtype: 'f32', shape: [2, 3], raw: new Float32Array([1, 2, 3, 4, 5, 6]) },
      'w.b': { dtype: 'bf16', shape: [3], raw: new Uint16Array([0x3f80, 0x4000, 0xc040]) },
      ids: { dtype: 'I64', shape: [2], raw: new Int32Array([7, -1]) },
      none: { dtype: 'f16', shape: [0], raw: new Uint16Array(0) },
      s: { dtype: 'i32', shape: [], raw: new Int32Array([42]) },
      m: { dtype: 'BOOL', shape: [2], raw: new Uint8Array([1, 0]) },
    },
    { format: 'pt' },
  );
  const baseHeaderLen = Number(Buffer.from(base).readBigUInt64LE(0));
  const baseHeader = JSON.parse(Buffer.from(base.subarray(8, 8 + baseHeaderLen)).toString()) as Record<string, Record<string, unknown>>;

  /** Open (via a real file or memory) and read everything: must succeed correctly or throw SafetensorsError. */
  async function check(bytes: Uint8Array, viaFile: boolean): Promise<'ok' | 'error'> {
    let f: SafetensorsFile | undefined;
    try {
      if (viaFile) {
        const p = tmpPath('fuzz.safetensors');
        writeFileSync(p, bytes);
        f = await openSafetensors(p);
      } else {
        f = await openSafetensorsBuffer(bytes, 'fuzz');
      }
      const buf = Buffer.from(bytes);
      // The reader accepted the file, so it must really be valid: ranges tile the data section.
      const oracle = oracleHeader(buf);
      expect([...f.names].sort()).toEqual([...oracle.keys()].sort());
      const spans = [...oracle.values()].sort((a, b) => a.start - b.start || a.end - b.end);
      let cursor = 8 + Number(buf.readBigUInt64LE(0));
      for (const s of spans) {
        expect(s.start).toBe(cursor);
        cursor = s.end;
      }
      expect(cursor).toBe(buf.length);
      for (const [name, e] of oracle) {
        let t: LoadedTensor;
        try {
          t = await f.read(name);
        } catch (err) {
          if (err instanceof SafetensorsError) continue; // e.g. an I64 that no longer fits
          throw err;
        }
        expectMatchesBytes(buf, e, t, name);
      }
      return 'ok';
    } catch (err) {
      if (err instanceof SafetensorsError) return 'error';
      throw err;
    } finally {
      await f?.close();
    }
  }

  function withHeader(text: string, pad = true): Uint8Array {
    const json = Buffer.from(text);
    const len = pad ? json.length + ((8 - (json.length % 8)) % 8) : json.length;
    const out = Buffer.alloc(8 + len + (base.length - 8 - baseHeaderLen), 0x20);
    out.writeBigUInt64LE(BigInt(len), 0);
    json.copy(out, 8);
    Buffer.from(base.subarray(8 + baseHeaderLen)).copy(out, 8 + len);
    return out;
  }

  it('the base file is valid', async () => {
    expect(await check(base, true)).toBe('ok');
  });

  it('property: truncation at any point is a SafetensorsError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(base.length - 1), fc.boolean(), async (k, viaFile) => {
        expect(await check(base.subarray(0, k), viaFile)).toBe('error');
      }),
      { numRuns: 120 },
    );
  });

  it('property: flipped bytes anywhere never give a wrong tensor', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (flips, inHeader) => {
          const b = Uint8Array.from(base);
          const headerEnd = 8 + baseHeaderLen;
          for (const [pos, x] of flips) b[inHeader ? pos % headerEnd : headerEnd + (pos % (base.length - headerEnd))] ^= x;
          await check(b, false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: rewritten header length', async () => {
    const len = fc.oneof(
      fc.integer({ min: -16, max: 16 }).map((d) => BigInt(Math.max(0, baseHeaderLen + d))),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.constantFrom(0n, 100_000_001n, BigInt(base.length)),
    );
    await fc.assert(
      fc.asyncProperty(len, async (n) => {
        const b = Buffer.from(base);
        b.writeBigUInt64LE(n, 0);
        const r = await check(b, false);
        if (n !== BigInt(baseHeaderLen)) expect(r).toBe('error');
      }),
      { numRuns: 150 },
    );
  });

  type Mutation = (h: Record<string, Record<string, unknown>>, names: string[], pick: number, v: unknown) => void;
  const junk = fc.oneof(
    fc.integer({ min: -3, max: 100 }),
    fc.double(),
    fc.string({ maxLength: 4 }),
    fc.constant(null),
    fc.array(fc.integer({ min: -1, max: 50 }), { maxLength: 3 }),
    fc.constantFrom('F32', 'F16', 'BF16', 'I64', 'U8', 'F8_E5M2', 'F4', 'f32', 'toString', '__proto__'),
  );
  const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const mutations: Record<string, Mutation> = {
    offsets: (h, n, i, v) => {
      h[n[i]].data_offsets = v;
    },
    offsetStart: (h, n, i, v) => {
      h[n[i]].data_offsets = Object.assign([...asList(h[n[i]].data_offsets)], { 0: v });
    },
    offsetEnd: (h, n, i, v) => {
      h[n[i]].data_offsets = Object.assign([...asList(h[n[i]].data_offsets)], { 1: v });
    },
    overlap: (h, n, i) => {
      h[n[i]].data_offsets = [...asList(h[n[(i + 1) % n.length]].data_offsets)];
    },
    swap: (h, n, i) => {
      const j = (i + 1) % n.length;
      [h[n[i]].data_offsets, h[n[j]].data_offsets] = [h[n[j]].data_offsets, h[n[i]].data_offsets];
    },
    shift: (h, n, i, v) => {
      const d = typeof v === 'number' && Number.isInteger(v) ? v : 1;
      h[n[i]].data_offsets = asList(h[n[i]].data_offsets).map((o) => (typeof o === 'number' ? o + d : o));
    },
    dtype: (h, n, i, v) => {
      h[n[i]].dtype = v;
    },
    shape: (h, n, i, v) => {
      h[n[i]].shape = v;
    },
    // earlier mutations may have replaced the shape by a non-array: extend whatever list is there
    dim: (h, n, i, v) => {
      h[n[i]].shape = [...asList(h[n[i]].shape), v];
    },
    drop: (h, n, i, v) => void delete h[n[i]][['dtype', 'shape', 'data_offsets'][Math.abs(Number(v) | 0) % 3]],
    entry: (h, n, i, v) => {
      (h as Record<string, unknown>)[n[i]] = v;
    },
    extra: (h, _n, _i, v) => {
      h.extra = { dtype: 'U8', shape: [1], data_offsets: [v, v] };
    },
    metadata: (h, _n, _i, v) => {
      (h as Record<string, unknown>).__metadata__ = v;
    },
    remove: (h, n, i) => void delete h[n[i]],
  };

  it('property: rewritten header JSON (offsets, overlaps, gaps, dtypes, shapes) never gives a wrong tensor', async () => {
    const names = Object.keys(baseHeader).filter((k) => k !== '__metadata__');
    let errors = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...Object.keys(mutations)), fc.nat(names.length - 1), junk), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        fc.boolean(),
        async (muts, pad, viaFile) => {
          const h = structuredClone(baseHeader);
          const live = () => names.filter((n) => typeof h[n] === 'object' && h[n] !== null && Array.isArray(h[n].data_offsets));
          for (const [m, i, v] of muts) {
            const ns = live();
            if (ns.length > 0) mutations[m](h, ns, i % ns.length, v);
          }
          if ((await check(withHeader(JSON.stringify(h), pad), viaFile)) === 'error') errors++;
        },
      ),
      { numRuns: 300 },
    );
    expect(errors).toBeGreaterThan(100);
  });

  it('property: random byte spans (sizes consistent, layout arbitrary) are accepted only when they tile the data', async () => {
    const dataLen = base.length - 8 - baseHeaderLen;
    const point = fc.oneof(fc.constantFrom(0, dataLen, dataLen + 1), fc.nat(dataLen >> 3).map((k) => 8 * k));
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(point, point), { minLength: 1, maxLength: 4 }), async (spans) => {
        const h = Object.fromEntries(
          spans.map(([a, b], i) => [`t${i}`, { dtype: 'U8', shape: [Math.abs(b - a)], data_offsets: [Math.min(a, b), Math.max(a, b)] }]),
        );
        if ((await check(withHeader(JSON.stringify(h)), false)) === 'ok') ok++;
      }),
      { numRuns: 300 },
    );
    expect(ok).toBeGreaterThan(0);
  });

  it('property: broken JSON text is a SafetensorsError', async () => {
    const text = JSON.stringify(baseHeader);
    await fc.assert(
      fc.asyncProperty(fc.nat(text.length - 1), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }), async (at, s) => {
        await check(withHeader(text.slice(0, at) + s + text.slice(at + 1)), false);
        expect(await check(withHeader(text.slice(0, at)), false)).toBe('error');
      }),
      { numRuns: 200 },
    );
  });

  it('specific errors name the file and tensor and say what was expected', async () => {
    const h = () => structuredClone(baseHeader);
    const cases: [string, Uint8Array, RegExp][] = [
      ['short', new Uint8Array(5), /short: file is 5 bytes; expected at least 8/],
      ['zero', withHeader(''), /header length is 0/],
      ['json', withHeader('{"a":'), /not valid JSON/],
      ['array', withHeader('[1,2]'), /not an object/],
      ['utf8', withHeader('{"x":1}').map((b, i) => (i === 10 ? 0xff : b)) /* the "x" becomes a lone 0xff */, /UTF-8/],
      ['dtype', withHeader(JSON.stringify({ ...h(), s: { ...h().s, dtype: 'Q7' } })), /tensor "s": unknown dtype "Q7"/],
      ['size', withHeader(JSON.stringify({ ...h(), s: { ...h().s, shape: [2] } })), /tensor "s": .* span 4 bytes but shape \[2\] of I32 needs 8/],
      ['neg', withHeader(JSON.stringify({ ...h(), s: { ...h().s, shape: [-1] } })), /tensor "s": shape is \[-1\]; expected an array of non-negative integers/],
      ['missing', withHeader(JSON.stringify({ ...h(), s: { dtype: 'I32', shape: [] } })), /tensor "s": header entry has no "data_offsets"/],
      ['order', withHeader(JSON.stringify({ ...h(), s: { ...h().s, data_offsets: [4, 0] } })), /end before they start/],
    ];
    for (const [label, bytes, re] of cases) {
      const err = await openSafetensorsBuffer(bytes, label).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, label).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message, label).toMatch(re);
    }
    const u8 = (spans: [number, number][], total: number) => {
      const json = JSON.stringify(Object.fromEntries(spans.map(([a, b], i) => [`t${i}`, { dtype: 'U8', shape: [b - a], data_offsets: [a, b] }])));
      const out = Buffer.alloc(8 + json.length + total);
      out.writeBigUInt64LE(BigInt(json.length), 0);
      out.write(json, 8);
      return out;
    };
    const layoutErr = (spans: [number, number][], total: number) => openSafetensorsBuffer(u8(spans, total), 'l').then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(await layoutErr([[0, 4], [2, 6], [6, 8]], 8)).toBeInstanceOf(OverlapError);
    expect(((await layoutErr([[0, 4], [2, 6], [6, 8]], 8)) as Error).message).toMatch(/tensor "t1": data_offsets \[2, 6\] overlap tensor "t0"/);
    expect(await layoutErr([[0, 4], [5, 8]], 8)).toBeInstanceOf(GapError);
    expect(await layoutErr([[1, 4]], 4)).toBeInstanceOf(GapError);
    expect(((await layoutErr([[0, 4]], 6)) as Error).message).toMatch(/last 2 bytes .* belong to no tensor/);
    expect(await layoutErr([[0, 4], [4, 4], [4, 8]], 8)).toBeUndefined();
    // A gap: drop one tensor; an overlap: point one at another's bytes.
    const gap = h();
    delete gap['w.b'];
    await expect(openSafetensorsBuffer(withHeader(JSON.stringify(gap)), 'g')).rejects.toThrow(/gap|fully indexed/);
    const ov = h();
    ov['w.b'] = { ...ov['w.b'], data_offsets: [0, 6] };
    await expect(openSafetensorsBuffer(withHeader(JSON.stringify(ov)), 'o')).rejects.toThrow(/overlap|fully indexed/);
    await expect(openSafetensorsBuffer(base.subarray(0, base.length - 1), 't')).rejects.toThrow(OffsetsPastEndError);
    await expect(openSafetensors(tmpPath('missing.safetensors'))).rejects.toThrow(/no such file/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('sharded checkpoints', () => {
  const t = (v: number[]): TensorToWrite => ({ dtype: 'f32', shape: [v.length], raw: new Float32Array(v) });

  async function makeCkpt(weightMap: Record<string, string>, extra?: (dir: string) => void): Promise<string> {
    const dir = tmpPath('ckpt');
    mkdirSync(dir);
    await writeSafetensors(nodePath.join(dir, 'model-00001-of-00002.safetensors'), { a: t([1]), b: t([2, 3]) });
    await writeSafetensors(nodePath.join(dir, 'model-00002-of-00002.safetensors'), { c: t([4, 5, 6]) });
    writeFileSync(nodePath.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 24 }, weight_map: weightMap }));
    writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify({ dim: 8 }));
    extra?.(dir);
    return dir;
  }
  const goodMap = { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' };

  it('reads through the index, from the directory or the index file', async () => {
    const dir = await makeCkpt(goodMap);
    for (const p of [dir, nodePath.join(dir, 'model.safetensors.index.json')]) {
      const ck = await openCheckpoint(p);
      expect(ck.names).toEqual(['a', 'b', 'c']);
      expect(ck.files.length).toBe(2);
      expect(ck.metadata).toEqual({ total_size: 24 });
      expect(ck.config).toEqual({ dim: 8 });
      expect(ck.has('c') && !ck.has('d')).toBe(true);
      expect(ck.info('c').file).toMatch(/00002/);
      expect(Array.from((await ck.read('c')).raw)).toEqual([4, 5, 6]);
      expect(Array.from((await ck.read('b')).raw)).toEqual([2, 3]);
      expect(() => ck.info('d')).toThrow(SafetensorsError);
      await ck.close();
    }
  });

  it('reports index/shard mismatches', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ ...goodMap, d: 'model-00002-of-00002.safetensors' }, /missing from their shard: d \(mapped to model-00002/],
      [{ a: goodMap.a, c: goodMap.c }, /not mapped to their shard: b \(in model-00001-of-00002.safetensors, not in weight_map\)/],
      [{ ...goodMap, b: goodMap.c }, /b \(mapped to model-00002.*b \(in model-00001-of-00002.safetensors, mapped to model-00002/],
    ];
    for (const [map, re] of cases) {
      const err = await openCheckpoint(await makeCkpt(map)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IndexMismatchError);
      expect((err as Error).message).toMatch(re);
    }
    await expect(openCheckpoint(await makeCkpt({ ...goodMap, d: 'nope.safetensors' }))).rejects.toThrow(/do not exist: nope.safetensors/);
    await expect(openCheckpoint(await makeCkpt({ ...goodMap, d: '../x.safetensors' }))).rejects.toThrow(/outside/);
    await expect(
      openCheckpoint(await makeCkpt(goodMap, (d) => writeFileSync(nodePath.join(d, 'model.safetensors.index.json'), '{"weight_map": 3}'))),
    ).rejects.toThrow(CheckpointError);
    await expect(
      openCheckpoint(await makeCkpt(goodMap, (d) => writeFileSync(nodePath.join(d, 'other.safetensors.index.json'), '{}'))),
    ).rejects.toThrow(/several index files/);
  });

  it('a directory without an index: one file, disjoint files merged, duplicates refused', async () => {
    const dir = await makeCkpt(goodMap, (d) => rmSync(nodePath.join(d, 'model.safetensors.index.json')));
    const ck = await openCheckpoint(dir);
    expect(ck.names).toEqual(['a', 'b', 'c']);
    await ck.close();
    await writeSafetensors(nodePath.join(dir, 'dup.safetensors'), { b: t([9]) });
    const err = await openCheckpoint(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/tensor "b": is in both .*dup.safetensors and .*model-00001.*3 .safetensors files/);
    const empty = tmpPath('empty');
    mkdirSync(empty);
    await expect(openCheckpoint(empty)).rejects.toThrow(/no .safetensors file/);
    const single = await openCheckpoint(nodePath.join(dir, 'dup.safetensors'));
    expect(single.files).toEqual([nodePath.join(dir, 'dup.safetensors')]);
    expect(single.config).toEqual({ dim: 8 });
    await single.close();
  });
});
