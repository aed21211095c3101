// The writer (torch.save's format) against torch's own bytes and against the reader: the zip
// framing of every stored-only public archive rebuilt byte for byte from its records, mean_std.pt
// rebuilt byte for byte from its tensors (torch 1.13 record layout), the torch 2.x record list,
// and random trees of tensors and plain values round-tripped through the reader, zip64 included.
// (python3 with torch is not available here, so torch.load itself is not run on written files.)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/node-files.js';
import { openCheckpoint, openSafetensors } from '../../src/io/safetensors.js';
import {
  encodeTorchZip, encodeZip, openTorchBuffer, openTorchCheckpoint, type TorchDType, TorchFormatError, type TorchTensor, TorchTuple, type TorchValue,
  torchTuple, writeTorchCheckpoint,
} from '../../src/io/torch.js';
import { readRecord, readZipDirectory } from '../../src/io/torch/zip.js';

const CASES = nodePath.resolve(import.meta.dirname, '../fixtures/checkpoint');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-torch-write-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ITEM: Record<TorchDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function memorySource(bytes: Uint8Array) {
  return {
    size: bytes.length,
    async read(position: number, into: Uint8Array) {
      const part = bytes.subarray(position, Math.min(position + into.length, bytes.length));
      into.set(part);
      return part.length;
    },
    async close() {},
  };
}

describe('byte for byte as torch writes them', () => {
  for (const [name, file, zip64] of [
    ['pt_state_dict_dtypes', 'model.pt', false],
    ['pt_nested_checkpoint', 'checkpoint.pth', false],
    ['pt_views_shared_storage', 'views.pt', false],
    ['pt_scalar_and_empty', 'edge.pt', false],
    ['pt_tuple_mean_std', 'mean_std.pt', false],
    ['pt_newer_torch_layout', 'model.pt', false],
    ['pt_zip64_layout', 'model.pt', true],
  ] as const) {
    it(`${name}: the zip framing of its records`, async () => {
      const original = new Uint8Array(readFileSync(nodePath.join(CASES, name, file)));
      const src = memorySource(original);
      const archive = await readZipDirectory(src, file);
      const records = [];
      for (const e of archive.entries) records.push({ name: e.name, data: await readRecord(src, file, archive, e, original.length) });
      const rebuilt = encodeZip(records, { zip64 });
      expect(rebuilt.length).toBe(original.length);
      expect(Buffer.from(rebuilt).equals(Buffer.from(original))).toBe(true);
    });
  }

  it('mean_std.pt from its two tensors (torch 1.13 layout)', async () => {
    const want = await openSafetensors(nodePath.join(CASES, 'pt_tuple_mean_std/expected.safetensors'));
    const t = async (n: string): Promise<TorchTensor> => ({ dtype: 'F32', shape: want.info(n).shape, bytes: await want.readBytes(n) });
    const bytes = encodeTorchZip(torchTuple(await t('0'), await t('1')), { folder: 'mean_std', layout: '1.13' });
    await want.close();
    expect(Buffer.from(bytes).equals(readFileSync(nodePath.join(CASES, 'pt_tuple_mean_std/mean_std.pt')))).toBe(true);
  });

  it('the record list of recent torch 2.x', async () => {
    const original = new Uint8Array(readFileSync(nodePath.join(CASES, 'pt_newer_torch_layout/model.pt')));
    const theirs = await readZipDirectory(memorySource(original), 'theirs');
    const t = (n: number): TorchTensor => ({ dtype: 'F32', shape: [n], bytes: new Uint8Array(4 * n) });
    const mine = encodeTorchZip({ model: new Map([['a', t(1)], ['b', t(2)], ['c', t(3)], ['d', t(4)], ['e', t(5)]]) });
    const ours = await readZipDirectory(memorySource(mine), 'ours');
    expect(ours.entries.map((e) => e.name)).toEqual(theirs.entries.map((e) => e.name));
    for (const r of ['.format_version', '.storage_alignment', 'byteorder', 'version']) {
      const a = await readRecord(memorySource(mine), 'ours', ours, ours.records.get(r)!, 100);
      const b = await readRecord(memorySource(original), 'theirs', theirs, theirs.records.get(r)!, 100);
      expect(Buffer.from(a).toString(), r).toBe(Buffer.from(b).toString());
    }
    const id = Buffer.from(await readRecord(memorySource(mine), 'ours', ours, ours.records.get('.data/serialization_id')!, 100)).toString();
    expect(id).toMatch(/^\d{40}$/);
    // every record's data on a 64-byte boundary, as torch aligns them
    for (const e of ours.entries) {
      const v = new DataView(mine.buffer, e.localHeaderOffset);
      expect((e.localHeaderOffset + 30 + v.getUint16(26, true) + v.getUint16(28, true)) % 64, e.name).toBe(0);
    }
  });
});

// ------------------------------------------------------------------------- round trips

const dtypeArb = fc.constantFrom<TorchDType>('F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL');
const tensorArb: fc.Arbitrary<TorchTensor> = fc
  .tuple(dtypeArb, fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }))
  .chain(([dtype, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1) * ITEM[dtype];
    return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes) => ({ dtype, shape, bytes }));
  });
const keyArb = fc.string({ minLength: 1, maxLength: 6 }).filter((k) => !k.includes('.'));
const plainArb = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.double({ noNaN: true }).filter((x) => !Number.isInteger(x)),
  fc.string({ maxLength: 8 }),
);
const valueArb: fc.Arbitrary<TorchValue> = fc.letrec<{ v: TorchValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tensorArb,
    plainArb,
    fc.array(tie('v'), { maxLength: 4 }),
    fc.array(tie('v'), { maxLength: 3 }).map((xs) => new TorchTuple(xs)),
    fc.dictionary(keyArb, tie('v'), { maxKeys: 4 }),
    fc.array(fc.tuple(fc.oneof(keyArb, fc.integer({ min: 0, max: 99 })), tie('v')), { maxLength: 4 }).map((kv) => new Map(kv)),
  ),
})).v;

/** What the reader should find in a value: tensors and plain leaves by dotted key (null when a key repeats). */
function expected(root: TorchValue): { tensors: Map<string, TorchTensor>; leaves: Map<string, unknown> } | null {
  const tensors = new Map<string, TorchTensor>();
  const leaves = new Map<string, unknown>();
  let clash = false;
  const walk = (v: TorchValue, key: string) => {
    const at = (k: string | number) => (key === '' ? String(k) : `${key}.${k}`);
    if (v !== null && typeof v === 'object' && 'bytes' in v && v.bytes instanceof Uint8Array) {
      if (tensors.has(key) || leaves.has(key)) clash = true;
      tensors.set(key, v as TorchTensor);
    } else if (v instanceof TorchTuple || Array.isArray(v)) {
      const items = v instanceof TorchTuple ? v.items : (v as readonly TorchValue[]);
      for (let i = 0; i < items.length; i++) walk(items[i], at(i));
    }
    else if (v instanceof Map) for (const [k, x] of v) walk(x, at(k));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x as TorchValue, at(k));
    else {
      if (tensors.has(key) || leaves.has(key)) clash = true;
      leaves.set(key, v);
    }
  };
  walk(root, '');
  return clash ? null : { tensors, leaves };
}

describe('reader(writer(x)) = x', () => {
  it('random trees of tensors and plain values, zip and zip64', async () => {
    await fc.assert(
      fc.asyncProperty(valueArb, fc.boolean(), async (root, zip64) => {
        const want = expected(root);
        const bytes = encodeTorchZip(root, { zip64 });
        const opened = openTorchBuffer(bytes, 'rt.pt');
        if (want === null) {
          await expect(opened).rejects.toThrow(/flatten to the same key/);
          return;
        }
        const ck = await opened;
        expect(ck.format).toBe('zip');
        expect(ck.names).toEqual([...want.tensors.keys()]);
        for (const [k, t] of want.tensors) {
          expect(ck.info(k).dtype).toBe(t.dtype);
          expect(ck.info(k).shape).toEqual(t.shape);
          expect(await ck.readBytes(k)).toEqual(t.bytes);
        }
        expect(new Map([...ck.nonTensorLeaves].map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))).toEqual(want.leaves);
      }),
      { numRuns: 150 },
    );
  });

  it('a tensor given twice is stored once and read under both keys', async () => {
    const w: TorchTensor = { dtype: 'BF16', shape: [2, 2], bytes: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) };
    const bytes = encodeTorchZip({ model: new Map([['embed.weight', w], ['head.weight', w]]) });
    const dir = await readZipDirectory(memorySource(bytes), 'x');
    expect([...dir.records.keys()].filter((r) => r.startsWith('data/'))).toEqual(['data/0']);
    const ck = await openTorchBuffer(bytes);
    expect(await ck.readBytes('model.head.weight')).toEqual(w.bytes);
    expect(ck.info('model.head.weight').byteOffset).toBe(ck.info('model.embed.weight').byteOffset);
  });

  it('an AR-style model.pt written to a folder loads through openCheckpoint, atomically named after the file', async () => {
    const dir = mkdtempSync(nodePath.join(tmp, 'ar-'));
    const path = nodePath.join(dir, 'model.pt');
    const sd = new Map<string, TorchTensor>([
      ['tok_embeddings.weight', { dtype: 'BF16', shape: [8, 4], bytes: new Uint8Array(64).fill(3) }],
      ['norm.weight', { dtype: 'F32', shape: [4], bytes: new Uint8Array(16).fill(1) }],
    ]);
    await writeTorchCheckpoint(path, { model: sd }, {}, nodeFileSystem);
    const ck = await openCheckpoint(dir);
    expect(ck.format).toBe('zip');
    expect(ck.names).toEqual(['model.tok_embeddings.weight', 'model.norm.weight']);
    expect((await ck.read('model.tok_embeddings.weight')).dtype).toBe('bf16');
    await ck.close();
    // as upstream's AR loader takes ckpt["model"]
    const inner = await openCheckpoint(dir, nodeFileSystem, { weightsUnder: ['state_dict', 'model'] });
    expect(inner.names).toEqual(['tok_embeddings.weight', 'norm.weight']);
    expect(inner.info('norm.weight').name).toBe('norm.weight');
    expect(await inner.readBytes('norm.weight')).toEqual(sd.get('norm.weight')!.bytes);
    expect(() => inner.info('model.norm.weight')).toThrow(/no such tensor/);
    await inner.close();
    const t = await openTorchCheckpoint(path);
    expect(t.folder).toBe('model');
    await t.close();
    await writeTorchCheckpoint(path, { big: sd }, { zip64: true, folder: 'archive' });
    const z = await openTorchCheckpoint(path);
    expect(z.folder).toBe('archive');
    expect(z.names).toEqual(['big.tok_embeddings.weight', 'big.norm.weight']);
    await z.close();
  });

  it('refuses what torch could not have written', () => {
    const bad = (v: unknown) => () => encodeTorchZip(v as TorchValue);
    expect(bad({ t: { dtype: 'C64', shape: [1], bytes: new Uint8Array(8) } })).toThrow(/dtype "C64" has no torch storage class/);
    expect(bad({ t: { dtype: 'F32', shape: [3], bytes: new Uint8Array(8) } })).toThrow(/tensor t: 8 bytes but shape \[3\] of F32 needs 12/);
    expect(bad({ t: { dtype: 'F32', shape: [-1], bytes: new Uint8Array(0) } })).toThrow(/not a list of non-negative integers/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(bad(loop)).toThrow(/contains itself/);
    expect(bad({ f: () => 1 })).toThrow(/is a function/);
    expect(bad(new Map([[1.5, 1]]))).toThrow(/expected str or int keys/);
    expect(bad({})).not.toThrow();
    expect(() => encodeTorchZip({}, { folder: '' })).toThrow(TorchFormatError);
  });
});
