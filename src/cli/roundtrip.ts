// `cosmos-ts roundtrip`: encode a clip chunk by chunk, decode it, print PSNR and SSIM of the
// reconstruction against the input, and write the reconstruction.
import { promises as fsp } from 'node:fs';
import { contactSheet } from '../io/contact-sheet.js';
import { encodePng, writePngFrames } from '../io/png.js';
import { createVideoSink, openVideoSource } from '../io/open-video.js';
import { getFrame, parseFps, stackFrames, type Video } from '../io/video.js';
import { quality } from '../metrics/quality.js';
import {
  clampVideo, decodeTokens, bars, describeModel, encodeSource, fpsText, isUserError, loadVideoTokenizer, parseCommandArgs, selectBackend, UsageError,
} from './tokenizer-common.js';

export const ROUNDTRIP_USAGE = `usage: cosmos-ts roundtrip --model <dir> --input <clip.y4m | folder of PNG frames> --out <rec.y4m | folder>
                          [--png <dir>] [--sheet <sheet.png>] [--backend cpu|webgpu] [--chunk N]
                          [--chroma 444|420] [--range full|limited] [--fps F] [--json]

Encodes the clip with a causal video tokenizer (streaming, chunk by chunk), decodes it (DV via
the token ids), prints PSNR and SSIM of the reconstruction (clamped to [-1, 1]) against the
input, and writes the reconstruction.
  --out       a .y4m file, or else a folder of PNG frames
  --png       also write the reconstruction as PNG frames into this folder
  --sheet     also write a contact sheet (input row, reconstruction row, every 4th frame)
  --backend   cpu or webgpu (default webgpu; falls back to cpu when there is no adapter)
  --chunk     frames per streaming chunk after the first (default 4 x temporal compression)
  --chroma    Y4M chroma subsampling of the output (default 444)
  --range     Y4M colour range of the output (default full)
  --fps       frame rate for PNG input (default 24)
  --json      print the metrics as one JSON object`;

export async function roundtripCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(ROUNDTRIP_USAGE);
    return 0;
  }
  const v = parseCommandArgs(
    args,
    {
      model: { type: 'string' },
      input: { type: 'string' },
      out: { type: 'string' },
      png: { type: 'string' },
      sheet: { type: 'string' },
      backend: { type: 'string' },
      chunk: { type: 'string' },
      chroma: { type: 'string' },
      range: { type: 'string' },
      fps: { type: 'string' },
      json: { type: 'boolean' },
    },
    ROUNDTRIP_USAGE,
  );
  if (!v) return 2;
  const missing = (['model', 'input', 'out'] as const).filter((k) => v[k] === undefined);
  if (missing.length) {
    console.error(`error: missing ${missing.map((k) => `--${k}`).join(', ')}`);
    console.error(ROUNDTRIP_USAGE);
    return 2;
  }
  try {
    if (v.chroma !== undefined && v.chroma !== '444' && v.chroma !== '420') throw new UsageError(`--chroma must be 444 or 420, got ${JSON.stringify(v.chroma)}`);
    if (v.range !== undefined && v.range !== 'full' && v.range !== 'limited') throw new UsageError(`--range must be full or limited, got ${JSON.stringify(v.range)}`);
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
      const inputFrames: Float32Array[] = [];
      const tokens = await encodeSource(model, source, { chunkFrames: chunk, onProgress: progress.onProgress, onFrame: (f) => inputFrames.push(f) });
      progress.finish();
      const t1 = performance.now();
      const input: Video = stackFrames(inputFrames, source.height, source.width, source.fps);
      inputFrames.length = 0;
      const rec = clampVideo(await decodeTokens(model, tokens, [input.frames, input.height, input.width]));
      const t2 = performance.now();
      const q = quality(rec.data, input.data, [3, input.frames, input.height, input.width]);

      const outFps = source.fps ?? { num: 24, den: 1 };
      const sink = await createVideoSink(v.out!, {
        width: rec.width, height: rec.height, fps: outFps, chroma: v.chroma as '444' | '420' | undefined, range: v.range as 'full' | 'limited' | undefined,
      });
      try {
        for (let t = 0; t < rec.frames; t++) await sink.writeFrame(getFrame(rec, t));
        await sink.close();
      } catch (e) {
        await sink.abort();
        throw e;
      }
      if (v.png !== undefined) await writePngFrames(v.png, rec);
      if (v.sheet !== undefined) await fsp.writeFile(v.sheet, encodePng(contactSheet([input, rec], 4, ['input', model.kind])));

      const tokensText = tokens.kind === 'DV' ? `${tokens.indices!.data.length} tokens` : `latent [${tokens.latent!.shape.join(', ')}]`;
      if (v.json) {
        console.log(JSON.stringify({
          input: v.input, model: v.model, kind: model.kind, backend: backend.name, frames: input.frames, height: input.height, width: input.width,
          psnr: q.psnr, ssim: q.ssim, encode_s: (t1 - t0) / 1000, decode_s: (t2 - t1) / 1000, out: v.out,
        }));
      } else {
        console.log(`${input.frames} frames ${input.width}x${input.height} -> ${tokensText} -> ${v.out}`);
        console.log(`PSNR ${q.psnr.toFixed(4)} dB`);
        console.log(`SSIM ${q.ssim.toFixed(5)}`);
        console.log(`time encode ${((t1 - t0) / 1000).toFixed(1)} s, decode ${((t2 - t1) / 1000).toFixed(1)} s`);
      }
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
