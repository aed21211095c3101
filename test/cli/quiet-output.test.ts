// Quiet by default: Dawn's native diagnostics (the Vulkan loader it could not open, with its C++
// frame, and the limits it "artificially reduced") never reach a command's stderr unless
// --verbose; the adapter line stays. Real processes (the noise is written by native code to file
// descriptor 2): the bin and `tsx src/cli/main.ts`. Also the filter itself, the exit status and
// signals passed through, and `demo` saying plainly when its WebGPU half was skipped.
import { spawn, spawnSync } from 'node:child_process';
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import { noiseFilter } from '../../bin/quiet-stderr.mjs';
import { ranOn } from '../../src/cli/demo.js';
import { runCli } from './run-cli.js';

const ROOT = nodePath.resolve(import.meta.dirname, '../..');
const BIN = nodePath.join(ROOT, 'bin/cosmos-ts.mjs');
const TSX = nodePath.join(ROOT, 'node_modules/.bin/tsx');
const NOISE = /^Warning: |BackendVk\.cpp|artificially reduced/m;

function cli(args: string[], env: Record<string, string> = {}, viaTsx = false) {
  const [cmd, argv] = viaTsx ? [TSX, [nodePath.join(ROOT, 'src/cli/main.ts'), ...args]] : [process.execPath, [BIN, ...args]];
  const r = spawnSync(cmd, argv, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { rc: r.status, out: r.stdout, err: r.stderr };
}

describe('Dawn diagnostics', () => {
  it('devices: none without --verbose, the adapter line kept; there with --verbose', () => {
    const quiet = cli(['devices']);
    expect(quiet.rc, quiet.err).toBe(0);
    expect(quiet.out).toMatch(/^webgpu {2}\S/m);
    expect(quiet.err).not.toMatch(NOISE);
    expect(quiet.err).toBe('');
    const verbose = cli(['devices', '--verbose']);
    expect(verbose.rc).toBe(0);
    expect(verbose.out).toMatch(/^webgpu {2}\S/m);
    // what Dawn says depends on the machine (a GPU with Vulkan may say nothing): allowed, not required
    expect(verbose.out.split('\n').filter((l) => /^webgpu/.test(l))).toEqual(quiet.out.split('\n').filter((l) => /^webgpu/.test(l)));
  }, 240_000);

  it('tsx src/cli/main.ts is as quiet, and an error is still the last line with its exit status', () => {
    const r = cli(['tokenize', '--model', 'weights/cosmos-tokenizer-tiny-cv4x8x8', '--input', 'none.y4m', '--out', 'x.safetensors', '--backend', 'webgpu'], {}, true);
    expect(r.rc).toBe(2);
    expect(r.err).not.toMatch(NOISE);
    expect(r.err.trimEnd().split('\n').at(-1)).toMatch(/^error: .*none\.y4m: /);
  }, 240_000);

  it('SIGTERM reaches the command through the filter, and its end is the exit status', async () => {
    const child = spawn(process.execPath, [BIN, 'conform', '--all', '--backend', 'webgpu'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    // once a case has run the command is well inside its work
    const closed = new Promise<[number | null, string | null]>((done) => child.on('close', (c, s) => done([c, s])));
    let ended = false;
    void closed.then(() => {
      ended = true;
    });
    while (!/^(PASS|FAIL|TODO) /m.test(out) && !ended) await new Promise((r) => setTimeout(r, 100));
    expect(ended, 'conform ended before it could be interrupted').toBe(false);
    child.kill('SIGTERM');
    const [code, signal] = await closed;
    // the CLI's own handler exits 143; without one the signal itself ends it (both say SIGTERM)
    expect(code === 143 || signal === 'SIGTERM', `code ${code} signal ${signal}`).toBe(true);
  }, 240_000);
});

describe('the filter', () => {
  it('drops Dawn warnings and their native frames, passes everything else as it comes', () => {
    let got = '';
    const f = noiseFilter((s) => {
      got += s;
    });
    f.feed("note: hello\nWarning: Couldn't load Vulkan: libvulkan.so.1: cannot open\n    at operator() (/x/BackendVk.cpp:368)\n\n");
    f.feed('Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16.\n');
    f.feed('\rencode [###   ] 3/8');
    expect(got).toBe('note: hello\n\rencode [###   ] 3/8');
    f.feed(' more\nerror: x: y\n');
    f.feed('Warn');
    f.feed('ing: x\n    at f (/y.ts:1)\n');
    f.end();
    expect(got).toBe('note: hello\n\rencode [###   ] 3/8 more\nerror: x: y\n    at f (/y.ts:1)\n');
  });
});

describe('demo says when the WebGPU half was skipped', () => {
  it('no adapter: `webgpu: skipped (<why>)` and a summary that names cpu only', async () => {
    const prev = process.env.COSMOS_WEBGPU_BACKEND;
    // no Metal on this machine or any Linux: no adapter, as on a machine without one
    process.env.COSMOS_WEBGPU_BACKEND = process.platform === 'darwin' ? 'd3d12' : 'metal';
    try {
      const r = await runCli('demo', '--no-conform', '--no-samples');
      expect(r.rc, r.err).toBe(0);
      expect(r.out).toMatch(/^webgpu: skipped \(.+\); running on cpu only$/m);
      const summary = r.out.trimEnd().split('\n').at(-1)!;
      expect(summary).toMatch(/^demo on cpu only; webgpu SKIPPED \(.+\): /);
      expect(summary).not.toMatch(/on cpu and webgpu|all backends|every backend/);
    } finally {
      if (prev === undefined) delete process.env.COSMOS_WEBGPU_BACKEND;
      else process.env.COSMOS_WEBGPU_BACKEND = prev;
    }
  });

  it('the summary wording', () => {
    expect(ranOn(['cpu', 'webgpu'], null)).toBe('on cpu and webgpu');
    expect(ranOn(['cpu'], 'no adapter')).toBe('on cpu only; webgpu SKIPPED (no adapter)');
  });
});
