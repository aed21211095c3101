// RetinaFace backbones as IntermediateLayerGetter sees them: the children of a torchvision ResNet
// (conv1, bn1, relu, maxpool, layer1..layer4; v1.5, the stride in the 3x3 conv) or of biubug6's
// MobileNetV1 x0.25 (stage1..stage3), run in order up to the last returned layer. Children after
// it (ResNet's avgpool / fc) are not built: IntermediateLayerGetter drops them, so the released
// state dict has no keys for them.
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import type { ResNetArch, RetinaFaceConfig } from './retinaface-config.js';
import { RetinaFaceConfigError } from './retinaface-config.js';
import { BatchNorm2d, Conv2d, leakyRelu, maxPool2d } from './retinaface-layers.js';

/** A body: named stages run in order; the returned ones feed the FPN. */
export interface Body extends Module {
  /** channels out of each stage, by child name */
  readonly stageChannels: ReadonlyMap<string, number>;
  forward(x: Tensor): Tensor[];
}

/** downsample = Sequential(conv1x1(stride), BatchNorm2d) */
class Downsample extends Module {
  private readonly conv: Conv2d;
  private readonly bn: BatchNorm2d;
  constructor(cin: number, cout: number, stride: number) {
    super();
    this.conv = this.add(0, new Conv2d(cin, cout, 1, stride));
    this.bn = this.add(1, new BatchNorm2d(cout));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.bn.forward(this.conv.forward(x)));
  }
}

/** torchvision Bottleneck (1x1 -> 3x3 with the stride -> 1x1 x expansion) or BasicBlock (3x3 -> 3x3). */
class ResBlock extends Module {
  private readonly convs: Conv2d[] = [];
  private readonly bns: BatchNorm2d[] = [];
  private readonly downsample: Downsample | null;
  constructor(arch: ResNetArch, inplanes: number, planes: number, stride: number) {
    super();
    const out = planes * arch.expansion;
    const shapes: [number, number, number, number, number][] = [];
    if (arch.block === 'Bottleneck') {
      const width = Math.floor(planes * (arch.widthPerGroup / 64)) * arch.groups;
      shapes.push([inplanes, width, 1, 1, 1], [width, width, 3, stride, arch.groups], [width, out, 1, 1, 1]);
    } else {
      shapes.push([inplanes, planes, 3, stride, 1], [planes, out, 3, 1, 1]);
    }
    shapes.forEach(([cin, cout, k, s, g], i) => {
      this.convs.push(this.add(`conv${i + 1}`, new Conv2d(cin, cout, k, s, (k - 1) / 2, g)));
      this.bns.push(this.add(`bn${i + 1}`, new BatchNorm2d(cout)));
    });
    this.downsample = stride !== 1 || inplanes !== out ? this.add('downsample', new Downsample(inplanes, out, stride)) : null;
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      let y = x;
      const last = this.convs.length - 1;
      for (let i = 0; i <= last; i++) {
        y = this.bns[i].forward(this.convs[i].forward(y));
        if (i < last) y = F.relu(y);
      }
      return F.relu(F.add(y, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/** One of layer1..layer4: a Sequential of blocks. */
class ResLayer extends Module {
  private readonly blocks: ResBlock[] = [];
  constructor(arch: ResNetArch, inplanes: number, planes: number, count: number, stride: number) {
    super();
    for (let i = 0; i < count; i++) {
      this.blocks.push(this.add(i, new ResBlock(arch, i === 0 ? inplanes : planes * arch.expansion, planes, i === 0 ? stride : 1)));
    }
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => this.blocks.reduce((y, b) => b.forward(y), x)));
  }
}

const RESNET_STAGES = ['layer1', 'layer2', 'layer3', 'layer4'] as const;

/** Stem conv1 -> bn1 -> relu -> maxpool(3, 2, 1), then layer1.. up to the last returned one. */
export class ResNetBody extends Module implements Body {
  private readonly conv1: Conv2d;
  private readonly bn1: BatchNorm2d;
  private readonly layers: ResLayer[] = [];
  readonly stageChannels = new Map<string, number>();
  constructor(arch: ResNetArch, private readonly returned: readonly string[]) {
    super();
    this.conv1 = this.add('conv1', new Conv2d(3, 64, 7, 2, 3));
    this.bn1 = this.add('bn1', new BatchNorm2d(64));
    const last = Math.max(...returned.map((n) => RESNET_STAGES.indexOf(n as (typeof RESNET_STAGES)[number])));
    let inplanes = 64;
    for (let i = 0; i <= last; i++) {
      const planes = 64 * 2 ** i;
      this.layers.push(this.add(RESNET_STAGES[i], new ResLayer(arch, inplanes, planes, arch.layers[i], i === 0 ? 1 : 2)));
      inplanes = planes * arch.expansion;
      this.stageChannels.set(RESNET_STAGES[i], inplanes);
    }
  }
  forward(x: Tensor): Tensor[] {
    return scope(() => {
      let y = maxPool2d(F.relu(this.bn1.forward(this.conv1.forward(x))), 3, 2, 1);
      const out: Tensor[] = [];
      this.layers.forEach((layer, i) => {
        y = layer.forward(y);
        if (this.returned.includes(RESNET_STAGES[i])) out.push(y);
      });
      return out;
    });
  }
}

/** conv_bn / conv_bn1X1: Sequential(Conv2d (no bias), BatchNorm2d[, LeakyReLU]). */
export class ConvBn extends Module {
  private readonly conv: Conv2d;
  private readonly bn: BatchNorm2d;
  /** null: no activation (conv_bn_no_relu) */
  constructor(cin: number, cout: number, k: number, stride: number, private readonly slope: number | null) {
    super();
    this.conv = this.add(0, new Conv2d(cin, cout, k, stride, (k - 1) / 2));
    this.bn = this.add(1, new BatchNorm2d(cout));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const y = this.bn.forward(this.conv.forward(x));
      return this.slope === null ? y : leakyRelu(y, this.slope);
    });
  }
}

/** conv_dw: depthwise 3x3 (0, 1, 2 = LeakyReLU) then pointwise 1x1 (3, 4, 5 = LeakyReLU), slope 0.1. */
class ConvDw extends Module {
  private readonly dw: Conv2d;
  private readonly bnDw: BatchNorm2d;
  private readonly pw: Conv2d;
  private readonly bnPw: BatchNorm2d;
  constructor(cin: number, cout: number, stride: number, private readonly slope = 0.1) {
    super();
    this.dw = this.add(0, new Conv2d(cin, cin, 3, stride, 1, cin));
    this.bnDw = this.add(1, new BatchNorm2d(cin));
    this.pw = this.add(3, new Conv2d(cin, cout, 1, 1, 0));
    this.bnPw = this.add(4, new BatchNorm2d(cout));
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const y = leakyRelu(this.bnDw.forward(this.dw.forward(x)), this.slope);
      return leakyRelu(this.bnPw.forward(this.pw.forward(y)), this.slope);
    });
  }
}

class Stage extends Module {
  private readonly items: Module[] = [];
  constructor(items: (ConvBn | ConvDw)[]) {
    super();
    items.forEach((m, i) => {
      this.items.push(this.add(i, m));
    });
  }
  forward(x: Tensor): Tensor {
    return this.tap(scope(() => this.items.reduce((y, m) => (m as ConvBn | ConvDw).forward(y), x)));
  }
}

const MNET_STAGES = ['stage1', 'stage2', 'stage3'] as const;

/** biubug6's MobileNetV1 x0.25 (fixed layout; its avgpool / fc come after stage3 and are dropped). */
export class MobileNetBody extends Module implements Body {
  private readonly stages: Stage[] = [];
  readonly stageChannels = new Map<string, number>([['stage1', 64], ['stage2', 128], ['stage3', 256]]);
  constructor(private readonly returned: readonly string[]) {
    super();
    const dw = (cin: number, cout: number, s: number) => new ConvDw(cin, cout, s);
    const layouts: (ConvBn | ConvDw)[][] = [
      [new ConvBn(3, 8, 3, 2, 0.1), dw(8, 16, 1), dw(16, 32, 2), dw(32, 32, 1), dw(32, 64, 2), dw(64, 64, 1)],
      [dw(64, 128, 2), dw(128, 128, 1), dw(128, 128, 1), dw(128, 128, 1), dw(128, 128, 1), dw(128, 128, 1)],
      [dw(128, 256, 2), dw(256, 256, 1)],
    ];
    const last = Math.max(...returned.map((n) => MNET_STAGES.indexOf(n as (typeof MNET_STAGES)[number])));
    for (let i = 0; i <= last; i++) this.stages.push(this.add(MNET_STAGES[i], new Stage(layouts[i])));
  }
  forward(x: Tensor): Tensor[] {
    return scope(() => {
      const out: Tensor[] = [];
      let y = x;
      this.stages.forEach((s, i) => {
        y = s.forward(y);
        if (this.returned.includes(MNET_STAGES[i])) out.push(y);
      });
      return out;
    });
  }
}

/**
 * The body of a config: its return_layers ordered as the backbone runs them (IntermediateLayerGetter
 * returns them in module order), each a child the backbone has.
 */
export function buildBody(cfg: RetinaFaceConfig): Body {
  const names: readonly string[] = cfg.name === 'Resnet50' ? RESNET_STAGES : MNET_STAGES;
  const returned = Object.keys(cfg.returnLayers);
  const unknown = returned.filter((n) => !names.includes(n));
  if (unknown.length) {
    throw new RetinaFaceConfigError(`config.json return_layers: ${unknown.join(', ')} is not a ${cfg.name} stage; expected three of ${names.join(', ')}`);
  }
  const ordered = names.filter((n) => returned.includes(n));
  const body = cfg.name === 'Resnet50' ? new ResNetBody(cfg.resnet!, ordered) : new MobileNetBody(ordered);
  const want = [2, 4, 8].map((m) => cfg.inChannel * m);
  const got = ordered.map((n) => body.stageChannels.get(n)!);
  if (got.some((c, i) => c !== want[i])) {
    throw new RetinaFaceConfigError(
      `config.json in_channel: ${cfg.inChannel} makes the FPN expect ${want.join(', ')} channels, but the ${cfg.name} stages ${ordered.join(', ')} give ${got.join(', ')}`,
    );
  }
  return body;
}
