// STAND-IN: replaced by wp-ardec-model. Declares the released state dict's parameters (fact sheet
// section 3, the `net.` prefix stripped) so that loading and planning count the right bytes;
// forward is not implemented.
import { Module } from '../../engine/module.js';
import type { Tensor } from '../../engine/tensor.js';
import type { ModuleFamily } from '../load.js';
import { type ArDecoderConfig, parseArDecoderConfig } from './config.js';

class Group extends Module {
  with(name: string | number, m: Module): this {
    this.add(name, m);
    return this;
  }
}

class Weights extends Module {
  constructor(shapes: Record<string, number[]>) {
    super();
    for (const [k, s] of Object.entries(shapes)) this.param(k, s);
  }
}

const linear = (out: number, inp: number) => new Weights({ weight: [out, inp] });

export class DiffusionDecoderDiT extends Module {
  constructor(readonly config: ArDecoderConfig) {
    super();
    const D = config.modelChannels;
    const L = config.adalnLoraDim;
    const hd = D / config.numHeads;
    const p = config.patchSpatial;
    const ada = (k: number) => new Group().with(1, linear(L, D)).with(2, linear(k * D, L));
    this.add('x_embedder', new Group().with('proj', new Group().with(1, linear(D, (config.inChannels + config.tokenDim + 1) * p * p))));
    this.add('token_embedder', new Weights({ weight: [config.vocabSize, config.tokenDim] }));
    this.add('t_embedder', new Group().with(1, new Group().with('linear_1', linear(D, D)).with('linear_2', linear(3 * D, D))));
    this.add('affline_norm', new Weights({ weight: [D] }));
    const attn = (kv: number) => {
      const a = new Group()
        .with('to_q', new Group().with(0, linear(D, D)).with(1, new Weights({ weight: [hd] })))
        .with('to_k', new Group().with(0, linear(D, kv)).with(1, new Weights({ weight: [hd] })))
        .with('to_v', new Group().with(0, linear(D, kv)))
        .with('to_out', new Group().with(0, linear(D, D)));
      return new Group().with('attn', a);
    };
    const blocks = new Group();
    for (let i = 0; i < config.numBlocks; i++) {
      blocks.with(`block${i}`, new Group().with('blocks', new Group()
        .with(0, new Group().with('adaLN_modulation', ada(3)).with('block', attn(D)))
        .with(1, new Group().with('adaLN_modulation', ada(3)).with('block', attn(config.crossattnEmbChannels)))
        .with(2, new Group().with('adaLN_modulation', ada(3)).with('block', new Group().with('layer1', linear(4 * D, D)).with('layer2', linear(D, 4 * D))))));
    }
    this.add('blocks', blocks);
    this.add('final_layer', new Group().with('adaLN_modulation', ada(2)).with('linear', linear(p * p * config.outChannels, D)));
  }

  forward(_x: Tensor, _timestep: Tensor | number, _crossattn: Tensor, _latentCondition: Tensor, _o: { fps: number; paddingMask?: Tensor }): Tensor {
    throw new Error('STAND-IN: DiffusionDecoderDiT.forward comes with wp-ardec-model');
  }
}

export const ArDecoderFamily: ModuleFamily<DiffusionDecoderDiT> = {
  name: 'DiffusionDecoderGeneralDIT (STAND-IN)',
  build: (config) => new DiffusionDecoderDiT(parseArDecoderConfig(config)),
  // logvar.* (training only) and TransformerEngine *._extra_state entries carry no weights
  loadOptions: () => ({
    mapKey: (k: string) => (k.startsWith('net.') ? k.slice(4) : k),
    ignore: (k: string) => k.startsWith('logvar.') || k.endsWith('._extra_state') || k === 'net.pos_embedder.seq',
  }),
};
