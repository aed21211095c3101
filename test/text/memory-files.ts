// A read-only in-memory FileSystem: the tokenizers load through whatever FileSystem they are given
// (a browser's, a test's), not only the default one.
import { FileError, type FileSystem } from '../../src/io/files.js';

export function memoryFileSystem(files: Record<string, Uint8Array | string>): FileSystem {
  const bytes = (p: string) => {
    const v = files[p];
    return typeof v === 'string' ? new TextEncoder().encode(v) : v;
  };
  const refuse = (what: string) => async (): Promise<never> => {
    throw new Error(`memory file system: ${what} is not supported`);
  };
  return {
    name: 'memory',
    async stat(path) {
      if (path in files) return { kind: 'file', size: bytes(path).length };
      const dir = `${path.replace(/\/$/, '')}/`;
      return Object.keys(files).some((f) => f.startsWith(dir)) ? { kind: 'directory', size: 0 } : null;
    },
    async open(path) {
      if (!(path in files)) throw new FileError(path, 'cannot open: no such file');
      const b = bytes(path);
      return {
        path,
        size: b.length,
        async read(position, into) {
          const part = b.subarray(position, position + into.length);
          into.set(part);
          return part.length;
        },
        async close() {},
      };
    },
    list: refuse('list'),
    create: refuse('create'),
    createFolder: refuse('createFolder'),
    mkdir: refuse('mkdir'),
    resolve: (p) => p,
  };
}
