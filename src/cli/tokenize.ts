// `cosmos-ts tokenize`: a clip (.y4m, a folder of numbered PNG frames, or one .png) -> tokens
// (.safetensors): `latent` for a continuous (CV) tokenizer, `indices` (i32) and `codes` for a
// discrete (DV) one, encoded chunk by chunk with the streaming encoder.
import * as nodePath from 'node:path';
import { type TensorToWrite, writeSafetensors } from '../io/safetensors.js';
import { openVideoSource } from '../io/open-video.js';
import { parseFps } from '../io/video.js';
import {
  bars, describeModel, encodeSource, fpsText, isUserError, loadVideoTokenizer, parseCommandArgs, selectBackend, tokensMetadata, UsageError,
} from './tokenizer-common.js';

export const TOKENIZE_USAGE = `usage: cosmos-ts tokenize --model <dir> --input <clip.y4m | folder of PNG frames | image.png> --out <tokens.safetensors>
                         [--backend cpu|webgpu] [--chunk N] [--fps F]

Encodes a clip with a causal video tokenizer (CV or DV) and saves the tokens:
  continuous (CV): latent [1, C, t, h, w] f32
  discrete (DV):   indices [1, t, h, w] i32 and codes [1, D, t, h, w] f32
The metadata records the model, the input, its frame count, size and fps. Clips whose frame
count is not 1 + k*(temporal compression), or whose size is not a multiple of the spatial
compression, are padded by repeating the last frame / row / column (detokenize crops back).
  --model     tokenizer folder (config.json + model.safetensors)
  --input     .y4m file, folder of numbered PNG frames, or a single .png
  --out       tokens file to write
  --backend   cpu or webgpu (default webgpu; falls back to cpu when there is no adapter)
  --chunk     frames per streaming chunk after the first (default 4 x temporal compression)
  --fps       frame rate to record for PNG input (default 24)`;

export async function tokenizeCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(TOKENIZE_USAGE);
    return 0;
  }
  const v = parseCommandArgs(
    args,
    {
      model: { type: 'string' },
      input: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
      chunk: { type: 'string' },
      fps: { type: 'string' },
    },
    TOKENIZE_USAGE,
  );
  if (!v) return 2;
  const missing = (['model', 'input', 'out'] as const).filter((k) => v[k] === undefined);
  if (missing.length) {
    console.error(`error: missing ${missing.map((k) => `--${k}`).join(', ')}`);
    console.error(TOKENIZE_USAGE);
    return 2;
  }
  try {
    const fps = v.fps === undefined ? undefined : parseFps(v.fps);
    if (v.fps !== undefined && !fps) throw new UsageError(`--fps must be a positive number or n/d, got ${JSON.stringify(v.fps)}`);
    const chunk = v.chunk === undefined ? undefined : Number(v.chunk);
    const backend = await selectBackend(v.backend);
    const model = await loadVideoTokenizer(v.model!, backend);
    const source = await openVideoSource(v.input!, fps ?? { num: 24, den: 1 });
    try {
      console.error(`model ${v.model} ${describeModel(model)} on ${backend.name}`);
      console.error(`input ${v.input}: ${source.frameCount ?? '?'} frames, ${source.width}x${source.height}, ${fpsText(source.fps)} fps`);
      const t0 = performance.now();
      const progress = bars();
      const tokens = await encodeSource(model, source, { chunkFrames: chunk, onProgress: progress.onProgress });
      progress.finish();
      const meta = tokensMetadata(tokens, { model: nodePath.resolve(v.model!), input: nodePath.resolve(v.input!), fps: source.fps });
      const tensors: Record<string, TensorToWrite> =
        tokens.kind === 'DV'
          ? {
              indices: { dtype: 'i32' as const, shape: tokens.indices!.shape, raw: tokens.indices!.data },
              codes: { dtype: 'f32' as const, shape: tokens.codes!.shape, raw: tokens.codes!.data },
            }
          : { latent: { dtype: 'f32' as const, shape: tokens.latent!.shape, raw: tokens.latent!.data } };
      await writeSafetensors(v.out!, tensors, meta);
      const shape = (tokens.kind === 'DV' ? tokens.indices! : tokens.latent!).shape;
      const padded = tokens.paddedFrames !== tokens.frames || tokens.paddedHeight !== tokens.height || tokens.paddedWidth !== tokens.width;
      console.log(
        `${nodePath.basename(v.out!)}: ${tokens.kind === 'DV' ? 'indices' : 'latent'} [${shape.join(', ')}] from ${tokens.frames} frames` +
          (padded ? ` (padded to ${tokens.paddedFrames}x${tokens.paddedHeight}x${tokens.paddedWidth})` : '') +
          ` in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      return 0;
    } finally {
      await source.close();
      model.dispose();
    }
  } catch (e) {
    if (isUserError(e)) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
