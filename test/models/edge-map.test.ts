// The edge control map (spec/control_maps.md "Edge", "OpenCV Canny, exactly"): the four public
// cases, then tiny images whose Canny output was worked out by hand from the spec's steps.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cannyThresholds } from '../../src/engine/backend.js';
import { cannyFrame, cannyGradients, cannyHysteresis } from '../../src/engine/cpu/canny.js';
import { fromArray } from '../../src/engine/ops.js';
import { EDGE_PRESETS, edgeMap, edgeThresholds } from '../../src/models/controlnet/edge-map.js';
import { cpu, expectCasePasses } from '../harness.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/control_maps', import.meta.url));
const CASES = ['edge_medium', 'edge_low', 'edge_very_low', 'edge_high'];

describe('controlnet.edge_map conformance (CPU)', () => {
  for (const name of CASES) it(name, async () => void (await expectCasePasses(join(FIXTURES, name), cpu)));
});

/** An H x W single-channel image from rows of numbers. */
const image = (rows: number[][]) => ({ values: rows.flat(), H: rows.length, W: rows[0].length });
const edgesOf = (rows: number[][], lo = 100, hi = 200) => {
  const { values, H, W } = image(rows);
  return Array.from(cannyFrame(values, 1, H, W, lo, hi));
};

describe('Canny on hand-checked images', () => {
  it('a vertical step edge is marked on its left column only (the >= toward the right)', () => {
    // dx = 4 * 100 = 400 at columns 2 and 3; column 3 loses to the equal column 2 on its left
    const rows = Array.from({ length: 4 }, () => [0, 0, 0, 100, 100, 100]);
    expect(edgesOf(rows)).toEqual(rows.flatMap(() => [0, 0, 255, 0, 0, 0]));
  });

  it('a single bright pixel gives the ring of its 8 neighbours, not itself', () => {
    const rows = Array.from({ length: 5 }, (_, y) => Array.from({ length: 5 }, (_, x) => (y === 2 && x === 2 ? 255 : 0)));
    const want = rows.map((r, y) => r.map((_, x) => (Math.max(Math.abs(y - 2), Math.abs(x - 2)) === 1 ? 255 : 0)));
    expect(edgesOf(rows)).toEqual(want.flat());
    // every ring magnitude is 510: above a high threshold of 509, nothing at or above 510
    expect(edgesOf(rows, 100, 509)).toEqual(want.flat());
    expect(edgesOf(rows, 100, 510)).toEqual(new Array(25).fill(0));
    expect(edgesOf(rows, 510, 600)).toEqual(new Array(25).fill(0));
  });

  it('a weak run survives only when 8-connected through weak pixels to a strong pixel', () => {
    // 1 weak, 2 strong: the run at the top reaches the strong pixel diagonally; the bottom run is alone
    const cls = Uint8Array.from([
      1, 1, 1, 0, 0,
      0, 0, 0, 2, 0,
      0, 0, 0, 0, 0,
      1, 1, 0, 0, 1,
    ]);
    expect(Array.from(cannyHysteresis(cls, 4, 5))).toEqual([
      255, 255, 255, 0, 0,
      0, 0, 0, 255, 0,
      0, 0, 0, 0, 0,
      0, 0, 0, 0, 0,
    ]);
  });

  it('strict thresholds end to end: a lone weak edge vanishes, a strong one stays', () => {
    // step 40 -> magnitude 160 at column 1 (column 2 has 160 too and loses to it)
    const rows = Array.from({ length: 3 }, () => [0, 0, 40, 40]);
    const line = rows.flatMap(() => [0, 255, 0, 0]);
    expect(edgesOf(rows, 100, 159)).toEqual(line);
    expect(edgesOf(rows, 100, 160)).toEqual(new Array(12).fill(0));
    expect(edgesOf(rows, 159, 160)).toEqual(new Array(12).fill(0));
    expect(edgesOf(rows, 160, 100)).toEqual(new Array(12).fill(0));
    expect(edgesOf(rows, 159.9, 159.9)).toEqual(line);
  });

  it('a 1-pixel-wide image: a vertical step, and a 1 x 1 image', () => {
    // dy = 4 * 100 at rows 1 and 2; row 2 loses to the equal row 1 above it
    expect(edgesOf([[0], [0], [100], [100]])).toEqual([0, 255, 0, 0]);
    expect(edgesOf([[0, 0, 100, 100]])).toEqual([0, 255, 0, 0]);
    expect(edgesOf([[255]], 0, 0)).toEqual([0]);
  });

  it('the channel with the largest L1 magnitude gives the gradient; on a tie the lowest channel', () => {
    // two channels, 1 x 3: channel 0 has dx +40 at x=1, channel 1 dx -40 (tie), then -80
    const tie = cannyGradients([0, 0, 10, 10, 0, 0], 2, 1, 3);
    expect([tie.dx[1], tie.mag[1]]).toEqual([40, 40]);
    const second = cannyGradients([0, 0, 10, 20, 0, 0], 2, 1, 3);
    expect([second.dx[1], second.mag[1]]).toEqual([-80, 80]);
  });

  it('thresholds are floored and swapped when reversed; the preset table', () => {
    expect(cannyThresholds(100.7, 200.2)).toEqual({ low: 100, high: 200 });
    expect(cannyThresholds(300, 200)).toEqual({ low: 200, high: 300 });
    expect(EDGE_PRESETS).toEqual({ none: [20, 50], very_low: [20, 50], low: [50, 100], medium: [100, 200], high: [200, 300], very_high: [300, 400] });
    expect(edgeThresholds('medium')).toEqual([100, 200]);
    expect(() => edgeThresholds('loud', '--control edge')).toThrow(/^--control edge: unknown edge preset 'loud'/);
    expect(() => edgeThresholds('toString')).toThrow(/unknown edge preset/);
  });

  it('the video map repeats each frame\'s edges on 3 channels', async () => {
    // C=3, T=2, H=1, W=4: frame 0 has a step in channel 2 only, frame 1 is flat
    const video = new Array(3 * 2 * 4).fill(0);
    video.splice((2 * 2 + 0) * 4, 4, 0, 0, 60, 60);
    const x = fromArray(cpu, video, [3, 2, 1, 4]);
    const map = await edgeMap(x, 100, 200);
    expect(map.shape).toEqual([1, 3, 2, 1, 4]);
    const out = Array.from(await map.read());
    x.dispose();
    map.dispose();
    const f0 = [0, 255, 0, 0];
    const f1 = [0, 0, 0, 0];
    expect(out).toEqual([...f0, ...f1, ...f0, ...f1, ...f0, ...f1]);
  });

  it('frames split over several canny calls give the same map', async () => {
    const values = Array.from({ length: 3 * 5 * 9 * 11 }, (_, i) => (i * 37 + ((i * i) % 23) * 11) % 256);
    const x = fromArray(cpu, values, [3, 5, 9, 11], 'i32');
    const whole = await edgeMap(x, 50, 120);
    const split = await edgeMap(x, 50, 120, 2);
    expect(split.shape).toEqual([1, 3, 5, 9, 11]);
    expect(Array.from(await split.read())).toEqual(Array.from(await whole.read()));
    expect(new Set(await whole.read())).toEqual(new Set([0, 255]));
    for (const t of [x, whole, split]) t.dispose();
  });
});
