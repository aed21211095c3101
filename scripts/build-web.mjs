// `npm run build:web`: bundles web/main.ts (the library's browser entry and the page) with esbuild
// into dist/web, copies the static files, and writes manifest.json (the site's file list).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUT_DIR, PAGE_FIXTURES, ROOT, siteFiles } from './web-site.mjs';

// bench/kernel-cases.ts (the bench's rows, shared with npm run bench) imports the Node harness;
// on the page the same names come from web/bench-harness.ts.
const benchHarnessForPage = {
  name: 'bench-harness-for-page',
  setup(b) {
    b.onResolve({ filter: /^\.\/harness\.js$/ }, (args) =>
      args.importer.endsWith(join('bench', 'kernel-cases.ts')) ? { path: join(ROOT, 'web/bench-harness.ts') } : undefined);
  },
};

export async function buildWeb() {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  await build({
    entryPoints: [join(ROOT, 'web/main.ts')],
    outfile: join(OUT_DIR, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    // Dawn's Node package: the engine imports it only where there is no navigator.gpu, and never on a page
    external: ['webgpu'],
    logLevel: 'warning',
    plugins: [benchHarnessForPage],
  });
  for (const f of ['index.html', 'style.css']) copyFileSync(join(ROOT, 'web', f), join(OUT_DIR, f));
  writeFileSync(join(OUT_DIR, 'manifest.json'), JSON.stringify({ fixtures: PAGE_FIXTURES.map((f) => `fixtures/${f}`), files: siteFiles() }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = Date.now();
  await buildWeb();
  console.log(`built ${OUT_DIR} in ${Date.now() - t0} ms`);
}
