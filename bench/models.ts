// What the model benches (ar, vlm) share: random weights (every parameter of a module tree as a
// checkpoint whose tensors are made when read, tiled from one seeded block: timing does not care
// about the values, only that they are ordinary numbers), and the sizes a backend refuses.
import type { Backend } from '../src/engine/backend.js';
import { type DType, type RawArray, f32ToBf16 } from '../src/engine/dtype.js';
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

/** A config a backend could not run, and why. */
export interface Refused {
  config: string;
  backend: string;
  adapter: string;
  reason: string;
}

/** Bytes one kernel may bind of a tensor on `be`. */
export function bindingLimit(be: Backend): number {
  return Math.min(be.limits.maxBufferBytes, be.limits.maxBindingBytes);
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** The buffers (name, bytes) larger than `be` binds, as a reason, or null when all fit. */
export function refusal(be: Backend, buffers: readonly (readonly [string, number])[]): string | null {
  const max = bindingLimit(be);
  const big = buffers.filter(([, b]) => b > max);
  if (!big.length) return null;
  return `the backend's buffer limit (${MiB(max)} per binding) refuses: ${big.map(([n, b]) => `${n} = ${MiB(b)}`).join('; ')}`;
}

/** Each parameter of `model` as a buffer of `dtype`, for refusal(). */
export function parameterBuffers(model: Module, dtype: DType): [string, number][] {
  const el = dtype === 'bf16' ? 2 : 4;
  return [...model.parameters()].map((p) => [`${p.key} [${p.shape.join(', ')}] ${dtype}`, numel(p.shape) * el]);
}
