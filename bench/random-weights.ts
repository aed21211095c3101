// Random weights for the model benches (ar, vlm): every parameter of a module tree as a
// checkpoint whose tensors are made when read, tiled from one seeded block (timing does not care
// about the values, only that they are ordinary numbers).
import { f32ToBf16 } from '../src/engine/dtype.js';
import type { DType, RawArray } from '../src/engine/dtype.js';
import type { Module, TensorSource } from '../src/engine/module.js';
import { numel } from '../src/engine/tensor.js';

/** 2^20 values in [-1, 1) from a linear congruential generator. */
export const BLOCK = (() => {
  const a = new Float32Array(1 << 20);
  let s = 12345;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
})();

/** `n` values tiled from BLOCK, times `scale`, in `dtype` (bf16 or f32). */
export function tiled(n: number, dtype: DType, scale = 1): RawArray {
  const src = dtype === 'bf16' ? Uint16Array.from(BLOCK, (x) => f32ToBf16(x * scale)) : Float32Array.from(BLOCK, (x) => x * scale);
  const raw: RawArray = dtype === 'bf16' ? new Uint16Array(n) : new Float32Array(n);
  for (let o = 0; o < n; o += src.length) raw.set(n - o >= src.length ? src : src.subarray(0, n - o), o);
  return raw;
}

/**
 * Every parameter of `model` in `dtype`: 1-D tensors (norm weights, biases) ones, the rest random
 * scaled by 1 / sqrt(fan-in), or unscaled where `unscaled(name)` (embedding tables).
 */
export function randomWeights(model: Module, dtype: DType, unscaled: (name: string) => boolean): TensorSource {
  const shapes = new Map<string, readonly number[]>();
  for (const p of model.parameters()) shapes.set(p.key, p.shape);
  const patterns = new Map<number, RawArray>();
  const pattern = (scale: number): RawArray => {
    let p = patterns.get(scale);
    if (!p) {
      p = tiled(BLOCK.length, dtype, scale);
      patterns.set(scale, p);
    }
    return p;
  };
  return {
    names: [...shapes.keys()],
    path: '<random>',
    info: (name) => ({ dtype: dtype === 'bf16' ? 'BF16' : 'F32', shape: shapes.get(name)! }),
    read: async (name) => {
      const shape = shapes.get(name)!;
      const n = numel(shape);
      const raw: RawArray = dtype === 'bf16' ? new Uint16Array(n) : new Float32Array(n);
      if (shape.length === 1) raw.fill(dtype === 'bf16' ? 0x3f80 : 1);
      else {
        const src = pattern(unscaled(name) ? 1 : 1 / Math.sqrt(numel(shape.slice(1))));
        for (let o = 0; o < n; o += src.length) raw.set(n - o >= src.length ? src : src.subarray(0, n - o), o);
      }
      return { dtype, raw, shape };
    },
  };
}
