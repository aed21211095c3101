// The key rule (spec §8): walk the unpickled object from the root and name every tensor by its
// dotted path: dict items by key (ints in decimal), list and tuple items by index, TorchScript
// objects by attribute. Plain values are non-tensor leaves; attributes that BUILD set on a dict
// (a state dict's _metadata) are not items. The same tensor reached twice is listed twice; two
// paths giving one key are an error, and so is nesting deeper than any checkpoint (a cycle).
import { TorchFormatError } from './errors.js';
import { describe, Global, PyDict, PyList, PyTuple, type PyValue, ScriptObject, StorageRef, TensorRef } from './values.js';

/** Nesting depth beyond this is refused (real checkpoints nest fewer than 20 levels). */
export const MAX_DEPTH = 200;
/** Values in all, counting a container shared through the memo each time it is met. */
export const MAX_VISITS = 1_000_000;
/** Longest dotted key. */
export const MAX_KEY = 65536;

export interface Flattened {
  /** in walk order */
  tensors: Map<string, TensorRef>;
  leaves: Map<string, unknown>;
}

type Container = PyDict | PyList | PyTuple | ScriptObject;

function childrenOf(v: PyValue): Iterable<[string, PyValue]> | null {
  if (v instanceof PyDict) return [...v.items].map(([k, x]) => [String(k), x]);
  if (v instanceof PyList || v instanceof PyTuple) return v.items.map((x, i) => [String(i), x]);
  if (v instanceof ScriptObject) return v.attrs ? [...v.attrs.items].map(([k, x]) => [String(k), x]) : [];
  return null;
}

export function flatten(root: PyValue, file: string, what = 'the checkpoint'): Flattened {
  const fail = (problem: string): never => {
    throw new TorchFormatError(file, problem);
  };
  // First the size and height of every container, once per container object: a file that would
  // expand to too many values through shared containers, nest too deep or hold a cycle is refused
  // before any key is built.
  const measured = new Map<Container, { size: number; height: number }>();
  const active = new Set<Container>();
  const measure = (v: PyValue, depth: number, key: () => string): { size: number; height: number } => {
    const kids = childrenOf(v);
    if (kids === null) return { size: 1, height: 0 };
    const c = v as Container;
    const known = measured.get(c);
    const tooDeep = () => fail(`${what} nests deeper than ${MAX_DEPTH} levels at ${JSON.stringify(key().slice(0, 200))}`);
    if (known) {
      if (depth + known.height > MAX_DEPTH) tooDeep();
      return known;
    }
    if (depth >= MAX_DEPTH) tooDeep();
    if (active.has(c)) fail(`${what} contains itself at ${JSON.stringify(key().slice(0, 200))} (a cycle; a checkpoint is a tree)`);
    active.add(c);
    let size = 1;
    let height = 0;
    for (const [k, x] of kids) {
      const m = measure(x, depth + 1, () => {
        // only for messages, which show 200 characters of it
        const p = key();
        return p.length > 200 ? p : (p === '' ? k : `${p}.${k}`).slice(0, 201);
      });
      size += m.size;
      height = Math.max(height, m.height + 1);
      if (size > MAX_VISITS) fail(`${what} expands to more than ${MAX_VISITS} values (containers shared too often, or not a checkpoint)`);
    }
    active.delete(c);
    const m = { size, height };
    measured.set(c, m);
    return m;
  };
  measure(root, 0, () => '');

  const tensors = new Map<string, TensorRef>();
  const leaves = new Map<string, unknown>();
  const claim = (key: string) => {
    if (tensors.has(key) || leaves.has(key)) fail(`two values of ${what} flatten to the same key ${JSON.stringify(key)}; keys must be unique`);
  };
  const child = (prefix: string, key: string) => (prefix === '' ? key : `${prefix}.${key}`);
  const walk = (v: PyValue, key: string): void => {
    if (key.length > MAX_KEY) fail(`${what} has a key longer than ${MAX_KEY} characters (${JSON.stringify(key.slice(0, 80))}...)`);
    if (v instanceof TensorRef) {
      claim(key);
      tensors.set(key, v);
    } else if (v instanceof PyDict) {
      for (const [k, x] of v.items) walk(x, child(key, String(k)));
    } else if (v instanceof PyList || v instanceof PyTuple) {
      for (let i = 0; i < v.items.length; i++) walk(v.items[i], child(key, String(i)));
    } else if (v instanceof ScriptObject) {
      if (v.attrs) for (const [k, x] of v.attrs.items) walk(x, child(key, String(k)));
    } else if (v instanceof Global || v instanceof StorageRef) {
      fail(`${what} holds ${describe(v)} at ${JSON.stringify(key)} as a value; expected tensors, containers and plain values`);
    } else {
      claim(key);
      leaves.set(key, v);
    }
  };
  walk(root, '');
  return { tensors, leaves };
}
