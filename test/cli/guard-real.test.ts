// `guard` and `text2world --guardrails` with the REAL stages (no fakes registered): a tiny
// Cosmos-1.0-Guardrail folder made here from the vendored guardrail cases
// (test/pipelines/guardrail-real-folder.ts: RetinaFace MobileNet0.25 as a `module.`-prefixed
// Resnet50_Final.pth, SigLIP as a Hugging Face cache + safety_filter.pt, LlamaGuard + LoRA as the two
// Hugging Face caches with a tokenizer.model, our own blocklist). The face case's frames go through
// `guard --video` and come out as the case's reference blurred frames, byte for byte.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { loadAegis } from '../../src/models/guardrail/aegis.js';
import { loadVideoSafetyFilter } from '../../src/models/guardrail/safety-classifier.js';
import { framesToVideo, videoToFrames } from '../../src/pipelines/guardrails.js';
import { cpu } from '../harness.js';
import { BLOCKED_WORD, EXACT_PHRASE, GUARDRAIL_FIXTURES, safetensorsTensors, writeRealGuardrailFolder } from '../pipelines/guardrail-real-folder.js';
import { type WorldFolders, writeWorldFolders } from '../pipelines/world-fixtures.js';
import { runCli } from './run-cli.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-cli-guard-real-'));
const G = nodePath.join(tmp, 'Cosmos-1.0-Guardrail');
beforeAll(async () => {
  await writeRealGuardrailFolder(G);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ALLOWED = 'A robot arm picks up a red cube.';

describe('guard --prompt with the real stages', () => {
  it('an allowed prompt: exit 0, the blocklist and Aegis verdicts; the Aegis model really ran', async () => {
    const r = await runCli('guard', '--guardrails', G, '--prompt', ALLOWED, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.out.split('\n')).toEqual(['BLOCKLIST: safe: Input is safe', 'AEGIS: safe: Input is safe']);
    // the stage itself: the model ran (a failure would also read as safe, as upstream), and its
    // random weights answer "is" repeated, no "unsafe" in it
    const aegis = await loadAegis(nodePath.join(G, 'aegis'), cpu);
    try {
      const v = await aegis.check(ALLOWED);
      expect(v.error).toBeUndefined();
      expect(v).toMatchObject({ safe: true, message: '' });
      expect(v.answer).toMatch(/^ ?(is)+$/);
    } finally {
      aegis.dispose();
    }
  }, 120_000);

  it('a blocklisted word, and an exact-match phrase: exit 3, Aegis not run; --json', async () => {
    const r = await runCli('guard', '--guardrails', G, '--prompt', `the ${BLOCKED_WORD} walks`, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(3);
    expect(r.out).toBe('BLOCKLIST: UNSAFE: Prompt blocked by censorship: Censored Prompt: the **** walks');
    expect(r.errLines.at(-1)).toBe('blocked: BLOCKLIST: Prompt blocked by censorship: Censored Prompt: the **** walks');
    const e = await runCli('guard', '--guardrails', G, '--prompt', `A ${EXACT_PHRASE} on a table`, '--backend', 'cpu', '--json');
    expect(e.rc, e.err).toBe(3);
    expect(JSON.parse(e.out)).toEqual({
      command: 'guard', guardrails: G, safe: false, out: null,
      verdicts: [{ stage: 'BLOCKLIST', safe: false, message: `Prompt blocked by exact match blocklist: Prompt: A ${EXACT_PHRASE} on a table, Exact Match Word: ${EXACT_PHRASE}` }],
    });
    expect(e.errLines.at(-1)).toMatch(/^blocked: BLOCKLIST: Prompt blocked by exact match blocklist/);
  });
});

describe('guard --video with the real stages', () => {
  const face = safetensorsTensors(nodePath.join(GUARDRAIL_FIXTURES, 'face_blur_mnet/case.safetensors'));
  const [T, H, W] = face.get('input.frames')!.shape;
  const frames = face.get('input.frames')!.bytes;
  const reference = face.get('output.blurred_frames')!.bytes;
  let clip: string;
  beforeAll(async () => {
    clip = nodePath.join(tmp, 'face-clip');
    await writePngFrames(clip, framesToVideo(frames, T, H, W));
  });

  /** Every pixel the blur changed lies inside a detection of the case (int boxes, clipped). */
  function changedOutsideBoxes(blurred: Uint8Array): number {
    const det = new Float32Array(face.get('output.detections')!.bytes.slice().buffer);
    const counts = new Int32Array(face.get('output.detections_count')!.bytes.slice().buffer);
    const K = face.get('output.detections')!.shape[1];
    let outside = 0;
    for (let t = 0; t < T; t++) {
      for (let p = 0; p < H * W; p++) {
        const i = (t * H * W + p) * 3;
        if ([0, 1, 2].every((c) => blurred[i + c] === frames[i + c])) continue;
        const x = p % W;
        const y = Math.floor(p / W);
        let inside = false;
        for (let k = 0; k < counts[t] && !inside; k++) {
          const [x1, y1, x2, y2] = Array.from(det.subarray((t * K + k) * 5, (t * K + k) * 5 + 4), Math.trunc);
          inside = x >= Math.max(x1, 0) && x < Math.min(x2, W) && y >= Math.max(y1, 0) && y < Math.min(y2, H);
        }
        if (!inside) outside++;
      }
    }
    return outside;
  }

  it('the face case\'s frames: safe, and the written clip is the case\'s blurred frames byte for byte', async () => {
    const out = nodePath.join(tmp, 'blurred');
    const r = await runCli('guard', '--guardrails', G, '--video', clip, '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^VIDEOCONTENTSAFETYFILTER: safe: ${T} frame\\(s\\) checked, all safe \\(frames_evaluated=${T} Safe=0\\.\\d{4} `));
    const faces = Array.from(new Int32Array(face.get('output.detections_count')!.bytes.slice().buffer)).reduce((a, b) => a + b, 0);
    expect(lines.slice(1)).toEqual([`RETINAFACEFILTER: safe: ${faces} face(s) blurred (faces=${faces} frames_with_faces=${T})`, `-> ${out}`]);
    const blurred = videoToFrames(await readPngFrames(out), 'round');
    expect(Buffer.from(blurred).equals(Buffer.from(reference))).toBe(true);
    expect(Buffer.from(blurred).equals(Buffer.from(frames))).toBe(false);
    expect(changedOutsideBoxes(blurred)).toBe(0);
  }, 120_000);

  it('--json: every class probability of the safety stage, the face counts', async () => {
    const r = await runCli('guard', '--guardrails', G, '--video', clip, '--backend', 'cpu', '--json');
    expect(r.rc, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ command: 'guard', safe: true, out: null });
    expect(j.verdicts.map((v: { stage: string }) => v.stage)).toEqual(['VIDEOCONTENTSAFETYFILTER', 'RETINAFACEFILTER']);
    const s = j.verdicts[0].scores;
    expect(Object.keys(s)).toEqual(['frames_evaluated', 'Safe', 'Sexual_Content', 'Violence', 'Drugs', 'Child_Abuse', 'Hate_and_Harassment', 'Self-Harm']);
    expect(s.frames_evaluated).toBe(T);
    expect(j.verdicts[1].scores.frames_with_faces).toBe(T);
  }, 120_000);

  it('the SigLIP case\'s frames: refused at the case\'s first unsafe frame (exit 3, nothing written)', async () => {
    const sig = safetensorsTensors(nodePath.join(GUARDRAIL_FIXTURES, 'siglip_video_safety/case.safetensors'));
    const [n, h, w] = sig.get('input.frames')!.shape;
    const evaluated = Number(new BigInt64Array(sig.get('output.frames_evaluated')!.bytes.slice().buffer)[0]);
    const classes = Array.from(new BigInt64Array(sig.get('output.predicted_class')!.bytes.slice().buffer), Number);
    const names = ['Safe', 'Sexual_Content', 'Violence', 'Drugs', 'Child_Abuse', 'Hate_and_Harassment', 'Self-Harm'];
    const sclip = nodePath.join(tmp, 'siglip-clip');
    await writePngFrames(sclip, framesToVideo(sig.get('input.frames')!.bytes, n, h, w));
    const out = nodePath.join(tmp, 'siglip-out');
    const r = await runCli('guard', '--guardrails', G, '--video', sclip, '--out', out, '--backend', 'cpu');
    expect(r.rc, r.err).toBe(3);
    expect(r.errLines.at(-1)).toBe(`blocked: VIDEOCONTENTSAFETYFILTER: unsafe frame ${evaluated - 1}: ${names[classes[evaluated - 1]]}`);
    expect(r.out).toMatch(new RegExp(`^VIDEOCONTENTSAFETYFILTER: UNSAFE: .* \\(frames_evaluated=${evaluated} `));
    expect(existsSync(out)).toBe(false);
  }, 120_000);

  it('on WebGPU: the same blurred bytes', async () => {
    const out = nodePath.join(tmp, 'blurred-gpu');
    const r = await runCli('guard', '--guardrails', G, '--video', clip, '--out', out, '--backend', 'webgpu');
    expect(r.rc, r.err).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^VIDEOCONTENTSAFETYFILTER: safe: /);
    expect(Buffer.from(videoToFrames(await readPngFrames(out), 'round')).equals(Buffer.from(reference))).toBe(true);
  }, 120_000);
});

describe('text2world --guardrails with the real stages', () => {
  let WF: WorldFolders;
  beforeAll(async () => {
    mkdirSync(nodePath.join(tmp, 'world'));
    WF = await writeWorldFolders(nodePath.join(tmp, 'world'));
  });
  const common = ['--steps', '1', '--frames', '9', '--height', '32', '--width', '32', '--seed', '3', '--backend', 'cpu'];

  it('a blocked prompt: exit 3, nothing written', async () => {
    const out = nodePath.join(tmp, 'blocked');
    const r = await runCli('text2world', '--model', WF.T2W, '--guardrails', G, '--prompt', `A ${BLOCKED_WORD} picks up a red cube.`, '--out', out, ...common);
    expect(r.rc, r.err).toBe(3);
    expect(r.errLines.at(-1)).toBe('blocked: BLOCKLIST: Prompt blocked by censorship: Censored Prompt: A **** picks up a red cube.');
    expect(existsSync(out)).toBe(false);
  });

  it('an allowed prompt: the prompt passes, the clip is generated and decoded, and the random safety classifier refuses it', async () => {
    // Deterministically, this tiny world model's clip at seed 3 is classed Self-Harm at its first
    // frame by the case's random classifier (a probability of about 0.335 against Safe's 0.331):
    // exit 3 and nothing written. The same clip generated without guardrails and checked by the
    // stage alone gives the same verdict, so the guard did run on the decoded clip.
    const out = nodePath.join(tmp, 'guarded');
    const r = await runCli('text2world', '--model', WF.T2W, '--guardrails', G, '--prompt', ALLOWED, '--out', out, ...common);
    expect(r.rc, r.err).toBe(3);
    expect(r.err).toContain(`guardrails ${G}: BLOCKLIST, AEGIS, VIDEOCONTENTSAFETYFILTER, RETINAFACEFILTER`);
    expect(r.errLines.at(-1)).toBe('blocked: VIDEOCONTENTSAFETYFILTER: unsafe frame 0: Self-Harm');
    expect(existsSync(out)).toBe(false);
    const plain = nodePath.join(tmp, 'plain');
    const u = await runCli('text2world', '--model', WF.T2W, '--prompt', ALLOWED, '--out', plain, ...common);
    expect(u.rc, u.err).toBe(0);
    const v = await readPngFrames(plain);
    expect([v.frames, v.height, v.width]).toEqual([9, 32, 32]);
    const filter = await loadVideoSafetyFilter(nodePath.join(G, 'video_content_safety_filter'), cpu);
    try {
      expect(await filter.check(videoToFrames(v, 'round'), v.frames, v.height, v.width)).toMatchObject({ safe: false, unsafeFrame: 0, predictedClass: 'Self-Harm' });
    } finally {
      filter.dispose();
    }
  }, 300_000);
});
