// Backend selection as a caller sees it: the choice is validated, 'cpu' never loads Dawn, and the
// WebGPU device options come from the environment only through webgpuOptionsFromEnv.
import { describe, expect, it } from 'vitest';
import { isUserError } from '../../src/engine/errors.js';
import { SWIFTSHADER_ICD, selectBackend, selectBackends, webgpuOptionsFromEnv } from '../../src/engine/select.js';

describe('selectBackend', () => {
  it('gives the CPU oracle for cpu, alone or as a list', async () => {
    const be = await selectBackend({ backend: 'cpu' });
    expect(be.name).toBe('cpu');
    expect(be.software).toBe(true);
    expect((await selectBackends('cpu')).map((b) => b.name)).toEqual(['cpu']);
  });

  it('refuses an unknown choice with a UserError naming the choices', async () => {
    const err = await selectBackend({ backend: 'tpu' as 'cpu' }).catch((e: unknown) => e);
    expect(isUserError(err)).toBe(true);
    expect((err as Error).message).toMatch(/auto, webgpu, cpu.*"tpu"/);
  });
});

describe('webgpuOptionsFromEnv', () => {
  it('is empty when no variable is set (the default device search)', () => {
    expect(webgpuOptionsFromEnv({})).toEqual({});
    expect(webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: '', COSMOS_DAWN_ENABLE: ' , ' })).toEqual({});
  });

  it('reads the API (software is OpenGL) and the comma-separated Dawn toggles', () => {
    expect(webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: 'vulkan' })).toEqual({ api: 'vulkan' });
    expect(webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: 'software' })).toEqual({ api: 'opengl' });
    expect(webgpuOptionsFromEnv({ COSMOS_DAWN_ENABLE: 'a, b', COSMOS_DAWN_DISABLE: 'c' })).toEqual({
      dawnToggles: { enable: ['a', 'b'], disable: ['c'] },
    });
  });

  it('reads a Vulkan ICD (which implies vulkan); swiftshader is Vulkan on Chromium\'s SwiftShader ICD', () => {
    expect(webgpuOptionsFromEnv({ COSMOS_VULKAN_ICD: '/x/icd.json' })).toEqual({ api: 'vulkan', icd: '/x/icd.json' });
    expect(webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: 'vulkan', COSMOS_VULKAN_ICD: ' /x/icd.json ' })).toEqual({ api: 'vulkan', icd: '/x/icd.json' });
    expect(webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: 'swiftshader' })).toEqual({ api: 'vulkan', icd: SWIFTSHADER_ICD });
    expect(webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: 'swiftshader', COSMOS_VULKAN_ICD: '/y.json' })).toEqual({ api: 'vulkan', icd: '/y.json' });
    let err: unknown;
    try {
      webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: 'opengl', COSMOS_VULKAN_ICD: '/x/icd.json' });
    } catch (e) {
      err = e;
    }
    expect(isUserError(err)).toBe(true);
    expect((err as Error).message).toMatch(/^COSMOS_VULKAN_ICD: .*opengl/);
  });

  it('refuses an unknown API with a UserError naming the variable', () => {
    let err: unknown;
    try {
      webgpuOptionsFromEnv({ COSMOS_WEBGPU_BACKEND: 'glide' });
    } catch (e) {
      err = e;
    }
    expect(isUserError(err)).toBe(true);
    expect((err as Error).message).toMatch(/COSMOS_WEBGPU_BACKEND.*"glide"/);
  });
});
