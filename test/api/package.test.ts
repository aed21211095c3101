// The public API as a user meets it: everything imported from the package entry (src/index.ts),
// releases loaded as folders are laid out, and the package used from another project (a plain
// `node` script and a TypeScript consumer resolving 'cosmos-ts' through package.json `exports`
// to the built dist/, which `npm ci` makes through the `prepare` script).
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';
import { cpu, webgpu } from '../harness.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const FIX = join(ROOT, 'test/fixtures');
const CV = join(ROOT, 'weights/cosmos-tokenizer-tiny-cv4x8x8');
const SAMPLE = join(ROOT, 'weights/samples/sample_0.y4m');

const tmp = mkdtempSync(join(tmpdir(), 'cosmos-api-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A release folder as downloaded: a fixture case's config.json and weights, nothing else. */
function release(name: string, fixture: string, weights = 'model.safetensors', extra: Record<string, string> = {}): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  cpSync(join(FIX, fixture, 'config.json'), join(dir, 'config.json'));
  cpSync(join(FIX, fixture, 'model.safetensors'), join(dir, weights));
  for (const [f, text] of Object.entries(extra)) writeFileSync(join(dir, f), text);
  return dir;
}

describe('the research workflow from the package entry', () => {
  for (const name of ['cpu', 'webgpu'] as const) {
    it(`loads a tokenizer release, encodes a clip and taps every block (${name})`, async () => {
      const backend = name === 'cpu' ? cpu : await webgpu();
      const r = await api.loadRelease(CV, { expect: 'tokenizer', backend });
      expect(r.kind).toBe('tokenizer');
      expect(r.model.parameterCount()).toBeGreaterThan(1_000_000);
      const clip = await api.readVideo(SAMPLE);
      const isBlock = (path: string) => /\.(block\.\d+|block_\d+|attn_\d+)$/.test(path);
      const { result: tokens, taps } = await api.capture(isBlock, () => api.tokenize(r.model, clip));
      try {
        expect(taps.records.map((t) => t.path)).toEqual([
          'encoder.down.0.block.0', 'encoder.down.1.block.0', 'encoder.down.2.block.0', 'encoder.mid.block_1', 'encoder.mid.attn_1', 'encoder.mid.block_2',
        ]);
        for (const { tensor } of taps.records) {
          const s = await api.tensorStats(tensor);
          expect(s.nan + s.inf).toBe(0);
          expect(s.count).toBe(api.numel(tensor.shape));
          expect(s.std).toBeGreaterThan(0);
        }
        expect(tokens.shape).toEqual([1, 16, 5, 8, 8]);
        const host = await tokens.read();
        expect(host.latent?.data.length).toBe(16 * 5 * 8 * 8);
      } finally {
        taps.dispose();
        tokens.dispose();
        r.dispose();
      }
    });
  }

  it('reports progress and stops when cancelled, with the library errors', async () => {
    const r = await api.loadRelease(CV, { expect: 'tokenizer', backend: cpu });
    const clip = await api.readVideo(SAMPLE);
    const abort = new AbortController();
    abort.abort();
    await expect(api.tokenize(r.model, clip, { signal: abort.signal })).rejects.toBeInstanceOf(api.CancelledError);
    const events: api.ProgressEvent[] = [];
    const q = await api.roundtrip(r.model, clip, { onProgress: (e) => events.push(e) });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.stage === 'encode' || e.stage === 'decode')).toBe(true);
    expect(q.quality.psnr).toBeGreaterThan(10);
    q.tokens.dispose();
    r.dispose();
  });
});

describe('every loader honours the file system it is given', () => {
  it('loads a release, reads a clip and round-trips it through dropped files while the default file system refuses every call', async () => {
    const dropped = new Map<string, Blob>();
    for (const f of ['config.json', 'model.safetensors']) dropped.set(`cv/${f}`, new Blob([readFileSync(join(CV, f))]));
    dropped.set('clips/sample_0.y4m', new Blob([readFileSync(SAMPLE)]));
    const fs = api.blobFileSystem(dropped);
    const refuse = () => {
      throw new Error('the default file system was used');
    };
    api.setFileSystem({ name: 'refusing', stat: refuse, open: refuse, list: refuse, create: refuse, createFolder: refuse, mkdir: refuse, resolve: refuse });
    try {
      const r = await api.loadRelease('cv', { expect: 'tokenizer', backend: cpu, fs });
      const clip = await api.readVideo('clips/sample_0.y4m', undefined, fs);
      const q = await api.roundtrip(r.model, clip);
      expect(q.quality.psnr).toBeGreaterThan(10);
      q.tokens.dispose();
      r.dispose();
    } finally {
      api.setFileSystem(api.nodeFileSystem);
    }
  });
});

describe('loadRelease: a folder says what it is', () => {
  const cases: [string, string, api.ReleaseKind][] = [
    ['tokenizer', 'tokenizer/cv_video', 'tokenizer'],
    ['diffusers-vae', 'tokenizer/diffusers_vae', 'tokenizer'],
    ['transformer', 'dit/cosmos2_forward', 'transformer'],
    ['controlnet', 'controlnet/controlnet_forward', 'controlnet'],
    ['t5', 't5/t5_encoder', 't5'],
    ['ar', 'ar/base_forward', 'ar'],
  ];
  for (const [name, fixture, kind] of cases) {
    it(`${fixture} laid out as a release is a ${kind} and loads`, async () => {
      const dir = release(name, fixture, kind === 'transformer' || kind === 'controlnet' ? 'diffusion_pytorch_model.safetensors' : 'model.safetensors');
      expect((await api.identifyRelease(dir)).kind).toBe(kind);
      const r = await api.loadRelease(dir, { backend: cpu });
      expect(r.kind).toBe(kind);
      expect((r.model as api.Module).parameterCount?.() ?? 1).toBeGreaterThan(0);
      r.dispose();
    });
  }

  it('a diffusers pipeline folder is a world release (model_index.json), inspected without loading', async () => {
    const dir = join(tmp, 'world');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model_index.json'), JSON.stringify({ _class_name: 'CosmosTextToWorldPipeline' }));
    expect((await api.identifyRelease(dir)).kind).toBe('world');
  });

  it('refuses a folder of another kind than expected, before loading weights', async () => {
    await expect(api.loadRelease(CV, { expect: 'ar', backend: cpu })).rejects.toThrow(/is a tokenizer release; expected a ar release/);
  });

  it('names what it cannot read: an unnamed TorchScript tokenizer, zero-filled pickles, unknown configs; a renamed file is read by its bytes', async () => {
    const jit = join(tmp, 'jit');
    mkdirSync(jit, { recursive: true });
    writeFileSync(join(jit, 'config.json'), '{"architectures": ["CosmosTokenizer"],}');
    for (const f of ['autoencoder.jit', 'encoder.jit', 'decoder.jit']) writeFileSync(join(jit, f), Buffer.alloc(64));
    await expect(api.loadRelease(jit, { backend: cpu })).rejects.toThrow(/names no release; give --release NAME/);
    await expect(api.loadRelease(jit, { backend: cpu, release: 'Cosmos-0.1-Tokenizer-CV4x8x8' })).rejects.toThrow(/autoencoder\.jit: not a PyTorch checkpoint/);

    // safetensors bytes under a .pt name load (the format is read from the bytes, not the name)
    const renamed = await api.loadRelease(release('ar-pt', 'ar/base_forward', 'model.pt'), { backend: cpu });
    expect(renamed.kind).toBe('ar');
    renamed.dispose();
    const zeros = release('ar-zeros', 'ar/base_forward', 'model.safetensors');
    rmSync(join(zeros, 'model.safetensors'));
    writeFileSync(join(zeros, 'model.pt'), Buffer.alloc(8192));
    const err = await api.loadRelease(zeros, { backend: cpu }).catch((e: unknown) => e);
    expect(api.isUserError(err)).toBe(true);
    expect((err as Error).message).toMatch(/model\.pt: not a PyTorch checkpoint \(its first 4096 bytes are all zero/);

    const odd = join(tmp, 'odd');
    mkdirSync(odd, { recursive: true });
    writeFileSync(join(odd, 'config.json'), '{"hello": 1}');
    await expect(api.identifyRelease(odd)).rejects.toThrow(/describes no model cosmos-ts knows/);
    await expect(api.identifyRelease(join(tmp, 'missing'))).rejects.toThrow(/no such file or directory/);
  });
});

describe('from another project', () => {
  // node_modules/cosmos-ts in a fresh folder points at this package, as `npm install` would put it
  const project = join(tmp, 'consumer');
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  symlinkSync(ROOT, join(project, 'node_modules', 'cosmos-ts'), 'dir');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));

  it('runs the README example with plain node (no TypeScript loader), resolving the package exports', async () => {
    const example = readFileSync(join(ROOT, 'examples/block-taps.mjs'), 'utf8')
      .replace("'weights/cosmos-tokenizer-tiny-cv4x8x8'", JSON.stringify(CV))
      .replace("'weights/samples/sample_0.y4m'", JSON.stringify(SAMPLE));
    writeFileSync(join(project, 'example.mjs'), example);
    const { stdout } = await run(process.execPath, ['example.mjs'], { cwd: project, env: { ...process.env, COSMOS_WEBGPU_BACKEND: process.env.COSMOS_WEBGPU_BACKEND ?? '' } });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(7);
    expect(lines[0]).toMatch(/^encoder\.down\.0\.block\.0 +\[1,48,5,16,16\] +mean -?\d\.\d{4} std \d+\.\d{4} min .* nan 0$/);
    expect(lines[6]).toMatch(/^latent \[1,16,5,8,8\] on /);
  });

  it('type-checks a TypeScript consumer against the published declarations', async () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      [
        "import { type Backend, type TokenizerRelease, capture, loadRelease, selectBackend, tensorStats, text2world, tokenize, UserError } from 'cosmos-ts';",
        "const backend: Backend = await selectBackend({ backend: 'cpu' });",
        "const release: TokenizerRelease = await loadRelease('folder', { backend, expect: 'tokenizer' });",
        'const { taps } = await capture((p: string) => p.endsWith(\'.block.0\'), () => tokenize(release.model, { data: new Float32Array(3), frames: 1, height: 1, width: 1 }));',
        'const mean: number = (await tensorStats(taps.records[0].tensor)).mean;',
        "const run: typeof text2world = text2world;",
        'export const used = [mean, run, UserError];',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['consumer.ts'] }),
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const r = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }).catch((e: { stdout: string; code: number }) => e);
    expect((r as { stdout: string }).stdout).toBe('');
  });
});
