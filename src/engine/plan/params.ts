// Parameters for a plan run without reading any weights. Both sources below go through the
// ordinary loadWeights, so a plan takes the same checks (missing / unexpected / mis-shaped keys),
// the same dtypes (castTo included) and the same uploads, in the same order, as a real load:
// its memory counts match a real load's on the CPU. Their reads return zero-filled arrays that
// nothing ever writes (views of one shared zero buffer); the plan backend only looks at their
// length, so the OS never backs their pages with memory. On a computing backend they load zeros.
import type { DType } from '../dtype.js';
import { type RawArray, bytesPerElement } from '../dtype.js';
import { UserError } from '../errors.js';
import type { Module, TensorSource } from '../module.js';
import { numel } from '../tensor.js';

/** The engine dtype a safetensors file dtype loads as (as io/safetensors reads it). */
const FILE_TO_ENGINE: Readonly<Record<string, DType>> = {
  F32: 'f32', F64: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32', I64: 'i32', U8: 'i32', BOOL: 'i32',
};

/**
 * One zero buffer every read is a view of (grown to the largest tensor asked for): a plan loads
 * billions of parameters, and a fresh zero array per tensor would cost the allocator (and the
 * garbage collector) gigabytes for arrays that are only measured. Nothing writes these views.
 */
let zeros = new ArrayBuffer(0);

function zeroArray(dtype: DType, n: number): RawArray {
  const bytes = n * bytesPerElement(dtype);
  if (bytes > zeros.byteLength) zeros = new ArrayBuffer(Math.max(bytes, 2 * zeros.byteLength));
  if (dtype === 'f32') return new Float32Array(zeros, 0, n);
  if (dtype === 'i32') return new Int32Array(zeros, 0, n);
  return new Uint16Array(zeros, 0, n);
}

/** What a read of `name` would give, without reading: its dtype, shape, and zeros. */
function zeroRead(src: TensorSource, name: string): { dtype: DType; raw: RawArray; shape: readonly number[] } {
  const { dtype: fileDtype, shape } = src.info(name);
  const dtype = FILE_TO_ENGINE[fileDtype];
  if (!dtype) throw new UserError(`${src.path ?? '<tensors>'}: tensor ${name} is stored as ${fileDtype}, which cannot be loaded`);
  return { dtype, raw: zeroArray(dtype, numel(shape)), shape };
}

/** A checkpoint's names, dtypes and shapes (e.g. a safetensors header), with reads that return zeros. */
export function shapeOnlySource(src: TensorSource): TensorSource {
  return {
    names: src.names,
    path: src.path,
    info: (name) => src.info(name),
    read: async (name) => zeroRead(src, name),
  };
}

/**
 * A checkpoint made from the parameters a module declares, each stored as `dtype`, for a model
 * known only by its config. Optional parameters are included (an upper bound: a released
 * checkpoint may leave some out; plan from its header with shapeOnlySource to be exact).
 */
export function declaredSource(root: Module, dtype: DType = 'f32'): TensorSource {
  const fileDtype = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32' }[dtype];
  const shapes = new Map<string, readonly number[]>();
  for (const p of root.parameters()) shapes.set(p.key, p.shape);
  const src: TensorSource = {
    names: [...shapes.keys()],
    path: '<declared parameters>',
    info: (name) => ({ dtype: fileDtype, shape: shapes.get(name)! }),
    read: async (name) => zeroRead(src, name),
  };
  return src;
}
