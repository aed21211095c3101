// Conformance kinds of the Cosmos DiT (fixtures README; spec dit.md §10):
//   dit.forward         CosmosTransformer3DModel.forward -> sample (+ taps at module paths)
//   dit.rope3d          the 3D RoPE tables for the settings in args.entries -> cos.<i>, sin.<i>
//   dit.edm_sampling    Cosmos-1.0 text2world EDM loop -> sigmas, timesteps, latents
//   dit.flow_sampling   Predict2.5 flow / UniPC loop -> sigmas, timesteps, latents
// Everything is read from the case folder: config.json, model.safetensors (or the weights file
// case.json names), scheduler_config.json (or args.scheduler_config), args.
import type { Backend } from '../../engine/backend.js';
import { TapRecorder, capture } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { readJsonObjectIfPresent } from '../../io/files.js';
import type { Triple } from '../../models/dit/config.js';
import { patchGrid, rope3dTables } from '../../models/dit/rope3d.js';
import type { DenoiseStep } from '../../models/dit/samplers/common.js';
import { type EdmSampleOptions, type SampleResult, parseEdmSchedulerConfig, sampleEdm } from '../../models/dit/samplers/edm.js';
import { parseUniPCConfig, sampleFlowUniPC } from '../../models/dit/samplers/unipc.js';
import { type CosmosTransformer3DModel, CosmosTransformer3DFamily } from '../../models/dit/transformer.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type OutputValue, registerKind, shaped } from '../registry.js';

function loadModel(c: FixtureCase, backend: Backend): Promise<CosmosTransformer3DModel> {
  return c.module(CosmosTransformer3DFamily, backend, { file: c.files.transformer });
}

async function optionalInput(c: FixtureCase, backend: Backend, name: string): Promise<Tensor | null> {
  return c.hasInput(name) ? c.inputTensor(name, backend) : null;
}

function fpsArg(v: unknown, dir: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !(v > 0)) throw new CaseFormatError(`${dir}: args.fps must be a positive number or null, got ${JSON.stringify(v)}`);
  return v;
}

function numArg(c: FixtureCase, key: string, def?: number): number {
  const v = c.args[key] ?? def;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CaseFormatError(`${c.dir}: args.${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

// ------------------------------------------------------------------ dit.forward

registerKind('dit.forward', async (c, backend) => {
  const model = await loadModel(c, backend);
  try {
    const inputs = {
      hiddenStates: await c.inputTensor('hidden_states', backend),
      timestep: await c.inputTensor('timestep', backend),
      encoderHiddenStates: await c.inputTensor('encoder_hidden_states', backend),
      conditionMask: await optionalInput(c, backend, 'condition_mask'),
      paddingMask: await optionalInput(c, backend, 'padding_mask'),
      imageContext: await optionalInput(c, backend, 'img_context'),
      fps: fpsArg(c.args.fps, c.dir),
    };
    const { result, taps } = await capture(c.tapNames, () => model.forward(inputs));
    return { outputs: { sample: result }, taps };
  } finally {
    model.dispose();
  }
});

// ------------------------------------------------------------------ dit.rope3d

function tripleOf(v: unknown, what: string, dir: string): Triple {
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number')) {
    throw new CaseFormatError(`${dir}: ${what} must be three numbers, got ${JSON.stringify(v)}`);
  }
  return v as unknown as Triple;
}

registerKind('dit.rope3d', async (c) => {
  const entries = (c.args.entries ?? (c.config as Record<string, unknown> | null)?.entries) as unknown;
  if (!Array.isArray(entries) || entries.length === 0) throw new CaseFormatError(`${c.dir}: dit.rope3d needs args.entries, a list of settings`);
  const outputs: Record<string, OutputValue> = {};
  entries.forEach((raw, i) => {
    const e = raw as Record<string, unknown>;
    const headDim = e.head_dim;
    if (typeof headDim !== 'number') throw new CaseFormatError(`${c.dir}: entries[${i}].head_dim must be a number`);
    const patchSize = tripleOf(e.patch_size ?? [1, 2, 2], `entries[${i}].patch_size`, c.dir);
    const settings = {
      headDim,
      // CosmosRotaryPosEmbed's default max_size when the entry names none
      maxSize: tripleOf(e.max_size ?? [128, 240, 240], `entries[${i}].max_size`, c.dir),
      patchSize,
      ropeScale: tripleOf(e.rope_scale ?? [2, 1, 1], `entries[${i}].rope_scale`, c.dir),
      baseFps: typeof c.args.base_fps === 'number' ? c.args.base_fps : undefined,
    };
    const grid = patchGrid(tripleOf(e.latent_thw, `entries[${i}].latent_thw`, c.dir), patchSize);
    const t = rope3dTables(settings, grid, fpsArg(e.fps, c.dir));
    // one row per token of the patch grid, head_dim columns
    const rows = grid.reduce((a, b) => a * b, 1);
    outputs[`cos.${i}`] = shaped(t.cos, [rows, t.cos.length / rows]);
    outputs[`sin.${i}`] = shaped(t.sin, [rows, t.sin.length / rows]);
  });
  return { outputs };
});

// ------------------------------------------------------------------ sampling loops

async function schedulerJson(c: FixtureCase): Promise<Record<string, unknown>> {
  const file = c.files.scheduler_config ?? c.files.scheduler ?? 'scheduler_config.json';
  const json = await readJsonObjectIfPresent(c.path(file), file);
  if (json) return json;
  const a = c.args.scheduler_config;
  if (a && typeof a === 'object') return a as Record<string, unknown>;
  throw new CaseFormatError(`${c.dir}: no scheduler_config.json and no args.scheduler_config`);
}

/** Records step{i}.latents / model_out_cond / model_out_uncond for the taps the case lists. */
function stepRecorder(c: FixtureCase): { taps: TapRecorder; onStep: (s: DenoiseStep) => void } {
  const taps = new TapRecorder(new Set(c.tapNames));
  const put = (path: string, t: Tensor | null) => {
    if (t && taps.wants(path)) taps.record(path, t);
  };
  return {
    taps,
    onStep: (s) => {
      put(`step${s.step}.latents`, s.latents);
      put(`step${s.step}.model_out_cond`, s.modelOutCond);
      put(`step${s.step}.model_out_uncond`, s.modelOutUncond);
    },
  };
}

/** The pipelines' padding mask: zeros [1, 1, height, width] (pixels), or latent size when not given. */
function pipelinePaddingMask(c: FixtureCase, backend: Backend, noise: Tensor): Tensor {
  const h = typeof c.args.height === 'number' ? c.args.height : noise.shape[3];
  const w = typeof c.args.width === 'number' ? c.args.width : noise.shape[4];
  return F.zeros(backend, [1, 1, h, w]);
}

/** What every sampling loop of a case takes (noise, text, guidance, steps, padding mask, step taps). */
type LoopInputs = Pick<EdmSampleOptions, 'noise' | 'promptEmbeds' | 'negativePromptEmbeds' | 'guidanceScale' | 'steps' | 'paddingMask' | 'onStep'>;

/** Run a sampling case: the model and the loop's common inputs from the case; sigmas, timesteps, latents and step taps out. */
function samplingKind(kind: string, loop: (c: FixtureCase, backend: Backend, model: CosmosTransformer3DModel, common: LoopInputs) => Promise<SampleResult>): void {
  registerKind(kind, async (c, backend) => {
    const model = await loadModel(c, backend);
    const rec = stepRecorder(c);
    try {
      const noise = await c.inputTensor('noise', backend);
      const result = await loop(c, backend, model, {
        noise,
        promptEmbeds: await c.inputTensor('prompt_embeds', backend),
        negativePromptEmbeds: await optionalInput(c, backend, 'negative_prompt_embeds'),
        guidanceScale: numArg(c, 'guidance_scale', 7),
        steps: numArg(c, 'num_inference_steps', 36),
        paddingMask: pipelinePaddingMask(c, backend, noise),
        onStep: rec.onStep,
      });
      return { outputs: { sigmas: shaped(result.sigmas, [result.sigmas.length]), timesteps: shaped(result.timesteps, [result.timesteps.length]), latents: result.latents }, taps: rec.taps };
    } catch (e) {
      rec.taps.dispose();
      throw e;
    } finally {
      model.dispose();
    }
  });
}

samplingKind('dit.edm_sampling', async (c, _backend, model, common) => {
  const scheduler = parseEdmSchedulerConfig(await schedulerJson(c));
  if (numArg(c, 's_churn', 0) !== 0) throw new CaseFormatError(`${c.dir}: s_churn > 0 (stochastic EDM steps) is not implemented`);
  return sampleEdm(model, { ...common, fps: c.args.fps === undefined ? 30 : fpsArg(c.args.fps, c.dir), scheduler });
});

samplingKind('dit.flow_sampling', async (c, backend, model, common) => {
  const scheduler = parseUniPCConfig(await schedulerJson(c));
  const mode = typeof c.args.mode === 'string' ? c.args.mode : c.hasInput('cond_latents') ? 'video2world' : 'text2world';
  let conditioning = null;
  if (mode !== 'text2world') {
    const n = c.args.num_cond_latent_frames ?? c.args.num_latent_conditional_frames ?? (mode === 'image2world' ? 1 : undefined);
    if (typeof n !== 'number') throw new CaseFormatError(`${c.dir}: ${mode} needs args.num_cond_latent_frames`);
    conditioning = { latents: await c.inputTensor('cond_latents', backend), numCondLatentFrames: n };
  }
  return sampleFlowUniPC(model, {
    ...common, scheduler, conditioning, conditionalFrameTimestep: numArg(c, 'conditional_frame_timestep', 0.0001), fps: fpsArg(c.args.fps, c.dir),
  });
});
