// `cosmos-ts inspect`: list a checkpoint's tensors without loading them (only headers are read,
// and opening validates every header), plus its config.json.
import { basename } from '../io/path.js';
import { type Checkpoint, numelOf, openCheckpoint, type TensorInfo } from '../io/safetensors.js';
import { defineCommand } from './command.js';

/** A config pretty-printed longer than this is summarised by its keys instead. */
const MAX_CONFIG_LINES = 40;

export const command = defineCommand({
  name: 'inspect',
  summary: 'list the tensors and config of a checkpoint',
  description: 'Lists every tensor (name, dtype, shape, bytes), the totals, and config.json when present.',
  positionals: { usage: '<file.safetensors | *.safetensors.index.json | checkpoint dir>', min: 1, max: 1 },
  flags: {
    json: { type: 'boolean', help: 'print one JSON object instead of a table' },
  },
  async run(f, [path], ctx) {
    const ckpt = await openCheckpoint(path);
    try {
      const tensors = ckpt.entries();
      ctx.out(f.json ? JSON.stringify(toJson(ckpt, tensors), null, 2) : formatText(ckpt, tensors));
    } finally {
      await ckpt.close();
    }
  },
});

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
