#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx compiles them on import, so there is no build step.
import { register } from 'tsx/esm/api';

register();
try {
  const { main } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
  const code = await main(process.argv.slice(2));
  // Exit explicitly (a WebGPU device keeps the event loop alive after the work is done), but only
  // once stdout and stderr have drained: on a pipe their writes are asynchronous, and exiting
  // first would cut a long --json document short.
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise((done) => s.write('', done))));
  process.exit(code);
} catch (e) {
  // Only reached when the CLI itself fails to load; main() reports everything else.
  console.error(`error: ${e?.name ?? 'Error'}: ${e?.message ?? e}`);
  if (process.env.COSMOS_DEBUG === '1' && e?.stack) console.error(e.stack);
  process.exitCode = 1;
}
