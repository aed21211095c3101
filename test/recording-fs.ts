// A file system that records every positioned read it serves (path, position, bytes), for tests
// that prove what a reader touches: a checkpoint opened reads no tensor data, a plan reads none.
import type { FileSystem } from '../src/io/files.js';
import { nodeFileSystem } from '../src/io/node-files.js';

export interface ReadRecord {
  path: string;
  position: number;
  length: number;
}

export function recordingFs(inner: FileSystem = nodeFileSystem): { fs: FileSystem; reads: ReadRecord[]; bytesRead: () => number } {
  const reads: ReadRecord[] = [];
  const fs: FileSystem = {
    ...inner,
    name: `${inner.name} (recording reads)`,
    stat: (p) => inner.stat(p),
    list: (d) => inner.list(d),
    create: (p) => inner.create(p),
    createFolder: (p, o) => inner.createFolder(p, o),
    mkdir: (d) => inner.mkdir(d),
    resolve: (p) => inner.resolve(p),
    async open(path) {
      const f = await inner.open(path);
      return {
        path: f.path,
        size: f.size,
        async read(position, into) {
          const n = await f.read(position, into);
          reads.push({ path, position, length: n });
          return n;
        },
        close: () => f.close(),
      };
    },
  };
  return { fs, reads, bytesRead: () => reads.reduce((a, r) => a + r.length, 0) };
}
