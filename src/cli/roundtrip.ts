// `cosmos-ts roundtrip`: encode a clip chunk by chunk, decode it, print PSNR and SSIM of the
// reconstruction against the input, and write the reconstruction.
import { writeVideo } from '../io/open-video.js';
import { contactSheet } from '../io/contact-sheet.js';
import { writePng } from '../io/png.js';
import { writePngFrames } from '../io/png-frames.js';
import { DEFAULT_FPS } from '../io/video.js';
import { roundtrip } from '../pipelines/tokenizer.js';
import { CHROMA_FLAG, FPS_FLAG, RELEASE_FLAG, TOKENIZER_PLAN_FLAGS, openModelAndClip, planTokenizerCommand, RANGE_FLAG } from './clip-flags.js';
import { BACKEND_FLAG, UsageError, defineCommand, commandProgress } from './command.js';
import { LIMIT_FLAGS, limitsOf } from './limit-flags.js';

/** Contact sheets show every 4th frame. */
const SHEET_FRAME_STEP = 4;

export const command = defineCommand({
  name: 'roundtrip',
  summary: 'encode + decode a clip, print PSNR / SSIM, write the reconstruction',
  description: `Encodes the clip with a causal video tokenizer (streaming, chunk by chunk), decodes the tokens
where they are (DV via the token ids), prints PSNR and SSIM of the reconstruction (clamped to
[-1, 1]) against the input, and writes the reconstruction.`,
  flags: {
    model: { type: 'string', required: true, path: 'input', placeholder: '<dir>', help: 'tokenizer folder: a release as downloaded (TorchScript .jit files) or config.json + model.safetensors' },
    release: RELEASE_FLAG,
    input: { type: 'string', requiredUnless: 'plan', path: 'input', placeholder: '<clip.y4m | folder>', help: '.y4m file, folder of numbered PNG frames, or a single .png' },
    out: { type: 'string', requiredUnless: 'plan', path: 'output', placeholder: '<rec.y4m | folder>', help: 'a .y4m file, or else a folder of PNG frames' },
    png: { type: 'string', path: 'output', placeholder: '<dir>', help: 'also write the reconstruction as PNG frames into this folder' },
    sheet: { type: 'string', path: 'output', placeholder: '<sheet.png>', help: 'also write a contact sheet (input row, reconstruction row, every 4th frame)' },
    backend: BACKEND_FLAG,
    chunk: { type: 'integer', min: 1, help: 'frames per streaming chunk after the first (default 4 x temporal compression)' },
    chroma: CHROMA_FLAG,
    range: RANGE_FLAG,
    fps: { ...FPS_FLAG, help: 'frame rate for PNG input (default 24)' },
    json: { type: 'boolean', help: 'print the metrics (with --plan: the plan) as one JSON object' },
    ...TOKENIZER_PLAN_FLAGS,
    ...LIMIT_FLAGS,
  },
  async run(f, _positionals, ctx) {
    if (f.plan) return planTokenizerCommand('roundtrip', f, ctx, limitsOf(f));
    if (f.input === undefined || f.out === undefined) throw new UsageError(`${[f.input === undefined ? '--input' : '', f.out === undefined ? '--out' : ''].filter(Boolean).join(', ')}: missing (required unless --plan)`);
    const { input, out } = f;
    // the input and its reconstruction are held whole; PSNR / SSIM need frames of 11x11 or more
    const { backend, model, source } = await openModelAndClip({ ...f, input }, ctx, 'both', { limits: limitsOf(f), whole: true, metrics: true });
    try {
      let r: Awaited<ReturnType<typeof roundtrip>>;
      try {
        const progress = commandProgress(ctx);
        r = await roundtrip(model, source, { chunkFrames: f.chunk, onProgress: progress.onProgress, signal: ctx.signal });
        progress.finish();
      } finally {
        await source.close();
      }
      const { input, reconstruction: rec, tokens, quality: q, seconds } = r;
      const tokensText = tokens.kind === 'DV' ? `${tokens.shape.reduce((a, b) => a * b, 1)} tokens` : `latent [${tokens.shape.join(', ')}]`;
      tokens.dispose();

      await writeVideo(out, rec, { fps: source.fps ?? DEFAULT_FPS, chroma: f.chroma as '444' | '420', range: f.range as 'full' | 'limited' });
      if (f.png !== undefined) await writePngFrames(f.png, rec);
      if (f.sheet !== undefined) await writePng(f.sheet, contactSheet([input, rec], SHEET_FRAME_STEP, ['input', model.kind]));

      if (f.json) {
        ctx.out(JSON.stringify({
          input: f.input, model: f.model, kind: model.kind, backend: backend.name, frames: input.frames, height: input.height, width: input.width,
          psnr: q.psnr, ssim: q.ssim, encode_s: seconds.encode, decode_s: seconds.decode, out: out,
        }));
      } else {
        ctx.out(`${input.frames} frames ${input.width}x${input.height} -> ${tokensText} -> ${out}`);
        ctx.out(`PSNR ${q.psnr.toFixed(4)} dB`);
        ctx.out(`SSIM ${q.ssim.toFixed(5)}`);
        ctx.out(`time encode ${seconds.encode.toFixed(1)} s, decode ${seconds.decode.toFixed(1)} s`);
      }
    } finally {
      model.dispose();
    }
  },
});
