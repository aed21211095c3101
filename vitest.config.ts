import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    // Each test file in its own process: every file that touches WebGPU owns one Dawn device.
    pool: 'forks',
    // Two files at a time even on a 2-core machine (the default leaves one core idle): the
    // release-skeleton runs are long CPU-bound files, the WebGPU files mostly wait on llvmpipe.
    maxWorkers: 2,
    // Kernels run on a software rasteriser in CI (llvmpipe): generous per-test time.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    env: { EGL_PLATFORM: 'surfaceless' },
  },
});
