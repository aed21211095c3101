// `cosmos-ts check-ops`: one table row (or JSON line) per registry case and backend; exit 0 when
// every kernel agrees with the CPU oracle, 1 when one disagrees (here a WebGPU primitive is made
// wrong in-process for one run), 2 for a bad flag (an unknown --op names the known ones).
import { describe, expect, it } from 'vitest';
import { OP_CASES } from '../../src/conform/op-cases/index.js';
import type { Backend } from '../../src/engine/backend.js';
import { webgpu } from '../harness.js';
import { runCli } from './run-cli.js';

const count = (...ops: string[]) => OP_CASES.filter((c) => ops.includes(c.op) || ops.includes(c.family)).length;

describe('check-ops command', () => {
  it('prints the table with one row per case and a summary, exit 0', async () => {
    const r = await runCli('check-ops', '--backend', 'cpu', '--op', 'softmax,conv1d');
    expect(r.rc, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('# backend cpu: cpu (TypeScript reference)');
    expect(lines[1].split(/\s+/)).toEqual(['op', 'shape', 'dtype', 'pass', 'max_abs', 'max_rel', 'ms', 'gpu', 'ms']);
    const rows = lines.slice(2, -1);
    const n = count('softmax', 'conv1d');
    expect(rows).toHaveLength(n);
    for (const l of rows) expect(l).toMatch(/^(softmax|conv1d) .* ok +0 +0 +\d+\.\d{3} +-$/);
    expect(lines.at(-1)).toBe(`check-ops summary: ${n} of ${n} case runs agree with the cpu oracle on cpu`);
  });

  it('writes one JSON object per case with --json, --op repeated', async () => {
    const r = await runCli('check-ops', '--backend', 'cpu', '--op', 'rmsNorm', '--op', 'topk', '--json', '--reps', '0');
    expect(r.rc, r.err).toBe(0);
    const rows = r.out.split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(count('rmsNorm', 'topk'));
    for (const row of rows) {
      for (const k of ['case', 'op', 'family', 'shape', 'dtype', 'backend', 'adapter', 'pass', 'max_abs', 'max_rel', 'atol', 'rtol', 'seconds', 'gpu_seconds', 'worst', 'error']) {
        expect(row).toHaveProperty(k);
      }
      expect([row.backend, row.pass]).toEqual(['cpu', true]);
    }
  });

  it('runs on webgpu by default and exits 1 when a kernel disagrees with the oracle', async () => {
    const ok = await runCli('check-ops', '--op', 'softmax');
    expect(ok.rc, ok.err).toBe(0);
    expect(ok.out.split('\n')[0]).toMatch(/^# backend webgpu: /);

    // the process-wide backend the command opens: its softmax made wrong for one run
    const be = (await webgpu()) as Backend & { softmax: Backend['softmax'] };
    const real = be.softmax;
    be.softmax = function (this: Backend, x, o, n, i) {
      const y = real.call(this, x, o, n, i);
      return y.backend.unary('affine', y, 1, 0.01);
    };
    try {
      const bad = await runCli('check-ops', '--op', 'softmax');
      expect(bad.rc).toBe(1);
      const lines = bad.out.split('\n');
      expect(lines.filter((l) => /^softmax .* FAIL /.test(l))).toHaveLength(count('softmax'));
      expect(lines.some((l) => /^ {4}output 0 element \d+: got .*, want .* \(atol 1e-7, rtol 0.00002\)$/.test(l))).toBe(true);
      expect(lines.at(-1)).toBe(`check-ops summary: 0 of ${count('softmax')} case runs agree with the cpu oracle on webgpu`);
    } finally {
      be.softmax = real;
      delete (be as Partial<typeof be>).softmax;
    }
  });

  it('refuses an unknown --op with one line naming the known ones, exit 2', async () => {
    const r = await runCli('check-ops', '--op', 'matmul,nosuch');
    expect(r.rc).toBe(2);
    expect(r.out).toBe('');
    expect(r.errLines).toHaveLength(1);
    expect(r.errLines[0]).toMatch(/^error: --op: "nosuch": no such op; known: .*\bconv3d\b.*\bmatmul\b/);
  });

  it('refuses a bad --backend or --reps, exit 2', async () => {
    const b = await runCli('check-ops', '--backend', 'tpu');
    expect(b.rc).toBe(2);
    expect(b.errLines.at(-1)).toMatch(/^error: --backend: /);
    const r = await runCli('check-ops', '--reps', '-1');
    expect(r.rc).toBe(2);
    expect(r.errLines.at(-1)).toMatch(/^error: --reps: must be an integer >= 0/);
  });
});
