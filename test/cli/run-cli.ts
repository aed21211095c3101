// Runs the command line in-process, capturing what it writes to stdout (lines and streamed
// text) and stderr.
import { main } from '../../src/cli/main.js';

export interface CliRun {
  rc: number;
  out: string;
  err: string;
  /** stderr lines */
  errLines: string[];
  /** text streamed to stdout without newlines (e.g. reason's answer), in order */
  writes: string[];
}

export async function runCli(...argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const writes: string[] = [];
  const io = { out: (l: string) => void out.push(l), write: (t: string) => void writes.push(t), err: (l: string) => void err.push(l), interactive: false };
  const rc = await main(argv, io);
  return { rc, out: out.join('\n'), err: err.join('\n'), errLines: err, writes };
}
