// Qwen2.5-VL (Cosmos-Reason1) on videos. There is no public vlm.generate case with video inputs,
// so the checks are built from the public cases without inventing a reference:
//   - an image is, to the processor, two identical frames (a single image is repeated to
//     temporal_patch_size frames), so a 2-frame video of identical frames has the image's exact
//     pixel rows and grid (1, h, w); at t = 1 every temporal M-RoPE index is 0 whatever
//     second_per_grid_t is, and the placeholder rows are replaced by the same visual features.
//     The public greedy_decode / lm_forward cases rewritten that way (<|image_pad|> -> <|video_pad|>,
//     pixel_values -> pixel_values_videos, image_grid_thw -> video_grid_thw, plus
//     second_per_grid_ts) must give the public upstream outputs, taps included;
//   - the vision tower never attends across time (full-attention blocks attend within one
//     temporal step, windows lie inside a frame), so the public vision_encoder video (2, 6, 10)
//     given as two (1, 6, 10) items gives the same upstream embeddings and taps;
//   - the processor's fps -> second_per_grid_ts = temporal_patch_size / fps reproduces the
//     public rope_index case (which holds a (3, 4, 4) video at 0.5 s per step);
//   - a batch that mixes images and videos (video first in one row, image first in the other, a
//     two-step video, left padding) decodes with the KV cache exactly as the full forward does, on
//     both backends; its conformance case written by the CPU backend passes on WebGPU;
//   - a generated <|video_pad|> / <|image_pad|> is fed back as a plain token (upstream drops the
//     pixels after the prefill): the bug of issue 13.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/backend.js';
import * as F from '../../src/engine/ops.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { type TensorToWrite, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { loadModule } from '../../src/models/load.js';
import { VlmSession, generate } from '../../src/models/vlm/generate.js';
import { type ForwardInputs, type Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLFamily } from '../../src/models/vlm/language.js';
import { Qwen2VLImageProcessor } from '../../src/models/vlm/preprocess.js';
import { type Grid, RopeIndexError, getRopeIndex } from '../../src/models/vlm/rope-index.js';
import { cpu, expectCasePasses, webgpu } from '../harness.js';

const FIX = fileURLToPath(new URL('../fixtures/vlm', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'cosmos-vlm-video-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const IMAGE = 292;
const VIDEO = 293;
const START = 290;
const END = 291;

// ------------------------------------------------------------------ case rewriting

type Tensors = Map<string, TensorToWrite>;

async function readCase(dir: string): Promise<{ tensors: Tensors; json: Record<string, unknown> }> {
  const f = await openSafetensors(join(dir, 'case.safetensors'));
  const tensors: Tensors = new Map();
  for (const n of f.names) {
    const t = await f.read(n);
    tensors.set(n, { dtype: f.info(n).dtype as TensorToWrite['dtype'], shape: t.shape, raw: t.raw });
  }
  await f.close();
  return { tensors, json: JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) };
}

/** A copy of public case `src` (same config and weights) with its tensors / case.json edited. */
async function deriveCase(src: string, name: string, edit: (t: Tensors, json: Record<string, unknown>) => void): Promise<string> {
  const dst = join(tmp, name);
  mkdirSync(dst, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(FIX, src, f), join(dst, f));
  const { tensors, json } = await readCase(join(FIX, src));
  edit(tensors, json);
  await writeSafetensors(join(dst, 'case.safetensors'), tensors);
  writeFileSync(join(dst, 'case.json'), JSON.stringify(json, null, 1));
  return dst;
}

function rename(t: Tensors, json: Record<string, unknown>, from: string, to: string): void {
  const [section, key] = from.split('.');
  const v = t.get(from);
  if (!v) throw new Error(`no ${from}`);
  t.delete(from);
  t.set(`${section}.${to.split('.')[1]}`, v);
  const table = json[section === 'input' ? 'inputs' : section === 'output' ? 'outputs' : 'taps'] as Record<string, unknown>;
  table[to.split('.')[1]] = table[key];
  delete table[key];
}

/** Replace token `from` by `to` in the first `upTo` positions of every row of an id tensor. */
function replaceIds(t: Tensors, name: string, from: number, to: number, upTo: number): void {
  const v = t.get(name)!;
  const L = v.shape[v.shape.length - 1];
  t.set(name, { ...v, raw: Int32Array.from(v.raw as Int32Array, (x, i) => (x === from && i % L < upTo ? to : x)) });
}

/** The image of a public model case given as a 2-frame video of that image (see the header). */
function imageAsVideo(promptLength: number, seconds: number | null) {
  return (t: Tensors, json: Record<string, unknown>) => {
    rename(t, json, 'input.pixel_values', 'input.pixel_values_videos');
    rename(t, json, 'input.image_grid_thw', 'input.video_grid_thw');
    replaceIds(t, 'input.input_ids', IMAGE, VIDEO, promptLength);
    if (t.has('output.sequences')) replaceIds(t, 'output.sequences', IMAGE, VIDEO, promptLength);
    if (seconds !== null) {
      t.set('input.second_per_grid_ts', { dtype: 'F32', shape: [1], raw: Float32Array.from([seconds]) });
      (json.inputs as Record<string, unknown>).second_per_grid_ts = [[1], 'float32 seconds per temporal grid step'];
    }
  };
}

// ------------------------------------------------------------------ identical frames = an image

describe('an image is a 2-frame video of identical frames', () => {
  it('to the processor: the same pixel rows and grid (1, h, w)', async () => {
    const proc = Qwen2VLImageProcessor.fromJson(JSON.parse(readFileSync(join(FIX, 'image_preprocess', 'config.json'), 'utf8')));
    const f = await openSafetensors(join(FIX, 'image_preprocess', 'case.safetensors'));
    const img = await f.read('input.image');
    await f.close();
    const [height, width] = img.shape;
    const data = Uint8Array.from(img.raw as Int32Array);
    const asImage = proc.preprocessImages([{ data, height, width }]);
    const twice = new Uint8Array(2 * data.length);
    twice.set(data, 0);
    twice.set(data, data.length);
    const asVideo = proc.preprocessVideos([{ data: twice, frames: 2, height, width }]);
    expect(asVideo.gridThw).toEqual(asImage.gridThw);
    expect(asImage.gridThw).toEqual([[1, 4, 6]]);
    expect(asVideo.shape).toEqual(asImage.shape);
    expect(asVideo.pixelValues).toEqual(asImage.pixelValues);
  });

  const cases: [string, string, number, number | null][] = [
    ['greedy_decode', 'greedy-video', 18, 0.5],
    ['greedy_decode', 'greedy-video-no-seconds', 18, null],
    ['lm_forward', 'lm-video', 18, 0.25],
    ['lm_forward_bf16', 'lm-bf16-video', 18, 2],
  ];
  for (const [src, name, L, seconds] of cases) {
    for (const be of ['cpu', 'webgpu'] as const) {
      it(`${src} as a video (second_per_grid_ts ${seconds ?? 'absent'}) gives the public upstream outputs and taps on ${be}`, async () => {
        const dir = await deriveCase(src, name, imageAsVideo(L, seconds));
        const r = await expectCasePasses(dir, be === 'cpu' ? cpu : await webgpu());
        expect(Object.keys(r.taps).length).toBe(src === 'greedy_decode' ? 1 : 5);
      });
    }
  }

  it('the args.fps spelling: second_per_grid_ts = temporal_patch_size / fps', async () => {
    const dir = await deriveCase('greedy_decode', 'greedy-video-fps', (t, json) => {
      imageAsVideo(18, null)(t, json);
      (json.args as Record<string, unknown>).fps = 4;
    });
    await expectCasePasses(dir, cpu);
  });
});

// ------------------------------------------------------------------ the vision tower over time

describe('the vision tower processes a video one temporal step at a time', () => {
  for (const be of ['cpu', 'webgpu'] as const) {
    it(`the public (2, 6, 10) video as two (1, 6, 10) items: the same upstream embeddings and taps on ${be}`, async () => {
      const dir = await deriveCase('vision_encoder', 'vision-split', (t) => {
        const g = t.get('input.grid_thw')!;
        expect(Array.from(g.raw as Int32Array)).toEqual([1, 8, 12, 2, 6, 10]);
        t.set('input.grid_thw', { ...g, shape: [3, 3], raw: Int32Array.from([1, 8, 12, 1, 6, 10, 1, 6, 10]) });
      });
      const r = await expectCasePasses(dir, be === 'cpu' ? cpu : await webgpu());
      expect(Object.keys(r.taps)).toHaveLength(7);
    });
  }
});

// ------------------------------------------------------------------ temporal positions

describe('video M-RoPE positions', () => {
  it('the public rope_index case with second_per_grid_ts given as args (a number, or the fps)', async () => {
    const drop = (t: Tensors, json: Record<string, unknown>) => {
      t.delete('input.second_per_grid_ts');
      delete (json.inputs as Record<string, unknown>).second_per_grid_ts;
    };
    const a = await deriveCase('rope_index', 'rope-seconds-arg', (t, json) => {
      drop(t, json);
      (json.args as Record<string, unknown>).second_per_grid_ts = [0.5];
    });
    await expectCasePasses(a, cpu);
    const b = await deriveCase('rope_index', 'rope-fps-arg', (t, json) => {
      drop(t, json);
      (json.args as Record<string, unknown>).fps = 4;
    });
    await expectCasePasses(b, cpu);
  });

  const cfg = { imageTokenId: IMAGE, videoTokenId: VIDEO, visionStartTokenId: START, spatialMergeSize: 2, tokensPerSecond: 2 };
  it('images and videos in the order their tokens appear; time steps of floor(i * s * tokens_per_second)', () => {
    // text, video (3, 2, 2) at s = 1.5 (steps 0, 3, 6), text, image (1, 2, 4), text
    const ids = [7, START, VIDEO, VIDEO, VIDEO, END, 8, START, IMAGE, IMAGE, END, 9];
    const r = getRopeIndex(cfg, { inputIds: ids, batch: 1, length: ids.length, imageGridThw: [[1, 2, 4]], videoGridThw: [[3, 2, 2]], secondPerGridTs: [1.5] });
    const axis = (a: number) => Array.from(r.positionIds.subarray(a * ids.length, (a + 1) * ids.length));
    expect(axis(0)).toEqual([0, 1, 2, 2 + 3, 2 + 6, 9, 10, 11, 12, 12, 14, 15]);
    expect(axis(1)).toEqual([0, 1, 2, 2, 2, 9, 10, 11, 12, 12, 14, 15]);
    expect(axis(2)).toEqual([0, 1, 2, 2, 2, 9, 10, 11, 12, 13, 14, 15]);
    expect(Array.from(r.ropeDeltas)).toEqual([16 - ids.length]);
    // too few second_per_grid_ts entries for the videos is named
    expect(() => getRopeIndex(cfg, {
      inputIds: [...ids, START, VIDEO, END], batch: 1, length: ids.length + 3, imageGridThw: [[1, 2, 4]], videoGridThw: [[3, 2, 2], [1, 2, 2]], secondPerGridTs: [1.5],
    })).toThrow(new RopeIndexError('second_per_grid_ts: has 1 entries, video 2 needs one'));
  });
});

// ------------------------------------------------------------------ a mixed batch

interface Pixels { raw: Float32Array; shape: number[] }

async function casePixels(src: string, name: string): Promise<Pixels> {
  const f = await openSafetensors(join(FIX, src, 'case.safetensors'));
  const t = await f.read(name);
  await f.close();
  return { raw: t.raw as Float32Array, shape: t.shape };
}

function cat(...xs: Pixels[]): Pixels {
  const rows = xs.reduce((s, x) => s + x.shape[0], 0);
  const raw = new Float32Array(rows * xs[0].shape[1]);
  let o = 0;
  for (const x of xs) {
    raw.set(x.raw, o);
    o += x.raw.length;
  }
  return { raw, shape: [rows, xs[0].shape[1]] };
}

const item = (token: number, n: number) => [START, ...new Array(n).fill(token), END];

/**
 * Two left-padded rows over the greedy_decode weights. Row 0: text, a two-step video (the
 * processor's (2, 4, 4) output of the image_preprocess case), text, an image, text. Row 1: text,
 * an image, text, the greedy_decode image as a 2-frame video, text.
 */
async function mixedBatch() {
  const still = await casePixels('greedy_decode', 'input.pixel_values'); // (1, 4, 6): 6 tokens
  const image2 = await casePixels('image_preprocess', 'output.pixel_values'); // (1, 4, 6)
  const clip = await casePixels('image_preprocess', 'output.pixel_values_videos'); // (2, 4, 4): 8 tokens
  const row0 = [20, 21, ...item(VIDEO, 8), 22, 23, ...item(IMAGE, 6), 30, 31, 32];
  const row1body = [40, 41, ...item(IMAGE, 6), 42, ...item(VIDEO, 6), 43, 44];
  const L = row0.length;
  const pad = L - row1body.length;
  const ids = [...row0, ...new Array(pad).fill(0), ...row1body];
  const mask = [...new Array(L).fill(1), ...new Array(pad).fill(0), ...new Array(L - pad).fill(1)];
  return {
    L, pad,
    ids: Int32Array.from(ids), mask: Int32Array.from(mask),
    pixelValues: cat(still, image2), imageGridThw: [[1, 4, 6], [1, 4, 6]] as Grid[],
    pixelValuesVideos: cat(clip, still), videoGridThw: [[2, 4, 4], [1, 4, 6]] as Grid[],
    secondPerGridTs: Float32Array.from([0.5, 1 / 3]),
  };
}

type Mixed = Awaited<ReturnType<typeof mixedBatch>>;

function forwardInputs(be: Backend, m: Mixed, withSeconds = true): ForwardInputs {
  return {
    inputIds: { data: m.ids, shape: [2, m.L] },
    attentionMask: { data: m.mask, shape: [2, m.L] },
    pixelValues: F.fromArray(be, m.pixelValues.raw, m.pixelValues.shape),
    imageGridThw: m.imageGridThw,
    pixelValuesVideos: F.fromArray(be, m.pixelValuesVideos.raw, m.pixelValuesVideos.shape),
    videoGridThw: m.videoGridThw,
    secondPerGridTs: withSeconds ? m.secondPerGridTs : null,
  };
}

function freeInputs(i: ForwardInputs): void {
  i.pixelValues?.dispose();
  i.pixelValuesVideos?.dispose();
}

async function greedyModel(be: Backend): Promise<Qwen2_5_VLForConditionalGeneration> {
  const dir = join(FIX, 'greedy_decode');
  const { model } = await loadModule(Qwen2_5_VLFamily(), join(dir, 'model.safetensors'), be, { config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) });
  return model;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, label: string) {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]))) expect.fail(`${label}: element ${i} got ${got[i]}, want ${want[i]}`);
  }
}

const STEPS = 6;

/** Greedy steps with the KV cache equal the full forward (no cache) over prompt + generated tokens. */
async function decodeMatchesFullForward(be: Backend, m: Mixed) {
  const model = await greedyModel(be);
  const inputs = forwardInputs(be, m);
  try {
    const r = await generate(model, inputs, { maxNewTokens: STEPS, stopTokenIds: [], returnStepLogits: true });
    const { L } = m;
    const T = L + STEPS - 1;
    const seq: number[] = [];
    const mask: number[] = [];
    for (let b = 0; b < 2; b++) {
      for (let l = 0; l < T; l++) seq.push(r.sequences[b * (L + STEPS) + l]);
      for (let l = 0; l < T; l++) mask.push(l < L ? m.mask[b * L + l] : 1);
    }
    const full = model.forward({ ...inputs, inputIds: { data: seq, shape: [2, T] }, attentionMask: { data: mask, shape: [2, T] } });
    const V = model.config.text.vocabSize;
    const logits = (await full.logits.read()) as Float32Array;
    full.logits.dispose();
    for (let b = 0; b < 2; b++) {
      for (let k = 0; k < STEPS; k++) {
        const want = logits.subarray((b * T + L - 1 + k) * V, (b * T + L + k) * V);
        expectClose(r.stepLogits!.subarray((b * STEPS + k) * V, (b * STEPS + k + 1) * V), want, 1e-4, 1e-3, `row ${b} step ${k} on ${be.name}`);
      }
    }
    return r;
  } finally {
    freeInputs(inputs);
    model.dispose();
  }
}

describe('a batch mixing images and videos', () => {
  let m: Mixed;
  let onCpu: Awaited<ReturnType<typeof generate>>;
  beforeAll(async () => {
    m = await mixedBatch();
  });

  it('KV-cache steps equal the full forward on CPU; second_per_grid_ts matters; each row decodes as it does alone', async () => {
    onCpu = await decodeMatchesFullForward(cpu, m);
    expect(Array.from(onCpu.ropeDeltas)).toEqual(
      [0, 1].map((b) => {
        const r = getRopeIndex({ imageTokenId: IMAGE, videoTokenId: VIDEO, visionStartTokenId: START, spatialMergeSize: 2, tokensPerSecond: 2 },
          { inputIds: m.ids, batch: 2, length: m.L, attentionMask: m.mask, imageGridThw: m.imageGridThw, videoGridThw: m.videoGridThw, secondPerGridTs: m.secondPerGridTs });
        return r.ropeDeltas[b];
      }),
    );
    const model = await greedyModel(cpu);
    try {
      // 0.5 s per step -> the clip's second step at +1; upstream's default 1.0 s puts it at +2
      const without = forwardInputs(cpu, m, false);
      const r = await generate(model, without, { maxNewTokens: 1, stopTokenIds: [], returnStepLogits: true });
      freeInputs(without);
      expect(Array.from(r.stepLogits!.subarray(0, 300))).not.toEqual(Array.from(onCpu.stepLogits!.subarray(0, 300)));
      // row 1 alone, unpadded: its image and its video only
      const alone = {
        inputIds: { data: m.ids.subarray(m.L + m.pad), shape: [1, m.L - m.pad] },
        pixelValues: F.fromArray(cpu, m.pixelValues.raw.subarray(24 * 1176), [24, 1176]), imageGridThw: [m.imageGridThw[1]],
        pixelValuesVideos: F.fromArray(cpu, m.pixelValuesVideos.raw.subarray(32 * 1176), [24, 1176]), videoGridThw: [m.videoGridThw[1]],
        secondPerGridTs: m.secondPerGridTs.subarray(1),
      };
      const r1 = await generate(model, alone, { maxNewTokens: STEPS, stopTokenIds: [] });
      freeInputs(alone);
      expect(r1.generated[0]).toEqual(onCpu.generated[1]);
    } finally {
      model.dispose();
    }
  });

  it('KV-cache steps equal the full forward on WebGPU, and WebGPU generates what the CPU generates', async () => {
    const r = await decodeMatchesFullForward(await webgpu(), m);
    expect(r.generated).toEqual(onCpu.generated);
    expectClose(r.stepLogits!, onCpu.stepLogits!, 2e-4, 1e-3, 'webgpu vs cpu step logits');
  });

  it('as a vlm.generate case with every processor input name: written by the CPU backend, passed on WebGPU', async () => {
    const dir = join(tmp, 'mixed-generate');
    mkdirSync(dir, { recursive: true });
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(FIX, 'greedy_decode', f), join(dir, f));
    const int64 = (raw: Int32Array, shape: number[]): TensorToWrite => ({ dtype: 'I64', shape, raw });
    const flat = (g: Grid[]) => Int32Array.from(g.flat());
    await writeSafetensors(join(dir, 'case.safetensors'), {
      'input.input_ids': int64(m.ids, [2, m.L]),
      'input.attention_mask': int64(m.mask, [2, m.L]),
      'input.pixel_values': { dtype: 'F32', ...m.pixelValues },
      'input.image_grid_thw': int64(flat(m.imageGridThw), [2, 3]),
      'input.pixel_values_videos': { dtype: 'F32', ...m.pixelValuesVideos },
      'input.video_grid_thw': int64(flat(m.videoGridThw), [2, 3]),
      'input.second_per_grid_ts': { dtype: 'F32', shape: [2], raw: m.secondPerGridTs },
      'output.sequences': int64(onCpu.sequences, [2, m.L + STEPS]),
      'output.step_logits': { dtype: 'F32', shape: [2, STEPS, 300], raw: onCpu.stepLogits! },
      'tap.rope_deltas': int64(onCpu.ropeDeltas, [2, 1]),
    });
    const json = JSON.parse(readFileSync(join(FIX, 'greedy_decode', 'case.json'), 'utf8'));
    json.note = 'made by the cosmos-ts CPU backend (not upstream): a backend-agreement check';
    json.args.max_new_tokens = STEPS;
    json.outputs = { sequences: [[2, m.L + STEPS], 'int64'], step_logits: [[2, STEPS, 300], 'float32'] };
    json.inputs = Object.fromEntries(['input_ids', 'attention_mask', 'pixel_values', 'image_grid_thw', 'pixel_values_videos', 'video_grid_thw', 'second_per_grid_ts'].map((k) => [k, []]));
    writeFileSync(join(dir, 'case.json'), JSON.stringify(json));
    await expectCasePasses(dir, cpu);
    await expectCasePasses(dir, await webgpu());
  });
});

// ------------------------------------------------------------------ placeholders after the prefill

describe('a generated placeholder token', () => {
  for (const be of ['cpu', 'webgpu'] as const) {
    it(`<|video_pad|> and <|image_pad|> fed back after a video prefill are plain token embeddings (${be})`, async () => {
      const backend = be === 'cpu' ? cpu : await webgpu();
      const model = await greedyModel(backend);
      const clip = await casePixels('image_preprocess', 'output.pixel_values_videos');
      const prompt = [20, 21, ...item(VIDEO, 8), 30, 31];
      const L = prompt.length;
      const pixels = F.fromArray(backend, clip.raw, clip.shape);
      const visual = { pixelValuesVideos: pixels, videoGridThw: [[2, 4, 4]] as Grid[], secondPerGridTs: [0.5] };
      const held: Tensor[] = [pixels];
      try {
        const session = new VlmSession(model, 1, L + 2);
        held.push(session.prefill({ inputIds: { data: prompt, shape: [1, L] }, ...visual }));
        const got = [session.step([VIDEO]), session.step([IMAGE])];
        held.push(...got);
        session.dispose();
        // reference: one uncached pass over the prompt's embeddings followed by the plain embeddings
        const rope = model.ropeIndex({ data: prompt, shape: [1, L] }, null, visual);
        const d = rope.ropeDeltas[0];
        const pos = [0, 1, 2].flatMap((a) => [...rope.positionIds.subarray(a * L, (a + 1) * L), L + d, L + 1 + d]);
        const embeds = F.concat([model.embedInputs({ data: prompt, shape: [1, L] }, visual), model.embedTokens({ data: [VIDEO, IMAGE], shape: [1, 2] })], 1);
        const full = model.decode(embeds, pos, null);
        held.push(embeds, full);
        const V = model.config.text.vocabSize;
        const all = (await full.read()) as Float32Array;
        for (let k = 0; k < 2; k++) expectClose((await got[k].read()) as Float32Array, all.subarray((L + k) * V, (L + k + 1) * V), 1e-4, 1e-3, `step ${k}`);
      } finally {
        for (const t of held) t.dispose();
        model.dispose();
      }
    });
  }
});

// ------------------------------------------------------------------ errors

describe('video input errors are one line naming the inputs', () => {
  let model: Qwen2_5_VLForConditionalGeneration;
  let clip: Pixels;
  beforeAll(async () => {
    model = await greedyModel(cpu);
    clip = await casePixels('image_preprocess', 'output.pixel_values_videos');
  });
  afterAll(() => model.dispose());
  const ids = (n: number) => ({ data: [20, ...item(VIDEO, n), 30], shape: [1, n + 4] });
  const oneLine = (fn: () => unknown, re: RegExp) => {
    let msg = '';
    try {
      fn();
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(re);
    expect(msg).not.toContain('\n');
  };

  it('video tokens without pixels, pixels without grids, rows that do not fit the grid, token counts that do not match', () => {
    const px = F.fromArray(cpu, clip.raw, clip.shape);
    const short = F.fromArray(cpu, clip.raw.subarray(0, 31 * 1176), [31, 1176]);
    try {
      oneLine(() => model.forward({ inputIds: ids(8), videoGridThw: [[2, 4, 4]] }), /^pixel_values_videos: missing, while input_ids hold 8 video tokens \(293\)$/);
      oneLine(() => model.embedInputs(ids(8), { pixelValuesVideos: px }), /^video_grid_thw: missing \(pixel_values_videos were given\)$/);
      oneLine(() => model.forward({ inputIds: ids(8), pixelValuesVideos: short, videoGridThw: [[2, 4, 4]] }),
        /^pixel_values_videos: \[31,1176\] does not fit video_grid_thw \[\[2, 4, 4\]\]; expected \[32, 1176\]/);
      oneLine(() => model.embedInputs(ids(7), { pixelValuesVideos: px, videoGridThw: [[2, 4, 4]] }),
        /^video_grid_thw: video features and video tokens do not match; input_ids hold 7 video tokens \(293\), video_grid_thw \[\[2, 4, 4\]\] gives 8 features$/);
      // (the rope index walks grid-sized chunks, as upstream, so the embedding scatter is what notices)
      oneLine(() => model.forward({ inputIds: ids(7), pixelValuesVideos: px, videoGridThw: [[2, 4, 4]] }), /^video_grid_thw: video features and video tokens do not match; input_ids hold 7/);
      oneLine(() => model.forward({ inputIds: { data: [20, START, VIDEO, END], shape: [1, 4] }, pixelValuesVideos: px, videoGridThw: [[2, 4, 4]] }),
        /^input_ids row 0: the visual grids cover 10 positions but the row has 4 tokens/);
      const two = { data: [...ids(8).data, ...item(VIDEO, 8)], shape: [1, 22] };
      oneLine(() => model.forward({ inputIds: two, pixelValuesVideos: px, videoGridThw: [[2, 4, 4], [2, 4, 4]], secondPerGridTs: [0.5] }),
        /^second_per_grid_ts: has 1 entries, video 2 needs one$/);
    } finally {
      px.dispose();
      short.dispose();
    }
  });
});
