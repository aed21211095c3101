// Conformance kind of the face-blur guardrail (fact sheet guardrail.md "Face detection + blur"):
//   guardrail.face_blur  RetinaFaceFilter.postprocess(frames) with every step's value: preprocessed,
//                        priors, loc / conf / landms, decoded boxes, the NMS input and kept rows,
//                        the detections, and the blurred frames (taps: the last frame's modules).
// The model is built from the case's config.json (the filter settings with the RetinaFace cfg
// under `cfg`) and loaded from its model.safetensors. Per-frame lists are zero padded (-1 for the
// kept indices) to the longest, as the reference stores them.
import type { Backend } from '../../engine/backend.js';
import { capture } from '../../engine/module.js';
import { blurFrame, priorBoxes } from '../../models/guardrail/face-post.js';
import { type FaceFrameTrace, RetinaFaceFamily, parseFilterSettings, traceFaceFrame } from '../../models/guardrail/retinaface.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, registerKind, shaped } from '../registry.js';

/** Per-frame arrays of `width` values per row, stacked [T, rows, width] and padded with `fill` (to at least minRows). */
function stackRows(parts: readonly ArrayLike<number>[], width: number, fill: number, Ctor: Float32ArrayConstructor | Int32ArrayConstructor, minRows = 0) {
  const rows = Math.max(minRows, ...parts.map((p) => p.length / width));
  const out = new Ctor(parts.length * rows * width).fill(fill);
  parts.forEach((p, t) => {
    out.set(p, t * rows * width);
  });
  return shaped(out, [parts.length, rows, width].filter((_, i) => i < 2 || width > 1));
}

function concatFrames(parts: readonly Float32Array[], shape: readonly number[]) {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return shaped(out, [parts.length, ...shape]);
}

async function faceBlur(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const input = await c.input('frames');
  if (input.shape.length !== 4 || input.shape[3] !== 3) throw new CaseFormatError(`${c.dir}: input frames must be [T, H, W, 3] bytes, got ${JSON.stringify(input.shape)}`);
  const [T, H, W] = input.shape;
  const frames = Uint8Array.from(input.raw);
  const settings = parseFilterSettings(c.config ?? {});
  const model = await c.module(RetinaFaceFamily, backend);
  try {
    const priors = priorBoxes(model.config, H, W);
    const P = priors.length / 4;
    const { result: traces, taps } = await capture(c.tapNames, async () => {
      const all: FaceFrameTrace[] = [];
      for (let t = 0; t < T; t++) all.push(await traceFaceFrame(model, settings, frames, t, H, W, priors));
      return all;
    });
    const blurred = frames.slice();
    traces.forEach((tr, t) => {
      blurFrame(blurred.subarray(t * H * W * 3, (t + 1) * H * W * 3), H, W, tr.detections, settings);
    });
    return {
      outputs: {
        preprocessed: concatFrames(traces.map((t) => t.preprocessed), [3, H, W]),
        priors: shaped(priors, [P, 4]),
        loc: concatFrames(traces.map((t) => t.loc), [P, 4]),
        conf: concatFrames(traces.map((t) => t.conf), [P, 2]),
        landms: concatFrames(traces.map((t) => t.landms), [P, 10]),
        boxes_normalized: concatFrames(traces.map((t) => t.boxesNormalized), [P, 4]),
        boxes_decoded: concatFrames(traces.map((t) => t.boxesDecoded), [P, 4]),
        nms_input: stackRows(traces.map((t) => t.nmsInput), 5, 0, Float32Array),
        nms_input_count: shaped(Int32Array.from(traces, (t) => t.nmsInput.length / 5), [T]),
        // the kept indices are padded to the NMS input's rows
        nms_keep: stackRows(traces.map((t) => t.keep), 1, -1, Int32Array, Math.max(0, ...traces.map((t) => t.nmsInput.length / 5))),
        detections: stackRows(traces.map((t) => t.detections), 5, 0, Float32Array),
        detections_count: shaped(Int32Array.from(traces, (t) => t.detections.length / 5), [T]),
        blurred_frames: shaped(Int32Array.from(blurred), [T, H, W, 3]),
      },
      taps,
    };
  } finally {
    model.dispose();
  }
}

registerKind('guardrail.face_blur', faceBlur);
