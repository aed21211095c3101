// Choosing a backend: the one place that knows how. The WebGPU backend is imported only when it
// is asked for, so a CPU-only caller never loads Dawn.
import type { Backend, BackendName } from './backend.js';
import { UserError } from './errors.js';

export type BackendChoice = BackendName | 'auto';

export interface SelectBackendOptions {
  /** 'cpu', 'webgpu', or 'auto' (the default): WebGPU when an adapter can be had, else the CPU */
  backend?: BackendChoice;
  /** told why 'auto' fell back to the CPU (the CLI prints it as a note) */
  onFallback?: (reason: string) => void;
}

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'webgpu', 'cpu'];

export async function cpuBackend(): Promise<Backend> {
  return (await import('./cpu/backend.js')).cpu;
}

/** The process-wide WebGPU backend; rejects with NoAdapterError (a UserError) when none can be had. */
export async function webgpuBackend(): Promise<Backend> {
  return (await import('./webgpu/backend.js')).webgpu();
}

export async function selectBackend(options: SelectBackendOptions = {}): Promise<Backend> {
  const choice = options.backend ?? 'auto';
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`backend must be one of ${BACKEND_CHOICES.join(', ')}; got ${JSON.stringify(choice)}`);
  }
  if (choice === 'cpu') return cpuBackend();
  if (choice === 'webgpu') return webgpuBackend();
  try {
    return await webgpuBackend();
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    options.onFallback?.(`no WebGPU adapter (${reason.length > 160 ? `${reason.slice(0, 157)}...` : reason}); using the cpu backend`);
    return cpuBackend();
  }
}

/** Every backend a choice names: 'all' is the CPU oracle and WebGPU (which must then be had). */
export async function selectBackends(choice: BackendChoice | 'all', onFallback?: (reason: string) => void): Promise<Backend[]> {
  if (choice === 'all') return [await cpuBackend(), await webgpuBackend()];
  return [await selectBackend({ backend: choice, onFallback })];
}
