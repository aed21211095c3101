// Reading a PyTorch checkpoint through the safe reader against the same tensors as safetensors:
// the time to open each (the .pt opening reads its directory, local headers and data.pkl only)
// and to read every tensor's bytes. Rates are bytes read per second (formula: the sum of the
// tensors' numel x itemsize). The tensors are written once to a temporary folder (about 200 MB,
// 20 MB with --quick).
//
//   node --import tsx bench/torch-read.ts [--quick] [--out FILE]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFileSystem } from '../src/io/files.js';
import { nodeFileSystem } from '../src/io/node-files.js';
import { openSafetensors, type TensorReader, writeSafetensors } from '../src/io/safetensors.js';
import { openTorchCheckpoint, type TorchTensor, writeTorchCheckpoint } from '../src/io/torch.js';
import { type BenchRow, benchArgs, runBench, timeBestAsync, writeResult } from './harness.js';

setFileSystem(nodeFileSystem);

async function readAll(r: TensorReader): Promise<number> {
  let n = 0;
  for (const name of r.names) n += (await r.readBytes(name)).length;
  return n;
}

runBench(async () => {
  const args = benchArgs('torch-read.json');
  const dir = mkdtempSync(join(tmpdir(), 'cosmos-bench-torch-'));
  try {
    // 4 MiB f32 and 2 MiB bf16 tensors, like the layers of a state dict
    const count = args.quick ? 4 : 34;
    const sd = new Map<string, TorchTensor>();
    for (let i = 0; i < count; i++) {
      sd.set(`layers.${i}.w`, { dtype: 'F32', shape: [1024, 1024], bytes: new Uint8Array(4 << 20).fill(i) });
      sd.set(`layers.${i}.v`, { dtype: 'BF16', shape: [1024, 1024], bytes: new Uint8Array(2 << 20).fill(i) });
    }
    const bytes = [...sd.values()].reduce((a, t) => a + t.bytes.length, 0);
    const pt = join(dir, 'model.pt');
    const st = join(dir, 'model.safetensors');
    await writeTorchCheckpoint(pt, { model: sd });
    await writeSafetensors(st, new Map([...sd].map(([k, t]) => [`model.${k}`, { dtype: t.dtype, shape: t.shape, raw: t.bytes }])));

    const rows: BenchRow[] = [];
    const row = (name: string, seconds: number, formula: string, rate: number | null) => {
      rows.push({ name, backend: 'io', adapter: 'node fs', shape: `${sd.size} tensors`, formula, seconds, ...(rate === null ? {} : { gbps: rate / seconds / 1e9 }) });
      console.log(`${name.padEnd(28)} ${(seconds * 1000).toFixed(2).padStart(9)} ms${rate === null ? '' : `  ${(rate / seconds / 1e9).toFixed(2)} GB/s`}`);
    };
    const reps = args.quick ? 2 : 5;
    row('open model.pt', await timeBestAsync(async () => (await openTorchCheckpoint(pt)).close(), reps), 'none (directory + data.pkl)', null);
    row('open model.safetensors', await timeBestAsync(async () => (await openSafetensors(st)).close(), reps), 'none (header)', null);
    for (const [name, open] of [
      ['read all: model.pt', () => openTorchCheckpoint(pt)],
      ['read all: model.safetensors', () => openSafetensors(st)],
    ] as const) {
      const r = await open();
      try {
        row(name, await timeBestAsync(async () => void (await readAll(r)), reps), 'sum(numel*itemsize)', bytes);
      } finally {
        await r.close();
      }
    }
    writeResult(args.out, { bench: 'torch-read', bytes, rows });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
