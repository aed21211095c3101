// PEFT LoRA adapters applied unmerged, as peft's tuners/lora/layer.py `Linear.forward` does in
// eval mode: y = W x + b + scaling * B(A x), A = lora_A.weight [r, in], B = lora_B.weight [out, r],
// scaling = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora). Dropout is inactive in eval.
// The adapter file names its tensors base_model.model.<module path>.lora_{A,B}[.<adapter>].weight;
// the wrapped Linear keeps the base checkpoint's names (<path>.weight) and adds <path>.lora_A /
// <path>.lora_B, so the base file and the adapter file each fill their own parameters.
import { UserError } from '../engine/errors.js';
import { Linear } from '../engine/layers.js';
import * as F from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';

export interface LoraConfig {
  r: number;
  loraAlpha: number;
  scaling: number;
  /** a list matched against the last components of a module path, or a regex the whole path must match */
  targetModules: readonly string[] | string;
}

/** Read adapter_config.json, refusing the PEFT options whose effect is not implemented here. */
export function parseLoraConfig(json: unknown, file = 'adapter_config.json'): LoraConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new UserError(`${file}: expected a JSON object (a PEFT LoraConfig)`);
  const o = json as Record<string, unknown>;
  const fail = (field: string, why: string): never => {
    throw new UserError(`${file}: ${field} ${why}`);
  };
  if (o.peft_type !== undefined && o.peft_type !== 'LORA') fail('peft_type', `is ${JSON.stringify(o.peft_type)}; only LORA adapters are supported`);
  const r = o.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail('r', `must be a positive integer, got ${JSON.stringify(r)}`);
  const alpha = o.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail('lora_alpha', `must be a number, got ${JSON.stringify(alpha)}`);
  const targets = o.target_modules;
  const listOk = Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === 'string');
  if (!listOk && typeof targets !== 'string') fail('target_modules', `must be a list of module names or a regex string, got ${JSON.stringify(targets)}`);
  if (o.use_dora === true) fail('use_dora', 'is true; DoRA adapters are not supported');
  if (o.fan_in_fan_out === true) fail('fan_in_fan_out', 'is true; only nn.Linear targets (fan_in_fan_out false) are supported');
  if (o.bias !== undefined && o.bias !== 'none') fail('bias', `is ${JSON.stringify(o.bias)}; only "none" is supported`);
  for (const k of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = o[k];
    if (v && typeof v === 'object' && Object.keys(v).length) fail(k, 'is not empty; per-module ranks / alphas are not supported');
  }
  if (o.layers_to_transform !== undefined && o.layers_to_transform !== null) fail('layers_to_transform', 'is set; adapters limited to some layers are not supported');
  if (o.modules_to_save !== undefined && o.modules_to_save !== null) fail('modules_to_save', 'is set; adapters carrying whole modules are not supported');
  const rslora = o.use_rslora === true;
  const rank = r as number;
  const a = alpha as number;
  return { r: rank, loraAlpha: a, scaling: rslora ? a / Math.sqrt(rank) : a / rank, targetModules: listOk ? (targets as string[]) : (targets as string) };
}

/** PEFT's check_target_module_exists: a listed name equal to the path or to its tail after a dot, or the regex matching the whole path. */
export function isLoraTarget(cfg: LoraConfig, modulePath: string): boolean {
  const t = cfg.targetModules;
  if (typeof t === 'string') return new RegExp(`^(?:${t})$`).test(modulePath);
  return t.some((name) => modulePath === name || modulePath.endsWith(`.${name}`));
}

/**
 * An adapter file's key -> the model key: `base_model.model.` dropped, and the adapter name PEFT
 * may keep between lora_A / lora_B and weight removed. Keys outside that prefix give null.
 */
export function peftKeyToModel(key: string): string | null {
  const prefix = 'base_model.model.';
  if (!key.startsWith(prefix)) return null;
  return key.slice(prefix.length).replace(/\.(lora_[AB])\.[^.]+\.weight$/, '.$1.weight');
}

/** Whether a model key is an adapter parameter. */
export function isLoraKey(key: string): boolean {
  return /\.lora_[AB]\.weight$/.test(key);
}

/** Turns every LoraLinear of one model on or off at once (off = the base model). */
export class LoraSwitch {
  enabled = true;
}

/** nn.Linear wrapped by a LoRA adapter, evaluated unmerged. */
export class LoraLinear extends Linear {
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  constructor(inFeatures: number, outFeatures: number, bias: boolean, readonly lora: LoraConfig, private readonly sw: LoraSwitch) {
    super(inFeatures, outFeatures, bias);
    this.lora_A = this.add('lora_A', new Linear(inFeatures, lora.r));
    this.lora_B = this.add('lora_B', new Linear(lora.r, outFeatures));
  }
  override forward(x: Tensor): Tensor {
    const base = F.linear(x, this.weight.t, this.bias?.t ?? null);
    if (!this.sw.enabled) return this.tap(base);
    const delta = F.linear(F.linear(x, this.lora_A.weight.t), this.lora_B.weight.t);
    return this.tap(F.add(base, F.scale(delta, this.lora.scaling)));
  }
}
