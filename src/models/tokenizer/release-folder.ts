// A Cosmos Tokenizer release folder as NVIDIA ships it: TorchScript `encoder.jit`, `decoder.jit`,
// `autoencoder.jit` (any subset), and for Cosmos-1.0-Tokenizer-CV8x8x8 a `mean_std.pt`. Their
// config.json is no help (the 0.1 repos carry `{"architectures": ["CosmosTokenizer"],}`, not even
// JSON; the 1.0 repos none), so the architecture comes from the release name in the folder's path
// or from `release`, and is the published config of that code (released.ts). A config.json that
// does hold constructor kwargs (a tokenizer exported like the releases by someone else) is used.
// A folder converted to safetensors keeps working through the ordinary path.
//
// Which files serve which part: the encoder (tokenize) is encoder.jit, else autoencoder.jit; the
// decoder (detokenize) decoder.jit, else autoencoder.jit; both (roundtrip) autoencoder.jit, else
// the pair. Their keys are the Cosmos-Tokenizer layout with no prefix, so one module tree loads
// from either; a part loads only its own parameters.
import type { Backend } from '../../engine/backend.js';
import { type LoadOptions, type Module, type TensorSource, loadWeights } from '../../engine/module.js';
import { type FileSystem, fileSystem, readText } from '../../io/files.js';
import { basename, join } from '../../io/path.js';
import { type Checkpoint, openCheckpoint } from '../../io/safetensors.js';
import { widen } from '../../engine/dtype.js';
import type { Config, ModuleFamily } from '../load.js';
import { TokenizerConfigError } from './errors.js';
import { RELEASED_TOKENIZERS } from './released.js';

export type TokenizerPart = 'encoder' | 'decoder' | 'both';

const JIT_FILES = ['autoencoder.jit', 'encoder.jit', 'decoder.jit'] as const;

export interface TokenizerReleaseFiles {
  dir: string;
  /** the released code (e.g. 'CV8x8x8') the architecture came from */
  code: string;
  config: Config;
  /** the .jit files to read for `part` */
  files: string[];
  part: TokenizerPart;
  /** mean_std.pt when the release has one */
  meanStd: string | null;
}

/** The tokenizer code in a release name or path (`Cosmos-0.1-Tokenizer-CV4x8x8`, `...@rev`, `models--nvidia--...`), or a bare code. */
export function tokenizerCodeOf(nameOrPath: string): string | null {
  const m = /(?:^|[-_/\\ ])Tokenizer[- ]([CD][VI]\d+x\d+(?:x\d+)?)(?:$|[@/\\])/i.exec(nameOrPath) ?? /^([CD][VI]\d+x\d+(?:x\d+)?)$/i.exec(nameOrPath);
  if (!m) return null;
  const code = m[1].toUpperCase().replace(/X/g, 'x');
  return Object.hasOwn(RELEASED_TOKENIZERS, code) ? code : null;
}

/** Whether a folder holds TorchScript tokenizer files and no safetensors weights. */
export async function isJitTokenizerFolder(dir: string, fs: FileSystem = fileSystem()): Promise<boolean> {
  if ((await fs.stat(dir))?.kind !== 'directory') return false;
  const files = await fs.list(dir);
  return files.some((f) => f.endsWith('.jit')) && !files.some((f) => f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json'));
}

const KNOWN = () => Object.keys(RELEASED_TOKENIZERS).join(', ');

/**
 * The architecture of a TorchScript tokenizer folder: its config.json when that holds constructor
 * kwargs, else the published config of the release `release` or the folder's path names.
 */
export async function tokenizerReleaseConfig(dir: string, opts: { release?: string; fs?: FileSystem } = {}): Promise<{ code: string; config: Config }> {
  const fs = opts.fs ?? fileSystem();
  const files = await fs.list(dir);
  const own = opts.release === undefined && files.includes('config.json') ? await kwargsConfig(join(dir, 'config.json'), fs) : null;
  const code = opts.release !== undefined ? tokenizerCodeOf(opts.release) : own ? codeOfConfig(own) : tokenizerCodeOf(fs.resolve(dir));
  if (!code) {
    throw new TokenizerConfigError(
      '<release>',
      opts.release !== undefined
        ? `--release: ${JSON.stringify(opts.release)} names no released tokenizer (expected a name such as Cosmos-1.0-Tokenizer-CV8x8x8 or a code: ${KNOWN()})`
        : `${dir}: holds TorchScript files whose architecture cannot be read from them, and its name names no release; give --release NAME (e.g. Cosmos-1.0-Tokenizer-CV8x8x8; codes: ${KNOWN()})`,
    );
  }
  return { code, config: own ?? { ...RELEASED_TOKENIZERS[code].config } };
}

/** Resolve a TorchScript tokenizer release folder: its architecture and the files of `part`. */
export async function resolveTokenizerRelease(
  dir: string,
  opts: { part?: TokenizerPart; release?: string; fs?: FileSystem } = {},
): Promise<TokenizerReleaseFiles> {
  const fs = opts.fs ?? fileSystem();
  const part = opts.part ?? 'both';
  const files = await fs.list(dir);
  const { code, config } = await tokenizerReleaseConfig(dir, opts);
  const has = (f: string) => files.includes(f);
  const pick = (...choices: (string | string[])[]): string[] | null => {
    for (const c of choices) {
      const list = typeof c === 'string' ? [c] : c;
      if (list.every(has)) return list.map((f) => join(dir, f));
    }
    return null;
  };
  const chosen =
    part === 'encoder' ? pick('encoder.jit', 'autoencoder.jit') :
    part === 'decoder' ? pick('decoder.jit', 'autoencoder.jit') :
    pick('autoencoder.jit', ['encoder.jit', 'decoder.jit']);
  if (!chosen) {
    const need = part === 'encoder' ? 'encoder.jit or autoencoder.jit' : part === 'decoder' ? 'decoder.jit or autoencoder.jit' : 'autoencoder.jit, or encoder.jit and decoder.jit';
    const present = JIT_FILES.filter(has);
    throw new TokenizerConfigError('<path>', `${dir}: the ${part === 'both' ? 'encoder and decoder need' : `${part} needs`} ${need}; the folder has ${present.length ? present.join(', ') : 'no .jit file'}`);
  }
  return { dir, code, config, files: chosen, part, meanStd: has('mean_std.pt') ? join(dir, 'mean_std.pt') : null };
}

/**
 * config.json when it holds Cosmos-Tokenizer constructor kwargs (a folder someone wrote, e.g. a
 * re-trained tokenizer exported like the releases); null for the releases' placeholders (not
 * JSON, or `{"architectures": ["CosmosTokenizer"]}`).
 */
async function kwargsConfig(path: string, fs: FileSystem): Promise<Config | null> {
  let v: unknown;
  try {
    v = JSON.parse(await readText(path, fs));
  } catch {
    return null;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
  const c = v as Config;
  return typeof c.name === 'string' && /^[CD][VI]$/.test(c.name) && 'z_channels' in c ? c : null;
}

/** The code a kwargs config describes (CV4x8x8, DI16x16, ...), for names; not necessarily a released one. */
function codeOfConfig(c: Config): string {
  const [name, tc, sc] = [String(c.name), String(c.temporal_compression), String(c.spatial_compression)];
  return name.endsWith('V') ? `${name}${tc}x${sc}x${sc}` : `${name}${sc}x${sc}`;
}

/** Model keys of each part of a Cosmos-Tokenizer tree. */
export function partSelector(part: TokenizerPart): ((key: string) => boolean) | undefined {
  if (part === 'encoder') return (k) => k.startsWith('encoder.') || k.startsWith('quant_conv.');
  if (part === 'decoder') return (k) => k.startsWith('decoder.') || k.startsWith('post_quant_conv.');
  return undefined;
}

/** Several checkpoints with disjoint tensor names as one source. */
export function unionSource(ckpts: readonly Checkpoint[], label: string): TensorSource {
  const owner = new Map<string, Checkpoint>();
  for (const c of ckpts) {
    for (const n of c.names) {
      const other = owner.get(n);
      if (other) throw new TokenizerConfigError('<path>', `tensor ${n}: is in both ${basename(other.path)} and ${basename(c.path)}`);
      owner.set(n, c);
    }
  }
  return {
    names: [...owner.keys()],
    path: label,
    info: (n) => owner.get(n)!.info(n),
    read: (n) => owner.get(n)!.read(n),
  };
}

/** Build `family`'s model from the release's config and load the parameters of its part. */
export async function loadTokenizerRelease<M extends Module>(
  rel: TokenizerReleaseFiles,
  family: ModuleFamily<M>,
  backend: Backend,
  opts: { fs?: FileSystem; extra?: Partial<LoadOptions> } = {},
): Promise<M> {
  const ckpts: Checkpoint[] = [];
  try {
    for (const f of rel.files) ckpts.push(await openCheckpoint(f, opts.fs, { config: false }));
    const src = unionSource(ckpts, rel.files.length === 1 ? rel.files[0] : `${rel.dir} (${rel.files.map((f) => basename(f)).join(' + ')})`);
    const model = family.build(rel.config);
    try {
      await loadWeights(model, src, backend, {
        ...family.loadOptions?.(model, src),
        select: partSelector(rel.part),
        maxTensorBytes: backend.limits.maxBufferBytes,
        ...opts.extra,
      });
      return model;
    } catch (e) {
      model.dispose();
      throw e;
    }
  } finally {
    await Promise.all(ckpts.map((c) => c.close()));
  }
}

/** The two halves of a mean_std.pt (a tuple of two tensors: keys '0' and '1'), as numbers. */
export async function readMeanStd(path: string, fs?: FileSystem): Promise<{ mean: Float32Array; std: Float32Array }> {
  const ck = await openCheckpoint(path, fs, { config: false });
  try {
    if (!ck.has('0') || !ck.has('1') || ck.names.length !== 2) {
      throw new TokenizerConfigError('<path>', `${path}: expected a tuple of two tensors (mean, std), found ${ck.names.length} tensors (${ck.names.slice(0, 4).join(', ')})`);
    }
    const [m, s] = [await ck.read('0'), await ck.read('1')];
    const mean = widen(m.dtype, m.raw);
    const std = widen(s.dtype, s.raw);
    if (mean.length !== std.length || mean.length === 0) {
      throw new TokenizerConfigError('<path>', `${path}: mean has ${mean.length} values and std ${std.length}; expected two equal, non-empty lists`);
    }
    return { mean: Float32Array.from(mean), std: Float32Array.from(std) };
  } finally {
    await ck.close();
  }
}
