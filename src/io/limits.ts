// Limits on what an input's header may claim, checked before anything of that size is allocated,
// so a hostile or mistaken header (a Y4M saying 100000x100000, a small PNG whose IHDR says
// 20000x20000) is a one-line error instead of an out-of-memory kill.
//
// The defaults are generous for real Cosmos inputs and refuse what no model here can use:
// - maxPixels 2^25 (33.5 M): one 8K UHD frame (7680x4320 = 33.2 M) passes, 20000x20000 (400 M) not.
//   Cosmos works at 1280x704 (0.9 M) and 1920x1080 (2.1 M).
// - maxFrames 10000: several minutes of a long clip (5.5 min at 30 fps); Cosmos reads 121 or 93.
// - maxBytes 4 GiB of float32 decode held at once: a whole 1920x1080 x 121-frame clip (3.0 GB)
//   or 1280x704 x 121 (1.3 GB) passes. A streaming reader (tokenize) holds one frame at a time,
//   so only a frame is counted against it there; commands that hold the whole clip (roundtrip,
//   video2world, transfer) count every frame.
// A user raises them with --max-frame-pixels, --max-frames and --max-input-bytes (the library
// takes `limits` in the readers' options).
import { UserError } from '../engine/errors.js';

export interface InputLimits {
  /** width * height of one frame */
  maxPixels: number;
  maxFrames: number;
  /** bytes the decoded float32 input may take (in memory at once) */
  maxBytes: number;
}

export const DEFAULT_LIMITS: InputLimits = Object.freeze({ maxPixels: 2 ** 25, maxFrames: 10_000, maxBytes: 4 * 2 ** 30 });

/** An input whose header claims more than a limit allows. */
export class InputLimitError extends UserError {}

/** The flag and the option that raise each limit, for the messages. */
const RAISE: Record<keyof InputLimits, string> = {
  maxPixels: '--max-frame-pixels (limits.maxPixels)',
  maxFrames: '--max-frames (limits.maxFrames)',
  maxBytes: '--max-input-bytes (limits.maxBytes)',
};

/** Bytes of `frames` decoded [3, H, W] float32 frames. */
export function decodedBytes(width: number, height: number, frames = 1): number {
  return 3 * 4 * width * height * frames;
}

/** A byte count as people read it (4 GiB, 512 MiB, 1.5 KiB). */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${+v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

function over(what: string, claim: string, key: keyof InputLimits, limit: string): InputLimitError {
  return new InputLimitError(`${what}: ${claim}, over the limit of ${limit}; raise it with ${RAISE[key]} to read it`);
}

/** The limits with any given field replacing the default's. */
export function resolveLimits(limits?: Partial<InputLimits>): InputLimits {
  return { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(limits ?? {}).filter(([, v]) => v !== undefined)) };
}

/**
 * Check a frame size (and, when `frames` is given, a clip of that many frames held whole) against
 * the limits: pixels per frame, the frame count, and the float32 bytes of the decode. `what` names
 * the file or header tag the numbers come from. Throws an InputLimitError naming the limit and how
 * to raise it.
 */
export function checkFrameLimits(what: string, width: number, height: number, frames: number | undefined, limits: InputLimits = DEFAULT_LIMITS): void {
  const pixels = width * height;
  if (pixels > limits.maxPixels) {
    throw over(what, `${width}x${height} (W x H) is ${pixels} pixels a frame`, 'maxPixels', `${limits.maxPixels} pixels`);
  }
  if (frames !== undefined) checkFrameCount(what, frames, limits);
  const n = frames ?? 1;
  const bytes = decodedBytes(width, height, n);
  if (bytes > limits.maxBytes) {
    const claim = `${n === 1 ? 'one' : `${n} frames of`} ${width}x${height} (W x H) decode${n === 1 ? 's' : ''} to ${formatBytes(bytes)} of float32`;
    throw over(what, claim, 'maxBytes', formatBytes(limits.maxBytes));
  }
}

/** Check a frame count alone (a streaming reader holds one frame at a time, so its bytes are one frame's). */
export function checkFrameCount(what: string, frames: number, limits: InputLimits = DEFAULT_LIMITS): void {
  if (frames > limits.maxFrames) throw over(what, `${frames} frames`, 'maxFrames', `${limits.maxFrames} frames`);
}

/** Check a byte count (e.g. of tensors a header claims) against maxBytes. */
export function checkByteLimit(what: string, claim: string, bytes: number, limits: InputLimits = DEFAULT_LIMITS): void {
  if (bytes > limits.maxBytes) throw over(what, `${claim} (${formatBytes(bytes)})`, 'maxBytes', formatBytes(limits.maxBytes));
}

/**
 * A limit flag's value: a positive integer, optionally with a binary or decimal suffix (4GiB,
 * 512MiB, 2G = 2 GiB, 1.5e9); null when malformed.
 */
export function parseLimit(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgtp]?)(i?b?)\s*$/i.exec(text);
  if (!m) return null;
  const unit = m[2].toLowerCase();
  const decimal = m[3].toLowerCase() === 'b' && unit !== '';
  const base = decimal ? 1000 : 1024;
  const pow = unit === '' ? 0 : 'kmgtp'.indexOf(unit) + 1;
  if (m[3] !== '' && unit === '' && m[3].toLowerCase() !== 'b') return null;
  const v = Number(m[1]) * base ** pow;
  return Number.isSafeInteger(Math.round(v)) && Math.round(v) >= 1 ? Math.round(v) : null;
}
