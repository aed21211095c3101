// The conformance runner is general: it reads any case folder of the fixture format, dispatches
// on case.json `kind`, compares outputs by |got - want| <= atol + rtol |want| (integers
// exactly), names the first divergent tap, and reports unimplemented kinds as failures. Run here
// through the conform pipeline, as a library user would.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerKind } from '../../src/conform/registry.js';
import { findCases } from '../../src/conform/runner.js';
import { CancelledError } from '../../src/engine/errors.js';
import { Module, capture } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { type CaseResult, conform } from '../../src/pipelines/conform.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { cpu, webgpu } from '../harness.js';

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
  const model = new Toy();
  const x = await c.inputTensor('x', backend);
  const { result, taps } = await capture('all', () => model.forward(x));
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
const caseDir = (name: string) => join(root, 'component', name);

/** The one result of running one case on the CPU. */
async function runOne(name: string): Promise<CaseResult> {
  const { results } = await conform([caseDir(name)], { backends: [cpu] });
  expect(results).toHaveLength(1);
  return results[0];
}

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
  it('finds case folders by their case.json, whatever their names', async () => {
    expect((await findCases([root])).map((d) => d.split('/').pop())).toEqual(['bad_ids', 'bad_output', 'good', 'unknown']);
    await expect(findCases([join(root, 'absent')])).rejects.toThrow(/absent: no such file or directory/);
  });

  it('passes a case whose outputs and taps match within tolerance', async () => {
    const r = await runOne('good');
    expect(r.error).toBeNull();
    expect(r.pass).toBe(true);
    expect(r.outputs.y.pass && r.outputs.ids.pass).toBe(true);
    expect(r.taps.stage1.pass).toBe(true);
    expect(r.first_divergent_tap).toBeNull();
  });

  it('fails a case outside tolerance and names the first divergent tap', async () => {
    const r = await runOne('bad_output');
    expect(r.pass).toBe(false);
    expect(r.outputs.y.max_abs).toBeCloseTo(0.01, 4);
    expect(r.outputs.y.worst?.index).toBe(2);
    expect(r.first_divergent_tap).toBe('stage1');
  });

  it('skips the tap comparison when asked', async () => {
    const { results } = await conform([caseDir('bad_output')], { backends: [cpu], taps: false });
    expect(results[0].taps).toEqual({});
    expect(results[0].first_divergent_tap).toBeNull();
    expect(results[0].pass).toBe(false);
  });

  it('compares integer outputs exactly', async () => {
    const r = await runOne('bad_ids');
    expect(r.outputs.ids.pass).toBe(false);
    expect(r.outputs.y.pass).toBe(true);
  });

  it('reports a kind nobody implements as a failure that says so', async () => {
    const r = await runOne('unknown');
    expect(r.pass).toBe(false);
    expect(r.not_implemented).toBe(true);
    expect(r.error).toMatch(/nobody\.implements_this.*not implemented/);
  });

  it('runs every case on every backend, in order, with one progress event per result', async () => {
    const be = await webgpu();
    const events: ProgressEvent[] = [];
    const report = await conform([root], { backends: [cpu, be], onProgress: (e) => events.push(e) });
    expect(report.results.map((r) => `${r.backend} ${r.case.split('/').pop()}`)).toEqual(
      ['cpu', 'webgpu'].flatMap((b) => ['bad_ids', 'bad_output', 'good', 'unknown'].map((n) => `${b} ${n}`)),
    );
    expect([report.passed, report.failed]).toEqual([2, 6]);
    const good = report.results.find((r) => r.backend === 'webgpu' && r.case.endsWith('good'))!;
    expect(good.error).toBeNull();
    expect(good.pass).toBe(true);
    expect(good.adapter).toBe(be.adapter);
    expect(events.map((e) => [e.stage, e.done, e.total, e.unit])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map((d) => ['conform', d, 8, 'cases']));
    expect(events.slice(1).map((e) => e.detail?.result)).toEqual(report.results);
  });

  it('stops at the next case when cancelled', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const run = conform([root], {
      backends: [cpu],
      signal: ac.signal,
      onProgress: (e) => {
        seen.push(e.done);
        if (e.done === 1) ac.abort(new CancelledError('stop'));
      },
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([0, 1]);
    await expect(conform([root], { backends: [cpu], signal: AbortSignal.abort(new CancelledError('before')) })).rejects.toThrow('before');
  });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));
