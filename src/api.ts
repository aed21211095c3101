// The public API: what `import ... from 'cosmos-ts'` gives, in Node and in a browser alike. The
// two entry points (index.ts for Node, browser.ts) re-export this and install their file system.
// Grouped by floor, bottom to top; see spec/architecture.md.

// ---- engine: tensors, ops, backends, modules and taps, errors
export type { Backend, BackendLimits, BackendName, MemoryStats } from './engine/backend.js';
export { type DType, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, narrow, widen } from './engine/dtype.js';
export { CancelledError, UserError, isUserError, throwIfAborted } from './engine/errors.js';
export { NonFiniteError } from './engine/finite.js';
export { Embedding, Linear, RMSNorm } from './engine/layers.js';
export {
  CheckpointMismatchError, type LoadOptions, type LoadReport, Module, Param, TapRecorder, type TapSelection, type TensorSource, capture, loadWeights,
  plannedBytes,
} from './engine/module.js';
export * as ops from './engine/ops.js';
export {
  BACKEND_CHOICES, type BackendChoice, type SelectBackendOptions, type WebGpuApi, type WebGpuOptions, cpuBackend, planBackend, selectBackend,
  selectBackends, useTuning, webgpuBackend, webgpuOptionsFromEnv,
} from './engine/select.js';
export { type AutotuneOptions, TUNE_SHAPES, type TuneEvent, type TuneShape, type TuneTiming, autotune, tuningTable } from './engine/autotune.js';
export {
  DEFAULT_MATMUL_TUNING, MATMUL_CLASSES, type MatmulChoice, type MatmulClass, type MatmulTuning, type TuningTable, matmulClass, parseTuning,
} from './engine/tuning.js';
export { PLAN_READ_LIMIT_BYTES, PlanBackend, type PlanBackendOptions, PlanLimitError } from './engine/plan/backend.js';
export { declaredSource, shapeOnlySource } from './engine/plan/params.js';
export { type TensorStats, statsOf, tensorStats } from './engine/stats.js';
export { ShapeError, Tensor, numel, scope, scopeAsync, shapeStr } from './engine/tensor.js';

// ---- io: files, checkpoints, video, metrics
export { type BlobFiles, type BrowserFileSystemOptions, type UrlFileSystemOptions, blobFileSystem, urlFileSystem } from './io/browser-files.js';
export { contactSheet } from './io/contact-sheet.js';
export {
  type CreateFolderOptions, FileError, type FileInfo, type FileSystem, type OutputFile, type OutputFolder, type RandomAccessFile, fileSystem, readBytes,
  readJsonObject, readText, setFileSystem,
  writeFileAtomic,
} from './io/files.js';
export { DEFAULT_LIMITS, type InputLimits, InputLimitError, checkFrameLimits } from './io/limits.js';
export { createVideoSink, openVideoSource, probeVideo, readVideo, writeVideo } from './io/open-video.js';
export { decodePng, encodePng, probePng, readPng, writePng } from './io/png.js';
export { readPngFrames, writePngFrames } from './io/png-frames.js';
export { type Checkpoint, type SafetensorsFile, openCheckpoint, openSafetensors, writeSafetensors } from './io/safetensors.js';
export {
  type TorchCheckpoint, TorchFormatError, type TorchTensor, type TorchValue, encodeTorchZip, openTorchCheckpoint, sniffCheckpointFormat, torchTuple, writeTorchCheckpoint,
} from './io/torch.js';
export { type FrameSource, type Rational, type Video, cropVideo, getFrame, padVideo, sliceFrames, stackFrames } from './io/video.js';
export { createY4mWriter, openY4m, readY4m, writeY4m } from './io/y4m.js';
export { type Quality, psnr, quality, ssim } from './metrics/quality.js';

// ---- text tokenizers
export { ByteLevelBpeTokenizer } from './text/bpe.js';
export { ChatTemplate, chatTemplateOf, loadChatTemplate } from './text/chat.js';
export { BpeTokenizerError, ChatTemplateError, SentencePieceModelError } from './text/errors.js';
export { SentencePieceProcessor } from './text/sentencepiece.js';
export { T5Tokenizer } from './text/t5-tokenizer.js';

// ---- models: one family each, loaded through loadModule
export { ArTransformer, ArTransformerFamily } from './models/ar/transformer.js';
export { CosmosControlNetFamily, CosmosControlNetModel } from './models/controlnet/controlnet.js';
export { CosmosTransformer3DFamily, CosmosTransformer3DModel } from './models/dit/transformer.js';
export { type Config, type LoadModuleOptions, type LoadedModule, type ModuleFamily, loadModule } from './models/load.js';
export { T5EncoderFamily, T5EncoderModel } from './models/t5/encoder.js';
export { T5TextEncoder } from './models/t5/prompts.js';
export { AutoencoderKLCosmos } from './models/tokenizer/diffusers.js';
export { ContinuousImageTokenizer, DiscreteImageTokenizer } from './models/tokenizer/image.js';
export { CosmosTokenizerFamily, type LoadTokenizerOptions, type Tokenizer, buildTokenizer, loadTokenizer } from './models/tokenizer/load.js';
export { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from './models/tokenizer/video.js';
export { Qwen2_5_VLFamily, Qwen2_5_VLForConditionalGeneration } from './models/vlm/language.js';
export { COSMOS_PROMPT_SYSTEM, ReasonPromptEncoder, ReasonTextFamily, ReasonTextModel, standardizeTokens } from './models/vlm/prompt-embeds.js';
export { type WanVaeConfig, parseWanVaeConfig } from './models/wan/config.js';
export { AutoencoderKLWan, AutoencoderKLWanFamily, type WanPosterior, denormalizeWanLatent, loadWanVae, normalizeWanLatent } from './models/wan/autoencoder.js';

// ---- pipelines: every workflow as a function
export { type ArVideo2WorldOptions, type ArVideo2WorldResult, arVideo2World } from './pipelines/ar-video2world.js';
export { type ConformOptions, type ConformReport, conform } from './pipelines/conform.js';
export type { ComponentBytes, PhaseHooks } from './pipelines/components.js';
export {
  type ArPlan, type ArPlanOptions, type ReasonPlan, type ReasonPlanOptions, type TokenizerPlan, type TokenizerPlanOptions, planArVideo2World, planReason,
  planTokenizer,
} from './pipelines/plan/models.js';
export { type PlanReport, type PlanTarget, TYPICAL_GPU_LIMITS, cpuTarget, webgpuTarget } from './pipelines/plan/measure.js';
export { type TransferPlan, type TransferPlanOptions, planTransfer } from './pipelines/plan/transfer.js';
export { type Video2WorldPlanOptions, type WorldPlan, type WorldPlanOptions, planText2World, planVideo2World } from './pipelines/plan/world.js';
export type { ProgressCallback, ProgressEvent, RunOptions } from './pipelines/progress.js';
export { type ReasonModel, type ReasonOptions, type ReasonResult, loadReasonModel, reason } from './pipelines/reason.js';
export { readImageFile, readVideoFile, sampleVideo } from './pipelines/reason-inputs.js';
export {
  type ArRelease, type ControlNetRelease, type LoadReleaseOptions, type Release, type T5Release, type TokenizerRelease, type TransformerRelease,
  type VlmRelease, type WorldRelease, loadRelease,
} from './pipelines/release.js';
export { type IdentifyOptions, type ReleaseFolder, ReleaseFormatError, type ReleaseKind, identifyRelease } from './pipelines/release-kind.js';
export { type CatalogEntry, RELEASE_CATALOG, type ReleaseFormat, findRelease, releaseNameOf } from './pipelines/release-catalog.js';
export { type ComponentTensor, type InspectReleaseOptions, type ReleaseComponent, type ReleaseReport, inspectRelease } from './pipelines/release-inspect.js';
export { type TokenizerPart, type TokenizerReleaseFiles, readMeanStd, resolveTokenizerRelease, tokenizerCodeOf } from './models/tokenizer/release-folder.js';
export { completeArConfig, releasedArConfigJson, releasedArModelOf } from './models/ar/config.js';
export { text2world } from './pipelines/text2world.js';
export {
  type GuardrailLoaders, type Verdict, GuardrailBlockedError, GuardrailFolderError, Guardrails, openGuardrails, registerGuardrailLoaders,
} from './pipelines/guardrails.js';
export { Blocklist, loadBlocklist } from './models/guardrail/blocklist.js';
export {
  type DetokenizeOptions, type RoundtripOptions, type RoundtripResult, type TokenizeOptions, Tokens, type VideoModel, detokenize, loadVideoTokenizer,
  roundtrip, tokenize,
} from './pipelines/tokenizer.js';
export { readTokens, writeTokens } from './pipelines/tokens-file.js';
export { type CheckPoint, checkFinite } from './pipelines/finite.js';
export { type TransferOptions, type TransferResult, transfer } from './pipelines/transfer.js';
export { type Video2WorldOptions, type Video2WorldResult, video2world } from './pipelines/video2world.js';
export { type WorldModelInfo, inspectWorldModel } from './pipelines/world/folder.js';
export { DEFAULT_NEGATIVE_PROMPT, type PromptEmbeddingArrays, readEmbeddings, writeEmbeddings } from './pipelines/world/prompt.js';
export { type LoadedWorldModel, loadWorldModel } from './pipelines/world/model.js';
export type { WorldOptions, WorldResult } from './pipelines/world/run.js';
