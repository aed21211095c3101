// inspectRelease: what a downloaded release folder holds, from headers only. Each weight
// component (a pipeline's transformer / vae / text_encoder / controlnet, a model folder's
// weights, each TorchScript file of a tokenizer) is checked the way a load checks it: its module
// tree is built from its config and every tensor's name, shape and dtype is matched against it,
// through the ordinary loadWeights on the plan backend (which reads no tensor data). One
// component that cannot be read or does not fit is reported in its own entry; the others are
// still inspected.
import { planBackend } from '../engine/select.js';
import { shapeOnlySource } from '../engine/plan/params.js';
import { type LoadOptions, type Module, loadWeights } from '../engine/module.js';
import { type FileSystem, fileSystem, readJsonObject } from '../io/files.js';
import { join } from '../io/path.js';
import { type Checkpoint, type TensorInfo, numelOf, openCheckpoint } from '../io/safetensors.js';
import { ArTransformerFamily } from '../models/ar/transformer.js';
import { CosmosControlNetFamily } from '../models/controlnet/controlnet.js';
import { CosmosTransformer3DFamily } from '../models/dit/transformer.js';
import type { Config, ModuleFamily } from '../models/load.js';
import { T5EncoderFamily } from '../models/t5/encoder.js';
import { CosmosTokenizerFamily } from '../models/tokenizer/load.js';
import { type TokenizerPart, partSelector, unionSource } from '../models/tokenizer/release-folder.js';
import { Qwen2_5_VLFamily } from '../models/vlm/language.js';
import { AutoencoderKLWanFamily } from '../models/wan/autoencoder.js';
import type { ReleaseFormat } from './release-catalog.js';
import { type IdentifyOptions, type ReleaseFolder, identifyRelease } from './release-kind.js';

export interface ComponentTensor {
  name: string;
  dtype: string;
  shape: readonly number[];
  bytes: number;
}

export interface ReleaseComponent {
  /** the subfolder (transformer, vae, ...), `model`, or the file (encoder.jit, model.pt, ...) */
  name: string;
  /** the class its config names, or what the file is */
  class: string;
  /** parameters the module tree takes from the checkpoint (buffers with no learned state excluded) */
  parameters: number;
  /** bytes of every tensor in the files, as stored */
  bytes: number;
  /** the dtype holding most of the bytes */
  dtype: string | null;
  /** the weight files read (paths) */
  files: string[];
  /** every tensor name / shape / dtype fits the module tree its config implies */
  ok: boolean;
  /** why not, in one line */
  error?: string;
  /** what was not checked, when ok */
  note?: string;
  /** every tensor (with `tensors: true`) */
  tensors?: ComponentTensor[];
}

export interface ReleaseReport {
  path: string;
  /** what the folder is (model_index.json _class_name, architectures[0], _class_name, or a name) */
  release: string;
  format: ReleaseFormat;
  kind: ReleaseFolder['kind'];
  components: ReleaseComponent[];
  /** every component is ok */
  ok: boolean;
}

/** What one inspection carries: the file system, whether to list tensors, the files components read. */
interface Walk {
  fs: FileSystem;
  tensors: boolean;
  used: Set<string>;
}

export interface InspectReleaseOptions extends IdentifyOptions {
  fs?: FileSystem;
  /** list every tensor of each component */
  tensors?: boolean;
}

const WEIGHT_FILE = /\.(safetensors|safetensors\.index\.json|pt|pth|jit)$/;

/** The family that builds a diffusers / transformers class, or null for classes without weights here. */
function familyOfClass(cls: string, config: Config): ModuleFamily<Module> | null {
  switch (cls) {
    case 'CosmosTransformer3DModel': return CosmosTransformer3DFamily as ModuleFamily<Module>;
    case 'CosmosControlNetModel': return CosmosControlNetFamily as ModuleFamily<Module>;
    case 'AutoencoderKLWan': return AutoencoderKLWanFamily as ModuleFamily<Module>;
    case 'AutoencoderKLCosmos': return CosmosTokenizerFamily as ModuleFamily<Module>;
    case 'T5EncoderModel': case 'T5ForConditionalGeneration': return T5EncoderFamily as ModuleFamily<Module>;
    case 'Qwen2_5_VLForConditionalGeneration': return Qwen2_5_VLFamily() as ModuleFamily<Module>;
    default:
      // a Cosmos-Tokenizer folder (kwargs config) serving as a pipeline's vae
      return typeof config.name === 'string' && 'z_channels' in config ? (CosmosTokenizerFamily as ModuleFamily<Module>) : null;
  }
}

function classOf(config: Config): string {
  if (typeof config._class_name === 'string') return config._class_name;
  if (Array.isArray(config.architectures) && typeof config.architectures[0] === 'string') return config.architectures[0];
  if (typeof config.name === 'string') return `Cosmos-Tokenizer ${config.name}`;
  return 'unknown';
}

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, '; ');

/** Stored bytes, tensor list and majority dtype of opened checkpoints. */
function describeTensors(ckpts: readonly Checkpoint[], withTensors: boolean) {
  let bytes = 0;
  const byDtype = new Map<string, number>();
  const tensors: ComponentTensor[] = [];
  for (const c of ckpts) {
    for (const t of c.entries() as TensorInfo[]) {
      bytes += t.byteLength;
      byDtype.set(t.dtype, (byDtype.get(t.dtype) ?? 0) + t.byteLength);
      if (withTensors) tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.byteLength });
    }
  }
  const dtype = [...byDtype.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  return { bytes, dtype, tensors };
}

/**
 * One component: open its weight files (headers only), build `family` from `config`, and check
 * every tensor against the tree with loadWeights on the plan backend.
 */
async function inspectComponent(
  name: string,
  cls: string,
  files: readonly string[],
  family: ModuleFamily<Module> | null,
  config: Config | null,
  o: Walk & { part?: TokenizerPart; stray?: boolean },
): Promise<ReleaseComponent> {
  const entry: ReleaseComponent = { name, class: cls, parameters: 0, bytes: 0, dtype: null, files: [...files], ok: false };
  for (const f of files) o.used.add(f);
  const ckpts: Checkpoint[] = [];
  try {
    for (const f of files) {
      const c = await openCheckpoint(f, o.fs, { config: false });
      ckpts.push(c);
      for (const shard of c.files) o.used.add(shard);
    }
    if (ckpts.some((c) => c.files.length > 1 || c.files[0] !== c.path)) entry.files = ckpts.flatMap((c) => c.files);
    const d = describeTensors(ckpts, o.tensors);
    entry.bytes = d.bytes;
    entry.dtype = d.dtype;
    if (o.tensors) entry.tensors = d.tensors;
    if (!family || !config) {
      // a file no component reads is fine once it reads; a component of a class we cannot build is not
      if (o.stray) {
        entry.ok = true;
        entry.note = 'read, but no component uses it: its tensors were listed, not checked';
      } else entry.error = `${cls} is not a model cosmos-ts builds; its tensors were listed, not checked`;
      return entry;
    }
    const src = ckpts.length === 1 ? ckpts[0] : unionSource(ckpts, files.join(' + '));
    const model = family.build(config);
    const be = planBackend();
    try {
      const opts: LoadOptions = { ...family.loadOptions?.(model, src), select: o.part ? partSelector(o.part) : undefined };
      await loadWeights(model, shapeOnlySource(src), be, opts);
      entry.parameters = countParameters(model, opts);
      entry.ok = true;
    } finally {
      model.dispose();
    }
  } catch (e) {
    entry.error = oneLine(e);
  } finally {
    await Promise.all(ckpts.map((c) => c.close()));
  }
  return entry;
}

function countParameters(model: Module, opts: LoadOptions): number {
  let n = 0;
  for (const p of model.parameters()) {
    if (opts.select && !opts.select(p.key)) continue;
    if (p.loaded) n += numelOf(p.shape);
  }
  return n;
}

/** The weight files of a model folder: an index when there is one, else every .safetensors, else one .pt / .pth. */
async function weightFiles(dir: string, fs: FileSystem): Promise<string[]> {
  const names = await fs.list(dir);
  const index = names.filter((n) => n.endsWith('.safetensors.index.json'));
  if (index.length) return index.map((n) => join(dir, n));
  const st = names.filter((n) => n.endsWith('.safetensors'));
  if (st.length) return st.map((n) => join(dir, n));
  return names.filter((n) => /\.(pt|pth)$/.test(n)).map((n) => join(dir, n));
}

/** Checkpoint files at the top of a folder that no component reads (e.g. a native model.pt beside a diffusers pipeline). */
async function strayFiles(dir: string, w: Walk): Promise<ReleaseComponent[]> {
  const out: ReleaseComponent[] = [];
  for (const n of await w.fs.list(dir)) {
    const p = join(dir, n);
    if (w.used.has(p) || !WEIGHT_FILE.test(n) || (await w.fs.stat(p))?.kind !== 'file') continue;
    out.push(await inspectComponent(n, 'checkpoint', [p], null, null, { ...w, stray: true }));
  }
  return out;
}

async function pipelineComponents(folder: ReleaseFolder, w: Walk): Promise<ReleaseComponent[]> {
  const out: ReleaseComponent[] = [];
  const parts = Object.entries(folder.config).filter(([k, v]) => !k.startsWith('_') && Array.isArray(v));
  const names = parts.length ? parts.map(([k]) => k) : ['transformer', 'vae', 'text_encoder', 'controlnet'];
  for (const name of names) {
    const dir = join(folder.path, name);
    if ((await w.fs.stat(dir))?.kind !== 'directory') continue;
    const files = await weightFiles(dir, w.fs);
    if (!files.length) continue; // scheduler, tokenizer: configs only
    let config: Config;
    try {
      config = await readJsonObject(join(dir, 'config.json'), `${name}/config.json`, w.fs);
    } catch (e) {
      out.push({ name, class: 'unknown', parameters: 0, bytes: 0, dtype: null, files, ok: false, error: oneLine(e) });
      continue;
    }
    const cls = classOf(config);
    out.push(await inspectComponent(name, cls, files, familyOfClass(cls, config), config, w));
  }
  return [...out, ...(await strayFiles(folder.path, w))];
}

const JIT_PARTS: readonly [string, TokenizerPart, string][] = [
  ['autoencoder.jit', 'both', 'autoencoder'],
  ['encoder.jit', 'encoder', 'encoder'],
  ['decoder.jit', 'decoder', 'decoder'],
];

async function tokenizerComponents(folder: ReleaseFolder, w: Walk): Promise<ReleaseComponent[]> {
  const out: ReleaseComponent[] = [];
  const family = CosmosTokenizerFamily as ModuleFamily<Module>;
  for (const [file, part, name] of JIT_PARTS) {
    if (!folder.files.includes(file)) continue;
    out.push(await inspectComponent(name, `${folder.release} ${name} (TorchScript)`, [join(folder.path, file)], family, folder.config, { ...w, part }));
  }
  if (folder.files.includes('mean_std.pt')) out.push(await meanStdComponent(join(folder.path, 'mean_std.pt'), w));
  if (!out.length) out.push(await inspectComponent('model', folder.release, await weightFiles(folder.path, w.fs), family, folder.config, w));
  return [...out, ...(await strayFiles(folder.path, w))];
}

/** mean_std.pt: a tuple (mean, std) of equal-length tensors. */
async function meanStdComponent(path: string, w: Walk): Promise<ReleaseComponent> {
  const entry = await inspectComponent('mean_std', 'latent mean / std (cosmos-predict1)', [path], null, null, { ...w, stray: true });
  delete entry.note;
  if (!entry.ok) return entry; // unreadable
  const ck = await openCheckpoint(path, w.fs, { config: false });
  try {
    const [m, s] = ['0', '1'].map((k) => (ck.has(k) ? numelOf(ck.info(k).shape) : -1));
    if (ck.names.length === 2 && m > 0 && m === s) {
      entry.ok = true;
      entry.parameters = 2 * m;
      delete entry.error;
    } else {
      entry.ok = false;
      entry.error = `expected a tuple of two equal-length tensors (mean, std); found ${ck.names.length} tensors (${ck.names.slice(0, 4).join(', ')})`;
    }
  } finally {
    await ck.close();
  }
  return entry;
}

async function modelComponents(folder: ReleaseFolder, w: Walk): Promise<ReleaseComponent[]> {
  const files = await weightFiles(folder.path, w.fs);
  const family: ModuleFamily<Module> | null =
    folder.kind === 'ar' ? (ArTransformerFamily as ModuleFamily<Module>) : familyOfClass(classOf(folder.config), folder.config);
  const main: ReleaseComponent = files.length
    ? await inspectComponent('model', folder.release, files, family, folder.config, w)
    : { name: 'model', class: folder.release, parameters: 0, bytes: 0, dtype: null, files: [], ok: false, error: 'no weight file (.safetensors, an index, model.pt)' };
  return [main, ...(await strayFiles(folder.path, w))];
}

/** Inspect a release folder as downloaded (headers only). */
export async function inspectRelease(path: string, opts: InspectReleaseOptions = {}): Promise<ReleaseReport> {
  const fs = opts.fs ?? fileSystem();
  const folder = await identifyRelease(path, fs, opts);
  const w: Walk = { fs, tensors: opts.tensors ?? false, used: new Set() };
  const components =
    folder.kind === 'world' ? await pipelineComponents(folder, w) :
    folder.format === 'cosmos-tokenizer' ? await tokenizerComponents(folder, w) :
    await modelComponents(folder, w);
  return { path, release: folder.release, format: folder.format, kind: folder.kind, components, ok: components.every((c) => c.ok) };
}
