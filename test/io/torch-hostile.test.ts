// Hostile PyTorch files, written here: code-execution pickles, opcodes and globals outside the
// allowlist, path tricks and duplicate entries, absurd size claims, views past their storage,
// broken zip structures, truncations, a legacy stream running past its end, and nesting bombs.
// Each must be refused by a TorchFormatError whose message is one line `<file>: <problem>`, and by
// `cosmos-ts inspect` with one `error:` line and exit status 2: without side effects, quickly,
// and without allocating from the sizes the file claims.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isUserError } from '../../src/engine/errors.js';
import { encodeTorchZip, openTorchCheckpoint, TorchFormatError } from '../../src/io/torch.js';
import { runCli } from '../cli/run-cli.js';
import {
  BINPERSID, dictPickle, EMPTY_DICT, EMPTY_TUPLE, f32Bytes, glob, int, MARK, NEWFALSE, type Part, pk, PROTO2, REDUCE, SETITEM, STOP, str,
  TUPLE, tensor, tuple, zipOf,
} from './torch-files.js';

const FIXTURES = nodePath.resolve(import.meta.dirname, '../fixtures/checkpoint');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-torch-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const marker = nodePath.join(tmp, 'PWNED');

const data4 = f32Bytes([1, 2, 3, 4]);
/** A zip holding this data.pkl and a 4-element float storage data/0. */
const withPickle = (pickle: Uint8Array, extra: [string, Uint8Array][] = [['data/0', data4]]) => zipOf([['data.pkl', pickle], ...extra]);
const onePickle = (...parts: Part[]) => withPickle(pk(PROTO2, ...parts, STOP));
const oneTensor = (t: Parameters<typeof tensor>[0], extra?: [string, Uint8Array][]) => withPickle(dictPickle([['w', tensor(t)]]), extra);

/** The bytes of a zip with one field of its classic end record (offset from the record start) changed. */
function patchEnd(zip: Uint8Array, field: number, value: number, size: 2 | 4): Uint8Array {
  const out = new Uint8Array(zip);
  const v = new DataView(out.buffer);
  const end = out.length - 22;
  if (size === 2) v.setUint16(end + field, value, true);
  else v.setUint32(end + field, value, true);
  return out;
}

const valid = readFileSync(nodePath.join(FIXTURES, 'pt_state_dict_dtypes/model.pt'));
const legacy = readFileSync(nodePath.join(FIXTURES, 'pt_legacy_format/legacy.pth'));

function legacyPatched(at: number, bytes: number[]): Uint8Array {
  const out = new Uint8Array(legacy);
  out.set(bytes, at);
  return out;
}

/** Where the legacy fixture's first storage count sits: after the five pickles. */
function legacyFirstCount(): number {
  // the key list pickle is the last of the five and ends with STOP right before the first count
  const expectedStorages = legacy.length;
  let pos = 0;
  for (let i = 0; i < 5; i++) pos = legacy.indexOf(STOP, legacy.indexOf(0x80, pos)) + 1;
  expect(pos).toBeLessThan(expectedStorages);
  return pos;
}

const list100k = (): Uint8Array => pk(PROTO2, new Uint8Array(100_000).fill(0x5d), new Uint8Array(99_999).fill(0x61), STOP);

/** [x, x] nested 64 times: 2^64 leaves if walked naively. */
function sharingBomb(): Uint8Array {
  const parts: Part[] = [PROTO2, 0x4e];
  for (let i = 0; i < 64; i++) parts.push(0x71, i & 0xff, 0x68, i & 0xff, 0x86); // BINPUT i, BINGET i, TUPLE2
  return pk(...parts, STOP);
}

const CASES: [string, Uint8Array, RegExp][] = [
  // code execution and other callables
  ['os.system', onePickle(glob('os', 'system'), str(`touch ${marker}`), 0x85, REDUCE), /refused pickle global os\.system at byte 2 of data\.pkl \(a checkpoint holds only tensors, storages and containers\)/],
  ['builtins.eval', onePickle(glob('builtins', 'eval'), str('1+1'), 0x85, REDUCE), /refused pickle global builtins\.eval at byte 2/],
  ['posix.system', onePickle(glob('posix', 'system'), str(`touch ${marker}`), 0x85, REDUCE), /refused pickle global posix\.system at byte 2/],
  ['subprocess.Popen', onePickle(glob('subprocess', 'Popen'), EMPTY_TUPLE, REDUCE), /refused pickle global subprocess\.Popen/],
  ['torch.load', onePickle(glob('torch.serialization', 'load'), EMPTY_TUPLE, REDUCE), /refused pickle global torch\.serialization\.load/],
  ['numpy', onePickle(glob('numpy.core.multiarray', 'scalar'), EMPTY_TUPLE, REDUCE), /refused pickle global numpy\.core\.multiarray\.scalar/],
  ['_codecs.encode', onePickle(glob('_codecs', 'encode'), str('x'), str('latin1'), 0x86, REDUCE), /refused pickle global _codecs\.encode/],
  ['global-not-a-name', onePickle(glob('os;x', 'system'), EMPTY_TUPLE, REDUCE), /refused pickle global os;x\.system .*not a Python name/],
  ['quantized storage', oneTensor({ storage: 'QInt8Storage', numel: 4, size: [4], stride: [1] }), /refused pickle global torch\.QInt8Storage .*quantized/],
  ['complex storage', oneTensor({ storage: 'ComplexFloatStorage', numel: 4, size: [4], stride: [1] }), /refused pickle global torch\.ComplexFloatStorage .*complex/],
  ['NEWOBJ OrderedDict', onePickle(glob('collections', 'OrderedDict'), EMPTY_TUPLE, 0x81), /refused NEWOBJ of the global collections\.OrderedDict at byte \d+ of data\.pkl/],
  ['NEWOBJ rebuild', onePickle(glob('torch._utils', '_rebuild_tensor_v2'), EMPTY_TUPLE, 0x81), /refused NEWOBJ of the global torch\._utils\._rebuild_tensor_v2/],
  ['NEWOBJ with args', onePickle(glob('__torch__', 'M'), tuple(int(1)), 0x81), /NEWOBJ of __torch__\.M at byte \d+ of data\.pkl with a tuple of 1; expected \(\)/],
  ['REDUCE TorchScript class', onePickle(glob('__torch__', 'M'), EMPTY_TUPLE, REDUCE), /refused REDUCE of __torch__\.M/],
  ['REDUCE storage class', onePickle(glob('torch', 'FloatStorage'), tuple(int(4)), REDUCE), /refused REDUCE of torch\.FloatStorage/],
  ['REDUCE of a str', onePickle(str('os.system'), EMPTY_TUPLE, REDUCE), /REDUCE at byte \d+ of data\.pkl calls a str/],
  ['OrderedDict with items', onePickle(glob('collections', 'OrderedDict'), tuple(int(1)), REDUCE), /REDUCE of collections\.OrderedDict .* expected \(\)/],
  ['BUILD on a list', onePickle(0x5d, EMPTY_DICT, 0x62), /refused BUILD at byte 4 of data\.pkl of a list with a dict/],
  ['BUILD on a dict', onePickle(EMPTY_DICT, EMPTY_DICT, 0x62), /refused BUILD .* of a dict/],
  ['BUILD setstate-style', onePickle(glob('__torch__', 'M'), EMPTY_TUPLE, 0x81, str('state'), 0x62), /refused BUILD .* of a TorchScript object __torch__\.M with a str/],
  ['BUILD on a tensor', withPickle(pk(PROTO2, tensor({ numel: 4, size: [4], stride: [1] }), EMPTY_DICT, 0x62, STOP)), /refused BUILD .* of a tensor/],
  // opcodes outside protocol 2's checkpoint subset
  ['INST', onePickle('i', 'os\nsystem\n'), /refused pickle opcode 0x69 INST at byte 2 of data\.pkl/],
  ['OBJ', onePickle(MARK, glob('__torch__', 'M'), 'o'), /refused pickle opcode 0x6f OBJ/],
  ['STACK_GLOBAL', onePickle(str('os'), str('system'), 0x93), /refused pickle opcode 0x93 STACK_GLOBAL at byte 20/],
  ['EXT1', onePickle(0x82, 1), /refused pickle opcode 0x82 EXT1/],
  ['PERSID', onePickle('P0\n'), /refused pickle opcode 0x50 PERSID/],
  ['text STRING', onePickle("S'x'\n"), /refused pickle opcode 0x53 STRING/],
  ['LONG4', onePickle(0x8b, 0xff, 0xff, 0xff, 0x7f), /refused pickle opcode 0x8b LONG4/],
  ['protocol 4', withPickle(pk(0x80, 4, 0x95, 8, 0, 0, 0, 0, 0, 0, 0, 0x4e, STOP)), /pickle protocol 4 at byte 0 of data\.pkl/],
  ['protocol 0', withPickle(pk('cos\nsystem\n(Vtouch x\ntR.')), /refused pickle global os\.system at byte 0/],
  ['unknown opcode', onePickle(0xff), /refused pickle opcode 0xff at byte 2/],
  // entry names
  ['dotdot', zipOf([['!archive/../evil/data.pkl', pk(PROTO2, 0x4e, STOP)]]), /zip entry "archive\/\.\.\/evil\/data\.pkl" has a "\.\." segment/],
  ['dotdot first', zipOf([['!../x/data.pkl', pk(PROTO2, 0x4e, STOP)]]), /zip entry "\.\.\/x\/data\.pkl" has a "\.\." segment/],
  ['absolute', zipOf([['!/archive/data.pkl', pk(PROTO2, 0x4e, STOP)]]), /zip entry "\/archive\/data\.pkl" is an absolute path/],
  ['drive letter', zipOf([['!C:/archive/data.pkl', pk(PROTO2, 0x4e, STOP)]]), /zip entry "C:\/archive\/data\.pkl" is an absolute path/],
  ['backslash', zipOf([['!archive\\data.pkl', pk(PROTO2, 0x4e, STOP)]]), /zip entry "archive\\\\data\.pkl" contains a backslash/],
  ['duplicate', zipOf([['data.pkl', pk(PROTO2, 0x4e, STOP)], ['data.pkl', pk(PROTO2, 0x4e, STOP)]]), /zip entry "archive\/data\.pkl" appears twice/],
  ['outside folder', zipOf([['data.pkl', dictPickle([['w', tensor({ numel: 4, size: [4], stride: [1] })]])], ['!other/data/0', data4]]), /zip entry "other\/data\/0" is outside the archive's top-level folder "archive\/"/],
  ['no folder', zipOf([['!data.pkl', pk(PROTO2, 0x4e, STOP)]]), /zip entry "data\.pkl" is not inside a folder/],
  ['empty segment', zipOf([['!archive//data.pkl', pk(PROTO2, 0x4e, STOP)]]), /has an empty path segment/],
  ['control char', zipOf([['!archive/da\nta.pkl', pk(PROTO2, 0x4e, STOP)]]), /contains control characters/],
  ['storage key path', oneTensor({ key: '../0', numel: 4, size: [4], stride: [1] }), /has storage key "\.\.\/0"; expected a plain record name/],
  // size claims
  ['numel 2^60', oneTensor({ numel: 2n ** 60n, size: [4], stride: [1] }), /storage data\/0 at byte \d+ of data\.pkl claims 1152921504606846976 elements; expected a count below 2\^53/],
  ['numel 2^50 vs record', oneTensor({ numel: 2 ** 50, size: [4], stride: [1] }), /storage data\/0 claims 1125899906842624 F32 elements \(4503599627370496 bytes\) but its record holds 16 bytes/],
  ['record length', oneTensor({ numel: 4, size: [4], stride: [1] }, [['data/0', new Uint8Array(12)]]), /storage data\/0 claims 4 F32 elements \(16 bytes\) but its record holds 12 bytes/],
  ['missing record', oneTensor({ key: '7', numel: 4, size: [4], stride: [1] }), /storage data\/7 is used by a tensor but the archive has no record "archive\/data\/7"/],
  ['view past end', oneTensor({ numel: 4, size: [5], stride: [1] }), /tensor at byte \d+ of data\.pkl: view \(offset 0, size \(5\), stride \(1\)\) reaches element 4 but storage data\/0 holds 4 F32 elements/],
  ['strided view past end', oneTensor({ numel: 4, offset: 1, size: [2, 2], stride: [1, 2] }), /reaches element 4 but storage data\/0 holds 4/],
  ['numel overflow', oneTensor({ numel: 4, size: [2 ** 31, 2 ** 31, 2 ** 31], stride: [1, 1, 1] }), /size \(2147483648, 2147483648, 2147483648\) holds 9903520314283042199192993792 elements; expected fewer than 2\^53/],
  ['stride overflow', oneTensor({ numel: 4, size: [2, 2], stride: [2n ** 62n, 1] }), /an entry of tensor stride at byte \d+ of data\.pkl is 4611686018427387904; expected an int below 2\^53/],
  ['extent overflow', oneTensor({ numel: 4, size: [2 ** 30, 2 ** 30], stride: [2 ** 30, 2 ** 23] }), /holds 1152921504606846976 elements|reaches element/],
  ['offset past end', oneTensor({ numel: 4, offset: 2 ** 52, size: [1], stride: [1] }), /reaches element 4503599627370496 but storage data\/0 holds 4/],
  ['negative stride', oneTensor({ numel: 4, offset: 3, size: [4], stride: [-1] }), /stride \(-1\) is negative/],
  ['negative size', oneTensor({ numel: 4, size: [-1], stride: [1] }), /size \(-1\) has a negative dimension/],
  ['negative offset', oneTensor({ numel: 4, offset: -1, size: [1], stride: [1] }), /storage offset -1 is negative/],
  ['rank mismatch', oneTensor({ numel: 4, size: [2, 2], stride: [1] }), /size \(2, 2\) and stride \(1\) differ in length/],
  ['one key two dtypes', withPickle(dictPickle([['a', tensor({ numel: 4, size: [4], stride: [1] })], ['b', tensor({ storage: 'LongStorage', numel: 2, size: [2], stride: [1] })]])), /storage data\/0 at byte \d+ of data\.pkl is named as 2 I64 elements but earlier as 4 F32/],
  ['bad persistent id', onePickle(tuple(str('storage'), glob('collections', 'OrderedDict'), str('0'), str('cpu'), int(4)), BINPERSID), /persistent id at byte \d+ of data\.pkl names the global collections\.OrderedDict as its storage class/],
  ['persistent id not a tuple', onePickle(str('storage'), BINPERSID), /persistent id at byte \d+ of data\.pkl is a str; expected \('storage'/],
  // zip structure
  ['directory past EOF', patchEnd(valid, 16, valid.length + 1000, 4), /zip central directory \(offset \d+, \d+ bytes\) runs past its end record/],
  ['directory size lie', patchEnd(valid, 12, 0x7fffffff, 4), /zip central directory .* runs past its end record/],
  ['entry count lie', patchEnd(valid, 10, 0xfffe, 2), /zip end record claims 65534 entries but the central directory holds \d+ bytes/],
  ['zip64 locator lie', (() => {
    const z = patchEnd(valid, 16, 0xffffffff, 4);
    new DataView(z.buffer).setBigUint64(z.length - 22 - 20 + 8, 2n ** 52n, true);
    return z;
  })(), /zip64 end record offset 4503599627370496 lies past the locator/],
  ['encrypted', (() => {
    const z = new Uint8Array(valid);
    const v = new DataView(z.buffer);
    const dir = v.getUint32(z.length - 22 + 16, true);
    v.setUint16(dir + 8, 0x0809, true);
    return z;
  })(), /zip entry "model\/data\.pkl" is encrypted/],
  ['local header moved', (() => {
    const z = new Uint8Array(valid);
    const v = new DataView(z.buffer);
    const dir = v.getUint32(z.length - 22 + 16, true);
    v.setUint32(dir + 42, 7, true);
    return z;
  })(), /no zip local header for "model\/data\.pkl" at offset 7/],
  ['CRC mismatch', (() => {
    const z = new Uint8Array(valid);
    z[64 + 10] ^= 1; // a byte of model/data.pkl, whose data starts at 64
    return z;
  })(), /record "model\/data\.pkl" fails its CRC-32 check \([0-9a-f]+, the directory says [0-9a-f]+\); the file is corrupt/],
  ['deflated data.pkl', zipOf([['data.pkl', pk(PROTO2, 0x4e, STOP)]], { method: { 'data.pkl': 8 } }), /record "archive\/data\.pkl" is compressed \(zip method 8\); torch stores the records a reader needs uncompressed/],
  ['deflated storage', oneTensor({ numel: 4, size: [4], stride: [1] }).slice(0, 0).length === 0 ? zipOf([['data.pkl', dictPickle([['w', tensor({ numel: 4, size: [4], stride: [1] })]])], ['data/0', data4]], { method: { 'data/0': 8 } }) : valid, /record "archive\/data\/0" is compressed/],
  ['no data.pkl', zipOf([['version', new TextEncoder().encode('3\n')]]), /zip archive has no archive\/data\.pkl record \(it holds version\)/],
  ['big-endian', zipOf([['data.pkl', pk(PROTO2, 0x4e, STOP)], ['byteorder', new TextEncoder().encode('big')]]), /byteorder record says "big"; only little-endian/],
  ['truncated half', valid.subarray(0, valid.length >> 1), /no zip end-of-central-directory record/],
  ['truncated by one', valid.subarray(0, valid.length - 1), /no zip end-of-central-directory record/],
  ['truncated to 100', valid.subarray(0, 100), /no zip end-of-central-directory record/],
  ['tiny zip', valid.subarray(0, 10), /zip archive of 10 bytes is too short/],
  ['zero-filled', new Uint8Array(100_000), /not a PyTorch checkpoint \(its first 4096 bytes are all zero: a placeholder or an unfinished download; expected a torch\.save/],
  ['empty', new Uint8Array(0), /not a PyTorch checkpoint \(the file is empty/],
  ['ELF', pk(0x7f, 'ELF', 2, 1, 1, 0, new Uint8Array(40)), /not a PyTorch checkpoint \(it starts with bytes 7f 45 4c 46 02 01 01 00; expected/],
  ['safetensors', readFileSync(nodePath.join(FIXTURES, 'pt_tuple_mean_std/expected.safetensors')), /is a safetensors file, not a PyTorch checkpoint/],
  // the pickle machine
  ['BINUNICODE 4 GiB', onePickle(0x58, 0xf0, 0xff, 0xff, 0xff, 'abc'), /data\.pkl ends inside the opcode at byte 2 \(truncated or corrupt; expected a STOP\)/],
  ['LONG1 numel', oneTensor({ numel: 2n ** 2000n, size: [4], stride: [1] }), /storage data\/0 at byte \d+ of data\.pkl claims a 603-digit number of elements; expected a count below 2\^53/],
  ['no STOP', pk(PROTO2, 0x4e).length ? withPickle(pk(PROTO2, 0x4e)) : valid, /data\.pkl ends inside the opcode at byte 3/],
  ['100k MARKs', withPickle(pk(PROTO2, new Uint8Array(100_000).fill(MARK), STOP)), /pickle nests more than 1000 MARKs at byte 1002 of data\.pkl/],
  ['nested lists', withPickle(list100k()), /data\.pkl nests deeper than 200 levels/],
  ['self-referential list', onePickle(0x5d, 0x71, 0, 0x68, 0, 0x61), /data\.pkl contains itself at "0" \(a cycle; a checkpoint is a tree\)/],
  ['sharing bomb', withPickle(sharingBomb()), /data\.pkl expands to more than 1000000 values/],
  ['stack bomb', withPickle(pk(PROTO2, MARK, new Uint8Array(1_100_000).fill(0x4e), TUPLE, STOP)), /pickle stack grows past 1000000 values/],
  ['memo out of range', onePickle(0x68, 5), /pickle memo index 5 at byte 2 of data\.pkl was never stored/],
  ['long memo out of range', onePickle(0x6a, 0xff, 0xff, 0xff, 0xff), /pickle memo index 4294967295 at byte 2/],
  ['stack underflow', onePickle(0x61), /pickle stack underflow at byte 2 of data\.pkl \(APPEND needs a value/],
  ['underflow across MARK', onePickle(0x5d, MARK, 0x61), /pickle stack underflow at byte 4/],
  ['two values at STOP', onePickle(0x4e, 0x4e), /STOP at byte 4 of data\.pkl with 2 values and 0 open MARKs/],
  ['TUPLE without MARK', onePickle(TUPLE), /TUPLE at byte 2 of data\.pkl without a MARK/],
  ['odd SETITEMS', onePickle(EMPTY_DICT, MARK, str('a'), 0x75), /SETITEMS at byte \d+ of data\.pkl with an odd number \(1\)/],
  ['APPEND on a dict', onePickle(EMPTY_DICT, 0x4e, 0x61), /APPEND at byte 4 of data\.pkl on a dict \(expected a list\)/],
  ['SETITEM on a list', onePickle(0x5d, str('k'), 0x4e, SETITEM), /SETITEM\(S\) at byte \d+ of data\.pkl on a list \(expected a dict\)/],
  ['tuple key', onePickle(EMPTY_DICT, EMPTY_TUPLE, 0x4e, SETITEM), /dict key a tuple of 0 at byte \d+ of data\.pkl \(checkpoint dicts have str or int keys\)/],
  ['bad UTF-8', onePickle(0x58, 2, 0, 0, 0, 0xc3, 0x28), /BINUNICODE at byte 2 of data\.pkl is not valid UTF-8/],
  ['same key twice', withPickle(dictPickle([['a.b', tensor({ numel: 4, size: [4], stride: [1] })], ['a', [EMPTY_DICT, str('b'), int(1), SETITEM]]])), /two values of data\.pkl flatten to the same key "a\.b"/],
  ['global as a value', withPickle(dictPickle([['x', glob('collections', 'OrderedDict')]])), /data\.pkl holds the global collections\.OrderedDict at "x" as a value/],
  ['bare storage', withPickle(dictPickle([['s', [tuple(str('storage'), glob('torch', 'FloatStorage'), str('0'), str('cpu'), int(4)), BINPERSID]]])), /data\.pkl holds a storage at "s" as a value/],
  ['rebuild arity', onePickle(glob('torch._utils', '_rebuild_tensor_v2'), tuple(int(1)), REDUCE), /REDUCE of torch\._utils\._rebuild_tensor_v2 .* with 1 argument\(s\) \(an int\); expected \(storage, offset/],
  ['parameter of a str', onePickle(glob('torch._utils', '_rebuild_parameter'), tuple(str('x'), NEWFALSE, [glob('collections', 'OrderedDict'), EMPTY_TUPLE, REDUCE]), REDUCE), /REDUCE of torch\._utils\._rebuild_parameter .* expected \(tensor, requires_grad, hooks\)/],
  ['hooks not empty', withPickle(pk(PROTO2, glob('torch._utils', '_rebuild_tensor_v2'), MARK, tuple(str('storage'), glob('torch', 'FloatStorage'), str('0'), str('cpu'), int(4)), BINPERSID, int(0), tuple(int(4)), tuple(int(1)), NEWFALSE, EMPTY_DICT, str('h'), int(1), SETITEM, TUPLE, REDUCE, STOP)), /expected empty backward hooks/],
  // the legacy stream
  ['legacy cut in a storage', legacy.subarray(0, legacy.length - 2), /storage \d+ \(\d+ \w+ elements at byte \d+\) runs past the end of the file \(\d+ bytes; truncated file\?\)/],
  ['legacy count past EOF', legacy.subarray(0, legacyFirstCount() + 4), /storage \d+'s element count at byte \d+ runs past the end of the file/],
  ['legacy count lie', legacyPatched(legacyFirstCount(), [0, 0, 0, 0, 0, 0, 0, 0x40]), /storage \d+ at byte \d+ holds 4611686018427387904 elements but the pickle says \d+/],
  ['legacy trailing bytes', pk(legacy, 0, 0, 0), /3 bytes follow the last storage of the legacy stream/],
  ['legacy cut in a pickle', legacy.subarray(0, 100), /the legacy stream's sys_info pickle is cut off at the end of the file \(100 bytes/],
  ['legacy big-endian', legacyPatched(73, [0x89]), /written on a big-endian machine/],
  ['bare pickle', pk(PROTO2, int(1), STOP), /not a PyTorch checkpoint \(a pickle that does not start with torch's magic number/],
  ['legacy os.system', pk(legacy.subarray(0, 21), PROTO2, glob('os', 'system'), str('x'), 0x85, REDUCE, STOP), /refused pickle global os\.system at byte 2 of the sys_info pickle \(legacy stream\)/],
];

describe('hostile files are refused with one line, no side effect, bounded time', () => {
  const rssStart = process.memoryUsage().rss;
  for (const [name, bytes, message] of CASES) {
    it(name, async () => {
      const p = nodePath.join(tmp, `${name.replace(/[^A-Za-z0-9]+/g, '_')}.pt`);
      writeFileSync(p, bytes);
      const before = readdirSync(tmp).sort();
      const t0 = performance.now();
      const e = await openTorchCheckpoint(p).then(
        async (ck) => {
          await ck.close();
          return null;
        },
        (x: unknown) => x,
      );
      const seconds = (performance.now() - t0) / 1000;
      expect(e, 'refused').toBeInstanceOf(TorchFormatError);
      const msg = (e as Error).message;
      expect(msg.startsWith(`${p}: `), msg).toBe(true);
      expect(msg).not.toMatch(/\n/);
      expect(msg).toMatch(message);
      expect(seconds).toBeLessThan(5);
      // a safetensors file is refused as a PyTorch checkpoint, but inspect reads it as what it is
      if (name !== 'safetensors') {
        const r = await runCli('inspect', p);
        expect(r.rc).toBe(2);
        expect(r.errLines).toEqual([`error: ${msg}`]);
        expect(r.out).toBe('');
      }
      expect(readdirSync(tmp).sort()).toEqual(before);
      expect(existsSync(marker)).toBe(false);
      // nothing was allocated from a claimed size (a 4 GiB or 2^60-element claim would show here)
      expect(process.memoryUsage().rss - rssStart).toBeLessThan(1.5 * 2 ** 30);
    });
  }
});

describe('refusals reach every loader', () => {
  it('a hostile file is a UserError through openCheckpoint, with the same message', async () => {
    const p = nodePath.join(tmp, 'evil.pth');
    writeFileSync(p, onePickle(glob('os', 'system'), str(`touch ${marker}`), 0x85, REDUCE));
    const { openCheckpoint } = await import('../../src/io/safetensors.js');
    const e = await openCheckpoint(p).catch((x: unknown) => x);
    expect(isUserError(e)).toBe(true);
    expect((e as Error).message).toMatch(new RegExp(`^${p.replace(/[.]/g, '\\.')}: refused pickle global os\\.system at byte 2 of data\\.pkl`));
    expect(existsSync(marker)).toBe(false);
  });

  it('the writer is not fooled into writing names outside its folder', () => {
    expect(() => encodeTorchZip({}, { folder: '../x' })).toThrow(/is not a plain name/);
    expect(() => encodeTorchZip({}, { folder: 'a/b' })).toThrow(/is not a plain name/);
  });
});
