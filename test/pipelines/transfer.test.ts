// `cosmos-ts transfer` end to end on tiny random checkpoints built in a temp folder: a Transfer2.5
// base DiT, two ControlNets (one scalar weight, one weight map), the tiny trained CV tokenizer as the
// VAE, two short control clips and a spec file; plus the CLI's errors for mismatched controls and
// weights past the cap.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { cpu } from '../../src/engine/cpu/backend.js';
import type { Module } from '../../src/engine/module.js';
import { readVideo, writeVideo } from '../../src/io/open-video.js';
import { openSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { CosmosControlNetModel } from '../../src/models/controlnet/controlnet.js';
import { readTransferSpec } from '../../src/models/controlnet/spec.js';
import { CosmosTransformer3DModel } from '../../src/models/dit/transformer.js';
import { transfer } from '../../src/pipelines/transfer.js';

const TOKENIZER = fileURLToPath(new URL('../../weights/cosmos-tokenizer-tiny-cv4x8x8', import.meta.url));

const BASE_CONFIG = {
  _class_name: 'CosmosTransformer3DModel', in_channels: 17, out_channels: 16, num_attention_heads: 2, attention_head_dim: 16, num_layers: 4,
  mlp_ratio: 2.0, text_embed_dim: 32, adaln_lora_dim: 4, max_size: [8, 32, 32], patch_size: [1, 2, 2], rope_scale: [1.0, 3.0, 3.0],
  concat_padding_mask: true, extra_pos_embed_type: null, use_crossattn_projection: true, crossattn_proj_in_channels: 48,
  encoder_hidden_states_channels: 32, controlnet_block_every_n: 2, img_context_dim_in: 24, img_context_dim_out: 32, img_context_num_tokens: 4,
};
const CONTROLNET_CONFIG = {
  _class_name: 'CosmosControlNetModel', n_controlnet_blocks: 2, in_channels: 34, latent_channels: 18, model_channels: 32, num_attention_heads: 2,
  attention_head_dim: 16, mlp_ratio: 2.0, text_embed_dim: 32, adaln_lora_dim: 4, patch_size: [1, 2, 2], max_size: [8, 32, 32],
  rope_scale: [1.0, 3.0, 3.0], extra_pos_embed_type: null, img_context_dim_in: 24, img_context_dim_out: 32, use_crossattn_projection: true,
  crossattn_proj_in_channels: 48, encoder_hidden_states_channels: 32,
};

/** config.json + diffusion_pytorch_model.safetensors with seeded random parameters (norm weights near 1). */
async function writeRandomModel(dir: string, config: object, model: Module, seed: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const rng = seedrandom(seed);
  const tensors: Record<string, { dtype: 'f32'; shape: readonly number[]; raw: Float32Array }> = {};
  for (const p of model.parameters()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const isNorm = /norm[^.]*\.weight$/.test(p.key) && p.shape.length === 1;
    const fanIn = p.shape.length === 2 ? p.shape[1] : 1;
    const scale = 1 / Math.sqrt(fanIn);
    tensors[p.key] = { dtype: 'f32', shape: p.shape, raw: Float32Array.from({ length: n }, () => (isNorm ? 1 : 0) + (rng() * 2 - 1) * (isNorm ? 0.1 : scale)) };
  }
  await writeSafetensors(join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
}

/** A [3, T, H, W] clip of moving gradients in [-1, 1]. */
function clip(frames: number, h: number, w: number, phase: number) {
  const data = new Float32Array(3 * frames * h * w);
  for (let c = 0; c < 3; c++) {
    for (let t = 0; t < frames; t++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) data[((c * frames + t) * h + y) * w + x] = Math.sin((x + 2 * t + phase) / 5 + c) * Math.cos((y - t) / 7);
      }
    }
  }
  return { data, frames, height: h, width: w, fps: { num: 8, den: 1 } };
}

describe('cosmos-ts transfer (tiny random checkpoints, two controls)', () => {
  let tmp: string;
  let specPath: string;
  const H = 32;
  const W = 32;
  const T = 5;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cosmos-transfer-'));
    await writeRandomModel(join(tmp, 'transformer'), BASE_CONFIG, CosmosTransformer3DModel.fromConfigJson(BASE_CONFIG), 'base');
    await writeRandomModel(join(tmp, 'controlnet_depth'), CONTROLNET_CONFIG, CosmosControlNetModel.fromConfigJson(CONTROLNET_CONFIG), 'depth');
    await writeRandomModel(join(tmp, 'controlnet_edge'), CONTROLNET_CONFIG, CosmosControlNetModel.fromConfigJson(CONTROLNET_CONFIG), 'edge');
    await writeVideo(join(tmp, 'depth.y4m'), clip(T, H, W, 0));
    await writeVideo(join(tmp, 'edge.y4m'), clip(T, H, W, 3));
    await writeVideo(join(tmp, 'edge_short.y4m'), clip(T - 4, H, W, 3));
    // the edge weight: 0 on the left half, 0.5 on the right (pixel resolution; resized to the token grid)
    const map = Float32Array.from({ length: H * W }, (_, i) => (i % W < W / 2 ? 0 : 0.5));
    await writeSafetensors(join(tmp, 'edge_weight.safetensors'), { weight: { dtype: 'f32', shape: [H, W], raw: map } });
    const rng = seedrandom('text');
    const emb = () => Float32Array.from({ length: 5 * 48 }, () => rng() * 2 - 1);
    await writeSafetensors(join(tmp, 'prompt.safetensors'), {
      prompt_embeds: { dtype: 'f32', shape: [1, 5, 48], raw: emb() }, negative_prompt_embeds: { dtype: 'f32', shape: [1, 5, 48], raw: emb() },
    });
    specPath = join(tmp, 'spec.json');
    writeFileSync(specPath, JSON.stringify({
      base_checkpoint: 'transformer', tokenizer: TOKENIZER, embeddings: 'prompt.safetensors', seed: 7, num_steps: 2, guidance: 2,
      controls: {
        depth: { input_control: 'depth.y4m', control_weight: 0.4, ckpt_path: 'controlnet_depth' },
        edge: { input_control: 'edge.y4m', control_weight: 'edge_weight.safetensors', ckpt_path: 'controlnet_edge' },
      },
    }));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('runs the spec through the CLI and writes the clip', async () => {
    const out = join(tmp, 'out.y4m');
    const latentsOut = join(tmp, 'latents.safetensors');
    const logs: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((m) => { logs.push(String(m)); });
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let code: number;
    try {
      code = await main(['transfer', '--spec', specPath, '--out', out, '--latents-out', latentsOut, '--backend', 'cpu', '--json']);
    } finally {
      log.mockRestore();
      err.mockRestore();
      stderr.mockRestore();
    }
    expect(code).toBe(0);
    const summary = JSON.parse(logs[logs.length - 1]);
    expect(summary.controls.map((c: { name: string }) => c.name)).toEqual(['depth', 'edge']);
    expect(summary.max_weight_sum).toBeCloseTo(0.9, 6);
    expect(summary.latent_shape).toEqual([1, 16, 2, 4, 4]);
    const v = await readVideo(out);
    expect([v.frames, v.height, v.width]).toEqual([T, H, W]);
    const lat = await openSafetensors(latentsOut);
    const z = await lat.read('latents');
    await lat.close();
    expect([...(z.raw as Float32Array)].every(Number.isFinite)).toBe(true);
  });

  it('is deterministic per seed, and the controls steer the result', async () => {
    const spec = readTransferSpec(specPath);
    const a = await transfer(spec, cpu, { steps: 1, guidance: 1 });
    const b = await transfer(spec, cpu, { steps: 1, guidance: 1 });
    expect(b.latents.data).toEqual(a.latents.data);
    const off = await transfer({ ...spec, controls: spec.controls.map((c) => ({ ...c, weight: 0 })) }, cpu, { steps: 1, guidance: 1 });
    const diff = a.latents.data.reduce((m, x, i) => Math.max(m, Math.abs(x - off.latents.data[i])), 0);
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('gives the same latents on the WebGPU backend', async () => {
    const { webgpu } = await import('../../src/engine/webgpu/backend.js');
    const spec = readTransferSpec(specPath);
    const a = await transfer(spec, cpu, { steps: 2, guidance: 2 });
    const b = await transfer(spec, await webgpu(), { steps: 2, guidance: 2 });
    let worst = 0;
    a.latents.data.forEach((x, i) => { worst = Math.max(worst, Math.abs(x - b.latents.data[i]) / (1e-3 + Math.abs(x))); });
    expect(worst).toBeLessThan(1e-3);
    expect(b.video.frames).toBe(a.video.frames);
  });

  it('reports mismatched control videos and weights past the cap, naming the control', async () => {
    const run = async (spec: object, extra: string[] = []) => {
      const p = join(tmp, `spec-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(p, JSON.stringify(spec));
      const errs: string[] = [];
      const err = vi.spyOn(console, 'error').mockImplementation((m) => { errs.push(String(m)); });
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        return { code: await main(['transfer', '--spec', p, '--latents-out', join(tmp, 'l.safetensors'), '--backend', 'cpu', ...extra]), errs };
      } finally {
        err.mockRestore();
        log.mockRestore();
        stderr.mockRestore();
      }
    };
    const base = {
      base_checkpoint: 'transformer', tokenizer: TOKENIZER, embeddings: 'prompt.safetensors', num_steps: 1, guidance: 1,
      controls: {
        depth: { input_control: 'depth.y4m', control_weight: 0.7, ckpt_path: 'controlnet_depth' },
        edge: { input_control: 'edge_short.y4m', control_weight: 0.2, ckpt_path: 'controlnet_edge' },
      },
    };
    const short = await run(base);
    expect(short.code).toBe(1);
    expect(short.errs.join('\n')).toMatch(/control "edge": control video .*edge_short\.y4m is 1 frames .* same size and frame count/);
    const over = { ...base, controls: { ...base.controls, edge: { ...base.controls.edge, input_control: 'edge.y4m', control_weight: 0.6 } } };
    const capped = await run(over);
    expect(capped.code).toBe(1);
    expect(capped.errs.join('\n')).toMatch(/sum to 1\.3 .*depth 0\.7 \+ edge 0\.6.*past the cap 1/);
    expect((await run(over, ['--normalize-weights'])).code).toBe(0);
    const badSpec = await run({ ...base, num_steps: 0 });
    expect(badSpec.code).toBe(1);
    expect(badSpec.errs.join('\n')).toMatch(/num_steps: must be an integer >= 1/);
  });
});
