// Conformance on the page: the vendored fixture cases on the browser's WebGPU adapter, one row
// per case with the fields `cosmos-ts conform` prints.
import { type Backend, type FileSystem, conform } from '../src/browser.js';
import type { CaseResult } from '../src/pipelines/conform.js';
import { $, el, fmtErr } from './dom.js';

function row(r: CaseResult): HTMLTableRowElement {
  const outs = Object.values(r.outputs);
  const worstAbs = Math.max(0, ...outs.map((o) => o.max_abs));
  const worstRel = Math.max(0, ...outs.map((o) => o.max_rel));
  const status = r.pass ? 'PASS' : r.not_implemented ? 'TODO' : 'FAIL';
  return el('tr', { class: r.pass ? 'pass' : 'fail', 'data-case': r.case, 'data-pass': r.pass },
    el('td', {}, status),
    el('td', {}, r.case.replace(/^fixtures\//, '')),
    el('td', {}, r.backend),
    el('td', { class: 'num' }, r.seconds.toFixed(2)),
    el('td', { class: 'num' }, outs.length ? fmtErr(worstAbs) : ''),
    el('td', { class: 'num' }, outs.length ? fmtErr(worstRel) : ''),
    el('td', {}, r.first_divergent_tap ? `${r.first_divergent_tap} (max_abs ${fmtErr(r.taps[r.first_divergent_tap]?.max_abs ?? Number.NaN)})` : ''),
    el('td', {}, r.error ? r.error.split('\n')[0].slice(0, 200) : ''),
  );
}

export async function runConformance(backend: Backend, fs: FileSystem, folders: readonly string[]): Promise<void> {
  const body = $('conform-table').querySelector('tbody')!;
  const summary = $('conform-summary');
  body.replaceChildren();
  summary.textContent = `running on ${backend.adapter}...`;
  const report = await conform(folders, {
    backends: [backend],
    fs,
    onProgress: (e) => {
      const r = e.detail?.result as CaseResult | undefined;
      if (r) {
        body.append(row(r));
        summary.textContent = `${e.done} of ${e.total} cases on ${backend.adapter}...`;
      }
    },
  });
  summary.textContent = `conformance summary: ${report.passed} of ${report.results.length} cases pass on webgpu (${backend.adapter})`;
  summary.dataset.passed = String(report.passed);
  summary.dataset.total = String(report.results.length);
}
