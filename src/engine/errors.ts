// The one error contract of the library. A UserError is caused by what the caller gave (a file,
// a flag, a config field, a tensor of the wrong shape for a model): its message is one line that
// names the culprit and what was expected, and the CLI reports it as such (exit status 2). Any
// other error escaping the library is a bug in cosmos-ts (the CLI says so, exit status 1).
// Every floor's typed errors extend this class, so callers need not know them all.

export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** True for errors the caller caused (see UserError); false for bugs. */
export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/**
 * Cancellation. throwIfAborted throws the AbortSignal's reason when it is an Error of its own,
 * else a CancelledError. Pipelines call it between steps, so an abort stops at the next step.
 */
export class CancelledError extends UserError {
  constructor(message = 'cancelled') {
    super(message);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const r: unknown = signal.reason;
  // abort() without a reason gives a DOMException named AbortError: that is a plain cancellation
  if (r instanceof Error && r.name !== 'AbortError') throw r;
  throw new CancelledError(r instanceof Error ? r.message : r === undefined ? 'cancelled' : String(r));
}
