// kind -> handler. Each model family registers the kinds it implements (see kinds.ts); the
// runner dispatches on case.json `kind`, never on folder names.
import type { Backend } from '../engine/backend.js';
import type { ReadArray } from '../engine/dtype.js';
import type { TapRecorder } from '../engine/module.js';
import type { Tensor } from '../engine/tensor.js';
import type { FixtureCase } from './case.js';
import type { Comparison } from './compare.js';

/**
 * Values computed on the host, with the shape upstream returns them in: a flat array alone
 * carries no shape, and an output is compared by its shape as well as its values.
 */
export interface ShapedArray {
  values: ReadArray;
  shape: readonly number[];
}

export function shaped(values: ReadArray, shape: readonly number[]): ShapedArray {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== values.length) throw new Error(`shaped: ${values.length} values for shape [${shape.join(', ')}]`);
  return { values, shape };
}

export type OutputValue = Tensor | ShapedArray | readonly string[];

export interface KindResult {
  /** by output name as in case.safetensors (`output.<name>`) or case.json outputs */
  outputs: Record<string, OutputValue>;
  /** recorded module outputs, compared with `tap.<path>` in forward order */
  taps?: TapRecorder;
  /**
   * outputs the kind compared itself, by name (cases whose expected values are not in
   * case.safetensors, e.g. checkpoint.read's expected.safetensors); replaces the comparison of `outputs`
   */
  compared?: Record<string, Comparison>;
  /**
   * taps the kind cannot reproduce by design, by path, with the reason (e.g. values upstream draws
   * from torch.rand and never uses); reported as not compared instead of as missing
   */
  uncomparedTaps?: Record<string, string>;
}

export type KindHandler = (c: FixtureCase, backend: Backend) => Promise<KindResult>;

const handlers = new Map<string, KindHandler>();

export function registerKind(kind: string, handler: KindHandler): void {
  handlers.set(kind, handler);
}

export function handlerFor(kind: string): KindHandler | undefined {
  return handlers.get(kind);
}
