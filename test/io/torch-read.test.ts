// The PyTorch checkpoint reader on real files: the 11 public checkpoint.read cases (through the
// conformance runner on both backends, and through the API against expected.safetensors), the
// released-style tokenizer .jit archives against their safetensors twins, openCheckpoint on
// .pt / .pth / .jit files and folders, `inspect`, and opening without reading tensor data.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint, openSafetensors, type TensorReader } from '../../src/io/safetensors.js';
import { openTorchCheckpoint, sniffCheckpointFormat, TorchFormatError, torchFormatOf, writeTorchCheckpoint } from '../../src/io/torch.js';
import { runCli } from '../cli/run-cli.js';
import { recordingFs } from '../recording-fs.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = nodePath.resolve(import.meta.dirname, '../fixtures');
const CASES_DIR = nodePath.join(FIXTURES, 'checkpoint');
const CASES = readdirSync(CASES_DIR).filter((d) => !d.includes('.')).sort();
const RELEASE = nodePath.join(FIXTURES, 'release');
const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-torch-read-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface CaseJson {
  args: { file: string; format: string; archive_prefix: string | null };
  non_tensor_leaves?: Record<string, unknown>;
  state_dict_keys?: string[];
  constants?: Record<string, { dtype: string; shape: number[] }>;
}
const caseJson = (name: string): CaseJson => JSON.parse(readFileSync(nodePath.join(CASES_DIR, name, 'case.json'), 'utf8'));

/** Every tensor of `got` equals `want`'s under the same name: dtype, shape and bytes. */
async function expectSameTensors(got: TensorReader, want: TensorReader, names: readonly string[]): Promise<void> {
  for (const n of names) {
    expect(got.info(n).dtype, n).toBe(want.info(n).dtype);
    expect(got.info(n).shape, n).toEqual(want.info(n).shape);
    expect(Buffer.from(await got.readBytes(n)).equals(Buffer.from(await want.readBytes(n))), `${n} bytes`).toBe(true);
  }
}

it('vendors all 11 public cases', () => {
  expect(CASES).toHaveLength(11);
});

describe('checkpoint.read conformance', () => {
  for (const name of CASES) {
    it(`${name} passes on cpu`, async () => {
      await expectCasePasses(nodePath.join(CASES_DIR, name), cpu);
    });
    it(`${name} passes on webgpu`, async () => {
      await expectCasePasses(nodePath.join(CASES_DIR, name), await webgpu());
    });
  }
});

describe('the reader on the public cases', () => {
  for (const name of CASES) {
    it(name, async () => {
      const cj = caseJson(name);
      const file = nodePath.join(CASES_DIR, name, cj.args.file);
      const ck = await openTorchCheckpoint(file);
      const want = await openSafetensors(nodePath.join(CASES_DIR, name, 'expected.safetensors'));
      try {
        expect(ck.format).toBe(cj.args.format === 'torchscript' ? 'torchscript' : cj.args.format.includes('legacy') ? 'legacy' : 'zip');
        expect(ck.folder).toBe(cj.args.archive_prefix ?? '');
        expect(ck.path).toBe(file);
        expect([...ck.names].sort()).toEqual([...want.names].sort());
        await expectSameTensors(ck, want, want.names);
        // byteOffset: the contiguous bytes of a contiguous view sit there in the file; -1 otherwise
        const bytes = readFileSync(file);
        for (const info of ck.entries()) {
          expect(info.file).toBe(file);
          expect(info.byteLength).toBe((await ck.readBytes(info.name)).length);
          if (info.byteOffset >= 0 && info.byteLength > 0) {
            expect(bytes.subarray(info.byteOffset, info.byteOffset + info.byteLength).equals(Buffer.from(await ck.readBytes(info.name))), info.name).toBe(true);
          }
        }
        if (cj.non_tensor_leaves) expect(Object.fromEntries(ck.nonTensorLeaves)).toEqual(cj.non_tensor_leaves);
        for (const k of cj.state_dict_keys ?? []) expect(ck.has(k), k).toBe(true);
        if (cj.constants) expect([...(ck.constants?.names ?? [])].sort()).toEqual(Object.keys(cj.constants).sort());
        else expect(ck.constants === null || ck.format === 'torchscript').toBe(true);
        expect(await sniffCheckpointFormat(file)).toBe(ck.format);
      } finally {
        await ck.close();
        await want.close();
      }
    });
  }

  it('views: non-contiguous views say byteOffset -1 and are gathered; shared storages read alike', async () => {
    const ck = await openTorchCheckpoint(nodePath.join(CASES_DIR, 'pt_views_shared_storage/views.pt'));
    try {
      const strided = ck.entries().filter((i) => i.byteOffset === -1);
      expect(strided.length).toBeGreaterThanOrEqual(4);
    } finally {
      await ck.close();
    }
  });

  it('read() decodes through the safetensors dtype table (bf16 stays bf16, i64 to i32)', async () => {
    const ck = await openTorchCheckpoint(nodePath.join(CASES_DIR, 'pt_state_dict_dtypes/model.pt'));
    try {
      const dtypes = new Set(ck.entries().map((i) => i.dtype));
      expect(dtypes).toEqual(new Set(['F32', 'F16', 'BF16', 'I64']));
      for (const i of ck.entries()) {
        const t = await ck.read(i.name);
        expect(t.dtype).toBe({ F32: 'f32', F16: 'f16', BF16: 'bf16', I64: 'i32' }[i.dtype as string]);
        expect(t.shape).toEqual(i.shape);
      }
      await ck.close();
      await expect(ck.readBytes(ck.names[0])).rejects.toThrow(/read after close/);
      await expect(Promise.resolve().then(() => ck.info('nope'))).rejects.toThrow(/no such tensor/);
    } finally {
      await ck.close();
    }
  });
});

describe('readInto: any byte range of a tensor straight into the caller\'s memory', () => {
  for (const name of ['pt_views_shared_storage', 'pt_state_dict_dtypes', 'pt_zip64_layout', 'pt_legacy_format', 'jit_scripted_attributes']) {
    it(`${name}: whole and in pieces, equal to readBytes (contiguous views by one read, other views gathered)`, async () => {
      const ck = await openTorchCheckpoint(nodePath.join(CASES_DIR, name, caseJson(name).args.file));
      try {
        for (const n of ck.names) {
          const want = await ck.readBytes(n);
          const whole = new Uint8Array(want.length);
          await ck.readInto!(n, whole);
          expect(whole).toEqual(want);
          // three uneven pieces
          const cuts = [0, Math.floor(want.length / 3), Math.floor((2 * want.length) / 3) + 1, want.length].map((c) => Math.min(c, want.length));
          for (let i = 0; i + 1 < cuts.length; i++) {
            const piece = new Uint8Array(cuts[i + 1] - cuts[i]);
            await ck.readInto!(n, piece, cuts[i]);
            expect(piece).toEqual(want.subarray(cuts[i], cuts[i + 1]));
          }
          await expect(ck.readInto!(n, new Uint8Array(1), want.length)).rejects.toThrow(/outside its/);
        }
      } finally {
        await ck.close();
      }
    });
  }
});

describe('released-style tokenizer archives', () => {
  for (const kind of ['cv4x8x8', 'dv4x8x8']) {
    it(`${kind}: encoder.jit and decoder.jit hold the safetensors weights bit for bit`, async () => {
      const st = await openSafetensors(nodePath.join(WEIGHTS, `cosmos-tokenizer-tiny-${kind}/model.safetensors`));
      const covered = new Set<string>();
      try {
        for (const part of ['encoder', 'decoder']) {
          const file = nodePath.join(RELEASE, `cosmos-tokenizer-tiny-${kind}/${part}.jit`);
          const ck = await openTorchCheckpoint(file);
          try {
            expect(ck.format).toBe('torchscript');
            expect(ck.folder).toBe(part);
            const shared = ck.names.filter((n) => st.has(n));
            expect(shared.length).toBeGreaterThan(90);
            await expectSameTensors(ck, st, shared);
            for (const n of shared) covered.add(n);
            // the only extra tensors are the FSQ buffers the safetensors file leaves out
            for (const n of ck.names.filter((m) => !st.has(m))) expect(n).toMatch(/quantizer\.(_levels|_basis|implicit_codebook)$/);
            expect(ck.constants?.names.length).toBeGreaterThan(0);
            expect(ck.nonTensorLeaves.get('training')).toBe(false);
          } finally {
            await ck.close();
          }
        }
        expect([...st.names].filter((n) => !covered.has(n))).toEqual([]);
      } finally {
        await st.close();
      }
    });
  }
});

/** A FileSystem that counts the bytes read through it. */

describe('opening reads no tensor data', () => {
  it('a 64 MiB checkpoint opens reading a few KiB; a tensor read reads that tensor', async () => {
    const big = { dtype: 'F32' as const, shape: [4096, 4096], bytes: new Uint8Array(4096 * 4096 * 4).fill(7) };
    const small = { dtype: 'BF16' as const, shape: [3], bytes: new Uint8Array(6).fill(1) };
    const path = nodePath.join(tmp, 'big.pt');
    await writeTorchCheckpoint(path, { model: new Map<string, typeof big | typeof small>([['w', big], ['b', small]]) });
    const { fs, bytesRead } = recordingFs();
    const ck = await openTorchCheckpoint(path, fs);
    try {
      expect(bytesRead()).toBeLessThan(80 * 1024);
      const before = bytesRead();
      expect(await ck.readBytes('model.b')).toEqual(small.bytes);
      expect(bytesRead() - before).toBe(6);
    } finally {
      await ck.close();
    }
  });
});

describe('openCheckpoint and inspect accept PyTorch files', () => {
  const mean = nodePath.join(CASES_DIR, 'pt_tuple_mean_std/mean_std.pt');

  it('a .pt, .pth and .jit file, also renamed', async () => {
    for (const [file, format] of [
      [mean, 'zip'],
      [nodePath.join(CASES_DIR, 'pt_legacy_format/legacy.pth'), 'legacy'],
      [nodePath.join(CASES_DIR, 'jit_scripted_attributes/module.jit'), 'torchscript'],
    ] as const) {
      const renamed = nodePath.join(tmp, `renamed-${format}.bin`);
      writeFileSync(renamed, readFileSync(file));
      for (const p of [file, renamed]) {
        const ck = await openCheckpoint(p);
        try {
          expect(ck.format).toBe(format);
          expect(ck.files).toEqual([p]);
          expect(ck.shards).toEqual([]);
          const direct = await openTorchCheckpoint(p);
          expect(ck.names).toEqual(direct.names);
          await expectSameTensors(ck, direct, direct.names);
          await direct.close();
        } finally {
          await ck.close();
        }
      }
    }
  });

  it('a folder with one model.pt and a config.json; safetensors win when both are there', async () => {
    const dir = nodePath.join(tmp, 'ar-release');
    mkdirSync(dir);
    writeFileSync(nodePath.join(dir, 'model.pt'), readFileSync(mean));
    writeFileSync(nodePath.join(dir, 'config.json'), '{"dim": 4}');
    let ck = await openCheckpoint(dir);
    expect(ck.format).toBe('zip');
    expect(ck.names).toEqual(['0', '1']);
    expect(ck.config).toEqual({ dim: 4 });
    await ck.close();
    writeFileSync(nodePath.join(dir, 'model.safetensors'), readFileSync(nodePath.join(CASES_DIR, 'pt_tuple_mean_std/expected.safetensors')));
    ck = await openCheckpoint(dir);
    expect(ck.format).toBe('safetensors');
    expect(ck.shards).toHaveLength(1);
    await ck.close();
  });

  it('a folder with two .pt files and no safetensors is ambiguous', async () => {
    const dir = nodePath.join(tmp, 'two-pt');
    mkdirSync(dir);
    writeFileSync(nodePath.join(dir, 'a.pt'), readFileSync(mean));
    writeFileSync(nodePath.join(dir, 'b.pth'), readFileSync(mean));
    await expect(openCheckpoint(dir)).rejects.toThrow(/several PyTorch files \(a\.pt, b\.pth\)/);
  });

  it('a TorchScript archive beside a config.json that is not JSON (the 0.1 tokenizer releases) still opens', async () => {
    const dir = nodePath.join(tmp, 'tok-0.1');
    mkdirSync(dir);
    writeFileSync(nodePath.join(dir, 'config.json'), '{"architectures": ["CosmosTokenizer"],}');
    writeFileSync(nodePath.join(dir, 'encoder.jit'), readFileSync(nodePath.join(CASES_DIR, 'jit_scripted_attributes/module.jit')));
    const ck = await openCheckpoint(nodePath.join(dir, 'encoder.jit'));
    expect(ck.config).toBeNull();
    expect(ck.names.length).toBe(17);
    await ck.close();
  });

  it('zero-filled placeholders named .pt / .jit are reported as such, naming the file', async () => {
    for (const name of ['model.pt', 'encoder.jit', 'Resnet50_Final.pth']) {
      const p = nodePath.join(tmp, name);
      writeFileSync(p, new Uint8Array(10000));
      await expect(openCheckpoint(p)).rejects.toThrow(TorchFormatError);
      await expect(openCheckpoint(p)).rejects.toThrow(`${p}: not a PyTorch checkpoint (its first 4096 bytes are all zero`);
      const r = await runCli('inspect', p);
      expect(r.rc).toBe(2);
      expect(r.errLines).toEqual([expect.stringMatching(new RegExp(`^error: ${p.replace(/[.]/g, '\\.')}: not a PyTorch checkpoint \\(`))]);
    }
    const dir = nodePath.join(tmp, 'zero-release');
    mkdirSync(dir);
    writeFileSync(nodePath.join(dir, 'model.pt'), new Uint8Array(64));
    await expect(openCheckpoint(dir)).rejects.toThrow(`${nodePath.join(dir, 'model.pt')}: not a PyTorch checkpoint`);
  });

  it('inspect lists a .jit (text and --json)', async () => {
    const file = nodePath.join(RELEASE, 'cosmos-tokenizer-tiny-dv4x8x8/encoder.jit');
    const r = await runCli('inspect', file);
    expect(r.rc).toBe(0);
    expect(r.errLines).toEqual([]);
    expect(r.out).toMatch(/quantizer\.implicit_codebook\s+F32\s+\[64000, 6\]\s+1,536,000/);
    expect(r.out).toMatch(/total: 106 tensors/);
    const j = await runCli('inspect', file, '--json');
    expect(j.rc).toBe(0);
    const parsed = JSON.parse(j.out);
    expect(parsed.tensors).toHaveLength(106);
    expect(parsed.files).toEqual([file]);
  });

  it('magic bytes', () => {
    expect(torchFormatOf(new Uint8Array([0x50, 0x4b, 3, 4]))).toBe('zip');
    expect(torchFormatOf(new Uint8Array([0x80, 2, 0x8a]))).toBe('legacy');
    expect(torchFormatOf(new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0, 0x7b]))).toBe('safetensors');
    expect(torchFormatOf(new Uint8Array(16))).toBeNull();
    expect(torchFormatOf(new Uint8Array([0x80, 4]))).toBeNull();
  });
});
