// Pre-flight, the flag half: a bad flag value (a negative seed, zero steps, a non-number), an
// unknown flag, a missing value, two flags that contradict, a flag that only means something with
// another: each is refused in the argument parser, before the command touches any file (the
// model folder is never opened: a recording file system sees no path at all), one line naming the
// flag, exit status 2. Negative numbers are values of the flag before them (`--seed -1` is the
// seed -1, refused by its bound, not "ambiguous"); where no flag takes them they are refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Command, defineCommand, parseCommand } from '../../src/cli/command.js';
import { type FileSystem, setFileSystem } from '../../src/io/files.js';
import { nodeFileSystem } from '../../src/io/node-files.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-preflight-flags-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = nodePath.resolve(import.meta.dirname, '../../weights/cosmos-tokenizer-tiny-cv4x8x8');
const CLIP = nodePath.resolve(import.meta.dirname, '../../weights/samples/sample_0.y4m');
const OUT = nodePath.join(tmp, 'out.y4m');

/** Every path the command asks the file system about (stat, list, open, create, mkdir). */
function touchingFs(): { fs: FileSystem; touched: string[] } {
  const touched: string[] = [];
  const inner = nodeFileSystem;
  const seen = <A extends unknown[], R>(f: (p: string, ...rest: A) => R) => (p: string, ...rest: A): R => {
    touched.push(p);
    return f(p, ...rest);
  };
  const fs: FileSystem = {
    ...inner,
    stat: seen(inner.stat),
    list: seen(inner.list),
    open: seen(inner.open),
    create: seen(inner.create),
    mkdir: seen(inner.mkdir),
  };
  return { fs, touched };
}

// the command modules load once (seconds of imports, not work) before anything is timed
beforeAll(async () => {
  for (const c of ['text2world', 'tokenize', 'reason', 'ar-video2world', 'transfer']) await runCli(c, '--help');
}, 60_000);

let rec: ReturnType<typeof touchingFs>;
beforeEach(() => {
  rec = touchingFs();
  setFileSystem(rec.fs);
});
afterEach(() => setFileSystem(nodeFileSystem));

const T2W = ['text2world', '--model', MODEL, '--prompt', 'a cat', '--out', OUT];
const TOK = ['tokenize', '--model', MODEL, '--input', CLIP, '--out', nodePath.join(tmp, 't.safetensors')];

const CASES: { argv: string[]; flag: string; why: RegExp }[] = [
  { argv: [...T2W, '--seed', '-1'], flag: '--seed', why: /must be an integer >= 0; got "-1"/ },
  { argv: [...T2W, '--seed', 'abc'], flag: '--seed', why: /must be an integer >= 0; got "abc"/ },
  { argv: [...T2W, '--seed', '2.5'], flag: '--seed', why: /got "2\.5"/ },
  { argv: [...T2W, '--seed', '99999999999999999999'], flag: '--seed', why: /must be an integer/ },
  { argv: [...T2W, '--steps', '0'], flag: '--steps', why: /must be an integer >= 1; got "0"/ },
  { argv: [...T2W, '--steps', 'ten'], flag: '--steps', why: /got "ten"/ },
  { argv: [...T2W, '--guidance', '-0.5'], flag: '--guidance', why: /must be a number >= 0; got "-0\.5"/ },
  { argv: [...T2W, '--guidance', 'NaN'], flag: '--guidance', why: /got "NaN"/ },
  { argv: [...T2W, '--fps', '-inf'], flag: '--fps', why: /must be a number > 0; got "-inf"/ },
  { argv: [...T2W, '--frames', ''], flag: '--frames', why: /got ""/ },
  { argv: [...T2W, '--embeddings', 'e.safetensors'], flag: '--embeddings', why: /cannot be given with --prompt/ },
  { argv: [...T2W, '--steps'], flag: '--steps', why: /missing its value/ },
  { argv: [...T2W, '--steps', '--seed', '1'], flag: '--steps', why: /missing its value \(got the flag --seed next/ },
  { argv: [...T2W, '--sed', '1'], flag: '--sed', why: /not an option of cosmos-ts text2world \(did you mean --seed\?\)/ },
  { argv: [...T2W, '--json=yes'], flag: '--json', why: /is a switch and takes no value; got "yes"/ },
  { argv: [...T2W, '--json', '-1'], flag: '-1', why: /unexpected argument/ },
  { argv: [...T2W, 'extra'], flag: 'extra', why: /unexpected argument \(cosmos-ts text2world takes flags only/ },
  { argv: [...T2W, '--backend', 'tpu'], flag: '--backend', why: /must be one of auto, webgpu, cpu; got "tpu"/ },
  { argv: [...TOK, '--chunk', '-4'], flag: '--chunk', why: /must be an integer >= 1; got "-4"/ },
  { argv: [...TOK, '--frames', '9'], flag: '--frames', why: /only means something with --plan/ },
  { argv: [...TOK, '--json'], flag: '--json', why: /only means something with --plan/ },
  { argv: ['reason', '--model', MODEL, '--prompt', 'x', '--top-p', '1.5'], flag: '--top-p', why: /must be a number > 0 and <= 1; got "1\.5"/ },
  { argv: ['reason', '--model', MODEL, '--prompt', 'x', '--temperature', '-1'], flag: '--temperature', why: /got "-1"/ },
  { argv: ['reason', '--model', MODEL, '--prompt', 'x', '--min-pixels', '100', '--max-pixels', '10'], flag: '--min-pixels', why: /100 is larger than --max-pixels 10/ },
  { argv: ['reason', '--model', MODEL, '--prompt', 'x', '--fps', '2'], flag: '--fps', why: /give it with --video/ },
  { argv: ['ar-video2world', '--model', MODEL, '--tokenizer', MODEL, '--input', CLIP, '--out', OUT, '--seed', '-3'], flag: '--seed', why: /got "-3"/ },
  { argv: ['transfer', '--spec', 'spec.json', '--prompt', 'x', '--embeddings', 'e.safetensors'], flag: '--embeddings', why: /cannot be given with --prompt/ },
];

describe('a bad flag is refused before any file is touched: one line naming it, exit 2', () => {
  it.each(CASES)('$flag: $argv', async ({ argv, flag, why }) => {
    const t0 = performance.now();
    const r = await runCli(...argv);
    const ms = performance.now() - t0;
    expect(r.rc, r.err).toBe(2);
    expect(r.errLines).toHaveLength(1);
    const line = r.errLines[0];
    expect(line.startsWith(`error: ${flag}: `), line).toBe(true);
    expect(line).toMatch(why);
    expect(r.out).toBe('');
    expect(rec.touched, 'the command touched files').toEqual([]);
    expect(ms).toBeLessThan(500);
  });
});

describe('negative numbers', () => {
  const c = defineCommand({
    name: 't',
    summary: '',
    description: '',
    flags: {
      n: { type: 'number', help: '' },
      i: { type: 'integer', help: '' },
      s: { type: 'string', help: '' },
      on: { type: 'boolean', help: '' },
    },
    run: async () => undefined,
  }) as Command;

  it('bind as the value of the flag before them, whatever its type', () => {
    expect(parseCommand(c, ['--n', '-0.5', '--i', '-1', '--s', '-2']).flags).toMatchObject({ n: -0.5, i: -1, s: '-2' });
    expect(parseCommand(c, ['--n', '-1e-3']).flags.n).toBe(-1e-3);
    expect(parseCommand(c, ['--n', '-.5']).flags.n).toBe(-0.5);
    expect(parseCommand(c, ['--n=-3']).flags.n).toBe(-3);
    expect(parseCommand(c, ['--s', '-']).flags.s).toBe('-');
  });

  it('are refused where no value is expected, and -inf is no finite number', () => {
    expect(() => parseCommand(c, ['--on', '-1'])).toThrow(/^-1: unexpected argument/);
    expect(() => parseCommand(c, ['-1'])).toThrow(/^-1: unexpected argument/);
    expect(() => parseCommand(c, ['--n', '-inf'])).toThrow(/^--n: must be a number; got "-inf"/);
  });

  it('a value that merely starts with a dash is still read as a missing value, with the way out', () => {
    expect(() => parseCommand(c, ['--s', '-x'])).toThrow("--s: missing its value (got the flag -x next; a value starting with '-' is written --s=-x)");
    expect(parseCommand(c, ['--s=-x']).flags.s).toBe('-x');
  });
});
