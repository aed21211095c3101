// `cosmos-ts reason`: ask a Cosmos-Reason1 / Qwen2.5-VL model about an image or a video. The
// answer is streamed to stdout as it is generated; the model, inputs and speeds go to stderr.
import { CheckpointMismatchError } from '../engine/module.js';
import { BpeTokenizerError, ChatTemplateError } from '../text/errors.js';
import { VlmConfigError, VlmInputError } from '../models/vlm/language.js';
import { PreprocessError, SmartResizeError } from '../models/vlm/preprocess.js';
import { RopeIndexError } from '../models/vlm/rope-index.js';
import {
  loadReasonAssets, loadReasonModel, readImageFile, readVideoFile, reason, REASON_DEFAULTS, ReasonInputError, type SampledVideo,
} from '../pipelines/reason.js';
import { isUserError, parseCommandArgs, selectBackend, UsageError } from './tokenizer-common.js';

export const REASON_USAGE = `usage: cosmos-ts reason --model <dir> (--image <img.png> | --video <clip.y4m | PNG folder>)... --prompt "..."
                       [--system "..."] [--fps F] [--max-new-tokens N] [--temperature T] [--top-p P]
                       [--top-k K] [--repetition-penalty R] [--seed S] [--min-pixels N] [--max-pixels N]
                       [--backend cpu|webgpu]

Answers a question about images / videos with a Cosmos-Reason1 (Qwen2.5-VL) model. The answer is
streamed to stdout as it is generated; prefill and decode speeds are printed to stderr at the end.
  --model               folder with config.json, model.safetensors (or shards + index), tokenizer.json,
                        chat_template.jinja (or tokenizer_config.json with chat_template) and
                        preprocessor_config.json (optional; Qwen2VLImageProcessor defaults without it)
  --image               a PNG image (repeatable)
  --video               a .y4m clip or a folder of numbered PNG frames (repeatable)
  --fps                 video sampling rate in frames per second (default ${REASON_DEFAULTS.fps}); the clip needs at
                        least 2 frames (temporal_patch_size)
  --prompt              the question
  --system              a system message (default: the template's "You are a helpful assistant.")
  --max-new-tokens      most tokens to generate (default ${REASON_DEFAULTS.maxNewTokens})
  --temperature         sampling temperature; 0 = greedy (default ${REASON_DEFAULTS.temperature})
  --top-p               nucleus threshold (default ${REASON_DEFAULTS.topP})
  --top-k               keep the k most likely tokens (default 0 = all)
  --repetition-penalty  transformers' repetition penalty (default ${REASON_DEFAULTS.repetitionPenalty}; 1 = none)
  --seed                seed of the sampling draws (default 0)
  --min-pixels, --max-pixels
                        override the processor's pixel limits per image / frame
  --backend             cpu or webgpu (default webgpu; falls back to cpu when there is no adapter)
Generation stops at <|im_end|>, <|endoftext|>, or the eos ids of config.json / generation_config.json.`;

function num(name: string, s: string | undefined, check: (x: number) => boolean, what: string): number | undefined {
  if (s === undefined) return undefined;
  const x = Number(s);
  if (s.trim() === '' || !Number.isFinite(x) || !check(x)) throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(s)}`);
  return x;
}

const rate = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : 'n/a');

export async function reasonCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(REASON_USAGE);
    return 0;
  }
  const v = parseCommandArgs(
    args,
    {
      model: { type: 'string' },
      image: { type: 'string', multiple: true },
      video: { type: 'string', multiple: true },
      fps: { type: 'string' },
      prompt: { type: 'string' },
      system: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      seed: { type: 'string' },
      'min-pixels': { type: 'string' },
      'max-pixels': { type: 'string' },
      backend: { type: 'string' },
    },
    REASON_USAGE,
  );
  if (!v) return 2;
  const missing = (['model', 'prompt'] as const).filter((k) => v[k] === undefined);
  if (missing.length) {
    console.error(`error: missing ${missing.map((k) => `--${k}`).join(', ')}`);
    console.error(REASON_USAGE);
    return 2;
  }
  try {
    const imagePaths = v.image ?? [];
    const videoPaths = v.video ?? [];
    const fps = num('fps', v.fps, (x) => x > 0, 'a positive number') ?? REASON_DEFAULTS.fps;
    if (v.fps !== undefined && videoPaths.length === 0) throw new UsageError('--fps is the video sampling rate; give it with --video');
    const maxNewTokens = num('max-new-tokens', v['max-new-tokens'], (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
    const temperature = num('temperature', v.temperature, (x) => x >= 0, 'a number >= 0');
    const topP = num('top-p', v['top-p'], (x) => x > 0 && x <= 1, 'a number in (0, 1]');
    const topK = num('top-k', v['top-k'], (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0');
    const repetitionPenalty = num('repetition-penalty', v['repetition-penalty'], (x) => x > 0, 'a positive number');
    const seed = num('seed', v.seed, (x) => Number.isInteger(x), 'an integer');
    const minPixels = num('min-pixels', v['min-pixels'], (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
    const maxPixels = num('max-pixels', v['max-pixels'], (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
    if (minPixels !== undefined && maxPixels !== undefined && minPixels > maxPixels) throw new UsageError('--min-pixels is larger than --max-pixels');
    if (v.backend !== undefined && v.backend !== 'cpu' && v.backend !== 'webgpu') {
      throw new UsageError(`--backend must be cpu or webgpu, got ${JSON.stringify(v.backend)}`);
    }

    // everything the user gave is checked before the weights are read
    const assets = await loadReasonAssets(v.model!);
    for (const n of assets.notes) console.error(`note: ${n}`);
    const tp = assets.imageProcessor.config.temporalPatchSize;
    const images = [];
    for (const p of imagePaths) {
      const img = await readImageFile(p);
      const [h, w] = sizeFor(assets, p, img.height, img.width, minPixels, maxPixels);
      console.error(`image ${p}: ${img.width}x${img.height} -> ${w}x${h}`);
      images.push(img);
    }
    const videos: SampledVideo[] = [];
    for (const p of videoPaths) {
      const sv = await readVideoFile(p, fps, tp);
      const [h, w] = sizeFor(assets, p, sv.video.height, sv.video.width, minPixels, maxPixels);
      console.error(
        `video ${p}: ${sv.totalFrames} frames ${sv.video.width}x${sv.video.height} at ${+sv.sourceFps.toFixed(3)} fps -> ` +
          `${sv.video.frames} frames at ${+sv.fps.toFixed(3)} fps, ${w}x${h}`,
      );
      videos.push(sv);
    }

    const backend = await selectBackend(v.backend);
    const tl = performance.now();
    const model = await loadReasonModel(assets, backend);
    try {
      const c = assets.config;
      console.error(
        `model ${v.model}: Qwen2.5-VL, text ${c.text.numHiddenLayers} layers x ${c.text.hiddenSize}, vision ${c.vision.depth} blocks x ${c.vision.hiddenSize}, ` +
          `${(model.parameterCount() / 1e6).toFixed(1)}M parameters on ${backend.name === 'cpu' ? 'cpu' : `webgpu (${backend.adapter})`}, loaded in ${((performance.now() - tl) / 1000).toFixed(1)} s`,
      );
      const r = await reason(model, assets, {
        prompt: v.prompt!,
        system: v.system,
        images,
        videos,
        maxNewTokens,
        temperature,
        topP,
        topK,
        repetitionPenalty,
        seed,
        minPixels,
        maxPixels,
        onText: (s) => {
          process.stdout.write(s);
        },
      });
      process.stdout.write('\n');
      const grids = [...r.imageGridThw, ...r.videoGridThw].map((g) => g.join('x')).join(', ');
      if (r.visionPatches) {
        console.error(
          `vision: ${r.visionPatches} patches (grid ${grids}) -> ${r.visionTokens} tokens in ${r.seconds.vision.toFixed(3)} s (${rate(r.visionTokensPerSecond)} tokens/s)`,
        );
      }
      console.error(`prefill: ${r.promptTokens} tokens in ${r.seconds.prefill.toFixed(3)} s (${rate(r.prefillTokensPerSecond)} tokens/s)`);
      console.error(
        `decode: ${r.tokens.length} tokens (${r.finishReason === 'stop' ? 'stopped at a stop token' : 'max new tokens reached'}) in ` +
          `${r.seconds.decode.toFixed(3)} s (${rate(r.decodeTokensPerSecond)} tokens/s)`,
      );
      return 0;
    } finally {
      model.dispose();
    }
  } catch (e) {
    if (
      isUserError(e) || e instanceof ReasonInputError || e instanceof VlmConfigError || e instanceof VlmInputError || e instanceof BpeTokenizerError ||
      e instanceof ChatTemplateError || e instanceof PreprocessError || e instanceof SmartResizeError || e instanceof RopeIndexError ||
      e instanceof CheckpointMismatchError
    ) {
      console.error(`error: ${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** The processed size of an input, or a clear error naming the file when it is too small / too thin. */
function sizeFor(assets: Awaited<ReturnType<typeof loadReasonAssets>>, path: string, h: number, w: number, minPixels?: number, maxPixels?: number): [number, number] {
  try {
    return assets.imageProcessor.targetSize(h, w, { minPixels, maxPixels });
  } catch (e) {
    if (e instanceof SmartResizeError) throw new ReasonInputError(`${path}: ${w}x${h} cannot be processed (${e.message})`);
    throw e;
  }
}
