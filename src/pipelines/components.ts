// The components a run will load, checked before it computes anything. Each one goes through its
// ordinary loader on a fresh plan backend (src/engine/plan/): the config is parsed, the module
// tree built, every tensor name / shape / dtype of the checkpoint headers checked by loadWeights,
// and nothing but headers read. A run then loads its components one after the other and frees
// each when its phase is done, so a missing VAE tensor still fails before a denoising step while
// the VAE is never on the device beside the transformer. The check also says how many bytes each
// component takes once loaded (what the plan backend counted: the same bytes a real load uploads).
import type { Backend } from '../engine/backend.js';
import { planBackend } from '../engine/select.js';

/** A component as checked: its role in the run, where it loads from, and its bytes on the device. */
export interface ComponentBytes {
  /** e.g. 'text_encoder', 'transformer', 'vae', 'controlnet:edge' */
  name: string;
  path: string;
  bytes: number;
}

/**
 * Check one component: `load` (its ordinary loader) runs on a plan backend with `like`'s limits
 * (so a tensor too large for that device is refused here too); any error it raises is the real
 * load's. Returns the bytes the loaded component holds.
 */
export async function checkComponent(
  name: string, path: string, like: Backend, load: (be: Backend) => Promise<{ dispose(): void }>,
): Promise<ComponentBytes> {
  const be = planBackend({ limits: like.limits, adapter: `${like.name} limits` });
  const m = await load(be);
  const bytes = be.memory().liveBytes;
  m.dispose();
  return { name, path, bytes };
}

/** Told when each phase of a run starts, before it loads what it needs (a plan measures memory by phase). */
export interface PhaseHooks {
  onPhase?: (phase: string) => void;
}

/** Components by name -> bytes (the shape `planned_bytes` is printed in). */
export function componentBytes(list: readonly ComponentBytes[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of list) out[c.name] = (out[c.name] ?? 0) + c.bytes;
  return out;
}
