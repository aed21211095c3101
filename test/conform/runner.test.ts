// The conformance runner is general: it reads any case folder of the fixture format, dispatches
// on case.json `kind`, compares outputs by |got - want| <= atol + rtol |want| (integers
// exactly), names the first divergent tap, and reports unimplemented kinds as failures.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { conformCommand } from '../../src/cli/conform.js';
import { registerKind } from '../../src/conform/registry.js';
import { findCases, runCase } from '../../src/conform/runner.js';
import { cpu } from '../../src/engine/cpu/backend.js';
import * as F from '../../src/engine/ops.js';
import { Module, capture } from '../../src/engine/module.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { webgpu } from '../../src/engine/webgpu/backend.js';

// A two-stage toy model registered under a test-only kind: y = 2x + 1 ("stage1"), then ids = round(y).
class Toy extends Module {
  readonly stage1 = this.add('stage1', new (class extends Module {
    forward(x: Tensor) { return this.tap(F.affine(x, 2, 1)); }
  })());
  forward(x: Tensor) {
    const y = this.stage1.forward(x);
    return { y, ids: F.cast(F.round(y), 'i32') };
  }
}

registerKind('test.toy', async (c, backend) => {
  const x = await c.input('x');
  const model = new Toy();
  const { result, taps } = await capture('all', () => model.forward(F.fromRaw(backend, x.raw, x.shape, x.dtype)));
  return { outputs: { y: result.y, ids: result.ids }, taps };
});

let root: string;
const x = new Float32Array([0.1, -0.7, 1.2, 3.3]);
const y = x.map((v) => 2 * v + 1);

async function writeCase(name: string, kind: string, outY: Float32Array, tapY: Float32Array, ids: Int32Array) {
  const dir = join(root, 'component', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'case.json'), JSON.stringify({ kind, component: 'test', tolerance: { atol: 1e-5, rtol: 1e-4 } }));
  writeFileSync(join(dir, 'config.json'), '{}');
  await writeSafetensors(join(dir, 'case.safetensors'), {
    'input.x': { dtype: 'f32', shape: [4], raw: x },
    'output.y': { dtype: 'f32', shape: [4], raw: outY },
    'output.ids': { dtype: 'I32', shape: [4], raw: ids },
    'tap.stage1': { dtype: 'f32', shape: [4], raw: tapY },
  });
  return dir;
}

const goodIds = () => Int32Array.from(y, (v) => Math.round(v));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'conform-'));
  await writeCase('good', 'test.toy', y, y, goodIds());
  const off = y.slice();
  off[2] += 0.01;
  await writeCase('bad_output', 'test.toy', off, off, goodIds());
  const ids = goodIds();
  ids[0] += 1;
  await writeCase('bad_ids', 'test.toy', y, y, ids);
  await writeCase('unknown', 'nobody.implements_this', y, y, goodIds());
});

describe('conformance runner', () => {
  it('finds case folders by their case.json, whatever their names', () => {
    expect(findCases([root]).map((d) => d.split('/').pop())).toEqual(['bad_ids', 'bad_output', 'good', 'unknown']);
  });

  it('passes a case whose outputs and taps match within tolerance', async () => {
    const r = await runCase(join(root, 'component', 'good'), cpu);
    expect(r.error).toBeNull();
    expect(r.pass).toBe(true);
    expect(r.outputs.y.pass && r.outputs.ids.pass).toBe(true);
    expect(r.taps.stage1.pass).toBe(true);
    expect(r.first_divergent_tap).toBeNull();
  });

  it('fails a case outside tolerance and names the first divergent tap', async () => {
    const r = await runCase(join(root, 'component', 'bad_output'), cpu);
    expect(r.pass).toBe(false);
    expect(r.outputs.y.max_abs).toBeCloseTo(0.01, 4);
    expect(r.outputs.y.worst?.index).toBe(2);
    expect(r.first_divergent_tap).toBe('stage1');
  });

  it('compares integer outputs exactly', async () => {
    const r = await runCase(join(root, 'component', 'bad_ids'), cpu);
    expect(r.outputs.ids.pass).toBe(false);
    expect(r.outputs.y.pass).toBe(true);
  });

  it('reports a kind nobody implements as a failure that says so', async () => {
    const r = await runCase(join(root, 'component', 'unknown'), cpu);
    expect(r.pass).toBe(false);
    expect(r.not_implemented).toBe(true);
    expect(r.error).toMatch(/nobody\.implements_this.*not implemented/);
  });

  it('runs the same case on the WebGPU backend', async () => {
    const be = await webgpu();
    const r = await runCase(join(root, 'component', 'good'), be);
    expect(r.error).toBeNull();
    expect(r.pass).toBe(true);
    expect(r.adapter).toBe(be.adapter);
  });

  it('prints one JSON object per case and backend with --json, and exits 1 when any case fails', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((s: string) => { lines.push(s); });
    const code = await conformCommand([root, '--backend', 'cpu', '--json']);
    spy.mockRestore();
    expect(code).toBe(1);
    const rows = lines.map((l) => JSON.parse(l));
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      for (const k of ['case', 'kind', 'backend', 'adapter', 'pass', 'seconds', 'outputs', 'first_divergent_tap', 'error']) expect(row).toHaveProperty(k);
    }
    const good = rows.find((r) => r.case.endsWith('good'));
    expect(good.pass).toBe(true);
    expect(good.outputs.y).toMatchObject({ pass: true });
    expect(typeof good.outputs.y.max_abs).toBe('number');
  });

  it('exits 0 when every case passes', async () => {
    const spy = vi.spyOn(console, 'log').mockImplementation(() => {});
    const code = await conformCommand([join(root, 'component', 'good'), '--backend', 'all']);
    spy.mockRestore();
    expect(code).toBe(0);
  });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));
