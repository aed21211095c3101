// The public NVIDIA Cosmos releases by their Hugging Face names: what each folder is, in which
// format it ships, and the architecture of the releases whose files do not say it themselves
// (TorchScript tokenizers whose config.json is a placeholder; autoregressive models whose
// config.json leaves out the video grid and the training type). A folder is matched to an entry
// by its name as downloaded (`huggingface-cli download nvidia/NAME --local-dir NAME`, a revision
// as `NAME@rev`, or the hub cache's `models--nvidia--NAME/snapshots/<hash>`), or by --release.
import { RELEASED_AR_MODELS, type ReleasedArModel } from '../models/ar/config.js';
import { RELEASED_TOKENIZERS } from '../models/tokenizer/released.js';

/** How a release stores its weights and configuration. */
export type ReleaseFormat = 'diffusers' | 'transformers' | 'cosmos-tokenizer' | 'cosmos-ar';

export interface CatalogEntry {
  /** the Hugging Face repository name under nvidia/ */
  name: string;
  format: ReleaseFormat;
  /** the cosmos-ts commands that run it */
  commands: readonly string[];
  /** a key of RELEASED_TOKENIZERS (cosmos-tokenizer releases) */
  tokenizer?: string;
  /** the released AR configuration (cosmos-ar releases) */
  ar?: ReleasedArModel;
}

const TOKENIZER_COMMANDS = ['tokenize', 'detokenize', 'roundtrip'] as const;

function tokenizerRelease(version: '0.1' | '1.0', code: string): CatalogEntry {
  const video = code.startsWith('CV') || code.startsWith('DV');
  return {
    name: `Cosmos-${version}-Tokenizer-${code}`,
    format: 'cosmos-tokenizer',
    // the workflows run the causal video tokenizers; image tokenizers load and inspect
    commands: video ? TOKENIZER_COMMANDS : ['inspect'],
    tokenizer: code,
  };
}

const AR_HUB_NAMES: Readonly<Record<ReleasedArModel, string>> = {
  'Cosmos-Predict1-4B': 'Cosmos-1.0-Autoregressive-4B',
  'Cosmos-Predict1-5B-Video2World': 'Cosmos-1.0-Autoregressive-5B-Video2World',
  'Cosmos-Predict1-12B': 'Cosmos-1.0-Autoregressive-12B',
  'Cosmos-Predict1-13B-Video2World': 'Cosmos-1.0-Autoregressive-13B-Video2World',
};

const world = (name: string, commands: readonly string[]): CatalogEntry => ({ name, format: 'diffusers', commands });

/** Every public Cosmos release cosmos-ts knows. */
export const RELEASE_CATALOG: readonly CatalogEntry[] = [
  ...['CV4x8x8', 'CV8x8x8', 'CV8x16x16', 'DV4x8x8', 'DV8x16x16', 'CI8x8', 'CI16x16', 'DI8x8', 'DI16x16'].map((c) => tokenizerRelease('0.1', c)),
  ...['CV8x8x8', 'DV8x16x16'].map((c) => tokenizerRelease('1.0', c)),
  world('Cosmos-1.0-Diffusion-7B-Text2World', ['text2world']),
  world('Cosmos-1.0-Diffusion-14B-Text2World', ['text2world']),
  world('Cosmos-1.0-Diffusion-7B-Video2World', ['video2world']),
  world('Cosmos-1.0-Diffusion-14B-Video2World', ['video2world']),
  world('Cosmos-Predict2-2B-Text2Image', ['text2world']),
  world('Cosmos-Predict2-14B-Text2Image', ['text2world']),
  world('Cosmos-Predict2-2B-Video2World', ['video2world']),
  world('Cosmos-Predict2-14B-Video2World', ['video2world']),
  world('Cosmos-Predict2.5-2B', ['text2world', 'video2world']),
  world('Cosmos-Predict2.5-14B', ['text2world', 'video2world']),
  world('Cosmos-Transfer2.5-2B', ['transfer']),
  { name: 'Cosmos-Reason1-7B', format: 'transformers', commands: ['reason'] },
  ...RELEASED_AR_MODELS.map((ar): CatalogEntry => ({ name: AR_HUB_NAMES[ar], format: 'cosmos-ar', commands: ['ar-video2world'], ar })),
];

/** The repository name inside a path as downloaded: a folder NAME or NAME@rev, or the hub cache's models--nvidia--NAME. */
export function releaseNameOf(path: string): string | null {
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  for (let i = parts.length - 1; i >= 0; i--) {
    const cached = /^models--nvidia--(.+)$/.exec(parts[i]);
    if (cached) return cached[1];
    // a snapshot folder of the hub cache is a 40-digit hash; look further up
    if (/^[0-9a-f]{40}$/.test(parts[i]) || parts[i] === 'snapshots') continue;
    return parts[i].split('@')[0];
  }
  return null;
}

/** The catalog entry of a release name (exact, then case-insensitive), or null. */
export function findRelease(name: string): CatalogEntry | null {
  const exact = RELEASE_CATALOG.find((e) => e.name === name);
  if (exact) return exact;
  const lower = name.toLowerCase();
  return RELEASE_CATALOG.find((e) => e.name.toLowerCase() === lower) ?? null;
}

/** The catalog entries of one format (for messages listing what --release accepts). */
export function releaseNames(format?: ReleaseFormat): string[] {
  return RELEASE_CATALOG.filter((e) => !format || e.format === format).map((e) => e.name);
}

/** A tokenizer code's published constructor config (tokenizer.md §2), or null. */
export function releasedTokenizerConfig(code: string): Record<string, unknown> | null {
  const t = Object.hasOwn(RELEASED_TOKENIZERS, code) ? RELEASED_TOKENIZERS[code] : null;
  return t ? { ...t.config } : null;
}
