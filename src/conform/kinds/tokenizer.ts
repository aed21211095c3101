// Conformance kinds of the Cosmos tokenizers (fixtures README, fact sheet §13). The model is
// built from the case's config.json alone (Cosmos-Tokenizer kwargs `name` CV / DV / CI / DI, or
// diffusers `_class_name: AutoencoderKLCosmos`) and loaded from its model.safetensors; the
// taps are recorded under the upstream module paths the case names.
import type { Backend } from '../../engine/backend.js';
import { type TapRecorder, capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { AutoencoderKLCosmos, normalizeLatent } from '../../models/tokenizer/diffusers.js';
import { ContinuousImageTokenizer, DiscreteImageTokenizer } from '../../models/tokenizer/image.js';
import { CosmosTokenizerFamily, type Tokenizer } from '../../models/tokenizer/load.js';
import { CausalContinuousVideoTokenizer, CausalDiscreteVideoTokenizer } from '../../models/tokenizer/video.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, type OutputValue, registerKind } from '../registry.js';

function kindName(m: Tokenizer): string {
  return m instanceof AutoencoderKLCosmos ? 'AutoencoderKLCosmos' : m.kind;
}

/** Build, load, run `body` recording the case's taps, free the weights. */
async function runWithModel(
  c: FixtureCase,
  backend: Backend,
  body: (m: Tokenizer) => Promise<Record<string, OutputValue>> | Record<string, OutputValue>,
): Promise<KindResult> {
  const model = await c.module(CosmosTokenizerFamily, backend);
  try {
    const wanted = c.tapNames;
    if (model instanceof AutoencoderKLCosmos) {
      // the case names diffusers module paths: record the Cosmos paths that map onto them
      const byDiffusers = new Map<string, string>();
      for (const m of model.modules()) if (m.path) byDiffusers.set(model.diffusersName(m.path), m.path);
      const paths = wanted.map((w) => byDiffusers.get(w)).filter((p): p is string => p !== undefined);
      const { result, taps } = await capture(paths, () => body(model));
      const renamed = model.renameTaps(taps);
      taps.dispose();
      return { outputs: result, taps: renamed };
    }
    const { result, taps } = await capture(wanted, () => body(model));
    return { outputs: result, taps: taps as TapRecorder };
  } finally {
    model.dispose();
  }
}

registerKind('tokenizer.encode_decode', async (c, backend) =>
  runWithModel(c, backend, async (m) => {
    if (m instanceof CausalContinuousVideoTokenizer && !(m instanceof AutoencoderKLCosmos)) {
      const latent = m.encode(await c.inputTensor('video', backend));
      return { latent, reconstruction: m.decode(latent) };
    }
    if (m instanceof ContinuousImageTokenizer) {
      const latent = m.encode(await c.inputTensor('image', backend));
      return { latent, reconstruction: m.decode(latent) };
    }
    throw new CaseFormatError(`config.json: tokenizer.encode_decode needs a CV or CI config; got ${kindName(m)}`);
  }));

registerKind('tokenizer.discrete_encode_decode', async (c, backend) =>
  runWithModel(c, backend, async (m) => {
    if (m instanceof CausalDiscreteVideoTokenizer) {
      const { indices, codes } = m.encode(await c.inputTensor('video', backend));
      return { indices, codes, reconstruction: m.decodeIndices(indices) };
    }
    if (m instanceof DiscreteImageTokenizer) {
      const { indices, codes } = m.encode(await c.inputTensor('image', backend));
      return { indices, codes, reconstruction: m.decodeIndices(indices) };
    }
    throw new CaseFormatError(`config.json: tokenizer.discrete_encode_decode needs a DV or DI config; got ${kindName(m)}`);
  }));

registerKind('tokenizer.causal_prefix', async (c, backend) =>
  runWithModel(c, backend, async (m) => {
    if (!(m instanceof CausalContinuousVideoTokenizer)) {
      throw new CaseFormatError(`config.json: tokenizer.causal_prefix needs a CV config; got ${kindName(m)}`);
    }
    const prefix = c.args.prefix_frames;
    if (typeof prefix !== 'number' || !Number.isInteger(prefix) || prefix < 1) {
      throw new CaseFormatError(`${c.dir}: args.prefix_frames must be a positive integer, got ${JSON.stringify(prefix)}`);
    }
    const video = await c.inputTensor('video', backend);
    const latentFull = m.encode(video);
    const latentPrefix = m.encode(F.slice(video, 2, 0, prefix));
    return {
      latent_full: latentFull,
      latent_prefix: latentPrefix,
      reconstruction_full: m.decode(latentFull),
      reconstruction_prefix: m.decode(latentPrefix),
    };
  }));

registerKind('tokenizer.diffusers_encode_decode', async (c, backend) =>
  runWithModel(c, backend, async (m) => {
    if (!(m instanceof AutoencoderKLCosmos)) {
      throw new CaseFormatError(`config.json: tokenizer.diffusers_encode_decode needs a diffusers AutoencoderKLCosmos config; got ${kindName(m)}`);
    }
    const latent = m.encode(await c.inputTensor('video', backend));
    const outputs: Record<string, OutputValue> = { latent, reconstruction: m.decode(latent) };
    const stats = m.latentStats(backend);
    if (stats) {
      const sigma = c.args.sigma_data ?? 0.5;
      if (typeof sigma !== 'number') throw new CaseFormatError(`${c.dir}: args.sigma_data must be a number`);
      outputs.latent_normalized = normalizeLatent(latent, stats, sigma);
    }
    return outputs;
  }));
