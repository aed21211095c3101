// What the page's site holds: the bundle (dist/web) at the root, and the vendored files it reads
// over HTTP range requests mounted beside it. The build writes their list (dist/web/manifest.json)
// because HTTP cannot list a folder; the server only maps URL prefixes to these folders.
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const OUT_DIR = join(ROOT, 'dist/web');

/** URL prefix -> folder of the checkout; longest prefix first. */
export const MOUNTS = [
  { prefix: '/fixtures/', dir: join(ROOT, 'test/fixtures') },
  { prefix: '/weights/', dir: join(ROOT, 'weights') },
  { prefix: '/', dir: OUT_DIR },
];

/** The fixture families the page's conformance runs (the tokenizer, DiT and AR families). */
export const PAGE_FIXTURES = ['tokenizer', 'dit', 'ar'];

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Every file the page may read, as site paths ("fixtures/dit/rope3d/case.json", "weights/..."). */
export function siteFiles() {
  const files = [];
  for (const fam of PAGE_FIXTURES) {
    const dir = join(ROOT, 'test/fixtures', fam);
    for (const f of walk(dir)) files.push(`fixtures/${relative(join(ROOT, 'test/fixtures'), f)}`);
  }
  for (const f of walk(join(ROOT, 'weights'))) if (statSync(f).size > 0) files.push(`weights/${relative(join(ROOT, 'weights'), f)}`);
  return files.sort();
}
