// Folders of a Hugging Face hub cache as `huggingface_hub` lays them out and the guardrail release
// ships them: `models--<owner>--<name>/snapshots/<revision>/` with `refs/main` naming the
// revision a download last resolved. Read through the FileSystem like any other input.
import { UserError } from '../engine/errors.js';
import { type FileSystem, fileSystem, readText } from './files.js';
import { join } from './path.js';

/** The cache folder name of a hub repository: `google/siglip-so400m-patch14-384` -> `models--google--siglip-so400m-patch14-384`. */
export function hfCacheFolderName(repo: string): string {
  return `models--${repo.replace('/', '--')}`;
}

/**
 * The snapshot a cache folder serves: the revision `refs/main` names, else its only snapshot.
 * With `needs`, only snapshots holding that file count (a half-downloaded revision does not).
 */
export async function hfCacheSnapshot(cacheDir: string, o: { needs?: string; fs?: FileSystem } = {}): Promise<string> {
  const fs = o.fs ?? fileSystem();
  const snaps = join(cacheDir, 'snapshots');
  if ((await fs.stat(snaps))?.kind !== 'directory') throw new UserError(`${snaps}: missing; expected the Hugging Face cache's snapshots/<revision>/ folder`);
  const usable = async (rev: string) =>
    (await fs.stat(join(snaps, rev)))?.kind === 'directory' && (o.needs === undefined || (await fs.stat(join(snaps, rev, o.needs)))?.kind === 'file');
  const ref = join(cacheDir, 'refs', 'main');
  if ((await fs.stat(ref))?.kind === 'file') {
    const rev = (await readText(ref, fs)).trim();
    if (await usable(rev)) return join(snaps, rev);
  }
  const revs: string[] = [];
  for (const r of (await fs.list(snaps)).sort()) if (await usable(r)) revs.push(r);
  if (revs.length === 1) return join(snaps, revs[0]);
  const holding = o.needs ? ` holding ${o.needs}` : '';
  throw new UserError(`${snaps}: ${revs.length ? `several snapshots${holding} (${revs.join(', ')}) and no refs/main naming one` : `no snapshot${holding}`}`);
}

/** The snapshot folder of `repo` in the cache at `root`, or null when the cache has no folder for it. */
export async function hfSnapshot(root: string, repo: string, o: { needs?: string; fs?: FileSystem } = {}): Promise<string | null> {
  const fs = o.fs ?? fileSystem();
  const dir = join(root, hfCacheFolderName(repo));
  if ((await fs.stat(dir))?.kind !== 'directory') return null;
  return hfCacheSnapshot(dir, o);
}
