// Conformance kind of the edge control map (spec/control_maps.md "Edge"):
//   controlnet.edge_map  get_augmentor_for_eval(..., output_keys=['edge'], preset_edge_threshold)
//                        on the C x T x H x W uint8 `video` -> `edge` 1 x 3 x T x H x W of 0 / 255.
// The thresholds are the case's resolved `args.t_lower` / `args.t_upper`; a case without them
// names a preset (`args.preset`, else config.json `preset_strength`).
import type { Backend } from '../../engine/backend.js';
import { DEFAULT_EDGE_PRESET, edgeMap, edgeThresholds } from '../../models/controlnet/edge-map.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, registerKind } from '../registry.js';

function thresholdsOf(c: FixtureCase): [number, number] {
  const { t_lower: lo, t_upper: hi, preset } = c.args;
  if (lo !== undefined || hi !== undefined) {
    if (typeof lo !== 'number' || typeof hi !== 'number' || !Number.isFinite(lo) || !Number.isFinite(hi)) {
      throw new CaseFormatError(`${c.dir}: args.t_lower / args.t_upper: expected two finite numbers, got ${JSON.stringify([lo, hi])}`);
    }
    return [lo, hi];
  }
  const name = preset ?? c.config?.preset_strength ?? DEFAULT_EDGE_PRESET;
  if (typeof name !== 'string') throw new CaseFormatError(`${c.dir}: args.preset: expected a preset name, got ${JSON.stringify(name)}`);
  return edgeThresholds(name, `${c.dir}: args.preset`);
}

async function edgeMapKind(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const [lo, hi] = thresholdsOf(c);
  const video = await c.inputTensor('video', backend);
  try {
    if (video.rank !== 4) throw new CaseFormatError(`${c.dir}: input video must be C x T x H x W, got ${JSON.stringify(video.shape)}`);
    return { outputs: { edge: await edgeMap(video, lo, hi) } };
  } finally {
    video.dispose();
  }
}

registerKind('controlnet.edge_map', edgeMapKind);
