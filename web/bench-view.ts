// The kernel bench on the page (filled in by the bench step).
import type { Backend } from '../src/browser.js';

export async function runBench(_backend: Backend): Promise<void> {
  throw new Error('bench: not built yet');
}
