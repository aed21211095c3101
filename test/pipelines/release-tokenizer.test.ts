// A Cosmos Tokenizer release as NVIDIA ships it (TorchScript encoder.jit / decoder.jit, no
// safetensors) runs tokenize / detokenize / roundtrip: made here from the real TorchScript exports
// of the two tiny trained tokenizers (test/fixtures/release/, the same weights as weights/), it gives
// exactly the latents and token ids of the safetensors folder. encoder.jit alone serves tokenize,
// decoder.jit alone detokenize; a folder named for a release takes that release's architecture.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cpu } from '../harness.js';
import { readY4m } from '../../src/io/y4m.js';
import { sliceFrames } from '../../src/io/video.js';
import { detokenize, loadVideoTokenizer, tokenize } from '../../src/pipelines/tokenizer.js';
import { identifyRelease } from '../../src/pipelines/release-kind.js';
import { torchTuple, writeTorchCheckpoint } from '../../src/io/torch.js';
import { runCli } from '../cli/run-cli.js';

const ROOT = resolve(import.meta.dirname, '../..');
const JIT = join(ROOT, 'test/fixtures/release');
const WEIGHTS = join(ROOT, 'weights');
const tmp = mkdtempSync(join(tmpdir(), 'cosmos-jit-release-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A release-style folder: the .jit files given, and the tokenizer's kwargs as config.json. */
function releaseFolder(name: string, kind: 'cv' | 'dv', files: readonly string[], config: 'kwargs' | 'placeholder' = 'kwargs'): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const f of files) copyFileSync(join(JIT, `cosmos-tokenizer-tiny-${kind}4x8x8`, f), join(dir, f));
  if (config === 'kwargs') copyFileSync(join(WEIGHTS, `cosmos-tokenizer-tiny-${kind}4x8x8`, 'config.json'), join(dir, 'config.json'));
  // the 54 bytes of the 0.1 releases: not JSON
  else writeFileSync(join(dir, 'config.json'), '{\n    "architectures": [\n        "CosmosTokenizer"\n    ],\n}\n');
  return dir;
}

const clip = async () => sliceFrames(await readY4m(join(WEIGHTS, 'samples', 'sample_1.y4m')), 0, 9);

describe('a TorchScript tokenizer release', () => {
  it('CV: encoder.jit alone tokenizes to the safetensors folder latents, decoder.jit alone decodes them to the same clip', async () => {
    const enc = releaseFolder('cv-enc', 'cv', ['encoder.jit']);
    const dec = releaseFolder('cv-dec', 'cv', ['decoder.jit']);
    const video = await clip();
    const ref = await loadVideoTokenizer(join(WEIGHTS, 'cosmos-tokenizer-tiny-cv4x8x8'), cpu);
    const e = await loadVideoTokenizer(enc, cpu, { part: 'encoder' });
    const d = await loadVideoTokenizer(dec, cpu, { part: 'decoder' });
    try {
      const want = (await (await tokenize(ref, video)).read()).latent!;
      const got = (await (await tokenize(e, video)).read()).latent!;
      expect(got.shape).toEqual(want.shape);
      expect(got.data).toEqual(want.data);
      const a = await detokenize(ref, { latent: want });
      const b = await detokenize(d, { latent: got });
      expect(b.data).toEqual(a.data);
      // a half-loaded model refuses the other half's work with a user error, before any compute
      await expect(detokenize(e, { latent: got })).rejects.toThrow(/^tokenizer: expected a tokenizer with its decoder loaded, got one loaded without it/);
      await expect(tokenize(d, video)).rejects.toThrow(/expected a tokenizer with its encoder loaded/);
    } finally {
      for (const m of [ref, e, d]) m.dispose();
    }
  }, 120_000);

  it('DV: the pair gives the same token ids as the safetensors folder (the FSQ buffers in the .jit are not weights)', async () => {
    const both = releaseFolder('dv-both', 'dv', ['encoder.jit', 'decoder.jit']);
    expect((await identifyRelease(both)).release).toBe('Cosmos-Tokenizer DV4x8x8');
    const video = await clip();
    const ref = await loadVideoTokenizer(join(WEIGHTS, 'cosmos-tokenizer-tiny-dv4x8x8'), cpu);
    const m = await loadVideoTokenizer(both, cpu);
    try {
      const want = await (await tokenize(ref, video)).read();
      const got = await (await tokenize(m, video)).read();
      expect(got.indices!.data).toEqual(want.indices!.data);
      expect((await detokenize(m, got)).data).toEqual((await detokenize(ref, want)).data);
    } finally {
      ref.dispose();
      m.dispose();
    }
  }, 120_000);

  it('the command line: roundtrip on the folder as is; tokenize needs only encoder.jit, detokenize only decoder.jit', async () => {
    const both = releaseFolder('cv-cli', 'cv', ['encoder.jit', 'decoder.jit']);
    const input = join(WEIGHTS, 'samples', 'sample_0.y4m');
    const rt = await runCli('roundtrip', '--model', both, '--input', input, '--out', join(tmp, 'rec.y4m'), '--backend', 'cpu');
    expect(rt.rc, rt.err).toBe(0);
    expect(rt.out).toMatch(/PSNR [\d.]+ dB/);

    const enc = releaseFolder('cv-cli-enc', 'cv', ['encoder.jit']);
    const tokens = join(tmp, 'tokens.safetensors');
    const t = await runCli('tokenize', '--model', enc, '--input', input, '--out', tokens, '--backend', 'cpu');
    expect(t.rc, t.err).toBe(0);
    const dec = releaseFolder('cv-cli-dec', 'cv', ['decoder.jit']);
    const d = await runCli('detokenize', '--tokens', tokens, '--model', dec, '--out', join(tmp, 'dec.y4m'), '--backend', 'cpu');
    expect(d.rc, d.err).toBe(0);
    // the encoder-only folder cannot decode: a one-line error naming what it lacks
    const bad = await runCli('detokenize', '--tokens', tokens, '--model', enc, '--out', join(tmp, 'bad.y4m'), '--backend', 'cpu');
    expect(bad.rc).toBe(2);
    expect(bad.errLines).toEqual([expect.stringMatching(/^error: .*cv-cli-enc: the decoder needs decoder\.jit or autoencoder\.jit; the folder has encoder\.jit$/)]);
  }, 180_000);

  it('mean_std.pt (a tuple of two tensors, as Cosmos-1.0-Tokenizer-CV8x8x8 ships it) becomes the latent statistics a world pipeline normalises with', async () => {
    const dir = releaseFolder('cv-mean-std', 'cv', ['encoder.jit', 'decoder.jit']);
    // 16 latent channels x 2 latent frames, channel-major as cosmos-predict1 flattens them
    const mean = Float32Array.from({ length: 32 }, (_, i) => i / 10);
    const std = Float32Array.from({ length: 32 }, (_, i) => 1 + i / 100);
    const t = (a: Float32Array) => ({ dtype: 'F32' as const, shape: [a.length], bytes: new Uint8Array(a.buffer) });
    await writeTorchCheckpoint(join(dir, 'mean_std.pt'), torchTuple(t(mean), t(std)));
    const m = await loadVideoTokenizer(dir, cpu);
    try {
      expect(m.kind).toBe('CV');
      const stats = (m as { latentMeanStd: { mean: Float32Array; std: Float32Array } | null }).latentMeanStd;
      expect(stats?.mean).toEqual(mean);
      expect(stats?.std).toEqual(std);
    } finally {
      m.dispose();
    }
    // a file that is not a pair of equal-length tensors is refused by name
    await writeTorchCheckpoint(join(dir, 'mean_std.pt'), { mean: t(mean) });
    await expect(loadVideoTokenizer(dir, cpu)).rejects.toThrow(/mean_std\.pt: expected a tuple of two tensors \(mean, std\), found 1 tensors/);
  }, 60_000);

  it('a folder named for a release takes that release\'s architecture (the 0.1 config.json placeholder ignored); --release overrides', async () => {
    // the tiny weights under a real release name: the released CV4x8x8 architecture does not fit them
    const named = releaseFolder('Cosmos-0.1-Tokenizer-CV4x8x8', 'cv', ['encoder.jit'], 'placeholder');
    const f = await identifyRelease(named);
    expect([f.release, f.format, f.config.channels]).toEqual(['Cosmos-Tokenizer CV4x8x8', 'cosmos-tokenizer', 128]);
    await expect(loadVideoTokenizer(named, cpu, { part: 'encoder' })).rejects.toThrow(/encoder\.jit does not fit the model built from its config/);
    // an unnamed folder with the placeholder config cannot say what it is
    const anon = releaseFolder('anon', 'cv', ['encoder.jit'], 'placeholder');
    await expect(identifyRelease(anon)).rejects.toThrow(/give --release NAME/);
    expect((await identifyRelease(anon, undefined, { release: 'Cosmos-1.0-Tokenizer-CV8x8x8' })).release).toBe('Cosmos-Tokenizer CV8x8x8');
    await expect(identifyRelease(anon, undefined, { release: 'CV7x7x7' })).rejects.toThrow(/--release: "CV7x7x7" names no released tokenizer/);
  });
});
