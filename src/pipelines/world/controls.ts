// The control phase of transfer: the control clips (one per control, all of one size and length),
// each encoded into the sampler's space with the VAE, and each control's weight, a scalar or a
// weight map (a .safetensors [H, W] / [T, H, W], or a grayscale PNG) resized to the token grid.
import type { Tensor } from '../../engine/tensor.js';
import { type FileSystem, readBytes } from '../../io/files.js';
import type { InputLimits } from '../../io/limits.js';
import { probeVideo } from '../../io/open-video.js';
import { decodePng, probePng } from '../../io/png.js';
import { openSafetensors } from '../../io/safetensors.js';
import { type Video, cropVideo } from '../../io/video.js';
import { type ControlBranch, ControlShapeError, ControlWeightError, resizeWeightMap } from '../../models/controlnet/multi.js';
import type { ControlSpec } from '../../models/controlnet/spec.js';
import { checkFinite, requireFiniteRaw } from '../finite.js';
import { type ClipInput, readClip } from './condition.js';
import { type LoadedVae, type Posterior, encodeClip } from './vae.js';

/**
 * The headers of every control clip and PNG weight map (and of `more` clips, e.g. the conditioning
 * input) that are files, checked against the limits: what a run does before it reads any of them
 * or loads any model. `whole`: the clips are to be held whole as float32 (not streamed).
 */
export async function probeControlInputs(
  controls: readonly ControlSpec[], given: Readonly<Record<string, ClipInput>> = {}, more: readonly (ClipInput | null | undefined)[] = [], fs?: FileSystem, limits?: InputLimits,
  whole = true,
): Promise<void> {
  for (const input of [...controls.map((c) => given[c.name] ?? c.inputControl), ...more]) {
    if (typeof input === 'string') await probeVideo(input, { limits, whole }, fs);
  }
  for (const c of controls) if (typeof c.weight !== 'number' && /\.png$/i.test(c.weight.path)) await probePng(c.weight.path, { limits }, fs);
}

/** Every control's clip (`given[name]`, else its spec path), checked to share one size and length. */
export async function readControlClips(
  controls: readonly ControlSpec[], given: Readonly<Record<string, ClipInput>> = {}, fs?: FileSystem, limits?: InputLimits,
): Promise<Video[]> {
  const clips: Video[] = [];
  for (const c of controls) {
    const input = given[c.name] ?? c.inputControl;
    if (input === null) throw new Error(`readControlClips: control "${c.name}" has no video`);
    const v = await readClip(input, undefined, fs, limits);
    const f = clips[0];
    if (f && (v.frames !== f.frames || v.height !== f.height || v.width !== f.width)) {
      throw new ControlShapeError(c.name, `control video ${given[c.name] ? '(given)' : c.inputControl} is ${v.frames} frames of ${v.width}x${v.height}, ` +
        `"${controls[0].name}"'s is ${f.frames} frames of ${f.width}x${f.height}; every control video must have the same size and frame count`);
    }
    clips.push(v);
  }
  return clips;
}

/** A weight-map file's values: one tensor [H, W] / [T, H, W] in a .safetensors, or a grayscale PNG (0..255 -> 0..1). */
async function readWeightMap(path: string, control: string, fs?: FileSystem, limits?: InputLimits): Promise<{ values: Float32Array; shape: number[] }> {
  if (/\.png$/i.test(path)) {
    const img = decodePng(await readBytes(path, fs), path, { limits });
    const n = img.width * img.height;
    const values = new Float32Array(n);
    for (let p = 0; p < n; p++) values[p] = (img.data[3 * p] + img.data[3 * p + 1] + img.data[3 * p + 2]) / (3 * 255);
    return { values, shape: [img.height, img.width] };
  }
  const f = await openSafetensors(path, fs);
  try {
    const name = f.has('weight') ? 'weight' : f.names.length === 1 ? f.names[0] : null;
    if (!name) throw new ControlWeightError(control, `${path} must hold one tensor (or one named "weight"), it has ${f.names.length}: ${f.names.slice(0, 6).join(', ')}`);
    const t = await f.read(name);
    requireFiniteRaw(t.dtype, t.raw, path, `tensor ${name}`);
    let shape = [...t.shape];
    while (shape.length > 3 && shape[0] === 1) shape = shape.slice(1);
    if (shape.length !== 2 && shape.length !== 3) throw new ControlWeightError(control, `weight map ${path} must be [H, W] or [T, H, W], got [${t.shape.join(', ')}]`);
    const values = t.raw instanceof Float32Array ? t.raw : Float32Array.from(t.raw as ArrayLike<number>);
    return { values, shape };
  } finally {
    await f.close();
  }
}

/** A control's weight on the token grid: its scalar, or its map resized (pixel-frame maps keep their first `frames`). */
export async function controlWeight(
  c: ControlSpec, grid: [number, number, number], frames: number, fs?: FileSystem, limits?: InputLimits,
): Promise<ControlBranch['weight']> {
  if (typeof c.weight === 'number') return c.weight;
  const m = await readWeightMap(c.weight.path, c.name, fs, limits);
  if (m.shape.length === 3 && m.shape[0] > grid[0] && m.shape[0] >= frames) {
    const plane = m.shape[1] * m.shape[2];
    m.values = m.values.slice(0, frames * plane);
    m.shape = [frames, m.shape[1], m.shape[2]];
  }
  try {
    return resizeWeightMap(m.values, m.shape, grid);
  } catch (e) {
    if (e instanceof ControlWeightError) throw new ControlWeightError(c.name, `${c.weight.path}: ${e.message}`);
    throw e;
  }
}

/**
 * The control branches but their ControlNets (loaded later, after the VAE is freed): each clip
 * cropped to `frames`, encoded and normalised (sigma_data 1), with its weight. The caller owns
 * the returned latents.
 */
export async function encodeControls(
  controls: readonly ControlSpec[], clips: readonly Video[], vae: LoadedVae,
  grid: [number, number, number], frames: number, onEncoded: (i: number) => void, fs?: FileSystem, posterior: Posterior = { kind: 'mode' },
  limits?: InputLimits,
): Promise<Omit<ControlBranch, 'model'>[]> {
  const branches: Omit<ControlBranch, 'model'>[] = [];
  const made: Tensor[] = [];
  try {
    for (let i = 0; i < controls.length; i++) {
      const c = controls[i];
      const v = clips[i];
      const latents = encodeClip(vae, cropVideo(v, frames, v.height, v.width), 1, posterior);
      made.push(latents);
      await checkFinite(latents, { component: 'vae encoder', tensor: `control "${c.name}" latents` });
      branches.push({ name: c.name, latents, weight: await controlWeight(c, grid, frames, fs, limits) });
      onEncoded(i + 1);
    }
    return branches;
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
}
