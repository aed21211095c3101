// File access for every floor above the engine, behind one small interface, so that the same
// library runs in Node (node-files.ts) and in a browser (browser-files.ts: dropped File / Blob
// objects, HTTP range requests). Reads are positioned (checkpoints are read tensor by tensor,
// never whole); writes are atomic (an output appears complete at its path, or not at all).
import { UserError } from '../engine/errors.js';

export interface FileInfo {
  kind: 'file' | 'directory' | 'other';
  /** bytes (files only; 0 otherwise) */
  size: number;
}

export interface RandomAccessFile {
  readonly path: string;
  readonly size: number;
  /** Fill `into` from byte `position`; returns the bytes read (fewer only at the end of the file). */
  read(position: number, into: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

/** An output being written: it appears at `path` on commit, complete, and never before. */
export interface OutputFile {
  readonly path: string;
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  /** Give up: nothing appears at `path` (an existing file there is left as it was). */
  abort(): Promise<void>;
}

/**
 * A folder being written as a whole (e.g. PNG frames): entries are written under `path`, a
 * temporary folder beside `target`, and the folder appears at `target` on commit, complete.
 */
export interface OutputFolder {
  /** where to write the entries (a temporary folder until commit) */
  readonly path: string;
  /** where the folder appears on commit */
  readonly target: string;
  commit(): Promise<void>;
  /** Give up: nothing appears at `target` (an existing folder there is left as it was). */
  abort(): Promise<void>;
}

export interface CreateFolderOptions {
  /**
   * The entries a folder already at the target may hold for it to be replaced (a previous output
   * of the same kind); any other entry, or a non-regular one, makes createFolder refuse. By
   * default only an empty folder is replaced.
   */
  replaceable?: (entryName: string) => boolean;
  /** what the replaceable entries are, for the message (e.g. 'numbered PNG frames') */
  replaceableWhat?: string;
}

export interface FileSystem {
  /** e.g. 'node', 'browser' (for messages) */
  readonly name: string;
  /** null when nothing is at `path` */
  stat(path: string): Promise<FileInfo | null>;
  open(path: string): Promise<RandomAccessFile>;
  /** Entry names of a directory, sorted. */
  list(dir: string): Promise<string[]>;
  /**
   * Start writing `path` atomically (see OutputFile). An existing regular file there is replaced
   * on commit; anything else there (a folder, a symbolic link, a FIFO, a device) is refused.
   */
  create(path: string): Promise<OutputFile>;
  /** Start writing the folder `path` as a whole (see OutputFolder and CreateFolderOptions). */
  createFolder(path: string, options?: CreateFolderOptions): Promise<OutputFolder>;
  /** Create a directory and its missing parents. */
  mkdir(dir: string): Promise<void>;
  /** An absolute form of `path`, for records and messages. */
  resolve(path: string): string;
}

/** A file that cannot be opened, read or written: names the file and the reason. */
export class FileError extends UserError {
  constructor(
    readonly file: string,
    /** what went wrong, without the file name */
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A FileError subclass of a file format (e.g. Y4mError), built from a file and a problem. */
export type FileErrorClass = new (file: string, problem: string) => FileError;

/** `e` as an error of class `as` when it is a FileError of another class (so each format's readers throw their own class); else `e`. */
export function asFileError(e: unknown, as: FileErrorClass): unknown {
  if (e instanceof as) return e;
  return e instanceof FileError ? new as(e.file, e.problem) : e;
}

/**
 * `e` naming the entry at its final place when it names one in the temporary folder of `folder`
 * (a message names what the user asked for, never the temporary folder); else `e`.
 */
export function inOutputFolder(e: unknown, folder: OutputFolder): unknown {
  if (!(e instanceof FileError)) return e;
  const tmp = folder.path.replace(/\/+$/, '');
  if (e.file !== tmp && !e.file.startsWith(`${tmp}/`)) return e;
  const file = folder.target.replace(/\/+$/, '') + e.file.slice(tmp.length);
  const Class = e.constructor as FileErrorClass;
  return new Class(file, e.problem.split(tmp).join(folder.target));
}

/** Open `path` for positioned reads, reporting problems as `as` errors (see asFileError). */
export async function openAs(path: string, fs: FileSystem, as: FileErrorClass): Promise<RandomAccessFile> {
  try {
    return await fs.open(path);
  } catch (e) {
    throw asFileError(e, as);
  }
}

// ------------------------------------------------------------------ the default file system

let current: FileSystem | null = null;

/** Make `fs` the file system used when a call names none (the package entry points do this). */
export function setFileSystem(fs: FileSystem): void {
  current = fs;
}

/** The file system in use; every loader and writer takes an optional one instead. */
export function fileSystem(): FileSystem {
  if (!current) {
    throw new Error("no file system is set: import the library from 'cosmos-ts' (Node) or 'cosmos-ts/browser', or call setFileSystem()");
  }
  return current;
}

// ------------------------------------------------------------------ helpers over any FileSystem

export async function readBytes(path: string, fs: FileSystem = fileSystem()): Promise<Uint8Array> {
  const f = await fs.open(path);
  try {
    const out = new Uint8Array(f.size);
    const got = await f.read(0, out);
    if (got !== f.size) throw new FileError(path, `read ${got} of ${f.size} bytes (the file changed while it was read?)`);
    return out;
  } finally {
    await f.close();
  }
}

export async function readText(path: string, fs: FileSystem = fileSystem()): Promise<string> {
  return new TextDecoder().decode(await readBytes(path, fs));
}

/** A JSON file that must hold an object; `what` names it in messages (e.g. 'config.json'). */
export async function readJsonObject(path: string, what = 'JSON file', fs: FileSystem = fileSystem()): Promise<Record<string, unknown>> {
  const text = await readText(path, fs);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FileError(path, `${what} is not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FileError(path, `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Like readJsonObject, but null when there is no file at `path`. */
export async function readJsonObjectIfPresent(path: string, what = 'JSON file', fs: FileSystem = fileSystem()): Promise<Record<string, unknown> | null> {
  const st = await fs.stat(path);
  if (!st) return null;
  if (st.kind !== 'file') throw new FileError(path, `${what} is not a regular file`);
  return readJsonObject(path, what, fs);
}

export async function isDirectory(path: string, fs: FileSystem = fileSystem()): Promise<boolean> {
  return (await fs.stat(path))?.kind === 'directory';
}

export async function isFile(path: string, fs: FileSystem = fileSystem()): Promise<boolean> {
  return (await fs.stat(path))?.kind === 'file';
}

/** Write `bytes` (or chunks) to `path` atomically. */
export async function writeFileAtomic(path: string, data: Uint8Array | Iterable<Uint8Array>, fs: FileSystem = fileSystem()): Promise<void> {
  const out = await fs.create(path);
  try {
    if (data instanceof Uint8Array) await out.write(data);
    else for (const c of data) if (c.length) await out.write(c);
    await out.commit();
  } catch (e) {
    await out.abort().catch(() => {});
    throw e;
  }
}
