// Choosing a backend: the one place that knows how. The WebGPU backend is imported only when it
// is asked for, so a CPU-only caller never loads Dawn.
import type { Backend, BackendName } from './backend.js';
import { UserError } from './errors.js';
import { PlanBackend, type PlanBackendOptions } from './plan/backend.js';
import type { TuningTable } from './tuning.js';

/** A device to run on; the plan backend measures rather than runs, so it is not a choice here. */
export type BackendChoice = Exclude<BackendName, 'plan'> | 'auto';

/** Native APIs Dawn can be asked for in Node (a browser's navigator.gpu picks its own). */
export type WebGpuApi = 'vulkan' | 'metal' | 'd3d12' | 'd3d11' | 'opengl' | 'opengles';

export const WEBGPU_APIS: readonly WebGpuApi[] = ['vulkan', 'metal', 'd3d12', 'd3d11', 'opengl', 'opengles'];

/** How the WebGPU device is acquired. Both fields only matter in Node (Dawn's 'webgpu' package). */
export interface WebGpuOptions {
  /**
   * One native API instead of the default search (the platform's default adapter, else OpenGL in
   * compatibility mode, which is Mesa llvmpipe on a machine without a GPU). OpenGL / OpenGL ES run
   * in compatibility mode.
   */
  api?: WebGpuApi;
  /**
   * A Vulkan ICD manifest (the .json naming a Vulkan driver) for the Vulkan loader to use alone,
   * e.g. Chromium's SwiftShader (/usr/lib/chromium/vk_swiftshader_icd.json): a core adapter with
   * subgroups and timestamp queries on a machine without a GPU. Implies api 'vulkan'.
   */
  icd?: string;
  /** Dawn toggles to enable / disable, e.g. { disable: ['lazy_clear_resource_on_first_use'] } */
  dawnToggles?: { enable?: readonly string[]; disable?: readonly string[] };
}

export interface SelectBackendOptions {
  /** 'cpu', 'webgpu', or 'auto' (the default): WebGPU when an adapter can be had, else the CPU */
  backend?: BackendChoice;
  /** told why 'auto' fell back to the CPU (the CLI prints it as a note) */
  onFallback?: (reason: string) => void;
  /** how the WebGPU device is acquired (see webgpuOptionsFromEnv for the environment variables) */
  webgpu?: WebGpuOptions;
}

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'webgpu', 'cpu'];

/** Where Debian's (and CI's) chromium package puts SwiftShader's Vulkan ICD manifest. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * WebGPU options from environment variables, for the Node entry points (CLI, benches, tests) to
 * pass `process.env`: COSMOS_WEBGPU_BACKEND = one of WEBGPU_APIS ('software' is an alias of
 * 'opengl'; 'swiftshader' is Vulkan on SwiftShader's ICD, COSMOS_VULKAN_ICD or SWIFTSHADER_ICD),
 * COSMOS_VULKAN_ICD = a Vulkan ICD manifest (implies vulkan), COSMOS_DAWN_ENABLE /
 * COSMOS_DAWN_DISABLE = comma-separated Dawn toggles.
 */
export function webgpuOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): WebGpuOptions {
  const out: WebGpuOptions = {};
  const name = env.COSMOS_WEBGPU_BACKEND;
  const api = name === 'software' ? 'opengl' : name === 'swiftshader' ? 'vulkan' : name;
  if (api) {
    if (!WEBGPU_APIS.includes(api as WebGpuApi)) {
      throw new UserError(`COSMOS_WEBGPU_BACKEND: must be one of ${WEBGPU_APIS.join(', ')}, software or swiftshader; got ${JSON.stringify(api)}`);
    }
    out.api = api as WebGpuApi;
  }
  const icd = env.COSMOS_VULKAN_ICD?.trim() || (name === 'swiftshader' ? SWIFTSHADER_ICD : '');
  if (icd) {
    if (out.api && out.api !== 'vulkan') {
      throw new UserError(`COSMOS_VULKAN_ICD: names a Vulkan driver, but COSMOS_WEBGPU_BACKEND asks for ${out.api}`);
    }
    out.api = 'vulkan';
    out.icd = icd;
  }
  const list = (v: string | undefined) => (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const enable = list(env.COSMOS_DAWN_ENABLE);
  const disable = list(env.COSMOS_DAWN_DISABLE);
  if (enable.length || disable.length) out.dawnToggles = { enable, disable };
  return out;
}

/**
 * A fresh shape-only backend: runs a model's code path allocating every tensor, computing nothing
 * (reads give zeros), so memory().peakBytes says what the workflow needs. `limits` emulate a
 * device (default: the CPU backend's).
 */
export function planBackend(opts: PlanBackendOptions = {}): PlanBackend {
  return new PlanBackend(opts);
}

export async function cpuBackend(): Promise<Backend> {
  return (await import('./cpu/backend.js')).cpu;
}

let processTuning: { table: TuningTable; onMismatch?: (message: string) => void } | null = null;
/** the process table last applied to each backend (so a later useTuning, even null, is applied once) */
const applied = new WeakMap<Backend, TuningTable | null>();

/**
 * A tuning table (src/engine/tuning.ts) for every WebGPU backend this process opens from now on
 * (null: back to the defaults). A table made on another adapter than the backend's is refused by
 * setTuning's UserError, or, with `onMismatch`, reported to it and the defaults kept: a stale
 * table costs speed, never correctness, so a caller may prefer to run on.
 */
export function useTuning(table: TuningTable | null, onMismatch?: (message: string) => void): void {
  processTuning = table && { table, onMismatch };
}

function applyTuning(be: Backend): void {
  if (!be.setTuning) return;
  const want = processTuning?.table ?? null;
  if (applied.get(be) === want || (want === null && !applied.has(be))) return;
  try {
    be.setTuning(want);
  } catch (e) {
    if (!processTuning?.onMismatch || !(e instanceof UserError)) throw e;
    processTuning.onMismatch(e.message);
    be.setTuning(null);
  }
  applied.set(be, want);
}

/** The process-wide WebGPU backend; rejects with NoAdapterError (a UserError) when none can be had. */
export async function webgpuBackend(options: WebGpuOptions = {}): Promise<Backend> {
  const be = await (await import('./webgpu/backend.js')).webgpu(options);
  applyTuning(be);
  return be;
}

export async function selectBackend(options: SelectBackendOptions = {}): Promise<Backend> {
  const choice = options.backend ?? 'auto';
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`backend: must be one of ${BACKEND_CHOICES.join(', ')}; got ${JSON.stringify(choice)}`);
  }
  if (choice === 'cpu') return cpuBackend();
  if (choice === 'webgpu') return webgpuBackend(options.webgpu);
  try {
    return await webgpuBackend(options.webgpu);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    options.onFallback?.(`no WebGPU adapter (${reason.length > 160 ? `${reason.slice(0, 157)}...` : reason}); using the cpu backend`);
    return cpuBackend();
  }
}

/** Every backend a choice names: 'all' is the CPU oracle and WebGPU (which must then be had). */
export async function selectBackends(
  choice: BackendChoice | 'all', onFallback?: (reason: string) => void, webgpu?: WebGpuOptions,
): Promise<Backend[]> {
  if (choice === 'all') return [await cpuBackend(), await webgpuBackend(webgpu)];
  return [await selectBackend({ backend: choice, onFallback, webgpu })];
}
