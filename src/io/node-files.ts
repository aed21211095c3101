// The FileSystem of Node: positioned reads through file handles, outputs written to a temporary
// file beside the target and renamed into place. The only module below the CLI that imports node:.
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { FileError, type FileInfo, type FileSystem, type OutputFile, type RandomAccessFile } from './files.js';

/** The errno codes a user can cause, as words. */
function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a parent of this path is not a directory';
    case 'ENOSPC': return 'no space left on the device';
    case 'EROFS': return 'read-only file system';
    case 'EMFILE': case 'ENFILE': return 'too many open files';
    default: return err.message ?? String(e);
  }
}

let tmpCounter = 0;

export const nodeFileSystem: FileSystem = {
  name: 'node',

  async stat(path: string): Promise<FileInfo | null> {
    try {
      const st = await fsp.stat(path);
      return { kind: st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other', size: st.isFile() ? st.size : 0 };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw new FileError(path, `cannot stat: ${reason(e)}`);
    }
  },

  async open(path: string): Promise<RandomAccessFile> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, 'r');
    } catch (e) {
      throw new FileError(path, `cannot open: ${reason(e)}`);
    }
    let size: number;
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new FileError(path, 'cannot open: is a directory');
      size = st.size;
    } catch (e) {
      await fh.close();
      throw e instanceof FileError ? e : new FileError(path, `cannot open: ${reason(e)}`);
    }
    return {
      path,
      size,
      async read(position, into) {
        let done = 0;
        // A positioned read may return short; loop until full or end of file.
        while (done < into.length) {
          let bytesRead: number;
          try {
            ({ bytesRead } = await fh.read(into, done, into.length - done, position + done));
          } catch (e) {
            throw new FileError(path, `cannot read: ${reason(e)}`);
          }
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        return done;
      },
      close: () => fh.close(),
    };
  },

  async list(dir: string): Promise<string[]> {
    try {
      return (await fsp.readdir(dir)).sort();
    } catch (e) {
      throw new FileError(dir, `cannot list: ${reason(e)}`);
    }
  },

  async create(path: string): Promise<OutputFile> {
    const tmp = nodePath.join(nodePath.dirname(path), `.${nodePath.basename(path)}.${process.pid}.${++tmpCounter}.tmp`);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(tmp, 'wx');
    } catch (e) {
      throw new FileError(path, `cannot write: ${reason(e)}`);
    }
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const abort = async () => {
      if (state !== 'open') return;
      state = 'aborted';
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
    };
    return {
      path,
      async write(chunk) {
        if (state !== 'open') throw new Error(`${path}: write after the output was finished`);
        try {
          await fh.write(chunk);
        } catch (e) {
          await abort();
          throw new FileError(path, `cannot write: ${reason(e)}`);
        }
      },
      async commit() {
        if (state !== 'open') throw new Error(`${path}: commit after the output was finished`);
        try {
          await fh.close();
          await fsp.rename(tmp, path);
          state = 'committed';
        } catch (e) {
          state = 'aborted';
          await fsp.rm(tmp, { force: true });
          throw new FileError(path, `cannot write: ${reason(e)}`);
        }
      },
      abort,
    };
  },

  async mkdir(dir: string): Promise<void> {
    try {
      await fsp.mkdir(dir, { recursive: true });
    } catch (e) {
      throw new FileError(dir, `cannot create the directory: ${reason(e)}`);
    }
  },

  resolve(path: string): string {
    return nodePath.resolve(path);
  },
};
