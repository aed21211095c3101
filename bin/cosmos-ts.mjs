#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx compiles them on import, so there is no build step.
// Unless --verbose, the command line runs as a child with Dawn's native diagnostics filtered
// out of its stderr (bin/quiet-stderr.mjs); this parent stays plain JavaScript.
import { fileURLToPath } from 'node:url';
import { adoptParentTerminal, exitAfterDrain, runFiltered, runsInProcess } from './quiet-stderr.mjs';

const args = process.argv.slice(2);
if (!runsInProcess(args)) {
  exitAfterDrain(await runFiltered([...process.execArgv, fileURLToPath(import.meta.url), ...args]));
} else {
  adoptParentTerminal();
  const { register } = await import('tsx/esm/api');
  register();
  try {
    const { runAndExit } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
    await runAndExit(args);
  } catch (e) {
    // Only reached when the CLI itself fails to load; main() reports everything else.
    if (process.env.COSMOS_DEBUG === '1' && e?.stack) console.error(e.stack);
    console.error(`internal error: ${e?.name ?? 'Error'}: ${e?.message ?? e} (a bug in cosmos-ts; run with COSMOS_DEBUG=1 for the stack)`);
    process.exitCode = 1;
  }
}
