// Every path a command names is checked before it opens a model or computes anything: inputs
// exist; an output can be written where it is going (its folder exists, is a folder and takes a
// new file), is not something an output may not replace (a folder where a file goes, a symbolic
// link, a FIFO, a device), is not the same file as any input however it is spelled (same device
// and inode: ./x, a symlink, a hard link, a PNG folder given as input and output), and no two
// outputs of one command are the same file. The writers refuse the same things themselves
// (io/node-files.ts); found here, they cost no encode.
import { constants, promises as fsp, type Stats } from 'node:fs';
import * as nodePath from 'node:path';
import { UserError } from '../engine/errors.js';
import { isPngFrameName } from '../io/png-frames.js';
import { entryKind } from '../io/node-files.js';
import type { Command, FlagSpec, PathRole } from './command.js';

/** A path that cannot be used as given: `<flag> <path>: <problem>` (or `<path>: <problem>`). */
export class PathError extends UserError {
  constructor(
    readonly what: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${what ? `${what} ` : ''}${path}: ${problem}`);
  }
}

export interface PathToCheck {
  path: string;
  /** what names it, e.g. '--input' or 'spec.json "output"'; '' for a positional */
  what: string;
  /** what is expected there, said when it is missing (e.g. a positional's usage) */
  expected?: string;
}

/**
 * What an output is: a file; a video that is a file or a folder of PNG frames by its name
 * (.y4m / .png: a file, as open-video.ts decides); or a folder of PNG frames written as a whole.
 */
export type OutputKind = 'file' | 'file-or-folder' | 'folder';

export interface OutputToCheck extends PathToCheck {
  kind: OutputKind;
}

/** A folder the command creates (with its parents) or adds files to, never replaced as a whole. */
type FillFolder = PathToCheck;

/** How an 'output' flag is written, from its declaration: `<x.y4m | folder>` may be a folder, `<dir>` is one. */
export function outputKindOf(spec: FlagSpec): OutputKind {
  const ph = spec.placeholder ?? '';
  if (/folder/.test(ph)) return 'file-or-folder';
  if (/\bdir>/.test(ph)) return 'folder';
  return 'file';
}

/**
 * Check the paths a command's flags and positionals name (by their `path` roles) before it runs,
 * with the inputs of the global options (--tuning) besides. With --plan nothing is written, so only
 * the inputs are checked.
 */
export async function preflight(command: Command, flags: Record<string, unknown>, positionals: string[], globalInputs: readonly PathToCheck[] = []): Promise<void> {
  const inputs: PathToCheck[] = [...globalInputs];
  const outputs: OutputToCheck[] = [];
  const fills: FillFolder[] = [];
  const planning = flags.plan === true;
  const add = (role: PathRole | undefined, what: string, values: readonly string[], spec?: FlagSpec, expected?: string) => {
    for (const path of values) {
      if (role === 'input') inputs.push({ path, what, ...(expected ? { expected } : {}) });
      else if (planning) continue;
      else if (role === 'output') outputs.push({ path, what, kind: spec ? outputKindOf(spec) : 'file' });
      else if (role === 'output-dir') fills.push({ path, what });
    }
  };
  for (const [name, spec] of Object.entries(command.flags)) {
    const v = flags[name];
    if (!spec.path || v === undefined || v === null || typeof v === 'boolean') continue;
    add(spec.path, `--${name}`, (Array.isArray(v) ? v : [v]).map(String), spec);
  }
  if (command.positionals?.path) add(command.positionals.path, '', positionals, undefined, command.positionals.usage);
  await check(inputs, outputs, fills);
}

/**
 * The same checks for paths a command learns later (e.g. from a spec file): call it after
 * reading them and before loading any model.
 */
export async function checkPaths(p: { inputs: PathToCheck[]; outputs: OutputToCheck[] }): Promise<void> {
  await check(p.inputs, p.outputs, []);
}

// ------------------------------------------------------------------ the checks

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** An input as found on disk, with the files of a folder that a command reads from it. */
interface Found extends PathToCheck {
  st: Stats;
  real: string;
  /** for a folder: the files in it that are read as part of it (frames, weights, configs) */
  files: { name: string; st: Stats }[];
}

/** Files in an input folder that a command reads: frames, checkpoints, configs, tokenizer files. */
const READ_FROM_FOLDER = /\.(safetensors|json|jit|pt|pth|bin|model|txt|tiktoken)$/i;

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;
const named = (x: PathToCheck) => (x.what ? `${x.what} ${x.path}` : x.path);

async function check(inputs: PathToCheck[], outputs: OutputToCheck[], fills: FillFolder[]): Promise<void> {
  const found: Found[] = [];
  for (const i of inputs) found.push(await findInput(i));
  const keys: { o: OutputToCheck; key: string; folder: boolean; st: Stats | null }[] = [];
  for (const o of outputs) {
    const folder = o.kind === 'folder' || (o.kind === 'file-or-folder' && !/\.(y4m|png)$/i.test(o.path));
    const st = folder ? await checkFolderOutput(o, found) : await checkFileOutput(o, found);
    await checkParent(o);
    keys.push({ o, key: await outputKey(o.path), folder, st });
  }
  for (let a = 0; a < keys.length; a++) {
    for (let b = 0; b < keys.length; b++) {
      if (a === b) continue;
      const [x, y] = [keys[a], keys[b]];
      const same = x.key === y.key || (x.st !== null && y.st !== null && sameFile(x.st, y.st));
      const kind = x.folder !== y.folder ? 'path' : y.folder ? 'folder' : 'file';
      if (same && a < b) throw new PathError(y.o.what, y.o.path, `is the same ${kind} as ${named(x.o)}; give each output its own path`);
      if (!same && x.folder && y.key.startsWith(`${x.key}/`)) {
        throw new PathError(y.o.what, y.o.path, `is inside the folder ${named(x.o)}, which is written as a whole; write it elsewhere`);
      }
    }
  }
  for (const f of fills) await checkFill(f);
}

async function findInput(i: PathToCheck): Promise<Found> {
  let st: Stats;
  try {
    st = await fsp.stat(i.path);
  } catch (e) {
    const code = errno(e);
    const problem =
      code === 'ENOENT' ? 'no such file or folder' :
      code === 'ENOTDIR' ? 'no such file or folder (a parent of this path is not a folder)' :
      code === 'EACCES' || code === 'EPERM' ? 'permission denied' :
      code === 'ELOOP' ? 'a symbolic link that loops' :
      `cannot open (${code ?? (e as Error).message})`;
    throw new PathError(i.what, i.path, i.expected ? `${problem}; expected ${i.expected}` : problem);
  }
  if (!st.isFile() && !st.isDirectory()) throw new PathError(i.what, i.path, `is ${entryKind(st)}; expected a regular file or a folder`);
  const files: Found['files'] = [];
  if (st.isDirectory()) {
    try {
      for (const d of await fsp.readdir(i.path, { withFileTypes: true })) {
        if (!isPngFrameName(d.name) && !READ_FROM_FOLDER.test(d.name)) continue;
        const cst = await fsp.stat(nodePath.join(i.path, d.name)).catch(() => null);
        if (cst?.isFile()) files.push({ name: d.name, st: cst });
      }
    } catch {
      // an unreadable folder is the reader's to report
    }
  }
  return { ...i, st, real: await fsp.realpath(i.path), files };
}

/** lstat of an output: null when nothing is there; a parent in the way is the parent check's to say. */
async function lstatOutput(o: PathToCheck): Promise<Stats | null> {
  try {
    return await fsp.lstat(o.path);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
    if (errno(e) === 'EACCES' || errno(e) === 'EPERM') throw new PathError(o.what, o.path, 'permission denied');
    throw new PathError(o.what, o.path, `cannot check (${errno(e) ?? (e as Error).message})`);
  }
}

/** Refuse an output that is (or, through a link, names) an input or a file read from an input folder. */
async function refuseInput(o: PathToCheck, found: readonly Found[]): Promise<void> {
  const st = await fsp.stat(o.path).catch(() => null);
  if (!st) return;
  for (const i of found) {
    if (sameFile(st, i.st)) {
      throw new PathError(o.what, o.path, `is the same ${st.isDirectory() ? 'folder' : 'file'} as ${named(i)}; refusing to overwrite an input`);
    }
    const f = i.files.find((x) => sameFile(st, x.st));
    if (f) throw new PathError(o.what, o.path, `is ${f.name}, read from ${named(i)}; refusing to overwrite an input`);
  }
}

async function checkFileOutput(o: OutputToCheck, found: readonly Found[]): Promise<Stats | null> {
  const st = await lstatOutput(o);
  if (!st) return null;
  await refuseInput(o, found);
  if (st.isDirectory()) {
    throw new PathError(o.what, o.path, o.kind === 'file' ? 'is a folder; expected a file' : 'is a folder; a .y4m or .png output is a file');
  }
  if (!st.isFile()) throw new PathError(o.what, o.path, `exists and is ${entryKind(st)}; refusing to replace it`);
  return st;
}

async function checkFolderOutput(o: OutputToCheck, found: readonly Found[]): Promise<Stats | null> {
  const st = await lstatOutput(o);
  if (!st) return null;
  await refuseInput(o, found);
  if (st.isFile()) throw new PathError(o.what, o.path, 'is a file; this output is a folder of PNG frames');
  if (!st.isDirectory()) throw new PathError(o.what, o.path, `exists and is ${entryKind(st)}; refusing to replace it`);
  // the folder is replaced as a whole: it may not hold an input, nor anything but earlier frames
  const real = await fsp.realpath(o.path);
  const inside = found.find((i) => i.real.startsWith(`${real}/`));
  if (inside) throw new PathError(o.what, o.path, `holds ${named(inside)}; refusing to replace a folder that holds an input`);
  const entries = await fsp.readdir(o.path, { withFileTypes: true });
  const other = entries.find((d) => !d.isFile() || !isPngFrameName(d.name));
  if (other) {
    throw new PathError(
      o.what, o.path,
      `is a folder that holds ${JSON.stringify(other.name)} (${entryKind(other) ?? 'a file'}), not only numbered PNG frames; refusing to replace it`,
    );
  }
  return st;
}

/** Why a new entry cannot be made in `dir`, or null when it can (tried: a permission bit or a read-only mount is not the whole story). */
async function cannotWriteIn(dir: string, probeName: string): Promise<string | null> {
  const say = (e: unknown) => {
    const code = errno(e);
    return code === 'EROFS' ? 'is on a read-only file system'
      : code === 'EACCES' || code === 'EPERM' ? 'is not writable (permission denied)'
      : code === 'ENOSPC' ? 'is on a full device (no space left)'
      : code === 'EDQUOT' ? 'is over its disk quota'
      : `cannot be written (${code ?? (e as Error).message})`;
  };
  try {
    await fsp.access(dir, constants.W_OK);
  } catch (e) {
    return say(e);
  }
  const probe = nodePath.join(dir, `.${probeName}.${process.pid}.probe.tmp`);
  try {
    const fh = await fsp.open(probe, 'wx');
    await fh.close();
  } catch (e) {
    if (errno(e) === 'EEXIST') return null;
    return say(e);
  }
  await fsp.rm(probe, { force: true });
  return null;
}

async function checkParent(o: PathToCheck): Promise<void> {
  const dir = nodePath.dirname(o.path);
  let st: Stats;
  try {
    st = await fsp.stat(dir);
  } catch (e) {
    const code = errno(e);
    if (code === 'ENOENT') throw new PathError(o.what, o.path, `the folder ${dir} does not exist`);
    if (code === 'ENOTDIR') throw new PathError(o.what, o.path, 'a parent of this path is not a folder');
    throw new PathError(o.what, o.path, `cannot check the folder ${dir} (${code ?? (e as Error).message})`);
  }
  if (!st.isDirectory()) throw new PathError(o.what, o.path, `${dir} is not a folder`);
  const why = await cannotWriteIn(dir, nodePath.basename(o.path));
  if (why) throw new PathError(o.what, o.path, `the folder ${dir} ${why}`);
}

/** A folder that is filled: it or its nearest existing parent must be a writable folder. */
async function checkFill(f: FillFolder): Promise<void> {
  let p = f.path;
  for (;;) {
    const st = await fsp.stat(p).catch((e) => (errno(e) === 'ENOENT' ? null : Promise.reject(e))).catch((e) => {
      throw new PathError(f.what, f.path, errno(e) === 'ENOTDIR' ? 'a parent of this path is not a folder' : `cannot check ${p} (${errno(e) ?? (e as Error).message})`);
    });
    if (st) {
      if (!st.isDirectory()) throw new PathError(f.what, f.path, p === f.path ? 'is a file; expected a folder' : `${p} is not a folder`);
      const why = await cannotWriteIn(p, nodePath.basename(f.path));
      if (why) throw new PathError(f.what, f.path, `the folder ${p} ${why}`);
      return;
    }
    const up = nodePath.dirname(p);
    if (up === p) return;
    p = up;
  }
}

/** Where an output lands, whatever its spelling: the real path of its folder and its name. */
async function outputKey(path: string): Promise<string> {
  const dir = await fsp.realpath(nodePath.dirname(path)).catch(() => nodePath.resolve(nodePath.dirname(path)));
  return nodePath.join(dir, nodePath.basename(path));
}
