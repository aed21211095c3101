// The Cosmos-1.0-Guardrail release skeleton (test/releases/guardrail-skeleton.ts: the real layout,
// configs, tensor names, shapes and dtypes, every weight a zero sparse hole) opened with the
// REAL loaders, as `--guardrails <release>` opens it, on the plan backend (shapes and allocations,
// nothing computed) so no weight data is read: a release whose layout, names, shapes or dtypes a
// loader does not accept fails here. Covered: the blocklist folder (read for real), Aegis
// (LlamaGuard-7b's two shards + index, the PEFT adapter and tokenizer.model, and one prompt through
// the moderation template and 100 greedy steps), the video content safety filter (the SigLIP
// so400m cache, safety_filter.pt, one 384x384 frame through preprocessing, the vision tower, head
// and classifier) and the face blur (Resnet50_Final.pth with cfg_re50, one frame through
// RetinaFace and the post-processing). What the skeleton makes up is in its STANDINS.txt.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planBackend } from '../../src/engine/select.js';
import { type FileSystem, fileSystem } from '../../src/io/files.js';
import { openCheckpoint } from '../../src/io/safetensors.js';
import { loadAegis } from '../../src/models/guardrail/aegis.js';
import { loadFaceBlurFilter } from '../../src/models/guardrail/retinaface.js';
import { loadVideoSafetyFilter } from '../../src/models/guardrail/safety-classifier.js';
import { openGuardrails } from '../../src/pipelines/guardrails.js';
import { retinaFaceResnet50Keys, writeGuardrailSkeleton } from '../releases/guardrail-skeleton.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-guardrail-release-'));
const R = nodePath.join(tmp, 'Cosmos-1.0-Guardrail');
beforeAll(async () => {
  await writeGuardrailSkeleton(R);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The node file system, counting the bytes read from each file. */
function countingFs(): { fs: FileSystem; read: Map<string, number> } {
  const base = fileSystem();
  const read = new Map<string, number>();
  const fs: FileSystem = Object.create(base);
  fs.open = async (path) => {
    const f = await base.open(path);
    return {
      path: f.path, size: f.size, close: () => f.close(),
      read: async (at, into) => {
        const n = await f.read(at, into);
        read.set(path, (read.get(path) ?? 0) + n);
        return n;
      },
    };
  };
  return { fs, read };
}

const MiB = 2 ** 20;

describe('the guardrail release skeleton through the real loaders (plan backend)', () => {
  it('Resnet50_Final.pth is a torch.save archive of upstream\'s RetinaFace-ResNet50 keys, data holes', async () => {
    const pth = nodePath.join(R, 'face_blur_filter', 'Resnet50_Final.pth');
    const ck = await openCheckpoint(pth);
    try {
      expect(ck.format).not.toBe('safetensors');
      const keys = retinaFaceResnet50Keys();
      expect(ck.names).toEqual(keys.map(([n]) => n));
      expect(ck.info('module.body.layer4.2.conv3.weight')).toMatchObject({ dtype: 'F32', shape: [2048, 512, 1, 1] });
      const params = keys.filter(([n]) => !n.endsWith('num_batches_tracked')).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
      expect(params).toBeGreaterThan(27e6);
      expect(params).toBeLessThan(28e6);
    } finally {
      await ck.close();
    }
  });

  it('face_blur_filter: loadFaceBlurFilter takes it (cfg_re50), and a 64x96 frame runs through', async () => {
    const { fs, read } = countingFs();
    const f = await loadFaceBlurFilter(nodePath.join(R, 'face_blur_filter'), planBackend(), { fs });
    try {
      const r = await f.blur(new Uint8Array(64 * 96 * 3).fill(128), 1, 64, 96);
      expect(r.detections).toEqual([0]); // zero weights: every score 0.5, under the threshold
    } finally {
      f.dispose();
    }
    const total = [...read.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(MiB); // the archive's directory and pickle, not its ~105 MB of data
  });

  it('video_content_safety_filter: the SigLIP cache and safety_filter.pt load, a frame is classified', async () => {
    const { fs, read } = countingFs();
    const f = await loadVideoSafetyFilter(nodePath.join(R, 'video_content_safety_filter'), planBackend(), { fs });
    try {
      const r = await f.check(new Uint8Array(40 * 56 * 3).fill(90), 1, 40, 56);
      expect(r).toMatchObject({ framesEvaluated: 1, safe: true, predictedClass: 'Safe' }); // zeros: argmax 0
      expect(r.probs[0]).toHaveLength(7);
    } finally {
      f.dispose();
    }
    const siglip = [...read].filter(([p]) => p.endsWith('model.safetensors')).reduce((a, [, n]) => a + n, 0);
    expect(siglip).toBeLessThan(MiB);
  });

  it('aegis: the LlamaGuard-7b shards, the adapter and tokenizer.model load; a prompt runs 100 greedy steps', async () => {
    const { fs, read } = countingFs();
    const g = await loadAegis(nodePath.join(R, 'aegis'), planBackend(), { fs });
    try {
      const v = await g.check('A robot arm picks up a red cube.');
      expect(v.error).toBeUndefined();
      // zero logits: token 0 (<unk>) every step, which decodes to nothing
      expect(v).toMatchObject({ safe: true, answer: '' });
    } finally {
      g.dispose();
    }
    const weights = [...read].filter(([p]) => p.endsWith('.safetensors')).reduce((a, [, n]) => a + n, 0);
    expect(weights).toBeLessThan(4 * MiB);
  }, 120_000);

  it('openGuardrails on the release: the four stages in order', async () => {
    const g = await openGuardrails(R, planBackend());
    try {
      expect(g.textGuards.map((t) => t.name)).toEqual(['BLOCKLIST', 'AEGIS']);
      expect([g.videoGuard?.name, g.faceGuard?.name]).toEqual(['VIDEOCONTENTSAFETYFILTER', 'RETINAFACEFILTER']);
      expect((await g.checkPrompt('skeletonblockedword here')).verdicts).toMatchObject([{ stage: 'BLOCKLIST', safe: false }]);
    } finally {
      g.dispose();
    }
  });
});
