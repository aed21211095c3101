// safetensors: reading (lazy: the header at open, tensor bytes on demand), sharded checkpoints,
// and writing. Format: u64 LE header length N, N bytes of JSON header, then the data section that
// the header's data_offsets index (relative to the start of the data section).
// Spec: https://github.com/huggingface/safetensors#format
//
// This module is the public API; the implementation lives in safetensors/ (dtypes, header, one
// file, checkpoints, writing), and the error classes in errors.ts.
export { type Checkpoint, type OpenCheckpointOptions, openCheckpoint } from './safetensors/checkpoint.js';
export { type FileDType, type LoadedTensor, numelOf } from './safetensors/dtypes.js';
export { openSafetensors, openSafetensorsBuffer, type SafetensorsFile, type TensorReader } from './safetensors/file.js';
export type { TensorInfo } from './safetensors/header.js';
export {
  encodeSafetensors,
  type TensorsToWrite,
  type TensorToWrite,
  type WriteDType,
  writeSafetensors,
} from './safetensors/write.js';
