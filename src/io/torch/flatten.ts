// The key rule (spec §8): walk the unpickled object from the root and name every tensor by its
// dotted path: dict items by key (ints in decimal), list and tuple items by index, TorchScript
// objects by attribute. Plain values are non-tensor leaves; attributes that BUILD set on a dict
// (a state dict's _metadata) are not items. The same tensor reached twice is listed twice; two
// paths giving one key are an error, and so is nesting deeper than any checkpoint (a cycle).
import { TorchFormatError } from './errors.js';
import { describe, Global, PyDict, PyList, PyTuple, type PyValue, ScriptObject, StorageRef, TensorRef } from './values.js';

/** Nesting depth beyond this is refused (real checkpoints nest fewer than 20 levels). */
export const MAX_DEPTH = 200;
/** Values visited in all (containers shared through the memo are walked each time they are met). */
export const MAX_VISITS = 2_000_000;
/** Longest dotted key. */
export const MAX_KEY = 65536;

export interface Flattened {
  /** in walk order */
  tensors: Map<string, TensorRef>;
  leaves: Map<string, unknown>;
}

export function flatten(root: PyValue, file: string, what = 'the checkpoint'): Flattened {
  const tensors = new Map<string, TensorRef>();
  const leaves = new Map<string, unknown>();
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  const claim = (key: string) => {
    if (tensors.has(key) || leaves.has(key)) fail(`two values of ${what} flatten to the same key ${JSON.stringify(key)}; keys must be unique`);
  };
  const child = (prefix: string, key: string) => (prefix === '' ? key : `${prefix}.${key}`);
  let visits = 0;
  const walk = (v: PyValue, key: string, depth: number): void => {
    if (depth > MAX_DEPTH) fail(`${what} nests deeper than ${MAX_DEPTH} levels at ${JSON.stringify(key.slice(0, 200))} (a cycle, or not a checkpoint)`);
    if (++visits > MAX_VISITS) fail(`${what} expands to more than ${MAX_VISITS} values (containers shared too often, or not a checkpoint)`);
    if (key.length > MAX_KEY) fail(`${what} has a key longer than ${MAX_KEY} characters (${JSON.stringify(key.slice(0, 80))}...)`);
    if (v instanceof TensorRef) {
      claim(key);
      tensors.set(key, v);
    } else if (v instanceof PyDict) {
      for (const [k, x] of v.items) walk(x, child(key, String(k)), depth + 1);
    } else if (v instanceof PyList || v instanceof PyTuple) {
      for (let i = 0; i < v.items.length; i++) walk(v.items[i], child(key, String(i)), depth + 1);
    } else if (v instanceof ScriptObject) {
      if (v.attrs) for (const [k, x] of v.attrs.items) walk(x, child(key, String(k)), depth + 1);
    } else if (v instanceof Global || v instanceof StorageRef) {
      fail(`${what} holds ${describe(v)} at ${JSON.stringify(key)} as a value; expected tensors, containers and plain values`);
    } else {
      claim(key);
      leaves.set(key, v);
    }
  };
  walk(root, '', 0);
  return { tensors, leaves };
}
