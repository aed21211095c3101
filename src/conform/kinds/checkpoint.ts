// Conformance kind of the PyTorch checkpoint reader:
//   checkpoint.read  read the file named in args.file (torch.save zip or legacy stream, or a
//                    TorchScript archive) and compare every tensor with expected.safetensors
//                    exactly: the same key set, dtype, shape and bytes. When case.json lists them,
//                    non_tensor_leaves, state_dict_keys and constants are checked too.
// Each tensor the engine can load is also decoded and uploaded to the backend and read back,
// which must give the expected values bit for bit (the path every loader takes).
import type { Backend } from '../../engine/backend.js';
import type { RawArray } from '../../engine/dtype.js';
import { fromRaw } from '../../engine/ops.js';
import { UnsupportedDtypeError, ValueRangeError } from '../../io/errors.js';
import { type LoadedTensor, openSafetensors, type TensorReader } from '../../io/safetensors.js';
import { openTorchCheckpoint } from '../../io/torch.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import type { Comparison } from '../compare.js';
import { registerKind } from '../registry.js';

const PASS: Comparison = { max_abs: 0, max_rel: 0, pass: true };
const failed = (note: string): Comparison => ({ max_abs: Infinity, max_rel: Infinity, pass: false, note });

function bitsOf(raw: RawArray): Uint8Array {
  return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** The engine leg: decode, upload, read back; null when it matches (or the dtype is not an engine one). */
async function engineMismatch(got: TensorReader, want: TensorReader, name: string, backend: Backend): Promise<string | null> {
  let g: LoadedTensor;
  let w: LoadedTensor;
  try {
    g = await got.read(name);
    w = await want.read(name);
  } catch (e) {
    // I8 / I16 have no engine dtype, and I64 values past int32 cannot be loaded: only the bytes are compared.
    if (e instanceof ValueRangeError || e instanceof UnsupportedDtypeError) return null;
    throw e;
  }
  if (g.dtype !== w.dtype) return `decodes to ${g.dtype}, expected ${w.dtype}`;
  if (g.raw.length === 0) return null;
  const t = fromRaw(backend, g.raw, g.shape, g.dtype);
  try {
    const back = await t.readRaw();
    const i = firstDifference(bitsOf(back), bitsOf(w.raw));
    return i < 0 ? null : `differs after a round trip through ${backend.name} at byte ${i}`;
  } finally {
    t.dispose();
  }
}

function checkLeaves(c: FixtureCase, leaves: ReadonlyMap<string, unknown>): void {
  const json = c.json as unknown as Record<string, unknown>;
  const want = json.non_tensor_leaves as Record<string, unknown> | undefined;
  if (want === undefined) return;
  const got = Object.fromEntries([...leaves].map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]));
  const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])].sort();
  const bad = keys.filter((k) => !(k in got) || !(k in want) || JSON.stringify(got[k]) !== JSON.stringify(want[k]));
  if (bad.length) {
    const k = bad[0];
    throw new Error(`non_tensor_leaves differ at ${bad.length} key(s), first ${JSON.stringify(k)}: got ${JSON.stringify(got[k])}, expected ${JSON.stringify(want[k])}`);
  }
}

function checkStateDictKeys(c: FixtureCase, names: readonly string[]): void {
  const keys = (c.json as unknown as Record<string, unknown>).state_dict_keys;
  if (!Array.isArray(keys)) return;
  const missing = keys.filter((k) => !names.includes(k as string));
  if (missing.length) throw new Error(`state_dict_keys ${JSON.stringify(missing.slice(0, 5))} are not tensors of the file`);
}

interface ConstantSpec {
  dtype?: string;
  shape?: number[];
  values?: number[];
}

async function checkConstants(c: FixtureCase, constants: TensorReader | null): Promise<void> {
  const want = (c.json as unknown as Record<string, unknown>).constants as Record<string, ConstantSpec> | undefined;
  if (!want) return;
  const names = constants?.names ?? [];
  const expected = Object.keys(want);
  if (JSON.stringify([...names].sort()) !== JSON.stringify([...expected].sort())) {
    throw new Error(`constants ${JSON.stringify(names)} differ from case.json's ${JSON.stringify(expected)}`);
  }
  for (const [name, spec] of Object.entries(want)) {
    const info = constants!.info(name);
    if ((spec.dtype && spec.dtype !== info.dtype) || (spec.shape && spec.shape.join() !== info.shape.join())) {
      throw new Error(`constant ${name} is ${info.dtype} [${info.shape}], expected ${spec.dtype} [${spec.shape}]`);
    }
    if (spec.values) {
      const bytes = await constants!.readBytes(name);
      const got = decodeNumbers(info.dtype, bytes);
      if (got === null) continue;
      if (got.length !== spec.values.length || got.some((v, i) => v !== spec.values![i])) {
        throw new Error(`constant ${name} holds ${JSON.stringify(got)}, expected ${JSON.stringify(spec.values)}`);
      }
    }
  }
}

/** Plain numbers of small constants (float types exactly as stored; null for dtypes not handled). */
function decodeNumbers(dtype: string, bytes: Uint8Array): number[] | null {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read: Record<string, [number, (o: number) => number]> = {
    F64: [8, (o) => v.getFloat64(o, true)],
    F32: [4, (o) => v.getFloat32(o, true)],
    I64: [8, (o) => Number(v.getBigInt64(o, true))],
    I32: [4, (o) => v.getInt32(o, true)],
    I16: [2, (o) => v.getInt16(o, true)],
    I8: [1, (o) => v.getInt8(o)],
    U8: [1, (o) => v.getUint8(o)],
    BOOL: [1, (o) => v.getUint8(o)],
  };
  const r = read[dtype];
  if (!r) return null;
  const out: number[] = [];
  for (let o = 0; o + r[0] <= bytes.length; o += r[0]) out.push(r[1](o));
  return out;
}

registerKind('checkpoint.read', async (c, backend) => {
  const file = c.args.file;
  if (typeof file !== 'string' || file === '') throw new CaseFormatError(`${c.dir}: checkpoint.read needs args.file, the checkpoint's file name`);
  const got = await openTorchCheckpoint(c.path(file), c.fs);
  try {
    const want = await openSafetensors(c.path('expected.safetensors'), c.fs);
    try {
      const compared: Record<string, Comparison> = {};
      for (const name of want.names) {
        if (!got.has(name)) {
          compared[name] = failed('not in the checkpoint');
          continue;
        }
        const g = got.info(name);
        const w = want.info(name);
        if (g.dtype !== w.dtype) compared[name] = failed(`dtype ${g.dtype}, expected ${w.dtype}`);
        else if (g.shape.join() !== w.shape.join()) compared[name] = failed(`shape [${g.shape.join(', ')}], expected [${w.shape.join(', ')}]`);
        else {
          const i = firstDifference(await got.readBytes(name), await want.readBytes(name));
          const engine = i < 0 ? await engineMismatch(got, want, name, backend) : null;
          compared[name] = i >= 0 ? failed(`bytes differ from byte ${i}`) : engine ? failed(engine) : PASS;
        }
      }
      for (const name of got.names) if (!want.has(name)) compared[name] = failed('not in expected.safetensors');
      checkLeaves(c, got.nonTensorLeaves);
      checkStateDictKeys(c, got.names);
      await checkConstants(c, got.constants);
      return { outputs: {}, compared };
    } finally {
      await want.close();
    }
  } finally {
    await got.close();
  }
});
