// Seeded Gaussian noise for sampling from the command line: seedrandom's ARC4 stream through the
// Box-Muller transform. Deterministic for a seed, but not torch's generator: a run matches
// PyTorch only when its noise is passed in (as the conformance cases do).
import seedrandom from 'seedrandom';
import type { Backend } from '../../engine/backend.js';
import { fromArray } from '../../engine/ops.js';
import { Tensor, numel } from '../../engine/tensor.js';

/** Draws a tensor of unit Gaussian noise of the given shape. */
export type NoiseSource = (shape: readonly number[]) => Tensor;

export class GaussianNoise {
  private readonly rng: seedrandom.PRNG;
  private spare: number | null = null;

  constructor(readonly seed: string | number) {
    this.rng = seedrandom(String(seed));
  }

  /** One N(0, 1) draw (the polar pair's second value is kept for the next call). */
  next(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    // u1 in (0, 1] so the log is finite
    const u1 = 1 - this.rng();
    const u2 = this.rng();
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  fill(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next();
    return out;
  }

  tensor(backend: Backend, shape: readonly number[]): Tensor {
    // the plan backend holds no values: draws would only cost time (a 14B video2world plan's
    // augmentation noise alone is 260M of them)
    if (backend.name === 'plan') return new Tensor(backend.alloc('f32', numel(shape)), shape);
    return fromArray(backend, this.fill(numel(shape)), shape);
  }

  /** This generator as a NoiseSource on a backend. */
  source(backend: Backend): NoiseSource {
    return (shape) => this.tensor(backend, shape);
  }
}
