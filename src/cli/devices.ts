// `cosmos-ts devices`: which backends this machine can run, and on what.
import type { Backend } from '../engine/backend.js';
import { cpuBackend, webgpuBackend, webgpuOptionsFromEnv } from '../engine/select.js';
import { defineCommand } from './command.js';

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

function describe(be: Backend): string[] {
  const pad = ' '.repeat(8);
  const details = Object.entries(be.details).map(([k, v]) => `${k} ${typeof v === 'boolean' ? (v ? 'yes' : 'no') : v}`);
  return [
    `${be.name.padEnd(8)}${be.adapter}`,
    `${pad}${be.software ? 'runs on the CPU (software)' : 'hardware'}; largest tensor ${MiB(be.limits.maxBufferBytes)}, largest binding ${MiB(be.limits.maxBindingBytes)}`,
    ...(details.length ? [`${pad}${details.join(', ')}`] : []),
  ];
}

export const command = defineCommand({
  name: 'devices',
  summary: 'show the backends and the WebGPU adapter in use',
  description: 'Shows each backend this machine can run: its device, whether it runs in software, its limits and details.',
  flags: {
    require: { type: 'boolean', help: 'exit 1 unless a WebGPU adapter can be had' },
  },
  async run(f, _positionals, ctx) {
    for (const l of describe(await cpuBackend())) ctx.out(l);
    let gpu: Backend;
    try {
      gpu = await webgpuBackend(webgpuOptionsFromEnv(process.env));
    } catch (e) {
      ctx.out(`webgpu  none: ${(e as Error).message}`);
      return f.require ? 1 : 0;
    }
    for (const l of describe(gpu)) ctx.out(l);
  },
});
