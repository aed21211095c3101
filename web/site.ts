// The site's own files (the vendored fixtures and weights the server mounts beside the page),
// read over HTTP range requests. HTTP cannot list folders, so the build's manifest lists them.
import { type FileSystem, setFileSystem, urlFileSystem } from '../src/browser.js';

export interface Manifest {
  /** the fixture folders the page's conformance runs, e.g. "fixtures/dit" */
  fixtures: string[];
  /** every file of the site the page may read, as paths below the page */
  files: string[];
}

export interface Site {
  fs: FileSystem;
  manifest: Manifest;
  base: string;
}

export async function openSite(): Promise<Site> {
  const base = new URL('.', location.href).href;
  const url = new URL('manifest.json', base).href;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}; serve the page with npm run web (it lists the site's files)`);
  const manifest = (await res.json()) as Manifest;
  const fs = urlFileSystem(base, { files: manifest.files });
  // library calls without an explicit fs read the site too
  setFileSystem(fs);
  return { fs, manifest, base };
}

/** The folders of the manifest holding a config.json and model.safetensors (the vendored tokenizers). */
export function tokenizerFolders(m: Manifest): string[] {
  return m.files.filter((f) => /^weights\/[^/]+\/model\.safetensors$/.test(f)).map((f) => f.slice(0, -'/model.safetensors'.length));
}

/** The sample clips (inputs, not the stored reconstructions). */
export function sampleClips(m: Manifest): string[] {
  return m.files.filter((f) => /^weights\/samples\/[^/]+\.y4m$/.test(f) && !/_rec_/.test(f));
}
