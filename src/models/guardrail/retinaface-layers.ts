// The leaf layers RetinaFace is built from, named as PyTorch names them: a bias-free Conv2d,
// BatchNorm2d in eval mode (running statistics folded into one scale and shift per channel, as
// PyTorch's CPU kernel does), LeakyReLU, max pooling and nearest resizing to a given size.
import { Module, type Param } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';

/** nn.Conv2d(cin, cout, k, stride, padding, groups, bias). */
export class Conv2d extends Module {
  readonly weight: Param;
  readonly bias: Param | null;
  constructor(cin: number, cout: number, readonly k: number, readonly stride = 1, readonly padding = 0, readonly groups = 1, bias = false) {
    super();
    this.weight = this.param('weight', [cout, cin / groups, k, k]);
    this.bias = bias ? this.param('bias', [cout]) : null;
  }
  forward(x: Tensor): Tensor {
    return F.conv(x, this.weight.t, this.bias?.t ?? null, { stride: this.stride, padding: this.padding, groups: this.groups });
  }
}

/** nn.BatchNorm2d (eps 1e-5) in eval mode; num_batches_tracked carries no state here. */
export class BatchNorm2d extends Module {
  private readonly weight: Param;
  private readonly bias: Param;
  private readonly mean: Param;
  private readonly variance: Param;
  private folded: { scale: Tensor; shift: Tensor } | null = null;
  constructor(readonly channels: number, readonly eps = 1e-5) {
    super();
    this.weight = this.param('weight', [channels]);
    this.bias = this.param('bias', [channels]);
    this.mean = this.param('running_mean', [channels]);
    this.variance = this.param('running_var', [channels]);
  }
  /** scale = weight / sqrt(var + eps), shift = bias - mean * scale, shaped [C, 1, 1]; computed once. */
  private affine(): { scale: Tensor; shift: Tensor } {
    if (!this.folded) {
      const c = this.channels;
      const scale = scope(() => F.mul(this.weight.t, F.rsqrt(F.affine(this.variance.t, 1, this.eps))).reshape([c, 1, 1]).keep());
      const shift = scope(() => F.sub(this.bias.t, F.mul(this.mean.t, scale.reshape([c]))).reshape([c, 1, 1]).keep());
      this.folded = { scale, shift };
    }
    return this.folded;
  }
  forward(x: Tensor): Tensor {
    const { scale, shift } = this.affine();
    return scope(() => F.add(F.mul(x, scale), shift));
  }
  override dispose(): void {
    this.folded?.scale.dispose();
    this.folded?.shift.dispose();
    this.folded = null;
    super.dispose();
  }
}

/** LeakyReLU(slope) for 0 <= slope < 1 (slope 0 is ReLU): max(x, slope * x). */
export function leakyRelu(x: Tensor, slope: number): Tensor {
  if (slope === 0) return F.relu(x);
  return scope(() => F.maximum(x, F.scale(x, slope)));
}

/** The most negative float32: padding that never wins a max. */
const LOWEST_F32 = -3.4028234663852886e38;

/** nn.MaxPool2d(k, stride, padding) over [N, C, H, W] (floor mode). */
export function maxPool2d(x: Tensor, k: number, stride: number, padding: number): Tensor {
  return scope(() => {
    const [, , H, W] = x.shape;
    const Ho = Math.floor((H + 2 * padding - k) / stride) + 1;
    const Wo = Math.floor((W + 2 * padding - k) / stride) + 1;
    const p = F.pad(x, [[0, 0], [0, 0], [padding, padding], [padding, padding]], 'constant', LOWEST_F32);
    let out: Tensor | null = null;
    for (let dy = 0; dy < k; dy++) {
      const rows = F.slice(p, 2, dy, dy + stride * (Ho - 1) + 1, stride);
      for (let dx = 0; dx < k; dx++) {
        const win = F.slice(rows, 3, dx, dx + stride * (Wo - 1) + 1, stride);
        out = out ? F.maximum(out, win) : win;
      }
    }
    return out!;
  });
}

/**
 * F.interpolate(x, size=[h, w], mode='nearest'): source index min(floor(i * float32(in / out)), in - 1)
 * per axis, as PyTorch computes it (in float32).
 */
export function resizeNearest(x: Tensor, h: number, w: number): Tensor {
  const [, , H, W] = x.shape;
  if (H === h && W === w) return x;
  if (h === 2 * H && w === 2 * W) return F.upsampleNearest(x, [2, 2]);
  return scope(() => {
    const along = (t: Tensor, axis: number, n: number, m: number) => {
      if (n === m) return t;
      const s = Math.fround(n / m);
      const idx = Int32Array.from({ length: m }, (_, i) => Math.min(Math.floor(Math.fround(i * s)), n - 1));
      return F.indexSelect(t, axis, F.fromArray(t.backend, idx, [m], 'i32'));
    };
    return along(along(x, 2, H, h), 3, W, w);
  });
}
