// Transfer from a raw clip, as upstream Transfer2.5's generate_img2world (spec control_maps.md
// "Where they sit in Transfer2.5 inference"): the clip resized to the model resolution, chunks of
// `chunkFrames` overlapping by `chunkOverlap`, a short chunk padded by reflection, edge and vis
// computed per chunk; on the tiny random checkpoints of world-fixtures.ts and the sample clip.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resizeU8Planes } from '../../src/engine/image.js';
import { readVideo } from '../../src/io/open-video.js';
import { type Video, sliceFrames } from '../../src/io/video.js';
import { detectAspect, modelSize } from '../../src/models/controlnet/resolution.js';
import { type TransferSpec, readTransferSpec } from '../../src/models/controlnet/spec.js';
import { transfer } from '../../src/pipelines/transfer.js';
import { controlMap, framesToVideo, planChunks, readFramesU8, reflectOrder, sliceFramesU8 } from '../../src/pipelines/world/control-input.js';
import { pickVideoFrames } from '../../src/pipelines/world/control-source.js';
import { cpu, webgpu } from '../harness.js';
import { SAMPLE, transferSpecJson, writeTransferFolder } from './world-fixtures.js';

describe('chunks (upstream _get_num_chunks, _pad_input_frames)', () => {
  it('starts each chunk chunkFrames - overlap frames after the one before, the last one cut at the clip end', () => {
    const starts = (n: number, c: number, o: number) => planChunks(n, c, o).chunks.map((k) => [k.start, k.end]);
    expect(starts(9, 5, 1)).toEqual([[0, 5], [4, 9]]);
    expect(starts(93, 93, 1)).toEqual([[0, 93]]);
    expect(starts(94, 93, 1)).toEqual([[0, 93], [92, 94]]);
    expect(starts(200, 93, 1)).toEqual([[0, 93], [92, 185], [184, 200]]);
    expect(starts(121, 93, 5)).toEqual([[0, 93], [88, 121]]);
    expect(starts(10, 5, 0)).toEqual([[0, 5], [5, 10]]);
    expect(starts(3, 5, 1)).toEqual([[0, 3]]);
  });

  it('pads a short chunk by reflection, its last frame shown twice; a single frame repeats', () => {
    expect(reflectOrder(3, 7)).toEqual([0, 1, 2, 2, 1, 1, 2]);
    expect(reflectOrder(2, 5)).toEqual([0, 1, 1, 1, 1]);
    expect(reflectOrder(4, 9)).toEqual([0, 1, 2, 3, 3, 2, 1, 1, 2]);
    expect(reflectOrder(1, 4)).toEqual([0, 0, 0, 0]);
    expect(reflectOrder(5, 5)).toEqual([0, 1, 2, 3, 4]);
    const long = reflectOrder(6, 93);
    expect(long).toHaveLength(93);
    expect(long.slice(0, 14)).toEqual([0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 1, 2, 3]);
  });

  it('refuses an overlap that is not below the chunk length, and empty clips', () => {
    expect(() => planChunks(20, 5, 5)).toThrow(/chunkOverlap: must be an integer in \[0, 4\]/);
    expect(() => planChunks(0, 5, 1)).toThrow(/frames: must be an integer >= 1/);
  });
});

describe('model resolution (VIDEO_RES_SIZE_INFO, detect_aspect_ratio)', () => {
  it('takes the nearest aspect ratio of the table and its size at the resolution', () => {
    expect(detectAspect(1920, 1080)).toBe('16,9');
    expect(detectAspect(640, 480)).toBe('4,3');
    expect(detectAspect(64, 64)).toBe('1,1');
    expect(detectAspect(1080, 1920)).toBe('9,16');
    expect(modelSize('720', 1920, 1080)).toEqual([1280, 704]);
    expect(modelSize('720', 640, 360)).toEqual([1280, 704]);
    expect(modelSize('720', 640, 480)).toEqual([960, 704]);
    expect(modelSize('480', 1920, 1080)).toEqual([768, 432]);
    expect(modelSize('720', 480, 640)).toEqual([704, 960]);
    expect(modelSize('96x64', 1920, 1080)).toEqual([96, 64]);
  });
});

describe('transfer from a raw clip (tiny random checkpoints)', () => {
  let tmp: string;
  let spec: TransferSpec;
  /** the sample clip as the run sees it: 64x64 shrunk to 32x32 with INTER_AREA, uint8 */
  let resized: Awaited<ReturnType<typeof readFramesU8>>;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cosmos-transfer-input-'));
    await writeTransferFolder(tmp);
    const json = {
      ...transferSpecJson(), video_path: SAMPLE, resolution: '32x32', preset_edge_threshold: 'low',
      controls: { edge: { control_weight: 0.6, ckpt_path: 'controlnet_edge' }, vis: { control_weight: 0.3, ckpt_path: 'controlnet_depth' } },
    };
    writeFileSync(join(tmp, 'clip.json'), JSON.stringify(json));
    spec = await readTransferSpec(join(tmp, 'clip.json'));
    resized = await readFramesU8(SAMPLE, { size: [32, 32], mode: 'area', backend: cpu, maxFrames: 10, what: 'sample' });
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('reads the spec: edge and vis without videos are computed from video_path', () => {
    expect(spec.videoPath).toBe(SAMPLE);
    expect(spec.controls.map((c) => [c.name, c.inputControl])).toEqual([['edge', null], ['vis', null]]);
    expect([spec.edgePreset, spec.blurPreset, spec.resolution]).toEqual(['low', null, '32x32']);
  });

  let chunked: Awaited<ReturnType<typeof transfer>>;
  const seen: { name: string; first: number; frames: Video }[] = [];

  it("generates the clip's frames in overlapping chunks; every map frame is handed out once, in order, as computed from the resized clip", async () => {
    chunked = await transfer({ spec, backend: cpu, frames: 9, chunkFrames: 5, onControlFrames: (name, frames, first) => void seen.push({ name, first, frames }) });
    expect(chunked.chunks).toEqual([{ start: 0, end: 5 }, { start: 4, end: 9 }]);
    expect([chunked.video.frames, chunked.video.height, chunked.video.width]).toEqual([9, 32, 32]);
    expect(chunked.latents.shape).toEqual([2, 16, 2, 4, 4]);
    expect(chunked.latents.data.every(Number.isFinite)).toBe(true);
    expect(chunked.controls).toEqual([{ name: 'edge', weight: 0.6, computed: 'low' }, { name: 'vis', weight: 0.3, computed: 'medium' }]);
    expect(chunked.steps).toHaveLength(4);
    expect(seen.map((s) => [s.name, s.first, s.frames.frames])).toEqual([['edge', 0, 5], ['vis', 0, 5], ['edge', 5, 4], ['vis', 5, 4]]);
    for (const [name, preset] of [['edge', 'low'], ['vis', 'medium']] as const) {
      const want = framesToVideo(await controlMap({ name, preset }, sliceFramesU8(resized, 0, 9), cpu));
      const got = seen.filter((s) => s.name === name);
      expect(got[0].frames.data).toEqual(sliceFrames(want, 0, 5).data);
      expect(got[1].frames.data).toEqual(sliceFrames(want, 5, 9).data);
    }
    // edges are 0 / 255 on three equal channels
    const edge = seen[0].frames;
    const hw = 32 * 32 * 5;
    expect(edge.data.every((v) => v === -1 || v === 1)).toBe(true);
    expect(edge.data.subarray(0, hw)).toEqual(edge.data.subarray(hw, 2 * hw));
    expect(edge.data.some((v) => v === 1)).toBe(true);
  });

  it('chunk 0 equals a run given the same maps as control videos', async () => {
    const given = (name: string) => seen.find((s) => s.name === name && s.first === 0)!.frames;
    const ready = await transfer({
      spec: { ...spec, videoPath: null }, backend: cpu, frames: 5, controlVideos: { edge: given('edge'), vis: given('vis') },
    });
    expect(ready.chunks).toEqual([{ start: 0, end: 5 }]);
    expect(ready.latents.data).toEqual(chunked.latents.data.subarray(0, ready.latents.data.length));
  });

  it('pads a clip shorter than a chunk by reflection and trims the output to it', async () => {
    const short = await transfer({ spec, backend: cpu, frames: 3, chunkFrames: 5, onControlFrames: (name, frames) => void seen.push({ name: `short-${name}`, first: 0, frames }) });
    expect(short.chunks).toEqual([{ start: 0, end: 3 }]);
    expect(short.video.frames).toBe(3);
    // the same as the maps padded [0, 1, 2, 2, 1] given as 5-frame control videos
    const padded = (name: string) => pickVideoFrames(seen.find((s) => s.name === `short-${name}`)!.frames, 0, reflectOrder(3, 5));
    const ready = await transfer({ spec: { ...spec, videoPath: null }, backend: cpu, frames: 5, controlVideos: { edge: padded('edge'), vis: padded('vis') } });
    expect(short.latents.data).toEqual(ready.latents.data);
  });

  it('with no overlap, a later chunk is the run of its own frames with its own seed stream', async () => {
    const apart = await transfer({ spec, backend: cpu, frames: 10, chunkFrames: 5, chunkOverlap: 0 });
    expect(apart.chunks).toEqual([{ start: 0, end: 5 }, { start: 5, end: 10 }]);
    const clip = await readVideo(SAMPLE);
    const second = await transfer({ spec, backend: cpu, input: sliceFrames(clip, 5, 10), seed: `${spec.seed}/chunk1`, chunkFrames: 5 });
    expect(second.latents.data).toEqual(apart.latents.data.subarray(second.latents.data.length));
  });

  it("resizes the spec's conditioning clip (input_video_path) to the model resolution with the raw clip", async () => {
    const plain = await transfer({ spec, backend: cpu, frames: 5, chunkFrames: 5 });
    const conditioned = await transfer({ spec: { ...spec, inputVideo: SAMPLE, numConditionalFrames: 1 }, backend: cpu, frames: 5, chunkFrames: 5 });
    expect(conditioned.latents.shape).toEqual(plain.latents.shape);
    expect(conditioned.latents.data).not.toEqual(plain.latents.data);
  });

  it('refuses depth without its video or model, seg without its video, computed controls without a clip, a chunk length the VAE cannot take', async () => {
    const extra = (name: string) => ({ ...spec, controls: [...spec.controls, { name, inputControl: null, weight: 0.2, checkpoint: spec.controls[0].checkpoint }] });
    await expect(transfer({ spec: extra('depth'), backend: cpu })).rejects.toThrow(/^controls\.depth: computing the depth control from the clip needs the Video-Depth-Anything model/);
    await expect(transfer({ spec: extra('seg'), backend: cpu })).rejects.toThrow(/controls\.seg\.input_control: missing: computing the seg control from the clip needs GroundingDINO \+ SAM2/);
    await expect(transfer({ spec: { ...spec, videoPath: null }, backend: cpu })).rejects.toThrow(/controls\.edge\.input_control: none given, and no raw clip/);
    await expect(transfer({ spec, backend: cpu, chunkFrames: 6 })).rejects.toThrow(/chunkFrames: must be 1 \+ k\*4 .* got 6; try 5 or 9/);
    await expect(transfer({ spec, backend: cpu, resolution: '33x32' })).rejects.toThrow(/width: must be a multiple of 16/);
  });

  it('computes the same maps on WebGPU, and resizes the same', async () => {
    const gpu = await webgpu();
    const onGpu = await readFramesU8(SAMPLE, { size: [32, 32], mode: 'area', backend: gpu, maxFrames: 10, what: 'sample' });
    expect(onGpu.data).toEqual(resized.data);
    // enlarging one axis and shrinking the other (INTER_AREA's linear path), frame by frame as OpenCV
    const raw = await readFramesU8(SAMPLE, { size: null, mode: 'area', backend: cpu, maxFrames: 3, what: 'sample' });
    const oracle = resizeU8Planes(raw.data, 3 * 3, 64, 64, 48, 96, 'area');
    for (const be of [cpu, gpu]) {
      const mixed = await readFramesU8(SAMPLE, { size: [96, 48], mode: 'area', backend: be, maxFrames: 3, what: 'sample' });
      expect([mixed.frames, mixed.height, mixed.width]).toEqual([3, 48, 96]);
      expect(mixed.data, be.name).toEqual(Uint8Array.from(oracle));
    }
    for (const [name, preset] of [['edge', 'medium'], ['vis', 'high'], ['vis', 'low']] as const) {
      const a = await controlMap({ name, preset }, resized, cpu);
      const b = await controlMap({ name, preset }, resized, gpu);
      expect(b.data, `${name} ${preset}`).toEqual(a.data);
    }
  });
});
