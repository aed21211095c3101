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
// and bodies written out rather than array-indexed loops (whose unrolling alone takes ~12 s): the
// register-tiled entries are generated below from TILES, one accumulator per 4x4 block.
import type { KernelFamily } from '../kernel.js';

// ---- tunables
/** invocations per workgroup of the 1D-grid entries */
export const WG = 64;
/** texture copies: texels per texture row (a power of two) */
export const TEX_W = 4096;
/** v2 shared: output tile edge (per 16x16 workgroup) and k per slab */
export const V2_T = 64;
const V2_KT = 16;
/** gemv split: invocations per workgroup (a power of two) */
export const GV_WG = 64;
/** Output tile (rows, columns) per invocation of each register-tiled entry: 4x4 blocks of mat4x4. */
export const TILES = {
  mm_v3_reg4: [4, 4],
  mm_v4_reg16: [16, 16],
  mm_v5_tex32x16: [32, 16],
  mm_v6_tex4x32: [4, 32],
  gemv_tex: [1, 32],
  gemv_tex8: [1, 32],
} as const satisfies Record<string, readonly [number, number]>;

// ---- generated WGSL
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const XYZW = 'xyzw';
/** x + k as WGSL (x alone for k = 0) */
const plus = (x: string, k: number) => (k ? `${x} + ${k}u` : x);

// c + a * b for 4x4 blocks as fma chains over kk = 0..3.
const MAC = `fn mac(c: mat4x4<f32>, a: mat4x4<f32>, b: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
${range(4).map((j) => `    ${range(4).reduce((acc, kk) => `fma(a[${kk}], vec4<f32>(b[${j}].${XYZW[kk]}), ${acc})`, `c[${j}]`)}`).join(',\n')});
}`;

const STORES = `// Writes the 4x4 block c (c[j][i] = out(m + i, n + j)).
fn store4(bt: u32, m: u32, n: u32, c: mat4x4<f32>) {
  let b = bias4(n);
${range(4).map((j) => `  ${range(4).map((i) => `st(bt, ${plus('m', i)}, ${plus('n', j)}, c[${j}].${XYZW[i]}, b.${XYZW[j]});`).join(' ')}`).join('\n')}
}

// Writes the 4x4 block c as 4 row vectors (VO entries: one store site per row instead of four).
fn store4v(bt: u32, mb: u32, nb: u32, c: mat4x4<f32>) {
  let b = bias4(nb);
  let t = transpose(c);
  let base = bt * P.M;
  let o = P.out_off + nb;
${range(4).map((i) => `  out4[((base + row(mb, ${i}u)) * P.ldo + o) >> 2u] = P.alpha * t[${i}] + b;`).join('\n')}
}

// Writes 4 columns of one row.
fn store_row4(bt: u32, m: u32, n: u32, v: vec4<f32>) {
  let b = bias4(n);
  ${range(4).map((j) => `st(bt, m, ${plus('n', j)}, v.${XYZW[j]}, b.${XYZW[j]});`).join(' ')}
}`;

/** Tile index g -> (bt, m tile tm, n tile tn), or (bt, row m, n tile tn) when `rows` is 'M'; past the batch returns. */
function tileIndex(g: string, rows: 'tiles_m' | 'M'): string {
  const m = rows === 'M' ? 'm' : 'tm';
  return `  let tn = ${g} % P.tiles_n;
  let r = ${g} / P.tiles_n;
  let ${m} = r % P.${rows};
  let bt = r / P.${rows};
  if (bt >= P.batch) { return; }`;
}

/** Entry point of the 1D grid whose invocation g owns one tile (see tileIndex). */
function flatEntry(name: string, rows: 'tiles_m' | 'M'): string {
  return `@compute @workgroup_size(WG)
fn ${name}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
${tileIndex('g', rows)}`;
}

/**
 * A register-tiled entry: TILES[name] outputs per invocation as a grid of 4x4 blocks c<i><j>, fed
 * per 4 k by the blocks a<i> of A and b<j> of B (from storage, or from the texture copies), then
 * stored bounds-checked element by element (any N) or as row vectors (N % 4 == 0).
 */
function tileEntry(name: keyof typeof TILES, from: 'storage' | 'texture', store: 'scalar' | 'vec4'): string {
  const [bm, bn] = TILES[name].map((d) => d / 4);
  const t = from === 'texture' ? 't' : '';
  const blocks = range(bm).flatMap((i) => range(bn).map((j) => [i, j]));
  return `${flatEntry(name, 'tiles_m')}
  let m0 = tm * ${4 * bm}u;
  let n0 = tn * ${4 * bn}u;
${range(bm).map((i) => `  let mb${i} = mbase(${plus('m0', 4 * i)});`).join('\n')}
${range(bn).map((j) => `  let nb${j} = nbase(${plus('n0', 4 * j)});`).join('\n')}
${range(bm).map((i) => `  ${range(bn).map((j) => `var c${i}${j} = mat4x4<f32>();`).join(' ')}`).join('\n')}
  for (var k = 0u; k < P.K; k += 4u) {
${range(bm).map((i) => `    let a${i} = ${t}blockA(bt, mb${i}, k);`).join('\n')}
${range(bn).map((j) => `    let b${j} = ${t}blockB(bt, k, nb${j});`).join('\n')}
${range(bm).map((i) => `    ${range(bn).map((j) => `c${i}${j} = mac(c${i}${j}, a${i}, b${j});`).join(' ')}`).join('\n')}
  }
${store === 'scalar'
    ? blocks.map(([i, j]) => `  store4(bt, ${plus('m0', 4 * i)}, ${plus('n0', 4 * j)}, c${i}${j});`).join('\n')
    : blocks.map(([i, j]) => `  store4v(bt, mb${i}, nb${j}, c${i}${j});`).join('\n')}
}`;
}

/**
 * One row x TILES[name] columns per invocation from the texture copies, accumulated in row vectors
 * c<j>: 4 elements of B per texel ('gemv_tex', 4 k per step) or 8 halves ('gemv_tex8', 8 k per
 * step, b stored [N, K]).
 */
function gemvTexEntry(name: 'gemv_tex' | 'gemv_tex8'): string {
  const cols = range(TILES[name][1] / 4);
  const step = name === 'gemv_tex8'
    ? `  for (var k = 0u; k < P.K; k += 8u) {
    let a0 = trowA(bt, m, k);
    let a1 = trowA(bt, m, k + 4u);
${cols.map((j) => `    { ${range(4).map((c) => `let f${c} = tfb8(b_idx(bt, k, ${plus(`nb${j}`, c)}));`).join(' ')}
      c${j} = macv(macv(c${j}, a0, mat4x4<f32>(f0[0], f1[0], f2[0], f3[0])), a1, mat4x4<f32>(f0[1], f1[1], f2[1], f3[1])); }`).join('\n')}
  }`
    : `  for (var k = 0u; k < P.K; k += 4u) {
    let av = trowA(bt, m, k);
${cols.map((j) => `    c${j} = macv(c${j}, av, tblockB(bt, k, nb${j}));`).join('\n')}
  }`;
  return `${flatEntry(name, 'M')}
  let n0 = tn * ${4 * cols.length}u;
  ${cols.map((j) => `let nb${j} = nbase(${plus('n0', 4 * j)});`).join(' ')}
  ${cols.map((j) => `var c${j} = vec4<f32>();`).join(' ')}
${step}
${cols.map((j) => `  out4[((bt * P.M + m) * P.ldo + P.out_off + nb${j}) >> 2u] = P.alpha * c${j} + bias4(nb${j});`).join('\n')}
}`;
}

/**
 * gemv split, its GV_WG partial sums (gv_red[li] = s) combined by `combine`: the workgroup-memory
 * tree here, subgroups in kernels/matmul-sg.wgsl.ts.
 */
export function gemvSplitEntry(name: string, combine: string): string {
  return `@compute @workgroup_size(${GV_WG})
fn ${name}(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
  let w = wg_id(wid, nwg);
${tileIndex('w', 'M')}
  let n0 = tn * 4u;
  var s = vec4<f32>();
  if (!TA && TB && VA && VB) {
    for (var k = 4u * li; k < P.K; k += ${4 * GV_WG}u) {
      s = macv(s, lda4(a_idx(bt, m, k)), blockB(bt, k, n0));
    }
  } else {
    for (var k = li; k < P.K; k += ${GV_WG}u) {
      s = fma(vec4<f32>(A(bt, m, k)), rowB4(bt, k, n0), s);
    }
  }
  gv_red[li] = s;
${combine}
}`;
}

export const MATMUL: KernelFamily = { name: 'matmul', inputs: ['a', 'b', 'bias'], outputs: { out: 'f32' }, code: /* wgsl */ `
override WG: u32 = ${WG};
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

// Textures holding the raw bits of a and b, 4 elements per texel, laid out linearly TEX_W texels a row.
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
${MAC}
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
fn tfa(e: u32) -> vec4<f32> { let t = e >> 2u; return decode(textureLoad(ta, vec2<u32>(t & ${TEX_W - 1}u, t >> ${Math.log2(TEX_W)}u), 0), AH); }
fn tfb(e: u32) -> vec4<f32> { let t = e >> 2u; return decode(textureLoad(tb, vec2<u32>(t & ${TEX_W - 1}u, t >> ${Math.log2(TEX_W)}u), 0), BH); }

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
  let w = textureLoad(tb, vec2<u32>(t & ${TEX_W - 1}u, t >> ${Math.log2(TEX_W)}u), 0);
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


${STORES}

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
const V2_T: u32 = ${V2_T}u;
const V2_KT: u32 = ${V2_KT}u;
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
  let w = wg_id(wid, nwg);
${tileIndex('w', 'tiles_m')}
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
${tileEntry('mm_v3_reg4', 'storage', 'scalar')}

// ------------------------------------------------------------------ v4 reg16

// 16x16 outputs per invocation (16 mat4x4 accumulators): per 4 k, 32 four-wide loads feed 1024
// FMAs. VO only.
${tileEntry('mm_v4_reg16', 'storage', 'vec4')}

// ------------------------------------------------------------------ v5 tex32x16

// 32x16 per invocation with a and b fetched from their texture copies (see the header): per 4 k,
// 48 texel fetches feed 2048 FMAs.
${tileEntry('mm_v5_tex32x16', 'texture', 'vec4')}

// ------------------------------------------------------------------ v6 tex4x32

// 4x32 per invocation from textures: for a handful of rows, where a 32-row tile would mostly idle.
${tileEntry('mm_v6_tex4x32', 'texture', 'vec4')}

// ------------------------------------------------------------------ gemv split

// One workgroup per (bt, m, 4 columns): its GV_WG invocations stride over K (4-wide, consecutive
// invocations on consecutive addresses when both operands are contiguous along K, the nn.Linear
// case), then reduce through workgroup memory. Memory-bound by design: B is read exactly once.
var<workgroup> gv_red: array<vec4<f32>, ${GV_WG}>;

${gemvSplitEntry('gemv_split', `  workgroupBarrier();
  for (var h = ${GV_WG / 2}u; h > 0u; h >>= 1u) {
    if (li < h) { gv_red[li] += gv_red[li + h]; }
    workgroupBarrier();
  }
  if (li == 0u) { store_row4(bt, m, n0, gv_red[0]); }`)}

// ------------------------------------------------------------------ gemv tex

// One row x 32 columns per invocation from textures: per 4 k, 1 fetch of A and 32 of B (each B
// element fetched once overall) feed 128 FMAs. For decode steps (M = 1) on llvmpipe.
${gemvTexEntry('gemv_tex')}

// ------------------------------------------------------------------ gemv tex8

// gemv tex with b half-precision, stored [N, K] and copied 8 elements per texel: per 8 k, 2 fetches
// of A and 32 of B feed 256 FMAs. Requires TB and K % 8 == 0.
${gemvTexEntry('gemv_tex8')}
`,
};
