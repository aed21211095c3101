// What the restricted pickle interpreter builds: plain containers and markers, never live objects.
// A GLOBAL becomes a `Global` label; only the interpreter's allowlist turns some of them into
// tensors, storages, ordered dicts or TorchScript attribute bags.
import type { TorchDType } from './dtypes.js';

/** A key a checkpoint dict may have (Python str or int). */
export type PyKey = string | number | bigint;

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyTuple
  | PyList
  | PyDict
  | Global
  | StorageRef
  | TensorRef
  | ScriptObject;

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PyList {
  readonly items: PyValue[] = [];
}

export class PyDict {
  readonly items = new Map<PyKey, PyValue>();
  /** attributes set by BUILD (a state dict's _metadata): not items, never flattened */
  attrs: PyDict | null = null;
  constructor(readonly ordered: boolean) {}
}

/** `module.name` of a GLOBAL opcode, as a label: never resolved. */
export class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A TorchScript module or class instance (`__torch__.*` NEWOBJ + BUILD): an attribute bag. */
export class ScriptObject {
  attrs: PyDict | null = null;
  constructor(readonly className: string) {}
}

/** One storage a persistent id names: the record `data/<key>` (or `constants/<key>`, or a legacy storage). */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: TorchDType,
    /** elements of `dtype` the storage holds */
    readonly numel: number,
  ) {}
}

/** A `_rebuild_tensor_v2` view of a storage, already checked to lie inside it. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    /** in elements */
    readonly offset: number,
    readonly shape: readonly number[],
    /** in elements */
    readonly stride: readonly number[],
    readonly numel: number,
  ) {}
}

export function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'a bool';
  if (typeof v === 'number' || typeof v === 'bigint') return Number.isInteger(v) || typeof v === 'bigint' ? 'an int' : 'a float';
  if (typeof v === 'string') return 'a str';
  if (v instanceof PyTuple) return `a tuple of ${v.items.length}`;
  if (v instanceof PyList) return 'a list';
  if (v instanceof PyDict) return v.ordered ? 'an OrderedDict' : 'a dict';
  if (v instanceof Global) return `the global ${v.qualified}`;
  if (v instanceof StorageRef) return 'a storage';
  if (v instanceof TensorRef) return 'a tensor';
  return `a TorchScript object ${v.className}`;
}
