// Conformance kinds of the Cosmos Transfer ControlNet (fixtures README; spec controlnet.md):
//   controlnet.forward        CosmosControlNetModel.forward -> residual.<i> (+ taps at its module paths)
//   controlnet.transfer       the base DiT with the case's residuals injected (computed by the
//                             ControlNet when the case gives none) -> prediction, prediction_no_control
//   controlnet.multi_control  several ControlNets, weighted (scalar or token-grid map), summed ->
//                             residual.<i>, prediction, prediction_control0_only
// Everything comes from the case's own files: config.json, the files case.json lists (classified by
// their content: a config's _class_name, a checkpoint's keys), case.safetensors inputs and args.
import type { Backend } from '../../engine/backend.js';
import { TapRecorder, capture } from '../../engine/module.js';
import type { Tensor } from '../../engine/tensor.js';
import { isFile, readJsonObject } from '../../io/files.js';
import { openSafetensors } from '../../io/safetensors.js';
import { type ControlNetForwardInputs, type CosmosControlNetModel, CosmosControlNetFamily } from '../../models/controlnet/controlnet.js';
import { type ControlBranch, MultiControlNet } from '../../models/controlnet/multi.js';
import { type CosmosTransformer3DModel, CosmosTransformer3DFamily } from '../../models/dit/transformer.js';
import { CaseFormatError, type FixtureCase } from '../case.js';
import { type OutputValue, registerKind } from '../registry.js';

// ------------------------------------------------------------------ the case's files

/** Files the case lists (names or role -> name maps), plus the standard ones, that exist in its folder. */
async function listedFiles(c: FixtureCase): Promise<string[]> {
  const names = new Set<string>(['config.json', 'model.safetensors']);
  for (const [k, v] of Object.entries(c.files)) {
    names.add(k);
    names.add(v);
  }
  const out: string[] = [];
  for (const n of names) if (!n.includes('/') && !n.includes('\\') && (await isFile(c.path(n)))) out.push(n);
  return out.sort();
}

/** The first listed JSON file whose _class_name is `cls` (config.json first). */
async function configOf(c: FixtureCase, cls: string): Promise<Record<string, unknown> | null> {
  const jsons = (await listedFiles(c)).filter((n) => n.endsWith('.json') && n !== 'case.json');
  jsons.sort((a, b) => Number(b === 'config.json') - Number(a === 'config.json'));
  for (const n of jsons) {
    const j = await readJsonObject(c.path(n), n);
    if (j._class_name === cls) return j;
  }
  return null;
}

interface WeightFiles {
  /** ControlNet checkpoints, in control order */
  controlnets: string[];
  transformer: string | null;
}

/**
 * The listed safetensors files by their keys: `control_blocks.*` is a ControlNet, `transformer_blocks.*`
 * the base. ControlNet order: model.safetensors (the case's parameters) first, then the others by
 * the number in their names (controlnet_1, controlnet_2, ...), then by name.
 */
async function weightFiles(c: FixtureCase): Promise<WeightFiles> {
  const controlnets: string[] = [];
  let transformer: string | null = null;
  for (const n of (await listedFiles(c)).filter((f) => f.endsWith('.safetensors') && f !== 'case.safetensors')) {
    const st = await openSafetensors(c.path(n));
    const names = st.names;
    await st.close();
    if (names.some((k) => k.startsWith('control_blocks.'))) controlnets.push(n);
    else if (names.some((k) => k.startsWith('transformer_blocks.'))) {
      if (transformer) throw new CaseFormatError(`${c.dir}: two base transformer checkpoints (${transformer}, ${n})`);
      transformer = n;
    }
  }
  const num = (n: string) => {
    const m = /(\d+)\.safetensors$/.exec(n);
    return n === 'model.safetensors' ? -1 : m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
  };
  controlnets.sort((a, b) => num(a) - num(b) || (a < b ? -1 : a > b ? 1 : 0));
  return { controlnets, transformer };
}

async function loadControlNet(c: FixtureCase, backend: Backend, file: string): Promise<CosmosControlNetModel> {
  return c.module(CosmosControlNetFamily, backend, { config: (await configOf(c, 'CosmosControlNetModel')) ?? c.config, file });
}

async function loadBase(c: FixtureCase, backend: Backend, file: string | null): Promise<CosmosTransformer3DModel> {
  const config = await configOf(c, 'CosmosTransformer3DModel');
  if (!config) throw new CaseFormatError(`${c.dir}: ${c.kind} needs a CosmosTransformer3DModel config among its files`);
  if (!file) throw new CaseFormatError(`${c.dir}: ${c.kind} needs the base transformer's checkpoint among its files`);
  return c.module(CosmosTransformer3DFamily, backend, { config, file });
}

// ------------------------------------------------------------------ inputs and args

async function optionalInput(c: FixtureCase, backend: Backend, name: string): Promise<Tensor | null> {
  return c.hasInput(name) ? c.inputTensor(name, backend) : null;
}

function fpsArg(c: FixtureCase): number | null {
  const v = c.args.fps;
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !(v > 0)) throw new CaseFormatError(`${c.dir}: args.fps must be a positive number or null, got ${JSON.stringify(v)}`);
  return v;
}

function scaleArg(c: FixtureCase, key: string): number | number[] {
  const v = c.args[key] ?? 1;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) return v as number[];
  throw new CaseFormatError(`${c.dir}: args.${key} must be a number or a list of numbers, got ${JSON.stringify(v)}`);
}

/** The inputs every ControlNet and the base share (no control latent, no scale). */
async function sharedInputs(c: FixtureCase, backend: Backend): Promise<Omit<ControlNetForwardInputs, 'controlsLatents' | 'conditioningScale'>> {
  // encoder_hidden_states is (text, img) or text alone (args.encoder_hidden_states_is_tuple false)
  const tuple = c.args.encoder_hidden_states_is_tuple;
  return {
    latents: await c.inputTensor('latents', backend),
    timestep: await c.inputTensor('timestep', backend),
    encoderHiddenStates: await c.inputTensor(c.hasInput('text_context') ? 'text_context' : 'encoder_hidden_states', backend),
    imageContext: tuple === false ? null : await optionalInput(c, backend, 'img_context'),
    conditionMask: await optionalInput(c, backend, 'condition_mask'),
    paddingMask: await optionalInput(c, backend, 'padding_mask'),
    fps: fpsArg(c),
  };
}

function baseInputs(s: Awaited<ReturnType<typeof sharedInputs>>) {
  return {
    hiddenStates: s.latents, timestep: s.timestep, encoderHiddenStates: s.encoderHiddenStates,
    imageContext: s.imageContext ?? null, conditionMask: s.conditionMask ?? null, paddingMask: s.paddingMask ?? null, fps: s.fps ?? null,
  };
}

/** Residual inputs residual.0, residual.1, ... in order (none: null). */
async function givenResiduals(c: FixtureCase, backend: Backend): Promise<Tensor[] | null> {
  const idx = c.inputNames.map((n) => /^residual\.(\d+)$/.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
  if (idx.length === 0) return null;
  idx.forEach((k, i) => {
    if (k !== i) throw new CaseFormatError(`${c.dir}: residual inputs must be numbered 0..n-1, found residual.${k} at position ${i}`);
  });
  return Promise.all(idx.map((k) => c.inputTensor(`residual.${k}`, backend)));
}

/** Run the base with taps under `transformer.<path>` (the base's module paths, prefixed). */
async function baseWithTaps(c: FixtureCase, run: () => Tensor): Promise<{ result: Tensor; taps: TapRecorder }> {
  const prefix = 'transformer.';
  const wanted = c.tapNames.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length));
  const { result, taps } = await capture(wanted, run);
  const out = new TapRecorder(new Set(c.tapNames));
  for (const r of taps.records) out.record(prefix + r.path, r.tensor);
  taps.dispose();
  return { result, taps: out };
}

function mergeTaps(c: FixtureCase, ...recs: TapRecorder[]): TapRecorder {
  const out = new TapRecorder(new Set(c.tapNames));
  for (const r of recs) {
    for (const x of r.records) out.record(x.path, x.tensor);
    r.dispose();
  }
  return out;
}

// ------------------------------------------------------------------ controlnet.forward

registerKind('controlnet.forward', async (c, backend) => {
  const { controlnets } = await weightFiles(c);
  if (controlnets.length === 0) throw new CaseFormatError(`${c.dir}: no ControlNet checkpoint (control_blocks.* keys) among the case's files`);
  const model = await loadControlNet(c, backend, controlnets[0]);
  try {
    const shared = await sharedInputs(c, backend);
    const inputs: ControlNetForwardInputs = {
      ...shared,
      controlsLatents: await c.inputTensor('controls_latents', backend),
      conditioningScale: scaleArg(c, 'conditioning_scale'),
    };
    const { result, taps } = await capture(c.tapNames, () => model.forward(inputs));
    const outputs: Record<string, OutputValue> = {};
    result.forEach((r, i) => { outputs[`residual.${i}`] = r; });
    return { outputs, taps };
  } finally {
    model.dispose();
  }
});

// ------------------------------------------------------------------ controlnet.transfer

registerKind('controlnet.transfer', async (c, backend) => {
  const files = await weightFiles(c);
  const base = await loadBase(c, backend, files.transformer);
  try {
    const shared = await sharedInputs(c, backend);
    let residuals = await givenResiduals(c, backend);
    let ctrlTaps: TapRecorder | null = null;
    if (!residuals) {
      if (files.controlnets.length === 0) throw new CaseFormatError(`${c.dir}: neither residual.<i> inputs nor a ControlNet checkpoint`);
      const cn = await loadControlNet(c, backend, files.controlnets[0]);
      try {
        const controlsLatents = await c.inputTensor('controls_latents', backend);
        const r = await capture(c.tapNames, () => cn.forward({ ...shared, controlsLatents, conditioningScale: scaleArg(c, 'conditioning_scale') }));
        residuals = r.result;
        ctrlTaps = r.taps;
      } finally {
        cn.dispose();
      }
    }
    const withControl = await baseWithTaps(c, () => base.forward({ ...baseInputs(shared), controlnetResiduals: residuals }));
    const plain = base.forward(baseInputs(shared));
    return {
      outputs: { prediction: withControl.result, prediction_no_control: plain },
      taps: ctrlTaps ? mergeTaps(c, ctrlTaps, withControl.taps) : withControl.taps,
    };
  } finally {
    base.dispose();
  }
});

// ------------------------------------------------------------------ controlnet.multi_control

/** controls_latents, controls_latents_1, controls_latents_2, ... (control i's latent input). */
function controlLatentName(i: number): string {
  return i === 0 ? 'controls_latents' : `controls_latents_${i}`;
}

registerKind('controlnet.multi_control', async (c, backend) => {
  const files = await weightFiles(c);
  let n = 0;
  while (c.hasInput(controlLatentName(n))) n++;
  if (n === 0) throw new CaseFormatError(`${c.dir}: no controls_latents input`);
  if (files.controlnets.length !== n) {
    throw new CaseFormatError(`${c.dir}: ${n} control latents but ${files.controlnets.length} ControlNet checkpoints (${files.controlnets.join(', ')})`);
  }
  const models: CosmosControlNetModel[] = [];
  const base = await loadBase(c, backend, files.transformer);
  let multi: MultiControlNet | null = null;
  let first: MultiControlNet | null = null;
  try {
    for (const f of files.controlnets) models.push(await loadControlNet(c, backend, f));
    const shared = await sharedInputs(c, backend);
    const branches: ControlBranch[] = [];
    for (let i = 0; i < n; i++) {
      // args.w<i>: a number, the name of a weight-map input, or absent (1)
      const w = c.args[`w${i}`];
      let weight: ControlBranch['weight'];
      if (w === undefined || w === null) weight = 1;
      else if (typeof w === 'number') weight = w;
      else if (typeof w === 'string') {
        if (!c.hasInput(w)) throw new CaseFormatError(`${c.dir}: args.w${i} names the input ${w}, which case.safetensors does not hold`);
        weight = await c.inputTensor(w, backend);
      } else throw new CaseFormatError(`${c.dir}: args.w${i} must be a number or an input name, got ${JSON.stringify(w)}`);
      branches.push({ name: `control${i}`, model: models[i], latents: await c.inputTensor(controlLatentName(i), backend), weight });
    }
    multi = await MultiControlNet.create(branches);
    const m = multi;
    const { result: residuals, taps } = await capture(c.tapNames, () => m.residuals(shared));
    const prediction = base.forward({ ...baseInputs(shared), controlnetResiduals: residuals });
    first = await MultiControlNet.create([branches[0]]);
    const f = first;
    const only0 = base.forward({ ...baseInputs(shared), controlnetResiduals: f.residuals(shared) });
    const outputs: Record<string, OutputValue> = { prediction, prediction_control0_only: only0 };
    residuals.forEach((r, k) => { outputs[`residual.${k}`] = r; });
    return { outputs, taps };
  } finally {
    multi?.dispose();
    first?.dispose();
    for (const m of models) m.dispose();
    base.dispose();
  }
});
