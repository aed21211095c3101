// The op registry: every op of the op table (src/engine/ops.ts) with its checked cases. check-ops
// runs them on a backend against the CPU oracle, test/ops/registry.test.ts runs them on WebGPU, and
// the kernel bench builds its rows from the same factories at larger shapes.
import { CONV_CASES } from './conv.js';
import { ELEMENTWISE_CASES } from './elementwise.js';
import { IMAGE_CASES } from './image.js';
import { LINALG_CASES } from './linalg.js';
import { MOVEMENT_CASES } from './movement.js';
import { NORM_CASES } from './norm.js';
import { REDUCE_CASES } from './reduce.js';
import type { OpCase } from './case.js';

export { type OpCase, type OpOutput, type OpSetup, type OpTolerance, EXACT, inputValues, makeCase, rng } from './case.js';
export { attentionCase, causalPairs, linearCase, matmulCase, ropeCase } from './linalg.js';
export { convCase, convOutSize } from './conv.js';
export { adaLnCase, normCase } from './norm.js';
export { permuteCase } from './movement.js';
export { binaryCase, unaryCase } from './elementwise.js';
export { reduceCase, softmaxCase } from './reduce.js';
export { resizeU8Case } from './image.js';

/** Every checked case, grouped by family in the order the table prints them. */
export const OP_CASES: readonly OpCase[] = [
  ...LINALG_CASES,
  ...CONV_CASES,
  ...NORM_CASES,
  ...REDUCE_CASES,
  ...ELEMENTWISE_CASES,
  ...MOVEMENT_CASES,
  ...IMAGE_CASES,
];

/** The op and family names the registry knows (what --op takes), sorted. */
export function opNames(cases: readonly OpCase[] = OP_CASES): string[] {
  return [...new Set(cases.flatMap((c) => [c.op, c.family]))].sort();
}

/**
 * The cases of the named ops or families (all when `ops` is empty). Returns the unknown names
 * instead when any name matches nothing, so a caller can say which ones exist.
 */
export function selectOpCases(ops: readonly string[], cases: readonly OpCase[] = OP_CASES): { cases: OpCase[]; unknown: string[] } {
  if (!ops.length) return { cases: [...cases], unknown: [] };
  const known = new Set(opNames(cases));
  const unknown = ops.filter((o) => !known.has(o));
  const want = new Set(ops);
  return { cases: cases.filter((c) => want.has(c.op) || want.has(c.family)), unknown };
}
