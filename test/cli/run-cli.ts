// Runs the command line in-process, capturing what it writes to stdout and stderr.
import { main } from '../../src/cli/main.js';

export interface CliRun {
  rc: number;
  out: string;
  err: string;
  /** stderr lines */
  errLines: string[];
}

export async function runCli(...argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const rc = await main(argv, { out: (l) => void out.push(l), err: (l) => void err.push(l), interactive: false });
  return { rc, out: out.join('\n'), err: err.join('\n'), errLines: err };
}
