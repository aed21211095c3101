// The page's stand-in for bench/harness.ts: the build redirects bench/kernel-cases.ts's import of
// the harness here (the Node harness writes files, parses argv and times with benchmark.js).
// Same timing contract: `measure` is the mean seconds per call over synced cycles of `reps`
// calls after a warm-up call; `gpuSeconds` the timestamp-query kernel time.
import type { Backend } from '../src/browser.js';
import type { Tensor } from '../src/engine/tensor.js';

export type { BenchRow } from '../bench/harness.js';

function free(x: unknown): void {
  if (Array.isArray(x)) for (const t of x) free(t);
  else (x as Tensor | undefined)?.dispose?.();
}

export async function measure(be: Backend, fn: () => Tensor | Tensor[], reps: number, quick: boolean): Promise<number> {
  free(fn());
  await be.sync();
  const minSamples = quick ? 2 : 5;
  const maxTime = (quick ? 0.5 : 2) * 1000;
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minSamples || (performance.now() - start < maxTime && times.length < 100)) {
    const t0 = performance.now();
    const outs: (Tensor | Tensor[])[] = [];
    for (let i = 0; i < reps; i++) outs.push(fn());
    await be.sync();
    times.push((performance.now() - t0) / 1000);
    free(outs);
  }
  return times.reduce((a, b) => a + b, 0) / times.length / reps;
}

export async function gpuSeconds(be: Backend, fn: () => unknown, reps: number): Promise<number | null> {
  if (!be.timeKernels || reps < 1) return null;
  free(fn());
  await be.sync();
  const { result, ns } = await be.timeKernels(() => {
    const outs: unknown[] = [];
    for (let r = 0; r < reps; r++) outs.push(fn());
    return outs;
  });
  free(result);
  return ns === null ? null : ns / reps / 1e9;
}

export { naiveMatmulGflops } from '../bench/naive-matmul.js';
