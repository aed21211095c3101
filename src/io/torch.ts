// PyTorch checkpoints (`.pt`, `.pth`, `.jit`), read safely and written: torch.save zip archives
// (zip64 included), the legacy pre-1.6 stream and TorchScript archives, through a restricted
// pickle interpreter that never runs anything the file names (spec/checkpoint-formats.md in the
// shared specs). Tensors are read lazily with positioned reads, as for safetensors.
//
// This module is the public API; the implementation lives in torch/ (zip container, pickle
// interpreter, legacy stream, storages and views, the key rule, the reader and the writer).
export {
  MAX_PICKLE_BYTES, openTorchBuffer, openTorchCheckpoint, openTorchSource, type TorchCheckpoint, type TorchFormat, torchSubtree,
} from './torch/checkpoint.js';
export type { TorchDType } from './torch/dtypes.js';
export { TorchFormatError } from './torch/errors.js';
export { sniffCheckpointFormat, torchFormatOf, type WeightsFormat } from './torch/sniff.js';
export { encodeTorchZip, type TorchTensor, TorchTuple, type TorchValue, type TorchWriteOptions, torchTuple, torchZipChunks, writeTorchCheckpoint } from './torch/write.js';
export { encodeZip, type ZipRecordToWrite } from './torch/zip-write.js';
