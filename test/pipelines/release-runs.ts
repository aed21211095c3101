// What the release-skeleton run tests share: the skeleton folders and a scratch folder for the
// duration of a test file, prompt embeddings of a release's text width, and the checks they make.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll } from 'vitest';
import { writeSafetensors } from '../../src/io/safetensors.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { releaseSkeletons, removeSkeletons } from '../releases/skeletons.js';

/** Build the skeletons before the file's tests and remove them after; `release(name)` is a release folder, `scratch()` a temp folder. */
export function useReleases(): { release: (name: string) => string; scratch: () => string } {
  let rel = '';
  let tmp = '';
  beforeAll(async () => {
    rel = await releaseSkeletons();
    tmp = mkdtempSync(join(tmpdir(), 'cosmos-release-runs-'));
  }, 120_000);
  afterAll(async () => {
    rmSync(tmp, { recursive: true, force: true });
    await removeSkeletons();
  });
  return { release: (name) => join(rel, name), scratch: () => tmp };
}

/** prompt_embeds and negative_prompt_embeds [1, 4, width] of small random values, written in `dir`. */
export async function embeddingsFile(dir: string, width: number): Promise<string> {
  const rng = seedrandom(`emb${width}`);
  const t = () => ({ dtype: 'f32' as const, shape: [1, 4, width], raw: Float32Array.from({ length: 4 * width }, () => rng() - 0.5) });
  const path = join(dir, `emb${width}.safetensors`);
  await writeSafetensors(path, { prompt_embeds: t(), negative_prompt_embeds: t() });
  return path;
}

/** The stages seen, with the last `done` of each. */
export function stages(events: ProgressEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) out[e.stage] = e.done;
  return out;
}

export const finite = (a: Float32Array) => a.every(Number.isFinite);
