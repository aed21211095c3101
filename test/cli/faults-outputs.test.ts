// Faults of outputs, on the command line: an --out that is a symbolic link, a FIFO, a socket or a
// folder; a missing or read-only folder, a parent that is a file; an output that is an input
// however it is spelled (./x, a symlink, a hard link, a PNG folder as both); --sheet / --png onto
// an input; two outputs onto one file. Each is refused before any model is opened (no file read
// through the file system, well under a second), exit 2, one line `error: <flag> <path>: ...`,
// no stack, the inputs byte-identical and no temporary file left. A PNG-folder output whose third
// frame fails to write (a disk filling up) leaves no folder and the previous output as it was.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileError, type FileSystem, setFileSystem } from '../../src/io/files.js';
import { nodeFileSystem, writeProblem } from '../../src/io/node-files.js';
import { writePngFrames } from '../../src/io/png-frames.js';
import { cropVideo, sliceFrames } from '../../src/io/video.js';
import { readY4m, writeY4m } from '../../src/io/y4m.js';
import { checkPaths } from '../../src/cli/preflight.js';
import { transferSpecJson, writeTransferFolder } from '../pipelines/world-fixtures.js';
import { recordingFs } from '../recording-fs.js';
import { runCli as run } from './run-cli.js';

const WEIGHTS = nodePath.resolve(import.meta.dirname, '../../weights');
const CV = nodePath.join(WEIGHTS, 'cosmos-tokenizer-tiny-cv4x8x8');
const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-faults-outputs-'));
const input = nodePath.join(tmp, 'in.y4m');
const frames = nodePath.join(tmp, 'frames');
const other = nodePath.join(tmp, 'other.safetensors');
const rec = recordingFs(nodeFileSystem);

beforeAll(async () => {
  // a small clip (9 frames of 16x16) as a .y4m and as a folder of PNG frames
  const clip = cropVideo(sliceFrames(await readY4m(nodePath.join(WEIGHTS, 'samples/sample_0.y4m')), 0, 9), 9, 16, 16);
  await writeY4m(input, clip);
  await writePngFrames(frames, clip);
  writeFileSync(other, 'a file that an output must not replace through a link');
  // the command modules are imported once here, so that each refusal below is timed alone
  for (const c of ['tokenize', 'roundtrip', 'detokenize']) expect((await run(c, '--help')).rc).toBe(0);
  setFileSystem(rec.fs);
});
afterAll(() => {
  setFileSystem(nodeFileSystem);
  rmSync(tmp, { recursive: true, force: true });
});

/** sha256 of a file, or of a folder's names and files. */
function digest(path: string): string {
  const h = createHash('sha256');
  const st = statSync(path);
  if (st.isDirectory()) for (const n of readdirSync(path).sort()) h.update(`${n}\0${digest(nodePath.join(path, n))}`);
  else h.update(readFileSync(path));
  return h.digest('hex');
}

/** Temporary entries (ours end in .tmp) anywhere under the test folder. */
function temporaries(dir = tmp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = nodePath.join(dir, d.name);
    return [...(/\.tmp$/.test(d.name) ? [p] : []), ...(d.isDirectory() && !d.isSymbolicLink() ? temporaries(p) : [])];
  });
}

/**
 * Run a command that must be refused before it opens anything: exit 2, one line `error:` that
 * names `flag` and `path`, no stack, `guarded` unchanged, nothing left behind, nothing read
 * through the file system (so no model opened), in well under a second. Returns the line.
 */
async function refused(args: string[], flag: string, path: string, guarded: string[] = []): Promise<string> {
  const before = [input, frames, ...guarded].map(digest);
  const reads = rec.reads.length;
  const t0 = performance.now();
  const r = await run(...args);
  const ms = performance.now() - t0;
  expect(r.rc, r.err).toBe(2);
  expect(r.errLines).toHaveLength(1);
  const line = r.errLines[0];
  expect(line.startsWith(`error: ${flag} `), line).toBe(true);
  expect(line).toContain(path);
  expect(r.err).not.toMatch(/^ {4}at /m);
  expect(line).not.toMatch(/\.tmp\b/);
  expect([input, frames, ...guarded].map(digest)).toEqual(before);
  expect(temporaries()).toEqual([]);
  expect(rec.reads.length - reads, 'a file was read: the model was opened before the refusal').toBe(0);
  expect(ms).toBeLessThan(1000);
  return line;
}

const tokenize = (out: string, inp = input) => ['tokenize', '--model', CV, '--input', inp, '--out', out, '--backend', 'cpu'];
const roundtrip = (inp: string, out: string, ...more: string[]) => ['roundtrip', '--model', CV, '--input', inp, '--out', out, '--backend', 'cpu', ...more];

describe('--out that an output may not replace', () => {
  it('a symbolic link to a file: refused, the link and its target left as they were', async () => {
    const link = nodePath.join(tmp, 'link.safetensors');
    symlinkSync(other, link);
    expect(await refused(tokenize(link), '--out', link, [other])).toMatch(/exists and is a symbolic link; refusing to replace it$/);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('a FIFO', async () => {
    const fifo = nodePath.join(tmp, 'fifo.safetensors');
    execFileSync('mkfifo', [fifo]);
    expect(await refused(tokenize(fifo), '--out', fifo)).toMatch(/exists and is a FIFO \(named pipe\); refusing to replace it$/);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });

  it('a socket (a special file of its own; a device is refused the same way, not tried here: on a regression it would be replaced)', async () => {
    const sock = nodePath.join(tmp, 'sock.safetensors');
    const server = createServer().listen(sock);
    await once(server, 'listening');
    try {
      expect(await refused(tokenize(sock), '--out', sock)).toMatch(/exists and is a socket; refusing to replace it$/);
      expect(lstatSync(sock).isSocket()).toBe(true);
    } finally {
      server.close();
    }
  });

  it('a device: the check refuses it (called directly: it writes nothing, so a regression cannot replace the device)', async () => {
    // the first of these that is a device here (a process on a shared machine may have replaced one)
    const device = ['/dev/null', '/dev/zero', '/dev/full'].find((p) => lstatSync(p, { throwIfNoEntry: false })?.isCharacterDevice());
    expect(device).toBeDefined();
    await expect(checkPaths({ inputs: [], outputs: [{ path: device!, what: '--out', kind: 'file' }] })).rejects.toThrow(
      `--out ${device}: exists and is a character device; refusing to replace it`,
    );
    expect(lstatSync(device!).isCharacterDevice()).toBe(true);
  });

  it('an existing folder where a file goes', async () => {
    const dir = nodePath.join(tmp, 'a-folder.safetensors');
    mkdirSync(dir);
    expect(await refused(tokenize(dir), '--out', dir)).toMatch(/is a folder; expected a file$/);
    const y4m = nodePath.join(tmp, 'a-folder.y4m');
    mkdirSync(y4m);
    expect(await refused(roundtrip(input, y4m), '--out', y4m)).toMatch(/is a folder; a \.y4m or \.png output is a file$/);
  });

  it('a folder of PNG frames that holds other files is not replaced', async () => {
    const dir = nodePath.join(tmp, 'mixed');
    mkdirSync(dir);
    writeFileSync(nodePath.join(dir, 'frame_000000.png'), 'x');
    writeFileSync(nodePath.join(dir, 'notes.txt'), 'mine');
    expect(await refused(roundtrip(input, nodePath.join(tmp, 'r.y4m'), '--png', dir), '--png', dir, [dir])).toMatch(/holds "notes\.txt" .*not only numbered PNG frames; refusing to replace it$/);
  });
});

describe('--out where nothing can be written', () => {
  it('a missing folder', async () => {
    const out = nodePath.join(tmp, 'no-such-folder', 't.safetensors');
    expect(await refused(tokenize(out), '--out', out)).toMatch(/the folder .*no-such-folder does not exist$/);
  });

  it('a parent that is a file', async () => {
    const out = nodePath.join(input, 't.safetensors');
    expect(await refused(tokenize(out), '--out', out)).toMatch(/in\.y4m is not a folder$/);
  });

  it('a folder that cannot be written (sysfs refuses new files, to root too)', async () => {
    const out = '/sys/cosmos-faults-test.safetensors';
    expect(await refused(tokenize(out), '--out', out)).toMatch(/the folder \/sys (is not writable \(permission denied\)|is on a read-only file system)$/);
  });

  it('a read-only folder (chmod 0555) is refused, unless the user may write it anyway (root)', async () => {
    const dir = nodePath.join(tmp, 'read-only');
    mkdirSync(dir, { mode: 0o555 });
    const out = nodePath.join(dir, 't.safetensors');
    let canWrite = true;
    try {
      writeFileSync(nodePath.join(dir, 'probe'), '');
      rmSync(nodePath.join(dir, 'probe'));
    } catch {
      canWrite = false;
    }
    // what the check says agrees with what writing there does, for this user
    if (!canWrite) expect(await refused(tokenize(out), '--out', out)).toMatch(/is not writable \(permission denied\)$/);
    else expect((await run('tokenize', '--model', CV, '--input', input, '--out', out, '--backend', 'cpu')).rc).toBe(0);
    expect(temporaries()).toEqual([]);
  });
});

describe('an input that is not a file or a folder', () => {
  it('a FIFO as --input is refused at once (opening it would wait for a writer forever)', async () => {
    const fifo = nodePath.join(tmp, 'in-fifo.y4m');
    execFileSync('mkfifo', [fifo]);
    expect(await refused(tokenize(nodePath.join(tmp, 'never.safetensors'), fifo), '--input', fifo)).toMatch(/is a FIFO \(named pipe\); expected a regular file or a folder$/);
  });

  it('the library refuses to open one too (a FIFO named inside a spec or a folder)', async () => {
    const fifo = nodePath.join(tmp, 'lib-fifo.bin');
    execFileSync('mkfifo', [fifo]);
    await expect(nodeFileSystem.open(fifo)).rejects.toThrow(/lib-fifo\.bin: cannot open: is a FIFO \(named pipe\); expected a regular file$/);
  });
});

describe('an output that is an input', () => {
  it('tokenize --out the input clip, in four spellings: same path, ./path, a symbolic link, a hard link', async () => {
    const dotted = `./${nodePath.relative(process.cwd(), input)}`;
    const link = nodePath.join(tmp, 'link-to-input.y4m');
    symlinkSync(input, link);
    const hard = nodePath.join(tmp, 'hard-link-to-input.y4m');
    linkSync(input, hard);
    for (const out of [input, dotted, link, hard]) {
      expect(await refused(tokenize(out), '--out', out)).toMatch(/is the same file as --input .*in\.y4m; refusing to overwrite an input$/);
    }
    // the same through roundtrip (a video output)
    expect(await refused(roundtrip(input, dotted), '--out', dotted)).toMatch(/is the same file as --input/);
    expect(await refused(roundtrip(link, input), '--out', input)).toMatch(/is the same file as --input .*link-to-input\.y4m/);
  });

  it('a PNG folder given as the input and the output', async () => {
    expect(await refused(roundtrip(frames, frames), '--out', frames)).toMatch(/is the same folder as --input .*frames; refusing to overwrite an input$/);
  });

  it('--sheet onto the input clip, --png onto the input folder', async () => {
    const out = nodePath.join(tmp, 'rec.y4m');
    expect(await refused(roundtrip(input, out, '--sheet', input), '--sheet', input)).toMatch(/is the same file as --input/);
    expect(await refused(roundtrip(frames, out, '--png', frames), '--png', frames)).toMatch(/is the same folder as --input/);
    // a frame of an input folder, or a file of the model folder, is an input too
    const frame0 = nodePath.join(frames, 'frame_000000.png');
    expect(await refused(roundtrip(frames, out, '--sheet', frame0), '--sheet', frame0)).toMatch(/is frame_000000\.png, read from --input/);
    const weights = nodePath.join(CV, 'config.json');
    expect(await refused(tokenize(weights), '--out', weights, [weights])).toMatch(/is config\.json, read from --model/);
  });

  it('an output inside the input folder is fine', async () => {
    const rec2 = nodePath.join(frames, 'rec.safetensors');
    const r = await run(...tokenize(rec2, frames), '--fps', '8');
    expect(r.rc, r.err).toBe(0);
    rmSync(rec2);
  });
});

describe('two outputs onto one file', () => {
  it('--out and --sheet, --out and --png (any spelling)', async () => {
    const out = nodePath.join(tmp, 'both.png');
    const dotted = `./${nodePath.relative(process.cwd(), out)}`;
    // (a .png --out holds one frame; the paths are refused before that matters)
    expect(await refused(roundtrip(input, out, '--sheet', dotted), '--sheet', dotted)).toMatch(/is the same file as --out .*both\.png; give each output its own path$/);
    const dir = nodePath.join(tmp, 'rec-frames');
    mkdirSync(dir);
    expect(await refused(roundtrip(input, dir, '--png', `${dir}/`), '--png', `${dir}/`)).toMatch(/is the same folder as --out .*rec-frames; give each output its own path$/);
    expect(await refused(roundtrip(input, dir, '--sheet', nodePath.join(dir, 'sheet.png')), '--sheet', 'sheet.png')).toMatch(/is inside the folder --out .*rec-frames, which is written as a whole/);
  });
});

it('paths a command learns later (a transfer spec) are checked the same way (checkPaths)', async () => {
  const spec = nodePath.join(tmp, 'spec.json');
  writeFileSync(spec, '{}');
  const control = { path: input, what: `${spec} "controls.edge.input_control"` };
  await expect(checkPaths({ inputs: [control], outputs: [{ path: `./${nodePath.relative(process.cwd(), input)}`, what: `${spec} "output"`, kind: 'file-or-folder' }] })).rejects.toThrow(
    new RegExp(`^${spec} "output" \\./.*in\\.y4m: is the same file as ${spec} "controls\\.edge\\.input_control" .*in\\.y4m; refusing to overwrite an input$`),
  );
  await expect(checkPaths({ inputs: [{ path: nodePath.join(tmp, 'edge.y4m'), what: `${spec} "controls.edge.input_control"` }], outputs: [] })).rejects.toThrow(
    /"controls\.edge\.input_control" .*edge\.y4m: no such file or folder$/,
  );
  await expect(checkPaths({ inputs: [control], outputs: [{ path: nodePath.join(tmp, 'out'), what: '--out', kind: 'file-or-folder' }, { path: nodePath.join(tmp, 'out'), what: '--latents-out', kind: 'file' }] })).rejects.toThrow(
    /^--latents-out .*out: is the same path as --out .*out; give each output its own path$/,
  );
});

it('transfer: the spec\'s output and the output flags may not be a file the spec reads; refused before any weight is read', async () => {
  const dir = nodePath.join(tmp, 'transfer');
  mkdirSync(dir);
  await writeTransferFolder(dir);
  const spec = nodePath.join(dir, 'spec-out.json');
  writeFileSync(spec, JSON.stringify({ ...transferSpecJson(), output: 'depth.y4m' }));
  const guarded = ['depth.y4m', 'edge.y4m', 'edge_weight.safetensors', 'transformer'].map((n) => nodePath.join(dir, n));
  const weightsRead = () => rec.reads.filter((r) => /\.safetensors$/.test(r.path) && !r.path.endsWith('prompt.safetensors')).length;
  const cases: [string[], RegExp][] = [
    [[], new RegExp(`^error: ${spec} "output" .*depth\\.y4m: is the same file as ${spec} "controls\\.depth\\.input_control"`)],
    [['--out', nodePath.join(dir, 'ok.y4m'), '--latents-out', nodePath.join(dir, 'edge_weight.safetensors')], /^error: --latents-out .*edge_weight\.safetensors: is the same file as .*"controls\.edge\.control_weight"/],
    [['--out', nodePath.join(dir, 'edge.y4m')], /^error: --out .*edge\.y4m: is the same file as .*"controls\.edge\.input_control"/],
    [['--out', nodePath.join(dir, 'ok.y4m'), '--latents-out', nodePath.join(dir, 'transformer', 'config.json')], /^error: --latents-out .*config\.json: is config\.json, read from .*"base_checkpoint"/],
  ];
  for (const [more, want] of cases) {
    const before = guarded.map(digest);
    const reads = weightsRead();
    const r = await run('transfer', '--spec', spec, '--backend', 'cpu', ...more);
    expect(r.rc, r.err).toBe(2);
    expect(r.errLines.at(-1)).toMatch(want);
    expect(r.err).not.toMatch(/^ {4}at /m);
    expect(guarded.map(digest)).toEqual(before);
    expect(weightsRead()).toBe(reads);
    expect(temporaries()).toEqual([]);
  }
});

describe('a PNG-folder output that fails part way', () => {
  /** The Node file system, except that the `n`th file created below a folder named `under` fails as a full disk would. */
  function fullAfter(n: number, under: string): FileSystem {
    let count = 0;
    return {
      ...nodeFileSystem,
      async create(path) {
        const out = await nodeFileSystem.create(path);
        if (!path.includes(under) || ++count < n) return out;
        return {
          ...out,
          async write() {
            await out.abort();
            throw new FileError(path, writeProblem(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }), path));
          },
        };
      },
    };
  }

  it('leaves no folder, the previous output as it was, and names the output (never the temporary folder)', async () => {
    const previous = nodePath.join(tmp, 'previous-frames');
    await writePngFrames(previous, cropVideo(await readY4m(input), 9, 8, 8));
    const before = digest(previous);
    const fresh = nodePath.join(tmp, 'fresh-frames');
    for (const [flag, target] of [['--png', previous], ['--out', fresh], ['--out', previous]] as const) {
      setFileSystem(fullAfter(3, target === previous ? '.previous-frames.' : '.fresh-frames.'));
      const args = flag === '--png' ? roundtrip(input, nodePath.join(tmp, 'ok.y4m'), '--png', target) : roundtrip(input, target);
      let r: Awaited<ReturnType<typeof run>>;
      try {
        r = await run(...args);
      } finally {
        setFileSystem(rec.fs);
      }
      expect(r.rc, r.err).toBe(2);
      expect(r.errLines.at(-1)).toBe(`error: ${target}/frame_000002.png: cannot write: no space left on the device`);
      expect(r.err).not.toMatch(/\.tmp\b/);
      expect(digest(previous)).toBe(before);
      expect(() => statSync(fresh)).toThrow();
      expect(temporaries()).toEqual([]);
      rmSync(nodePath.join(tmp, 'ok.y4m'), { force: true });
    }
  });

  it('a run that succeeds replaces a previous PNG-frames output as a whole', async () => {
    const dir = nodePath.join(tmp, 'replaced');
    mkdirSync(dir);
    for (let i = 0; i < 12; i++) writeFileSync(nodePath.join(dir, `frame_${String(i).padStart(6, '0')}.png`), 'old');
    const r = await run(...roundtrip(input, dir));
    expect(r.rc, r.err).toBe(0);
    expect(readdirSync(dir)).toEqual([...Array(9).keys()].map((i) => `frame_00000${i}.png`));
    expect(temporaries()).toEqual([]);
  });
});

it('the writer itself refuses to replace a link (library)', async () => {
  // the same refusal without the command line's preflight: FileSystem.create
  const link = nodePath.join(tmp, 'lib-link.y4m');
  symlinkSync(input, link);
  const before = digest(input);
  await expect(writeY4m(link, await readY4m(input))).rejects.toThrow(/lib-link\.y4m: exists and is a symbolic link; refusing to replace it/);
  expect(digest(input)).toBe(before);
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
  expect(temporaries()).toEqual([]);
});
