// The kernel bench on the page: the matmul, attention and conv rows of `npm run bench`
// (bench/kernel-cases.ts, timed through web/bench-harness.ts) on the browser's adapter, as a table
// with the bench's fields, downloadable as JSON in the shape bench/results/*.json has.
import { benchKernels, kernelCases } from '../bench/kernel-cases.js';
import type { Backend } from '../src/browser.js';
import { naiveMatmulGflops } from './bench-harness.js';
import { $, el, fmtNum } from './dom.js';

/** The families of rows the page runs (norms and permutes stay with the CLI bench). */
const PAGE_ROWS = /^(linear|attention|conv3d)/;

const COLUMNS = ['name', 'op', 'shape', 'dtype', 'formula', 'ms', 'gflops', 'gbps', 'gpu_seconds', 'gpu_gflops', 'vs_naive_js'] as const;

function cell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return fmtNum(v, 4);
  return String(v);
}

let download: string | null = null;

export async function runBench(backend: Backend): Promise<void> {
  const quick = $<HTMLInputElement>('bench-quick').checked;
  const filter = $<HTMLInputElement>('bench-filter').value.trim();
  const table = $('bench-table');
  const head = table.querySelector('thead')!;
  const body = table.querySelector('tbody')!;
  const summary = $('bench-summary');
  head.replaceChildren(el('tr', {}, ...COLUMNS.map((c) => el('th', {}, c))));
  body.replaceChildren();
  summary.textContent = 'timing the naive JS matmul (the yardstick)...';
  const naive = naiveMatmulGflops(quick);
  const cases = kernelCases(quick).filter((k) => PAGE_ROWS.test(k.name) && !k.large);
  const errors: string[] = [];
  const rows = await benchKernels([backend], cases, {
    quick, large: false, filter, naive,
    log: (line) => {
      summary.textContent = line.trim().split('\n').pop() ?? '';
    },
    onError: (what) => errors.push(what),
  });
  for (const r of rows) {
    body.append(el('tr', {}, ...COLUMNS.map((c) => {
      // a formula's definitions of its terms are in the JSON (and the cell's tooltip)
      const text = c === 'formula' ? cell(r[c]).split(', ')[0] : cell(r[c]);
      return el('td', { class: typeof r[c] === 'number' ? 'num' : '', title: cell(r[c]) }, text);
    })));
  }
  const result = { adapter: backend.adapter, details: backend.details, quick, naive_js_gflops: naive, rows, errors };
  if (download) URL.revokeObjectURL(download);
  download = URL.createObjectURL(new Blob([JSON.stringify(result, null, 2)], { type: 'application/json' }));
  const link = $<HTMLAnchorElement>('bench-json');
  link.href = download;
  link.hidden = false;
  summary.textContent = `${rows.length} rows on ${backend.adapter}; naive JS matmul ${naive.toFixed(2)} GFLOP/s` +
    (errors.length ? `; ${errors.length} could not run: ${errors.join('; ')}` : '');
  table.dataset.rows = String(rows.length);
  if (errors.length) throw new Error(`bench: ${errors[0]}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`);
}
