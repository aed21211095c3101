// Conformance kind of the blur ("vis") control map (spec control_maps.md "Blur"):
//   controlnet.blur_map  video C x T x H x W uint8 -> vis 1 x C x T x H x W uint8, with the stage
//                        taps area_down, bilateral, linear_up, bicubic_down (case.safetensors tap.*).
// The case's resolved numbers (args) drive it, never its preset name, so other presets and
// variants run through the same path. The bilateral and bicubic stages run on the backend's engine
// ops; the OpenCV resizes (cheap, integer) on the host.
import type { Backend } from '../../engine/backend.js';
import { TapRecorder } from '../../engine/module.js';
import { fromRaw } from '../../engine/ops.js';
import { type BlurMapSettings, blurMap, engineStages } from '../../models/controlnet/blur-map.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, registerKind, shaped } from '../registry.js';

function settingsOf(c: FixtureCase): BlurMapSettings | null {
  const a = c.args;
  if (a.preset === 'none' && a.variant !== 'transfer1') return null;
  const num = (k: string, dflt?: number): number => {
    const v = a[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new CaseFormatError(`${c.dir}: case.json args.${k} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    areaDownFactor: num('area_down_factor'),
    bilateral: { d: num('bilateral_d'), sigmaColor: num('bilateral_sigma_color'), sigmaSpace: num('bilateral_sigma_space'), iter: num('bilateral_iter', 1) },
    downupFactor: num('downup_factor'),
  };
}

async function blurMapKind(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const input = await c.input('video');
  if (input.shape.length !== 4) throw new CaseFormatError(`${c.dir}: input video must be C x T x H x W uint8, got ${JSON.stringify(input.shape)}`);
  const [C, T, H, W] = input.shape;
  const taps = new TapRecorder(new Set(c.tapNames));
  const out = await blurMap(Uint8Array.from(input.raw), [C, T, H, W], settingsOf(c), (stage, values, shape) => {
    if (taps.wants(stage)) taps.record(stage, fromRaw(backend, Int32Array.from(values), shape, 'i32'));
  }, engineStages(backend));
  return { outputs: { vis: shaped(Int32Array.from(out), [1, C, T, H, W]) }, taps };
}

registerKind('controlnet.blur_map', blurMapKind);
