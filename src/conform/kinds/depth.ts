// Conformance kinds of the depth control (spec depth.md):
//   depth.video_depth_forward  VideoDepthAnything.forward(x [B, T, 3, H, W]) -> depth [B, T, H, W],
//                              taps at the module paths (the backbone's, joined over its frame runs)
//   depth.preprocess           infer_video_depth's per-frame preprocessing of (T, H, W, 3) uint8 ->
//                              pixel_values [T, 3, H', W'], and the size rule on size_queries
//   depth.control_video        the whole Transfer2.5 depth branch on a (T, H, W, 3) uint8 clip ->
//                              depth, depth_normalized, control (3, T, h, w) uint8; taps
//                              window_depth and scale_shift
// The case's args (input_size, the resolution table) drive everything, never its name.
import type { Backend } from '../../engine/backend.js';
import { TapRecorder, capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { type AspectTable, controlSizeFor, depthControlFloat } from '../../models/depth/control.js';
import { INFER_LEN } from '../../models/depth/infer.js';
import { DepthFamily } from '../../models/depth/model.js';
import { depthNetSize, effectiveInputSize, preprocessFrames } from '../../models/depth/preprocess.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, registerKind, shaped } from '../registry.js';

/** One record per path: a module called once per run of frames gives the runs joined along frames. */
function joinRuns(rec: TapRecorder): TapRecorder {
  const out = new TapRecorder('all');
  for (const path of [...new Set(rec.records.map((r) => r.path))]) {
    const parts = rec.all(path);
    const joined = parts.length === 1 ? parts[0] : F.concat(parts, 0);
    out.record(path, joined);
    if (joined !== parts[0]) joined.dispose();
  }
  rec.dispose();
  return out;
}

function intArg(c: FixtureCase, key: string, dflt?: number): number {
  const v = c.args[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new CaseFormatError(`${c.dir}: case.json args.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** (T, H, W, 3) interleaved uint8 -> planar [3, T, H, W], the layout the clip API takes. */
function planar(raw: ArrayLike<number>, T: number, H: number, W: number): Uint8Array {
  const out = new Uint8Array(3 * T * H * W);
  const plane = T * H * W;
  for (let p = 0; p < plane; p++) for (let ch = 0; ch < 3; ch++) out[ch * plane + p] = raw[p * 3 + ch];
  return out;
}

async function framesInput(c: FixtureCase, name: string): Promise<{ data: Uint8Array; frames: number; height: number; width: number }> {
  const input = await c.input(name);
  const [T, H, W, C] = input.shape;
  if (input.shape.length !== 4 || C !== 3) throw new CaseFormatError(`${c.dir}: input ${name} must be (T, H, W, 3) uint8, got ${JSON.stringify(input.shape)}`);
  return { data: planar(input.raw, T, H, W), frames: T, height: H, width: W };
}

async function forwardKind(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const model = await c.module(DepthFamily, backend);
  try {
    const x = await c.inputTensor('x', backend);
    const { result, taps } = await capture(c.tapNames, () => model.forward(x));
    return { outputs: { depth: result }, taps: joinRuns(taps) };
  } finally {
    model.dispose();
  }
}

async function preprocessKind(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const inputSize = intArg(c, 'input_size', typeof c.config?.input_size === 'number' ? c.config.input_size : 518);
  const frames = await framesInput(c, 'frames');
  const outputs: KindResult['outputs'] = { pixel_values: preprocessFrames(backend, frames, inputSize) };
  if (c.hasInput('size_queries')) {
    const q = await c.input('size_queries');
    if (q.shape.length !== 2 || q.shape[1] !== 2) throw new CaseFormatError(`${c.dir}: input size_queries must be (N, 2), got ${JSON.stringify(q.shape)}`);
    const ruleSize = intArg(c, 'size_rule_input_size', 518);
    const rows: number[] = [];
    for (let i = 0; i < q.shape[0]; i++) {
      const H = Number(q.raw[2 * i]);
      const W = Number(q.raw[2 * i + 1]);
      const size = effectiveInputSize(H, W, ruleSize);
      rows.push(size, ...depthNetSize(H, W, size));
    }
    outputs.size_rule = shaped(Int32Array.from(rows), [q.shape[0], 3]);
  }
  return { outputs };
}

function aspectTable(c: FixtureCase): AspectTable {
  const t = c.args.fixture_resolution_table;
  if (t === undefined) return {};
  if (t === null || typeof t !== 'object' || Array.isArray(t)) throw new CaseFormatError(`${c.dir}: case.json args.fixture_resolution_table must be an object of [w, h] pairs`);
  const out: AspectTable = {};
  for (const [k, v] of Object.entries(t)) {
    if (!Array.isArray(v) || v.length !== 2 || v.some((n) => typeof n !== 'number' || !Number.isInteger(n) || n < 1)) {
      throw new CaseFormatError(`${c.dir}: case.json args.fixture_resolution_table.${k} must be [w, h] positive integers, got ${JSON.stringify(v)}`);
    }
    out[k] = [v[0], v[1]];
  }
  return out;
}

async function controlKind(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const model = await c.module(DepthFamily, backend);
  try {
    const frames = await framesInput(c, 'video');
    const inputSize = intArg(c, 'input_size', 518);
    const table = aspectTable(c);
    const [w, h] = typeof c.args.target_width === 'number' && typeof c.args.target_height === 'number' && !Object.keys(table).length
      ? [c.args.target_width, c.args.target_height]
      : controlSizeFor(frames.width, frames.height, table);
    const taps = new TapRecorder(new Set(c.tapNames));
    const r = await depthControlFloat(model, frames, {
      width: w, height: h, inputSize,
      onWindowDepth: taps.wants('window_depth')
        ? (d) => {
          const t = F.fromArray(backend, d, [1, INFER_LEN, frames.height, frames.width]);
          taps.record('window_depth', t);
          t.dispose();
        }
        : undefined,
    });
    const { frames: T, height: H, width: W } = frames;
    if (taps.wants('scale_shift')) taps.record('scale_shift', F.fromArray(backend, r.scaleShift.flat(), [r.scaleShift.length, 2]));
    return {
      outputs: {
        depth: shaped(r.depth, [T, H, W]),
        depth_normalized: shaped(r.normalized, [1, T, H, W]),
        control: shaped(Int32Array.from(r.control.data), [3, T, h, w]),
      },
      taps: joinRuns(taps),
    };
  } finally {
    model.dispose();
  }
}

registerKind('depth.video_depth_forward', forwardKind);
registerKind('depth.preprocess', preprocessKind);
registerKind('depth.control_video', controlKind);
