// The face-blur guardrail (spec guardrail.md "Face detection + blur"): both public cases on both
// backends, then the host steps against hand-computed values (priors, decoding, numpy's argsort
// order on ties, py_cpu_nms with +1 areas, the OpenCV pixelation of one box), and loading the
// release's kind of file: a torch.save .pth with a `state_dict` wrapper and `module.` prefixes.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointMismatchError } from '../../src/engine/module.js';
import { type TorchTensor, writeTorchCheckpoint } from '../../src/io/torch.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import {
  argsortNumpy, blurFrame, decodeBoxes, filterDetections, pixelate, priorBoxes, priorCount, pyCpuNms, resizeLinearU8,
} from '../../src/models/guardrail/face-post.js';
import { DEFAULT_FILTER_SETTINGS, parseRetinaFaceConfig } from '../../src/models/guardrail/retinaface-config.js';
import { CFG_RE50, RetinaFaceFamily, loadFaceBlurFilter } from '../../src/models/guardrail/retinaface.js';
import { loadModule } from '../../src/models/load.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/guardrail', import.meta.url));
const CASES = ['face_blur_re50', 'face_blur_mnet'];
const caseDir = (name: string) => join(FIXTURES, name);
const readConfig = (name: string) => JSON.parse(readFileSync(join(caseDir(name), 'config.json'), 'utf8')) as Record<string, unknown>;

const tmp = mkdtempSync(join(tmpdir(), 'cosmos-face-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('guardrail.face_blur conformance', () => {
  for (const name of CASES) {
    it(`${name} passes on cpu`, async () => {
      await expectCasePasses(caseDir(name), cpu);
    });
    it(`${name} passes on webgpu`, async () => {
      await expectCasePasses(caseDir(name), await webgpu());
    }, 120_000);
  }
});

describe('priors and decoding', () => {
  const cfg = parseRetinaFaceConfig(readConfig('face_blur_mnet'));

  it('counts ceil(H / step) x ceil(W / step) x 2 per level', () => {
    // 12x16 + 6x8 + 3x4 locations, and 10x14 + 5x7 + 3x4 when 80 and 112 are not multiples of 32
    expect(priorCount(cfg, 96, 128)).toBe((192 + 48 + 12) * 2);
    expect(priorCount(cfg, 80, 112)).toBe((140 + 35 + 12) * 2);
    expect(priorBoxes(cfg, 80, 112).length).toBe(374 * 4);
  });

  it('orders level, row, column, min size; (cx, cy, w, h) = ((j + .5) s / W, (i + .5) s / H, m / W, m / H)', () => {
    const p = priorBoxes(cfg, 80, 112);
    const row = (n: number) => Array.from(p.subarray(4 * n, 4 * n + 4));
    expect(row(0)).toEqual([4 / 112, 4 / 80, 16 / 112, 16 / 80].map(Math.fround));
    expect(row(1)).toEqual([4 / 112, 4 / 80, 32 / 112, 32 / 80].map(Math.fround));
    // level 0, row 1, column 2: prior 2 * (14 + 2)
    expect(row(32)).toEqual([20 / 112, 12 / 80, 16 / 112, 16 / 80].map(Math.fround));
    // first prior of level 1 (after 140 locations x 2)
    expect(row(280)).toEqual([8 / 112, 8 / 80, 64 / 112, 64 / 80].map(Math.fround));
  });

  it('decodes a zero regression to the prior box, x2 = x1 + w', () => {
    const priors = Float32Array.from([0.5, 0.25, 0.2, 0.1]);
    const boxes = decodeBoxes(new Float32Array(4), priors, [0.1, 0.2]);
    const f = Math.fround;
    const x1 = f(priors[0] - f(priors[2] / 2));
    const y1 = f(priors[1] - f(priors[3] / 2));
    expect(Array.from(boxes)).toEqual([x1, y1, f(priors[2] + x1), f(priors[3] + y1)]);
    // loc (1, 0, ln 2 / 0.2, 0): centre moves by 0.1 * w, width doubles
    const moved = decodeBoxes(Float32Array.from([1, 0, Math.log(2) / 0.2, 0]), priors, [0.1, 0.2]);
    expect(moved[0]).toBeCloseTo(0.52 - 0.2, 6);
    expect(moved[2]).toBeCloseTo(0.52 + 0.2, 6);
  });
});

describe('sorting and NMS', () => {
  it("argsort follows numpy's quicksort on ties (not the index order)", () => {
    // numpy's generic path (NPY_DISABLE_CPU_FEATURES=X86_V3, numpy 2.4.6): [3,2,2,1,1].argsort()
    expect(Array.from(argsortNumpy(Float32Array.from([3, 2, 2, 1, 1])))).toEqual([3, 4, 1, 2, 0]);
    const v = Float32Array.from({ length: 40 }, (_, i) => (i * 7) % 5);
    expect(Array.from(argsortNumpy(v))).toEqual([
      0, 20, 15, 30, 10, 25, 35, 5, 23, 8, 33, 28, 13, 3, 38, 18, 6, 21, 1, 36, 16, 26, 11, 31, 34, 29, 19, 14, 9, 4, 24, 39, 27, 22, 17, 12, 32, 7, 2, 37,
    ]);
  });

  it('py_cpu_nms: +1 areas and overlaps, IoU <= thresh kept, ties visited in reversed argsort order', () => {
    const dets = Float32Array.from([
      0, 0, 9, 9, 0.9, // A: 10 x 10 with the +1
      20, 0, 29, 9, 0.8, // B: no overlap with A
      22, 0, 31, 9, 0.8, // C: ties B; B ∩ C = 8 x 10 = 80, IoU 80 / 120 > 0.4
      5, 0, 14, 9, 0.5, // D: A ∩ D = 5 x 10 = 50, IoU 50 / 150 = 0.33 <= 0.4; D ∩ B: none
    ]);
    // argsort([.9, .8, .8, .5]) = [3, 1, 2, 0], reversed [0, 2, 1, 3]: C comes before B and removes it
    expect(pyCpuNms(dets, 0.4)).toEqual([0, 2, 3]);
    // at IoU threshold 1/3 exactly in float32, D (IoU 50/150) is removed
    expect(pyCpuNms(dets, Math.fround(50 / 150) - 1e-6)).toEqual([0, 2]);
  });

  it('filters score > threshold in float32 (a score equal to fround(0.7) is dropped), keeps the first keep_top_k', () => {
    const boxes = Float32Array.from([0, 0, 9, 9, 100, 0, 109, 9, 200, 0, 209, 9]);
    const scores = Float32Array.from([0.7, 0.75, 0.9]);
    const r = filterDetections(boxes, scores, { ...DEFAULT_FILTER_SETTINGS, keepTopK: 1 });
    expect(r.nmsInput.length / 5).toBe(2);
    expect(Array.from(r.nmsInput.subarray(0, 5))).toEqual([200, 0, 209, 9, Math.fround(0.9)]);
    expect(r.keep).toEqual([0, 1]);
    expect(Array.from(r.detections)).toEqual([200, 0, 209, 9, Math.fround(0.9)]);
  });
});

describe('pixelation', () => {
  it('a 20-px ramp goes to 5 blocks: each the fixed-point mean of its 2nd and 3rd columns, rounded up', () => {
    // 20 -> 5: source x = 4d + 1.5, weights 1024 / 1024: (((S >> 4) * 1024 >> 16) * 2 + 2) >> 2 = 4d + 2
    const roi = Uint8Array.from({ length: 20 * 20 * 3 }, (_, i) => Math.floor(i / 3) % 20);
    const small = resizeLinearU8(roi, 20, 20, 5, 5, 3);
    expect(Array.from(small.subarray(0, 15))).toEqual([2, 2, 2, 6, 6, 6, 10, 10, 10, 14, 14, 14, 18, 18, 18]);
    const px = pixelate(roi, 20, 20, 5);
    expect(Array.from({ length: 20 }, (_, x) => px[3 * x])).toEqual(Array.from({ length: 20 }, (_, x) => 4 * Math.floor(x / 4) + 2));
  });

  it('one box in place: int() truncation, the ROI only, narrower boxes skipped', () => {
    const H = 30;
    const W = 40;
    const frame = Uint8Array.from({ length: H * W * 3 }, (_, i) => Math.floor(i / 3) % W);
    const before = frame.slice();
    const dets = Float32Array.from([
      5.7, 3.2, 25.9, 23.99, 0.9, // int: (5, 3, 25, 23): 20 x 20 at column 5, row 3
      30.5, 0, 49.4, 29, 0.8, // int width 19: skipped
    ]);
    expect(blurFrame(frame, H, W, dets, DEFAULT_FILTER_SETTINGS)).toBe(1);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const inBox = y >= 3 && y < 23 && x >= 5 && x < 25;
        const want = inBox ? 5 + 4 * Math.floor((x - 5) / 4) + 2 : before[(y * W + x) * 3];
        for (let c = 0; c < 3; c++) expect(frame[(y * W + x) * 3 + c], `(${y}, ${x})`).toBe(want);
      }
    }
  });

  it("keeps Python's slice rules: a box above the frame (negative y2) pixelates rows [0, H + y2); a box off the frame is skipped", () => {
    const H = 30;
    const W = 40;
    const frame = Uint8Array.from({ length: H * W * 3 }, (_, i) => Math.floor(i / 3) % W);
    const before = frame.slice();
    // int: (-10, -45, 10, -25): frame[0:-25, 0:10] = rows 0..4, columns 0..9
    const above = Float32Array.from([-10.5, -45.2, 10.2, -25.7, 0.9]);
    expect(blurFrame(frame, H, W, above, DEFAULT_FILTER_SETTINGS)).toBe(1);
    const changed = new Set<string>();
    for (let i = 0; i < H * W; i++) if (frame[3 * i] !== before[3 * i]) changed.add(`${Math.floor(i / W)},${i % W}`);
    expect([...changed].every((k) => Number(k.split(',')[0]) < 5 && Number(k.split(',')[1]) < 10)).toBe(true);
    expect(changed.size).toBeGreaterThan(0);
    // x1 beyond the frame: an empty ROI, where upstream's cv2.resize raises
    expect(blurFrame(frame, H, W, Float32Array.from([45, 0, 70, 25, 0.9]), DEFAULT_FILTER_SETTINGS)).toBe(0);
  });
});

describe('loading a released .pth', () => {
  /** The mnet case's tensors as a torch.save file: {state_dict: {"module.<key>": tensor}} plus a stray key. */
  async function writeRelease(dir: string, o: { drop?: string; config?: boolean; bf16?: boolean } = {}): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const st = await openSafetensors(join(caseDir('face_blur_mnet'), 'model.safetensors'));
    const state: Record<string, TorchTensor> = {};
    for (const name of st.names) {
      if (name === o.drop) continue;
      const t = await st.read(name);
      if (name.endsWith('num_batches_tracked')) {
        state[`module.${name}`] = { dtype: 'I64', shape: t.shape, bytes: new Uint8Array(new BigInt64Array(t.raw.length).fill(7n).buffer) };
        continue;
      }
      const f32 = t.raw as Float32Array;
      // bf16: the high half of each float32 (truncated; any bf16 values do)
      const bytes = o.bf16
        ? new Uint8Array(Uint16Array.from(new Uint32Array(f32.buffer, f32.byteOffset, f32.length), (u) => u >>> 16).buffer)
        : new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
      state[`module.${name}`] = { dtype: o.bf16 ? 'BF16' : 'F32', shape: t.shape, bytes };
    }
    await st.close();
    state['module.unused_head.weight'] = { dtype: 'F32', shape: [2], bytes: new Uint8Array(8) };
    await writeTorchCheckpoint(join(dir, 'Resnet50_Final.pth'), { state_dict: state, epoch: 3 });
    if (o.config ?? true) writeFileSync(join(dir, 'config.json'), JSON.stringify(readConfig('face_blur_mnet')));
  }

  it('strips state_dict / module., ignores keys the model lacks, and blurs as the case expects', async () => {
    const dir = join(tmp, 'release');
    await writeRelease(dir);
    const filter = await loadFaceBlurFilter(dir, cpu);
    try {
      const cs = await openSafetensors(join(caseDir('face_blur_mnet'), 'case.safetensors'));
      const input = await cs.read('input.frames');
      const want = await cs.read('output.blurred_frames');
      const counts = await cs.read('output.detections_count');
      await cs.close();
      const [T, H, W] = input.shape;
      const frames = Uint8Array.from(input.raw);
      const r = await filter.blur(frames, T, H, W);
      expect(Array.from(r.frames)).toEqual(Array.from(want.raw));
      expect(r.detections).toEqual(Array.from(counts.raw));
      // the caller's frames are left as they were
      expect(Array.from(frames)).toEqual(Array.from(input.raw));
    } finally {
      filter.dispose();
    }
  });

  it('a parameter the model needs and the file lacks is refused, naming it', async () => {
    const dir = join(tmp, 'missing');
    await writeRelease(dir, { drop: 'fpn.merge1.1.running_var' });
    await expect(loadFaceBlurFilter(join(dir, 'Resnet50_Final.pth'), cpu)).rejects.toThrow(CheckpointMismatchError);
    await expect(loadFaceBlurFilter(join(dir, 'Resnet50_Final.pth'), cpu)).rejects.toThrow(/fpn\.merge1\.1\.running_var/);
  });

  it('bf16 weights are widened to float32 at load, as upstream runs the net in float32', async () => {
    const dir = join(tmp, 'bf16');
    await writeRelease(dir, { bf16: true });
    const { model } = await loadModule(RetinaFaceFamily, join(dir, 'Resnet50_Final.pth'), cpu, { config: readConfig('face_blur_mnet') });
    try {
      const params = [...model.parameters()];
      expect(params.length).toBeGreaterThan(200);
      expect(params.every((p) => p.t.dtype === 'f32')).toBe(true);
      const w = (await params[0].t.read())[0];
      expect(new Uint32Array(Float32Array.of(w).buffer)[0] & 0xffff).toBe(0);
    } finally {
      model.dispose();
    }
  });

  it("without a config.json the model is upstream's cfg_re50: MobileNet weights do not fit it", async () => {
    const dir = join(tmp, 'no-config');
    await writeRelease(dir, { config: false });
    await expect(loadFaceBlurFilter(dir, cpu)).rejects.toThrow(/missing keys .*body\.conv1\.weight/s);
  });

  it('cfg_re50 is torchvision resnet50 (v1.5, no fc) with 256-channel FPN / SSH: the ~27 M parameters of Resnet50_Final.pth', () => {
    const m = RetinaFaceFamily.build({ cfg: CFG_RE50 });
    const keys = new Map([...m.parameters()].map((p) => [p.key, p.shape]));
    expect(keys.get('body.layer1.0.downsample.0.weight')).toEqual([256, 64, 1, 1]);
    expect(keys.get('body.layer4.2.conv3.weight')).toEqual([2048, 512, 1, 1]);
    expect(keys.get('body.layer2.0.conv2.weight')).toEqual([128, 128, 3, 3]);
    expect(keys.get('fpn.output3.0.weight')).toEqual([256, 2048, 1, 1]);
    expect(keys.has('body.fc.weight')).toBe(false);
    // resnet50 without fc (23.5 M) + FPN / SSH / heads: the ~27 M of Resnet50_Final.pth
    expect(m.parameterCount()).toBeGreaterThan(26e6);
    expect(m.parameterCount()).toBeLessThan(28e6);
  });
});
