// How every pipeline reports progress and is cancelled: a callback and an AbortSignal in its
// options, never printing. The CLI turns the events into progress bars (src/cli/progress.ts);
// the browser page into its own widgets; tests record them.
import { throwIfAborted } from '../engine/errors.js';

export interface ProgressEvent {
  /** the phase, e.g. 'encode', 'denoise', 'decode', 'generate' */
  stage: string;
  /** units finished so far in this stage */
  done: number;
  /** units this stage will take, when known */
  total?: number;
  /** what a unit is: 'frames', 'steps', 'tokens', 'cases' */
  unit: string;
  /** stage-specific values (a sampler step's sigma, a token's id, a case's result) */
  detail?: Readonly<Record<string, unknown>>;
}

export type ProgressCallback = (e: ProgressEvent) => void;

/**
 * Something the run did that the user should know but that does not stop it (a prompt cut to the
 * encoder's window). `option` names the pipeline option it is about ('prompt', 'negativePrompt'),
 * so a CLI can name its flag; `message` says what happened, without the option's name.
 */
export interface PipelineWarning {
  option: string;
  message: string;
}

/** What every pipeline's options include. */
export interface RunOptions {
  onProgress?: ProgressCallback;
  /** warnings, as they happen (a pipeline never prints) */
  onWarning?: (w: PipelineWarning) => void;
  /** checked between steps: an abort stops the pipeline at the next step with signal.reason */
  signal?: AbortSignal;
}

/** A stage's reporter: report(done) sends an event and checks for cancellation. */
export function stage(o: RunOptions, name: string, unit: string, total?: number): (done: number, detail?: Readonly<Record<string, unknown>>) => void {
  return (done, detail) => {
    o.onProgress?.({ stage: name, done, total, unit, ...(detail ? { detail } : {}) });
    throwIfAborted(o.signal);
  };
}
