// Subcommand dispatch. Handlers are imported lazily so that a command only loads what it uses
// (inspect must not pull in the GPU backend).

export type CommandHandler = (args: string[]) => Promise<number>;

interface Command {
  summary: string;
  load: () => Promise<CommandHandler>;
}

/** Add a subcommand with one line here. */
const COMMANDS: Record<string, Command> = {
  conform: { summary: 'run fixture cases against the reference outputs', load: async () => (await import('./conform.js')).conformCommand },
  devices: { summary: 'show the backends and the WebGPU adapter in use', load: async () => (await import('./devices.js')).devicesCommand },
  inspect: { summary: 'list the tensors and config of a checkpoint', load: async () => (await import('./inspect.js')).inspectCommand },
  tokenize: { summary: 'encode a clip (.y4m / PNG frames) to tokens with a video tokenizer', load: async () => (await import('./tokenize.js')).tokenizeCommand },
  detokenize: { summary: 'decode tokens back to a clip (.y4m / PNG frames)', load: async () => (await import('./detokenize.js')).detokenizeCommand },
  roundtrip: { summary: 'encode + decode a clip, print PSNR / SSIM, write the reconstruction', load: async () => (await import('./roundtrip.js')).roundtripCommand },
  demo: { summary: 'the main job (npm start): conformance, the sample clips through the tiny tokenizers, Y4M + PNG', load: async () => (await import('./demo.js')).demoCommand },
  'ar-video2world': { summary: 'continue a clip with an autoregressive model (DV tokens, token by token)', load: async () => (await import('./ar-video2world.js')).arVideo2WorldCommand },
  text2world: { summary: 'generate a clip from a prompt with a Cosmos world model folder', load: async () => (await import('./text2world.js')).text2worldCommand },
  video2world: { summary: 'continue a clip with a Cosmos world model folder', load: async () => (await import('./video2world.js')).video2worldCommand },
  transfer: { summary: 'generate a clip that follows control videos (Transfer2.5 ControlNets, multi-control spec)', load: async () => (await import('./transfer.js')).transferCommand },
  reason: { summary: 'answer a question about an image or a video with a Cosmos-Reason1 (Qwen2.5-VL) model, streamed', load: async () => (await import('./reason.js')).reasonCommand },
};

export function usage(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  return [
    'usage: cosmos-ts <command> [args...]',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n].summary}`),
    '',
    "run 'cosmos-ts <command> --help' for a command's options",
  ].join('\n');
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === undefined || !Object.hasOwn(COMMANDS, name)) {
    if (name !== undefined) console.error(`error: unknown command ${JSON.stringify(name)}`);
    console.error(usage());
    return 2;
  }
  try {
    const handler = await COMMANDS[name].load();
    return await handler(args);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`error: ${err.name}: ${err.message}`);
    if (process.env.COSMOS_DEBUG === '1' && err.stack) console.error(err.stack);
    return 1;
  }
}
