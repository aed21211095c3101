// Quiet by default. Dawn (the `webgpu` package) writes its diagnostics straight to file
// descriptor 2 from native code while it looks for an adapter: the Vulkan loader it could not
// open, with the C++ source line, and the limits it "artificially reduced". No Dawn option or
// toggle turns them off and Node cannot redirect a descriptor of its own process, so the command
// line runs as a child whose stderr passes through a filter that drops exactly those lines.
// `--verbose` (or COSMOS_CLI_CHILD=1, set for the child) runs in-process with everything shown.
// Plain JavaScript so the parent starts without the TypeScript loader.
import { spawn } from 'node:child_process';

/** Set in the child's environment: it runs the command line itself. */
export const CHILD_ENV = 'COSMOS_CLI_CHILD';

/** Dawn's lines: a warning, the native frames under it, and the blank line that closes it. */
const NOISE_START = /^Warning: /;
const NOISE_FRAME = /^\s+at .*\.(?:cpp|cc|h|mm):\d+\)\s*$/;

/** Where the native diagnostics need not be hidden: the command opens no WebGPU device. */
export function opensNoWebGpu(args) {
  const end = args.indexOf('--');
  const head = end < 0 ? args : args.slice(0, end);
  if (head.length === 0 || ['inspect', 'help', '--help', '-h'].includes(head[0])) return true;
  if (head.includes('--help') || head.includes('-h')) return true;
  const i = head.indexOf('--backend');
  return head.includes('--backend=cpu') || (i >= 0 && head[i + 1] === 'cpu');
}

/** True when the command line is to run in this process (the child, --verbose, or nothing to hide). */
export function runsInProcess(args, env = process.env) {
  const end = args.indexOf('--');
  const head = end < 0 ? args : args.slice(0, end);
  return env[CHILD_ENV] === '1' || head.includes('--verbose') || opensNoWebGpu(args);
}

/**
 * A line filter over a stream of text: `write` gets everything but Dawn's diagnostics. A partial
 * line that cannot be the start of one (a progress bar redrawn with '\r') passes at once.
 */
export function noiseFilter(write) {
  let pending = '';
  let passing = false;
  let inNoise = false;
  // a progress bar starts with '\r': never held back
  const couldBeNoise = (s) => 'Warning: '.startsWith(s) || NOISE_START.test(s) || /^[ \t]*$/.test(s) || (inNoise && /^[ \t]/.test(s));
  const isNoise = (line) => {
    const body = line.replace(/\r?\n$/, '');
    if (NOISE_START.test(body)) {
      inNoise = true;
      return true;
    }
    if (inNoise && (NOISE_FRAME.test(body) || /^[ \t]*$/.test(body))) return true;
    inNoise = false;
    return false;
  };
  return {
    feed(text) {
      let out = '';
      for (const piece of text.split(/(?<=\n)/)) {
        const complete = piece.endsWith('\n');
        if (passing) {
          out += piece;
          passing = !complete;
          continue;
        }
        pending += piece;
        if (complete) {
          if (!isNoise(pending)) out += pending;
          pending = '';
        } else if (!couldBeNoise(pending)) {
          inNoise = false;
          out += pending;
          pending = '';
          passing = true;
        }
      }
      if (out) write(out);
    },
    end() {
      if (pending && !isNoise(pending)) write(pending);
      pending = '';
    },
  };
}

/**
 * In the child: a terminal the parent has is the child's too (progress bars redraw in place),
 * though its stderr is a pipe to the filter.
 */
export function adoptParentTerminal(env = process.env) {
  if (env.COSMOS_STDERR_TTY !== '1' || process.stderr.isTTY) return;
  Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
  const cols = Number(env.COSMOS_STDERR_COLUMNS);
  if (cols > 0) Object.defineProperty(process.stderr, 'columns', { value: cols, configurable: true });
}

/**
 * Run `node <nodeArgs>` as the command line's child, its stderr filtered, and exit as it did:
 * its exit status, or the signal that ended it raised again here. SIGINT, SIGTERM and SIGHUP
 * are forwarded unchanged; the child has a process group of its own, so a Ctrl-C at the terminal
 * reaches it once (through here), not twice.
 */
export function runFiltered(nodeArgs) {
  const env = { ...process.env, [CHILD_ENV]: '1' };
  if (process.stderr.isTTY) {
    env.COSMOS_STDERR_TTY = '1';
    if (process.stderr.columns) env.COSMOS_STDERR_COLUMNS = String(process.stderr.columns);
  }
  const child = spawn(process.execPath, nodeArgs, { stdio: ['inherit', 'inherit', 'pipe'], env, detached: true });
  const filter = noiseFilter((s) => process.stderr.write(s));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => filter.feed(s));
  const forward = (sig) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  // SIGHUP too: the child, in a process group of its own, would not see a closed terminal
  const handlers = ['SIGINT', 'SIGTERM', 'SIGHUP'].map((sig) => [sig, forward(sig)]);
  for (const [sig, h] of handlers) process.on(sig, h);
  // the parent going away takes the child with it (it has a process group of its own)
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('exit', onExit);
  return new Promise((done) => {
    child.on('error', (e) => {
      process.stderr.write(`internal error: ${e.name}: ${e.message} (could not start the command line)\n`);
      done(1);
    });
    child.on('close', (code, signal) => {
      filter.end();
      for (const [sig, h] of handlers) process.off(sig, h);
      process.off('exit', onExit);
      if (signal) {
        process.kill(process.pid, signal);
        return;
      }
      done(code ?? 1);
    });
  });
}

/** Exit with `code` once stderr has drained. */
export function exitAfterDrain(code) {
  process.stderr.write('', () => process.exit(code));
}
