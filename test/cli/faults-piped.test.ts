// Output through a pipe must arrive whole: stdout writes to a pipe are asynchronous in Node, and a
// process that exits as soon as its work is done cuts a long document short (the issue saw
// `inspect --json | wc -c` give 131072 of 172238 bytes). Here the reader is slow on purpose, so
// the pipe fills and the writer must wait for it to drain before exiting.
import { spawn } from 'node:child_process';
import * as nodePath from 'node:path';
import { describe, expect, it } from 'vitest';
import { useReleases } from '../pipelines/release-runs.js';

const BIN = nodePath.resolve(import.meta.dirname, '../../bin/cosmos-ts.mjs');

/** Run the CLI with stdout on a pipe read only after `delayMs`; the bytes it got and the exit status. */
function runSlowReader(args: string[], delayMs: number): Promise<{ rc: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.pause();
    setTimeout(() => {
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stdout.resume();
    }, delayMs);
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('error', fail);
    child.on('close', (rc) => done({ rc, stdout: Buffer.concat(out), stderr: err }));
  });
}

describe('stdout through a slow pipe', () => {
  const { release } = useReleases();

  it('inspect --json --tensors of a large release arrives whole (well past the 64 KiB pipe buffer)', async () => {
    const r = await runSlowReader(['inspect', release('Cosmos-Predict2.5-2B@diffusers-base-post-trained'), '--json', '--tensors'], 1500);
    expect(r.rc, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(4 * 65536);
    const doc = JSON.parse(r.stdout.toString('utf8'));
    expect(doc.ok).toBe(true);
    expect(doc.components.length).toBeGreaterThan(1);
  }, 60_000);
});
