// The RetinaFace network (biubug6/Pytorch_Retinaface models/retinaface.py, models/net.py; fact
// sheet guardrail.md "Face detection + blur" step 3): body -> FPN (three 1x1 laterals, top-down
// nearest upsampling and 3x3 merges of levels 2 and 1) -> one SSH per level -> per-level 1x1 heads
// (2 anchors: classes, boxes, landmarks), each laid out NHWC and flattened to [N, H*W*2, k], levels
// concatenated, softmax over the two classes (test phase). Module paths are the
// RetinaFace.state_dict() key prefixes (body.* = the backbone's own names).
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { Config, ModuleFamily } from '../load.js';
import { type Body, ConvBn, buildBody } from './retinaface-body.js';
import { type RetinaFaceConfig, parseRetinaFaceConfig } from './retinaface-config.js';
import { Conv2d, resizeNearest } from './retinaface-layers.js';

/** FPN and SSH use LeakyReLU(0.1) when out_channel <= 64, ReLU otherwise. */
const slopeFor = (outChannel: number) => (outChannel <= 64 ? 0.1 : 0);

class FPN extends Module {
  private readonly outputs: ConvBn[];
  private readonly merge1: ConvBn;
  private readonly merge2: ConvBn;
  constructor(inChannels: readonly number[], out: number) {
    super();
    const slope = slopeFor(out);
    this.outputs = inChannels.map((c, i) => this.add(`output${i + 1}`, new ConvBn(c, out, 1, 1, slope)));
    this.merge1 = this.add('merge1', new ConvBn(out, out, 3, 1, slope));
    this.merge2 = this.add('merge2', new ConvBn(out, out, 3, 1, slope));
  }
  /** Records its first output (level 1) as the tap `fpn`, as a hook on the module sees out[0]. */
  forward(xs: readonly Tensor[]): Tensor[] {
    return scope(() => {
      const [o1, o2, o3] = xs.map((x, i) => this.outputs[i].forward(x));
      const m2 = this.merge2.forward(F.add(o2, resizeNearest(o3, o2.shape[2], o2.shape[3])));
      const m1 = this.merge1.forward(F.add(o1, resizeNearest(m2, o1.shape[2], o1.shape[3])));
      return [this.tap(m1), m2, o3];
    });
  }
}

class SSH extends Module {
  private readonly conv3X3: ConvBn;
  private readonly conv5X5_1: ConvBn;
  private readonly conv5X5_2: ConvBn;
  private readonly conv7X7_2: ConvBn;
  private readonly conv7x7_3: ConvBn;
  constructor(cin: number, out: number) {
    super();
    const slope = slopeFor(out);
    const q = out / 4;
    this.conv3X3 = this.add('conv3X3', new ConvBn(cin, out / 2, 3, 1, null));
    this.conv5X5_1 = this.add('conv5X5_1', new ConvBn(cin, q, 3, 1, slope));
    this.conv5X5_2 = this.add('conv5X5_2', new ConvBn(q, q, 3, 1, null));
    this.conv7X7_2 = this.add('conv7X7_2', new ConvBn(q, q, 3, 1, slope));
    // upstream spells this one with a lower-case x
    this.conv7x7_3 = this.add('conv7x7_3', new ConvBn(q, q, 3, 1, null));
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => {
      const a = this.conv3X3.forward(x);
      const b1 = this.conv5X5_1.forward(x);
      const b = this.conv5X5_2.forward(b1);
      const c = this.conv7x7_3.forward(this.conv7X7_2.forward(b1));
      return F.relu(F.concat([a, b, c], 1));
    }));
  }
}

/** ClassHead / BboxHead / LandmarkHead: conv1x1 (with bias) to anchors * k, NHWC, [N, H*W*anchors, k]. */
class Head extends Module {
  private readonly conv1x1: Conv2d;
  constructor(cin: number, anchors: number, private readonly k: number) {
    super();
    this.conv1x1 = this.add('conv1x1', new Conv2d(cin, anchors * k, 1, 1, 0, 1, true));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const y = F.permute(this.conv1x1.forward(x), [0, 2, 3, 1]);
      return F.contiguous(y).reshape([x.shape[0], -1, this.k]);
    });
  }
}

class HeadList extends Module {
  readonly heads: Head[];
  constructor(levels: number, cin: number, anchors: number, k: number) {
    super();
    this.heads = Array.from({ length: levels }, (_, i) => this.add(i, new Head(cin, anchors, k)));
  }
  forward(features: readonly Tensor[]): Tensor {
    return scope(() => F.concat(features.map((f, i) => this.heads[i].forward(f)), 1));
  }
}

export interface RetinaFaceOutput {
  /** box regressions [N, P, 4] */
  loc: Tensor;
  /** class probabilities [N, P, 2] (softmax; face = [..., 1]) */
  conf: Tensor;
  /** landmark regressions [N, P, 10] */
  landms: Tensor;
}

export const ANCHORS_PER_LOCATION = 2;

export class RetinaFace extends Module {
  readonly body: Body;
  private readonly fpn: FPN;
  private readonly ssh: SSH[];
  private readonly classHead: HeadList;
  private readonly bboxHead: HeadList;
  private readonly landmarkHead: HeadList;
  constructor(readonly config: RetinaFaceConfig) {
    super();
    const out = config.outChannel;
    this.body = this.add('body', buildBody(config));
    this.fpn = this.add('fpn', new FPN([2, 4, 8].map((m) => config.inChannel * m), out));
    this.ssh = [1, 2, 3].map((i) => this.add(`ssh${i}`, new SSH(out, out)));
    this.classHead = this.add('ClassHead', new HeadList(3, out, ANCHORS_PER_LOCATION, 2));
    this.bboxHead = this.add('BboxHead', new HeadList(3, out, ANCHORS_PER_LOCATION, 4));
    this.landmarkHead = this.add('LandmarkHead', new HeadList(3, out, ANCHORS_PER_LOCATION, 10));
  }

  /** x: [N, 3, H, W] float32, BGR minus the channel means (see face-post.ts preprocessFrame). */
  forward(x: Tensor): RetinaFaceOutput {
    return scope(() => {
      const levels = this.fpn.forward(this.body.forward(x));
      const features = levels.map((l, i) => this.ssh[i].forward(l));
      return {
        loc: this.bboxHead.forward(features),
        conf: F.softmax(this.classHead.forward(features), -1),
        landms: this.landmarkHead.forward(features),
      };
    });
  }
}

/** Keys of a RetinaFace state dict that carry no parameter here (BatchNorm's counter). */
const isBuffer = (key: string) => key.endsWith('.num_batches_tracked');

/**
 * Upstream's load_model: a `state_dict` entry is used when the file has one; a leading `module.`
 * is stripped from every key; load_state_dict(strict=False) ignores the keys the model lacks
 * (here every parameter the model declares must still be there).
 */
export function retinaFaceKey(names: readonly string[], modelKeys: ReadonlySet<string>): (key: string) => string | null {
  const wrapped = names.some((n) => n.startsWith('state_dict.'));
  return (key) => {
    let k = key;
    if (wrapped) {
      if (!k.startsWith('state_dict.')) return null;
      k = k.slice('state_dict.'.length);
    }
    if (k.startsWith('module.')) k = k.slice('module.'.length);
    return modelKeys.has(k) && !isBuffer(k) ? k : null;
  };
}

export const RetinaFaceFamily: ModuleFamily<RetinaFace> = {
  name: 'RetinaFace',
  build: (config: Config) => new RetinaFace(parseRetinaFaceConfig(config)),
  loadOptions: (model, src) => {
    const keys = new Set([...model.parameters()].map((p) => p.key));
    // upstream runs the net in float32 whatever the file stores (net.to(dtype=float32))
    return { mapKey: retinaFaceKey(src.names, keys), castTo: 'f32' };
  },
};
