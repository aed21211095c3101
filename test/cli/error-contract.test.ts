// The one error contract of the command line, over ~40 different mistakes across the commands
// (bad flag values, unknown flags, missing flags, contradicting flags, missing files, bad model
// folders and configs, files that are not what they should be): each exits 2 with exactly one
// stderr line besides notes, `error: <what>: <why>` where <what> names the flag, file or field,
// no usage dump, no stack, and fast (all refused before any real work). A bug is an internal
// error instead: exit 1, one line that says how to get the stack (COSMOS_DEBUG=1), which then
// comes before it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/cli/command.js';
import { DEBUG_HINT, reportError } from '../../src/cli/main.js';
import { runCli } from './run-cli.js';

// an injected bug: `devices` throws a TypeError (no command has a natural one to trigger)
vi.mock('../../src/cli/devices.js', async () => {
  const { defineCommand } = await import('../../src/cli/command.js');
  return {
    command: defineCommand({
      name: 'devices', summary: 'stub', description: 'stub', flags: {},
      run: async () => {
        const o = undefined as unknown as { x: number };
        return o.x;
      },
    }),
  };
});

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-error-contract-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const CV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-cv4x8x8');
const CLIP = nodePath.join(WEIGHTS, 'samples', 'sample_0.y4m');
const p = (name: string) => nodePath.join(tmp, name);

beforeAll(async () => {
  mkdirSync(p('empty-model'));
  mkdirSync(p('bad-config'));
  writeFileSync(p('bad-config/config.json'), '{ "this is": not json');
  mkdirSync(p('wrong-config'));
  writeFileSync(p('wrong-config/config.json'), JSON.stringify({ _class_name: 'SomethingElse' }));
  writeFileSync(p('not-tokens.safetensors'), 'hello, not a safetensors file');
  writeFileSync(p('short.safetensors'), new Uint8Array([1, 2, 3]));
  writeFileSync(p('not-json.json'), 'nope');
  writeFileSync(p('spec-array.json'), '[]');
  writeFileSync(p('clip.txt'), 'a text file');
  // the command modules load once (imports, not work) before anything is timed
  for (const c of ['tokenize', 'detokenize', 'roundtrip', 'text2world', 'video2world', 'transfer', 'reason', 'ar-video2world', 'conform', 'inspect', 'demo']) {
    await runCli(c, '--help');
  }
}, 60_000);

const TOK = (...more: string[]) => ['tokenize', '--model', CV, '--input', CLIP, '--out', p('t.safetensors'), '--backend', 'cpu', ...more];
const RT = (...more: string[]) => ['roundtrip', '--model', CV, '--input', CLIP, '--out', p('r.y4m'), '--backend', 'cpu', ...more];
const T2W = (...more: string[]) => ['text2world', '--model', p('no-model'), '--prompt', 'x', '--out', p('o.y4m'), ...more];
const V2W = (...more: string[]) => ['video2world', '--model', p('no-model'), '--input', CLIP, '--prompt', 'x', '--out', p('o.y4m'), ...more];
const REASON = (...more: string[]) => ['reason', '--model', p('no-model'), '--prompt', 'x', '--backend', 'cpu', ...more];
const AR = (...more: string[]) => ['ar-video2world', '--model', p('no-model'), '--tokenizer', CV, '--input', CLIP, '--out', p('o.y4m'), ...more];

/** argv, and what the line must name (the text between `error: ` and the first `: `). */
const TABLE: [string[], string | RegExp][] = [
  [TOK('--chunk', '0'), '--chunk'],
  [TOK('--chunk', 'many'), '--chunk'],
  [TOK('--chunk', '-4'), '--chunk'],
  [TOK('--chunk', '1.5'), '--chunk'],
  [TOK('--bogus'), '--bogus'],
  [['tokenize', '--model', CV], '--input, --out'],
  [TOK('--backend', 'tpu'), '--backend'],
  [TOK('--fps', 'fast'), '--fps'],
  [TOK('--release', 'CV8x8x8', '--out'), '--out'],
  [['tokenize', '--model', p('empty-model'), '--input', CLIP, '--out', p('t.safetensors'), '--backend', 'cpu'], /empty-model/],
  [['tokenize', '--model', p('bad-config'), '--input', CLIP, '--out', p('t.safetensors'), '--backend', 'cpu'], /bad-config/],
  [['tokenize', '--model', p('wrong-config'), '--input', CLIP, '--out', p('t.safetensors'), '--backend', 'cpu'], /wrong-config|_class_name/],
  [['tokenize', '--model', p('no-such-model'), '--input', CLIP, '--out', p('t.safetensors'), '--backend', 'cpu'], /no-such-model/],
  [RT('--plan=yes'), '--plan'],
  [RT('leftover'), 'leftover'],
  [RT('-1'), '-1'],
  [RT('--chroma', '422'), '--chroma'],
  [RT('--range', 'tv'), '--range'],
  [['detokenize', '--tokens', p('none.safetensors'), '--out', p('d.y4m'), '--backend', 'cpu'], /none\.safetensors/],
  [['detokenize', '--tokens', p('not-tokens.safetensors'), '--out', p('d.y4m'), '--backend', 'cpu'], /not-tokens\.safetensors/],
  [['detokenize', '--tokens', p('short.safetensors'), '--out', p('d.y4m'), '--backend', 'cpu'], /short\.safetensors/],
  [['detokenize', '--out', p('d.y4m')], '--tokens'],
  [T2W('--seed', 'abc'), '--seed'],
  [T2W('--seed', '-1'), '--seed'],
  [T2W('--guidance', '-0.5'), '--guidance'],
  [T2W('--steps', '0'), '--steps'],
  [T2W('--embeddings', p('e.safetensors')), '--embeddings'],
  [['text2world', '--model', p('no-model'), '--prompt', 'x'], '--out'],
  [['text2world', '--model', p('no-model'), '--out', p('o.y4m')], '--prompt'],
  [['text2world', '--model', p('no-model'), '--embeddings', p('e.safetensors'), '--embeddings-out', p('f.safetensors'), '--out', p('o.y4m')], '--embeddings-out'],
  [T2W('--fps', '0'), '--fps'],
  [T2W('--backend', 'cpu'), /no-model/],
  [V2W('--input-fps', 'fast'), '--input-fps'],
  [V2W('--cond-frames', '0'), '--cond-frames'],
  [REASON('--top-p', '1.5'), '--top-p'],
  [REASON('--temperature', '-1'), '--temperature'],
  [REASON('--max-new-tokens', '0'), '--max-new-tokens'],
  [REASON(), /no-model/],
  [AR('--temperature', '-0.1'), '--temperature'],
  [AR('--seed', '-3'), '--seed'],
  [['transfer', '--spec', p('none.json')], /none\.json/],
  [['transfer', '--spec', p('not-json.json')], /not-json\.json/],
  [['transfer', '--spec', p('spec-array.json')], /spec-array\.json|<root>|spec/],
  [['conform'], '<case-dir>'],
  [['conform', '--backend', 'gpu'], '--backend'],
  [['conform', p('empty-model'), '--backend', 'cpu'], /empty-model/],
  [['demo', '--backend', 'metal'], '--backend'],
  [['devices', '--require=yes'], '--require'],
  [['inspect', p('nothing-here')], /nothing-here/],
  [['inspect', p('clip.txt')], /clip\.txt/],
  [['frobnicate'], 'frobnicate'],
  [[], 'command'],
];

describe('every user error: exit 2, one line `error: <what>: <why>`, nothing else', () => {
  const t0 = performance.now();
  it.each(TABLE.map(([argv, what], i) => ({ i, argv, what })))('#$i $argv', async ({ argv, what }) => {
    const r = await runCli(...argv);
    expect(r.rc, r.err).toBe(2);
    const lines = r.errLines.flatMap((l) => l.split('\n')).filter((l) => !l.startsWith('note: '));
    expect(lines, r.err).toHaveLength(1);
    const line = lines[0];
    if (process.env.SHOW_LINES) console.log(line);
    expect(line).toMatch(/^error: [^:]+: \S/);
    const named = line.slice('error: '.length, line.indexOf(': ', 'error: '.length));
    if (typeof what === 'string') expect(named, line).toBe(what);
    else expect(line.slice('error: '.length), line).toMatch(what);
    expect(r.err).not.toMatch(/^usage:|^\s+at /m);
    expect(r.err).not.toMatch(/RangeError|TypeError|ENOENT|EISDIR|errno/);
  });
  it('all of them in a few seconds: refused before any model ran', () => {
    expect((performance.now() - t0) / 1000).toBeLessThan(30);
  });
  it('is a table of at least 40 mistakes', () => expect(TABLE.length).toBeGreaterThanOrEqual(40));
});

describe('an internal error: exit 1, says it is a bug and how to get the stack', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('one line, the stack only with COSMOS_DEBUG=1 (before the line)', async () => {
    vi.stubEnv('COSMOS_DEBUG', '');
    const r = await runCli('devices');
    expect(r.rc).toBe(1);
    expect(r.errLines).toHaveLength(1);
    expect(r.errLines[0]).toMatch(/^internal error: TypeError: .+ \(a bug in cosmos-ts; run with COSMOS_DEBUG=1 for the stack\)$/);
    vi.stubEnv('COSMOS_DEBUG', '1');
    const d = await runCli('devices');
    expect(d.rc).toBe(1);
    expect(d.err).toMatch(/^\s+at /m);
    expect(d.errLines.at(-1)).toMatch(/^internal error: TypeError: /);
  });

  it('reportError: user errors 2, bugs 1, a multi-line message kept on one line', () => {
    const lines: string[] = [];
    const io = { out: () => undefined, write: () => undefined, err: (l: string) => void lines.push(l), interactive: false };
    expect(reportError(new RangeError('Invalid typed array length: 1\nmore'), io, false)).toBe(1);
    expect(reportError(new UsageError('--x: must be a number\n  got "y"'), io, false)).toBe(2);
    expect(lines).toEqual([`internal error: RangeError: Invalid typed array length: 1; more (${DEBUG_HINT})`, 'error: --x: must be a number; got "y"']);
  });
});
