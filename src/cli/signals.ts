// SIGINT and SIGTERM end a command at once, even in the middle of a long step: the temporary
// files and folders of the outputs being written are removed (synchronously, in the handler),
// one line `cancelled: interrupted (SIGINT)` goes to stderr, and the process exits 130 / 143
// (128 + the signal's number, as shells report it). Outputs already committed stay; a folder
// output caught between its two renames is put back. Library callers cancel with an AbortSignal
// instead; the command's signal is aborted here too, for anything that listens.
import { writeSync } from 'node:fs';
import { CancelledError } from '../engine/errors.js';
import { removeTemporaryOutputs } from '../io/node-files.js';

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
export type HandledSignal = keyof typeof EXIT_CODES;

export function signalExitCode(signal: HandledSignal): number {
  return EXIT_CODES[signal];
}

/**
 * Handle SIGINT and SIGTERM for one command run; returns the function that removes the handlers.
 * The handler runs between two steps of the JavaScript event loop (a kernel that runs for seconds
 * in one go delays it until the kernel returns).
 */
export function installSignals(abort?: AbortController): () => void {
  let handling = false;
  const handlers = (Object.keys(EXIT_CODES) as HandledSignal[]).map((signal) => {
    const handler = () => {
      const code = EXIT_CODES[signal];
      // a second signal while the first is handled (e.g. a slow disk) exits at once
      if (handling) process.exit(code);
      handling = true;
      abort?.abort(new CancelledError(`interrupted (${signal})`));
      removeTemporaryOutputs();
      try {
        // synchronous: the process exits right after (an asynchronous write to a pipe could be lost)
        writeSync(2, `cancelled: interrupted (${signal})\n`);
      } catch {
        // stderr closed: nothing to say it on
      }
      process.exit(code);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}
