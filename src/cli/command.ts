// Every command is a declaration: its flags (type, default, help), its positionals and the one
// pipeline call it makes. This file parses the arguments of any declaration (Node's
// util.parseArgs, strict), checks types, choices and required flags, and writes the help text,
// so no command parses or validates by hand.
import { parseArgs } from 'node:util';
import { progressBars } from './progress.js';
import { UserError } from '../engine/errors.js';
import type { Backend } from '../engine/backend.js';
import type { ProgressCallback } from '../pipelines/progress.js';
import { BACKEND_CHOICES, type BackendChoice, selectBackend, selectBackends, webgpuOptionsFromEnv } from '../engine/select.js';

/** Bad arguments: like every UserError, one line `error: <flag>: <why>` and exit status 2. */
export class UsageError extends UserError {}

interface FlagBase {
  help: string;
  /** required unless this boolean flag is given (e.g. 'plan': a plan needs no input or output) */
  requiredUnless?: string;
  /** shown in the help instead of the type, e.g. '<dir>' */
  placeholder?: string;
  short?: string;
  /**
   * What the value names on disk, checked before the command runs (src/cli/preflight.ts):
   * 'input' must exist (file or folder); 'output' is a file (or a PNG-frame folder) the command
   * writes; 'output-dir' is a folder the command creates or fills.
   */
  path?: PathRole;
  /** flags that may not be given together with this one (named without '--') */
  conflicts?: readonly string[];
  /** a boolean flag this one only means something with (e.g. 'plan'): given alone, it is refused */
  needs?: string;
}
export type PathRole = 'input' | 'output' | 'output-dir';
export interface StringFlag extends FlagBase {
  type: 'string';
  default?: string;
  required?: boolean;
  choices?: readonly string[];
  multiple?: false;
  /** what is wrong with a value (said after `--flag: `), or null when it is fine: checked with the other flags, before anything runs */
  problem?: (value: string) => string | null;
}
export interface StringListFlag extends FlagBase { type: 'string'; multiple: true; required?: boolean; choices?: readonly string[]; default?: undefined }
export interface NumberFlag extends FlagBase {
  type: 'number' | 'integer';
  default?: number;
  required?: boolean;
  min?: number;
  /** min is exclusive */
  above?: boolean;
  max?: number;
  multiple?: false;
}
export interface BooleanFlag extends FlagBase { type: 'boolean'; default?: undefined; required?: undefined; multiple?: false }
export type FlagSpec = StringFlag | StringListFlag | NumberFlag | BooleanFlag;
export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

type ValueOf<S extends FlagSpec> = S extends BooleanFlag
  ? boolean
  : S extends NumberFlag
    ? number
    : S extends StringListFlag
      ? string[]
      : string;

/** The parsed flags: required or defaulted ones always present, the rest possibly undefined. */
export type Flags<F extends FlagSpecs> = {
  [K in keyof F]: F[K] extends BooleanFlag | StringListFlag
    ? ValueOf<F[K]>
    : F[K] extends { required: true } | { default: string | number }
      ? ValueOf<F[K]>
      : ValueOf<F[K]> | undefined;
};

export interface Positionals {
  /** e.g. '<case-dir>...' */
  usage: string;
  min: number;
  max?: number;
  /** what the positionals name on disk (see FlagBase.path) */
  path?: PathRole;
}

/** What a running command may use besides its flags. */
export interface CommandContext {
  /** results (stdout) */
  out(line: string): void;
  /** results as they stream (stdout, no newline added) */
  write(text: string): void;
  /** notes, progress and warnings (stderr) */
  err(line: string): void;
  /** aborted on Ctrl-C */
  signal: AbortSignal;
  /** true when stderr is a terminal (progress bars redraw in place) */
  interactive: boolean;
}

export interface Command<F extends FlagSpecs = FlagSpecs> {
  name: string;
  summary: string;
  /** what the command does, for --help (after the usage line) */
  description: string;
  flags: F;
  positionals?: Positionals;
  /**
   * Checks across flags that the declarations cannot say (e.g. "--prompt or --embeddings"), made
   * after parsing and before the paths are checked or anything runs; throws a UsageError.
   */
  check?(flags: Flags<F>, positionals: string[]): void;
  /** run with checked flags; the exit status (0 when nothing is returned) */
  // biome-ignore lint/suspicious/noConfusingVoidType: a command that returns nothing has succeeded (exit 0)
  run(flags: Flags<F>, positionals: string[], ctx: CommandContext): Promise<number | void>;
}

export function defineCommand<F extends FlagSpecs>(c: Command<F>): Command<F> {
  return c;
}

/** --backend, the same for every model command. */
export const BACKEND_FLAG = {
  type: 'string',
  choices: BACKEND_CHOICES,
  default: 'auto',
  placeholder: BACKEND_CHOICES.join('|'),
  help: 'auto: webgpu when an adapter can be had, else cpu (with a note)',
} as const satisfies StringFlag;

/**
 * The backend a --backend value names, with the WebGPU options of the environment
 * (COSMOS_WEBGPU_BACKEND, COSMOS_DAWN_ENABLE / _DISABLE); a fallback from auto to the CPU is a
 * note on stderr. The one place the CLI opens a backend.
 */
export function commandBackend(choice: string, ctx: CommandContext): Promise<Backend> {
  return selectBackend({ backend: choice as BackendChoice, onFallback: (why) => ctx.err(`note: ${why}`), webgpu: webgpuOptionsFromEnv(process.env) });
}

/** Several backends: 'all' is the CPU oracle and WebGPU (which must then be had). */
export function commandBackends(choice: string, ctx: CommandContext): Promise<Backend[]> {
  return selectBackends(choice as BackendChoice | 'all', (why) => ctx.err(`note: ${why}`), webgpuOptionsFromEnv(process.env));
}

/** Progress bars of a pipeline's stages on the command's stderr (redrawn in place on a terminal). */
export function commandProgress(ctx: CommandContext): { onProgress: ProgressCallback; finish(): void } {
  return progressBars({ stream: ctx.interactive ? process.stderr : { write: (s: string) => void ctx.err(s.replace(/\n$/, '')) } });
}

// ------------------------------------------------------------------ help

function flagUsage(name: string, s: FlagSpec): string {
  if (s.type === 'boolean') return `--${name}`;
  const ph = s.placeholder ?? (s.type === 'string' ? (s.choices ? s.choices.join('|') : `<${name}>`) : s.type === 'integer' ? 'N' : 'X');
  return `--${name} ${ph}`;
}

export function usageLine(c: Command): string {
  const parts = Object.entries(c.flags).map(([n, s]) => (s.required || s.requiredUnless ? flagUsage(n, s) : `[${flagUsage(n, s)}]`));
  if (c.positionals) parts.unshift(c.positionals.usage);
  return `usage: cosmos-ts ${c.name} ${parts.join(' ')}`;
}

export function helpText(c: Command): string {
  const rows = Object.entries(c.flags).map(([n, s]) => {
    const left = `  ${flagUsage(n, s)}${s.short ? `, -${s.short}` : ''}`;
    let help = s.help;
    if (s.type !== 'boolean' && s.default !== undefined) help += ` (default ${s.default})`;
    if (s.required) help += ' (required)';
    if (s.requiredUnless) help += ` (required unless --${s.requiredUnless})`;
    if (s.type === 'string' && s.multiple) help += ' (repeatable)';
    return { left, help };
  });
  const width = Math.min(34, Math.max(0, ...rows.map((r) => r.left.length)) + 2);
  const body = rows.map((r) => (r.left.length + 2 > width ? `${r.left}\n${' '.repeat(width)}${r.help}` : `${r.left.padEnd(width)}${r.help}`));
  return [
    usageLine(c), '', c.description, '', 'options:', ...body,
    `  ${'--verbose'.padEnd(width - 2)}keep the native WebGPU (Dawn) diagnostics on stderr`,
    `  ${'--tuning <file>'.padEnd(width - 2)}use a tuning table made by 'cosmos-ts tune' (also COSMOS_TUNING)`,
    `  ${'--help'.padEnd(width - 2)}this text`,
  ].join('\n');
}

// ------------------------------------------------------------------ parsing

/** What a flag may be given as a negative number (`--seed -1`, `--guidance -0.5`, `--x -inf`). */
const NEGATIVE_NUMBER = /^-(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?)$/i;

function checkNumber(name: string, s: NumberFlag, raw: string): number {
  const text = raw.trim();
  const n = /^-inf(inity)?$/i.test(text) ? -Infinity : /^\+?inf(inity)?$/i.test(text) ? Infinity : Number(text);
  const kind = s.type === 'integer' ? 'an integer' : 'a number';
  const bound = s.min === undefined ? '' : ` ${s.above ? '>' : '>='} ${s.min}`;
  const upper = s.max === undefined ? '' : `${bound ? ' and' : ''} <= ${s.max}`;
  const ok =
    text !== '' && Number.isFinite(n) && (s.type !== 'integer' || Number.isSafeInteger(n)) &&
    (s.min === undefined || (s.above ? n > s.min : n >= s.min)) && (s.max === undefined || n <= s.max);
  if (!ok) throw new UsageError(`--${name}: must be ${kind}${bound}${upper}; got ${JSON.stringify(raw)}`);
  return n;
}

/** Levenshtein distance, for the "did you mean" of an unknown flag. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

function unknownFlag(c: Command, given: string): UsageError {
  const name = given.replace(/^-+/, '');
  const near = Object.keys(c.flags)
    .map((n) => ({ n, d: n.startsWith(name) && name.length >= 2 ? 0 : distance(name, n) }))
    .filter((x) => x.d <= (name.length <= 3 ? 1 : Math.max(2, Math.floor(name.length / 3))))
    .sort((a, b) => a.d - b.d)[0];
  const hint = near ? `did you mean --${near.n}?` : `run 'cosmos-ts ${c.name} --help' for the options`;
  return new UsageError(`${given}: not an option of cosmos-ts ${c.name} (${hint})`);
}

/**
 * The arguments in one canonical form for util.parseArgs (`--name=value`, `--name`, positionals,
 * then `--` and the rest), every mistake a one-line UsageError naming the flag: an unknown flag, a
 * value given to a switch, a missing value. A value-taking flag followed by a negative number takes
 * it as its value (util.parseArgs alone refuses `--seed -1` as ambiguous); a negative number
 * anywhere else is still an unknown option.
 */
function canonicalArgs(c: Command, args: readonly string[]): string[] {
  const byShort = new Map(Object.entries(c.flags).filter(([, s]) => s.short).map(([n, s]) => [s.short!, n]));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      out.push(a);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      inline = eq < 0 ? undefined : a.slice(eq + 1);
      if (!Object.hasOwn(c.flags, name)) throw unknownFlag(c, `--${name}`);
    } else {
      if (NEGATIVE_NUMBER.test(a)) {
        throw new UsageError(`${a}: unexpected argument (a negative number is the value of a flag before it that takes one)`);
      }
      const long = byShort.get(a.slice(1, 2));
      if (long === undefined) throw unknownFlag(c, a.slice(0, 2));
      name = long;
      inline = a.length > 2 ? a.slice(a[2] === '=' ? 3 : 2) : undefined;
    }
    const spec = c.flags[name];
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name}: is a switch and takes no value; got ${JSON.stringify(inline)}`);
      out.push(`--${name}`);
      continue;
    }
    if (inline === undefined) {
      const next = args[i + 1];
      if (next === undefined) throw new UsageError(`--${name}: missing its value`);
      if (next.startsWith('-') && next !== '-' && !NEGATIVE_NUMBER.test(next)) {
        throw new UsageError(`--${name}: missing its value (got the flag ${next} next; a value starting with '-' is written --${name}=${next})`);
      }
      inline = next;
      i++;
    }
    out.push(`--${name}=${inline}`);
  }
  return out;
}

/** Parse and check `args` against a declaration (without --help handling). */
export function parseCommand<F extends FlagSpecs>(c: Command<F>, args: string[]): { flags: Flags<F>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [n, s] of Object.entries(c.flags)) {
    options[n] = { type: s.type === 'boolean' ? 'boolean' : 'string', ...(s.multiple ? { multiple: true } : {}) };
  }
  const canonical = canonicalArgs(c, args);
  const dashDash = canonical.indexOf('--');
  const flagged = dashDash < 0 ? canonical : canonical.slice(0, dashDash);
  const pos = [...flagged.filter((a) => !a.startsWith('--')), ...(dashDash < 0 ? [] : canonical.slice(dashDash + 1))];
  if (!c.positionals && pos.length) {
    throw new UsageError(`${pos[0]}: unexpected argument (cosmos-ts ${c.name} takes flags only; run 'cosmos-ts ${c.name} --help')`);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: flagged.filter((a) => a.startsWith('--')), options, strict: true, allowPositionals: false });
  } catch (e) {
    // canonicalArgs has refused what util.parseArgs would; this is a safety net
    throw new UsageError(`arguments: ${(e as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/s, '')}`);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const out: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const [n, s] of Object.entries(c.flags)) {
    const v = values[n];
    if (v === undefined) {
      if (s.required || (s.requiredUnless && values[s.requiredUnless] !== true)) missing.push(n);
      out[n] = s.type === 'boolean' ? false : s.multiple ? [] : s.default;
      continue;
    }
    if (s.type === 'boolean') out[n] = v;
    else if (s.type === 'string') {
      const list = Array.isArray(v) ? v : [v as string];
      for (const x of list) {
        if (s.choices && !s.choices.includes(x)) throw new UsageError(`--${n}: must be one of ${s.choices.join(', ')}; got ${JSON.stringify(x)}`);
        const problem = !s.multiple ? s.problem?.(x) : null;
        if (problem) throw new UsageError(`--${n}: ${problem}`);
      }
      out[n] = s.multiple ? list : list[0];
    } else out[n] = checkNumber(n, s, v as string);
  }
  for (const [n, s] of Object.entries(c.flags)) {
    for (const other of s.conflicts ?? []) {
      if (values[n] !== undefined && values[other] !== undefined) {
        throw new UsageError(`--${n}: cannot be given with --${other} (they contradict each other; give one)`);
      }
    }
  }
  for (const [n, s] of Object.entries(c.flags)) {
    if (s.needs && values[n] !== undefined && values[s.needs] !== true) {
      throw new UsageError(`--${n}: only means something with --${s.needs}; give --${s.needs} or leave --${n} out`);
    }
  }
  if (missing.length) {
    const unless = c.flags[missing[0]].requiredUnless;
    throw new UsageError(
      `${missing.map((n) => `--${n}`).join(', ')}: missing (required${unless ? ` unless --${unless}` : ''}; run 'cosmos-ts ${c.name} --help')`,
    );
  }
  if (c.positionals) {
    const { min, max } = c.positionals;
    if (pos.length < min) throw new UsageError(`${c.positionals.usage}: missing (cosmos-ts ${c.name} takes at least ${min})`);
    if (max !== undefined && pos.length > max) throw new UsageError(`${pos[max]}: unexpected argument (cosmos-ts ${c.name} takes ${c.positionals.usage})`);
  }
  return { flags: out as Flags<F>, positionals: pos };
}
