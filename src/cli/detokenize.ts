// `cosmos-ts detokenize`: tokens (.safetensors from `tokenize`) -> a clip (.y4m, or a folder of
// PNG frames when --out does not end in .y4m).
import { openSafetensors } from '../io/safetensors.js';
import { writeVideo } from '../io/open-video.js';
import { parseFps, type Rational } from '../io/video.js';
import {
  clampVideo, decodeTokens, describeModel, type EncodedTokens, isUserError, loadVideoTokenizer, parseCommandArgs, selectBackend, UsageError,
} from './tokenizer-common.js';

export const DETOKENIZE_USAGE = `usage: cosmos-ts detokenize --tokens <tokens.safetensors> --out <rec.y4m | folder> [--model <dir>]
                           [--backend cpu|webgpu] [--chroma 444|420] [--range full|limited] [--fps F]

Decodes tokens written by 'cosmos-ts tokenize' (latent, or indices / codes) and writes the
clip, cropped to the recorded frame count and size and clamped to [-1, 1].
  --tokens    tokens file
  --out       a .y4m file, or else a folder of PNG frames (frame_000000.png, ...)
  --model     tokenizer folder (default: the one recorded in the tokens file)
  --backend   cpu or webgpu (default webgpu; falls back to cpu when there is no adapter)
  --chroma    Y4M chroma subsampling (default 444)
  --range     Y4M colour range (default full)
  --fps       frame rate (default: recorded, else 24)`;

export async function detokenizeCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(DETOKENIZE_USAGE);
    return 0;
  }
  const v = parseCommandArgs(
    args,
    {
      model: { type: 'string' },
      tokens: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
      chroma: { type: 'string' },
      range: { type: 'string' },
      fps: { type: 'string' },
    },
    DETOKENIZE_USAGE,
  );
  if (!v) return 2;
  const missing = (['tokens', 'out'] as const).filter((k) => v[k] === undefined);
  if (missing.length) {
    console.error(`error: missing ${missing.map((k) => `--${k}`).join(', ')}`);
    console.error(DETOKENIZE_USAGE);
    return 2;
  }
  try {
    if (v.chroma !== undefined && v.chroma !== '444' && v.chroma !== '420') throw new UsageError(`--chroma must be 444 or 420, got ${JSON.stringify(v.chroma)}`);
    if (v.range !== undefined && v.range !== 'full' && v.range !== 'limited') throw new UsageError(`--range must be full or limited, got ${JSON.stringify(v.range)}`);
    let fps: Rational | undefined = v.fps === undefined ? undefined : parseFps(v.fps);
    if (v.fps !== undefined && !fps) throw new UsageError(`--fps must be a positive number or n/d, got ${JSON.stringify(v.fps)}`);

    const file = await openSafetensors(v.tokens!);
    const tokens: Pick<EncodedTokens, 'latent' | 'indices' | 'codes'> = {};
    let meta: Readonly<Record<string, string>>;
    try {
      meta = file.metadata;
      if (file.has('latent')) {
        const t = await file.read('latent');
        if (t.dtype !== 'f32') throw new UsageError(`${v.tokens}: latent is ${t.dtype}; expected f32`);
        tokens.latent = { data: t.raw as Float32Array, shape: t.shape };
      }
      if (file.has('indices')) {
        const t = await file.read('indices');
        if (t.dtype !== 'i32') throw new UsageError(`${v.tokens}: indices are ${t.dtype}; expected integers`);
        tokens.indices = { data: t.raw as Int32Array, shape: t.shape };
      }
      if (file.has('codes')) {
        const t = await file.read('codes');
        tokens.codes = { data: t.raw as Float32Array, shape: t.shape };
      }
    } finally {
      await file.close();
    }
    if (!tokens.latent && !tokens.indices && !tokens.codes) {
      throw new UsageError(`${v.tokens}: no \`latent\`, \`indices\` or \`codes\` tensor; expected a file written by 'cosmos-ts tokenize'`);
    }
    const modelDir = v.model ?? meta.model;
    if (!modelDir) throw new UsageError(`${v.tokens} records no model; pass --model`);
    fps ??= meta.fps ? parseFps(meta.fps) : undefined;
    const size = ['frames', 'height', 'width'].map((k) => Number(meta[k]));
    const crop = size.every((n) => Number.isInteger(n) && n > 0) ? (size as [number, number, number]) : undefined;

    const backend = await selectBackend(v.backend);
    const model = await loadVideoTokenizer(modelDir, backend);
    try {
      console.error(`model ${modelDir} ${describeModel(model)} on ${backend.name}`);
      const t0 = performance.now();
      const video = clampVideo(await decodeTokens(model, tokens, crop));
      await writeVideo(v.out!, video, { fps: fps ?? { num: 24, den: 1 }, chroma: v.chroma as '444' | '420' | undefined, range: v.range as 'full' | 'limited' | undefined });
      console.log(`${v.out}: ${video.frames} frames, ${video.width}x${video.height} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return 0;
    } finally {
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
