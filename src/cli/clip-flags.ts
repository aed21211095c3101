// What the commands that read or write clips share: the --fps / --chroma / --range flags, the
// tokenizer and clip descriptions they print, opening both, and progress bars on stderr.
import type { Backend } from '../engine/backend.js';
import type { InputLimits } from '../io/limits.js';
import { openVideoSource } from '../io/open-video.js';
import { checkMetricFrameSize } from '../metrics/quality.js';
import { DEFAULT_FPS, type FrameSource, type Rational, parseFps } from '../io/video.js';
import type { TokenizerPart } from '../models/tokenizer/release-folder.js';
import { type TokenizerPlan, planTokenizer } from '../pipelines/plan/models.js';
import { loadVideoTokenizer, type VideoModel } from '../pipelines/tokenizer.js';
import { type CommandContext, type NumberFlag, commandBackend, type StringFlag, UsageError } from './command.js';
import { PLAN_FLAG, planTarget, printPlan } from './plan.js';
import { clipSize } from '../pipelines/plan/inputs.js';

/** What is wrong with a frame-rate value, for a flag's `problem`. */
export function fpsProblem(v: string): string | null {
  return parseFps(v) ? null : `must be a positive number or n/d; got ${JSON.stringify(v)}`;
}

export const FPS_FLAG = { type: 'string', placeholder: 'F', help: 'frame rate: a number or n/d', problem: fpsProblem } as const satisfies StringFlag;
export const CHROMA_FLAG = { type: 'string', choices: ['444', '420'], default: '444', help: 'Y4M chroma subsampling of the output' } as const satisfies StringFlag;
export const RELEASE_FLAG = {
  type: 'string',
  placeholder: '<name>',
  help: 'the release of a TorchScript tokenizer folder whose name does not say it (e.g. Cosmos-1.0-Tokenizer-CV8x8x8, or CV8x8x8)',
} as const satisfies StringFlag;
export const RANGE_FLAG = { type: 'string', choices: ['full', 'limited'], default: 'full', help: 'Y4M colour range of the output' } as const satisfies StringFlag;

/** --fps as a fraction (undefined when not given). */
export function fpsFlag(v: string | undefined, flag = '--fps'): Rational | undefined {
  if (v === undefined) return undefined;
  const r = parseFps(v);
  if (!r) throw new UsageError(`${flag}: must be a positive number or n/d; got ${JSON.stringify(v)}`);
  return r;
}

export function fpsText(r: Rational | undefined): string {
  if (!r) return '?';
  const v = r.num / r.den;
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

export function describeTokenizer(m: VideoModel): string {
  return `${m.kind} (${m.temporalCompression}x temporal, ${m.spatialCompression}x${m.spatialCompression} spatial)`;
}


/**
 * The input clip, the backend and the video tokenizer of a command that encodes (--backend,
 * --model, --input, --fps for PNG input), described on stderr. The clip is opened first: a bad
 * header, a clip past the limits (`whole`: the command holds every frame) or, with `metrics`,
 * frames too small for PSNR / SSIM are refused before any model loads. The caller closes the
 * source and disposes the model.
 */
export async function openModelAndClip(
  f: { model: string; input: string; backend: string; fps?: string; release?: string; chunk?: number },
  ctx: CommandContext,
  part: TokenizerPart,
  o: { limits?: InputLimits; whole?: boolean; metrics?: boolean } = {},
): Promise<{ backend: Backend; model: VideoModel; source: FrameSource }> {
  const fps = fpsFlag(f.fps);
  const source = await openVideoSource(f.input, fps ?? DEFAULT_FPS, undefined, { limits: o.limits, whole: o.whole });
  try {
    if (o.metrics) checkMetricFrameSize(f.input, source.width, source.height);
    const backend = await commandBackend(f.backend, ctx);
    const model = await loadVideoTokenizer(f.model, backend, { part, release: f.release });
    ctx.err(`model ${f.model} ${describeTokenizer(model)} on ${backend.name}`);
    // the pipeline would refuse it too, but under its option's name (chunkFrames), after the first encode step
    const tc = model.temporalCompression;
    if (f.chunk !== undefined && f.chunk % tc !== 0) {
      model.dispose();
      throw new UsageError(`--chunk: must be a multiple of the model's temporal compression ${tc}; got ${f.chunk}`);
    }
    const assumed = source.fpsAssumed && source.kind === 'y4m' && fps === undefined ? ' (assumed: the header has no F tag)' : '';
    ctx.err(`input ${f.input}: ${source.frameCount ?? '?'} frames, ${source.width}x${source.height}, ${fpsText(source.fps)} fps${assumed}`);
    return { backend, model, source };
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** The size a tokenizer --plan runs at where no --input says (Cosmos' 121 frames of 704 x 1280). */
const PLAN_CLIP = { frames: 121, height: 704, width: 1280 };

const sizeFlag = (what: string, d: number): NumberFlag => ({ type: 'integer', min: 1, needs: 'plan', help: `with --plan: ${what} planned (default: --input's, else ${d})` });

/** --plan and the clip size it plans (tokenize, roundtrip). */
export const TOKENIZER_PLAN_FLAGS = {
  plan: PLAN_FLAG,
  frames: sizeFlag('frames', PLAN_CLIP.frames),
  height: sizeFlag('height', PLAN_CLIP.height),
  width: sizeFlag('width', PLAN_CLIP.width),
} as const;

/** --plan of tokenize (encode) and roundtrip (encode + decode): the tokenizer on zeros of the clip's size. */
export async function planTokenizerCommand(
  command: 'tokenize' | 'roundtrip', f: { model: string; release?: string; input?: string; backend: string; chunk?: number; frames?: number; height?: number; width?: number; json?: boolean },
  ctx: CommandContext,
  limits?: InputLimits,
): Promise<void> {
  const given = f.input === undefined ? null : await clipSize(f.input, undefined, limits);
  const size = {
    frames: f.frames ?? given?.frames ?? PLAN_CLIP.frames, height: f.height ?? given?.height ?? PLAN_CLIP.height, width: f.width ?? given?.width ?? PLAN_CLIP.width,
  };
  const p: TokenizerPlan = await planTokenizer({ model: f.model, release: f.release, target: await planTarget(f.backend, ctx), ...size, chunk: f.chunk, decode: command === 'roundtrip' });
  const what = `${size.frames} frames ${size.width}x${size.height} -> ${p.kind} tokens [${p.tokenShape.join(', ')}]`;
  printPlan(ctx, f.json ?? false, { command, model: f.model, ...size, kind: p.kind, token_shape: p.tokenShape }, what, p);
}
