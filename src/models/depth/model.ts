// Video-Depth-Anything (`VideoDepthAnything`): the DINOv2 backbone (`pretrained.*`) and the DPT head
// with temporal motion modules (`head.*`), as one module whose paths are the checkpoint keys. Built
// from a config.json (the fixtures) or, for a released `.pth` state dict, from the encoder its
// shapes imply (the releases carry no config).
import type { Backend } from '../../engine/backend.js';
import { Module, type TensorSource } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { ShapeError, type Tensor, scope } from '../../engine/tensor.js';
import type { FileSystem } from '../../io/files.js';
import { openCheckpoint } from '../../io/safetensors.js';
import { type Config, type LoadedModule, type ModuleFamily, ModelFolderError, loadModule } from '../load.js';
import { DEPTH_ENCODERS, DepthConfigError, type DepthModelConfig, parseDepthConfig } from './config.js';
import { DinoVisionTransformer } from './dinov2.js';
import { DptHeadTemporal } from './dpt-head.js';

export interface DepthForwardOptions {
  /**
   * Frames per backbone call: the ViT is per frame, so running it in runs of frames gives the same
   * values with the attention and MLP activations of a few frames alive at once (default 4).
   */
  backboneBatch?: number;
  /** frames per run of the head's finest fusions and output convolutions (default micro_batch_size) */
  headBatch?: number;
}

export class VideoDepthAnything extends Module {
  readonly pretrained: DinoVisionTransformer;
  readonly head: DptHeadTemporal;
  constructor(readonly c: DepthModelConfig) {
    super();
    this.pretrained = this.add('pretrained', new DinoVisionTransformer(c.backbone));
    this.head = this.add('head', new DptHeadTemporal(c));
  }

  /** The most frames one call takes (the rows of the motion modules' position tables). */
  get maxFrames(): number {
    return this.c.motion.maxLen;
  }

  /** x [B, T, 3, H, W] normalised frames, H and W multiples of the patch -> relative depth [B, T, H, W] (f32) */
  forward(x: Tensor, opts: DepthForwardOptions = {}): Tensor {
    if (x.rank !== 5 || x.shape[2] !== 3) throw new ShapeError(`VideoDepthAnything: x must be [B, T, 3, H, W], got [${x.shape.join(', ')}]`);
    const [B, T, , H, W] = x.shape;
    const p = this.c.backbone.patchSize;
    if (T > this.maxFrames) throw new ShapeError(`VideoDepthAnything: ${T} frames, more than the ${this.maxFrames} of one window`);
    const ph = Math.floor(H / p);
    const pw = Math.floor(W / p);
    if (ph < 1 || pw < 1) throw new ShapeError(`VideoDepthAnything: frames ${H}x${W} are smaller than one ${p}-pixel patch`);
    return scope(() => {
      const frames = x.reshape([B * T, 3, H, W]);
      const run = Math.max(1, opts.backboneBatch ?? 4);
      const levels: Tensor[][] = [[], [], [], []];
      for (let i = 0; i < B * T; i += run) {
        const part = this.pretrained.intermediateLayers(F.slice(frames, 0, i, Math.min(i + run, B * T)), this.c.layerIdx);
        for (const [j, t] of part.entries()) levels[j].push(t);
      }
      const features = levels.map((parts) => (parts.length === 1 ? parts[0] : F.concat(parts, 0)));
      for (const parts of levels) if (parts.length > 1) for (const t of parts) t.dispose();
      const depth = this.head.forward(features, ph, pw, T, opts.headBatch);
      const full = depth.shape[2] === H && depth.shape[3] === W ? depth : F.resizeFloat(depth, H, W, 'align_corners');
      return F.relu(full).reshape([B, T, H, W]);
    });
  }
}

/**
 * The encoder a state dict implies: its embedding width and block count name one of the released
 * sizes (the file has no config, and its name may have been changed).
 */
export function configFromCheckpoint(src: TensorSource, path: string): Config {
  const names = new Set(src.names);
  const pos = names.has('pretrained.pos_embed') ? src.info('pretrained.pos_embed').shape : null;
  if (pos?.length !== 3) throw new ModelFolderError(path, 'no tensor pretrained.pos_embed [1, N, E]; expected a Video-Depth-Anything state dict');
  const E = pos[2];
  let depth = 0;
  while (names.has(`pretrained.blocks.${depth}.norm1.weight`)) depth++;
  const hit = Object.entries(DEPTH_ENCODERS).find(([, e]) => e.embedDim === E && e.depth === depth);
  if (!hit) throw new ModelFolderError(path, `pretrained.pos_embed width ${E} with ${depth} blocks is none of the released encoders (vits 384/12, vitb 768/12, vitl 1024/24)`);
  return { encoder: hit[0] };
}

export const DepthFamily: ModuleFamily<VideoDepthAnything> = {
  name: 'VideoDepthAnything',
  build: (config) => new VideoDepthAnything(parseDepthConfig(config)),
};

/**
 * A depth model from a folder (config.json + safetensors) or a released `.pth` / `.safetensors`
 * state dict without a config (the encoder is read off its shapes).
 */
export async function loadDepthModel(path: string, backend: Backend, fs?: FileSystem, opts: { maxBytes?: number } = {}): Promise<LoadedModule<VideoDepthAnything>> {
  const probe = await openCheckpoint(path, fs);
  let config: Config | undefined;
  try {
    config = probe.config ? undefined : configFromCheckpoint(probe, path);
  } finally {
    await probe.close();
  }
  try {
    return await loadModule(DepthFamily, path, backend, { fs, ...(config ? { config } : {}), ...opts });
  } catch (e) {
    // the config parser names the field; the user also needs the checkpoint whose config it is
    if (e instanceof DepthConfigError && !e.message.startsWith(path)) e.message = `${path}: ${e.message}`;
    throw e;
  }
}
