// The FileSystem of Node: positioned reads through file handles, outputs written to a temporary
// file (or folder) beside the target and renamed into place. The only module below the CLI that
// imports node:. Every temporary output open is registered, so that a signal handler can remove
// them synchronously before the process exits (removeTemporaryOutputs).
import { type Dirent, promises as fsp, renameSync, rmSync, type Stats } from 'node:fs';
import * as nodePath from 'node:path';
import {
  type CreateFolderOptions, FileError, type FileInfo, type FileSystem, type OutputFile, type OutputFolder, type RandomAccessFile,
} from './files.js';

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

// ------------------------------------------------------------------ temporary outputs

interface Pending {
  path: string;
  /** synchronous: it runs in a signal handler, just before the process exits */
  cleanUp(): void;
}
const pending = new Map<number, Pending>();
let pendingId = 0;

/** Register a temporary output; returns the function that forgets it. */
function track(path: string, cleanUp: () => void): () => void {
  const id = ++pendingId;
  pending.set(id, { path, cleanUp });
  return () => void pending.delete(id);
}

/** The temporary files and folders of outputs being written now. */
export function temporaryOutputs(): string[] {
  return [...pending.values()].map((p) => p.path);
}

/**
 * Remove every temporary output being written (and put back a folder that a commit had moved
 * aside), synchronously: for a signal handler that exits right after. Returns how many there were.
 */
export function removeTemporaryOutputs(): number {
  const all = [...pending.values()];
  pending.clear();
  for (const p of all) {
    try {
      p.cleanUp();
    } catch {
      // best effort: the process is exiting
    }
  }
  return all.length;
}

const removeSync = (path: string) => () => rmSync(path, { recursive: true, force: true });

// ------------------------------------------------------------------ what is in the way of an output

/** What a non-regular entry is, in words (null for a regular file). */
export function entryKind(st: Stats | Dirent): string | null {
  if (st.isFile()) return null;
  if (st.isDirectory()) return 'a folder';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/**
 * Why an output at `path` could not be created or written, in words that name the folder where
 * that is the point (never the temporary file the writer used).
 */
export function writeProblem(e: unknown, path: string): string {
  const dir = nodePath.dirname(path);
  switch (errno(e)) {
    case 'ENOENT': return `cannot write: the folder ${dir} does not exist`;
    case 'ENOTDIR': return 'cannot write: a parent of this path is not a folder';
    case 'EACCES': case 'EPERM': return `cannot write: permission denied (in the folder ${dir})`;
    case 'EROFS': return 'cannot write: read-only file system';
    case 'ENOSPC': return 'cannot write: no space left on the device';
    case 'EDQUOT': return 'cannot write: disk quota exceeded';
    case 'EISDIR': return 'cannot write: is a directory';
    case 'EFBIG': return 'cannot write: the file is too large for the file system';
    case 'EMFILE': case 'ENFILE': return 'cannot write: too many open files';
    case 'EIO': return 'cannot write: input/output error';
    default: {
      const err = e as NodeJS.ErrnoException;
      return `cannot write: ${err.code ?? (err.message ?? String(e)).replace(/'[^']*\.tmp'/g, `'${path}'`)}`;
    }
  }
}

/** lstat, null when nothing is there; a parent that is missing or no folder is a FileError. */
async function lstatOutput(path: string): Promise<Stats | null> {
  try {
    return await fsp.lstat(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return null;
    throw new FileError(path, writeProblem(e, path));
  }
}

/** Refuse an entry at `path` that an output file may not replace. */
function refuseUnlessFile(path: string, st: Stats | null): void {
  if (!st || st.isFile()) return;
  if (st.isDirectory()) throw new FileError(path, 'cannot write: is a directory');
  throw new FileError(path, `exists and is ${entryKind(st)}; refusing to replace it`);
}

/** Refuse an entry at `path` that an output folder may not replace (see CreateFolderOptions). */
async function refuseUnlessReplaceableFolder(path: string, st: Stats | null, o: CreateFolderOptions): Promise<void> {
  if (!st) return;
  if (st.isFile()) throw new FileError(path, 'exists and is a file; refusing to replace it with a folder');
  if (!st.isDirectory()) throw new FileError(path, `exists and is ${entryKind(st)}; refusing to replace it`);
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(path, { withFileTypes: true });
  } catch (e) {
    throw new FileError(path, `cannot list: ${reason(e)}`);
  }
  const other = entries.find((d) => !d.isFile() || !o.replaceable?.(d.name));
  if (other) {
    const only = o.replaceable ? `only ${o.replaceableWhat ?? 'the files of a previous output'}` : 'nothing';
    throw new FileError(path, `is a folder that holds ${JSON.stringify(other.name)} (${entryKind(other) ?? 'a file'}), not ${only}; refusing to replace it`);
  }
}

/** A name beside `path` for a temporary entry of this process. */
function besideName(path: string, n: number, what: string): string {
  return nodePath.join(nodePath.dirname(path), `.${nodePath.basename(path)}.${process.pid}.${n}.${what}`);
}

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
      // opening a FIFO blocks until something writes to it, and a device or pipe has no positions
      // to read from: refuse anything but a regular file before opening it
      const st = await fsp.stat(path);
      if (!st.isFile()) throw new FileError(path, st.isDirectory() ? 'cannot open: is a directory' : `cannot open: is ${entryKind(st)}; expected a regular file`);
      fh = await fsp.open(path, 'r');
    } catch (e) {
      if (e instanceof FileError) throw e;
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
    refuseUnlessFile(path, await lstatOutput(path));
    const tmp = besideName(path, ++tmpCounter, 'tmp');
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(tmp, 'wx');
    } catch (e) {
      throw new FileError(path, writeProblem(e, path));
    }
    const untrack = track(tmp, removeSync(tmp));
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const discard = async () => {
      state = 'aborted';
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
      untrack();
    };
    return {
      path,
      async write(chunk) {
        if (state !== 'open') throw new Error(`${path}: write after the output was finished`);
        try {
          // a write may be short; a file system that takes nothing is full
          for (let done = 0; done < chunk.length; ) {
            const { bytesWritten } = await fh.write(chunk, done, chunk.length - done);
            if (bytesWritten <= 0) throw Object.assign(new Error('no space left'), { code: 'ENOSPC' });
            done += bytesWritten;
          }
        } catch (e) {
          await discard();
          throw new FileError(path, writeProblem(e, path));
        }
      },
      async commit() {
        if (state !== 'open') throw new Error(`${path}: commit after the output was finished`);
        try {
          await fh.close();
          // something may have appeared at the path while the output was written
          refuseUnlessFile(path, await lstatOutput(path));
          await fsp.rename(tmp, path);
          state = 'committed';
          untrack();
        } catch (e) {
          await discard();
          throw e instanceof FileError ? e : new FileError(path, writeProblem(e, path));
        }
      },
      async abort() {
        if (state === 'open') await discard();
      },
    };
  },

  async createFolder(path: string, options: CreateFolderOptions = {}): Promise<OutputFolder> {
    await refuseUnlessReplaceableFolder(path, await lstatOutput(path), options);
    const n = ++tmpCounter;
    const tmp = besideName(path, n, 'tmp');
    try {
      await fsp.mkdir(tmp);
    } catch (e) {
      throw new FileError(path, writeProblem(e, path));
    }
    const untrack = track(tmp, removeSync(tmp));
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const discard = async () => {
      state = 'aborted';
      await fsp.rm(tmp, { recursive: true, force: true });
      untrack();
    };
    return {
      path: tmp,
      target: path,
      async commit() {
        if (state !== 'open') throw new Error(`${path}: commit after the output was finished`);
        try {
          const now = await lstatOutput(path);
          await refuseUnlessReplaceableFolder(path, now, options);
          if (!now) {
            await fsp.rename(tmp, path);
          } else {
            // the previous output is moved aside, the new one renamed in, then the old one removed;
            // an interruption in between puts the previous one back
            const aside = besideName(path, n, 'old.tmp');
            await fsp.rename(path, aside);
            const untrackAside = track(aside, () => {
              try {
                renameSync(aside, path);
              } catch {
                rmSync(aside, { recursive: true, force: true });
              }
            });
            try {
              await fsp.rename(tmp, path);
            } catch (e) {
              await fsp.rename(aside, path).catch(() => {});
              untrackAside();
              throw e;
            }
            untrackAside();
            await fsp.rm(aside, { recursive: true, force: true }).catch(() => {});
          }
          state = 'committed';
          untrack();
        } catch (e) {
          await discard();
          throw e instanceof FileError ? e : new FileError(path, writeProblem(e, path));
        }
      },
      async abort() {
        if (state === 'open') await discard();
      },
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
