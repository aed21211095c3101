// Counting NaN and infinite elements on their stored bits, so the count is the same whatever the
// widening would do (a bf16 / f16 NaN keeps its payload; a subnormal or the largest finite value is
// finite in every dtype).
import type { DType, RawArray } from '../dtype.js';

/** Exponent field (all ones means NaN or Inf) and mantissa field of each float storage. */
const FIELDS: Record<'f32' | 'f16' | 'bf16', { exp: number; man: number }> = {
  f32: { exp: 0x7f800000, man: 0x007fffff },
  bf16: { exp: 0x7f80, man: 0x007f },
  f16: { exp: 0x7c00, man: 0x03ff },
};

/** [NaN count, ±Inf count] of raw elements of `dtype` (i32 holds neither). */
export function countNonFinite(dtype: DType, raw: RawArray): Int32Array {
  const out = new Int32Array(2);
  if (dtype === 'i32') return out;
  const { exp, man } = FIELDS[dtype];
  const bits = dtype === 'f32' ? new Uint32Array(raw.buffer, raw.byteOffset, raw.length) : (raw as Uint16Array);
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if ((b & exp) !== exp) continue;
    if (b & man) nan++;
    else inf++;
  }
  out[0] = Math.min(nan, 0x7fffffff);
  out[1] = Math.min(inf, 0x7fffffff);
  return out;
}
