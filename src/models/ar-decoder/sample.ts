// STAND-IN: replaced by wp-ardec-model (the contract's signature only).
import type { Tensor } from '../../engine/tensor.js';
import type { DiffusionDecoderDiT } from './model.js';

export interface SampleDecoderChunkOptions {
  ids: Tensor;
  text: Tensor;
  latent: { channels: number; frames: number; height: number; width: number };
  noise: Tensor;
  steps?: number;
  guidance?: number;
  fps?: number;
  paddingMask?: Tensor;
  signal?: AbortSignal;
  onStep?: (i: number, n: number) => void;
}

export async function sampleDecoderChunk(_model: DiffusionDecoderDiT, _o: SampleDecoderChunkOptions): Promise<Tensor> {
  throw new Error('STAND-IN: sampleDecoderChunk comes with wp-ardec-model');
}

export function decoderSigmas(_steps: number): Float64Array {
  throw new Error('STAND-IN: decoderSigmas comes with wp-ardec-model');
}
