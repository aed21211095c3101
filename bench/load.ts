// Checkpoint loading: GB/s of loadWeights (weights read straight into their storage, reads in
// flight while the previous tensor goes to the device) on every backend benchBackends gives,
// against two yardsticks measured in the same run on the same bytes: plain positioned reads into
// one reused buffer (what the disk / page cache gives; loading cannot beat it), and the path
// loading took before (each tensor read into a fresh array, then uploaded: `read + upload`).
// Rate = bytes of tensor data / seconds. Writes bench/results/load-latest.json.
//
//   npm run bench:load                         the release skeletons' Cosmos-1.0-Diffusion-7B-Text2World
//                                              text_encoder (T5-11B) and transformer: the first --gb GB
//                                              of each in file order (default 2; --quick 0.5)
//   npm run bench:load -- --checkpoint <file | folder | index.json> [--gb N]
//   npm run bench:load -- --backend cpu
//
// The skeletons are sparse files (every weight a hole), so their reads cost the page cache, not a
// disk: what remains is this project's own overhead. The first pass over a hole is slower (the
// kernel zeroes fresh page-cache pages), so every timed pass comes after an untimed read of the
// same bytes, and each row is the best of --reps passes (default 2).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Backend } from '../src/engine/backend.js';
import { Module, type TensorSource, loadWeights } from '../src/engine/module.js';
import { type Checkpoint, openCheckpoint } from '../src/io/safetensors.js';
import { nodeFileSystem } from '../src/io/node-files.js';
import { type BenchRow, benchArgs, benchBackends, runBench, writeResult } from './harness.js';

const args = benchArgs('load-latest.json', { checkpoint: { type: 'string' }, gb: { type: 'string' }, reps: { type: 'string' } });
const { quick } = args;
const GB = typeof args.extra.gb === 'string' ? Number(args.extra.gb) : quick ? 0.5 : 2;
const REPS = typeof args.extra.reps === 'string' ? Number.parseInt(args.extra.reps, 10) : quick ? 1 : 2;
const FORMULA = 'bytes of tensor data / seconds';

interface Row extends BenchRow {
  path: 'read' | 'load' | 'read + upload';
  checkpoint: string;
  tensors: number;
  bytes: number;
  /** this row's rate over the same run's plain reads */
  vs_read: number | null;
  error?: string;
}

/** The checkpoint's first tensors in file order, up to `gb` GB of data (all when gb <= 0), as a source of their own. */
function subset(ck: Checkpoint, gb: number): TensorSource & { bytes: number } {
  const all = [...ck.names].sort((a, b) => {
    const x = ck.info(a);
    const y = ck.info(b);
    return x.file < y.file ? -1 : x.file > y.file ? 1 : x.byteOffset - y.byteOffset;
  });
  const names: string[] = [];
  let bytes = 0;
  for (const n of all) {
    if (gb > 0 && bytes >= gb * 1e9) break;
    names.push(n);
    bytes += ck.info(n).byteLength;
  }
  return {
    names, bytes, path: ck.path,
    info: (n) => ck.info(n),
    read: (n) => ck.read(n),
    readInto: ck.readInto ? (n, into, off) => ck.readInto!(n, into, off) : undefined,
  };
}

/** One parameter per tensor: what any model's loadWeights does, without a model's config. */
class Flat extends Module {
  constructor(src: TensorSource) {
    super();
    for (const n of src.names) this.param(n, src.info(n).shape);
  }
}

/** Plain positioned reads of the same bytes, in file order, into one reused buffer. */
async function plainReads(ck: Checkpoint, src: TensorSource): Promise<number> {
  const largest = src.names.reduce((m, n) => Math.max(m, ck.info(n).byteLength), 0);
  const buf = new Uint8Array(largest);
  const files = new Map<string, Awaited<ReturnType<typeof nodeFileSystem.open>>>();
  const t0 = performance.now();
  for (const n of src.names) {
    const info = ck.info(n);
    let f = files.get(info.file);
    if (!f) {
      f = await nodeFileSystem.open(info.file);
      files.set(info.file, f);
    }
    await f.read(info.byteOffset, buf.subarray(0, info.byteLength));
  }
  const s = (performance.now() - t0) / 1000;
  for (const f of files.values()) await f.close();
  return s;
}

/** Give pooled device buffers back, so every pass allocates as a first load does. */
function trim(be: Backend): void {
  (be as Backend & { ctx?: { trim(): void } }).ctx?.trim();
}

async function timeLoad(be: Backend, src: TensorSource): Promise<number> {
  const m = new Flat(src);
  try {
    const t0 = performance.now();
    await loadWeights(m, src, be);
    await be.sync();
    return (performance.now() - t0) / 1000;
  } finally {
    m.dispose();
    trim(be);
  }
}

/** The skeleton of Cosmos-1.0-Diffusion-7B-Text2World, built into a temporary folder (removed at exit). */
function skeletons(): string {
  const out = mkdtempSync(join(tmpdir(), 'cosmos-load-bench-'));
  process.on('exit', () => rmSync(out, { recursive: true, force: true }));
  const root = resolve(import.meta.dirname, '..');
  execFileSync('python3', [join(root, 'test', 'releases', 'skeletons.py'), 'build', out], { cwd: root, env: { ...process.env, FIXTURES: join(root, 'test', 'fixtures') }, stdio: 'ignore' });
  return join(out, 'Cosmos-1.0-Diffusion-7B-Text2World');
}

const gbStr = (b: number) => `${(b / 1e9).toFixed(2)} GB`;

async function main(): Promise<void> {
  const backends = await benchBackends(args.backend);
  const given = typeof args.extra.checkpoint === 'string' ? args.extra.checkpoint : null;
  const release = given ? null : skeletons();
  const checkpoints = given ? [given] : [join(release!, 'text_encoder'), join(release!, 'transformer')];
  const rows: Row[] = [];
  console.log(`# checkpoint loading, ${GB > 0 ? `first ${GB} GB of each checkpoint` : 'whole checkpoints'}, best of ${REPS}; ${FORMULA}`);
  for (const be of backends) console.log(`# ${be.name}: ${be.adapter}`);
  for (const path of checkpoints) {
    const ck = await openCheckpoint(path, nodeFileSystem, { config: false });
    try {
      const src = subset(ck, GB);
      const label = given ?? path.slice(release!.length - 'Cosmos-1.0-Diffusion-7B-Text2World'.length);
      const shape = `${src.names.length} tensors, ${gbStr(src.bytes)}`;
      console.log(`\n${label}: ${shape}`);
      await plainReads(ck, src); // the untimed first pass (page cache)
      let readS = Infinity;
      for (let r = 0; r < REPS; r++) readS = Math.min(readS, await plainReads(ck, src));
      const base = { checkpoint: label, shape, formula: FORMULA, tensors: src.names.length, bytes: src.bytes };
      rows.push({ ...base, name: 'plain positioned reads', path: 'read', backend: 'host', adapter: 'node:fs', seconds: readS, gbps: src.bytes / readS / 1e9, vs_read: 1 });
      console.log(`${'host'.padEnd(7)} ${'read'.padEnd(14)} ${readS.toFixed(2)} s  ${(src.bytes / readS / 1e9).toFixed(2)} GB/s`);
      // the path before streaming: each tensor read whole into a fresh array, then uploaded
      const before: TensorSource = { names: src.names, path: src.path, info: src.info, read: src.read };
      for (const be of backends) {
        for (const [path, s] of [['load', src], ['read + upload', before]] as const) {
          const row = { ...base, name: `loadWeights (${path})`, path, backend: be.name, adapter: be.adapter };
          try {
            let best = Infinity;
            for (let r = 0; r < REPS; r++) best = Math.min(best, await timeLoad(be, s));
            const gbps = src.bytes / best / 1e9;
            rows.push({ ...row, seconds: best, gbps, vs_read: readS / best });
            console.log(`${be.name.padEnd(7)} ${path.padEnd(14)} ${best.toFixed(2)} s  ${gbps.toFixed(2)} GB/s  (${(readS / best).toFixed(2)}x plain reads)`);
          } catch (e) {
            const error = ((e as Error).message ?? String(e)).split('\n')[0].slice(0, 240);
            rows.push({ ...row, seconds: null, vs_read: null, error });
            console.log(`${be.name.padEnd(7)} ${path.padEnd(14)} error: ${error}`);
          }
        }
      }
    } finally {
      await ck.close();
    }
  }
  writeResult(args.out, {
    bench: 'load',
    date: new Date().toISOString(),
    quick,
    gb_per_checkpoint: GB,
    adapters: Object.fromEntries(backends.map((b) => [b.name, b.adapter])),
    rows,
  });
}

runBench(main);
