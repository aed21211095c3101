// `cosmos-ts video2world`: continue an input clip with a diffusers-style Cosmos model folder.
import { fpsFlag, fpsProblem } from './clip-flags.js';
import { video2world } from '../pipelines/video2world.js';
import { UsageError, defineCommand, commandProgress } from './command.js';
import { probeVideo } from '../io/open-video.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';
import { WORLD_FLAGS, checkGenerationFlags, finishWorld, openForCommand, planWorldCommand, worldOptions } from './text2world.js';

export const command = defineCommand({
  name: 'video2world',
  summary: 'continue a clip with a Cosmos world model folder',
  description:
    'Continues a clip: the last --cond-frames frames of the input (resized to the output size) are encoded with\n' +
    'the VAE and held fixed as the first latent frames while the rest is generated. --height / --width default\n' +
    "to the input's size.",
  flags: {
    ...WORLD_FLAGS,
    input: { type: 'string', requiredUnless: 'plan', path: 'input', placeholder: '<clip.y4m | PNG folder | image.png>', help: 'the clip to continue (.y4m, a folder of PNG frames, or one .png image)' },
    'cond-frames': {
      type: 'integer', min: 1,
      help: "input frames used as conditioning, taken from its end (default min(input, 1 + the VAE's temporal compression): 9 for Cosmos-1.0, 5 for Predict2.x)",
    },
    'augment-sigma': { type: 'number', min: 0, help: 'Cosmos-1.0 noise augmentation of the conditioning latents (default 0.001)' },
    'input-fps': { type: 'string', placeholder: 'F | n/d', help: 'frame rate of PNG input (default 24)', problem: fpsProblem },
    ...LIMIT_FLAGS,
  },
  check(f) {
    if (f.plan) return;
    if (f.input === undefined) throw new UsageError('--input: missing (required unless --plan)');
    checkGenerationFlags(f, f.out);
  },
  async run(f, _positionals, ctx) {
    const fpsText = f['input-fps'];
    const inputFps = fpsFlag(fpsText, '--input-fps') ?? { num: 24, den: 1 };
    if (f.plan) return planWorldCommand('video2world', f, ctx, { input: f.input, condFrames: f['cond-frames'], augmentSigma: f['augment-sigma'] });
    if (f.input === undefined) throw new UsageError('--input: missing (required unless --plan)');
    // the clip's header (and limits: the whole clip is held) before the folder or a backend is opened
    const limits = limitsOf(f);
    await probeVideo(f.input, { limits, whole: true });
    const { info, backend, guardrails } = await openForCommand(f, ctx);
    const bars = commandProgress(ctx);
    try {
      const r = await video2world({
        ...worldOptions(f, info, ctx), backend, guardrails, onProgress: bars.onProgress, input: f.input, inputFps, condFrames: f['cond-frames'],
        augmentSigma: f['augment-sigma'], limits,
      });
      bars.finish();
      const c = r.condition;
      const resized = c.inputWidth !== r.settings.width || c.inputHeight !== r.settings.height ? `, resized to ${r.settings.width}x${r.settings.height}` : '';
      ctx.err(`input ${f.input}: ${c.inputFrames} frames ${c.inputWidth}x${c.inputHeight}; conditioning on the last ${c.condFrames}${resized}`);
      await finishWorld(r, f, ctx, { command: 'video2world', model: f.model, input: f.input, backend: backend.name });
    } finally {
      bars.finish();
    }
  },
});
