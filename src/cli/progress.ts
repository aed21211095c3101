// A small progress bar for long jobs, on stderr. On a TTY it redraws one line with \r (at most
// every `redrawMs`); otherwise (logs, CI, pipes) it prints a plain line now and then (at most
// every `lineEveryMs`) so the log stays short. Both show the rate in items/s and, with a total,
// the percentage and an ETA. `done()` always prints a final line.

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Total items, when known. */
  total?: number;
  /** Shown before the bar (e.g. "encode"). */
  label?: string;
  /** Item name for the rate (default "items"). */
  unit?: string;
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Milliseconds clock (default performance.now), injectable for tests. */
  now?: () => number;
  /** TTY redraw interval (default 100 ms). */
  redrawMs?: number;
  /** Plain-line interval when not a TTY (default 10 s). */
  lineEveryMs?: number;
  /** Print nothing at all. */
  silent?: boolean;
}

export interface Progress {
  /** Add `n` finished items (default 1). */
  tick(n?: number): void;
  /** Set the number of finished items. */
  update(done: number): void;
  /** Change the total (when it becomes known). */
  setTotal(total: number | undefined): void;
  /** Finish: print the final line (and a newline on a TTY). */
  done(message?: string): void;
  readonly count: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A rate with three significant-ish digits (1234, 56.7, 8.90); `missing` when not finite. */
export function formatRate(r: number, missing = '?'): string {
  if (!Number.isFinite(r)) return missing;
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

export function createProgress(options: ProgressOptions = {}): Progress {
  const stream: ProgressStream = options.stream ?? process.stderr;
  const now = options.now ?? (() => performance.now());
  const tty = stream.isTTY === true;
  const redrawMs = options.redrawMs ?? 100;
  const lineEveryMs = options.lineEveryMs ?? 10_000;
  const unit = options.unit ?? 'items';
  const label = options.label ? `${options.label} ` : '';
  const start = now();
  let total = options.total;
  let count = 0;
  let lastDraw = -Infinity;
  let finished = false;
  let drawnWidth = 0;

  const text = (withBar: boolean): string => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? count / elapsed : NaN;
    const parts: string[] = [];
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, count / total);
      if (withBar) {
        const width = 24;
        const fill = Math.round(frac * width);
        parts.push(`[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`);
      }
      parts.push(`${count}/${total} ${unit}`, `${(frac * 100).toFixed(0).padStart(3)}%`);
    } else parts.push(`${count} ${unit}`);
    parts.push(`${formatRate(rate)} ${unit}/s`);
    if (total !== undefined && count > 0 && count < total) parts.push(`ETA ${formatDuration((total - count) / rate)}`);
    else parts.push(`${formatDuration(elapsed)}`);
    return label + parts.join(' ');
  };

  const draw = (force: boolean) => {
    if (options.silent || finished) return;
    const t = now();
    if (tty) {
      if (!force && t - lastDraw < redrawMs) return;
      lastDraw = t;
      let line = text(true);
      const cols = stream.columns ?? 0;
      if (cols > 10 && line.length >= cols) line = line.slice(0, cols - 1);
      // Pad over a longer previous line.
      stream.write(`\r${line}${' '.repeat(Math.max(0, drawnWidth - line.length))}`);
      drawnWidth = line.length;
    } else {
      if (!force && t - lastDraw < lineEveryMs) return;
      lastDraw = t;
      stream.write(`${text(false)}\n`);
    }
  };
  // Not a TTY: the first line comes after the first interval, so short jobs print only the final line.
  if (!tty) lastDraw = start;

  return {
    tick(n = 1) {
      count += n;
      draw(false);
    },
    update(done) {
      count = done;
      draw(false);
    },
    setTotal(t) {
      total = t;
    },
    done(message) {
      if (options.silent || finished) {
        finished = true;
        return;
      }
      const line = text(tty) + (message ? ` ${message}` : '');
      stream.write(tty ? `\r${line}${' '.repeat(Math.max(0, drawnWidth - line.length))}\n` : `${line}\n`);
      finished = true;
    },
    get count() {
      return count;
    },
  };
}

/**
 * A pipeline progress callback that draws one bar per stage on `stream` (a stage's bar finishes
 * when the next stage starts or when `finish` is called). Stages of a single unit draw nothing.
 */
export function progressBars(options: Pick<ProgressOptions, 'stream' | 'silent'> = {}): {
  onProgress: (e: { stage: string; done: number; total?: number; unit: string }) => void;
  finish(): void;
} {
  let current: { stage: string; bar: Progress } | null = null;
  const finish = () => {
    current?.bar.done();
    current = null;
  };
  return {
    onProgress(e) {
      if (current?.stage !== e.stage) {
        finish();
        if (e.total !== undefined && e.total <= 1) return;
        current = { stage: e.stage, bar: createProgress({ ...options, label: e.stage, unit: e.unit, total: e.total }) };
      }
      current?.bar.update(e.done);
    },
    finish,
  };
}
