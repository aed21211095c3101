// What the file systems themselves guarantee for outputs (library users get it without the CLI's
// preflight): create() never replaces a symbolic link, FIFO, device or folder; errors name the
// user's path with the errno in words, never the temporary file; a folder output (PNG frames)
// appears as a whole on commit, replaces only a previous output of its kind, and leaves nothing
// (and the previous folder as it was) when a frame fails; the temporary outputs of the Node file
// system are registered, so a signal handler can remove them.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blobFileSystem } from '../../src/io/browser-files.js';
import { FileError, type FileSystem, readBytes, writeFileAtomic } from '../../src/io/files.js';
import { nodeFileSystem, removeTemporaryOutputs, temporaryOutputs, writeProblem } from '../../src/io/node-files.js';
import { writeVideo } from '../../src/io/open-video.js';
import { join } from '../../src/io/path.js';
import { PNG_FRAME_FOLDER, readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import type { Video } from '../../src/io/video.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-safe-outputs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const clip = (frames: number, shade = 0): Video => ({
  data: Float32Array.from({ length: 3 * frames * 4 * 6 }, (_, i) => (((i * 37 + shade) % 256) / 127.5) - 1),
  frames,
  height: 4,
  width: 6,
});

const errnoError = (code: string, message = `${code}: something, open '/x/.t.safetensors.123.4.tmp'`) => Object.assign(new Error(message), { code });

/** A file system like `inner` whose `n`th file created under a path containing `under` fails to write as a full disk would. */
function fullAfter(inner: FileSystem, n: number, under: string): FileSystem {
  let count = 0;
  const wrap = Object.create(inner) as FileSystem;
  wrap.create = async (path) => {
    const out = await inner.create(path);
    if (!path.includes(under) || ++count < n) return out;
    return {
      path: out.path,
      commit: () => out.commit(),
      abort: () => out.abort(),
      async write() {
        await out.abort();
        throw new FileError(path, writeProblem(errnoError('ENOSPC'), path));
      },
    };
  };
  return wrap;
}

describe('the Node file system: what create() refuses to replace', () => {
  const target = nodePath.join(tmp, 'target.bin');
  writeFileSync(target, 'keep me');

  it('a symbolic link (even to a regular file), a FIFO, a socket, a folder', async () => {
    const link = nodePath.join(tmp, 'link.bin');
    symlinkSync(target, link);
    const fifo = nodePath.join(tmp, 'fifo.bin');
    execFileSync('mkfifo', [fifo]);
    const dir = nodePath.join(tmp, 'dir.bin');
    mkdirSync(dir);
    await expect(writeFileAtomic(link, new Uint8Array(3))).rejects.toThrow(`${link}: exists and is a symbolic link; refusing to replace it`);
    await expect(writeFileAtomic(fifo, new Uint8Array(3))).rejects.toThrow(`${fifo}: exists and is a FIFO (named pipe); refusing to replace it`);
    const sock = nodePath.join(tmp, 'sock.bin');
    const server = createServer().listen(sock);
    await once(server, 'listening');
    await expect(writeFileAtomic(sock, new Uint8Array(3))).rejects.toThrow(`${sock}: exists and is a socket; refusing to replace it`);
    server.close();
    await expect(writeFileAtomic(dir, new Uint8Array(3))).rejects.toThrow(`${dir}: cannot write: is a directory`);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('keep me');
    expect(readdirSync(tmp).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('something that appears at the path while the output is written is not replaced either', async () => {
    const late = nodePath.join(tmp, 'late.bin');
    const out = await nodeFileSystem.create(late);
    await out.write(new Uint8Array(4));
    symlinkSync(target, late);
    await expect(out.commit()).rejects.toThrow(`${late}: exists and is a symbolic link; refusing to replace it`);
    expect(readFileSync(target, 'utf8')).toBe('keep me');
    expect(readdirSync(tmp).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('errors name the path and the errno in words, never the temporary file', async () => {
    const missing = nodePath.join(tmp, 'no-such-folder', 'x.bin');
    await expect(writeFileAtomic(missing, new Uint8Array(1))).rejects.toThrow(`${missing}: cannot write: the folder ${nodePath.dirname(missing)} does not exist`);
    const underFile = nodePath.join(target, 'x.bin');
    await expect(writeFileAtomic(underFile, new Uint8Array(1))).rejects.toThrow(`${underFile}: cannot write: a parent of this path is not a folder`);
    const p = '/out/t.safetensors';
    const said = Object.fromEntries(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'EISDIR', 'EXDEV'].map((c) => [c, writeProblem(errnoError(c), p)]));
    expect(said).toEqual({
      ENOENT: 'cannot write: the folder /out does not exist',
      ENOTDIR: 'cannot write: a parent of this path is not a folder',
      EACCES: 'cannot write: permission denied (in the folder /out)',
      EPERM: 'cannot write: permission denied (in the folder /out)',
      EROFS: 'cannot write: read-only file system',
      ENOSPC: 'cannot write: no space left on the device',
      EDQUOT: 'cannot write: disk quota exceeded',
      EISDIR: 'cannot write: is a directory',
      EXDEV: 'cannot write: EXDEV',
    });
    expect(writeProblem(new Error("open '/out/.t.safetensors.1.2.tmp' failed"), p)).toBe(`cannot write: open '${p}' failed`);
  });

  it('a folder this user cannot write: refused naming the path (root may write there, and then does)', async () => {
    const dir = nodePath.join(tmp, 'read-only');
    mkdirSync(dir, { mode: 0o555 });
    const p = nodePath.join(dir, 'x.bin');
    const root = process.getuid?.() === 0;
    if (root) {
      await writeFileAtomic(p, new Uint8Array([7]));
      expect([...readFileSync(p)]).toEqual([7]);
    } else {
      await expect(writeFileAtomic(p, new Uint8Array(1))).rejects.toThrow(`${p}: cannot write: permission denied (in the folder ${dir})`);
    }
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('the Node file system: temporary outputs are registered for a signal handler', () => {
  it('lists a file and a folder being written, and removes them synchronously', async () => {
    const a = await nodeFileSystem.create(nodePath.join(tmp, 'pending.bin'));
    await a.write(new Uint8Array(10));
    const f = await nodeFileSystem.createFolder(nodePath.join(tmp, 'pending-frames'), PNG_FRAME_FOLDER);
    writeFileSync(nodePath.join(f.path, 'frame_000000.png'), 'x');
    const done = await nodeFileSystem.create(nodePath.join(tmp, 'done.bin'));
    await done.commit();
    const listed = temporaryOutputs();
    expect(listed).toHaveLength(2);
    expect(listed.every((p) => p.endsWith('.tmp') && existsSync(p))).toBe(true);
    expect(removeTemporaryOutputs()).toBe(2);
    expect(listed.some((p) => existsSync(p))).toBe(false);
    expect(temporaryOutputs()).toEqual([]);
    await a.abort();
    await f.abort();
    expect(existsSync(nodePath.join(tmp, 'pending.bin'))).toBe(false);
    expect(existsSync(nodePath.join(tmp, 'pending-frames'))).toBe(false);
    expect(existsSync(nodePath.join(tmp, 'done.bin'))).toBe(true);
  });
});

/** A folder's names, on disk or through a browser file system. */
interface FolderCase {
  fs: FileSystem;
  root: string;
  names(dir: string): Promise<string[]>;
  put(path: string, text: string): Promise<void>;
  handed: string[];
}

const folderCases: Record<string, () => FolderCase> = {
  node: () => {
    const root = mkdtempSync(nodePath.join(tmp, 'folders-'));
    return {
      fs: nodeFileSystem, root, handed: [],
      names: async (dir) => (existsSync(dir) ? readdirSync(dir).sort() : []),
      put: async (p, text) => {
        mkdirSync(nodePath.dirname(p), { recursive: true });
        writeFileSync(p, text);
      },
    };
  },
  blob: () => {
    const handed: string[] = [];
    const fs = blobFileSystem({ 'in/keep.txt': new Blob(['input']) }, { onOutput: (p) => void handed.push(p) });
    return {
      fs, root: 'out', handed,
      names: async (dir) => ((await fs.stat(dir)) ? fs.list(dir) : []),
      put: (p, text) => writeFileAtomic(p, new TextEncoder().encode(text), fs),
    };
  },
};

for (const [kind, make] of Object.entries(folderCases)) {
  describe(`folder outputs through the ${kind} file system`, () => {
    it('appear as a whole on commit; a frames-only folder is replaced; nothing stays on abort', async () => {
      const c = make();
      const dir = join(c.root, 'frames');
      await c.fs.mkdir(c.root);
      await writePngFrames(dir, clip(3), {}, c.fs);
      expect(await c.names(dir)).toEqual(['frame_000000.png', 'frame_000001.png', 'frame_000002.png']);
      // a previous output with more frames is replaced, not merged
      await writeVideo(dir, clip(2, 5), {}, c.fs);
      expect(await c.names(dir)).toEqual(['frame_000000.png', 'frame_000001.png']);
      expect((await readPngFrames(dir, undefined, c.fs)).data).toEqual(Float32Array.from(clip(2, 5).data, (v) => Math.round((v + 1) * 127.5) / 127.5 - 1));
      // abort: nothing appears, and the folder there is left as it was
      const f = await c.fs.createFolder(dir, PNG_FRAME_FOLDER);
      await writeFileAtomic(join(f.path, 'frame_000000.png'), new Uint8Array(3), c.fs);
      expect(await c.names(dir)).toEqual(['frame_000000.png', 'frame_000001.png']);
      await f.abort();
      expect(await c.names(c.root)).toEqual(['frames']);
      if (kind === 'blob') expect(c.handed).toEqual([...['0', '1', '2'].map((i) => `out/frames/frame_00000${i}.png`), 'out/frames/frame_000000.png', 'out/frames/frame_000001.png']);
    });

    it('a frame that fails part way leaves nothing, and a previous folder as it was', async () => {
      const c = make();
      await c.fs.mkdir(c.root);
      const fresh = join(c.root, 'fresh');
      const failing = fullAfter(c.fs, 3, '.fresh.');
      await expect(writePngFrames(fresh, clip(5), {}, failing)).rejects.toThrow(`${fresh}/frame_000002.png: cannot write: no space left on the device`);
      expect(await c.names(c.root)).toEqual([]);
      const previous = join(c.root, 'previous');
      await writePngFrames(previous, clip(4), {}, c.fs);
      const before = await readBytes(join(previous, 'frame_000003.png'), c.fs);
      const handed = c.handed.length;
      await expect(writeVideo(previous, clip(5, 9), {}, fullAfter(c.fs, 3, '.previous.'))).rejects.toThrow(`${previous}/frame_000002.png: cannot write: no space left`);
      expect(await c.names(c.root)).toEqual(['previous']);
      expect(await c.names(previous)).toEqual(['0', '1', '2', '3'].map((i) => `frame_00000${i}.png`));
      expect(await readBytes(join(previous, 'frame_000003.png'), c.fs)).toEqual(before);
      expect(c.handed.length).toBe(handed);
    });

    it('a folder holding anything but numbered frames, or a file, is not replaced', async () => {
      const c = make();
      const mixed = join(c.root, 'mixed');
      await c.put(join(mixed, 'frame_000000.png'), 'old');
      await c.put(join(mixed, 'notes.txt'), 'mine');
      await expect(writePngFrames(mixed, clip(1), {}, c.fs)).rejects.toThrow(
        `${mixed}: is a folder that holds "notes.txt" (a file), not only numbered PNG frames; refusing to replace it`,
      );
      expect(await c.names(mixed)).toEqual(['frame_000000.png', 'notes.txt']);
      const file = join(c.root, 'file');
      await c.put(file, 'a file');
      await expect(writeVideo(file, clip(1), {}, c.fs)).rejects.toThrow(`${file}: exists and is a file; refusing to replace it with a folder`);
      expect(await c.names(c.root)).toEqual(['file', 'mixed']);
      // by default (no replaceable entries) only an empty folder is replaced
      await expect(c.fs.createFolder(mixed)).rejects.toThrow(/holds "frame_000000\.png" \(a file\), not nothing; refusing to replace it/);
    });
  });
}

it('the node file system does not replace a symbolic link with a folder; the blob one keeps dropped inputs', async () => {
  const dir = mkdtempSync(nodePath.join(tmp, 'links-'));
  mkdirSync(nodePath.join(dir, 'real'));
  symlinkSync(nodePath.join(dir, 'real'), nodePath.join(dir, 'link'));
  await expect(writePngFrames(nodePath.join(dir, 'link'), clip(1))).rejects.toThrow(/link: exists and is a symbolic link; refusing to replace it/);
  expect(lstatSync(nodePath.join(dir, 'link')).isSymbolicLink()).toBe(true);
  const fs = blobFileSystem({ 'in/frame_000000.png': new Blob(['dropped']) });
  await expect(writePngFrames('in', clip(1), {}, fs)).rejects.toThrow(/in: is a folder that holds "frame_000000\.png" \(an input file\)/);
});
