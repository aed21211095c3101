// A fixture case folder (format: test/fixtures/README.md): case.json, config.json,
// model.safetensors (+ extra weight files named in case.json), case.safetensors holding
// input.* / output.* / tap.* tensors. Read from its own files alone, whatever its name, through a
// FileSystem (a folder on disk in Node, dropped files or URLs in a browser).
import type { Backend } from '../engine/backend.js';
import { UserError } from '../engine/errors.js';
import type { Module } from '../engine/module.js';
import { fromRaw } from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { type FileSystem, FileError, fileSystem, readJsonObjectIfPresent, readText } from '../io/files.js';
import { join } from '../io/path.js';
import { type LoadedTensor, type SafetensorsFile, openSafetensors } from '../io/safetensors.js';
import { type Config, type ModuleFamily, loadModule } from '../models/load.js';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface IoSpec {
  dtype?: string;
  shape?: number[];
  meaning?: string;
  value?: unknown;
}

export interface CaseJson {
  kind: string;
  component: string;
  entry?: string;
  args?: Record<string, unknown>;
  inputs?: Record<string, IoSpec>;
  outputs?: Record<string, IoSpec>;
  taps?: Record<string, IoSpec>;
  tolerance?: Tolerance;
  /**
   * Tolerances of float outputs and taps (`tap.<path>`) by name, when a case's `tolerance` is the
   * one of its integer outputs (depth control_video: uint8 within 1 level, floats tighter).
   */
  tolerance_float?: Record<string, Tolerance>;
  files?: unknown;
  notes?: string;
  upstream?: unknown;
}

export class CaseFormatError extends UserError {
  override name = 'CaseFormatError';
}

const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

/**
 * case.json as Python's json module writes it: standard JSON, plus the bare tokens NaN, Infinity
 * and -Infinity it emits for non-finite floats (so a NaN tolerance is reported as such, not as a
 * syntax error). Strings are skipped, so a prompt that says "NaN" stays a string.
 */
function parseCaseJson(file: string, text: string): CaseJson {
  const mark = '\u0000cosmos-ts-non-finite:';
  let v: unknown;
  try {
    const marked = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) => (m.startsWith('"') ? m : JSON.stringify(mark + m)));
    v = JSON.parse(marked, (_k, x) => (typeof x === 'string' && x.startsWith(mark) ? NON_FINITE[x.slice(mark.length)] : x));
  } catch (e) {
    throw new CaseFormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CaseFormatError(`${file}: not a JSON object`);
  return v as CaseJson;
}

/**
 * A case's tolerance must be stated, and be two finite non-negative numbers: a missing one would
 * silently mean "exact" (or, as NaN, make every comparison pass or fail for no reason), and a
 * negative one fails everything while looking like a tight bound.
 */
function checkTolerance(file: string, tol: unknown): void {
  if (tol === undefined || tol === null) throw new CaseFormatError(`${file}: tolerance: missing; expected {"atol": <number >= 0>, "rtol": <number >= 0>}`);
  if (typeof tol !== 'object' || Array.isArray(tol)) throw new CaseFormatError(`${file}: tolerance: expected an object {"atol": ..., "rtol": ...}; got ${JSON.stringify(tol)}`);
  for (const k of ['atol', 'rtol'] as const) {
    const v = (tol as Record<string, unknown>)[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new CaseFormatError(`${file}: tolerance.${k}: expected a finite number >= 0; got ${v === undefined ? 'nothing' : typeof v === 'number' ? String(v) : JSON.stringify(v)}`);
    }
  }
}

export class FixtureCase {
  private constructor(
    readonly dir: string,
    readonly json: CaseJson,
    readonly config: Record<string, unknown> | null,
    readonly tensors: SafetensorsFile | null,
    /** where the case's files are read from (kinds read their extra files through it) */
    readonly fs: FileSystem,
  ) {}

  static async open(dir: string, fs: FileSystem = fileSystem()): Promise<FixtureCase> {
    const cj = join(dir, 'case.json');
    if ((await fs.stat(cj))?.kind !== 'file') throw new CaseFormatError(`${dir}: no case.json (not a fixture case folder)`);
    let json: CaseJson;
    try {
      json = parseCaseJson(cj, await readText(cj, fs));
    } catch (e) {
      throw e instanceof FileError ? new CaseFormatError(e.message) : e;
    }
    if (typeof json.kind !== 'string') throw new CaseFormatError(`${cj}: missing string field "kind"`);
    checkTolerance(cj, json.tolerance);
    const perName = json.tolerance_float;
    if (perName !== undefined) {
      if (perName === null || typeof perName !== 'object' || Array.isArray(perName)) throw new CaseFormatError(`${cj}: tolerance_float: expected an object of {"atol", "rtol"} by output name`);
      for (const [k, t] of Object.entries(perName)) checkTolerance(`${cj}: tolerance_float.${k}`, t);
    }
    const config = await readJsonObjectIfPresent(join(dir, 'config.json'), 'config.json', fs);
    const st = join(dir, 'case.safetensors');
    const tensors = (await fs.stat(st)) ? await openSafetensors(st, fs) : null;
    return new FixtureCase(dir, json, config, tensors, fs);
  }

  get kind(): string {
    return this.json.kind;
  }
  get args(): Record<string, unknown> {
    return this.json.args ?? {};
  }
  /** checked when the case is opened (see checkTolerance) */
  get tolerance(): Tolerance {
    return this.json.tolerance as Tolerance;
  }

  path(file: string): string {
    return join(this.dir, file);
  }

  /**
   * The tolerance of an output (or `tap.<path>`) and whether an integer one compares exactly: a
   * case with `tolerance_float` states its integer outputs' tolerance as `tolerance`; without it,
   * integers compare exactly.
   */
  toleranceOf(name: string): { tol: Tolerance; integersExact: boolean } {
    const perName = this.json.tolerance_float;
    return { tol: perName?.[name] ?? this.tolerance, integersExact: perName === undefined };
  }

  /** Extra files named in case.json `files` (a list or a role -> file map). */
  get files(): Record<string, string> {
    const f = this.json.files;
    if (!f) return {};
    if (Array.isArray(f)) return Object.fromEntries(f.map((x) => [String(x), String(x)]));
    return Object.fromEntries(Object.entries(f as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
  }

  private names(prefix: string): string[] {
    return (this.tensors?.names ?? []).filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
  }

  get inputNames(): string[] {
    return this.names('input.');
  }
  get outputNames(): string[] {
    return this.names('output.');
  }
  get tapNames(): string[] {
    return this.names('tap.');
  }

  hasInput(name: string): boolean {
    return this.tensors?.has(`input.${name}`) ?? false;
  }

  private async get(prefix: string, name: string): Promise<LoadedTensor> {
    const key = `${prefix}${name}`;
    if (!this.tensors) throw new CaseFormatError(`${this.path('case.safetensors')}: missing; this case needs its tensor ${key} from it`);
    if (!this.tensors.has(key)) {
      throw new CaseFormatError(`${this.dir}: case.safetensors has no tensor ${key}`);
    }
    return this.tensors.read(key);
  }

  input(name: string): Promise<LoadedTensor> {
    return this.get('input.', name);
  }
  output(name: string): Promise<LoadedTensor> {
    return this.get('output.', name);
  }
  tap(name: string): Promise<LoadedTensor> {
    return this.get('tap.', name);
  }
  /** The file dtype of a stored tensor (integers compare exactly). */
  storedDtype(prefix: 'input.' | 'output.' | 'tap.', name: string): string | null {
    const key = `${prefix}${name}`;
    return this.tensors?.has(key) ? this.tensors.info(key).dtype : null;
  }

  /** An input as a tensor on `backend`, in its stored dtype. */
  async inputTensor(name: string, backend: Backend): Promise<Tensor> {
    const t = await this.input(name);
    return fromRaw(backend, t.raw, t.shape, t.dtype);
  }

  /**
   * `family`'s module built from `config` (default: the case's config.json) with the weights of
   * `file` (default: the `weights` or `model` file named in case.json, else model.safetensors).
   */
  async module<M extends Module>(family: ModuleFamily<M>, backend: Backend, opts: { config?: Config | null; file?: string } = {}): Promise<M> {
    const config = opts.config === undefined ? this.config : opts.config;
    if (!config) throw new CaseFormatError(`${this.dir}: ${this.kind} needs the ${family.name} config.json`);
    const file = opts.file ?? this.files.weights ?? this.files.model ?? 'model.safetensors';
    return (await loadModule(family, this.path(file), backend, { config, fs: this.fs })).model;
  }

  async close(): Promise<void> {
    await this.tensors?.close();
  }
}
