// Conformance kinds of the AR diffusion decoder (spec ar_decoder.md §5):
//   ar_decoder.conditioning  chunking of an AR token grid, the condition / uncondition ids, the
//                            token condition and the network input of each chunk
//   ar_decoder.forward       DiffusionDecoderGeneralDIT.forward -> sample (+ taps at upstream paths)
//   ar_decoder.sampling      the per-chunk EDM Euler loop -> sigmas, timesteps, latents (+ step taps)
// Read from the case folder alone: config.json, model.safetensors, the inputs and args.
import type { Backend } from '../../engine/backend.js';
import { TapRecorder, capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { splitTokenChunks } from '../../models/ar-decoder/conditioning.js';
import { ArDecoderFamily, type DiffusionDecoderDiT } from '../../models/ar-decoder/model.js';
import { type DecoderStepTap, decoderSigmas, sampleDecoderChunk } from '../../models/ar-decoder/sample.js';
import { patchGrid, rope3dAngles } from '../../models/dit/rope3d.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type KindResult, registerKind, shaped } from '../registry.js';

function loadModel(c: FixtureCase, backend: Backend): Promise<DiffusionDecoderDiT> {
  return c.module(ArDecoderFamily, backend);
}

function numArg(c: FixtureCase, key: string, def?: number): number {
  const v = c.args[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CaseFormatError(`${c.dir}: args.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

async function idsInput(c: FixtureCase, name: string, backend: Backend): Promise<Tensor> {
  const t = await c.inputTensor(name, backend);
  if (t.dtype !== 'i32') throw new CaseFormatError(`${c.dir}: input.${name} must hold integer token ids, got ${t.dtype}`);
  return t;
}

/** fps from input.fps ([1]), else args.fps, else 24 (the pipeline's). */
async function fpsOf(c: FixtureCase): Promise<number> {
  if (c.hasInput('fps')) {
    const v = (await c.input('fps')).raw;
    if (v.length !== 1) throw new CaseFormatError(`${c.dir}: input.fps must hold one value, got ${v.length}`);
    return Number(v[0]);
  }
  return numArg(c, 'fps', 24);
}

// ------------------------------------------------------------------ ar_decoder.forward

/**
 * The recorded taps in upstream's layouts: blocks THWBD ([T', H', W', B, D] from [B, N, D]) and
 * the RoPE angles `pos_embedder` ([N, 1, 1, head_dim], the [t | h | w] angles twice) the network
 * turns into its cos / sin tables.
 */
function upstreamTaps(c: FixtureCase, model: DiffusionDecoderDiT, rec: TapRecorder, grid: [number, number, number], fps: number): TapRecorder {
  const out = new TapRecorder(new Set(c.tapNames));
  const [Tp, Hp, Wp] = grid;
  for (const { path, tensor } of rec.records) {
    if (/^blocks\.block\d+$/.test(path)) {
      const [B, , D] = tensor.shape;
      out.record(path, F.permute(tensor.reshape([B, Tp, Hp, Wp, D]), [1, 2, 3, 0, 4]));
    } else {
      out.record(path, tensor);
    }
  }
  if (out.wants('pos_embedder')) {
    const settings = model.pos_embedder.cache.settings;
    const half = settings.headDim / 2;
    const angles = rope3dAngles(settings, grid, fps);
    const N = angles.length / half;
    const full = new Float32Array(N * settings.headDim);
    for (let n = 0; n < N; n++) {
      const row = angles.subarray(n * half, (n + 1) * half);
      full.set(row, n * settings.headDim);
      full.set(row, n * settings.headDim + half);
    }
    out.record('pos_embedder', F.fromArray(model.x_embedder.proj.weight.t.backend, full, [N, 1, 1, settings.headDim]));
  }
  return out;
}

registerKind('ar_decoder.forward', async (c, backend): Promise<KindResult> => {
  const model = await loadModel(c, backend);
  try {
    const x = await c.inputTensor('x', backend);
    const timesteps = await c.inputTensor('timesteps', backend);
    const crossattn = await c.inputTensor('crossattn_emb', backend);
    const ids = await idsInput(c, 'latent_condition', backend);
    const paddingMask = c.hasInput('padding_mask') ? await c.inputTensor('padding_mask', backend) : null;
    const fps = await fpsOf(c);
    const { result, taps } = await capture(c.tapNames, () => model.forward(x, timesteps, crossattn, ids, { fps, paddingMask }));
    try {
      const grid = patchGrid(x.shape.slice(2), [model.config.patchTemporal, model.config.patchSpatial, model.config.patchSpatial]);
      return { outputs: { sample: result }, taps: upstreamTaps(c, model, taps, grid, fps) };
    } finally {
      taps.dispose();
    }
  } finally {
    model.dispose();
  }
});

// ------------------------------------------------------------------ ar_decoder.conditioning

registerKind('ar_decoder.conditioning', async (c, backend): Promise<KindResult> => {
  const model = await loadModel(c, backend);
  try {
    const indices = await idsInput(c, 'indices', backend);
    if (indices.rank !== 3) throw new CaseFormatError(`${c.dir}: input.indices must be [T, h, w], got ${JSON.stringify(indices.shape)}`);
    const x = await c.inputTensor('x', backend);
    if (x.rank !== 6 || x.shape[1] !== 1) throw new CaseFormatError(`${c.dir}: input.x must be [chunks, 1, C, n, H, W], got ${JSON.stringify(x.shape)}`);
    const paddingMask = c.hasInput('padding_mask') ? await c.inputTensor('padding_mask', backend) : null;
    const n = c.args.latent_frames_per_chunk !== undefined
      ? numArg(c, 'latent_frames_per_chunk')
      : Math.floor((numArg(c, 'dd_train_num_video_frames', 57) - 1) / 8) + 1;
    const overlap = numArg(c, 'overlap', 2);
    const [T, h, w] = indices.shape;
    const chunks = splitTokenChunks(indices.reshape([1, 1, T, h, w]), n, overlap);
    if (chunks.length !== x.shape[0]) {
      throw new CaseFormatError(`${c.dir}: ${T} token frames make ${chunks.length} chunks of ${n} (overlap ${overlap}); input.x has ${x.shape[0]}`);
    }
    const [N, , C, nx, H, W] = x.shape;
    const stack = (ts: Tensor[]) => F.concat(ts.map((t) => t.reshape([1, 1, ...t.shape.slice(1)])), 0);
    const zeroIds = F.zeros(backend, chunks[0].shape, 'i32');
    const cond = chunks.map((ids) => model.tokenCondition(ids, H, W));
    const uncond = chunks.map(() => model.tokenCondition(zeroIds, H, W));
    const netInput = chunks.map((ids, k) => model.inputChannels(F.slice(x, 0, k, k + 1).reshape([1, C, nx, H, W]), ids, paddingMask));
    return {
      outputs: {
        token_chunks: stack(chunks),
        latent_condition: stack(chunks),
        latent_condition_uncond: F.zeros(backend, [N, ...chunks[0].shape], 'i32'),
        token_condition: stack(cond),
        token_condition_uncond: stack(uncond),
        net_input: stack(netInput),
      },
      uncomparedTaps: {
        latent_condition_sigma: 'upstream draws it with torch.rand and the released network does not read it (diffusion_decoder_condition_on_sigma false)',
      },
    };
  } finally {
    model.dispose();
  }
});

// ------------------------------------------------------------------ ar_decoder.sampling

/** Per-step tensors kept on the device, stacked [steps, ...] at the end. */
function stepTaps(c: FixtureCase) {
  const names: Record<string, keyof DecoderStepTap> = { xt: 'xt', net_output_cond: 'netOutputCond', net_output_uncond: 'netOutputUncond', net_output_guided: 'netOutputGuided' };
  const wanted = Object.keys(names).filter((k) => c.tapNames.includes(k));
  const kept = new Map<string, Tensor[]>(wanted.map((k) => [k, []]));
  return {
    onStep: (s: DecoderStepTap) => {
      for (const k of wanted) {
        const t = s[names[k]] as Tensor;
        kept.get(k)!.push(t.reshape([1, ...t.shape]).keep());
      }
    },
    recorder(): TapRecorder {
      const rec = new TapRecorder(new Set(wanted));
      for (const [k, ts] of kept) if (ts.length) rec.record(k, F.concat(ts, 0));
      return rec;
    },
    dispose() {
      for (const ts of kept.values()) for (const t of ts) t.dispose();
    },
  };
}

registerKind('ar_decoder.sampling', async (c, backend): Promise<KindResult> => {
  const model = await loadModel(c, backend);
  const taps = stepTaps(c);
  try {
    const ids = await idsInput(c, 'token_chunk', backend);
    const noise = await c.inputTensor('noise', backend);
    if (noise.rank !== 5) throw new CaseFormatError(`${c.dir}: input.noise must be [1, C, n, H, W], got ${JSON.stringify(noise.shape)}`);
    const [, channels, frames, height, width] = noise.shape;
    const steps = numArg(c, 'num_steps', 15);
    const latents = await sampleDecoderChunk(model, {
      ids,
      text: await c.inputTensor('t5_text_embeddings', backend),
      latent: { channels, frames, height, width },
      noise,
      steps,
      guidance: numArg(c, 'guidance', 1.8),
      fps: numArg(c, 'fps', 24),
      paddingMask: c.hasInput('padding_mask') ? await c.inputTensor('padding_mask', backend) : null,
      tap: taps.onStep,
    });
    const { sigmas, timesteps } = decoderSigmas(steps, model.config.sigmaData);
    return {
      outputs: { sigmas: shaped(sigmas, [sigmas.length]), timesteps: shaped(timesteps, [timesteps.length]), latents },
      taps: taps.recorder(),
    };
  } finally {
    taps.dispose();
    model.dispose();
  }
});
