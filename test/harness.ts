// Shared by the tests: the two backends, seeded random data (from bench/harness.ts, shared with
// the benches), and the closeness check. The WebGPU backend is required: if no adapter can be
// had the tests fail (never skip), as CI must prove every kernel on the software adapter.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { expect } from 'vitest';
import { type CaseResult, runCase } from '../src/conform/runner.js';
import type { Backend } from '../src/engine/backend.js';
import { CpuBackend, cpu } from '../src/engine/cpu/backend.js';
import type { DType } from '../src/engine/dtype.js';
import * as F from '../src/engine/ops.js';
import { webgpuBackend, webgpuOptionsFromEnv } from '../src/engine/select.js';
import type { Tensor } from '../src/engine/tensor.js';
import { type WebGpuBackend, webgpu as webgpuDevice } from '../src/engine/webgpu/backend.js';

export { randomInts, randomTensor, randomValues } from '../bench/harness.js';

export { cpu };

/** A fresh CPU backend and the bytes of its live storages (memory tests). */
export function countingCpu(): { backend: CpuBackend; liveBytes: () => number } {
  const backend = new CpuBackend();
  return { backend, liveBytes: () => backend.memory().liveBytes };
}

/** The WebGPU backend as the library selects it (COSMOS_WEBGPU_BACKEND / COSMOS_DAWN_* pick the device, as for the CLI). */
export const webgpu = (): Promise<Backend> => webgpuBackend(webgpuOptionsFromEnv(process.env));

/** The same backend as its class, for the kernel tests that tune its dispatch. */
export const gpu = (): Promise<WebGpuBackend> => webgpuDevice(webgpuOptionsFromEnv(process.env));

/** The same data as a tensor on each backend. */
export function pair(backend: Backend, values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): [Tensor, Tensor] {
  return [F.fromArray(cpu, values, shape, dtype), F.fromArray(backend, values, shape, dtype)];
}

export interface Tol {
  atol: number;
  rtol: number;
}

/** |got - want| <= atol + rtol |want| elementwise, NaN matching NaN, ±inf matching exactly. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol, label = ''): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) { worst = i; worstErr = Infinity; break; }
      continue;
    }
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (g !== w) { worst = i; worstErr = Infinity; break; }
      continue;
    }
    const err = Math.abs(g - w) - (tol.atol + tol.rtol * Math.abs(w));
    if (err > worstErr) { worstErr = err; worst = i; }
  }
  if (worst >= 0) {
    expect.fail(`${label}: element ${worst} got ${got[worst]}, want ${want[worst]} (atol ${tol.atol}, rtol ${tol.rtol})`);
  }
}

/** Run the same op on the CPU oracle and on `backend`, compare the outputs. */
export async function checkAgainstCpu(
  backend: Backend,
  label: string,
  inputs: { values: ArrayLike<number>; shape: readonly number[]; dtype?: DType }[],
  op: (...xs: Tensor[]) => Tensor | Tensor[],
  tol: Tol,
): Promise<void> {
  const cpuIn = inputs.map((i) => F.fromArray(cpu, i.values, i.shape, i.dtype ?? 'f32'));
  const gpuIn = inputs.map((i) => F.fromArray(backend, i.values, i.shape, i.dtype ?? 'f32'));
  const want = [op(...cpuIn)].flat();
  const got = [op(...gpuIn)].flat();
  expect(got.length).toBe(want.length);
  for (let k = 0; k < want.length; k++) {
    expect(got[k].shape, `${label}: output ${k} shape`).toEqual(want[k].shape);
    expect(got[k].dtype, `${label}: output ${k} dtype`).toBe(want[k].dtype);
    assertClose(await got[k].read(), await want[k].read(), tol, `${label} output ${k}`);
  }
  for (const t of [...cpuIn, ...gpuIn, ...want, ...got]) t.dispose();
}

/** Awkward sizes: 1, odd, primes, just past tile multiples. */
export const awkwardDim = (max = 70): fc.Arbitrary<number> =>
  fc.oneof(fc.constantFrom(1, 2, 3, 5, 7, 16, 17, 31, 33, 63, 65).filter((d) => d <= max), fc.integer({ min: 1, max }));

export const shapeArb = (minRank: number, maxRank: number, maxDim = 9): fc.Arbitrary<number[]> =>
  fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });

/** fast-check settings for GPU properties: few runs (each compiles/dispatches), fixed seed in CI. */
export const gpuRuns = (numRuns = 25): fc.Parameters<unknown> => ({ numRuns, seed: process.env.CI ? 20261125 : undefined });

/**
 * Run a vendored case folder through the conformance runner on `backend` and expect it to pass:
 * no error, every compared output and tap within the case's tolerance, and every output and tap
 * that case.json lists actually compared.
 */
export async function expectCasePasses(dir: string, backend: Backend): Promise<CaseResult> {
  const r = await runCase(dir, backend);
  const name = `${basename(dir)} on ${backend.name}`;
  expect(r.error, name).toBeNull();
  expect(Object.keys(r.outputs).length, `${name}: outputs compared`).toBeGreaterThan(0);
  for (const [out, cmp] of Object.entries(r.outputs)) expect(cmp.pass, `${name} output ${out}: ${JSON.stringify(cmp)}`).toBe(true);
  for (const [tap, cmp] of Object.entries(r.taps)) expect(cmp.pass, `${name} tap ${tap}: ${JSON.stringify(cmp)}`).toBe(true);
  const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as { outputs?: object; taps?: object };
  if (json.outputs) expect(Object.keys(r.outputs).sort(), `${name}: outputs listed in case.json`).toEqual(Object.keys(json.outputs).sort());
  // some cases list their taps under the tensor names (`tap.<path>`), others under the paths
  if (json.taps) expect(Object.keys(r.taps).sort(), `${name}: taps listed in case.json`).toEqual(Object.keys(json.taps).map((k) => k.replace(/^tap\./, '')).sort());
  expect(r.pass, name).toBe(true);
  return r;
}
