// The module tree of a checkpoint, by checkpoint key: each dotted prefix is a module with its
// parameter count, each tensor a leaf with its shape and stored dtype. Headers only: no tensor
// data is read.
import { type FileSystem, openCheckpoint } from '../src/browser.js';
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

function buildTree(entries: readonly { name: string; dtype: string; shape: readonly number[] }[]): Node {
  const root = newNode('', '');
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
  return root;
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
  const ck = await openCheckpoint(path, fs);
  try {
    const entries = ck.entries().map((e) => ({ name: e.name, dtype: String(e.dtype), shape: e.shape }));
    const root = buildTree(entries);
    const out: HTMLTableRowElement[] = [];
    rows(root, 0, out);
    const dtypes = [...new Set(entries.map((e) => e.dtype))].join(', ');
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
        `${ck.path}: ${ck.format}, ${root.tensors} tensors, ${root.params.toLocaleString('en-US')} parameters (${dtypes}) in ${ck.files.length} file(s)`),
      table,
    );
    host.dataset.tensors = String(root.tensors);
    host.dataset.params = String(root.params);
    return { tensors: root.tensors, params: root.params };
  } finally {
    await ck.close();
  }
}
