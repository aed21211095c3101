// Plain containers for module trees that mirror PyTorch's nn.ModuleList / nn.Module() holders,
// so that children get the upstream key path segments (`down.0.block.1`, `mid.attn_1`).
import { Module } from '../../engine/module.js';

/** Children named 0, 1, 2, ... in insertion order. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];
  push(m: M): M {
    this.add(this.items.length, m);
    this.items.push(m);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    return this.items[i];
  }
}

/** A module that only holds parameters (the inner nn.Conv3d / nn.GroupNorm of a wrapper). */
export class ParamHolder extends Module {
  constructor(params: Record<string, readonly number[]>) {
    super();
    for (const [name, shape] of Object.entries(params)) this.param(name, shape);
  }
  get(name: string) {
    const p = this.params.get(name);
    if (!p) throw new Error(`module ${this.path}: no parameter ${name}`);
    return p.t;
  }
}
