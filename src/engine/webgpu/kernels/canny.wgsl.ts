// OpenCV's Canny on planar frames, in integers (the oracle: engine/cpu/canny.ts).
//   suppress    one invocation per pixel: Sobel of every channel (replicated border), the channel
//               with the largest L1 magnitude (lowest on a tie), non-maximum suppression against
//               the two neighbour magnitudes along the quantised direction (recomputed here rather
//               than stored: one pass, no magnitude buffer), classed 0 none / 1 weak / 2 strong.
//   grow        one hysteresis step per tile: a TILE x TILE workgroup loads its pixels and a 1-pixel
//               halo, promotes weak pixels next to strong ones until nothing changes inside the
//               tile, and writes its pixels to the other buffer; any promotion sets flag[0].
//               Repeated (ops/image.ts) until a pass promotes nothing: the fixed point.
//   clear_flag  flag[0] = 0 before a batch of grow passes.
//   finish      strong -> 255, else 0.
import type { KernelFamily } from '../kernel.js';
import { perElement } from './common.wgsl.js';

// ---- tunables
/** invocations per workgroup of the per-pixel entries */
export const WG = 256;
/** hysteresis tile side (TILE * TILE invocations) */
export const TILE = 16;

const HALO = TILE + 2;

export const CANNY: KernelFamily = { name: 'canny', inputs: ['x', 'state'], outputs: { next: 'i32', flag: 'i32' }, code: /* wgsl */ `
const WG: u32 = ${WG}u;
const TILE: u32 = ${TILE}u;
const HALO: u32 = ${HALO}u;
// round(tan(22.5 deg) * 2^15), OpenCV's fixed-point direction slope
const TG22: i32 = 13573;

struct Params {
  C: u32,
  T: u32,
  H: u32,
  W: u32,
  low: i32,
  high: i32,
  tiles_x: u32,
  tiles_y: u32,
  n: u32,       // T * H * W
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

/** A uint8 pixel of channel c, frame t, with the border replicated. */
fn px(c: u32, t: u32, y: i32, x: i32) -> i32 {
  let yy = u32(clamp(y, 0, i32(P.H) - 1));
  let xx = u32(clamp(x, 0, i32(P.W) - 1));
  return clamp(ldi_x(((c * P.T + t) * P.H + yy) * P.W + xx), 0, 255);
}

/** (dx, dy, |dx| + |dy|) of the channel with the largest magnitude, the lowest on a tie. */
fn gradient(t: u32, y: i32, x: i32) -> vec3<i32> {
  var best = vec3<i32>(0, 0, -1);
  for (var c = 0u; c < P.C; c++) {
    let a = px(c, t, y - 1, x - 1);
    let b = px(c, t, y - 1, x);
    let d = px(c, t, y - 1, x + 1);
    let l = px(c, t, y, x - 1);
    let r = px(c, t, y, x + 1);
    let e = px(c, t, y + 1, x - 1);
    let f = px(c, t, y + 1, x);
    let g = px(c, t, y + 1, x + 1);
    let dx = (d - a) + 2 * (r - l) + (g - e);
    let dy = (e - a) + 2 * (f - b) + (g - d);
    let m = abs(dx) + abs(dy);
    if (m > best.z) { best = vec3<i32>(dx, dy, m); }
  }
  return best;
}

/** A neighbour's magnitude; 0 outside the image (OpenCV pads its magnitude rows with zeros). */
fn mag(t: u32, y: i32, x: i32) -> i32 {
  if (y < 0 || x < 0 || y >= i32(P.H) || x >= i32(P.W)) { return 0; }
  return gradient(t, y, x).z;
}

${perElement(
  'suppress',
  `  let plane = P.H * P.W;
  let t = i / plane;
  let y = i32((i % plane) / P.W);
  let x = i32(i % P.W);
  let g = gradient(t, y, x);
  let m = g.z;
  var cls = 0;
  if (m > P.low) {
    let ax = abs(g.x);
    let ay = abs(g.y) << 15u;
    let tg22x = ax * TG22;
    var keep = false;
    if (ay < tg22x) {
      keep = m > mag(t, y, x - 1) && m >= mag(t, y, x + 1);
    } else if (ay > tg22x + (ax << 16u)) {
      keep = m > mag(t, y - 1, x) && m >= mag(t, y + 1, x);
    } else {
      let s = select(1, -1, (g.x ^ g.y) < 0);
      keep = m > mag(t, y - 1, x - s) && m > mag(t, y + 1, x + s);
    }
    if (keep) { cls = select(1, 2, m > P.high); }
  }
  next[i] = cls;`,
)}

var<workgroup> tile: array<i32, ${HALO * HALO}>;
// the last local iteration that promoted a pixel (a stamp, so it never needs clearing between iterations)
var<workgroup> promoted_at: u32;

@compute @workgroup_size(${TILE}, ${TILE})
fn grow(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = wg_id(wid, nwg);
  let per_frame = P.tiles_x * P.tiles_y;
  if (g >= per_frame * P.T) { return; }
  let t = g / per_frame;
  let r = g % per_frame;
  let y0 = i32((r / P.tiles_x) * TILE) - 1;
  let x0 = i32((r % P.tiles_x) * TILE) - 1;
  let base = t * P.H * P.W;
  for (var k = li; k < HALO * HALO; k += TILE * TILE) {
    let yy = y0 + i32(k / HALO);
    let xx = x0 + i32(k % HALO);
    var v = 0;
    if (yy >= 0 && xx >= 0 && yy < i32(P.H) && xx < i32(P.W)) { v = ldi_state(base + u32(yy) * P.W + u32(xx)); }
    tile[k] = v;
  }
  if (li == 0u) { promoted_at = 0u; }
  workgroupBarrier();
  let k = (lid.y + 1u) * HALO + lid.x + 1u;
  let yy = y0 + i32(lid.y) + 1;
  let xx = x0 + i32(lid.x) + 1;
  let mine = yy < i32(P.H) && xx < i32(P.W);
  let start = tile[k];
  var it = 1u;
  loop {
    // read every neighbour before anyone writes, then write: no pixel reads a half-updated tile
    var v = tile[k];
    if (mine && v == 1) {
      var strong = false;
      for (var dy = 0u; dy < 3u; dy++) {
        for (var dx = 0u; dx < 3u; dx++) {
          strong = strong || tile[k + dy * HALO + dx - HALO - 1u] == 2;
        }
      }
      if (strong) { v = 2; }
    }
    workgroupBarrier();
    if (v != tile[k]) {
      tile[k] = v;
      promoted_at = it;
    }
    if (workgroupUniformLoad(&promoted_at) != it) { break; }
    it++;
  }
  if (mine) {
    let v = tile[k];
    next[base + u32(yy) * P.W + u32(xx)] = v;
    if (v != start) { flag[0] = 1; }
  }
}

@compute @workgroup_size(1)
fn clear_flag() {
  _ = P.n; // every entry binds the uniform at binding 0
  flag[0] = 0;
}

${perElement('finish', '  next[i] = select(0, 255, ldi_state(i) == 2);')}
` };
