// The DPT head with temporal motion modules (`head.*`, DPTHeadTemporal): four token levels
// projected and brought to 4x, 2x, 1x and 1/2x the patch grid, motion modules on the two coarse
// levels and after the first two fusions, the fusion blocks (residual conv units, bilinear
// align_corners=True upsampling) and the output convolutions.
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type Tensor, scope } from '../../engine/tensor.js';
import { ModuleList } from '../tokenizer/containers.js';
import type { DepthModelConfig } from './config.js';
import { Conv2d, ConvTranspose2d } from './layers.js';
import { TemporalModule } from './motion-module.js';

class ResidualConvUnit extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  constructor(features: number) {
    super();
    this.conv1 = this.add('conv1', new Conv2d(features, features, 3, 1, 1));
    this.conv2 = this.add('conv2', new Conv2d(features, features, 3, 1, 1));
  }
  forward(x: Tensor): Tensor {
    return scope(() => F.add(this.conv2.forward(F.relu(this.conv1.forward(F.relu(x)))), x));
  }
}

class FeatureFusionBlock extends Module {
  readonly resConfUnit1: ResidualConvUnit;
  readonly resConfUnit2: ResidualConvUnit;
  readonly outConv: Conv2d;
  constructor(features: number) {
    super();
    this.outConv = this.add('out_conv', new Conv2d(features, features, 1));
    this.resConfUnit1 = this.add('resConfUnit1', new ResidualConvUnit(features));
    this.resConfUnit2 = this.add('resConfUnit2', new ResidualConvUnit(features));
  }
  /** x0 (+ RCU1(skip)), RCU2, bilinear align_corners to `size` (default twice the input), 1x1 conv */
  forward(x0: Tensor, skip: Tensor | null, size?: readonly [number, number]): Tensor {
    return scope(() => {
      let h = skip ? F.add(x0, this.resConfUnit1.forward(skip)) : x0;
      h = this.resConfUnit2.forward(h);
      const [oh, ow] = size ?? [2 * h.shape[2], 2 * h.shape[3]];
      return this.outConv.forward(F.resizeFloat(h, oh, ow, 'align_corners'));
    });
  }
}

class Scratch extends Module {
  readonly layerRn: Conv2d[] = [];
  readonly refinenet: FeatureFusionBlock[] = [];
  readonly outputConv1: Conv2d;
  readonly outputConv2 = new ModuleList<Module>();
  readonly outConv2a: Conv2d;
  readonly outConv2b: Conv2d;
  constructor(c: DepthModelConfig) {
    super();
    const f = c.features;
    for (let i = 0; i < 4; i++) this.layerRn.push(this.add(`layer${i + 1}_rn`, new Conv2d(c.outChannels[i], f, 3, 1, 1, false)));
    for (let i = 0; i < 4; i++) this.refinenet.push(this.add(`refinenet${i + 1}`, new FeatureFusionBlock(f)));
    this.outputConv1 = this.add('output_conv1', new Conv2d(f, Math.floor(f / 2), 3, 1, 1));
    this.add('output_conv2', this.outputConv2);
    this.outConv2a = new Conv2d(Math.floor(f / 2), c.headFeatures2, 3, 1, 1);
    this.outConv2b = new Conv2d(c.headFeatures2, 1, 1);
    this.outputConv2.push(this.outConv2a);
    this.outputConv2.push(new Module());
    this.outputConv2.push(this.outConv2b);
  }
}

export class DptHeadTemporal extends Module {
  readonly projects = new ModuleList<Conv2d>();
  readonly resizeLayers = new ModuleList<Module>();
  readonly scratch: Scratch;
  readonly motionModules = new ModuleList<TemporalModule>();
  private readonly up4: ConvTranspose2d;
  private readonly up2: ConvTranspose2d;
  private readonly down2: Conv2d;
  constructor(readonly c: DepthModelConfig) {
    super();
    const E = c.backbone.embedDim;
    const oc = c.outChannels;
    this.add('projects', this.projects);
    for (const o of oc) this.projects.push(new Conv2d(E, o, 1));
    this.add('resize_layers', this.resizeLayers);
    this.up4 = new ConvTranspose2d(oc[0], oc[0], 4);
    this.up2 = new ConvTranspose2d(oc[1], oc[1], 2);
    this.down2 = new Conv2d(oc[3], oc[3], 3, 2, 1);
    this.resizeLayers.push(this.up4);
    this.resizeLayers.push(this.up2);
    this.resizeLayers.push(new Module());
    this.resizeLayers.push(this.down2);
    this.scratch = this.add('scratch', new Scratch(c));
    this.add('motion_modules', this.motionModules);
    for (const ch of [oc[2], oc[3], c.features, c.features]) this.motionModules.push(new TemporalModule(ch, c.motion));
  }

  private level(i: number, tokens: Tensor, ph: number, pw: number): Tensor {
    return this.tap(scope(() => {
      const [N, , E] = tokens.shape;
      const x = this.projects.at(i).forward(F.permute(tokens, [0, 2, 1]).reshape([N, E, ph, pw]));
      return i === 0 ? this.up4.forward(x) : i === 1 ? this.up2.forward(x) : i === 3 ? this.down2.forward(x) : x;
    }), `resize_layers.${i}`);
  }

  /** The fusions at the two finest levels and the output convolutions, for a run of frames. */
  private finish(path3: Tensor, l2: Tensor, l1: Tensor, ph: number, pw: number): { r2: Tensor; r1: Tensor; out: Tensor } {
    const s = this.scratch;
    const r2 = s.refinenet[1].forward(path3, l2, [l1.shape[2], l1.shape[3]]);
    const r1 = s.refinenet[0].forward(r2, l1);
    const out = scope(() => {
      const o = F.resizeFloat(s.outputConv1.forward(r1), 14 * ph, 14 * pw, 'align_corners');
      return F.relu(s.outConv2b.forward(F.relu(s.outConv2a.forward(o))));
    });
    return { r2, r1, out };
  }

  /**
   * features: the 4 normalised token levels [B * T, ph * pw, E] -> relative depth [B * T, 1, 14 ph, 14 pw].
   * Consumes `features` (each is freed once used), and frees each level once its successor exists:
   * at full size the finest levels are the largest tensors of the pass. `runFrames`: frames per
   * run of the finest fusions (default the config's micro_batch_size).
   */
  forward(features: readonly Tensor[], ph: number, pw: number, frames: number, runFrames?: number): Tensor {
    return scope(() => {
      const s = this.scratch;
      const mm = this.motionModules;
      const layers = features.map((t, i) => {
        const l = this.level(i, t, ph, pw);
        t.dispose();
        return l;
      });
      for (const i of [2, 3]) {
        const moved = mm.at(i - 2).forward(layers[i], frames);
        layers[i].dispose();
        layers[i] = moved;
      }
      const rn = layers.map((l, i) => {
        const r = s.layerRn[i].forward(l);
        l.dispose();
        return r;
      });
      const size = (t: Tensor): [number, number] => [t.shape[2], t.shape[3]];
      let path4 = this.tap(s.refinenet[3].forward(rn[3], null, size(rn[2])), 'scratch.refinenet4');
      path4 = mm.at(2).forward(path4, frames);
      let path3 = this.tap(s.refinenet[2].forward(path4, rn[2], size(rn[1])), 'scratch.refinenet3');
      path3 = mm.at(3).forward(path3, frames);
      const n = rn[0].shape[0];
      // upstream runs the two finest fusions and the output convolutions in runs of
      // micro_batch_size frames when that divides the batch, else all at once; every step there is
      // per frame, so any run length gives the same values: `runFrames` bounds the memory (at full
      // size these are the largest activations of the pass). The taps are the runs put together.
      const mb = Math.max(1, runFrames ?? this.c.microBatch);
      if (n <= mb) {
        const { r2, r1, out } = this.finish(path3, rn[1], rn[0], ph, pw);
        this.tap(r2, 'scratch.refinenet2');
        this.tap(r1, 'scratch.refinenet1');
        return this.tap(out, 'scratch.output_conv2');
      }
      const keep = { r2: this.wantsTap('scratch.refinenet2'), r1: this.wantsTap('scratch.refinenet1') };
      const parts: { r2: Tensor[]; r1: Tensor[]; out: Tensor[] } = { r2: [], r1: [], out: [] };
      for (let i = 0; i < n; i += mb) {
        const part = scope(() => {
          const e = Math.min(i + mb, n);
          const r = this.finish(F.slice(path3, 0, i, e), F.slice(rn[1], 0, i, e), F.slice(rn[0], 0, i, e), ph, pw);
          return [r.out, keep.r2 ? r.r2 : null, keep.r1 ? r.r1 : null].filter((t): t is Tensor => t !== null);
        });
        parts.out.push(part[0]);
        if (keep.r2) parts.r2.push(part[1]);
        if (keep.r1) parts.r1.push(part[keep.r2 ? 2 : 1]);
      }
      if (keep.r2) this.tap(F.concat(parts.r2, 0), 'scratch.refinenet2');
      if (keep.r1) this.tap(F.concat(parts.r1, 0), 'scratch.refinenet1');
      return this.tap(F.concat(parts.out, 0), 'scratch.output_conv2');
    });
  }
}
