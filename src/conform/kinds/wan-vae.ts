// Conformance kinds of the Wan VAE (diffusers AutoencoderKLWan; fact sheet wan_vae.md §13): the
// model is built from the case's config.json alone and loaded from its model.safetensors. A module
// runs once per piece of the clip, so each tap is the time-concatenation of its calls: the
// whole-clip output of that module, as the fixtures record it. Both kinds make the same calls; the
// config says which layout (Wan2.1, or Wan2.2's residual blocks and patchify) is built.
import type { Backend } from '../../engine/backend.js';
import { TapRecorder, capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { AutoencoderKLWanFamily, normalizeWanLatent, samplePosterior } from '../../models/wan/autoencoder.js';
import type { FixtureCase } from '../case.js';
import { type KindResult, type OutputValue, registerKind } from '../registry.js';

/** One record per path: the records of a module called once per piece, joined along time. */
function joinPieces(rec: TapRecorder): TapRecorder {
  const out = new TapRecorder('all');
  const paths = [...new Set(rec.records.map((r) => r.path))];
  for (const path of paths) {
    const parts = rec.all(path);
    const joined = parts.length === 1 ? parts[0] : F.concat(parts, 2);
    out.record(path, joined);
    if (joined !== parts[0]) joined.dispose();
  }
  rec.dispose();
  return out;
}

async function encodeDecode(c: FixtureCase, backend: Backend): Promise<KindResult> {
  const model = await c.module(AutoencoderKLWanFamily, backend);
  try {
    const video = await c.inputTensor('video', backend);
    const noise = await c.inputTensor('noise', backend);
    const { result, taps } = await capture(c.tapNames, () => {
      const posterior = model.encode(video);
      const outputs: Record<string, OutputValue> = {
        latent_mean: posterior.mean,
        latent_logvar: posterior.logvar,
        latent_sample: samplePosterior(posterior, noise),
        reconstruction: model.decode(posterior.mean),
      };
      const stats = model.latentStats(backend);
      if (stats) outputs.latent_normalized = normalizeWanLatent(posterior.mean, stats);
      return outputs;
    });
    return { outputs: result, taps: joinPieces(taps) };
  } finally {
    model.dispose();
  }
}

registerKind('wan_vae.encode_decode', encodeDecode);
registerKind('wan_vae.wan22_encode_decode', encodeDecode);
