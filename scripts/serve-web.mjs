// `npm run web`: serves the built page (dist/web) and the vendored fixtures and weights it reads, on
// the loopback address (a secure context, so navigator.gpu is offered). Static files only, with
// HTTP Range requests (the page reads checkpoints tensor by tensor); nothing else happens here.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { MOUNTS, OUT_DIR } from './web-site.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.map': 'application/json', '.png': 'image/png', '.md': 'text/plain; charset=utf-8',
};

function fileOf(urlPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  for (const m of MOUNTS) {
    if (!p.startsWith(m.prefix)) continue;
    const rel = normalize(p.slice(m.prefix.length) || 'index.html');
    if (rel.startsWith('..') || rel.startsWith(sep)) return null;
    return join(m.dir, rel);
  }
  return null;
}

/** [start, end] (inclusive) of a single-range header, 'bad' when unsatisfiable, null for none. */
function rangeOf(header, size) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'bad';
  let start;
  let end;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2]));
  }
  return start > end || start >= size ? 'bad' : [start, end];
}

function handle(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const file = fileOf(new URL(req.url, 'http://x').pathname);
  let st = null;
  try {
    st = file ? statSync(file) : null;
  } catch {}
  if (!st?.isFile()) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const headers = {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
    'cache-control': 'no-store',
  };
  const r = rangeOf(req.headers.range, st.size);
  if (r === 'bad') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${st.size}` }).end();
    return;
  }
  const [start, end] = r ?? [0, st.size - 1];
  res.writeHead(r ? 206 : 200, {
    ...headers,
    'content-length': String(st.size === 0 ? 0 : end - start + 1),
    ...(r ? { 'content-range': `bytes ${start}-${end}/${st.size}` } : {}),
  });
  if (req.method === 'HEAD' || st.size === 0) res.end();
  else createReadStream(file, { start, end }).pipe(res);
}

/** Start the server; resolves to its URL once it listens. */
export function serveWeb({ port = 8177, host = '127.0.0.1' } = {}) {
  const server = createServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve({ server, url: `http://${host}:${a.port}/` });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8177);
  try {
    statSync(join(OUT_DIR, 'index.html'));
  } catch {
    console.error('error: dist/web: not built; run npm run build:web first');
    process.exit(2);
  }
  let url;
  try {
    ({ url } = await serveWeb({ port }));
  } catch (e) {
    console.error(`error: 127.0.0.1:${port}: cannot listen (${e.code ?? e.message}); set PORT to another port`);
    process.exit(2);
  }
  console.log(`cosmos-ts page: ${url}  (Ctrl-C to stop; WebGPU needs Chromium/Chrome 113+, or --enable-unsafe-webgpu)`);
}
