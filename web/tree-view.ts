// The module tree of a checkpoint, by checkpoint key: each dotted prefix is a module with its
// parameter count, each tensor a leaf with its shape and stored dtype. Headers only: no tensor
// data is read.
import { type Checkpoint, type FileSystem, openCheckpoint } from '../src/browser.js';
import { join } from '../src/io/path.js';
import { $, el } from './dom.js';

interface Node {
  name: string;
  path: string;
  children: Map<string, Node>;
  tensor?: { dtype: string; shape: readonly number[] };
  params: number;
  tensors: number;
}

function newNode(name: string, path: string): Node {
  return { name, path, children: new Map(), params: 0, tensors: 0 };
}

type Entry = { name: string; dtype: string; shape: readonly number[] };

/** Insert a checkpoint's tensors below `root` (a component's node, or the tree's root). */
function addEntries(root: Node, entries: readonly Entry[]): void {
  for (const e of entries) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const parts = e.name.split('.');
    let at = root;
    at.params += n;
    at.tensors++;
    for (let i = 0; i < parts.length; i++) {
      const path = parts.slice(0, i + 1).join('.');
      let next = at.children.get(parts[i]);
      if (!next) {
        next = newNode(parts[i], path);
        at.children.set(parts[i], next);
      }
      next.params += n;
      next.tensors++;
      at = next;
    }
    at.tensor = { dtype: e.dtype, shape: e.shape };
  }
}

const CHECKPOINT_FILE = /\.(safetensors|pt|pth|jit)$/i;

/**
 * The checkpoint at `path`; for a release folder that is not one checkpoint (a diffusers pipeline,
 * a TorchScript tokenizer's encoder.jit + decoder.jit), each component in it: its checkpoint files
 * and the subfolders that hold one.
 */
async function components(path: string, fs: FileSystem): Promise<{ name: string; ck: Checkpoint }[]> {
  try {
    return [{ name: '', ck: await openCheckpoint(path, fs) }];
  } catch (e) {
    if ((await fs.stat(path))?.kind !== 'directory') throw e;
    const out: { name: string; ck: Checkpoint }[] = [];
    const failed: unknown[] = [];
    for (const n of await fs.list(path)) {
      const p = join(path, n);
      const kind = (await fs.stat(p))?.kind;
      if (kind === 'file' && !CHECKPOINT_FILE.test(n)) continue;
      try {
        out.push({ name: n, ck: await openCheckpoint(p, fs) });
      } catch (err) {
        // a component without weights (a text tokenizer, a scheduler) is not part of the tree;
        // a checkpoint file that cannot be read is what to report when nothing else opens
        if (kind === 'file') failed.push(err);
      }
    }
    if (!out.length) throw failed[0] ?? e;
    return out;
  }
}

/** Module rows, each followed by its children (indented by depth). */
function rows(node: Node, depth: number, out: HTMLTableRowElement[]): void {
  const kids = [...node.children.values()];
  for (const k of kids) {
    if (k.tensor) {
      out.push(el('tr', { class: 'tensor' },
        el('td', { style: `padding-left: ${depth + 0.5}em` }, k.name),
        el('td', {}, `[${k.tensor.shape.join(', ')}]`), el('td', {}, k.tensor.dtype), el('td', { class: 'num' }, k.params.toLocaleString('en-US'))));
    } else {
      out.push(el('tr', { class: 'module', 'data-path': k.path },
        el('td', { style: `padding-left: ${depth + 0.5}em` }, el('b', {}, k.name)),
        el('td', {}, `${k.tensors} tensors`), el('td', {}, ''), el('td', { class: 'num' }, k.params.toLocaleString('en-US'))));
      rows(k, depth + 1, out);
    }
  }
}

/** Show the tree of the checkpoint at `path` (a file, or a folder holding one) read through `fs`. */
export async function showTree(path: string, fs: FileSystem, onModule?: (path: string) => void): Promise<{ tensors: number; params: number }> {
  $('tree').replaceChildren();
  const parts = await components(path, fs);
  try {
    const root = newNode('', '');
    const dtypeSet = new Set<string>();
    for (const { name, ck } of parts) {
      const entries = ck.entries().map((e) => ({ name: e.name, dtype: String(e.dtype), shape: e.shape }));
      for (const e of entries) dtypeSet.add(e.dtype);
      let at = root;
      if (name) {
        at = newNode(name, name);
        root.children.set(name, at);
      }
      addEntries(at, entries);
      if (name) {
        root.params += at.params;
        root.tensors += at.tensors;
      }
    }
    const out: HTMLTableRowElement[] = [];
    rows(root, 0, out);
    const dtypes = [...dtypeSet].join(', ');
    const what = parts.length === 1 && !parts[0].name
      ? `${parts[0].ck.format}, ${parts[0].ck.files.length} file(s)`
      : `${parts.length} components (${parts.map((p) => `${p.name}: ${p.ck.format}`).join(', ')})`;
    const table = el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'key'), el('th', {}, 'shape'), el('th', {}, 'dtype'), el('th', {}, 'parameters'))),
      el('tbody', {}, ...out));
    if (onModule) {
      table.addEventListener('click', (ev) => {
        const tr = (ev.target as HTMLElement).closest('tr.module') as HTMLElement | null;
        if (tr?.dataset.path) onModule(tr.dataset.path);
      });
    }
    const host = $('tree');
    host.replaceChildren(
      el('p', { class: 'stats', id: 'tree-summary' },
        `${path}: ${what}; ${root.tensors} tensors, ${root.params.toLocaleString('en-US')} parameters (${dtypes})`),
      table,
    );
    host.dataset.tensors = String(root.tensors);
    host.dataset.params = String(root.params);
    return { tensors: root.tensors, params: root.params };
  } finally {
    for (const p of parts) await p.ck.close();
  }
}
