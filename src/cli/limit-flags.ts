// --max-frame-pixels, --max-frames and --max-input-bytes: the input limits (src/io/limits.ts) a
// user raises on every command that reads video, images or tokens files.
import { DEFAULT_LIMITS, type InputLimits, formatBytes, parseLimit } from '../io/limits.js';
import { UserError } from '../engine/errors.js';
import type { StringFlag } from './command.js';

const limitFlag = (help: string): StringFlag => ({ type: 'string', placeholder: 'N', help });

export const LIMIT_FLAGS = {
  'max-frame-pixels': limitFlag(`most pixels (width x height) an input frame may have (default ${DEFAULT_LIMITS.maxPixels}, 8K UHD fits)`),
  'max-frames': limitFlag(`most frames an input clip may have (default ${DEFAULT_LIMITS.maxFrames})`),
  'max-input-bytes': limitFlag(`most bytes the float32 decode of the inputs held at once may take, e.g. 8GiB (default ${formatBytes(DEFAULT_LIMITS.maxBytes)})`),
} as const;

type LimitFlagValues = { [K in keyof typeof LIMIT_FLAGS]?: string };

function value(flag: keyof typeof LIMIT_FLAGS, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = parseLimit(text);
  if (n === null) throw new UserError(`--${flag}: must be a positive integer, optionally with a suffix (K, M, G, KiB, MiB, GiB, GB); got ${JSON.stringify(text)}`);
  return n;
}

/** The limits the flags give (the defaults where a flag is absent). */
export function limitsOf(f: LimitFlagValues): InputLimits {
  return {
    maxPixels: value('max-frame-pixels', f['max-frame-pixels'], DEFAULT_LIMITS.maxPixels),
    maxFrames: value('max-frames', f['max-frames'], DEFAULT_LIMITS.maxFrames),
    maxBytes: value('max-input-bytes', f['max-input-bytes'], DEFAULT_LIMITS.maxBytes),
  };
}
