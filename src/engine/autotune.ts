// autotune: time the matmul's candidate entries / tile parameters of each shape class on one
// backend and return the table of the fastest (src/engine/tuning.ts). Each candidate's result is
// compared with the default's on the same inputs BEFORE its time is taken: a candidate that is
// wrong (or fails to run) is discarded with a note, however fast. Kernel time comes from timestamp
// queries where the adapter has them, else synced wall time after a warm-up; best of a few runs.
import type { Backend } from './backend.js';
import type { DType } from './dtype.js';
import { UserError, throwIfAborted } from './errors.js';
import * as F from './ops.js';
import type { Tensor } from './tensor.js';
import {
  DEFAULT_MATMUL_TUNING, MATMUL_CLASSES, type MatmulChoice, type MatmulClass, type MatmulTuning, TUNING_FORMAT,
  type TuningMeasurement, type TuningTable, choiceLabel, matmulCandidates, matmulClass, matmulTolerance,
} from './tuning.js';

/** One timing class's problem: a [M, K] @ b ([K, N], or [N, K] when transB). */
export interface TuneShape {
  M: number;
  K: number;
  N: number;
  transB?: boolean;
  /** the dtype of b (the weight); a is f32 */
  bDtype?: DType;
}

/** What a timer measured: best-of seconds of one run, and by which clock. */
export interface TuneTiming {
  seconds: number;
  clock: TuningMeasurement['clock'];
}

/** Something autotune did, for a progress display. */
export interface TuneEvent {
  class: MatmulClass;
  shape: string;
  candidate: string;
  /** null when discarded */
  seconds: number | null;
  note: string | null;
}

export interface AutotuneOptions {
  /** smaller problems and fewer runs (seconds on a GPU; still a minute or two on a software adapter) */
  quick?: boolean;
  /** timed runs per candidate, the best counted (default 3; quick 2) */
  reps?: number;
  /** the classes to tune (default all); the others keep their defaults */
  classes?: readonly MatmulClass[];
  /** the problem timed for a class (default: a typical one of the class, see TUNE_SHAPES) */
  shapes?: Partial<Record<MatmulClass, TuneShape>>;
  /** the candidates of a class (default matmulCandidates); the class default is always timed too */
  candidates?: (cls: MatmulClass) => MatmulChoice[];
  /**
   * Measures `run` (which enqueues one matmul and returns its output); default: the backend's
   * timestamp queries where it has them, else synced wall time, best of `reps`. Tests inject one.
   */
  timer?: (run: () => Tensor, what: { class: MatmulClass; candidate: MatmulChoice; reps: number }) => Promise<TuneTiming>;
  /** a candidate must beat the default by this fraction to replace it (default 0.03: timing noise) */
  minGain?: number;
  onEvent?: (e: TuneEvent) => void;
  signal?: AbortSignal;
}

/** The problem timed per class (full, quick): each lands in its class (checked). */
export const TUNE_SHAPES: Readonly<Record<MatmulClass, readonly [TuneShape, TuneShape]>> = {
  gemv: [{ M: 1, K: 4096, N: 4096, transB: true, bDtype: 'bf16' }, { M: 1, K: 1024, N: 1024, transB: true, bDtype: 'bf16' }],
  small: [{ M: 48, K: 2048, N: 64 }, { M: 48, K: 512, N: 64 }],
  skinny: [{ M: 16, K: 2048, N: 4096, transB: true }, { M: 16, K: 512, N: 1024, transB: true }],
  tallK: [{ M: 256, K: 8192, N: 256 }, { M: 128, K: 2048, N: 128 }],
  square: [{ M: 2048, K: 2048, N: 2048 }, { M: 512, K: 512, N: 512 }],
};

const shapeText = (s: TuneShape) => `M${s.M} K${s.K} N${s.N}${s.transB ? ' bT' : ''} b ${s.bDtype ?? 'f32'}`;

/** The adapter key and identity a table records (Backend.adapter and its DeviceInfo). */
function deviceOf(be: Backend): TuningTable['device'] {
  const d = be.deviceInfo;
  return { vendor: d?.vendor ?? '', architecture: d?.architecture ?? '', device: d?.device ?? '', description: d?.description ?? '', api: d?.api ?? '' };
}

/** A table of `matmul` for this backend (what setTuning takes). */
export function tuningTable(be: Backend, matmul: MatmulTuning, extra: Partial<Pick<TuningTable, 'measurements' | 'notes'>> = {}): TuningTable {
  return {
    format: TUNING_FORMAT,
    adapter: be.adapter,
    device: deviceOf(be),
    created: new Date().toISOString(),
    matmul: { ...matmul },
    applies: !be.software,
    measurements: extra.measurements ?? [],
    notes: extra.notes ?? [],
  };
}

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Synced wall time, or the adapter's timestamps; the caller has already run `run` once (the warm-up). */
function defaultTimer(be: Backend): NonNullable<AutotuneOptions['timer']> {
  return async (run, { reps }) => {
    let best = Infinity;
    let clock: TuneTiming['clock'] = 'wall';
    for (let r = 0; r < reps; r++) {
      if (be.timeKernels) {
        const { result, ns } = await be.timeKernels(run);
        result.dispose();
        if (ns !== null) {
          clock = 'timestamps';
          best = Math.min(best, ns / 1e9);
          continue;
        }
      }
      const t0 = performance.now();
      run().dispose();
      await be.sync();
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return { seconds: best, clock };
  };
}

/** Largest |got - want| beyond atol + rtol |want| (0 when within), as check-ops compares. */
function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, K: number): string | null {
  const { atol, rtol } = matmulTolerance(K);
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) return `element ${i}: got ${g}, the default gives ${w} (atol ${atol}, rtol ${rtol})`;
  }
  return null;
}

/**
 * Tune the matmul on `be` (a backend with setTuning: WebGPU) and return the table; the backend's
 * own tuning is left as it was (apply the result with be.setTuning). On a software adapter the
 * table is made all the same but says `applies: false`: the matmul reads through textures there.
 */
export async function autotune(be: Backend, opts: AutotuneOptions = {}): Promise<TuningTable> {
  if (!be.setTuning) throw new UserError(`autotune: the ${be.name} backend has no tunable kernels (use webgpu)`);
  const quick = opts.quick === true;
  const reps = opts.reps ?? (quick ? 2 : 3);
  const minGain = opts.minGain ?? 0.03;
  const timer = opts.timer ?? defaultTimer(be);
  const candidatesOf = opts.candidates ?? matmulCandidates;
  const before = be.tuning ?? null;
  const chosen: MatmulTuning = { ...DEFAULT_MATMUL_TUNING };
  const measurements: TuningMeasurement[] = [];
  const notes: string[] = [];
  if (be.software) notes.push(`${be.adapter}: a software adapter; its matmul reads operands through textures, so this table is not used there`);
  const setClass = (cls: MatmulClass, c: MatmulChoice) => be.setTuning!(tuningTable(be, { ...DEFAULT_MATMUL_TUNING, [cls]: c }));
  try {
    for (const cls of opts.classes ?? MATMUL_CLASSES) {
      const shape = opts.shapes?.[cls] ?? TUNE_SHAPES[cls][quick ? 1 : 0];
      const { M, K, N, transB = false, bDtype = 'f32' } = shape;
      if (matmulClass({ M, N, K, transA: false, transB }) !== cls) {
        throw new UserError(`autotune: shapes.${cls}: ${shapeText(shape)} is not of the class ${cls} (it is ${matmulClass({ M, N, K, transA: false, transB })})`);
      }
      const label = shapeText(shape);
      const a = F.fromArray(be, seeded(M * K, 1), [M, K]);
      const b = F.fromArray(be, seeded(K * N, 2), transB ? [N, K] : [K, N], bDtype);
      const run = () => F.matmul(a, b, { transB });
      try {
        be.setTuning(null);
        const ref = run();
        const want = await ref.read();
        ref.dispose();
        const def = DEFAULT_MATMUL_TUNING[cls];
        const list = [def, ...candidatesOf(cls).filter((c) => choiceLabel(c) !== choiceLabel(def))];
        let best: { c: MatmulChoice; s: number } | null = null;
        let defaultSeconds = Infinity;
        for (const c of list) {
          throwIfAborted(opts.signal);
          const candidate = choiceLabel(c);
          let note: string | null = null;
          let timing: TuneTiming | null = null;
          try {
            setClass(cls, c);
            // the checked run is also the warm-up (pipeline compiled, buffers pooled)
            const out = run();
            const got = await out.read();
            out.dispose();
            note = got.length === want.length ? firstMismatch(got, want, K) : `${got.length} outputs, the default gives ${want.length}`;
            if (note) note = `wrong result, discarded: ${note}`;
            else timing = await timer(run, { class: cls, candidate: c, reps });
          } catch (e) {
            note = `failed, discarded: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`;
          }
          const seconds = timing && Number.isFinite(timing.seconds) ? timing.seconds : null;
          if (timing && seconds === null) note = 'no time measured, discarded';
          measurements.push({ class: cls, shape: label, candidate, seconds, clock: timing?.clock ?? 'wall', note });
          opts.onEvent?.({ class: cls, shape: label, candidate, seconds, note });
          if (seconds === null) continue;
          if (c === def) defaultSeconds = seconds;
          if (!best || seconds < best.s) best = { c, s: seconds };
        }
        // the default stays unless a candidate beats it clearly (or the default itself could not run)
        if (best && (best.c === def || best.s < defaultSeconds * (1 - minGain))) chosen[cls] = { ...best.c };
      } finally {
        a.dispose();
        b.dispose();
      }
    }
  } finally {
    be.setTuning(before);
  }
  return tuningTable(be, chosen, { measurements, notes });
}
