// WGSL that several kernel families share, and the TypeScript generators of the WGSL shapes they
// all repeat. The prelude (kernel.ts) splices GRID into every family; a family splices the rest
// where it needs them, so each helper is written once.

/**
 * Invocation / workgroup index over a 2D grid of workgroups: dispatches past the per-dimension
 * limit fold into y (context.ts grid1d), and every entry decodes its index through these.
 */
export const GRID = `fn flat_id(gid: vec3<u32>, nwg: vec3<u32>, wg: u32) -> u32 { return gid.x + gid.y * nwg.x * wg; }
fn wg_id(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }`;

/**
 * Float special values by their bits. WGSL lets implementations assume floats are never NaN or
 * infinite, so 'x != x' may fold away and NaN / inf cannot be written as constants: the tests are
 * on the bits and the values are made from runtime bit patterns. max_nan / min_nan are
 * torch.maximum / torch.minimum: a NaN in either operand gives NaN (WGSL's max / min may return the
 * other operand).
 */
export const FLOAT_BITS = `fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn nan_f32() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}
fn inf_f32() -> f32 {
  var bits = 0x7f800000u;
  return bitcast<f32>(bits);
}
fn neg_inf_f32() -> f32 {
  var bits = 0xff800000u;
  return bitcast<f32>(bits);
}
fn max_nan(a: f32, b: f32) -> f32 { return select(select(max(a, b), b, is_nan(b)), a, is_nan(a)); }
fn min_nan(a: f32, b: f32) -> f32 { return select(select(min(a, b), b, is_nan(b)), a, is_nan(a)); }`;

/** Element d (a WGSL u32 expression) of a uniform array of vec4s packing 4 values each. */
export const packed = (array: string, d: string): string => `${array}[${d} >> 2u][${d} & 3u]`;

/**
 * An entry point with one invocation per element: `index` = the flat invocation index over
 * workgroups of `wg` invocations, returning at once when it is not below `limit`.
 */
export function perElement(name: string, body: string, o: { wg?: string; index?: string; limit?: string } = {}): string {
  const { wg = 'WG', index = 'i', limit = 'P.n' } = o;
  return `@compute @workgroup_size(${wg})
fn ${name}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let ${index} = flat_id(gid, nwg, ${wg});
  if (${index} >= ${limit}) { return; }
${body}
}`;
}

/**
 * A loop over the axes of a row-major index, innermost first, from axis `last` (a WGSL i32
 * expression) down to 0: each step peels the coordinate `c` along axis `du` (extent `size(du)`)
 * off the running index variable `rem`, then runs `body`. Axes for which `skip` holds are passed
 * over without consuming `rem`.
 */
export function eachAxis(o: { last: string; rem: string; size: (du: string) => string; skip?: string }, body: string): string {
  const skip = o.skip ? `\n    if (${o.skip}) { continue; }` : '';
  return `  for (var d = ${o.last}; d >= 0; d--) {
    let du = u32(d);${skip}
    let s = ${o.size('du')};
    let c = ${o.rem} % s;
    ${o.rem} = ${o.rem} / s;
${body}
  }`;
}

/**
 * An entry point with one workgroup of `wg` invocations per item: `index` = the workgroup's flat
 * index, returning at once (uniformly for the workgroup) when it is not below `limit`; `local` =
 * the invocation's index within the workgroup.
 */
export function perWorkgroup(name: string, body: string, o: { wg: string; index: string; limit: string; local?: string }): string {
  const local = o.local ?? 't';
  return `@compute @workgroup_size(${o.wg})
fn ${name}(@builtin(local_invocation_index) ${local}: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let ${o.index} = wg_id(wid, nwg);
  if (${o.index} >= ${o.limit}) { return; }
${body}
}`;
}
