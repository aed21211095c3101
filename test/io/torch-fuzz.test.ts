// Random bytes and random mutations of valid PyTorch files: opening and reading every tensor
// either works or throws a UserError (a one-line refusal), never anything else, and each try
// finishes quickly.
import { readdirSync, readFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isUserError } from '../../src/engine/errors.js';
import { encodeTorchZip, encodeZip, openTorchBuffer, type ZipRecordToWrite } from '../../src/io/torch.js';
import { readRecord, readZipDirectory } from '../../src/io/torch/zip.js';
import { pk, PROTO2, STOP, zipOf } from './torch-files.js';

const CASES = nodePath.resolve(import.meta.dirname, '../fixtures/checkpoint');
const FILES: Uint8Array[] = readdirSync(CASES)
  .filter((c) => !c.startsWith('jit_tokenizer')) // the small archives: more of each mutation lands in a pickle
  .map((c) => {
    const cj = JSON.parse(readFileSync(nodePath.join(CASES, c, 'case.json'), 'utf8')) as { args: { file: string } };
    return new Uint8Array(readFileSync(nodePath.join(CASES, c, cj.args.file)));
  });
FILES.push(
  encodeTorchZip(
    { model: new Map([['w', { dtype: 'F32' as const, shape: [3, 2], bytes: new Uint8Array(24).fill(1) }]]), step: 3 },
    { zip64: true },
  ),
);

/** Open, then read every tensor and constant; returns the error thrown, if any. */
async function attempt(bytes: Uint8Array): Promise<unknown> {
  try {
    const ck = await openTorchBuffer(bytes, 'fuzz.pt');
    for (const r of [ck, ...(ck.constants ? [ck.constants] : [])]) {
      for (const n of r.names) {
        try {
          await r.readBytes(n);
          await r.read(n);
        } catch (e) {
          if (!isUserError(e)) return e;
        }
      }
    }
    await ck.close();
    return null;
  } catch (e) {
    return e;
  }
}

function expectRefusalOnly(e: unknown, ms: number): void {
  if (e !== null) {
    expect(isUserError(e), `${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`).toBe(true);
    expect((e as Error).message).not.toMatch(/\n/);
  }
  expect(ms).toBeLessThan(3000);
}

const mutation = fc.oneof(
  // overwrite a few bytes
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  // write a boundary value as a little-endian u32 or u64
  fc.record({
    kind: fc.constant('word' as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 0x7f, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 2 ** 53 - 1, 2 ** 62),
    wide: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(src: Uint8Array, ms: Mutation[]): Uint8Array {
  let b: Uint8Array = new Uint8Array(src);
  for (const m of ms) {
    const at = b.length ? m.at % b.length : 0;
    if (m.kind === 'set') for (let i = 0; i < m.bytes.length && at + i < b.length; i++) b[at + i] = m.bytes[i];
    else if (m.kind === 'word') {
      const w = new Uint8Array(8);
      new DataView(w.buffer).setBigUint64(0, BigInt(m.value), true);
      b.set(w.subarray(0, Math.min(m.wide ? 8 : 4, b.length - at)), at);
    } else if (m.kind === 'cut') b = b.slice(0, at);
    else b = pk(b.subarray(0, at), m.bytes, b.subarray(at));
  }
  return b;
}

describe('fuzzing the reader', () => {
  it('mutations of valid files never throw anything but a UserError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: FILES.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (i, ms) => {
        const t0 = performance.now();
        const e = await attempt(mutate(FILES[i], ms));
        expectRefusalOnly(e, performance.now() - t0);
      }),
      { numRuns: 400 },
    );
  });

  it('mutations of the pickles of valid archives (re-zipped, so their checksums hold)', async () => {
    const archives: ZipRecordToWrite[][] = [];
    for (const bytes of FILES) {
      if (bytes[0] !== 0x50) continue;
      const src = {
        size: bytes.length,
        async read(p: number, into: Uint8Array) {
          const part = bytes.subarray(p, p + into.length);
          into.set(part);
          return part.length;
        },
        async close() {},
      };
      const dir = await readZipDirectory(src, 'x');
      const records: ZipRecordToWrite[] = [];
      for (const e of dir.entries) if (e.method === 0) records.push({ name: e.name, data: await readRecord(src, 'x', dir, e, bytes.length) });
      archives.push(records);
    }
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: archives.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), async (i, ms) => {
        const records = archives[i].map((r) => (r.name.endsWith('.pkl') ? { ...r, data: mutate(r.data, ms) } : r));
        const t0 = performance.now();
        const e = await attempt(encodeZip(records));
        expectRefusalOnly(e, performance.now() - t0);
      }),
      { numRuns: 400 },
    );
  });

  it('random pickles inside a valid zip', async () => {
    const opcode = fc.constantFrom(0x28, 0x29, 0x74, 0x85, 0x86, 0x87, 0x5d, 0x61, 0x65, 0x7d, 0x73, 0x75, 0x71, 0x68, 0x4b, 0x4e, 0x88, 0x89, 0x52, 0x81, 0x62, 0x51, 0x2e);
    const piece = fc.oneof(
      opcode.map((o) => [o]),
      fc.constantFrom(
        [...'ccollections\nOrderedDict\n'].map((c) => c.charCodeAt(0)),
        [...'ctorch._utils\n_rebuild_tensor_v2\n'].map((c) => c.charCodeAt(0)),
        [...'ctorch\nFloatStorage\n'].map((c) => c.charCodeAt(0)),
        [...'c__torch__\nM\n'].map((c) => c.charCodeAt(0)),
        [0x58, 7, 0, 0, 0, ...[...'storage'].map((c) => c.charCodeAt(0))],
        [0x58, 1, 0, 0, 0, 0x30],
        [0x58, 3, 0, 0, 0, 0x63, 0x70, 0x75],
      ),
      fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => [...b]),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 60 }), async (pieces) => {
        const pickle = pk(PROTO2, ...pieces.flat(), STOP);
        const t0 = performance.now();
        const e = await attempt(zipOf([['data.pkl', pickle], ['data/0', new Uint8Array(64)]]));
        expectRefusalOnly(e, performance.now() - t0);
      }),
      { numRuns: 400 },
    );
  });

  it('random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom<number[]>([], [0x50, 0x4b, 3, 4], [0x80, 2]), async (tail, head) => {
        const t0 = performance.now();
        const e = await attempt(pk(head, tail));
        expectRefusalOnly(e, performance.now() - t0);
        expect(e).not.toBeNull();
      }),
      { numRuns: 300 },
    );
  });
});
