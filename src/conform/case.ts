// A fixture case folder (format: test/fixtures/README.md): case.json, config.json,
// model.safetensors (+ extra weight files named in case.json), case.safetensors holding
// input.* / output.* / tap.* tensors. Read from its own files alone, whatever its name, through a
// FileSystem (a folder on disk in Node, dropped files or URLs in a browser).
import type { Backend } from '../engine/backend.js';
import { UserError } from '../engine/errors.js';
import type { Module } from '../engine/module.js';
import { fromRaw } from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { type FileSystem, FileError, fileSystem, readJsonObject, readJsonObjectIfPresent } from '../io/files.js';
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
  files?: unknown;
  notes?: string;
  upstream?: unknown;
}

export class CaseFormatError extends UserError {
  override name = 'CaseFormatError';
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
      json = (await readJsonObject(cj, 'case.json', fs)) as unknown as CaseJson;
    } catch (e) {
      throw e instanceof FileError ? new CaseFormatError(e.message) : e;
    }
    if (typeof json.kind !== 'string') throw new CaseFormatError(`${cj}: missing string field "kind"`);
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
  get tolerance(): Tolerance {
    return this.json.tolerance ?? { atol: 0, rtol: 0 };
  }

  path(file: string): string {
    return join(this.dir, file);
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
    if (!this.tensors?.has(key)) {
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
