// An autoregressive release as NVIDIA ships it: config.json + model.pt (torch.save of
// {"model": state_dict} in bf16, zip64 as the multi-GB files are), written here with the reader's
// counterpart from a tiny random checkpoint. ar-video2world runs on the folder as is and gives the
// same tokens as the same weights in safetensors; the released architectures' config.json (no video
// grid, no training type) is completed from the release.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/io/safetensors.js';
import { type TorchTensor, writeTorchCheckpoint } from '../../src/io/torch.js';
import { readY4m } from '../../src/io/y4m.js';
import { sliceFrames } from '../../src/io/video.js';
import { arVideo2World } from '../../src/pipelines/ar-video2world.js';
import { identifyRelease } from '../../src/pipelines/release-kind.js';
import { cpu } from '../harness.js';
import { runCli } from '../cli/run-cli.js';
import { DV, SAMPLE, tempFolder, tinyConfig, writeArCheckpoint } from './arvlm-fixtures.js';

const { dir: tmp, remove } = tempFolder('cosmos-ar-release-');
afterAll(remove);

/** f32 -> bf16 by truncation (the reference and the model.pt then hold the same bf16 values). */
function bf16Bytes(raw: Float32Array): Uint8Array {
  const u = new Uint32Array(raw.buffer, raw.byteOffset, raw.length);
  const out = new Uint16Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = u[i] >>> 16;
  return new Uint8Array(out.buffer);
}

let reference = '';
let release = '';
beforeAll(async () => {
  // the reference: the same weights (bf16) as safetensors
  const f32 = await writeArCheckpoint(nodePath.join(tmp, 'f32'), tinyConfig(), 5);
  const src = await openCheckpoint(f32);
  const state = new Map<string, TorchTensor>();
  try {
    for (const name of src.names) {
      const t = await src.read(name);
      state.set(name, { dtype: 'BF16', shape: t.shape, bytes: bf16Bytes(t.raw as Float32Array) });
    }
  } finally {
    await src.close();
  }
  release = nodePath.join(tmp, 'Cosmos-AR-tiny');
  mkdirSync(release);
  writeFileSync(nodePath.join(release, 'config.json'), JSON.stringify(tinyConfig(), null, 2));
  await writeTorchCheckpoint(nodePath.join(release, 'model.pt'), { model: state }, { zip64: true });

  reference = nodePath.join(tmp, 'reference');
  const { writeSafetensors } = await import('../../src/io/safetensors.js');
  mkdirSync(reference);
  writeFileSync(nodePath.join(reference, 'config.json'), JSON.stringify(tinyConfig(), null, 2));
  await writeSafetensors(nodePath.join(reference, 'model.safetensors'), Object.fromEntries(
    [...state].map(([k, t]) => [k, { dtype: 'bf16' as const, shape: t.shape, raw: new Uint16Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.length / 2) }]),
  ));
}, 60_000);

describe('an autoregressive release with model.pt', () => {
  it('is recognised as a cosmos-ar folder; its model.pt (keys under "model.") loads as the safetensors does', async () => {
    const f = await identifyRelease(release);
    expect([f.kind, f.format]).toEqual(['ar', 'cosmos-ar']);
    const ck = await openCheckpoint(release);
    try {
      expect(ck.files).toEqual([nodePath.join(release, 'model.pt')]);
      expect(ck.names.every((n) => n.startsWith('model.'))).toBe(true);
    } finally {
      await ck.close();
    }
  });

  it('ar-video2world on the folder: the same tokens as the safetensors copy', async () => {
    const clip = sliceFrames(await readY4m(SAMPLE), 0, 5);
    const a = await arVideo2World({ model: release, tokenizer: DV, input: clip, backend: cpu, seed: 4 });
    const b = await arVideo2World({ model: reference, tokenizer: DV, input: clip, backend: cpu, seed: 4 });
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
    expect(a.video.data).toEqual(b.video.data);
  }, 180_000);

  it('the command line runs it with no flag beyond the folders', async () => {
    const out = nodePath.join(tmp, 'out.y4m');
    const r = await runCli('ar-video2world', '--model', release, '--tokenizer', DV, '--input', SAMPLE, '--frames', '5', '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.out).toContain(out);
  }, 180_000);
});
