// A small static file server on 127.0.0.1 for the tests of urlFileSystem: HEAD, GET, and single
// byte ranges (206 / 416), no folder listings. Options make it misbehave the ways servers do.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as nodePath from 'node:path';

export interface RangeServerOptions {
  /** Answer every GET with the whole file (200), as servers without range support do. */
  ignoreRange?: boolean;
  /** Answer every request with this status and no body. */
  status?: number;
  /** Refuse HEAD (405), so sizes must come from a range request. */
  noHead?: boolean;
}

export interface RangeServer {
  /** Base URL, ending in '/'. */
  url: string;
  /** Every request seen: method, path below the root, Range header. */
  requests: { method: string; path: string; range: string | undefined }[];
  close(): Promise<void>;
}

export async function startRangeServer(root: string, o: RangeServerOptions = {}): Promise<RangeServer> {
  const requests: RangeServer['requests'] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    const range = req.headers.range;
    requests.push({ method: req.method ?? '', path, range });
    if (o.status) {
      res.writeHead(o.status).end();
      return;
    }
    if (o.noHead && req.method === 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const file = nodePath.resolve(root, path);
    const st = file.startsWith(nodePath.resolve(root) + nodePath.sep) ? statSync(file, { throwIfNoEntry: false }) : undefined;
    if (!st?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
    if (!m || o.ignoreRange) {
      res.writeHead(200, { 'Content-Length': st.size, 'Accept-Ranges': o.ignoreRange ? 'none' : 'bytes' });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), st.size - 1);
    if (start > end) {
      res.writeHead(416, { 'Content-Range': `bytes */${st.size}` }).end();
      return;
    }
    res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${st.size}` });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
