// What every `--plan` shares: the device a plan stands for (its limits decide how models split
// their work, so the plan backend emulates them), a meter of the peak memory per phase, and the
// report. A plan runs the pipeline's own code path on the plan backend (src/engine/plan/): every
// tensor allocated and freed where a real run would, nothing computed, no weight bytes read, so
// the peak is the CPU backend's for the same calls (and WebGPU's, less its buffer-pool slack).
import type { BackendLimits } from '../../engine/backend.js';
import { type PlanBackend, PlanLimitError } from '../../engine/plan/backend.js';
import { planBackend } from '../../engine/select.js';
import type { ComponentBytes } from '../components.js';
import type { ProgressEvent } from '../progress.js';

export type PlanDevice = 'cpu' | 'webgpu';

/** The device a plan stands for. */
export interface PlanTarget {
  device: PlanDevice;
  limits: BackendLimits;
  /** where the limits come from, e.g. 'the cpu backend', 'adapter NVIDIA ... (vulkan, core)' */
  limitsFrom: string;
}

const GiB = 2 ** 30;

/** The CPU backend's limits (typed arrays of up to 2^32 - 1 elements). */
const CPU_LIMITS: BackendLimits = { maxBufferBytes: 4 * (2 ** 32 - 1), maxBindingBytes: 4 * (2 ** 32 - 1) };

/**
 * WebGPU limits assumed where no adapter can be asked: what Dawn exposes on discrete NVIDIA / AMD
 * GPUs (Vulkan, D3D12): buffers of 4 GiB, storage bindings of 2 GiB. An adapter with smaller
 * limits makes the models split more (a lower peak), one with larger ones less.
 */
export const TYPICAL_GPU_LIMITS: BackendLimits = { maxBufferBytes: 4 * GiB, maxBindingBytes: 2 * GiB };

export function cpuTarget(): PlanTarget {
  return { device: 'cpu', limits: CPU_LIMITS, limitsFrom: 'the cpu backend' };
}

/** WebGPU with an adapter's limits (`adapter` names it), or else the typical limits above. */
export function webgpuTarget(adapter?: { limits: BackendLimits; name: string }): PlanTarget {
  if (adapter) return { device: 'webgpu', limits: { ...adapter.limits }, limitsFrom: `adapter ${adapter.name}` };
  return { device: 'webgpu', limits: TYPICAL_GPU_LIMITS, limitsFrom: 'typical discrete-GPU limits (no WebGPU adapter here): 4 GiB buffers, 2 GiB bindings' };
}

export interface PlanReport {
  target: PlanTarget;
  /** every component the run loads, with the bytes it takes (checked against its headers) */
  components: ComponentBytes[];
  /** the most bytes live at once over the run: parameters, activations, caches */
  peakBytes: number;
  /** the peak of each phase (a phase includes the loads it starts with), in run order */
  phases: { phase: string; peakBytes: number }[];
  largestTensorBytes: number;
  /** tensors larger than one storage binding of the device (WebGPU cannot bind them whole) */
  overBinding: { count: number; largestBytes: number };
  notes: string[];
  seconds: number;
}

/**
 * Peak bytes per phase. A run names its phases either as they start (`phase(name)`, what the
 * world pipelines' onPhase says) or, after `pending()`, by its progress events: pipelines report
 * a unit when it is done, so the memory a segment used belongs to the stage of the event that
 * ends it.
 */
export class PhaseMeter {
  readonly phases: { phase: string; peakBytes: number }[] = [];
  /** the open segment's phase; null while it waits for a progress event to name it */
  private current: string | null = null;
  private open = false;
  private lastStage = 'run';

  constructor(private readonly be: PlanBackend) {}

  phase(name: string): void {
    if (this.open && name === this.current) return;
    this.close();
    this.start(name);
  }

  /** Close the current phase; the next progress event names the one that starts now. */
  pending(): void {
    this.close();
    this.start(null);
  }

  /** A progress callback: names (and closes) a pending segment; ignored inside a named phase. */
  readonly onProgress = (e: ProgressEvent): void => {
    this.lastStage = e.stage;
    if (!this.open || this.current !== null) return;
    this.current = e.stage;
    this.close();
    this.start(null);
  };

  /** The phase now running, for messages. */
  where(): string {
    return this.current ?? this.lastStage;
  }

  close(): void {
    if (!this.open) return;
    const name = this.current ?? this.lastStage;
    const peakBytes = this.be.memory().peakBytes;
    const same = this.phases.find((p) => p.phase === name);
    if (same) same.peakBytes = Math.max(same.peakBytes, peakBytes);
    else this.phases.push({ phase: name, peakBytes });
    this.open = false;
  }

  private start(name: string | null): void {
    this.be.resetPeakMemory();
    this.current = name;
    this.open = true;
  }
}

/** What a plan's run gives back to the report. */
export interface PlannedRun {
  components: ComponentBytes[];
  notes?: string[];
}

/**
 * Run `run` on a fresh plan backend with `target`'s limits, metering its phases (the run names
 * them through the meter), and report. The first phase is 'setup' until the run names one.
 */
export async function measurePlan<T extends PlannedRun>(
  target: PlanTarget, run: (be: PlanBackend, meter: PhaseMeter) => Promise<T>,
): Promise<{ report: PlanReport; result: T }> {
  const t0 = performance.now();
  const be = planBackend({ limits: target.limits, adapter: `${target.device} (${target.limitsFrom})` });
  const meter = new PhaseMeter(be);
  meter.phase('setup');
  let result: T;
  try {
    result = await run(be, meter);
  } catch (e) {
    // a run the device cannot hold: say where (the limit itself names the tensor and the device)
    if (e instanceof PlanLimitError) throw new PlanLimitError(`${meter.where()} phase: ${e.message}`);
    throw e;
  }
  meter.close();
  const phases = meter.phases.filter((p) => p.phase !== 'setup' || p.peakBytes > 0);
  const notes = [...(result.notes ?? [])];
  const over = be.overBinding();
  if (target.device === 'webgpu' && over.count) {
    notes.push(
      `${over.count} tensor(s) made over the run are larger than one storage binding of the device (${fmtBytes(target.limits.maxBindingBytes)}), the largest ` +
        `${fmtBytes(over.largestBytes)}: WebGPU cannot bind such a tensor whole`,
    );
  }
  return {
    report: {
      target, components: result.components, peakBytes: Math.max(0, ...phases.map((p) => p.peakBytes)),
      phases, largestTensorBytes: be.largestTensorBytes(), overBinding: over, notes, seconds: (performance.now() - t0) / 1000,
    },
    result,
  };
}

/** Bytes for people: GiB with two decimals, or MiB, or bytes. */
export function fmtBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}
