// `cosmos-ts inspect` and the command dispatch of main: the table, --json, a broken file as one
// error line with exit status 2, usage errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const fixture = nodePath.resolve(import.meta.dirname, '../fixtures/ar/bf16_forward/model.safetensors');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-inspect-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('inspect command', () => {
  it('lists tensors, totals and config', async () => {
    const r = await runCli('inspect', fixture);
    expect(r.rc).toBe(0);
    expect(r.out).toMatch(/tok_embeddings\.weight\s+BF16\s+\[1024, 64\]\s+131,072/);
    expect(r.out).toMatch(/total: 36 tensors, 527,424 bytes .* 263,712 params/);
    expect(r.out).toMatch(/config\.json/);
    expect(r.errLines).toEqual([]);
  });

  it('--json', async () => {
    const r = await runCli('inspect', fixture, '--json');
    expect(r.rc).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.total).toEqual({ count: 36, bytes: 527424, params: 263712 });
    expect(j.config).not.toBeNull();
  });

  it('a truncated file: exit 2 (a user error) and exactly one error line', async () => {
    const p = nodePath.join(tmp, 'trunc.safetensors');
    writeFileSync(p, readFileSync(fixture).subarray(0, 5000));
    const r = await runCli('inspect', p);
    expect(r.rc).toBe(2);
    expect(r.errLines.length).toBe(1);
    expect(r.errLines[0]).toMatch(/^error: .*trunc\.safetensors: tensor ".*": data_offsets .* run past the end/);
    expect(r.errLines[0]).not.toMatch(/\n|at .*\.ts/);
  });

  it('usage errors and main dispatch', async () => {
    const none = await runCli('inspect');
    expect(none.rc).toBe(2);
    expect(none.errLines[0]).toMatch(/^error: <release folder \| file\.safetensors.*: missing/);
    const bogus = await runCli('inspect', fixture, '--bogus');
    expect(bogus.rc).toBe(2);
    expect(bogus.errLines).toEqual(["error: --bogus: not an option of cosmos-ts inspect (run 'cosmos-ts inspect --help' for the options)"]);
    const help = await runCli('inspect', '--help');
    expect(help.rc).toBe(0);
    expect(help.out).toMatch(/^usage: cosmos-ts inspect/);
    expect((await runCli('nope')).rc).toBe(2);
    expect((await runCli('--help')).rc).toBe(0);
    expect((await runCli()).rc).toBe(2);
    const absent = await runCli('inspect', nodePath.join(tmp, 'absent.safetensors'));
    expect(absent.rc).toBe(2);
    expect(absent.errLines).toEqual([expect.stringMatching(/^error: .*absent\.safetensors: no such file or folder; expected <release folder/)]);
  });
});
