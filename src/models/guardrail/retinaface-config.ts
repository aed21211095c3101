// The RetinaFace configuration (biubug6/Pytorch_Retinaface data/config.py: cfg_re50 / cfg_mnet) and
// the face-blur filter's thresholds (cosmos face_blur_filter.py). A config.json may hold the cfg
// dict itself or, as the conformance cases do, the filter's settings with the cfg under `cfg`; a
// torchvision ResNet other than resnet50 is described by `torchvision_resnet` (next to the cfg or
// inside it). A release ships only Resnet50_Final.pth: upstream's cfg_re50 is then the default.
import { UserError } from '../../engine/errors.js';

export type ResNetBlock = 'Bottleneck' | 'BasicBlock';

/** torchvision.models.ResNet constructor arguments (resnet50: Bottleneck, [3, 4, 6, 3], 64). */
export interface ResNetArch {
  block: ResNetBlock;
  expansion: number;
  layers: readonly number[];
  widthPerGroup: number;
  groups: number;
}

export interface RetinaFaceConfig {
  name: 'Resnet50' | 'mobilenet0.25';
  minSizes: readonly (readonly number[])[];
  steps: readonly number[];
  variance: readonly [number, number];
  clip: boolean;
  /** backbone child name -> FPN input position (1-based), IntermediateLayerGetter's return_layers */
  returnLayers: Readonly<Record<string, number>>;
  inChannel: number;
  outChannel: number;
  /** only for Resnet50 */
  resnet: ResNetArch | null;
}

/** The post-processing settings of RetinaFaceFilter (upstream constants unless config.json says otherwise). */
export interface FaceFilterSettings {
  confidenceThreshold: number;
  nmsThreshold: number;
  topK: number;
  keepTopK: number;
  /** [width, height]: boxes narrower or lower than this (after int()) are not pixelated */
  minSize: readonly [number, number];
  pixelateBlocks: number;
}

export const DEFAULT_FILTER_SETTINGS: FaceFilterSettings = {
  confidenceThreshold: 0.7, nmsThreshold: 0.4, topK: 5000, keepTopK: 750, minSize: [20, 20], pixelateBlocks: 5,
};

/** Upstream's cfg_re50 (what RetinaFaceFilter builds; the fields training alone uses are left out). */
export const CFG_RE50: Readonly<Record<string, unknown>> = Object.freeze({
  name: 'Resnet50',
  min_sizes: [[16, 32], [64, 128], [256, 512]],
  steps: [8, 16, 32],
  variance: [0.1, 0.2],
  clip: false,
  return_layers: { layer2: 1, layer3: 2, layer4: 3 },
  in_channel: 256,
  out_channel: 256,
});

const RESNET50: ResNetArch = { block: 'Bottleneck', expansion: 4, layers: [3, 4, 6, 3], widthPerGroup: 64, groups: 1 };

export class RetinaFaceConfigError extends UserError {}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function bad(field: string, want: string, got: unknown): never {
  throw new RetinaFaceConfigError(`config.json ${field}: expected ${want}, got ${JSON.stringify(got)}`);
}

function posInt(o: Obj, key: string, where: string, fallback?: number): number {
  const v = o[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(`${where}${key}`, 'a positive integer', v);
  return v;
}

function num(o: Obj, key: string, where: string, fallback: number): number {
  const v = o[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${where}${key}`, 'a finite number', v);
  return v;
}

function intList(v: unknown, field: string, length?: number): number[] {
  if (!Array.isArray(v) || (length !== undefined && v.length !== length) || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 1)) {
    bad(field, `a list of ${length ?? 'some'} positive integers`, v);
  }
  return v as number[];
}

/** The cfg dict of a config.json: its `cfg` field when it has one, else the object itself. */
function cfgOf(config: Obj): { cfg: Obj; where: string } {
  return isObj(config.cfg) ? { cfg: config.cfg, where: 'cfg.' } : { cfg: config, where: '' };
}

function parseResNet(spec: unknown, where: string): ResNetArch {
  if (spec === undefined || spec === null) return RESNET50;
  if (!isObj(spec)) bad(where, 'an object {block, expansion, layers, width_per_group}', spec);
  const block = spec.block ?? 'Bottleneck';
  if (block !== 'Bottleneck' && block !== 'BasicBlock') bad(`${where}.block`, '"Bottleneck" or "BasicBlock"', block);
  const arch: ResNetArch = {
    block,
    expansion: posInt(spec, 'expansion', `${where}.`, block === 'Bottleneck' ? 4 : 1),
    layers: intList(spec.layers ?? RESNET50.layers, `${where}.layers`, 4),
    widthPerGroup: posInt(spec, 'width_per_group', `${where}.`, 64),
    groups: posInt(spec, 'groups', `${where}.`, 1),
  };
  if (block === 'BasicBlock' && (arch.groups !== 1 || arch.widthPerGroup !== 64)) {
    bad(`${where}`, 'groups 1 and width_per_group 64 for BasicBlock (as torchvision)', spec);
  }
  return arch;
}

export function parseRetinaFaceConfig(config: Obj): RetinaFaceConfig {
  const { cfg, where } = cfgOf(config);
  const name = cfg.name;
  if (name !== 'Resnet50' && name !== 'mobilenet0.25') bad(`${where}name`, '"Resnet50" or "mobilenet0.25"', name);
  const minSizes = cfg.min_sizes;
  if (!Array.isArray(minSizes) || minSizes.length !== 3) bad(`${where}min_sizes`, 'three lists of anchor sizes (one per FPN level)', minSizes);
  const sizes = minSizes.map((m, i) => intList(m, `${where}min_sizes[${i}]`));
  // two anchors per location: the heads are built for num_anchors = 2
  if (sizes.some((s) => s.length !== 2)) bad(`${where}min_sizes`, 'two sizes per level (the heads predict 2 anchors per location)', minSizes);
  const variance = cfg.variance;
  if (!Array.isArray(variance) || variance.length !== 2 || !variance.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    bad(`${where}variance`, 'two numbers', variance);
  }
  const rl = cfg.return_layers;
  if (!isObj(rl) || Object.keys(rl).length !== 3) bad(`${where}return_layers`, 'three backbone layers (the FPN takes three inputs)', rl);
  const outChannel = posInt(cfg, 'out_channel', where);
  if (outChannel % 4) bad(`${where}out_channel`, 'a multiple of 4 (SSH splits it in 1/2 + 1/4 + 1/4)', outChannel);
  const resnetSpec = config.torchvision_resnet ?? cfg.torchvision_resnet;
  return {
    name,
    minSizes: sizes,
    steps: intList(cfg.steps, `${where}steps`, 3),
    variance: [variance[0], variance[1]],
    clip: cfg.clip === true,
    returnLayers: rl as Record<string, number>,
    inChannel: posInt(cfg, 'in_channel', where),
    outChannel,
    resnet: name === 'Resnet50' ? parseResNet(resnetSpec, config.torchvision_resnet !== undefined ? 'torchvision_resnet' : `${where}torchvision_resnet`) : null,
  };
}

/** The filter settings of a config.json (top-level fields beside `cfg`), upstream's constants by default. */
export function parseFilterSettings(config: Obj): FaceFilterSettings {
  const d = DEFAULT_FILTER_SETTINGS;
  const minSize = config.min_size === undefined ? d.minSize : intList(config.min_size, 'min_size', 2);
  return {
    confidenceThreshold: num(config, 'confidence_threshold', '', d.confidenceThreshold),
    nmsThreshold: num(config, 'nms_threshold', '', d.nmsThreshold),
    topK: posInt(config, 'top_k', '', d.topK),
    keepTopK: posInt(config, 'keep_top_k', '', d.keepTopK),
    minSize: [minSize[0], minSize[1]],
    pixelateBlocks: posInt(config, 'pixelate_blocks', '', d.pixelateBlocks),
  };
}
