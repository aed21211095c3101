// The 3D rotary position tables of the Cosmos DiT (diffusers CosmosRotaryPosEmbed; spec dit.md §3).
//
// head_dim d splits into dim_h = dim_w = (d // 6) * 2 and dim_t = d - 2 dim_h. Each axis x has
// its own NTK-scaled base theta_x = 10000 * rope_scale_x ^ (dim_x / (dim_x - 2)) and frequencies
// f_x[j] = 1 / theta_x ^ (2j / dim_x), j < dim_x / 2. Token (t, h, w) (row-major over the
// patched grid) gets the angles [t f_t, h f_h, w f_w], repeated twice to length d; the tables
// are cos and sin of those, [N, d], shared by every head and batch element, applied to q and k
// with rotate-half pairing (dim i with i + d/2). With an fps the temporal position is
// t / fps * 24 (base fps 24). Everything is computed on the host in float32 exactly as torch
// does (the frequencies from float32 powers, positions and angles rounded to float32), then
// uploaded once per (grid, fps) and backend.
import type { Backend } from '../../engine/backend.js';
import { fromArray } from '../../engine/ops.js';
import type { Tensor } from '../../engine/tensor.js';
import { DiTConfigError, DiTInputError, type Triple } from './config.js';

const f32 = Math.fround;

export const ROPE_BASE_THETA = 10000.0;
export const ROPE_BASE_FPS = 24;

export interface Rope3DSettings {
  headDim: number;
  maxSize: Triple;
  patchSize: Triple;
  ropeScale: Triple;
  /** 24 in every released model */
  baseFps?: number;
}

/** The head-dim split (t, h, w). */
export function ropeAxisDims(headDim: number): { t: number; h: number; w: number } {
  const h = Math.floor(headDim / 6) * 2;
  const t = headDim - 2 * h;
  if (h <= 2 || t <= 2 || headDim % 2) {
    throw new DiTConfigError(`3D RoPE: head_dim ${headDim} splits into t ${t}, h ${h}, w ${h}; every part must be even and wider than 2`);
  }
  return { t, h, w: h };
}

/** NTK-scaled bases per axis (Python doubles, as upstream). */
export function ropeThetas(headDim: number, ropeScale: Triple): { t: number; h: number; w: number } {
  const d = ropeAxisDims(headDim);
  const theta = (scale: number, dim: number) => ROPE_BASE_THETA * scale ** (dim / (dim - 2));
  return { t: theta(ropeScale[0], d.t), h: theta(ropeScale[1], d.h), w: theta(ropeScale[2], d.w) };
}

/**
 * f[j] = 1 / theta ^ (2j / dim) in float32: torch evaluates `1.0 / (theta ** range)` with range a
 * float32 tensor, so the power runs in float32 on the float32-rounded base.
 */
export function ropeFrequencies(dim: number, theta: number): Float32Array {
  const out = new Float32Array(dim / 2);
  const base = f32(theta);
  for (let j = 0; j < dim / 2; j++) {
    const range = f32((2 * j) / dim);
    out[j] = f32(1 / f32(base ** range));
  }
  return out;
}

/** Tokens per axis after patching: (T // pt, H // ph, W // pw). */
export function patchGrid(latentThw: readonly number[], patchSize: Triple): [number, number, number] {
  return [0, 1, 2].map((i) => Math.floor(latentThw[i] / patchSize[i])) as [number, number, number];
}

export interface RopeTables {
  /** [N, headDim] row-major, token order (t, h, w) */
  cos: Float32Array;
  sin: Float32Array;
  tokens: number;
  headDim: number;
}

/**
 * The rotation angles of a patched grid (T', H', W') and fps (null: unscaled frame indices, as for
 * images and the Predict2.5 pipeline): [N, headDim / 2] float32 rows [t | h | w] per token, token
 * order (t, h, w). NVIDIA's networks expose these (the `pos_embedder` output, repeated twice).
 */
export function rope3dAngles(s: Rope3DSettings, grid: readonly [number, number, number], fps: number | null): Float32Array {
  const { headDim } = s;
  const dims = ropeAxisDims(headDim);
  const thetas = ropeThetas(headDim, s.ropeScale);
  // positions come from arange(max(max_size // patch)): no axis may be longer than that
  const limit = Math.max(...[0, 1, 2].map((i) => Math.floor(s.maxSize[i] / s.patchSize[i])));
  grid.forEach((g, i) => {
    if (!Number.isInteger(g) || g < 1) throw new DiTInputError(`3D RoPE: patched grid ${JSON.stringify(grid)} must be positive integers`);
    if (g > limit) {
      throw new DiTInputError(`3D RoPE: ${'THW'[i]} has ${g} patches but the tables hold ${limit} positions (max(max_size ${JSON.stringify(s.maxSize)} // patch ${JSON.stringify(s.patchSize)}))`);
    }
  });
  if (fps !== null && !(typeof fps === 'number' && fps > 0 && Number.isFinite(fps))) {
    throw new DiTInputError(`3D RoPE: fps must be a positive number or null, got ${JSON.stringify(fps)}`);
  }
  const baseFps = s.baseFps ?? ROPE_BASE_FPS;
  const fT = ropeFrequencies(dims.t, thetas.t);
  const fH = ropeFrequencies(dims.h, thetas.h);
  const fW = ropeFrequencies(dims.w, thetas.w);
  const [T, H, W] = grid;
  const half = headDim / 2;
  // per-axis angle rows, float32 as torch.outer
  const rows = (n: number, f: Float32Array, pos: (i: number) => number) => {
    const out = new Float32Array(n * f.length);
    for (let i = 0; i < n; i++) {
      const p = pos(i);
      for (let j = 0; j < f.length; j++) out[i * f.length + j] = f32(p * f[j]);
    }
    return out;
  };
  const angT = rows(T, fT, (i) => (fps === null ? i : f32(f32(i / fps) * baseFps)));
  const angH = rows(H, fH, (i) => i);
  const angW = rows(W, fW, (i) => i);
  const ht = fT.length;
  const hh = fH.length;
  const hw = fW.length;
  const out = new Float32Array(T * H * W * half);
  let o = 0;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++, o += half) {
        out.set(angT.subarray(t * ht, (t + 1) * ht), o);
        out.set(angH.subarray(h * hh, (h + 1) * hh), o + ht);
        out.set(angW.subarray(w * hw, (w + 1) * hw), o + ht + hh);
      }
    }
  }
  return out;
}

/**
 * cos / sin tables for a patched grid (T', H', W') and fps (null: unscaled frame indices, as for
 * images and the Predict2.5 pipeline).
 */
export function rope3dTables(s: Rope3DSettings, grid: readonly [number, number, number], fps: number | null): RopeTables {
  const { headDim } = s;
  const angles = rope3dAngles(s, grid, fps);
  const half = headDim / 2;
  const N = angles.length / half;
  const cos = new Float32Array(N * headDim);
  const sin = new Float32Array(N * headDim);
  for (let n = 0; n < N; n++) {
    const o = n * headDim;
    for (let j = 0; j < half; j++) {
      const a = angles[n * half + j];
      const c = Math.cos(a);
      const sn = Math.sin(a);
      cos[o + j] = c;
      cos[o + half + j] = c;
      sin[o + j] = sn;
      sin[o + half + j] = sn;
    }
  }
  return { cos, sin, tokens: N, headDim };
}

/**
 * Device tables per (grid, fps, backend), computed on first use and kept until `clear()`. The
 * tensors are owned by the cache (kept out of every scope).
 */
export class Rope3DCache {
  private readonly entries = new Map<string, { cos: Tensor; sin: Tensor }>();
  constructor(readonly settings: Rope3DSettings, readonly maxEntries = 8) {}

  tables(backend: Backend, grid: readonly [number, number, number], fps: number | null): { cos: Tensor; sin: Tensor } {
    const key = `${backend.name}:${backend.adapter}|${grid.join('x')}|${fps === null ? 'none' : fps}`;
    const hit = this.entries.get(key);
    if (hit && !hit.cos.isDisposed && hit.cos.backend === backend) return hit;
    if (hit) {
      // another backend instance with the same description, or tables disposed behind our back
      hit.cos.dispose();
      hit.sin.dispose();
      this.entries.delete(key);
    }
    const t = rope3dTables(this.settings, grid, fps);
    const shape = [t.tokens, t.headDim];
    const entry = { cos: fromArray(backend, t.cos, shape).keep(), sin: fromArray(backend, t.sin, shape).keep() };
    if (this.entries.size >= this.maxEntries) {
      // drop the oldest entry (Map keeps insertion order)
      const [oldKey, old] = this.entries.entries().next().value as [string, { cos: Tensor; sin: Tensor }];
      old.cos.dispose();
      old.sin.dispose();
      this.entries.delete(oldKey);
    }
    this.entries.set(key, entry);
    return entry;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    for (const e of this.entries.values()) {
      e.cos.dispose();
      e.sin.dispose();
    }
    this.entries.clear();
  }
}
