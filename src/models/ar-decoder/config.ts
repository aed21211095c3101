// STAND-IN: replaced by wp-ardec-model. Only the contract's names and the fields the chain reads
// (ardec-pipe's src/pipelines/ar-decoder.ts, decoderGeometry) are here.
import { UserError } from '../../engine/errors.js';

export interface ArDecoderConfig {
  inChannels: number;
  outChannels: number;
  modelChannels: number;
  numBlocks: number;
  numHeads: number;
  crossattnEmbChannels: number;
  adalnLoraDim: number;
  patchSpatial: number;
  vocabSize: number;
  tokenDim: number;
  sigmaData: number;
}

function int(json: Record<string, unknown>, key: string, fallback?: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new UserError(`config.json: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export function parseArDecoderConfig(json: Record<string, unknown>): ArDecoderConfig {
  return {
    inChannels: int(json, 'in_channels'),
    outChannels: int(json, 'out_channels'),
    modelChannels: int(json, 'model_channels'),
    numBlocks: int(json, 'num_blocks'),
    numHeads: int(json, 'num_heads'),
    crossattnEmbChannels: int(json, 'crossattn_emb_channels'),
    adalnLoraDim: int(json, 'adaln_lora_dim', 256),
    patchSpatial: int(json, 'patch_spatial', 2),
    vocabSize: int(json, 'diffusion_decoder_token_condition_voc_size', 64000),
    tokenDim: int(json, 'diffusion_decoder_token_condition_dim', 32),
    sigmaData: typeof json.sigma_data === 'number' ? json.sigma_data : 0.5,
  };
}

export const RELEASED_AR_DECODER_CONFIG: ArDecoderConfig = {
  inChannels: 16, outChannels: 16, modelChannels: 4096, numBlocks: 28, numHeads: 32, crossattnEmbChannels: 1024, adalnLoraDim: 256,
  patchSpatial: 2, vocabSize: 64000, tokenDim: 32, sigmaData: 0.5,
};
