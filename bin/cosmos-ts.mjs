#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx compiles them on import, so there is no build step.
import { register } from 'tsx/esm/api';

register();
try {
  const { runAndExit } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
  await runAndExit(process.argv.slice(2));
} catch (e) {
  // Only reached when the CLI itself fails to load; main() reports everything else.
  console.error(`error: ${e?.name ?? 'Error'}: ${e?.message ?? e}`);
  if (process.env.COSMOS_DEBUG === '1' && e?.stack) console.error(e.stack);
  process.exitCode = 1;
}
