import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration } from '../../src/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 200, write: (s: string) => writes.push(s) } };
}

describe('progress', () => {
  it('on a TTY redraws one line with \\r, throttled, and ends with a newline', () => {
    let t = 0;
    const { writes, stream } = fakeStream(true);
    const p = createProgress({ total: 10, label: 'encode', unit: 'frames', stream, now: () => t });
    t = 1000;
    p.tick(2); // drawn
    t = 1050;
    p.tick(1); // within 100 ms: not drawn
    t = 2000;
    p.tick(2); // drawn
    expect(writes.length).toBe(2);
    expect(writes.every((w) => w.startsWith('\r'))).toBe(true);
    expect(writes[0]).toContain('encode [#####...................] 2/10 frames  20% 2.00 frames/s ETA 4s');
    expect(writes[1]).toContain('5/10 frames  50% 2.50 frames/s ETA 2s');
    t = 4000;
    p.update(10);
    p.done('ok');
    expect(writes.at(-1)).toMatch(/^\rencode \[#{24}\] 10\/10 frames 100% 2\.50 frames\/s 4s ok *\n$/);
    expect(p.count).toBe(10);
  });

  it('without a TTY prints only occasional plain lines and a final line', () => {
    let t = 0;
    const { writes, stream } = fakeStream(false);
    const p = createProgress({ label: 'decode', stream, now: () => t, lineEveryMs: 5000 });
    for (let i = 0; i < 20; i++) {
      t += 1000;
      p.tick();
    }
    // lines at 5 s, 10 s, 15 s, 20 s
    expect(writes.length).toBe(4);
    expect(writes.every((w) => !w.includes('\r') && w.endsWith('\n'))).toBe(true);
    expect(writes[0]).toBe('decode 5 items 1.00 items/s 5s\n');
    p.done();
    p.done();
    expect(writes.length).toBe(5);
  });

  it('prints nothing when silent; formats durations', () => {
    const { writes, stream } = fakeStream(true);
    const p = createProgress({ stream, silent: true });
    p.tick();
    p.done();
    expect(writes).toEqual([]);
    expect([formatDuration(5.4), formatDuration(75), formatDuration(3725), formatDuration(NaN)]).toEqual(['5s', '1m15s', '1h02m', '?']);
  });
});
