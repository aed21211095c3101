// Canny on kernels/canny.wgsl.ts: one suppression pass, then
// hysteresis tile passes ping-ponging between two buffers until one promotes nothing. A pass
// converges inside its tile, so only chains crossing tile borders need more passes; the flag is
// read back once per GROW_BATCH passes, not after each, to keep the queue fed.
import type { CannyParams } from '../../backend.js';
import type { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { Params, grid1d } from '../context.js';
import { CANNY, TILE, WG } from '../kernels/canny.wgsl.js';

/** grow passes between two reads of the flag */
export const GROW_BATCH = 4;

export async function canny(be: WebGpuBackend, x: Tensor, p: CannyParams): Promise<Tensor> {
  const n = p.T * p.H * p.W;
  const out = be.empty('i32', [p.T, p.H, p.W]);
  if (n === 0) return out;
  const tilesX = Math.ceil(p.W / TILE);
  const tilesY = Math.ceil(p.H / TILE);
  const params = new Params().u32(p.C, p.T, p.H, p.W).i32(p.low, p.high).u32(tilesX, tilesY, n, 0, 0, 0);
  const pixels = grid1d(Math.ceil(n / WG));
  let a = be.empty('i32', [n]);
  let b = be.empty('i32', [n]);
  const flag = be.empty('i32', [1]);
  try {
    be.ctx.dispatch({ family: CANNY, entry: 'suppress', inputs: { x }, outputs: { next: a }, params, workgroups: pixels });
    for (;;) {
      be.ctx.dispatch({ family: CANNY, entry: 'clear_flag', inputs: {}, outputs: { flag }, params, workgroups: [1] });
      for (let i = 0; i < GROW_BATCH; i++) {
        be.ctx.dispatch({ family: CANNY, entry: 'grow', inputs: { state: a }, outputs: { next: b, flag }, params, workgroups: grid1d(tilesX * tilesY * p.T) });
        [a, b] = [b, a];
      }
      // a batch that promoted nothing began at the fixed point
      if ((await be.read(flag))[0] === 0) break;
    }
    be.ctx.dispatch({ family: CANNY, entry: 'finish', inputs: { state: a }, outputs: { next: out }, params, workgroups: pixels });
  } finally {
    a.dispose();
    b.dispose();
    flag.dispose();
  }
  return out;
}
