// `cosmos-ts inspect`: what a checkpoint or a downloaded release folder holds, reading headers
// only. A file (.safetensors, an index, .pt / .pth / .jit) lists its tensors; a release folder
// lists its components, each checked against the module tree its config implies
// (pipelines/release-inspect.ts); a folder that is no release but holds a checkpoint lists that.
import { isUserError } from '../engine/errors.js';
import { fileSystem } from '../io/files.js';
import { basename } from '../io/path.js';
import { type Checkpoint, numelOf, openCheckpoint, type TensorInfo } from '../io/safetensors.js';
import { type ReleaseReport, inspectRelease } from '../pipelines/release-inspect.js';
import { ReleaseFormatError } from '../pipelines/release-kind.js';
import { defineCommand } from './command.js';

/** A config pretty-printed longer than this is summarised by its keys instead. */
const MAX_CONFIG_LINES = 40;

export const command = defineCommand({
  name: 'inspect',
  summary: 'list the components of a release folder, or the tensors and config of a checkpoint',
  description:
    'A release folder as downloaded (a diffusers pipeline, a transformers model, a Cosmos Tokenizer or\n' +
    'autoregressive release): what it is and, per weight component, its class, exact parameter count,\n' +
    'bytes, dtype and files, every tensor checked against the model its config describes (headers only;\n' +
    'a component that cannot be read is reported in its entry). A checkpoint file: every tensor (name,\n' +
    'dtype, shape, bytes), the totals, and config.json when present. Exit status 2 when a release\n' +
    'component cannot be read or does not fit its config.',
  positionals: { usage: '<release folder | file.safetensors | *.safetensors.index.json | file.pt | file.jit>', min: 1, max: 1, path: 'input' },
  flags: {
    json: { type: 'boolean', help: 'print one JSON object instead of a table' },
    release: { type: 'string', placeholder: '<name>', help: 'the release, for a folder whose name does not say it (e.g. Cosmos-1.0-Tokenizer-CV8x8x8)' },
    tensors: { type: 'boolean', help: 'with a release folder, also list every tensor of each component' },
  },
  async run(f, [path], ctx) {
    if ((await fileSystem().stat(path))?.kind === 'directory') {
      const report = await releaseOrNull(path, f.release, f.tensors);
      if (report) {
        ctx.out(f.json ? JSON.stringify(report, null, 2) : formatRelease(report));
        if (report.ok) return 0;
        const bad = report.components.filter((c) => !c.ok).map((c) => c.name);
        ctx.err(`error: ${path}: ${bad.length} of ${report.components.length} component(s) could not be read or checked (${bad.join(', ')})`);
        return 2;
      }
    }
    const ckpt = await openCheckpoint(path);
    try {
      const tensors = ckpt.entries();
      ctx.out(f.json ? JSON.stringify(toJson(ckpt, tensors), null, 2) : formatText(ckpt, tensors));
    } finally {
      await ckpt.close();
    }
  },
});

/** The release view of a folder, or null for a folder that is no release (a plain checkpoint folder). */
async function releaseOrNull(path: string, release: string | undefined, tensors: boolean): Promise<ReleaseReport | null> {
  try {
    return await inspectRelease(path, { release, tensors });
  } catch (e) {
    // only "this folder is not a release" falls back to the checkpoint listing; --release makes it one
    if (release === undefined && e instanceof ReleaseFormatError && isUserError(e)) return null;
    throw e;
  }
}

function formatRelease(r: ReleaseReport): string {
  const lines = [`${r.path}: ${r.release} (${r.format})`, ''];
  const header = ['component', 'class', 'parameters', 'bytes', 'dtype', 'files', 'status'];
  const rows = r.components.map((c) => [
    c.name,
    c.class,
    group(c.parameters),
    humanBytes(c.bytes),
    c.dtype ?? '-',
    String(c.files.length),
    c.ok ? (c.note ? `ok (${c.note})` : 'ok') : `error: ${c.error}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (i === 6 ? 0 : row[i].length))));
  const fmt = (row: string[]) => row.map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]) : i === 6 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  lines.push(fmt(header), fmt(widths.map((w, i) => '-'.repeat(i === 6 ? header[6].length : w))));
  for (const row of rows) lines.push(fmt(row));
  const params = r.components.reduce((a, c) => a + c.parameters, 0);
  const bytes = r.components.reduce((a, c) => a + c.bytes, 0);
  lines.push('', `total: ${group(params)} parameters, ${humanBytes(bytes)} in ${r.components.length} component(s)${r.ok ? '' : '; some could not be read or checked'}`);
  for (const c of r.components) {
    if (!c.tensors) continue;
    lines.push('', `${c.name}:`);
    for (const t of c.tensors) lines.push(`  ${t.name}  ${t.dtype}  [${t.shape.join(', ')}]  ${group(t.bytes)}`);
  }
  return lines.join('\n');
}

function totals(tensors: readonly TensorInfo[]) {
  let bytes = 0;
  let params = 0;
  for (const t of tensors) {
    bytes += t.byteLength;
    params += numelOf(t.shape);
  }
  return { count: tensors.length, bytes, params };
}

function toJson(ckpt: Checkpoint, tensors: readonly TensorInfo[]) {
  return {
    path: ckpt.path,
    files: ckpt.files,
    metadata: ckpt.metadata,
    tensors: tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.byteLength, file: t.file })),
    total: totals(tensors),
    config: ckpt.config,
  };
}

const group = (n: number) => n.toLocaleString('en-US');

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let x = n;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${x.toFixed(2)} ${units[u]}`;
}

function formatText(ckpt: Checkpoint, tensors: readonly TensorInfo[]): string {
  const lines: string[] = [];
  lines.push(ckpt.files.length === 1 ? `file: ${ckpt.files[0]}` : `checkpoint: ${ckpt.path} (${ckpt.files.length} files)`);
  for (const [k, v] of Object.entries(ckpt.metadata)) lines.push(`metadata ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  lines.push('');

  const multi = ckpt.files.length > 1;
  const header = ['name', 'dtype', 'shape', 'bytes', ...(multi ? ['file'] : [])];
  const rows = tensors.map((t) => [
    t.name,
    t.dtype,
    `[${t.shape.join(', ')}]`,
    group(t.byteLength),
    ...(multi ? [basename(t.file)] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  lines.push(fmt(header), widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) lines.push(fmt(r));

  const tot = totals(tensors);
  lines.push('');
  lines.push(`total: ${group(tot.count)} tensors, ${group(tot.bytes)} bytes (${humanBytes(tot.bytes)}), ${group(tot.params)} params`);

  if (ckpt.config !== null) {
    lines.push('');
    const pretty = JSON.stringify(ckpt.config, null, 2);
    if (pretty.split('\n').length <= MAX_CONFIG_LINES) lines.push('config.json:', pretty);
    else lines.push(...summariseConfig(ckpt.config));
  }
  return lines.join('\n');
}

function summariseConfig(config: unknown): string[] {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return [`config.json: ${JSON.stringify(config)}`];
  const entries = Object.entries(config);
  const out = [`config.json (${entries.length} keys):`];
  for (const [k, v] of entries) {
    let s: string;
    if (Array.isArray(v)) s = JSON.stringify(v).length <= 60 ? JSON.stringify(v) : `[...] (${v.length} items)`;
    else if (typeof v === 'object' && v !== null) s = `{...} (${Object.keys(v).length} keys)`;
    else s = JSON.stringify(v);
    out.push(`  ${k}: ${s}`);
  }
  return out;
}
