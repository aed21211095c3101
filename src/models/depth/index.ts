// The depth control's model package: what the transfer pipeline uses.
export { type AspectTable, type DepthControlOptions, type DepthFrames, controlSizeFor, depthControl, depthControlFloat } from './control.js';
export { DEPTH_ENCODERS, type DepthModelConfig, parseDepthConfig } from './config.js';
export { inferVideoDepth, scaleAndShift } from './infer.js';
export { DepthFamily, VideoDepthAnything, configFromCheckpoint, loadDepthModel } from './model.js';
export { depthNetSize, effectiveInputSize, preprocessFrames } from './preprocess.js';
