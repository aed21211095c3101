// The guardrail's video content safety filter (spec guardrail.md "Video content safety", "SigLIP
// image encoder"): every vendored case on both backends, then what the fact sheet states: the
// processor reproduces PIL's pixels bit for bit, the per-video rule (frames in order, the first
// unsafe one stops), and the release folder (safety_filter.pt + a Hugging Face cache of the SigLIP
// model, its text half skipped) loads and decides as the batched reference does.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FixtureCase } from '../../src/conform/case.js';
import { findCases } from '../../src/conform/runner.js';
import { CancelledError } from '../../src/engine/errors.js';
import { CheckpointMismatchError } from '../../src/engine/module.js';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../src/io/safetensors.js';
import { type TorchTensor, writeTorchCheckpoint } from '../../src/io/torch.js';
import {
  SAFETY_CLASSES, VideoSafetyFolderError, argmaxRows, decideVideo, findSiglipFolder, loadVideoSafetyFilter,
} from '../../src/models/guardrail/safety-classifier.js';
import { parseSiglipProcessorConfig, preprocessFrames } from '../../src/models/guardrail/siglip-preprocess.js';
import { assertClose, cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/guardrail', import.meta.url));
const CASES = (await findCases([FIXTURES])).filter((d) => /siglip|video_safety/.test(d));
const caseDir = (name: string) => CASES.find((c) => c.endsWith(`/${name}`))!;
const E2E = caseDir('siglip_video_safety');

const tmp = mkdtempSync(join(tmpdir(), 'guardrail-siglip-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ------------------------------------------------------------------ conformance

describe('guardrail video safety cases', () => {
  it('vendors the four public cases', () => {
    expect(CASES.map((c) => c.split('/').pop()).sort()).toEqual(['siglip_embed', 'siglip_video_safety', 'video_safety_safe', 'video_safety_unsafe']);
  });
  for (const dir of CASES) {
    const name = dir.split('/').pop()!;
    it(`${name} on cpu`, async () => {
      await expectCasePasses(dir, cpu);
    });
    it(`${name} on webgpu`, async () => {
      await expectCasePasses(dir, await webgpu());
    }, 120_000);
  }
});

// ------------------------------------------------------------------ processor

describe('SiglipImageProcessor', () => {
  for (const name of ['siglip_embed', 'siglip_video_safety']) {
    it(`reproduces ${name}'s pixel_values bit for bit (PIL bicubic, float64 rescale, float32 normalise)`, async () => {
      const c = await FixtureCase.open(caseDir(name));
      try {
        const f = await c.input('frames');
        const [T, H, W] = f.shape;
        const pp = parseSiglipProcessorConfig(c.config!.preprocessor_config as Record<string, unknown>);
        const got = preprocessFrames(pp, Uint8Array.from(f.raw), T, H, W);
        const want = (await c.output('pixel_values')).raw as Float32Array;
        expect(got.length).toBe(want.length);
        let differing = 0;
        for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) differing++;
        expect(differing).toBe(0);
      } finally {
        await c.close();
      }
    });
  }

  it('refuses frames whose byte count does not fit their size', () => {
    const pp = parseSiglipProcessorConfig({ size: { height: 8, width: 8 } });
    expect(() => preprocessFrames(pp, new Uint8Array(10), 1, 2, 2)).toThrow(/frames: 10 bytes for 1 x 2 x 2 x 3/);
  });

  it('names the field of a bad preprocessor config', () => {
    expect(() => parseSiglipProcessorConfig({ size: { shortest_edge: 384 } }, 'pp.json')).toThrow(/pp\.json: size\.height/);
  });
});

// ------------------------------------------------------------------ decision

describe('the per-video decision', () => {
  const K = SAFETY_CLASSES.length;
  /** probability rows whose argmax is each given class */
  const rows = (classes: number[]) => classes.flatMap((c) => Array.from({ length: K }, (_, j) => (j === c ? 0.7 : 0.05)));

  it('names the seven classes in upstream order', () => {
    expect(SAFETY_CLASSES).toEqual(['Safe', 'Sexual_Content', 'Violence', 'Drugs', 'Child_Abuse', 'Hate_and_Harassment', 'Self-Harm']);
  });

  it('stops at the first frame that is not Safe', () => {
    expect(decideVideo(argmaxRows(rows([0, 0, 2, 0, 1]), K))).toEqual({ safe: false, framesEvaluated: 3, unsafeFrame: 2 });
    expect(decideVideo(argmaxRows(rows([6, 0]), K))).toEqual({ safe: false, framesEvaluated: 1, unsafeFrame: 0 });
  });

  it('evaluates every frame of a safe video', () => {
    expect(decideVideo(argmaxRows(rows([0, 0, 0, 0]), K))).toEqual({ safe: true, framesEvaluated: 4, unsafeFrame: null });
  });

  it('takes the first of equal maxima, as torch.argmax', () => {
    expect(argmaxRows([0.4, 0.4, 0.2, 0.1, 0.3, 0.3], 3)).toEqual([0, 1]);
  });
});

// ------------------------------------------------------------------ the release folder

/** safety_filter.pt as upstream saves it: {"model": state_dict} (+ a non-tensor entry). */
async function writeSafetyFilterPt(path: string, from: string): Promise<void> {
  const st = await openSafetensors(from);
  const state: Record<string, TorchTensor> = {};
  try {
    for (const name of st.names) {
      const info = st.info(name);
      const t = await st.read(name);
      const bytes = info.dtype === 'I64'
        ? new Uint8Array(BigInt64Array.from(t.raw as Int32Array, (x) => BigInt(x)).buffer)
        : new Uint8Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
      state[name] = { dtype: info.dtype as TorchTensor['dtype'], shape: info.shape, bytes };
    }
  } finally {
    await st.close();
  }
  await writeTorchCheckpoint(path, { model: state, epoch: 12 });
}

/** The SigLIP files of the e2e case, as a full SiglipModel checkpoint (with a text half) in `dir`. */
async function writeSiglipFolder(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(E2E, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(config.preprocessor_config));
  const st = await openSafetensors(join(E2E, 'model.safetensors'));
  const tensors: Record<string, TensorToWrite> = {};
  try {
    for (const name of st.names) {
      const t = await st.read(name);
      tensors[name] = { dtype: t.dtype, shape: t.shape, raw: t.raw };
    }
  } finally {
    await st.close();
  }
  // what the real checkpoint carries beside the vision tower: never read for images
  tensors['text_model.embeddings.token_embedding.weight'] = { dtype: 'f32', shape: [5, 7], raw: new Float32Array(35) };
  tensors.logit_scale = { dtype: 'f32', shape: [1], raw: new Float32Array([2]) };
  tensors.logit_bias = { dtype: 'f32', shape: [1], raw: new Float32Array([-1]) };
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
}

async function releaseFolder(name: string, cache: boolean): Promise<string> {
  const root = join(tmp, name);
  mkdirSync(root, { recursive: true });
  await writeSafetyFilterPt(join(root, 'safety_filter.pt'), join(E2E, 'safety_filter.safetensors'));
  if (!cache) {
    await writeSiglipFolder(root);
    return root;
  }
  const repo = join(root, 'models--google--siglip-so400m-patch14-384');
  const rev = '9fdffc58afc957d1a03a25b10dba0329ab15c2a3';
  const snap = join(repo, 'snapshots', rev);
  await writeSiglipFolder(snap);
  // a real cache's snapshot files are links to ../../blobs/<hash>
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  for (const [i, f] of readdirSync(snap).entries()) {
    renameSync(join(snap, f), join(repo, 'blobs', `blob${i}`));
    symlinkSync(join('..', '..', 'blobs', `blob${i}`), join(snap, f));
  }
  // an older, incomplete snapshot beside it: refs/main says which one is current
  mkdirSync(join(repo, 'snapshots', '0000000000000000000000000000000000000000'), { recursive: true });
  writeFileSync(join(repo, 'snapshots', '0000000000000000000000000000000000000000', 'config.json'), '{}');
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), rev);
  return root;
}

/** The e2e case's frames and reference decision. */
async function e2eReference() {
  const c = await FixtureCase.open(E2E);
  try {
    const f = await c.input('frames');
    const [T, H, W] = f.shape;
    return {
      frames: Uint8Array.from(f.raw), T, H, W,
      probs: (await c.output('probs')).raw as Float32Array,
      classes: Array.from((await c.output('predicted_class')).raw),
      framesEvaluated: (await c.output('frames_evaluated')).raw[0],
      isSafe: (await c.output('is_safe')).raw[0] === 1,
      tol: c.tolerance,
    };
  } finally {
    await c.close();
  }
}

describe('loadVideoSafetyFilter', () => {
  it('loads safety_filter.pt and the SigLIP snapshot of a Hugging Face cache, and decides as the reference', async () => {
    const dir = await releaseFolder('cache', true);
    expect(await findSiglipFolder(dir)).toMatch(/snapshots\/9fdffc58afc957d1a03a25b10dba0329ab15c2a3$/);
    const ref = await e2eReference();
    const filter = await loadVideoSafetyFilter(dir, cpu);
    try {
      const r = await filter.check(ref.frames, ref.T, ref.H, ref.W);
      expect(r.safe).toBe(ref.isSafe);
      expect(r.framesEvaluated).toBe(ref.framesEvaluated);
      expect(r.unsafeFrame).toBe(ref.framesEvaluated - 1);
      expect(r.predictedClass).toBe(SAFETY_CLASSES[ref.classes[ref.framesEvaluated - 1]]);
      expect(r.probs.length).toBe(ref.framesEvaluated);
      // frame by frame (batch 1, as upstream) against the reference's values
      assertClose(r.probs.flat(), ref.probs.subarray(0, r.probs.flat().length), ref.tol);
    } finally {
      filter.dispose();
    }
  });

  it('loads a plain folder of the SigLIP files and checks every frame of a safe clip on webgpu', async () => {
    const dir = await releaseFolder('plain', false);
    const ref = await e2eReference();
    const safeFrames = ref.framesEvaluated - 1;
    expect(safeFrames).toBeGreaterThan(0);
    const filter = await loadVideoSafetyFilter(dir, await webgpu());
    try {
      const r = await filter.check(ref.frames.subarray(0, safeFrames * ref.H * ref.W * 3), safeFrames, ref.H, ref.W);
      expect(r).toMatchObject({ safe: true, framesEvaluated: safeFrames, unsafeFrame: null, predictedClass: 'Safe' });
      assertClose(r.probs.flat(), ref.probs.subarray(0, safeFrames * SAFETY_CLASSES.length), ref.tol);
    } finally {
      filter.dispose();
    }
  }, 120_000);

  it('stops before a frame when the signal is aborted', async () => {
    const dir = join(tmp, 'cache');
    const ref = await e2eReference();
    const filter = await loadVideoSafetyFilter(dir, cpu);
    try {
      const ac = new AbortController();
      ac.abort();
      await expect(filter.check(ref.frames, ref.T, ref.H, ref.W, { signal: ac.signal })).rejects.toThrow(CancelledError);
    } finally {
      filter.dispose();
    }
  });

  it('names what is missing from the folder', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(loadVideoSafetyFilter(empty, cpu)).rejects.toThrow(VideoSafetyFolderError);
    await expect(loadVideoSafetyFilter(empty, cpu)).rejects.toThrow(/models--google--siglip-so400m-patch14-384\/snapshots/);
    const noPt = join(tmp, 'no-pt');
    await writeSiglipFolder(noPt);
    await expect(loadVideoSafetyFilter(noPt, cpu)).rejects.toThrow(/safety_filter\.pt: missing/);
  });

  it('refuses a classifier whose input width is not the encoder\'s', async () => {
    const dir = join(tmp, 'mismatch');
    await writeSiglipFolder(dir);
    // the video_safety_safe classifier takes 40 features; this SigLIP model gives 32
    await writeSafetyFilterPt(join(dir, 'safety_filter.pt'), join(caseDir('video_safety_safe'), 'model.safetensors'));
    await expect(loadVideoSafetyFilter(dir, cpu)).rejects.toThrow(/takes 40 features.*gives 32/);
  });

  it('refuses a processor size the position table does not fit', async () => {
    const dir = join(tmp, 'pp-size');
    await writeSiglipFolder(dir);
    await writeSafetyFilterPt(join(dir, 'safety_filter.pt'), join(E2E, 'safety_filter.safetensors'));
    writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ size: { height: 16, width: 16 } }));
    await expect(loadVideoSafetyFilter(dir, cpu)).rejects.toThrow(/preprocessor_config\.json: size 16x16; the vision model's image_size is 24/);
  });

  it('reports a vision key the checkpoint lacks', async () => {
    const dir = join(tmp, 'missing-key');
    await writeSiglipFolder(dir);
    await writeSafetyFilterPt(join(dir, 'safety_filter.pt'), join(E2E, 'safety_filter.safetensors'));
    const st = await openSafetensors(join(E2E, 'model.safetensors'));
    const tensors: Record<string, TensorToWrite> = {};
    try {
      for (const name of st.names.filter((n) => n !== 'vision_model.head.probe')) {
        const t = await st.read(name);
        tensors[name] = { dtype: t.dtype, shape: t.shape, raw: t.raw };
      }
    } finally {
      await st.close();
    }
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const err = await loadVideoSafetyFilter(dir, cpu).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    expect((err as CheckpointMismatchError).missing).toEqual(['vision_model.head.probe']);
  });
});
