// The FileSystem of a browser, in two kinds:
// - blobFileSystem: File / Blob objects keyed by relative path (a dropped folder, an
//   <input webkitdirectory>, or any record of Blobs); reads are Blob.slice().arrayBuffer().
// - urlFileSystem: files under a base URL, read with HTTP range requests (a checkpoint is never
//   downloaded whole: each tensor is one request). HTTP cannot list a folder, so list() needs the
//   file list up front (the `files` option).
// Outputs are collected in memory and handed over as a Blob when committed (e.g. to offer a
// download); they can also be read back through the same file system. Folders exist where files
// are (mkdir only records one). A folder output (createFolder) is staged under a temporary key and
// moved into place as a whole on commit; its files reach onOutput only then, at their final paths.
// Paths are '/'-separated and relative to the root (the dropped folder's parent, or the base URL);
// a leading '/' is ignored, and a path that climbs above the root names nothing.
import {
  type CreateFolderOptions, FileError, type FileInfo, type FileSystem, type OutputFile, type OutputFolder, type RandomAccessFile,
} from './files.js';
import { basename, dirname, join, normalize } from './path.js';

/** Receives each committed output, e.g. to offer it as a download. */
export type OutputHandler = (path: string, blob: Blob) => void | Promise<void>;

export interface BrowserFileSystemOptions {
  /** Called with each committed output (they are kept in memory, readable back, either way). */
  onOutput?: OutputHandler;
}

/** The key of a path: normalised, relative to the root; null above the root. */
function keyOf(path: string): string | null {
  const k = normalize(path).replace(/^\/+/, '');
  if (k === '..' || k.startsWith('../')) return null;
  return k === '.' ? '' : k;
}

function parentsOf(key: string): string[] {
  const out: string[] = [];
  for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) out.push(key.slice(0, i));
  return out;
}

function blobFile(path: string, blob: Blob): RandomAccessFile {
  return {
    path,
    size: blob.size,
    async read(position, into) {
      const end = Math.min(blob.size, position + into.length);
      if (end <= position) return 0;
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await blob.slice(position, end).arrayBuffer());
      } catch (e) {
        // e.g. NotReadableError: the file changed on disk after it was chosen
        throw new FileError(path, `cannot read: ${(e as Error).message}`);
      }
      into.set(bytes);
      return bytes.length;
    },
    close: async () => {},
  };
}

/**
 * What both kinds share: the tree of known files and folders, and the outputs written so far.
 * A subclass says how to stat and open a file that is not an output.
 */
abstract class BrowserFileSystem implements FileSystem {
  abstract readonly name: string;
  /** Committed outputs by key. */
  private readonly outputs = new Map<string, Blob>();
  /** Keys of every known folder ('' is the root). */
  private readonly folders = new Set<string>(['']);
  /** Keys of every known file (inputs and outputs). */
  protected readonly known = new Set<string>();
  /** Keys of the temporary folders of folder outputs being written. */
  private readonly staging = new Set<string>();
  private stagingCounter = 0;

  constructor(private readonly onOutput: OutputHandler | undefined) {}

  protected addFile(key: string): void {
    this.known.add(key);
    for (const p of parentsOf(key)) this.folders.add(p);
  }

  /** stat of an input file (not a folder, not an output). */
  protected abstract statInput(key: string, path: string): Promise<FileInfo | null>;
  protected abstract openInput(key: string, path: string): Promise<RandomAccessFile>;
  /** Whether list() can answer (false over HTTP without a file list). */
  protected abstract canList(): boolean;
  abstract resolve(path: string): string;

  async stat(path: string): Promise<FileInfo | null> {
    const k = keyOf(path);
    if (k === null) return null;
    const out = this.outputs.get(k);
    if (out) return { kind: 'file', size: out.size };
    if (this.folders.has(k)) return { kind: 'directory', size: 0 };
    return this.statInput(k, path);
  }

  async open(path: string): Promise<RandomAccessFile> {
    const k = keyOf(path);
    if (k === null) throw new FileError(path, 'cannot open: no such file or directory');
    const out = this.outputs.get(k);
    if (out) return blobFile(path, out);
    if (this.folders.has(k)) throw new FileError(path, 'cannot open: is a directory');
    return this.openInput(k, path);
  }

  async list(dir: string): Promise<string[]> {
    const k = keyOf(dir);
    if (!this.canList()) throw new FileError(dir, 'cannot list a folder over HTTP; give urlFileSystem the file list (its `files` option)');
    if (k === null || !this.folders.has(k)) {
      throw new FileError(dir, `cannot list: ${k !== null && this.known.has(k) ? 'not a directory' : 'no such file or directory'}`);
    }
    const prefix = k === '' ? '' : `${k}/`;
    const names = new Set<string>();
    for (const key of [...this.known, ...this.folders]) {
      if (key !== k && key.startsWith(prefix)) names.add(key.slice(prefix.length).split('/')[0]);
    }
    return [...names].sort();
  }

  async create(path: string): Promise<OutputFile> {
    const k = keyOf(path);
    if (k === null || k === '') throw new FileError(path, 'cannot write: outside the root of this file system');
    if (this.folders.has(k)) throw new FileError(path, 'cannot write: is a directory');
    // Each chunk is copied into a Blob at once (the caller may reuse its buffer; a browser may
    // keep large Blobs on disk).
    const parts: Blob[] = [];
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const finished = (what: string) => new Error(`${path}: ${what} after the output was finished`);
    return {
      path,
      write: async (chunk) => {
        if (state !== 'open') throw finished('write');
        parts.push(new Blob([chunk as Uint8Array<ArrayBuffer>]));
      },
      commit: async () => {
        if (state !== 'open') throw finished('commit');
        state = 'aborted';
        const blob = new Blob(parts);
        parts.length = 0;
        // a file of a folder output is handed over when the folder is committed
        if (!this.isStaged(k)) await this.onOutput?.(path, blob);
        this.outputs.set(k, blob);
        this.addFile(k);
        state = 'committed';
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        parts.length = 0;
      },
    };
  }

  private isStaged(key: string): boolean {
    for (const s of this.staging) if (key.startsWith(`${s}/`)) return true;
    return false;
  }

  /** Every key at or below `key`, of outputs, known files and folders. */
  private forget(key: string): void {
    const below = (x: string) => x === key || x.startsWith(`${key}/`);
    for (const x of [...this.outputs.keys()]) if (below(x)) this.outputs.delete(x);
    for (const x of [...this.known]) if (below(x)) this.known.delete(x);
    for (const x of [...this.folders]) if (below(x)) this.folders.delete(x);
  }

  /** Refuse a folder output at `key` unless what is there is a previous output it may replace. */
  private async refuseUnlessReplaceable(path: string, key: string, o: CreateFolderOptions): Promise<void> {
    if (this.known.has(key)) throw new FileError(path, 'exists and is a file; refusing to replace it with a folder');
    if (!this.folders.has(key)) return;
    for (const name of await this.list(path)) {
      const child = `${key}/${name}`;
      const ok = this.outputs.has(child) && o.replaceable?.(name);
      if (!ok) {
        const what = this.folders.has(child) ? 'a folder' : this.outputs.has(child) ? 'a file' : 'an input file';
        const only = o.replaceable ? `only ${o.replaceableWhat ?? 'the files of a previous output'}` : 'nothing';
        throw new FileError(path, `is a folder that holds ${JSON.stringify(name)} (${what}), not ${only}; refusing to replace it`);
      }
    }
  }

  async createFolder(path: string, options: CreateFolderOptions = {}): Promise<OutputFolder> {
    const k = keyOf(path);
    if (k === null || k === '') throw new FileError(path, 'cannot write: outside the root of this file system');
    await this.refuseUnlessReplaceable(path, k, options);
    const tmpPath = join(dirname(path), `.${basename(path)}.${++this.stagingCounter}.tmp`);
    const tmp = keyOf(tmpPath)!;
    for (const p of [...parentsOf(tmp), tmp]) this.folders.add(p);
    this.staging.add(tmp);
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const discard = () => {
      state = 'aborted';
      this.staging.delete(tmp);
      this.forget(tmp);
    };
    return {
      path: tmpPath,
      target: path,
      commit: async () => {
        if (state !== 'open') throw new Error(`${path}: commit after the output was finished`);
        try {
          await this.refuseUnlessReplaceable(path, k, options);
        } catch (e) {
          discard();
          throw e;
        }
        const files = [...this.outputs].filter(([x]) => x.startsWith(`${tmp}/`));
        const folders = [...this.folders].filter((x) => x.startsWith(`${tmp}/`));
        discard();
        this.forget(k);
        state = 'committed';
        for (const p of [...parentsOf(k), k]) this.folders.add(p);
        for (const x of folders) this.folders.add(k + x.slice(tmp.length));
        for (const [x, blob] of files) {
          const key = k + x.slice(tmp.length);
          this.outputs.set(key, blob);
          this.addFile(key);
        }
        for (const [x, blob] of files) await this.onOutput?.(join(path, x.slice(tmp.length + 1)), blob);
      },
      abort: async () => {
        if (state === 'open') discard();
      },
    };
  }

  async mkdir(dir: string): Promise<void> {
    const k = keyOf(dir);
    if (k === null) throw new FileError(dir, 'cannot create the directory: outside the root of this file system');
    if (k === '') return;
    if (this.known.has(k)) throw new FileError(dir, 'cannot create the directory: a file is in the way');
    for (const p of [...parentsOf(k), k]) this.folders.add(p);
  }
}

// ---------------------------------------------------------------------------------------------
// File / Blob objects

/** Files as a browser gives them (FileList, File[]), or Blobs keyed by relative path. */
export type BlobFiles = ArrayLike<File> | Iterable<File> | ReadonlyMap<string, Blob> | Readonly<Record<string, Blob>>;

function blobEntries(files: BlobFiles): [string, Blob][] {
  if (files instanceof Map) return [...files.entries()];
  const isCollection = Symbol.iterator in files || typeof (files as ArrayLike<File>).length === 'number';
  if (isCollection) {
    // A chosen or dropped folder gives each file's path below its parent in webkitRelativePath.
    return Array.from(files as ArrayLike<File>, (f) => [f.webkitRelativePath || f.name, f]);
  }
  return Object.entries(files as Record<string, Blob>);
}

class BlobFileSystem extends BrowserFileSystem {
  readonly name = 'blob';
  private readonly blobs = new Map<string, Blob>();

  constructor(files: BlobFiles, options: BrowserFileSystemOptions) {
    super(options.onOutput);
    for (const [path, blob] of blobEntries(files)) {
      const k = keyOf(path);
      if (k === null || k === '') throw new FileError(path, 'is not a path below the root');
      this.blobs.set(k, blob);
      this.addFile(k);
    }
  }

  protected async statInput(key: string): Promise<FileInfo | null> {
    const b = this.blobs.get(key);
    return b ? { kind: 'file', size: b.size } : null;
  }

  protected async openInput(key: string, path: string): Promise<RandomAccessFile> {
    const b = this.blobs.get(key);
    if (!b) throw new FileError(path, 'cannot open: no such file or directory');
    return blobFile(path, b);
  }

  protected canList(): boolean {
    return true;
  }

  resolve(path: string): string {
    const k = keyOf(path);
    return k === null ? path : k || '.';
  }
}

/**
 * A file system over File / Blob objects: what a dropped folder or an <input webkitdirectory>
 * gives (keyed by webkitRelativePath, e.g. "my-model/config.json"), or a record / Map of Blobs
 * keyed by relative path.
 */
export function blobFileSystem(files: BlobFiles, options: BrowserFileSystemOptions = {}): FileSystem {
  return new BlobFileSystem(files, options);
}

// ---------------------------------------------------------------------------------------------
// HTTP range requests

export interface UrlFileSystemOptions extends BrowserFileSystemOptions {
  /**
   * Every file under the base URL, as relative paths (e.g. ["model.safetensors", "config.json"]).
   * With it, list() and folders work and unlisted paths are missing without a request; without
   * it, each path is asked of the server and list() fails.
   */
  files?: readonly string[];
  /** Headers sent with every request (e.g. authorization). */
  headers?: Readonly<Record<string, string>>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

class UrlFileSystem extends BrowserFileSystem {
  readonly name = 'url';
  private readonly base: string;
  private readonly listed: boolean;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly fetchFn: typeof fetch;
  /** File sizes by key (null: missing), asked once per file. */
  private readonly sizes = new Map<string, Promise<number | null>>();

  constructor(baseUrl: string, options: UrlFileSystemOptions) {
    super(options.onOutput);
    this.base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
    this.listed = options.files !== undefined;
    for (const f of options.files ?? []) {
      const k = keyOf(f);
      if (k === null || k === '') throw new FileError(f, 'is not a path below the base URL');
      this.addFile(k);
    }
    this.headers = options.headers ?? {};
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  }

  private urlOf(key: string): string {
    return new URL(key.split('/').map(encodeURIComponent).join('/'), this.base).href;
  }

  resolve(path: string): string {
    const k = keyOf(path);
    return k === null ? path : this.urlOf(k);
  }

  protected canList(): boolean {
    return this.listed;
  }

  private async request(path: string, url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchFn(url, { ...init, headers: { ...this.headers, ...(init.headers as Record<string, string>) } });
    } catch (e) {
      throw new FileError(path, `cannot fetch ${url}: ${(e as Error).message}`);
    }
  }

  /** The size from a HEAD request, or from the total of a one-byte range request where HEAD says nothing. */
  private async fetchSize(key: string, path: string): Promise<number | null> {
    const url = this.urlOf(key);
    const head = await this.request(path, url, { method: 'HEAD' });
    if (head.status === 404 || head.status === 410) return null;
    const length = head.headers.get('content-length');
    if (head.ok && length !== null && /^\d+$/.test(length)) return Number(length);
    if (!head.ok && head.status !== 405 && head.status !== 501) throw httpError(path, url, head, 'cannot stat');
    const probe = await this.request(path, url, { headers: { Range: 'bytes=0-0' } });
    await probe.body?.cancel();
    if (probe.status === 404 || probe.status === 410) return null;
    const total = /\/(\d+)\s*$/.exec(probe.headers.get('content-range') ?? '');
    if ((probe.status === 206 || probe.status === 416) && total) return Number(total[1]);
    if (probe.status === 200) throw ignoresRanges(path, url, 'bytes=0-0');
    throw httpError(path, url, probe, 'cannot stat');
  }

  private sizeOf(key: string, path: string): Promise<number | null> {
    if (this.listed && !this.known.has(key)) return Promise.resolve(null);
    let s = this.sizes.get(key);
    if (!s) {
      s = this.fetchSize(key, path);
      this.sizes.set(key, s);
      // A failed request is asked again next time.
      s.catch(() => this.sizes.delete(key));
    }
    return s;
  }

  protected async statInput(key: string, path: string): Promise<FileInfo | null> {
    const size = await this.sizeOf(key, path);
    return size === null ? null : { kind: 'file', size };
  }

  protected async openInput(key: string, path: string): Promise<RandomAccessFile> {
    const size = await this.sizeOf(key, path);
    const url = this.urlOf(key);
    if (size === null) throw new FileError(path, `cannot open: no such file or directory (${url})`);
    return {
      path,
      size,
      read: async (position, into) => {
        const n = Math.min(into.length, size - position);
        if (n <= 0) return 0;
        // The whole file needs no range (and works with servers that ignore ranges).
        const whole = position === 0 && n === size;
        const range = `bytes=${position}-${position + n - 1}`;
        const res = await this.request(path, url, whole ? {} : { headers: { Range: range } });
        if (res.status === 200 && !whole) {
          await res.body?.cancel();
          throw ignoresRanges(path, url, range);
        }
        if (res.status !== (whole ? 200 : 206)) {
          await res.body?.cancel();
          throw httpError(path, url, res, 'cannot read');
        }
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length !== n) {
          throw new FileError(path, `cannot read: ${url} sent ${bytes.length} bytes for ${whole ? 'the whole file' : range}; expected ${n} (did the file change?)`);
        }
        into.set(bytes);
        return n;
      },
      close: async () => {},
    };
  }
}

function httpError(path: string, url: string, res: Response, what: string): FileError {
  return new FileError(path, `${what}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} from ${url}`);
}

function ignoresRanges(path: string, url: string, range: string): FileError {
  return new FileError(
    path,
    `${url} ignores HTTP range requests (asked for ${range}, got the whole file); serve the files from a server that supports Range requests`,
  );
}

/**
 * A file system over the files below `baseUrl`, read with HTTP range requests (the server must
 * support them, as static file servers and object stores do; cross-origin, it must also allow
 * the Range header through CORS).
 */
export function urlFileSystem(baseUrl: string, options: UrlFileSystemOptions = {}): FileSystem {
  return new UrlFileSystem(baseUrl, options);
}
