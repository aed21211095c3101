// Attention fed from textures, for adapters that run shaders on the CPU (llvmpipe): there every
// storage or workgroup-memory load is a per-lane scalar loop, while a texel fetch is one SIMD
// gather, so the attn_flash kernel of attention.wgsl.ts (which stages K / V tiles through
// workgroup memory and reads them back element by element) spends its time in loads. This one
// reads q, k, v from texture copies (4 elements per texel, as the matmul's v5) and keeps
// everything else in registers, as 4x4 blocks (mat4x4) so that the arithmetic is vectorised too.
//
// One invocation owns R = 4 * BM query rows of one kv head (GQA: the group's query heads are
// packed as rows, so they fetch each K / V texel once) and all Dv output columns (BN blocks of
// 4), and walks the keys [ks, ke) of its split in tiles of 4 * BK keys:
//   S  (R x 4BK)  = Q K^T over D, per 4 dims: R + 4BK texel fetches feed 16 * BM * BK FMAs
//   online softmax on S in registers (running max m, sum l per row; O rescaled by exp(m_old - m))
//   O  (R x Dv)  += P V, per 4 keys and 4 columns: 4 fetches feed 16 * BM FMAs
// Causal masks shorten the key range of the whole invocation (tiles past the last row's diagonal
// are never visited); elements are masked only on the diagonal's tiles. Split-K: with nsplit > 1
// each invocation writes its unnormalised O and (m, l) to po / pml, and attention.wgsl.ts's
// attn_combine merges them.
//
// Excluded keys (past ke, causal, a mask of -inf) are tracked as boolean vectors, never as a
// sentinel score: transformers' padding mask adds finfo.min, a finite score that must still count
// (a fully padded row then averages its keys, as the CPU oracle does), and WGSL lets compilers
// assume floats are finite. A row with every key excluded outputs zeros, as the oracle.
//
// Requires D % 4 == 0, Dv % 4 == 0, 4 <= Dv <= 4 * BN; ops/attention.ts falls back to attn_flash /
// attn_decode otherwise. Columns past Dv are clamped to the last 4 (recomputed, stored twice with
// the same value), rows past the end to the last row (never stored), keys past ke to ke - 1
// (excluded, so they read valid, finite memory).
import type { KernelFamily } from '../kernel.js';

/** texels per texture row (a power of two; the same layout as the matmul's copies) */
export const TEX_W = 4096;

/**
 * Register tiles per entry: [BM row blocks, BK key blocks, BN column blocks], blocks of 4. More
 * rows per invocation means more FMAs per fetched K / V texel: for Dv = 64, 16 rows (r16w, 64
 * blocks of O) ran 1.27x faster than 8 (r8) on llvmpipe; r8 stays for 8-15 rows per kv head.
 */
export const TEX_TILES = {
  attn_tex_r16: [4, 2, 8],
  attn_tex_r16w: [4, 2, 16],
  attn_tex_r8: [2, 2, 16],
  attn_tex_r4: [1, 2, 32],
} as const satisfies Record<string, readonly [number, number, number]>;
export type TexEntry = keyof typeof TEX_TILES;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const XYZW = 'xyzw';

const MAC = `fn mac(c: mat4x4<f32>, a: mat4x4<f32>, b: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
${range(4).map((j) => `    ${range(4).reduce((acc, kk) => `fma(a[${kk}], vec4<f32>(b[${j}].${XYZW[kk]}), ${acc})`, `c[${j}]`)}`).join(',\n')});
}`;

/** One entry: see the header. Names: row block a, key block b, column block n. */
function texEntry(name: TexEntry): string {
  const [BM, BK, BN] = TEX_TILES[name];
  const A = range(BM);
  const K = range(BK);
  const N = range(BN);
  const rows = (a: number) => range(4).map((r) => 4 * a + r);
  return `@compute @workgroup_size(WG)
fn ${name}(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  if (g >= P.total) { return; }
  // row blocks innermost: neighbouring lanes share the split and head, so they fetch the same texels
  // causal: the longest rows (last row blocks) first, so that the short ones fill the tail
  // (measured: 8.9 against 7.8 GFLOP/s at H4 L1024 D64 on llvmpipe)
  let rb = select(g % P.nrb, P.nrb - 1u - g % P.nrb, P.causal != 0u);
  var rest = g / P.nrb;
  let split = rest % P.nsplit;
  let grp = rest / P.nsplit;     // b * Hkv + kvh
  let b = grp / P.Hkv;
  let kvh = grp % P.Hkv;
  let rho0 = rb * ${4 * BM}u;
  let kbase = grp * P.Lk * P.D;
  let vbase = grp * P.Lk * P.Dv;
${range(4 * BM).map((r) => `  let rw${r} = row_at(b, kvh, rho0 + ${r}u);`).join('\n')}
${A.map((a) => `  let lim${a} = vec4<u32>(${rows(a).map((r) => `rw${r}.lim`).join(', ')});`).join('\n')}
  let ks = split * P.chunk;
  var ke = min(P.kvLen, ks + P.chunk);
  if (P.causal != 0u) {
    ke = min(ke, ${A.map((a) => `max(max(lim${a}.x, lim${a}.y), max(lim${a}.z, lim${a}.w))`).reduce((x, y) => `max(${x}, ${y})`)} + 1u);
  }
${A.map((a) => `  var m${a} = vec4<f32>(NEG_MAX);\n  var l${a} = vec4<f32>();`).join('\n')}
${A.map((a) => `  ${N.map((n) => `var o${a}_${n} = mat4x4<f32>();`).join(' ')}`).join('\n')}
${A.map((a) => `  ${K.map((kb) => `var s${a}_${kb}: mat4x4<f32>;`).join(' ')}`).join('\n')}
  for (var k0 = ks; k0 < ke; k0 += ${4 * BK}u) {
    // ---- S = Q K^T: s<a>_<b>[j][i] = q(row 4a + i) . k(key k0 + 4b + j)
${K.map((kb) => range(4).map((j) => `    let ko${kb}_${j} = kbase + min(k0 + ${4 * kb + j}u, ke - 1u) * P.D;`).join('\n')).join('\n')}
    // zeroed by assignment each tile: NVIDIA's Vulkan driver once zero-initialised a loop-scoped
    // var only on the first iteration (see attn_flash)
${A.map((a) => `    ${K.map((kb) => `s${a}_${kb} = mat4x4<f32>();`).join(' ')}`).join('\n')}
    for (var d = 0u; d < P.D; d += 4u) {
${A.map((a) => `      let qa${a} = transpose(mat4x4<f32>(${rows(a).map((r) => `fq(rw${r}.q + d)`).join(', ')}));`).join('\n')}
${K.map((kb) => `      let kb${kb} = mat4x4<f32>(${range(4).map((j) => `fk(ko${kb}_${j} + d)`).join(', ')});`).join('\n')}
${A.map((a) => `      ${K.map((kb) => `s${a}_${kb} = mac(s${a}_${kb}, qa${a}, kb${kb});`).join(' ')}`).join('\n')}
    }
    // ---- scale, mask, exclusions; online softmax per row block
${K.map((kb) => range(4).map((j) => `    let kj${kb}_${j} = k0 + ${4 * kb + j}u;`).join('\n')).join('\n')}
${A.map((a) => `    {
${K.map((kb) => range(4).map((j) => `      let e${kb}_${j} = score(s${a}_${kb}[${j}], kj${kb}_${j}, ke, lim${a}, ${rows(a).map((r) => `rw${r}.mrow`).join(', ')});`).join('\n')).join('\n')}
      var tmax = m${a};
${K.map((kb) => range(4).map((j) => `      tmax = max(tmax, select(vec4<f32>(NEG_MAX), e${kb}_${j}.s, e${kb}_${j}.inc));`).join('\n')).join('\n')}
      let alpha = exp(m${a} - tmax);
      m${a} = tmax;
${K.map((kb) => `      s${a}_${kb} = mat4x4<f32>(${range(4).map((j) => `select(vec4<f32>(), exp(e${kb}_${j}.s - tmax), e${kb}_${j}.inc)`).join(', ')});`).join('\n')}
      l${a} = l${a} * alpha${K.map((kb) => ` + s${a}_${kb}[0] + s${a}_${kb}[1] + s${a}_${kb}[2] + s${a}_${kb}[3]`).join('')};
${N.map((n) => `      o${a}_${n} = scale_rows(o${a}_${n}, alpha);`).join('\n')}
    }`).join('\n')}
    // ---- O += P V: p<a>_<b>[j][i] = weight of key k0 + 4b + j for row 4a + i
${K.map((kb) => `    {
${range(4).map((j) => `      let vo${j} = vbase + min(k0 + ${4 * kb + j}u, ke - 1u) * P.Dv;`).join('\n')}
${N.map((n) => `      { let c = col(${n}u); let vb = transpose(mat4x4<f32>(${range(4).map((j) => `fv(vo${j} + c)`).join(', ')}));
        ${A.map((a) => `o${a}_${n} = mac(o${a}_${n}, s${a}_${kb}, vb);`).join(' ')} }`).join('\n')}
    }`).join('\n')}
  }
  // ---- out (or the split's partials)
${A.map((a) => `  {
    let inv = select(vec4<f32>(), 1.0 / l${a}, l${a} > vec4<f32>());
${N.map((n) => `    let t${n} = transpose(o${a}_${n});`).join('\n')}
${range(4).map((r) => `    if (rho0 + ${4 * a + r}u < P.rows) {
      let orow = rw${4 * a + r}.o;
      if (P.nsplit == 1u) {
${N.map((n) => `        out4[(orow * P.Dv + col(${n}u)) >> 2u] = t${n}[${r}] * inv.${XYZW[r]};`).join('\n')}
      } else {
        let prow = orow * P.nsplit + split;
${N.map((n) => `        po4[(prow * P.Dv + col(${n}u)) >> 2u] = t${n}[${r}];`).join('\n')}
        pml[2u * prow] = m${a}.${XYZW[r]};
        pml[2u * prow + 1u] = l${a}.${XYZW[r]};
      }
    }`).join('\n')}
  }`).join('\n')}
}`;
}

/** attn_tex_d1: column blocks (Dv <= 4 * D1_BN) and key blocks of 4 per tile */
export const D1_BN = 32;
export const D1_BK = 2;

/**
 * attn_tex_d1: one query row per invocation (decode without GQA rows to pack, where a 4-row tile
 * would compute 3 copies of the row), vectorised over keys instead: s (4 keys) += q . K block per
 * 4 dims (5 fetches, 16 FMAs), o (4 columns) += V block . p per 4 keys (4 fetches, 16 FMAs).
 */
function d1Entry(): string {
  const K = range(D1_BK);
  const N = range(D1_BN);
  return `@compute @workgroup_size(WG)
fn attn_tex_d1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg, WG);
  if (g >= P.total) { return; }
  let rho = g % P.nrb;
  var rest = g / P.nrb;
  let split = rest % P.nsplit;
  let grp = rest / P.nsplit;
  let b = grp / P.Hkv;
  let kvh = grp % P.Hkv;
  let rw = row_at(b, kvh, rho);
  let kbase = grp * P.Lk * P.D;
  let vbase = grp * P.Lk * P.Dv;
  let ks = split * P.chunk;
  var ke = min(P.kvLen, ks + P.chunk);
  if (P.causal != 0u) { ke = min(ke, rw.lim + 1u); }
  var m = NEG_MAX;
  var l = 0.0;
  ${N.map((n) => `var o${n} = vec4<f32>();`).join(' ')}
  ${K.map((kb) => `var s${kb}: vec4<f32>;`).join(' ')}
  for (var k0 = ks; k0 < ke; k0 += ${4 * D1_BK}u) {
${range(4 * D1_BK).map((j) => `    let ko${j} = kbase + min(k0 + ${j}u, ke - 1u) * P.D;`).join('\n')}
    ${K.map((kb) => `s${kb} = vec4<f32>();`).join(' ')} // zeroed by assignment each tile (see attn_flash)
    for (var d = 0u; d < P.D; d += 4u) {
      let qv = fq(rw.q + d);
${K.map((kb) => `      s${kb} += qv * mat4x4<f32>(${range(4).map((j) => `fk(ko${4 * kb + j} + d)`).join(', ')});`).join('\n')}
    }
${K.map((kb) => `    let e${kb} = score_keys(s${kb}, k0 + ${4 * kb}u, ke, rw);`).join('\n')}
    var t4 = vec4<f32>(m);
${K.map((kb) => `    t4 = max(t4, select(vec4<f32>(NEG_MAX), e${kb}.s, e${kb}.inc));`).join('\n')}
    let tmax = max(max(t4.x, t4.y), max(t4.z, t4.w));
    let alpha = exp(m - tmax);
    m = tmax;
${K.map((kb) => `    let p${kb} = select(vec4<f32>(), exp(e${kb}.s - tmax), e${kb}.inc);`).join('\n')}
    l = l * alpha + dot(${K.map((kb) => `p${kb}`).join(' + ')}, vec4<f32>(1.0));
${range(4 * D1_BK).map((j) => `    let vo${j} = vbase + min(k0 + ${j}u, ke - 1u) * P.Dv;`).join('\n')}
${N.map((n) => `    { let c = col(${n}u); o${n} = o${n} * alpha${K.map((kb) => ` + mat4x4<f32>(${range(4).map((j) => `fv(vo${4 * kb + j} + c)`).join(', ')}) * p${kb}`).join('')}; }`).join('\n')}
  }
  if (P.nsplit == 1u) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
${N.map((n) => `    if (${4 * n}u < P.Dv) { out4[(rw.o * P.Dv + col(${n}u)) >> 2u] = o${n} * inv; }`).join('\n')}
  } else {
    let prow = rw.o * P.nsplit + split;
${N.map((n) => `    if (${4 * n}u < P.Dv) { po4[(prow * P.Dv + col(${n}u)) >> 2u] = o${n}; }`).join('\n')}
    pml[2u * prow] = m;
    pml[2u * prow + 1u] = l;
  }
}`;
}

export const ATTENTION_TEX: KernelFamily = { name: 'attention_tex', inputs: ['mask'], outputs: { out: 'f32', po: 'f32', pml: 'f32' }, code: /* wgsl */ `
override WG: u32 = 16;
// ---- specialisation (per pipeline; the branches on them fold away)
override HAS_MASK: bool = false;
override QH: u32 = 0u;   // texture encoding of q / k / v: 0 f32 bits (rgba32uint), 1 bf16, 2 f16 (rg32uint)
override KH: u32 = 0u;
override VH: u32 = 0u;

const NEG_MAX: f32 = -3.4028234663852886e38;
const NINF_BITS: u32 = 0xff800000u;

struct Params {
  B: u32, Hq: u32, Hkv: u32, Lq: u32,
  Lk: u32, kvLen: u32, D: u32, Dv: u32,
  scale: f32, maskB: u32, maskH: u32, group: u32,
  // rows per kv head (group * Lq), row blocks per kv head, key splits, keys per split
  rows: u32, nrb: u32, nsplit: u32, chunk: u32,
  total: u32, causal: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

@group(0) @binding(5) var tq: texture_2d<u32>;
@group(0) @binding(6) var tk: texture_2d<u32>;
@group(0) @binding(7) var tv: texture_2d<u32>;
// out / po seen as vec4s (same bindings as the prelude's; an entry uses one or the other)
@group(0) @binding(2) var<storage, read_write> out4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> po4: array<vec4<f32>>;

fn decode(w: vec4<u32>, h: u32) -> vec4<f32> {
  if (h == 1u) { return bitcast<vec4<f32>>(vec4<u32>(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u)); }
  if (h == 2u) { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
  return bitcast<vec4<f32>>(w);
}
fn texel(e: u32) -> vec2<u32> { let t = e >> 2u; return vec2<u32>(t & ${TEX_W - 1}u, t >> ${Math.log2(TEX_W)}u); }
// Elements e..e+3 (e a multiple of 4) of the texture copies.
fn fq(e: u32) -> vec4<f32> { return decode(textureLoad(tq, texel(e), 0), QH); }
fn fk(e: u32) -> vec4<f32> { return decode(textureLoad(tk, texel(e), 0), KH); }
fn fv(e: u32) -> vec4<f32> { return decode(textureLoad(tv, texel(e), 0), VH); }

// Column block n starts at 4n, clamped so that the block stays inside Dv.
fn col(n: u32) -> u32 { return min(4u * n, P.Dv - 4u); }

struct Row {
  q: u32,     // first element of its q row
  o: u32,     // output row (b * Hq + h) * Lq + i
  lim: u32,   // causal: the last key it sees
  mrow: u32,  // first element of its mask row
}

// Local row rho (clamped to the last) of kv head (b, kvh): query head kvh * group + rho / Lq, query rho % Lq.
fn row_at(b: u32, kvh: u32, rho_: u32) -> Row {
  let rho = min(rho_, P.rows - 1u);
  let h = kvh * P.group + rho / P.Lq;
  let i = rho % P.Lq;
  let o = (b * P.Hq + h) * P.Lq + i;
  let mb = (select(b, 0u, P.maskB == 1u) * P.maskH + select(h, 0u, P.maskH == 1u)) * P.Lq + i;
  return Row(o * P.D, o, i + P.kvLen - P.Lq, mb * P.kvLen);
}

struct Score { s: vec4<f32>, inc: vec4<bool> }

// Scaled, masked scores of key j for 4 rows, and which of them count.
fn score(dot: vec4<f32>, j: u32, ke: u32, lim: vec4<u32>, m0: u32, m1: u32, m2: u32, m3: u32) -> Score {
  var s = dot * P.scale;
  var inc = vec4<bool>(j < ke);
  // causal is a uniform, not an override: one pipeline fewer to compile (~10 s each on llvmpipe)
  inc = inc & ((vec4<u32>(j) <= lim) | vec4<bool>(P.causal == 0u));
  if (HAS_MASK) {
    let jj = min(j, P.kvLen - 1u);
    let mv = vec4<f32>(ld_mask(m0 + jj), ld_mask(m1 + jj), ld_mask(m2 + jj), ld_mask(m3 + jj));
    inc = inc & (bitcast<vec4<u32>>(mv) != vec4<u32>(NINF_BITS));
    s += select(vec4<f32>(), mv, inc);
  }
  return Score(s, inc);
}

// Scaled, masked scores of keys j0 .. j0 + 3 for one row, and which of them count.
fn score_keys(dot: vec4<f32>, j0: u32, ke: u32, rw: Row) -> Score {
  var s = dot * P.scale;
  let j = vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u);
  var inc = (j < vec4<u32>(ke)) & ((j <= vec4<u32>(rw.lim)) | vec4<bool>(P.causal == 0u));
  if (HAS_MASK) {
    let jj = min(j, vec4<u32>(P.kvLen - 1u)) + vec4<u32>(rw.mrow);
    let mv = vec4<f32>(ld_mask(jj.x), ld_mask(jj.y), ld_mask(jj.z), ld_mask(jj.w));
    inc = inc & (bitcast<vec4<u32>>(mv) != vec4<u32>(NINF_BITS));
    s += select(vec4<f32>(), mv, inc);
  }
  return Score(s, inc);
}

// Column j of o (one output column over 4 rows) times the rows' factors.
fn scale_rows(o: mat4x4<f32>, f: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(o[0] * f, o[1] * f, o[2] * f, o[3] * f);
}

${MAC}

${Object.keys(TEX_TILES).map((n) => texEntry(n as TexEntry)).join('\n\n')}

${d1Entry()}
`,
};
