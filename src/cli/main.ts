// Subcommand dispatch and the error contract of the command line: a UserError (bad flag, bad
// file, a model that does not fit) is one line on stderr and exit status 2; anything else is a
// bug in cosmos-ts, reported as an internal error with exit status 1 (COSMOS_DEBUG=1 adds the
// stack); Ctrl-C cancels the running pipeline at its next step, exit status 130.
// Command modules are imported when they run, so `inspect` never loads the GPU backend.
import { CancelledError, isUserError } from '../engine/errors.js';
import { setFileSystem } from '../io/files.js';
import { nodeFileSystem } from '../io/node-files.js';
import { type Command, type CommandContext, UsageError, helpText, parseCommand, usageLine } from './command.js';

setFileSystem(nodeFileSystem);

/**
 * Every command: its module exports `command` (a declaration, see command.ts). Until a module is
 * converted it exports a handler of the old form, named in the entry with its summary.
 */
type Module = Record<string, unknown>;
type Entry = { load: () => Promise<Module>; legacy?: { handler: string; summary: string } };
type Loaded = { command: Command } | { handler: (args: string[]) => Promise<number>; summary: string };

const COMMANDS: Record<string, Entry> = {
  demo: { load: () => import('./demo.js'), legacy: { handler: 'demoCommand', summary: 'the main job (npm start): conformance, the sample clips through the tiny tokenizers, Y4M + PNG' } },
  conform: { load: () => import('./conform.js'), legacy: { handler: 'conformCommand', summary: 'run fixture cases against the reference outputs' } },
  devices: { load: () => import('./devices.js'), legacy: { handler: 'devicesCommand', summary: 'show the backends and the WebGPU adapter in use' } },
  inspect: { load: () => import('./inspect.js'), legacy: { handler: 'inspectCommand', summary: 'list the tensors and config of a checkpoint' } },
  tokenize: { load: () => import('./tokenize.js'), legacy: { handler: 'tokenizeCommand', summary: 'encode a clip (.y4m / PNG frames) to tokens with a video tokenizer' } },
  detokenize: { load: () => import('./detokenize.js'), legacy: { handler: 'detokenizeCommand', summary: 'decode tokens back to a clip (.y4m / PNG frames)' } },
  roundtrip: { load: () => import('./roundtrip.js'), legacy: { handler: 'roundtripCommand', summary: 'encode + decode a clip, print PSNR / SSIM, write the reconstruction' } },
  text2world: { load: () => import('./text2world.js'), legacy: { handler: 'text2worldCommand', summary: 'generate a clip from a prompt with a Cosmos world model folder' } },
  video2world: { load: () => import('./video2world.js'), legacy: { handler: 'video2worldCommand', summary: 'continue a clip with a Cosmos world model folder' } },
  transfer: { load: () => import('./transfer.js'), legacy: { handler: 'transferCommand', summary: 'generate a clip that follows control videos (Transfer2.5 ControlNets, multi-control spec)' } },
  'ar-video2world': { load: () => import('./ar-video2world.js'), legacy: { handler: 'arVideo2WorldCommand', summary: 'continue a clip with an autoregressive model (DV tokens, token by token)' } },
  reason: { load: () => import('./reason.js'), legacy: { handler: 'reasonCommand', summary: 'answer a question about an image or a video with a Cosmos-Reason1 (Qwen2.5-VL) model, streamed' } },
};

async function load(name: string): Promise<Loaded> {
  const e = COMMANDS[name];
  const mod = await e.load();
  if (mod.command) return { command: mod.command as Command };
  if (!e.legacy) throw new Error(`command module ${name} exports no command`);
  return { handler: mod[e.legacy.handler] as (args: string[]) => Promise<number>, summary: e.legacy.summary };
}

export async function usage(): Promise<string> {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  const lines: string[] = [];
  for (const n of names) {
    const l = await load(n);
    lines.push(`  ${n.padEnd(width)}  ${'command' in l ? l.command.summary : l.summary}`);
  }
  return ['usage: cosmos-ts <command> [args...]', '', 'commands:', ...lines, '', "run 'cosmos-ts <command> --help' for a command's options"].join('\n');
}

export interface MainIo {
  out(line: string): void;
  err(line: string): void;
  interactive: boolean;
}

const nodeIo: MainIo = {
  out: (l) => console.log(l),
  err: (l) => console.error(l),
  get interactive() {
    return Boolean(process.stderr.isTTY);
  },
};

/** Report an error by the contract above; returns the exit status. */
export function reportError(e: unknown, io: MainIo, command?: Command): number {
  if (e instanceof CancelledError) {
    io.err(`cancelled: ${e.message}`);
    return 130;
  }
  if (e instanceof UsageError) {
    io.err(`error: ${e.message}`);
    if (command) io.err(`${usageLine(command)}\nrun 'cosmos-ts ${command.name} --help' for the options`);
    return 2;
  }
  if (isUserError(e)) {
    io.err(`error: ${e.message}`);
    return 2;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  io.err(`internal error: ${err.name}: ${err.message.split('\n')[0]} (a bug in cosmos-ts; COSMOS_DEBUG=1 prints the stack)`);
  if (process.env.COSMOS_DEBUG === '1' && err.stack) io.err(err.stack);
  return 1;
}

export async function main(argv: string[] = process.argv.slice(2), io: MainIo = nodeIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(await usage());
    return 0;
  }
  if (name === undefined || !Object.hasOwn(COMMANDS, name)) {
    if (name !== undefined) io.err(`error: unknown command ${JSON.stringify(name)}`);
    io.err(await usage());
    return 2;
  }
  const loaded = await load(name);
  if (!('command' in loaded)) {
    try {
      return await loaded.handler(args);
    } catch (e) {
      return reportError(e, io);
    }
  }
  const command = loaded.command;
  if (args.includes('--help') || args.includes('-h')) {
    io.out(helpText(command));
    return 0;
  }
  const abort = new AbortController();
  const onSigint = () => abort.abort(new CancelledError('interrupted (Ctrl-C)'));
  process.once('SIGINT', onSigint);
  const ctx: CommandContext = { out: io.out, err: io.err, signal: abort.signal, interactive: io.interactive };
  try {
    const { flags, positionals } = parseCommand(command, args);
    return (await command.run(flags, positionals, ctx)) ?? 0;
  } catch (e) {
    return reportError(e, io, command);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
