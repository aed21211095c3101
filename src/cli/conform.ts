// cosmos-ts conform <case-dir>... [--backend cpu|webgpu|all] [--json] [--all]
import { fileURLToPath } from 'node:url';
import { type BackendName, type CaseResult, findCases, getBackend, runCase } from '../conform/runner.js';

const HELP = `usage: cosmos-ts conform <case-dir | folder of cases>... [--backend cpu|webgpu|all] [--json]
       cosmos-ts conform --all            (every vendored fixture case)

Runs each fixture case (a folder with case.json, config.json, model.safetensors,
case.safetensors) on the chosen backends and compares every output with the reference:
|got - want| <= atol + rtol*|want| (integers exactly). Exit status 1 if any case fails or its
kind is not implemented yet.
  --backend   cpu, webgpu or all (default: all; webgpu is required, not skipped)
  --json      one JSON object per line for each case and backend
  --taps      also print each compared tap`;

export const VENDORED_FIXTURES = fileURLToPath(new URL('../../test/fixtures', import.meta.url));

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  return x.toExponential(1);
}

function printRow(r: CaseResult, showTaps: boolean): void {
  const outs = Object.entries(r.outputs);
  const worstAbs = Math.max(0, ...outs.map(([, o]) => o.max_abs));
  const worstRel = Math.max(0, ...outs.map(([, o]) => o.max_rel));
  const status = r.pass ? 'PASS' : r.not_implemented ? 'TODO' : 'FAIL';
  const rel = r.case.replace(process.cwd() + '/', '');
  console.log(
    `${status}  ${rel.padEnd(48)} ${r.backend.padEnd(6)} ${r.seconds.toFixed(2).padStart(7)}s  ` +
      (outs.length ? `max_abs ${fmt(worstAbs).padEnd(7)} max_rel ${fmt(worstRel).padEnd(7)}` : ''.padEnd(32)) +
      (r.error ? `  ${r.error.split('\n')[0].slice(0, 160)}` : ''),
  );
  for (const [name, o] of outs) {
    if (!o.pass) {
      const w = o.worst ? ` (element ${o.worst.index}: got ${o.worst.got}, want ${o.worst.want})` : '';
      console.log(`        output ${name}: max_abs ${fmt(o.max_abs)} max_rel ${fmt(o.max_rel)} FAIL${w}${o.note ? ' ' + o.note : ''}`);
    }
  }
  if (r.first_divergent_tap) console.log(`        first divergent tap: ${r.first_divergent_tap}`);
  if (showTaps) for (const [p, o] of Object.entries(r.taps)) console.log(`        tap ${p}: max_abs ${fmt(o.max_abs)} ${o.pass ? 'ok' : 'FAIL'}`);
}

export async function conformCommand(args: string[]): Promise<number> {
  const paths: string[] = [];
  let backend = 'all';
  let json = false;
  let taps = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') { console.log(HELP); return 0; }
    else if (a === '--json') json = true;
    else if (a === '--taps') taps = true;
    else if (a === '--all') paths.push(VENDORED_FIXTURES);
    else if (a === '--backend') backend = args[++i] ?? '';
    else if (a.startsWith('--backend=')) backend = a.slice(10);
    else if (a.startsWith('-')) { console.error(`error: unknown option ${a}\n${HELP}`); return 2; }
    else paths.push(a);
  }
  if (!['cpu', 'webgpu', 'all'].includes(backend)) {
    console.error(`error: --backend must be cpu, webgpu or all, got ${JSON.stringify(backend)}`);
    return 2;
  }
  if (!paths.length) { console.error(HELP); return 2; }
  const cases = findCases(paths);
  if (!cases.length) { console.error(`error: no case folders (with case.json) under ${paths.join(', ')}`); return 1; }
  const names: BackendName[] = backend === 'all' ? ['cpu', 'webgpu'] : [backend as BackendName];
  let failed = 0;
  let passed = 0;
  for (const name of names) {
    const be = await getBackend(name);
    if (!json) console.log(`# backend ${name}: ${be.adapter}`);
    for (const dir of cases) {
      const r = await runCase(dir, be);
      if (r.pass) passed++;
      else failed++;
      if (json) {
        const { not_implemented: _ni, ...rest } = r;
        console.log(JSON.stringify({ ...rest, not_implemented: _ni }));
      } else printRow(r, taps);
    }
  }
  // worded so that no test-runner summary parser mistakes it for a test count
  if (!json) console.log(`conformance summary: ${passed} of ${passed + failed} case runs pass`);
  return failed ? 1 : 0;
}
