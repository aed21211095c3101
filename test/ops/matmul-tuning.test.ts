// The matmul's per-adapter tuning (src/engine/tuning.ts, autotune.ts) on WebGPU. llvmpipe normally
// feeds the matmul through textures and ignores the table; matmulConfig.software = false sends it
// down the storage-buffer path that hardware GPUs take, so every candidate a table may name runs
// here against the CPU oracle: the registry's matmul cases (tolerances from the registry) and
// fast-check shapes (1, odd, primes, past every tile). autotune runs with an injected timer so its
// choice is deterministic, and with a backend whose reads are corrupted for one candidate, which
// must be discarded before any time of it is taken.
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LINALG_CASES, matmulTol } from '../../src/conform/op-cases/linalg.js';
import { type TuneTiming, autotune, tuningTable } from '../../src/engine/autotune.js';
import type { Backend } from '../../src/engine/backend.js';
import type { DType } from '../../src/engine/dtype.js';
import { UserError } from '../../src/engine/errors.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import {
  DEFAULT_MATMUL_TUNING, MATMUL_CLASSES, type MatmulChoice, type MatmulClass, type TuningTable, choiceLabel, matmulCandidates, parseTuning,
} from '../../src/engine/tuning.js';
import type { WebGpuBackend } from '../../src/engine/webgpu/backend.js';
import type { DispatchArgs } from '../../src/engine/webgpu/context.js';
import { matmulConfig, pickMatmul } from '../../src/engine/webgpu/ops/matmul.js';
import { checkOps } from '../../src/pipelines/check-ops.js';
import { assertClose, awkwardDim, cpu, gpu, gpuRuns, randomValues } from '../harness.js';

let be: WebGpuBackend;
/** the entries dispatched through the context since the last reset */
let entries: string[] = [];

beforeAll(async () => {
  be = await gpu();
  const dispatch = be.ctx.dispatch.bind(be.ctx);
  be.ctx.dispatch = (args: DispatchArgs) => {
    entries.push(args.entry);
    dispatch(args);
  };
  matmulConfig.software = false;
}, 60_000);

afterEach(() => {
  be.setTuning(null);
  entries = [];
});

afterAll(() => {
  matmulConfig.software = undefined;
});

/** Every candidate any class may be given, once. */
const CANDIDATES: MatmulChoice[] = [...new Map(MATMUL_CLASSES.flatMap(matmulCandidates).map((c) => [choiceLabel(c), c])).values()];
const ENTRY: Record<MatmulChoice['version'], string> = {
  v1_naive: 'mm_v1_naive', v2_shared: 'mm_v2_shared', v3_reg4: 'mm_v3_reg4', v4_reg16: 'mm_v4_reg16', v7_shared8x8: 'mm_v7_shared8x8', gemv_split: 'gemv_split',
};

/** A table giving `c` to every class that may take it (gemv_split only takes the GEMV class). */
function everywhere(c: MatmulChoice): TuningTable {
  return tuningTable(be, Object.fromEntries(MATMUL_CLASSES.map((cls) => [cls, c.version === 'gemv_split' && cls !== 'gemv' ? DEFAULT_MATMUL_TUNING[cls] : c])) as Record<MatmulClass, MatmulChoice>);
}

const pick = (M: number, K: number, N: number, transB = false, transA = false) => {
  const a = F.fromArray(be, new Float32Array(M * K), transA ? [K, M] : [M, K]);
  const b = F.fromArray(be, new Float32Array(N * K), transB ? [N, K] : [K, N]);
  const p = pickMatmul(be, a, b, { transA, transB, M, N, K, batch: 1, batchB: 1, alpha: 1 });
  a.dispose();
  b.dispose();
  return `${p.version}/${p.wg}`;
};

describe('matmul tuning on the storage-buffer path', () => {
  it('without a table picks what the engine picked before tables existed', () => {
    expect(pick(2, 2, 2)).toBe('v1_naive/64');
    expect(pick(1, 512, 300, true)).toBe('gemv_split/64');
    expect(pick(1, 512, 300, false)).toBe('v3_reg4/64'); // not nn.Linear-shaped, M N < 64 * 64
    expect(pick(1, 64, 4100, false)).toBe('v2_shared/64');
    expect(pick(40, 64, 60)).toBe('v3_reg4/64');
    expect(pick(16, 64, 512, true)).toBe('v2_shared/64');
    expect(pick(256, 1024, 256)).toBe('v2_shared/64');
    expect(pick(300, 300, 300, false, true)).toBe('v2_shared/64');
  });

  it('routes each class through the table, and falls back to the class default where the tuned entry cannot take the shape', () => {
    be.setTuning(tuningTable(be, { ...DEFAULT_MATMUL_TUNING, square: { version: 'v4_reg16', wg: 128 }, small: { version: 'v1_naive', wg: 32 } }));
    expect(pick(256, 256, 256)).toBe('v4_reg16/128');
    expect(pick(256, 256, 255)).toBe('v2_shared/64'); // v4 stores 4-wide: N % 4 != 0 takes the default
    expect(pick(40, 64, 60)).toBe('v1_naive/32');
    expect(pick(1, 512, 300, true)).toBe('gemv_split/64');
    be.setTuning(null);
    expect(pick(256, 256, 256)).toBe('v2_shared/64');
  });

  // Every case for the first workgroup size of each entry; the other sizes change only how the
  // one-tile-per-invocation index is grouped, so four cases (bT + bias, aT, batched b, N % 4 == 0
  // for v4's 4-wide stores) cover them (each new specialisation of the big tiles costs seconds of
  // llvmpipe JIT).
  const cases = LINALG_CASES.filter((c) => c.family === 'matmul');
  const someCases = cases.filter((c) => /bT \+bias|aT|b batched|N128/.test(c.shape));
  const firstOfEntry = new Set(CANDIDATES.filter((c, i) => CANDIDATES.findIndex((d) => d.version === c.version) === i));
  it('the short list of cases is the one meant', () => expect(someCases).toHaveLength(4));
  it.each(CANDIDATES.map((c) => [choiceLabel(c), firstOfEntry.has(c) ? 'every matmul case' : 'four matmul cases', c] as const))('candidate %s passes %s of the op registry', async (_label, _n, c) => {
    be.setTuning(everywhere(c));
    const chosen = firstOfEntry.has(c) ? cases : someCases;
    const { results } = await checkOps({ backends: [be], oracle: cpu, cases: chosen, timeReps: 0 });
    for (const r of results) expect(r.pass, `${r.case}: ${r.error ?? `max_abs ${r.max_abs} worst ${JSON.stringify(r.worst)}`}`).toBe(true);
    expect(results).toHaveLength(chosen.length);
    expect(entries, 'the candidate ran').toContain(ENTRY[c.version]);
  }, 60_000);

  it('every candidate matches the oracle over awkward shapes, layouts and dtypes', async () => {
    const arb = fc.record({
      c: fc.constantFrom(...CANDIDATES),
      batch: fc.integer({ min: 1, max: 2 }),
      M: awkwardDim(70),
      K: fc.oneof(awkwardDim(40), fc.constantFrom(256, 263)),
      N: awkwardDim(70),
      transA: fc.boolean(),
      transB: fc.boolean(),
      bDtype: fc.constantFrom<DType>('f32', 'bf16', 'f16'),
      bias: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arb, fc.nat(1000), async (r, seed) => {
      const av = randomValues(r.batch * r.M * r.K, `a${seed}`);
      const bv = randomValues(r.K * r.N, `b${seed}`);
      const cv = randomValues(r.N, `c${seed}`);
      const made: Tensor[] = [];
      const run = (backend: Backend) => {
        const a = F.fromArray(backend, av, [r.batch, ...(r.transA ? [r.K, r.M] : [r.M, r.K])]);
        const b = F.fromArray(backend, bv, r.transB ? [r.N, r.K] : [r.K, r.N], r.bDtype);
        const bias = r.bias ? F.fromArray(backend, cv, [r.N]) : null;
        const y = F.matmul(a, b, { transA: r.transA, transB: r.transB, bias });
        made.push(a, b, y, ...(bias ? [bias] : []));
        return y;
      };
      be.setTuning(everywhere(r.c));
      try {
        assertClose(await run(be).read(), await run(cpu).read(), matmulTol(r.K), `${choiceLabel(r.c)} ${JSON.stringify({ ...r, c: undefined })}`);
      } finally {
        for (const t of made) t.dispose();
      }
    }), gpuRuns(8));
  }, 60_000);
});

describe('autotune', () => {
  // one tiny problem per class: the choice comes from the injected timer, the checks are real;
  // one layout (K % 4 == 0, N % 4 == 0, nothing transposed) outside the GEMV so that each entry compiles once
  const shapes = {
    gemv: { M: 1, K: 256, N: 36, transB: true, bDtype: 'bf16' as const },
    small: { M: 9, K: 40, N: 32 },
    skinny: { M: 16, K: 24, N: 260 },
    tallK: { M: 64, K: 200, N: 68 },
    square: { M: 72, K: 40, N: 68 },
  };
  const candidates = (cls: MatmulClass): MatmulChoice[] =>
    cls === 'gemv' ? [{ version: 'gemv_split' }, { version: 'v3_reg4', wg: 64 }]
      : cls === 'small' ? [{ version: 'v3_reg4', wg: 64 }, { version: 'v3_reg4', wg: 32 }]
        : [{ version: 'v2_shared' }, { version: 'v7_shared8x8' }, { version: 'v4_reg16', wg: 64 }];
  /** seconds per class and candidate label; anything unlisted takes 1 s */
  const fakeTimer = (times: Record<string, number>, calls: string[]) =>
    async (run: () => Tensor, what: { class: MatmulClass; candidate: MatmulChoice }): Promise<TuneTiming> => {
      const key = `${what.class} ${choiceLabel(what.candidate)}`;
      calls.push(key);
      run().dispose(); // the timed work is enqueued, as a real timer would
      return { seconds: times[key] ?? 1, clock: 'injected' };
    };

  it('picks the fastest checked candidate per class and returns a table the backend and parseTuning take', async () => {
    const calls: string[] = [];
    const events: string[] = [];
    const table = await autotune(be, {
      shapes, candidates,
      timer: fakeTimer({ 'gemv v3_reg4/wg64': 0.5, 'small v3_reg4/wg32': 0.2, 'skinny v4_reg16/wg64': 0.3, 'tallK v2_shared': 0.9, 'square v7_shared8x8': 0.1 }, calls),
      onEvent: (e) => events.push(`${e.class} ${e.candidate}`),
    });
    expect(table.matmul).toEqual({
      gemv: { version: 'v3_reg4', wg: 64 },
      small: { version: 'v3_reg4', wg: 32 },
      skinny: { version: 'v4_reg16', wg: 64 },
      tallK: { version: 'v2_shared' },
      square: { version: 'v7_shared8x8' },
    });
    expect(calls).toHaveLength(2 + 2 + 3 + 3 + 3);
    expect(events).toEqual(calls);
    expect(table.measurements.every((m) => m.note === null && m.clock === 'injected')).toBe(true);
    expect(table.adapter).toBe(be.adapter);
    expect(be.tuning, 'the backend is left as it was').toBeNull();
    const parsed = parseTuning(JSON.parse(JSON.stringify(table)), 'table.json');
    expect(parsed.matmul).toEqual(table.matmul);
    be.setTuning(parsed);
    expect(pick(256, 256, 256)).toBe('v7_shared8x8/64');
  }, 60_000);

  it('discards a wrong candidate before timing it, however fast, and keeps the default within the noise margin', async () => {
    // reads are corrupted while the square class runs v7: a kernel that is fast and wrong
    const liar = Object.create(be) as WebGpuBackend;
    liar.read = async (t) => {
      const v = await be.read.call(liar, t);
      if (liar.tuning?.matmul.square.version === 'v7_shared8x8' && v.length > 100) v[7] += 0.5;
      return v;
    };
    const calls: string[] = [];
    const table = await autotune(liar, {
      shapes, candidates, classes: ['square', 'small'],
      timer: fakeTimer({ 'square v7_shared8x8': 0.01, 'square v4_reg16/wg64': 0.5, 'square v2_shared': 0.6, 'small v3_reg4/wg64': 1, 'small v3_reg4/wg32': 0.99 }, calls),
    });
    expect(calls).not.toContain('square v7_shared8x8');
    const v7 = table.measurements.find((m) => m.candidate === 'v7_shared8x8')!;
    expect(v7.seconds).toBeNull();
    expect(v7.note).toMatch(/^wrong result, discarded: element 7: got /);
    expect(table.matmul.square).toEqual({ version: 'v4_reg16', wg: 64 });
    expect(table.matmul.small, '1% faster is noise').toEqual(DEFAULT_MATMUL_TUNING.small);
    expect(table.matmul.gemv, 'untuned classes keep their defaults').toEqual(DEFAULT_MATMUL_TUNING.gemv);
  }, 60_000);

  it('refuses a problem that is not of its class and a backend without tunable kernels', async () => {
    await expect(autotune(be, { shapes: { square: { M: 4, K: 4, N: 4 } }, classes: ['square'] })).rejects.toThrow(/^autotune: shapes.square: M4 K4 N4 b f32 is not of the class square \(it is small\)$/);
    await expect(autotune(cpu)).rejects.toThrow(UserError);
  });
});

describe('tuning tables', () => {
  const good = () => JSON.parse(JSON.stringify(tuningTable(be, { ...DEFAULT_MATMUL_TUNING, square: { version: 'v7_shared8x8' } })));
  it.each([
    ['not an object', () => [1, 2], /expected a JSON object/],
    ['another format', () => ({ ...good(), format: 'cosmos-ts tuning 99' }), /"format" must be "cosmos-ts tuning 1"; got "cosmos-ts tuning 99"/],
    ['no adapter', () => ({ ...good(), adapter: '' }), /"adapter" must be the adapter name/],
    ['an unknown class', () => ({ ...good(), matmul: { ...good().matmul, huge: { version: 'v2_shared' } } }), /"matmul.huge": unknown shape class \(expected gemv, small, skinny, tallK, square\)/],
    ['an unknown entry', () => ({ ...good(), matmul: { square: { version: 'v9_magic' } } }), /"matmul.square.version" must be one of v1_naive, .*; got "v9_magic"/],
    ['a workgroup size on a fixed-size entry', () => ({ ...good(), matmul: { square: { version: 'v2_shared', wg: 64 } } }), /"matmul.square.wg" must be one of 32, 64, 128, 256, and only with v1_naive \/ v3_reg4 \/ v4_reg16; got 64/],
    ['an odd workgroup size', () => ({ ...good(), matmul: { small: { version: 'v3_reg4', wg: 48 } } }), /"matmul.small.wg" must be one of/],
    ['the GEMV entry outside its class', () => ({ ...good(), matmul: { square: { version: 'gemv_split' } } }), /gemv_split takes only the gemv class/],
  ])('refuses %s with one line naming the file', (_what, make, re) => {
    let err: unknown;
    try {
      parseTuning(make(), 'tune.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^tune\.json: not a cosmos-ts tuning table: /);
    expect(msg).toMatch(re);
    expect(msg).not.toContain('\n');
  });

  it('fills classes a table leaves out with their defaults', () => {
    const t = parseTuning({ ...good(), matmul: { square: { version: 'v4_reg16', wg: 128 } } }, 'x');
    expect(t.matmul).toEqual({ ...DEFAULT_MATMUL_TUNING, square: { version: 'v4_reg16', wg: 128 } });
  });

  it('setTuning refuses a table of another adapter and changes nothing', () => {
    const mine = parseTuning(good(), 'x');
    be.setTuning(mine);
    expect(() => be.setTuning({ ...mine, adapter: 'NVIDIA / hopper / H100 (vulkan, core)' })).toThrow(
      /^tuning: the table was made for "NVIDIA \/ hopper \/ H100 \(vulkan, core\)", this backend runs on ".*" \(run 'cosmos-ts tune' on this adapter\)$/,
    );
    expect(be.tuning).toEqual(mine);
    expect(() => be.setTuning({ ...mine, matmul: { ...mine.matmul, small: { version: 'v5_tex32x16' as 'v3_reg4' } } })).toThrow(
      /^tuning: not a cosmos-ts tuning table: "matmul.small.version" must be one of /,
    );
    expect(be.tuning).toEqual(mine);
  });
});
