// Several ControlNets on one noisy latent (spec controlnet.md "Multi-control"): each control has
// its own ControlNet and control latent and sees the SAME latents / timestep / text / image context /
// condition mask / padding mask; its residuals are weighted and the residuals of all controls are
// summed per block (cosmos-transfer1 GeneralDITEncoder):
//
//   scalar weight w:  r_k = ControlNet(..., conditioning_scale = w)_k
//   weight map M:     r_k = ControlNet(..., conditioning_scale = 1)_k * flat(M)   M [B|1, 1, T', H', W'] on
//                                                                               the patch-token grid, (t, h, w) order
//   residual_k = sum over controls of r_k  ->  base DiT controlnetResiduals
//
// Weights are >= 0 and their sum over the controls may not pass CONTROL_WEIGHT_CAP (1) anywhere:
// by default such weights are refused; `overCap: 'normalize'` applies upstream's rule instead
// (every weight divided by max(sum, 1), per location when any control has a map).
import type { Backend } from '../../engine/backend.js';
import { Module } from '../../engine/module.js';
import * as F from '../../engine/ops.js';
import { Tensor, scope, shapeStr } from '../../engine/tensor.js';
import type { DiTDenoiser } from '../dit/samplers/common.js';
import type { CosmosForwardInputs, CosmosTransformer3DModel } from '../dit/transformer.js';
import { type ControlNetForwardInputs, CosmosControlNetModel } from './controlnet.js';
import { UserError } from '../../engine/errors.js';

/** The per-location bound on the sum of the control weights (Transfer 1 / 2.5: `max(sum, 1)`). */
export const CONTROL_WEIGHT_CAP = 1;
/** float slack when checking the cap (0.1 + 0.2 + 0.7 is not exactly 1) */
const CAP_SLACK = 1e-6;

/** A problem with one control (or, `control` null, with the set); `control` names it. */
export class MultiControlError extends UserError {
  constructor(readonly control: string | null, message: string) {
    super(control === null ? message : `control "${control}": ${message}`);
  }
}

/** A control video / latent whose size or frame count does not match the others or the base latent. */
export class ControlShapeError extends MultiControlError {}

/** A weight that is negative, not finite, a map of the wrong shape, or weights summing past the cap. */
export class ControlWeightError extends MultiControlError {}

/** A scalar, or a map [B|1, 1, T', H', W'] on the patch-token grid (host values or a tensor). */
export type ControlWeight = number | Tensor | { values: Float32Array; shape: readonly number[] };

export interface ControlBranch {
  /** the control's name (e.g. "depth", "edge"): errors and taps name it */
  name: string;
  model: CosmosControlNetModel;
  /** control latent [B, Cc, T, H, W] (normalised VAE latent of the control video) */
  latents: Tensor;
  /** default 1 */
  weight?: ControlWeight;
}

export interface MultiControlOptions {
  /** weights summing past CONTROL_WEIGHT_CAP somewhere: refuse ('error', default) or divide by max(sum, 1) ('normalize') */
  overCap?: 'error' | 'normalize';
}

interface Prepared {
  name: string;
  model: CosmosControlNetModel;
  latents: Tensor;
  /** scalar weight (through conditioning_scale), or null with a map */
  scalar: number | null;
  /** [B|1, N, 1] token weights, owned */
  map: Tensor | null;
}

/** The shared inputs of every ControlNet (everything but the control latent and its scale). */
export type SharedControlInputs = Omit<ControlNetForwardInputs, 'controlsLatents' | 'conditioningScale'>;

/**
 * Several weighted ControlNets. `create` checks the controls against each other and the weights
 * (reading weight maps once); `residuals` is then synchronous (one call per denoiser pass).
 * Taps: `control<i>.residual.<k>` (control i's residual k after its weight).
 */
export class MultiControlNet extends Module {
  private constructor(
    private readonly branches: Prepared[],
    /** latent T, H, W and batch every input must have */
    readonly latentShape: readonly [number, number, number, number],
    /** summed weights' maximum over the token grid, before any normalisation */
    readonly maxWeightSum: number,
  ) {
    super();
  }

  get names(): string[] {
    return this.branches.map((b) => b.name);
  }
  get numResiduals(): number {
    return this.branches[0].model.numResiduals;
  }

  static async create(controls: readonly ControlBranch[], opts: MultiControlOptions = {}): Promise<MultiControlNet> {
    if (controls.length === 0) throw new MultiControlError(null, 'no controls given');
    const seen = new Set<string>();
    for (const c of controls) {
      if (typeof c.name !== 'string' || c.name === '') throw new MultiControlError(null, 'every control needs a non-empty name');
      if (seen.has(c.name)) throw new MultiControlError(c.name, 'the name is used by two controls');
      seen.add(c.name);
      if (!(c.model instanceof CosmosControlNetModel)) throw new MultiControlError(c.name, 'model is not a CosmosControlNetModel');
    }
    // shapes: every control latent has the first one's batch, frames, height, width
    const first = controls[0];
    checkLatent(first);
    const [B, , T, H, W] = first.latents.shape;
    const n = first.model.numResiduals;
    const patch = first.model.config.patchSize;
    for (const c of controls) {
      checkLatent(c);
      const [b, , t, h, w] = c.latents.shape;
      if (b !== B || t !== T || h !== H || w !== W) {
        throw new ControlShapeError(c.name, `control latent ${shapeStr(c.latents.shape)} does not match "${first.name}"'s ${shapeStr(first.latents.shape)} ` +
          `(${t !== T ? `${t} latent frames vs ${T}` : `${h}x${w} vs ${H}x${W}`}${b !== B ? `, batch ${b} vs ${B}` : ''}); every control video must have the same size and frame count`);
      }
      if (c.model.numResiduals !== n) {
        throw new MultiControlError(c.name, `its ControlNet has ${c.model.numResiduals} control blocks, "${first.name}"'s has ${n}; the residuals are summed per block`);
      }
      if (c.model.config.patchSize.join() !== patch.join()) {
        throw new MultiControlError(c.name, `patch_size ${JSON.stringify(c.model.config.patchSize)} differs from "${first.name}"'s ${JSON.stringify(patch)}`);
      }
    }
    const grid = [T / patch[0], H / patch[1], W / patch[2]];
    const N = grid[0] * grid[1] * grid[2];

    // weights on the host: scalars, maps [Bm, N]
    const host: { scalar: number | null; map: Float32Array | null; mapBatch: number }[] = [];
    for (const c of controls) {
      const w = c.weight ?? 1;
      if (typeof w === 'number') {
        if (!Number.isFinite(w) || w < 0) throw new ControlWeightError(c.name, `weight ${w} must be a finite number >= 0`);
        host.push({ scalar: w, map: null, mapBatch: 1 });
        continue;
      }
      const shape = w instanceof Tensor ? w.shape : w.shape;
      const ok = shape.length === 5 && (shape[0] === 1 || shape[0] === B) && shape[1] === 1 &&
        shape[2] === grid[0] && shape[3] === grid[1] && shape[4] === grid[2];
      if (!ok) {
        throw new ControlWeightError(c.name, `weight map ${shapeStr(shape)} must be ${shapeStr([1, 1, ...grid])} or ${shapeStr([B, 1, ...grid])} ` +
          `(the patch-token grid of the ${T}x${H}x${W} latent: T/${patch[0]}, H/${patch[1]}, W/${patch[2]}); resize it with resizeWeightMap`);
      }
      const values = w instanceof Tensor ? Float32Array.from(await w.read()) : w.values;
      if (values.length !== shape.reduce((a, b) => a * b, 1)) throw new ControlWeightError(c.name, `weight map holds ${values.length} values for shape ${shapeStr(shape)}`);
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i]) || values[i] < 0) throw new ControlWeightError(c.name, `weight map value ${values[i]} at index ${i} must be a finite number >= 0`);
      }
      host.push({ scalar: null, map: values, mapBatch: shape[0] });
    }

    // the sum over controls at every (batch, token)
    const anyMap = host.some((h) => h.map);
    const Bm = anyMap ? Math.max(...host.map((h) => h.mapBatch)) : 1;
    const rows = anyMap ? Bm * N : 1;
    const sum = new Float64Array(rows);
    for (const h of host) {
      for (let i = 0; i < rows; i++) sum[i] += h.map ? h.map[h.mapBatch === 1 ? i % N : i] : h.scalar!;
    }
    let worst = 0;
    for (let i = 1; i < rows; i++) if (sum[i] > sum[worst]) worst = i;
    const maxSum = sum[worst];
    const over = maxSum > CONTROL_WEIGHT_CAP + CAP_SLACK;
    if (over && (opts.overCap ?? 'error') === 'error') {
      const parts = controls.map((c, k) => {
        const h = host[k];
        const v = h.map ? h.map[h.mapBatch === 1 ? worst % N : worst] : h.scalar!;
        return `${c.name} ${+v.toFixed(6)}`;
      });
      const at = anyMap ? ` at ${where(worst, N, grid)}` : '';
      const culprit = controls.filter((_, k) => (host[k].map ? host[k].map![host[k].mapBatch === 1 ? worst % N : worst] : host[k].scalar!) > 0);
      throw new ControlWeightError(culprit.length === 1 ? culprit[0].name : null,
        `control weights sum to ${+maxSum.toFixed(6)}${at} (${parts.join(' + ')}), past the cap ${CONTROL_WEIGHT_CAP}; lower the weights or pass overCap: 'normalize' (divide by the sum)`);
    }

    const backend: Backend = first.latents.backend;
    const prepared: Prepared[] = controls.map((c, k) => {
      const h = host[k];
      if (!over) {
        return { name: c.name, model: c.model, latents: c.latents, scalar: h.scalar, map: h.map ? F.fromArray(backend, h.map, [h.mapBatch, N, 1]).keep() : null };
      }
      // normalise: w / max(sum, 1) (scalars stay scalars when no control has a map)
      if (!anyMap) return { name: c.name, model: c.model, latents: c.latents, scalar: Math.fround(h.scalar! / Math.max(sum[0], 1)), map: null };
      const m = new Float32Array(rows);
      for (let i = 0; i < rows; i++) m[i] = (h.map ? h.map[h.mapBatch === 1 ? i % N : i] : h.scalar!) / Math.max(sum[i], 1);
      return { name: c.name, model: c.model, latents: c.latents, scalar: null, map: F.fromArray(backend, m, [Bm, N, 1]).keep() };
    });
    return new MultiControlNet(prepared, [B, T, H, W], maxSum);
  }

  /** The summed residuals for the base (entry k goes after base block k * controlnet_block_every_n). */
  residuals(inputs: SharedControlInputs): Tensor[] {
    const [B, T, H, W] = this.latentShape;
    const l = inputs.latents;
    if (l.rank !== 5 || l.shape[0] !== B || l.shape[2] !== T || l.shape[3] !== H || l.shape[4] !== W) {
      throw new ControlShapeError(null, `the base latent ${shapeStr(l.shape)} does not match the control latents (batch ${B}, ${T} frames, ${H}x${W})`);
    }
    return scope(() => {
      let total: Tensor[] = [];
      for (let i = 0; i < this.branches.length; i++) {
        const b = this.branches[i];
        const r = b.model.forward({ ...inputs, controlsLatents: b.latents, conditioningScale: b.scalar ?? 1 }, b.map);
        r.forEach((t, k) => { this.tap(t, `control${i}.residual.${k}`); });
        total = i === 0 ? r : total.map((t, k) => F.add(t, r[k]));
      }
      return total;
    });
  }

  /**
   * The base DiT driven with these controls: what the samplers call (each pass, the cond and the
   * uncond one, runs every ControlNet with that pass's text). When the base has an image-context
   * branch and no image context is given, zeros [B, img_context_num_tokens, img_context_dim_in] are
   * passed, as Cosmos2_5_TransferPipeline does.
   */
  denoiser(base: CosmosTransformer3DModel): DiTDenoiser {
    return {
      config: base.config,
      forward: (inputs: CosmosForwardInputs) => scope(() => {
        let imageContext = inputs.imageContext ?? null;
        const cfg = base.config;
        if (!imageContext && cfg.imgContextDimIn !== null) {
          imageContext = F.zeros(inputs.hiddenStates.backend, [inputs.hiddenStates.shape[0], cfg.imgContextNumTokens, cfg.imgContextDimIn]);
        }
        const residuals = this.residuals({
          latents: inputs.hiddenStates, timestep: inputs.timestep, encoderHiddenStates: inputs.encoderHiddenStates,
          imageContext, conditionMask: inputs.conditionMask ?? null, paddingMask: inputs.paddingMask ?? null, fps: inputs.fps ?? null,
        });
        return base.forward({ ...inputs, imageContext, controlnetResiduals: residuals });
      }),
    };
  }

  /** Frees the weight maps this set made (the ControlNets and latents stay the caller's). */
  override dispose(): void {
    for (const b of this.branches) b.map?.dispose();
    super.dispose();
  }
}

function checkLatent(c: ControlBranch): void {
  const s = c.latents.shape;
  if (s.length !== 5) throw new ControlShapeError(c.name, `control latent must be [B, C, T, H, W], got ${shapeStr(s)}`);
  const [pt, ph, pw] = c.model.config.patchSize;
  if (s[2] % pt || s[3] % ph || s[4] % pw) {
    throw new ControlShapeError(c.name, `control latent ${shapeStr(s)}: T, H, W must be multiples of patch_size ${JSON.stringify(c.model.config.patchSize)}`);
  }
  if (s[1] > c.model.controlChannels) {
    throw new ControlShapeError(c.name, `control latent has ${s[1]} channels, its ControlNet takes at most ${c.model.controlChannels}`);
  }
}

function where(i: number, N: number, grid: readonly number[]): string {
  const b = Math.floor(i / N);
  const r = i % N;
  const t = Math.floor(r / (grid[1] * grid[2]));
  const h = Math.floor((r % (grid[1] * grid[2])) / grid[2]);
  const w = r % grid[2];
  return `token (t ${t}, h ${h}, w ${w})${b ? ` of sample ${b}` : ''}`;
}

// ------------------------------------------------------------------ weight maps from files

/** torch trilinear interpolation (align_corners = False) of a [St, Sh, Sw] volume to [Tt, Th, Tw]. */
function trilinear(values: ArrayLike<number>, src: readonly number[], dst: readonly number[]): Float32Array {
  const [St, Sh, Sw] = src;
  const [Tt, Th, Tw] = dst;
  const axis = (inS: number, outS: number) => {
    const lo = new Int32Array(outS);
    const hi = new Int32Array(outS);
    const fr = new Float64Array(outS);
    const scale = inS / outS;
    for (let o = 0; o < outS; o++) {
      const x = Math.max((o + 0.5) * scale - 0.5, 0);
      const i0 = Math.min(Math.floor(x), inS - 1);
      lo[o] = i0;
      hi[o] = Math.min(i0 + 1, inS - 1);
      fr[o] = x - i0;
    }
    return { lo, hi, fr };
  };
  const at = axis(St, Tt);
  const ah = axis(Sh, Th);
  const aw = axis(Sw, Tw);
  const out = new Float32Array(Tt * Th * Tw);
  for (let t = 0; t < Tt; t++) {
    for (let h = 0; h < Th; h++) {
      for (let w = 0; w < Tw; w++) {
        let acc = 0;
        for (const [ti, tf] of [[at.lo[t], 1 - at.fr[t]], [at.hi[t], at.fr[t]]]) {
          for (const [hi, hf] of [[ah.lo[h], 1 - ah.fr[h]], [ah.hi[h], ah.fr[h]]]) {
            for (const [wi, wf] of [[aw.lo[w], 1 - aw.fr[w]], [aw.hi[w], aw.fr[w]]]) acc += tf * hf * wf * values[(ti * Sh + hi) * Sw + wi];
          }
        }
        out[(t * Th + h) * Tw + w] = acc;
      }
    }
  }
  return out;
}

/**
 * A weight map read from a file, [H, W] (the same for every frame) or [T, H, W] (pixel frames or
 * latent frames, any size), brought to the patch-token grid [T', H', W'] as cosmos-transfer1's
 * resize_control_weight_map does: the first frame and the remaining frames are interpolated
 * separately (trilinear, align_corners = False; the causal VAE keeps frame 0 alone), then
 * clamped at 0. Returns [1, 1, T', H', W'] host values for a ControlBranch weight.
 */
export function resizeWeightMap(values: ArrayLike<number>, shape: readonly number[], grid: readonly [number, number, number]): { values: Float32Array; shape: number[] } {
  const src = shape.length === 2 ? [1, shape[0], shape[1]] : [...shape];
  if (src.length !== 3 || src.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ControlWeightError(null, `a weight map must be [H, W] or [T, H, W], got ${shapeStr(shape)}`);
  }
  if (values.length !== src[0] * src[1] * src[2]) throw new ControlWeightError(null, `weight map holds ${values.length} values for shape ${shapeStr(shape)}`);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new ControlWeightError(null, `weight map value ${values[i]} at index ${i} is not finite`);
  }
  const [St, Sh, Sw] = src;
  const [Tt, Th, Tw] = grid;
  const plane = Th * Tw;
  const out = new Float32Array(Tt * plane);
  if (St === 1) {
    // one frame: the same spatial map on every frame
    const m = trilinear(values, src, [1, Th, Tw]);
    for (let t = 0; t < Tt; t++) out.set(m, t * plane);
  } else if (St === Tt) {
    out.set(trilinear(values, src, [Tt, Th, Tw]));
  } else {
    out.set(trilinear(Array.prototype.slice.call(values, 0, Sh * Sw) as number[], [1, Sh, Sw], [1, Th, Tw]));
    if (Tt > 1) out.set(trilinear(Array.prototype.slice.call(values, Sh * Sw) as number[], [St - 1, Sh, Sw], [Tt - 1, Th, Tw]), plane);
  }
  for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i], 0);
  return { values: out, shape: [1, 1, Tt, Th, Tw] };
}
