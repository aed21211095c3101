// Subcommand dispatch and the error contract of the command line: a UserError (bad flag, bad
// file, a model that does not fit) is one line on stderr and exit status 2; anything else is a
// bug in cosmos-ts, reported as an internal error with exit status 1 (COSMOS_DEBUG=1 adds the
// stack). A prompt or clip refused by the guardrails is `blocked: <stage>: <message>`, exit 3. Every path is checked before the command runs (preflight.ts); SIGINT / SIGTERM remove
// the temporary outputs and exit 130 / 143 (signals.ts).
// Command modules are imported when they run, so `inspect` never loads the GPU backend.
import { pathToFileURL } from 'node:url';
import { CancelledError, isUserError } from '../engine/errors.js';
import { setFileSystem } from '../io/files.js';
import { GuardrailBlockedError } from '../pipelines/guardrails.js';
import { nodeFileSystem } from '../io/node-files.js';
import { adoptParentTerminal, exitAfterDrain, runFiltered, runsInProcess } from '../../bin/quiet-stderr.mjs';
import { type Command, type CommandContext, UsageError, helpText, parseCommand } from './command.js';
import { preflight } from './preflight.js';
import { installSignals } from './signals.js';
import { loadTuning, splitTuning } from './tuning.js';

setFileSystem(nodeFileSystem);

/** Every command: its module exports `command`, a declaration (see command.ts). */
const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  demo: () => import('./demo.js'),
  conform: () => import('./conform.js'),
  'check-ops': () => import('./check-ops.js'),
  devices: () => import('./devices.js'),
  inspect: () => import('./inspect.js'),
  tokenize: () => import('./tokenize.js'),
  detokenize: () => import('./detokenize.js'),
  roundtrip: () => import('./roundtrip.js'),
  text2world: () => import('./text2world.js'),
  video2world: () => import('./video2world.js'),
  transfer: () => import('./transfer.js'),
  'ar-video2world': () => import('./ar-video2world.js'),
  reason: () => import('./reason.js'),
  guard: () => import('./guard.js'),
  tune: () => import('./tune.js'),
};

async function load(name: string): Promise<Command> {
  return (await COMMANDS[name]()).command as Command;
}

export async function usage(): Promise<string> {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  const lines: string[] = [];
  for (const n of names) {
    lines.push(`  ${n.padEnd(width)}  ${(await load(n)).summary}`);
  }
  return ['usage: cosmos-ts <command> [args...]', '', 'commands:', ...lines, '', "run 'cosmos-ts <command> --help' for a command's options"].join('\n');
}

export interface MainIo {
  out(line: string): void;
  write(text: string): void;
  err(line: string): void;
  interactive: boolean;
}

const nodeIo: MainIo = {
  out: (l) => console.log(l),
  write: (t) => void process.stdout.write(t),
  err: (l) => console.error(l),
  get interactive() {
    return Boolean(process.stderr.isTTY);
  },
};

/**
 * A user error's message on one line: some list their findings a line each (a checkpoint that
 * does not fit its config: missing keys, shape mismatches), joined here with '; '.
 */
export function oneLine(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.reduce((acc, l) => (acc === '' ? l : `${acc}${acc.endsWith(':') ? ' ' : '; '}${l}`), '');
}

/** The hint every internal error ends with. */
export const DEBUG_HINT = 'a bug in cosmos-ts; run with COSMOS_DEBUG=1 for the stack';

/**
 * Report an error by the contract above; returns the exit status. A user error is one line,
 * `error: <what>: <why>` (the message starts with the flag, file or field it is about), nothing
 * after it: no usage dump (`--help` has that), no stack.
 */
export function reportError(e: unknown, io: MainIo, debug = process.env.COSMOS_DEBUG === '1'): number {
  if (e instanceof CancelledError) {
    io.err(`cancelled: ${e.message}`);
    return 130;
  }
  if (e instanceof GuardrailBlockedError) {
    io.err(`blocked: ${oneLine(e.message)}`);
    return 3;
  }
  if (isUserError(e)) {
    io.err(`error: ${oneLine(e.message)}`);
    return 2;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  if (debug && err.stack) io.err(err.stack);
  io.err(`internal error: ${err.name}: ${oneLine(err.message)} (${DEBUG_HINT})`);
  return 1;
}

/**
 * `--verbose`, which every command takes: it only decides whether the native WebGPU (Dawn)
 * diagnostics reach stderr (see bin/quiet-stderr.mjs), so it is taken off before a command parses.
 */
export function splitVerbose(args: readonly string[]): { verbose: boolean; args: string[] } {
  const end = args.indexOf('--');
  const head = end < 0 ? args : args.slice(0, end);
  const rest = end < 0 ? [] : args.slice(end);
  return { verbose: head.includes('--verbose'), args: [...head.filter((a) => a !== '--verbose'), ...rest] };
}

export async function main(argv: string[] = process.argv.slice(2), io: MainIo = nodeIo): Promise<number> {
  const global = splitTuning(splitVerbose(argv).args);
  const [name, ...args] = global.args;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(await usage());
    return 0;
  }
  if (name === undefined) {
    io.err(`error: command: missing (${Object.keys(COMMANDS).join(', ')}; run 'cosmos-ts --help')`);
    return 2;
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    io.err(`error: ${name}: not a command of cosmos-ts (${Object.keys(COMMANDS).join(', ')}; run 'cosmos-ts --help')`);
    return 2;
  }
  const command = await load(name);
  if (args.includes('--help') || args.includes('-h')) {
    io.out(helpText(command));
    return 0;
  }
  const abort = new AbortController();
  const uninstallSignals = installSignals(abort);
  const ctx: CommandContext = { out: io.out, write: io.write, err: io.err, signal: abort.signal, interactive: io.interactive };
  try {
    const { flags, positionals } = parseCommand(command, args);
    command.check?.(flags, positionals);
    const envTuning = process.env.COSMOS_TUNING || undefined;
    const tuning = global.tuning ?? envTuning;
    const tuningWhat = global.tuning !== undefined ? '--tuning' : 'COSMOS_TUNING';
    if (global.tuning === '') throw new UsageError('--tuning: missing its value (a file made by \'cosmos-ts tune --out FILE\')');
    await preflight(command, flags, positionals, tuning === undefined ? [] : [{ path: tuning, what: tuningWhat }]);
    await loadTuning(tuning, tuningWhat, io.err);
    return (await command.run(flags, positionals, ctx)) ?? 0;
  } catch (e) {
    return reportError(e, io);
  } finally {
    uninstallSignals();
  }
}

/**
 * Run the command line and exit with its status, once stdout and stderr have drained (on a pipe
 * their writes are asynchronous: exiting first would cut a long --json document short). Exiting
 * explicitly matters because a WebGPU device keeps the event loop alive after the work is done.
 */
export async function runAndExit(argv: string[] = process.argv.slice(2)): Promise<never> {
  const code = await main(argv);
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((done) => s.write('', () => done()))));
  process.exit(code);
}

// `npx tsx src/cli/main.ts <command> ...` works as well as the bin, quiet the same way
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  if (runsInProcess(args)) {
    adoptParentTerminal();
    await runAndExit(args);
  } else exitAfterDrain(await runFiltered([...process.execArgv, process.argv[1], ...args]));
}
