// `cosmos-ts video2world`: continue an input clip with a diffusers-style Cosmos model folder.
import { parseFps } from '../io/video.js';
import { describeWorldModel, inspectWorldModel } from '../pipelines/text2world.js';
import { video2world } from '../pipelines/video2world.js';
import {
  WORLD_OPTIONS_HELP, isWorldUserError, parseWorldArgs, stepReporter, worldOptions, writeWorldResult,
} from './text2world.js';
import { selectBackend, UsageError } from './tokenizer-common.js';

export const VIDEO2WORLD_USAGE = `usage: cosmos-ts video2world --model <folder> --input <clip.y4m | PNG folder | image.png>
                            (--prompt "..." | --embeddings <file>) --out <out.y4m | folder>
                            [--cond-frames N] [--augment-sigma S] [--input-fps F] [--negative-prompt "..."] [--seed N]
                            [--steps N] [--guidance G] [--frames N] [--height H] [--width W] [--fps F]
                            [--latents-out <file>] [--backend cpu|webgpu] [--json]

Continues a clip: the last --cond-frames frames of the input (resized to the output size) are
encoded with the VAE and held fixed as the first latent frames while the rest is generated.
  --input        the clip to continue (.y4m, a folder of PNG frames, or one .png image)
  --cond-frames  input frames used as conditioning, taken from its end (default min(input, 1 + the
                 VAE's temporal compression): 9 for Cosmos-1.0, 5 for Predict2.x)
  --augment-sigma  Cosmos-1.0 noise augmentation of the conditioning latents (default 0.001)
  --input-fps    frame rate of PNG input (default 24)
${WORLD_OPTIONS_HELP}
  (--height / --width default to the input's size)`;

export async function video2worldCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(VIDEO2WORLD_USAGE);
    return 0;
  }
  const v = parseWorldArgs(
    args,
    { input: { type: 'string' }, 'cond-frames': { type: 'string' }, 'augment-sigma': { type: 'string' }, 'input-fps': { type: 'string' } },
    VIDEO2WORLD_USAGE,
    ['model', 'input'],
  );
  if (!v) return 2;
  try {
    const o = worldOptions(v);
    const num = (k: string, int: boolean): number | undefined => {
      const s = v[k] as string | undefined;
      if (s === undefined) return undefined;
      const n = Number(s);
      if (s.trim() === '' || !Number.isFinite(n) || n < 0 || (int && (!Number.isInteger(n) || n < 1))) {
        throw new UsageError(`--${k} must be ${int ? 'a positive integer' : 'a number >= 0'}, got ${JSON.stringify(s)}`);
      }
      return n;
    };
    const condFrames = num('cond-frames', true);
    const augmentSigma = num('augment-sigma', false);
    const fpsText = v['input-fps'] as string | undefined;
    const inputFps = fpsText === undefined ? undefined : parseFps(fpsText);
    if (fpsText !== undefined && !inputFps) throw new UsageError(`--input-fps must be a positive number or n/d, got ${JSON.stringify(fpsText)}`);
    const info = inspectWorldModel(v.model!);
    const backend = await selectBackend(v.backend);
    console.error(`model ${v.model}: ${describeWorldModel(info)} on ${backend.name} (${backend.adapter})`);
    const r = await video2world(v.model!, backend, {
      ...o, input: v.input as string, condFrames, augmentSigma, inputFps: inputFps ?? { num: 24, den: 1 },
      onStep: stepReporter(), onPhase: (m) => console.error(m),
    });
    await writeWorldResult(r, v, { command: 'video2world', model: v.model, input: v.input, backend: backend.name });
    return 0;
  } catch (e) {
    if (isWorldUserError(e)) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
