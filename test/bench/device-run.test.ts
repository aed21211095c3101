// bench/device-run.sh, the parts that take seconds: a bad flag and a machine without node are
// refused with one line and exit 2 (nothing is installed or fetched), and --merge joins the files
// of several device calls into one (conformance results added, a case run twice kept once, exit 1
// when anything failed). The whole run on the software adapter (`npm run bench:device -- --quick`,
// ~2 min here) and the packed path (--pack, then --packed from .devbench alone) are run by hand;
// bench/results/README.md says how.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../bench/device-run.sh');
const tmp = mkdtempSync(join(tmpdir(), 'cosmos-device-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}): Promise<{ rc: number; out: string; err: string }> {
  return new Promise((done) => {
    execFile('/bin/bash', [SCRIPT, ...args], { env: { ...process.env, ...env } }, (e, out, err) => {
      done({ rc: e ? ((e as { code?: number }).code ?? 1) : 0, out, err });
    });
  });
}

describe('bench/device-run.sh', () => {
  it('refuses an unknown flag, exit 2', async () => {
    const r = await run(['--fast']);
    expect(r.rc).toBe(2);
    expect(r.err.trim()).toMatch(/^device-run: --fast: unknown flag \(--quick, /);
    expect(r.err).toContain('--no-tune');
  });

  it('says what to do where there is no node and nothing packed, exit 2', async () => {
    // bash builtins only until node is looked up: an empty PATH stands for a bare machine
    const r = await run(['--quick'], { PATH: join(tmp, 'empty'), COSMOS_DEVBENCH: join(tmp, 'none'), COSMOS_NODE: '' });
    expect(r.rc).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^device-run: node not found: not on the PATH, no COSMOS_NODE, no .*none\/base\/node\.xz\. Install Node >= 20, or run 'bench\/device-run\.sh --pack'/);
  });

  it('refuses a COSMOS_NODE that is not an executable, exit 2', async () => {
    const r = await run(['--quick'], { COSMOS_NODE: join(tmp, 'no-node') });
    expect(r.rc).toBe(2);
    expect(r.err.trim()).toBe(`device-run: COSMOS_NODE=${join(tmp, 'no-node')} is not an executable`);
  });

  it('merges the conformance of later calls into the first call\'s file', async () => {
    const result = (c: string, pass: boolean) => ({ case: `/root/repo/test/fixtures/${c}`, pass });
    const first = {
      what: 'cosmos-ts device run', adapter: { name: 'gpu' }, check_ops: { passed: 3, failed: 0, results: [] },
      conformance: { passed: 2, failed: 0, results: [result('ar/a', true), result('t5/b', true)] }, kernels: { rows: [{ name: 'x' }], errors: [] },
    };
    const second = { conformance: { passed: 1, failed: 1, results: [result('t5/b', false), result('vlm/c', true)] }, check_ops: null, kernels: null };
    writeFileSync(join(tmp, 'a.json'), JSON.stringify(first));
    writeFileSync(join(tmp, 'b.json'), JSON.stringify(second));
    const r = await run(['--merge', join(tmp, 'a.json'), join(tmp, 'b.json'), '--out', join(tmp, 'm.json')]);
    expect(r.rc, r.err).toBe(0);
    const m = JSON.parse(readFileSync(join(tmp, 'm.json'), 'utf8'));
    expect(m.conformance.results.map((x: { case: string }) => x.case.split('/fixtures/')[1])).toEqual(['ar/a', 't5/b', 'vlm/c']);
    expect([m.conformance.passed, m.conformance.failed]).toEqual([3, 0]);
    expect(m.adapter).toEqual({ name: 'gpu' });
    expect(m.kernels.rows).toEqual([{ name: 'x' }]);
    expect(m.merged_from).toHaveLength(2);

    const failing = { conformance: { passed: 0, failed: 1, results: [result('dit/d', false)] } };
    writeFileSync(join(tmp, 'c.json'), JSON.stringify(failing));
    const bad = await run(['--merge', join(tmp, 'a.json'), join(tmp, 'c.json'), '--out', join(tmp, 'm2.json')]);
    expect(bad.rc).toBe(1);
    expect(JSON.parse(readFileSync(join(tmp, 'm2.json'), 'utf8')).conformance.failed).toBe(1);
  }, 60_000);
});
