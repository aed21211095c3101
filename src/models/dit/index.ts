// The Cosmos DiT: the transformer, its 3D RoPE, the three sampling loops and what they share.
//
//   const { model } = await CosmosTransformer3DModel.fromPretrained('…/transformer', backend);
//   const noise = new GaussianNoise(seed).tensor(backend, [1, 16, T, H, W]);
//   const { latents } = await sampleEdm(model, {          // Cosmos-1.0 (sampleFlowUniPC: Predict2.5,
//     noise, promptEmbeds, negativePromptEmbeds,           //  sampleFlowEuler: Predict2)
//     steps: 36, guidanceScale: 7, fps: 30,
//     onStep: ({ step, steps }) => progress.update(step + 1, steps),
//   });
export * from './config.js';
export * from './conditioning.js';
export * from './noise.js';
export * from './released.js';
export * from './rope3d.js';
export * from './samplers/common.js';
export * from './samplers/edm.js';
export * from './samplers/flow-euler.js';
export * from './samplers/unipc.js';
export {
  type BlockConditioning, type BlockOptions, type CosmosForwardInputs, type EmbeddedInputs, type RopeTables,
  CosmosAdaLayerNorm, CosmosAdaLayerNormZero, CosmosAttention, CosmosEmbedding, CosmosLearnablePositionalEmbed,
  CosmosPatchEmbed, CosmosRotaryPosEmbed, CosmosTimestepEmbedding, CosmosTransformer3DModel, CosmosTransformerBlock,
  FeedForward, Linear, LinearGelu, RMSNorm, nearestIndices, resizePaddingMask, timestepFrequencies,
} from './transformer.js';
