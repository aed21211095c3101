// NaN and Inf as a user error: a model whose weights or inputs hold them produces garbage that a
// writer would turn into plausible bytes (a NaN pixel becomes 0) or a metric into `PSNR NaN`, so
// they are refused where they are found, naming what holds them. The device-side count is the
// engine op countNonFinite (ops.ts); this file holds the error and the host-side count.
import { countNonFinite } from './cpu/finite.js';
import type { DType, RawArray } from './dtype.js';
import { UserError } from './errors.js';

/** NaN or ±Inf found in weights, an input or a model output. */
export class NonFiniteError extends UserError {
  constructor(
    message: string,
    readonly nan: number,
    readonly inf: number,
    /** values examined */
    readonly total: number,
  ) {
    super(message);
  }
}

/** [NaN count, ±Inf count] of host values. */
export function countNonFiniteValues(values: ArrayLike<number>): [number, number] {
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) {
      if (Number.isNaN(v)) nan++;
      else inf++;
    }
  }
  return [nan, inf];
}

/** [NaN count, ±Inf count] of raw stored elements (half types as their 16-bit patterns; i32 holds neither). */
export function countNonFiniteRaw(dtype: DType, raw: RawArray): [number, number] {
  const c = countNonFinite(dtype, raw);
  return [c[0], c[1]];
}

/** `holds 3 NaN and 0 Inf of 4096 values` */
export function nonFiniteCounts(nan: number, inf: number, total: number): string {
  return `holds ${nan} NaN and ${inf} Inf of ${total} values`;
}

/**
 * Refuse host values holding NaN or Inf as a user's data: `<what>: <name> holds N NaN and M Inf of
 * K values; expected finite numbers` (what: the file or argument they came from).
 */
export function requireFiniteValues(values: ArrayLike<number>, what: string, name: string): void {
  const [nan, inf] = countNonFiniteValues(values);
  if (nan || inf) throw new NonFiniteError(`${what}: ${name} ${nonFiniteCounts(nan, inf, values.length)}; expected finite numbers`, nan, inf, values.length);
}

/** requireFiniteValues for raw stored elements of `dtype` (a checkpoint's or a file's tensor as read). */
export function requireFiniteRaw(dtype: DType, raw: RawArray, what: string, name: string): void {
  const [nan, inf] = countNonFiniteRaw(dtype, raw);
  if (nan || inf) throw new NonFiniteError(`${what}: ${name} ${nonFiniteCounts(nan, inf, raw.length)}; expected finite numbers`, nan, inf, raw.length);
}
