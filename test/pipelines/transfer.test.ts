// transfer() as a library call on tiny random checkpoints built in a temp folder (world-fixtures.ts):
// a Transfer2.5 base DiT, two ControlNets (one scalar weight, one weight map), the tiny trained CV
// tokenizer as the VAE, two short control clips and a spec file; the errors for mismatched
// controls and weights past the cap, naming the control.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors.js';
import { readVideo } from '../../src/io/open-video.js';
import { ControlShapeError, ControlWeightError } from '../../src/models/controlnet/multi.js';
import { ControlSpecError, type TransferSpec, readTransferSpec } from '../../src/models/controlnet/spec.js';
import type { ProgressEvent } from '../../src/pipelines/progress.js';
import { transfer } from '../../src/pipelines/transfer.js';
import { DEFAULT_NEGATIVE_PROMPT } from '../../src/pipelines/world/prompt.js';
import { ReasonPromptEncoder } from '../../src/models/vlm/prompt-embeds.js';
import { type TensorToWrite, openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { FIXTURES, transferSpecJson, writeTransferFolder } from './world-fixtures.js';
import { cpu, webgpu } from '../harness.js';

describe('transfer (tiny random checkpoints, two controls)', () => {
  let tmp: string;
  let spec: TransferSpec;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cosmos-transfer-'));
    spec = await readTransferSpec(await writeTransferFolder(tmp));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** The spec of a variant of the test spec, written beside it. */
  async function variant(json: Record<string, unknown>): Promise<TransferSpec> {
    const p = join(tmp, `spec-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(p, JSON.stringify(json));
    return readTransferSpec(p);
  }

  it('runs the spec: a clip of the control videos\' size, one record and one progress event per step', async () => {
    const events: ProgressEvent[] = [];
    const r = await transfer({ spec, backend: cpu, onProgress: (e) => events.push(e) });
    expect(r.controls.map((c) => c.name)).toEqual(['depth', 'edge']);
    expect(r.maxWeightSum).toBeCloseTo(0.9, 6);
    expect(r.latents.shape).toEqual([1, 16, 2, 4, 4]);
    expect(r.latents.data.every(Number.isFinite)).toBe(true);
    expect([r.video.frames, r.video.height, r.video.width]).toEqual([5, 32, 32]);
    expect(r.settings).toMatchObject({ seed: 7, steps: 2, guidance: 2, frames: 5, height: 32, width: 32 });
    expect(r.steps.map((s) => s.step)).toEqual([0, 1]);
    expect(events.map((e) => [e.stage, e.done, e.total])).toEqual([
      ['prompt', 2, 2], ['condition', 0, 2], ['condition', 1, 2], ['condition', 2, 2], ['denoise', 1, 2], ['denoise', 2, 2], ['decode', 0, 1], ['decode', 1, 1],
    ]);
  });

  it('is deterministic per seed, the controls steer the result, and control clips may be given in memory', async () => {
    const a = await transfer({ spec, backend: cpu, steps: 1, guidance: 1 });
    const b = await transfer({ spec, backend: cpu, steps: 1, guidance: 1 });
    expect(b.latents.data).toEqual(a.latents.data);
    const off = await transfer({ spec: { ...spec, controls: spec.controls.map((c) => ({ ...c, weight: 0 })) }, backend: cpu, steps: 1, guidance: 1 });
    const diff = a.latents.data.reduce((m, x, i) => Math.max(m, Math.abs(x - off.latents.data[i])), 0);
    expect(diff).toBeGreaterThan(1e-4);
    const controlVideos = { depth: await readVideo(join(tmp, 'depth.y4m')), edge: await readVideo(join(tmp, 'edge.y4m')) };
    const given = await transfer({ spec, backend: cpu, steps: 1, guidance: 1, controlVideos });
    expect(given.latents.data).toEqual(a.latents.data);
  });

  it('gives the same latents on the WebGPU backend', async () => {
    const a = await transfer({ spec, backend: cpu, steps: 2, guidance: 2 });
    const b = await transfer({ spec, backend: await webgpu(), steps: 2, guidance: 2 });
    let worst = 0;
    a.latents.data.forEach((x, i) => {
      worst = Math.max(worst, Math.abs(x - b.latents.data[i]) / (1e-3 + Math.abs(x)));
    });
    expect(worst).toBeLessThan(1e-3);
    expect(b.video.frames).toBe(a.video.frames);
  });

  it("encodes a prompt with the spec's Reason1 text_encoder (its tokenizer/ beside it) before the models load", async () => {
    // a Reason1 prompt encoder with fewer layers and the same names: the prompt_embeds fixture's
    // Qwen2.5-VL text model cut to its first layer, so its width (1 x 48) is the base's text width
    const src = join(FIXTURES, 'prompt_embeds/batch_negative');
    const te = join(tmp, 'text_encoder');
    mkdirSync(te, { recursive: true });
    mkdirSync(join(tmp, 'tokenizer'), { recursive: true });
    const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    writeFileSync(join(te, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 1 }));
    const f = await openSafetensors(join(src, 'model.safetensors'));
    const kept: Record<string, TensorToWrite> = {};
    for (const name of f.names.filter((n) => !/^model\.layers\.[12]\./.test(n))) kept[name] = await f.read(name);
    await f.close();
    await writeSafetensors(join(te, 'model.safetensors'), kept);
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(join(src, file), join(tmp, 'tokenizer', file));
    const { embeddings: _, ...rest } = transferSpecJson();
    const withEncoder = await variant({ ...rest, text_encoder: 'text_encoder', prompt: 'A robot arm picks up a red cube.' });
    const events: ProgressEvent[] = [];
    const r = await transfer({ spec: withEncoder, backend: cpu, steps: 1, returnEmbeddings: true, onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.stage === 'prompt').map((e) => [e.done, e.detail?.source])).toEqual([[0, 'Reason1'], [1, 'Reason1'], [2, 'Reason1']]);
    const encoder = await ReasonPromptEncoder.load(te, cpu, { tokenizerDir: join(tmp, 'tokenizer') });
    try {
      const want = encoder.encode(['A robot arm picks up a red cube.']).embeddings;
      expect(r.embeddings!.prompt.shape).toEqual([1, 512, 48]);
      expect(r.embeddings!.prompt.data).toEqual(await want.read());
      want.dispose();
      const neg = encoder.encode([DEFAULT_NEGATIVE_PROMPT]).embeddings;
      expect(r.embeddings!.negative!.data).toEqual(await neg.read());
      neg.dispose();
    } finally {
      encoder.dispose();
    }
    expect(r.video.data.every(Number.isFinite)).toBe(true);
  });

  it('reports mismatched control videos and weights past the cap, naming the control', async () => {
    const base = transferSpecJson();
    const json = (depth: number, edge: Record<string, unknown>) => ({
      ...base, num_steps: 1, guidance: 1,
      controls: { depth: { ...base.controls.depth, control_weight: depth }, edge: { ...base.controls.edge, ...edge } },
    });
    const short = await variant(json(0.7, { input_control: 'edge_short.y4m', control_weight: 0.2 }));
    const err = await transfer({ spec: short, backend: cpu }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlShapeError);
    expect((err as Error).message).toMatch(/control "edge": control video .*edge_short\.y4m is 1 frames .* same size and frame count/);
    const over = await variant(json(0.7, { control_weight: 0.6 }));
    await expect(transfer({ spec: over, backend: cpu })).rejects.toThrow(ControlWeightError);
    await expect(transfer({ spec: over, backend: cpu })).rejects.toThrow(/sum to 1\.3 .*depth 0\.7 \+ edge 0\.6.*past the cap 1/);
    const normalized = await transfer({ spec: { ...over, weightOverCap: 'normalize' }, backend: cpu });
    expect(normalized.maxWeightSum).toBeCloseTo(1.3, 6);
    await expect(variant({ ...base, num_steps: 0 })).rejects.toThrow(ControlSpecError);
    await expect(variant({ ...base, num_steps: 0 })).rejects.toThrow(/num_steps: must be an integer >= 1/);
  });

  it('stops with CancelledError before loading any weights when its signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new CancelledError('not now'));
    await expect(transfer({ spec, backend: cpu, signal: ac.signal })).rejects.toThrow(CancelledError);
  });
});
