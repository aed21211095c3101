// `cosmos-ts tokenize`: a clip (.y4m, a folder of numbered PNG frames, or one .png) -> tokens
// (.safetensors): `latent` for a continuous (CV) tokenizer, `indices` (i32) and `codes` for a
// discrete (DV) one, encoded chunk by chunk with the streaming encoder.
import { fileSystem } from '../io/files.js';
import { basename } from '../io/path.js';
import { tokenize } from '../pipelines/tokenizer.js';
import { writeTokens } from '../pipelines/tokens-file.js';
import { FPS_FLAG, RELEASE_FLAG, TOKENIZER_PLAN_FLAGS, openModelAndClip, planTokenizerCommand } from './clip-flags.js';
import { BACKEND_FLAG, UsageError, defineCommand, commandProgress } from './command.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';

export const command = defineCommand({
  name: 'tokenize',
  summary: 'encode a clip (.y4m / PNG frames) to tokens with a video tokenizer',
  description: `Encodes a clip with a causal video tokenizer (CV or DV) and saves the tokens:
  continuous (CV): latent [1, C, t, h, w] f32
  discrete (DV):   indices [1, t, h, w] i32 and codes [1, D, t, h, w] f32
The metadata records the model, the input, its frame count, size and fps. Clips whose frame
count is not 1 + k*(temporal compression), or whose size is not a multiple of the spatial
compression, are padded by repeating the last frame / row / column (detokenize crops back).`,
  flags: {
    model: { type: 'string', required: true, path: 'input', placeholder: '<dir>', help: 'tokenizer folder: a release as downloaded (TorchScript .jit files) or config.json + model.safetensors' },
    release: RELEASE_FLAG,
    input: { type: 'string', requiredUnless: 'plan', path: 'input', placeholder: '<clip.y4m | folder | image.png>', help: '.y4m file, folder of numbered PNG frames, or a single .png' },
    out: { type: 'string', requiredUnless: 'plan', path: 'output', placeholder: '<tokens.safetensors>', help: 'tokens file to write' },
    backend: BACKEND_FLAG,
    chunk: { type: 'integer', min: 1, help: 'frames per streaming chunk after the first (default 4 x temporal compression)' },
    fps: { ...FPS_FLAG, help: 'frame rate to record for PNG input (default 24)' },
    ...TOKENIZER_PLAN_FLAGS,
    json: { type: 'boolean', needs: 'plan', help: 'with --plan: print the plan as one JSON object' },
    ...LIMIT_FLAGS,
  },
  async run(f, _positionals, ctx) {
    if (f.plan) return planTokenizerCommand('tokenize', f, ctx, limitsOf(f));
    if (f.input === undefined || f.out === undefined) throw new UsageError(`${[f.input === undefined ? '--input' : '', f.out === undefined ? '--out' : ''].filter(Boolean).join(', ')}: missing (required unless --plan)`);
    const { input, out } = f;
    // streamed: one frame at a time is held, so only a frame counts against --max-input-bytes
    const { model, source } = await openModelAndClip({ ...f, input }, ctx, 'encoder', { limits: limitsOf(f) });
    try {
      const t0 = performance.now();
      const progress = commandProgress(ctx);
      const tokens = await tokenize(model, source, { chunkFrames: f.chunk, onProgress: progress.onProgress, signal: ctx.signal });
      progress.finish();
      try {
        const fs = fileSystem();
        await writeTokens(out, tokens, { model: fs.resolve(f.model), input: fs.resolve(input) });
        const padded = tokens.paddedFrames !== tokens.frames || tokens.paddedHeight !== tokens.height || tokens.paddedWidth !== tokens.width;
        ctx.out(
          `${basename(out)}: ${tokens.kind === 'DV' ? 'indices' : 'latent'} [${tokens.shape.join(', ')}] from ${tokens.frames} frames` +
            (padded ? ` (padded to ${tokens.paddedFrames}x${tokens.paddedHeight}x${tokens.paddedWidth})` : '') +
            ` in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
      } finally {
        tokens.dispose();
      }
    } finally {
      await source.close();
      model.dispose();
    }
  },
});
