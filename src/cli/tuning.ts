// The global `--tuning FILE` option (or COSMOS_TUNING=FILE): a table made by `cosmos-ts tune`, used
// by the WebGPU backend of whatever command runs. A malformed or unreadable file is an error (exit
// 2); a table made on another adapter is a one-line warning and the default tiles (a stale table
// costs speed, never correctness: every choice in it was checked against the default's result).
import { useTuning } from '../engine/select.js';
import { parseTuning } from '../engine/tuning.js';
import { FileError, fileSystem, readJsonObject } from '../io/files.js';

/** A tuning file is a few KiB; anything past this is not one. */
const MAX_TUNING_BYTES = 4 * 2 ** 20;

/** `--tuning FILE` / `--tuning=FILE` taken off the arguments (before any `--`), like --verbose. */
export function splitTuning(args: readonly string[]): { tuning: string | undefined; args: string[] } {
  const end = args.indexOf('--');
  const head = end < 0 ? [...args] : args.slice(0, end);
  const rest = end < 0 ? [] : args.slice(end);
  let tuning: string | undefined;
  const out: string[] = [];
  for (let i = 0; i < head.length; i++) {
    const a = head[i];
    if (a === '--tuning') {
      tuning = head[i + 1] ?? '';
      i++;
    } else if (a.startsWith('--tuning=')) tuning = a.slice('--tuning='.length);
    else out.push(a);
  }
  return { tuning, args: [...out, ...rest] };
}

/**
 * Read and check the table at `path` (what names it: '--tuning' or 'COSMOS_TUNING') and make it the
 * process's; undefined clears it. Mismatched adapters are reported through `warn`.
 */
export async function loadTuning(path: string | undefined, what: string, warn: (line: string) => void): Promise<void> {
  if (path === undefined) {
    useTuning(null);
    return;
  }
  const fs = fileSystem();
  const st = await fs.stat(path);
  if (!st) throw new FileError(`${what} ${path}`, 'no such file (make one with \'cosmos-ts tune --out FILE\')');
  if (st.kind !== 'file') throw new FileError(`${what} ${path}`, 'not a regular file');
  if (st.size > MAX_TUNING_BYTES) throw new FileError(`${what} ${path}`, `${st.size} bytes: too big for a tuning table`);
  const table = parseTuning(await readJsonObject(path, 'tuning table', fs), `${what} ${path}`);
  useTuning(table, (message) => warn(`warning: ${message.replace(/^tuning: /, `${what} ${path}: `)}; using the default tiles`));
}
