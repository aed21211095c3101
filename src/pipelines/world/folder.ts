// A diffusers-style Cosmos world-model folder, read from its configs (no weights loaded):
//
//   model_index.json                       (optional: pipeline class, component classes)
//   transformer/ config.json + diffusion_pytorch_model*.safetensors (sharded with an index or not)
//   vae/         config.json + weights: AutoencoderKLWan (the Wan2.1 VAE of Predict2 / 2.5 and
//                Transfer2.5), AutoencoderKLCosmos (diffusers) or a Cosmos-Tokenizer CV folder
//   text_encoder/ config.json + weights: T5EncoderModel (Cosmos-1.0, Predict2) with
//                 tokenizer/spiece.model, or Qwen2_5_VLForConditionalGeneration (Cosmos-Reason1,
//                 Predict2.5 / Transfer2.5) with tokenizer/tokenizer.json; not needed with
//                 precomputed embeddings
//   scheduler/   scheduler_config.json: EDMEulerScheduler (Cosmos-1.0), UniPCMultistepScheduler
//                (Predict2.5), FlowMatchEulerDiscreteScheduler (Predict2)
//
// Inspected once per run: the configs read here are what the loaders build from.
import { type FileSystem, fileSystem, readJsonObject, readJsonObjectIfPresent } from '../../io/files.js';
import { join } from '../../io/path.js';
import { type CosmosTransformerConfig, parseCosmosTransformerConfig } from '../../models/dit/config.js';
import { type EdmSchedulerConfig, parseEdmSchedulerConfig } from '../../models/dit/samplers/edm.js';
import { type FlowEulerConfig, PREDICT2_FLOW_EULER } from '../../models/dit/samplers/flow-euler.js';
import { type UniPCConfig, parseUniPCConfig } from '../../models/dit/samplers/unipc.js';
import type { Config } from '../../models/load.js';
import { parseT5Config } from '../../models/t5/encoder.js';
import { parseVlmConfig } from '../../models/vlm/config.js';
import { buildTokenizer } from '../../models/tokenizer/load.js';
import { CausalContinuousVideoTokenizer } from '../../models/tokenizer/video.js';
import { parseWanVaeConfig } from '../../models/wan/config.js';
import { PipelineFilesError } from './errors.js';

export type WorldFamily = 'cosmos1' | 'predict2' | 'predict2.5';

/** Upstream pipeline defaults (diffusers __call__ signatures). */
export interface WorldDefaults {
  frames: number;
  height: number;
  width: number;
  steps: number;
  guidance: number;
  /** RoPE fps (Cosmos-1.0, Predict2 video2world) and the clip's frame rate */
  fps: number;
}

export const WORLD_DEFAULTS: Readonly<Record<WorldFamily, WorldDefaults>> = {
  cosmos1: { frames: 121, height: 704, width: 1280, steps: 36, guidance: 7, fps: 30 },
  predict2: { frames: 93, height: 704, width: 1280, steps: 35, guidance: 7, fps: 16 },
  'predict2.5': { frames: 93, height: 704, width: 1280, steps: 36, guidance: 7, fps: 16 },
};

export const FAMILY_NAMES: Readonly<Record<WorldFamily, string>> = {
  cosmos1: 'Cosmos-1.0 Diffusion (EDM)',
  predict2: 'Cosmos-Predict2 (flow matching, Euler)',
  'predict2.5': 'Cosmos-Predict2.5 (flow matching, UniPC)',
};

export type SchedulerChoice =
  | { kind: 'edm'; config: EdmSchedulerConfig }
  | { kind: 'unipc'; config: UniPCConfig }
  | { kind: 'flow-euler'; config: FlowEulerConfig };

export interface VaeGeometry {
  latentChannels: number;
  temporalCompression: number;
  spatialCompression: number;
}

/** What a model folder holds, read from its configs. */
export interface WorldModelInfo {
  dir: string;
  /** model_index.json `_class_name`, when there is one */
  pipelineClass: string | null;
  family: WorldFamily;
  scheduler: SchedulerChoice;
  transformerDir: string;
  transformer: CosmosTransformerConfig;
  vaeDir: string;
  vaeClass: string;
  /** which implementation runs the VAE: the Wan2.1 VAE or a Cosmos tokenizer (null: none runs here) */
  vaeKind: 'wan' | 'cosmos' | null;
  /** null: the VAE can be run here; else why not */
  vaeUnsupported: string | null;
  vae: VaeGeometry | null;
  /** text_encoder/ when it holds an encoder this project runs, else null */
  textEncoderDir: string | null;
  /** 't5' (T5EncoderModel) or 'reason' (the Cosmos-Reason1 / Qwen2.5-VL prompt encoder of Predict2.5 and Transfer2.5) */
  textEncoderKind: 't5' | 'reason' | null;
  /** tokenizer/spiece.model (or text_encoder/spiece.model), T5 only */
  spiecePath: string | null;
  /** the folder with tokenizer.json and the chat template, Reason only */
  tokenizerDir: string | null;
  /** why prompts cannot be encoded here (null: they can) */
  textEncoderUnsupported: string | null;
  /** width of the text states the transformer reads (crossattn_proj_in_channels or text_embed_dim) */
  textWidth: number;
  defaults: WorldDefaults;
  /** the config.json objects as read, for the loaders */
  configs: { transformer: Config; vae: Config; textEncoder: Config | null };
}

const SCHEDULERS: Record<string, WorldFamily> = {
  EDMEulerScheduler: 'cosmos1',
  UniPCMultistepScheduler: 'predict2.5',
  FlowMatchEulerDiscreteScheduler: 'predict2',
};

function componentClass(index: Record<string, unknown> | null, name: string): string | null {
  const v = index?.[name];
  return Array.isArray(v) && typeof v[1] === 'string' ? v[1] : null;
}

/** The folder's file checks, each naming what is missing. */
function checks(fs: FileSystem) {
  const kind = async (p: string) => (await fs.stat(p))?.kind ?? null;
  const hasWeights = async (dir: string) => (await fs.list(dir)).some((n) => n.endsWith('.safetensors') || n.endsWith('.safetensors.index.json'));
  return {
    kind,
    hasWeights,
    async dir(dir: string, what: string) {
      if ((await kind(dir)) !== 'directory') throw new PipelineFilesError(dir, `missing: the ${what} subfolder is required`);
    },
    async file(path: string, what: string) {
      if ((await kind(path)) !== 'file') throw new PipelineFilesError(path, `missing: ${what}`);
    },
    async weights(dir: string, what: string) {
      if (!(await hasWeights(dir))) throw new PipelineFilesError(dir, `no ${what} weights: expected *.safetensors (or a *.safetensors.index.json with its shards)`);
    },
  };
}

function schedulerOf(family: WorldFamily, json: Record<string, unknown>): SchedulerChoice {
  if (family === 'cosmos1') return { kind: 'edm', config: parseEdmSchedulerConfig(json) };
  if (family === 'predict2.5') return { kind: 'unipc', config: parseUniPCConfig(json) };
  // the Predict2 pipelines re-register sigma_max 80, sigma_min 0.002, sigma_data 1 on the scheduler
  return { kind: 'flow-euler', config: PREDICT2_FLOW_EULER };
}

/** The VAE's class, geometry, or why it cannot run here. */
function vaeOf(vaeJson: Config, transformer: CosmosTransformerConfig, vaeDir: string) {
  const cls = typeof vaeJson._class_name === 'string' ? vaeJson._class_name : null;
  const vaeClass = cls ?? `Cosmos-Tokenizer ${String(vaeJson.name ?? '?')}`;
  const checked = (vae: VaeGeometry, vaeKind: 'wan' | 'cosmos') => {
    if (vae.latentChannels !== transformer.outChannels) {
      throw new PipelineFilesError(vaeDir, `the VAE has ${vae.latentChannels} latent channels but the transformer outputs ${transformer.outChannels}`);
    }
    return { vaeClass, vaeKind, vaeUnsupported: null, vae };
  };
  if (cls === 'AutoencoderKLWan') {
    const c = parseWanVaeConfig(vaeJson);
    const downs = c.temperalDownsample;
    return checked({
      latentChannels: c.zDim,
      temporalCompression: 2 ** downs.filter(Boolean).length,
      spatialCompression: 2 ** downs.length * (c.patchSize ?? 1),
    }, 'wan');
  }
  if (cls !== null && cls !== 'AutoencoderKLCosmos') {
    return { vaeClass, vaeKind: null, vaeUnsupported: `${cls} is not a VAE cosmos-ts implements (AutoencoderKLWan, AutoencoderKLCosmos or a Cosmos-Tokenizer CV folder)`, vae: null };
  }
  const m = buildTokenizer(vaeJson);
  try {
    if (!(m instanceof CausalContinuousVideoTokenizer)) {
      return { vaeClass, vaeKind: null, vaeUnsupported: `a ${(m as { kind?: string }).kind ?? '?'} tokenizer; the world models need a continuous video tokenizer (CV / AutoencoderKLCosmos)`, vae: null };
    }
    return checked({ latentChannels: m.latentChannels, temporalCompression: m.temporalCompression, spatialCompression: m.spatialCompression }, 'cosmos');
  } finally {
    m.dispose();
  }
}

/** Read a model folder's configs and check every part it needs is there. */
export async function inspectWorldModel(dir: string, fs: FileSystem = fileSystem()): Promise<WorldModelInfo> {
  const has = checks(fs);
  if ((await has.kind(dir)) !== 'directory') throw new PipelineFilesError(dir, 'is not a folder (expected a diffusers-style model folder)');
  const index = await readJsonObjectIfPresent(join(dir, 'model_index.json'), 'model_index.json', fs);
  const pipelineClass = typeof index?._class_name === 'string' ? index._class_name : null;

  // scheduler -> family
  const schedDir = join(dir, 'scheduler');
  await has.dir(schedDir, 'scheduler/');
  const schedPath = join(schedDir, 'scheduler_config.json');
  await has.file(schedPath, 'scheduler/scheduler_config.json');
  const schedJson = await readJsonObject(schedPath, 'scheduler_config.json', fs);
  const schedClass = typeof schedJson._class_name === 'string' ? schedJson._class_name : componentClass(index, 'scheduler');
  const family = schedClass ? SCHEDULERS[schedClass] : undefined;
  if (!family) {
    throw new PipelineFilesError(schedPath, `_class_name ${JSON.stringify(schedClass)} is not a scheduler of the Cosmos pipelines (${Object.keys(SCHEDULERS).join(', ')})`);
  }
  const scheduler = schedulerOf(family, schedJson);

  // transformer
  const transformerDir = join(dir, 'transformer');
  await has.dir(transformerDir, 'transformer/');
  await has.file(join(transformerDir, 'config.json'), 'transformer/config.json');
  await has.weights(transformerDir, 'transformer');
  const transformerJson = await readJsonObject(join(transformerDir, 'config.json'), 'transformer/config.json', fs);
  const transformer = parseCosmosTransformerConfig(transformerJson);
  const textWidth = transformer.useCrossattnProjection ? transformer.crossattnProjInChannels : transformer.textEmbedDim;

  // vae
  const vaeDir = join(dir, 'vae');
  await has.dir(vaeDir, 'vae/');
  await has.file(join(vaeDir, 'config.json'), 'vae/config.json');
  const vaeJson = await readJsonObject(join(vaeDir, 'config.json'), 'vae/config.json', fs);
  const runnable = vaeJson._class_name === undefined || vaeJson._class_name === 'AutoencoderKLCosmos' || vaeJson._class_name === 'AutoencoderKLWan';
  if (runnable) await has.weights(vaeDir, 'vae');
  const vae = vaeOf(vaeJson, transformer, vaeDir);

  // text encoder
  const te = await textEncoderOf(dir, family, componentClass(index, 'text_encoder'), textWidth, has, fs);

  return {
    dir, pipelineClass, family, scheduler, transformerDir, transformer, vaeDir, ...vae, ...te.info, textWidth,
    // Cosmos2TextToImagePipeline: one frame at 768 x 1360
    defaults: pipelineClass?.includes('TextToImage') ? { ...WORLD_DEFAULTS[family], frames: 1, height: 768, width: 1360 } : WORLD_DEFAULTS[family],
    configs: { transformer: transformerJson, vae: vaeJson, textEncoder: te.config },
  };
}

const REASON_CLASSES = ['Qwen2_5_VLForConditionalGeneration', 'Qwen2_5_VLModel'];

async function textEncoderOf(dir: string, family: WorldFamily, teClass: string | null, textWidth: number, has: ReturnType<typeof checks>, fs: FileSystem) {
  const teDir = join(dir, 'text_encoder');
  const none = (why: string, spiecePath: string | null = null) => ({
    info: { textEncoderDir: null, textEncoderKind: null, spiecePath, tokenizerDir: null, textEncoderUnsupported: why }, config: null,
  });
  if ((await has.kind(teDir)) === null) return none(`${teDir} is missing`);
  const teCfg = join(teDir, 'config.json');
  if ((await has.kind(teCfg)) === null) return none(`${teCfg} is missing`);
  const j = await readJsonObject(teCfg, 'text_encoder/config.json', fs);
  const reason = (teClass !== null && REASON_CLASSES.includes(teClass)) || j.model_type === 'qwen2_5_vl' || (teClass === null && family === 'predict2.5');
  if (reason) return reasonEncoderOf(dir, teDir, j, textWidth, has);
  if (teClass !== null && teClass !== 'T5EncoderModel') return none(`text_encoder is ${teClass}, neither a T5EncoderModel nor a Qwen2.5-VL (Cosmos-Reason1) encoder`);
  const candidates = [join(dir, 'tokenizer', 'spiece.model'), join(teDir, 'spiece.model')];
  let spiecePath: string | null = null;
  for (const p of candidates) if (spiecePath === null && (await has.kind(p)) === 'file') spiecePath = p;
  if (!(await has.hasWeights(teDir))) return none(`${teDir} holds no *.safetensors weights`, spiecePath);
  if (j.model_type !== undefined && j.model_type !== 't5') return none(`text_encoder/config.json model_type is ${JSON.stringify(j.model_type)}, not t5`, spiecePath);
  const d = parseT5Config(j).dModel;
  if (d !== textWidth) throw new PipelineFilesError(teDir, `the T5 encoder's d_model is ${d} but the transformer reads text states of width ${textWidth}`);
  if (!spiecePath) return none(`${candidates[0]} is missing (the T5 SentencePiece model)`);
  return { info: { textEncoderDir: teDir, textEncoderKind: 't5' as const, spiecePath, tokenizerDir: null, textEncoderUnsupported: null }, config: j };
}

/** The Cosmos-Reason1 prompt encoder: every layer's standardised hidden state, so its width is layers x hidden size. */
async function reasonEncoderOf(dir: string, teDir: string, j: Config, textWidth: number, has: ReturnType<typeof checks>) {
  const none = (why: string) => ({ info: { textEncoderDir: null, textEncoderKind: null, spiecePath: null, tokenizerDir: null, textEncoderUnsupported: why }, config: null });
  if (!(await has.hasWeights(teDir))) return none(`${teDir} holds no *.safetensors weights`);
  const text = parseVlmConfig(j).text;
  const width = text.numHiddenLayers * text.hiddenSize;
  if (width !== textWidth) {
    throw new PipelineFilesError(teDir, `the Reason encoder gives ${text.numHiddenLayers} layers x ${text.hiddenSize} = ${width} channels but the transformer reads text states of width ${textWidth}`);
  }
  let tokenizerDir: string | null = null;
  for (const d of [join(dir, 'tokenizer'), teDir]) if (tokenizerDir === null && (await has.kind(join(d, 'tokenizer.json'))) === 'file') tokenizerDir = d;
  if (!tokenizerDir) return none(`${join(dir, 'tokenizer', 'tokenizer.json')} is missing (the Qwen2.5 tokenizer of the prompt encoder)`);
  return { info: { textEncoderDir: teDir, textEncoderKind: 'reason' as const, spiecePath: null, tokenizerDir, textEncoderUnsupported: null }, config: j };
}

/** One line describing the folder. */
export function describeWorldModel(info: WorldModelInfo): string {
  const t = info.transformer;
  const D = t.numAttentionHeads * t.attentionHeadDim;
  return `${FAMILY_NAMES[info.family]}${info.pipelineClass ? ` [${info.pipelineClass}]` : ''}: transformer ${t.numLayers} blocks, ` +
    `D ${D}, in ${t.inChannels} ch; VAE ${info.vaeClass}` +
    (info.vae ? ` (${info.vae.temporalCompression}x${info.vae.spatialCompression}x${info.vae.spatialCompression}, ${info.vae.latentChannels} ch)` : ' (not runnable here)') +
    `; text encoder ${info.textEncoderKind === 'reason' ? 'Cosmos-Reason1 (Qwen2.5-VL)' : info.textEncoderKind === 't5' ? 'T5' : 'none (prompts as embeddings)'}`;
}
