// Copies of a skeleton's .safetensors with an edited header, for tests of what a loader makes of a
// broken release: the data section is recreated as a sparse hole of the new length (the skeleton's
// data are zeros), so a copy of a multi-GB file costs no disk.
import { closeSync, openSync, readSync, truncateSync, writeSync } from 'node:fs';

type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };
type Header = Record<string, Entry | Record<string, string>>;

function readHeader(path: string): Header {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    return JSON.parse(json.toString('utf8')) as Header;
  } finally {
    closeSync(fd);
  }
}

/** Write `dst`: `src`'s tensors after `edit` (which may reshape or delete entries), offsets recomputed in order. */
export function copyWithHeader(src: string, dst: string, edit: (tensors: Record<string, Entry>) => void): void {
  const header = readHeader(src);
  const meta = header.__metadata__;
  const tensors: Record<string, Entry> = {};
  const order = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .sort((a, b) => (a[1] as Entry).data_offsets[0] - (b[1] as Entry).data_offsets[0]);
  for (const [k, v] of order) tensors[k] = { ...(v as Entry), shape: [...(v as Entry).shape] };
  edit(tensors);
  const size: Record<string, number> = { F32: 4, BF16: 2, F16: 2, I64: 8, I32: 4 };
  let at = 0;
  const out: Header = meta ? { __metadata__: meta } : {};
  for (const [k, v] of Object.entries(tensors)) {
    const bytes = v.shape.reduce((a, b) => a * b, 1) * (size[v.dtype] ?? 1);
    out[k] = { ...v, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const json = Buffer.from(JSON.stringify(out), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(dst, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, json);
  } finally {
    closeSync(fd);
  }
  truncateSync(dst, 8 + json.length + at);
}

/** The first 2-D tensor of a header with unequal dimensions (to transpose). */
export function firstMatrix(tensors: Record<string, Entry>): string {
  const name = Object.keys(tensors).find((k) => tensors[k].shape.length === 2 && tensors[k].shape[0] !== tensors[k].shape[1]);
  if (!name) throw new Error('no non-square matrix in the header');
  return name;
}
