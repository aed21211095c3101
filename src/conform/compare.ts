// The conformance rule: |got - want| <= atol + rtol * |want| elementwise; integers exactly.
import type { Tolerance } from './case.js';

export interface Comparison {
  max_abs: number;
  max_rel: number;
  pass: boolean;
  /** first failing element, for messages */
  worst?: { index: number; got: number; want: number };
  note?: string;
}

export function compareArrays(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, exact = false): Comparison {
  if (got.length !== want.length) {
    return { max_abs: Infinity, max_rel: Infinity, pass: false, note: `got ${got.length} elements, want ${want.length}` };
  }
  let maxAbs = 0;
  let maxRel = 0;
  // a NaN on one side only is not a large error but no number at all: the maxima say NaN
  let nanMismatch = false;
  let pass = true;
  let worst: Comparison['worst'];
  let worstExcess = -Infinity;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    let diff: number;
    if (Number.isNaN(w) || Number.isNaN(g)) {
      diff = Number.isNaN(w) && Number.isNaN(g) ? 0 : Number.NaN;
      if (diff !== 0) nanMismatch = true;
    }
    else if (g === w) diff = 0;
    else diff = Math.abs(g - w);
    const rel = diff === 0 ? 0 : diff / Math.max(Math.abs(w), 1e-30);
    if (diff > maxAbs) maxAbs = diff;
    if (rel > maxRel) maxRel = rel;
    // equal values match whatever the tolerance (NaN == NaN here, and inf - inf would be NaN)
    const excess = diff === 0 ? 0 : diff - (exact ? 0 : tol.atol + tol.rtol * Math.abs(w));
    if (excess > 0 || Number.isNaN(excess)) {
      pass = false;
      if (excess > worstExcess || worst === undefined) {
        worstExcess = excess;
        worst = { index: i, got: g, want: w };
      }
    }
  }
  return { max_abs: nanMismatch ? Number.NaN : maxAbs, max_rel: nanMismatch ? Number.NaN : maxRel, pass, ...(worst ? { worst } : {}) };
}

export function compareStrings(got: readonly string[], want: readonly string[]): Comparison {
  const n = Math.max(got.length, want.length);
  let bad = -1;
  for (let i = 0; i < n; i++) if (got[i] !== want[i]) { bad = i; break; }
  return bad < 0
    ? { max_abs: 0, max_rel: 0, pass: true }
    : { max_abs: Infinity, max_rel: Infinity, pass: false, note: `string ${bad} differs: got ${JSON.stringify(got[bad])?.slice(0, 200)}, want ${JSON.stringify(want[bad])?.slice(0, 200)}` };
}
