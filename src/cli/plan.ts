// What every model command's --plan shares: the flag, the device the plan stands for (--backend),
// and the report, as text or as ONE JSON object.
import type { ComponentBytes } from '../pipelines/components.js';
import { type PlanReport, type PlanTarget, cpuTarget, fmtBytes, webgpuTarget } from '../pipelines/plan/measure.js';
import { type BooleanFlag, type CommandContext, commandBackend } from './command.js';

export const PLAN_FLAG = {
  type: 'boolean',
  help:
    'check every component against its checkpoint headers and print the bytes each takes and the peak of the run on the ' +
    'backend, reading no weights; only the model flags are needed (sizes take their defaults)',
} as const satisfies BooleanFlag;

/**
 * The device a plan stands for: the CPU backend; WebGPU with the adapter's limits when one can be
 * had (else typical GPU limits, said in the report); 'auto' plans for what a run would pick.
 */
export async function planTarget(choice: string, ctx: CommandContext): Promise<PlanTarget> {
  if (choice === 'cpu') return cpuTarget();
  try {
    const be = await commandBackend('webgpu', ctx);
    return webgpuTarget({ limits: be.limits, name: be.adapter });
  } catch (e) {
    if (choice === 'webgpu') return webgpuTarget();
    ctx.err(`note: no WebGPU adapter (${(e as Error).message.split('\n')[0].slice(0, 120)}); planning for the cpu backend`);
    return cpuTarget();
  }
}

/** Print a plan: `head` (what was planned: command, model, sizes) first, then the report. */
export function printPlan(ctx: CommandContext, json: boolean, head: Record<string, unknown>, what: string, p: PlanReport): void {
  const bytes = (list: readonly ComponentBytes[]) => Object.fromEntries(list.map((c) => [c.name, c.bytes]));
  const t = p.target;
  if (json) {
    ctx.out(JSON.stringify({
      ...head,
      plan: true,
      backend: t.device,
      limits: { max_buffer_bytes: t.limits.maxBufferBytes, max_binding_bytes: t.limits.maxBindingBytes, from: t.limitsFrom },
      planned_bytes: bytes(p.components),
      peak_bytes: p.peakBytes,
      phase_peak_bytes: Object.fromEntries(p.phases.map((x) => [x.phase, x.peakBytes])),
      largest_tensor_bytes: p.largestTensorBytes,
      over_binding: { count: p.overBinding.count, largest_bytes: p.overBinding.largestBytes },
      notes: p.notes,
      seconds: p.seconds,
    }));
    return;
  }
  ctx.out(`plan ${head.command}: ${what} on ${t.device} (limits: ${t.limitsFrom})`);
  const width = Math.max(14, ...p.components.map((c) => c.name.length + 2));
  for (const c of p.components) ctx.out(`  ${c.name.padEnd(width)}${fmtBytes(c.bytes).padStart(11)}  ${c.path}`);
  const phases = p.phases.map((x) => `${x.phase} ${fmtBytes(x.peakBytes)}`).join(', ');
  ctx.out(`  ${'peak'.padEnd(width)}${fmtBytes(p.peakBytes).padStart(11)}  (${phases})`);
  ctx.out(`  ${'largest tensor'.padEnd(width)}${fmtBytes(p.largestTensorBytes).padStart(11)}`);
  for (const n of p.notes) ctx.out(`note: ${n}`);
  ctx.out(`${p.components.length} component(s) checked against their checkpoint headers, no weights read (${p.seconds.toFixed(1)} s)`);
}
