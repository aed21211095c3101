// Kernel families: one module each (kernels/<family>.wgsl.ts), several entry points per family.
//
// A family's WGSL declares its own `struct Params` and `@group(0) @binding(0) var<uniform> P: Params`,
// its tunables (TypeScript constants on top of the module, spliced in; `override` where a
// pipeline sets them), and its entry points. The storage bindings are NOT
// declared there: they depend on the dtypes of the tensors bound at run time, so this
// module prepends them, with one loader per input:
//   ld_<name>(i: u32) -> f32      element i widened to f32 (f32, f16, bf16 or i32 storage)
//   ldi_<name>(i: u32) -> i32     element i as an integer (exact for i32 storage; floats truncate)
//   ld4_<name>(i: u32) -> vec4<f32>  elements i..i+3 (i a multiple of 4)
// and outputs as plain `array<f32>` / `array<i32>` / `array<u32>` named as in the family, each
// with a storer st_<name>(i: u32, v: f32) (f32 and i32 outputs; i32 truncates).
// Bindings are numbered 1.. in the family's order: inputs first, then outputs. The grid indices
// flat_id / wg_id (kernels/common.wgsl.ts) come with every family.
import type { DType } from '../dtype.js';
import { GRID } from './kernels/common.wgsl.js';

export type OutType = 'f32' | 'i32' | 'u32';

export interface KernelFamily {
  /** labels pipelines and keys the shader-module cache */
  name: string;
  /** the WGSL source, completed by the prelude below */
  code: string;
  /** storage inputs declared by the prelude, in binding order */
  inputs: readonly string[];
  /** storage outputs (read_write), after the inputs, with the element type used when the
   *  entry point being compiled does not bind them (a bound f32/i32 tensor sets its own) */
  outputs: Readonly<Record<string, OutType>>;
  /**
   * WGSL directives the module needs at its top (`enable subgroups;`, `diagnostic(...);`): only on
   * families whose pipelines are built where the device has the feature.
   */
  directives?: readonly string[];
}

/** Which inputs/outputs one entry point statically uses (must match the WGSL exactly). */
export interface EntryUse {
  inputs: readonly string[];
  outputs: readonly string[];
}

export interface PreludeOptions {
  /** dtype of each bound input (unbound inputs default to f32) */
  dtypes: Record<string, DType>;
  /** element type of each output */
  outTypes: Record<string, OutType>;
  /** inputs to declare as array<vec4<f32>> (f32 only, length a multiple of 4) */
  vec4: readonly string[];
  /** whether shader-f16 is enabled on the device */
  f16: boolean;
}

function loaderFor(name: string, binding: number, dtype: DType, vec4: boolean, f16: boolean): string {
  const decl = (ty: string) => `@group(0) @binding(${binding}) var<storage, read> ${name}: array<${ty}>;`;
  switch (dtype) {
    case 'f32':
      if (vec4) {
        return [
          decl('vec4<f32>'),
          `fn ld_${name}(i: u32) -> f32 { return ${name}[i >> 2u][i & 3u]; }`,
          `fn ld4_${name}(i: u32) -> vec4<f32> { return ${name}[i >> 2u]; }`,
        ].join('\n');
      }
      return [
        decl('f32'),
        `fn ld_${name}(i: u32) -> f32 { return ${name}[i]; }`,
        `fn ld4_${name}(i: u32) -> vec4<f32> { return vec4<f32>(${name}[i], ${name}[i + 1u], ${name}[i + 2u], ${name}[i + 3u]); }`,
      ].join('\n');
    case 'i32':
      return [
        decl('i32'),
        `fn ldi_${name}(i: u32) -> i32 { return ${name}[i]; }`,
        `fn ld_${name}(i: u32) -> f32 { return f32(${name}[i]); }`,
        `fn ld4_${name}(i: u32) -> vec4<f32> { return vec4<f32>(f32(${name}[i]), f32(${name}[i + 1u]), f32(${name}[i + 2u]), f32(${name}[i + 3u])); }`,
      ].join('\n');
    case 'bf16':
      // bf16 is the top half of an f32: widening is a shift.
      return [
        decl('u32'),
        `fn ld_${name}(i: u32) -> f32 { let w = ${name}[i >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u)); }`,
        `fn ld4_${name}(i: u32) -> vec4<f32> { let w0_ = ${name}[i >> 1u]; let w1_ = ${name}[(i >> 1u) + 1u];`,
        `  return bitcast<vec4<f32>>(vec4<u32>(w0_ << 16u, w0_ & 0xffff0000u, w1_ << 16u, w1_ & 0xffff0000u)); }`,
      ].join('\n');
    case 'f16':
      if (f16) {
        return [
          decl('f16'),
          `fn ld_${name}(i: u32) -> f32 { return f32(${name}[i]); }`,
          `fn ld4_${name}(i: u32) -> vec4<f32> { return vec4<f32>(f32(${name}[i]), f32(${name}[i + 1u]), f32(${name}[i + 2u]), f32(${name}[i + 3u])); }`,
        ].join('\n');
      }
      return [
        decl('u32'),
        `fn ld_${name}(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }`,
        `fn ld4_${name}(i: u32) -> vec4<f32> { return vec4<f32>(unpack2x16float(${name}[i >> 1u]), unpack2x16float(${name}[(i >> 1u) + 1u])); }`,
      ].join('\n');
  }
}

export function prelude(family: KernelFamily, opts: PreludeOptions): string {
  const lines: string[] = [];
  const usesF16 = opts.f16 && family.inputs.some((n) => opts.dtypes[n] === 'f16');
  if (usesF16) lines.push('enable f16;');
  lines.push(...(family.directives ?? []));
  let binding = 1;
  for (const name of family.inputs) {
    const dtype = opts.dtypes[name] ?? 'f32';
    lines.push(loaderFor(name, binding++, dtype, opts.vec4.includes(name) && dtype === 'f32', opts.f16));
    // ldi_ exists for every dtype so that an i32 entry point compiles in a module built for float
    // inputs too (a file's entry points share one module); floats truncate toward zero.
    if (dtype !== 'i32') lines.push(`fn ldi_${name}(i: u32) -> i32 { return i32(ld_${name}(i)); }`);
  }
  for (const [name, def] of Object.entries(family.outputs)) {
    const ty = opts.outTypes[name] ?? def;
    lines.push(`@group(0) @binding(${binding++}) var<storage, read_write> ${name}: array<${ty}>;`);
    if (ty !== 'u32') lines.push(`fn st_${name}(i: u32, v: f32) { ${name}[i] = ${ty === 'f32' ? 'v' : 'i32(v)'}; }`);
  }
  lines.push(GRID);
  return `${lines.join('\n')}\n`;
}

/** Binding index of each named input/output of a family. */
export function bindingIndex(family: KernelFamily, name: string): number {
  const i = family.inputs.indexOf(name);
  if (i >= 0) return 1 + i;
  const o = Object.keys(family.outputs).indexOf(name);
  if (o >= 0) return 1 + family.inputs.length + o;
  throw new Error(`kernel ${family.name}: no binding named ${name}`);
}
