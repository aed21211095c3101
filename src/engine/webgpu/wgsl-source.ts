// WGSL sources live in wgsl/ at the package root. In node they are read from disk once; a
// browser build registers them up front (e.g. from a bundler's raw-text import).
import { readFileSync } from 'node:fs';

const sources = new Map<string, string>();

export function registerWgsl(file: string, code: string): void {
  sources.set(file, code);
}

export function loadWgsl(file: string): string {
  let code = sources.get(file);
  if (code === undefined) {
    // COSMOS_WGSL_DIR serves bundled builds whose module URL is not inside the package.
    const dir = process.env.COSMOS_WGSL_DIR;
    code = readFileSync(dir ? `${dir}/${file}` : new URL(`../../../wgsl/${file}`, import.meta.url), 'utf8');
    sources.set(file, code);
  }
  return code;
}
