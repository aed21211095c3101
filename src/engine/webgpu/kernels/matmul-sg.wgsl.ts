// gemv split (the decode GEMV on GPUs: one workgroup per (row, 4 columns), its invocations
// striding over K) with the partial dot products combined by a subgroup instead of the
// workgroup-memory tree: one barrier instead of log2(GV_WG) + 1. After the barrier the subgroup
// holding invocation 0 folds the GV_WG partials (GV_WG / lanes each) and adds across its lanes.
// Nothing is assumed about the subgroup size or layout (kernels/subgroup.wgsl.ts). The module is
// MATMUL's plus this entry.
import type { KernelFamily } from '../kernel.js';
import { GV_WG, MATMUL, gemvSplitEntry } from './matmul.wgsl.js';
import { SUBGROUP_DIRECTIVES, SUBGROUP_LANES } from './subgroup.wgsl.js';

export const MATMUL_SG: KernelFamily = { ...MATMUL, name: 'matmul-sg', directives: SUBGROUP_DIRECTIVES, code: `${MATMUL.code}
${SUBGROUP_LANES}

${gemvSplitEntry('gemv_split_sg', `  workgroupBarrier();
  if (subgroupAny(li == 0u)) {
    let ln = sg_lanes();
    var t = vec4<f32>();
    for (var j = ln.x; j < ${GV_WG}u; j += ln.y) { t += gv_red[j]; }
    let r = subgroupAdd(t);
    if (li == 0u) { store_row4(bt, m, n0, r); }
  }`)}
` };
