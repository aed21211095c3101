// `cosmos-ts devices`: each backend's device, whether it runs in software, its limits and details,
// read from the Backend interface.
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/engine/select.js';
import { runCli } from './run-cli.js';

describe('devices command', () => {
  it('describes the cpu backend and the WebGPU adapter', async () => {
    const r = await runCli('devices', '--require');
    expect(r.rc, r.err).toBe(0);
    const gpu = await selectBackend({ backend: 'webgpu' });
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('cpu     cpu (TypeScript reference)');
    expect(lines[1]).toMatch(/^ {8}runs on the CPU \(software\); largest tensor \d+ MiB, largest binding \d+ MiB$/);
    expect(lines[2]).toMatch(/^ {8}accumulation float64/);
    expect(lines[3]).toBe(`webgpu  ${gpu.adapter}`);
    expect(lines[4]).toContain(`largest binding ${Math.round(gpu.limits.maxBindingBytes / 2 ** 20)} MiB`);
    expect(lines[4]).toMatch(gpu.software ? /runs on the CPU \(software\)/ : /hardware/);
    for (const k of Object.keys(gpu.details)) expect(lines[5]).toContain(k);
  });
});
