// countNonFinite on kernels/finite.wgsl.ts: one counting pass of at most MAX_GROUPS workgroups over
// the raw words, and a one-workgroup pass over their partials when there is more than one.
import { Tensor } from '../../tensor.js';
import type { WebGpuBackend } from '../backend.js';
import { Params } from '../context.js';
import { FINITE, MAX_GROUPS, MIN_WORDS_PER_INVOCATION, WG } from '../kernels/finite.wgsl.js';

const MODE = { f32: 0, bf16: 1, f16: 2 } as const;

export function countNonFinite(be: WebGpuBackend, x: Tensor): Tensor {
  if (x.dtype === 'i32' || x.size === 0) return new Tensor(be.upload('i32', new Int32Array(2)), [2]);
  const y = be.empty('i32', [2]);
  const n = x.size;
  const words = x.dtype === 'f32' ? n : Math.ceil(n / 2);
  const groups = Math.min(MAX_GROUPS, Math.ceil(words / (WG * MIN_WORDS_PER_INVOCATION)));
  const params = new Params().u32(n, words, groups, 0);
  const overrides = { MODE: MODE[x.dtype] };
  // bound as bf16: the prelude then declares x as array<u32>, the raw words whatever the storage
  const bindAs = { x: 'bf16' as const };
  if (groups === 1) {
    be.ctx.dispatch({ family: FINITE, entry: 'count_main', inputs: { x }, outputs: { part: y }, params, overrides, bindAs, workgroups: [1] });
    return y;
  }
  const part = be.empty('i32', [groups, 2]);
  be.ctx.dispatch({ family: FINITE, entry: 'count_main', inputs: { x }, outputs: { part }, params, overrides, bindAs, workgroups: [groups] });
  be.ctx.dispatch({ family: FINITE, entry: 'count_final', inputs: {}, outputs: { part, out: y }, params, workgroups: [1] });
  part.dispose();
  return y;
}
