// The per-frame image filters on kernels/image.wgsl.ts; the support and weight tables are
// computed on the host (engine/image.ts) and uploaded per call (a few KiB).
import type { AreaParams, BilateralParams, ResampleParams, TwoTapParams } from '../../backend.js';
import { bytesPerElement } from '../../dtype.js';
import { BILATERAL_LANES } from '../../image.js';
import { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { type GpuStorage, Params, grid1d } from '../context.js';
import { IMAGE, WG } from '../kernels/image.wgsl.js';

export function bilateral(be: WebGpuBackend, x: Tensor, p: BilateralParams): Tensor {
  const out = be.empty('f32', x.shape);
  const n = p.T * p.H * p.W;
  if (n === 0) return out;
  const pairs = new Int32Array(2 * p.space.length);
  for (let k = 0; k < p.space.length; k++) {
    pairs[2 * k] = p.dy[k];
    pairs[2 * k + 1] = p.dx[k];
  }
  const ofs = new Tensor(be.upload('i32', pairs), [pairs.length]);
  const sw = new Tensor(be.upload('f32', p.space), [p.space.length]);
  const cw = new Tensor(be.upload('f32', p.color), [p.color.length]);
  const vecEnd = Math.floor(p.W / BILATERAL_LANES) * BILATERAL_LANES;
  be.ctx.dispatch({
    family: IMAGE, entry: 'bilateral_main', inputs: { x, ofs, sw, cw }, outputs: { out },
    params: new Params().u32(n, p.H, p.W, p.space.length, vecEnd, 0, 0, 0),
    overrides: { WG },
    workgroups: grid1d(Math.ceil(n / WG)),
  });
  ofs.dispose();
  sw.dispose();
  cw.dispose();
  return out;
}

export function resample(be: WebGpuBackend, x: Tensor, p: ResampleParams): Tensor {
  const out = be.empty('f32', [p.outer, p.outSize, p.inner]);
  const n = p.outer * p.outSize * p.inner;
  if (n === 0) return out;
  const pairs = new Int32Array(2 * p.outSize);
  for (let i = 0; i < p.outSize; i++) {
    pairs[2 * i] = p.start[i];
    pairs[2 * i + 1] = p.size[i];
  }
  const ofs = new Tensor(be.upload('i32', pairs), [pairs.length]);
  const sw = new Tensor(be.upload('f32', p.weights), [p.weights.length]);
  be.ctx.dispatch({
    family: IMAGE, entry: 'resample_main', inputs: { x, ofs, sw }, outputs: { out },
    params: new Params().u32(n, p.outSize, p.inner, p.inSize, p.stride, p.toU8 ? 1 : 0, 0, 0),
    overrides: { WG },
    workgroups: grid1d(Math.ceil(n / WG)),
  });
  ofs.dispose();
  sw.dispose();
  return out;
}

/**
 * Run a per-plane resize of x [count, sh, sw] -> f32 [count, dh, dw] in parts of planes whose
 * input and output each fit one binding (or `maxPlanes`), when the whole does not: each part's
 * planes are copied out of x and its result into the output with buffer copies, which no binding
 * limit bounds, so a clip larger than a binding (93 frames of 1280 x 704) still resizes.
 */
function byPlanes(
  be: WebGpuBackend, x: Tensor, count: number, sh: number, sw: number, dh: number, dw: number, maxPlanes: number | undefined,
  run: (part: Tensor, n: number) => Tensor,
): Tensor {
  const inPlane = sh * sw * bytesPerElement(x.dtype);
  const outPlane = 4 * dh * dw;
  const limit = be.limits.maxBindingBytes;
  let per = Math.max(1, Math.floor(Math.min(maxPlanes ?? count, limit / Math.max(inPlane, outPlane, 1))));
  if (per >= count) return run(x, count);
  // buffer copies move whole words: a 2-byte dtype with an odd plane takes planes in pairs
  if (inPlane % 4) per = Math.max(2, per - (per % 2));
  const out = be.empty('f32', [count, dh, dw]);
  const src = (x.storage as GpuStorage).buffer;
  const dst = (out.storage as GpuStorage).buffer;
  for (let p0 = 0; p0 < count; p0 += per) {
    const n = Math.min(per, count - p0);
    const part = be.empty(x.dtype, [n, sh, sw]);
    const bytes = n * inPlane;
    be.ctx.copyBytes(src, p0 * inPlane, (part.storage as GpuStorage).buffer, 0, bytes + (bytes % 4 ? 4 - (bytes % 4) : 0));
    const res = run(part, n);
    be.ctx.copyBytes((res.storage as GpuStorage).buffer, 0, dst, p0 * outPlane, n * outPlane);
    part.dispose();
    res.dispose();
  }
  return out;
}

export function areaResize(be: WebGpuBackend, x: Tensor, p: AreaParams): Tensor {
  return byPlanes(be, x, p.count, p.sh, p.sw, p.dh, p.dw, p.maxPlanes, (part, count) => areaCall(be, part, { ...p, count }));
}

function areaCall(be: WebGpuBackend, x: Tensor, p: AreaParams): Tensor {
  const out = be.empty('f32', [p.count, p.dh, p.dw]);
  const n = p.count * p.dh * p.dw;
  if (n === 0) return out;
  const nx = p.xSrc.length;
  // x firsts, then y firsts shifted past the x entries; sources and weights likewise
  const firsts = Int32Array.from([...p.xFirst, ...p.yFirst]);
  const src = Float32Array.from([...p.xSrc, ...p.ySrc]);
  const weights = Float32Array.from([...p.xAlpha, ...p.yAlpha]);
  const ofs = new Tensor(be.upload('i32', firsts), [firsts.length]);
  const sw = new Tensor(be.upload('f32', weights.length ? weights : new Float32Array(1)), [Math.max(1, weights.length)]);
  const cw = new Tensor(be.upload('f32', src.length ? src : new Float32Array(1)), [Math.max(1, src.length)]);
  if (nx !== p.xFirst[p.dw]) throw new Error('areaResize: the x table is inconsistent');
  be.ctx.dispatch({
    family: IMAGE, entry: 'area_main', inputs: { x, ofs, sw, cw }, outputs: { out },
    params: new Params().u32(n, p.dh, p.dw, p.sh, p.sw, p.block ? p.block[0] : 0, 0, p.block ? p.block[1] : 0),
    overrides: { WG },
    workgroups: grid1d(Math.ceil(n / WG)),
  });
  ofs.dispose();
  sw.dispose();
  cw.dispose();
  return out;
}

export function twoTapResize(be: WebGpuBackend, x: Tensor, p: TwoTapParams): Tensor {
  return byPlanes(be, x, p.count, p.sh, p.sw, p.y.i0.length, p.x.i0.length, p.maxPlanes, (part, count) => twoTapCall(be, part, { ...p, count }));
}

function twoTapCall(be: WebGpuBackend, x: Tensor, p: TwoTapParams): Tensor {
  const dh = p.y.i0.length;
  const dw = p.x.i0.length;
  const out = be.empty('f32', [p.count, dh, dw]);
  const n = p.count * dh * dw;
  if (n === 0) return out;
  const tab = new Int32Array(4 * (dw + dh));
  [p.x, p.y].forEach((a, k) => {
    const o = k === 0 ? 0 : 4 * dw;
    for (let d = 0; d < a.i0.length; d++) tab.set([a.i0[d], a.i1[d], a.w0[d], a.w1[d]], o + 4 * d);
  });
  const ofs = new Tensor(be.upload('i32', tab), [tab.length]);
  be.ctx.dispatch({
    family: IMAGE, entry: 'twotap_main', inputs: { x, ofs }, outputs: { out },
    params: new Params().u32(n, dh, dw, p.sh, p.sw, 0, 0, 0),
    overrides: { WG },
    workgroups: grid1d(Math.ceil(n / WG)),
  });
  ofs.dispose();
  return out;
}
