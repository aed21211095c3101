// What the subgroup variants of the kernels share. They are built only for a device that was
// given 'subgroups' (ops/subgroups.ts decides), as families of their own, so that the modules of
// the other kernels compile everywhere.
//
// Nothing here assumes a subgroup size (WebGPU allows 4..128 and it may differ per pipeline) nor
// how local_invocation_index maps onto subgroups (not specified by WGSL): a subgroup works on a
// column only when every active lane of it belongs to that column (checked with subgroupAll),
// and its lanes are numbered densely among the active ones (subgroupExclusiveAdd), so a partial
// subgroup still covers every element. Lanes of a subgroup that straddles columns fall back to
// folding their column alone.

/**
 * The module directives: the extension, and the subgroup-uniformity diagnostic off because the
 * subgroup calls sit under conditions that are uniform per subgroup (a subgroupAll result), which
 * WGSL's analysis (workgroup-wide) cannot see.
 */
export const SUBGROUP_DIRECTIVES: readonly string[] = ['enable subgroups;', 'diagnostic(off, subgroup_uniformity);'];

/** sg_lanes(): (dense rank of this lane among the subgroup's active lanes, their count). */
export const SUBGROUP_LANES = /* wgsl */ `
fn sg_lanes() -> vec2<u32> { return vec2<u32>(subgroupExclusiveAdd(1u), subgroupAdd(1u)); }
`;

/**
 * sg_max_nan / sg_min_nan: subgroupMax / subgroupMin that propagate NaN as torch.maximum does
 * (what subgroupMax does with a NaN is the implementation's choice). Needs FLOAT_BITS.
 */
export const SUBGROUP_MINMAX = /* wgsl */ `
fn sg_max_nan(v: f32) -> f32 {
  let m = subgroupMax(select(v, neg_inf_f32(), is_nan(v)));
  return select(m, nan_f32(), subgroupAny(is_nan(v)));
}
fn sg_min_nan(v: f32) -> f32 {
  let m = subgroupMin(select(v, inf_f32(), is_nan(v)));
  return select(m, nan_f32(), subgroupAny(is_nan(v)));
}
`;
