// File access behaviour that every FileSystem must share, checked through the Node one, a Blob
// folder and HTTP range requests: missing files, folders where a file is expected, atomic
// outputs (nothing appears on failure, no temporary file is left), and each format's round trip.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobFileSystem, urlFileSystem } from '../../src/io/browser-files.js';
import { FileAccessError } from '../../src/io/errors.js';
import { FileError, type FileSystem, readBytes, readJsonObject, readJsonObjectIfPresent, writeFileAtomic } from '../../src/io/files.js';
import { nodeFileSystem } from '../../src/io/node-files.js';
import { readVideo, writeVideo } from '../../src/io/open-video.js';
import { join } from '../../src/io/path.js';
import { encodePng, PngError, readPng } from '../../src/io/png.js';
import { readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { openCheckpoint, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import type { Video } from '../../src/io/video.js';
import { createY4mWriter, encodeY4m, openY4m, readY4m, writeY4m, Y4mError } from '../../src/io/y4m.js';
import { startRangeServer } from './range-server.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-files-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A 2-frame clip of exact 8-bit values (so PNG round trips are exact). */
const clip: Video = {
  data: Float32Array.from({ length: 3 * 2 * 4 * 6 }, (_, i) => ((i * 37) % 256) / 127.5 - 1),
  frames: 2,
  height: 4,
  width: 6,
  fps: { num: 8, den: 1 },
};

/** The same small tree on disk (served over HTTP too) and as Blobs. */
const tree: Record<string, Uint8Array> = {
  'clip.y4m': encodeY4m(clip),
  'frames/frame_000000.png': encodePng({ width: 2, height: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) }),
  'config.json': new TextEncoder().encode('{"a": 1}'),
  'list.json': new TextEncoder().encode('[1]'),
  'sub/keep.bin': Uint8Array.from([9, 9, 9]),
};

interface Case {
  fs: FileSystem;
  /** The folder holding the tree, as this file system spells it. */
  root: string;
  /** Names in root, straight from the backing store where there is one (to spot temporary files). */
  entries(): Promise<string[]>;
}

const treeDir = nodePath.join(tmp, 'tree');
for (const [p, bytes] of Object.entries(tree)) {
  mkdirSync(nodePath.dirname(nodePath.join(treeDir, p)), { recursive: true });
  writeFileSync(nodePath.join(treeDir, p), bytes);
}
let stopServer = async () => {};
afterAll(() => stopServer());

const cases: Record<string, () => Promise<Case>> = {
  node: async () => {
    // A fresh copy per test, so writes do not leak between tests.
    const root = mkdtempSync(nodePath.join(tmp, 'node-'));
    for (const [p, bytes] of Object.entries(tree)) {
      mkdirSync(nodePath.dirname(nodePath.join(root, p)), { recursive: true });
      writeFileSync(nodePath.join(root, p), bytes);
    }
    return { fs: nodeFileSystem, root, entries: async () => readdirSync(root).sort() };
  },
  blob: async () => {
    const fs = blobFileSystem(Object.fromEntries(Object.entries(tree).map(([p, b]) => [`tree/${p}`, new Blob([b as Uint8Array<ArrayBuffer>])])));
    return { fs, root: 'tree', entries: () => fs.list('tree') };
  },
  url: async () => {
    const s = await startRangeServer(tmp);
    const stop = stopServer;
    stopServer = async () => {
      await stop();
      await s.close();
    };
    const fs = urlFileSystem(s.url, { files: Object.keys(tree).map((p) => `tree/${p}`) });
    return { fs, root: 'tree', entries: () => fs.list('tree') };
  },
};

for (const [kind, make] of Object.entries(cases)) {
  describe(`file access through the ${kind} file system`, () => {
    let c: Case;
    let fs: FileSystem;
    let at: (p: string) => string;
    beforeAll(async () => {
      c = await make();
      fs = c.fs;
      at = (p) => join(c.root, p);
    });

    it('reads what is there, as every format', async () => {
      expect(await c.entries()).toEqual(['clip.y4m', 'config.json', 'frames', 'list.json', 'sub']);
      expect(await fs.stat(at('sub'))).toEqual({ kind: 'directory', size: 0 });
      expect(await fs.stat(at('sub/keep.bin'))).toEqual({ kind: 'file', size: 3 });
      expect([...(await readBytes(at('sub/keep.bin'), fs))]).toEqual([9, 9, 9]);
      expect(await readJsonObject(at('config.json'), 'config.json', fs)).toEqual({ a: 1 });
      await expect(readJsonObject(at('list.json'), 'list.json', fs)).rejects.toThrow(/list\.json: list\.json is not a JSON object/);
      expect(await readJsonObjectIfPresent(at('absent.json'), 'x', fs)).toBeNull();
      const v = await readY4m(at('clip.y4m'), {}, fs);
      expect(Buffer.from(encodeY4m(v)).equals(Buffer.from(tree['clip.y4m']))).toBe(true);
      expect((await readVideo(at('clip.y4m'), undefined, fs)).data).toEqual(v.data);
      expect([...(await readPng(at('frames/frame_000000.png'), fs)).data]).toEqual([1, 2, 3, 4, 5, 6]);
      expect((await readVideo(at('frames'), undefined, fs)).frames).toBe(1);
      expect((await readVideo(at('frames/frame_000000.png'), undefined, fs)).frames).toBe(1);
    });

    it('a missing file: each reader names it and says so', async () => {
      await expect(openY4m(at('nope.y4m'), {}, fs)).rejects.toThrow(Y4mError);
      await expect(openY4m(at('nope.y4m'), {}, fs)).rejects.toThrow(/nope\.y4m: cannot open: no such file or directory/);
      await expect(readPng(at('nope.png'), fs)).rejects.toThrow(PngError);
      await expect(readPng(at('nope.png'), fs)).rejects.toThrow(/nope\.png: cannot open: no such file/);
      await expect(openSafetensors(at('nope.safetensors'), fs)).rejects.toThrow(FileAccessError);
      await expect(openSafetensors(at('nope.safetensors'), fs)).rejects.toThrow(/nope\.safetensors: cannot open: no such file/);
      await expect(openCheckpoint(at('nope'), fs)).rejects.toThrow(/nope: cannot open: no such file or directory/);
      await expect(readVideo(at('nope.y4m'), undefined, fs)).rejects.toThrow(/nope\.y4m: cannot open: no such file/);
      await expect(readPngFrames(at('nope'), undefined, fs)).rejects.toThrow(/nope: cannot list: no such directory/);
      expect(await fs.stat(at('nope'))).toBeNull();
    });

    it('a folder where a file is expected, and a file where a folder is', async () => {
      await expect(openY4m(at('sub'), {}, fs)).rejects.toThrow(/sub: cannot open: is a directory/);
      await expect(readPng(at('sub'), fs)).rejects.toThrow(/sub: cannot open: is a directory/);
      await expect(openSafetensors(at('sub'), fs)).rejects.toThrow(/sub: not a regular file; expected a \.safetensors file/);
      await expect(readPngFrames(at('clip.y4m'), undefined, fs)).rejects.toThrow(/clip\.y4m: cannot list: not a directory/);
      await expect(fs.list(at('clip.y4m'))).rejects.toThrow(FileError);
      const before = await c.entries();
      await expect(writeFileAtomic(at('sub'), new Uint8Array(1), fs)).rejects.toThrow(/sub: cannot write/);
      expect(await fs.stat(at('sub'))).toEqual({ kind: 'directory', size: 0 });
      expect(await c.entries()).toEqual(before);
    });

    it('atomic outputs: nothing appears, and no temporary file stays, when writing fails', async () => {
      const before = await c.entries();
      function* failing() {
        yield new Uint8Array(10);
        throw new Error('the producer failed');
      }
      await expect(writeFileAtomic(at('partial.bin'), failing(), fs)).rejects.toThrow(/the producer failed/);
      // An existing file is left as it was.
      await expect(writeFileAtomic(at('sub/keep.bin'), failing(), fs)).rejects.toThrow(/the producer failed/);
      expect([...(await readBytes(at('sub/keep.bin'), fs))]).toEqual([9, 9, 9]);
      // A Y4M writer that fails mid-clip, then is aborted.
      const w = await createY4mWriter(at('partial.y4m'), { width: 6, height: 4 }, fs);
      await w.writeVideo(clip);
      await expect(w.writeFrame(new Float32Array(5))).rejects.toThrow(/expected 3 x 4 x 6/);
      expect(await fs.stat(at('partial.y4m'))).toBeNull();
      await w.abort();
      // writeVideo aborts the sink itself when the clip fails after the first frame.
      let reads = 0;
      const failsLate: Video = {
        ...clip,
        get data() {
          if (++reads > 3) throw new Error('the clip failed');
          return clip.data;
        },
      };
      await expect(writeVideo(at('bad.y4m'), failsLate, {}, fs)).rejects.toThrow(/the clip failed/);
      expect(await fs.stat(at('partial.bin'))).toBeNull();
      expect(await fs.stat(at('partial.y4m'))).toBeNull();
      expect(await fs.stat(at('bad.y4m'))).toBeNull();
      expect(await c.entries()).toEqual(before);
    });

    it('writes every format and reads it back', async () => {
      await fs.mkdir(at('out'));
      expect(await fs.stat(at('out'))).toEqual({ kind: 'directory', size: 0 });
      await writeY4m(at('out/clip.y4m'), clip, {}, fs);
      expect(Buffer.from(await readBytes(at('out/clip.y4m'), fs)).equals(Buffer.from(encodeY4m(clip)))).toBe(true);
      await writeVideo(at('out/frames'), clip, {}, fs);
      expect(await fs.list(at('out/frames'))).toEqual(['frame_000000.png', 'frame_000001.png']);
      expect((await readPngFrames(at('out/frames'), undefined, fs)).data).toEqual(clip.data);
      await writePngFrames(at('out/more'), clip, { prefix: 'f', digits: 2 }, fs);
      expect(await fs.list(at('out/more'))).toEqual(['f00.png', 'f01.png']);
      const t = { dtype: 'f32' as const, shape: [2], raw: Float32Array.from([1.5, -2]) };
      await writeSafetensors(at('out/t.safetensors'), { t }, { k: 'v' }, fs);
      const f = await openSafetensors(at('out/t.safetensors'), fs);
      expect([...(await f.read('t')).raw]).toEqual([1.5, -2]);
      expect(f.metadata).toEqual({ k: 'v' });
      await f.close();
      expect(await fs.list(at('out'))).toEqual(['clip.y4m', 'frames', 'more', 't.safetensors']);
    });
  });
}

it('the node file system writes beside the target and renames (the copy on disk matches)', async () => {
  const p = nodePath.join(tmp, 'direct.y4m');
  await writeY4m(p, clip, {}, nodeFileSystem);
  expect(readFileSync(p).equals(Buffer.from(encodeY4m(clip)))).toBe(true);
  expect(readdirSync(tmp).filter((n) => n.includes('direct'))).toEqual(['direct.y4m']);
});
