// The browser file systems, run in Node (which has Blob, File and fetch): Blob-backed folders and
// HTTP range requests against a local server, checked bit for bit against the Node file system.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobFileSystem, urlFileSystem } from '../../src/io/browser-files.js';
import { FileAccessError } from '../../src/io/errors.js';
import { type FileSystem, readText, writeFileAtomic } from '../../src/io/files.js';
import { nodeFileSystem } from '../../src/io/node-files.js';
import { openCheckpoint, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { type RangeServer, startRangeServer } from './range-server.js';

const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const MODEL = 'cosmos-tokenizer-tiny-cv4x8x8';
const modelFiles = readdirSync(nodePath.join(WEIGHTS, MODEL)).sort();

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-browser-fs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A folder as <input webkitdirectory> gives it: Files whose webkitRelativePath starts with the folder name. */
function droppedFolder(dir: string, name: string): File[] {
  return readdirSync(dir).map((f) => {
    const file = new File([readFileSync(nodePath.join(dir, f))], f);
    Object.defineProperty(file, 'webkitRelativePath', { value: `${name}/${f}` });
    return file;
  });
}

/** The model folder opened through `fs` has every tensor's info and stored bytes as through the Node file system; returns the tensor count. */
async function expectSameAsNode(fs: FileSystem): Promise<number> {
  const got = await openCheckpoint(MODEL, fs);
  const want = await openCheckpoint(nodePath.join(WEIGHTS, MODEL), nodeFileSystem);
  try {
    expect([...got.names]).toEqual([...want.names]);
    expect(got.config).toEqual(want.config);
    expect(got.metadata).toEqual(want.metadata);
    expect(got.names.length).toBeGreaterThan(10);
    for (const name of want.names) {
      const { byteOffset, byteLength, dtype, shape } = want.info(name);
      expect(got.info(name)).toMatchObject({ byteOffset, byteLength, dtype, shape });
      const [a, b] = await Promise.all([got.readBytes(name), want.readBytes(name)]);
      expect(Buffer.from(a).equals(Buffer.from(b)), name).toBe(true);
      const t = await got.read(name);
      expect(Buffer.from(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength).equals(Buffer.from((await want.read(name)).raw.buffer)), name).toBe(true);
    }
    return got.names.length;
  } finally {
    await Promise.all([got.close(), want.close()]);
  }
}

describe('blobFileSystem', () => {
  it('a dropped folder (webkitRelativePath) opens as a checkpoint, every tensor bit-exact', async () => {
    const fs = blobFileSystem(droppedFolder(nodePath.join(WEIGHTS, MODEL), MODEL));
    expect(await fs.list('.')).toEqual([MODEL]);
    expect(await fs.list(MODEL)).toEqual(modelFiles);
    expect(await fs.stat(MODEL)).toEqual({ kind: 'directory', size: 0 });
    expect(await fs.stat(`${MODEL}/config.json`)).toEqual({ kind: 'file', size: readFileSync(nodePath.join(WEIGHTS, MODEL, 'config.json')).length });
    expect(await fs.stat(`${MODEL}/nope`)).toBeNull();
    expect(await fs.stat('../x')).toBeNull();
    await expectSameAsNode(fs);
  });

  it('writes outputs atomically, hands each to onOutput as a Blob, and reads them back (a sharded checkpoint)', async () => {
    const handed: [string, Blob][] = [];
    const fs = blobFileSystem({ 'in/readme.txt': new Blob(['hello']) }, { onOutput: (p, b) => void handed.push([p, b]) });
    const a = { dtype: 'f32' as const, shape: [2, 3], raw: Float32Array.from([1, 2, 3, 4, 5, -0]) };
    const b = { dtype: 'i32' as const, shape: [4], raw: Int32Array.from([7, -8, 9, 2 ** 31 - 1]) };
    await fs.mkdir('out/ckpt');
    await writeSafetensors('out/ckpt/a.safetensors', { a }, undefined, fs);
    await writeSafetensors('out/ckpt/b.safetensors', { b }, { note: 'shard b' }, fs);
    const index = { metadata: { total_size: 40 }, weight_map: { a: 'a.safetensors', b: 'b.safetensors' } };
    await writeFileAtomic('out/ckpt/model.safetensors.index.json', new TextEncoder().encode(JSON.stringify(index)), fs);
    expect(handed.map(([p]) => p)).toEqual(['out/ckpt/a.safetensors', 'out/ckpt/b.safetensors', 'out/ckpt/model.safetensors.index.json']);
    expect(await fs.list('.')).toEqual(['in', 'out']);
    expect(await fs.list('out/ckpt')).toEqual(['a.safetensors', 'b.safetensors', 'model.safetensors.index.json']);
    // The handed Blob is the file: the same bytes the Node writer produces.
    const nodePath_ = nodePath.join(tmp, 'b.safetensors');
    await writeSafetensors(nodePath_, { b }, { note: 'shard b' }, nodeFileSystem);
    expect(Buffer.from(await handed[1][1].arrayBuffer()).equals(readFileSync(nodePath_))).toBe(true);

    const ck = await openCheckpoint('out/ckpt', fs);
    try {
      expect([...ck.names]).toEqual(['a', 'b']);
      expect(ck.metadata).toEqual({ total_size: 40 });
      expect([...(await ck.read('a')).raw]).toEqual([...a.raw]);
      expect([...(await ck.read('b')).raw]).toEqual([...b.raw]);
    } finally {
      await ck.close();
    }
    expect(await readText('in/readme.txt', fs)).toBe('hello');
  });

  it('an output whose onOutput fails does not appear', async () => {
    const fs = blobFileSystem({}, {
      onOutput: () => {
        throw new Error('download refused');
      },
    });
    await expect(writeFileAtomic('x.bin', new Uint8Array(3), fs)).rejects.toThrow(/download refused/);
    expect(await fs.stat('x.bin')).toBeNull();
    expect(await fs.list('.')).toEqual([]);
  });
});

describe('urlFileSystem', () => {
  let server: RangeServer;
  beforeAll(async () => {
    server = await startRangeServer(WEIGHTS);
  });
  afterAll(() => server.close());

  it('opens a checkpoint folder with range requests, every tensor bit-exact against the Node file system', async () => {
    const fs = urlFileSystem(server.url, { files: modelFiles.map((f) => `${MODEL}/${f}`) });
    expect(await fs.list(MODEL)).toEqual(modelFiles);
    expect(fs.resolve(`${MODEL}/model.safetensors`)).toBe(`${server.url}${MODEL}/model.safetensors`);
    server.requests.length = 0;
    const tensors = await expectSameAsNode(fs);
    // The weights were read tensor by tensor, never downloaded whole; the size came from one HEAD.
    const weights = server.requests.filter((r) => r.path === `${MODEL}/model.safetensors`);
    expect(weights.filter((r) => r.method === 'HEAD')).toHaveLength(1);
    const gets = weights.filter((r) => r.method === 'GET');
    expect(gets.length).toBeGreaterThan(tensors);
    expect(gets.every((r) => r.range !== undefined && /^bytes=\d+-\d+$/.test(r.range))).toBe(true);
    // An unlisted path is missing without asking the server.
    const before = server.requests.length;
    expect(await fs.stat(`${MODEL}/absent.bin`)).toBeNull();
    expect(server.requests.length).toBe(before);
  });

  it('without a file list: files by HEAD, a clear error for list(), missing files', async () => {
    const fs = urlFileSystem(server.url.slice(0, -1)); // the trailing '/' is added
    const f = await openSafetensors(`${MODEL}/model.safetensors`, fs);
    await f.close();
    await expect(fs.list(MODEL)).rejects.toThrow(/cannot list a folder over HTTP; give urlFileSystem the file list/);
    expect(await fs.stat(`${MODEL}/absent.bin`)).toBeNull();
    await expect(openSafetensors(`${MODEL}/absent.safetensors`, fs)).rejects.toThrow(FileAccessError);
    await expect(openSafetensors(`${MODEL}/absent.safetensors`, fs)).rejects.toThrow(/absent\.safetensors: cannot open: no such file or directory \(http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('finds sizes with a range request where HEAD is refused', async () => {
    const s = await startRangeServer(WEIGHTS, { noHead: true });
    try {
      const fs = urlFileSystem(s.url);
      const size = readFileSync(nodePath.join(WEIGHTS, MODEL, 'model.safetensors')).length;
      expect(await fs.stat(`${MODEL}/model.safetensors`)).toEqual({ kind: 'file', size });
      const f = await openSafetensors(`${MODEL}/model.safetensors`, fs);
      expect(f.fileSize).toBe(size);
      await f.close();
    } finally {
      await s.close();
    }
  });

  it('a server that ignores Range: an error naming the URL', async () => {
    const s = await startRangeServer(WEIGHTS, { ignoreRange: true });
    try {
      const fs = urlFileSystem(s.url, { files: [`${MODEL}/model.safetensors`, `${MODEL}/config.json`] });
      const url = `${s.url}${MODEL}/model.safetensors`;
      const err = await openCheckpoint(MODEL, fs).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FileAccessError);
      expect((err as Error).message).toContain(`${url} ignores HTTP range requests (asked for bytes=0-7, got the whole file)`);
      // A whole small file needs no range, so it still reads.
      expect(JSON.parse(await readText(`${MODEL}/config.json`, fs))).toEqual(JSON.parse(readFileSync(nodePath.join(WEIGHTS, MODEL, 'config.json'), 'utf8')));
    } finally {
      await s.close();
    }
  });

  it('an error status: an error naming the URL and the status', async () => {
    const s = await startRangeServer(WEIGHTS, { status: 500 });
    try {
      const fs = urlFileSystem(s.url);
      await expect(openSafetensors(`${MODEL}/model.safetensors`, fs)).rejects.toThrow(
        new RegExp(`model\\.safetensors: cannot stat: HTTP 500 Internal Server Error from ${s.url}${MODEL}/model\\.safetensors`),
      );
    } finally {
      await s.close();
    }
  });

  it('a server that cannot be reached: an error naming the URL', async () => {
    const s = await startRangeServer(WEIGHTS);
    await s.close();
    const fs: FileSystem = urlFileSystem(s.url);
    await expect(fs.stat('x.bin')).rejects.toThrow(new RegExp(`x\\.bin: cannot fetch ${s.url}x\\.bin`));
  });
});
