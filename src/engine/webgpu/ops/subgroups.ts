// Whether an op takes its subgroup kernel: only where the device was given 'subgroups'.
import type { WebGpuBackend } from '../backend.js';

/**
 * Test / bench override: `enabled: false` keeps the workgroup-memory kernels on a device that has
 * subgroups (undefined: use them wherever the device has them).
 */
export const subgroupConfig: { enabled: boolean | undefined } = { enabled: undefined };

export function useSubgroups(be: WebGpuBackend): boolean {
  return be.ctx.hasSubgroups && subgroupConfig.enabled !== false;
}
