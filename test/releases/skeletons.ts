// The release skeletons (test/releases/skeletons.py, vendored from ../shared/releases): real Cosmos
// release folders with every weight a sparse zero hole. Built once per test worker into a temporary
// folder; python3 (standard library only) is part of every machine this project runs on.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..', '..');
let built: Promise<string> | null = null;

/** The folder holding every skeleton release (Cosmos-Predict2-2B-Text2Image, ...). */
export function releaseSkeletons(): Promise<string> {
  built ??= (async () => {
    const out = await mkdtemp(join(tmpdir(), 'cosmos-releases-'));
    await promisify(execFile)('python3', [join(ROOT, 'test', 'releases', 'skeletons.py'), 'build', out], {
      cwd: ROOT, env: { ...process.env, FIXTURES: join(ROOT, 'test', 'fixtures') },
    });
    return out;
  })();
  return built;
}

export async function removeSkeletons(): Promise<void> {
  if (!built) return;
  const dir = await built;
  built = null;
  await rm(dir, { recursive: true, force: true });
}
