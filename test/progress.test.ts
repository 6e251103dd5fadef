// The progress line (src/cli/sink.ts): a percentage and the time left when the total is known,
// and never wider than the terminal.
import { describe, expect, it } from 'vitest';
import { progressLine } from '../src/cli/sink.js';

describe('progressLine', () => {
  const c = { files: 1234, dirs: 56, bytes: 512 * 1024 * 1024, current: '/home/ann/some/deep/folder/with/a/long/name/file.bin' };

  it('shows a percentage and the time left when the total is known', () => {
    const line = progressLine({ ...c, totalBytes: 1024 * 1024 * 1024 }, 10, 200);
    expect(line).toMatch(/^50% 1234 files, 56 dirs, 512\.0 MiB 51\.2 MiB\/s ETA 0:10 \/home\/ann/);
  });

  it('has no percentage without a total (a first backup)', () => {
    expect(progressLine(c, 10, 200)).toMatch(/^1234 files/);
    expect(progressLine(c, 10, 200)).not.toMatch(/%|ETA/);
  });

  it('never passes 99% (the total is last time\'s) and never wraps, however narrow', () => {
    expect(progressLine({ ...c, totalBytes: 1 }, 10, 200)).toMatch(/^99% /);
    for (const width of [0, 1, 5, 20, 40, 60, 79]) {
      const line = progressLine({ ...c, totalBytes: 2 ** 31 }, 10, width);
      expect([...line].length, `width ${width}: ${line}`).toBeLessThanOrEqual(width);
    }
    // The file name is what stays of a long path.
    expect(progressLine(c, 10, 70)).toMatch(/….*file\.bin$/);
  });
});
