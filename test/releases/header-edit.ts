// Broken copies of a release skeleton: the folder mirrored with symlinks, except one safetensors
// file written anew with an edited header (a tensor's shape changed, or a tensor left out with the
// data offsets after it moved down, so the file stays a valid safetensors file). The data region
// stays a sparse hole of the right length: the copy costs no disk.
import { closeSync, mkdirSync, openSync, readSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { CosmosTransformer3DFamily } from '../../src/models/dit/transformer.js';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

type Header = Record<string, Entry | Record<string, string>>;

function readHeader(path: string): Header {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    return JSON.parse(json.toString('utf8'));
  } finally {
    closeSync(fd);
  }
}

/** Write `header` (offsets recomputed in file order) and a sparse data region of the size it indexes. */
function writeHeader(path: string, header: Header): void {
  const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, Entry][];
  tensors.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let cursor = 0;
  const out: Header = {};
  if (header.__metadata__) out.__metadata__ = header.__metadata__;
  for (const [name, e] of tensors) {
    const bytes = e.data_offsets[1] - e.data_offsets[0];
    out[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [cursor, cursor + bytes] };
    cursor += bytes;
  }
  let json = JSON.stringify(out);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json)]));
  truncateSync(path, 8 + Buffer.byteLength(json) + cursor);
}

/**
 * Mirror `src` into `dest` with symlinks, but write `file` (relative to `src`) anew with its header
 * passed through `edit`. Returns `dest`.
 */
export function brokenCopy(src: string, dest: string, file: string, edit: (h: Record<string, Entry>) => void): string {
  const target = join(src, file);
  const mirror = (from: string, to: string) => {
    mkdirSync(to, { recursive: true });
    for (const name of readdirSync(from)) {
      const a = join(from, name);
      const b = join(to, name);
      const onPath = target === a || target.startsWith(a + sep);
      if (!onPath) symlinkSync(a, b);
      else if (statSync(a).isDirectory()) mirror(a, b);
    }
  };
  mirror(src, dest);
  const header = readHeader(target);
  edit(header as Record<string, Entry>);
  const out = join(dest, relative(src, target));
  mkdirSync(dirname(out), { recursive: true });
  writeHeader(out, header);
  return dest;
}

/** The shape of `name` reversed (a transposed matrix). */
export function transpose(name: string) {
  return (h: Record<string, Entry>) => {
    if (!h[name]) throw new Error(`no tensor ${name} to transpose`);
    h[name].shape = [...h[name].shape].reverse();
  };
}

/** `name` left out. */
export function drop(name: string) {
  return (h: Record<string, Entry>) => {
    if (!h[name]) throw new Error(`no tensor ${name} to drop`);
    delete h[name];
  };
}

/** The tensor names of a safetensors file (its header). */
export function tensorNames(path: string): string[] {
  return Object.keys(readHeader(path)).filter((k) => k !== '__metadata__');
}

/**
 * A world release folder for a transformer config that has no skeleton (the 14B releases): `base`
 * (a skeleton of the same pipeline) mirrored, its transformer/ replaced by `config` and a header
 * listing every parameter that config declares, in bf16, over a sparse data region.
 */
export function declaredRelease(base: string, dest: string, config: Record<string, unknown>): string {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(join(dest, 'transformer'), { recursive: true });
  for (const name of readdirSync(base)) if (name !== 'transformer') symlinkSync(join(base, name), join(dest, name));
  writeFileSync(join(dest, 'transformer', 'config.json'), JSON.stringify(config, null, 2));
  const header: Header = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const p of CosmosTransformer3DFamily.build(config).parameters()) {
    const bytes = 2 * p.shape.reduce((a, b) => a * b, 1);
    header[p.key] = { dtype: 'BF16', shape: [...p.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  writeHeader(join(dest, 'transformer', 'diffusion_pytorch_model.safetensors'), header);
  return dest;
}
