// Hostile and mistaken input headers (issue 14): crafted Y4M headers (interlacing, frame rates,
// chroma and bit depth, absurd sizes, garbage), PNGs whose IHDR claims a huge image from a few
// bytes of data, PNG folders and tokens files past the limits. Each is refused with one line that
// names the file and the header tag or limit, before anything of the claimed size is allocated;
// raising the limit through the options accepts a moderately large input.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as nodePath from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/engine/errors.js';
import { checkFrameLimits, DEFAULT_LIMITS, decodedBytes, parseLimit } from '../../src/io/limits.js';
import { openVideoSource, probeVideo, readVideo } from '../../src/io/open-video.js';
import { decodePng, probePng, readPng } from '../../src/io/png.js';
import { openPngFrames, readPngFrames, writePngFrames } from '../../src/io/png-frames.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { openY4m, readY4m, Y4mError } from '../../src/io/y4m.js';
import { inflateZlib } from '../../src/io/zlib.js';
import { craftPng } from './crafted-png.js';
import { readTokens } from '../../src/pipelines/tokens-file.js';

const tmp = mkdtempSync(nodePath.join(tmpdir(), 'cosmos-faults-headers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const tmpPath = (name: string) => nodePath.join(tmp, `${n++}-${name}`);

/** A Y4M file of `header` and `frames` bare frames of `frameBytes` mid-grey bytes each. */
function y4m(header: string, frames = 0, frameBytes = 0): string {
  const p = tmpPath('clip.y4m');
  const parts = [Buffer.from(`${header}\n`, 'latin1')];
  for (let i = 0; i < frames; i++) parts.push(Buffer.from('FRAME\n', 'latin1'), Buffer.alloc(frameBytes, 128));
  writeFileSync(p, Buffer.concat(parts));
  return p;
}

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function refused(open: () => Promise<unknown>, re: RegExp): Promise<string> {
  const e = await open().then(
    () => null,
    (x: unknown) => x,
  );
  expect(e, 'expected a refusal').toBeInstanceOf(UserError);
  const m = (e as Error).message;
  expect(m).toMatch(re);
  expect(m).not.toContain('\n');
  return m;
}

describe('Y4M header tags', () => {
  const OK = 'YUV4MPEG2 W4 H2 F30:1 C420jpeg';
  const frame = 4 * 2 + 2 * 2 * 1;

  const bad: [string, string, string, RegExp][] = [
    ['It (top field first)', `${OK} It`, 'I', /interlaced video \(It, top field first\) is not supported/],
    ['Ib (bottom field first)', `${OK} Ib`, 'I', /interlaced video \(Ib, bottom field first\) is not supported/],
    ['Im (mixed)', `${OK} Im`, 'I', /mixed progressive and interlaced video \(Im\) is not supported/],
    ['Ix (unknown)', `${OK} Ix`, 'I', /unknown interlacing Ix/],
    ['F0:0 (unknown rate)', 'YUV4MPEG2 W4 H2 F0:0', 'F', /F0:0 is an unknown frame rate/],
    ['F30:0', 'YUV4MPEG2 W4 H2 F30:0', 'F', /F30:0 is a zero denominator/],
    ['F0:1', 'YUV4MPEG2 W4 H2 F0:1', 'F', /F0:1 is a zero frame rate/],
    ['F30 (no denominator)', 'YUV4MPEG2 W4 H2 F30', 'F', /malformed frame rate F30; expected F<n>:<d>/],
    ['F-30:1', 'YUV4MPEG2 W4 H2 F-30:1', 'F', /malformed frame rate F-30:1/],
    ['C422', 'YUV4MPEG2 W4 H2 F30:1 C422', 'C', /unsupported colour space C422/],
    ['C420p10', 'YUV4MPEG2 W4 H2 F30:1 C420p10', 'C', /C420p10 is 10-bit; only 8-bit Y4M is supported/],
    ['Cmono', 'YUV4MPEG2 W4 H2 F30:1 Cmono', 'C', /unsupported colour space Cmono/],
    ['Cmono16', 'YUV4MPEG2 W4 H2 F30:1 Cmono16', 'C', /Cmono16 is 16-bit/],
    ['W0', 'YUV4MPEG2 W0 H2 F30:1', 'W', /malformed value W0; expected W<positive integer>/],
    ['Habc', 'YUV4MPEG2 W4 Habc F30:1', 'H', /malformed value Habc/],
    ['W past 2^53', 'YUV4MPEG2 W99999999999999999999 H2 F30:1', 'W', /malformed value W9+/],
    ['garbage tags (no W and H)', 'YUV4MPEG2 garbage ##### %%%', 'W and H', /missing; expected "YUV4MPEG2 W<width> H<height> \.\.\."/],
  ];
  for (const [what, header, tag, re] of bad) {
    it(`refuses ${what}, naming the header tag ${tag}`, async () => {
      const p = y4m(header, 1, frame);
      const m = await refused(() => openY4m(p), new RegExp(`^${reEscape(p)}: header tag ${reEscape(tag)}: `));
      expect(m).toMatch(re);
      // every reader goes through the header: the streaming one, the whole-clip one, the probe
      await refused(() => readY4m(p), re);
      await refused(() => openVideoSource(p), re);
      await refused(() => probeVideo(p), re);
    });
  }

  it('refuses a file that is not YUV4MPEG2 at all, naming the file', async () => {
    const p = tmpPath('garbage.y4m');
    writeFileSync(p, Buffer.from('\x00\x01garbage that is not a header\n'));
    await refused(() => openY4m(p), new RegExp(`^${reEscape(p)}: bad magic`));
  });

  it('reads Ip and I? (unknown, taken as progressive) as progressive', async () => {
    for (const i of ['Ip', 'I?']) {
      const v = await readY4m(y4m(`${OK} ${i}`, 2, frame));
      expect([v.frames, v.width, v.height]).toEqual([2, 4, 2]);
      expect(v.header.interlacing).toBe(i[1]);
      expect(v.fps).toEqual({ num: 30, den: 1 });
    }
  });

  it("a header without F: the caller's rate, else 24 fps, and the source says it was assumed", async () => {
    const p = y4m('YUV4MPEG2 W4 H2 C420jpeg Ip', 1, frame);
    const r = await openY4m(p);
    expect(r.header.fps).toBeUndefined();
    await r.close();
    const a = await openVideoSource(p);
    expect([a.fps, a.fpsAssumed]).toEqual([undefined, true]);
    await a.close();
    const b = await openVideoSource(p, { num: 24, den: 1 });
    expect([b.fps, b.fpsAssumed]).toEqual([{ num: 24, den: 1 }, true]);
    await b.close();
    const c = await openVideoSource(y4m(OK, 1, frame), { num: 24, den: 1 });
    expect([c.fps, c.fpsAssumed]).toEqual([{ num: 30, den: 1 }, false]);
    await c.close();
  });
});

describe('Y4M sizes past the limits', () => {
  it('a header claiming 100000x100000 is refused at once, naming the tags, the limit and the flag', async () => {
    const p = y4m('YUV4MPEG2 W100000 H100000 F30:1 C420jpeg', 0);
    const t0 = performance.now();
    const m = await refused(() => openY4m(p), new RegExp(`^${reEscape(p)}: header tags W100000 H100000: 100000x100000 \\(W x H\\) is 10000000000 pixels a frame, over the limit of ${DEFAULT_LIMITS.maxPixels} pixels`));
    expect(m).toContain('--max-frame-pixels');
    await refused(() => readVideo(p), /over the limit/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('counts frames against maxFrames and a whole clip against maxBytes; a streaming reader holds one frame', async () => {
    const p = y4m('YUV4MPEG2 W4 H2 F30:1 C420jpeg', 5, 12);
    await refused(() => openY4m(p, { limits: { ...DEFAULT_LIMITS, maxFrames: 4 } }), new RegExp(`^${reEscape(p)}: 5 frames, over the limit of 4 frames; raise it with --max-frames`));
    const oneFrame = decodedBytes(4, 2);
    const limits = { ...DEFAULT_LIMITS, maxBytes: 2 * oneFrame };
    const r = await openY4m(p, { limits });
    await r.close();
    await refused(() => readY4m(p, { limits }), /5 frames of 4x2 \(W x H\) decode to 480 bytes of float32, over the limit of 192 bytes; raise it with --max-input-bytes/);
    await refused(() => readVideo(p, undefined, undefined, { limits }), /over the limit of 192 bytes/);
    await refused(() => probeVideo(p, { limits, whole: true }), /over the limit of 192 bytes/);
    expect((await probeVideo(p, { limits })).frames).toBe(5);
    // raised, it is read
    expect((await readY4m(p, { limits: { ...limits, maxBytes: 5 * oneFrame } })).frames).toBe(5);
  });
});

// ---------------------------------------------------------------------------------------------
// PNG


/** zlib of `rows` filter-0 rows of `stride` zero bytes. */
function zeroRowsZlib(rows: number, stride: number): Buffer {
  return zlib.deflateSync(Buffer.alloc(rows * (stride + 1)), { level: 9 });
}

describe('PNG headers past the limits', () => {
  it('a few-KB PNG whose IHDR says 20000x20000 is refused in well under a second, before any inflate', async () => {
    // the IDAT is a valid stream of some zero rows: a decoder that trusted IHDR would inflate and allocate 1.2 GB
    const p = tmpPath('huge.png');
    writeFileSync(p, craftPng(20000, 20000, zlib.deflateSync(Buffer.alloc(1 << 20), { level: 9 })));
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const re = new RegExp(`^${reEscape(p)}: IHDR: 20000x20000 \\(W x H\\) is 400000000 pixels a frame, over the limit of ${DEFAULT_LIMITS.maxPixels} pixels; raise it with --max-frame-pixels`);
    await refused(() => readPng(p), re);
    await refused(() => probePng(p), re);
    await refused(() => openVideoSource(p), re);
    await refused(() => probeVideo(p), re);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
  });

  it('the inflate is bounded by what IHDR implies: a 4x4 image whose data inflates to 8 MB is refused without inflating it all', () => {
    const png = craftPng(4, 4, zlib.deflateSync(Buffer.alloc(8 << 20), { level: 9 }));
    expect(() => decodePng(png, 'small.png')).toThrow(/^small\.png: image data inflates to more than the 52 bytes expected by IHDR's 4x4 \(corrupt file\)$/);
    expect(() => inflateZlib(zlib.deflateSync(Buffer.alloc(1000)), 999)).toThrow(/more than the 999 bytes/);
    expect(inflateZlib(zlib.deflateSync(Buffer.alloc(1000)), 1000)).toHaveLength(1000);
  });

  it('raising the limit through the options accepts a moderately large PNG (6000x6000, over the default)', async () => {
    const p = tmpPath('big.png');
    writeFileSync(p, craftPng(6000, 6000, zeroRowsZlib(6000, 6000), 0));
    await refused(() => readPng(p), /6000x6000 \(W x H\) is 36000000 pixels a frame, over the limit/);
    const img = await readPng(p, undefined, { limits: { ...DEFAULT_LIMITS, maxPixels: 40_000_000 } });
    expect([img.width, img.height, img.data.length]).toEqual([6000, 6000, 6000 * 6000 * 3]);
  });

  it('a PNG folder: the first frame x the count, before any frame is decoded', async () => {
    const dir = tmpPath('frames');
    mkdirSync(dir);
    await writePngFrames(dir, { data: new Float32Array(3 * 3 * 2 * 4), frames: 3, height: 2, width: 4 });
    await refused(() => openPngFrames(dir, undefined, undefined, { limits: { ...DEFAULT_LIMITS, maxFrames: 2 } }), new RegExp(`^${reEscape(dir)}: 3 frames, over the limit of 2 frames`));
    await refused(() => openPngFrames(dir, undefined, undefined, { limits: { ...DEFAULT_LIMITS, maxPixels: 7 } }), /frame_000000\.png: IHDR: 4x2 \(W x H\) is 8 pixels a frame, over the limit of 7 pixels/);
    const limits = { ...DEFAULT_LIMITS, maxBytes: decodedBytes(4, 2, 2) };
    await refused(() => readPngFrames(dir, undefined, undefined, { limits }), new RegExp(`^${reEscape(dir)}: 3 frames of 4x2 \\(W x H\\) decode to 288 bytes of float32, over the limit of 192 bytes`));
    const s = await openPngFrames(dir, undefined, undefined, { limits });
    expect(s.frameCount).toBe(3);
    // a huge frame later in the folder is refused when it is reached, still before its inflate
    writeFileSync(nodePath.join(dir, 'frame_000001.png'), craftPng(20000, 20000, zlib.deflateSync(Buffer.alloc(16))));
    const it = s.frames();
    await it.next();
    await refused(() => it.next(), /frame_000001\.png: IHDR: 20000x20000/);
  });
});

describe('tokens files past the limits', () => {
  it('the recorded clip size and the arrays are checked before any array is read', async () => {
    const p = tmpPath('tokens.safetensors');
    const meta = { format: 'cosmos-ts.tokens.v1', kind: 'CV', frames: '9', height: '100000', width: '100000', padded_frames: '9', padded_height: '100000', padded_width: '100000' };
    await writeSafetensors(p, { latent: { dtype: 'f32', shape: [1, 2, 1, 1, 1], raw: new Float32Array(2) } }, meta);
    await refused(() => readTokens(p), new RegExp(`^${reEscape(p)}: metadata: 100000x100000 \\(W x H\\) is 10000000000 pixels a frame, over the limit`));
    const q = tmpPath('tokens2.safetensors');
    await writeSafetensors(q, { latent: { dtype: 'f32', shape: [1, 4, 2, 4, 4], raw: new Float32Array(128) } }, { format: 'cosmos-ts.tokens.v1' });
    await refused(() => readTokens(q, undefined, { limits: { ...DEFAULT_LIMITS, maxBytes: 256 } }), new RegExp(`^${reEscape(q)}: tensor latent: \\[1, 4, 2, 4, 4\\] \\(512 bytes\\), over the limit of 256 bytes`));
    expect((await readTokens(q)).tokens.latent?.shape).toEqual([1, 4, 2, 4, 4]);
  });
});

describe('limits', () => {
  it('defaults take real Cosmos inputs and refuse the absurd', () => {
    expect(() => checkFrameLimits('x', 1920, 1080, 121)).not.toThrow();
    expect(() => checkFrameLimits('x', 1280, 704, 121)).not.toThrow();
    expect(() => checkFrameLimits('x', 7680, 4320, undefined)).not.toThrow();
    expect(() => checkFrameLimits('x', 20000, 20000, undefined)).toThrow(/over the limit/);
    expect(() => checkFrameLimits('x', 100000, 100000, 1)).toThrow(/over the limit/);
    expect(() => checkFrameLimits('x', 1920, 1080, 200)).toThrow(/^x: 200 frames of 1920x1080 \(W x H\) decode to 4\.63 GiB of float32, over the limit of 4 GiB; raise it with --max-input-bytes/);
    expect(() => checkFrameLimits('x', 16, 16, 10001)).toThrow(/^x: 10001 frames, over the limit of 10000 frames/);
  });

  it('parses limit values with suffixes', () => {
    expect(parseLimit('4096')).toBe(4096);
    expect(parseLimit('4GiB')).toBe(4 * 2 ** 30);
    expect(parseLimit('512MiB')).toBe(512 * 2 ** 20);
    expect(parseLimit('2G')).toBe(2 * 2 ** 30);
    expect(parseLimit('2GB')).toBe(2e9);
    expect(parseLimit('1.5KiB')).toBe(1536);
    expect(parseLimit('1e9')).toBe(1e9);
    for (const bad of ['', 'abc', '-5', '0', '4XiB', '4 gigs', '0.1']) expect(parseLimit(bad), bad).toBeNull();
  });

  it('a Y4M error is one line naming the file', async () => {
    const p = y4m('YUV4MPEG2 W4 H2 It', 0);
    const e = await openY4m(p).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(Y4mError);
    expect((e as Y4mError).file).toBe(p);
  });
});
