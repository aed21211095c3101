// The face-blur guardrail (cosmos RetinaFaceFilter.postprocess; fact sheet guardrail.md "Face
// detection + blur"): RetinaFace runs on the engine once per frame (upstream's DataLoader batch of
// one), the small post-processing (decoding, threshold, numpy's sort, NMS, pixelation) on the host.
// The priors are computed once per video. loadFaceBlurFilter takes the release's face_blur_filter
// folder (Resnet50_Final.pth, upstream's cfg_re50), a weights file, or a folder with a config.json.
import type { Backend } from '../../engine/backend.js';
import { UserError, throwIfAborted } from '../../engine/errors.js';
import * as F from '../../engine/ops.js';
import { scope } from '../../engine/tensor.js';
import { type FileSystem, fileSystem, readJsonObject, readJsonObjectIfPresent } from '../../io/files.js';
import { dirname, join } from '../../io/path.js';
import { type Config, loadModule } from '../load.js';
import { type FrameDetections, blurFrame, decodeBoxes, filterDetections, preprocessFrame, priorBoxes, scaleBoxes } from './face-post.js';
import { CFG_RE50, type FaceFilterSettings, parseFilterSettings } from './retinaface-config.js';
import { type RetinaFace, RetinaFaceFamily } from './retinaface-net.js';

export { CFG_RE50, type FaceFilterSettings, parseFilterSettings, parseRetinaFaceConfig, type RetinaFaceConfig } from './retinaface-config.js';
export { RetinaFace, RetinaFaceFamily, type RetinaFaceOutput } from './retinaface-net.js';

export interface FaceBlurFilter {
  /**
   * Pixelate the faces of [T, H, W, 3] RGB bytes. Returns a new array (the input is left as it
   * was; upstream writes into the caller's array) and the number of detections per frame (after
   * NMS, before the minimum-size test of the blur).
   */
  blur(frames: Uint8Array, T: number, H: number, W: number, o?: { signal?: AbortSignal }): Promise<{ frames: Uint8Array; detections: number[] }>;
  dispose(): void;
}

/** Everything one frame goes through, for inspection and conformance. */
export interface FaceFrameTrace extends FrameDetections {
  /** [3, H, W] BGR minus means */
  preprocessed: Float32Array;
  /** [P, 4], [P, 2], [P, 10] */
  loc: Float32Array;
  conf: Float32Array;
  landms: Float32Array;
  /** [P, 4] fractions, and in pixels */
  boxesNormalized: Float32Array;
  boxesDecoded: Float32Array;
}

/** Face scores = softmax[..., 1] of [P, 2]. */
function faceScores(conf: Float32Array): Float32Array {
  return Float32Array.from({ length: conf.length / 2 }, (_, i) => conf[2 * i + 1]);
}

/** The network and post-processing of one frame `t` of [T, H, W, 3] RGB bytes (priors from priorBoxes). */
export async function traceFaceFrame(
  model: RetinaFace, settings: FaceFilterSettings, frames: Uint8Array, t: number, H: number, W: number, priors: Float32Array,
): Promise<FaceFrameTrace> {
  const preprocessed = preprocessFrame(frames, t, H, W);
  const backend = [...model.parameters()][0].t.backend;
  const out = scope(() => model.forward(F.fromArray(backend, preprocessed, [1, 3, H, W])));
  let loc: Float32Array;
  let conf: Float32Array;
  let landms: Float32Array;
  try {
    [loc, conf, landms] = (await Promise.all([out.loc.read(), out.conf.read(), out.landms.read()])) as Float32Array[];
  } finally {
    out.loc.dispose();
    out.conf.dispose();
    out.landms.dispose();
  }
  if (loc.length !== priors.length) {
    throw new Error(`RetinaFace gave ${loc.length / 4} boxes for a ${H}x${W} frame; the priors are ${priors.length / 4}`);
  }
  const boxesNormalized = decodeBoxes(loc, priors, model.config.variance);
  const boxesDecoded = scaleBoxes(boxesNormalized, H, W);
  const det = filterDetections(boxesDecoded, faceScores(conf), settings);
  return { preprocessed, loc, conf, landms, boxesNormalized, boxesDecoded, ...det };
}

class RetinaFaceFilter implements FaceBlurFilter {
  constructor(readonly model: RetinaFace, readonly settings: FaceFilterSettings) {}

  async blur(frames: Uint8Array, T: number, H: number, W: number, o: { signal?: AbortSignal } = {}) {
    if (!Number.isInteger(T) || !Number.isInteger(H) || !Number.isInteger(W) || T < 0 || H < 1 || W < 1 || frames.length !== T * H * W * 3) {
      throw new UserError(`frames: ${frames.length} bytes do not make [${T}, ${H}, ${W}, 3] RGB frames`);
    }
    const out = frames.slice();
    const priors = priorBoxes(this.model.config, H, W);
    const detections: number[] = [];
    for (let t = 0; t < T; t++) {
      throwIfAborted(o.signal);
      const trace = await traceFaceFrame(this.model, this.settings, out, t, H, W, priors);
      blurFrame(out.subarray(t * H * W * 3, (t + 1) * H * W * 3), H, W, trace.detections, this.settings);
      detections.push(trace.detections.length / 5);
    }
    return { frames: out, detections };
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** A fixture case folder names its weights in case.json `files`; else model.safetensors. */
async function caseWeights(dir: string, fs: FileSystem): Promise<string | null> {
  const caseJson = join(dir, 'case.json');
  if ((await fs.stat(caseJson))?.kind !== 'file') return null;
  const files = (await readJsonObject(caseJson, 'case.json', fs)).files as Record<string, unknown> | undefined;
  const named = files && !Array.isArray(files) ? (files.weights ?? files.model) : undefined;
  return join(dir, typeof named === 'string' ? named : 'model.safetensors');
}

/**
 * The face-blur filter from the release's face_blur_filter folder (Resnet50_Final.pth), a .pth /
 * .safetensors file, or a folder with a config.json (a RetinaFace cfg, or the filter settings with
 * the cfg under `cfg`, as the conformance cases hold). Without a config, upstream's cfg_re50.
 */
export async function loadFaceBlurFilter(
  path: string, backend: Backend, o: { fs?: FileSystem; config?: Record<string, unknown> } = {},
): Promise<FaceBlurFilter> {
  const fs = o.fs ?? fileSystem();
  const st = await fs.stat(path);
  const dir = st?.kind === 'directory' ? path : dirname(path);
  const weights = st?.kind === 'directory' ? ((await caseWeights(path, fs)) ?? path) : path;
  const config: Config = o.config ?? (await readJsonObjectIfPresent(join(dir, 'config.json'), 'config.json', fs)) ?? { cfg: { ...CFG_RE50 } };
  const settings = parseFilterSettings(config);
  const { model } = await loadModule(RetinaFaceFamily, weights, backend, { config, fs });
  return new RetinaFaceFilter(model, settings);
}
