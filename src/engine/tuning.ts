// Per-adapter tuning of the matmul's storage-buffer path (the path hardware GPUs take; Mesa's and
// Chromium's software adapters feed the matmul through textures instead and ignore the table):
// which entry, and which tile / workgroup parameters, each shape class runs. The defaults are the
// choices the engine made before tables existed, so an untuned backend behaves as it always did.
// A table is plain JSON, made by autotune() (src/engine/autotune.ts) on one adapter and refused on
// any other: timings do not transfer between GPUs, drivers or APIs.
import type { MatmulParams } from './backend.js';
import { UserError } from './errors.js';

/** The storage-buffer entries a class may run (kernels/matmul.wgsl.ts says what each one is). */
export type StorageVersion = 'v1_naive' | 'v2_shared' | 'v3_reg4' | 'v4_reg16' | 'v7_shared8x8' | 'gemv_split';

export const STORAGE_VERSIONS: readonly StorageVersion[] = ['v1_naive', 'v2_shared', 'v3_reg4', 'v4_reg16', 'v7_shared8x8', 'gemv_split'];

/** Workgroup sizes (invocations) the one-tile-per-invocation entries (v1, v3, v4) take as an override. */
export const FLAT_WGS = [32, 64, 128, 256] as const;

/** Entries whose workgroup size is an override (the shared-memory and GEMV entries fix theirs). */
export const FLAT_VERSIONS: readonly StorageVersion[] = ['v1_naive', 'v3_reg4', 'v4_reg16'];

export interface MatmulChoice {
  version: StorageVersion;
  /** invocations per workgroup, for FLAT_VERSIONS only (default 64) */
  wg?: number;
}

/**
 * Shape classes of a call on the storage path (tiny calls, under 4096 multiply-adds or K = 0, always
 * run v1 and are not tuned):
 *   gemv    M <= 4, b stored [N, K], a not transposed, K >= 256: the decode-step nn.Linear
 *   small   M N < 64 * 64 outputs
 *   skinny  min(M, N) < 32: a 64-wide tile is mostly idle along one side
 *   tallK   K >= 2 max(M, N): few output tiles, each with a long reduction
 *   square  the rest
 */
export type MatmulClass = 'gemv' | 'small' | 'skinny' | 'tallK' | 'square';

export const MATMUL_CLASSES: readonly MatmulClass[] = ['gemv', 'small', 'skinny', 'tallK', 'square'];

export type MatmulTuning = Record<MatmulClass, MatmulChoice>;

/** What the engine ran before tuning existed: the table of an untuned backend. */
export const DEFAULT_MATMUL_TUNING: Readonly<MatmulTuning> = Object.freeze({
  gemv: { version: 'gemv_split' },
  small: { version: 'v3_reg4', wg: 64 },
  skinny: { version: 'v2_shared' },
  tallK: { version: 'v2_shared' },
  square: { version: 'v2_shared' },
});

export function matmulClass(p: Pick<MatmulParams, 'M' | 'N' | 'K' | 'transA' | 'transB'>): MatmulClass {
  const { M, N, K } = p;
  if (M <= 4 && p.transB && !p.transA && K >= 256) return 'gemv';
  if (M * N < 64 * 64) return 'small';
  if (Math.min(M, N) < 32) return 'skinny';
  if (K >= 2 * Math.max(M, N)) return 'tallK';
  return 'square';
}

/** The candidates autotune times for a class (the default first). */
export function matmulCandidates(cls: MatmulClass): MatmulChoice[] {
  const flat = (version: StorageVersion) => FLAT_WGS.map((wg) => ({ version, wg }));
  const shared: MatmulChoice[] = [{ version: 'v2_shared' }, { version: 'v7_shared8x8' }];
  switch (cls) {
    case 'gemv':
      // the GEMV kernel itself is tuned elsewhere (subgroups); here only whether a tiled entry beats it
      return [{ version: 'gemv_split' }, { version: 'v3_reg4', wg: 64 }, { version: 'v3_reg4', wg: 256 }];
    case 'small':
      return [{ version: 'v3_reg4', wg: 64 }, ...flat('v3_reg4').filter((c) => c.wg !== 64), { version: 'v1_naive', wg: 64 }, { version: 'v2_shared' }];
    default:
      return [...shared, ...flat('v3_reg4'), { version: 'v4_reg16', wg: 64 }, { version: 'v4_reg16', wg: 128 }];
  }
}

/**
 * How far a matmul result may be from the oracle's (or one candidate's from another's): K products
 * summed in f32 in another order, error ~sqrt(K) 2^-24 |a||b| in practice, so atol 1e-5 max(1, sqrt K),
 * rtol 1e-4 (~10x headroom; test/ops/matmul.test.ts argues it). The op registry's matmul cases use it.
 */
export function matmulTolerance(K: number): { atol: number; rtol: number } {
  return { atol: 1e-5 * Math.max(1, Math.sqrt(K)), rtol: 1e-4 };
}

export const choiceLabel = (c: MatmulChoice): string => (FLAT_VERSIONS.includes(c.version) ? `${c.version}/wg${c.wg ?? 64}` : c.version);

// ------------------------------------------------------------------ the table file

export const TUNING_FORMAT = 'cosmos-ts tuning 1';

/** One timed candidate, as autotune saw it (for the record; the choice is in `matmul`). */
export interface TuningMeasurement {
  class: MatmulClass;
  shape: string;
  candidate: string;
  /** best-of seconds of one run; null when the candidate was discarded */
  seconds: number | null;
  /** 'timestamps' (GPU kernel time) or 'wall' (synced wall time after a warm-up) */
  clock: 'timestamps' | 'wall' | 'injected';
  /** why it was discarded (wrong result, failed to run), or null */
  note: string | null;
}

export interface TuningTable {
  format: typeof TUNING_FORMAT;
  /** the backend's adapter string (Backend.adapter): the key a table is checked against */
  adapter: string;
  /** the adapter's identity as it reported it, for people reading the file */
  device: { vendor: string; architecture: string; device: string; description: string; api: string };
  created: string;
  matmul: MatmulTuning;
  /** where the matmul took the table's path when it was made (false: a software adapter, texture path) */
  applies: boolean;
  measurements: TuningMeasurement[];
  notes: string[];
}

/**
 * The table in `json` (parsed JSON of a tuning file), checked field by field; a UserError starting
 * with `source` (the file's path) says what was expected. Unknown entries or workgroup sizes are
 * refused, so a table from a newer cosmos-ts fails loudly rather than half-applying.
 */
export function parseTuning(json: unknown, source: string): TuningTable {
  const bad = (what: string): never => {
    throw new UserError(`${source}: not a cosmos-ts tuning table: ${what} (make one with 'cosmos-ts tune')`);
  };
  if (typeof json !== 'object' || json === null || Array.isArray(json)) bad('expected a JSON object');
  const t = json as Record<string, unknown>;
  if (t.format !== TUNING_FORMAT) bad(`"format" must be ${JSON.stringify(TUNING_FORMAT)}; got ${JSON.stringify(t.format)}`);
  if (typeof t.adapter !== 'string' || !t.adapter) bad('"adapter" must be the adapter name (a non-empty string)');
  if (typeof t.matmul !== 'object' || t.matmul === null || Array.isArray(t.matmul)) bad('"matmul" must be an object of shape classes');
  const m = t.matmul as Record<string, unknown>;
  const matmul = {} as MatmulTuning;
  for (const k of Object.keys(m)) if (!MATMUL_CLASSES.includes(k as MatmulClass)) bad(`"matmul.${k}": unknown shape class (expected ${MATMUL_CLASSES.join(', ')})`);
  for (const cls of MATMUL_CLASSES) {
    const c = m[cls];
    if (c === undefined) {
      matmul[cls] = { ...DEFAULT_MATMUL_TUNING[cls] };
      continue;
    }
    if (typeof c !== 'object' || c === null) bad(`"matmul.${cls}" must be an object { version, wg? }`);
    const { version, wg } = c as Record<string, unknown>;
    if (!STORAGE_VERSIONS.includes(version as StorageVersion)) {
      bad(`"matmul.${cls}.version" must be one of ${STORAGE_VERSIONS.join(', ')}; got ${JSON.stringify(version)}`);
    }
    if (cls !== 'gemv' && version === 'gemv_split') bad(`"matmul.${cls}.version": gemv_split takes only the gemv class`);
    if (wg !== undefined && (!FLAT_VERSIONS.includes(version as StorageVersion) || !(FLAT_WGS as readonly unknown[]).includes(wg))) {
      bad(`"matmul.${cls}.wg" must be one of ${FLAT_WGS.join(', ')}, and only with ${FLAT_VERSIONS.join(' / ')}; got ${JSON.stringify(wg)}`);
    }
    matmul[cls] = { version: version as StorageVersion, ...(wg === undefined ? {} : { wg: wg as number }) };
  }
  const d = (typeof t.device === 'object' && t.device !== null ? t.device : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return {
    format: TUNING_FORMAT,
    adapter: t.adapter as string,
    device: { vendor: str(d.vendor), architecture: str(d.architecture), device: str(d.device), description: str(d.description), api: str(d.api) },
    created: str(t.created),
    matmul,
    applies: t.applies !== false,
    measurements: Array.isArray(t.measurements) ? (t.measurements as TuningMeasurement[]) : [],
    notes: Array.isArray(t.notes) ? t.notes.filter((n): n is string => typeof n === 'string') : [],
  };
}

/** A table made for another adapter than `adapter`: a UserError naming both. */
export function checkTuningAdapter(table: TuningTable, adapter: string, source = 'tuning'): void {
  if (table.adapter !== adapter) {
    throw new UserError(`${source}: the table was made for ${JSON.stringify(table.adapter)}, this backend runs on ${JSON.stringify(adapter)} (run 'cosmos-ts tune' on this adapter)`);
  }
}
