// `cosmos-ts ar-video2world`: continue a clip with the autoregressive video decoder (the
// arVideo2World pipeline), written as .y4m or PNG frames.
import { openVideoSource, writeVideo } from '../io/open-video.js';
import { DEFAULT_FPS, fpsValue } from '../io/video.js';
import { FPS_FLAG, fpsFlag } from './clip-flags.js';
import { arVideo2World, readEmbeddings } from '../pipelines/ar-video2world.js';
import { planArVideo2World } from '../pipelines/plan/models.js';
import { PLAN_FLAG, planTarget, printPlan } from './plan.js';
import { BACKEND_FLAG, commandBackend, UsageError, defineCommand, commandProgress } from './command.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';
import { GUARDRAILS_FLAG, commandGuardrails } from './guardrail-flags.js';

/** Said after a run without the diffusion decoder. */
export const DV_DECODE_NOTE =
  'note: decoded by the DV tokenizer; the releases decode with the diffusion decoder, which adds sharpness (--decoder <Cosmos-1.0-Diffusion-7B-Decoder-DV8x16x16ToCV8x8x8> --cv-tokenizer <Cosmos-1.0-Tokenizer-CV8x8x8>)';

export const command = defineCommand({
  name: 'ar-video2world',
  summary: 'continue a clip with an autoregressive model (DV tokens, token by token)',
  description:
    "Continues a clip with a Cosmos autoregressive model: the last frames are tokenized by the\ndiscrete video tokenizer (DV), the rest of the model's token grid (video_latent_shape) is\ngenerated token by token, and all of it (context + generated) is decoded and written.\n" +
    'With --decoder and --cv-tokenizer the tokens are decoded as the releases do: the diffusion decoder\n(Cosmos-1.0-Diffusion-7B-Decoder-DV8x16x16ToCV8x8x8) samples CV8x8x8 latents from them, which the\nCV8x8x8 tokenizer decodes into a sharper video; without them the DV tokenizer decodes them.',
  flags: {
    model: { type: 'string', required: true, path: 'input', placeholder: '<dir>', help: 'AR checkpoint folder: config.json (ModelConfig fields + training_type) and *.safetensors' },
    tokenizer: { type: 'string', required: true, path: 'input', placeholder: '<DV dir>', help: "DV tokenizer folder (its codebook must be the model's vocab_size, its latent grid of the clip the model's H x W)" },
    input: { type: 'string', requiredUnless: 'plan', path: 'input', placeholder: '<clip.y4m | PNG folder | image.png>', help: 'the clip; its frames must be (grid H x W) times the spatial compression' },
    out: { type: 'string', requiredUnless: 'plan', path: 'output', placeholder: '<out.y4m | folder>', help: 'a .y4m file, or else a folder of PNG frames' },
    frames: { type: 'integer', min: 1, placeholder: 'N', help: "context frames taken from the end of the clip, 1 + k * temporal compression (default 1 + tc, upstream's 9, when the clip has them; else 1)" },
    temperature: { type: 'number', min: 0, placeholder: 'T', help: 'sampling temperature; 0 = greedy (default 1.0)' },
    'top-p': { type: 'number', min: 0, above: true, max: 1, placeholder: 'P', help: 'nucleus threshold (default 0.8)' },
    seed: { type: 'integer', min: 0, placeholder: 'S', help: 'seed of the sampling draws (default 0)' },
    embeddings: { type: 'string', path: 'input', placeholder: '<t5.safetensors>', help: 'T5 text embeddings [Lc, context_dim] (one tensor, or one named context / embeddings): required by the Video2World (cross-attention) models' },
    decoder: { type: 'string', path: 'input', placeholder: '<dir>', help: 'the diffusion decoder (Cosmos-1.0-Diffusion-7B-Decoder-DV8x16x16ToCV8x8x8: model.pt + aux_vars.pt, or config.json + model.safetensors), with --cv-tokenizer: decodes the tokens into a sharper video than the DV decode' },
    'cv-tokenizer': { type: 'string', path: 'input', placeholder: '<CV dir>', help: 'the CV8x8x8 tokenizer folder (with its mean_std.pt) that decodes the diffusion decoder\'s latents; with --decoder' },
    'decoder-steps': { type: 'integer', min: 1, placeholder: 'N', help: "the diffusion decoder's sampler steps (default 15)" },
    'decoder-guidance': { type: 'number', placeholder: 'G', help: "the diffusion decoder's classifier-free guidance (default 1.8)" },
    backend: BACKEND_FLAG,
    fps: { ...FPS_FLAG, help: 'frame rate for PNG input (default 24)' },
    plan: PLAN_FLAG,
    json: { type: 'boolean', needs: 'plan', help: 'with --plan: print the plan as one JSON object' },
    guardrails: { ...GUARDRAILS_FLAG, help: 'the Cosmos-1.0-Guardrail folder: the generated clip is checked (video_content_safety_filter/) and its faces blurred (face_blur_filter/) before it is written; a refusal exits 3' },
    ...LIMIT_FLAGS,
  },
  async run(flags, _positionals, ctx) {
    const decoder = flags.decoder;
    const cvTokenizer = flags['cv-tokenizer'];
    if ((decoder === undefined) !== (cvTokenizer === undefined)) {
      throw new UsageError(
        decoder === undefined
          ? '--cv-tokenizer: decodes the diffusion decoder\'s latents; give the decoder too (--decoder <dir>)'
          : '--decoder: samples CV8x8x8 latents; give the CV tokenizer that decodes them too (--cv-tokenizer <dir>)',
      );
    }
    for (const f of ['decoder-steps', 'decoder-guidance'] as const) {
      if (flags[f] !== undefined && decoder === undefined) throw new UsageError(`--${f}: only means something with --decoder and --cv-tokenizer`);
    }
    const decoderSettings = { decoderSteps: flags['decoder-steps'], decoderGuidance: flags['decoder-guidance'] };
    if (flags.plan) {
      const p = await planArVideo2World({
        model: flags.model, tokenizer: flags.tokenizer, target: await planTarget(flags.backend, ctx), contextFrames: flags.frames,
        embeddings: flags.embeddings, temperature: flags.temperature, topP: flags['top-p'], decoder, cvTokenizer, ...decoderSettings,
      });
      const g = p.plan;
      const decode = g.decode === 'dv' ? 'the DV decode' : `the diffusion decoder (${g.decoderChunks.length} window(s) of 8 latent frames) and the CV decode`;
      const what = `grid [${g.grid.join(', ')}], ${g.contextFrames} context frames, ${g.promptTokens} prompt + ${g.generateTokens} generated tokens, ${decode}`;
      printPlan(ctx, flags.json, {
        command: 'ar-video2world', model: flags.model, tokenizer: flags.tokenizer, grid: g.grid, context_frames: g.contextFrames, prompt_tokens: g.promptTokens,
        generate_tokens: g.generateTokens, decode: g.decode, ...(g.decode === 'dv' ? {} : { decoder, cv_tokenizer: cvTokenizer, decoder_chunks: g.decoderChunks.length }),
      }, what, p);
      return;
    }
    if (flags.input === undefined || flags.out === undefined) throw new UsageError(`${[flags.input === undefined ? '--input' : '', flags.out === undefined ? '--out' : ''].filter(Boolean).join(', ')}: missing (required unless --plan)`);
    const { input, out } = flags;
    const fps = fpsFlag(flags.fps);
    // the clip's header first (streamed: the last frames are kept), then the embeddings, then the models
    const source = await openVideoSource(input, fps ?? DEFAULT_FPS, undefined, { limits: limitsOf(flags) });
    const bars = commandProgress(ctx);
    try {
      const embeddings = flags.embeddings === undefined ? null : await readEmbeddings(flags.embeddings);
      const backend = await commandBackend(flags.backend, ctx);
      const guardrails = await commandGuardrails(flags.guardrails, backend, ctx, false);
      ctx.err(`input ${input}: ${source.frameCount ?? '?'} frames, ${source.width}x${source.height}, ${source.fps ? +fpsValue(source.fps).toFixed(3) : '?'} fps`);
      const r = await arVideo2World({
        model: flags.model,
        tokenizer: flags.tokenizer,
        input: source,
        backend,
        contextFrames: flags.frames,
        temperature: flags.temperature,
        topP: flags['top-p'],
        seed: flags.seed,
        embeddings,
        guardrails,
        decoder,
        cvTokenizer,
        ...decoderSettings,
        onProgress: bars.onProgress,
        signal: ctx.signal,
      });
      bars.finish();
      const p = r.plan;
      await writeVideo(out, r.video, { fps: source.fps ?? DEFAULT_FPS });
      ctx.out(
        `${p.contextFrames} context frames (${p.contextLatentFrames} latent, ${p.promptTokens} prompt tokens) + ${p.latentFrames} generated latent frames ` +
          `-> ${r.video.frames} frames ${r.video.width}x${r.video.height} -> ${out}`,
      );
      const d = r.decoder;
      const decodeTime = d ? `decoder ${d.seconds.sample.toFixed(1)} s (${d.chunks.length} window(s) x ${d.steps} steps), cv decode ${d.seconds.decode.toFixed(1)} s` : `decode ${r.seconds.decode.toFixed(1)} s`;
      ctx.out(`time encode ${r.seconds.encode.toFixed(1)} s, generate ${r.seconds.generate.toFixed(1)} s, ${decodeTime} on ${backend.name}`);
      ctx.out(`generated ${p.generateTokens} tokens at ${r.tokensPerSecond.toFixed(2)} tokens/s`);
      if (r.decode === 'dv') ctx.err(DV_DECODE_NOTE);
    } finally {
      bars.finish();
      await source.close();
    }
  },
});
