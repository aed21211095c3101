// Matmul family: out[bt, m, n] = alpha * sum_k A(bt, m, k) * B(bb, k, n) + bias[n], f32 accumulation.
// A(bt, m, k) = a[bt, m, k] (or a[bt, k, m] when TA); B(bb, k, n) = b[bb, k, n] (or b[bb, n, k] when TB);
// bb = bt, or 0 when b is shared by the batch (P.b_stride = 0). Bindings a, b, bias, out come from the
// prelude (kernel.ts); the texture-fed entries read copies of a and b from textures ta/tb instead.
//
// Versions (llm.c style: every one kept, each checked against the CPU oracle, selectable from
// src/engine/webgpu/ops/matmul.ts through 'matmulConfig.version'):
//   v1 naive        one invocation per output, scalar loads. The reference point.
//   v2 shared       64x64 tile per 16x16 workgroup staged through workgroup memory, 4x4 per thread.
//                   The classic GPU kernel: coalesced loads, each element reused 64x from shared memory.
//   v3 reg4         4x4 per thread held in one mat4x4, 4-wide loads along the contiguous dim, no
//                   workgroup memory.
//   v4 reg16        16x16 per thread (4x4 mat4x4 accumulators), 4-wide stores. On llvmpipe every
//                   storage load is a per-lane scalar loop (~25 cycles per lane-element whatever the
//                   vector width), so the lever is arithmetic per loaded element: 8 FMAs vs 2 for v3.
//   v5 tex32x16     32x16 per thread fed from textures (copies of a and b made with copyBufferToTexture):
//                   llvmpipe's texel fetch is a real SIMD gather, ~13x cheaper per element than a
//                   storage load. Taller beats wider here (a workgroup's lanes share the 32 A rows).
//   v6 tex4x32      4x32 per thread from textures, for few rows (2 <= M <= 16).
//   gemv split      M tiny on a GPU: a workgroup reduces one (row, 4 columns) over K, coalesced along K.
//   gemv tex        M tiny on llvmpipe: 1x32 per thread from textures, B read exactly once.
//   gemv tex8       gemv tex for half weights stored [N, K] (nn.Linear, the decode case): 8 halves per
//                   texel, so half the fetches (the fetches, not the arithmetic, bound a GEMV).
// llvmpipe's JIT time grows superlinearly with the number of load / store sites (each one is a
// per-lane loop of basic blocks): a 32x32 tile with scalar stores takes ~40 s to compile, 32x16
// with 4-wide stores ~2 s. Hence the 4-wide stores (out4, N % 4 == 0), tiles no bigger than these,
// and bodies written out rather than array-indexed loops (whose unrolling alone takes ~12 s).
// Dispatch, version choice and the texture copies live in src/engine/webgpu/ops/matmul.ts.
import type { KernelFamily } from '../kernel.js';

export const MATMUL: KernelFamily = {
  name: 'matmul',
  inputs: ['a', 'b', 'bias'],
  outputs: { out: 'f32' },
  code: /* wgsl */ `
// ---- tunables
override WG: u32 = 64;            // invocations per workgroup of the 1D-grid entries
// ---- specialisation (per pipeline; the branches on them fold away)
override TA: bool = false;        // a stored [batch, K, M]
override TB: bool = false;        // b stored [batchB, N, K]
override VA: bool = false;        // a's contiguous dim (K, or M when TA) is a multiple of 4: ld4_a is legal
override VB: bool = false;        // same for b (K when TB, else N)
override HAS_BIAS: bool = false;
override KT: bool = false;        // K % 4 != 0: the last 4-wide step is masked (storage entries only)
override VO: bool = false;        // N % 4 == 0: output rows are whole vec4s (required by the out4 entries)
override AH: u32 = 0u;            // texture encoding of a: 0 f32 bits (rgba32uint), 1 bf16, 2 f16 (rg32uint)
override BH: u32 = 0u;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  tiles_m: u32,
  tiles_n: u32,
  b_stride: u32,   // elements between batches of b: K*N, or 0 when b is shared
  alpha: f32,
  // Where this problem's output lives: out(bt, m, n) is out[(bt * M + m) * ldo + out_off + n], bias
  // is read from bias_off. The texture path splits a problem too big for one texture into chunks
  // (rows of a, columns of b) and runs each as a smaller problem with these set; else N, 0, 0.
  ldo: u32,
  out_off: u32,
  bias_off: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

// Textures holding the raw bits of a and b, 4 elements per texel, laid out linearly 4096 texels a row.
@group(0) @binding(5) var ta: texture_2d<u32>;
@group(0) @binding(6) var tb: texture_2d<u32>;
// The output seen as vec4s (same binding as the prelude's 'out'; an entry uses one or the other).
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;

// ------------------------------------------------------------------ addressing

fn a_idx(bt: u32, m: u32, k: u32) -> u32 {
  let base = bt * P.M * P.K;
  if (TA) { return base + k * P.M + m; }
  return base + m * P.K + k;
}

fn b_idx(bt: u32, k: u32, n: u32) -> u32 {
  let base = bt * P.b_stride;
  if (TB) { return base + n * P.K + k; }
  return base + k * P.N + n;
}

fn A(bt: u32, m: u32, k: u32) -> f32 { return ld_a(a_idx(bt, m, k)); }
fn B(bt: u32, k: u32, n: u32) -> f32 { return ld_b(b_idx(bt, k, n)); }

// 4 consecutive elements of a / b starting at element e (a multiple of 4 when VA / VB).
fn lda4(e: u32) -> vec4<f32> {
  if (VA) { return ld4_a(e); }
  return vec4<f32>(ld_a(e), ld_a(e + 1u), ld_a(e + 2u), ld_a(e + 3u));
}
fn ldb4(e: u32) -> vec4<f32> {
  if (VB) { return ld4_b(e); }
  return vec4<f32>(ld_b(e), ld_b(e + 1u), ld_b(e + 2u), ld_b(e + 3u));
}

// Blocks of the product, as mat4x4 (column j, row i):
//   blockA(mb, k)[kk][i] = A(row(mb, i), k + kk)      (4 rows x 4 k)
//   blockB(k, nb)[j][kk] = B(k + kk, col(nb, j))      (4 k x 4 columns)
// so C += blockA * blockB, C[j][i] being out(row(mb, i), col(nb, j)). mb = mbase(m), nb = nbase(n):
// rows / columns past M / N are clamped to valid ones, in the same way for loads and stores, so a
// clamped lane recomputes (and rewrites with the same value) an output it owns. Each block is four
// 4-wide loads along whichever dim is contiguous, or 16 scalar ones when that dim is unaligned.
fn mbase(m: u32) -> u32 {
  if (TA && VA) { return min(m, P.M - 4u); }
  return m;
}
fn nbase(n: u32) -> u32 {
  if (VO) { return min(n, P.N - 4u); }
  return n;
}
fn row(mb: u32, i: u32) -> u32 { return min(mb + i, P.M - 1u); }
fn col(nb: u32, j: u32) -> u32 { return min(nb + j, P.N - 1u); }

fn blockA(bt: u32, mb: u32, k: u32) -> mat4x4<f32> { return maskA(blockA_(bt, mb, k), k); }
fn blockB(bt: u32, k: u32, nb: u32) -> mat4x4<f32> { return maskB(blockB_(bt, k, nb), k); }

fn colA4(bt: u32, mb: u32, k: u32) -> vec4<f32> {
  return vec4<f32>(A(bt, row(mb, 0u), k), A(bt, row(mb, 1u), k), A(bt, row(mb, 2u), k), A(bt, row(mb, 3u), k));
}
fn rowB4(bt: u32, k: u32, nb: u32) -> vec4<f32> {
  return vec4<f32>(B(bt, k, col(nb, 0u)), B(bt, k, col(nb, 1u)), B(bt, k, col(nb, 2u)), B(bt, k, col(nb, 3u)));
}

fn blockA_(bt: u32, mb: u32, k: u32) -> mat4x4<f32> {
  if (TA) {
    if (VA) {
      return mat4x4<f32>(lda4(a_idx(bt, mb, k)), lda4(a_idx(bt, mb, k + 1u)), lda4(a_idx(bt, mb, k + 2u)), lda4(a_idx(bt, mb, k + 3u)));
    }
    return mat4x4<f32>(colA4(bt, mb, k), colA4(bt, mb, k + 1u), colA4(bt, mb, k + 2u), colA4(bt, mb, k + 3u));
  }
  return transpose(mat4x4<f32>(lda4(a_idx(bt, row(mb, 0u), k)), lda4(a_idx(bt, row(mb, 1u), k)),
                               lda4(a_idx(bt, row(mb, 2u), k)), lda4(a_idx(bt, row(mb, 3u), k))));
}

fn blockB_(bt: u32, k: u32, nb: u32) -> mat4x4<f32> {
  if (TB) {
    return mat4x4<f32>(ldb4(b_idx(bt, k, col(nb, 0u))), ldb4(b_idx(bt, k, col(nb, 1u))),
                       ldb4(b_idx(bt, k, col(nb, 2u))), ldb4(b_idx(bt, k, col(nb, 3u))));
  }
  if (VB) {
    let n4 = min(nb, P.N - 4u);
    return transpose(mat4x4<f32>(ldb4(b_idx(bt, k, n4)), ldb4(b_idx(bt, k + 1u, n4)), ldb4(b_idx(bt, k + 2u, n4)), ldb4(b_idx(bt, k + 3u, n4))));
  }
  return transpose(mat4x4<f32>(rowB4(bt, k, nb), rowB4(bt, k + 1u, nb), rowB4(bt, k + 2u, nb), rowB4(bt, k + 3u, nb)));
}

// K % 4 tail: the last step reads past K (clamped to valid memory); zero what lies past it with a
// select (not a multiply, so that garbage inf / NaN cannot leak in). Costs ALU only when KT.
fn tail_mask(k: u32) -> vec4<bool> {
  return vec4<bool>(k < P.K, k + 1u < P.K, k + 2u < P.K, k + 3u < P.K);
}
fn maskA(x: mat4x4<f32>, k: u32) -> mat4x4<f32> {
  if (!KT) { return x; }
  let z = vec4<f32>();
  return mat4x4<f32>(select(z, x[0], k < P.K), select(z, x[1], k + 1u < P.K), select(z, x[2], k + 2u < P.K), select(z, x[3], k + 3u < P.K));
}
fn maskB(x: mat4x4<f32>, k: u32) -> mat4x4<f32> {
  if (!KT) { return x; }
  let z = vec4<f32>();
  let t = tail_mask(k);
  return mat4x4<f32>(select(z, x[0], t), select(z, x[1], t), select(z, x[2], t), select(z, x[3], t));
}

// c + a * b for 4x4 blocks, and c + a b^T (rank 1), spelled as fma chains so that adapters that
// fuse get one rounding per step (llvmpipe 22.3 emits a multiply and an add either way).
fn mac(c: mat4x4<f32>, a: mat4x4<f32>, b: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
    fma(a[3], vec4<f32>(b[0].w), fma(a[2], vec4<f32>(b[0].z), fma(a[1], vec4<f32>(b[0].y), fma(a[0], vec4<f32>(b[0].x), c[0])))),
    fma(a[3], vec4<f32>(b[1].w), fma(a[2], vec4<f32>(b[1].z), fma(a[1], vec4<f32>(b[1].y), fma(a[0], vec4<f32>(b[1].x), c[1])))),
    fma(a[3], vec4<f32>(b[2].w), fma(a[2], vec4<f32>(b[2].z), fma(a[1], vec4<f32>(b[2].y), fma(a[0], vec4<f32>(b[2].x), c[2])))),
    fma(a[3], vec4<f32>(b[3].w), fma(a[2], vec4<f32>(b[3].z), fma(a[1], vec4<f32>(b[3].y), fma(a[0], vec4<f32>(b[3].x), c[3])))));
}
fn mac1(c: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(fma(a, vec4<f32>(b.x), c[0]), fma(a, vec4<f32>(b.y), c[1]), fma(a, vec4<f32>(b.z), c[2]), fma(a, vec4<f32>(b.w), c[3]));
}
// c + a * b for a row a (over k) and a block b (4 k x 4 columns): c[j] += sum_kk a[kk] b[j][kk].
fn macv(c: vec4<f32>, a: vec4<f32>, b: mat4x4<f32>) -> vec4<f32> {
  let t = transpose(b);
  return fma(vec4<f32>(a.w), t[3], fma(vec4<f32>(a.z), t[2], fma(vec4<f32>(a.y), t[1], fma(vec4<f32>(a.x), t[0], c))));
}

// ------------------------------------------------------------------ texture fetches

// Texel bits -> 4 values.
fn decode(w: vec4<u32>, h: u32) -> vec4<f32> {
  if (h == 1u) { return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u)); }
  if (h == 2u) { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
  return bitcast<vec4<f32>>(w);
}
// Elements e..e+3 (e a multiple of 4) of the texture copy of a / b.
fn tfa(e: u32) -> vec4<f32> { let t = e >> 2u; return decode(textureLoad(ta, vec2<u32>(t & 4095u, t >> 12u), 0), AH); }
fn tfb(e: u32) -> vec4<f32> { let t = e >> 2u; return decode(textureLoad(tb, vec2<u32>(t & 4095u, t >> 12u), 0), BH); }

// blockA / blockB from the textures. The texture path requires K % 4 == 0, N % 4 == 0 (VO) and the
// contiguous dim of each operand to be a multiple of 4 (so TA implies M % 4 == 0).
fn tblockA(bt: u32, mb: u32, k: u32) -> mat4x4<f32> {
  if (TA) {
    return mat4x4<f32>(tfa(a_idx(bt, mb, k)), tfa(a_idx(bt, mb, k + 1u)), tfa(a_idx(bt, mb, k + 2u)), tfa(a_idx(bt, mb, k + 3u)));
  }
  return transpose(mat4x4<f32>(tfa(a_idx(bt, row(mb, 0u), k)), tfa(a_idx(bt, row(mb, 1u), k)),
                               tfa(a_idx(bt, row(mb, 2u), k)), tfa(a_idx(bt, row(mb, 3u), k))));
}

fn tblockB(bt: u32, k: u32, nb: u32) -> mat4x4<f32> {
  if (TB) {
    return mat4x4<f32>(tfb(b_idx(bt, k, nb)), tfb(b_idx(bt, k, nb + 1u)), tfb(b_idx(bt, k, nb + 2u)), tfb(b_idx(bt, k, nb + 3u)));
  }
  return transpose(mat4x4<f32>(tfb(b_idx(bt, k, nb)), tfb(b_idx(bt, k + 1u, nb)), tfb(b_idx(bt, k + 2u, nb)), tfb(b_idx(bt, k + 3u, nb))));
}

// 8 halves b[e .. e+7] (e a multiple of 8) from an rgba32uint texture holding 8 per texel (gemv tex8).
fn tfb8(e: u32) -> mat2x4<f32> {
  let t = e >> 3u;
  let w = textureLoad(tb, vec2<u32>(t & 4095u, t >> 12u), 0);
  return mat2x4<f32>(decode(w, BH), decode(w.zwxy, BH));
}

// Row m of A over k..k+3.
fn trowA(bt: u32, m: u32, k: u32) -> vec4<f32> {
  if (TA) {
    let mb = m & ~3u;
    let c = m & 3u;
    return vec4<f32>(tfa(a_idx(bt, mb, k))[c], tfa(a_idx(bt, mb, k + 1u))[c], tfa(a_idx(bt, mb, k + 2u))[c], tfa(a_idx(bt, mb, k + 3u))[c]);
  }
  return tfa(a_idx(bt, m, k));
}

// ------------------------------------------------------------------ output

fn bias_at(n: u32) -> f32 {
  if (HAS_BIAS) { return ld_bias(P.bias_off + min(n, P.N - 1u)); }
  return 0.0;
}
fn bias4(n: u32) -> vec4<f32> {
  return vec4<f32>(bias_at(n), bias_at(n + 1u), bias_at(n + 2u), bias_at(n + 3u));
}

// out(m, n) = alpha * v + bias, skipped past M / N. Bias is read once per column by the callers:
// on llvmpipe every load and store is a per-lane loop, and their count drives compile time too.
fn st(bt: u32, m: u32, n: u32, v: f32, bias: f32) {
  if (m < P.M && n < P.N) { out[(bt * P.M + m) * P.ldo + P.out_off + n] = P.alpha * v + bias; }
}

// Writes the 4x4 block c (c[j][i] = out(m + i, n + j)).
fn store4(bt: u32, m: u32, n: u32, c: mat4x4<f32>) {
  let b = bias4(n);
  st(bt, m, n, c[0].x, b.x); st(bt, m + 1u, n, c[0].y, b.x); st(bt, m + 2u, n, c[0].z, b.x); st(bt, m + 3u, n, c[0].w, b.x);
  st(bt, m, n + 1u, c[1].x, b.y); st(bt, m + 1u, n + 1u, c[1].y, b.y); st(bt, m + 2u, n + 1u, c[1].z, b.y); st(bt, m + 3u, n + 1u, c[1].w, b.y);
  st(bt, m, n + 2u, c[2].x, b.z); st(bt, m + 1u, n + 2u, c[2].y, b.z); st(bt, m + 2u, n + 2u, c[2].z, b.z); st(bt, m + 3u, n + 2u, c[2].w, b.z);
  st(bt, m, n + 3u, c[3].x, b.w); st(bt, m + 1u, n + 3u, c[3].y, b.w); st(bt, m + 2u, n + 3u, c[3].z, b.w); st(bt, m + 3u, n + 3u, c[3].w, b.w);
}

// Writes the 4x4 block c as 4 row vectors (VO entries: one store site per row instead of four).
fn store4v(bt: u32, mb: u32, nb: u32, c: mat4x4<f32>) {
  let b = bias4(nb);
  let t = transpose(c);
  let base = bt * P.M;
  let o = P.out_off + nb;
  out4[((base + row(mb, 0u)) * P.ldo + o) >> 2u] = P.alpha * t[0] + b;
  out4[((base + row(mb, 1u)) * P.ldo + o) >> 2u] = P.alpha * t[1] + b;
  out4[((base + row(mb, 2u)) * P.ldo + o) >> 2u] = P.alpha * t[2] + b;
  out4[((base + row(mb, 3u)) * P.ldo + o) >> 2u] = P.alpha * t[3] + b;
}

// Writes 4 columns of one row.
fn store_row4(bt: u32, m: u32, n: u32, v: vec4<f32>) {
  let b = bias4(n);
  st(bt, m, n, v.x, b.x); st(bt, m, n + 1u, v.y, b.y); st(bt, m, n + 2u, v.z, b.z); st(bt, m, n + 3u, v.w, b.w);
}

// ------------------------------------------------------------------ v1 naive

// One output per invocation over the flat index (bt, m, n): K scalar loads of each operand per output.
@compute @workgroup_size(WG)
fn mm_v1_naive(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  let n = g % P.N;
  let r = g / P.N;
  let m = r % P.M;
  let bt = r / P.M;
  if (bt >= P.batch) { return; }
  var s = 0.0;
  for (var k = 0u; k < P.K; k++) { s = fma(A(bt, m, k), B(bt, k, n), s); }
  st(bt, m, n, s, bias_at(n));
}

// ------------------------------------------------------------------ v2 shared

// A 64x64 output tile per 16x16 workgroup; K walked in slabs of 16 staged through workgroup memory
// (8 KiB), each thread accumulating a 4x4 block. Each invocation stages one whole vec4 of each
// operand per slab (4 rows of A / 4 columns of B at one k): writing single components of a shared
// vec4 from different invocations would race on GPUs that store a component as read-modify-write.
// The (k, group) order of the staging follows the contiguous dim of each operand, so that
// neighbouring invocations read neighbouring addresses.
const V2_T: u32 = 64u;
const V2_KT: u32 = 16u;
var<workgroup> v2_a: array<vec4<f32>, 256>;   // [kk][m / 4]: A(m0 + m, k0 + kk)
var<workgroup> v2_b: array<vec4<f32>, 256>;   // [kk][n / 4]: B(k0 + kk, n0 + n)

fn v2_ld_a(bt: u32, m: u32, k: u32) -> f32 {
  if (m < P.M && k < P.K) { return A(bt, m, k); }
  return 0.0;
}
fn v2_ld_b(bt: u32, k: u32, n: u32) -> f32 {
  if (n < P.N && k < P.K) { return B(bt, k, n); }
  return 0.0;
}

@compute @workgroup_size(16, 16)
fn mm_v2_shared(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * nwg.x;
  let tn = w % P.tiles_n;
  let r = w / P.tiles_n;
  let tm = r % P.tiles_m;
  let bt = r / P.tiles_m;
  if (bt >= P.batch) { return; }
  let m0 = tm * V2_T;
  let n0 = tn * V2_T;
  // staging coordinates of this invocation: slab row kk, group g of 4 rows (A) / columns (B)
  var ka = li / 16u;
  var ga = li % 16u;
  if (!TA) { ka = li % 16u; ga = li / 16u; }
  var kb = li / 16u;
  var gb = li % 16u;
  if (TB) { kb = li % 16u; gb = li / 16u; }
  var c = mat4x4<f32>();
  for (var k0 = 0u; k0 < P.K; k0 += V2_KT) {
    let m = m0 + 4u * ga;
    let ka2 = k0 + ka;
    v2_a[ka * 16u + ga] = vec4<f32>(v2_ld_a(bt, m, ka2), v2_ld_a(bt, m + 1u, ka2), v2_ld_a(bt, m + 2u, ka2), v2_ld_a(bt, m + 3u, ka2));
    let n = n0 + 4u * gb;
    let kb2 = k0 + kb;
    v2_b[kb * 16u + gb] = vec4<f32>(v2_ld_b(bt, kb2, n), v2_ld_b(bt, kb2, n + 1u), v2_ld_b(bt, kb2, n + 2u), v2_ld_b(bt, kb2, n + 3u));
    workgroupBarrier();
    for (var kk = 0u; kk < V2_KT; kk++) {
      c = mac1(c, v2_a[kk * 16u + lid.y], v2_b[kk * 16u + lid.x]);
    }
    workgroupBarrier();
  }
  store4(bt, m0 + 4u * lid.y, n0 + 4u * lid.x, c);
}

// ------------------------------------------------------------------ v3 reg4

// 4x4 outputs per invocation over the flat index (bt, tile m, tile n): per 4 k, 8 four-wide loads
// feed 64 FMAs. The last step is masked when K % 4 != 0 (KT). Any shape (scalar, bounds-checked stores).
@compute @workgroup_size(WG)
fn mm_v3_reg4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  let tn = g % P.tiles_n;
  let r = g / P.tiles_n;
  let tm = r % P.tiles_m;
  let bt = r / P.tiles_m;
  if (bt >= P.batch) { return; }
  let m0 = tm * 4u;
  let n0 = tn * 4u;
  let mb0 = mbase(m0);
  let nb0 = nbase(n0);
  var c00 = mat4x4<f32>();
  for (var k = 0u; k < P.K; k += 4u) {
    let a0 = blockA(bt, mb0, k);
    let b0 = blockB(bt, k, nb0);
    c00 = mac(c00, a0, b0);
  }
  store4(bt, m0, n0, c00);
}

// ------------------------------------------------------------------ v4 reg16

// 16x16 outputs per invocation (16 mat4x4 accumulators, written out: NIR takes ~12 s to unroll the
// equivalent array-indexed loops on llvmpipe): per 4 k, 32 four-wide loads feed 1024 FMAs. VO only.
@compute @workgroup_size(WG)
fn mm_v4_reg16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  let tn = g % P.tiles_n;
  let r = g / P.tiles_n;
  let tm = r % P.tiles_m;
  let bt = r / P.tiles_m;
  if (bt >= P.batch) { return; }
  let m0 = tm * 16u;
  let n0 = tn * 16u;
  let mb0 = mbase(m0);
  let mb1 = mbase(m0 + 4u);
  let mb2 = mbase(m0 + 8u);
  let mb3 = mbase(m0 + 12u);
  let nb0 = nbase(n0);
  let nb1 = nbase(n0 + 4u);
  let nb2 = nbase(n0 + 8u);
  let nb3 = nbase(n0 + 12u);
  var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>(); var c02 = mat4x4<f32>(); var c03 = mat4x4<f32>();
  var c10 = mat4x4<f32>(); var c11 = mat4x4<f32>(); var c12 = mat4x4<f32>(); var c13 = mat4x4<f32>();
  var c20 = mat4x4<f32>(); var c21 = mat4x4<f32>(); var c22 = mat4x4<f32>(); var c23 = mat4x4<f32>();
  var c30 = mat4x4<f32>(); var c31 = mat4x4<f32>(); var c32 = mat4x4<f32>(); var c33 = mat4x4<f32>();
  for (var k = 0u; k < P.K; k += 4u) {
    let a0 = blockA(bt, mb0, k);
    let a1 = blockA(bt, mb1, k);
    let a2 = blockA(bt, mb2, k);
    let a3 = blockA(bt, mb3, k);
    let b0 = blockB(bt, k, nb0);
    let b1 = blockB(bt, k, nb1);
    let b2 = blockB(bt, k, nb2);
    let b3 = blockB(bt, k, nb3);
    c00 = mac(c00, a0, b0); c01 = mac(c01, a0, b1); c02 = mac(c02, a0, b2); c03 = mac(c03, a0, b3);
    c10 = mac(c10, a1, b0); c11 = mac(c11, a1, b1); c12 = mac(c12, a1, b2); c13 = mac(c13, a1, b3);
    c20 = mac(c20, a2, b0); c21 = mac(c21, a2, b1); c22 = mac(c22, a2, b2); c23 = mac(c23, a2, b3);
    c30 = mac(c30, a3, b0); c31 = mac(c31, a3, b1); c32 = mac(c32, a3, b2); c33 = mac(c33, a3, b3);
  }
  store4v(bt, mb0, nb0, c00);
  store4v(bt, mb0, nb1, c01);
  store4v(bt, mb0, nb2, c02);
  store4v(bt, mb0, nb3, c03);
  store4v(bt, mb1, nb0, c10);
  store4v(bt, mb1, nb1, c11);
  store4v(bt, mb1, nb2, c12);
  store4v(bt, mb1, nb3, c13);
  store4v(bt, mb2, nb0, c20);
  store4v(bt, mb2, nb1, c21);
  store4v(bt, mb2, nb2, c22);
  store4v(bt, mb2, nb3, c23);
  store4v(bt, mb3, nb0, c30);
  store4v(bt, mb3, nb1, c31);
  store4v(bt, mb3, nb2, c32);
  store4v(bt, mb3, nb3, c33);
}

// ------------------------------------------------------------------ v5 tex32x16

// 32x16 per invocation with a and b fetched from their texture copies (see the header): per 4 k,
// 48 texel fetches feed 2048 FMAs.
@compute @workgroup_size(WG)
fn mm_v5_tex32x16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  let tn = g % P.tiles_n;
  let r = g / P.tiles_n;
  let tm = r % P.tiles_m;
  let bt = r / P.tiles_m;
  if (bt >= P.batch) { return; }
  let m0 = tm * 32u;
  let n0 = tn * 16u;
  let mb0 = mbase(m0);
  let mb1 = mbase(m0 + 4u);
  let mb2 = mbase(m0 + 8u);
  let mb3 = mbase(m0 + 12u);
  let mb4 = mbase(m0 + 16u);
  let mb5 = mbase(m0 + 20u);
  let mb6 = mbase(m0 + 24u);
  let mb7 = mbase(m0 + 28u);
  let nb0 = nbase(n0);
  let nb1 = nbase(n0 + 4u);
  let nb2 = nbase(n0 + 8u);
  let nb3 = nbase(n0 + 12u);
  var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>(); var c02 = mat4x4<f32>(); var c03 = mat4x4<f32>();
  var c10 = mat4x4<f32>(); var c11 = mat4x4<f32>(); var c12 = mat4x4<f32>(); var c13 = mat4x4<f32>();
  var c20 = mat4x4<f32>(); var c21 = mat4x4<f32>(); var c22 = mat4x4<f32>(); var c23 = mat4x4<f32>();
  var c30 = mat4x4<f32>(); var c31 = mat4x4<f32>(); var c32 = mat4x4<f32>(); var c33 = mat4x4<f32>();
  var c40 = mat4x4<f32>(); var c41 = mat4x4<f32>(); var c42 = mat4x4<f32>(); var c43 = mat4x4<f32>();
  var c50 = mat4x4<f32>(); var c51 = mat4x4<f32>(); var c52 = mat4x4<f32>(); var c53 = mat4x4<f32>();
  var c60 = mat4x4<f32>(); var c61 = mat4x4<f32>(); var c62 = mat4x4<f32>(); var c63 = mat4x4<f32>();
  var c70 = mat4x4<f32>(); var c71 = mat4x4<f32>(); var c72 = mat4x4<f32>(); var c73 = mat4x4<f32>();
  for (var k = 0u; k < P.K; k += 4u) {
    let a0 = tblockA(bt, mb0, k);
    let a1 = tblockA(bt, mb1, k);
    let a2 = tblockA(bt, mb2, k);
    let a3 = tblockA(bt, mb3, k);
    let a4 = tblockA(bt, mb4, k);
    let a5 = tblockA(bt, mb5, k);
    let a6 = tblockA(bt, mb6, k);
    let a7 = tblockA(bt, mb7, k);
    let b0 = tblockB(bt, k, nb0);
    let b1 = tblockB(bt, k, nb1);
    let b2 = tblockB(bt, k, nb2);
    let b3 = tblockB(bt, k, nb3);
    c00 = mac(c00, a0, b0); c01 = mac(c01, a0, b1); c02 = mac(c02, a0, b2); c03 = mac(c03, a0, b3);
    c10 = mac(c10, a1, b0); c11 = mac(c11, a1, b1); c12 = mac(c12, a1, b2); c13 = mac(c13, a1, b3);
    c20 = mac(c20, a2, b0); c21 = mac(c21, a2, b1); c22 = mac(c22, a2, b2); c23 = mac(c23, a2, b3);
    c30 = mac(c30, a3, b0); c31 = mac(c31, a3, b1); c32 = mac(c32, a3, b2); c33 = mac(c33, a3, b3);
    c40 = mac(c40, a4, b0); c41 = mac(c41, a4, b1); c42 = mac(c42, a4, b2); c43 = mac(c43, a4, b3);
    c50 = mac(c50, a5, b0); c51 = mac(c51, a5, b1); c52 = mac(c52, a5, b2); c53 = mac(c53, a5, b3);
    c60 = mac(c60, a6, b0); c61 = mac(c61, a6, b1); c62 = mac(c62, a6, b2); c63 = mac(c63, a6, b3);
    c70 = mac(c70, a7, b0); c71 = mac(c71, a7, b1); c72 = mac(c72, a7, b2); c73 = mac(c73, a7, b3);
  }
  store4v(bt, mb0, nb0, c00);
  store4v(bt, mb0, nb1, c01);
  store4v(bt, mb0, nb2, c02);
  store4v(bt, mb0, nb3, c03);
  store4v(bt, mb1, nb0, c10);
  store4v(bt, mb1, nb1, c11);
  store4v(bt, mb1, nb2, c12);
  store4v(bt, mb1, nb3, c13);
  store4v(bt, mb2, nb0, c20);
  store4v(bt, mb2, nb1, c21);
  store4v(bt, mb2, nb2, c22);
  store4v(bt, mb2, nb3, c23);
  store4v(bt, mb3, nb0, c30);
  store4v(bt, mb3, nb1, c31);
  store4v(bt, mb3, nb2, c32);
  store4v(bt, mb3, nb3, c33);
  store4v(bt, mb4, nb0, c40);
  store4v(bt, mb4, nb1, c41);
  store4v(bt, mb4, nb2, c42);
  store4v(bt, mb4, nb3, c43);
  store4v(bt, mb5, nb0, c50);
  store4v(bt, mb5, nb1, c51);
  store4v(bt, mb5, nb2, c52);
  store4v(bt, mb5, nb3, c53);
  store4v(bt, mb6, nb0, c60);
  store4v(bt, mb6, nb1, c61);
  store4v(bt, mb6, nb2, c62);
  store4v(bt, mb6, nb3, c63);
  store4v(bt, mb7, nb0, c70);
  store4v(bt, mb7, nb1, c71);
  store4v(bt, mb7, nb2, c72);
  store4v(bt, mb7, nb3, c73);
}

// ------------------------------------------------------------------ v6 tex4x32

// 4x32 per invocation from textures: for a handful of rows, where a 32-row tile would mostly idle.
@compute @workgroup_size(WG)
fn mm_v6_tex4x32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  let tn = g % P.tiles_n;
  let r = g / P.tiles_n;
  let tm = r % P.tiles_m;
  let bt = r / P.tiles_m;
  if (bt >= P.batch) { return; }
  let m0 = tm * 4u;
  let n0 = tn * 32u;
  let mb0 = mbase(m0);
  let nb0 = nbase(n0);
  let nb1 = nbase(n0 + 4u);
  let nb2 = nbase(n0 + 8u);
  let nb3 = nbase(n0 + 12u);
  let nb4 = nbase(n0 + 16u);
  let nb5 = nbase(n0 + 20u);
  let nb6 = nbase(n0 + 24u);
  let nb7 = nbase(n0 + 28u);
  var c00 = mat4x4<f32>(); var c01 = mat4x4<f32>(); var c02 = mat4x4<f32>(); var c03 = mat4x4<f32>(); var c04 = mat4x4<f32>(); var c05 = mat4x4<f32>(); var c06 = mat4x4<f32>(); var c07 = mat4x4<f32>();
  for (var k = 0u; k < P.K; k += 4u) {
    let a0 = tblockA(bt, mb0, k);
    let b0 = tblockB(bt, k, nb0);
    let b1 = tblockB(bt, k, nb1);
    let b2 = tblockB(bt, k, nb2);
    let b3 = tblockB(bt, k, nb3);
    let b4 = tblockB(bt, k, nb4);
    let b5 = tblockB(bt, k, nb5);
    let b6 = tblockB(bt, k, nb6);
    let b7 = tblockB(bt, k, nb7);
    c00 = mac(c00, a0, b0); c01 = mac(c01, a0, b1); c02 = mac(c02, a0, b2); c03 = mac(c03, a0, b3); c04 = mac(c04, a0, b4); c05 = mac(c05, a0, b5); c06 = mac(c06, a0, b6); c07 = mac(c07, a0, b7);
  }
  store4v(bt, mb0, nb0, c00);
  store4v(bt, mb0, nb1, c01);
  store4v(bt, mb0, nb2, c02);
  store4v(bt, mb0, nb3, c03);
  store4v(bt, mb0, nb4, c04);
  store4v(bt, mb0, nb5, c05);
  store4v(bt, mb0, nb6, c06);
  store4v(bt, mb0, nb7, c07);
}

// ------------------------------------------------------------------ gemv split

// One workgroup per (bt, m, 4 columns): its 64 invocations stride over K (4-wide, consecutive
// invocations on consecutive addresses when both operands are contiguous along K, the nn.Linear
// case), then reduce through workgroup memory. Memory-bound by design: B is read exactly once.
var<workgroup> gv_red: array<vec4<f32>, 64>;

@compute @workgroup_size(64)
fn gemv_split(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
  let w = wid.x + wid.y * nwg.x;
  let tn = w % P.tiles_n;
  let r = w / P.tiles_n;
  let m = r % P.M;
  let bt = r / P.M;
  if (bt >= P.batch) { return; }
  let n0 = tn * 4u;
  var s = vec4<f32>();
  if (!TA && TB && VA && VB) {
    for (var k = 4u * li; k < P.K; k += 256u) {
      s = macv(s, lda4(a_idx(bt, m, k)), blockB(bt, k, n0));
    }
  } else {
    for (var k = li; k < P.K; k += 64u) {
      s = fma(vec4<f32>(A(bt, m, k)), rowB4(bt, k, n0), s);
    }
  }
  gv_red[li] = s;
  workgroupBarrier();
  for (var h = 32u; h > 0u; h >>= 1u) {
    if (li < h) { gv_red[li] += gv_red[li + h]; }
    workgroupBarrier();
  }
  if (li == 0u) { store_row4(bt, m, n0, gv_red[0]); }
}

// ------------------------------------------------------------------ gemv tex

// One row x 32 columns per invocation from textures: per 4 k, 1 fetch of A and 32 of B (each B
// element fetched once overall) feed 128 FMAs. For decode steps (M = 1) on llvmpipe.
@compute @workgroup_size(WG)
fn gemv_tex(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  let tn = g % P.tiles_n;
  let r = g / P.tiles_n;
  let m = r % P.M;
  let bt = r / P.M;
  if (bt >= P.batch) { return; }
  let n0 = tn * 32u;
  var c0 = vec4<f32>(); var c1 = vec4<f32>(); var c2 = vec4<f32>(); var c3 = vec4<f32>(); var c4 = vec4<f32>(); var c5 = vec4<f32>(); var c6 = vec4<f32>(); var c7 = vec4<f32>();
  for (var k = 0u; k < P.K; k += 4u) {
    let av = trowA(bt, m, k);
    c0 = macv(c0, av, tblockB(bt, k, nbase(n0)));
    c1 = macv(c1, av, tblockB(bt, k, nbase(n0 + 4u)));
    c2 = macv(c2, av, tblockB(bt, k, nbase(n0 + 8u)));
    c3 = macv(c3, av, tblockB(bt, k, nbase(n0 + 12u)));
    c4 = macv(c4, av, tblockB(bt, k, nbase(n0 + 16u)));
    c5 = macv(c5, av, tblockB(bt, k, nbase(n0 + 20u)));
    c6 = macv(c6, av, tblockB(bt, k, nbase(n0 + 24u)));
    c7 = macv(c7, av, tblockB(bt, k, nbase(n0 + 28u)));
  }
  { let nb = nbase(n0); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c0 + bias4(nb); }
  { let nb = nbase(n0 + 4u); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c1 + bias4(nb); }
  { let nb = nbase(n0 + 8u); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c2 + bias4(nb); }
  { let nb = nbase(n0 + 12u); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c3 + bias4(nb); }
  { let nb = nbase(n0 + 16u); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c4 + bias4(nb); }
  { let nb = nbase(n0 + 20u); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c5 + bias4(nb); }
  { let nb = nbase(n0 + 24u); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c6 + bias4(nb); }
  { let nb = nbase(n0 + 28u); out4[((bt * P.M + m) * P.ldo + P.out_off + nb) >> 2u] = P.alpha * c7 + bias4(nb); }
}


// ------------------------------------------------------------------ gemv tex8

// gemv tex with b half-precision, stored [N, K] and copied 8 elements per texel: per 8 k, 2 fetches
// of A and 32 of B feed 256 FMAs. Requires TB and K % 8 == 0.
@compute @workgroup_size(WG)
fn gemv_tex8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  let tn = g % P.tiles_n;
  let r = g / P.tiles_n;
  let m = r % P.M;
  let bt = r / P.M;
  if (bt >= P.batch) { return; }
  let n0 = tn * 32u;
  let nb0 = nbase(n0); let nb1 = nbase(n0 + 4u); let nb2 = nbase(n0 + 8u); let nb3 = nbase(n0 + 12u); let nb4 = nbase(n0 + 16u); let nb5 = nbase(n0 + 20u); let nb6 = nbase(n0 + 24u); let nb7 = nbase(n0 + 28u);
  var c0 = vec4<f32>(); var c1 = vec4<f32>(); var c2 = vec4<f32>(); var c3 = vec4<f32>(); var c4 = vec4<f32>(); var c5 = vec4<f32>(); var c6 = vec4<f32>(); var c7 = vec4<f32>();
  for (var k = 0u; k < P.K; k += 8u) {
    let a0 = trowA(bt, m, k);
    let a1 = trowA(bt, m, k + 4u);
    { let f0 = tfb8(b_idx(bt, k, nb0)); let f1 = tfb8(b_idx(bt, k, nb0 + 1u)); let f2 = tfb8(b_idx(bt, k, nb0 + 2u)); let f3 = tfb8(b_idx(bt, k, nb0 + 3u));
      c0 = macv(macv(c0, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
    { let f0 = tfb8(b_idx(bt, k, nb1)); let f1 = tfb8(b_idx(bt, k, nb1 + 1u)); let f2 = tfb8(b_idx(bt, k, nb1 + 2u)); let f3 = tfb8(b_idx(bt, k, nb1 + 3u));
      c1 = macv(macv(c1, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
    { let f0 = tfb8(b_idx(bt, k, nb2)); let f1 = tfb8(b_idx(bt, k, nb2 + 1u)); let f2 = tfb8(b_idx(bt, k, nb2 + 2u)); let f3 = tfb8(b_idx(bt, k, nb2 + 3u));
      c2 = macv(macv(c2, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
    { let f0 = tfb8(b_idx(bt, k, nb3)); let f1 = tfb8(b_idx(bt, k, nb3 + 1u)); let f2 = tfb8(b_idx(bt, k, nb3 + 2u)); let f3 = tfb8(b_idx(bt, k, nb3 + 3u));
      c3 = macv(macv(c3, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
    { let f0 = tfb8(b_idx(bt, k, nb4)); let f1 = tfb8(b_idx(bt, k, nb4 + 1u)); let f2 = tfb8(b_idx(bt, k, nb4 + 2u)); let f3 = tfb8(b_idx(bt, k, nb4 + 3u));
      c4 = macv(macv(c4, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
    { let f0 = tfb8(b_idx(bt, k, nb5)); let f1 = tfb8(b_idx(bt, k, nb5 + 1u)); let f2 = tfb8(b_idx(bt, k, nb5 + 2u)); let f3 = tfb8(b_idx(bt, k, nb5 + 3u));
      c5 = macv(macv(c5, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
    { let f0 = tfb8(b_idx(bt, k, nb6)); let f1 = tfb8(b_idx(bt, k, nb6 + 1u)); let f2 = tfb8(b_idx(bt, k, nb6 + 2u)); let f3 = tfb8(b_idx(bt, k, nb6 + 3u));
      c6 = macv(macv(c6, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
    { let f0 = tfb8(b_idx(bt, k, nb7)); let f1 = tfb8(b_idx(bt, k, nb7 + 1u)); let f2 = tfb8(b_idx(bt, k, nb7 + 2u)); let f3 = tfb8(b_idx(bt, k, nb7 + 3u));
      c7 = macv(macv(c7, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }
  }
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb0) >> 2u] = P.alpha * c0 + bias4(nb0);
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb1) >> 2u] = P.alpha * c1 + bias4(nb1);
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb2) >> 2u] = P.alpha * c2 + bias4(nb2);
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb3) >> 2u] = P.alpha * c3 + bias4(nb3);
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb4) >> 2u] = P.alpha * c4 + bias4(nb4);
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb5) >> 2u] = P.alpha * c5 + bias4(nb5);
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb6) >> 2u] = P.alpha * c6 + bias4(nb6);
  out4[((bt * P.M + m) * P.ldo + P.out_off + nb7) >> 2u] = P.alpha * c7 + bias4(nb7);
}
`,
};
