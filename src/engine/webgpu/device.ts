// Acquiring a WebGPU device: a core adapter (Vulkan / Metal / D3D12) when there is one, else
// Dawn's OpenGL backend in compatibility mode (Mesa llvmpipe on a machine without a GPU).
// In a browser, navigator.gpu is used as it is. Options come from the caller (selectBackend);
// nothing here reads the environment.
import type { DeviceInfo } from '../backend.js';
import { UserError } from '../errors.js';
import type { WebGpuOptions } from '../select.js';

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** e.g. "NVIDIA H100 (vulkan, core)" or "llvmpipe (opengl, compatibility)" */
  description: string;
  featureLevel: 'core' | 'compatibility';
  hasF16: boolean;
  /** the device was given 'subgroups' (WGSL subgroupAdd / subgroupMax ..., any subgroup size) */
  hasSubgroups: boolean;
  hasTimestamps: boolean;
  /** a CPU rasteriser (llvmpipe, lavapipe, SwiftShader, WARP) rather than a GPU */
  software: boolean;
  info: DeviceInfo;
}

// The limits WebGPU defines, read by name (an implementation's limits object need not enumerate them).
const LIMIT_NAMES = [
  'maxTextureDimension1D', 'maxTextureDimension2D', 'maxTextureDimension3D', 'maxTextureArrayLayers', 'maxBindGroups',
  'maxBindingsPerBindGroup', 'maxDynamicUniformBuffersPerPipelineLayout', 'maxDynamicStorageBuffersPerPipelineLayout',
  'maxSampledTexturesPerShaderStage', 'maxSamplersPerShaderStage', 'maxStorageBuffersPerShaderStage', 'maxStorageTexturesPerShaderStage',
  'maxUniformBuffersPerShaderStage', 'maxUniformBufferBindingSize', 'maxStorageBufferBindingSize', 'minUniformBufferOffsetAlignment',
  'minStorageBufferOffsetAlignment', 'maxVertexBuffers', 'maxBufferSize', 'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension', 'subgroupMinSize', 'subgroupMaxSize',
];

function limitsOf(l: GPUSupportedLimits): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of LIMIT_NAMES) {
    const v = (l as unknown as Record<string, unknown>)[n];
    if (typeof v === 'number') out[n] = v;
  }
  return out;
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|\bwarp\b|basic render/i;

export class NoAdapterError extends UserError {
  override name = 'NoAdapterError';
}

// Limits we raise to the adapter's maximum: compatibility defaults (128 invocations per
// workgroup, 16 KiB workgroup memory, 128 MiB bindings) are far below what the kernels want.
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

type Attempt = { gpuOptions: string[] | null; featureLevel: 'core' | 'compatibility'; label: string };

/** Dawn instances to try in Node: the default adapter, else OpenGL (compatibility); or the one API asked for. */
function attempts(api: WebGpuOptions['api'], icd: string | undefined): Attempt[] {
  if (icd) return [{ gpuOptions: ['backend=vulkan'], featureLevel: 'core', label: 'vulkan' }];
  if (api === 'opengl' || api === 'opengles') return [{ gpuOptions: [`backend=${api}`], featureLevel: 'compatibility', label: api }];
  if (api) return [{ gpuOptions: [`backend=${api}`], featureLevel: 'core', label: api }];
  return [
    { gpuOptions: [], featureLevel: 'core', label: 'default' },
    { gpuOptions: ['backend=opengl'], featureLevel: 'compatibility', label: 'opengl' },
  ];
}

/** Dawn's command-line style options for the toggles asked for (e.g. disable_robustness). */
function toggleOptions(t: WebGpuOptions['dawnToggles']): string[] {
  const out: string[] = [];
  if (t?.enable?.length) out.push(`enable-dawn-features=${t.enable.join(',')}`);
  if (t?.disable?.length) out.push(`disable-dawn-features=${t.disable.join(',')}`);
  return out;
}

function processEnv(): Record<string, string | undefined> | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
}

async function nodeGpu(options: string[]): Promise<GPU | null> {
  // Dawn's OpenGL backend loads Mesa's EGL, which reads EGL_PLATFORM from the C environment: without
  // a display server it must be 'surfaceless'. Only this Node path (the 'webgpu' package) needs it.
  const env = processEnv();
  if (env && !env.EGL_PLATFORM) env.EGL_PLATFORM = 'surfaceless';
  try {
    const mod = (await import('webgpu')) as { create: (o: string[]) => GPU; globals: object };
    Object.assign(globalThis, mod.globals);
    return mod.create(options);
  } catch {
    return null;
  }
}

// The Vulkan loader reads its driver list from the C environment when Dawn enumerates adapters
// (VK_DRIVER_FILES, the older VK_ICD_FILENAMES): set for that one request and put back, so that a
// later default search in the same process is not steered to this driver.
const ICD_VARS = ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES'] as const;

async function withIcd<T>(icd: string | undefined, body: () => Promise<T>): Promise<T> {
  const env = processEnv();
  if (!icd || !env) return body();
  const saved = ICD_VARS.map((k) => env[k]);
  for (const k of ICD_VARS) env[k] = icd;
  try {
    return await body();
  } finally {
    ICD_VARS.forEach((k, i) => {
      if (saved[i] === undefined) delete env[k];
      else env[k] = saved[i];
    });
  }
}

// dawn.node destroys its native instance when the GPU object returned by `create` is garbage-
// collected, even while a device made from it is in use: later event processing then touches freed
// memory and the process dies (SIGSEGV, futex/mutex assertions). Devices handed out keep theirs here.
const liveInstances = new Set<GPU>();

export async function acquireDevice(options: WebGpuOptions = {}): Promise<AcquiredDevice> {
  const tried: string[] = [];
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const candidates: { gpu: GPU; featureLevel: 'core' | 'compatibility'; label: string }[] = [];
  if (nav?.gpu) {
    candidates.push({ gpu: nav.gpu, featureLevel: 'core', label: 'navigator.gpu' });
    candidates.push({ gpu: nav.gpu, featureLevel: 'compatibility', label: 'navigator.gpu' });
  }
  // A page (a document, no Node process) has navigator.gpu or nothing: Dawn's package is Node's.
  const inBrowser = typeof (globalThis as { document?: unknown }).document !== 'undefined' && !(globalThis as { process?: unknown }).process;
  if (inBrowser && !nav?.gpu) {
    throw new NoAdapterError(
      'webgpu: this browser has no navigator.gpu (WebGPU is off or unsupported here). Enable it (Chrome / Chromium 113+ have it on ' +
        'by default on most GPUs; else start Chromium with --enable-unsafe-webgpu or turn on chrome://flags/#enable-unsafe-webgpu) and open ' +
        'the page from https:// or http://127.0.0.1 (a secure context).',
    );
  }
  const icd = nav?.gpu ? undefined : options.icd;
  for (const a of nav?.gpu ? [] : attempts(options.api, icd)) {
    const gpu = await nodeGpu([...(a.gpuOptions ?? []), ...toggleOptions(options.dawnToggles)]);
    if (gpu) candidates.push({ gpu, featureLevel: a.featureLevel, label: a.label });
    else tried.push(`${a.label}: the 'webgpu' package could not be loaded`);
  }
  for (const c of candidates) {
    const adapter = await withIcd(icd, () =>
      c.gpu.requestAdapter({ featureLevel: c.featureLevel, powerPreference: 'high-performance' } as GPURequestAdapterOptions),
    );
    if (!adapter) {
      tried.push(`${c.label}/${c.featureLevel}${icd ? ` with the Vulkan ICD ${icd}` : ''}: no adapter`);
      continue;
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of RAISED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[name];
      if (typeof v === 'number') requiredLimits[name] = v;
    }
    const requiredFeatures: GPUFeatureName[] = [];
    const hasF16 = adapter.features.has('shader-f16');
    if (hasF16) requiredFeatures.push('shader-f16');
    const hasSubgroups = adapter.features.has('subgroups' as GPUFeatureName);
    if (hasSubgroups) requiredFeatures.push('subgroups' as GPUFeatureName);
    const hasTimestamps = adapter.features.has('timestamp-query');
    if (hasTimestamps) requiredFeatures.push('timestamp-query');
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    liveInstances.add(c.gpu);
    const adapterInfo = adapter.info;
    const name = [adapterInfo.vendor, adapterInfo.device || adapterInfo.architecture, adapterInfo.description].filter(Boolean).join(' / ') || 'unknown adapter';
    const backendType = (adapterInfo as unknown as { backendType?: string }).backendType;
    const api = backendType ?? (c.label === 'opengl' ? 'opengl' : c.label);
    const level = ((adapter as unknown as { featureLevel?: string }).featureLevel as 'core' | 'compatibility' | undefined) ?? c.featureLevel;
    const info: DeviceInfo = {
      vendor: adapterInfo.vendor ?? '',
      architecture: adapterInfo.architecture ?? '',
      device: adapterInfo.device ?? '',
      description: adapterInfo.description ?? '',
      api,
      featureLevel: level,
      features: [...adapter.features].map(String).sort(),
      limits: limitsOf(device.limits),
    };
    return {
      device,
      adapter,
      info,
      description: `${name} (${api}, ${level})`,
      featureLevel: level,
      hasF16,
      hasSubgroups,
      hasTimestamps,
      software: (adapterInfo as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true || SOFTWARE_ADAPTER.test(`${name} ${adapterInfo.architecture ?? ''}`),
    };
  }
  if (nav?.gpu) {
    throw new NoAdapterError(
      `webgpu: the browser gave no adapter (${tried.join('; ')}): WebGPU may be blocked for this GPU or driver; ` +
        'try chrome://flags/#enable-unsafe-webgpu or start the browser with --enable-unsafe-webgpu.',
    );
  }
  if (icd) {
    throw new NoAdapterError(
      `webgpu: no adapter could be had (${tried.join('; ')}): the Vulkan loader (libvulkan1) found no usable driver in that ICD manifest ` +
        `(for SwiftShader install Debian's chromium package, which ships /usr/lib/chromium/vk_swiftshader_icd.json, and libvulkan1).`,
    );
  }
  throw new NoAdapterError(
    `webgpu: no adapter could be had (${tried.join('; ')}). On a machine without a GPU install Mesa ` +
      `(apt-get update && apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libgles2) so Dawn's OpenGL backend can use llvmpipe.`,
  );
}
