// Counting NaN and infinite elements: a grid-stride pass over the raw 32-bit words of the input
// (ops/finite.ts binds every float storage as plain u32 words, so no float is ever loaded: WGSL may
// assume floats are finite, and a load or compare could canonicalise or fold a NaN away), one
// shared-memory tree per workgroup into partial counts, then one workgroup summing the partials.
// A word holds one f32 or two 16-bit halves; the upper half of the last word of an odd-length
// half tensor is padding (whatever the pooled buffer held) and is never counted.
import type { KernelFamily } from '../kernel.js';

// ---- tunables
/** invocations per workgroup */
export const WG = 256;
/** most workgroups of the counting pass (each invocation then strides over the rest) */
export const MAX_GROUPS = 1024;
/** fewest words per invocation before another workgroup is added (the tree and its barriers cost
 *  about as much as a few dozen loads; on a software adapter, far more) */
export const MIN_WORDS_PER_INVOCATION = 32;

export const FINITE: KernelFamily = { name: 'finite', inputs: ['x'], outputs: { part: 'i32', out: 'i32' }, code: /* wgsl */ `
// ---- specialisation: storage of x, 0 f32, 1 bf16, 2 f16
override MODE: u32 = 0u;
const WG: u32 = ${WG}u;

struct Params {
  n: u32,      // elements of x
  words: u32,  // 32-bit words holding them
  groups: u32, // partials to sum (count_final)
  _pad: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

var<workgroup> s_nan: array<u32, ${WG}>;
var<workgroup> s_inf: array<u32, ${WG}>;

/** (1, 0) for a NaN, (0, 1) for an infinity, else (0, 0): exponent all ones, mantissa zero or not. */
fn classify(b: u32, expo: u32, man: u32) -> vec2<u32> {
  let special = (b & expo) == expo;
  let nan = special && (b & man) != 0u;
  return vec2<u32>(select(0u, 1u, nan), select(0u, 1u, special && !nan));
}

fn count_word(w: u32, wi: u32) -> vec2<u32> {
  if (MODE == 0u) { return classify(w, 0x7f800000u, 0x007fffffu); }
  let expo = select(0x7c00u, 0x7f80u, MODE == 1u);
  let man = select(0x03ffu, 0x007fu, MODE == 1u);
  var c = classify(w & 0xffffu, expo, man);
  if (2u * wi + 1u < P.n) { c = c + classify(w >> 16u, expo, man); }
  return c;
}

/** Tree-sum of this workgroup's (s_nan, s_inf); the totals end in slot 0. */
fn tree(t: u32) {
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    workgroupBarrier();
    if (t < s) {
      s_nan[t] = s_nan[t] + s_nan[t + s];
      s_inf[t] = s_inf[t] + s_inf[t + s];
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(${WG})
fn count_main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * WG;
  var acc = vec2<u32>(0u, 0u);
  for (var w = wid.x * WG + t; w < P.words; w = w + stride) {
    // bitcast: x is declared u32 when bound (raw words); the identity keeps this entry valid in
    // the module compiled for count_final, where x is unbound and declared f32
    acc = acc + count_word(bitcast<u32>(x[w]), w);
  }
  s_nan[t] = acc.x;
  s_inf[t] = acc.y;
  tree(t);
  if (t == 0u) {
    part[2u * wid.x] = bitcast<i32>(s_nan[0]);
    part[2u * wid.x + 1u] = bitcast<i32>(s_inf[0]);
  }
}

@compute @workgroup_size(${WG})
fn count_final(@builtin(local_invocation_index) t: u32) {
  var acc = vec2<u32>(0u, 0u);
  for (var g = t; g < P.groups; g = g + WG) {
    acc = acc + vec2<u32>(bitcast<u32>(part[2u * g]), bitcast<u32>(part[2u * g + 1u]));
  }
  s_nan[t] = acc.x;
  s_inf[t] = acc.y;
  tree(t);
  if (t == 0u) {
    out[0] = i32(min(s_nan[0], 0x7fffffffu));
    out[1] = i32(min(s_inf[0], 0x7fffffffu));
  }
}
` };
