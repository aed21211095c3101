// Cosmos-1.0-Diffusion-7B-Decoder-DV8x16x16ToCV8x8x8 as a skeleton (../shared/releases has no layout
// for it). The release ships model.pt + aux_vars.pt; this is what converting its state dict gives
// (as the shared skeletons' "-converted" folders do): config.json = the released constructor kwargs,
// model.safetensors in bf16 under the released names with every tensor a sparse hole. The names are
// the ar_decoder case checkpoint's (the same upstream module tree), its two blocks repeated to the
// 7B's 28; the shapes are the ones the released config gives those names.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { openCheckpoint } from '../../src/io/safetensors.js';
import { RELEASED_AR_DECODER_CONFIG_JSON } from '../../src/models/ar-decoder/config.js';
import { ArDecoderFamily, arDecoderCheckpointKey, isIgnoredArDecoderKey } from '../../src/models/ar-decoder/model.js';
import { type Entry, writeSparseSafetensors } from './guardrail-skeleton.js';

const CASE_WEIGHTS = nodePath.resolve(import.meta.dirname, '../fixtures/ar_decoder/forward/model.safetensors');

/** Write the folder under `dir` (created); returns it. */
export async function writeArDecoderSkeleton(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const config = { ...RELEASED_AR_DECODER_CONFIG_JSON };
  const blocks = config.num_blocks as number;
  const shapes = new Map([...ArDecoderFamily.build(config).parameters()].map((p) => [p.key, p.shape]));
  const src = await openCheckpoint(CASE_WEIGHTS);
  const entries: Entry[] = [];
  try {
    for (const name of src.names) {
      if (isIgnoredArDecoderKey(name)) {
        // training-only entries ride along with the case's shapes, as a real state dict carries them
        if (name.startsWith('logvar.')) entries.push([name, 'BF16', [...src.info(name).shape]]);
        continue;
      }
      const m = /^net\.blocks\.block(\d+)\.(.*)$/.exec(name);
      const names = !m ? [name] : m[1] === '0' ? Array.from({ length: blocks }, (_, i) => `net.blocks.block${i}.${m[2]}`) : [];
      for (const n of names) {
        const shape = shapes.get(arDecoderCheckpointKey(n) ?? '');
        if (!shape) throw new Error(`${n}: no parameter of the released decoder`);
        entries.push([n, 'BF16', [...shape]]);
      }
    }
  } finally {
    await src.close();
  }
  if (entries.filter((e) => !e[0].startsWith('logvar.')).length !== shapes.size) throw new Error('the skeleton misses parameters of the released decoder');
  writeFileSync(nodePath.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeSparseSafetensors(nodePath.join(dir, 'model.safetensors'), entries);
  return dir;
}
