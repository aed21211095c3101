// The leaf layers of Video-Depth-Anything, named as PyTorch names their parameters.
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';

/** nn.Conv2d(cin, cout, k, stride, padding) with or without bias. */
export class Conv2d extends Module {
  readonly weight: Param;
  readonly bias: Param | null;
  constructor(cin: number, cout: number, readonly k: number, readonly stride = 1, readonly padding = 0, bias = true) {
    super();
    this.weight = this.param('weight', [cout, cin, k, k]);
    this.bias = bias ? this.param('bias', [cout]) : null;
  }
  forward(x: Tensor): Tensor {
    return F.conv(x, this.weight.t, this.bias?.t ?? null, { stride: this.stride, padding: this.padding });
  }
}

/**
 * nn.ConvTranspose2d with kernel == stride and no padding: the output patches do not overlap, so
 * each input pixel's patch is one matmul row (weight [cin, cout, k, k]) put in place.
 */
export class ConvTranspose2d extends Module {
  readonly weight: Param;
  readonly bias: Param;
  constructor(readonly cin: number, readonly cout: number, readonly k: number) {
    super();
    this.weight = this.param('weight', [cin, cout, k, k]);
    this.bias = this.param('bias', [cout]);
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const [N, C, H, W] = x.shape;
      const { cout, k } = this;
      const rows = F.permute(x, [0, 2, 3, 1]).reshape([N * H * W, C]);
      // the bias of output channel o on each of its k * k columns, added by the matmul
      const bias = F.expand(this.bias.t.reshape([cout, 1]), [cout, k * k]).reshape([cout * k * k]);
      const y = F.matmul(rows, this.weight.t.reshape([C, cout * k * k]), { bias });
      return F.permute(y.reshape([N, H, W, cout, k, k]), [0, 3, 1, 4, 2, 5]).reshape([N, cout, H * k, W * k]);
    });
  }
}

/** nn.GroupNorm(groups, channels, eps) with weight and bias, on [N, C, ...]. */
export class GroupNorm extends Module {
  readonly weight: Param;
  readonly bias: Param;
  constructor(readonly groups: number, channels: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', [channels]);
    this.bias = this.param('bias', [channels]);
  }
  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.groups, this.weight.t, this.bias.t, this.eps);
  }
}
