// `npm run test:web`: builds the page, serves it on 127.0.0.1, drives Debian's Chromium headless
// (playwright-core with the apt package's binary; no browser download) on its WebGPU adapter
// (SwiftShader here, with --enable-unsafe-webgpu) and checks:
// - every public fixture case of the tokenizer, DiT and AR families passes on the page;
// - the explorer shows the CV tiny tokenizer's module tree (every tensor, every parameter);
// - a tap heat map (one canvas per channel, statistics that match the tap's size, no NaN) and an
//   attention map (its host rebuild of the block's output matches the block's tap);
// - the page's round-trip PSNR on a sample clip equals the CLI's within 0.01 dB;
// - the kernel bench gives a row and its JSON; without WebGPU the page says so in one line.
// Screenshots of the tree, the heat map, the conformance table and the bench go to out/web/.
// Exit status 1 with one line per failed check.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { buildWeb } from './build-web.mjs';
import { serveWeb } from './serve-web.mjs';
import { PAGE_FIXTURES, ROOT } from './web-site.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = join(ROOT, 'out/web');
const TOKENIZER = 'weights/cosmos-tokenizer-tiny-cv4x8x8';
const CLIP = 'weights/samples/sample_0.y4m';
const TAP = 'encoder.down.0.block.0';
const BENCH_ROW = 'conv3d 3x1x1';
const ATTENTION = 'encoder.mid.attn_1.0';
const PSNR_TOLERANCE_DB = 0.01;
const STEP_TIMEOUT_MS = 15 * 60_000;

const failures = [];
const t0 = Date.now();
const log = (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}`);
function check(ok, what) {
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

function caseFolders() {
  const out = [];
  const walk = (d) => {
    if (existsSync(join(d, 'case.json'))) out.push(d);
    else for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
  };
  for (const f of PAGE_FIXTURES) walk(join(ROOT, 'test/fixtures', f));
  return out;
}

/** Tensor and parameter counts of a safetensors file, from its header. */
function headerCounts(file) {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  let tensors = 0;
  let params = 0;
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    tensors++;
    params += v.shape.reduce((a, b) => a * b, 1);
  }
  return { tensors, params };
}

/** The CLI's PSNR for the same round trip (CPU backend: the oracle). */
function cliPsnr() {
  const out = execFileSync(process.execPath, [
    join(ROOT, 'bin/cosmos-ts.mjs'), 'roundtrip', '--model', TOKENIZER, '--input', CLIP, '--out', join(OUT, 'cli-rec.y4m'), '--json', '--backend', 'cpu',
  ], { cwd: ROOT, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(out.toString('utf8')).psnr;
}

async function waitDone(page, selector) {
  await page.waitForSelector(`${selector}[data-state=done], ${selector}[data-state=error]`, { state: 'attached', timeout: STEP_TIMEOUT_MS });
  const state = await page.getAttribute(selector, 'data-state');
  const error = (await page.isVisible('#error')) ? await page.textContent('#error') : '';
  return { ok: state === 'done', error };
}

mkdirSync(OUT, { recursive: true });
if (!existsSync(CHROMIUM)) {
  console.error(`error: ${CHROMIUM}: no Chromium there; install Debian's (apt-get install -y --no-install-recommends chromium) or set CHROMIUM_PATH`);
  process.exit(2);
}
await buildWeb();
log('built dist/web');
const { server, url } = await serveWeb({ port: 0 });
log(`serving ${url}`);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--enable-unsafe-webgpu', '--disable-dev-shm-usage'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('#adapter:not([data-state=pending])', { timeout: 60_000 });
  const adapter = await page.textContent('#adapter');
  check((await page.getAttribute('#adapter', 'data-state')) === 'done', `WebGPU on the page: ${adapter} ${await page.textContent('#error')}`);

  // ---- conformance
  const want = caseFolders();
  await page.click('nav button[data-tab=conform]');
  await page.click('#conform-run');
  const conf = await waitDone(page, '#conform-table');
  check(conf.ok, `conformance run finished ${conf.error}`);
  const rows = await page.$$eval('#conform-table tbody tr', (rs) => rs.map((r) => ({ case: r.dataset.case, pass: r.dataset.pass === '', text: Array.from(r.cells, (c) => c.textContent).join('  ') })));
  check(rows.length === want.length, `${rows.length} cases on the page; ${want.length} case folders under test/fixtures/{${PAGE_FIXTURES.join(',')}}`);
  for (const r of rows) check(r.pass, `conform ${r.text}`);
  log(await page.textContent('#conform-summary'));
  await page.screenshot({ path: join(OUT, 'conformance.png'), fullPage: true });

  // ---- explorer: the module tree
  await page.click('nav button[data-tab=explorer]');
  await page.fill('#ckpt-url', TOKENIZER);
  await page.click('#open-url');
  const tree = await waitDone(page, '#tree');
  check(tree.ok, `module tree of ${TOKENIZER} ${tree.error}`);
  const counts = headerCounts(join(ROOT, TOKENIZER, 'model.safetensors'));
  const shown = { tensors: Number(await page.getAttribute('#tree', 'data-tensors')), params: Number(await page.getAttribute('#tree', 'data-params')) };
  check(shown.tensors === counts.tensors && shown.params === counts.params,
    `tree: ${shown.tensors} tensors, ${shown.params} parameters; the checkpoint header has ${counts.tensors}, ${counts.params}`);
  const modules = await page.$$eval('#tree tr.module', (rs) => rs.map((r) => r.dataset.path));
  check(modules.includes('encoder') && modules.includes('decoder') && modules.includes(TAP), `tree rows include encoder, decoder and ${TAP} (${modules.length} module rows)`);
  await page.locator('#tree').screenshot({ path: join(OUT, 'tree.png') });

  // ---- explorer: the round trip, against the CLI
  await page.selectOption('#rt-model', TOKENIZER);
  await page.selectOption('#rt-clip', CLIP);
  await page.click('#rt-run');
  const rt = await waitDone(page, '#roundtrip');
  check(rt.ok, `round trip of ${CLIP} ${rt.error}`);
  const pagePsnr = Number(await page.getAttribute('#roundtrip', 'data-psnr'));
  const cli = cliPsnr();
  const latentCaption = await page.textContent('#rt-tokens-caption');
  const latentShape = /\[([\d, ]+)\]/.exec(latentCaption)?.[1].split(',').map(Number) ?? [];
  const latentPlanes = await page.$$eval('#rt-tokens canvas', (cs) => cs.map((c) => [c.width, c.height]));
  check(latentShape.length === 5 && latentPlanes.length === latentShape[1] && latentPlanes.every(([w, h]) => w === latentShape[4] && h === latentShape[3]),
    `latent shown: ${latentPlanes.length} channel planes; ${latentCaption}`);
  check(Math.abs(pagePsnr - cli) <= PSNR_TOLERANCE_DB, `round-trip PSNR on the page ${pagePsnr.toFixed(4)} dB, the CLI's (cpu) ${cli.toFixed(4)} dB (within ${PSNR_TOLERANCE_DB})`);

  // ---- explorer: a tap heat map
  await page.selectOption('#tap-path', TAP);
  await page.click('#tap-run');
  const tap = await waitDone(page, '#tap');
  check(tap.ok, `tap ${TAP} ${tap.error}`);
  const stats = await page.textContent('#tap-stats');
  const shape = /\[([\d, ]+)\]/.exec(stats)?.[1].split(',').map(Number) ?? [];
  const canvases = await page.$$eval('#tap-grid canvas', (cs) => cs.map((c) => [c.width, c.height]));
  const ds = await page.$eval('#tap', (e) => ({ ...e.dataset }));
  check(shape.length === 5 && canvases.length === Math.min(64, shape[1]) && canvases.every(([w, h]) => w === shape[4] && h === shape[3]),
    `heat map of ${TAP}: ${canvases.length} channel planes of ${canvases[0]?.join('x')} for a [${shape.join(', ')}] tap`);
  check(Number(ds.nan) === 0 && Number(ds.std) > 0 && Number(ds.min) < Number(ds.max), `tap statistics: ${stats}`);
  await page.locator('#tap').screenshot({ path: join(OUT, 'heatmap.png') });

  // ---- explorer: an attention map (recomputed on the host, checked against the block's output)
  await page.selectOption('#attn-path', ATTENTION);
  await page.click('#attn-run');
  const attn = await waitDone(page, '#attn');
  check(attn.ok, `attention map of ${ATTENTION} ${attn.error}`);
  const ad = await page.$eval('#attn', (e) => ({ ...e.dataset }));
  check(Number(ad.frames) > 0 && Number(ad.maxabs) < 1e-3, `attention: ${ad.frames} frame maps of ${ad.hw}; the host rebuild of the block output differs from its tap by ${ad.maxabs}`);
  await page.locator('#attn').screenshot({ path: join(OUT, 'attention.png') });
  await page.screenshot({ path: join(OUT, 'explorer.png'), fullPage: true });

  // ---- the kernel bench (one quick row: the table, its fields and the JSON download)
  await page.click('nav button[data-tab=bench]');
  await page.fill('#bench-filter', BENCH_ROW);
  await page.click('#bench-run');
  const bench = await waitDone(page, '#bench-table');
  check(bench.ok, `kernel bench ${bench.error}`);
  const json = await page.evaluate(async () => (await fetch(document.getElementById('bench-json').href)).json());
  const row = json.rows?.[0] ?? {};
  check(json.rows?.length === 1 && row.name === BENCH_ROW && row.seconds > 0 && row.gflops > 0 && typeof row.formula === 'string' && row.adapter === json.adapter,
    `bench JSON: ${json.rows?.length} row(s); ${row.name} ${row.shape} ${Number(row.gflops).toFixed(3)} GFLOP/s`);
  await page.screenshot({ path: join(OUT, 'bench.png'), fullPage: true });

  // ---- no WebGPU: one clear line saying how to enable it
  const bare = await browser.newPage();
  await bare.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
  await bare.goto(url);
  await bare.waitForSelector('#adapter:not([data-state=pending])', { timeout: 60_000 });
  const line = (await bare.isVisible('#error')) ? await bare.textContent('#error') : '';
  check(/^error: webgpu: .*no navigator\.gpu.*enable-unsafe-webgpu/.test(line) && !line.includes('\n'), `without WebGPU the page says: ${line}`);
} finally {
  await browser.close();
  server.close();
}

log(`screenshots in ${OUT}`);
if (failures.length) {
  console.log(`test:web: ${failures.length} check(s) failed`);
  process.exit(1);
}
console.log(`test:web: every check passed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
