// The module tree: parameters are named by checkpoint key paths, loading reports every
// mismatch at once, and any module's output can be captured by path.
import { describe, expect, it } from 'vitest';
import type { RawArray } from '../../src/engine/dtype.js';
import { CheckpointMismatchError, Module, type Param, type TensorSource, capture, loadWeights, plannedBytes } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { type Tensor, scope } from '../../src/engine/tensor.js';
import { cpu } from '../harness.js';

class Linear extends Module {
  readonly weight: Param;
  readonly bias: Param;
  constructor(inF: number, outF: number) {
    super();
    this.weight = this.param('weight', [outF, inF]);
    this.bias = this.param('bias', [outF], { optional: true });
  }
  forward(x: Tensor): Tensor {
    return this.tap(F.linear(x, this.weight.t, this.bias.maybe));
  }
}

class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor() {
    super();
    this.fc1 = this.add('fc1', new Linear(3, 4));
    this.fc2 = this.add('fc2', new Linear(4, 2));
  }
  forward(x: Tensor): Tensor {
    return scope(() => this.tap(this.fc2.forward(F.relu(this.fc1.forward(x)))));
  }
}

class Model extends Module {
  readonly blocks: Mlp[];
  constructor() {
    super();
    this.blocks = [0, 1].map((i) => this.add(`blocks.${i}`, new Mlp()));
  }
}

function source(tensors: Record<string, { dtype: 'f32' | 'bf16'; shape: number[]; raw: RawArray }>): TensorSource {
  return {
    path: 'mem.safetensors',
    names: Object.keys(tensors),
    info: (n) => ({ dtype: tensors[n].dtype === 'bf16' ? 'BF16' : 'F32', shape: tensors[n].shape }),
    read: async (n) => tensors[n],
  };
}

const f32 = (shape: number[], v = 0.5) => ({ dtype: 'f32' as const, shape, raw: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v) });

describe('module tree', () => {
  it('names parameters by their checkpoint key paths', () => {
    const m = new Model();
    expect([...m.parameters()].map((p) => p.key)).toEqual([
      'blocks.0.fc1.weight', 'blocks.0.fc1.bias', 'blocks.0.fc2.weight', 'blocks.0.fc2.bias',
      'blocks.1.fc1.weight', 'blocks.1.fc1.bias', 'blocks.1.fc2.weight', 'blocks.1.fc2.bias',
    ]);
    expect(m.blocks[1].fc2.path).toBe('blocks.1.fc2');
  });

  it('loads matching weights, keeps bf16 as bf16, and leaves absent optional parameters null', async () => {
    const m = new Mlp();
    const bf = { dtype: 'bf16' as const, shape: [4, 3], raw: new Uint16Array(12).fill(0x3f80) };
    const src = source({ 'fc1.weight': bf, 'fc2.weight': f32([2, 4]), 'fc2.bias': f32([2]) });
    expect(plannedBytes(m, src)).toBe(12 * 2 + 8 * 4 + 2 * 4);
    const report = await loadWeights(m, src, cpu);
    expect(report.loaded).toBe(3);
    expect(report.absentOptional).toEqual(['fc1.bias']);
    expect(m.fc1.weight.t.dtype).toBe('bf16');
    expect(m.fc1.bias.maybe).toBeNull();
    const y = m.forward(F.fromArray(cpu, [1, 2, 3], [1, 3]));
    // fc1: every weight 1 -> 6 per unit; fc2: 0.5 * 4 * 6 + 0.5
    expect(await y.toArray()).toEqual([12.5, 12.5]);
  });

  it('reports missing, unexpected and mis-shaped keys together, naming the file', async () => {
    const m = new Mlp();
    const src = source({ 'fc1.weight': f32([4, 4]), 'fc2.bias': f32([2]), 'fc3.weight': f32([1]) });
    const err = await loadWeights(m, src, cpu).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    expect(err.missing).toEqual(['fc2.weight']);
    expect(err.unexpected).toEqual(['fc3.weight']);
    expect(err.mismatched[0]).toMatch(/fc1\.weight: checkpoint \[4, 4\], config implies \[4, 3\]/);
    expect(err.message).toMatch(/mem\.safetensors/);
  });

  it('maps and ignores checkpoint keys', async () => {
    const m = new Mlp();
    const src = source({
      'model.fc1.weight': f32([4, 3]), 'model.fc2.weight': f32([2, 4]), 'model.fc2.bias': f32([2]), 'model.buffer': f32([1]),
    });
    const r = await loadWeights(m, src, cpu, { mapKey: (k) => k.replace(/^model\./, ''), ignore: (k) => k.endsWith('buffer') });
    expect(r.ignored).toEqual(['model.buffer']);
  });

  it('captures module outputs by path, in forward order, surviving the scopes that free intermediates', async () => {
    const m = new Mlp();
    await loadWeights(m, source({ 'fc1.weight': f32([4, 3], 1), 'fc2.weight': f32([2, 4], 1) }), cpu);
    const x = F.fromArray(cpu, [1, -2, 3], [1, 3]);
    const { result, taps } = await capture('all', () => m.forward(x));
    expect(taps.records.map((r) => r.path)).toEqual(['fc1', 'fc2', '']);
    expect(await taps.get('fc1')!.toArray()).toEqual([2, 2, 2, 2]);
    expect(await result.toArray()).toEqual([8, 8]);
    const only = await capture(['fc2'], () => m.forward(x));
    expect(only.taps.records.map((r) => r.path)).toEqual(['fc2']);
    taps.dispose();
    only.taps.dispose();
  });
});

describe('scope', () => {
  it('frees intermediates and keeps what it returns', () => {
    const a = F.fromArray(cpu, [1, 2], [2]);
    let inner: Tensor | undefined;
    const out = scope(() => {
      inner = F.add(a, a);
      return F.mul(inner, a);
    });
    expect(inner!.isDisposed).toBe(true);
    expect(out.isDisposed).toBe(false);
    expect(a.isDisposed).toBe(false);
  });
});
