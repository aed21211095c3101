// cosmos-ts devices [--require]: which backends this machine can run, and on what.
import { cpu } from '../engine/cpu/backend.js';
import { webgpu } from '../engine/webgpu/backend.js';

export async function devicesCommand(args: string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log('usage: cosmos-ts devices [--require]\n  --require  exit 1 unless a WebGPU adapter can be had');
    return 0;
  }
  console.log(`cpu     ${cpu.adapter}`);
  try {
    const be = await webgpu();
    const ctx = be.ctx;
    const lim = ctx.device.limits;
    console.log(`webgpu  ${be.adapter}`);
    console.log(`        shader-f16 ${ctx.hasF16 ? 'yes' : 'no'}, max storage binding ${(lim.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, ` +
      `max buffer ${(lim.maxBufferSize / 2 ** 20).toFixed(0)} MiB, workgroup memory ${lim.maxComputeWorkgroupStorageSize} B, ` +
      `invocations/workgroup ${lim.maxComputeInvocationsPerWorkgroup}`);
    return 0;
  } catch (e) {
    console.log(`webgpu  none: ${(e as Error).message}`);
    return args.includes('--require') ? 1 : 0;
  }
}
