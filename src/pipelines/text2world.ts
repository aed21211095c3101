// Text2World: a prompt (or its precomputed embeddings) -> a generated clip, with a diffusers-style
// Cosmos model folder: prompt -> seeded noise -> the family's sampler -> VAE decode. Spec:
// dit.md §5-§6, tokenizer.md §9. The phases are in world/.
import { throwIfAborted } from '../engine/errors.js';
import { openWorldModel } from './world/model.js';
import { type WorldOptions, type WorldResult, runWorld } from './world/run.js';
import { resolveSettings } from './world/settings.js';

export async function text2world(o: WorldOptions): Promise<WorldResult> {
  throwIfAborted(o.signal);
  const m = await openWorldModel(o);
  return runWorld(m, o, resolveSettings(o, m.info.defaults), null);
}
