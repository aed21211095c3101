// The tokens file of `cosmos-ts tokenize` (format cosmos-ts.tokens.v1): a safetensors file with
// `latent` (CV, f32) or `indices` (DV, i32) and `codes` (DV, f32), and metadata recording the
// model, the input, its size as given and as padded, and its frame rate.
import { UserError } from '../engine/errors.js';
import { requireFiniteValues } from '../engine/finite.js';
import type { FileSystem } from '../io/files.js';
import { checkByteLimit, checkFrameLimits, type InputLimits } from '../io/limits.js';
import { type LoadedTensor, type TensorToWrite, openSafetensors, writeSafetensors } from '../io/safetensors.js';
import { type Rational, parseFps } from '../io/video.js';
import type { HostArray, HostTokens, TokenArrays, TokenGeometry, Tokens } from './tokenizer.js';

export const TOKENS_FORMAT = 'cosmos-ts.tokens.v1';

/** A tokens file that does not hold what `tokenize` writes. */
export class TokensFileError extends UserError {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** What a tokens file records besides the arrays. */
export interface TokensSource {
  /** the tokenizer folder */
  model: string;
  /** the clip that was encoded */
  input: string;
}

export function tokensMetadata(t: TokenGeometry & { kind: 'CV' | 'DV' }, source: TokensSource): Record<string, string> {
  const m: Record<string, string> = {
    format: TOKENS_FORMAT,
    model: source.model,
    kind: t.kind,
    input: source.input,
    frames: String(t.frames),
    height: String(t.height),
    width: String(t.width),
    padded_frames: String(t.paddedFrames),
    padded_height: String(t.paddedHeight),
    padded_width: String(t.paddedWidth),
  };
  if (t.fps) m.fps = `${t.fps.num}/${t.fps.den}`;
  return m;
}

/** Write tokens (read from the device first when given as Tokens) with their metadata, atomically. */
export async function writeTokens(path: string, tokens: HostTokens | Tokens, source: TokensSource, fs?: FileSystem): Promise<void> {
  const t = 'tensors' in tokens ? await tokens.read() : tokens;
  const tensors: Record<string, TensorToWrite> = {};
  if (t.latent) tensors.latent = { dtype: 'f32', shape: t.latent.shape, raw: t.latent.data };
  if (t.indices) tensors.indices = { dtype: 'i32', shape: t.indices.shape, raw: t.indices.data };
  if (t.codes) tensors.codes = { dtype: 'f32', shape: t.codes.shape, raw: t.codes.data };
  await writeSafetensors(path, tensors, tokensMetadata(t, source), fs);
}

export interface TokensFile {
  /** the arrays, and the kind, size and frame rate the metadata records (each when present) */
  tokens: TokenArrays & Partial<TokenGeometry> & { kind?: 'CV' | 'DV' };
  /** the tokenizer folder the metadata records */
  model?: string;
  input?: string;
  metadata: Readonly<Record<string, string>>;
}

/** The arrays' bytes and the recorded (padded) clip size against the limits. */
function checkTokensHeader(
  path: string, meta: Readonly<Record<string, string>>, info: (name: string) => { shape: readonly number[]; byteLength: number } | undefined, limits?: InputLimits,
): void {
  for (const name of ['latent', 'indices', 'codes']) {
    const t = info(name);
    if (t) checkByteLimit(`${path}: tensor ${name}`, `[${t.shape.join(', ')}]`, t.byteLength, limits);
  }
  const frames = positive(meta.padded_frames) ?? positive(meta.frames);
  const height = positive(meta.padded_height) ?? positive(meta.height);
  const width = positive(meta.padded_width) ?? positive(meta.width);
  // the decode holds the whole clip it records
  if (frames !== undefined && height !== undefined && width !== undefined) checkFrameLimits(`${path}: metadata`, width, height, frames, limits);
}

function positive(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

export interface ReadTokensOptions {
  /** what the header may claim (default DEFAULT_LIMITS): the arrays' bytes and the recorded clip size */
  limits?: InputLimits;
}

/**
 * Read a tokens file: its arrays and what its metadata records. The header (the arrays' shapes and
 * the recorded clip size, which the decode will produce) is checked against the limits before any
 * array is read.
 */
export async function readTokens(path: string, fs?: FileSystem, options: ReadTokensOptions = {}): Promise<TokensFile> {
  const file = await openSafetensors(path, fs);
  try {
    checkTokensHeader(path, file.metadata, (name) => (file.has(name) ? file.info(name) : undefined), options.limits);
    const get = async <A extends Float32Array | Int32Array>(name: string, dtype: 'f32' | 'i32'): Promise<HostArray<A> | undefined> => {
      if (!file.has(name)) return undefined;
      const t: LoadedTensor = await file.read(name);
      if (t.dtype !== dtype) throw new TokensFileError(path, `${name} is ${t.dtype}; expected ${dtype}`);
      if (dtype === 'f32') requireFiniteValues(t.raw as Float32Array, path, `tensor ${name}`);
      return { data: t.raw as A, shape: [...t.shape] };
    };
    const meta = file.metadata;
    const tokens: TokensFile['tokens'] = {};
    const latent = await get<Float32Array>('latent', 'f32');
    const indices = await get<Int32Array>('indices', 'i32');
    const codes = await get<Float32Array>('codes', 'f32');
    if (latent) tokens.latent = latent;
    if (indices) tokens.indices = indices;
    if (codes) tokens.codes = codes;
    if (!latent && !indices && !codes) {
      throw new TokensFileError(path, "no `latent`, `indices` or `codes` tensor; expected a file written by 'cosmos-ts tokenize'");
    }
    if (meta.kind === 'CV' || meta.kind === 'DV') tokens.kind = meta.kind;
    const sizes = {
      frames: positive(meta.frames), height: positive(meta.height), width: positive(meta.width),
      paddedFrames: positive(meta.padded_frames), paddedHeight: positive(meta.padded_height), paddedWidth: positive(meta.padded_width),
    };
    for (const [k, v] of Object.entries(sizes)) if (v !== undefined) tokens[k as keyof typeof sizes] = v;
    const fps: Rational | undefined = meta.fps ? parseFps(meta.fps) : undefined;
    if (fps) tokens.fps = fps;
    return { tokens, ...(meta.model ? { model: meta.model } : {}), ...(meta.input ? { input: meta.input } : {}), metadata: meta };
  } finally {
    await file.close();
  }
}
