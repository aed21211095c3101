// The page: the library (its browser entry, as a bundler gives it) on the browser's WebGPU
// adapter. Three tabs: the explorer (checkpoint tree, tokenizer round trip, taps), conformance
// over the vendored fixtures, and the kernel bench. Each panel carries data-state
// (running / done / error) for the page tests.
import { type Backend, type FileSystem, blobFileSystem, selectBackend, urlFileSystem } from '../src/browser.js';
import { runBench } from './bench-view.js';
import { runConformance } from './conform-view.js';
import { $, el } from './dom.js';
import { guarded, installGlobalHandlers, showError } from './errors.js';
import { attentionPaths, showAttention } from './attention.js';
import { modulePaths, runFor, showRoundtrip, showTap, tokenizerAt } from './explorer.js';
import { type Site, openSite, sampleClips, tokenizerFolders } from './site.js';
import { showTree } from './tree-view.js';

installGlobalHandlers();

function tabs(): void {
  const buttons = Array.from(document.querySelectorAll<HTMLButtonElement>('nav button'));
  for (const b of buttons) {
    b.onclick = () => {
      for (const o of buttons) {
        o.classList.toggle('active', o === b);
        $(`tab-${o.dataset.tab}`).hidden = o !== b;
      }
    };
  }
}

/** The file system and path of what the user picked or dropped: one file, or a folder. */
function picked(files: File[]): { fs: FileSystem; path: string } {
  if (!files.length) throw new Error('no file chosen');
  const fs = blobFileSystem(files);
  const paths = files.map((f) => f.webkitRelativePath || f.name);
  const tops = new Set(paths.map((p) => p.split('/')[0]));
  if (files.length === 1) return { fs, path: paths[0] };
  if (tops.size === 1 && paths[0].includes('/')) return { fs, path: [...tops][0] };
  return { fs, path: '.' };
}

/** A site path (served beside the page, listed in the manifest) or an http(s) URL of one file. */
function fromUrl(text: string, site: Site): { fs: FileSystem; path: string } {
  const t = text.trim();
  if (!/^https?:\/\//.test(t)) return { fs: site.fs, path: t.replace(/^\/+/, '') };
  const u = new URL(t);
  const name = u.pathname.split('/').pop() ?? '';
  if (!name) throw new Error(`${t}: give the URL of a checkpoint file (HTTP cannot list a folder)`);
  return { fs: urlFileSystem(new URL('.', u).href), path: decodeURIComponent(name) };
}

/** Files of a drop, folders walked (webkitGetAsEntry), each keyed by its path below the drop. */
async function droppedFiles(dt: DataTransfer): Promise<File[]> {
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const f = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      out.push(new File([f], f.name, { type: f.type }));
      Object.defineProperty(out.at(-1)!, 'webkitRelativePath', { value: `${prefix}${f.name}` });
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const item of Array.from(dt.items)) {
    const e = item.webkitGetAsEntry();
    if (e) await walk(e, '');
  }
  return out;
}

function wireExplorer(site: Site, backend: Backend): void {
  const tree = $('tree');
  const tapSelect = $<HTMLSelectElement>('tap-path');
  const openTree = (src: { fs: FileSystem; path: string }) =>
    guarded(tree, async () => {
      await showTree(src.path, src.fs, (p) => {
        if (Array.from(tapSelect.options).some((o) => o.value === p)) tapSelect.value = p;
      });
    });
  $('open-url').onclick = () => openTree(fromUrl($<HTMLInputElement>('ckpt-url').value, site));
  for (const id of ['pick-files', 'pick-folder']) {
    const input = $<HTMLInputElement>(id);
    input.onchange = () => openTree(picked(Array.from(input.files ?? [])));
  }
  const drop = $('drop');
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer) void droppedFiles(e.dataTransfer).then((f) => openTree(picked(f)), showError);
  };

  const models = $<HTMLSelectElement>('rt-model');
  const clips = $<HTMLSelectElement>('rt-clip');
  models.replaceChildren(...tokenizerFolders(site.manifest).map((m) => el('option', { value: m }, m)));
  clips.replaceChildren(...sampleClips(site.manifest).map((c) => el('option', { value: c }, c)));
  let own: { fs: FileSystem; path: string } | null = null;
  const clipFile = $<HTMLInputElement>('rt-file');
  clipFile.onchange = () => {
    const f = clipFile.files?.[0];
    own = f ? { fs: blobFileSystem([f]), path: f.name } : null;
  };
  const clip = () => own ?? { fs: site.fs, path: clips.value };

  const fillTaps = async () => {
    const model = await tokenizerAt(models.value, site.fs, backend);
    const paths = modulePaths(model);
    tapSelect.replaceChildren(...paths.map((p) => el('option', { value: p }, p)));
    const block = paths.find((p) => /\.block\.\d+$/.test(p));
    if (block) tapSelect.value = block;
    $('attn-path').replaceChildren(...attentionPaths(model).map((p) => el('option', { value: p }, p)));
  };
  models.onchange = () => guarded(null, fillTaps);
  $('rt-run').onclick = () => guarded($('roundtrip'), async () => {
    await showRoundtrip(models.value, clip(), site.fs, backend);
  });
  $('attn-run').onclick = () => guarded($('attn'), async () => {
    const model = await tokenizerAt(models.value, site.fs, backend);
    const c = clip();
    const path = $<HTMLSelectElement>('attn-path').value;
    await showAttention(model, path, () => runFor(path, model, c));
  });
  $('tap-run').onclick = () => guarded($('tap'), () => showTap(models.value, tapSelect.value, clip(), site.fs, backend));
  void guarded(null, fillTaps);
}

async function main(): Promise<void> {
  tabs();
  const adapter = $('adapter');
  let backend: Backend;
  let site: Site;
  try {
    if (!window.isSecureContext) throw new Error(`${location.origin}: not a secure context; WebGPU needs https:// or http://127.0.0.1 / localhost`);
    site = await openSite();
    backend = await selectBackend({ backend: 'webgpu' });
  } catch (e) {
    adapter.textContent = 'WebGPU: unavailable';
    adapter.dataset.state = 'error';
    showError(e);
    return;
  }
  adapter.textContent = `WebGPU: ${backend.adapter}`;
  adapter.dataset.state = 'done';
  wireExplorer(site, backend);
  $('conform-run').onclick = () => guarded($('conform-table'), () => runConformance(backend, site.fs, site.manifest.fixtures));
  $('bench-run').onclick = () => guarded($('bench-table'), () => runBench(backend));
}

void main();
