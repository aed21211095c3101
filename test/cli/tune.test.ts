// `cosmos-ts tune` and the global --tuning FILE / COSMOS_TUNING: the table written by tune is read
// back by any command and set on the WebGPU backend; a table of another adapter is a one-line
// warning and the defaults; a malformed or missing file, or an output that is the tuning input,
// is one line and exit 2. (On llvmpipe the table is made but not used by the matmul: the storage
// path it steers is exercised in test/ops/matmul-tuning.test.ts.)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import { MATMUL_CLASSES, parseTuning } from '../../src/engine/tuning.js';
import { webgpu } from '../harness.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'cosmos-tune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  delete process.env.COSMOS_TUNING;
});

const table = join(tmp, 'tuning.json');

describe('tune command and --tuning', () => {
  it('tune --quick --out FILE writes a table for this adapter, each candidate reported on stderr', async () => {
    const r = await runCli('tune', '--quick', '--out', table);
    expect(r.rc, r.err).toBe(0);
    expect(r.out).toBe('');
    const be: Backend = await webgpu();
    const t = parseTuning(JSON.parse(readFileSync(table, 'utf8')), table);
    expect(t.adapter).toBe(be.adapter);
    expect(Object.keys(t.matmul).sort()).toEqual([...MATMUL_CLASSES].sort());
    expect(new Set(t.measurements.map((m) => m.class))).toEqual(new Set(MATMUL_CLASSES));
    expect(t.applies).toBe(!be.software);
    expect(r.errLines[0]).toBe(`tune: ${be.adapter}${be.software ? ' [software adapter: the table will not be used here]' : ''}`);
    expect(r.errLines.filter((l) => /^ {2}(gemv|small|skinny|tallK|square) +\S+ +\d+\.\d{3} ms$/.test(l))).toHaveLength(t.measurements.length);
    expect(r.errLines.at(-1)).toBe(`tune: wrote ${table}`);
    expect(be.tuning ?? null, 'tune leaves the backend untuned').toBeNull();
  }, 120_000);

  it('--tuning FILE (or COSMOS_TUNING) sets the table on the backend of the command that runs', async () => {
    const t = JSON.parse(readFileSync(table, 'utf8'));
    t.matmul.square = { version: 'v4_reg16', wg: 128 };
    const edited = join(tmp, 'edited.json');
    writeFileSync(edited, JSON.stringify(t));
    const be = await webgpu();
    const r = await runCli('check-ops', '--op', 'linear', '--reps', '0', '--tuning', edited);
    expect(r.rc, r.err).toBe(0);
    expect(be.tuning?.matmul.square).toEqual({ version: 'v4_reg16', wg: 128 });

    const plain = await runCli('check-ops', '--op', 'rope', '--reps', '0');
    expect(plain.rc, plain.err).toBe(0);
    expect(be.tuning ?? null, 'a later command without --tuning runs with the defaults').toBeNull();

    process.env.COSMOS_TUNING = edited;
    const env = await runCli('check-ops', '--op', 'rope', '--reps', '0');
    expect(env.rc, env.err).toBe(0);
    expect(be.tuning?.matmul).toEqual({ ...parseTuning(t, 'x').matmul });
  }, 60_000);

  it('a table made on another adapter: one warning line on stderr, the defaults, exit 0', async () => {
    const t = JSON.parse(readFileSync(table, 'utf8'));
    t.adapter = 'NVIDIA / NVIDIA H100 80GB HBM3 / NVIDIA: 550.54.15 (vulkan, core)';
    const other = join(tmp, 'other.json');
    writeFileSync(other, JSON.stringify(t));
    const r = await runCli('check-ops', '--op', 'rope', '--reps', '0', `--tuning=${other}`);
    expect(r.rc, r.err).toBe(0);
    const warnings = r.errLines.filter((l) => l.startsWith('warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^warning: --tuning .*other\.json: the table was made for "NVIDIA \/ NVIDIA H100 80GB HBM3 \/ NVIDIA: 550\.54\.15 \(vulkan, core\)", this backend runs on ".*" \(run 'cosmos-ts tune' on this adapter\); using the default tiles$/);
    const be = await webgpu();
    expect(be.tuning ?? null).toBeNull();
  }, 60_000);

  it('refuses a malformed or missing table, and an output that is the tuning input, with one line, exit 2', async () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ format: 'cosmos-ts tuning 1', adapter: 'x', matmul: { square: { version: 'v9' } } }));
    const r = await runCli('--tuning', bad, 'check-ops', '--op', 'rope');
    expect([r.rc, r.errLines.length]).toEqual([2, 1]);
    expect(r.err).toMatch(/^error: --tuning .*bad\.json: not a cosmos-ts tuning table: "matmul\.square\.version" must be one of .*; got "v9"/);

    writeFileSync(bad, '{ not json');
    const notJson = await runCli('check-ops', '--op', 'rope', '--tuning', bad);
    expect([notJson.rc, notJson.errLines.length]).toEqual([2, 1]);
    expect(notJson.err).toMatch(/^error: .*bad\.json: tuning table is not valid JSON/);

    const missing = await runCli('check-ops', '--op', 'rope', '--tuning', join(tmp, 'nope.json'));
    expect([missing.rc, missing.errLines.length]).toEqual([2, 1]);
    expect(missing.err).toMatch(/^error: --tuning .*nope\.json: /);

    const same = await runCli('tune', '--quick', '--tuning', table, '--out', table);
    expect([same.rc, same.errLines.length]).toEqual([2, 1]);
    expect(same.err).toMatch(/^error: --out .*tuning\.json: is the same file as --tuning .*tuning\.json; refusing to overwrite an input$/);

    const empty = await runCli('check-ops', '--op', 'rope', '--tuning');
    expect([empty.rc, empty.errLines.length]).toEqual([2, 1]);
    expect(empty.err).toMatch(/^error: --tuning: missing its value/);
  }, 60_000);
});
