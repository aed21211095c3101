// `cosmos-ts conform`: fixture cases against their reference outputs, one line per case and
// backend (or one JSON object with --json). Exit status 1 when any case fails.
import { fileURLToPath } from 'node:url';
import type { Backend } from '../engine/backend.js';
import { UserError } from '../engine/errors.js';
import { type CaseResult, conform } from '../pipelines/conform.js';
import { type CommandContext, commandBackends, defineCommand, UsageError } from './command.js';

export const VENDORED_FIXTURES = fileURLToPath(new URL('../../test/fixtures', import.meta.url));

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  return x.toExponential(1);
}

/** JSON has no NaN or infinities: they are written as the strings "NaN", "Infinity", "-Infinity" (never null, which would read as "no value"). */
export function nonFiniteAsText(_key: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
}

/** The table row of one result (and its failing outputs, first divergent tap, taps if asked). */
export function resultLines(r: CaseResult, showTaps: boolean): string[] {
  const outs = Object.entries(r.outputs);
  const worstAbs = Math.max(0, ...outs.map(([, o]) => o.max_abs));
  const worstRel = Math.max(0, ...outs.map(([, o]) => o.max_rel));
  const status = r.pass ? 'PASS' : r.not_implemented ? 'TODO' : 'FAIL';
  const rel = r.case.replace(`${process.cwd()}/`, '');
  const lines = [
    `${status}  ${rel.padEnd(48)} ${r.backend.padEnd(6)} ${r.seconds.toFixed(2).padStart(7)}s  ` +
      (outs.length ? `max_abs ${fmt(worstAbs).padEnd(7)} max_rel ${fmt(worstRel).padEnd(7)}` : ''.padEnd(32)) +
      (r.error ? `  ${r.error.split('\n')[0].slice(0, 160)}` : ''),
  ];
  for (const [name, o] of outs) {
    if (!o.pass) {
      const w = o.worst ? ` (element ${o.worst.index}: got ${o.worst.got}, want ${o.worst.want})` : '';
      lines.push(`        output ${name}: max_abs ${fmt(o.max_abs)} max_rel ${fmt(o.max_rel)} FAIL${w}${o.note ? ` ${o.note}` : ''}`);
    }
  }
  if (r.first_divergent_tap) lines.push(`        first divergent tap: ${r.first_divergent_tap}`);
  if (showTaps) for (const [p, o] of Object.entries(r.taps)) lines.push(`        tap ${p}: max_abs ${fmt(o.max_abs)} ${o.pass ? 'ok' : 'FAIL'}`);
  return lines;
}

/**
 * Run the cases under `paths` on `backends`, printing each result as it arrives (a table with a
 * header per backend, or JSON lines); returns the number of failed runs.
 */
export async function printConformance(
  paths: readonly string[], backends: readonly Backend[], ctx: CommandContext, o: { json?: boolean; taps?: boolean; skipped?: string } = {},
): Promise<number> {
  let shownBackend: Backend | null = null;
  const report = await conform(paths, {
    backends,
    signal: ctx.signal,
    onProgress: (e) => {
      const r = e.detail?.result as CaseResult | undefined;
      if (!r) return;
      if (o.json) {
        ctx.out(JSON.stringify(r, nonFiniteAsText));
        return;
      }
      const be = backends.find((b) => b.name === r.backend)!;
      if (be !== shownBackend) {
        ctx.out(`# backend ${be.name}: ${be.adapter}`);
        shownBackend = be;
      }
      for (const l of resultLines(r, o.taps ?? false)) ctx.out(l);
    },
  });
  if (report.results.length === 0) throw new UserError(`${paths.join(', ')}: no case folders (with case.json) there`);
  // worded so that no test-runner summary parser mistakes it for a test count
  const on = `on ${backends.map((b) => b.name).join(' and ')}${o.skipped ? ` only; ${o.skipped} SKIPPED` : ''}`;
  if (!o.json) ctx.out(`conformance summary: ${report.passed} of ${report.results.length} case runs pass ${on}`);
  return report.failed;
}

export const command = defineCommand({
  name: 'conform',
  summary: 'run fixture cases against the reference outputs',
  description: `Runs each fixture case (a folder with case.json, config.json, model.safetensors,
case.safetensors) on the chosen backends and compares every output with the reference:
|got - want| <= atol + rtol*|want| (integers exactly). Exit status 1 if any case fails or its
kind is not implemented yet.`,
  positionals: { usage: '<case-dir | folder of cases>...', min: 0, path: 'input' },
  flags: {
    all: { type: 'boolean', help: 'every vendored fixture case (test/fixtures)' },
    backend: { type: 'string', choices: ['cpu', 'webgpu', 'all'], default: 'all', help: 'all: cpu and webgpu (webgpu is required, not skipped)' },
    json: { type: 'boolean', help: 'one JSON object per line for each case and backend' },
    taps: { type: 'boolean', help: 'also print each compared tap' },
  },
  async run(f, positionals, ctx) {
    const paths = [...positionals, ...(f.all ? [VENDORED_FIXTURES] : [])];
    if (!paths.length) throw new UsageError('<case-dir>: missing (give case folders or --all)');
    const backends = await commandBackends(f.backend, ctx);
    return (await printConformance(paths, backends, ctx, { json: f.json, taps: f.taps })) ? 1 : 0;
  },
});
