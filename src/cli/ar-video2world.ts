// `cosmos-ts ar-video2world`: continue a clip with the autoregressive video decoder. The last
// context frames are encoded by the DV tokenizer, the remaining latent frames of the model's
// grid are generated token by token, and the whole grid is decoded back to frames.
import { writeVideo, openVideoSource } from '../io/open-video.js';
import { parseFps, stackFrames } from '../io/video.js';
import { ArArgumentError, ArConfigError } from '../models/ar/config.js';
import {
  arVideo2World, defaultContextFrames, loadArModel, readEmbeddings, type HostEmbeddings,
} from '../pipelines/ar-video2world.js';
import { fpsText, isUserError, loadVideoTokenizer, parseCommandArgs, selectBackend, UsageError } from './tokenizer-common.js';

export const AR_VIDEO2WORLD_USAGE = `usage: cosmos-ts ar-video2world --model <dir> --tokenizer <DV dir> --input <clip.y4m | folder of PNG frames | image.png>
                               --out <out.y4m | folder> [--frames N] [--temperature T] [--top-p P] [--seed S]
                               [--embeddings <t5.safetensors>] [--backend cpu|webgpu] [--fps F]

Continues a clip with a Cosmos autoregressive model: the last N frames are tokenized by the
discrete video tokenizer (DV), the rest of the model's token grid (video_latent_shape) is
generated token by token, and all of it (context + generated) is decoded and written.
  --model        AR checkpoint folder: config.json (ModelConfig fields + training_type) and
                 model.safetensors
  --tokenizer    DV tokenizer folder (its codebook must be the model's vocab_size; its latent
                 grid of the clip must be the model's H x W)
  --input        the clip; its frames must be (grid H x W) times the spatial compression
  --out          a .y4m file, or else a folder of PNG frames
  --frames       context frames taken from the end of the clip, 1 + k * temporal compression
                 (default 1 + tc, upstream's 9 frames, when the clip has them; else 1)
  --temperature  sampling temperature (default 1.0; 0 = greedy)
  --top-p        nucleus threshold (default 0.8)
  --seed         seed of the sampling draws (default 0)
  --embeddings   T5 text embeddings [Lc, context_dim] (.safetensors, one tensor or one named
                 context / embeddings): required by the Video2World (cross-attention) models
  --backend      cpu or webgpu (default webgpu; falls back to cpu when there is no adapter)
  --fps          frame rate for PNG input (default 24)`;

function num(name: string, s: string | undefined, check: (x: number) => boolean, what: string): number | undefined {
  if (s === undefined) return undefined;
  const x = Number(s);
  if (s.trim() === '' || !Number.isFinite(x) || !check(x)) throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(s)}`);
  return x;
}

export async function arVideo2WorldCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(AR_VIDEO2WORLD_USAGE);
    return 0;
  }
  const v = parseCommandArgs(
    args,
    {
      model: { type: 'string' },
      tokenizer: { type: 'string' },
      input: { type: 'string' },
      out: { type: 'string' },
      frames: { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      embeddings: { type: 'string' },
      backend: { type: 'string' },
      fps: { type: 'string' },
    },
    AR_VIDEO2WORLD_USAGE,
  );
  if (!v) return 2;
  const missing = (['model', 'tokenizer', 'input', 'out'] as const).filter((k) => v[k] === undefined);
  if (missing.length) {
    console.error(`error: missing ${missing.map((k) => `--${k}`).join(', ')}`);
    console.error(AR_VIDEO2WORLD_USAGE);
    return 2;
  }
  try {
    const frames = num('frames', v.frames, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
    const temperature = num('temperature', v.temperature, (x) => x >= 0, 'a number >= 0');
    const topP = num('top-p', v['top-p'], (x) => x > 0 && x <= 1, 'a number in (0, 1]');
    const seed = num('seed', v.seed, (x) => Number.isInteger(x), 'an integer');
    const fps = v.fps === undefined ? undefined : parseFps(v.fps);
    if (v.fps !== undefined && !fps) throw new UsageError(`--fps must be a positive number or n/d, got ${JSON.stringify(v.fps)}`);

    const embeddings: HostEmbeddings | null = v.embeddings === undefined ? null : await readEmbeddings(v.embeddings);
    const backend = await selectBackend(v.backend);
    const tokenizer = await loadVideoTokenizer(v.tokenizer!, backend);
    try {
      if (tokenizer.kind !== 'DV') {
        throw new UsageError(`--tokenizer ${v.tokenizer}: a ${tokenizer.kind} (continuous) tokenizer; the AR models take the discrete video tokenizer (DV)`);
      }
      const model = await loadArModel(v.model!, backend);
      try {
        const cfg = model.config;
        const tc = tokenizer.temporalCompression;
        console.error(
          `model ${v.model}: ${cfg.nLayers} layers, dim ${cfg.dim}, ${cfg.trainingType}, grid [${cfg.videoLatentShape.join(', ')}], ` +
            `${(model.parameterCount() / 1e6).toFixed(1)}M parameters on ${backend.name}`,
        );
        console.error(`tokenizer ${v.tokenizer}: DV ${tc}x${tokenizer.spatialCompression}x${tokenizer.spatialCompression}, ${tokenizer.vocabSize} codes`);

        // keep only the frames the context can use (the last ones)
        const want = frames ?? defaultContextFrames(cfg, tc, Infinity);
        const source = await openVideoSource(v.input!, fps ?? { num: 24, den: 1 });
        const kept: Float32Array[] = [];
        let total = 0;
        try {
          for await (const f of source.frames()) {
            kept.push(f);
            total++;
            if (kept.length > want) kept.shift();
          }
        } finally {
          await source.close();
        }
        if (total === 0) throw new UsageError(`--input ${v.input} has no frames`);
        console.error(`input ${v.input}: ${total} frames, ${source.width}x${source.height}, ${fpsText(source.fps)} fps`);
        const clip = stackFrames(kept, source.height, source.width, source.fps);

        const r = await arVideo2World(model, tokenizer, clip, {
          contextFrames: frames,
          temperature,
          topP,
          seed,
          embeddings,
        });
        const p = r.plan;
        await writeVideo(v.out!, r.video, { fps: source.fps ?? { num: 24, den: 1 } });
        console.log(
          `${p.contextFrames} context frames (${p.contextLatentFrames} latent, ${p.promptTokens} prompt tokens) + ${p.latentFrames} generated latent frames ` +
            `-> ${r.video.frames} frames ${r.video.width}x${r.video.height} -> ${v.out}`,
        );
        console.log(`time encode ${r.encodeSeconds.toFixed(1)} s, generate ${r.generateSeconds.toFixed(1)} s, decode ${r.decodeSeconds.toFixed(1)} s`);
        console.log(`generated ${p.generateTokens} tokens at ${r.tokensPerSecond.toFixed(2)} tokens/s`);
        return 0;
      } finally {
        model.dispose();
      }
    } finally {
      tokenizer.dispose();
    }
  } catch (e) {
    if (isUserError(e) || e instanceof ArArgumentError || e instanceof ArConfigError) {
      console.error(`error: ${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
