// `cosmos-ts conform`: one table row or JSON line per case and backend, exit status 1 when any
// case fails, 0 when all pass, 2 when there is nothing to run (a user error).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const CASE = resolve(import.meta.dirname, '../fixtures/tokenizer/ci_image');
const tmp = mkdtempSync(join(tmpdir(), 'cosmos-conform-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('conform command', () => {
  it('prints one JSON object per case and backend with --json, and exits 1 when a case fails', async () => {
    // a copy of a small fixture case whose kind nobody implements
    const dir = join(tmp, 'cases');
    cpSync(CASE, join(dir, 'image'), { recursive: true });
    cpSync(CASE, join(dir, 'unknown'), { recursive: true });
    const cj = join(dir, 'unknown', 'case.json');
    writeFileSync(cj, JSON.stringify({ ...JSON.parse(readFileSync(cj, 'utf8')), kind: 'nobody.implements_this' }));

    const r = await runCli('conform', dir, '--backend', 'cpu', '--json');
    expect(r.rc, r.err).toBe(1);
    const rows = r.out.split('\n').map((l) => JSON.parse(l));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      for (const k of ['case', 'kind', 'backend', 'adapter', 'pass', 'seconds', 'outputs', 'first_divergent_tap', 'error', 'not_implemented']) expect(row).toHaveProperty(k);
    }
    const [good, unknown] = rows;
    expect([good.case.endsWith('image'), good.pass, good.backend]).toEqual([true, true, 'cpu']);
    expect([unknown.pass, unknown.not_implemented]).toEqual([false, true]);

    const table = await runCli('conform', dir, '--backend', 'cpu');
    expect(table.rc).toBe(1);
    const lines = table.out.split('\n');
    expect(lines[0]).toMatch(/^# backend cpu: /);
    expect(lines[1]).toMatch(/^PASS {2}.*image +cpu /);
    expect(lines[2]).toMatch(/^TODO {2}.*unknown +cpu .*not implemented/);
    expect(lines.at(-1)).toBe('conformance summary: 1 of 2 case runs pass on cpu');
  });

  it('exits 0 when every case passes on both backends', async () => {
    const r = await runCli('conform', CASE, '--backend', 'all');
    expect(r.rc, r.out).toBe(0);
    expect(r.out.split('\n').filter((l) => l.startsWith('PASS'))).toHaveLength(2);
    expect(r.out).toMatch(/^# backend webgpu: /m);
  });

  it('nothing to run is a user error (exit 2)', async () => {
    const none = await runCli('conform', '--backend', 'cpu');
    expect(none.rc).toBe(2);
    expect(none.errLines).toEqual(['error: <case-dir>: missing (give case folders or --all)']);
    const empty = await runCli('conform', tmp.concat('/none'), '--backend', 'cpu');
    expect(empty.rc).toBe(2);
    expect(empty.errLines).toEqual([expect.stringMatching(/^error: .*none: no such file or folder; expected <case-dir \| folder of cases>/)]);
  });
});
