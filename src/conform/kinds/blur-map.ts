// Conformance kind of the blur ("vis") control map (spec control_maps.md "Blur"):
//   controlnet.blur_map  video C x T x H x W uint8 -> vis 1 x C x T x H x W uint8, with the stage
//                        taps area_down, bilateral, linear_up, bicubic_down (case.safetensors tap.*).
// The case's resolved numbers (args) drive it, never its preset name, so other presets and
// variants run through the same path. The area, bilateral and bicubic stages run on the backend's
// engine ops; the INTER_LINEAR upscale (integer, face-post.ts) on the host.
import type { Backend } from '../../engine/backend.js';
import { TapRecorder } from '../../engine/module.js';
import { fromRaw } from '../../engine/ops.js';
import { type BlurMapSettings, RES_720, blurMap, engineStages, fitSize } from '../../models/controlnet/blur-map.js';
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
  const aspect = typeof a.aspect_ratio === 'string' ? a.aspect_ratio : '16,9';
  if (!RES_720[aspect]) throw new CaseFormatError(`${c.dir}: case.json args.aspect_ratio ${JSON.stringify(a.aspect_ratio)} is not one of ${Object.keys(RES_720).join(' ')}`);
  return {
    fitBox: a.variant === 'transfer1' ? RES_720[aspect] : undefined,
    areaDownFactor: num('area_down_factor'),
    bilateral: { d: num('bilateral_d'), sigmaColor: num('bilateral_sigma_color'), sigmaSpace: num('bilateral_sigma_space'), iter: num('bilateral_iter', 1) },
    downupFactor: num('downup_factor'),
  };
}

async function blurMapKind(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const input = await c.input('video');
  if (input.shape.length !== 4) throw new CaseFormatError(`${c.dir}: input video must be C x T x H x W uint8, got ${JSON.stringify(input.shape)}`);
  const [C, T, H0, W0] = input.shape;
  const settings = settingsOf(c);
  const [W, H] = settings?.fitBox ? fitSize(W0, H0, settings.fitBox) : [W0, H0];
  const taps = new TapRecorder(new Set(c.tapNames));
  const out = await blurMap(Uint8Array.from(input.raw), [C, T, H0, W0], settings, (stage, values, shape) => {
    if (taps.wants(stage)) taps.record(stage, fromRaw(backend, Int32Array.from(values), shape, 'i32'));
  }, engineStages(backend));
  return { outputs: { vis: shaped(Int32Array.from(out), [1, C, T, H, W]) }, taps };
}

registerKind('controlnet.blur_map', blurMapKind);
