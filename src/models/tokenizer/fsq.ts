// Finite scalar quantisation (Cosmos-Tokenizer modules/quantizers.py FSQuantizer; fact sheet §8).
// Per position, channel j of the embedding (level L_j):
//   half_l = (L-1)(1+1e-3)/2, offset = 0.5 if L even else 0, shift = atanh(offset / half_l)
//   q = round_half_even(tanh(z + shift) half_l - offset),  code = q / (L // 2)
//   digit = q + L // 2 in [0, L-1],  index = sum_j digit_j basis_j, basis = [1, L0, L0 L1, ...]
// so channel 0 is the least significant digit. No parameters. Everything runs on the device;
// per-channel constants are tiny tensors cached per backend.
import type { Backend } from '../../engine/backend.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope, shapeStr } from '../../engine/tensor.js';
import { TokenizerConfigError, TokenizerInputError, gotShape } from './errors.js';

const BOUND_EPS = 1e-3;

interface Constants {
  shift: Tensor;
  halfL: Tensor;
  offset: Tensor;
  halfWidth: Tensor;
  basis: Tensor;
  levels: Tensor;
}

/** Host-side token ids with their shape (validated before upload). */
export interface HostIndices {
  data: ArrayLike<number>;
  shape: readonly number[];
}

export class FSQuantizer {
  readonly levels: readonly number[];
  readonly basis: readonly number[];
  /** codebook size = product of the levels */
  readonly vocabSize: number;
  private readonly consts = new WeakMap<Backend, Constants>();

  constructor(levels: readonly number[]) {
    if (levels.length === 0 || levels.some((l) => !Number.isInteger(l) || l < 2)) {
      throw new TokenizerConfigError('levels', `expected FSQ levels >= 2, got ${JSON.stringify(levels)}`);
    }
    this.levels = [...levels];
    const basis: number[] = [];
    let acc = 1;
    for (const l of levels) {
      basis.push(acc);
      acc *= l;
    }
    this.basis = basis;
    this.vocabSize = acc;
    // indices are formed and decoded in f32 arithmetic on the device: exact below 2^24
    if (acc > 2 ** 24) throw new TokenizerConfigError('levels', `codebook of ${acc} entries exceeds 2^24, which f32 index arithmetic cannot represent exactly`);
  }

  get dim(): number {
    return this.levels.length;
  }

  /** Per-channel constants shaped [1, D, 1, ...] for a tensor of the given rank. */
  private constants(backend: Backend): Constants {
    let c = this.consts.get(backend);
    if (c && !c.basis.isDisposed) return c;
    const D = this.dim;
    const mk = (f: (l: number, j: number) => number) => F.fromArray(backend, this.levels.map(f), [D]).keep();
    c = {
      halfL: mk((l) => ((l - 1) * (1 + BOUND_EPS)) / 2),
      offset: mk((l) => (l % 2 === 0 ? 0.5 : 0)),
      shift: mk((l) => Math.atanh((l % 2 === 0 ? 0.5 : 0) / (((l - 1) * (1 + BOUND_EPS)) / 2))),
      halfWidth: mk((l) => Math.floor(l / 2)),
      basis: mk((_, j) => this.basis[j]),
      levels: mk((l) => l),
    };
    this.consts.set(backend, c);
    return c;
  }

  private channelShape(rank: number): number[] {
    const s = new Array(rank).fill(1);
    s[1] = this.dim;
    return s;
  }

  /**
   * Quantise z [B, D, ...]: codes [B, D, ...] (f32, normalised levels in [-1, 1]) and indices
   * [B, ...] (i32).
   */
  quantize(z: Tensor): { codes: Tensor; indices: Tensor } {
    if (z.rank < 2 || z.shape[1] !== this.dim) {
      throw new TokenizerInputError('z', `[B, ${this.dim}, ...] (embedding_dim = number of FSQ levels)`, gotShape(z.shape));
    }
    return scope(() => {
      const k = this.constants(z.backend);
      const cs = this.channelShape(z.rank);
      const view = (t: Tensor) => t.reshape(cs);
      const bounded = F.sub(F.mul(F.tanh(F.add(z, view(k.shift))), view(k.halfL)), view(k.offset));
      const q = F.round(bounded);
      const codes = F.div(q, view(k.halfWidth));
      const digits = F.add(q, view(k.halfWidth));
      const indices = F.cast(F.sum(F.mul(digits, view(k.basis)), 1), 'i32');
      return { codes, indices };
    });
  }

  /** Token ids [B, ...] (i32 tensor) -> codes [B, D, ...]. Ids are assumed in [0, vocab). */
  indicesToCodes(indices: Tensor): Tensor {
    return scope(() => {
      const k = this.constants(indices.backend);
      const r = indices.rank + 1;
      const cs = this.channelShape(r);
      const view = (t: Tensor) => t.reshape(cs);
      const idx = F.cast(indices, 'f32').reshape([indices.shape[0], 1, ...indices.shape.slice(1)]);
      // floor((i + 0.5) / b) and the mod below stay exact even with an inexact f32 division,
      // as the true quotient is at least 0.5 / b away from an integer.
      const quotient = F.floor(F.div(F.affine(idx, 1, 0.5), view(k.basis)));
      const wraps = F.floor(F.div(F.affine(quotient, 1, 0.5), view(k.levels)));
      const digit = F.sub(quotient, F.mul(wraps, view(k.levels)));
      return F.div(F.sub(digit, view(k.halfWidth)), view(k.halfWidth));
    });
  }

  /** Check host token ids (integers in [0, vocab)) and upload them as i32. */
  uploadIndices(backend: Backend, ids: HostIndices, argument = 'indices'): Tensor {
    const n = ids.shape.reduce((a, b) => a * b, 1);
    if (ids.data.length !== n) throw new TokenizerInputError(argument, `${n} ids for shape ${shapeStr(ids.shape)}`, `${ids.data.length} values`);
    for (let i = 0; i < n; i++) {
      const v = ids.data[i];
      if (!Number.isInteger(v) || v < 0 || v >= this.vocabSize) {
        throw new TokenizerInputError(argument, `token ids in [0, ${this.vocabSize})`, `${v} at flat position ${i}`);
      }
    }
    return F.fromArray(backend, ids.data instanceof Int32Array ? ids.data : Int32Array.from(ids.data), ids.shape, 'i32');
  }

  /** Read back device ids and check them (one readback; use when ids come from elsewhere). */
  async validateIndices(indices: Tensor, argument = 'indices'): Promise<void> {
    const v = await indices.read();
    for (let i = 0; i < v.length; i++) {
      if (!(v[i] >= 0 && v[i] < this.vocabSize) || !Number.isInteger(v[i])) {
        throw new TokenizerInputError(argument, `token ids in [0, ${this.vocabSize})`, `${v[i]} at flat position ${i}`);
      }
    }
  }
}
