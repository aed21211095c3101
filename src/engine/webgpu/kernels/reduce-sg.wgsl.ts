// reduce_main / softmax_* with the lanes of a work column combined through subgroup operations
// instead of the workgroup-memory tree: one barrier instead of log2(SPLIT). Every lane parks its
// partial in workgroup memory; then each subgroup whose lanes all belong to one column folds that
// column's SPLIT partials (SPLIT / lanes each) and combines the lanes with subgroupAdd / Max, so
// every lane gets the column's result without further barriers. Used for rows (ROWMODE), where a
// column's SPLIT invocations are neighbours; see kernels/subgroup.wgsl.ts for what is (not) assumed
// about subgroups. The module is REDUCE's plus these entries (same bindings, same Params).
import type { KernelFamily } from '../kernel.js';
import { REDUCE, reduceEntry, softmaxEntries } from './reduce.wgsl.js';
import { SUBGROUP_DIRECTIVES, SUBGROUP_LANES, SUBGROUP_MINMAX } from './subgroup.wgsl.js';

export const REDUCE_SG: KernelFamily = { ...REDUCE, name: 'reduce-sg', directives: SUBGROUP_DIRECTIVES, code: `${REDUCE.code}
${SUBGROUP_LANES}
${SUBGROUP_MINMAX}

fn sg_combine(v: f32) -> f32 {
  switch OP {
    case 1u: { return sg_max_nan(v); }
    case 2u: { return sg_min_nan(v); }
    default: { return subgroupAdd(v); }
  }
}

// The combined value of lane l's column (as tree gives it).
fn tree_sg(l: Lane, v: f32) -> f32 {
  wv[l.slot] = v;
  workgroupBarrier();
  let base = l.c * SPLIT;
  var acc = identity();
  if (subgroupAll(l.c == subgroupBroadcastFirst(l.c))) {
    let ln = sg_lanes();
    for (var j = ln.x; j < SPLIT; j += ln.y) { acc = combine(acc, wv[base + j]); }
    return sg_combine(acc);
  }
  for (var j = 0u; j < SPLIT; j++) { acc = combine(acc, wv[base + j]); }
  return acc;
}

// (max, sum of exp) statistics over the subgroup. Maxima are never NaN (ms_push); a NaN sum
// propagates through the add.
fn ms_sg(ms: vec2<f32>) -> vec2<f32> {
  let m = subgroupMax(ms.x);
  return vec2<f32>(m, subgroupAdd(select(ms.y * exp(ms.x - m), ms.y, m == neg_inf_f32())));
}

fn ms_tree_sg(l: Lane, ms: vec2<f32>) -> vec2<f32> {
  wm[l.slot] = ms.x;
  wv[l.slot] = ms.y;
  workgroupBarrier();
  let base = l.c * SPLIT;
  var acc = vec2<f32>(neg_inf_f32(), 0.0);
  if (subgroupAll(l.c == subgroupBroadcastFirst(l.c))) {
    let ln = sg_lanes();
    for (var j = ln.x; j < SPLIT; j += ln.y) { acc = ms_merge(acc, vec2<f32>(wm[base + j], wv[base + j])); }
    return ms_sg(acc);
  }
  for (var j = 0u; j < SPLIT; j++) { acc = ms_merge(acc, vec2<f32>(wm[base + j], wv[base + j])); }
  return acc;
}

${reduceEntry('_sg')}

${softmaxEntries('_sg')}
` };
