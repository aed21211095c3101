// `cosmos-ts check-ops`: every op of the op table over the registry's cases on the chosen backends
// against the CPU oracle, one table (op, shape, dtype, pass, errors, time) as ggml's
// test-backend-ops prints, or one JSON object per line. Exit 1 when a kernel disagrees.
import { OP_CASES, opNames, selectOpCases } from '../conform/op-cases/index.js';
import type { Backend } from '../engine/backend.js';
import { type OpCheckResult, checkOps } from '../pipelines/check-ops.js';
import { type CommandContext, UsageError, commandBackends, defineCommand } from './command.js';
import { nonFiniteAsText } from './conform.js';

function sci(x: number): string {
  if (Number.isNaN(x)) return '-';
  if (!Number.isFinite(x)) return 'inf';
  return x === 0 ? '0' : x.toExponential(1);
}

const ms = (s: number | null) => (s === null ? '-' : (s * 1000).toFixed(3));

const COLUMNS = ['op', 'shape', 'dtype', 'pass', 'max_abs', 'max_rel', 'ms', 'gpu ms'];
const WIDTHS = [19, 44, 24, 4, 8, 8, 10, 10];

function row(cells: readonly string[]): string {
  return cells.map((c, i) => (i >= 4 ? c.padStart(WIDTHS[i]) : c.padEnd(WIDTHS[i]))).join(' ').trimEnd();
}

/** The table line of one result, and a second line saying why it failed. */
export function resultRow(r: OpCheckResult): string[] {
  const lines = [row([r.op, r.shape, r.dtype, r.pass ? 'ok' : 'FAIL', sci(r.max_abs), sci(r.max_rel), ms(r.seconds), ms(r.gpu_seconds)])];
  if (r.error) lines.push(`    ${r.error}`);
  else if (r.worst) {
    lines.push(`    output ${r.worst.output} element ${r.worst.index}: got ${r.worst.got}, want ${r.worst.want} (atol ${r.atol}, rtol ${r.rtol})`);
  }
  return lines;
}

function opList(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

export const command = defineCommand({
  name: 'check-ops',
  summary: 'check every kernel against the CPU oracle over the op registry',
  description: `Runs every case of the op registry (each op of the op table at awkward shapes: 1, odd,
primes, past every tile; every dtype it takes) on the chosen backends, compares with the CPU
oracle on the same inputs and prints one table: op, shape, dtype, pass, largest absolute and
relative error, time of one run (and the GPU kernel time where the adapter has timestamp
queries). Exit status 1 if any kernel disagrees with the oracle.`,
  flags: {
    backend: { type: 'string', choices: ['cpu', 'webgpu', 'all'], default: 'webgpu', help: 'all: cpu and webgpu (webgpu is required, not skipped)' },
    op: { type: 'string', multiple: true, placeholder: '<name>', help: 'only these ops or families (comma-separated or repeated), e.g. matmul,conv3d,norm' },
    json: { type: 'boolean', help: 'one JSON object per line for each case and backend' },
    seed: { type: 'integer', min: 0, default: 1, help: 'seed of the inputs' },
    reps: { type: 'integer', min: 0, default: 1, help: 'timed runs after the checked one (0: time the checked run, compilation included)' },
  },
  check(f) {
    const { unknown } = selectOpCases(opList(f.op));
    if (unknown.length) {
      throw new UsageError(`--op: ${unknown.map((u) => JSON.stringify(u)).join(', ')}: no such op; known: ${opNames(OP_CASES).join(', ')}`);
    }
  },
  async run(f, _positionals, ctx: CommandContext) {
    const backends = await commandBackends(f.backend, ctx);
    let shown: Backend | null = null;
    const report = await checkOps({
      backends,
      ops: opList(f.op),
      seed: f.seed,
      timeReps: f.reps,
      signal: ctx.signal,
      onResult: (r) => {
        if (f.json) {
          ctx.out(JSON.stringify(r, nonFiniteAsText));
          return;
        }
        const be = backends.find((b) => b.name === r.backend)!;
        if (be !== shown) {
          ctx.out(`# backend ${be.name}: ${be.adapter}`);
          ctx.out(row(COLUMNS));
          shown = be;
        }
        for (const l of resultRow(r)) ctx.out(l);
      },
    });
    if (!f.json) {
      const on = backends.map((b) => b.name).join(' and ');
      ctx.out(`check-ops summary: ${report.passed} of ${report.results.length} case runs agree with the cpu oracle on ${on}`);
    }
    return report.failed ? 1 : 0;
  },
});
