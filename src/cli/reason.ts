// `cosmos-ts reason`: ask a Cosmos-Reason1 / Qwen2.5-VL model about images or videos (the
// reason pipeline). The answer is streamed to stdout as it is generated; the inputs, the model
// and the speeds go to stderr.
import { REASON_DEFAULTS, loadReasonAssets } from '../pipelines/reason-assets.js';
import { type SampledVideo, readImageFile, readVideoFile } from '../pipelines/reason-inputs.js';
import { planReason } from '../pipelines/plan/models.js';
import { loadReasonModel, processedSize, reason } from '../pipelines/reason.js';
import { PLAN_FLAG, planTarget, printPlan } from './plan.js';
import { BACKEND_FLAG, commandBackend, UsageError, defineCommand } from './command.js';
import { formatRate } from './progress.js';
import { probeVideo } from '../io/open-video.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';

const rate = (x: number) => formatRate(x, 'n/a');

export const command = defineCommand({
  name: 'reason',
  summary: 'answer a question about an image or a video with a Cosmos-Reason1 (Qwen2.5-VL) model, streamed',
  description: 'Answers a question about images / videos with a Cosmos-Reason1 (Qwen2.5-VL) model. The answer is\nstreamed to stdout as it is generated; prefill and decode speeds are printed to stderr at the end.\nGeneration stops at <|im_end|>, <|endoftext|>, or the eos ids of config.json / generation_config.json.',
  flags: {
    model: { type: 'string', required: true, path: 'input', placeholder: '<dir>', help: 'folder with config.json, *.safetensors (or shards + index), tokenizer.json, a chat template and preprocessor_config.json (optional)' },
    image: { type: 'string', multiple: true, path: 'input', placeholder: '<img.png>', help: 'a PNG image' },
    video: { type: 'string', multiple: true, path: 'input', placeholder: '<clip.y4m | PNG folder>', help: 'a .y4m clip or a folder of numbered PNG frames' },
    fps: { type: 'number', min: 0, above: true, placeholder: 'F', help: `video sampling rate in frames per second (default ${REASON_DEFAULTS.fps}); a clip needs at least 2 frames (temporal_patch_size)` },
    prompt: { type: 'string', requiredUnless: 'plan', placeholder: '"..."', help: 'the question' },
    system: { type: 'string', placeholder: '"..."', help: 'a system message (default: the template\'s "You are a helpful assistant.")' },
    'max-new-tokens': { type: 'integer', min: 1, help: `most tokens to generate (default ${REASON_DEFAULTS.maxNewTokens})` },
    temperature: { type: 'number', min: 0, placeholder: 'T', help: `sampling temperature; 0 = greedy (default ${REASON_DEFAULTS.temperature})` },
    'top-p': { type: 'number', min: 0, above: true, max: 1, placeholder: 'P', help: `nucleus threshold (default ${REASON_DEFAULTS.topP})` },
    'top-k': { type: 'integer', min: 0, placeholder: 'K', help: 'keep the k most likely tokens (default 0 = all)' },
    'repetition-penalty': { type: 'number', min: 0, above: true, placeholder: 'R', help: `transformers' repetition penalty (default ${REASON_DEFAULTS.repetitionPenalty}; 1 = none)` },
    seed: { type: 'integer', min: 0, placeholder: 'S', help: 'seed of the sampling draws (default 0)' },
    'min-pixels': { type: 'integer', min: 1, help: "override the processor's smallest pixel count per image / frame" },
    'max-pixels': { type: 'integer', min: 1, help: "override the processor's largest pixel count per image / frame" },
    backend: BACKEND_FLAG,
    plan: { ...PLAN_FLAG, help: `${PLAN_FLAG.help}; the images and videos given are planned at their processed size` },
    json: { type: 'boolean', needs: 'plan', help: 'with --plan: print the plan as one JSON object' },
    ...LIMIT_FLAGS,
  },
  async run(flags, _positionals, ctx) {
    if (flags.fps !== undefined && flags.video.length === 0) throw new UsageError('--fps: is the video sampling rate; give it with --video');
    const pixels = { minPixels: flags['min-pixels'], maxPixels: flags['max-pixels'] };
    if (pixels.minPixels !== undefined && pixels.maxPixels !== undefined && pixels.minPixels > pixels.maxPixels) {
      throw new UsageError(`--min-pixels: ${pixels.minPixels} is larger than --max-pixels ${pixels.maxPixels}`);
    }

    // everything the user gave is checked before the weights are read
    const limits = limitsOf(flags);
    // the images and the videos' headers before the model folder: a bad input is named first
    const read = [];
    for (const p of flags.image) read.push({ p, img: await readImageFile(p, undefined, { limits }) });
    for (const p of flags.video) await probeVideo(p, { limits });
    const assets = await loadReasonAssets(flags.model);
    for (const n of assets.notes) ctx.err(`note: ${n}`);
    const images = [];
    for (const { p, img } of read) {
      const [h, w] = processedSize(assets, `image ${p}`, img.height, img.width, pixels);
      ctx.err(`image ${p}: ${img.width}x${img.height} -> ${w}x${h}`);
      images.push(img);
    }
    const videos: SampledVideo[] = [];
    for (const p of flags.video) {
      const sv = await readVideoFile(p, flags.fps ?? REASON_DEFAULTS.fps, { frameFactor: assets.imageProcessor.config.temporalPatchSize, limits });
      const [h, w] = processedSize(assets, `video ${p}`, sv.video.height, sv.video.width, pixels);
      ctx.err(
        `video ${p}: ${sv.totalFrames} frames ${sv.video.width}x${sv.video.height} at ${+sv.sourceFps.toFixed(3)} fps -> ` +
          `${sv.video.frames} frames at ${+sv.fps.toFixed(3)} fps, ${w}x${h}`,
      );
      videos.push(sv);
    }

    if (flags.plan) {
      const p = await planReason({
        model: flags.model, target: await planTarget(flags.backend, ctx), prompt: flags.prompt, system: flags.system, images, videos,
        maxNewTokens: flags['max-new-tokens'], ...pixels,
      });
      const what = `${p.promptTokens} prompt tokens (${p.visionTokens} vision), ${flags['max-new-tokens'] ?? REASON_DEFAULTS.maxNewTokens} new tokens`;
      printPlan(ctx, flags.json, { command: 'reason', model: flags.model, prompt_tokens: p.promptTokens, vision_tokens: p.visionTokens }, what, p);
      return;
    }
    if (flags.prompt === undefined) throw new UsageError('--prompt: missing (required unless --plan)');
    const backend = await commandBackend(flags.backend, ctx);
    const tl = performance.now();
    const loaded = await loadReasonModel(assets, backend);
    try {
      const c = assets.config;
      ctx.err(
        `model ${flags.model}: Qwen2.5-VL, text ${c.text.numHiddenLayers} layers x ${c.text.hiddenSize}, vision ${c.vision.depth} blocks x ${c.vision.hiddenSize}, ` +
          `${(loaded.model.parameterCount() / 1e6).toFixed(1)}M parameters on ${backend.name === 'cpu' ? 'cpu' : `webgpu (${backend.adapter})`}, loaded in ${((performance.now() - tl) / 1000).toFixed(1)} s`,
      );
      const r = await reason({
        model: loaded,
        prompt: flags.prompt,
        system: flags.system,
        images,
        videos,
        maxNewTokens: flags['max-new-tokens'],
        temperature: flags.temperature,
        topP: flags['top-p'],
        topK: flags['top-k'],
        repetitionPenalty: flags['repetition-penalty'],
        seed: flags.seed,
        ...pixels,
        onText: (s) => ctx.write(s),
        signal: ctx.signal,
      });
      ctx.write('\n');
      const grids = [...r.imageGridThw, ...r.videoGridThw].map((g) => g.join('x')).join(', ');
      if (r.visionPatches) {
        ctx.err(`vision: ${r.visionPatches} patches (grid ${grids}) -> ${r.visionTokens} tokens in ${r.seconds.vision.toFixed(3)} s (${rate(r.visionTokensPerSecond)} tokens/s)`);
      }
      ctx.err(`prefill: ${r.promptTokens} tokens in ${r.seconds.prefill.toFixed(3)} s (${rate(r.prefillTokensPerSecond)} tokens/s)`);
      ctx.err(
        `decode: ${r.tokens.length} tokens (${r.finishReason === 'stop' ? 'stopped at a stop token' : 'max new tokens reached'}) in ` +
          `${r.seconds.decode.toFixed(3)} s (${rate(r.decodeTokensPerSecond)} tokens/s)`,
      );
    } finally {
      loaded.model.dispose();
    }
  },
});
