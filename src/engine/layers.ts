// The leaf modules every model shares, named as PyTorch names their parameters.
import { Module, type Param } from './module.js';
import * as F from './ops.js';
import type { Tensor } from './tensor.js';

/** nn.Linear: weight [out, in], optional bias [out]. */
export class Linear extends Module {
  readonly weight: Param;
  readonly bias: Param | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = false) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures]);
    this.bias = bias ? this.param('bias', [outFeatures]) : null;
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.linear(x, this.weight.t, this.bias?.t ?? null));
  }
}

/** nn.Embedding: rows of weight [n, d] by i32 ids. */
export class Embedding extends Module {
  readonly weight: Param;
  constructor(n: number, d: number) {
    super();
    this.weight = this.param('weight', [n, d]);
  }
  forward(ids: Tensor): Tensor {
    return this.tap(F.embedding(this.weight.t, ids));
  }
}

/** RMSNorm with a learnable weight over the last axis: x * rsqrt(mean(x²) + eps) * weight. */
export class RMSNorm extends Module {
  readonly weight: Param;
  constructor(dim: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', [dim]);
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.rmsNorm(x, this.weight.t, this.eps));
  }
}

/** nn.LayerNorm(dim, eps) with weight and bias over the last axis. */
export class LayerNorm extends Module {
  readonly weight: Param;
  readonly bias: Param;
  constructor(dim: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', [dim]);
    this.bias = this.param('bias', [dim]);
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.layerNorm(x, this.weight.t, this.bias.t, this.eps));
  }
}
