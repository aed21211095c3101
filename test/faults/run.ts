// The scripted fault run: about eighty bad inputs, wrong flags and hostile files given to the real
// command line (a process per fault, as a user runs it), each checked against the error contract:
// exit status 2, the last stderr line `error: <what>: <why>`, no stack trace, every file of the
// workspace and every model folder unchanged and nothing new left behind, refused in a few seconds
// when the fault is knowable before compute, bounded time and memory.
//
//   npm run faults [-- --json faults.json] [-- --only <id-substring>]
//
// The test files (test/cli/faults-*.test.ts, test/io/faults-*.test.ts, ...) hold one family each
// and run in-process; this runs other files and flags end to end, so it also catches what only a
// process shows (stdout drained, exit status, Dawn's messages, signals left alone).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, cpSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync,
  symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createDeflate } from 'node:zlib';
import * as nodePath from 'node:path';
import { setFileSystem } from '../../src/io/files.js';
import { nodeFileSystem } from '../../src/io/node-files.js';
import { writePngFrames } from '../../src/io/png-frames.js';
import { encodePng } from '../../src/io/png.js';
import { openSafetensors, type TensorToWrite, writeSafetensors } from '../../src/io/safetensors.js';
import { encodeY4m } from '../../src/io/y4m.js';
import { CV, gradientClip, transferSpecJson, writeTransferFolder, writeWorldFolders } from '../pipelines/world-fixtures.js';

setFileSystem(nodeFileSystem);

const ROOT = nodePath.resolve(import.meta.dirname, '../..');
const DV = nodePath.join(ROOT, 'weights/cosmos-tokenizer-tiny-dv4x8x8');
const CLI = nodePath.join(ROOT, 'bin/cosmos-ts.mjs');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

interface Fault {
  id: string;
  family: 'outputs' | 'flags' | 'inputs' | 'limits' | 'numbers' | 'headers' | 'models';
  args: string[];
  /** the fault is knowable before any model loads: refused within FAST_S */
  early: boolean;
  /** the last line must also match this (the flag, file or tag it names) */
  names?: RegExp;
}

const FAST_S = 6; // a process start (tsx compiles on import) plus the checks, on a loaded 2-core machine
const SLOW_S = 120;
const MAX_RSS_MB = 3000;

// ------------------------------------------------------------------ the workspace

const W = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-faults-'));
const w = (...p: string[]) => nodePath.join(W, ...p);

function y4m(header: string, frames: number, frameBytes: number): Uint8Array {
  const head = new TextEncoder().encode(`YUV4MPEG2 ${header}\n`);
  const fh = new TextEncoder().encode('FRAME\n');
  const out = new Uint8Array(head.length + frames * (fh.length + frameBytes));
  out.set(head);
  for (let f = 0, o = head.length; f < frames; f++, o += fh.length + frameBytes) {
    out.set(fh, o);
    out.fill(128, o + fh.length, o + fh.length + frameBytes);
  }
  return out;
}

/** A PNG whose IHDR claims width x height while its data is a few bytes (it would inflate to gigabytes). */
function pngClaiming(width: number, height: number): Uint8Array {
  const small = encodePng({ width: 4, height: 4, data: new Uint8Array(48).fill(90) });
  const out = small.slice();
  const dv = new DataView(out.buffer);
  dv.setUint32(16, width);
  dv.setUint32(20, height);
  // the IHDR's CRC covers the type and data: recompute it so only the size is wrong
  dv.setUint32(29, crc32(out.subarray(12, 29)));
  return out;
}

/** A real 20000x20000 RGB PNG of zeros: about a megabyte that inflates to 1.2 GB. */
async function pngBomb(width: number, height: number): Promise<Uint8Array> {
  const z = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  z.on('data', (c: Buffer) => parts.push(c));
  const done = new Promise<void>((ok, fail) => { z.on('end', ok); z.on('error', fail); });
  const rows = Buffer.alloc((1 + 3 * width) * 100);
  for (let y = 0; y < height; y += 100) if (!z.write(rows)) await new Promise((ok) => z.once('drain', ok));
  z.end();
  await done;
  const idat = Buffer.concat(parts);
  const chunk = (type: string, data: Uint8Array) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    out.set(data, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

async function rewriteSafetensors(from: string, to: string, edit: (name: string, t: TensorToWrite) => TensorToWrite): Promise<void> {
  const f = await openSafetensors(from);
  const tensors: Record<string, TensorToWrite> = {};
  for (const n of f.names) {
    const t = await f.read(n);
    tensors[n] = edit(n, { dtype: t.dtype, shape: t.shape, raw: t.raw.slice() });
  }
  const metadata = f.metadata;
  await f.close();
  await writeSafetensors(to, tensors, metadata);
}

function cli(args: string[], timeoutS: number) {
  const argv = TIME ? [TIME, '-f', 'MAXRSS_KB %M', process.execPath, CLI, ...args] : [process.execPath, CLI, ...args];
  const t0 = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd: W, encoding: 'utf8', timeout: timeoutS * 1000, env: { ...process.env, COSMOS_DEBUG: '', COSMOS_CACHE_DIR: w('no-cache') } });
  const seconds = (performance.now() - t0) / 1000;
  let stderr = r.stderr ?? '';
  const m = /MAXRSS_KB (\d+)\s*$/.exec(stderr);
  const rssMb = m ? Number(m[1]) / 1024 : null;
  if (m) stderr = stderr.slice(0, m.index).replace(/^Command (exited with non-zero status \d+|terminated by signal \d+)\n/m, '');
  return { rc: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr, seconds, rssMb };
}

async function setup(): Promise<void> {
  const clip = gradientClip(9, 32, 32, 1);
  writeFileSync(w('clip.y4m'), encodeY4m(clip, { fps: { num: 24, den: 1 } }));
  await writePngFrames(w('frames'), clip);
  writeFileSync(w('img.png'), encodePng({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(77) }));
  writeFileSync(w('tiny.y4m'), encodeY4m(gradientClip(5, 6, 8, 2), { fps: { num: 24, den: 1 } }));
  mkdirSync(w('out'));
  const tok = cli(['tokenize', '--model', CV, '--input', 'clip.y4m', '--out', 'tokens.safetensors', '--backend', 'cpu'], SLOW_S);
  if (tok.rc !== 0) throw new Error(`setup: tokenize failed: ${tok.stderr}`);
  const dtok = cli(['tokenize', '--model', DV, '--input', 'clip.y4m', '--out', 'dv-tokens.safetensors', '--backend', 'cpu'], SLOW_S);
  if (dtok.rc !== 0) throw new Error(`setup: tokenize (DV) failed: ${dtok.stderr}`);

  // files that are wrong in one way each
  await rewriteSafetensors(w('tokens.safetensors'), w('tokens-nan.safetensors'), (_n, t) => {
    if (t.dtype === 'f32' || t.dtype === 'F32') {
      const v = t.raw as Float32Array;
      v[0] = Number.NaN;
      v[v.length - 1] = Number.POSITIVE_INFINITY;
    }
    return t;
  });
  await rewriteSafetensors(w('dv-tokens.safetensors'), w('dv-tokens-range.safetensors'), (n, t) => {
    if (n === 'indices') (t.raw as Int32Array)[0] = 1 << 30;
    return t;
  });
  const tokBytes = readFileSync(w('tokens.safetensors'));
  writeFileSync(w('tokens-cut.safetensors'), tokBytes.subarray(0, Math.floor(tokBytes.length / 2)));
  writeFileSync(w('empty.y4m'), new Uint8Array(0));
  writeFileSync(w('random.bin'), Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24));
  writeFileSync(w('notes.txt'), 'not a video\n');
  const frame = 32 * 32 * 3 / 2;
  const headers: Record<string, string> = {
    'interlaced-t': 'W32 H32 F24:1 It A1:1 C420jpeg', 'interlaced-b': 'W32 H32 F24:1 Ib A1:1 C420jpeg', 'interlaced-m': 'W32 H32 F24:1 Im A1:1 C420jpeg',
    'rate-zero': 'W32 H32 F0:0 Ip A1:1 C420jpeg', 'rate-den-zero': 'W32 H32 F30:0 Ip C420jpeg', 'rate-garbage': 'W32 H32 Ffast Ip C420jpeg',
    'c422': 'W32 H32 F24:1 Ip C422', 'c420p10': 'W32 H32 F24:1 Ip C420p10', 'mono': 'W32 H32 F24:1 Ip Cmono',
    'huge': 'W100000 H100000 F24:1 Ip C420jpeg', 'width-zero': 'W0 H32 F24:1 Ip C420jpeg', 'no-height': 'W32 F24:1 Ip C420jpeg',
  };
  for (const [name, h] of Object.entries(headers)) writeFileSync(w(`${name}.y4m`), y4m(h, 9, frame));
  writeFileSync(w('truncated.y4m'), y4m('W32 H32 F24:1 Ip C420jpeg', 9, frame).subarray(0, 5000));
  writeFileSync(w('magic.y4m'), new TextEncoder().encode('YUV4MPEG3 W32 H32\nFRAME\n'));
  writeFileSync(w('huge.png'), pngClaiming(20000, 20000));
  writeFileSync(w('bomb.png'), await pngBomb(20000, 20000));
  mkdirSync(w('huge-frames'));
  writeFileSync(w('huge-frames', 'frame_000000.png'), pngClaiming(30000, 30000));
  const badCrc = encodePng({ width: 8, height: 8, data: new Uint8Array(192).fill(5) });
  badCrc[30] ^= 0xff;
  writeFileSync(w('crc.png'), badCrc);
  mkdirSync(w('mixed-frames'));
  writeFileSync(w('mixed-frames', 'frame_000000.png'), encodePng({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) }));
  writeFileSync(w('mixed-frames', 'frame_000001.png'), encodePng({ width: 16, height: 32, data: new Uint8Array(16 * 32 * 3) }));
  mkdirSync(w('no-frames'));
  writeFileSync(w('no-frames', 'readme.txt'), 'no frames here');

  // output places that must be refused
  writeFileSync(w('victim.bin'), 'precious\n');
  symlinkSync(w('victim.bin'), w('link-to-victim'));
  symlinkSync(w('clip.y4m'), w('link-to-clip.y4m'));
  linkSync(w('clip.y4m'), w('hard-clip.y4m'));
  spawnSync('mkfifo', [w('fifo')]);
  // a Unix socket file that outlives its process
  spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', w('socket')]);
  if (!lstatSync(w('socket')).isSocket()) throw new Error('setup: could not make a socket file');
  mkdirSync(w('a-dir'));
  writeFileSync(w('a-file'), 'x');
  mkdirSync(w('other-folder'));
  writeFileSync(w('other-folder', 'keep.txt'), 'mine');

  // models that are wrong in one way each (copies; the originals are checked unchanged)
  for (const name of ['cv-nan', 'cv-badjson', 'cv-noweights', 'cv-cut', 'cv-shape']) cpSync(CV, w(name), { recursive: true });
  let poisoned = false;
  await rewriteSafetensors(nodePath.join(CV, 'model.safetensors'), w('cv-nan', 'model.safetensors'), (n, t) => {
    // one NaN in one weight of the encoder
    if (!poisoned && n.startsWith('encoder') && n.endsWith('weight') && t.shape.reduce((a, b) => a * b, 1) > 4) {
      (t.raw as Float32Array)[3] = Number.NaN;
      poisoned = true;
    }
    return t;
  });
  writeFileSync(w('cv-badjson', 'config.json'), '{"z_channels": 16,');
  rmSync(w('cv-noweights', 'model.safetensors'));
  const mb = readFileSync(nodePath.join(CV, 'model.safetensors'));
  writeFileSync(w('cv-cut', 'model.safetensors'), mb.subarray(0, Math.floor(mb.length * 0.6)));
  await rewriteSafetensors(nodePath.join(CV, 'model.safetensors'), w('cv-shape', 'model.safetensors'), (n, t) =>
    n.endsWith('.weight') && t.shape.length >= 2 && t.shape[0] !== t.shape[1] ? { ...t, shape: [t.shape[1], t.shape[0], ...t.shape.slice(2)] } : t);

  // world folders, a transfer folder and specs with one fault each
  mkdirSync(w('world'));
  const folders = await writeWorldFolders(w('world'));
  writeFileSync(w('world.json'), JSON.stringify(folders));
  mkdirSync(w('transfer'));
  await writeTransferFolder(w('transfer'));
  const spec = transferSpecJson();
  writeFileSync(w('transfer', 'missing-control.json'), JSON.stringify({ ...spec, controls: { ...spec.controls, depth: { ...spec.controls.depth, input_control: 'nowhere.y4m' } } }));
  writeFileSync(w('transfer', 'bad.json'), '{"controls": ');
  writeFileSync(w('transfer', 'interlaced-control.json'), JSON.stringify({ ...spec, controls: { ...spec.controls, depth: { ...spec.controls.depth, input_control: '../interlaced-t.y4m' } } }));
  await rewriteSafetensors(folders.EMB48, w('emb-inf.safetensors'), (_n, t) => {
    (t.raw as Float32Array)[1] = Number.NEGATIVE_INFINITY;
    return t;
  });
  // a case folder with a NaN tolerance is a failing case (exit 1), not a user error: not here
  chmodSync(w('a-dir'), 0o755);
}

function faults(): Fault[] {
  const F = JSON.parse(readFileSync(w('world.json'), 'utf8')) as Record<string, string>;
  const cpu = ['--backend', 'cpu'];
  const tok = (...a: string[]) => ['tokenize', '--model', CV, ...a, ...cpu];
  const rt = (...a: string[]) => ['roundtrip', '--model', CV, ...a, ...cpu];
  const detok = (...a: string[]) => ['detokenize', ...a, ...cpu];
  const t2w = (...a: string[]) => ['text2world', '--model', F.T2W, '--steps', '2', '--frames', '9', '--height', '32', '--width', '32', ...a, ...cpu];
  const p25 = (...a: string[]) => ['text2world', '--model', F.P25, '--steps', '2', '--frames', '5', '--height', '16', '--width', '16', ...a, ...cpu];
  const v2w = (...a: string[]) => ['video2world', '--model', F.P25, '--embeddings', F.EMB48, '--steps', '2', ...a, ...cpu];
  const list: Fault[] = [
    // ---- outputs: never replace what is not ours, never write over an input
    { id: 'out-symlink', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', 'link-to-victim'), early: true, names: /link-to-victim/ },
    { id: 'out-fifo', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', 'fifo'), early: true, names: /fifo/ },
    // a socket stands for devices: a CLI that regressed would replace /dev/null itself for everyone on the machine
    { id: 'out-socket', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', 'socket'), early: true, names: /socket/ },
    { id: 'out-is-input', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', 'clip.y4m'), early: true, names: /clip\.y4m/ },
    { id: 'out-is-input-dot', family: 'outputs', args: rt('--input', 'clip.y4m', '--out', './clip.y4m'), early: true, names: /clip\.y4m/ },
    { id: 'out-is-input-abs', family: 'outputs', args: rt('--input', 'clip.y4m', '--out', w('clip.y4m')), early: true, names: /clip\.y4m/ },
    { id: 'out-symlink-to-input', family: 'outputs', args: rt('--input', 'clip.y4m', '--out', 'link-to-clip.y4m'), early: true, names: /link-to-clip/ },
    { id: 'out-hardlink-to-input', family: 'outputs', args: rt('--input', 'clip.y4m', '--out', 'hard-clip.y4m'), early: true, names: /hard-clip/ },
    { id: 'out-folder-is-input', family: 'outputs', args: rt('--input', 'frames', '--out', 'frames'), early: true, names: /frames/ },
    { id: 'out-folder-is-input-slash', family: 'outputs', args: rt('--input', 'frames/', '--out', './frames'), early: true, names: /frames/ },
    { id: 'sheet-is-input', family: 'outputs', args: rt('--input', 'clip.y4m', '--out', 'out/r.y4m', '--sheet', 'clip.y4m'), early: true, names: /--sheet|clip\.y4m/ },
    { id: 'png-is-input', family: 'outputs', args: rt('--input', 'frames', '--out', 'out/r.y4m', '--png', 'frames'), early: true, names: /--png|frames/ },
    { id: 'two-outputs-same', family: 'outputs', args: rt('--input', 'clip.y4m', '--out', 'out/r.png', '--sheet', './out/r.png'), early: true, names: /r\.png/ },
    { id: 'out-missing-folder', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', 'nowhere/t.safetensors'), early: true, names: /nowhere/ },
    { id: 'out-is-directory', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', 'a-dir'), early: true, names: /a-dir/ },
    { id: 'out-parent-is-file', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', 'a-file/t.safetensors'), early: true, names: /a-file/ },
    { id: 'out-read-only-fs', family: 'outputs', args: tok('--input', 'clip.y4m', '--out', '/proc/t.safetensors'), early: true, names: /\/proc/ },
    { id: 'out-other-folder', family: 'outputs', args: rt('--input', 'clip.y4m', '--out', 'other-folder'), early: true, names: /other-folder/ },
    { id: 'detok-out-is-tokens', family: 'outputs', args: detok('--tokens', 'tokens.safetensors', '--out', 'tokens.safetensors'), early: true, names: /tokens\.safetensors/ },
    { id: 'detok-out-symlink', family: 'outputs', args: detok('--tokens', 'tokens.safetensors', '--out', 'link-to-victim'), early: true, names: /link-to-victim/ },
    { id: 'emb-out-is-emb', family: 'outputs', args: p25('--embeddings', F.EMB48, '--embeddings-out', F.EMB48, '--out', 'out/a.y4m'), early: true, names: /emb48|--embeddings-out/ },
    { id: 't2w-out-is-emb', family: 'outputs', args: p25('--embeddings', F.EMB48, '--out', F.EMB48), early: true, names: /emb48/ },
    { id: 'transfer-latents-is-out', family: 'outputs', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--out', 'out/t.y4m', '--latents-out', 'out/t.y4m', ...cpu], early: true, names: /t\.y4m/ },
    { id: 'transfer-out-is-control', family: 'outputs', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--out', w('transfer', 'edge.y4m'), ...cpu], early: true, names: /edge\.y4m/ },
    // ---- flags: checked before anything runs, named
    { id: 'unknown-flag', family: 'flags', args: tok('--input', 'clip.y4m', '--out', 'out/t.safetensors', '--bogus'), early: true, names: /--bogus/ },
    { id: 'chunk-zero', family: 'flags', args: tok('--input', 'clip.y4m', '--out', 'out/t.safetensors', '--chunk', '0'), early: true, names: /--chunk/ },
    { id: 'chunk-word', family: 'flags', args: tok('--input', 'clip.y4m', '--out', 'out/t.safetensors', '--chunk', 'four'), early: true, names: /--chunk/ },
    { id: 'seed-word', family: 'flags', args: p25('--embeddings', F.EMB48, '--seed', 'abc', '--out', 'out/a.y4m'), early: true, names: /--seed/ },
    { id: 'seed-fraction', family: 'flags', args: p25('--embeddings', F.EMB48, '--seed', '1.5', '--out', 'out/a.y4m'), early: true, names: /--seed/ },
    { id: 'steps-zero', family: 'flags', args: p25('--embeddings', F.EMB48, '--steps', '0', '--out', 'out/a.y4m'), early: true, names: /--steps/ },
    { id: 'steps-negative', family: 'flags', args: p25('--embeddings', F.EMB48, '--steps', '-3', '--out', 'out/a.y4m'), early: true, names: /--steps/ },
    { id: 'guidance-nan', family: 'flags', args: p25('--embeddings', F.EMB48, '--guidance', 'NaN', '--out', 'out/a.y4m'), early: true, names: /--guidance/ },
    { id: 'frames-fraction', family: 'flags', args: p25('--embeddings', F.EMB48, '--frames', '2.5', '--out', 'out/a.y4m'), early: true, names: /--frames/ },
    { id: 'prompt-and-embeddings', family: 'flags', args: p25('--embeddings', F.EMB48, '--prompt', 'a cat', '--out', 'out/a.y4m'), early: true, names: /--prompt|--embeddings/ },
    { id: 'missing-model', family: 'flags', args: ['text2world', '--prompt', 'x', '--out', 'out/a.y4m', ...cpu], early: true, names: /--model/ },
    { id: 'bad-backend', family: 'flags', args: ['roundtrip', '--model', CV, '--input', 'clip.y4m', '--out', 'out/r.y4m', '--backend', 'metal'], early: true, names: /--backend/ },
    { id: 'top-p-above-one', family: 'flags', args: ['reason', '--model', F.P25, '--prompt', 'x', '--top-p', '2', ...cpu], early: true, names: /--top-p/ },
    { id: 'temperature-negative', family: 'flags', args: ['reason', '--model', F.P25, '--prompt', 'x', '--temperature', '-1', ...cpu], early: true, names: /--temperature/ },
    { id: 'ar-frames-zero', family: 'flags', args: ['ar-video2world', '--model', 'nowhere', '--tokenizer', DV, '--input', 'clip.y4m', '--out', 'out/a.y4m', '--frames', '0', ...cpu], early: true, names: /--frames/ },
    { id: 'ar-decoder-steps-zero', family: 'flags', args: ['ar-video2world', '--model', 'nowhere', '--tokenizer', DV, '--input', 'clip.y4m', '--out', 'out/a.y4m', '--decoder-steps', '0', ...cpu], early: true, names: /--decoder-steps/ },
    { id: 'ar-decoder-guidance-word', family: 'flags', args: ['ar-video2world', '--model', 'nowhere', '--tokenizer', DV, '--input', 'clip.y4m', '--out', 'out/a.y4m', '--decoder-guidance', 'high', ...cpu], early: true, names: /--decoder-guidance/ },
    { id: 'input-fps-word', family: 'flags', args: v2w('--input', 'frames', '--input-fps', 'fast', '--out', 'out/v.y4m'), early: true, names: /--input-fps/ },
    { id: 'inspect-no-path', family: 'flags', args: ['inspect'], early: true, names: /inspect|path|release/ },
    { id: 'conform-missing', family: 'flags', args: ['conform', 'no-such-cases', ...cpu], early: true, names: /no-such-cases/ },
    { id: 'unknown-command', family: 'flags', args: ['tokenise', '--model', CV], early: true, names: /tokenise/ },
    { id: 'seed-huge', family: 'flags', args: p25('--embeddings', F.EMB48, '--seed', '1e400', '--out', 'out/a.y4m'), early: true, names: /--seed/ },
    // ---- missing and wrong files
    { id: 'input-missing', family: 'inputs', args: tok('--input', 'missing.y4m', '--out', 'out/t.safetensors'), early: true, names: /missing\.y4m/ },
    { id: 'input-empty', family: 'inputs', args: tok('--input', 'empty.y4m', '--out', 'out/t.safetensors'), early: true, names: /empty\.y4m/ },
    { id: 'input-text', family: 'inputs', args: tok('--input', 'notes.txt', '--out', 'out/t.safetensors'), early: true, names: /notes\.txt/ },
    { id: 'input-fifo', family: 'inputs', args: tok('--input', 'fifo', '--out', 'out/t.safetensors'), early: true, names: /fifo/ },
    { id: 'input-folder-no-frames', family: 'inputs', args: tok('--input', 'no-frames', '--out', 'out/t.safetensors'), early: true, names: /no-frames/ },
    { id: 'input-frames-mixed', family: 'inputs', args: tok('--input', 'mixed-frames', '--out', 'out/t.safetensors'), early: false, names: /frame_000001\.png/ },
    { id: 'model-missing', family: 'models', args: ['tokenize', '--model', 'no-model', '--input', 'clip.y4m', '--out', 'out/t.safetensors', ...cpu], early: true, names: /no-model/ },
    { id: 'model-is-file', family: 'models', args: ['tokenize', '--model', 'notes.txt', '--input', 'clip.y4m', '--out', 'out/t.safetensors', ...cpu], early: true, names: /notes\.txt/ },
    { id: 'model-bad-json', family: 'models', args: ['roundtrip', '--model', 'cv-badjson', '--input', 'clip.y4m', '--out', 'out/r.y4m', ...cpu], early: true, names: /config\.json/ },
    { id: 'model-no-weights', family: 'models', args: ['roundtrip', '--model', 'cv-noweights', '--input', 'clip.y4m', '--out', 'out/r.y4m', ...cpu], early: true, names: /cv-noweights/ },
    { id: 'model-truncated', family: 'models', args: ['roundtrip', '--model', 'cv-cut', '--input', 'clip.y4m', '--out', 'out/r.y4m', ...cpu], early: true, names: /model\.safetensors/ },
    { id: 'model-wrong-shapes', family: 'models', args: ['roundtrip', '--model', 'cv-shape', '--input', 'clip.y4m', '--out', 'out/r.y4m', ...cpu], early: true, names: /cv-shape|shape/ },
    { id: 'tokens-missing', family: 'inputs', args: detok('--tokens', 'none.safetensors', '--out', 'out/r.y4m'), early: true, names: /none\.safetensors/ },
    { id: 'tokens-truncated', family: 'inputs', args: detok('--tokens', 'tokens-cut.safetensors', '--out', 'out/r.y4m'), early: true, names: /tokens-cut/ },
    { id: 'tokens-is-video', family: 'inputs', args: detok('--tokens', 'clip.y4m', '--out', 'out/r.y4m'), early: true, names: /clip\.y4m/ },
    { id: 'tokens-ids-out-of-range', family: 'inputs', args: detok('--tokens', 'dv-tokens-range.safetensors', '--out', 'out/r.y4m'), early: false, names: /dv-tokens-range|indices/ },
    { id: 'inspect-random', family: 'inputs', args: ['inspect', 'random.bin'], early: true, names: /random\.bin/ },
    { id: 'transfer-spec-missing', family: 'inputs', args: ['transfer', '--spec', 'nope.json', '--out', 'out/t.y4m', ...cpu], early: true, names: /nope\.json/ },
    { id: 'transfer-spec-bad-json', family: 'inputs', args: ['transfer', '--spec', w('transfer', 'bad.json'), '--out', 'out/t.y4m', ...cpu], early: true, names: /bad\.json/ },
    { id: 'transfer-control-missing', family: 'inputs', args: ['transfer', '--spec', w('transfer', 'missing-control.json'), '--out', 'out/t.y4m', ...cpu], early: true, names: /nowhere\.y4m/ },
    { id: 'transfer-input-fifo', family: 'inputs', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--input', 'fifo', '--control', 'edge', '--out', 'out/t.y4m', ...cpu], early: true, names: /fifo/ },
    // COSMOS_CACHE_DIR points at an empty folder: no cached depth weights to fall back on
    { id: 'transfer-depth-no-model', family: 'flags', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--input', 'clip.y4m', '--control', 'depth', '--out', 'out/t.y4m', ...cpu], early: true, names: /--depth-model/ },
    { id: 'transfer-depth-preset', family: 'flags', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--input', 'clip.y4m', '--control', 'depth=high', '--out', 'out/t.y4m', ...cpu], early: true, names: /--control depth=high/ },
    { id: 'transfer-depth-model-not-depth', family: 'models', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--input', 'clip.y4m', '--control', 'depth', '--depth-model', nodePath.join(CV, 'model.safetensors'), '--out', 'out/t.y4m', ...cpu], early: true, names: /model\.safetensors/ },
    { id: 'transfer-control-no-input', family: 'flags', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--control', 'edge', '--out', 'out/t.y4m', ...cpu], early: true, names: /--control/ },
    { id: 'transfer-save-controls-on-file', family: 'outputs', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--input', 'clip.y4m', '--control', 'edge', '--save-controls', 'clip.y4m', '--out', 'out/t.y4m', ...cpu], early: true, names: /--save-controls/ },
    { id: 'reason-image-missing', family: 'inputs', args: ['reason', '--model', F.P25, '--image', 'missing.png', '--prompt', 'x', ...cpu], early: true, names: /missing\.png/ },
    { id: 'png-bad-crc', family: 'inputs', args: tok('--input', 'crc.png', '--out', 'out/t.safetensors'), early: true, names: /crc\.png/ },
    // ---- video headers: named by their tag
    { id: 'y4m-interlaced-top', family: 'headers', args: tok('--input', 'interlaced-t.y4m', '--out', 'out/t.safetensors'), early: true, names: /interlaced-t\.y4m.*\bI\b|interlaced/ },
    { id: 'y4m-interlaced-bottom', family: 'headers', args: rt('--input', 'interlaced-b.y4m', '--out', 'out/r.y4m'), early: true, names: /interlaced/ },
    { id: 'y4m-interlaced-mixed', family: 'headers', args: tok('--input', 'interlaced-m.y4m', '--out', 'out/t.safetensors'), early: true, names: /interlaced/ },
    { id: 'y4m-rate-zero', family: 'headers', args: tok('--input', 'rate-zero.y4m', '--out', 'out/t.safetensors'), early: true, names: /\bF\b|rate/ },
    { id: 'y4m-rate-den-zero', family: 'headers', args: rt('--input', 'rate-den-zero.y4m', '--out', 'out/r.y4m'), early: true, names: /\bF\b|rate/ },
    { id: 'y4m-rate-garbage', family: 'headers', args: tok('--input', 'rate-garbage.y4m', '--out', 'out/t.safetensors'), early: true, names: /\bF\b|rate/ },
    { id: 'y4m-422', family: 'headers', args: tok('--input', 'c422.y4m', '--out', 'out/t.safetensors'), early: true, names: /\bC\b|422/ },
    { id: 'y4m-10bit', family: 'headers', args: tok('--input', 'c420p10.y4m', '--out', 'out/t.safetensors'), early: true, names: /\bC\b|420p10/ },
    { id: 'y4m-mono', family: 'headers', args: tok('--input', 'mono.y4m', '--out', 'out/t.safetensors'), early: true, names: /\bC\b|mono/ },
    { id: 'y4m-width-zero', family: 'headers', args: tok('--input', 'width-zero.y4m', '--out', 'out/t.safetensors'), early: true, names: /\bW\b|width/ },
    { id: 'y4m-no-height', family: 'headers', args: tok('--input', 'no-height.y4m', '--out', 'out/t.safetensors'), early: true, names: /\bH\b|height/ },
    { id: 'y4m-truncated', family: 'headers', args: tok('--input', 'truncated.y4m', '--out', 'out/t.safetensors'), early: false, names: /truncated\.y4m/ },
    { id: 'y4m-magic', family: 'headers', args: tok('--input', 'magic.y4m', '--out', 'out/t.safetensors'), early: true, names: /magic\.y4m/ },
    { id: 'reason-video-interlaced', family: 'headers', args: ['reason', '--model', F.P25, '--video', 'interlaced-t.y4m', '--prompt', 'x', ...cpu], early: true, names: /interlaced/ },
    { id: 'transfer-control-interlaced', family: 'headers', args: ['transfer', '--spec', w('transfer', 'interlaced-control.json'), '--out', 'out/t.y4m', ...cpu], early: true, names: /interlaced/ },
    { id: 'transfer-input-interlaced', family: 'headers', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--input', 'interlaced-t.y4m', '--control', 'edge', '--out', 'out/t.y4m', ...cpu], early: true, names: /interlaced/ },
    { id: 'v2w-rate-zero', family: 'headers', args: v2w('--input', 'rate-zero.y4m', '--out', 'out/v.y4m'), early: true, names: /\bF\b|rate/ },
    // ---- limits: refused before allocating
    { id: 'y4m-huge', family: 'limits', args: tok('--input', 'huge.y4m', '--out', 'out/t.safetensors'), early: true, names: /huge\.y4m/ },
    { id: 'png-huge', family: 'limits', args: tok('--input', 'huge.png', '--out', 'out/t.safetensors'), early: true, names: /huge\.png/ },
    { id: 'png-bomb', family: 'limits', args: tok('--input', 'bomb.png', '--out', 'out/t.safetensors'), early: true, names: /bomb\.png/ },
    { id: 'png-bomb-roundtrip', family: 'limits', args: rt('--input', 'bomb.png', '--out', 'out/r.y4m'), early: true, names: /bomb\.png/ },
    { id: 'png-folder-huge', family: 'limits', args: rt('--input', 'huge-frames', '--out', 'out/r.y4m'), early: true, names: /huge-frames|frame_000000/ },
    { id: 'transfer-input-huge', family: 'limits', args: ['transfer', '--spec', w('transfer', 'spec.json'), '--input', 'huge.y4m', '--control', 'edge', '--out', 'out/t.y4m', ...cpu], early: true, names: /huge\.y4m/ },
    { id: 'v2w-png-huge', family: 'limits', args: v2w('--input', 'huge.png', '--out', 'out/v.y4m'), early: true, names: /huge\.png/ },
    { id: 'roundtrip-too-small', family: 'limits', args: rt('--input', 'tiny.y4m', '--out', 'out/r.y4m'), early: true, names: /tiny\.y4m/ },
    // ---- numbers: NaN / Inf never pass
    { id: 'tokens-nan', family: 'numbers', args: detok('--tokens', 'tokens-nan.safetensors', '--out', 'out/r.y4m'), early: true, names: /tokens-nan/ },
    { id: 'model-nan-weight', family: 'numbers', args: ['roundtrip', '--model', 'cv-nan', '--input', 'clip.y4m', '--out', 'out/r.y4m', ...cpu], early: false, names: /NaN|cv-nan/ },
    { id: 'embeddings-inf', family: 'numbers', args: p25('--embeddings', w('emb-inf.safetensors'), '--out', 'out/a.y4m'), early: true, names: /emb-inf/ },
    { id: 't2w-embeddings-wrong-width', family: 'inputs', args: t2w('--embeddings', F.EMB48, '--out', 'out/a.y4m'), early: true, names: /emb48|embeddings/ },
  ];
  return list;
}

// ------------------------------------------------------------------ the workspace's state

type Snapshot = Map<string, string>;

function snapshot(roots: string[]): Snapshot {
  const s: Snapshot = new Map();
  const walk = (p: string) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) s.set(p, `link:${readlinkSync(p)}`);
    else if (st.isDirectory()) {
      s.set(p, `dir:${st.mode & 0o777}`);
      for (const e of readdirSync(p)) walk(nodePath.join(p, e));
    } else if (st.isFile()) s.set(p, `file:${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    else s.set(p, `special:${st.mode}`);
  };
  for (const r of roots) walk(r);
  return s;
}

function diff(a: Snapshot, b: Snapshot): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(b.has(k) ? `changed ${k}` : `removed ${k}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`left behind ${k}`);
  return out;
}

// ------------------------------------------------------------------ run

interface Outcome {
  id: string;
  family: string;
  ok: boolean;
  problems: string[];
  rc: number | null;
  seconds: number;
  rss_mb: number | null;
  last_line: string;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : null;
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  process.stderr.write(`workspace ${W}\n`);
  await setup();
  const roots = [W, CV, DV];
  // a pristine copy to start over from when a fault changes the workspace (cp -a keeps FIFOs and links)
  const PRISTINE = `${W}.pristine`;
  spawnSync('cp', ['-a', W, PRISTINE]);
  const list = faults().filter((f) => !only || f.id.includes(only));
  const outcomes: Outcome[] = [];
  for (const f of list) {
    const before = snapshot(roots);
    const r = cli(f.args, f.early ? 60 : SLOW_S);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    const last = lines.at(-1) ?? '';
    const problems: string[] = [];
    if (r.signal) problems.push(`killed by ${r.signal} (time limit)`);
    if (r.rc !== 2) problems.push(`exit status ${r.rc}, want 2`);
    if (!/^error: \S.*: \S/.test(last)) problems.push('last stderr line is not `error: <what>: <why>`');
    if (f.names && !f.names.test(last)) problems.push(`the error line does not name ${f.names}`);
    if (/^\s+at /m.test(r.stderr) || /^\s+at /m.test(r.stdout)) problems.push('a stack trace was printed');
    if (f.early && r.seconds > FAST_S) problems.push(`took ${r.seconds.toFixed(1)} s; a fault knowable before compute must be refused within ${FAST_S} s`);
    if (r.rssMb !== null && r.rssMb > MAX_RSS_MB) problems.push(`peak memory ${r.rssMb.toFixed(0)} MB > ${MAX_RSS_MB} MB`);
    problems.push(...diff(before, snapshot(roots)));
    const o: Outcome = { id: f.id, family: f.family, ok: problems.length === 0, problems, rc: r.rc, seconds: Number(r.seconds.toFixed(2)), rss_mb: r.rssMb && Math.round(r.rssMb), last_line: last };
    outcomes.push(o);
    process.stdout.write(`${o.ok ? 'ok  ' : 'FAIL'} ${f.family.padEnd(8)} ${f.id.padEnd(34)} ${String(r.rc).padStart(3)} ${r.seconds.toFixed(1).padStart(5)}s  ${last.slice(0, 150)}\n`);
    for (const p of problems) process.stdout.write(`        ${p}\n`);
    // put back what a failed fault changed, so the next one starts from the same workspace
    if (!o.ok && diff(before, snapshot(roots)).length) {
      rmSync(W, { recursive: true, force: true });
      spawnSync('cp', ['-a', PRISTINE, W]);
    }
  }
  const failed = outcomes.filter((o) => !o.ok);
  process.stdout.write(`\n${outcomes.length - failed.length} of ${outcomes.length} faults end by the contract\n`);
  if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ workspace: W, faults: outcomes }, null, 1)}\n`);
  for (const d of [W, PRISTINE]) rmSync(d, { recursive: true, force: true });
  process.exitCode = failed.length ? 1 : 0;
}

await main();
