// FAKE guardrail stages for the tests of the wiring (the folder, the order of the stages, the
// CLI, the pipelines' hooks), registered through the loader registry as the real RetinaFace,
// SigLIP safety filter and Aegis loaders are. They are NOT the models: each decides by a plain,
// stated rule, so a test knows what it must find.
// - fake Aegis: unsafe when the prompt contains "hostile" (any case);
// - fake safety filter: a frame more than half of whose pixels are red (R >= 200, G and B <= 40)
//   is class 2 (Violence); frames are checked in order, the first unsafe one stops;
// - fake face blur: a "face" is the bounding box of the pixels of exactly FACE_SKIN, when it is
//   at least 20 x 20 and holds at least two FACE_EYE pixels; the blur fills the box with its mean
//   colour. `fixedBox` instead "finds" that box in every frame (for generated clips, which have no face).
import { mkdirSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import type { AegisGuard, FaceBlurFilter, GuardrailLoaders, VideoSafetyFilter } from '../../src/pipelines/guardrails.js';

export const FACE_SKIN = [230, 180, 140] as const;
export const FACE_EYE = [20, 20, 20] as const;

export interface FakeCalls {
  /** loader name and the path it was given, in order */
  loads: { stage: string; path: string }[];
  disposed: string[];
}

export type Box = [x1: number, y1: number, x2: number, y2: number];

/** The face box of one [H, W, 3] frame by the fake's rule (inclusive corners), or null. */
export function fakeFaceBox(f: Uint8Array, H: number, W: number): Box | null {
  let x1 = W;
  let y1 = H;
  let x2 = -1;
  let y2 = -1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = (y * W + x) * 3;
      if (f[p] === FACE_SKIN[0] && f[p + 1] === FACE_SKIN[1] && f[p + 2] === FACE_SKIN[2]) {
        x1 = Math.min(x1, x);
        y1 = Math.min(y1, y);
        x2 = Math.max(x2, x);
        y2 = Math.max(y2, y);
      }
    }
  }
  if (x2 - x1 + 1 < 20 || y2 - y1 + 1 < 20) return null;
  let eyes = 0;
  for (let y = y1; y <= y2; y++) {
    for (let x = x1; x <= x2; x++) {
      const p = (y * W + x) * 3;
      if (f[p] === FACE_EYE[0] && f[p + 1] === FACE_EYE[1] && f[p + 2] === FACE_EYE[2]) eyes++;
    }
  }
  return eyes >= 2 ? [x1, y1, x2, y2] : null;
}

/** Paint the face pattern (a skin box with two 2x2 eyes) at `box` into every frame of a [T, H, W, 3] clip, in place. */
export function paintFace(f: Uint8Array, T: number, H: number, W: number, [x1, y1, x2, y2]: Box): Uint8Array {
  for (let t = 0; t < T; t++) {
    const at = (x: number, y: number, c: readonly number[]) => f.set(c, ((t * H + y) * W + x) * 3);
    for (let y = y1; y <= y2; y++) for (let x = x1; x <= x2; x++) at(x, y, FACE_SKIN);
    for (const [ex, ey] of [[x1 + 5, y1 + 6], [x2 - 5, y1 + 6]]) for (let d = 0; d < 4; d++) at(ex + (d & 1), ey + (d >> 1), FACE_EYE);
  }
  return f;
}

/** A [T, H, W, 3] clip of one grey with the face pattern at `box` in every frame. */
export function faceFrames(T: number, H: number, W: number, box: Box, base = 90): Uint8Array {
  return paintFace(new Uint8Array(T * H * W * 3).fill(base), T, H, W, box);
}

/** Fill a box of one frame with its mean colour, in place. */
export function fillMean(f: Uint8Array, W: number, [x1, y1, x2, y2]: Box): void {
  const sum = [0, 0, 0];
  const n = (x2 - x1 + 1) * (y2 - y1 + 1);
  for (let y = y1; y <= y2; y++) for (let x = x1; x <= x2; x++) for (let c = 0; c < 3; c++) sum[c] += f[(y * W + x) * 3 + c];
  for (let y = y1; y <= y2; y++) for (let x = x1; x <= x2; x++) for (let c = 0; c < 3; c++) f[(y * W + x) * 3 + c] = Math.round(sum[c] / n);
}

export function isRedFrame(f: Uint8Array): boolean {
  let red = 0;
  const n = f.length / 3;
  for (let p = 0; p < n; p++) if (f[3 * p] >= 200 && f[3 * p + 1] <= 40 && f[3 * p + 2] <= 40) red++;
  return red > n / 2;
}

const CLASSES = ['Safe', 'Sexual_Content', 'Violence', 'Drugs', 'Child_Abuse', 'Hate_and_Harassment', 'Self-Harm'];

/** The fake loaders, recording what they are given. */
export function fakeLoaders(o: { fixedBox?: Box } = {}): { loaders: Required<GuardrailLoaders>; calls: FakeCalls } {
  const calls: FakeCalls = { loads: [], disposed: [] };
  const aegis = async (path: string): Promise<AegisGuard> => {
    calls.loads.push({ stage: 'aegis', path });
    return {
      async check(prompt) {
        const unsafe = /hostile/i.test(prompt);
        return { safe: !unsafe, message: unsafe ? 'Prompt blocked by Aegis (fake: the word "hostile").' : '', answer: unsafe ? 'unsafe\nO3' : 'safe' };
      },
      dispose: () => void calls.disposed.push('aegis'),
    };
  };
  const videoSafety = async (path: string): Promise<VideoSafetyFilter> => {
    calls.loads.push({ stage: 'videoSafety', path });
    return {
      async check(frames, T, H, W) {
        const probs: number[][] = [];
        const size = H * W * 3;
        for (let t = 0; t < T; t++) {
          const red = isRedFrame(frames.subarray(t * size, (t + 1) * size));
          probs.push(red ? [0.05, 0, 0.95, 0, 0, 0, 0] : [0.97, 0.01, 0.01, 0, 0, 0.01, 0]);
          if (red) return { safe: false, framesEvaluated: t + 1, unsafeFrame: t, predictedClass: CLASSES[2], probs };
        }
        return { safe: true, framesEvaluated: T, unsafeFrame: null, predictedClass: CLASSES[0], probs };
      },
      dispose: () => void calls.disposed.push('videoSafety'),
    };
  };
  const faceBlur = async (path: string): Promise<FaceBlurFilter> => {
    calls.loads.push({ stage: 'faceBlur', path });
    return {
      async blur(frames, T, H, W) {
        const out = frames.slice();
        const size = H * W * 3;
        const detections: number[] = [];
        for (let t = 0; t < T; t++) {
          const f = out.subarray(t * size, (t + 1) * size);
          const box = o.fixedBox ?? fakeFaceBox(f, H, W);
          if (box) fillMean(f, W, box);
          detections.push(box ? 1 : 0);
        }
        return { frames: out, detections };
      },
      dispose: () => void calls.disposed.push('faceBlur'),
    };
  };
  return { loaders: { aegis, videoSafety, faceBlur }, calls };
}

/** Keywords of the tiny blocklist (made-up words, so no test prints a real one). */
export const WORDS = {
  custom: ['blarg', 'zorp wibble', 'clank'],
  whitelist: ['cl@nk'],
  exactMatch: ['quibbleflux', 'tangle  vortex'],
};

/**
 * A tiny Cosmos-1.0-Guardrail folder: blocklist/ with WORDS (custom/ split over two files, with a
 * blank line and CRLF endings), empty model stage folders (the fakes load nothing). `under`
 * puts it inside a checkpoint folder as `guardrail/`, where cosmos-predict1 looks.
 */
export function writeGuardrailFolder(dir: string, under?: 'guardrail'): string {
  const root = under ? nodePath.join(dir, under) : dir;
  const b = nodePath.join(root, 'blocklist');
  for (const d of ['custom', 'whitelist', 'exact_match', 'nltk_data']) mkdirSync(nodePath.join(b, d), { recursive: true });
  writeFileSync(nodePath.join(b, 'custom', 'a.txt'), `${WORDS.custom[0]}\r\n\r\n  ${WORDS.custom[1]}  \r\n`);
  writeFileSync(nodePath.join(b, 'custom', 'b.txt'), `${WORDS.custom[2]}\n`);
  writeFileSync(nodePath.join(b, 'whitelist', 'w.txt'), `${WORDS.whitelist.join('\n')}\n`);
  writeFileSync(nodePath.join(b, 'exact_match', 'e.txt'), `${WORDS.exactMatch.join('\n')}\n`);
  for (const d of ['aegis', 'video_content_safety_filter', 'face_blur_filter']) mkdirSync(nodePath.join(root, d), { recursive: true });
  return dir;
}
