// Cosmos Tokenizer networks (continuous / discrete, video / image) and their loaders.
export * from './errors.js';
export * from './config.js';
export * from './released.js';
export { Patcher3D, UnPatcher3D, Patcher, UnPatcher, haarDwt3d, haarIdwt3d, haarDwt2d, haarIdwt2d } from './wavelet.js';
export { FSQuantizer, type HostIndices } from './fsq.js';
export {
  type CausalState, CausalConv3d, FactorizedConv3d, CausalNormalize, CausalResnetBlockFactorized3d, CausalAttnBlock,
  CausalTemporalAttnBlock, AttnPair, CausalHybridDownsample3d, CausalHybridUpsample3d, EncoderFactorized, DecoderFactorized,
} from './layers3d.js';
export { Conv2d, GroupNorm32, ResnetBlock, AttnBlock, Downsample, Upsample, Encoder2d, Decoder2d } from './layers2d.js';
export { VideoTokenizerBase, CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer, type VideoTokenizer } from './video.js';
export { ImageTokenizerBase, ContinuousImageTokenizer, DiscreteImageTokenizer, type ImageTokenizer } from './image.js';
export {
  AutoencoderKLCosmos, type AutoencoderKLCosmosConfig, DIFFUSERS_CLASS_NAME, diffusersArch, cosmosToDiffusersName,
  type LatentStats, latentStats, normalizeLatent, denormalizeLatent,
} from './diffusers.js';
export {
  type Tokenizer, type TokenizerLayout, tokenizerLayout, buildTokenizer, isIgnorableBuffer, loadTokenizerWeights,
  resolveTokenizerFiles, loadTokenizer, type LoadTokenizerOptions,
} from './load.js';
export { StreamState, VideoEncoderStream, encodeStream, type StreamOutput } from './stream.js';
