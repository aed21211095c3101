// A conformance verdict is only as good as the case it reads. A case that states no tolerance, a
// negative or NaN one, that lacks its case.safetensors or names nothing to compare is an error
// with the reason, never a pass; an output in another layout with the same element count fails;
// a NaN where the reference has a number shows as NaN (also in --json, where JSON has no NaN).
import { cpSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerKind } from '../../src/conform/registry.js';
import { Module, capture } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { openSafetensors, type TensorToWrite, writeSafetensors } from '../../src/io/safetensors.js';
import { type CaseResult, conform } from '../../src/pipelines/conform.js';
import { cpu } from '../harness.js';
import { runCli } from '../cli/run-cli.js';

// y = 2x + 1 over a [2, 3] input, tapped at "stage1"
class Affine extends Module {
  readonly stage1 = this.add('stage1', new (class extends Module {
    forward(x: Tensor) { return this.tap(F.affine(x, 2, 1)); }
  })());
  forward(x: Tensor) { return this.stage1.forward(x); }
}

registerKind('test.affine', async (c, backend) => {
  const x = await c.inputTensor('x', backend);
  const { result, taps } = await capture('all', () => new Affine().forward(x));
  return { outputs: { y: result }, taps };
});

let root: string;
const x = Float32Array.from([0.5, -1, 2, 0, 3, -0.25]);
const y = x.map((v) => 2 * v + 1);

interface CaseOptions {
  /** the case.json text (default: a valid case with tolerance 1e-5 / 1e-4) */
  caseJson?: string;
  yShape?: number[];
  tapShape?: number[];
  yValues?: Float32Array;
  noTensors?: boolean;
  noOutputs?: boolean;
}

async function writeCase(name: string, o: CaseOptions = {}): Promise<string> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'case.json'), o.caseJson ?? JSON.stringify({ kind: 'test.affine', component: 'test', tolerance: { atol: 1e-5, rtol: 1e-4 } }));
  writeFileSync(join(dir, 'config.json'), '{}');
  if (!o.noTensors) {
    await writeSafetensors(join(dir, 'case.safetensors'), {
      'input.x': { dtype: 'f32', shape: [2, 3], raw: x },
      ...(o.noOutputs ? {} : { 'output.y': { dtype: 'f32', shape: o.yShape ?? [2, 3], raw: o.yValues ?? y } }),
      'tap.stage1': { dtype: 'f32', shape: o.tapShape ?? [2, 3], raw: y },
    });
  }
  return dir;
}

/** case.json text with the tolerance written as given (Python's json writes NaN as a bare token) */
const withTolerance = (tol: string) => `{"kind": "test.affine", "component": "test", "tolerance": ${tol}}`;

async function runOne(dir: string): Promise<CaseResult> {
  const { results } = await conform([dir], { backends: [cpu] });
  expect(results).toHaveLength(1);
  return results[0];
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'conform-faults-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a case must state a usable tolerance', () => {
  it('the well-formed case passes (the baseline of every fault below)', async () => {
    const r = await runOne(await writeCase('good'));
    expect(r.error).toBeNull();
    expect(r.pass).toBe(true);
  });

  it.each([
    ['missing', `{"kind": "test.affine", "component": "test"}`, /tolerance: missing/],
    ['null', withTolerance('null'), /tolerance: missing/],
    ['a number, not an object', withTolerance('0.001'), /tolerance: expected an object/],
    ['negative atol', withTolerance('{"atol": -1e-5, "rtol": 1e-4}'), /tolerance\.atol: expected a finite number >= 0; got -0\.00001/],
    ['negative rtol', withTolerance('{"atol": 1e-5, "rtol": -0.5}'), /tolerance\.rtol: .*got -0\.5/],
    ['NaN atol (as Python writes it)', withTolerance('{"atol": NaN, "rtol": 1e-4}'), /tolerance\.atol: .*got NaN/],
    ['infinite rtol', withTolerance('{"atol": 0, "rtol": Infinity}'), /tolerance\.rtol: .*got Infinity/],
    ['a string atol', withTolerance('{"atol": "1e-5", "rtol": 1e-4}'), /tolerance\.atol: .*got "1e-5"/],
    ['no rtol', withTolerance('{"atol": 1e-5}'), /tolerance\.rtol: .*got nothing/],
  ])('%s: an error naming the field, not a pass', async (name, json, why) => {
    const r = await runOne(await writeCase(`tol-${name.replace(/\W+/g, '-')}`, { caseJson: json }));
    expect(r.pass).toBe(false);
    expect(r.error).toMatch(/case\.json: /);
    expect(r.error).toMatch(why);
  });

  it('a string that merely says NaN stays a string (only bare tokens are numbers)', async () => {
    const json = `{"kind": "test.affine", "component": "test", "notes": "NaN and -Infinity in prose", "tolerance": {"atol": 1e-5, "rtol": 1e-4}}`;
    const r = await runOne(await writeCase('nan-in-prose', { caseJson: json }));
    expect(r.error).toBeNull();
    expect(r.pass).toBe(true);
  });
});

describe('a case must hold what it is compared with', () => {
  it('a missing case.safetensors is an error that names it', async () => {
    const r = await runOne(await writeCase('no-tensors', { noTensors: true }));
    expect(r.pass).toBe(false);
    expect(r.error).toMatch(/case\.safetensors: missing; this case needs its tensor input\.x/);
  });

  it('a case with nothing to compare is an error, not an empty pass', async () => {
    const r = await runOne(await writeCase('no-outputs', { noOutputs: true }));
    expect(r.pass).toBe(false);
    expect(r.error).toMatch(/names no outputs to compare/);
  });
});

describe('shapes must agree exactly', () => {
  it('an output with the same elements in another shape fails, saying both shapes', async () => {
    const r = await runOne(await writeCase('reshaped-output', { yShape: [3, 2] }));
    expect(r.pass).toBe(false);
    expect(r.outputs.y.pass).toBe(false);
    expect(r.outputs.y.note).toBe("shape [2,3] differs from the reference's [3,2]");
  });

  it('an output with an extra unit dimension fails too', async () => {
    const r = await runOne(await writeCase('unsqueezed-output', { yShape: [1, 2, 3] }));
    expect(r.outputs.y.pass).toBe(false);
    expect(r.outputs.y.note).toMatch(/shape \[2,3\] differs/);
  });

  it('a tap recorded in another shape is divergent, not compared by element count', async () => {
    const r = await runOne(await writeCase('reshaped-tap', { tapShape: [6] }));
    expect(r.outputs.y.pass).toBe(true);
    expect(r.taps.stage1.pass).toBe(false);
    expect(r.taps.stage1.note).toBe("shape [2,3] differs from the reference's [6]");
    expect(r.first_divergent_tap).toBe('stage1');
  });

  it('a real fixture whose reference output is stored transposed fails', async () => {
    const dir = join(root, 'rope3d-transposed');
    cpSync(join(import.meta.dirname, '../fixtures/dit/rope3d'), dir, { recursive: true });
    const file = join(dir, 'case.safetensors');
    const st = await openSafetensors(file);
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of st.names) {
      const t = await st.read(name);
      // cos.0 is [60, 128]: store it as [128, 60] (same bytes, the layout a transposing bug would give)
      tensors[name] = { dtype: t.dtype, shape: name === 'output.cos.0' ? [...t.shape].reverse() : t.shape, raw: t.raw };
    }
    await st.close();
    rmSync(file);
    await writeSafetensors(file, tensors);
    const r = await runOne(dir);
    expect(r.pass).toBe(false);
    expect(r.outputs['cos.0'].pass).toBe(false);
    expect(r.outputs['cos.0'].note).toBe("shape [60,128] differs from the reference's [128,60]");
    expect(r.outputs['sin.0'].pass).toBe(true);
  });
});

describe('NaN is shown as NaN', () => {
  it('a NaN against a number makes max_abs NaN (not Infinity) and fails', async () => {
    const want = y.slice();
    want[4] = Number.NaN;
    const r = await runOne(await writeCase('nan-reference', { yValues: want }));
    expect(r.pass).toBe(false);
    expect(r.outputs.y.max_abs).toBeNaN();
    expect(r.outputs.y.worst?.index).toBe(4);
  });

  it('NaN on both sides is equal', async () => {
    // the model cannot make NaN from this input, so compare the rule itself
    const { compareArrays } = await import('../../src/conform/compare.js');
    expect(compareArrays([Number.NaN, 1], [Number.NaN, 1], { atol: 0, rtol: 0 }).pass).toBe(true);
    expect(compareArrays([Number.NaN, 1], [0, 1], { atol: 1, rtol: 1 }).pass).toBe(false);
    expect(compareArrays([Number.POSITIVE_INFINITY], [Number.POSITIVE_INFINITY], { atol: 0, rtol: 0 }).pass).toBe(true);
    expect(compareArrays([Number.POSITIVE_INFINITY], [Number.NEGATIVE_INFINITY], { atol: 0, rtol: 0 }).pass).toBe(false);
  });

  it('conform --json writes it as "NaN" and the table as NaN; the exit status is 1', async () => {
    const dir = join(root, 'nan-reference');
    const json = await runCli('conform', dir, '--backend', 'cpu', '--json');
    expect(json.rc).toBe(1);
    const row = JSON.parse(json.out.trim().split('\n')[0]);
    expect(row.pass).toBe(false);
    expect(row.outputs.y.max_abs).toBe('NaN');
    const table = await runCli('conform', dir, '--backend', 'cpu');
    expect(table.rc).toBe(1);
    expect(table.out).toMatch(/FAIL .*max_abs NaN/);
  });

  it('a case error in the table is a FAIL line that gives the reason; exit status 1', async () => {
    const r = await runCli('conform', join(root, 'tol-NaN-atol-as-Python-writes-it-'), '--backend', 'cpu');
    expect(r.rc).toBe(1);
    expect(r.out).toMatch(/FAIL .*tolerance\.atol: expected a finite number >= 0; got NaN/);
    expect(r.out).toMatch(/0 of 1 case runs pass/);
  });
});
