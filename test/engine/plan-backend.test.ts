// The plan backend against the CPU backend: for every op family the outputs have the CPU's
// shapes and dtypes and every memory count (live and peak bytes, before, after and once all is
// freed) is the same; whole workflows (fixture cases run through the conformance runner, model
// loads from a checkpoint header) reach the same peak; and a tensor of gigabytes costs no host
// memory. Values are not compared: the plan backend has none (reads give zeros).
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runCase } from '../../src/conform/runner.js';
import type { Backend, BinaryOp, BorderMode, ReduceOp, UnaryOp } from '../../src/engine/backend.js';
import { CpuBackend } from '../../src/engine/cpu/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import { loadWeights } from '../../src/engine/module.js';
import * as F from '../../src/engine/ops.js';
import { PLAN_READ_LIMIT_BYTES, PlanBackend, PlanLimitError } from '../../src/engine/plan/backend.js';
import { declaredSource, shapeOnlySource } from '../../src/engine/plan/params.js';
import { planBackend } from '../../src/engine/select.js';
import { Tensor, numel, scope, scopeAsync } from '../../src/engine/tensor.js';
import { openCheckpoint } from '../../src/io/safetensors.js';
import { loadModule } from '../../src/models/load.js';
import { CosmosTokenizerFamily } from '../../src/models/tokenizer/load.js';
import { MODELS, freeAll, planOp } from '../../bench/memory-plan.js';
import { randomInts, randomValues } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const RUNS = { numRuns: 30, seed: process.env.CI ? 20261125 : undefined };

interface Input {
  shape: readonly number[];
  dtype?: DType;
  /** i32 inputs: values drawn from [0, hi) */
  hi?: number;
}

type Op = (...xs: Tensor[]) => Tensor | Tensor[] | undefined;

interface Run {
  outputs: { shape: readonly number[]; dtype: DType; read: string; length: number }[];
  afterInputs: { liveBytes: number; peakBytes: number };
  afterOp: { liveBytes: number; peakBytes: number };
  end: { liveBytes: number; peakBytes: number };
}

async function run(be: Backend, label: string, inputs: readonly Input[], op: Op): Promise<Run> {
  const xs = inputs.map((inp, k) => {
    const n = numel(inp.shape);
    const dtype = inp.dtype ?? 'f32';
    const values = dtype === 'i32' ? randomInts(n, `${label}/${k}`, 0, inp.hi ?? 7) : randomValues(n, `${label}/${k}`);
    return F.fromArray(be, values, inp.shape, dtype);
  });
  const afterInputs = be.memory();
  const outs = [op(...xs) ?? []].flat();
  const afterOp = be.memory();
  const outputs = [];
  for (const t of outs) {
    const r = await t.read();
    outputs.push({ shape: t.shape, dtype: t.dtype, read: r.constructor.name, length: r.length });
  }
  for (const t of new Set([...outs, ...xs])) t.dispose();
  return { outputs, afterInputs, afterOp, end: be.memory() };
}

/** The op on a fresh CPU backend and a fresh plan backend: outputs and memory counts agree. */
async function same(label: string, inputs: readonly Input[], op: Op): Promise<Run> {
  const want = await run(new CpuBackend(), label, inputs, op);
  const got = await run(planBackend(), label, inputs, op);
  expect(got, label).toEqual(want);
  return want;
}

const DTYPES: DType[] = ['f32', 'f16', 'bf16', 'i32'];
const FLOATS: DType[] = ['f32', 'f16', 'bf16'];
const UNARY: UnaryOp[] = [
  'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'recip', 'square', 'sin', 'cos', 'tanh', 'sigmoid', 'silu', 'relu', 'gelu',
  'gelu_tanh', 'round', 'floor', 'ceil', 'sign', 'atanh', 'affine', 'clamp', 'pow_scalar',
];
const BINARY: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min', 'pow'];
const REDUCE: ReduceOp[] = ['sum', 'mean', 'max', 'min'];
const BORDERS: BorderMode[] = ['constant', 'replicate', 'reflect'];

const dim = (max = 7) => fc.integer({ min: 1, max });
const shapeArb = (minRank = 1, maxRank = 4, max = 7) => fc.array(dim(max), { minLength: minRank, maxLength: maxRank });
/** A shape and another that broadcasts against it (some dims 1, maybe fewer leading dims). */
const broadcastPair = shapeArb(1, 4).chain((s) =>
  fc.tuple(fc.constant(s), fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }), fc.integer({ min: 0, max: s.length - 1 }))
    .map(([a, ones, drop]) => [a, a.map((d, i) => (ones[i] ? 1 : d)).slice(drop)] as [number[], number[]]));

describe('plan backend: outputs and memory equal the CPU backend, op by op', () => {
  it('cast between every pair of dtypes', async () => {
    for (const from of DTYPES) for (const to of DTYPES) await same(`cast ${from}->${to}`, [{ shape: [3, 5], dtype: from }], (x) => F.cast(x, to));
  });

  it('unary ops on every input dtype', async () => {
    for (const op of UNARY) {
      for (const dtype of DTYPES) await same(`${op} ${dtype}`, [{ shape: [2, 3, 5], dtype }], (x) => x.backend.unary(op, x, 0.5, 2));
    }
  });

  it('binary ops and where, broadcast over awkward shapes', async () => {
    await fc.assert(fc.asyncProperty(broadcastPair, fc.constantFrom(...BINARY), fc.constantFrom(...DTYPES), fc.boolean(), async ([a, b], op, dtype, swap) => {
      const [x, y] = swap ? [b, a] : [a, b];
      await same(`${op}`, [{ shape: x, dtype }, { shape: y }], (p, q) => (F as unknown as Record<string, (p: Tensor, q: Tensor) => Tensor>)[
        { add: 'add', sub: 'sub', mul: 'mul', div: 'div', max: 'maximum', min: 'minimum', pow: 'pow' }[op]](p, q));
      await same('where', [{ shape: y, dtype: 'i32', hi: 2 }, { shape: x, dtype }, { shape: [1] }], (c, p, q) => F.where(c, p, q));
    }), RUNS);
  });

  it('reductions, argmax, softmax, cumsum and topk over any axis', async () => {
    await fc.assert(fc.asyncProperty(shapeArb(1, 4), fc.nat(), fc.boolean(), fc.constantFrom(...REDUCE), fc.constantFrom(...FLOATS), fc.nat(),
      async (shape, ax, keep, op, dtype, kk) => {
        const axis = ax % shape.length;
        const x = [{ shape, dtype }];
        await same(`${op} ${axis}`, x, (t) => F.reduce(op, t, axis, keep));
        await same('argmax', x, (t) => F.argmax(t, axis, keep));
        await same('softmax', x, (t) => F.softmax(t, axis));
        await same('cumsum', x, (t) => F.cumsum(t, axis));
        await same('topk', x, (t) => F.topk(t, 1 + (kk % shape[shape.length - 1])));
      }), RUNS);
  });

  it('strided movement: permute, slice, flip, pad, expand, repeat, upsample, contiguous (f32 and i32)', async () => {
    await fc.assert(fc.asyncProperty(shapeArb(1, 5), fc.constantFrom(...DTYPES), fc.array(fc.nat(), { minLength: 8, maxLength: 8 }), fc.constantFrom(...BORDERS),
      async (shape, dtype, r, border) => {
        const x = [{ shape, dtype }];
        const rank = shape.length;
        const a = r[0] % rank;
        const perm = shape.map((_, i) => i).sort((i, j) => ((i * 7 + r[1]) % 5) - ((j * 7 + r[1]) % 5) || i - j);
        await same('permute', x, (t) => F.permute(t, perm));
        await same('slice', x, (t) => F.slice(t, a, (r[2] % (2 * shape[a] + 1)) - shape[a], r[3] % 2 ? undefined : r[3] % (shape[a] + 2), 1 + (r[4] % 3)));
        await same('flip', x, (t) => F.flip(t, a));
        const pads = shape.map((d, i) => [(r[5] + i) % (border === 'reflect' ? d : 4), (r[6] + 2 * i) % (border === 'reflect' ? d : 3)] as [number, number]);
        await same(`pad ${border}`, x, (t) => F.pad(t, pads, border, 1.5));
        await same('expand', [{ shape: shape.map((d, i) => (i === a ? 1 : d)), dtype }], (t) => F.expand(t, [2, ...shape]));
        await same('repeatInterleave', x, (t) => F.repeatInterleave(t, 1 + (r[7] % 3), a));
        await same('upsampleNearest', x, (t) => F.upsampleNearest(t, shape.slice(Math.max(0, rank - 3)).map((_, i) => 1 + ((r[7] + i) % 3))));
        await same('contiguous', x, (t) => F.contiguous(t));
      }), RUNS);
  });

  it('concat, tile, split, chunk and setSlice', async () => {
    await fc.assert(fc.asyncProperty(shapeArb(1, 4), fc.nat(), fc.array(dim(5), { minLength: 1, maxLength: 4 }), fc.constantFrom(...DTYPES), fc.boolean(),
      async (shape, ax, sizes, dtype, allI32) => {
        const a = ax % shape.length;
        const parts = sizes.map((s, k) => ({ shape: shape.map((d, i) => (i === a ? s : d)), dtype: allI32 ? 'i32' as const : k === 0 ? dtype : 'f32' as const }));
        await same('concat', parts, (...ts) => F.concat(ts, a));
        await same('tile', [parts[0]], (t) => F.tile(t, sizes.length, a));
        const total = sizes.reduce((s, v) => s + v, 0);
        const whole = { shape: shape.map((d, i) => (i === a ? total : d)), dtype };
        await same('split', [whole], (t) => F.split(t, sizes, a));
        await same('chunk', [whole], (t) => F.chunk(t, 1, a));
        const dst = { shape: whole.shape, dtype: allI32 ? 'i32' as const : 'f32' as const };
        await same('setSlice', [dst, parts[parts.length - 1]], (d, s) => {
          F.setSlice(d, s, shape.map((_, i) => (i === a ? total - sizes[sizes.length - 1] : 0)));
          return undefined;
        });
      }), RUNS);
  });

  it('embedding and indexSelect (f32, half and i32 tables; ids in and out of range)', async () => {
    await fc.assert(fc.asyncProperty(dim(9), dim(9), shapeArb(1, 3, 5), fc.constantFrom(...DTYPES), async (V, D, idShape, dtype) => {
      await same('embedding', [{ shape: [V, D], dtype }, { shape: idShape, dtype: 'i32', hi: V + 2 }], (t, ids) => F.embedding(t, ids));
      await same('indexSelect', [{ shape: [3, V, D], dtype }, { shape: idShape, dtype: 'i32', hi: V }], (t, ids) => F.indexSelect(t, 1, ids));
    }), RUNS);
  });

  it('matmul: batched, shared b, transposed operands, bias, alpha; linear', async () => {
    await fc.assert(fc.asyncProperty(shapeArb(0, 2, 4), dim(9), dim(9), dim(9), fc.boolean(), fc.boolean(), fc.boolean(), fc.boolean(), fc.constantFrom(...FLOATS),
      async (batch, M, N, K, transA, transB, shared, bias, dtype) => {
        const a = { shape: [...batch, ...(transA ? [K, M] : [M, K])], dtype };
        const b = { shape: [...(shared ? [] : batch), ...(transB ? [N, K] : [K, N])], dtype };
        const inputs = bias ? [a, b, { shape: [N] }] : [a, b];
        await same('matmul', inputs, (p, q, c) => F.matmul(p, q, { transA, transB, bias: c ?? null, alpha: 0.5 }));
        await same('linear', [{ shape: [...batch, M, K] }, { shape: [N, K], dtype }, { shape: [N] }], (x, w, c) => F.linear(x, w, c));
      }), RUNS);
  });

  it('conv 1d / 2d / 3d with stride, padding, dilation and groups', async () => {
    const convArb = fc.record({
      nd: fc.integer({ min: 1, max: 3 }), N: dim(2), groups: dim(3), cg: dim(3), og: dim(3),
      size: fc.array(dim(9), { minLength: 3, maxLength: 3 }), kernel: fc.array(dim(3), { minLength: 3, maxLength: 3 }),
      stride: fc.array(dim(3), { minLength: 3, maxLength: 3 }), padding: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 3, maxLength: 3 }),
      dilation: fc.array(dim(2), { minLength: 3, maxLength: 3 }), bias: fc.boolean(), dtype: fc.constantFrom(...FLOATS),
    }).filter((c) => c.size.every((s, i) => s + 2 * c.padding[i] >= c.dilation[i] * (c.kernel[i] - 1) + 1));
    await fc.assert(fc.asyncProperty(convArb, async (c) => {
      const sp = (v: number[]) => v.slice(0, c.nd);
      const inputs: Input[] = [
        { shape: [c.N, c.groups * c.cg, ...sp(c.size)] },
        { shape: [c.groups * c.og, c.cg, ...sp(c.kernel)], dtype: c.dtype },
        ...(c.bias ? [{ shape: [c.groups * c.og] }] : []),
      ];
      await same(`conv${c.nd}d`, inputs, (x, w, b) => F.conv(x, w, b ?? null, { stride: sp(c.stride), padding: sp(c.padding), dilation: sp(c.dilation), groups: c.groups }));
    }), RUNS);
  });

  it('layer, rms and group norm with and without affine parameters', async () => {
    await fc.assert(fc.asyncProperty(shapeArb(2, 4), dim(3), fc.boolean(), fc.constantFrom(...FLOATS), async (shape, g, affine, dtype) => {
      const D = shape[shape.length - 1];
      const p = (n: number) => (affine ? [{ shape: [n], dtype }] : []);
      await same('layerNorm', [{ shape, dtype }, ...p(D), ...p(D)], (x, w, b) => F.layerNorm(x, w ?? null, b ?? null, 1e-5));
      await same('rmsNorm', [{ shape, dtype }, ...p(D)], (x, w) => F.rmsNorm(x, w ?? null, 1e-6));
      const gshape = [shape[0], g * shape[1], ...shape.slice(2)];
      await same('groupNorm', [{ shape: gshape, dtype }, ...p(gshape[1]), ...p(gshape[1])], (x, w, b) => F.groupNorm(x, g, w ?? null, b ?? null, 1e-6));
    }), RUNS);
  });

  it('attention: GQA, causal, masks broadcast over batch and heads, kvLen below capacity', async () => {
    const attnArb = fc.record({
      B: dim(2), Hkv: dim(3), rep: dim(3), Lq: dim(6), Lk: dim(9), spare: fc.nat(3), D: dim(9), Dv: dim(9),
      causal: fc.boolean(), mask: fc.option(fc.tuple(fc.boolean(), fc.boolean())), dtype: fc.constantFrom(...FLOATS),
    });
    await fc.assert(fc.asyncProperty(attnArb, async (c) => {
      const Hq = c.Hkv * c.rep;
      const kvLen = c.Lk;
      const Lk = c.Lk + c.spare;
      const causal = c.causal && c.Lq <= kvLen;
      const inputs: Input[] = [
        { shape: [c.B, Hq, c.Lq, c.D], dtype: c.dtype }, { shape: [c.B, c.Hkv, Lk, c.D], dtype: c.dtype }, { shape: [c.B, c.Hkv, Lk, c.Dv], dtype: c.dtype },
        ...(c.mask ? [{ shape: [c.mask[0] ? c.B : 1, c.mask[1] ? Hq : 1, c.Lq, kvLen] }] : []),
      ];
      await same('attention', inputs, (q, k, v, m) => F.attention(q, k, v, { causal, mask: m ?? null, kvLen }));
    }), RUNS);
  });

  it('rope in both layouts and modes, tables shared or per batch', async () => {
    await fc.assert(fc.asyncProperty(dim(2), dim(3), dim(5), dim(4), fc.nat(), fc.constantFrom('bhld' as const, 'blhd' as const), fc.constantFrom('half' as const, 'interleaved' as const), fc.boolean(),
      async (B, H, L, halfD, r, layout, mode, perBatch) => {
        const D = 2 * halfD;
        const R = 2 * (1 + (r % halfD));
        const table = { shape: perBatch ? [B, L, R] : [L, R] };
        await same('rope', [{ shape: layout === 'bhld' ? [B, H, L, D] : [B, L, H, D] }, table, table], (x, c, s) => F.rope(x, c, s, { mode, layout }));
      }), RUNS);
  });
});

describe('plan backend: what it is', () => {
  it('is a fresh backend per call, named plan, software, with the CPU limits unless told a device', async () => {
    const a = planBackend();
    const b = planBackend({ limits: { maxBindingBytes: 128 * 2 ** 20, maxBufferBytes: undefined }, adapter: 'an emulated GPU' });
    expect(a).not.toBe(b);
    expect(a).toBeInstanceOf(PlanBackend);
    expect([a.name, a.software]).toEqual(['plan', true]);
    expect(a.limits).toEqual(new CpuBackend().limits);
    expect(b.limits).toEqual({ maxBufferBytes: new CpuBackend().limits.maxBufferBytes, maxBindingBytes: 128 * 2 ** 20 });
    expect(b.adapter).toBe('an emulated GPU');
    const t = F.zeros(a, [1000]);
    expect(a.memory()).toEqual({ liveBytes: 4000, peakBytes: 4000 });
    expect(b.memory()).toEqual({ liveBytes: 0, peakBytes: 0 });
    t.dispose();
    expect(a.memory()).toEqual({ liveBytes: 0, peakBytes: 4000 });
    a.resetPeakMemory();
    expect(a.memory().peakBytes).toBe(0);
  });

  it('reads give zeros of the CPU read types; large reads are refused, not allocated', async () => {
    const be = planBackend();
    const x = F.fromArray(be, [1, 2, 3], [3], 'bf16');
    const ids = F.fromArray(be, [4, 5], [2], 'i32');
    expect(await x.read()).toEqual(new Float32Array(3));
    expect(await x.readRaw()).toEqual(new Uint16Array(3));
    expect(await ids.read()).toEqual(new Int32Array(2));
    const big = be.alloc('bf16', PLAN_READ_LIMIT_BYTES / 4 + 1);
    const t = new Tensor(big, [big.length]);
    // 2 bytes each as stored but 4 once widened to f32: readRaw fits, read does not
    await expect(t.read()).rejects.toThrow(PlanLimitError);
    await expect(t.read()).rejects.toThrow(/reading back .* is refused/);
    expect((await t.readRaw()).length).toBe(big.length);
    t.dispose();
  });

  it('refuses what the CPU refuses: freed storage, another backend\'s tensor, a mistyped upload', () => {
    const be = planBackend();
    const x = F.zeros(be, [4]);
    const view = x.reshape([2, 2]);
    x.dispose();
    expect(be.memory().liveBytes).toBe(16);
    view.dispose();
    expect(be.memory().liveBytes).toBe(0);
    const y = F.zeros(be, [4]);
    be.free(y.storage);
    expect(() => be.unary('neg', y, 0, 0)).toThrow(/used after free/);
    be.free(y.storage);
    expect(be.memory().liveBytes).toBe(0);
    const other = F.zeros(planBackend(), [4]);
    expect(() => be.unary('neg', other, 0, 0)).toThrow(/does not live on this backend/);
    expect(() => be.upload('bf16', new Float32Array(2))).toThrow(TypeError);
    expect(() => be.alloc('f32', -1)).toThrow(RangeError);
  });

  it('refuses a tensor larger than one buffer of the emulated device, and reports the largest', () => {
    const be = planBackend({ limits: { maxBufferBytes: 4096 } });
    const x = F.zeros(be, [32, 32]);
    expect(be.largestTensorBytes()).toBe(4096);
    expect(() => F.concat([x, x], 0)).toThrow(PlanLimitError);
    expect(() => F.concat([x, x], 0)).toThrow(/8192 bytes\) is more than the 4096 bytes one buffer of plan/);
  });

  it('holds a 4 GiB tensor, and an op on it, without host memory', () => {
    const be = planBackend();
    const rss0 = process.memoryUsage().rss;
    const n = 2 ** 30;
    const { liveBytes, peakBytes } = scope(() => {
      const x = F.reshape(F.contiguous(F.zeros(be, [1])), [1]);
      const big = F.expand(x, [n]);
      const y = F.silu(F.cast(big, 'bf16'));
      expect([y.shape, y.dtype]).toEqual([[n], 'f32']);
      return be.memory();
    });
    expect(liveBytes).toBe(4 + 4 + 4 * n + 2 * n + 4 * n);
    expect(peakBytes).toBe(liveBytes);
    expect(be.memory().liveBytes).toBe(0);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(100 * 2 ** 20);
  });
});

describe('plan backend: whole workflows reach the CPU peak', () => {
  const cases = ['tokenizer/cv_video', 'tokenizer/dv_video', 'tokenizer/diffusers_vae', 'dit/cosmos2_forward', 'dit/edm_sampling'];
  for (const name of cases) {
    it(`${name}: the conformance case, loaded and run, peaks and ends at the same bytes`, async () => {
      const dir = `${FIXTURES}${name}`;
      const cpu = new CpuBackend();
      const plan = planBackend();
      const want = await runCase(dir, cpu);
      expect(want.error).toBeNull();
      const got = await runCase(dir, plan);
      expect(got.error).toBeNull();
      expect(plan.memory()).toEqual(cpu.memory());
      expect(cpu.memory().peakBytes).toBeGreaterThan(0);
    });
  }

  it('a model planned from its checkpoint header takes the bytes a real load takes, reading no data', async () => {
    const dir = `${FIXTURES}tokenizer/cv_video/model.safetensors`;
    const cpu = new CpuBackend();
    const real = await loadModule(CosmosTokenizerFamily, dir, cpu);
    const plan = planBackend();
    const ckpt = await openCheckpoint(dir);
    try {
      const model = CosmosTokenizerFamily.build(real.config);
      await loadWeights(model, shapeOnlySource(ckpt), plan, CosmosTokenizerFamily.loadOptions!(model, ckpt));
      expect(plan.memory()).toEqual(cpu.memory());
      const video = (be: Backend) => F.zeros(be, [1, 3, 9, 32, 32]);
      cpu.resetPeakMemory();
      plan.resetPeakMemory();
      const run = (m: typeof model, be: Backend) => scope(() => {
        const tok = m as unknown as { encode(x: Tensor): Tensor; decode(z: Tensor): Tensor };
        return tok.decode(tok.encode(video(be))).shape;
      });
      expect(run(model, plan)).toEqual(run(real.model, cpu));
      expect(plan.memory()).toEqual(cpu.memory());
      model.dispose();
      real.model.dispose();
      // what stays alive (constants a model caches per backend) is the same too
      expect(plan.memory()).toEqual(cpu.memory());
    } finally {
      await ckpt.close();
    }
  });

  it('a model known only by its config gets every declared parameter, in the dtype asked', async () => {
    const dir = `${FIXTURES}tokenizer/cv_video/model.safetensors`;
    const { config } = await loadModule(CosmosTokenizerFamily, dir, planBackend());
    const model = CosmosTokenizerFamily.build(config);
    const plan = planBackend();
    await loadWeights(model, declaredSource(model, 'bf16'), plan);
    expect(plan.memory().liveBytes).toBe(2 * model.parameterCount());
    expect([...model.parameters()].every((p) => p.loaded && p.t.dtype === 'bf16')).toBe(true);
    model.dispose();
  });

  it('bench/memory-plan.ts plans each tokenizer op at the peak the CPU reaches running it with the real weights', async () => {
    const weights = `${FIXTURES}tokenizer/cv_video/model.safetensors`;
    const shape = { batch: 1, frames: 17, height: 40, width: 24, chunk: 8 };
    for (const op of Object.keys(MODELS.tokenizer.ops)) {
      const row = await planOp('tokenizer', op, { weights }, shape);
      const cpu = new CpuBackend();
      const real = await loadModule(CosmosTokenizerFamily, weights, cpu);
      const parameters = cpu.memory().liveBytes;
      cpu.resetPeakMemory();
      await scopeAsync(async () => freeAll(await MODELS.tokenizer.ops[op].run(real.model, cpu, shape)));
      expect([row.parameter_bytes, row.peak_bytes, row.retained_bytes], op).toEqual([parameters, cpu.memory().peakBytes, cpu.memory().liveBytes - parameters]);
      real.model.dispose();
    }
  });
});
