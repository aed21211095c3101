// `cosmos-ts detokenize`: tokens (.safetensors from `tokenize`) -> a clip (.y4m, or a folder of
// PNG frames when --out does not end in .y4m).
import { writeVideo } from '../io/open-video.js';
import { DEFAULT_FPS } from '../io/video.js';
import { detokenize, loadVideoTokenizer } from '../pipelines/tokenizer.js';
import { readTokens } from '../pipelines/tokens-file.js';
import { CHROMA_FLAG, describeTokenizer, FPS_FLAG, fpsFlag, RANGE_FLAG, RELEASE_FLAG } from './clip-flags.js';
import { BACKEND_FLAG, commandBackend, defineCommand, UsageError, commandProgress } from './command.js';
import { checkFrameLimits } from '../io/limits.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';

export const command = defineCommand({
  name: 'detokenize',
  summary: 'decode tokens back to a clip (.y4m / PNG frames)',
  description: `Decodes tokens written by 'cosmos-ts tokenize' (latent, or indices / codes) and writes the
clip, cropped to the recorded frame count and size and clamped to [-1, 1].`,
  flags: {
    tokens: { type: 'string', required: true, path: 'input', placeholder: '<tokens.safetensors>', help: 'tokens file' },
    out: { type: 'string', required: true, path: 'output', placeholder: '<rec.y4m | folder>', help: 'a .y4m file, or else a folder of PNG frames (frame_000000.png, ...)' },
    model: { type: 'string', path: 'input', placeholder: '<dir>', help: 'tokenizer folder (default: the one recorded in the tokens file); a release as downloaded needs only decoder.jit' },
    release: RELEASE_FLAG,
    backend: BACKEND_FLAG,
    chroma: CHROMA_FLAG,
    range: RANGE_FLAG,
    fps: { ...FPS_FLAG, help: 'frame rate (default: recorded, else 24)' },
    ...LIMIT_FLAGS,
  },
  async run(f, _positionals, ctx) {
    const fps = fpsFlag(f.fps);
    const limits = limitsOf(f);
    // the tokens file's header (array shapes, recorded clip size) is checked before any model loads
    const file = await readTokens(f.tokens, undefined, { limits });
    const modelDir = f.model ?? file.model;
    if (!modelDir) throw new UsageError(`--model: missing (${f.tokens} records no tokenizer folder)`);
    const backend = await commandBackend(f.backend, ctx);
    const model = await loadVideoTokenizer(modelDir, backend, { part: 'decoder', release: f.release });
    try {
      ctx.err(`model ${modelDir} ${describeTokenizer(model)} on ${backend.name}`);
      // what the token grid decodes to with this model, before the decode allocates it
      const grid = file.tokens.latent?.shape.slice(2) ?? file.tokens.indices?.shape.slice(1);
      if (grid?.length === 3) {
        const [t, h, w] = grid;
        checkFrameLimits(`${f.tokens}: tokens [${grid.join(', ')}] with ${modelDir}`, w * model.spatialCompression, h * model.spatialCompression, 1 + (t - 1) * model.temporalCompression, limits);
      }
      const t0 = performance.now();
      const progress = commandProgress(ctx);
      const video = await detokenize(model, file.tokens, { onProgress: progress.onProgress, signal: ctx.signal });
      progress.finish();
      await writeVideo(f.out, video, { fps: fps ?? video.fps ?? DEFAULT_FPS, chroma: f.chroma as '444' | '420', range: f.range as 'full' | 'limited' });
      ctx.out(`${f.out}: ${video.frames} frames, ${video.width}x${video.height} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      model.dispose();
    }
  },
});
