// What the commands not yet converted to declarations (command.ts) still import: argument
// parsing, backend choice, error reporting. It goes once they are converted.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Backend } from '../engine/backend.js';
import { CheckpointMismatchError } from '../engine/module.js';
import { ShapeError } from '../engine/tensor.js';
import { SafetensorsError } from '../io/errors.js';
import type { Rational } from '../io/video.js';
import { PngError } from '../io/png.js';
import { Y4mError } from '../io/y4m.js';
import { TokenizerConfigError, TokenizerInputError } from '../models/tokenizer/errors.js';
import { UserError } from '../engine/errors.js';

/** Errors about the user's files or arguments: reported as one line, exit status 1. */
export function isUserError(e: unknown): e is Error {
  return (
    e instanceof Y4mError || e instanceof PngError || e instanceof SafetensorsError || e instanceof TokenizerInputError ||
    e instanceof TokenizerConfigError || e instanceof CheckpointMismatchError || e instanceof UsageError || e instanceof ShapeError
  );
}

export class UsageError extends UserError {
  override name = 'UsageError';
}

/** util.parseArgs in strict mode; undefined (after printing the problem and the usage) when the arguments are bad. */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: O,
  usage: string,
): ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>['values'] | undefined {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    console.error(usage);
    return undefined;
  }
}

/**
 * The engine backend: `cpu`, or `webgpu` (the default). Without an explicit --backend, a
 * machine with no WebGPU adapter falls back to cpu with a note on stderr.
 */
export async function selectBackend(choice: string | undefined): Promise<Backend> {
  if (choice !== undefined && choice !== 'cpu' && choice !== 'webgpu') {
    throw new UsageError(`--backend must be cpu or webgpu, got ${JSON.stringify(choice)}`);
  }
  if (choice === 'cpu') return (await import('../engine/cpu/backend.js')).cpu;
  try {
    const { webgpu } = await import('../engine/webgpu/backend.js');
    return await webgpu();
  } catch (e) {
    if (choice === 'webgpu') throw e;
    const reason = ((e as Error).message ?? String(e)).split('\n')[0];
    console.error(`note: no WebGPU adapter (${reason.length > 160 ? `${reason.slice(0, 157)}...` : reason}); using the cpu backend`);
    return (await import('../engine/cpu/backend.js')).cpu;
  }
}

export function fpsText(r: Rational | undefined): string {
  if (!r) return '?';
  const v = r.num / r.den;
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

export { loadVideoTokenizer } from '../pipelines/tokenizer.js';
